//! GGUF's quantized block formats, dequantized by plain scalar IEEE arithmetic (the same f32
//! values on every CPU), and Q8_0 quantization for writing test files.

use crate::weights::f16_to_f32;

fn f16_at(b: &[u8], at: usize) -> f32 {
    f16_to_f32(u16::from_le_bytes([b[at], b[at + 1]]))
}

/// Q8_0: `d` (f16), then 32 × i8; value = d · q.
pub(super) fn dequantize_q8_0(block: &[u8], out: &mut Vec<f32>) {
    let d = f16_at(block, 0);
    out.extend(block[2..34].iter().map(|&q| d * f32::from(q as i8)));
}

/// The 32 quantized values of a block of the legacy 4- and 5-bit types: the low nibbles of
/// `qs` (16 bytes) are values 0–15 and the high nibbles values 16–31; `qh` (a little-endian
/// u32, 5-bit types only) gives value `j` its fifth bit at bit `j`.
fn legacy_values(qs: &[u8], qh: Option<u32>) -> [u8; 32] {
    let mut q = [0u8; 32];
    for (j, &b) in qs[..16].iter().enumerate() {
        q[j] = b & 0xF;
        q[j + 16] = b >> 4;
    }
    if let Some(qh) = qh {
        for (j, v) in q.iter_mut().enumerate() {
            *v |= (((qh >> j) & 1) as u8) << 4;
        }
    }
    q
}

fn u32_at(b: &[u8], at: usize) -> u32 {
    u32::from_le_bytes(b[at..at + 4].try_into().expect("BUG: 4 bytes"))
}

/// Q4_0: `d` (f16), 16 bytes of nibbles; value = d · (q − 8) (as llama.cpp's
/// `dequantize_row_q4_0`).
pub(super) fn dequantize_q4_0(block: &[u8], out: &mut Vec<f32>) {
    let d = f16_at(block, 0);
    let q = legacy_values(&block[2..18], None);
    out.extend(q.iter().map(|&q| d * f32::from(q as i8 - 8)));
}

/// Q4_1: `d`, `m` (f16), 16 bytes of nibbles; value = d · q + m.
pub(super) fn dequantize_q4_1(block: &[u8], out: &mut Vec<f32>) {
    let (d, m) = (f16_at(block, 0), f16_at(block, 2));
    let q = legacy_values(&block[4..20], None);
    out.extend(q.iter().map(|&q| d * f32::from(q) + m));
}

/// Q5_0: `d` (f16), `qh` (u32: each value's fifth bit), 16 bytes of nibbles; value =
/// d · (q − 16).
pub(super) fn dequantize_q5_0(block: &[u8], out: &mut Vec<f32>) {
    let d = f16_at(block, 0);
    let q = legacy_values(&block[6..22], Some(u32_at(block, 2)));
    out.extend(q.iter().map(|&q| d * f32::from(q as i8 - 16)));
}

/// Q5_1: `d`, `m` (f16), `qh` (u32), 16 bytes of nibbles; value = d · q + m.
pub(super) fn dequantize_q5_1(block: &[u8], out: &mut Vec<f32>) {
    let (d, m) = (f16_at(block, 0), f16_at(block, 2));
    let q = legacy_values(&block[8..24], Some(u32_at(block, 4)));
    out.extend(q.iter().map(|&q| d * f32::from(q) + m));
}

/// The 6-bit scale and minimum of sub-block `j` (0..8) of a Q4_K super-block.
fn scale_min_k4(j: usize, s: &[u8]) -> (f32, f32) {
    let (sc, m) = if j < 4 {
        (s[j] & 63, s[j + 4] & 63)
    } else {
        (
            (s[j + 4] & 0xF) | ((s[j - 4] >> 6) << 4),
            (s[j + 4] >> 4) | ((s[j] >> 6) << 4),
        )
    };
    (f32::from(sc), f32::from(m))
}

/// Q4_K: `d`, `dmin` (f16), 12 bytes of packed 6-bit scales/minimums, 128 bytes of nibbles;
/// in each 64 values, the low nibbles of 32 bytes then their high nibbles, value =
/// d·scale · q − dmin·min (as llama.cpp's `dequantize_row_q4_K`).
pub(super) fn dequantize_q4_k(block: &[u8], out: &mut Vec<f32>) {
    let (d, dmin) = (f16_at(block, 0), f16_at(block, 2));
    let scales = &block[4..16];
    let qs = &block[16..144];
    for (i, q) in qs.chunks_exact(32).enumerate() {
        let (s1, m1) = scale_min_k4(2 * i, scales);
        let (s2, m2) = scale_min_k4(2 * i + 1, scales);
        let (d1, m1, d2, m2) = (d * s1, dmin * m1, d * s2, dmin * m2);
        out.extend(q.iter().map(|&b| d1 * f32::from(b & 0xF) - m1));
        out.extend(q.iter().map(|&b| d2 * f32::from(b >> 4) - m2));
    }
}

