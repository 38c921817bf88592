//! The byte-level decoder-only Transformer: weights, teacher-forced and incremental forward.
//!
//! Input `i` of a chunk is the beginning-of-chunk token for `i = 0` and byte `i - 1` after it;
//! output row `i` holds the logits of byte `i`. Both forward paths run the same per-row kernels
//! ([`crate::kernels`]) in the same order, so [`Transformer::forward`] over a whole chunk and
//! [`Transformer::step`] one byte at a time give bit-identical logits.
//!
//! One block, pre-LN (post-LN moves each LN after its residual add and drops the final one):
//! ```text
//! h = LN1(x);  q, k, v = h·Wq, h·Wk, h·Wv;  rotate q, k by position;  q *= 1/sqrt(head_dim)
//! x = x + attention(q, k, v)·Wo
//! x = x + (gelu(LN2(x)·W1 + b1))·W2 + b2
//! ```
//! and `logits = LN_f(x)·W_head + b_head`. Weight matrices are stored `in × out`.

use crate::config::{BOS, Config, INPUT_VOCAB, Norm, OUTPUT_VOCAB};
use crate::kernels::{self, Isa, KEY_TILE, Packed};
use crate::math;
use std::time::{Duration, Instant};

/// A layer normalization's scale and shift.
#[derive(Debug, Clone, PartialEq)]
pub struct LayerNorm {
    /// Scale, one per feature.
    pub weight: Vec<f32>,
    /// Shift, one per feature.
    pub bias: Vec<f32>,
}

/// One Transformer block's weights.
#[derive(Debug, Clone, PartialEq)]
pub struct Block {
    /// The attention sublayer's normalization.
    pub ln1: LayerNorm,
    /// Query, key and value projections side by side: `d_model × 3 d_model`.
    pub wqkv: Vec<f32>,
    /// Attention output projection, `d_model × d_model`.
    pub wo: Vec<f32>,
    /// The MLP sublayer's normalization.
    pub ln2: LayerNorm,
    /// MLP input projection, `d_model × d_ff`, and its bias.
    pub w1: Vec<f32>,
    /// Bias of `w1`.
    pub b1: Vec<f32>,
    /// MLP output projection, `d_ff × d_model`.
    pub w2: Vec<f32>,
    /// Bias of `w2`.
    pub b2: Vec<f32>,
}

/// All of a model's weights.
#[derive(Debug, Clone, PartialEq)]
pub struct Weights {
    /// Input embedding, `257 × d_model` (256 bytes, then the beginning-of-chunk token).
    pub embed: Vec<f32>,
    /// The blocks.
    pub blocks: Vec<Block>,
    /// Final normalization (pre-LN models only; ignored for post-LN).
    pub ln_f: LayerNorm,
    /// Output projection, `d_model × 256`.
    pub head: Vec<f32>,
    /// Output bias.
    pub head_bias: Vec<f32>,
}

impl Weights {
    /// Every tensor with its name and shape, in file order.
    pub fn tensors(&self) -> Vec<(String, Vec<usize>, &[f32])> {
        let mut out = vec![("embed".to_string(), vec![0, 0], self.embed.as_slice())];
        for (l, b) in self.blocks.iter().enumerate() {
            let p = format!("blocks.{l}.");
            for (name, t) in [
                ("ln1.weight", &b.ln1.weight),
                ("ln1.bias", &b.ln1.bias),
                ("attn.wqkv", &b.wqkv),
                ("attn.wo", &b.wo),
                ("ln2.weight", &b.ln2.weight),
                ("ln2.bias", &b.ln2.bias),
                ("mlp.w1", &b.w1),
                ("mlp.b1", &b.b1),
                ("mlp.w2", &b.w2),
                ("mlp.b2", &b.b2),
            ] {
                out.push((format!("{p}{name}"), vec![], t.as_slice()));
            }
        }
        out.push(("ln_f.weight".into(), vec![], &self.ln_f.weight));
        out.push(("ln_f.bias".into(), vec![], &self.ln_f.bias));
        out.push(("head.weight".into(), vec![], &self.head));
        out.push(("head.bias".into(), vec![], &self.head_bias));
        out
    }
}

