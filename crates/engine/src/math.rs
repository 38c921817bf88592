//! Elementary functions with a fixed operation sequence.
//!
//! The platform's libm may differ between systems in the last bit, so nothing on the coding path
//! calls it. Every function here uses only IEEE-754 `+ - * /`, `sqrt`, comparisons and bit
//! operations, each correctly rounded, in an order fixed by this source: the result is the same
//! on every machine and in every SIMD lane width. Rust never fuses `a * b + c` on its own, so the
//! plain expressions below stay two roundings.

/// `e^x` in f32, relative error below 2e-7 on `[-87, 88]`; inputs are clamped to that range (so
/// the result is never 0, infinite or NaN for finite input).
#[inline(always)]
pub fn exp(x: f32) -> f32 {
    const LOG2E: f32 = std::f32::consts::LOG2_E;
    // ln 2 split so that n * LN2_HI is exact for |n| < 2^9 (Cody and Waite).
    const LN2_HI: f32 = 0.693_359_4;
    const LN2_LO: f32 = -2.121_944_4e-4;
    // 1.5 * 2^23: adding it rounds to an integer held in the low mantissa bits.
    const ROUND: f32 = 12_582_912.0;
    let x = x.clamp(-87.0, 88.0);
    let t = x * LOG2E + ROUND;
    let n = t - ROUND;
    let r = (x - n * LN2_HI) - n * LN2_LO;
    // Cephes expf polynomial for e^r - 1 - r on |r| <= ln2 / 2.
    let p = ((((1.987_569_1e-4 * r + 1.398_199_9e-3) * r + 8.333_452e-3) * r + 4.166_579_6e-2) * r
        + 0.166_666_65)
        * r
        + 0.5;
    let er = p * (r * r) + r + 1.0;
    let exponent = (t.to_bits() as i32).wrapping_sub(ROUND.to_bits() as i32);
    er * f32::from_bits(((exponent + 127) as u32) << 23)
}

/// `tanh(x)` in f32 through [`exp`]: `1 - 2 / (e^(2x) + 1)`; absolute error below 3e-7.
#[inline(always)]
pub fn tanh(x: f32) -> f32 {
    1.0 - 2.0 / (exp(2.0 * x) + 1.0)
}

/// GELU with the tanh approximation (as `jax.nn.gelu` and PyTorch's `approximate="tanh"`):
/// `0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3)))`.
#[inline(always)]
pub fn gelu(x: f32) -> f32 {
    const SQRT_2_OVER_PI: f32 = 0.797_884_6;
    let inner = SQRT_2_OVER_PI * (x + 0.044_715 * (x * x * x));
    0.5 * x * (1.0 + tanh(inner))
}

/// Number of interleaved partial sums in [`sum`].
pub const SUM_LANES: usize = 16;

/// Sum of `values` in a fixed order: element `i` goes to partial sum `i % 16` (in order), then the
/// 16 partial sums are combined pairwise (`s[i] + s[i + 8]`, then `+ 4`, `+ 2`, `+ 1`). The order
/// depends only on `values.len()`, and LLVM can vectorize it without changing it.
#[inline(always)]
pub fn sum(values: &[f32]) -> f32 {
    let mut lanes = [0.0f32; SUM_LANES];
    let mut blocks = values.chunks_exact(SUM_LANES);
    for block in &mut blocks {
        for (lane, v) in lanes.iter_mut().zip(block) {
            *lane += v;
        }
    }
    for (lane, v) in lanes.iter_mut().zip(blocks.remainder()) {
        *lane += v;
    }
    let mut width = SUM_LANES / 2;
    while width > 0 {
        for i in 0..width {
            lanes[i] += lanes[i + width];
        }
        width /= 2;
    }
    lanes[0]
}

/// The largest of `values` (`-inf` for none); NaNs are ignored. The maximum does not depend
/// on the order, so it is taken in 16 lanes for speed.
#[inline(always)]
pub fn max(values: &[f32]) -> f32 {
    let mut lanes = [f32::NEG_INFINITY; SUM_LANES];
    let mut blocks = values.chunks_exact(SUM_LANES);
    for block in &mut blocks {
        for (lane, &v) in lanes.iter_mut().zip(block) {
            *lane = if v > *lane { v } else { *lane };
        }
    }
    for (lane, &v) in lanes.iter_mut().zip(blocks.remainder()) {
        *lane = if v > *lane { v } else { *lane };
    }
    lanes
        .iter()
        .fold(f32::NEG_INFINITY, |m, &v| if v > m { v } else { m })
}

/// `e^x` in f64 for the rotary tables (not a hot path): reduction by ln 2, Taylor series to
/// degree 20, relative error about 1e-16.
pub fn exp_f64(x: f64) -> f64 {
    const LN2_HI: f64 = 6.931_471_803_691_238e-1;
    const LN2_LO: f64 = 1.908_214_929_270_587_7e-10;
    if x < -700.0 {
        return 0.0;
    }
    let n = (x * std::f64::consts::LOG2_E + 0.5).floor();
    let r = (x - n * LN2_HI) - n * LN2_LO;
    let mut term = 1.0;
    let mut total = 1.0;
    for k in 1..=20 {
        term = term * r / f64::from(k);
        total += term;
    }
    total * pow2_f64(n as i32)
}

