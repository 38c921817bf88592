//! Matrix products in integers: int8 weights with one scale per column, activations rounded to
//! integers with one scale per row, exact 32-bit sums (numerics 4).
//!
//! `c[i][j] = (S_ij as f32 · sa_i) · sw_j`, where `S_ij = Σ_p qa[i][p] · qw[p][j]` is an exact
//! integer sum, and
//! - `qw[p][j] = round(w[p][j] / sw_j)` in `-127..=127`, `sw_j = max_p |w[p][j]| / 127`;
//! - `qa[i][p] = round(a[i][p] · (A / M_i))` in `-A..=A`, `M_i = max_p |a[i][p]|`,
//!   `sa_i = M_i / A`,
//!
//! rounding to nearest, ties to even; a zero row or column gives zeros (and a NaN `-A`). `A` is 16383, or less
//! when the inner dimension `k` is so long that `k · 127 · A` could leave the 32-bit range
//! ([`activation_bound`]). An integer sum is the same in any order, so the vector kernel (AVX2
//! `vpmaddwd`: 16 multiply-adds per instruction, where the `f32` path does 8 and must first widen
//! bfloat16 weights) and the portable loop give the same bits on every CPU with no prescribed
//! reduction order; only the roundings and scalings are `f32` operations, in the fixed order
//! above.
//!
//! Weights are stored as `i8` (a quarter of the `f32` bytes a decoder step reads), in panels of
//! [`NR`] columns whose rows go in pairs: for rows `2t, 2t + 1`, the 32 values `qw[2t][c],
//! qw[2t + 1][c]` for `c` in the panel, as `vpmaddwd` takes them once sign-extended.

use crate::kernels::{Isa, NR};

/// The largest activation integer (`A` above) for an inner dimension of `k`.
pub fn activation_bound(k: usize) -> i32 {
    let k = k.max(1) as i64;
    (i64::from(i32::MAX) / (127 * k)).min(16383) as i32
}

/// A `k × n` matrix of int8 weights with per-column scales, packed for the integer products
/// ([`crate::kernels::Packed::new_int8`]).
#[derive(Debug, Clone, PartialEq)]
pub struct Int8Panels {
    /// Row pairs: `k` rounded up to even, halved.
    pairs: usize,
    /// Panels of `pairs × 2 × NR` values.
    data: Vec<i8>,
    /// `sw_j`, one per column.
    scales: Vec<f32>,
}

impl Int8Panels {
    /// Quantize and pack the row-major `k × n` matrix `b` (finite values).
    pub fn new(b: &[f32], k: usize, n: usize) -> Int8Panels {
        assert_eq!(b.len(), k * n, "packed matrix shape");
        let scales: Vec<f32> = (0..n)
            .map(|j| (0..k).map(|p| b[p * n + j].abs()).fold(0.0f32, f32::max) / 127.0)
            .collect();
        let pairs = k.div_ceil(2);
        let count = n.div_ceil(NR);
        let mut data = vec![0i8; count * pairs * 2 * NR];
        for q in 0..count {
            for p in 0..k {
                for c in 0..NR.min(n - q * NR) {
                    let j = q * NR + c;
                    let value = match scales[j] {
                        0.0 => 0,
                        s => (b[p * n + j] / s).round_ties_even().clamp(-127.0, 127.0) as i8,
                    };
                    data[((q * pairs + p / 2) * NR + c) * 2 + p % 2] = value;
                }
            }
        }
        Int8Panels {
            pairs,
            data,
            scales,
        }
    }

    /// The values of panels `panels` (a range of panel indices).
    fn panels(&self, panels: std::ops::Range<usize>) -> &[i8] {
        let size = self.pairs * 2 * NR;
        &self.data[panels.start * size..panels.end * size]
    }
}

/// Rows `a` (`k` wide) rounded to integers into `qa` (`width` wide), their scales into `scales`.
fn quantize_rows(isa: Isa, a: &[f32], k: usize, bound: i32, qa: &mut [i16], scales: &mut [f32]) {
    #[inline(always)]
    fn rows(a: &[f32], k: usize, bound: i32, qa: &mut [i16], scales: &mut [f32]) {
        let width = qa.len() / scales.len();
        for ((a, qa), scale) in a
            .chunks_exact(k)
            .zip(qa.chunks_exact_mut(width))
            .zip(scales)
        {
            *scale = quantize_row(a, bound, qa);
        }
    }
    #[cfg(target_arch = "x86_64")]
    if matches!(isa, Isa::Avx2 | Isa::Avx512) {
        #[target_feature(enable = "avx2,fma")]
        unsafe fn avx2(a: &[f32], k: usize, bound: i32, qa: &mut [i16], scales: &mut [f32]) {
            rows(a, k, bound, qa, scales)
        }
        // SAFETY: these versions are only ever chosen on a CPU with AVX2 and FMA.
        unsafe { avx2(a, k, bound, qa, scales) };
        return;
    }
    let _ = isa;
    rows(a, k, bound, qa, scales)
}

