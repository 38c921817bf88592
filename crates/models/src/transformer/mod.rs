//! The byte-level decoder-only Transformer of the paper, as a [`Model`].
//!
//! Read top-down: [`config`] (the shape in `config.json`), [`file`](mod@file) (the model directory:
//! `config.json` + `model.safetensors`, the identity hash, seeded random weights), [`network`]
//! (the forward passes on the engine's kernels), and here the [`Model`] implementation: the
//! encoder scores a whole chunk at once ([`Model::prepare`], teacher forcing); the decoder
//! advances one byte at a time with a key/value cache, many chunks per step
//! ([`Model::predict_batch`]). The network guarantees both give bit-identical logits, and
//! [`lmzip_engine::quantize::frequencies`] turns logits into the coder's table.

pub mod config;
pub mod file;
pub mod network;

pub use config::{BOS, Config, Norm};
pub use network::{Profile, Scratch, Transformer, WeightStorage, Weights};

use crate::net::{self, NetState, Network, TableBuffers};
use crate::{Model, ModelId, Symbols};
use config::OUTPUT_VOCAB;
use lmzip_coder::Cdf;
use lmzip_engine::quantize::{FREQUENCY_BITS, frequencies};
use lmzip_engine::{Cache, NUMERICS_VERSION, OLDEST_NUMERICS_VERSION};
use std::path::Path;

/// The attention window of numerics version 2 and later: each byte's prediction sees the start
/// token and the last 256 positions (itself included).
pub const ATTENTION_WINDOW: usize = 256;

/// How a byte Transformer computes under one numerics version.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Arithmetic {
    /// The attention window ([`Transformer::with_window`]); `usize::MAX` for none.
    pub window: usize,
    /// How the matrix weights are stored, and so how products compute
    /// ([`Transformer::with_weight_storage`]).
    pub weights: WeightStorage,
    /// Whether keys and values are kept in bfloat16 ([`Transformer::with_bf16_cache`]).
    pub bf16_cache: bool,
}

/// What numerics `version` ([`NUMERICS_VERSION`]) asks of a byte Transformer: in version 1,
/// attention to every position, `f32` weights and caches; in versions 2 and 3, the
/// [`ATTENTION_WINDOW`], bfloat16 matrix weights and bfloat16 keys and values (version 3 changes
/// only solid mode's mixer, not the network); from version 4, int8 matrix weights and integer
/// products ([`lmzip_engine::int8`]), the window and bfloat16 keys and values as in 2. `None`
/// for a version this build does not know.
pub fn arithmetic_for(version: u16) -> Option<Arithmetic> {
    let windowed = |weights| Arithmetic {
        window: ATTENTION_WINDOW,
        weights,
        bf16_cache: true,
    };
    match version {
        1 => Some(Arithmetic {
            window: usize::MAX,
            weights: WeightStorage::F32,
            bf16_cache: false,
        }),
        2 | 3 => Some(windowed(WeightStorage::Bf16)),
        4 | 5 => Some(windowed(WeightStorage::Int8)),
        _ => None,
    }
}

/// A Transformer with the name and hash an archive records.
#[derive(Debug, Clone)]
pub struct TransformerModel {
    name: String,
    sha256: [u8; 32],
    net: Transformer,
    numerics: u16,
}

/// Per-chunk state of a [`TransformerModel`].
pub type TransformerState = NetState<Scratch>;

/// The network inputs of a chunk: [`BOS`], then its bytes but the last.
pub fn chunk_inputs(chunk: &[u8]) -> Vec<u32> {
    let bytes: Vec<u32> = chunk.iter().map(|&b| u32::from(b)).collect();
    net::chunk_inputs(BOS, &bytes, |b| b)
}

/// Input `pos` of each chunk, for one lockstep [`Transformer::step`]: [`BOS`] at position 0,
/// then the byte before `pos`.
pub fn inputs_at<C: AsRef<[u8]>>(chunks: &[C], pos: usize) -> Vec<u32> {
    chunks
        .iter()
        .map(|c| match pos {
            0 => BOS,
            _ => u32::from(c.as_ref()[pos - 1]),
        })
        .collect()
}

