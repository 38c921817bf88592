//! lmzip's deterministic numerics: the kernels every network runs, and logits → tables.
//!
//! An arithmetic decoder must recompute the encoder's probabilities bit for bit, on whatever
//! machine it runs. This crate owns the arithmetic that makes that possible: matrix products,
//! norms and activations ([`kernels`]) whose order depends only on the shapes — never on the
//! thread count, the batch, a sequence's position in a batch, the SIMD width or the CPU —, the
//! shared causal [`attention`] (key/value cache, rotary tables, store-then-attend), the crate's
//! own `exp`/`ln`/`sin`/`cos` ([`math`]), and one exact procedure that turns logits into integer
//! frequency tables ([`quantize`]). The rules are in `docs/ENGINE.md`.
//!
//! It knows no network, no weight file and no tokenizer: the model families (the byte
//! Transformer, the Llama family) live in `lmzip-models` and are written with these kernels.
//!
//! # Example
//! ```
//! use lmzip_engine::{Isa, quantize};
//! use lmzip_engine::kernels::{self, Packed};
//!
//! // A 2 × 3 product, then a table from the second row's logits.
//! let w = Packed::new(&[1.0, 0.0, 2.0, 0.0, 1.0, -1.0], 2, 3);
//! let mut logits = vec![0.0; 6];
//! kernels::matmul(Isa::detect(), &[1.0, 2.0, 0.5, 0.5], &w, &mut logits, 2);
//! assert_eq!(&logits[3..], &[0.5, 0.5, 0.5]);
//! let mut freqs = vec![0u32; 3];
//! quantize::frequencies(&logits[3..], &mut freqs);
//! assert_eq!(freqs.iter().map(|&f| f as u64).sum::<u64>(), 1 << quantize::FREQUENCY_BITS);
//! ```
#![deny(missing_docs)]

pub mod attention;
pub mod budget;
pub mod int8;
pub mod kernels;
pub mod math;
pub mod quantize;
pub mod team;

pub use attention::{Cache, Rope, Rows};
pub use budget::Budget;
pub use kernels::Isa;

/// The version of the engine's arithmetic. Archives record it; any change to what a kernel
/// computes (not how fast) must bump it.
///
/// - 1: every network attends to all earlier positions of its chunk.
/// - 2: lmzip's byte Transformers attend to the start token and the last 256 positions
///   ([`kernels::attend`]'s window) and round their matrix weights, keys and values to
///   bfloat16 ([`kernels::Packed::new_bf16`], [`Cache::new_bf16`];
///   `lmzip_models::transformer::arithmetic_for`); every other computation is as in 1.
/// - 3: the networks compute as in 2; solid mode's mixers start by trusting the byte model
///   (`lmzip_models::mix`), so a block, however short, starts at the byte model's rate.
/// - 4: lmzip's byte Transformers keep their matrix weights in int8 with a scale per column and
///   multiply them with activations rounded to integers per row, in exact integer sums
///   ([`int8`], [`kernels::Packed::new_int8`]); everything else as in 3.
/// - 5: the Llama-family LLMs keep their projection and output matrices in int8 as 4 does for
///   the byte Transformers ([`kernels::Packed::to_int8`]; their embedding lookup stays `f32`);
///   the byte models and the mixers compute as in 4.
pub const NUMERICS_VERSION: u16 = 5;

/// The oldest numerics version this build still computes: archives from
/// `OLDEST_NUMERICS_VERSION..=NUMERICS_VERSION` decode.
pub const OLDEST_NUMERICS_VERSION: u16 = 1;
