use crate::{Cdf, PAST_END, TOP};

/// Encodes symbols into bytes. Seal it with [`Encoder::finish`].
///
/// Invariants between calls: `range ∈ [2^56, 2^64)`, `low < 2^64` once the carry has been
/// moved into the cached byte, and the interval `[low, low + range)` (as a fraction of `2^64`,
/// after the bytes already written, the cached byte and `pending` bytes of `0xFF`) contains every
/// value that decodes to the symbols encoded so far.
#[derive(Debug, Clone)]
pub struct Encoder {
    low: u128,
    range: u64,
    /// The last byte produced but not yet written: a later carry may still increment it.
    cache: u8,
    /// Bytes of `0xFF` after `cache`, not yet written: a carry turns them into `0x00`.
    pending: u64,
    /// The first cached byte is the integer part of the code value, always zero: not written.
    skip_first: bool,
    out: Vec<u8>,
    /// Bytes shifted out of `low` so far (the first, skipped one included): after a symbol,
    /// a decoder has read `8 + shifts` bytes.
    shifts: u64,
    /// `shifts` after the last symbol that left `low` (modulo 2^64) nonzero: up to there a
    /// decoder's state may be nonzero, so the output must reach within [`PAST_END`] of it.
    last_nonzero: u64,
}

impl Default for Encoder {
    fn default() -> Self {
        Encoder::new()
    }
}

impl Encoder {
    /// A new encoder with an empty output.
    pub fn new() -> Encoder {
        Encoder {
            low: 0,
            range: u64::MAX,
            cache: 0,
            pending: 0,
            skip_first: true,
            out: Vec::new(),
            shifts: 0,
            last_nonzero: 0,
        }
    }

    /// Encode `symbol` under `cdf`.
    ///
    /// # Panics
    /// If `symbol` is outside `cdf`'s alphabet: that is a bug in the caller.
    #[inline]
    pub fn encode(&mut self, symbol: u32, cdf: &Cdf) {
        let (start, freq) = cdf.interval(symbol);
        self.encode_interval(start, freq, cdf.precision());
    }

    /// Encode the interval `[start, start + freq)` of a total `2^precision`.
    #[inline]
    pub fn encode_interval(&mut self, start: u32, freq: u32, precision: u32) {
        debug_assert!(freq > 0 && u64::from(start) + u64::from(freq) <= 1 << precision);
        let r = self.range >> precision;
        self.low += u128::from(r * u64::from(start));
        self.range = r * u64::from(freq);
        while self.range < TOP {
            self.shift_low();
            self.range <<= 8;
        }
        if self.low as u64 != 0 {
            self.last_nonzero = self.shifts;
        }
    }

    /// Number of bytes written so far (not counting up to ~10 bytes still held in the state).
    pub fn bytes_written(&self) -> usize {
        self.out.len()
    }

    /// Move the top byte of `low` out, resolving a carry into the cached and pending bytes.
    fn shift_low(&mut self) {
        const FF_TOP: u128 = 0xFF << 56;
        self.shifts += 1;
        if self.low < FF_TOP || self.low >= 1 << 64 {
            let carry = (self.low >> 64) as u8;
            if self.skip_first {
                debug_assert_eq!(self.cache + carry, 0, "the code value is below 1");
                self.skip_first = false;
            } else {
                self.out.push(self.cache.wrapping_add(carry));
            }
            let filler = 0xFFu8.wrapping_add(carry);
            for _ in 0..self.pending {
                self.out.push(filler);
            }
            self.pending = 0;
            self.cache = (self.low >> 56) as u8;
        } else {
            self.pending += 1;
        }
        self.low = (self.low & ((1 << 56) - 1)) << 8;
    }

    /// Finish: pick the value in the final interval with the most trailing zero bytes, write
    /// it, and drop trailing zero bytes (the decoder reads zeros past the end), but keep those a
    /// decoder would need to stay within [`PAST_END`] bytes past the end while its state is
    /// nonzero. After a symbol, a decoder has read `8 + shifts` bytes and its state is the
    /// encoder's `low` negated (modulo 2^64) once those bytes are all past the end.
    pub fn finish(mut self) -> Vec<u8> {
        let keep = (self.last_nonzero + 8).saturating_sub(PAST_END as u64) as usize;
        let end = self.low + u128::from(self.range);
        for k in 1..=8u32 {
            let unit: u128 = 1 << (64 - 8 * k);
            let v = (self.low + unit - 1) & !(unit - 1);
            if v < end {
                self.low = v;
                break;
            }
        }
        for _ in 0..9 {
            self.shift_low();
        }
        while self.out.len() > keep && self.out.last() == Some(&0) {
            self.out.pop();
        }
        self.out
    }
}
