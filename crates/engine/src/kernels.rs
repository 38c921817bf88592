//! The engine's compute kernels, each with one arithmetic order per output element.
//!
//! Every kernel is written once, as plain Rust that LLVM vectorizes, and compiled several times:
//! for AVX-512, for AVX2 + FMA and for the build's baseline target ([`Isa`]). The vectorization
//! only runs *independent* output elements side by side; each element's operations and their
//! order are fixed by the source (see `docs/ENGINE.md`), so all versions give bit-identical
//! results. Products are fused multiply-adds (`f32::mul_add`, correctly rounded everywhere: a
//! hardware FMA on x86-64-v3, AVX-512 and aarch64, a correctly rounded library call on older
//! x86-64), used for every product in a matrix product or an attention dot product.

use crate::int8::Int8Panels;
use crate::math;
use std::ops::Range;
use std::sync::OnceLock;

/// An instruction-set version of the kernels. All give bit-identical results; they differ only
/// in speed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Isa {
    /// The build's target features (SSE2 on plain x86-64, NEON on aarch64).
    Portable,
    /// x86-64 with AVX2 and FMA.
    Avx2,
    /// x86-64 with AVX-512 (F, VL, BW, DQ) and FMA.
    Avx512,
}

impl Isa {
    /// The name used by the `LMZIP_ISA` variable.
    pub fn name(self) -> &'static str {
        match self {
            Isa::Portable => "portable",
            Isa::Avx2 => "avx2",
            Isa::Avx512 => "avx512",
        }
    }

    /// Every version this CPU can run, slowest first.
    pub fn available() -> Vec<Isa> {
        #[cfg_attr(not(target_arch = "x86_64"), allow(unused_mut))]
        let mut isas = vec![Isa::Portable];
        #[cfg(target_arch = "x86_64")]
        {
            if std::arch::is_x86_feature_detected!("avx2")
                && std::arch::is_x86_feature_detected!("fma")
            {
                isas.push(Isa::Avx2);
                if std::arch::is_x86_feature_detected!("avx512f")
                    && std::arch::is_x86_feature_detected!("avx512vl")
                    && std::arch::is_x86_feature_detected!("avx512bw")
                    && std::arch::is_x86_feature_detected!("avx512dq")
                {
                    isas.push(Isa::Avx512);
                }
            }
        }
        isas
    }

    /// The fastest available version, capped by the environment variable `LMZIP_ISA`
    /// (`portable`, `avx2` or `avx512`) when it is set, as tests do to compare versions.
    pub fn detect() -> Isa {
        static DETECTED: OnceLock<Isa> = OnceLock::new();
        *DETECTED.get_or_init(|| {
            let available = Isa::available();
            let best = *available.last().expect("portable is always available");
            let cap = std::env::var("LMZIP_ISA")
                .ok()
                .and_then(|name| Isa::from_name(&name));
            available
                .into_iter()
                .filter(|isa| cap.is_none_or(|cap| *isa <= cap))
                .max()
                .unwrap_or(best)
        })
    }

    fn from_name(name: &str) -> Option<Isa> {
        [Isa::Portable, Isa::Avx2, Isa::Avx512]
            .into_iter()
            .find(|isa| isa.name() == name)
    }
}

