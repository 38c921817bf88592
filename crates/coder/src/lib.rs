//! Exact range coding over integer cumulative frequencies.
//!
//! A model gives, for every coding step, a [`Cdf`]: integer frequencies that sum to
//! `2^precision`, each at least 1. [`Encoder`] turns a symbol sequence into bytes whose length is
//! within a few bytes of `Σ −log2(freq/total)`; [`Decoder`] reads them back given the same
//! sequence of `Cdf`s. The coder knows nothing of models and never sees a float.
//!
//! # Example
//! ```
//! use lmzip_coder::{Cdf, Decoder, Encoder};
//!
//! let cdf = Cdf::from_frequencies(16, &[40_000, 20_000, 5_536]).unwrap();
//! let message = [0u32, 1, 0, 2, 0, 0, 1];
//! let mut enc = Encoder::new();
//! for &s in &message {
//!     enc.encode(s, &cdf);
//! }
//! let bytes = enc.finish();
//! assert_eq!(bytes, [0x7a, 0x93]);
//!
//! let mut dec = Decoder::new(&bytes);
//! let decoded: Vec<u32> = (0..message.len()).map(|_| dec.decode(&cdf).unwrap()).collect();
//! assert_eq!(decoded, message);
//! dec.finish().unwrap(); // the input is exactly what the encoder wrote
//! ```
//!
//! # Design
//! A 64-bit range coder in the style of LZMA's: `low` carries into already-written bytes through
//! a cached byte and a count of pending `0xFF` bytes, so carries are exact and never lost. The
//! range is renormalised byte-wise to stay at or above `2^56`, so with `precision ≤ 30` the
//! per-symbol rounding loss is below `2^-26` relative. The first byte of LZMA's stream is always
//! zero and is not written; the final value is chosen with as many trailing zero bytes as
//! possible and those are dropped, because the decoder reads zeros past the end. The result is
//! at most about 2 bytes above the information content. Written by hand rather than taken from
//! `constriction` because lmzip needs 64-bit state for vocabularies of up to `2^24` symbols at
//! full precision, an explicitly documented byte format (`docs/CODER.md`) that must never change,
//! and an error instead of a panic on corrupt input.
#![deny(missing_docs)]

mod cdf;
mod decoder;
mod encoder;

pub use cdf::{Cdf, MAX_PRECISION, MIN_PRECISION};
pub use decoder::Decoder;
pub use encoder::Encoder;

/// Errors of the coder.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Error {
    /// A frequency table breaks the rules (sum, minimum frequency, precision).
    InvalidCdf(&'static str),
    /// The coded bytes cannot have been produced by the encoder with these tables.
    Corrupt,
}

impl std::fmt::Display for Error {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Error::InvalidCdf(why) => write!(f, "invalid frequency table: {why}"),
            Error::Corrupt => write!(f, "coded data is corrupt"),
        }
    }
}

impl std::error::Error for Error {}

/// How many bytes past the end of its input a decoder reads while its state is not zero, at
/// most. The encoder drops trailing zero bytes, and a decoder reads zeros in their place; past
/// its final value (at most 8 bytes) a genuine stream's state is zero, so this bound refuses
/// only forged streams. [`Encoder::finish`] keeps zero bytes where a stream would break it
/// (possible only for inputs built to do so). With it, a stream of `n` bytes can make a
/// decoder take at most `(n + PAST_END) · 8 / b` steps before it ends or fails, where `b` is
/// the fewest bits a step can cost under the model's tables; afterwards only symbol 0
/// ([`Decoder::rest_is_zero`]).
pub const PAST_END: usize = 16;

/// Renormalisation threshold: the range is kept at or above this value.
const TOP: u64 = 1 << 56;
