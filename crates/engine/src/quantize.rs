//! Logits to integer frequencies, the one exact step between the model's floats and the coder.

use crate::math;

/// Precision of the frequency tables: they total `2^FREQUENCY_BITS`.
pub const FREQUENCY_BITS: u32 = 24;

/// Turn `logits` into frequencies that total `2^FREQUENCY_BITS`, each at least 1.
///
/// `m = max logit`, `e_i = exp(l_i - m)` ([`math::exp`], f32), `z = math::sum(e)`;
/// `f_i = 1 + floor(e_i · ((2^24 - n) / z))` in f64, and the difference to `2^24` (a few units at
/// most, from rounding) is added to the first largest `f_i`. Non-finite logits give the uniform
/// table. Every step is IEEE arithmetic in a fixed order, so equal logits give equal tables.
pub fn frequencies(logits: &[f32], freqs: &mut [u32]) {
    let n = logits.len();
    assert!(
        (1..=1 << 16).contains(&n) && freqs.len() == n,
        "frequencies: {n} symbols"
    );
    let total = 1u64 << FREQUENCY_BITS;
    if logits.iter().any(|l| !l.is_finite()) {
        uniform(freqs);
        return;
    }
    let max = logits.iter().fold(f32::NEG_INFINITY, |m, &l| m.max(l));
    let mut e = [0.0f32; 256];
    let mut big = Vec::new();
    let e: &mut [f32] = if n <= 256 {
        &mut e[..n]
    } else {
        big.resize(n, 0.0);
        &mut big
    };
    for (e, &l) in e.iter_mut().zip(logits) {
        *e = math::exp(l - max);
    }
    let z = f64::from(math::sum(e));
    let scale = (total - n as u64) as f64 / z;
    let mut sum = 0u64;
    for (f, &e) in freqs.iter_mut().zip(e.iter()) {
        let q = (f64::from(e) * scale)
            .floor()
            .min((total - n as u64) as f64);
        *f = 1 + q as u32;
        sum += u64::from(*f);
    }
    let mut top = 0;
    for (i, &f) in freqs.iter().enumerate() {
        if f > freqs[top] {
            top = i;
        }
    }
    // The largest frequency is at least total / n, far above the rounding difference.
    freqs[top] = (i64::from(freqs[top]) + total as i64 - sum as i64) as u32;
}

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
}
