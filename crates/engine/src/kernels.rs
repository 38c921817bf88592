//! The engine's compute kernels, each with one arithmetic order per output element.
//!
//! Every kernel is written once, as plain Rust that LLVM vectorizes, and compiled several times:
//! for AVX-512, for AVX2 + FMA and for the build's baseline target ([`Isa`]). The vectorization
//! only runs *independent* output elements side by side; each element's operations and their
//! order are fixed by the source (see `docs/ENGINE.md`), so all versions give bit-identical
//! results. Products are fused multiply-adds (`f32::mul_add`, correctly rounded everywhere: a
//! hardware FMA on x86-64-v3, AVX-512 and aarch64, a correctly rounded library call on older
//! x86-64), used for every product in a matrix product or an attention dot product.

use crate::math;
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
    ($(#[$attr:meta])* pub fn $name:ident($($arg:ident: $ty:ty),* $(,)?) $body:block) => {
        $(#[$attr])*
        #[allow(clippy::too_many_arguments)]
        pub fn $name(isa: Isa, $($arg: $ty),*) {
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
/// Columns per register tile of the matrix product.
const NR: usize = 16;
/// Rows per cache block of the matrix product.
const MB: usize = 64;

multiversion! {
    /// `c = a · b` for row-major `a` (`m × k`), `b` (`k × n`) and `c` (`m × n`).
    ///
    /// Element `c[i][j]` is `acc = 0; for p in 0..k { acc = fma(a[i][p], b[p][j], acc) }`,
    /// whatever the shape of the tiles, the row's position in `a`, or the version.
    pub fn matmul(a: &[f32], b: &[f32], c: &mut [f32], m: usize, k: usize, n: usize) {
        assert!(a.len() >= m * k && b.len() >= k * n && c.len() >= m * n, "matmul shapes");
        for i0 in (0..m).step_by(MB) {
            let i_end = (i0 + MB).min(m);
            let mut j = 0;
            while j + NR <= n {
                let mut i = i0;
                while i < i_end {
                    match i_end - i {
                        1 => tile::<1>(a, b, c, i, j, k, n),
                        2 => tile::<2>(a, b, c, i, j, k, n),
                        3 => tile::<3>(a, b, c, i, j, k, n),
                        r if r < MR => {
                            for ii in i..i_end {
                                tile::<1>(a, b, c, ii, j, k, n);
                            }
                        }
                        _ => tile::<MR>(a, b, c, i, j, k, n),
                    }
                    i += MR;
                }
                j += NR;
            }
            for i in i0..i_end {
                for col in j..n {
                    let mut acc = 0.0f32;
                    for p in 0..k {
                        acc = a[i * k + p].mul_add(b[p * n + col], acc);
                    }
                    c[i * n + col] = acc;
                }
            }
        }
    }
}

/// One `R × NR` register tile of [`matmul`] at row `i`, column `j`.
#[inline(always)]
fn tile<const R: usize>(
    a: &[f32],
    b: &[f32],
    c: &mut [f32],
    i: usize,
    j: usize,
    k: usize,
    n: usize,
) {
    let mut acc = [[0.0f32; NR]; R];
    let rows: [&[f32]; R] = std::array::from_fn(|r| &a[(i + r) * k..(i + r + 1) * k]);
    for p in 0..k {
        let brow: &[f32; NR] = b[p * n + j..p * n + j + NR].try_into().expect("tile width");
        for r in 0..R {
            let x = rows[r][p];
            for (acc, &y) in acc[r].iter_mut().zip(brow) {
                *acc = x.mul_add(y, *acc);
            }
        }
    }
    for r in 0..R {
        c[(i + r) * n + j..(i + r) * n + j + NR].copy_from_slice(&acc[r]);
    }
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

multiversion! {
    /// Causal attention of one head for the query rows at positions `i0..i0 + rows`.
    ///
    /// `q` holds `rows × hd` queries (already rotated and scaled), `kt` the keys (`stride`
    /// positions laid out by [`key_index`]), `v` the values (`stride × hd`); `scores` is scratch
    /// of at least `stride`, `stride` a multiple of [`KEY_TILE`] and above `i0 + rows - 1`.
    /// For the row at position `i`, with `s_j = fma-chain over d = 0..hd of q[d] k_j[d]`:
    /// `m = max_{j<=i} s_j`, `e_j = exp(s_j - m)`, `z = math::sum(e_0..=e_i)`; then four partial
    /// sums `a_p[d] = fma-chain over j = p, p+4, p+8, ... <= i of e_j v_j[d]` and
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
        scores: &mut [f32],
        out: &mut [f32],
    ) {
        assert!(stride.is_multiple_of(KEY_TILE) && i0 + rows <= stride, "attend shapes");
        assert!(q.len() >= rows * hd && kt.len() >= hd * stride && v.len() >= stride * hd);
        assert!(scores.len() >= stride && out.len() >= rows * hd);
        for r in 0..rows {
            let pos = i0 + r;
            let q = &q[r * hd..(r + 1) * hd];
            let out = &mut out[r * hd..(r + 1) * hd];
            // Scores over whole key tiles; keys past `pos` are computed and never used.
            for j in (0..=pos).step_by(KEY_TILE) {
                let mut acc = [0.0f32; KEY_TILE];
                let tile = &kt[j * hd..(j + KEY_TILE) * hd];
                for (d, &x) in q.iter().enumerate() {
                    let keys: &[f32; KEY_TILE] =
                        tile[d * KEY_TILE..(d + 1) * KEY_TILE].try_into().expect("key tile");
                    for (acc, &y) in acc.iter_mut().zip(keys) {
                        *acc = x.mul_add(y, *acc);
                    }
                }
                scores[j..j + KEY_TILE].copy_from_slice(&acc);
            }
            let weights = &mut scores[..=pos];
            let max = math::max(weights);
            for s in weights.iter_mut() {
                *s = math::exp(*s - max);
            }
            let z = math::sum(weights);
            match hd {
                16 => weighted_values::<16>(weights, v, out),
                32 => weighted_values::<32>(weights, v, out),
                64 => weighted_values::<64>(weights, v, out),
                _ => {
                    for (d, o) in out.iter_mut().enumerate() {
                        let mut acc = [0.0f32; VALUE_LANES];
                        for (j, &w) in weights.iter().enumerate() {
                            acc[j % VALUE_LANES] = w.mul_add(v[j * hd + d], acc[j % VALUE_LANES]);
                        }
                        *o = (acc[0] + acc[1]) + (acc[2] + acc[3]);
                    }
                }
            }
            for o in out.iter_mut() {
                *o /= z;
            }
        }
    }
}

/// `out = ((a_0 + a_1) + (a_2 + a_3))` with `a_p` the fma-chain of `weights[j] v[j]` over
/// `j ≡ p (mod 4)`, for head width `HD`.
#[inline(always)]
fn weighted_values<const HD: usize>(weights: &[f32], v: &[f32], out: &mut [f32]) {
    let mut acc = [[0.0f32; HD]; VALUE_LANES];
    let mut groups = weights.chunks_exact(VALUE_LANES);
    let mut j = 0;
    for group in &mut groups {
        for (p, &w) in group.iter().enumerate() {
            let vrow: &[f32; HD] = v[(j + p) * HD..(j + p + 1) * HD]
                .try_into()
                .expect("value row");
            for (acc, &y) in acc[p].iter_mut().zip(vrow) {
                *acc = w.mul_add(y, *acc);
            }
        }
        j += VALUE_LANES;
    }
    for (p, &w) in groups.remainder().iter().enumerate() {
        let vrow: &[f32; HD] = v[(j + p) * HD..(j + p + 1) * HD]
            .try_into()
            .expect("value row");
        for (acc, &y) in acc[p].iter_mut().zip(vrow) {
            *acc = w.mul_add(y, *acc);
        }
    }
    for (d, o) in out.iter_mut().enumerate() {
        *o = (acc[0][d] + acc[1][d]) + (acc[2][d] + acc[3][d]);
    }
}

multiversion! {
    /// Layer normalization of each `dim`-wide row of `x` into `y`:
    /// `mean = sum(x) / dim`, `c = x - mean`, `var = sum(c * c) / dim`,
    /// `y = ((c * (1 / sqrt(var + eps))) * weight) + bias`, sums by [`math::sum`].
    pub fn layer_norm(x: &[f32], y: &mut [f32], weight: &[f32], bias: &[f32], dim: usize, eps: f32) {
        let mut centered = vec![0.0f32; dim];
        let mut squares = vec![0.0f32; dim];
        for (x, y) in x.chunks_exact(dim).zip(y.chunks_exact_mut(dim)) {
            let mean = math::sum(x) / dim as f32;
            for (c, &x) in centered.iter_mut().zip(x) {
                *c = x - mean;
            }
            for (s, &c) in squares.iter_mut().zip(&centered) {
                *s = c * c;
            }
            let inv = 1.0 / (math::sum(&squares) / dim as f32 + eps).sqrt();
            for (((y, &c), &w), &b) in y.iter_mut().zip(&centered).zip(weight).zip(bias) {
                *y = ((c * inv) * w) + b;
            }
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

#[cfg(test)]
mod tests {
    use super::*;

    fn values(len: usize, seed: u32) -> Vec<f32> {
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
            (130, 3, 31),
        ] {
            let a = values(m * k, 1);
            let b = values(k * n, 2);
            for isa in Isa::available() {
                let mut c = vec![0.0; m * n];
                matmul(isa, &a, &b, &mut c, m, k, n);
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
    fn attention_rows_do_not_depend_on_their_block() {
        for hd in [16, 32, 8] {
            let stride = 64;
            let q = values(stride * hd, 3);
            let kt = values(hd * stride, 4);
            let v = values(stride * hd, 5);
            let mut scores = vec![0.0; stride * stride];
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
}
