//! A Llama-family model's shape: the fields of its Hugging Face `config.json` this crate reads.

use serde::Deserialize;

/// The fields of a Hugging Face `config.json` this engine reads (others are ignored).
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct LlamaConfig {
    /// Model width.
    pub hidden_size: usize,
    /// Width of the SwiGLU MLP.
    pub intermediate_size: usize,
    /// Decoder layers.
    pub num_hidden_layers: usize,
    /// Query heads.
    pub num_attention_heads: usize,
    /// Key/value heads (grouped-query attention); the query heads by default.
    #[serde(default)]
    pub num_key_value_heads: Option<usize>,
    /// Head width; `hidden_size / num_attention_heads` by default.
    #[serde(default)]
    pub head_dim: Option<usize>,
    /// RMSNorm's epsilon.
    pub rms_norm_eps: f32,
    /// Base of the rotary frequencies.
    #[serde(default = "default_theta")]
    pub rope_theta: f64,
    /// Rotary scaling (Llama 3.1's, YaRN, …): not supported yet, must be absent or null.
    #[serde(default)]
    pub rope_scaling: Option<serde_json::Value>,
    /// Vocabulary size.
    pub vocab_size: usize,
    /// Whether the output head is the input embedding.
    #[serde(default)]
    pub tie_word_embeddings: bool,
    /// The longest sequence the model was trained for (the cache's limit here).
    pub max_position_embeddings: usize,
    /// The beginning-of-sequence token (a number, or a list whose first entry is used).
    #[serde(default)]
    pub bos_token_id: Option<serde_json::Value>,
    /// The end-of-sequence token (a number or a list), the start token when there is no BOS.
    #[serde(default)]
    pub eos_token_id: Option<serde_json::Value>,
}

fn default_theta() -> f64 {
    10_000.0
}

/// The largest vocabulary, width, depth and context accepted (guards memory).
const MAX_VOCAB: usize = 1 << 20;
const MAX_DIM: usize = 1 << 16;
const MAX_LAYERS: usize = 1024;
const MAX_CONTEXT: usize = 1 << 20;

impl LlamaConfig {
    /// The token every sequence starts from: the BOS token, else the first EOS token (as
    /// GPT-2-style models start from `<|endoftext|>`), if the config names one in range.
    pub fn start_token(&self) -> Option<u32> {
        let first = |v: &Option<serde_json::Value>| match v {
            Some(serde_json::Value::Array(a)) => a.first().and_then(|x| x.as_u64()),
            Some(x) => x.as_u64(),
            None => None,
        };
        first(&self.bos_token_id)
            .or_else(|| first(&self.eos_token_id))
            .filter(|&t| (t as usize) < self.vocab_size)
            .map(|t| t as u32)
    }

    /// The number of parameters (every tensor of [`LlamaConfig::tensor_shapes`]).
    pub fn parameters(&self) -> usize {
        self.tensor_shapes()
            .iter()
            .map(|(_, s)| s.iter().product::<usize>())
            .sum()
    }

    /// Key/value heads.
    pub fn kv_heads(&self) -> usize {
        self.num_key_value_heads.unwrap_or(self.num_attention_heads)
    }

    /// Head width.
    pub fn head_width(&self) -> usize {
        self.head_dim
            .unwrap_or(self.hidden_size / self.num_attention_heads.max(1))
    }

    /// Check that the engine runs this shape.
    pub fn validate(&self) -> Result<(), String> {
        let ok = |v: usize, max: usize| (1..=max).contains(&v);
        if !ok(self.hidden_size, MAX_DIM) || !ok(self.intermediate_size, 4 * MAX_DIM) {
            return Err("hidden_size or intermediate_size out of range".into());
        }
        if !ok(self.num_hidden_layers, MAX_LAYERS) || !ok(self.vocab_size, MAX_VOCAB) {
            return Err("num_hidden_layers or vocab_size out of range".into());
        }
        if !ok(self.max_position_embeddings, MAX_CONTEXT) {
            return Err("max_position_embeddings out of range".into());
        }
        let (h, kv, hd) = (self.num_attention_heads, self.kv_heads(), self.head_width());
        if !ok(h, MAX_DIM) || !ok(kv, h) || !h.is_multiple_of(kv) {
            return Err("the attention heads must be a multiple of the key/value heads".into());
        }
        if !ok(hd, MAX_DIM) || !hd.is_multiple_of(2) {
            return Err("the head width must be even".into());
        }
        if self.rope_scaling.as_ref().is_some_and(|v| !v.is_null()) {
            return Err("rope_scaling is not supported yet".into());
        }
        crate::net::check_eps_and_theta(self.rms_norm_eps, "rms_norm_eps", self.rope_theta)
    }

    /// Every tensor the safetensors file must hold, with its shape (Hugging Face's
    /// `out × in` for projections).
    pub fn tensor_shapes(&self) -> Vec<(String, Vec<usize>)> {
        let (d, f, v) = (self.hidden_size, self.intermediate_size, self.vocab_size);
        let (q, kv) = (
            self.num_attention_heads * self.head_width(),
            self.kv_heads() * self.head_width(),
        );
        let mut out = vec![("model.embed_tokens.weight".to_string(), vec![v, d])];
        for l in 0..self.num_hidden_layers {
            let p = format!("model.layers.{l}.");
            for (name, shape) in [
                ("input_layernorm.weight", vec![d]),
                ("self_attn.q_proj.weight", vec![q, d]),
                ("self_attn.k_proj.weight", vec![kv, d]),
                ("self_attn.v_proj.weight", vec![kv, d]),
                ("self_attn.o_proj.weight", vec![d, q]),
                ("post_attention_layernorm.weight", vec![d]),
                ("mlp.gate_proj.weight", vec![f, d]),
                ("mlp.up_proj.weight", vec![f, d]),
                ("mlp.down_proj.weight", vec![d, f]),
            ] {
                out.push((format!("{p}{name}"), shape));
            }
        }
        out.push(("model.norm.weight".into(), vec![d]));
        if !self.tie_word_embeddings {
            out.push(("lm_head.weight".into(), vec![v, d]));
        }
        out
    }
}
