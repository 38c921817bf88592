//! Round trips and the overhead bound of the range coder.

use lmzip_coder::{Cdf, Decoder, Encoder, PAST_END};

/// A small deterministic generator for test data.
struct Lcg(u64);
impl Lcg {
    fn next(&mut self) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        self.0 >> 33
    }
}

/// A table with skewed frequencies, randomised by `rng`.
fn random_cdf(rng: &mut Lcg, precision: u32, n: usize) -> Cdf {
    let total = 1u64 << precision;
    let mut f: Vec<u64> = (0..n).map(|_| 1 + (rng.next() % 1000).pow(3)).collect();
    let sum: u64 = f.iter().sum();
    let mut freqs: Vec<u32> = f
        .iter_mut()
        .map(|x| ((*x as u128 * (total - n as u64) as u128 / sum as u128) as u64 + 1) as u32)
        .collect();
    let assigned: u64 = freqs.iter().map(|&x| x as u64).sum();
    freqs[0] += (total - assigned) as u32;
    Cdf::from_frequencies(precision, &freqs).unwrap()
}

fn round_trip(symbols: &[u32], cdfs: &[Cdf]) -> Vec<u8> {
    let mut enc = Encoder::new();
    for (&s, c) in symbols.iter().zip(cdfs) {
        enc.encode(s, c);
    }
    let bytes = enc.finish();
    let mut dec = Decoder::new(&bytes);
    for (i, (&s, c)) in symbols.iter().zip(cdfs).enumerate() {
        assert_eq!(dec.decode(c).unwrap(), s, "symbol {i}");
    }
    dec.finish().expect("canonical stream");
    bytes
}

#[test]
fn empty_message_is_empty() {
    assert!(Encoder::new().finish().is_empty());
}

#[test]
fn random_tables_every_precision() {
    let mut rng = Lcg(1);
    for precision in [1, 2, 8, 12, 16, 20, 24, 30] {
        for n in [1usize, 2, 3, 17, 256, 5000] {
            if n as u64 > 1 << precision {
                continue;
            }
            let cdfs: Vec<Cdf> = (0..300)
                .map(|_| random_cdf(&mut rng, precision, n))
                .collect();
            let symbols: Vec<u32> = (0..300).map(|_| (rng.next() % n as u64) as u32).collect();
            assert_near_entropy(&symbols, &cdfs);
        }
    }
}

#[test]
fn extreme_probabilities_force_carries() {
    // Long runs of the most probable symbol of a table whose first symbol takes almost all the
    // mass produce many 0xFF bytes and carries through them.
    let p = 24;
    let skew = Cdf::from_frequencies(p, &[(1 << p) - 2, 1, 1]).unwrap();
    let low = Cdf::from_frequencies(p, &[1, 1, (1 << p) - 2]).unwrap();
    let mut rng = Lcg(7);
    let mut symbols = Vec::new();
    let mut cdfs = Vec::new();
    for _ in 0..20_000 {
        let c = if rng.next().is_multiple_of(3) {
            &low
        } else {
            &skew
        };
        let s = if rng.next().is_multiple_of(50) {
            (rng.next() % 3) as u32
        } else if std::ptr::eq(c, &low) {
            2
        } else {
            0
        };
        symbols.push(s);
        cdfs.push(c.clone());
    }
    round_trip(&symbols, &cdfs);
}

#[test]
fn least_probable_symbols_everywhere() {
    let p = 16;
    let cdf = Cdf::from_frequencies(p, &[1, (1 << p) - 2, 1]).unwrap();
    let symbols: Vec<u32> = (0..5000).map(|i| if i % 2 == 0 { 0 } else { 2 }).collect();
    let cdfs = vec![cdf; symbols.len()];
    assert_near_entropy(&symbols, &cdfs);
}

/// Round-trip `symbols` and check the code is at most 4 bytes over their information content.
fn assert_near_entropy(symbols: &[u32], cdfs: &[Cdf]) {
    let bytes = round_trip(symbols, cdfs);
    let bits: f64 = symbols.iter().zip(cdfs).map(|(&s, c)| c.cost_bits(s)).sum();
    assert!(
        bytes.len() as f64 <= bits / 8.0 + 4.0,
        "{} bytes for {bits} bits",
        bytes.len()
    );
}

#[test]
fn garbage_never_panics() {
    let mut rng = Lcg(3);
    let cdf = Cdf::from_frequencies(16, &[60_000, 5_000, 536]).unwrap();
    for len in 0..64 {
        let bytes: Vec<u8> = (0..len).map(|_| rng.next() as u8).collect();
        let mut dec = Decoder::new(&bytes);
        for _ in 0..1000 {
            if dec.decode(&cdf).is_err() {
                break;
            }
        }
    }
}