/// The shape of every tensor a config needs, by name.
pub fn tensor_shapes(config: &Config) -> Vec<(String, Vec<usize>)> {
    let (d, f) = (config.d_model, config.d_ff);
    let mut out = vec![("embed".to_string(), vec![INPUT_VOCAB, d])];
    for l in 0..config.n_layers {
        let p = format!("blocks.{l}.");
        for (name, shape) in [
            ("ln1.weight", vec![d]),
            ("ln1.bias", vec![d]),
            ("attn.wqkv", vec![d, 3 * d]),
            ("attn.wo", vec![d, d]),
            ("ln2.weight", vec![d]),
            ("ln2.bias", vec![d]),
            ("mlp.w1", vec![d, f]),
            ("mlp.b1", vec![f]),
            ("mlp.w2", vec![f, d]),
            ("mlp.b2", vec![d]),
        ] {
            out.push((format!("{p}{name}"), shape));
        }
    }
    out.push(("ln_f.weight".into(), vec![d]));
    out.push(("ln_f.bias".into(), vec![d]));
    out.push(("head.weight".into(), vec![d, OUTPUT_VOCAB]));
    out.push(("head.bias".into(), vec![OUTPUT_VOCAB]));
    out
}

/// Assemble [`Weights`] from tensors given in [`tensor_shapes`] order.
pub(crate) fn weights_from_tensors(config: &Config, mut tensors: Vec<Vec<f32>>) -> Weights {
    tensors.reverse();
    let mut next = || tensors.pop().expect("BUG: one tensor per shape");
    let embed = next();
    let blocks = (0..config.n_layers)
        .map(|_| {
            let ln1 = LayerNorm {
                weight: next(),
                bias: next(),
            };
            let (wqkv, wo) = (next(), next());
            let ln2 = LayerNorm {
                weight: next(),
                bias: next(),
            };
            Block {
                ln1,
                wqkv,
                wo,
                ln2,
                w1: next(),
                b1: next(),
                w2: next(),
                b2: next(),
            }
        })
        .collect();
    let ln_f = LayerNorm {
        weight: next(),
        bias: next(),
    };
    Weights {
        embed,
        blocks,
        ln_f,
        head: next(),
        head_bias: next(),
    }
}

/// One block's matrices packed for [`kernels::matmul`].
#[derive(Debug, Clone)]
struct PackedBlock {
    wqkv: Packed,
    wo: Packed,
    w1: Packed,
    w2: Packed,
}

/// A Transformer ready to run: config, weights, rotary tables and the kernel version.
#[derive(Debug, Clone)]
pub struct Transformer {
    config: Config,
    weights: Weights,
    packed: Vec<PackedBlock>,
    head: Packed,
    /// `cos` and `sin` of position × frequency, `context × head_dim / 2` each.
    rope_cos: Vec<f32>,
    rope_sin: Vec<f32>,
    isa: Isa,
}

/// The keys and values of the positions a chunk has seen, per layer and head.
#[derive(Debug, Clone)]
pub struct Cache {
    /// Positions stored.
    pub(crate) len: usize,
    /// Keys per layer and head, in tiles of [`KEY_TILE`] positions ([`kernels::key_index`]).
    pub(crate) keys: Vec<Vec<f32>>,
    /// Values per layer and head: `capacity × head_dim` each.
    pub(crate) values: Vec<Vec<f32>>,
    pub(crate) capacity: usize,
}

impl Cache {
    /// A cache of `slots` (layer, key/value head) pairs of width `hd` for `positions`.
    pub(crate) fn with_slots(slots: usize, hd: usize, positions: usize) -> Cache {
        let capacity = positions.div_ceil(KEY_TILE) * KEY_TILE;
        Cache {
            len: 0,
            keys: (0..slots).map(|_| vec![0.0; hd * capacity]).collect(),
            values: (0..slots).map(|_| vec![0.0; capacity * hd]).collect(),
            capacity,
        }
    }

    /// Positions stored so far.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether no position is stored.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Forget every position, keeping the memory.
    pub fn clear(&mut self) {
        self.len = 0;
    }
}

/// Where a forward's time went, accumulated over calls (see [`Scratch::profile`]).
#[derive(Debug, Default, Clone, Copy, PartialEq)]
pub struct Profile {
    /// Matrix products (projections, MLP, head).
    pub matmul: Duration,
    /// Attention: scores, softmax, weighted values, and the cache writes.
    pub attention: Duration,
    /// Whole forwards, including the above and norms, GELU, rotations and embedding.
    pub total: Duration,
}

/// Activations reused between calls.
#[derive(Debug, Default)]
pub struct Scratch {
    /// When `Some`, every forward adds its timings here (a few clock reads per layer).
    pub profile: Option<Profile>,
    x: Vec<f32>,
    h: Vec<f32>,
    qkv: Vec<f32>,
    q: Vec<f32>,
    attn: Vec<f32>,
    proj: Vec<f32>,
    hidden: Vec<f32>,
    scores: Vec<f32>,
    cache: Option<Cache>,
}