fn pow2_f64(n: i32) -> f64 {
    // Split so that each factor is a normal number.
    let half = n / 2;
    f64::from_bits(((half + 1023) as u64) << 52)
        * f64::from_bits((((n - half) + 1023) as u64) << 52)
}

/// Natural logarithm in f64 for positive finite `x`: `x = m 2^e` with `m` in `[sqrt(1/2),
/// sqrt(2))`, then `ln m = 2 atanh((m - 1) / (m + 1))` as a series.
pub fn ln_f64(x: f64) -> f64 {
    assert!(x > 0.0 && x.is_finite(), "ln_f64 of {x}");
    let (mut m, mut e) = (x, 0i32);
    while m >= std::f64::consts::SQRT_2 {
        m /= 2.0;
        e += 1;
    }
    while m < std::f64::consts::FRAC_1_SQRT_2 {
        m *= 2.0;
        e -= 1;
    }
    let s = (m - 1.0) / (m + 1.0);
    let s2 = s * s;
    let mut term = s;
    let mut total = 0.0;
    for k in 0..30 {
        total += term / f64::from(2 * k + 1);
        term *= s2;
    }
    2.0 * total + f64::from(e) * std::f64::consts::LN_2
}

/// `(sin x, cos x)` in f64 for `|x| < 1e6`: reduction by pi/2 in three parts, Taylor series on
/// `[-pi/4, pi/4]`.
pub fn sin_cos_f64(x: f64) -> (f64, f64) {
    const PIO2_1: f64 = 1.570_796_326_734_125_6;
    const PIO2_2: f64 = 6.077_100_506_303_966e-11;
    const PIO2_3: f64 = 2.022_266_248_795_950_6e-21;
    assert!(x.abs() < 1e6, "sin_cos_f64 of {x}");
    let k = (x * std::f64::consts::FRAC_2_PI).round();
    let r = ((x - k * PIO2_1) - k * PIO2_2) - k * PIO2_3;
    let r2 = r * r;
    let (mut s, mut c) = (0.0, 0.0);
    let (mut ts, mut tc) = (r, 1.0);
    for n in 0..12 {
        s += ts;
        c += tc;
        let a = f64::from(2 * n + 2);
        ts = -ts * r2 / (a * (a + 1.0));
        tc = -tc * r2 / ((a - 1.0) * a);
    }
    match (k as i64).rem_euclid(4) {
        0 => (s, c),
        1 => (c, -s),
        2 => (-s, -c),
        _ => (-c, s),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exp_is_accurate() {
        let mut worst = 0.0f64;
        let mut x = -87.0f32;
        while x < 88.0 {
            let want = f64::from(x).exp();
            let got = f64::from(exp(x));
            worst = worst.max(((got - want) / want).abs());
            x += 0.013;
        }
        assert!(worst < 4e-7, "exp relative error {worst}");
        assert_eq!(exp(0.0), 1.0);
        assert!(exp(-1e30) > 0.0 && exp(1e30).is_finite());
    }

    #[test]
    fn gelu_and_tanh_are_accurate() {
        for i in -2000..2000 {
            let x = i as f32 / 200.0;
            assert!(
                (f64::from(tanh(x)) - f64::from(x).tanh()).abs() < 5e-7,
                "tanh {x}"
            );
            let xd = f64::from(x);
            let want = 0.5
                * xd
                * (1.0
                    + ((2.0 / std::f64::consts::PI).sqrt() * (xd + 0.044715 * xd.powi(3))).tanh());
            assert!((f64::from(gelu(x)) - want).abs() < 2e-6, "gelu {x}");
        }
    }

    #[test]
    fn f64_functions_are_accurate() {
        for i in 0..1000 {
            let x = i as f64 * 2.049 - 5.0;
            let (s, c) = sin_cos_f64(x);
            assert!(
                (s - x.sin()).abs() < 1e-12 && (c - x.cos()).abs() < 1e-12,
                "{x}"
            );
            let y = (i as f64 + 0.5) * 37.3;
            assert!(
                (ln_f64(y) - y.ln()).abs() < 1e-13 * y.ln().abs().max(1.0),
                "{y}"
            );
            let z = i as f64 / 50.0 - 10.0;
            assert!(((exp_f64(z) - z.exp()) / z.exp()).abs() < 1e-14, "{z}");
        }
    }

    #[test]
    fn sum_order_is_fixed() {
        let v: Vec<f32> = (0..37).map(|i| 1.0 / (i as f32 + 1.0)).collect();
        let mut lanes = [0.0f32; 16];
        for (i, x) in v.iter().enumerate() {
            lanes[i % 16] += x;
        }
        for w in [8, 4, 2, 1] {
            for i in 0..w {
                lanes[i] += lanes[i + w];
            }
        }
        assert_eq!(sum(&v).to_bits(), lanes[0].to_bits());
        assert_eq!(sum(&[]), 0.0);
    }
}
