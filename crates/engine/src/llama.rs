//! The Llama family (Llama 2/3, SmolLM, Mistral without sliding windows) on the engine's
//! exact kernels: RMSNorm, SwiGLU MLP, rotary positions with the model's theta, grouped-query
//! attention, tied or untied embeddings.
//!
//! Loaded from a Hugging Face model directory: `config.json` and `model.safetensors` (one file;
//! F32, F16 or BF16), with the usual tensor names (`model.embed_tokens.weight`,
//! `model.layers.{l}.self_attn.q_proj.weight`, …, `lm_head.weight` unless tied). As for the
//! byte model, [`Llama::forward`] over a token sequence and [`Llama::step`] one token at a
//! time give bit-identical logits, and every arithmetic order depends only on the shape.
//!
//! One layer:
//! ```text
//! h = RMSNorm1(x);  q, k, v = h·Wq, h·Wk, h·Wv;  rotate q, k by position;  q *= 1/sqrt(hd)
//! x = x + attention(q, k, v)·Wo            (query head i reads key/value head i / (H / KV))
//! h = RMSNorm2(x);  x = x + (silu(h·Wgate) ⊙ (h·Wup))·Wdown
//! ```
//! and `logits = RMSNorm_f(x)·W_head` (`W_head` = the embedding when tied).

use crate::kernels::{self, Isa, Packed};
use crate::transformer::{Cache, resize, rope_tables, rotate};
use serde::Deserialize;
use std::path::Path;

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
        if !(self.rms_norm_eps.is_finite() && self.rms_norm_eps > 0.0) {
            return Err("rms_norm_eps must be positive".into());
        }
        if !(self.rope_theta.is_finite() && self.rope_theta > 1.0) {
            return Err("rope_theta must be above 1".into());
        }
        Ok(())
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

/// One decoder layer, projections packed `in × out` for [`kernels::matmul`].
#[derive(Debug, Clone)]
struct Layer {
    attn_norm: Vec<f32>,
    wq: Packed,
    wk: Packed,
    wv: Packed,
    wo: Packed,
    mlp_norm: Vec<f32>,
    gate: Packed,
    up: Packed,
    down: Packed,
}

/// A Llama-family model ready to run.
#[derive(Debug, Clone)]
pub struct Llama {
    config: LlamaConfig,
    embed: Vec<f32>,
    layers: Vec<Layer>,
    norm: Vec<f32>,
    head: Packed,
    rope_cos: Vec<f32>,
    rope_sin: Vec<f32>,
    isa: Isa,
}

/// Activations reused between calls of [`Llama::forward`] and [`Llama::step`].
#[derive(Debug, Default)]
pub struct LlamaScratch {
    x: Vec<f32>,
    h: Vec<f32>,
    q: Vec<f32>,
    k: Vec<f32>,
    v: Vec<f32>,
    qs: Vec<f32>,
    attn: Vec<f32>,
    proj: Vec<f32>,
    gate: Vec<f32>,
    up: Vec<f32>,
    scores: Vec<f32>,
    out: Vec<f32>,
}

/// Write a Hugging Face directory (`config.json` from `config_json`, `model.safetensors` in
/// F32) holding seeded random weights for that config: matrices uniform in `±sqrt(3 / fan_in)`,
/// embeddings in `±1`, norms near 1. For tests and benchmarks; returns the model's SHA-256.
pub fn write_random(
    dir: &Path,
    config_json: &str,
    seed: u64,
) -> Result<[u8; 32], crate::file::Error> {
    let path = dir.join("config.json");
    let config: LlamaConfig = serde_json::from_str(config_json)
        .map_err(|e| crate::file::Error::Invalid(path.clone(), e.to_string()))?;
    config
        .validate()
        .map_err(|e| crate::file::Error::Invalid(path.clone(), e))?;
    let mut next = crate::file::uniform_values(seed);
    let tensors: Vec<(String, Vec<usize>, Vec<u8>)> = config
        .tensor_shapes()
        .into_iter()
        .map(|(name, shape)| {
            let scale = match shape.as_slice() {
                [_] => 0.0,
                [_, fan_in] if !name.contains("embed") => (3.0 / *fan_in as f32).sqrt(),
                _ => 1.0,
            };
            let bytes = (0..shape.iter().product::<usize>())
                .flat_map(|_| {
                    let x = next();
                    let v = if scale == 0.0 {
                        1.0 + 0.1 * x
                    } else {
                        scale * x
                    };
                    v.to_le_bytes()
                })
                .collect();
            (name, shape, bytes)
        })
        .collect();
    let views = tensors.iter().map(|(name, shape, data)| {
        let view =
            safetensors::tensor::TensorView::new(safetensors::Dtype::F32, shape.clone(), data)
                .expect("BUG: shape matches data");
        (name.as_str(), view)
    });
    let weights = safetensors::serialize(views, None)
        .map_err(|e| crate::file::Error::Invalid(dir.join("model.safetensors"), e.to_string()))?;
    let io = |file: &str, e| crate::file::Error::Io(dir.join(file), e);
    std::fs::create_dir_all(dir).map_err(|e| io("", e))?;
    std::fs::write(&path, config_json).map_err(|e| io("config.json", e))?;
    std::fs::write(dir.join("model.safetensors"), &weights)
        .map_err(|e| io("model.safetensors", e))?;
    Ok(crate::file::model_sha256(config_json.as_bytes(), &weights))
}