/// Q6_K: 128 bytes of low nibbles, 64 of high 2-bit pairs, 16 signed scales, `d` (f16); value
/// = d · scale · (q − 32) (as llama.cpp's `dequantize_row_q6_K`).
pub(super) fn dequantize_q6_k(block: &[u8], out: &mut Vec<f32>) {
    let (ql, qh, sc) = (&block[..128], &block[128..192], &block[192..208]);
    let d = f16_at(block, 208);
    let mut y = [0.0f32; 256];
    for half in 0..2 {
        let (ql, qh, sc) = (&ql[64 * half..], &qh[32 * half..], &sc[8 * half..]);
        let y = &mut y[128 * half..];
        for l in 0..32 {
            let is = l / 16;
            let q =
                |low: u8, shift: u32| f32::from((low | (((qh[l] >> shift) & 3) << 4)) as i8 - 32);
            let s = |k: usize| d * f32::from(sc[is + k] as i8);
            y[l] = s(0) * q(ql[l] & 0xF, 0);
            y[l + 32] = s(2) * q(ql[l + 32] & 0xF, 2);
            y[l + 64] = s(4) * q(ql[l] >> 4, 4);
            y[l + 96] = s(6) * q(ql[l + 32] >> 4, 6);
        }
    }
    out.extend_from_slice(&y);
}

