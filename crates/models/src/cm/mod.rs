//! The weightless baseline: bitwise context mixing, in integer arithmetic only.
//!
//! Each byte is coded as 8 binary decisions, most significant bit first. For every decision,
//! eight contexts of the bytes before it (orders 0, 1, 2, 3, 4 and 6, the byte 64 positions back
//! with the last byte — the pixel above in a 64-wide image patch —, and a linear prediction
//! `2·c1 − c2` — smooth signals such as audio) each give an adaptive probability from a hashed
//! table of counters; a match model predicts the bit that followed the last occurrence of the
//! current 4-byte context. A logistic mixer (the approach of PAQ and lpaq by Matt Mahoney)
//! combines the stretched probabilities with weights that learn online, selected by the bit
//! position and whether a match is active.
//!
//! The model learns only from the chunk it codes: every chunk starts from the same state. Every
//! operation is on integers (`squash` is an interpolated table, `stretch` its exact inverse), so
//! predictions are identical on every machine (`docs/DETERMINISM.md`).
//!
//! # References
//! - M. Mahoney, *Adaptive weighing of context models for lossless data compression*, 2005.
//! - M. Mahoney, lpaq1 (2007): nibble-bucketed hash tables, state maps with adaptive rates.

use crate::adaptive::{hash, squash, stretch, update_counter};
use crate::{Model, ModelId, Symbols};
use lmzip_coder::Cdf;

/// Number of hashed contexts.
const N_CTX: usize = 8;
/// Mixer inputs: one per context, the match model, and a bias.
const N_INPUTS: usize = N_CTX + 2;
/// Mixer weight sets: bit position (8) × match active (2).
const N_SETS: usize = 16;
/// The hash table has `2^TABLE_BITS` buckets of 16 counters (one cache line each).
const TABLE_BITS: u32 = 16;
/// Length of the context the match model looks up.
const MATCH_MIN: usize = 4;
/// Match model hash table size (chunk positions).
const MATCH_TABLE_BITS: u32 = 12;
/// Upper bound of a counter's hit count: its adaptation rate stops falling there.
const COUNT_LIMIT: u32 = 255;
/// Precision of the binary tables handed to the coder.
const PRECISION: u32 = 16;
/// Mixer learning rate numerator (the update is `x · err · LR >> 12`).
const LEARNING_RATE: i64 = 4;

/// The baseline's name in archives and on the command line.
pub const NAME: &str = "baseline";

/// The weightless context-mixing baseline model. See the module documentation.
#[derive(Debug, Clone, Default)]
pub struct ContextMixing;

impl ContextMixing {
    /// The model. It has no parameters and no weights.
    pub fn new() -> ContextMixing {
        ContextMixing
    }
}

/// The per-chunk state of [`ContextMixing`].
#[derive(Debug, Clone)]
pub struct CmState {
    hist: Vec<u8>,
    /// Bits of the current byte seen so far, with a leading 1.
    c0: u32,
    bit_pos: u32,
    /// Node of the current nibble's binary tree (1..=15).
    node: usize,
    table: Vec<[u32; 16]>,
    /// Generation stamp: buckets written for an earlier chunk do not match it.
    stamp: u32,
    ctx_hash: [u32; N_CTX],
    bucket: [usize; N_CTX],
    inputs: [i32; N_INPUTS],
    weights: Vec<i32>,
    weight_set: usize,
    /// Mixer output: probability of a 1 bit, 12 bits.
    pr: i32,
    matcher: Matcher,
}

/// Predicts the next bit from the last earlier occurrence of the current context.
#[derive(Debug, Clone)]
struct Matcher {
    table: Vec<u16>,
    /// Index in the history of the predicted next byte (valid when `len > 0`).
    ptr: usize,
    len: usize,
    /// Counters indexed by `min(len, 15) · 2 + expected bit`.
    counters: [u32; 32],
    /// The counter used for the current bit, if a match is active.
    active: Option<usize>,
}

impl Model for ContextMixing {
    type State = CmState;

    fn id(&self) -> ModelId {
        ModelId {
            name: NAME.to_string(),
            sha256: None,
            tokenizer_sha256: None,
            mixer: None,
        }
    }

    fn symbols(&self) -> Symbols {
        Symbols::Bits
    }

    fn precision(&self) -> u32 {
        PRECISION
    }

    fn new_state(&self) -> CmState {
        let mut state = CmState {
            hist: Vec::with_capacity(4096),
            c0: 1,
            bit_pos: 0,
            node: 1,
            table: vec![[0; 16]; 1 << TABLE_BITS],
            stamp: 0,
            ctx_hash: [0; N_CTX],
            bucket: [0; N_CTX],
            inputs: [0; N_INPUTS],
            weights: vec![0; N_SETS * N_INPUTS],
            weight_set: 0,
            pr: 2048,
            matcher: Matcher {
                table: vec![0; 1 << MATCH_TABLE_BITS],
                ptr: 0,
                len: 0,
                counters: [0; 32],
                active: None,
            },
        };
        self.reset(&mut state);
        state
    }