/// Defines `pub fn name(isa: Isa, args...)` that runs `body` compiled for `isa`.
macro_rules! multiversion {
    ($(#[$attr:meta])* $vis:vis fn $name:ident($($arg:ident: $ty:ty),* $(,)?) $body:block) => {
        $(#[$attr])*
        #[allow(clippy::too_many_arguments)]
        $vis fn $name(isa: Isa, $($arg: $ty),*) {
            #[inline(always)]
            #[allow(clippy::too_many_arguments)]
            fn imp($($arg: $ty),*) $body
            match isa {
                #[cfg(target_arch = "x86_64")]
                Isa::Avx512 => {
                    #[target_feature(enable = "avx512f,avx512vl,avx512bw,avx512dq,avx2,fma")]
                    #[allow(clippy::too_many_arguments)]
                    unsafe fn avx512($($arg: $ty),*) { imp($($arg),*) }
                    // SAFETY: `Isa::Avx512` is only ever chosen on a CPU with these features.
                    unsafe { avx512($($arg),*) }
                }
                #[cfg(target_arch = "x86_64")]
                Isa::Avx2 => {
                    #[target_feature(enable = "avx2,fma")]
                    #[allow(clippy::too_many_arguments)]
                    unsafe fn avx2($($arg: $ty),*) { imp($($arg),*) }
                    // SAFETY: `Isa::Avx2` is only ever chosen on a CPU with these features.
                    unsafe { avx2($($arg),*) }
                }
                _ => imp($($arg),*),
            }
        }
    };
}

/// Rows of `a` per register tile of the matrix product.
const MR: usize = 6;
/// Columns per register tile of the matrix product, and the width of a packed panel.
pub const NR: usize = 16;
/// Rows per cache block of the matrix product.
const MB: usize = 64;

/// A weight value as a matrix panel stores it: an `f32`, or a bfloat16 (the high 16 bits of an
/// `f32`, [`to_bf16`]) that widens to its `f32` exactly.
pub trait PanelValue: Copy + Default + Send + Sync + 'static {
    /// The value as an `f32` (exact).
    fn widen(self) -> f32;
}

impl PanelValue for f32 {
    #[inline(always)]
    fn widen(self) -> f32 {
        self
    }
}

/// A bfloat16 value, kept as its 16 bits.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Bf16(pub u16);

impl PanelValue for Bf16 {
    #[inline(always)]
    fn widen(self) -> f32 {
        f32::from_bits(u32::from(self.0) << 16)
    }
}

/// `x` rounded to bfloat16, to nearest with ties to even (by integer operations on the bits;
/// `x` finite).
pub fn to_bf16(x: f32) -> Bf16 {
    let bits = x.to_bits();
    let rounded = bits.wrapping_add(0x7FFF + ((bits >> 16) & 1));
    Bf16((rounded >> 16) as u16)
}

/// A `k × n` matrix stored for [`matmul`]: panels of [`NR`] columns, each panel `k × NR`
/// contiguous (columns past `n` are zero), so a register tile streams through memory. Values
/// are `f32`, or bfloat16 ([`Packed::new_bf16`]: half the bytes to read, products computed from
/// the widened values exactly as for `f32`).
#[derive(Debug, Clone, PartialEq)]
pub struct Packed {
    k: usize,
    n: usize,
    data: Panels,
}

/// The values of a [`Packed`] matrix.
#[derive(Debug, Clone, PartialEq)]
enum Panels {
    F32(Vec<f32>),
    Bf16(Vec<Bf16>),
    Int8(Int8Panels),
}

/// `b` (row-major `k × n`) laid out in panels, each value through `convert`.
fn panels<T: PanelValue>(b: &[f32], k: usize, n: usize, convert: impl Fn(f32) -> T) -> Vec<T> {
    assert_eq!(b.len(), k * n, "packed matrix shape");
    let count = n.div_ceil(NR);
    let mut data = vec![T::default(); count * k * NR];
    for q in 0..count {
        for p in 0..k {
            for c in 0..NR.min(n - q * NR) {
                data[(q * k + p) * NR + c] = convert(b[p * n + q * NR + c]);
            }
        }
    }
    data
}

impl Packed {
    /// Pack the row-major `k × n` matrix `b`.
    pub fn new(b: &[f32], k: usize, n: usize) -> Packed {
        Packed {
            k,
            n,
            data: Panels::F32(panels(b, k, n, |x| x)),
        }
    }

    /// Pack the row-major `k × n` matrix `b` rounded to bfloat16 ([`to_bf16`]).
    pub fn new_bf16(b: &[f32], k: usize, n: usize) -> Packed {
        Packed {
            k,
            n,
            data: Panels::Bf16(panels(b, k, n, to_bf16)),
        }
    }

    /// Pack the row-major `k × n` matrix `b` as int8 values with one scale per column: the
    /// products are then exact integer sums ([`crate::int8`]).
    pub fn new_int8(b: &[f32], k: usize, n: usize) -> Packed {
        Packed {
            k,
            n,
            data: Panels::Int8(Int8Panels::new(b, k, n)),
        }
    }

    /// The same matrix stored as int8 ([`Packed::new_int8`]), from `f32` panels; `None` when
    /// it is stored otherwise. The panels are read back one matrix at a time, so converting a
    /// model costs one matrix of `f32` beside it.
    pub fn to_int8(&self) -> Option<Packed> {
        let Panels::F32(data) = &self.data else {
            return None;
        };
        let (k, n) = (self.k, self.n);
        let mut b = vec![0.0; k * n];
        for q in 0..n.div_ceil(NR) {
            for p in 0..k {
                for c in 0..NR.min(n - q * NR) {
                    b[p * n + q * NR + c] = data[(q * k + p) * NR + c];
                }
            }
        }
        Some(Packed::new_int8(&b, k, n))
    }

    /// Whether the values are stored as int8.
    pub fn is_int8(&self) -> bool {
        matches!(self.data, Panels::Int8(_))
    }

    /// Rows (the inner dimension of the product).
    pub fn rows(&self) -> usize {
        self.k
    }

    /// Columns.
    pub fn cols(&self) -> usize {
        self.n
    }

    /// The panel boundary nearest the middle of the columns: where to split a product between
    /// two threads ([`matmul_cols`]).
    pub fn middle_column(&self) -> usize {
        self.n.div_ceil(NR) / 2 * NR
    }
}

/// `c = a · b` for row-major `a` (`m × k`) and `c` (`m × n`), `b` packed.
///
/// For `f32` and bfloat16 weights, element `c[i][j]` is `acc = 0; for p in 0..k { acc =
/// fma(a[i][p], b[p][j], acc) }` (`b[p][j]` widened to `f32` when stored as bfloat16), whatever
/// the shape of the tiles, the row's position in `a`, or the version. For int8 weights it is the
/// exact integer product of [`crate::int8`].
pub fn matmul(isa: Isa, a: &[f32], b: &Packed, c: &mut [f32], m: usize) {
    matmul_cols(isa, a, b, 0..b.n, c, m)
}

/// Columns `cols` of [`matmul`]'s product: `c` (`m × cols.len()`, row-major) receives
/// `a · b[.., cols]`, each element computed exactly as [`matmul`] computes it (so a product
/// split by columns between threads gives the same bits). `cols` starts at a panel boundary
/// (a multiple of [`NR`]) and ends at one or at `b.cols()`.
pub fn matmul_cols(isa: Isa, a: &[f32], b: &Packed, cols: Range<usize>, c: &mut [f32], m: usize) {
    assert!(
        cols.start.is_multiple_of(NR)
            && cols.start <= cols.end
            && (cols.end.is_multiple_of(NR) || cols.end == b.n)
            && cols.end <= b.n,
        "matmul columns"
    );
    assert!(
        a.len() >= m * b.k && c.len() >= m * cols.len(),
        "matmul shapes"
    );
    match &b.data {
        Panels::Int8(panels) => crate::int8::matmul(isa, a, panels, b.k, cols, c, m),
        _ => float_cols(isa, a, b, cols, c, m),
    }
}

multiversion! {
    /// [`matmul_cols`] for `f32` and bfloat16 weights.
    fn float_cols(a: &[f32], b: &Packed, cols: Range<usize>, c: &mut [f32], m: usize) {
        let n = cols.len();
        let panels = cols.start / NR * b.k * NR..cols.end.div_ceil(NR) * b.k * NR;
        match &b.data {
            Panels::F32(data) => matmul_panels(a, &data[panels], b.k, n, c, m),
            Panels::Bf16(data) => matmul_panels(a, &data[panels], b.k, n, c, m),
            Panels::Int8(_) => unreachable!("BUG: int8 panels go to int8::matmul"),
        }
    }
}

/// [`matmul`]'s body for one storage type.
#[inline(always)]
fn matmul_panels<T: PanelValue>(
    a: &[f32],
    data: &[T],
    k: usize,
    n: usize,
    c: &mut [f32],
    m: usize,
) {
    if m < MR {
        few_rows(a, data, k, n, c, m);
        return;
    }
    let mut tile_out = [[0.0f32; NR]; MR];
    for i0 in (0..m).step_by(MB) {
        let i_end = (i0 + MB).min(m);
        for (q, panel) in data.chunks_exact(k * NR).enumerate() {
            let cols = NR.min(n - q * NR);
            let mut i = i0;
            while i < i_end {
                let rows = MR.min(i_end - i);
                match rows {
                    MR => tile::<MR, T>(a, panel, &mut tile_out, i, k),
                    1 => tile::<1, T>(a, panel, &mut tile_out, i, k),
                    2 => tile::<2, T>(a, panel, &mut tile_out, i, k),
                    3 => tile::<3, T>(a, panel, &mut tile_out, i, k),
                    4 => tile::<4, T>(a, panel, &mut tile_out, i, k),
                    _ => tile::<5, T>(a, panel, &mut tile_out, i, k),
                }
                for (r, out) in tile_out.iter().take(rows).enumerate() {
                    store_row(&mut c[(i + r) * n + q * NR..], out, cols);
                }
                i += rows;
            }
        }
    }
}

/// The first `cols` values of a tile's row into `dst` (a whole panel's width without a call to
/// `memcpy`, which a tile row is too short to pay for).
#[inline(always)]
pub(crate) fn store_row(dst: &mut [f32], row: &[f32; NR], cols: usize) {
    match cols {
        NR => {
            let dst: &mut [f32; NR] = (&mut dst[..NR]).try_into().expect("panel width");
            *dst = *row;
        }
        _ => dst[..cols].copy_from_slice(&row[..cols]),
    }
}

/// Rows `i..i + R` of `a` (rows of `k`), as slices.
#[inline(always)]
fn row_slices<const R: usize>(a: &[f32], i: usize, k: usize) -> [&[f32]; R] {
    let mut rows = [&a[..0]; R];
    for (r, row) in rows.iter_mut().enumerate() {
        *row = &a[(i + r) * k..(i + r + 1) * k];
    }
    rows
}

/// [`matmul`] for fewer than [`MR`] rows (a decoder's step): `G` panels at once, so that one
/// or two rows still have 8 independent accumulation chains in flight (one panel's would leave
/// the FMA units waiting on their latency). Each element's chain is the same as in [`tile`].
#[inline(always)]
fn few_rows<T: PanelValue>(a: &[f32], data: &[T], k: usize, n: usize, c: &mut [f32], m: usize) {
    match m {
        1 => few_rows_of::<1, 4, T>(a, data, k, n, c),
        2 => few_rows_of::<2, 2, T>(a, data, k, n, c),
        3 => few_rows_of::<3, 1, T>(a, data, k, n, c),
        4 => few_rows_of::<4, 1, T>(a, data, k, n, c),
        _ => few_rows_of::<5, 1, T>(a, data, k, n, c),
    }
}

#[inline(always)]
fn few_rows_of<const R: usize, const G: usize, T: PanelValue>(
    a: &[f32],
    data: &[T],
    k: usize,
    n: usize,
    c: &mut [f32],
) {
    let rows = row_slices::<R>(a, 0, k);
    let panels = n.div_ceil(NR);
    for q0 in (0..panels).step_by(G) {
        let group = &data[q0 * k * NR..(q0 + G).min(panels) * k * NR];
        let mut acc = [[[0.0f32; NR]; R]; G];
        if group.len() == G * k * NR {
            panel_group::<R, G, T>(&rows, group, k, &mut acc);
        } else {
            for (acc, panel) in acc.iter_mut().zip(group.chunks_exact(k * NR)) {
                let mut one = [*acc];
                panel_group::<R, 1, T>(&rows, panel, k, &mut one);
                *acc = one[0];
            }
        }
        for (g, acc) in acc.iter().enumerate().take(panels - q0) {
            let q = q0 + g;
            let cols = NR.min(n - q * NR);
            for (r, acc) in acc.iter().enumerate() {
                store_row(&mut c[r * n + q * NR..], acc, cols);
            }
        }
    }
}

/// `G` consecutive packed panels (`group`, `G × k × NR`) times the `R` rows: `G × R` register
/// tiles advanced together, each element's chain in order of `p`.
#[inline(always)]
fn panel_group<const R: usize, const G: usize, T: PanelValue>(
    rows: &[&[f32]; R],
    group: &[T],
    k: usize,
    acc: &mut [[[f32; NR]; R]; G],
) {
    let mut a = *acc;
    for p in 0..k {
        for (g, a) in a.iter_mut().enumerate() {
            let brow: &[T; NR] = group[(g * k + p) * NR..(g * k + p + 1) * NR]
                .try_into()
                .expect("panel row");
            for r in 0..R {
                let x = rows[r][p];
                for (acc, &y) in a[r].iter_mut().zip(brow) {
                    *acc = x.mul_add(y.widen(), *acc);
                }
            }
        }
    }
    *acc = a;
}

/// One `R × NR` register tile of [`matmul`]: rows `i..i + R` of `a` times one packed panel.
#[inline(always)]
fn tile<const R: usize, T: PanelValue>(
    a: &[f32],
    panel: &[T],
    out: &mut [[f32; NR]; MR],
    i: usize,
    k: usize,
) {
    let mut acc = [[0.0f32; NR]; R];
    let rows = row_slices::<R>(a, i, k);
    for (p, brow) in panel.chunks_exact(NR).enumerate() {
        let brow: &[T; NR] = brow.try_into().expect("panel width");
        for r in 0..R {
            let x = rows[r][p];
            for (acc, &y) in acc[r].iter_mut().zip(brow) {
                *acc = x.mul_add(y.widen(), *acc);
            }
        }
    }
    out[..R].copy_from_slice(&acc);
}

/// Key positions per score tile in [`attend`]; cache capacities are multiples of it.
pub const KEY_TILE: usize = 64;
/// Where key `j`'s component `d` sits in a head's key cache of width `hd`: keys are stored in
/// tiles of [`KEY_TILE`] positions, each tile transposed (`hd × KEY_TILE`), so that a score tile
/// reads contiguous memory.
#[inline(always)]
pub fn key_index(hd: usize, j: usize, d: usize) -> usize {
    (j / KEY_TILE) * hd * KEY_TILE + d * KEY_TILE + j % KEY_TILE
}

/// Interleaved partial sums of the attention's weighted values.
pub const VALUE_LANES: usize = 4;

/// Query rows per block in [`attend`]: a key tile or value block, once in L1, serves them all.
pub const ROW_BLOCK: usize = 8;

/// Where the keys of the row at position `i` begin under a sliding `window` ([`attend`]): 0
/// while the row sees at most `window` positions, else `i + 1 - window`.
#[inline(always)]
pub fn window_start(i: usize, window: usize) -> usize {
    (i + 1).saturating_sub(window)
}

multiversion! {
    /// Causal attention of one head for the query rows at positions `i0..i0 + rows`.
    ///
    /// `q` holds `rows × hd` queries (already rotated and scaled), `kt` the keys (`stride`
    /// positions laid out by [`key_index`]), `v` the values (`stride × hd`); `scores` is scratch
    /// of at least `min(rows, ROW_BLOCK) × stride`, `stride` a multiple of [`KEY_TILE`] and above
    /// `i0 + rows - 1`.
    ///
    /// The row at position `i` sees the keys `j` in `s..=i`, `s = window_start(i, window)`, and
    /// when `s > 0` also key 0 (the start token, kept as an attention sink); `window =
    /// usize::MAX` is full causal attention. With `s_j = fma-chain over d = 0..hd of q[d]
    /// k_j[d]`: `m = max` over the keys seen, `e_j = exp(s_j - m)`, `z = math::sum` of the
    /// sequence `(e_0 if s > 0), e_s, …, e_i`; then four partial sums `a_p[d] = fma-chain over
    /// j ≡ p (mod 4), s <= j <= i, in order, of e_j v_j[d]`, where `a_0` starts from
    /// `e_0 · v_0[d]` when `s > 0` and the others from 0, and
    /// `out[d] = ((a_0[d] + a_1[d]) + (a_2[d] + a_3[d])) / z`. Nothing depends on `i0`, `rows`
    /// or the keys after `i`: a query gives the same output alone or among others.
    pub fn attend(
        q: &[f32],
        kt: &[f32],
        v: &[f32],
        stride: usize,
        hd: usize,
        i0: usize,
        rows: usize,
        window: usize,
        scores: &mut [f32],
        out: &mut [f32],
    ) {
        attend_values(q, kt, v, (stride, hd, i0, rows, window), scores, out)
    }
}

multiversion! {
    /// [`attend`] over keys and values kept in bfloat16: each is widened to its `f32` (exactly)
    /// where [`attend`] reads it; every operation is otherwise the same.
    pub fn attend_bf16(
        q: &[f32],
        kt: &[Bf16],
        v: &[Bf16],
        stride: usize,
        hd: usize,
        i0: usize,
        rows: usize,
        window: usize,
        scores: &mut [f32],
        out: &mut [f32],
    ) {
        attend_values(q, kt, v, (stride, hd, i0, rows, window), scores, out)
    }
}

/// [`attend`]'s body for keys and values stored as `T`; `shape` is (stride, head width, first
/// row's position, rows, window).
#[inline(always)]
fn attend_values<T: PanelValue>(
    q: &[f32],
    kt: &[T],
    v: &[T],
    (stride, hd, i0, rows, window): (usize, usize, usize, usize, usize),
    scores: &mut [f32],
    out: &mut [f32],
) {
    assert!(
        stride.is_multiple_of(KEY_TILE) && i0 + rows <= stride,
        "attend shapes"
    );
    assert!(q.len() >= rows * hd && kt.len() >= hd * stride && v.len() >= stride * hd);
    assert!(scores.len() >= ROW_BLOCK.min(rows) * stride && out.len() >= rows * hd);
    assert!(window >= 1, "attention window");
    for b0 in (0..rows).step_by(ROW_BLOCK) {
        let n = ROW_BLOCK.min(rows - b0);
        let first = i0 + b0;
        let starts: [usize; ROW_BLOCK] = std::array::from_fn(|r| window_start(first + r, window));
        // Scores over whole key tiles, each tile for every row of the block that reaches
        // it; keys outside a row's window are computed and never used.
        for j in (starts[0] / KEY_TILE * KEY_TILE..first + n).step_by(KEY_TILE) {
            let tile = &kt[j * hd..(j + KEY_TILE) * hd];
            for r in (0..n).filter(|&r| j <= first + r && j + KEY_TILE > starts[r]) {
                let q = &q[(b0 + r) * hd..(b0 + r + 1) * hd];
                let mut acc = [0.0f32; KEY_TILE];
                for (d, &x) in q.iter().enumerate() {
                    let keys: &[T; KEY_TILE] = tile[d * KEY_TILE..(d + 1) * KEY_TILE]
                        .try_into()
                        .expect("key tile");
                    for (acc, &y) in acc.iter_mut().zip(keys) {
                        *acc = x.mul_add(y.widen(), *acc);
                    }
                }
                scores[r * stride + j..r * stride + j + KEY_TILE].copy_from_slice(&acc);
            }
        }
        let mut z = [0.0f32; ROW_BLOCK];
        let mut sink = [0.0f32; ROW_BLOCK];
        for (r, z) in z.iter_mut().enumerate().take(n) {
            let (i, s) = (first + r, starts[r]);
            if s > 0 {
                // The sink's score, in the slot just before the window (unused otherwise).
                let q = &q[(b0 + r) * hd..(b0 + r + 1) * hd];
                let mut acc = 0.0f32;
                for (d, &x) in q.iter().enumerate() {
                    acc = x.mul_add(kt[d * KEY_TILE].widen(), acc);
                }
                scores[r * stride + s - 1] = acc;
            }
            let weights = &mut scores[r * stride + s.saturating_sub(1)..r * stride + i + 1];
            let max = math::max(weights);
            for w in weights.iter_mut() {
                *w = math::exp(*w - max);
            }
            *z = math::sum(weights);
            if s > 0 {
                sink[r] = weights[0];
                // Zero weights from the 4-aligned start up to the window leave the partial
                // sums exactly as they were (every e_j is positive and finite).
                scores[r * stride + s / VALUE_LANES * VALUE_LANES..r * stride + s].fill(0.0);
            }
        }
        let out = &mut out[b0 * hd..(b0 + n) * hd];
        let rows = Block {
            first,
            n,
            starts: &starts,
            sink: &sink,
        };
        match hd {
            16 => weighted_values::<16, T>(scores, stride, v, &rows, out),
            32 => weighted_values::<32, T>(scores, stride, v, &rows, out),
            64 => weighted_values::<64, T>(scores, stride, v, &rows, out),
            _ => {
                for r in 0..n {
                    let begin = starts[r] / VALUE_LANES * VALUE_LANES;
                    for d in 0..hd {
                        let mut acc = [0.0f32; VALUE_LANES];
                        if starts[r] > 0 {
                            acc[0] = sink[r] * v[d].widen();
                        }
                        for j in begin..=first + r {
                            let w = scores[r * stride + j];
                            acc[j % VALUE_LANES] =
                                w.mul_add(v[j * hd + d].widen(), acc[j % VALUE_LANES]);
                        }
                        out[r * hd + d] = (acc[0] + acc[1]) + (acc[2] + acc[3]);
                    }
                }
            }
        }
        for (r, o) in out.chunks_exact_mut(hd).enumerate() {
            for o in o {
                *o /= z[r];
            }
        }
    }
}

/// The query rows of one [`attend`] block: positions `first..first + n`, where each row's
/// window starts, and each row's sink weight `e_0` (used when its window starts past 0).
struct Block<'a> {
    first: usize,
    n: usize,
    starts: &'a [usize; ROW_BLOCK],
    sink: &'a [f32; ROW_BLOCK],
}

