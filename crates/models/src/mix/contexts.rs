//! The adaptive models of [`super::Mixed`]: hashed contexts of the bytes before, each with an
//! adaptive probability per node of the byte's binary tree, and a match model.
//!
//! The contexts (full set): orders 0–6, 8 and 16; the current word, and it with the word before;
//! the column in the line with the byte above it; sparse contexts (bytes 2–3, bytes 4 and 8);
//! the byte a match predicts with the match length; the byte 64 back (the pixel above in a
//! 64-wide image patch) with the last byte; and the linear prediction `2·c1 − c2` (smooth
//! signals such as audio). The basic set: orders 1–4 and 6.
//!
//! The tables are hashed: each context's hash, with the high nibble of the byte at bit 4, picks a
//! 64-byte bucket (a tag and the 15 nodes of a nibble's tree) out of two candidates; a bucket of
//! another context is replaced, the one with the fewer observations first.
//!
//! Each node holds a direct adaptive probability and a short bit history (how many bits it has
//! seen, up to 7, and the last up to 5 of them). Each context gives the mixer two inputs: the
//! direct probability, and the probability its own adaptive map learns for the bit history (an
//! indirect model, as in paq and zpaq: it learns what *follows* a history such as "1, 1, then
//! 0", which adapts at once to changes that a direct probability averages away).

use crate::adaptive::{RATE, hash, stretch, update_counter};

/// Buckets of the match length (0: no match) for mixer selection.
pub(super) const MATCH_BUCKETS: usize = 4;
/// The match model looks up the last this many bytes.
const MATCH_MIN: usize = 6;
/// Longest match length checked when a candidate is found (it grows by one per byte after).
const MATCH_CHECK: usize = 64;
/// Upper bound of a node's observation count: its rate stops falling there.
const COUNT_LIMIT: u32 = 60;
/// A node that has seen nothing: probability 1/2, no observations, no history.
const FRESH: u32 = 1 << 31;
/// Bit histories: `min(n, 7) << 5 | last min(n, 5) bits`.
const HISTORIES: usize = 256;

/// Every adaptive model and the history they read.
pub(super) struct Contexts {
    full: bool,
    hist: Vec<u8>,
    /// One hash per context, computed at each byte boundary.
    hashes: Vec<u32>,
    /// The bucket (table index) of each context for the current nibble.
    buckets: Vec<usize>,
    table: Vec<[u32; 16]>,
    table_mask: usize,
    /// Per context, the probability of a 1 after each bit history (22 bits and a count).
    history_maps: Vec<[u32; HISTORIES]>,
    /// Node of the current nibble's tree (1..=15).
    node: usize,
    /// Whether the buckets are the low nibble's.
    low_nibble: bool,
    /// Whether a bit was learned since the tables were last cleared. Until then they hold
    /// only the buckets `reset` claims, fresh, which a new block would claim again: clearing
    /// is skipped, so a new state's (lazily zeroed) memory is not touched for nothing.
    dirty: bool,
    /// The current word's hash and the previous word's (letters only, case-folded).
    word: u32,
    prev_word: u32,
    /// Starts of the current and the previous line.
    line_start: usize,
    prev_line_start: usize,
    matcher: Matcher,
}

/// Predicts the next bit from the last earlier occurrence of the last [`MATCH_MIN`] bytes.
struct Matcher {
    table: Vec<u32>,
    bits: u32,
    /// Index in the history of the predicted next byte (valid when `len > 0`).
    ptr: usize,
    len: usize,
    /// Counters by `min(len, 31) · 2 + expected bit`.
    counters: [u32; 64],
    /// The counter used for the current bit, if a match is active.
    active: Option<usize>,
}

impl Contexts {
    /// Contexts for the full or the basic set, with `2^table_bits` buckets and `2^match_bits`
    /// match-table entries.
    pub(super) fn new(full: bool, table_bits: u32, match_bits: u32) -> Contexts {
        let n = if full { 20 } else { 5 };
        Contexts {
            full,
            hist: Vec::new(),
            hashes: vec![0; n],
            buckets: vec![0; n],
            table: vec![[0; 16]; 1 << table_bits],
            table_mask: (1 << table_bits) - 1,
            history_maps: vec![[0; HISTORIES]; n],
            node: 1,
            low_nibble: false,
            dirty: false,
            word: 0,
            prev_word: 0,
            line_start: 0,
            prev_line_start: 0,
            matcher: Matcher {
                table: vec![0; 1 << match_bits],
                bits: match_bits,
                ptr: 0,
                len: 0,
                counters: [0; 64],
                active: None,
            },
        }
    }

    /// Number of inputs [`Contexts::inputs`] gives: two per context, then the match model's two.
    pub(super) fn inputs_len(&self) -> usize {
        2 * self.hashes.len() + 2
    }