/// Row `a` rounded to integers (`qa`, padded to an even length with a zero) and its scale `sa`.
#[inline(always)]
fn quantize_row(a: &[f32], bound: i32, qa: &mut [i16]) -> f32 {
    // The largest magnitude, over 16 lanes: `max` is exact, so any order gives it.
    let mut lanes = [0.0f32; 16];
    let mut chunks = a.chunks_exact(16);
    for chunk in &mut chunks {
        for (l, &x) in lanes.iter_mut().zip(chunk) {
            *l = l.max(x.abs());
        }
    }
    let max = chunks
        .remainder()
        .iter()
        .chain(&lanes)
        .fold(0.0f32, |m, &x| m.max(x.abs()));
    if max == 0.0 {
        qa.fill(0);
        return 0.0;
    }
    let limit = bound as f32;
    let inverse = limit / max;
    for (q, &x) in qa.iter_mut().zip(a) {
        // `max` then `min` also turn a NaN into -limit (`clamp` would keep it).
        let r = round_ties_even(x * inverse).max(-limit).min(limit);
        // SAFETY: `r` is an integer within ±16383: the conversion is exact, and vectorizes
        // (a checked `as` becomes one scalar conversion per value).
        *q = unsafe { r.to_int_unchecked::<i32>() } as i16;
    }
    let scale = max / limit;
    qa[a.len()..].fill(0);
    scale
}

/// `x` rounded to the nearest integer, ties to even, for `|x| < 2^22`: adding and subtracting
/// 1.5 · 2^23 rounds in the default IEEE mode (the same as `f32::round_ties_even`, without the
/// library call that older x86-64 needs for it).
#[inline(always)]
fn round_ties_even(x: f32) -> f32 {
    const MAGIC: f32 = 12_582_912.0;
    (x + MAGIC) - MAGIC
}

thread_local! {
    /// The rows of `a` in integers, reused between calls.
    static ROWS: std::cell::RefCell<Vec<i16>> = const { std::cell::RefCell::new(Vec::new()) };
}

/// Columns `cols` (panel-aligned start) of `a · b` into `c` (`m × cols.len()`), for `a`
/// row-major `m × k`. See the module documentation for the exact result.
pub(crate) fn matmul(
    isa: Isa,
    a: &[f32],
    b: &Int8Panels,
    k: usize,
    cols: std::ops::Range<usize>,
    c: &mut [f32],
    m: usize,
) {
    let n = cols.len();
    let bound = activation_bound(k);
    let width = 2 * b.pairs;
    ROWS.with(|rows| {
        let mut qa = rows.borrow_mut();
        let need = 64.min(m) * width;
        if qa.len() < need {
            qa.resize(need, 0);
        }
        let mut row_scales = [0.0f32; 64];
        for i0 in (0..m).step_by(64) {
            let rows = 64.min(m - i0);
            quantize_rows(
                isa,
                &a[i0 * k..(i0 + rows) * k],
                k,
                bound,
                &mut qa[..rows * width],
                &mut row_scales[..rows],
            );
            let block = &qa[..rows * width];
            let out = &mut c[i0 * n..(i0 + rows) * n];
            let data = b.panels(cols.start / NR..cols.end.div_ceil(NR));
            integer_products(isa, block, data, b.pairs, n, out, rows);
            for (row, &sa) in out.chunks_exact_mut(n).zip(&row_scales[..rows]) {
                for (x, &sw) in row.iter_mut().zip(&b.scales[cols.clone()]) {
                    *x = (*x * sa) * sw;
                }
            }
        }
    });
}

/// `out[i][j] = S_ij as f32` for the `m` integer rows of `qa` (`2 · pairs` wide) and the
/// panels `data` (`n` columns).
fn integer_products(
    isa: Isa,
    qa: &[i16],
    data: &[i8],
    pairs: usize,
    n: usize,
    out: &mut [f32],
    m: usize,
) {
    #[cfg(target_arch = "x86_64")]
    if matches!(isa, Isa::Avx2 | Isa::Avx512) {
        // SAFETY: these versions are only ever chosen on a CPU with AVX2.
        unsafe { avx2::products(qa, data, pairs, n, out, m) };
        return;
    }
    let _ = isa;
    portable_products(qa, data, pairs, n, out, m);
}