impl Scratch {
    /// Scratch that records a [`Profile`] of every forward.
    pub fn profiling() -> Scratch {
        Scratch {
            profile: Some(Profile::default()),
            ..Scratch::default()
        }
    }
}

/// `cos` and `sin` of `pos · theta^(-2i/hd)` for `pos < context`, `i < hd / 2` (row-major by
/// position), computed in f64 by the crate's own series and rounded to f32.
pub(crate) fn rope_tables(context: usize, hd: usize, theta: f64) -> (Vec<f32>, Vec<f32>) {
    let half = hd / 2;
    let ln_theta = math::ln_f64(theta);
    let freqs: Vec<f64> = (0..half)
        .map(|i| math::exp_f64(-((2 * i) as f64) / (2 * half) as f64 * ln_theta))
        .collect();
    let mut cos = Vec::with_capacity(context * half);
    let mut sin = Vec::with_capacity(context * half);
    for pos in 0..context {
        for f in &freqs {
            let (s, c) = math::sin_cos_f64(pos as f64 * f);
            cos.push(c as f32);
            sin.push(s as f32);
        }
    }
    (cos, sin)
}

/// Rotary position embedding of one head's vector at `pos` with tables from [`rope_tables`]:
/// pairs `(i, i + hd/2)` turn by `pos · theta^(-2i/hd)`: `a' = a cos - b sin`,
/// `b' = b cos + a sin`.
pub(crate) fn rotate(cos: &[f32], sin: &[f32], v: &mut [f32], pos: usize) {
    let half = v.len() / 2;
    let cos = &cos[pos * half..(pos + 1) * half];
    let sin = &sin[pos * half..(pos + 1) * half];
    let (a, b) = v.split_at_mut(half);
    for i in 0..half {
        let (x, y) = (a[i], b[i]);
        a[i] = x * cos[i] - y * sin[i];
        b[i] = y * cos[i] + x * sin[i];
    }
}

pub(crate) fn resize(buf: &mut Vec<f32>, len: usize) -> &mut [f32] {
    if buf.len() < len {
        buf.resize(len, 0.0);
    }
    &mut buf[..len]
}

impl Transformer {
    /// A model from a valid config and weights of the right shapes, with the fastest kernels.
    pub fn new(config: Config, weights: Weights) -> Transformer {
        let (rope_cos, rope_sin) =
            rope_tables(config.context, config.head_dim(), config.rope_theta);
        let (d, f) = (config.d_model, config.d_ff);
        let packed = weights
            .blocks
            .iter()
            .map(|b| PackedBlock {
                wqkv: Packed::new(&b.wqkv, d, 3 * d),
                wo: Packed::new(&b.wo, d, d),
                w1: Packed::new(&b.w1, d, f),
                w2: Packed::new(&b.w2, f, d),
            })
            .collect();
        let head = Packed::new(&weights.head, d, OUTPUT_VOCAB);
        Transformer {
            config,
            weights,
            packed,
            head,
            rope_cos,
            rope_sin,
            isa: Isa::detect(),
        }
    }

    /// The same model running another kernel version (for tests and benchmarks).
    pub fn with_isa(mut self, isa: Isa) -> Transformer {
        self.isa = isa;
        self
    }

    /// The kernel version in use.
    pub fn isa(&self) -> Isa {
        self.isa
    }

    /// The model's config.
    pub fn config(&self) -> &Config {
        &self.config
    }

    /// The model's weights.
    pub fn weights(&self) -> &Weights {
        &self.weights
    }

    /// An empty cache for one chunk of up to `context` bytes.
    pub fn new_cache(&self) -> Cache {
        self.cache_with_capacity(self.config.context)
    }

    fn cache_with_capacity(&self, positions: usize) -> Cache {
        let slots = self.config.n_layers * self.config.n_heads;
        Cache::with_slots(slots, self.config.head_dim(), positions)
    }

    /// Teacher-forced logits of every byte of `chunk` (at most `context` bytes): row `i` of
    /// `logits` (`chunk.len() × 256`) predicts `chunk[i]` from `chunk[..i]`.
    pub fn forward(&self, chunk: &[u8], logits: &mut [f32], scratch: &mut Scratch) {
        let n = chunk.len();
        assert!(
            n <= self.config.context,
            "chunk longer than the model's context"
        );
        assert!(logits.len() >= n * OUTPUT_VOCAB);
        if n == 0 {
            return;
        }
        let mut cache = match scratch.cache.take() {
            Some(c)
                if c.capacity >= n
                    && c.keys.len() == self.config.n_layers * self.config.n_heads =>
            {
                c
            }
            _ => self.cache_with_capacity(n),
        };
        cache.clear();
        let tokens: Vec<u32> = std::iter::once(BOS)
            .chain(chunk[..n - 1].iter().map(|&b| u32::from(b)))
            .collect();
        let positions: Vec<usize> = (0..n).collect();
        let mut caches = [&mut cache];
        self.run(
            &tokens,
            &positions,
            Rows::Sequence,
            &mut caches,
            logits,
            scratch,
        );
        scratch.cache = Some(cache);
    }

