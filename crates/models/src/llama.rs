//! A pretrained Llama-family LLM from `lmzip-engine` as a token-level [`Model`].
//!
//! Each chunk is cut into tokens by the model's [`Tokenizer`] (losslessly, see `lmzip-tokens`)
//! and coded over the whole vocabulary: every token gets an exact integer frequency of at least
//! 1 (no top-k truncation), so any token the tokenizer produces can be coded. The sequence
//! starts from the model's start token (BOS, or EOS for models without one). As for the byte
//! Transformer, the encoder scores a chunk at once and the decoder steps with a key/value cache;
//! the engine makes both bit-identical.

use crate::{Model, ModelId, Symbols};
use lmzip_coder::Cdf;
use lmzip_engine::Cache;
use lmzip_engine::gguf::{self, Gguf, Value};
use lmzip_engine::llama::{Llama, LlamaScratch};
use lmzip_engine::quantize::{FREQUENCY_BITS, frequencies};
use lmzip_tokens::Tokenizer;
use std::path::Path;

/// The logit given to escape symbols (bytes the vocabulary has no token for): the coder's
/// floor frequency of 1.
const ESCAPE_LOGIT: f32 = -1e30;

/// A Llama-family network with its tokenizer and the identity an archive records.
#[derive(Debug)]
pub struct LlamaModel {
    name: String,
    sha256: [u8; 32],
    net: Llama,
    tokenizer: Tokenizer,
    start: u32,
    context: usize,
}