    fn reset(&self, s: &mut CmState) {
        s.hist.clear();
        s.c0 = 1;
        s.bit_pos = 0;
        s.node = 1;
        // A new stamp hides every bucket of earlier chunks; the table is only cleared when the
        // 16-bit stamp wraps, so a stale bucket can never be mistaken for a fresh one.
        s.stamp = (s.stamp + 1) & 0xFFFF;
        if s.stamp == 0 {
            s.table.iter_mut().for_each(|b| *b = [0; 16]);
            s.stamp = 1;
        }
        for (i, w) in s.weights.iter_mut().enumerate() {
            *w = match i % N_INPUTS {
                i if i < N_CTX => 12_000,
                i if i == N_CTX => 32_000,
                _ => 0,
            };
        }
        s.matcher.table.iter_mut().for_each(|p| *p = 0);
        s.matcher.len = 0;
        s.matcher.active = None;
        for (i, c) in s.matcher.counters.iter_mut().enumerate() {
            let (len, expected) = ((i >> 1) as u32, (i & 1) as u32);
            // Prior: a match of length l predicts its bit with probability (l+1)/(l+2).
            let p1 = ((1u64 << 22) * u64::from(len + 1) / u64::from(len + 2)) as u32;
            let p = if expected == 1 { p1 } else { (1 << 22) - p1 };
            *c = p << 10;
        }
        s.update_contexts();
        s.select_buckets();
    }

    fn predict(&self, s: &mut CmState, cdf: &mut Cdf) {
        for i in 0..N_CTX {
            let counter = s.table[s.bucket[i]][s.node];
            s.inputs[i] = stretch(counter >> 20);
        }
        s.inputs[N_CTX] = s.matcher.input(&s.hist, s.c0, s.bit_pos);
        s.inputs[N_CTX + 1] = 256;
        s.weight_set = s.bit_pos as usize * 2 + usize::from(s.matcher.active.is_some());
        let w = &s.weights[s.weight_set * N_INPUTS..][..N_INPUTS];
        let dot: i64 = w
            .iter()
            .zip(&s.inputs)
            .map(|(&w, &x)| i64::from(w) * i64::from(x))
            .sum();
        s.pr = squash((dot >> 16).clamp(-2047, 2047) as i32);
        let freq1 = (s.pr as u32) << (PRECISION - 12);
        cdf.set_binary(PRECISION, (1 << PRECISION) - freq1);
    }

    fn observe(&self, s: &mut CmState, symbol: u32) {
        let bit = symbol & 1;
        let err = i64::from(((bit as i32) << 12) - s.pr) * LEARNING_RATE;
        let w = &mut s.weights[s.weight_set * N_INPUTS..][..N_INPUTS];
        for (w, &x) in w.iter_mut().zip(&s.inputs) {
            *w += ((i64::from(x) * err) >> 12) as i32;
        }
        for i in 0..N_CTX {
            update_counter(&mut s.table[s.bucket[i]][s.node], bit, COUNT_LIMIT);
        }
        if let Some(i) = s.matcher.active {
            update_counter(&mut s.matcher.counters[i], bit, COUNT_LIMIT);
        }
        s.c0 = (s.c0 << 1) | bit;
        s.node = (s.node << 1) | bit as usize;
        s.bit_pos += 1;
        if s.bit_pos == 8 {
            s.hist.push(s.c0 as u8);
            s.c0 = 1;
            s.bit_pos = 0;
            s.matcher.update(&s.hist);
            s.update_contexts();
        }
        if s.bit_pos.is_multiple_of(4) {
            s.node = 1;
            s.select_buckets();
        }
    }
}

impl CmState {
    /// The byte `back` positions before the next one (0 before the chunk start).
    fn byte(&self, back: usize) -> u32 {
        let n = self.hist.len();
        if back <= n {
            u32::from(self.hist[n - back])
        } else {
            0
        }
    }

    /// Hash the byte contexts at a byte boundary.
    fn update_contexts(&mut self) {
        let c1 = self.byte(1);
        let c2 = self.byte(2);
        let c3 = self.byte(3);
        let c4 = self.byte(4);
        let c56 = self.byte(5) | self.byte(6) << 8;
        let order4 = c1 | c2 << 8 | c3 << 16 | c4 << 24;
        let predicted = (2 * c1 as i32 - c2 as i32).clamp(0, 255) as u32;
        let raw: [u32; N_CTX] = [
            0,
            c1,
            order4 & 0xFFFF,
            order4 & 0xFF_FFFF,
            order4,
            hash(order4, c56),
            c1 | self.byte(64) << 8,
            predicted | (c1 >> 2) << 8,
        ];
        for (i, &r) in raw.iter().enumerate() {
            self.ctx_hash[i] = hash(r, i as u32);
        }
    }