/// The weighted values of [`attend`] for a block of rows, head width `HD`: value blocks of
/// [`KEY_TILE`] positions outer, rows inner; each row's four partial chains advance in order of
/// `j` from its 4-aligned window start, so the result is as if each row ran alone.
#[inline(always)]
fn weighted_values<const HD: usize, T: PanelValue>(
    weights: &[f32],
    stride: usize,
    v: &[T],
    rows: &Block,
    out: &mut [f32],
) {
    let (first, n) = (rows.first, rows.n);
    let mut acc = [[[0.0f32; HD]; VALUE_LANES]; ROW_BLOCK];
    for ((acc, &start), &sink) in acc.iter_mut().zip(rows.starts).zip(rows.sink).take(n) {
        if start > 0 {
            for (a, &y) in acc[0].iter_mut().zip(&v[..HD]) {
                *a = sink * y.widen();
            }
        }
    }
    let begins: [usize; ROW_BLOCK] =
        std::array::from_fn(|r| rows.starts[r] / VALUE_LANES * VALUE_LANES);
    for j0 in (begins[0] / KEY_TILE * KEY_TILE..first + n).step_by(KEY_TILE) {
        for (r, acc) in acc.iter_mut().enumerate().take(n) {
            let begin = j0.max(begins[r]);
            let end = (j0 + KEY_TILE).min(first + r + 1);
            if begin >= end {
                continue;
            }
            let mut a = *acc;
            let w = &weights[r * stride + begin..r * stride + end];
            let vs = &v[begin * HD..end * HD];
            // begin is a multiple of 4, so lane p takes the keys j ≡ p (mod 4).
            let mut groups = w
                .chunks_exact(VALUE_LANES)
                .zip(vs.chunks_exact(VALUE_LANES * HD));
            for (wg, vg) in &mut groups {
                for p in 0..VALUE_LANES {
                    let vrow: &[T; HD] = vg[p * HD..(p + 1) * HD].try_into().expect("value row");
                    for (x, &y) in a[p].iter_mut().zip(vrow) {
                        *x = wg[p].mul_add(y.widen(), *x);
                    }
                }
            }
            let done = w.len() / VALUE_LANES * VALUE_LANES;
            for p in 0..w.len() - done {
                let vrow: &[T; HD] = vs[(done + p) * HD..(done + p + 1) * HD]
                    .try_into()
                    .expect("value row");
                for (x, &y) in a[p].iter_mut().zip(vrow) {
                    *x = w[done + p].mul_add(y.widen(), *x);
                }
            }
            *acc = a;
        }
    }
    for (r, acc) in acc.iter().enumerate().take(n) {
        for (d, o) in out[r * HD..(r + 1) * HD].iter_mut().enumerate() {
            *o = (acc[0][d] + acc[1][d]) + (acc[2][d] + acc[3][d]);
        }
    }
}

