//! A byte-level Transformer from `lmzip-engine` as a [`Model`].
//!
//! The encoder scores a whole chunk at once ([`Model::prepare`], teacher forcing); the decoder
//! advances one byte at a time with a key/value cache, many chunks per step
//! ([`Model::predict_batch`]). The engine guarantees both give bit-identical logits, and
//! [`lmzip_engine::quantize::frequencies`] turns logits into the coder's table.

use crate::{Model, ModelId, Symbols};
use lmzip_coder::Cdf;
use lmzip_engine::config::OUTPUT_VOCAB;
use lmzip_engine::quantize::{FREQUENCY_BITS, frequencies};
use lmzip_engine::{BOS, Cache, Scratch, Transformer, file};
use std::path::Path;

/// A Transformer with the name and hash an archive records.
#[derive(Debug, Clone)]
pub struct TransformerModel {
    name: String,
    sha256: [u8; 32],
    net: Transformer,
}

/// Per-chunk state of a [`TransformerModel`].
#[derive(Debug, Default)]
pub struct TransformerState {
    /// Bytes observed so far.
    pos: usize,
    /// The input the next prediction consumes: [`BOS`], then the last observed byte.
    pending: u32,
    /// Teacher-forced logits of the whole chunk, when the encoder prepared it.
    prepared: Option<Vec<f32>>,
    /// The incremental path's cache, made on first use.
    cache: Option<Cache>,
    scratch: Scratch,
    logits: Vec<f32>,
    freqs: Vec<u32>,
}

impl TransformerModel {
    /// Wrap a loaded network under `name` (at most [`ModelId::MAX_NAME_LEN`] bytes).
    pub fn new(name: &str, sha256: [u8; 32], net: Transformer) -> TransformerModel {
        assert!(name.len() <= ModelId::MAX_NAME_LEN, "model name too long");
        TransformerModel {
            name: name.into(),
            sha256,
            net,
        }
    }

    /// Load the model directory `dir` (see [`lmzip_engine::file`]) under `name`.
    pub fn load(dir: &Path, name: &str) -> Result<TransformerModel, file::Error> {
        if name.is_empty() || name.len() > ModelId::MAX_NAME_LEN {
            return Err(file::Error::Invalid(
                dir.into(),
                format!("the name '{name}' is empty or over 64 bytes"),
            ));
        }
        let loaded = file::load(dir)?;
        Ok(TransformerModel::new(
            name,
            loaded.sha256,
            loaded.transformer,
        ))
    }

    /// The network.
    pub fn network(&self) -> &Transformer {
        &self.net
    }

    fn fill(&self, logits: &[f32], freqs: &mut Vec<u32>, cdf: &mut Cdf) {
        freqs.resize(OUTPUT_VOCAB, 0);
        frequencies(logits, freqs);
        cdf.set_frequencies(FREQUENCY_BITS, freqs)
            .expect("BUG: quantized tables are valid");
    }
}

impl Model for TransformerModel {
    type State = TransformerState;

    fn id(&self) -> ModelId {
        ModelId {
            name: self.name.clone(),
            sha256: Some(self.sha256),
            tokenizer_sha256: None,
        }
    }

    fn symbols(&self) -> Symbols {
        Symbols::Bytes
    }

    fn precision(&self) -> u32 {
        FREQUENCY_BITS
    }

    fn max_chunk_len(&self) -> Option<usize> {
        Some(self.net.config().context)
    }

    fn new_state(&self) -> TransformerState {
        TransformerState {
            pending: BOS,
            ..TransformerState::default()
        }
    }

    fn reset(&self, state: &mut TransformerState) {
        state.pos = 0;
        state.pending = BOS;
        state.prepared = None;
        if let Some(cache) = &mut state.cache {
            cache.clear();
        }
    }

    fn prepare(&self, state: &mut TransformerState, chunk: &[u8]) {
        let mut logits = state.prepared.take().unwrap_or_default();
        logits.resize(chunk.len() * OUTPUT_VOCAB, 0.0);
        self.net.forward(chunk, &mut logits, &mut state.scratch);
        state.prepared = Some(logits);
    }

    fn predict(&self, state: &mut TransformerState, cdf: &mut Cdf) {
        if let Some(prepared) = &state.prepared {
            let row = &prepared[state.pos * OUTPUT_VOCAB..(state.pos + 1) * OUTPUT_VOCAB];
            self.fill(row, &mut state.freqs, cdf);
            return;
        }
        self.predict_batch(std::slice::from_mut(state), std::slice::from_mut(cdf));
    }

    fn observe(&self, state: &mut TransformerState, symbol: u32) {
        state.pos += 1;
        state.pending = symbol;
    }

    /// Lockstep decoding shares each weight read among the chunks of a step, but every chunk
    /// reads its own key/value cache: as many chunks as keep their caches within about 12 MB
    /// (a share of a typical L3 cache), or 8 when even one cache is larger and weight reuse is
    /// all there is to gain. Measured on a 2-core AMD EPYC: 200K best at 2–3, 800K at 1, 3.2M
    /// at 8.
    fn lockstep_chunks(&self) -> usize {
        let c = self.net.config();
        let cache_bytes = 2 * c.n_layers * c.d_model * c.context * 4;
        match (12usize << 20) / cache_bytes.max(1) {
            0 => 8,
            n => n.min(8),
        }
    }

    fn predict_batch(&self, states: &mut [TransformerState], cdfs: &mut [Cdf]) {
        if states.iter().any(|s| s.prepared.is_some()) {
            for (state, cdf) in states.iter_mut().zip(cdfs.iter_mut()) {
                self.predict(state, cdf);
            }
            return;
        }
        let Some(first) = states.first_mut() else {
            return;
        };
        let mut scratch = std::mem::take(&mut first.scratch);
        let mut logits = std::mem::take(&mut first.logits);
        logits.resize(states.len() * OUTPUT_VOCAB, 0.0);
        let tokens: Vec<u32> = states.iter().map(|s| s.pending).collect();
        for state in states.iter_mut() {
            if state.cache.is_none() {
                state.cache = Some(self.net.new_cache());
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
            .zip(logits.chunks_exact(OUTPUT_VOCAB))
        {
            self.fill(row, &mut state.freqs, cdf);
        }
        states[0].scratch = scratch;
        states[0].logits = logits;
    }
}
