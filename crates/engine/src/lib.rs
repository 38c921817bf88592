//! Deterministic inference for lmzip's byte-level Transformers.
//!
//! An arithmetic decoder must recompute the encoder's probabilities bit for bit, on whatever
//! machine it runs. This crate computes a Transformer's logits with kernels of its own whose
//! arithmetic order depends only on the model's shape — never on the thread count, the batch,
//! the chunk's position in a batch, the SIMD width or the CPU — and turns them into integer
//! frequency tables by one exact procedure. The rules and the kernels' exact semantics are in
//! `docs/ENGINE.md`.
//!
//! # Example
//! ```
//! use lmzip_engine::{Config, Scratch, Transformer, file, quantize};
//!
//! let config = Config::new(32, 2, 2, 64);
//! let model = Transformer::new(config.clone(), file::random_weights(&config, 7));
//! let chunk = b"hello, hello";
//! // Teacher-forced: every position at once, as the encoder does.
//! let mut all = vec![0.0; chunk.len() * 256];
//! model.forward(chunk, &mut all, &mut Scratch::default());
//! // Incremental: one byte at a time with a key/value cache, as the decoder does.
//! let mut cache = model.new_cache();
//! let mut row = vec![0.0; 256];
//! let mut scratch = Scratch::default();
//! for (i, token) in std::iter::once(256).chain(chunk.iter().map(|&b| b as u32)).take(chunk.len()).enumerate() {
//!     model.step(&mut [&mut cache], &[token], &mut row, &mut scratch);
//!     assert_eq!(row, all[i * 256..(i + 1) * 256]);
//! }
//! let mut freqs = vec![0u32; 256];
//! quantize::frequencies(&row, &mut freqs);
//! assert_eq!(freqs.iter().map(|&f| f as u64).sum::<u64>(), 1 << quantize::FREQUENCY_BITS);
//! ```
#![deny(missing_docs)]

pub mod config;
pub mod file;
pub mod gguf;
pub mod kernels;
pub mod llama;
pub mod math;
pub mod quantize;
pub mod transformer;

pub use config::{BOS, Config, Norm};
pub use kernels::Isa;
pub use transformer::{Cache, Profile, Scratch, Transformer, Weights};

/// The version of the engine's arithmetic. Archives record it; any change to what a kernel
/// computes (not how fast) must bump it.
pub const NUMERICS_VERSION: u16 = 1;