/// `rows × cols` (row-major) transposed.
fn transpose(m: &[f32], rows: usize, cols: usize) -> Vec<f32> {
    let mut t = vec![0.0; m.len()];
    for r in 0..rows {
        for c in 0..cols {
            t[c * rows + r] = m[r * cols + c];
        }
    }
    t
}

type Tensors = std::vec::IntoIter<Vec<f32>>;

fn take(tensors: &mut Tensors) -> Vec<f32> {
    tensors.next().expect("BUG: one tensor per shape")
}

/// The next tensor, a Hugging Face `n × k` (`out × in`) projection, packed `k × n`.
fn take_packed(tensors: &mut Tensors, k: usize, n: usize) -> Packed {
    Packed::new(&transpose(&take(tensors), n, k), k, n)
}

impl Llama {
    /// A model from a valid config and tensors in [`LlamaConfig::tensor_shapes`] order and
    /// shapes, with the fastest kernels.
    pub fn new(config: LlamaConfig, tensors: Vec<Vec<f32>>) -> Llama {
        let (d, f, v) = (
            config.hidden_size,
            config.intermediate_size,
            config.vocab_size,
        );
        let hd = config.head_width();
        let (q, kv) = (config.num_attention_heads * hd, config.kv_heads() * hd);
        let t = &mut tensors.into_iter();
        let embed = take(t);
        let layers = (0..config.num_hidden_layers)
            .map(|_| Layer {
                attn_norm: take(t),
                wq: take_packed(t, d, q),
                wk: take_packed(t, d, kv),
                wv: take_packed(t, d, kv),
                wo: take_packed(t, q, d),
                mlp_norm: take(t),
                gate: take_packed(t, d, f),
                up: take_packed(t, d, f),
                down: take_packed(t, f, d),
            })
            .collect();
        let norm = take(t);
        let head = if config.tie_word_embeddings {
            Packed::new(&transpose(&embed, v, d), d, v)
        } else {
            take_packed(t, d, v)
        };
        let (rope_cos, rope_sin) =
            rope_tables(config.max_position_embeddings, hd, config.rope_theta);
        Llama {
            config,
            embed,
            layers,
            norm,
            head,
            rope_cos,
            rope_sin,
            isa: Isa::detect(),
        }
    }

    /// Load a Hugging Face model directory (`config.json`, `model.safetensors`); also returns
    /// the SHA-256 of the two files ([`crate::file::model_sha256`]), the model's identity.
    pub fn load(dir: &Path) -> Result<(Llama, [u8; 32]), crate::file::Error> {
        let invalid = |file: &str, why: String| crate::file::Error::Invalid(dir.join(file), why);
        let read = |file: &str| {
            std::fs::read(dir.join(file)).map_err(|e| crate::file::Error::Io(dir.join(file), e))
        };
        let config_bytes = read("config.json")?;
        let config: LlamaConfig = serde_json::from_slice(&config_bytes)
            .map_err(|e| invalid("config.json", e.to_string()))?;
        config.validate().map_err(|e| invalid("config.json", e))?;
        let bytes = read("model.safetensors")?;
        let tensors = crate::file::read_tensors(&bytes, &config.tensor_shapes(), false)
            .map_err(|e| invalid("model.safetensors", e))?;
        // Tensors the architecture has no place for would be silently dropped: refuse those
        // that change the function (Qwen 2's attention biases), not the unused extras.
        let file = safetensors::SafeTensors::deserialize(&bytes)
            .map_err(|e| invalid("model.safetensors", e.to_string()))?;
        if let Some(name) = file.names().into_iter().find(|n| n.ends_with("_proj.bias")) {
            return Err(invalid(
                "model.safetensors",
                format!("'{name}': projection biases (Qwen 2) are not supported yet"),
            ));
        }
        let sha256 = crate::file::model_sha256(&config_bytes, &bytes);
        Ok((Llama::new(config, tensors), sha256))
    }

