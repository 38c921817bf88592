//! Causal self-attention shared by every network: the key/value [`Cache`], rotary position
//! tables ([`Rope`]), and the two steps each layer takes per head — [`store`] the new rows'
//! keys and values, then [`attend`] over everything stored.
//!
//! A forward runs either one sequence's consecutive positions against one cache
//! ([`Rows::Sequence`], the encoder's teacher forcing) or one new position per sequence, each
//! against its own cache ([`Rows::Batch`], the decoder's lockstep step). Both call the same
//! kernel ([`kernels::attend`]) row by row, so they give bit-identical outputs.

use crate::kernels::{self, Bf16, Isa, KEY_TILE, PanelValue, to_bf16};
use crate::math;

/// The keys and values of the positions a sequence has seen, per layer and key/value head, in
/// `f32` or rounded to bfloat16 ([`Cache::new_bf16`]).
#[derive(Debug, Clone)]
pub struct Cache {
    len: usize,
    store: Store,
    capacity: usize,
}

/// A [`Cache`]'s keys and values.
#[derive(Debug, Clone)]
enum Store {
    F32(Slots<f32>),
    Bf16(Slots<Bf16>),
    /// Rounded to bfloat16 and widened back: the values of `Bf16`, in `f32`.
    Bf16Wide(Slots<f32>),
}

/// Keys and values per (layer, key/value head) slot.
#[derive(Debug, Clone)]
struct Slots<T> {
    /// Keys per slot, in tiles of [`KEY_TILE`] positions ([`kernels::key_index`]).
    keys: Vec<Vec<T>>,
    /// Values per slot: `capacity × head_dim` each.
    values: Vec<Vec<T>>,
}

impl<T: PanelValue> Slots<T> {
    fn new(slots: usize, hd: usize, capacity: usize) -> Slots<T> {
        Slots {
            keys: (0..slots)
                .map(|_| vec![T::default(); hd * capacity])
                .collect(),
            values: (0..slots)
                .map(|_| vec![T::default(); capacity * hd])
                .collect(),
        }
    }
}

impl Cache {
    /// A cache of `slots` (layer, key/value head) pairs of width `hd` for `positions`.
    pub fn new(slots: usize, hd: usize, positions: usize) -> Cache {
        Cache::with_store(positions, |capacity| {
            Store::F32(Slots::new(slots, hd, capacity))
        })
    }

    /// An empty cache for `positions` (rounded up to whole key tiles), its store made by
    /// `store` for that capacity.
    fn with_store(positions: usize, store: impl FnOnce(usize) -> Store) -> Cache {
        let capacity = positions.div_ceil(KEY_TILE) * KEY_TILE;
        Cache {
            len: 0,
            store: store(capacity),
            capacity,
        }
    }

    /// [`Cache::new`], keeping keys and values rounded to bfloat16 ([`kernels::to_bf16`]):
    /// half the bytes for a decoder step to read.
    pub fn new_bf16(slots: usize, hd: usize, positions: usize) -> Cache {
        Cache::with_store(positions, |capacity| {
            Store::Bf16(Slots::new(slots, hd, capacity))
        })
    }

    /// [`Cache::new_bf16`]'s values (keys and values rounded to bfloat16), kept widened to
    /// `f32`: twice the memory, no widening on each read. Attention over it gives the same bits
    /// as over [`Cache::new_bf16`]; the teacher-forced pass, whose keys sit in L1, is faster
    /// with it.
    pub fn new_bf16_wide(slots: usize, hd: usize, positions: usize) -> Cache {
        Cache::with_store(positions, |capacity| {
            Store::Bf16Wide(Slots::new(slots, hd, capacity))
        })
    }

    /// Whether the cache is [`Cache::new_bf16_wide`]'s.
    pub fn is_wide_bf16(&self) -> bool {
        matches!(self.store, Store::Bf16Wide(_))
    }

    /// Positions stored so far.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether no position is stored.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Positions the cache can hold.
    pub fn capacity(&self) -> usize {
        self.capacity
    }

    /// The number of (layer, key/value head) slots.
    pub fn slots(&self) -> usize {
        match &self.store {
            Store::F32(s) | Store::Bf16Wide(s) => s.keys.len(),
            Store::Bf16(s) => s.keys.len(),
        }
    }

    /// Forget every position, keeping the memory.
    pub fn clear(&mut self) {
        self.len = 0;
    }
}