/// [`integer_products`] in plain Rust.
fn portable_products(qa: &[i16], data: &[i8], pairs: usize, n: usize, out: &mut [f32], m: usize) {
    let width = 2 * pairs;
    for (q, panel) in data.chunks_exact(pairs * 2 * NR).enumerate() {
        let cols = NR.min(n - q * NR);
        for i in 0..m {
            let row = &qa[i * width..(i + 1) * width];
            let mut acc = [0i32; NR];
            for (t, w) in panel.chunks_exact(2 * NR).enumerate() {
                let (x0, x1) = (i32::from(row[2 * t]), i32::from(row[2 * t + 1]));
                for (c, acc) in acc.iter_mut().enumerate() {
                    *acc += x0 * i32::from(w[2 * c]) + x1 * i32::from(w[2 * c + 1]);
                }
            }
            for (o, &s) in out[i * n + q * NR..][..cols].iter_mut().zip(&acc) {
                *o = s as f32;
            }
        }
    }
}

#[cfg(target_arch = "x86_64")]
mod avx2 {
    use super::NR;
    use std::arch::x86_64::*;

    /// [`super::integer_products`] with `vpmaddwd`: blocks of 6 rows against one panel (each
    /// weight load serves 6 rows), and fewer rows against 2 or 4 panels at once, so that even a
    /// single row has 8 independent sums in flight.
    #[target_feature(enable = "avx2")]
    pub(super) unsafe fn products(
        qa: &[i16],
        data: &[i8],
        pairs: usize,
        n: usize,
        out: &mut [f32],
        m: usize,
    ) {
        let width = 2 * pairs;
        let panel_len = pairs * 2 * NR;
        assert!(qa.len() >= m * width && out.len() >= m * n);
        assert!(data.len().is_multiple_of(panel_len) && data.len() / panel_len == n.div_ceil(NR));
        let shape = Shape {
            pairs,
            width,
            panel_len,
            n,
        };
        let mut i = 0;
        while i < m {
            // SAFETY (each call): rows `i..i + R` exist in `qa` and `out`, the panels in `data`.
            let rows = match m - i {
                1 => unsafe { block::<1, 4>(qa, data, out, i, &shape) },
                2 => unsafe { block::<2, 2>(qa, data, out, i, &shape) },
                3 => unsafe { block::<3, 2>(qa, data, out, i, &shape) },
                4 => unsafe { block::<4, 1>(qa, data, out, i, &shape) },
                5 => unsafe { block::<5, 1>(qa, data, out, i, &shape) },
                _ => unsafe { block::<6, 1>(qa, data, out, i, &shape) },
            };
            i += rows;
        }
    }

    /// The sizes of one product.
    struct Shape {
        pairs: usize,
        width: usize,
        panel_len: usize,
        n: usize,
    }

    /// Rows `i..i + R` against every panel, `G` panels at a time (the last ones one by one).
    #[target_feature(enable = "avx2")]
    unsafe fn block<const R: usize, const G: usize>(
        qa: &[i16],
        data: &[i8],
        out: &mut [f32],
        i: usize,
        shape: &Shape,
    ) -> usize {
        let panels = data.len() / shape.panel_len;
        let mut rows = [std::ptr::null::<i32>(); R];
        for (r, row) in rows.iter_mut().enumerate() {
            *row = qa[(i + r) * shape.width..].as_ptr().cast();
        }
        let panel = |q: usize| data[q * shape.panel_len..].as_ptr().cast::<__m128i>();
        let mut q = 0;
        while q + G <= panels {
            let mut at = [std::ptr::null(); G];
            for (g, at) in at.iter_mut().enumerate() {
                *at = panel(q + g);
            }
            // SAFETY: each row holds `2 pairs` values, each panel `pairs` blocks of 32.
            let acc = unsafe { tile::<R, G>(rows, at, shape.pairs) };
            for (r, acc) in acc.iter().enumerate() {
                for (g, acc) in acc.iter().enumerate() {
                    store(acc, &mut out[(i + r) * shape.n..], (q + g) * NR, shape.n);
                }
            }
            q += G;
        }
        while q < panels {
            // SAFETY: as above.
            let acc = unsafe { tile::<R, 1>(rows, [panel(q)], shape.pairs) };
            for (r, acc) in acc.iter().enumerate() {
                store(&acc[0], &mut out[(i + r) * shape.n..], q * NR, shape.n);
            }
            q += 1;
        }
        R
    }

