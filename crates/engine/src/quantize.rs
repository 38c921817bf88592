//! Logits to integer frequencies, the one exact step between the model's floats and the coder.

use crate::kernels::{self, Isa};

/// Precision of the frequency tables: they total `2^FREQUENCY_BITS`.
pub const FREQUENCY_BITS: u32 = 24;

/// Turn `logits` into frequencies that total `2^FREQUENCY_BITS`, each at least 1.
///
/// `m = max logit`, `e_i = exp(l_i - m)` ([`crate::math::exp`], f32), `z = math::sum(e)`;
/// `f_i = 1 + floor(e_i · ((2^24 - n) / z))` in f64, and the difference to `2^24` (a few units at
/// most, from rounding) is added to the first largest `f_i`. Non-finite logits give the uniform
/// table. Every step is IEEE arithmetic in a fixed order, so equal logits give equal tables.
pub fn frequencies(logits: &[f32], freqs: &mut [u32]) {
    let n = logits.len();
    assert!(
        (1..=MAX_SYMBOLS).contains(&n) && freqs.len() == n,
        "frequencies: {n} symbols"
    );
    let total = 1u64 << FREQUENCY_BITS;
    if logits.iter().any(|l| !l.is_finite()) {
        uniform(freqs);
        return;
    }
    let isa = Isa::detect();
    let mut small = [0.0f32; 256];
    let mut big = Vec::new();
    let e: &mut [f32] = if n <= 256 {
        &mut small[..n]
    } else {
        big.resize(n, 0.0);
        &mut big
    };
    let mut z = 0.0f32;
    kernels::exp_from_max(isa, logits, e, &mut z);
    let spare = (total - n as u64) as f64;
    let (mut sum, mut top) = (0u64, 0usize);
    kernels::scaled_floor(
        isa,
        e,
        spare / f64::from(z),
        spare,
        freqs,
        &mut sum,
        &mut top,
    );
    // The largest frequency is at least total / n, far above the rounding difference.
    freqs[top] = (i64::from(freqs[top]) + total as i64 - sum as i64) as u32;
}

/// The most symbols [`frequencies`] takes (a vocabulary of a million tokens leaves 15 units of
/// the 2^24 total per symbol on average).
pub const MAX_SYMBOLS: usize = 1 << 20;

fn uniform(freqs: &mut [u32]) {
    let n = freqs.len() as u32;
    let total = 1u32 << FREQUENCY_BITS;
    for (i, f) in freqs.iter_mut().enumerate() {
        *f = total / n + u32::from((i as u32) < total % n);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::math;

    fn check(logits: &[f32]) -> Vec<u32> {
        let mut f = vec![0; logits.len()];
        frequencies(logits, &mut f);
        assert_eq!(
            f.iter().map(|&x| u64::from(x)).sum::<u64>(),
            1 << FREQUENCY_BITS
        );
        assert!(f.iter().all(|&x| x >= 1));
        f
    }

    #[test]
    fn tables_are_exact_and_follow_the_logits() {
        let f = check(&[0.0; 256]);
        assert!(f.iter().all(|&x| x.abs_diff(f[0]) <= 1));
        let mut peaked = vec![-50.0f32; 256];
        peaked[7] = 50.0;
        let f = check(&peaked);
        assert_eq!(f[7], (1 << FREQUENCY_BITS) - 255);
        let ramp: Vec<f32> = (0..256).map(|i| i as f32 / 10.0).collect();
        let f = check(&ramp);
        assert!(f.windows(2).all(|w| w[0] <= w[1]));
        let f = check(&[f32::NAN; 256]);
        assert!(f.iter().all(|&x| x.abs_diff(f[0]) <= 1));
        check(&[f32::INFINITY, 0.0, -3.0]);
        check(&[1e30, -1e30, 0.0]);
        check(&[3.0]);
    }

    /// The table as first specified, element by element in plain scalar code: the kernels
    /// must give exactly this on every instruction set and size.
    fn reference(logits: &[f32]) -> Vec<u32> {
        let n = logits.len();
        let total = 1u64 << FREQUENCY_BITS;
        let max = logits.iter().fold(f32::NEG_INFINITY, |m, &l| m.max(l));
        let e: Vec<f32> = logits.iter().map(|&l| math::exp(l - max)).collect();
        let z = f64::from(math::sum(&e));
        let scale = (total - n as u64) as f64 / z;
        let mut f: Vec<u32> = e
            .iter()
            .map(|&e| {
                1 + (f64::from(e) * scale)
                    .floor()
                    .min((total - n as u64) as f64) as u32
            })
            .collect();
        let sum: u64 = f.iter().map(|&x| u64::from(x)).sum();
        let mut top = 0;
        for i in 0..n {
            if f[i] > f[top] {
                top = i;
            }
        }
        f[top] = (i64::from(f[top]) + total as i64 - sum as i64) as u32;
        f
    }

    #[test]
    fn kernels_match_the_scalar_definition_at_every_size() {
        let mut s = 7u64;
        for n in [1, 2, 15, 16, 17, 255, 256, 257, 1000, 32_000, 151_936] {
            let logits: Vec<f32> = (0..n)
                .map(|_| {
                    s = s
                        .wrapping_mul(6364136223846793005)
                        .wrapping_add(1442695040888963407);
                    ((s >> 40) as f32 / (1u64 << 24) as f32 - 0.5) * 40.0
                })
                .collect();
            assert_eq!(check(&logits), reference(&logits), "{n} symbols");
        }
    }
}
