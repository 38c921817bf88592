use crate::{Cdf, Error, PAST_END, TOP};

/// Decodes symbols from bytes made by [`crate::Encoder`], given the same `Cdf` sequence.
///
/// Reads zeros past the end of its input, but only as far as the encoder can have left them out
/// ([`PAST_END`]): a stream whose state is not zero once the decoder has read more than
/// [`PAST_END`] bytes past its end fails with [`Error::Corrupt`], so the work a stream can buy
/// is bounded by its length (`docs/CODER.md`). Other truncated or corrupt streams either fail
/// with [`Error::Corrupt`] or decode to symbols that the caller's checksum rejects.
#[derive(Debug, Clone)]
pub struct Decoder<'a> {
    input: &'a [u8],
    pos: usize,
    /// `code − low` of the encoder; always below `range` for a valid stream.
    code: u64,
    range: u64,
    /// The last 8 bytes read (zeros past the end included), as the encoder's final value.
    window: u64,
    /// `pos` after the last symbol that left `code` nonzero: how many zero bytes the encoder
    /// had to keep at the end ([`Encoder::finish`](crate::Encoder::finish)).
    last_nonzero: usize,
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
            last_nonzero: 0,
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
        if self.code != 0 {
            if self.pos > self.input.len() + PAST_END {
                return Err(Error::Corrupt);
            }
            self.last_nonzero = self.pos;
        }
        Ok(symbol)
    }

    /// Whether every symbol from here on is symbol 0, whatever the tables: the input is used up
    /// (the decoder's 8 bytes of state are all zeros read past the end) and the state is zero,
    /// so each step finds the target 0 and keeps it. A caller may then stop calling
    /// [`Decoder::decode`] and take symbol 0 for every remaining step: a long run of the
    /// symbol the encoder codes for free (all-zero data) costs no model work.
    pub fn rest_is_zero(&self) -> bool {
        self.code == 0 && self.pos >= self.input.len() + 8
    }

    /// Bytes consumed so far, counting the zeros read past the end.
    pub fn position(&self) -> usize {
        self.pos
    }

    /// Check that the input is exactly what the encoder writes for the symbols decoded.
    ///
    /// The encoder's output is canonical: its final value is the one with the fewest bytes in
    /// the final interval, and trailing zero bytes are dropped (but for those it keeps to stay
    /// within [`PAST_END`]). Any other input that happens to decode to the same symbols (a
    /// changed last byte, appended bytes) is rejected here, so every change to a coded stream
    /// is an error, not a silent success.
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
        // Trailing zeros are dropped by the encoder, but for those it keeps so that the
        // stream stays within [`PAST_END`] (`Encoder::finish`): exactly up to
        // `last_nonzero - PAST_END`.
        let trimmed = self.input.len() - self.input.iter().rev().take_while(|&&b| b == 0).count();
        let canonical_len = trimmed.max(self.last_nonzero.saturating_sub(PAST_END));
        let fits = self.input.len() <= self.pos && self.input.len() == canonical_len;
        if canonical == Some(self.window) && fits {
            Ok(())
        } else {
            Err(Error::Corrupt)
        }
    }
}
