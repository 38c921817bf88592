//! Pretrained Llama-family LLMs as token-level [`Model`]s.
//!
//! Read top-down: [`config`] (the fields of a Hugging Face `config.json`), [`file`](mod@file) (a Hugging
//! Face directory's safetensors, seeded random directories), [`gguf`] (llama.cpp's files and
//! their embedded vocabulary), [`network`] (the forward passes on the engine's kernels), and
//! here the [`Model`] implementation.
//!
//! Each chunk is cut into tokens by the model's [`Tokenizer`] (losslessly, see `lmzip-tokens`)
//! and coded over the whole vocabulary: every token gets an exact integer frequency of at least
//! 1 (no top-k truncation), so any token the tokenizer produces can be coded. The sequence
//! starts from the model's start token (BOS, or EOS for models without one). As for the byte
//! Transformer, the encoder scores a chunk at once and the decoder steps with a key/value cache;
//! the engine makes both bit-identical.

pub mod config;
pub mod file;
pub mod gguf;
pub mod network;

pub use config::LlamaConfig;
pub use network::{Llama, LlamaScratch};

use crate::net::{self, NetState, Network, TableBuffers};
use crate::{Model, ModelId, Symbols};
use lmzip_coder::Cdf;
use lmzip_engine::Cache;
use lmzip_engine::quantize::{FREQUENCY_BITS, frequencies};
use lmzip_tokens::Tokenizer;
use std::path::{Path, PathBuf};

/// The largest `tokenizer.json` read.
const MAX_TOKENIZER_BYTES: u64 = 256 << 20;

/// The logit given to escape symbols (bytes the vocabulary has no token for): the coder's
/// floor frequency of 1.
const ESCAPE_LOGIT: f32 = -1e30;

/// The first numerics version whose LLMs multiply int8 weights ([`Llama::into_int8`]); under
/// earlier versions their weights are `f32`.
pub const INT8_NUMERICS: u16 = 5;

/// A Llama-family network with its tokenizer and the identity an archive records.
#[derive(Debug)]
pub struct LlamaModel {
    name: String,
    sha256: [u8; 32],
    net: Llama,
    tokenizer: Tokenizer,
    start: u32,
    context: usize,
    /// The numerics version the model computes: [`INT8_NUMERICS`] or later with int8 weights,
    /// earlier with `f32` ones.
    numerics: u16,
    /// The file or directory the model was loaded from, to load it again with the other
    /// weight storage when an archive asks for it ([`LlamaModel::for_numerics`]).
    source: Option<PathBuf>,
}

/// Per-chunk state of a [`LlamaModel`].
pub type LlamaState = NetState<LlamaScratch>;

impl LlamaModel {
    /// The longest context used by default (bytes per chunk and key/value cache positions): a
    /// model trained for 128K positions would otherwise allocate its whole cache per chunk.
    pub const DEFAULT_CONTEXT: usize = 4096;

    /// Wrap a network and its tokenizer under `name` (at most [`ModelId::MAX_NAME_LEN`] bytes);
    /// `sha256` identifies the weights. The tokenizer must be built for the network's
    /// vocabulary size, and the config must name a start token.
    pub fn new(
        name: &str,
        sha256: [u8; 32],
        net: Llama,
        tokenizer: Tokenizer,
    ) -> Result<LlamaModel, String> {
        if name.is_empty() || name.len() > ModelId::MAX_NAME_LEN {
            return Err(format!("the model name '{name}' is empty or over 64 bytes"));
        }
        let config = net.config();
        if tokenizer.model_vocab() != config.vocab_size {
            return Err(format!(
                "the tokenizer is built for {} tokens, the model has {}",
                tokenizer.model_vocab(),
                config.vocab_size
            ));
        }
        let start = config
            .start_token()
            .ok_or("config.json names no bos_token_id or eos_token_id in the vocabulary")?;
        let context = config.max_position_embeddings.min(Self::DEFAULT_CONTEXT);
        let numerics = if net.is_int8() {
            lmzip_engine::NUMERICS_VERSION
        } else {
            INT8_NUMERICS - 1
        };
        Ok(LlamaModel {
            name: name.into(),
            sha256,
            net,
            tokenizer,
            start,
            context,
            numerics,
            source: None,
        })
    }

    /// Load a local LLM, named after its file or directory: a GGUF file (`.gguf`, vocabulary
    /// embedded) or a Hugging Face directory with `config.json`, `model.safetensors` and
    /// `tokenizer.json`. It computes the newest numerics version: int8 weights.
    pub fn load(path: &Path) -> Result<LlamaModel, String> {
        Self::load_for(path, lmzip_engine::NUMERICS_VERSION)
    }

    /// The model computing numerics `version`, as an archive written under it needs: int8
    /// weights from [`INT8_NUMERICS`] on, `f32` before (loaded again from its file when it was
    /// loaded in the other storage); `None` for a version this build does not compute, or for
    /// a model built in memory that would need its weights in the other storage.
    pub fn for_numerics(mut self, version: u16) -> Option<LlamaModel> {
        let range = lmzip_engine::OLDEST_NUMERICS_VERSION..=lmzip_engine::NUMERICS_VERSION;
        if !range.contains(&version) {
            return None;
        }
        if (version >= INT8_NUMERICS) != self.net.is_int8() {
            let source = self.source.take()?;
            let context = self.context;
            return Self::load_for(&source, version)
                .ok()
                .map(|m| m.with_context(context));
        }
        self.numerics = version;
        Some(self)
    }