multiversion! {
    /// Layer normalization of each `dim`-wide row of `x` into `y`:
    /// `mean = sum(x) / dim`, `c = x - mean`, `var = sum(c * c) / dim`,
    /// `y = ((c * (1 / sqrt(var + eps))) * weight) + bias`, sums by [`math::sum`].
    pub fn layer_norm(x: &[f32], y: &mut [f32], weight: &[f32], bias: &[f32], dim: usize, eps: f32) {
        // Rows up to 512 wide (every byte Transformer of lmzip) keep their buffers on the stack.
        let (mut on_stack, mut on_heap) = ([0.0f32; 1024], Vec::new());
        let (centered, squares) = match dim <= 512 {
            true => on_stack.split_at_mut(512),
            false => {
                on_heap.resize(2 * dim, 0.0f32);
                on_heap.split_at_mut(dim)
            }
        };
        let (centered, squares) = (&mut centered[..dim], &mut squares[..dim]);
        for (x, y) in x.chunks_exact(dim).zip(y.chunks_exact_mut(dim)) {
            let mean = math::sum(x) / dim as f32;
            for (c, &x) in centered.iter_mut().zip(x) {
                *c = x - mean;
            }
            for (s, &c) in squares.iter_mut().zip(centered.iter()) {
                *s = c * c;
            }
            let inv = 1.0 / (math::sum(squares) / dim as f32 + eps).sqrt();
            for (((y, &c), &w), &b) in y.iter_mut().zip(centered.iter()).zip(weight).zip(bias) {
                *y = ((c * inv) * w) + b;
            }
        }
    }
}

