use super::*;
use crate::{ContextMixing, symbolize};

/// Code `data` as one block from a fresh state; returns the ideal code length in bits. The
/// encoder's path ([`Model::code_chunk`] on `threads` threads), or with `threads` 0 the
/// decoder's (predict and observe, bit by bit).
fn bits<M: Model>(model: &M, state: &mut M::State, data: &[u8], threads: usize) -> f64 {
    let mut total = 0.0;
    if threads > 0 {
        model.code_chunk(state, data, &Budget::spare(threads - 1), &mut |s, cdf| {
            total += cdf.cost_bits(s)
        });
        return total;
    }
    model.reset(state);
    let mut cdf = Cdf::uniform(16, 2).unwrap();
    for s in symbolize(Symbols::Bits, data) {
        model.predict(state, &mut cdf);
        total += cdf.cost_bits(s);
        model.observe(state, s);
    }
    total
}

fn adaptive(level: u8, block: u32) -> Mixed<ContextMixing> {
    Mixed::new(ContextMixing::new(), Level::new(level).unwrap(), block).unwrap()
}

#[test]
fn levels_are_one_to_nine() {
    assert!(Level::new(0).is_none());
    assert!(Level::new(10).is_none());
    assert!((1..=9).all(|l| Level::new(l).is_some()));
}

#[test]
fn long_repeats_cost_almost_nothing() {
    let model = adaptive(3, 1 << 16);
    let mut state = model.new_state();
    // Pseudo-random bytes repeated: only the match model can find the second copy.
    let mut x = 12345u32;
    let once: Vec<u8> = (0..5000)
        .map(|_| {
            x = x.wrapping_mul(1_103_515_245).wrapping_add(12345);
            (x >> 24) as u8
        })
        .collect();
    let twice = [once.clone(), once.clone()].concat();
    let first = bits(&model, &mut state, &once, 0);
    let both = bits(&model, &mut state, &twice, 0);
    assert!(
        first > 5000.0 * 7.9,
        "random bytes cost about 8 bits: {first}"
    );
    assert!(
        both - first < 5000.0 * 0.3,
        "the repeat cost {} bits",
        both - first
    );
}

#[test]
fn state_reuse_equals_fresh_state() {
    for level in [1, 2, 9] {
        let model = adaptive(level, 4096);
        let text = b"solid mode sees the whole block, solid mode sees it all. ".repeat(30);
        let mut reused = model.new_state();
        bits(&model, &mut reused, &text[..1000], 0);
        let again = bits(&model, &mut reused, &text, 0);
        let fresh = bits(&model, &mut model.new_state(), &text, 0);
        assert_eq!(again.to_bits(), fresh.to_bits(), "level {level}");
    }
}

#[test]
fn tables_follow_the_block_size() {
    let small = adaptive(9, 1 << 12);
    let large = adaptive(9, 1 << 20);
    assert!(small.state_bytes() < large.state_bytes());
    assert!(large.state_bytes() <= (64 << 22) + (4 << 20));
    assert_eq!(adaptive(2, 1 << 24).table_bits, 20);
    assert_eq!(adaptive(9, 1 << 24).table_bits, 22);
}

#[test]
fn refuses_token_and_bit_models_other_than_the_baseline() {
    struct Tokens;
    impl Model for Tokens {
        type State = ();
        fn id(&self) -> ModelId {
            ModelId {
                name: "tok".into(),
                sha256: None,
                tokenizer_sha256: None,
                mixer: None,
            }
        }
        fn symbols(&self) -> Symbols {
            Symbols::Tokens(300)
        }
        fn precision(&self) -> u32 {
            16
        }
        fn new_state(&self) {}
        fn reset(&self, _: &mut ()) {}
        fn predict(&self, _: &mut (), _: &mut Cdf) {}
        fn observe(&self, _: &mut (), _: u32) {}
    }
    let Err(err) = Mixed::new(Tokens, Level::new(5).unwrap(), 1 << 20) else {
        panic!("a token model was mixed");
    };
    assert!(err.contains("byte models only"), "{err}");
    let id = adaptive(4, 100).id();
    assert_eq!((id.name.as_str(), id.mixer), ("baseline", Some(4)));
}

/// A byte model that always gives byte `b'a'` 90 % (the rest shared), computing numerics
/// `.0`.
struct Confident(u16);

impl Model for Confident {
    type State = ();
    fn id(&self) -> ModelId {
        ModelId {
            name: "confident".into(),
            sha256: None,
            tokenizer_sha256: None,
            mixer: None,
        }
    }
    fn symbols(&self) -> Symbols {
        Symbols::Bytes
    }
    fn precision(&self) -> u32 {
        16
    }
    fn numerics(&self) -> Option<u16> {
        Some(self.0)
    }
    fn new_state(&self) {}
    fn reset(&self, _: &mut ()) {}
    fn predict(&self, _: &mut (), cdf: &mut Cdf) {
        let mut frequencies = [26u32; 256];
        frequencies[usize::from(b'a')] = 65536 - 26 * 255;
        cdf.set_frequencies(16, &frequencies).unwrap();
    }
    fn observe(&self, _: &mut (), _: u32) {}
}

#[test]
fn from_numerics_3_a_block_starts_at_the_byte_models_rate() {
    // The byte model alone: -log2(0.9) ≈ 0.15 bits for a byte 'a'.
    let alone = -(0.9f64.log2());
    let cost = |version: u16, data: &[u8], threads: usize| {
        let model = Mixed::new(Confident(version), Level::new(6).unwrap(), 2048).unwrap();
        bits(&model, &mut model.new_state(), data, threads)
    };
    let trusting = cost(3, b"a", 0);
    let legacy = cost(2, b"a", 0);
    assert!(
        (trusting - alone).abs() < 0.02,
        "numerics 3: the first byte costs {trusting} bits, the byte model's {alone}"
    );
    assert!(
        legacy > 2.0 * alone,
        "numerics 2: the first byte costs {legacy} bits"
    );
    // Then the mixers learn from there.
    let run = [b'a'; 16];
    assert!(cost(3, &run, 0) < 16.0 * alone);
    // The encoder's path (in one pass) and the decoder's (bit by bit) agree.
    assert_eq!(cost(3, &run, 1).to_bits(), cost(3, &run, 0).to_bits());
}