    /// [`LlamaModel::load`] for numerics `version`.
    fn load_for(path: &Path, version: u16) -> Result<LlamaModel, String> {
        let mut model = Self::load_f32(path)?;
        if version >= INT8_NUMERICS {
            model.net = model.net.into_int8();
        }
        model.numerics = version;
        model.source = Some(path.to_path_buf());
        Ok(model)
    }

    /// The model as its file gives it, with `f32` weights.
    fn load_f32(path: &Path) -> Result<LlamaModel, String> {
        let name = path
            .canonicalize()
            .ok()
            .and_then(|p| p.file_name().map(|n| n.to_string_lossy().into_owned()))
            .unwrap_or_else(|| path.display().to_string());
        let mut cut = name.len().min(ModelId::MAX_NAME_LEN);
        while !name.is_char_boundary(cut) {
            cut -= 1;
        }
        let name = &name[..cut];
        let context = |e: &dyn std::fmt::Display| format!("{}: {e}", path.display());
        if path.is_dir() {
            let (net, sha256) = file::load(path).map_err(|e| e.to_string())?;
            let json_path = path.join("tokenizer.json");
            let json = crate::weights::read_limited(&json_path, MAX_TOKENIZER_BYTES)
                .map_err(|e| e.to_string())?;
            let vocab = net.config().vocab_size;
            let tokenizer = Tokenizer::from_json(&json, Some(vocab)).map_err(|e| context(&e))?;
            return LlamaModel::new(name, sha256, net, tokenizer).map_err(|e| context(&e));
        }
        let loaded = gguf::load_llama(path).map_err(|e| e.to_string())?;
        let tokenizer = gguf::tokenizer(&loaded.gguf, loaded.llama.config().vocab_size)
            .map_err(|e| context(&e))?;
        LlamaModel::new(name, loaded.sha256, loaded.llama, tokenizer).map_err(|e| context(&e))
    }

    /// The same model with a context (longest chunk, cache positions) of `context`, at most the
    /// model's `max_position_embeddings`.
    pub fn with_context(mut self, context: usize) -> LlamaModel {
        self.context = context.clamp(1, self.net.config().max_position_embeddings);
        self
    }

    /// The network.
    pub fn network(&self) -> &Llama {
        &self.net
    }

    /// A logits row to the coder's table, escapes (past the vocabulary) at the floor.
    fn fill(&self, logits: &[f32], buffers: &mut TableBuffers, cdf: &mut Cdf) {
        let symbols = self.tokenizer.symbols();
        let TableBuffers { freqs, row } = buffers;
        let logits = if symbols > logits.len() {
            row.clear();
            row.extend_from_slice(logits);
            row.resize(symbols, ESCAPE_LOGIT);
            &row[..]
        } else {
            logits
        };
        freqs.resize(symbols, 0);
        frequencies(logits, freqs);
        cdf.set_frequencies(FREQUENCY_BITS, freqs)
            .expect("BUG: quantized tables are valid");
    }
}

impl Model for LlamaModel {
    type State = LlamaState;

    fn id(&self) -> ModelId {
        ModelId {
            name: self.name.clone(),
            sha256: Some(self.sha256),
            tokenizer_sha256: Some(self.tokenizer.sha256()),
            mixer: None,
        }
    }

    fn symbols(&self) -> Symbols {
        Symbols::Tokens(self.tokenizer.symbols())
    }

    fn tokenizer(&self) -> Option<&Tokenizer> {
        Some(&self.tokenizer)
    }

    fn precision(&self) -> u32 {
        FREQUENCY_BITS
    }

    /// Every token stands for at least one byte, so a chunk of `context` bytes has at most
    /// `context` tokens: the start token and all but the last fill the context.
    fn max_chunk_len(&self) -> Option<usize> {
        Some(self.context)
    }

    fn new_state(&self) -> LlamaState {
        NetState::new(self)
    }

    fn reset(&self, state: &mut LlamaState) {
        net::reset(self, state)
    }

    fn prepare(&self, state: &mut LlamaState, symbols: &[u32]) {
        net::prepare(self, state, symbols)
    }

    fn predict(&self, state: &mut LlamaState, cdf: &mut Cdf) {
        self.predict_batch(std::slice::from_mut(state), std::slice::from_mut(cdf));
    }

    fn observe(&self, state: &mut LlamaState, symbol: u32) {
        net::observe(self, state, symbol)
    }

    /// A decode step reads every weight once for all chunks of the batch: the more chunks, the
    /// less weight traffic per token.
    fn lockstep_chunks(&self) -> usize {
        8
    }

    fn numerics(&self) -> Option<u16> {
        Some(self.numerics)
    }

    fn predict_batch(&self, states: &mut [LlamaState], cdfs: &mut [Cdf]) {
        net::predict_batch(self, states, cdfs, &|logits, buffers, cdf| {
            self.fill(logits, buffers, cdf)
        })
    }
}

impl Network for LlamaModel {
    type Scratch = LlamaScratch;

    fn vocab(&self) -> usize {
        self.net.config().vocab_size
    }

    fn start(&self) -> u32 {
        self.start
    }

    /// Escapes (past the model's vocabulary) enter as the start token.
    fn input(&self, symbol: u32) -> u32 {
        if (symbol as usize) < self.tokenizer.model_vocab() {
            symbol
        } else {
            self.start
        }
    }

    fn new_cache(&self) -> Cache {
        self.net.new_cache_with(self.context)
    }

    fn forward(&self, inputs: &[u32], logits: &mut [f32], scratch: &mut LlamaScratch) {
        self.net.forward(inputs, logits, scratch)
    }

    fn step(
        &self,
        caches: &mut [&mut Cache],
        inputs: &[u32],
        logits: &mut [f32],
        s: &mut LlamaScratch,
    ) {
        self.net.step(caches, inputs, logits, s)
    }
}