    /// `R` rows times `G` panels: `R × G × 2` sums of 8 columns each, over every row pair.
    #[inline(always)]
    unsafe fn tile<const R: usize, const G: usize>(
        rows: [*const i32; R],
        panels: [*const __m128i; G],
        pairs: usize,
    ) -> [[[__m256i; 2]; G]; R] {
        // SAFETY: AVX2 is enabled in every caller; pair `t` of a panel is the 2 × 16 bytes at
        // `2 t` (sign-extended to 16 bits), and of a row the two i16 at `2 t`, read as one i32.
        unsafe {
            let mut acc = [[[_mm256_setzero_si256(); 2]; G]; R];
            for t in 0..pairs {
                let mut w = [[_mm256_setzero_si256(); 2]; G];
                for (w, &p) in w.iter_mut().zip(&panels) {
                    w[0] = _mm256_cvtepi8_epi16(_mm_loadu_si128(p.add(2 * t)));
                    w[1] = _mm256_cvtepi8_epi16(_mm_loadu_si128(p.add(2 * t + 1)));
                }
                for (acc, &row) in acc.iter_mut().zip(&rows) {
                    let x = _mm256_set1_epi32(row.add(t).read_unaligned());
                    for (acc, w) in acc.iter_mut().zip(&w) {
                        acc[0] = _mm256_add_epi32(acc[0], _mm256_madd_epi16(x, w[0]));
                        acc[1] = _mm256_add_epi32(acc[1], _mm256_madd_epi16(x, w[1]));
                    }
                }
            }
            acc
        }
    }

    /// A panel's 16 sums, as `f32`, into `row[col..]` (up to the row's `n` columns).
    #[inline(always)]
    fn store(acc: &[__m256i; 2], row: &mut [f32], col: usize, n: usize) {
        let mut sums = [0.0f32; NR];
        // SAFETY: `sums` holds 16 values: two unaligned 8-lane stores. AVX2 is enabled in
        // every caller.
        unsafe {
            let p = sums.as_mut_ptr();
            _mm256_storeu_ps(p, _mm256_cvtepi32_ps(acc[0]));
            _mm256_storeu_ps(p.add(8), _mm256_cvtepi32_ps(acc[1]));
        }
        crate::kernels::store_row(&mut row[col..], &sums, NR.min(n - col));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kernels::tests::values;

    /// The definition, in i64 and scalar f32.
    fn reference(a: &[f32], b: &[f32], m: usize, k: usize, n: usize) -> Vec<f32> {
        let bound = activation_bound(k);
        let sw: Vec<f32> = (0..n)
            .map(|j| (0..k).map(|p| b[p * n + j].abs()).fold(0.0f32, f32::max) / 127.0)
            .collect();
        let mut c = vec![0.0; m * n];
        for i in 0..m {
            let row = &a[i * k..(i + 1) * k];
            let max = row.iter().fold(0.0f32, |x, &y| x.max(y.abs()));
            let sa = if max == 0.0 { 0.0 } else { max / bound as f32 };
            for j in 0..n {
                let mut s = 0i64;
                for p in 0..k {
                    let inverse = bound as f32 / max;
                    let qa = if sa == 0.0 {
                        0.0
                    } else {
                        (row[p] * inverse).round_ties_even()
                    };
                    let qw = if sw[j] == 0.0 {
                        0.0
                    } else {
                        (b[p * n + j] / sw[j]).round_ties_even()
                    };
                    s += qa as i64 * qw as i64;
                }
                c[i * n + j] = ((s as i32) as f32 * sa) * sw[j];
            }
        }
        c
    }

    #[test]
    fn every_version_computes_the_definition() {
        for &(m, k, n) in &[
            (1, 128, 384),
            (1, 7, 5),
            (6, 33, 40),
            (37, 512, 16),
            (9, 1024, 33),
        ] {
            let a = values(m * k, 1);
            let mut b = values(k * n, 2);
            b[..n].fill(0.0); // a zero first row
            for p in 0..k {
                b[p * n] = 0.0; // a zero column
            }
            let mut a = a;
            a[..k].fill(0.0); // a zero row of activations
            let packed = Int8Panels::new(&b, k, n);
            let want = reference(&a, &b, m, k, n);
            for isa in Isa::available() {
                let mut c = vec![f32::NAN; m * n];
                matmul(isa, &a, &packed, k, 0..n, &mut c, m);
                let bits = |v: &[f32]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
                assert_eq!(bits(&c), bits(&want), "{isa:?} {m}x{k}x{n}");
            }
        }
    }

    #[test]
    fn sums_stay_within_32_bits() {
        for k in [1, 512, 1024, 1032, 1033, 4096, 100_000] {
            let bound = i64::from(activation_bound(k));
            assert!((1..=16383).contains(&bound));
            assert!(k as i64 * 127 * bound <= i64::from(i32::MAX), "{k}");
        }
    }
}
