//! Predictors for lmzip: the [`Model`] trait and the models behind it.
//!
//! A model turns the symbols of a chunk seen so far into an integer frequency table
//! ([`lmzip_coder::Cdf`]) for the next symbol. Encoder and decoder run the same model on the same
//! symbols, so a model must be deterministic: the table may depend only on the model and on the
//! chunk's symbols so far, never on the thread, the batch, the CPU or on earlier chunks (see
//! `docs/DETERMINISM.md`).
//!
//! # Example
//! ```
//! use lmzip_coder::Cdf;
//! use lmzip_models::{ContextMixing, Model};
//!
//! let model = ContextMixing::new();
//! let mut state = model.new_state();
//! let mut cdf = Cdf::uniform(16, 2).unwrap();
//! for symbol in lmzip_models::symbolize(model.symbols(), b"abab") {
//!     model.predict(&mut state, &mut cdf);
//!     model.observe(&mut state, symbol);
//! }
//! model.predict(&mut state, &mut cdf);
//! // After "abab" the next byte starts with the bit 0 of 'a' = 0b0110_0001: likely.
//! assert!(cdf.frequency(0) > cdf.frequency(1));
//! ```
#![deny(missing_docs)]

mod cm;
mod transformer;

pub use cm::ContextMixing;
use lmzip_coder::Cdf;
pub use transformer::{TransformerModel, TransformerState};

/// Names a model, as recorded in an archive header.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ModelId {
    /// A short name, at most [`ModelId::MAX_NAME_LEN`] bytes of UTF-8.
    pub name: String,
    /// The SHA-256 of the model's weights file, or `None` for a model without weights.
    pub sha256: Option<[u8; 32]>,
}

impl ModelId {
    /// The longest name an archive can record.
    pub const MAX_NAME_LEN: usize = 64;
}

/// How a chunk's bytes become the model's coding symbols.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Symbols {
    /// One symbol per byte, alphabet 256.
    Bytes,
    /// Eight binary symbols per byte, most significant bit first, alphabet 2.
    Bits,
}

impl Symbols {
    /// The alphabet size of one coding step.
    pub fn alphabet_size(self) -> usize {
        match self {
            Symbols::Bytes => 256,
            Symbols::Bits => 2,
        }
    }

    /// Symbols per byte of input.
    pub fn per_byte(self) -> usize {
        match self {
            Symbols::Bytes => 1,
            Symbols::Bits => 8,
        }
    }
}

/// The coding symbols of `bytes` under `symbols`.
pub fn symbolize(symbols: Symbols, bytes: &[u8]) -> impl Iterator<Item = u32> + '_ {
    let per = symbols.per_byte();
    (0..bytes.len() * per).map(move |i| match symbols {
        Symbols::Bytes => u32::from(bytes[i]),
        Symbols::Bits => u32::from(bytes[i / 8] >> (7 - i % 8)) & 1,
    })
}

/// A deterministic next-symbol predictor.
///
/// The required surface is small: a model says who it is, how bytes become symbols, makes a
/// fresh per-chunk state, predicts the next symbol into a [`Cdf`] and observes the true one.
/// [`Model::predict_batch`] advances many chunks at once; models that gain from batching (the
/// Transformer) override it, and its result must equal calling [`Model::predict`] on each state.
pub trait Model: Send + Sync {
    /// The per-chunk state: everything the model has learned from the chunk so far.
    type State: Send;

    /// The model's name and weights hash, as recorded in the archive header.
    fn id(&self) -> ModelId;

    /// How bytes become coding symbols.
    fn symbols(&self) -> Symbols;

    /// The precision of the tables the model produces (their total is `2^precision`).
    fn precision(&self) -> u32;

    /// A state for a new chunk.
    fn new_state(&self) -> Self::State;

    /// Make `state` equal to [`Model::new_state`]'s result, reusing its allocations.
    fn reset(&self, state: &mut Self::State);

    /// The longest chunk, in bytes, the model can code (its context), if it has a limit.
    fn max_chunk_len(&self) -> Option<usize> {
        None
    }

    /// Called by the encoder after [`Model::reset`] with the whole chunk it is about to code, so
    /// that the model may score every position at once (teacher forcing). Predictions after
    /// `prepare` must equal those without it: the decoder never calls it.
    fn prepare(&self, state: &mut Self::State, chunk: &[u8]) {
        let _ = (state, chunk);
    }

    /// Fill `cdf` with the distribution of the next symbol.
    fn predict(&self, state: &mut Self::State, cdf: &mut Cdf);

    /// Record the true next symbol.
    fn observe(&self, state: &mut Self::State, symbol: u32);

    /// How many chunks a decoder should advance in lockstep through [`Model::predict_batch`]
    /// (a speed hint, never a change of results): 1 (the default) decodes chunks one after
    /// another, as suits models with large per-chunk tables; the Transformer asks for more,
    /// since its batched step is a matrix product.
    fn lockstep_chunks(&self) -> usize {
        1
    }

    /// [`Model::predict`] for many chunks at once: `cdfs[i]` for `states[i]`.
    fn predict_batch(&self, states: &mut [Self::State], cdfs: &mut [Cdf]) {
        for (state, cdf) in states.iter_mut().zip(cdfs.iter_mut()) {
            self.predict(state, cdf);
        }
    }
}

impl<M: Model + ?Sized> Model for &M {
    type State = M::State;
    fn id(&self) -> ModelId {
        (**self).id()
    }
    fn symbols(&self) -> Symbols {
        (**self).symbols()
    }
    fn precision(&self) -> u32 {
        (**self).precision()
    }
    fn new_state(&self) -> Self::State {
        (**self).new_state()
    }
    fn reset(&self, state: &mut Self::State) {
        (**self).reset(state)
    }
    fn max_chunk_len(&self) -> Option<usize> {
        (**self).max_chunk_len()
    }
    fn prepare(&self, state: &mut Self::State, chunk: &[u8]) {
        (**self).prepare(state, chunk)
    }
    fn predict(&self, state: &mut Self::State, cdf: &mut Cdf) {
        (**self).predict(state, cdf)
    }
    fn observe(&self, state: &mut Self::State, symbol: u32) {
        (**self).observe(state, symbol)
    }
    fn lockstep_chunks(&self) -> usize {
        (**self).lockstep_chunks()
    }
    fn predict_batch(&self, states: &mut [Self::State], cdfs: &mut [Cdf]) {
        (**self).predict_batch(states, cdfs)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bits_are_msb_first() {
        let bits: Vec<u32> = symbolize(Symbols::Bits, &[0b1010_0001]).collect();
        assert_eq!(bits, [1, 0, 1, 0, 0, 0, 0, 1]);
        let bytes: Vec<u32> = symbolize(Symbols::Bytes, &[7, 255]).collect();
        assert_eq!(bytes, [7, 255]);
    }

    fn _assert_send_sync<T: Send + Sync>() {}
    #[allow(dead_code)]
    fn assert_models_send_sync() {
        _assert_send_sync::<ContextMixing>();
        _assert_send_sync::<TransformerModel>();
    }
}