impl TransformerModel {
    /// Wrap a loaded network under `name` (at most [`ModelId::MAX_NAME_LEN`] bytes), to run
    /// under this build's [`NUMERICS_VERSION`].
    pub fn new(name: &str, sha256: [u8; 32], net: Transformer) -> TransformerModel {
        assert!(name.len() <= ModelId::MAX_NAME_LEN, "model name too long");
        let model = TransformerModel {
            name: name.into(),
            sha256,
            net,
            numerics: NUMERICS_VERSION,
        };
        model
            .for_numerics(NUMERICS_VERSION)
            .expect("BUG: the current numerics version is known")
    }

    /// The same model computing the predictions of numerics `version` (to decode an archive
    /// written under it), or `None` when this build does not support that version.
    pub fn for_numerics(mut self, version: u16) -> Option<TransformerModel> {
        if !(OLDEST_NUMERICS_VERSION..=NUMERICS_VERSION).contains(&version) {
            return None;
        }
        let arithmetic = arithmetic_for(version)?;
        self.net.set_window(arithmetic.window);
        self.net.set_weight_storage(arithmetic.weights);
        self.net.set_bf16_cache(arithmetic.bf16_cache);
        self.numerics = version;
        Some(self)
    }

    /// Load the model directory `dir` (see [`file`](mod@file)) under `name`.
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

    /// The same model with another attention window (see [`Transformer::with_window`]), for
    /// experiments: an archive records only the numerics version, so what this model codes
    /// decodes only with the same window.
    pub fn with_attention_window(mut self, window: usize) -> TransformerModel {
        self.net.set_window(window);
        self
    }

    /// The network.
    pub fn network(&self) -> &Transformer {
        &self.net
    }
}

/// A logits row to the coder's table.
fn fill(logits: &[f32], buffers: &mut TableBuffers, cdf: &mut Cdf) {
    buffers.freqs.resize(OUTPUT_VOCAB, 0);
    frequencies(logits, &mut buffers.freqs);
    cdf.set_frequencies(FREQUENCY_BITS, &buffers.freqs)
        .expect("BUG: quantized tables are valid");
}

impl Network for TransformerModel {
    type Scratch = Scratch;

    fn vocab(&self) -> usize {
        OUTPUT_VOCAB
    }

    fn start(&self) -> u32 {
        BOS
    }

    fn new_cache(&self) -> Cache {
        self.net.new_cache()
    }

    fn forward(&self, inputs: &[u32], logits: &mut [f32], scratch: &mut Scratch) {
        self.net.forward(inputs, logits, scratch)
    }

    fn step(&self, caches: &mut [&mut Cache], inputs: &[u32], logits: &mut [f32], s: &mut Scratch) {
        self.net.step(caches, inputs, logits, s)
    }
}

impl Model for TransformerModel {
    type State = TransformerState;

    fn id(&self) -> ModelId {
        ModelId {
            name: self.name.clone(),
            sha256: Some(self.sha256),
            tokenizer_sha256: None,
            mixer: None,
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
        NetState::new(self)
    }

    fn reset(&self, state: &mut TransformerState) {
        net::reset(self, state)
    }

    fn prepare(&self, state: &mut TransformerState, symbols: &[u32]) {
        net::prepare(self, state, symbols)
    }

    fn predict(&self, state: &mut TransformerState, cdf: &mut Cdf) {
        self.predict_batch(std::slice::from_mut(state), std::slice::from_mut(cdf));
    }

    fn observe(&self, state: &mut TransformerState, symbol: u32) {
        net::observe(self, state, symbol)
    }

    /// Lockstep decoding shares each weight read among the chunks of a step, but every chunk
    /// reads its own key/value cache (the positions its attention window sees): as many chunks
    /// as keep what they read within about 12 MB (a share of a typical L3 cache), or 8 when
    /// even one is larger and weight reuse is all there is to gain.
    fn lockstep_chunks(&self) -> usize {
        let c = self.net.config();
        let seen = c.context.min(self.net.window());
        let cache_bytes = 2 * c.n_layers * c.d_model * seen * 4;
        match (12usize << 20) / cache_bytes.max(1) {
            0 => 8,
            n => n.min(8),
        }
    }

    fn predict_batch(&self, states: &mut [TransformerState], cdfs: &mut [Cdf]) {
        net::predict_batch(self, states, cdfs, &fill)
    }

    fn numerics(&self) -> Option<u16> {
        Some(self.numerics)
    }
}