    /// Advance each chunk by one input: `tokens[b]` (a byte, or [`BOS`] first) enters
    /// `caches[b]` at position `caches[b].len()`, and row `b` of `logits` (`batch × 256`)
    /// receives the logits of the byte after it. Rows are independent: a chunk's result does
    /// not depend on the others in the batch.
    pub fn step(
        &self,
        caches: &mut [&mut Cache],
        tokens: &[u32],
        logits: &mut [f32],
        scratch: &mut Scratch,
    ) {
        assert_eq!(caches.len(), tokens.len());
        assert!(logits.len() >= tokens.len() * OUTPUT_VOCAB);
        let positions: Vec<usize> = caches.iter().map(|c| c.len).collect();
        for (c, &p) in caches.iter().zip(&positions) {
            assert!(p < self.config.context && p < c.capacity, "cache full");
        }
        self.run(tokens, &positions, Rows::Batch, caches, logits, scratch);
    }

    /// The shared forward: `rows` inputs at `positions`, one cache for the whole sequence or one
    /// per row.
    fn run(
        &self,
        tokens: &[u32],
        positions: &[usize],
        rows: Rows,
        caches: &mut [&mut Cache],
        logits: &mut [f32],
        s: &mut Scratch,
    ) {
        let start = s.profile.is_some().then(Instant::now);
        let (mut t_matmul, mut t_attention) = (Duration::ZERO, Duration::ZERO);
        // Runs `$e`, adding its time to `$acc` when profiling.
        macro_rules! timed {
            ($acc:ident, $e:expr) => {{
                if start.is_some() {
                    let t = Instant::now();
                    let r = $e;
                    $acc += t.elapsed();
                    r
                } else {
                    $e
                }
            }};
        }
        let cfg = &self.config;
        let (isa, m, d, f) = (self.isa, tokens.len(), cfg.d_model, cfg.d_ff);
        let (heads, hd) = (cfg.n_heads, cfg.head_dim());
        let scale = 1.0 / (hd as f32).sqrt();
        let x = resize(&mut s.x, m * d);
        for (row, &t) in x.chunks_exact_mut(d).zip(tokens) {
            assert!((t as usize) < INPUT_VOCAB, "token out of range");
            row.copy_from_slice(&self.weights.embed[t as usize * d..(t as usize + 1) * d]);
        }
        let h = resize(&mut s.h, m * d);
        let qkv = resize(&mut s.qkv, m * 3 * d);
        let q = resize(&mut s.q, m * hd);
        let attn = resize(&mut s.attn, m * d);
        let proj = resize(&mut s.proj, m * d);
        let hidden = resize(&mut s.hidden, m * f);
        let score_rows = if rows == Rows::Sequence { 32.min(m) } else { 1 };
        let score_stride = caches.iter().map(|c| c.capacity).max().unwrap_or(0);
        let scores = resize(&mut s.scores, kernels::ROW_BLOCK * score_stride);
        for (l, (block, packed)) in self.weights.blocks.iter().zip(&self.packed).enumerate() {
            // Attention sublayer.
            let input: &[f32] = match cfg.norm {
                Norm::Pre => {
                    kernels::layer_norm(
                        isa,
                        x,
                        h,
                        &block.ln1.weight,
                        &block.ln1.bias,
                        d,
                        cfg.norm_eps,
                    );
                    h
                }
                Norm::Post => x,
            };
            timed!(t_matmul, kernels::matmul(isa, input, &packed.wqkv, qkv, m));
            for (r, &pos) in positions.iter().enumerate() {
                let row = &mut qkv[r * 3 * d..(r + 1) * 3 * d];
                for head in 0..heads {
                    self.rotate(&mut row[head * hd..(head + 1) * hd], pos);
                    self.rotate(&mut row[d + head * hd..d + (head + 1) * hd], pos);
                }
            }
            let attention_start = start.map(|_| Instant::now());
            for head in 0..heads {
                // Store this head's keys and values, gather its scaled queries.
                let slot = l * heads + head;
                for (r, &pos) in positions.iter().enumerate() {
                    let cache: &mut Cache = match rows {
                        Rows::Sequence => &mut *caches[0],
                        Rows::Batch => &mut *caches[r],
                    };
                    let row = &qkv[r * 3 * d..(r + 1) * 3 * d];
                    let (k, v) = (&row[d + head * hd..][..hd], &row[2 * d + head * hd..][..hd]);
                    for (i, &kv) in k.iter().enumerate() {
                        cache.keys[slot][kernels::key_index(hd, pos, i)] = kv;
                    }
                    cache.values[slot][pos * hd..(pos + 1) * hd].copy_from_slice(v);
                    for (qo, &qi) in q[r * hd..(r + 1) * hd]
                        .iter_mut()
                        .zip(&row[head * hd..][..hd])
                    {
                        *qo = qi * scale;
                    }
                }
                let mut out = vec![0.0f32; score_rows * hd];
                match rows {
                    Rows::Sequence => {
                        let cache = &caches[0];
                        let cap = cache.capacity;
                        for i0 in (0..m).step_by(score_rows) {
                            let n = score_rows.min(m - i0);
                            let qs = &q[i0 * hd..(i0 + n) * hd];
                            let (kt, v) = (&cache.keys[slot], &cache.values[slot]);
                            kernels::attend(isa, qs, kt, v, cap, hd, i0, n, scores, &mut out);
                            for r in 0..n {
                                attn[(i0 + r) * d + head * hd..][..hd]
                                    .copy_from_slice(&out[r * hd..(r + 1) * hd]);
                            }
                        }
                    }
                    Rows::Batch => {
                        for (r, &pos) in positions.iter().enumerate() {
                            let cache = &caches[r];
                            let cap = cache.capacity;
                            let (kt, v) = (&cache.keys[slot], &cache.values[slot]);
                            let qs = &q[r * hd..(r + 1) * hd];
                            kernels::attend(isa, qs, kt, v, cap, hd, pos, 1, scores, &mut out);
                            attn[r * d + head * hd..][..hd].copy_from_slice(&out[..hd]);
                        }
                    }
                }
            }
            if let Some(t) = attention_start {
                t_attention += t.elapsed();
            }
            timed!(t_matmul, kernels::matmul(isa, attn, &packed.wo, proj, m));
            kernels::add_residual(isa, x, proj, None);
            if cfg.norm == Norm::Post {
                h.copy_from_slice(x);
                kernels::layer_norm(
                    isa,
                    h,
                    x,
                    &block.ln1.weight,
                    &block.ln1.bias,
                    d,
                    cfg.norm_eps,
                );
            }
            // MLP sublayer.
            let input: &[f32] = match cfg.norm {
                Norm::Pre => {
                    kernels::layer_norm(
                        isa,
                        x,
                        h,
                        &block.ln2.weight,
                        &block.ln2.bias,
                        d,
                        cfg.norm_eps,
                    );
                    h
                }
                Norm::Post => x,
            };
            timed!(t_matmul, kernels::matmul(isa, input, &packed.w1, hidden, m));
            kernels::bias_gelu(isa, hidden, &block.b1);
            timed!(t_matmul, kernels::matmul(isa, hidden, &packed.w2, proj, m));
            kernels::add_residual(isa, x, proj, Some(&block.b2));
            if cfg.norm == Norm::Post {
                h.copy_from_slice(x);
                kernels::layer_norm(
                    isa,
                    h,
                    x,
                    &block.ln2.weight,
                    &block.ln2.bias,
                    d,
                    cfg.norm_eps,
                );
            }
        }
        for cache in caches.iter_mut() {
            cache.len = match rows {
                Rows::Sequence => m,
                Rows::Batch => cache.len + 1,
            };
        }
        let input: &[f32] = match cfg.norm {
            Norm::Pre => {
                let ln = &self.weights.ln_f;
                kernels::layer_norm(isa, x, h, &ln.weight, &ln.bias, d, cfg.norm_eps);
                h
            }
            Norm::Post => x,
        };
        let logits = &mut logits[..m * OUTPUT_VOCAB];
        timed!(t_matmul, kernels::matmul(isa, input, &self.head, logits, m));
        kernels::add_bias(isa, logits, &self.weights.head_bias);
        if let (Some(start), Some(p)) = (start, s.profile.as_mut()) {
            p.matmul += t_matmul;
            p.attention += t_attention;
            p.total += start.elapsed();
        }
    }

    fn rotate(&self, v: &mut [f32], pos: usize) {
        rotate(&self.rope_cos, &self.rope_sin, v, pos);
    }
}

/// Whether the rows of a forward are one chunk's consecutive positions or one row per chunk.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Rows {
    Sequence,
    Batch,
}