multiversion! {
    /// The softmax numerators of [`crate::quantize::frequencies`] and their sum:
    /// `e[i] = math::exp(logits[i] - math::max(logits))`, `z = math::sum(e)`.
    pub fn exp_from_max(logits: &[f32], e: &mut [f32], z: &mut f32) {
        let max = math::max(logits);
        for (e, &l) in e.iter_mut().zip(logits) {
            *e = math::exp(l - max);
        }
        *z = math::sum(e);
    }
}

multiversion! {
    /// The frequencies of [`crate::quantize::frequencies`], in f64:
    /// `f[i] = 1 + min(floor(e[i] · scale), limit)`; also their sum and the first index of the
    /// largest.
    pub fn scaled_floor(e: &[f32], scale: f64, limit: f64, f: &mut [u32], sum: &mut u64, top: &mut usize) {
        for (f, &e) in f.iter_mut().zip(e) {
            *f = 1 + (f64::from(e) * scale).floor().min(limit) as u32;
        }
        *sum = f.iter().map(|&x| u64::from(x)).sum();
        let largest = f.iter().copied().max().unwrap_or(0);
        *top = f.iter().position(|&x| x == largest).unwrap_or(0);
    }
}

multiversion! {
    /// RMS normalization of each `dim`-wide row of `x` into `y` (Llama's):
    /// `ms = sum(x * x) / dim`, `y = (x * (1 / sqrt(ms + eps))) * weight`, the sum by
    /// [`math::sum`].
    pub fn rms_norm(x: &[f32], y: &mut [f32], weight: &[f32], dim: usize, eps: f32) {
        let mut squares = vec![0.0f32; dim];
        for (x, y) in x.chunks_exact(dim).zip(y.chunks_exact_mut(dim)) {
            for (s, &v) in squares.iter_mut().zip(x) {
                *s = v * v;
            }
            let inv = 1.0 / (math::sum(&squares) / dim as f32 + eps).sqrt();
            for ((y, &x), &w) in y.iter_mut().zip(x).zip(weight) {
                *y = (x * inv) * w;
            }
        }
    }
}

