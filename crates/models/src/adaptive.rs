//! Integer building blocks of the bitwise context-mixing models ([`crate::cm`] and
//! [`crate::mix`]): adaptive counters, a mixing hash, and the logistic `squash`/`stretch` pair
//! on a 12-bit probability scale. Every operation is on integers, so every machine computes the
//! same predictions (`docs/DETERMINISM.md`).

/// Adaptive probability update: rate `2 / (2n + 3)` after `n` hits, `n` capped at `limit`.
///
/// A counter holds a 22-bit probability of a 1 in its upper bits and the hit count in the low 10.
#[inline]
pub(crate) fn update_counter(counter: &mut u32, bit: u32, limit: u32) {
    let n = *counter & 1023;
    let p = i64::from(*counter >> 10);
    let target = i64::from(bit) << 22;
    let p = p + (((target - p) * RATE[n as usize]) >> 16);
    let n = if n < limit { n + 1 } else { n };
    *counter = ((p as u32) << 10) | n;
}

/// `RATE[n] = 2^16 · 2 / (2n + 3)`.
pub(crate) static RATE: [i64; 1024] = {
    let mut t = [0i64; 1024];
    let mut n = 0;
    while n < 1024 {
        t[n] = (2 << 16) / (2 * n as i64 + 3);
        n += 1;
    }
    t
};

/// A 32-bit mixing hash of two words.
#[inline]
pub(crate) fn hash(a: u32, b: u32) -> u32 {
    let mut h = a.wrapping_mul(0x9E37_79B1) ^ b.wrapping_mul(0x85EB_CA6B).rotate_left(13);
    h ^= h >> 15;
    h = h.wrapping_mul(0x2C1B_3C6D);
    h ^= h >> 12;
    h = h.wrapping_mul(0x297A_2D39);
    h ^ (h >> 15)
}

/// The logistic function on the stretch domain: `4096 / (1 + e^(−x/256))`, for `x` in
/// `[−2047, 2047]`, by interpolating a 33-entry table (lpaq1's).
#[inline]
pub(crate) fn squash(x: i32) -> i32 {
    if x > 2047 {
        return 4095;
    }
    if x < -2047 {
        return 1;
    }
    squash_const(x)
}

/// The inverse of [`squash`]: `ln(p / (1 − p))` scaled by 256, for a 12-bit probability.
#[inline]
pub(crate) fn stretch(p12: u32) -> i32 {
    STRETCH[p12 as usize]
}

static STRETCH: [i32; 4096] = {
    let mut t = [2047i32; 4096];
    let mut pi = 0usize;
    let mut x = -2047i32;
    while x <= 2047 {
        let v = squash_const(x) as usize;
        let mut j = pi;
        while j <= v {
            t[j] = x;
            j += 1;
        }
        pi = v + 1;
        x += 1;
    }
    t
};

/// [`squash`] for `x` in `[−2047, 2047]`, as a `const fn` to build [`STRETCH`] at compile time.
const fn squash_const(x: i32) -> i32 {
    const T: [i32; 33] = [
        1, 2, 3, 6, 10, 16, 27, 45, 73, 120, 194, 310, 488, 747, 1101, 1546, 2047, 2549, 2994,
        3348, 3607, 3785, 3901, 3975, 4022, 4050, 4068, 4079, 4085, 4089, 4092, 4093, 4094,
    ];
    let w = x & 127;
    let i = ((x >> 7) + 16) as usize;
    (T[i] * (128 - w) + T[i + 1] * w + 64) >> 7
}