/// Q8_0 blocks of `values` (a multiple of 32): per block `d = max|v| / 127` (as f16) and
/// `q = round(v / d)`, as llama.cpp's `quantize_row_q8_0`.
pub fn quantize_q8_0(values: &[f32]) -> Vec<u8> {
    assert!(values.len().is_multiple_of(32), "Q8_0 needs blocks of 32");
    let mut out = Vec::with_capacity(values.len() / 32 * 34);
    for block in values.chunks_exact(32) {
        let amax = block.iter().fold(0.0f32, |a, v| a.max(v.abs()));
        let d = amax / 127.0;
        let inv = if d == 0.0 { 0.0 } else { 1.0 / d };
        out.extend_from_slice(&half::f16::from_f32(d).to_bits().to_le_bytes());
        out.extend(block.iter().map(|v| (v * inv).round() as i8 as u8));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn f16_bytes(v: f32) -> [u8; 2] {
        half::f16::from_f32(v).to_bits().to_le_bytes()
    }

    /// The legacy types against their definitions (ggml's `block_q4_0` … `block_q5_1`): every
    /// value of a block whose quants run through all 16 or 32 codes, with ordinary, negative,
    /// largest-finite and subnormal scales and minimums.
    #[test]
    fn legacy_blocks_match_their_definitions() {
        let scales = [0.5f32, -0.03125, 65504.0, 5.960_464_5e-8, 0.0];
        let minimums = [0.25f32, -65504.0, 0.0, -1.5];
        // Quants 0, 1, …: value j has code j mod 16 (4-bit) or (7 j) mod 32 (5-bit).
        let nibbles: Vec<u8> = (0..16u8).map(|j| j | (((15 - j) & 0xF) << 4)).collect();
        let code4 = |j: usize| if j < 16 { j as u8 } else { 15 - (j as u8 - 16) };
        let code5 = |j: usize| ((7 * j) % 32) as u8;
        for &d in &scales {
            let d16 = half::f16::from_f32(d).to_f32();
            let mut b = f16_bytes(d).to_vec();
            b.extend(&nibbles);
            let mut out = Vec::new();
            dequantize_q4_0(&b, &mut out);
            for (j, &v) in out.iter().enumerate() {
                assert_eq!(v, d16 * (f32::from(code4(j)) - 8.0), "q4_0 d {d} value {j}");
            }
            // 5-bit: low nibbles and the fifth bits of code5.
            let mut qs = [0u8; 16];
            let mut qh = 0u32;
            for j in 0..32 {
                let c = code5(j);
                if j < 16 {
                    qs[j] |= c & 0xF;
                } else {
                    qs[j - 16] |= (c & 0xF) << 4;
                }
                qh |= u32::from(c >> 4) << j;
            }
            let mut b = f16_bytes(d).to_vec();
            b.extend(qh.to_le_bytes());
            b.extend(qs);
            let mut out = Vec::new();
            dequantize_q5_0(&b, &mut out);
            for (j, &v) in out.iter().enumerate() {
                assert_eq!(
                    v,
                    d16 * (f32::from(code5(j)) - 16.0),
                    "q5_0 d {d} value {j}"
                );
            }
            for &m in &minimums {
                let m16 = half::f16::from_f32(m).to_f32();
                let mut b = [f16_bytes(d), f16_bytes(m)].concat();
                b.extend(&nibbles);
                let mut out = Vec::new();
                dequantize_q4_1(&b, &mut out);
                for (j, &v) in out.iter().enumerate() {
                    assert_eq!(v, d16 * f32::from(code4(j)) + m16, "q4_1 {d} {m} {j}");
                }
                let mut b = [f16_bytes(d), f16_bytes(m)].concat();
                b.extend(qh.to_le_bytes());
                b.extend(qs);
                let mut out = Vec::new();
                dequantize_q5_1(&b, &mut out);
                for (j, &v) in out.iter().enumerate() {
                    assert_eq!(v, d16 * f32::from(code5(j)) + m16, "q5_1 {d} {m} {j}");
                }
            }
        }
    }

    /// The extremes: the largest scale and minimum with every code at its largest (31) give
    /// 65504 · 31 + 65504, exactly, in f32.
    #[test]
    fn legacy_extremes_stay_finite() {
        let mut b = [f16_bytes(65504.0), f16_bytes(65504.0)].concat();
        b.extend(u32::MAX.to_le_bytes());
        b.extend([0xFFu8; 16]);
        let mut out = Vec::new();
        dequantize_q5_1(&b, &mut out);
        assert!(out.iter().all(|&v| v == 65504.0 * 31.0 + 65504.0));
    }

    #[test]
    fn q4_k_block_by_hand() {
        let mut b = vec![0u8; 144];
        b[0..2].copy_from_slice(&half::f16::from_f32(0.5).to_bits().to_le_bytes()); // d
        b[2..4].copy_from_slice(&half::f16::from_f32(0.25).to_bits().to_le_bytes()); // dmin
        // Sub-block 0: scale 2, min 4; sub-block 5 (j >= 4): scale 3 + (1 << 4), min 1 + (2 << 4).
        b[4] = 2;
        b[8] = 4;
        b[4 + 5 + 4] = 3 | (1 << 4);
        b[4 + 1] |= 1 << 6; // high bits of scale 5 come from s[j - 4] = s[1]
        b[4 + 5] |= 2 << 6; // high bits of min 5 come from s[j] = s[5]
        b[16] = 0x7 | (0x9 << 4); // value 0 (low nibble) and value 32 (high nibble)
        b[16 + 64 + 1] = 0xA << 4; // value 128 + 32 + 1: sub-block 5, high nibble 10
        let mut out = Vec::new();
        dequantize_q4_k(&b, &mut out);
        assert_eq!(out.len(), 256);
        assert_eq!(out[0], 0.5 * 2.0 * 7.0 - 0.25 * 4.0);
        // Sub-block 1: scale 0, min 0.
        assert_eq!(out[32], 0.0);
        let (scale5, min5) = (3.0 + 16.0, 1.0 + 32.0);
        assert_eq!(out[128 + 32 + 1], 0.5 * scale5 * 10.0 - 0.25 * min5);
        assert_eq!(out[128 + 32], -0.25 * min5);
    }

    #[test]
    fn q6_k_block_by_hand() {
        let mut b = vec![0u8; 210];
        b[208..210].copy_from_slice(&half::f16::from_f32(0.5).to_bits().to_le_bytes());
        for (i, s) in b[192..208].iter_mut().enumerate() {
            *s = (i as i8 - 4) as u8;
        }
        // Value 0: low nibble 5, high bits 2 -> q = 5 + 32 - 32 = 5, scale index 0 (-4).
        b[0] = 5;
        b[128] = 2;
        // Value 64 + 17 (first half): ql[17] high nibble 0xF, qh[17] bits 4-5 = 3 -> 63 - 32.
        b[17] = 0xF0;
        b[128 + 17] = 3 << 4;
        let mut out = Vec::new();
        dequantize_q6_k(&b, &mut out);
        assert_eq!(out[0], 0.5 * -4.0 * 5.0);
        // l = 17: is = 1; value 64 + l uses scale is + 4 = 5 (value 1).
        assert_eq!(out[64 + 17], 0.5 * 1.0 * 31.0);
        // Untouched values are q = -32 times their scale.
        assert_eq!(out[1], 0.5 * -4.0 * -32.0);
    }

    #[test]
    fn q8_0_round_trips_within_half_a_step() {
        let values: Vec<f32> = (0..64).map(|i| (i as f32 - 20.0) * 0.037).collect();
        let q = quantize_q8_0(&values);
        let mut out = Vec::new();
        q.chunks_exact(34)
            .for_each(|b| dequantize_q8_0(b, &mut out));
        for (a, b) in values.iter().zip(&out) {
            assert!(
                (a - b).abs() <= 0.5 * 0.037 * 44.0 / 127.0 + 1e-6,
                "{a} {b}"
            );
        }
    }
}