/// Per-chunk state of a [`LlamaModel`].
#[derive(Debug, Default)]
pub struct LlamaState {
    /// Tokens observed so far.
    pos: usize,
    /// The input the next prediction consumes: the start token, then the last token.
    pending: u32,
    /// Teacher-forced logits of the whole chunk, when the encoder prepared it.
    prepared: Option<Vec<f32>>,
    cache: Option<Cache>,
    scratch: LlamaScratch,
    logits: Vec<f32>,
    freqs: Vec<u32>,
    row: Vec<f32>,
}

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
        Ok(LlamaModel {
            name: name.into(),
            sha256,
            net,
            tokenizer,
            start,
            context,
        })
    }

    /// Load a local LLM, named after its file or directory: a GGUF file (`.gguf`, vocabulary
    /// embedded) or a Hugging Face directory with `config.json`, `model.safetensors` and
    /// `tokenizer.json`.
    pub fn load(path: &Path) -> Result<LlamaModel, String> {
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
            let (net, sha256) = Llama::load(path).map_err(|e| e.to_string())?;
            let json_path = path.join("tokenizer.json");
            let json = std::fs::read(&json_path).map_err(|e| context(&e))?;
            let vocab = net.config().vocab_size;
            let tokenizer = Tokenizer::from_json(&json, Some(vocab)).map_err(|e| context(&e))?;
            return LlamaModel::new(name, sha256, net, tokenizer).map_err(|e| context(&e));
        }
        let loaded = gguf::load_llama(path).map_err(|e| e.to_string())?;
        let tokenizer = gguf_tokenizer(&loaded.gguf, loaded.llama.config().vocab_size)
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

    /// The input token for a coded symbol: escapes (past the model's vocabulary) enter as the
    /// start token.
    fn input(&self, symbol: u32) -> u32 {
        if (symbol as usize) < self.tokenizer.model_vocab() {
            symbol
        } else {
            self.start
        }
    }

    fn fill(&self, logits: &[f32], row: &mut Vec<f32>, freqs: &mut Vec<u32>, cdf: &mut Cdf) {
        let symbols = self.tokenizer.symbols();
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

/// The tokenizer a GGUF file embeds (`tokenizer.ggml.*`).
fn gguf_tokenizer(file: &Gguf, model_vocab: usize) -> Result<Tokenizer, String> {
    let array = |key: &str| {
        file.get(&format!("tokenizer.ggml.{key}"))
            .and_then(Value::as_array)
            .unwrap_or(&[])
    };
    let strings = |key: &str| -> Vec<String> {
        array(key)
            .iter()
            .map(|v| v.as_str().unwrap_or("").to_string())
            .collect()
    };
    let kind = file
        .get("tokenizer.ggml.model")
        .and_then(Value::as_str)
        .ok_or("the GGUF file embeds no tokenizer (tokenizer.ggml.model)")?;
    let tokens = strings("tokens");
    let types: Vec<i64> = array("token_type")
        .iter()
        .map(|v| v.as_f64().unwrap_or(1.0) as i64)
        .collect();
    let scores: Vec<f64> = array("scores")
        .iter()
        .map(|v| v.as_f64().unwrap_or(0.0))
        .collect();
    Tokenizer::from_gguf_vocabulary(
        kind,
        &tokens,
        &types,
        &scores,
        &strings("merges"),
        model_vocab,
    )
    .map_err(|e| e.to_string())
}

impl Model for LlamaModel {
    type State = LlamaState;

    fn id(&self) -> ModelId {
        ModelId {
            name: self.name.clone(),
            sha256: Some(self.sha256),
            tokenizer_sha256: Some(self.tokenizer.sha256()),
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
        LlamaState {
            pending: self.start,
            ..LlamaState::default()
        }
    }

    fn reset(&self, state: &mut LlamaState) {
        state.pos = 0;
        state.pending = self.start;
        state.prepared = None;
        if let Some(cache) = &mut state.cache {
            cache.clear();
        }
    }

    fn prepare(&self, state: &mut LlamaState, chunk: &[u8]) {
        let tokens = self.tokenizer.encode(chunk);
        let inputs: Vec<u32> = std::iter::once(self.start)
            .chain(tokens.iter().map(|&t| self.input(t)))
            .take(tokens.len())
            .collect();
        let vocab = self.net.config().vocab_size;
        let mut logits = state.prepared.take().unwrap_or_default();
        logits.resize(inputs.len() * vocab, 0.0);
        self.net.forward(&inputs, &mut logits, &mut state.scratch);
        state.prepared = Some(logits);
    }

    fn predict(&self, state: &mut LlamaState, cdf: &mut Cdf) {
        if let Some(prepared) = &state.prepared {
            let vocab = self.net.config().vocab_size;
            let row = &prepared[state.pos * vocab..(state.pos + 1) * vocab];
            self.fill(row, &mut state.row, &mut state.freqs, cdf);
            return;
        }
        self.predict_batch(std::slice::from_mut(state), std::slice::from_mut(cdf));
    }

    fn observe(&self, state: &mut LlamaState, symbol: u32) {
        state.pos += 1;
        state.pending = self.input(symbol);
    }

    /// A decode step reads every weight once for all chunks of the batch: the more chunks, the
    /// less weight traffic per token.
    fn lockstep_chunks(&self) -> usize {
        8
    }

    fn predict_batch(&self, states: &mut [LlamaState], cdfs: &mut [Cdf]) {
        if states.iter().any(|s| s.prepared.is_some()) {
            for (state, cdf) in states.iter_mut().zip(cdfs.iter_mut()) {
                self.predict(state, cdf);
            }
            return;
        }
        let Some(first) = states.first_mut() else {
            return;
        };
        let vocab = self.net.config().vocab_size;
        let mut scratch = std::mem::take(&mut first.scratch);
        let mut logits = std::mem::take(&mut first.logits);
        logits.resize(states.len() * vocab, 0.0);
        let tokens: Vec<u32> = states.iter().map(|s| s.pending).collect();
        for state in states.iter_mut() {
            if state.cache.is_none() {
                state.cache = Some(self.net.new_cache_with(self.context));
            }
        }
        let mut caches: Vec<&mut Cache> = states
            .iter_mut()
            .map(|s| s.cache.as_mut().expect("made above"))
            .collect();
        self.net
            .step(&mut caches, &tokens, &mut logits, &mut scratch);
        for ((state, cdf), row) in states
            .iter_mut()
            .zip(cdfs.iter_mut())
            .zip(logits.chunks_exact(vocab))
        {
            self.fill(row, &mut state.row, &mut state.freqs, cdf);
        }
        states[0].scratch = scratch;
        states[0].logits = logits;
    }
}