multiversion! {
    /// SwiGLU's gate: `gate[i] = (g / (1 + exp(-g))) * up[i]` with `g = gate[i]`
    /// ([`math::exp`]).
    pub fn silu_mul(gate: &mut [f32], up: &[f32]) {
        for (g, &u) in gate.iter_mut().zip(up) {
            *g = (*g / (1.0 + math::exp(-*g))) * u;
        }
    }
}

multiversion! {
    /// `x[i][j] = gelu(x[i][j] + bias[j])` for rows of `bias.len()` ([`math::gelu`]).
    pub fn bias_gelu(x: &mut [f32], bias: &[f32]) {
        for row in x.chunks_exact_mut(bias.len()) {
            for (x, &b) in row.iter_mut().zip(bias) {
                *x = math::gelu(*x + b);
            }
        }
    }
}

multiversion! {
    /// `x[i][j] += y[i][j] + bias[j]` (bias added to `y` first), or `x += y` with no bias.
    pub fn add_residual(x: &mut [f32], y: &[f32], bias: Option<&[f32]>) {
        match bias {
            Some(bias) => {
                for (xrow, yrow) in x.chunks_exact_mut(bias.len()).zip(y.chunks_exact(bias.len())) {
                    for ((x, &y), &b) in xrow.iter_mut().zip(yrow).zip(bias) {
                        *x += y + b;
                    }
                }
            }
            None => {
                for (x, &y) in x.iter_mut().zip(y) {
                    *x += y;
                }
            }
        }
    }
}