/// Whether the rows of a forward are one sequence's consecutive positions or one row per
/// sequence.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Rows {
    /// Rows `0..m` are positions `0..m` of the one cache.
    Sequence,
    /// Row `r` is the next position of cache `r`.
    Batch,
}

impl Rows {
    /// Query rows per attention kernel call.
    fn per_call(self, m: usize) -> usize {
        match self {
            Rows::Sequence => 32.min(m),
            Rows::Batch => 1,
        }
    }
}

/// The positions of a forward's rows: `0..m`, or each cache's next position.
pub fn positions(rows: Rows, caches: &[&mut Cache], m: usize) -> Vec<usize> {
    match rows {
        Rows::Sequence => (0..m).collect(),
        Rows::Batch => caches.iter().map(|c| c.len).collect(),
    }
}

/// Check that each of `caches` has room for one more position within `limit`.
///
/// # Panics
/// When one is full.
pub fn assert_room(caches: &[&mut Cache], limit: usize) {
    for c in caches {
        assert!(c.len < limit && c.len < c.capacity, "cache full");
    }
}

/// Record that the forward's rows are stored: the sequence's cache holds `m` positions, or each
/// batch cache one more.
pub fn advance(rows: Rows, caches: &mut [&mut Cache], m: usize) {
    for cache in caches.iter_mut() {
        cache.len = match rows {
            Rows::Sequence => m,
            Rows::Batch => cache.len + 1,
        };
    }
}

/// Row `r`'s `width` values starting at `offset + r × stride` of `data`: one head's slice of a
/// row-major activation matrix.
#[derive(Debug, Clone, Copy)]
pub struct Strided<'a> {
    /// The matrix.
    pub data: &'a [f32],
    /// Values per row.
    pub stride: usize,
    /// Where the head's slice starts within a row.
    pub offset: usize,
}

impl<'a> Strided<'a> {
    fn row(&self, r: usize, width: usize) -> &'a [f32] {
        &self.data[r * self.stride + self.offset..][..width]
    }
}

/// Store the keys and values of every row for cache slot `slot` at the rows' positions.
pub fn store(
    rows: Rows,
    caches: &mut [&mut Cache],
    slot: usize,
    positions: &[usize],
    keys: Strided,
    values: Strided,
    hd: usize,
) {
    for (r, &pos) in positions.iter().enumerate() {
        let cache: &mut Cache = match rows {
            Rows::Sequence => &mut *caches[0],
            Rows::Batch => &mut *caches[r],
        };
        match &mut cache.store {
            Store::F32(s) => put(s, slot, pos, keys.row(r, hd), values.row(r, hd), |x| x),
            Store::Bf16(s) => put(s, slot, pos, keys.row(r, hd), values.row(r, hd), to_bf16),
            Store::Bf16Wide(s) => put(s, slot, pos, keys.row(r, hd), values.row(r, hd), |x| {
                to_bf16(x).widen()
            }),
        }
    }
}

/// One position's key and value into slot `slot`, each value through `convert`.
fn put<T: PanelValue>(
    s: &mut Slots<T>,
    slot: usize,
    pos: usize,
    key: &[f32],
    value: &[f32],
    convert: impl Fn(f32) -> T,
) {
    let hd = key.len();
    for (i, &k) in key.iter().enumerate() {
        s.keys[slot][kernels::key_index(hd, pos, i)] = convert(k);
    }
    for (d, &v) in s.values[slot][pos * hd..(pos + 1) * hd]
        .iter_mut()
        .zip(value)
    {
        *d = convert(v);
    }
}

/// Buffers reused by [`attend`].
#[derive(Debug, Default, Clone)]
pub struct AttendScratch {
    scores: Vec<f32>,
    out: Vec<f32>,
}

