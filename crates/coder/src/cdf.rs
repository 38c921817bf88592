use crate::Error;

/// The smallest supported precision (total `2^1`).
pub const MIN_PRECISION: u32 = 1;
/// The largest supported precision (total `2^30`).
pub const MAX_PRECISION: u32 = 30;

/// A cumulative frequency table: `alphabet_size` symbols, total `2^precision`, every
/// frequency at least 1.
///
/// Stored as `alphabet_size + 1` cumulative values `c[0] = 0 < c[1] < … < c[n] = 2^precision`;
/// symbol `s` owns `[c[s], c[s+1])`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cdf {
    precision: u32,
    cum: Vec<u32>,
}

impl Cdf {
    /// A uniform-as-possible table over `alphabet_size` symbols (the remainder goes to the
    /// first symbols).
    pub fn uniform(precision: u32, alphabet_size: usize) -> Result<Cdf, Error> {
        check_shape(precision, alphabet_size)?;
        let total = 1u64 << precision;
        let n = alphabet_size as u64;
        let (base, extra) = (total / n, total % n);
        let mut cum = Vec::with_capacity(alphabet_size + 1);
        let mut acc = 0u64;
        cum.push(0);
        for s in 0..n {
            acc += base + u64::from(s < extra);
            cum.push(acc as u32);
        }
        Ok(Cdf { precision, cum })
    }

    /// A table from explicit frequencies, which must sum to `2^precision`, each at least 1.
    pub fn from_frequencies(precision: u32, frequencies: &[u32]) -> Result<Cdf, Error> {
        let mut cdf = Cdf {
            precision,
            cum: Vec::new(),
        };
        cdf.set_frequencies(precision, frequencies)?;
        Ok(cdf)
    }

    /// Replace the table's contents with `frequencies`, reusing its allocation.
    pub fn set_frequencies(&mut self, precision: u32, frequencies: &[u32]) -> Result<(), Error> {
        check_shape(precision, frequencies.len())?;
        self.precision = precision;
        self.cum.clear();
        self.cum.push(0);
        let mut acc = 0u64;
        for &f in frequencies {
            if f == 0 {
                return Err(Error::InvalidCdf("a frequency is zero"));
            }
            acc += u64::from(f);
            if acc > 1 << precision {
                return Err(Error::InvalidCdf("frequencies exceed the total"));
            }
            self.cum.push(acc as u32);
        }
        if acc != 1 << precision {
            return Err(Error::InvalidCdf("frequencies do not sum to 2^precision"));
        }
        Ok(())
    }

    /// Replace the table with a two-symbol one: symbol 0 gets `freq0`, symbol 1 the rest.
    ///
    /// `freq0` is clamped to `[1, 2^precision − 1]`, so every symbol stays codable.
    pub fn set_binary(&mut self, precision: u32, freq0: u32) {
        assert!(
            (MIN_PRECISION..=MAX_PRECISION).contains(&precision),
            "BUG: precision out of range"
        );
        let total = 1u32 << precision;
        let f0 = freq0.clamp(1, total - 1);
        self.precision = precision;
        self.cum.clear();
        self.cum.extend_from_slice(&[0, f0, total]);
    }

    /// The precision: the total is `2^precision`.
    pub fn precision(&self) -> u32 {
        self.precision
    }

    /// The number of symbols.
    pub fn alphabet_size(&self) -> usize {
        self.cum.len() - 1
    }

    /// The cumulative frequency below `symbol` and the symbol's own frequency.
    ///
    /// # Panics
    /// If `symbol` is outside the alphabet.
    #[inline]
    pub fn interval(&self, symbol: u32) -> (u32, u32) {
        let s = symbol as usize;
        let lo = self.cum[s];
        (lo, self.cum[s + 1] - lo)
    }

    /// The frequency of `symbol`.
    pub fn frequency(&self, symbol: u32) -> u32 {
        self.interval(symbol).1
    }

    /// The symbol whose interval contains `target` (which must be below the total).
    #[inline]
    pub(crate) fn find(&self, target: u32) -> u32 {
        // Largest s with cum[s] <= target; cum[0] = 0 <= target < cum[n].
        let idx = self.cum.partition_point(|&c| c <= target);
        (idx - 1) as u32
    }

    /// The ideal code length of `symbol` in bits, `−log2(freq / 2^precision)`.
    ///
    /// For measurement only: never used on the coding path.
    pub fn cost_bits(&self, symbol: u32) -> f64 {
        f64::from(self.precision) - f64::from(self.frequency(symbol)).log2()
    }
}

fn check_shape(precision: u32, alphabet_size: usize) -> Result<(), Error> {
    if !(MIN_PRECISION..=MAX_PRECISION).contains(&precision) {
        return Err(Error::InvalidCdf("precision out of range"));
    }
    if alphabet_size < 1 {
        return Err(Error::InvalidCdf("empty alphabet"));
    }
    if alphabet_size as u64 > 1 << precision {
        return Err(Error::InvalidCdf("alphabet larger than the total"));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uniform_sums_to_total() {
        let cdf = Cdf::uniform(16, 257).unwrap();
        assert_eq!(cdf.alphabet_size(), 257);
        let sum: u32 = (0..257).map(|s| cdf.frequency(s)).sum();
        assert_eq!(sum, 1 << 16);
        assert!((0..257).all(|s| cdf.frequency(s) >= 255));
    }

    #[test]
    fn rejects_bad_tables() {
        assert!(Cdf::from_frequencies(4, &[8, 8, 0]).is_err());
        assert!(Cdf::from_frequencies(4, &[8, 7]).is_err());
        assert!(Cdf::from_frequencies(4, &[8, 9]).is_err());
        assert!(Cdf::from_frequencies(31, &[1]).is_err());
        assert!(Cdf::uniform(2, 5).is_err());
        assert!(Cdf::uniform(8, 0).is_err());
    }

    #[test]
    fn find_inverts_interval() {
        let cdf = Cdf::from_frequencies(4, &[3, 1, 12]).unwrap();
        let found: Vec<u32> = (0..16).map(|t| cdf.find(t)).collect();
        assert_eq!(found, [0, 0, 0, 1, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2]);
    }
}
