//! The byte-level decoder-only Transformer: weights, teacher-forced and incremental forward.
//!
//! The inputs of a chunk are the beginning-of-chunk token ([`super::config::BOS`]) and then its
//! bytes but the last (the model layer adds the start token: [`super::chunk_inputs`]); output
//! row `i` holds the logits of byte `i`. Both forward paths run the same per-row kernels
//! ([`lmzip_engine::kernels`]) and the engine's shared attention in the same order, so
//! [`Transformer::forward`] over a whole chunk and [`Transformer::step`] one byte at a time
//! give bit-identical logits.
//!
//! One block, pre-LN (post-LN moves each LN after its residual add and drops the final one):
//! ```text
//! h = LN1(x);  q, k, v = h·Wq, h·Wk, h·Wv;  rotate q, k by position;  q *= 1/sqrt(head_dim)
//! x = x + attention(q, k, v)·Wo
//! x = x + (gelu(LN2(x)·W1 + b1))·W2 + b2
//! ```
//! and `logits = LN_f(x)·W_head + b_head`. Weight matrices are stored `in × out`.

use super::config::{Config, INPUT_VOCAB, Norm, OUTPUT_VOCAB};
use lmzip_engine::attention::{self, AttendScratch, Cache, Rope, Rows, Strided, grow};
use lmzip_engine::kernels::{self, Isa, Packed};
use lmzip_engine::team;
use std::ops::Range;
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
pub(super) fn weights_from_tensors(config: &Config, mut tensors: Vec<Vec<f32>>) -> Weights {
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

/// Every block's matrices and the head's, packed by `packing`.
fn pack(
    config: &Config,
    weights: &Weights,
    packing: fn(&[f32], usize, usize) -> Packed,
) -> (Vec<PackedBlock>, Packed) {
    let (d, f) = (config.d_model, config.d_ff);
    let blocks = weights
        .blocks
        .iter()
        .map(|b| PackedBlock {
            wqkv: packing(&b.wqkv, d, 3 * d),
            wo: packing(&b.wo, d, d),
            w1: packing(&b.w1, d, f),
            w2: packing(&b.w2, f, d),
        })
        .collect();
    (blocks, packing(&weights.head, d, OUTPUT_VOCAB))
}

/// A Transformer ready to run: config, weights, rotary tables and the kernel version.
#[derive(Debug, Clone)]
pub struct Transformer {
    config: Config,
    weights: Weights,
    packed: Vec<PackedBlock>,
    head: Packed,
    rope: Rope,
    isa: Isa,
    window: usize,
    weight_storage: WeightStorage,
    bf16_cache: bool,
}

/// How a [`Transformer`] stores its matrix weights, which decides how its products compute.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WeightStorage {
    /// As trained: `f32` products in a fixed order of fused multiply-adds (numerics 1).
    F32,
    /// Rounded to bfloat16 ([`Packed::new_bf16`]): half the bytes to read per step, products
    /// computed from the widened values as for `f32` (numerics 2 and 3).
    Bf16,
    /// int8 with a scale per column, against activations rounded to integers per row
    /// ([`Packed::new_int8`]): exact integer sums, a quarter of the bytes (numerics 4).
    Int8,
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

/// A kernel applied to a product's rows with a per-column vector ([`kernels::bias_gelu`],
/// [`kernels::add_bias`]).
type Epilogue = fn(Isa, &mut [f32], &[f32]);

/// Activations reused between calls.
#[derive(Debug, Default)]
pub struct Scratch {
    /// When `Some`, every forward adds its timings here (a few clock reads per layer).
    pub profile: Option<Profile>,
    x: Vec<f32>,
    h: Vec<f32>,
    qkv: Vec<f32>,
    attn: Vec<f32>,
    proj: Vec<f32>,
    hidden: Vec<f32>,
    /// Per half of the heads (a team's two threads each attend with their own).
    heads: [HeadScratch; 2],
    cache: Option<Cache>,
}

/// Buffers of one thread's attention heads.
#[derive(Debug, Default)]
struct HeadScratch {
    q: Vec<f32>,
    attend: AttendScratch,
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

/// Clock readings of one forward, when profiling.
struct Timer {
    start: Option<Instant>,
    matmul: Duration,
    attention: Duration,
}

impl Timer {
    fn new(profiling: bool) -> Timer {
        Timer {
            start: profiling.then(Instant::now),
            matmul: Duration::ZERO,
            attention: Duration::ZERO,
        }
    }

    /// Run `f`, adding its time to the matrix products'.
    fn matmul<R>(&mut self, f: impl FnOnce() -> R) -> R {
        let t = self.start.map(|_| Instant::now());
        let r = f();
        if let Some(t) = t {
            self.matmul += t.elapsed();
        }
        r
    }

    /// Add the totals to `profile`.
    fn finish(self, profile: Option<&mut Profile>) {
        if let (Some(start), Some(p)) = (self.start, profile) {
            p.matmul += self.matmul;
            p.attention += self.attention;
            p.total += start.elapsed();
        }
    }
}

impl Transformer {
    /// A model from a valid config and weights of the right shapes, with the fastest kernels.
    pub fn new(config: Config, weights: Weights) -> Transformer {
        let rope = Rope::new(config.context, config.head_dim(), config.rope_theta);
        let (packed, head) = pack(&config, &weights, Packed::new);
        Transformer {
            config,
            weights,
            packed,
            head,
            rope,
            isa: Isa::detect(),
            window: usize::MAX,
            weight_storage: WeightStorage::F32,
            bf16_cache: false,
        }
    }

    /// The same model keeping keys and values rounded to bfloat16 when `on`
    /// ([`Cache::new_bf16`]): half the bytes for a decoder step to read.
    pub fn with_bf16_cache(mut self, on: bool) -> Transformer {
        self.set_bf16_cache(on);
        self
    }

    /// Set the storage of the key/value caches (see [`Transformer::with_bf16_cache`]).
    pub fn set_bf16_cache(&mut self, on: bool) {
        self.bf16_cache = on;
    }

    /// The same model with its matrix weights (projections, MLP, head; not the embedding, norms
    /// or biases) stored as `storage` ([`WeightStorage`]).
    pub fn with_weight_storage(mut self, storage: WeightStorage) -> Transformer {
        self.set_weight_storage(storage);
        self
    }

    /// Set the storage of the matrix weights (see [`Transformer::with_weight_storage`]).
    pub fn set_weight_storage(&mut self, storage: WeightStorage) {
        if storage != self.weight_storage {
            let packing = match storage {
                WeightStorage::F32 => Packed::new,
                WeightStorage::Bf16 => Packed::new_bf16,
                WeightStorage::Int8 => Packed::new_int8,
            };
            (self.packed, self.head) = pack(&self.config, &self.weights, packing);
            self.weight_storage = storage;
        }
    }

    /// How the matrix weights are stored.
    pub fn weight_storage(&self) -> WeightStorage {
        self.weight_storage
    }

    /// The same model attending to at most the last `window` positions and the start token
    /// ([`kernels::attend`]); `usize::MAX` (the default) attends to every position.
    pub fn with_window(mut self, window: usize) -> Transformer {
        self.set_window(window);
        self
    }

    /// Set the attention window (see [`Transformer::with_window`]).
    ///
    /// # Panics
    /// When `window` is 0.
    pub fn set_window(&mut self, window: usize) {
        assert!(window >= 1, "attention window");
        self.window = window;
    }

    /// The attention window: each position sees at most this many (itself included), and the
    /// start token.
    pub fn window(&self) -> usize {
        self.window
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
        if self.bf16_cache {
            Cache::new_bf16(slots, self.config.head_dim(), positions)
        } else {
            Cache::new(slots, self.config.head_dim(), positions)
        }
    }

    /// Teacher-forced logits of a chunk from its inputs (at most `context`; the start token,
    /// then the bytes but the last): row `i` of `logits` (`inputs.len() × 256`) predicts the
    /// byte after `inputs[..=i]`.
    pub fn forward(&self, inputs: &[u32], logits: &mut [f32], scratch: &mut Scratch) {
        let n = inputs.len();
        assert!(
            n <= self.config.context,
            "chunk longer than the model's context"
        );
        assert!(logits.len() >= n * OUTPUT_VOCAB);
        if n == 0 {
            return;
        }
        let slots = self.config.n_layers * self.config.n_heads;
        let mut cache = match scratch.cache.take() {
            Some(c)
                if c.capacity() >= n
                    && c.slots() == slots
                    && c.is_wide_bf16() == self.bf16_cache =>
            {
                c
            }
            // The values of the decoder's bfloat16 cache, widened: the same bits, and faster
            // here, where the keys sit in L1.
            _ if self.bf16_cache => Cache::new_bf16_wide(slots, self.config.head_dim(), n),
            _ => self.cache_with_capacity(n),
        };
        cache.clear();
        self.run(inputs, Rows::Sequence, &mut [&mut cache], logits, scratch);
        scratch.cache = Some(cache);
    }

    /// Advance each chunk by one input: `tokens[b]` (a byte, or the start token first) enters
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
        attention::assert_room(caches, self.config.context);
        self.run(tokens, Rows::Batch, caches, logits, scratch);
    }

    /// The shared forward: embed, every block's attention and MLP sublayers, then the head.
    fn run(
        &self,
        tokens: &[u32],
        rows: Rows,
        caches: &mut [&mut Cache],
        logits: &mut [f32],
        s: &mut Scratch,
    ) {
        let mut timer = Timer::new(s.profile.is_some());
        let m = tokens.len();
        let positions = attention::positions(rows, caches, m);
        self.embed(tokens, grow(&mut s.x, m * self.config.d_model));
        for l in 0..self.config.n_layers {
            self.attention_sublayer(l, rows, &positions, caches, s, &mut timer);
            self.mlp_sublayer(l, m, s, &mut timer);
        }
        attention::advance(rows, caches, m);
        self.head(m, &mut logits[..m * OUTPUT_VOCAB], s, &mut timer);
        timer.finish(s.profile.as_mut());
    }

    /// Each token's embedding row into `x`.
    fn embed(&self, tokens: &[u32], x: &mut [f32]) {
        let d = self.config.d_model;
        for (row, &t) in x.chunks_exact_mut(d).zip(tokens) {
            assert!((t as usize) < INPUT_VOCAB, "token out of range");
            row.copy_from_slice(&self.weights.embed[t as usize * d..(t as usize + 1) * d]);
        }
    }

    /// `LN` of `x` into `h` (pre-LN), or `x` itself (post-LN): a sublayer's input.
    fn sublayer_input<'a>(&self, ln: &LayerNorm, x: &'a [f32], h: &'a mut [f32]) -> &'a [f32] {
        match self.config.norm {
            Norm::Pre => {
                let (d, eps) = (self.config.d_model, self.config.norm_eps);
                kernels::layer_norm(self.isa, x, h, &ln.weight, &ln.bias, d, eps);
                h
            }
            Norm::Post => x,
        }
    }

    /// Post-LN only: `x = LN(x)` after a sublayer's residual add.
    fn post_norm(&self, ln: &LayerNorm, x: &mut [f32], h: &mut [f32]) {
        if self.config.norm == Norm::Post {
            let (d, eps) = (self.config.d_model, self.config.norm_eps);
            h.copy_from_slice(x);
            kernels::layer_norm(self.isa, h, x, &ln.weight, &ln.bias, d, eps);
        }
    }

    /// `x += attention(LN1(x))·Wo` for block `l`: project, rotate, store each head's keys and
    /// values in the caches, attend.
    fn attention_sublayer(
        &self,
        l: usize,
        rows: Rows,
        positions: &[usize],
        caches: &mut [&mut Cache],
        s: &mut Scratch,
        timer: &mut Timer,
    ) {
        let (block, packed) = (&self.weights.blocks[l], &self.packed[l]);
        let (isa, m, d) = (self.isa, positions.len(), self.config.d_model);
        let (heads, hd) = (self.config.n_heads, self.config.head_dim());
        let x = &mut s.x[..m * d];
        let h = grow(&mut s.h, m * d);
        let qkv = grow(&mut s.qkv, m * 3 * d);
        let input = self.sublayer_input(&block.ln1, x, h);
        self.product(input, &packed.wqkv, qkv, m, None, timer);
        for (row, &pos) in qkv.chunks_exact_mut(3 * d).zip(positions) {
            for head in 0..heads {
                self.rope.rotate(&mut row[head * hd..(head + 1) * hd], pos);
                self.rope
                    .rotate(&mut row[d + head * hd..d + (head + 1) * hd], pos);
            }
        }
        let attention_start = timer.start.map(|_| Instant::now());
        for head in 0..heads {
            let at = |offset| Strided {
                data: qkv,
                stride: 3 * d,
                offset: offset + head * hd,
            };
            attention::store(
                rows,
                caches,
                l * heads + head,
                positions,
                at(d),
                at(2 * d),
                hd,
            );
        }
        let attn = grow(&mut s.attn, m * d);
        let (qkv, caches): (&[f32], &[&mut Cache]) = (qkv, caches);
        let attend = |heads: Range<usize>, out: &mut [f32], scratch: &mut HeadScratch| {
            self.attend_heads(l, heads, rows, positions, caches, qkv, out, scratch)
        };
        if m == 1 && team::active() {
            // One row: each thread attends with half of the heads, into its half of the row.
            let split = heads / 2;
            let (left, right) = attn.split_at_mut(split * hd);
            let [first, second] = &mut s.heads;
            team::join(
                || attend(0..split, left, first),
                || attend(split..heads, right, second),
            );
        } else {
            attend(0..heads, attn, &mut s.heads[0]);
        }
        if let Some(t) = attention_start {
            timer.attention += t.elapsed();
        }
        let proj = grow(&mut s.proj, m * d);
        self.product(attn, &packed.wo, proj, m, None, timer);
        kernels::add_residual(isa, x, proj, None);
        self.post_norm(&block.ln1, x, h);
    }

    /// `x += W2·gelu(W1·LN2(x) + b1) + b2` for block `l`.
    fn mlp_sublayer(&self, l: usize, m: usize, s: &mut Scratch, timer: &mut Timer) {
        let (block, packed) = (&self.weights.blocks[l], &self.packed[l]);
        let (isa, d, f) = (self.isa, self.config.d_model, self.config.d_ff);
        let x = &mut s.x[..m * d];
        let h = grow(&mut s.h, m * d);
        let hidden = grow(&mut s.hidden, m * f);
        let proj = grow(&mut s.proj, m * d);
        let input = self.sublayer_input(&block.ln2, x, h);
        let gelu = (&block.b1[..], kernels::bias_gelu as Epilogue);
        self.product(input, &packed.w1, hidden, m, Some(gelu), timer);
        self.product(hidden, &packed.w2, proj, m, None, timer);
        kernels::add_residual(isa, x, proj, Some(&block.b2));
        self.post_norm(&block.ln2, x, h);
    }

    /// `logits = LN_f(x)·W_head + b_head` (no final LN for post-LN models).
    fn head(&self, m: usize, logits: &mut [f32], s: &mut Scratch, timer: &mut Timer) {
        let d = self.config.d_model;
        let x = &s.x[..m * d];
        let h = grow(&mut s.h, m * d);
        let input = self.sublayer_input(&self.weights.ln_f, x, h);
        let bias = (&self.weights.head_bias[..], kernels::add_bias as Epilogue);
        self.product(input, &self.head, logits, m, Some(bias), timer);
    }

    /// `out = input · w` for `m` rows, then `epilogue` with its per-column vector (a bias, a
    /// bias and GELU) on every row. A single row is split by columns between the threads of a
    /// team ([`team::join`]), each computing its columns exactly as the whole product would.
    fn product(
        &self,
        input: &[f32],
        w: &Packed,
        out: &mut [f32],
        m: usize,
        epilogue: Option<(&[f32], Epilogue)>,
        timer: &mut Timer,
    ) {
        let isa = self.isa;
        let columns = |cols: Range<usize>, out: &mut [f32]| {
            kernels::matmul_cols(isa, input, w, cols.clone(), out, m);
            if let Some((vector, f)) = epilogue {
                f(isa, out, &vector[cols]);
            }
        };
        let n = w.cols();
        timer.matmul(|| {
            if m == 1 && team::active() {
                let middle = w.middle_column();
                let (left, right) = out[..n].split_at_mut(middle);
                team::join(|| columns(0..middle, left), || columns(middle..n, right));
            } else {
                columns(0..n, &mut out[..m * n]);
            }
        });
    }

    /// Attention of `heads` (queries in `qkv`, keys and values already stored) for block `l`;
    /// head `h`'s result goes to `out` at column `(h - heads.start) × head_dim` of each row of
    /// `d_model`.
    #[allow(clippy::too_many_arguments)]
    fn attend_heads(
        &self,
        l: usize,
        heads: Range<usize>,
        rows: Rows,
        positions: &[usize],
        caches: &[&mut Cache],
        qkv: &[f32],
        out: &mut [f32],
        scratch: &mut HeadScratch,
    ) {
        let (m, d, hd) = (positions.len(), self.config.d_model, self.config.head_dim());
        let scale = 1.0 / (hd as f32).sqrt();
        let q = grow(&mut scratch.q, m * hd);
        for head in heads.clone() {
            for (qo, row) in q.chunks_exact_mut(hd).zip(qkv.chunks_exact(3 * d)) {
                for (o, &v) in qo.iter_mut().zip(&row[head * hd..][..hd]) {
                    *o = v * scale;
                }
            }
            let dest = (&mut out[..], d, (head - heads.start) * hd);
            attention::attend(
                self.isa,
                rows,
                caches,
                l * self.config.n_heads + head,
                positions,
                q,
                hd,
                self.window,
                dest,
                &mut scratch.attend,
            );
        }
    }
}