multiversion! {
    /// `x[i][j] += bias[j]` for rows of `bias.len()`.
    pub fn add_bias(x: &mut [f32], bias: &[f32]) {
        for row in x.chunks_exact_mut(bias.len()) {
            for (x, &b) in row.iter_mut().zip(bias) {
                *x += b;
            }
        }
    }
}

multiversion! {
    /// `iterations` rounds of `a = fma(a, 0.5, 0.5)` on each of 96 independent lanes: a
    /// register-resident loop that measures a core's peak fused multiply-add rate
    /// (`2 × 96 × iterations` flops).
    pub fn fma_loop(acc: &mut [f32; 96], iterations: usize) {
        let mut a = *acc;
        for _ in 0..iterations {
            for x in a.iter_mut() {
                *x = x.mul_add(0.5, 0.5);
            }
        }
        *acc = a;
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// `len` pseudo-random values in [-0.5, 0.5), from `seed`.
    pub(crate) fn values(len: usize, seed: u32) -> Vec<f32> {
        (0..len)
            .map(|i| {
                let h = (i as u32 ^ seed)
                    .wrapping_mul(0x9E37_79B9)
                    .rotate_left(13)
                    .wrapping_mul(0x85EB_CA6B);
                (h >> 8) as f32 / (1u32 << 24) as f32 - 0.5
            })
            .collect()
    }

    #[test]
    fn matmul_matches_the_definition_bit_for_bit() {
        for &(m, k, n) in &[
            (1, 1, 1),
            (5, 7, 33),
            (67, 19, 64),
            (4, 256, 96),
            (2, 33, 100),
            (3, 16, 80),
            (1, 128, 256),
            (130, 3, 31),
        ] {
            let a = values(m * k, 1);
            let b = values(k * n, 2);
            let half: Vec<f32> = b.iter().map(|&x| to_bf16(x).widen()).collect();
            for (isa, (packed, b)) in Isa::available().into_iter().flat_map(|isa| {
                [
                    (isa, (Packed::new(&b, k, n), &b)),
                    (isa, (Packed::new_bf16(&b, k, n), &half)),
                ]
            }) {
                let mut c = vec![0.0; m * n];
                matmul(isa, &a, &packed, &mut c, m);
                for i in 0..m {
                    for j in 0..n {
                        let mut acc = 0.0f32;
                        for p in 0..k {
                            acc = a[i * k + p].mul_add(b[p * n + j], acc);
                        }
                        assert_eq!(
                            c[i * n + j].to_bits(),
                            acc.to_bits(),
                            "{isa:?} {m}x{k}x{n} at {i},{j}"
                        );
                    }
                }
            }
        }
    }

    #[test]
    fn a_product_split_by_columns_gives_the_whole_products_bits() {
        for &(m, k, n) in &[(1, 128, 384), (1, 512, 128), (2, 33, 100), (7, 19, 31)] {
            let a = values(m * k, 6);
            let b = values(k * n, 7);
            for isa in Isa::available() {
                for packed in [Packed::new(&b, k, n), Packed::new_bf16(&b, k, n)] {
                    let mut whole = vec![0.0; m * n];
                    matmul(isa, &a, &packed, &mut whole, m);
                    let middle = packed.middle_column();
                    assert!(middle.is_multiple_of(NR) && middle <= n);
                    for cuts in [vec![0, n], vec![0, middle, n], vec![0, NR.min(n), n]] {
                        for cols in cuts.windows(2).map(|w| w[0]..w[1]) {
                            let mut part = vec![0.0; m * cols.len()];
                            matmul_cols(isa, &a, &packed, cols.clone(), &mut part, m);
                            for i in 0..m {
                                let want = &whole[i * n + cols.start..i * n + cols.end];
                                let got = &part[i * cols.len()..(i + 1) * cols.len()];
                                let bits = |x: &[f32]| x.iter().map(|v| v.to_bits()).collect();
                                let (want, got): (Vec<u32>, Vec<u32>) = (bits(want), bits(got));
                                assert_eq!(got, want, "{isa:?} {m}x{k}x{n} {cols:?} row {i}");
                            }
                        }
                    }
                }
            }
        }
    }

    #[test]
    fn bf16_rounds_to_nearest_even() {
        for (x, want) in [
            (1.0f32, 0x3F80u16),
            (f32::from_bits(0x3F80_8000), 0x3F80), // a tie, to even
            (f32::from_bits(0x3F81_8000), 0x3F82), // a tie, to even
            (f32::from_bits(0x3F80_8001), 0x3F81),
            (-2.5, 0xC020),
            (0.0, 0),
        ] {
            assert_eq!(to_bf16(x).0, want, "{x}");
        }
    }

    #[test]
    fn attention_rows_do_not_depend_on_their_block() {
        for hd in [16, 32, 8] {
            let stride = 64;
            let q = values(stride * hd, 3);
            let kt = values(hd * stride, 4);
            let v = values(stride * hd, 5);
            let mut scores = vec![0.0; ROW_BLOCK * stride];
            let mut all = vec![0.0; stride * hd];
            attend(
                Isa::Portable,
                &q,
                &kt,
                &v,
                stride,
                hd,
                0,
                45,
                usize::MAX,
                &mut scores,
                &mut all,
            );
            for isa in Isa::available() {
                for i in 0..45 {
                    let mut one = vec![0.0; hd];
                    attend(
                        isa,
                        &q[i * hd..],
                        &kt,
                        &v,
                        stride,
                        hd,
                        i,
                        1,
                        usize::MAX,
                        &mut scores,
                        &mut one,
                    );
                    let bits: Vec<u32> = one.iter().map(|x| x.to_bits()).collect();
                    let want: Vec<u32> = all[i * hd..(i + 1) * hd]
                        .iter()
                        .map(|x| x.to_bits())
                        .collect();
                    assert_eq!(bits, want, "{isa:?} hd {hd} row {i}");
                }
            }
        }
    }

    /// [`attend`]'s documented definition for the row at position `i`, written plainly.
    fn attend_reference(
        q: &[f32],
        kt: &[f32],
        v: &[f32],
        hd: usize,
        i: usize,
        window: usize,
    ) -> Vec<f32> {
        let s = window_start(i, window);
        let score = |j: usize| {
            let mut acc = 0.0f32;
            for d in 0..hd {
                acc = q[d].mul_add(kt[key_index(hd, j, d)], acc);
            }
            acc
        };
        let mut seen: Vec<usize> = if s > 0 { vec![0] } else { vec![] };
        seen.extend(s..=i);
        let m = seen
            .iter()
            .map(|&j| score(j))
            .fold(f32::NEG_INFINITY, f32::max);
        let e: Vec<f32> = seen.iter().map(|&j| math::exp(score(j) - m)).collect();
        let z = math::sum(&e);
        let mut out = vec![0.0f32; hd];
        for (d, out) in out.iter_mut().enumerate() {
            let mut a = [0.0f32; VALUE_LANES];
            if s > 0 {
                a[0] = e[0] * v[d];
            }
            for (&j, &w) in seen.iter().zip(&e).filter(|(j, _)| **j >= s) {
                a[j % VALUE_LANES] = w.mul_add(v[j * hd + d], a[j % VALUE_LANES]);
            }
            *out = ((a[0] + a[1]) + (a[2] + a[3])) / z;
        }
        out
    }

    #[test]
    fn windowed_attention_is_its_definition_in_any_block() {
        for hd in [16, 32, 8] {
            let stride = 192;
            let q = values(stride * hd, 6);
            let kt = values(hd * stride, 7);
            let v = values(stride * hd, 8);
            let mut scores = vec![0.0; ROW_BLOCK * stride];
            let (kt16, v16): (Vec<Bf16>, Vec<Bf16>) = (
                kt.iter().map(|&x| to_bf16(x)).collect(),
                v.iter().map(|&x| to_bf16(x)).collect(),
            );
            let (kt_half, v_half): (Vec<f32>, Vec<f32>) = (
                kt16.iter().map(|x| x.widen()).collect(),
                v16.iter().map(|x| x.widen()).collect(),
            );
            for window in [1, 2, 5, 63, 64, 100, 191, usize::MAX] {
                let want: Vec<Vec<f32>> = (0..stride)
                    .map(|i| attend_reference(&q[i * hd..], &kt, &v, hd, i, window))
                    .collect();
                let want_half: Vec<Vec<f32>> = (0..stride)
                    .map(|i| attend_reference(&q[i * hd..], &kt_half, &v_half, hd, i, window))
                    .collect();
                for isa in Isa::available() {
                    // Whole sequence in one call, then odd-sized calls, then one row at a time.
                    for per_call in [stride, 13, 1] {
                        let mut out = vec![0.0; stride * hd];
                        for i0 in (0..stride).step_by(per_call) {
                            let n = per_call.min(stride - i0);
                            attend(
                                isa,
                                &q[i0 * hd..],
                                &kt,
                                &v,
                                stride,
                                hd,
                                i0,
                                n,
                                window,
                                &mut scores,
                                &mut out[i0 * hd..],
                            );
                        }
                        let mut half = vec![0.0; stride * hd];
                        for i0 in (0..stride).step_by(per_call) {
                            let n = per_call.min(stride - i0);
                            attend_bf16(
                                isa,
                                &q[i0 * hd..],
                                &kt16,
                                &v16,
                                stride,
                                hd,
                                i0,
                                n,
                                window,
                                &mut scores,
                                &mut half[i0 * hd..],
                            );
                        }
                        for (out, want, kind) in [(&out, &want, "f32"), (&half, &want_half, "bf16")]
                        {
                            for (i, want) in want.iter().enumerate() {
                                let got: Vec<u32> = out[i * hd..(i + 1) * hd]
                                    .iter()
                                    .map(|x| x.to_bits())
                                    .collect();
                                let want: Vec<u32> = want.iter().map(|x| x.to_bits()).collect();
                                assert_eq!(
                                    got, want,
                                    "{isa:?} {kind} hd {hd} window {window} per call {per_call} row {i}"
                                );
                            }
                        }
                    }
                }
            }
        }
    }
}
