//! Predictors for lmzip: the [`Model`] trait and the models behind it.
//!
//! One folder per model family, each readable top-down: [`transformer`] (the paper's byte
//! Transformer), [`llama`] (pretrained LLMs from Hugging Face directories or GGUF files), [`cm`]
//! (the weightless adaptive context-mixing model). What the neural families share is in
//! `net` (state, teacher forcing, lockstep steps); the weight file formats in [`weights`]
//! (safetensors) and [`gguf`]; lookup by name and the compiled-in default in [`registry`].
//! The numerics (kernels, attention, logits → tables) are `lmzip-engine`'s; this crate knows
//! no archive format and no coder beyond the [`Cdf`] a model fills.
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

mod adaptive;
pub mod cm;
pub mod gguf;
pub mod llama;
pub mod mix;
mod net;
pub mod registry;
pub mod transformer;
pub mod weights;

pub use cm::ContextMixing;
pub use llama::{LlamaModel, LlamaState};
use lmzip_coder::Cdf;
pub use lmzip_engine::Budget;
pub use lmzip_tokens::Tokenizer;
pub use mix::{Level, Mixed};
pub use net::NetState;
pub use registry::AnyModel;
pub use transformer::{TransformerModel, TransformerState};

/// Names a model, as recorded in an archive header.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ModelId {
    /// A short name, at most [`ModelId::MAX_NAME_LEN`] bytes of UTF-8.
    pub name: String,
    /// The SHA-256 of the model's weights file, or `None` for a model without weights.
    pub sha256: Option<[u8; 32]>,
    /// The SHA-256 of the model's tokenizer, for a token-level model.
    pub tokenizer_sha256: Option<[u8; 32]>,
    /// The solid-mode level ([`mix::Level`]) when the named model is mixed with adaptive models
    /// ([`Mixed`]); `None` when it codes alone.
    pub mixer: Option<u8>,
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
    /// Tokens of the model's [`Tokenizer`] (alphabet: its [`Tokenizer::symbols`]), each
    /// standing for one or more bytes.
    Tokens(usize),
}

impl Symbols {
    /// The alphabet size of one coding step.
    pub fn alphabet_size(self) -> usize {
        match self {
            Symbols::Bytes => 256,
            Symbols::Bits => 2,
            Symbols::Tokens(n) => n,
        }
    }

    /// Symbols per byte of input: 1 or 8, or `None` for tokens (their count depends on the
    /// bytes).
    pub fn per_byte(self) -> Option<usize> {
        match self {
            Symbols::Bytes => Some(1),
            Symbols::Bits => Some(8),
            Symbols::Tokens(_) => None,
        }
    }
}

/// The coding symbols of `bytes` under `symbols`, which must be [`Symbols::Bytes`] or
/// [`Symbols::Bits`] (tokens need the model's tokenizer: see [`to_symbols`]).
///
/// # Panics
/// On [`Symbols::Tokens`].
pub fn symbolize(symbols: Symbols, bytes: &[u8]) -> impl Iterator<Item = u32> + '_ {
    let per = symbols.per_byte().expect("symbolize: bytes or bits only");
    (0..bytes.len() * per).map(move |i| match symbols {
        Symbols::Bits => u32::from(bytes[i / 8] >> (7 - i % 8)) & 1,
        _ => u32::from(bytes[i]),
    })
}

/// The coding symbols of `bytes` for `model`: bytes, bits, or its tokenizer's tokens.
pub fn to_symbols<M: Model + ?Sized>(model: &M, bytes: &[u8]) -> Vec<u32> {
    match model.tokenizer() {
        Some(tokenizer) => tokenizer.encode(bytes),
        None => symbolize(model.symbols(), bytes).collect(),
    }
}

/// The bytes of `symbols` for `model`, or `None` for a token that is never coded.
pub fn from_symbols<M: Model>(model: &M, symbols: &[u32]) -> Option<Vec<u8>> {
    let mut assembler = Assembler::new(model);
    for &s in symbols {
        assembler.push(s).ok()?;
    }
    Some(assembler.into_bytes())
}

/// Rebuilds bytes from decoded symbols, one symbol at a time (the inverse of [`to_symbols`]).
#[derive(Debug)]
pub struct Assembler<'a> {
    symbols: Symbols,
    tokenizer: Option<&'a Tokenizer>,
    bytes: Vec<u8>,
    bits: u32,
    pending_bits: u32,
}

/// A decoded symbol that no encoder produces (a token that stands for no bytes).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct InvalidSymbol(pub u32);