    /// The same model running another kernel version (for tests and benchmarks).
    pub fn with_isa(mut self, isa: Isa) -> Llama {
        self.isa = isa;
        self
    }

    /// The model's config.
    pub fn config(&self) -> &LlamaConfig {
        &self.config
    }

    /// An empty cache for one sequence of up to `max_position_embeddings` tokens.
    pub fn new_cache(&self) -> Cache {
        self.cache_for(self.config.max_position_embeddings)
    }

    /// An empty cache for one sequence of up to `positions` tokens (a shorter context than the
    /// model's saves memory).
    pub fn new_cache_with(&self, positions: usize) -> Cache {
        self.cache_for(positions.min(self.config.max_position_embeddings))
    }

    fn cache_for(&self, positions: usize) -> Cache {
        let slots = self.config.num_hidden_layers * self.config.kv_heads();
        Cache::with_slots(slots, self.config.head_width(), positions)
    }

    /// Teacher-forced logits: row `i` of `logits` (`tokens.len() × vocab_size`) follows
    /// `tokens[..=i]`.
    pub fn forward(&self, tokens: &[u32], logits: &mut [f32], scratch: &mut LlamaScratch) {
        let n = tokens.len();
        assert!(
            n <= self.config.max_position_embeddings,
            "sequence longer than the context"
        );
        if n == 0 {
            return;
        }
        let mut cache = self.cache_for(n);
        let positions: Vec<usize> = (0..n).collect();
        self.run(tokens, &positions, &mut [&mut cache], true, logits, scratch);
    }

    /// Advance each sequence by one token: `tokens[b]` enters `caches[b]` at its next
    /// position, and row `b` of `logits` (`batch × vocab_size`) receives the logits after it.
    /// Rows are independent of each other.
    pub fn step(
        &self,
        caches: &mut [&mut Cache],
        tokens: &[u32],
        logits: &mut [f32],
        scratch: &mut LlamaScratch,
    ) {
        assert_eq!(caches.len(), tokens.len());
        let positions: Vec<usize> = caches.iter().map(|c| c.len).collect();
        for (c, &p) in caches.iter().zip(&positions) {
            assert!(
                p < self.config.max_position_embeddings && p < c.capacity,
                "cache full"
            );
        }
        self.run(tokens, &positions, caches, false, logits, scratch);
    }