#[test]
fn altered_streams_are_not_canonical() {
    let mut rng = Lcg(11);
    let cdfs: Vec<Cdf> = (0..400).map(|_| random_cdf(&mut rng, 16, 40)).collect();
    let symbols: Vec<u32> = (0..400).map(|_| (rng.next() % 40) as u32).collect();
    let bytes = round_trip(&symbols, &cdfs);
    for i in 0..bytes.len() {
        for delta in [1u8, 0x10, 0xFF] {
            let mut bad = bytes.clone();
            bad[i] ^= delta;
            assert!(
                !accepted(&bad, &symbols, &cdfs),
                "byte {i} ^ {delta:#x} accepted"
            );
        }
    }
    for extra in [0u8, 1, 0x80] {
        let mut longer = bytes.clone();
        longer.push(extra);
        assert!(
            !accepted(&longer, &symbols, &cdfs),
            "appended {extra:#x} accepted"
        );
    }
}

/// Whether `bytes` decode to `symbols` and pass the canonical-stream check.
fn accepted(bytes: &[u8], symbols: &[u32], cdfs: &[Cdf]) -> bool {
    let mut dec = Decoder::new(bytes);
    symbols
        .iter()
        .zip(cdfs)
        .all(|(&s, c)| dec.decode(c) == Ok(s))
        && dec.finish().is_ok()
}

/// A stream that reads zeros past its end while its state is nonzero is forged: decoding stops
/// within [`PAST_END`] bytes of the end, however many symbols the caller asks for.
#[test]
fn forged_streams_stop_past_the_end() {
    let cdf = Cdf::from_frequencies(16, &[60_000, 5_000, 536]).unwrap();
    let mut rng = Lcg(5);
    for len in 1..48 {
        let bytes: Vec<u8> = (0..len).map(|_| 1 | rng.next() as u8).collect();
        let mut dec = Decoder::new(&bytes);
        let mut steps = 0;
        while dec.decode(&cdf).is_ok() {
            steps += 1;
            assert!(dec.position() <= len + PAST_END + 1, "read past the bound");
            assert!(steps < 1_000_000, "a {len}-byte stream decodes forever");
        }
    }
}

/// All-zero data costs nothing: its stream is empty, and after the state turns zero past the
/// end every symbol is symbol 0 whatever the tables, so a caller may stop asking the model.
#[test]
fn zero_runs_end_in_a_zero_state() {
    let cdf = Cdf::from_frequencies(12, &[4000, 90, 6]).unwrap();
    let mut enc = Encoder::new();
    for _ in 0..10_000 {
        enc.encode(0, &cdf);
    }
    assert!(enc.finish().is_empty());
    // Real data, then a long run of symbol 0: the stream ends where the run makes the state
    // zero, and the decoder says so.
    let mut rng = Lcg(9);
    let mut symbols: Vec<u32> = (0..200).map(|_| (rng.next() % 3) as u32).collect();
    symbols.extend(std::iter::repeat_n(0, 100_000));
    let cdfs = vec![cdf.clone(); symbols.len()];
    let bytes = round_trip(&symbols, &cdfs);
    let mut dec = Decoder::new(&bytes);
    let mut decoded = 0;
    while !dec.rest_is_zero() {
        assert_eq!(dec.decode(&cdf).unwrap(), symbols[decoded]);
        decoded += 1;
    }
    assert!(symbols[decoded..].iter().all(|&s| s == 0));
    // The state turns zero once 8 bytes of the run have been shifted out: 64 bits at
    // -log2(4000/4096) = 0.034 bits a symbol, about 1,900 symbols after the data.
    assert!(decoded < 200 + 2500, "the model ran {decoded} steps");
    dec.finish().unwrap();
}

/// Data built to keep the state nonzero past the end (a forged stream's decoding, encoded
/// again) is coded with the zero bytes that keep it within [`PAST_END`], and round-trips: at
/// every precision, with skewed and flat tables, after a few random bytes followed by zeros or
/// by 0xFF bytes.
#[test]
fn streams_built_to_run_past_the_end_keep_their_zeros() {
    let mut rng = Lcg(77);
    let mut padded = 0;
    for trial in 0..3000 {
        let precision = [1u32, 2, 8, 12, 16, 24, 30][trial % 7];
        let n = [2usize, 3, 5, 256][(trial / 7) % 4].min(1 << precision);
        let cdfs: Vec<Cdf> = (0..300)
            .map(|_| random_cdf(&mut rng, precision, n))
            .collect();
        // Decode a short stream followed by explicit zeros (or 0xFF): the symbols a forged
        // stream with those bytes would decode to, had bytes past the end no bound.
        let mut source: Vec<u8> = (0..rng.next() % 6).map(|_| rng.next() as u8 | 1).collect();
        let fill = if rng.next().is_multiple_of(4) {
            0xFF
        } else {
            0
        };
        source.resize(2000, fill);
        let mut dec = Decoder::new(&source);
        let Ok(symbols) = cdfs
            .iter()
            .map(|c| dec.decode(c))
            .collect::<Result<Vec<_>, _>>()
        else {
            continue;
        };
        let bytes = round_trip(&symbols, &cdfs);
        padded += usize::from(bytes.last() == Some(&0));
    }
    assert!(padded > 100, "only {padded} streams needed their zeros");
}
