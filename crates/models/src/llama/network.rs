//! The Llama family (Llama 2/3, SmolLM, Mistral without sliding windows) on the engine's
//! exact kernels: RMSNorm, SwiGLU MLP, rotary positions with the model's theta, grouped-query
//! attention, tied or untied embeddings.
//!
//! Built from tensors in [`LlamaConfig::tensor_shapes`] order (loaded by [`super::file`] or
//! [`super::gguf`]). As for the byte model, [`Llama::forward`] over a token sequence and [`Llama::step`] one token at a
//! time give bit-identical logits, and every arithmetic order depends only on the shape.
//!
//! One layer:
//! ```text
//! h = RMSNorm1(x);  q, k, v = h·Wq, h·Wk, h·Wv;  rotate q, k by position;  q *= 1/sqrt(hd)
//! x = x + attention(q, k, v)·Wo            (query head i reads key/value head i / (H / KV))
//! h = RMSNorm2(x);  x = x + (silu(h·Wgate) ⊙ (h·Wup))·Wdown
//! ```
//! and `logits = RMSNorm_f(x)·W_head` (`W_head` = the embedding when tied).

use super::config::LlamaConfig;
use lmzip_engine::attention::{self, AttendScratch, Cache, Rope, Rows, Strided, grow};
use lmzip_engine::kernels::{self, Isa, Packed};

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
    rope: Rope,
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
    attend: AttendScratch,
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
        let rope = Rope::new(config.max_position_embeddings, hd, config.rope_theta);
        Llama {
            config,
            embed,
            layers,
            norm,
            head,
            rope,
            isa: Isa::detect(),
        }
    }

    /// The same model with its projection and output matrices stored as int8 with a scale per
    /// column, multiplied in exact integer sums (numerics 5, as numerics 4 does for the byte
    /// Transformers); the embedding lookup stays `f32`. A model already in int8 is unchanged.
    pub fn into_int8(mut self) -> Llama {
        let convert = |m: &mut Packed| {
            if let Some(q) = m.to_int8() {
                *m = q;
            }
        };
        for l in &mut self.layers {
            for m in [
                &mut l.wq,
                &mut l.wk,
                &mut l.wv,
                &mut l.wo,
                &mut l.gate,
                &mut l.up,
                &mut l.down,
            ] {
                convert(m);
            }
        }
        convert(&mut self.head);
        self
    }

    /// Whether the matrices are stored as int8 ([`Llama::into_int8`]).
    pub fn is_int8(&self) -> bool {
        self.head.is_int8()
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
        Cache::new(slots, self.config.head_width(), positions)
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
        self.run(tokens, Rows::Sequence, &mut [&mut cache], logits, scratch);
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
        attention::assert_room(caches, self.config.max_position_embeddings);
        self.run(tokens, Rows::Batch, caches, logits, scratch);
    }

    /// The shared forward: embed, every layer's attention and MLP, then the head.
    fn run(
        &self,
        tokens: &[u32],
        rows: Rows,
        caches: &mut [&mut Cache],
        logits: &mut [f32],
        s: &mut LlamaScratch,
    ) {
        let (m, d, vocab) = (
            tokens.len(),
            self.config.hidden_size,
            self.config.vocab_size,
        );
        assert!(logits.len() >= m * vocab, "logits too short");
        let positions = attention::positions(rows, caches, m);
        let x = grow(&mut s.x, m * d);
        for (row, &t) in x.chunks_exact_mut(d).zip(tokens) {
            let t = t as usize;
            assert!(t < vocab, "token out of range");
            row.copy_from_slice(&self.embed[t * d..(t + 1) * d]);
        }
        for l in 0..self.layers.len() {
            self.attention_sublayer(l, rows, &positions, caches, s);
            self.mlp_sublayer(l, m, s);
        }
        attention::advance(rows, caches, m);
        let (x, h) = (&s.x[..m * d], grow(&mut s.h, m * d));
        kernels::rms_norm(self.isa, x, h, &self.norm, d, self.config.rms_norm_eps);
        kernels::matmul(self.isa, h, &self.head, &mut logits[..m * vocab], m);
    }

    /// `x += attention(RMSNorm1(x))·Wo` for layer `l`: project, rotate, store each key/value
    /// head in the caches, attend with each query head.
    fn attention_sublayer(
        &self,
        l: usize,
        rows: Rows,
        positions: &[usize],
        caches: &mut [&mut Cache],
        s: &mut LlamaScratch,
    ) {
        let (cfg, layer, isa) = (&self.config, &self.layers[l], self.isa);
        let (m, d) = (positions.len(), cfg.hidden_size);
        let (heads, kv_heads, hd) = (cfg.num_attention_heads, cfg.kv_heads(), cfg.head_width());
        let group = heads / kv_heads;
        let scale = 1.0 / (hd as f32).sqrt();
        let x = &mut s.x[..m * d];
        let h = grow(&mut s.h, m * d);
        let q = grow(&mut s.q, m * heads * hd);
        let k = grow(&mut s.k, m * kv_heads * hd);
        let v = grow(&mut s.v, m * kv_heads * hd);
        kernels::rms_norm(isa, x, h, &layer.attn_norm, d, cfg.rms_norm_eps);
        kernels::matmul(isa, h, &layer.wq, q, m);
        kernels::matmul(isa, h, &layer.wk, k, m);
        kernels::matmul(isa, h, &layer.wv, v, m);
        for (r, &pos) in positions.iter().enumerate() {
            for head in q[r * heads * hd..(r + 1) * heads * hd].chunks_exact_mut(hd) {
                self.rope.rotate(head, pos);
            }
            for head in k[r * kv_heads * hd..(r + 1) * kv_heads * hd].chunks_exact_mut(hd) {
                self.rope.rotate(head, pos);
            }
        }
        for head in 0..kv_heads {
            let at = |data| Strided {
                data,
                stride: kv_heads * hd,
                offset: head * hd,
            };
            attention::store(
                rows,
                caches,
                l * kv_heads + head,
                positions,
                at(k),
                at(v),
                hd,
            );
        }
        let qs = grow(&mut s.qs, m * hd);
        let attn = grow(&mut s.attn, m * heads * hd);
        for head in 0..heads {
            for (o, row) in qs.chunks_exact_mut(hd).zip(q.chunks_exact(heads * hd)) {
                for (o, &x) in o.iter_mut().zip(&row[head * hd..][..hd]) {
                    *o = x * scale;
                }
            }
            let slot = l * kv_heads + head / group;
            let dest = (&mut attn[..], heads * hd, head * hd);
            attention::attend(
                isa,
                rows,
                caches,
                slot,
                positions,
                qs,
                hd,
                usize::MAX,
                dest,
                &mut s.attend,
            );
        }
        let proj = grow(&mut s.proj, m * d);
        kernels::matmul(isa, attn, &layer.wo, proj, m);
        kernels::add_residual(isa, x, proj, None);
    }

    /// `x += (silu(h·Wgate) ⊙ (h·Wup))·Wdown` with `h = RMSNorm2(x)`, for layer `l`.
    fn mlp_sublayer(&self, l: usize, m: usize, s: &mut LlamaScratch) {
        let (cfg, layer, isa) = (&self.config, &self.layers[l], self.isa);
        let (d, f) = (cfg.hidden_size, cfg.intermediate_size);
        let x = &mut s.x[..m * d];
        let h = grow(&mut s.h, m * d);
        let gate = grow(&mut s.gate, m * f);
        let up = grow(&mut s.up, m * f);
        let proj = grow(&mut s.proj, m * d);
        kernels::rms_norm(isa, x, h, &layer.mlp_norm, d, cfg.rms_norm_eps);
        kernels::matmul(isa, h, &layer.gate, gate, m);
        kernels::matmul(isa, h, &layer.up, up, m);
        kernels::silu_mul(isa, gate, up);
        kernels::matmul(isa, gate, &layer.down, proj, m);
        kernels::add_residual(isa, x, proj, None);
    }
}