    /// The shared forward: `tokens` at `positions`, one cache for the whole sequence
    /// (`sequence`) or one per row.
    fn run(
        &self,
        tokens: &[u32],
        positions: &[usize],
        caches: &mut [&mut Cache],
        sequence: bool,
        logits: &mut [f32],
        s: &mut LlamaScratch,
    ) {
        let cfg = &self.config;
        let (isa, m, d, f, vocab) = (
            self.isa,
            tokens.len(),
            cfg.hidden_size,
            cfg.intermediate_size,
            cfg.vocab_size,
        );
        let (heads, kv_heads, hd) = (cfg.num_attention_heads, cfg.kv_heads(), cfg.head_width());
        let group = heads / kv_heads;
        let scale = 1.0 / (hd as f32).sqrt();
        assert!(logits.len() >= m * vocab, "logits too short");
        let x = resize(&mut s.x, m * d);
        for (row, &t) in x.chunks_exact_mut(d).zip(tokens) {
            let t = t as usize;
            assert!(t < vocab, "token out of range");
            row.copy_from_slice(&self.embed[t * d..(t + 1) * d]);
        }
        let h = resize(&mut s.h, m * d);
        let q = resize(&mut s.q, m * heads * hd);
        let k = resize(&mut s.k, m * kv_heads * hd);
        let v = resize(&mut s.v, m * kv_heads * hd);
        let qs = resize(&mut s.qs, m * hd);
        let attn = resize(&mut s.attn, m * heads * hd);
        let proj = resize(&mut s.proj, m * d);
        let gate = resize(&mut s.gate, m * f);
        let up = resize(&mut s.up, m * f);
        let score_rows = if sequence { 32.min(m) } else { 1 };
        let stride = caches.iter().map(|c| c.capacity).max().unwrap_or(0);
        let scores = resize(&mut s.scores, kernels::ROW_BLOCK * stride);
        let out = resize(&mut s.out, score_rows * hd);
        for (l, layer) in self.layers.iter().enumerate() {
            kernels::rms_norm(isa, x, h, &layer.attn_norm, d, cfg.rms_norm_eps);
            kernels::matmul(isa, h, &layer.wq, q, m);
            kernels::matmul(isa, h, &layer.wk, k, m);
            kernels::matmul(isa, h, &layer.wv, v, m);
            for (r, &pos) in positions.iter().enumerate() {
                for head in 0..heads {
                    let at = (r * heads + head) * hd;
                    rotate(&self.rope_cos, &self.rope_sin, &mut q[at..at + hd], pos);
                }
                for head in 0..kv_heads {
                    let at = (r * kv_heads + head) * hd;
                    rotate(&self.rope_cos, &self.rope_sin, &mut k[at..at + hd], pos);
                    let slot = l * kv_heads + head;
                    let cache: &mut Cache = if sequence {
                        &mut *caches[0]
                    } else {
                        &mut *caches[r]
                    };
                    for i in 0..hd {
                        cache.keys[slot][kernels::key_index(hd, pos, i)] = k[at + i];
                    }
                    cache.values[slot][pos * hd..(pos + 1) * hd].copy_from_slice(&v[at..at + hd]);
                }
            }
            for head in 0..heads {
                let slot = l * kv_heads + head / group;
                for r in 0..m {
                    let src = &q[(r * heads + head) * hd..][..hd];
                    for (o, &x) in qs[r * hd..(r + 1) * hd].iter_mut().zip(src) {
                        *o = x * scale;
                    }
                }
                if sequence {
                    let cache = &caches[0];
                    let (kt, vs) = (&cache.keys[slot], &cache.values[slot]);
                    for i0 in (0..m).step_by(score_rows) {
                        let n = score_rows.min(m - i0);
                        let qrows = &qs[i0 * hd..(i0 + n) * hd];
                        kernels::attend(isa, qrows, kt, vs, cache.capacity, hd, i0, n, scores, out);
                        for r in 0..n {
                            attn[((i0 + r) * heads + head) * hd..][..hd]
                                .copy_from_slice(&out[r * hd..(r + 1) * hd]);
                        }
                    }
                } else {
                    for (r, &pos) in positions.iter().enumerate() {
                        let cache = &caches[r];
                        let (kt, vs) = (&cache.keys[slot], &cache.values[slot]);
                        let qrow = &qs[r * hd..(r + 1) * hd];
                        kernels::attend(isa, qrow, kt, vs, cache.capacity, hd, pos, 1, scores, out);
                        attn[(r * heads + head) * hd..][..hd].copy_from_slice(&out[..hd]);
                    }
                }
            }
            kernels::matmul(isa, attn, &layer.wo, proj, m);
            kernels::add_residual(isa, x, proj, None);
            kernels::rms_norm(isa, x, h, &layer.mlp_norm, d, cfg.rms_norm_eps);
            kernels::matmul(isa, h, &layer.gate, gate, m);
            kernels::matmul(isa, h, &layer.up, up, m);
            kernels::silu_mul(isa, gate, up);
            kernels::matmul(isa, gate, &layer.down, proj, m);
            kernels::add_residual(isa, x, proj, None);
        }
        for cache in caches.iter_mut() {
            cache.len = if sequence { m } else { cache.len + 1 };
        }
        kernels::rms_norm(isa, x, h, &self.norm, d, cfg.rms_norm_eps);
        kernels::matmul(isa, h, &self.head, &mut logits[..m * vocab], m);
    }
}
