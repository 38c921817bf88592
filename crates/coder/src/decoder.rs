use crate::{Cdf, Error, TOP};

/// Decodes symbols from bytes made by [`crate::Encoder`], given the same `Cdf` sequence.
///
/// Reads zeros past the end of its input, so it never fails for lack of bytes: a truncated or
/// corrupt stream either fails with [`Error::Corrupt`] or decodes to symbols that the caller's
/// checksum rejects.
#[derive(Debug, Clone)]
pub struct Decoder<'a> {
    input: &'a [u8],
    pos: usize,
    /// `code − low` of the encoder; always below `range` for a valid stream.
    code: u64,
    range: u64,
    /// The last 8 bytes read (zeros past the end included), as the encoder's final value.
    window: u64,
}

impl<'a> Decoder<'a> {
    /// A decoder over `input`.
    pub fn new(input: &'a [u8]) -> Decoder<'a> {
        let mut dec = Decoder {
            input,
            pos: 0,
            code: 0,
            range: u64::MAX,
            window: 0,
        };
        for _ in 0..8 {
            dec.code = (dec.code << 8) | u64::from(dec.next_byte());
        }
        dec
    }

    #[inline]
    fn next_byte(&mut self) -> u8 {
        let b = self.input.get(self.pos).copied().unwrap_or(0);
        self.pos += 1;
        self.window = (self.window << 8) | u64::from(b);
        b
    }

    /// Decode one symbol under `cdf`.
    #[inline]
    pub fn decode(&mut self, cdf: &Cdf) -> Result<u32, Error> {
        let precision = cdf.precision();
        let r = self.range >> precision;
        let target = self.code / r;
        if target >> precision != 0 {
            return Err(Error::Corrupt);
        }
        let symbol = cdf.find(target as u32);
        let (start, freq) = cdf.interval(symbol);
        self.code -= r * u64::from(start);
        self.range = r * u64::from(freq);
        while self.range < TOP {
            self.code = (self.code << 8) | u64::from(self.next_byte());
            self.range <<= 8;
        }
        Ok(symbol)
    }

    /// Bytes consumed so far, counting the zeros read past the end.
    pub fn position(&self) -> usize {
        self.pos
    }

    /// Check that the input is exactly what the encoder writes for the symbols decoded.
    ///
    /// The encoder's output is canonical: its final value is the one with the fewest bytes in
    /// the final interval, and trailing zero bytes are dropped. Any other input that happens to
    /// decode to the same symbols (a changed last byte, appended bytes) is rejected here, so
    /// every change to a coded stream is an error, not a silent success.
    pub fn finish(self) -> Result<(), Error> {
        // The encoder's low end, modulo 2^64: the value minus `code` (exact, since the value
        // lies in [low, low + range)).
        let low = self.window.wrapping_sub(self.code);
        let mut canonical = None;
        for k in 1..=8u32 {
            let unit_mask = if k == 8 {
                0
            } else {
                (1u64 << (64 - 8 * k)) - 1
            };
            let v = low.wrapping_add(unit_mask) & !unit_mask;
            if v.wrapping_sub(low) < self.range {
                canonical = Some(v);
                break;
            }
        }
        let fits = self.input.len() <= self.pos && self.input.last() != Some(&0);
        if canonical == Some(self.window) && fits {
            Ok(())
        } else {
            Err(Error::Corrupt)
        }
    }
}