/// Causal attention of one query head over cache slot `slot`: `queries` holds `m × hd` rotated,
/// scaled queries, and row `r`'s result goes to `hd` values of `dest` at
/// `offset + r × stride`. Each row sees at most the last `window` positions and the first
/// ([`kernels::attend`]); `usize::MAX` sees all.
#[allow(clippy::too_many_arguments)]
pub fn attend(
    isa: Isa,
    rows: Rows,
    caches: &[&mut Cache],
    slot: usize,
    positions: &[usize],
    queries: &[f32],
    hd: usize,
    window: usize,
    (dest, stride, offset): (&mut [f32], usize, usize),
    scratch: &mut AttendScratch,
) {
    let m = positions.len();
    let per_call = rows.per_call(m);
    let capacity = caches.iter().map(|c| c.capacity).max().unwrap_or(0);
    let scores = grow(&mut scratch.scores, kernels::ROW_BLOCK * capacity);
    let out = grow(&mut scratch.out, per_call * hd);
    match rows {
        Rows::Sequence => {
            let cache = &caches[0];
            for i0 in (0..m).step_by(per_call) {
                let n = per_call.min(m - i0);
                let qs = &queries[i0 * hd..(i0 + n) * hd];
                let shape = (cache.capacity, hd, i0, n, window);
                attend_slot(isa, &cache.store, slot, qs, shape, scores, out);
                for r in 0..n {
                    dest[(i0 + r) * stride + offset..][..hd]
                        .copy_from_slice(&out[r * hd..(r + 1) * hd]);
                }
            }
        }
        Rows::Batch => {
            for (r, &pos) in positions.iter().enumerate() {
                let cache = &caches[r];
                let qs = &queries[r * hd..(r + 1) * hd];
                let shape = (cache.capacity, hd, pos, 1, window);
                attend_slot(isa, &cache.store, slot, qs, shape, scores, out);
                dest[r * stride + offset..][..hd].copy_from_slice(&out[..hd]);
            }
        }
    }
}

/// [`kernels::attend`] (or its bfloat16 twin) over one slot of a cache's store; `shape` is
/// (stride, head width, first row's position, rows, window).
fn attend_slot(
    isa: Isa,
    store: &Store,
    slot: usize,
    q: &[f32],
    (stride, hd, i0, rows, window): (usize, usize, usize, usize, usize),
    scores: &mut [f32],
    out: &mut [f32],
) {
    match store {
        Store::F32(s) | Store::Bf16Wide(s) => kernels::attend(
            isa,
            q,
            &s.keys[slot],
            &s.values[slot],
            stride,
            hd,
            i0,
            rows,
            window,
            scores,
            out,
        ),
        Store::Bf16(s) => kernels::attend_bf16(
            isa,
            q,
            &s.keys[slot],
            &s.values[slot],
            stride,
            hd,
            i0,
            rows,
            window,
            scores,
            out,
        ),
    }
}

/// `buf` as a slice of at least `len` values (grown with zeros, never shrunk), cut to `len`.
pub fn grow(buf: &mut Vec<f32>, len: usize) -> &mut [f32] {
    if buf.len() < len {
        buf.resize(len, 0.0);
    }
    &mut buf[..len]
}

/// Rotary position tables: `cos` and `sin` of `pos · theta^(-2i/hd)` for `pos < context`,
/// `i < hd / 2` (row-major by position), computed in f64 by the crate's own series
/// ([`math`]) and rounded to f32, so every machine has the same tables.
#[derive(Debug, Clone)]
pub struct Rope {
    cos: Vec<f32>,
    sin: Vec<f32>,
}

impl Rope {
    /// The tables for `context` positions of heads `hd` wide with base `theta`.
    pub fn new(context: usize, hd: usize, theta: f64) -> Rope {
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
        Rope { cos, sin }
    }

    /// Rotate one head's vector to `pos`: pairs `(i, i + hd/2)` turn by `pos · theta^(-2i/hd)`,
    /// `a' = a cos - b sin`, `b' = b cos + a sin`.
    pub fn rotate(&self, v: &mut [f32], pos: usize) {
        self.turn(v, pos, false)
    }

    /// The inverse rotation (the transpose, used by a backward pass): `sin` negated.
    pub fn rotate_back(&self, v: &mut [f32], pos: usize) {
        self.turn(v, pos, true)
    }

    fn turn(&self, v: &mut [f32], pos: usize, inverse: bool) {
        let half = v.len() / 2;
        let cos = &self.cos[pos * half..(pos + 1) * half];
        let sin = &self.sin[pos * half..(pos + 1) * half];
        let (a, b) = v.split_at_mut(half);
        for i in 0..half {
            let s = if inverse { -sin[i] } else { sin[i] };
            let (x, y) = (a[i], b[i]);
            a[i] = x * cos[i] - y * s;
            b[i] = y * cos[i] + x * s;
        }
    }
}