    /// Forget everything: a new block.
    pub(super) fn reset(&mut self) {
        self.hist.clear();
        if self.dirty {
            self.table.iter_mut().for_each(|b| *b = [0; 16]);
            self.matcher.table.iter_mut().for_each(|p| *p = 0);
            self.dirty = false;
        }
        (self.word, self.prev_word) = (0, 0);
        (self.line_start, self.prev_line_start) = (0, 0);
        for map in &mut self.history_maps {
            for (h, p) in map.iter_mut().enumerate() {
                *p = history_prior(h as u32) << 10;
            }
        }
        let m = &mut self.matcher;
        (m.ptr, m.len, m.active) = (0, 0, None);
        for (i, c) in m.counters.iter_mut().enumerate() {
            let (len, expected) = ((i >> 1) as u64, (i & 1) as u32);
            // Prior: a match of length l predicts its bit with probability (l+1)/(l+2).
            let p1 = ((1u64 << 22) * (len + 1) / (len + 2)) as u32;
            let p = if expected == 1 { p1 } else { (1 << 22) - p1 };
            *c = p << 10;
        }
        self.hash_contexts();
        self.select_buckets(0);
    }

    /// Bytes of the block so far.
    pub(super) fn position(&self) -> usize {
        self.hist.len()
    }

    /// The byte `back` positions before the next one (0 before the block start).
    pub(super) fn byte(&self, back: usize) -> u32 {
        let n = self.hist.len();
        if back <= n {
            u32::from(self.hist[n - back])
        } else {
            0
        }
    }

    /// 0 without a match, else 1–3 by match length.
    pub(super) fn match_bucket(&self) -> usize {
        match self.matcher.len {
            0 => 0,
            1..16 => 1,
            16..32 => 2,
            _ => 3,
        }
    }

    /// The stretched probabilities of a 1 for the next bit: one per context, then the match
    /// model's two (its counter, and a vote that grows with the match length).
    pub(super) fn inputs(&mut self, c0: u32, bit_pos: u32, out: &mut [i32]) {
        let n = 2 * self.hashes.len();
        for ((o, &b), map) in out[..n]
            .chunks_exact_mut(2)
            .zip(&self.buckets)
            .zip(&self.history_maps)
        {
            let node = self.table[b][self.node];
            o[0] = stretch(node >> 20);
            o[1] = stretch(map[(node & 0xFF) as usize] >> 20);
        }
        let (a, b) = self.matcher.inputs(&self.hist, c0, bit_pos);
        out[n] = a;
        out[n + 1] = b;
    }

    /// Learn the coded bit.
    pub(super) fn learn(&mut self, bit: u32) {
        self.dirty = true;
        for (&b, map) in self.buckets.iter().zip(&mut self.history_maps) {
            let node = &mut self.table[b][self.node];
            update_counter(&mut map[(*node & 0xFF) as usize], bit, 255);
            *node = update_node(*node, bit);
        }
        if let Some(i) = self.matcher.active {
            update_counter(&mut self.matcher.counters[i], bit, 1023);
        }
        self.node = (self.node << 1) | bit as usize;
        if self.node >= 16 && !self.low_nibble {
            // The high nibble is done: buckets for the low nibble, under it.
            let high = (self.node - 16) as u32;
            self.select_buckets(0x10 | high);
        }
    }

    /// Append a coded byte: update the history, the match model and the context hashes.
    pub(super) fn push_byte(&mut self, byte: u8) {
        self.hist.push(byte);
        let n = self.hist.len();
        if byte.is_ascii_alphabetic() {
            self.word = hash(self.word, u32::from(byte.to_ascii_lowercase()));
        } else if self.word != 0 {
            self.prev_word = self.word;
            self.word = 0;
        }
        if byte == b'\n' {
            self.prev_line_start = self.line_start;
            self.line_start = n;
        }
        self.matcher.update(&self.hist);
        self.hash_contexts();
        self.select_buckets(0);
    }

    /// Hash every context of the bytes before the next one.
    fn hash_contexts(&mut self) {
        let c = |i| self.byte(i);
        let order4 = c(1) | c(2) << 8 | c(3) << 16 | c(4) << 24;
        let next4 = c(5) | c(6) << 8 | c(7) << 16 | c(8) << 24;
        if !self.full {
            let raw = [
                c(1),
                order4 & 0xFFFF,
                order4 & 0xFF_FFFF,
                order4,
                hash(order4, next4 & 0xFFFF),
            ];
            self.set_hashes(&raw);
            return;
        }
        let order8 = hash(order4, next4);
        let far = (9..=16).fold(0u32, |h, i| hash(h, c(i)));
        let col = self.hist.len() - self.line_start;
        let above = if self.prev_line_start + col < self.line_start {
            u32::from(self.hist[self.prev_line_start + col])
        } else {
            0x100
        };
        let word = if self.word == 0 { c(1) } else { self.word };
        let expected = self.matcher.expected_byte(&self.hist);
        let raw = [
            0,
            c(1),
            order4 & 0xFFFF,
            order4 & 0xFF_FFFF,
            order4,
            hash(order4, next4 & 0xFF),
            hash(order4, next4 & 0xFFFF),
            order8,
            hash(order8, far),
            word,
            hash(word, self.prev_word),
            hash(col.min(255) as u32, above),
            c(2) | c(3) << 8,
            c(4) | c(8) << 8,
            expected.map_or(0x1_0000, |b| {
                u32::from(b) | (self.matcher.len.min(15) as u32) << 8
            }),
            c(1) | c(64) << 8,
            (2 * c(1) as i32 - c(2) as i32).clamp(0, 255) as u32 | (c(1) >> 2) << 8,
            c(2),
            c(3) | 0x100,
            (order4 >> 4) & 0x0F0F_0F0F,
        ];
        self.set_hashes(&raw);
    }

