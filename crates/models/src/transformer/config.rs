//! A byte Transformer's shape, as stored in a model's `config.json`.

use serde::{Deserialize, Serialize};

/// The value of [`Config::architecture`] this engine runs.
pub const ARCHITECTURE: &str = "lmzip-byte-transformer";
/// Input symbols: the 256 byte values and the beginning-of-chunk token.
pub const INPUT_VOCAB: usize = 257;
/// The beginning-of-chunk token, the first input of every chunk.
pub const BOS: u32 = 256;
/// Output symbols: the 256 byte values.
pub const OUTPUT_VOCAB: usize = 256;
/// The largest width, depth, head count and context a config may ask for (guards memory).
const MAX_DIM: usize = 1 << 14;
const MAX_LAYERS: usize = 256;
const MAX_CONTEXT: usize = 1 << 16;

/// Where the layer normalization sits.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Norm {
    /// `x + f(LN(x))` per sublayer and a final LN before the head (the default).
    Pre,
    /// `LN(x + f(x))` per sublayer and no final LN, as the paper's code.
    Post,
}

/// The architecture and sizes of a byte-level decoder-only Transformer.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// Always [`ARCHITECTURE`].
    pub architecture: String,
    /// Model width.
    pub d_model: usize,
    /// Number of Transformer blocks.
    pub n_layers: usize,
    /// Attention heads per block; `d_model / n_heads` must be even.
    pub n_heads: usize,
    /// Width of the MLP's hidden layer (4 × `d_model` in the presets).
    pub d_ff: usize,
    /// The longest chunk the model codes, in bytes.
    pub context: usize,
    /// Pre- or post-LN blocks.
    pub norm: Norm,
    /// The layer normalization's epsilon.
    pub norm_eps: f32,
    /// The base of the rotary position frequencies.
    pub rope_theta: f64,
    /// The preprocessing the model was trained for, e.g. `"text+images+audio8"` (informative).
    #[serde(default)]
    pub trained_on: String,
}

impl Config {
    /// A pre-LN config of the given sizes with `d_ff = 4 d_model`, theta 10000, eps 1e-5.
    pub fn new(d_model: usize, n_layers: usize, n_heads: usize, context: usize) -> Config {
        Config {
            architecture: ARCHITECTURE.into(),
            d_model,
            n_layers,
            n_heads,
            d_ff: 4 * d_model,
            context,
            norm: Norm::Pre,
            norm_eps: 1e-5,
            rope_theta: 10_000.0,
            trained_on: String::new(),
        }
    }

    /// The paper's sizes (4 layers, context 2048): `"200k"` (width 64, 4 heads), `"800k"` (128,
    /// 4) and `"3.2m"` (256, 8).
    pub fn preset(name: &str) -> Option<Config> {
        match name.to_ascii_lowercase().as_str() {
            "200k" => Some(Config::new(64, 4, 4, 2048)),
            "800k" => Some(Config::new(128, 4, 4, 2048)),
            "3.2m" => Some(Config::new(256, 4, 8, 2048)),
            _ => None,
        }
    }

    /// The preset names [`Config::preset`] knows.
    pub const PRESETS: [&'static str; 3] = ["200k", "800k", "3.2m"];

    /// Width of one attention head.
    pub fn head_dim(&self) -> usize {
        self.d_model / self.n_heads
    }

    /// The number of weights.
    pub fn parameters(&self) -> usize {
        let d = self.d_model;
        let per_layer = 4 * d * d + 2 * d * self.d_ff + self.d_ff + d + 4 * d;
        let final_norm = if self.norm == Norm::Pre { 2 * d } else { 0 };
        INPUT_VOCAB * d + self.n_layers * per_layer + final_norm + d * OUTPUT_VOCAB + OUTPUT_VOCAB
    }

    /// Multiply-adds × 2 to score one byte at position `pos` (0-based) of a chunk.
    pub fn flops_at(&self, pos: usize) -> f64 {
        self.flops_at_with_window(pos, usize::MAX)
    }

    /// [`Config::flops_at`] under an attention window: the position attends to at most
    /// `window` keys and, past them, the start token.
    pub fn flops_at_with_window(&self, pos: usize, window: usize) -> f64 {
        let d = self.d_model as f64;
        let weights = self.n_layers as f64 * (4.0 * d * d + 2.0 * d * self.d_ff as f64)
            + d * OUTPUT_VOCAB as f64;
        let keys = if pos < window { pos + 1 } else { window + 1 };
        let attention = self.n_layers as f64 * 2.0 * d * keys as f64;
        2.0 * (weights + attention)
    }

    /// Check that the config describes a model this engine runs, within sane limits.
    pub fn validate(&self) -> Result<(), String> {
        if self.architecture != ARCHITECTURE {
            return Err(format!(
                "architecture '{}' is not '{ARCHITECTURE}'",
                self.architecture
            ));
        }
        let in_range = |v: usize, max: usize| (1..=max).contains(&v);
        if !in_range(self.d_model, MAX_DIM) || !in_range(self.d_ff, 4 * MAX_DIM) {
            return Err("d_model or d_ff out of range".into());
        }
        if !in_range(self.n_layers, MAX_LAYERS) || !in_range(self.context, MAX_CONTEXT) {
            return Err("n_layers or context out of range".into());
        }
        if self.n_heads == 0
            || !self.d_model.is_multiple_of(self.n_heads)
            || !self.head_dim().is_multiple_of(2)
        {
            return Err("d_model must be n_heads × an even head width".into());
        }
        crate::net::check_eps_and_theta(self.norm_eps, "norm_eps", self.rope_theta)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn presets_have_the_papers_sizes() {
        let sizes: Vec<usize> = Config::PRESETS
            .iter()
            .map(|p| Config::preset(p).unwrap().parameters())
            .collect();
        // 200K, 800K, 3.2M in the paper's rounding.
        assert!((190_000..260_000).contains(&sizes[0]), "{sizes:?}");
        assert!((750_000..900_000).contains(&sizes[1]), "{sizes:?}");
        assert!((3_100_000..3_400_000).contains(&sizes[2]), "{sizes:?}");
        for p in Config::PRESETS {
            Config::preset(p).unwrap().validate().unwrap();
        }
    }
}