    /// Find (or claim) each context's bucket for the current nibble.
    fn select_buckets(&mut self) {
        let nibble_ctx = if self.bit_pos == 4 { self.c0 } else { 0 };
        let stamp = self.stamp << 16;
        for i in 0..N_CTX {
            let h = hash(self.ctx_hash[i], nibble_ctx);
            let idx = (h >> (32 - TABLE_BITS)) as usize;
            let tag = stamp | (h & 0xFFFF);
            let bucket = &mut self.table[idx];
            if bucket[0] != tag {
                *bucket = [1 << 31; 16];
                bucket[0] = tag;
            }
            self.bucket[i] = idx;
        }
    }
}

impl Matcher {
    /// The mixer input for the next bit: the stretched probability that it is 1.
    fn input(&mut self, hist: &[u8], c0: u32, bit_pos: u32) -> i32 {
        self.active = None;
        if self.len == 0 {
            return 0;
        }
        let predicted = u32::from(hist[self.ptr]) | 0x100;
        if predicted >> (8 - bit_pos) != c0 {
            self.len = 0;
            return 0;
        }
        let expected = (predicted >> (7 - bit_pos)) & 1;
        let i = self.len.min(15) * 2 + expected as usize;
        self.active = Some(i);
        stretch(self.counters[i] >> 20)
    }

    /// Follow or find a match after a byte was appended to `hist`.
    fn update(&mut self, hist: &[u8]) {
        let n = hist.len();
        if self.len > 0 {
            if hist[self.ptr] == hist[n - 1] {
                self.len += 1;
                self.ptr += 1;
            } else {
                self.len = 0;
            }
        }
        if n < MATCH_MIN {
            return;
        }
        let key = hist[n - MATCH_MIN..]
            .iter()
            .fold(0u32, |h, &b| h << 8 | u32::from(b));
        let slot = (hash(key, 0x5A5A) >> (32 - MATCH_TABLE_BITS)) as usize;
        if self.len == 0 {
            let candidate = usize::from(self.table[slot]);
            if candidate > 0 {
                let len = (0..32.min(candidate))
                    .take_while(|&l| hist[candidate - 1 - l] == hist[n - 1 - l])
                    .count();
                if len >= MATCH_MIN {
                    self.len = len;
                    self.ptr = candidate;
                }
            }
        }
        // Chunk positions fit 16 bits for chunks up to 64 KiB; longer chunks simply stop
        // registering new match candidates past that point.
        if let Ok(pos) = u16::try_from(n) {
            self.table[slot] = pos;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::symbolize;

    fn code_length_bits(model: &ContextMixing, state: &mut CmState, data: &[u8]) -> f64 {
        model.reset(state);
        let mut cdf = Cdf::uniform(16, 2).unwrap();
        let mut bits = 0.0;
        for s in symbolize(Symbols::Bits, data) {
            model.predict(state, &mut cdf);
            bits += cdf.cost_bits(s);
            model.observe(state, s);
        }
        bits
    }

    #[test]
    fn stretch_inverts_squash() {
        for x in -2047..=2047 {
            let y = stretch(squash(x) as u32);
            assert!((squash(y) - squash(x)).abs() <= 1, "x {x}");
        }
        assert!(squash(0) == 2048 || squash(0) == 2047);
    }

    #[test]
    fn learns_repetition() {
        let model = ContextMixing::new();
        let mut state = model.new_state();
        let data = b"the quick brown fox jumps over the lazy dog. ".repeat(20);
        let bits = code_length_bits(&model, &mut state, &data);
        assert!(bits < data.len() as f64 * 8.0 * 0.15, "{bits} bits");
    }

    #[test]
    fn state_reuse_does_not_leak_between_chunks() {
        let model = ContextMixing::new();
        let mut fresh = model.new_state();
        let mut reused = model.new_state();
        let a = b"abracadabra, abracadabra, alakazam".repeat(10);
        let b = b"alakazam abracadabra ".repeat(12);
        code_length_bits(&model, &mut reused, &a);
        let bits_reused = code_length_bits(&model, &mut reused, &b);
        let bits_fresh = code_length_bits(&model, &mut fresh, &b);
        assert_eq!(bits_reused.to_bits(), bits_fresh.to_bits());
    }
}