    /// Context `i`'s hash from its raw value, salted by `i` (equal raw values of different
    /// contexts do not share buckets).
    fn set_hashes(&mut self, raw: &[u32]) {
        for (i, (h, &r)) in self.hashes.iter_mut().zip(raw).enumerate() {
            *h = hash(r, i as u32 + 1);
        }
    }

    /// Find (or claim) each context's bucket for the nibble under `nibble` (0 for the high
    /// nibble, `0x10 | high` for the low one).
    fn select_buckets(&mut self, nibble: u32) {
        self.node = 1;
        self.low_nibble = nibble != 0;
        for (i, &h) in self.hashes.iter().enumerate() {
            let h = hash(h, nibble);
            let tag = h | 1;
            let first = (h as usize >> 7) & self.table_mask;
            let second = first ^ 1;
            self.buckets[i] = if self.table[first][0] == tag {
                first
            } else if self.table[second][0] == tag {
                second
            } else {
                // Replace the bucket whose root has seen less.
                let seen = |b: usize| (self.table[b][1] >> 8) & 0xFF;
                let victim = if seen(second) < seen(first) {
                    second
                } else {
                    first
                };
                let bucket = &mut self.table[victim];
                *bucket = [FRESH; 16];
                bucket[0] = tag;
                victim
            };
        }
    }
}

/// A node after `bit`: its probability (16 bits, rate `2 / (2n + 3)` after `n` bits, `n`
/// capped at [`COUNT_LIMIT`]), its count, and its bit history.
#[inline]
fn update_node(node: u32, bit: u32) -> u32 {
    let p = i64::from(node >> 16);
    let n = (node >> 8) & 0xFF;
    let p = p + (((((i64::from(bit) << 16) - i64::from(bit)) - p) * RATE[n as usize]) >> 16);
    let n = (n + 1).min(COUNT_LIMIT);
    let seen = ((node & 0xFF) >> 5) + 1;
    let bits = ((node << 1) | bit) & ((1 << seen.min(5)) - 1);
    let history = seen.min(7) << 5 | bits;
    (p as u32) << 16 | n << 8 | history
}

/// The starting probability (22 bits) after bit history `h`: Laplace's rule on its bits.
fn history_prior(h: u32) -> u32 {
    let seen = h >> 5;
    let kept = seen.min(5);
    let ones = (h & ((1 << kept) - 1)).count_ones();
    let zeros = kept - ones;
    ((u64::from(ones) * 2 + 1) * (1 << 22) / (u64::from(ones + zeros) * 2 + 2)) as u32
}

impl Matcher {
    /// The byte the current match predicts next, if any.
    fn expected_byte(&self, hist: &[u8]) -> Option<u8> {
        (self.len > 0).then(|| hist[self.ptr])
    }

    /// The mixer inputs for the next bit.
    fn inputs(&mut self, hist: &[u8], c0: u32, bit_pos: u32) -> (i32, i32) {
        self.active = None;
        if self.len == 0 {
            return (0, 0);
        }
        let predicted = u32::from(hist[self.ptr]) | 0x100;
        if predicted >> (8 - bit_pos) != c0 {
            self.len = 0;
            return (0, 0);
        }
        let expected = (predicted >> (7 - bit_pos)) & 1;
        let i = self.len.min(31) * 2 + expected as usize;
        self.active = Some(i);
        let vote = (self.len.min(32) as i32) * 32;
        let vote = if expected == 1 { vote } else { -vote };
        (stretch(self.counters[i] >> 20), vote)
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
            .fold(0u32, |h, &b| hash(h, u32::from(b)));
        let slot = (key >> (32 - self.bits)) as usize;
        if self.len == 0 {
            let candidate = self.table[slot] as usize;
            if candidate > 0 {
                let len = (0..MATCH_CHECK.min(candidate))
                    .take_while(|&l| hist[candidate - 1 - l] == hist[n - 1 - l])
                    .count();
                if len >= MATCH_MIN {
                    self.len = len;
                    self.ptr = candidate;
                }
            }
        }
        self.table[slot] = n as u32;
    }
}