impl<'a> Assembler<'a> {
    /// An empty assembler for `model`'s symbols.
    pub fn new<M: Model>(model: &'a M) -> Assembler<'a> {
        Assembler {
            symbols: model.symbols(),
            tokenizer: model.tokenizer(),
            bytes: Vec::new(),
            bits: 0,
            pending_bits: 0,
        }
    }

    /// Append one symbol.
    pub fn push(&mut self, symbol: u32) -> Result<(), InvalidSymbol> {
        match (self.symbols, self.tokenizer) {
            (Symbols::Bits, _) => {
                self.bits = (self.bits << 1) | (symbol & 1);
                self.pending_bits += 1;
                if self.pending_bits == 8 {
                    self.bytes.push(self.bits as u8);
                    (self.bits, self.pending_bits) = (0, 0);
                }
            }
            (Symbols::Tokens(_), Some(tokenizer)) => {
                let piece = tokenizer.piece(symbol);
                if piece.is_empty() {
                    return Err(InvalidSymbol(symbol));
                }
                self.bytes.extend_from_slice(piece);
            }
            _ => self.bytes.push(symbol as u8),
        }
        Ok(())
    }

    /// The whole bytes assembled so far.
    pub fn len(&self) -> usize {
        self.bytes.len()
    }

    /// Whether no whole byte is assembled yet.
    pub fn is_empty(&self) -> bool {
        self.bytes.is_empty()
    }

    /// The bytes assembled so far.
    pub fn bytes(&self) -> &[u8] {
        &self.bytes
    }

    /// The assembled bytes.
    pub fn into_bytes(self) -> Vec<u8> {
        self.bytes
    }
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

    /// The tokenizer, for a model whose symbols are [`Symbols::Tokens`].
    fn tokenizer(&self) -> Option<&Tokenizer> {
        None
    }

    /// The precision of the tables the model produces (their total is `2^precision`).
    fn precision(&self) -> u32;

    /// A state for a new chunk.
    fn new_state(&self) -> Self::State;

    /// About how many bytes of memory one state ([`Model::new_state`]) can take when fully
    /// used, so that a decoder can check its total against a limit before it makes states; 0
    /// (the default) for states of a few megabytes at most.
    fn state_bytes(&self) -> usize {
        0
    }

    /// Make `state` equal to [`Model::new_state`]'s result, reusing its allocations.
    fn reset(&self, state: &mut Self::State);

    /// The longest chunk, in bytes, the model can code (its context), if it has a limit.
    fn max_chunk_len(&self) -> Option<usize> {
        None
    }

    /// Called by the encoder after [`Model::reset`] with the coding symbols of the whole
    /// chunk it is about to code (from [`to_symbols`], computed once by the caller), so that
    /// the model may score every position at once (teacher forcing). Predictions after
    /// `prepare` must equal those without it: the decoder never calls it.
    fn prepare(&self, state: &mut Self::State, symbols: &[u32]) {
        let _ = (state, symbols);
    }

    /// The encoder's path through a whole chunk: from a reset `state`, call `visit` with each
    /// of `data`'s coding symbols and the table it is coded with, the same tables
    /// [`Model::predict`] gives a decoder. The model may take helper threads from `threads` (a
    /// matter of speed, never of results).
    ///
    /// By default: the symbols once ([`to_symbols`]), [`Model::prepare`], then predict, visit
    /// and observe each symbol. A model that codes a chunk more cheaply in one pass (the solid
    /// mixer) overrides it.
    fn code_chunk(
        &self,
        state: &mut Self::State,
        data: &[u8],
        threads: &Budget,
        visit: &mut dyn FnMut(u32, &Cdf),
    ) {
        let _ = threads;
        let symbols = to_symbols(self, data);
        self.reset(state);
        self.prepare(state, &symbols);
        let mut cdf = Cdf::uniform(self.precision(), self.symbols().alphabet_size())
            .expect("BUG: a model's precision fits its alphabet");
        for symbol in symbols {
            self.predict(state, &mut cdf);
            visit(symbol, &cdf);
            self.observe(state, symbol);
        }
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

    /// The numerics version ([`lmzip_engine::NUMERICS_VERSION`]) whose predictions this model
    /// computes, when its predictions differ between versions; `None` (the default) when they
    /// are the same under every version this build supports.
    fn numerics(&self) -> Option<u16> {
        None
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
    fn tokenizer(&self) -> Option<&Tokenizer> {
        (**self).tokenizer()
    }
    fn precision(&self) -> u32 {
        (**self).precision()
    }
    fn new_state(&self) -> Self::State {
        (**self).new_state()
    }
    fn state_bytes(&self) -> usize {
        (**self).state_bytes()
    }
    fn reset(&self, state: &mut Self::State) {
        (**self).reset(state)
    }
    fn max_chunk_len(&self) -> Option<usize> {
        (**self).max_chunk_len()
    }
    fn prepare(&self, state: &mut Self::State, symbols: &[u32]) {
        (**self).prepare(state, symbols)
    }
    fn code_chunk(
        &self,
        state: &mut Self::State,
        data: &[u8],
        threads: &Budget,
        visit: &mut dyn FnMut(u32, &Cdf),
    ) {
        (**self).code_chunk(state, data, threads, visit)
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
    fn numerics(&self) -> Option<u16> {
        (**self).numerics()
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
        _assert_send_sync::<LlamaModel>();
    }
}
