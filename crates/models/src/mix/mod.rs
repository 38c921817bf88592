//! Solid mode's model: a whole block coded bit by bit, a byte model's predictions mixed with
//! adaptive models that learn along the block.
//!
//! [`Mixed`] wraps another model. Each byte of a block is coded as 8 binary decisions, most
//! significant bit first. For every decision a set of inputs, each a stretched probability
//! (`ln(p/(1−p))`), goes to logistic mixers whose weights learn online:
//!
//! - **the byte model** (a byte Transformer), when there is one: its table for the next byte is
//!   turned into the probability of each bit by exact integer sums over the table (the bytes
//!   that share the bits so far). The Transformer restarts every `context` bytes of the block,
//!   as in the paper's chunks;
//! - **hashed context models** of the bytes before: orders 0–6, 8 and 16, words, columns of
//!   lines, sparse contexts, image rows and audio slopes, and the byte a long match predicts
//!   (`contexts.rs`);
//! - **a match model**: the last occurrence of the last 6 bytes anywhere in the block predicts
//!   the next bit, with the match length as confidence.
//!
//! Three mixers, selected by (match length, bit position), by the bits of the byte so far, and
//! by the byte model's confidence (or the previous byte), feed a final mixer; two adaptive
//! probability maps (APM/SSE) refine the result. From numerics 3 the mixers start by trusting
//! the byte model alone (2/3 on its input in each first-layer mixer, 0 elsewhere) and learn at
//! a steady rate, so that a short block (down to the paper's 2048 bytes) codes about as well
//! as the byte model from its first byte.
//! Everything after the byte model's integer table is integer arithmetic, so archives are
//! identical on every machine.
//!
//! The level ([`Level`]) chooses which adaptive models run and how much memory their tables
//! take. The tables are sized from the block size too, which the archive records, so encoder
//! and decoder always agree.
//!
//! # References
//! - M. Mahoney, lpaq1 (2007) and paq8 (2002–): context mixing, match model, APM.
//! - Delétang et al., *Language Modeling Is Compression*, ICLR 2024: the byte model.

mod contexts;
mod mixer;

use crate::adaptive::{squash, stretch};
use crate::{Budget, Model, ModelId, Symbols, Tokenizer};
use contexts::Contexts;
use lmzip_coder::Cdf;
use lmzip_engine::team;
use mixer::{Apm, Mixer};
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};

/// The highest level.
pub const MAX_LEVEL: u8 = 9;

/// What a level runs: the adaptive models and the memory they may take.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Level {
    /// 1 to [`MAX_LEVEL`].
    pub number: u8,
    /// Use the full set of contexts (else orders 1–4, 6 and the match model only).
    full: bool,
    /// Upper bound of log2 of the context table's buckets (64 bytes each).
    max_table_bits: u32,
}

impl Level {
    /// The level `number` (1 to [`MAX_LEVEL`]).
    pub fn new(number: u8) -> Option<Level> {
        let (full, max_table_bits) = match number {
            1 => (false, 18),
            2..=8 => (true, 20),
            MAX_LEVEL => (true, 22),
            _ => return None,
        };
        Some(Level {
            number,
            full,
            max_table_bits,
        })
    }
}

/// A model mixed with adaptive models, for blocks of a given size. See the module documentation.
#[derive(Debug, Clone)]
pub struct Mixed<M> {
    inner: M,
    /// Whether `inner` is a byte model whose predictions are mixed in (else the adaptive models
    /// run alone and `inner` only names the archive's model, the weightless baseline).
    neural: bool,
    level: Level,
    table_bits: u32,
    match_bits: u32,
}

impl<M: Model> Mixed<M> {
    /// `inner` mixed at `level` for blocks of `block_size` bytes. `inner` must be a byte model,
    /// or the weightless baseline (which stands for "adaptive models alone").
    pub fn new(inner: M, level: Level, block_size: u32) -> Result<Mixed<M>, String> {
        let neural = match inner.symbols() {
            Symbols::Bytes => true,
            Symbols::Bits if inner.id().name == crate::cm::NAME => false,
            _ => {
                return Err(format!(
                    "solid mode mixes byte models only; '{}' codes tokens or bits \
                     (code it in independent chunks)",
                    inner.id().name
                ));
            }
        };
        let block_bits = u32::BITS - block_size.max(1).saturating_sub(1).leading_zeros();
        Ok(Mixed {
            inner,
            neural,
            level,
            table_bits: (block_bits + 2).clamp(12, level.max_table_bits),
            match_bits: block_bits.clamp(10, 24),
        })
    }

    /// Whether the mixers start by trusting the byte model ([`TRUSTED_WEIGHT`]): with a byte
    /// model computing numerics 3 or later.
    fn trusts_byte_model(&self) -> bool {
        self.neural
            && self
                .inner
                .numerics()
                .is_some_and(|version| version >= TRUSTING_NUMERICS)
    }

    /// The wrapped model.
    pub fn inner(&self) -> &M {
        &self.inner
    }
}

/// The per-block state of [`Mixed`].
pub struct MixedState<S> {
    /// The byte model's state (made when the decoder's path first needs it), its table for the
    /// current byte, and that table's cumulative sums (the decoder's path: one byte at a time).
    inner: Option<S>,
    table: Cdf,
    cum: Vec<u32>,
    /// The encoder's path: the byte model's input for every bit of the window being mixed,
    /// scored ahead, and the window's first position in the block.
    path: Option<Vec<[i16; 8]>>,
    path_start: usize,
    /// Bits of the current byte so far, with a leading 1.
    c0: u32,
    bit_pos: u32,
    contexts: Contexts,
    mixers: [Mixer; 3],
    final_mixer: Mixer,
    apm_order0: Apm,
    apm_order2: Apm,
    /// Stretched inputs for the current bit.
    inputs: Vec<i32>,
    /// Outputs of the first mixers (stretch domain).
    layer: [i32; 3],
    /// The final mixer's probability of a 1 and the probability coded, 12 bits.
    mixed: i32,
    pr: i32,
}

/// How many windows the encoder's byte-model helpers may score ahead of the mixing.
const LOOKAHEAD: usize = 8;

/// Mixer inputs besides the adaptive models': the byte model (2), a bias.
const EXTRA_INPUTS: usize = 3;

/// From numerics 3, each first-layer mixer starts with this weight on the byte model's input
/// (2/3 of 1.0) and 0 on every other: the final mixer's three weights of 1/2 then give the byte
/// model's own prediction, so a block starts at the byte model's rate instead of an average of
/// adaptive models that know nothing yet, and every mixer learns at a steady rate from there.
/// (Under numerics 1 and 2 every weight started at 0.24 and learned fast at first, which cost
/// about 4 points in a 2048-byte block.)
const TRUSTED_WEIGHT: i32 = 43_691;

/// The first numerics version whose mixers start from [`TRUSTED_WEIGHT`].
const TRUSTING_NUMERICS: u16 = 3;

impl<M: Model> Model for Mixed<M> {
    type State = MixedState<M::State>;

    fn id(&self) -> ModelId {
        ModelId {
            mixer: Some(self.level.number),
            ..self.inner.id()
        }
    }

    fn symbols(&self) -> Symbols {
        Symbols::Bits
    }

    fn tokenizer(&self) -> Option<&Tokenizer> {
        None
    }

    fn precision(&self) -> u32 {
        16
    }

    /// The context table and the match table, about, and the byte model's state.
    fn state_bytes(&self) -> usize {
        (64 << self.table_bits) + (4 << self.match_bits) + self.inner.state_bytes()
    }

    fn numerics(&self) -> Option<u16> {
        self.inner.numerics()
    }

    fn new_state(&self) -> Self::State {
        let contexts = Contexts::new(self.level.full, self.table_bits, self.match_bits);
        let n = contexts.inputs_len() + EXTRA_INPUTS;
        let mut state = MixedState {
            inner: None,
            table: byte_table(&self.inner),
            cum: vec![0; 257],
            path: None,
            path_start: 0,
            c0: 1,
            bit_pos: 0,
            contexts,
            mixers: [
                Mixer::new(n, contexts::MATCH_BUCKETS * 8),
                Mixer::new(n, 256),
                Mixer::new(n, 256 * 8),
            ],
            final_mixer: Mixer::new(3, 8),
            apm_order0: Apm::new(256),
            apm_order2: Apm::new(1 << 16),
            inputs: vec![0; n],
            layer: [0; 3],
            mixed: 2048,
            pr: 2048,
        };
        self.reset(&mut state);
        state
    }

    fn reset(&self, s: &mut Self::State) {
        s.path = None;
        s.c0 = 1;
        s.bit_pos = 0;
        s.contexts.reset();
        if self.trusts_byte_model() {
            let byte_model = s.contexts.inputs_len(); // its input's index, as `predict` fills them
            for m in &mut s.mixers {
                m.reset_steady(0);
                m.set_input_weight(byte_model, TRUSTED_WEIGHT);
            }
            s.final_mixer.reset_steady(32_768);
        } else {
            for m in &mut s.mixers {
                m.reset(16_000);
            }
            s.final_mixer.reset(32_768);
        }
        s.apm_order0.reset();
        s.apm_order2.reset();
    }

    /// The encoder's path: the block's bytes are seen once, each bit mixed and visited as it
    /// comes; the byte model's windows are scored ahead on the other threads
    /// (`Mixed::mix_block`).
    fn code_chunk(
        &self,
        s: &mut Self::State,
        data: &[u8],
        threads: &Budget,
        visit: &mut dyn FnMut(u32, &Cdf),
    ) {
        self.reset(s);
        let mut cdf = Cdf::uniform(16, 2).expect("BUG: a binary table");
        if self.neural {
            self.mix_block(s, data, threads, &mut cdf, visit);
        } else {
            for &byte in data {
                self.code_byte(s, byte, &mut cdf, visit);
            }
        }
    }

    fn predict(&self, s: &mut Self::State, cdf: &mut Cdf) {
        self.mix_bit(s);
        set_table(cdf, s.pr);
    }

    fn observe(&self, s: &mut Self::State, symbol: u32) {
        self.learn_bit(s, symbol & 1);
    }
}

/// The coding table of a bit whose probability of a 1 is `pr` / 4096.
fn set_table(cdf: &mut Cdf, pr: i32) {
    cdf.set_binary(16, (1 << 16) - ((pr as u32) << 4));
}

impl<M: Model> Mixed<M> {
    /// The mixed probability of the next bit, into `s.pr` (with the inputs and the first
    /// layer's outputs that [`Mixed::learn_bit`] needs).
    fn mix_bit(&self, s: &mut MixedState<M::State>) {
        if s.bit_pos == 0 {
            self.byte_model_table(s);
        }
        // The adaptive models' inputs, then the byte model's two and the bias.
        let byte_model = s.contexts.inputs_len();
        s.contexts
            .inputs(s.c0, s.bit_pos, &mut s.inputs[..byte_model]);
        let neural_input = match (&s.path, self.neural) {
            (Some(path), _) => {
                i32::from(path[s.contexts.position() - s.path_start][s.bit_pos as usize])
            }
            (None, true) => bit_input(&s.cum, s.c0, s.bit_pos),
            (None, false) => 0,
        };
        let confidence = (neural_input.unsigned_abs() as usize / 256).min(7);
        s.inputs[byte_model] = neural_input;
        s.inputs[byte_model + 1] = neural_input / 4;
        s.inputs[byte_model + 2] = 256;

        let bit_pos = s.bit_pos as usize;
        let sets = [
            s.contexts.match_bucket() * 8 + bit_pos,
            s.c0 as usize,
            match self.neural {
                true => confidence * 8 + bit_pos,
                false => s.contexts.byte(1) as usize * 8 + bit_pos,
            },
        ];
        for (i, m) in s.mixers.iter_mut().enumerate() {
            s.layer[i] = m.mix(&s.inputs, sets[i]);
        }
        s.mixed = squash(s.final_mixer.mix(&s.layer, bit_pos));
        let order2 = (s.contexts.byte(1) | s.contexts.byte(2) << 8) as usize;
        let a0 = s.apm_order0.refine(s.mixed, s.c0 as usize);
        let a2 = s
            .apm_order2
            .refine(s.mixed, (order2 * 256 + s.c0 as usize) & 0xFFFF);
        s.pr = ((2 * s.mixed + a0 + 5 * a2 + 4) >> 3).clamp(1, 4095);
    }

    /// Learn the coded `bit`, and move to the next.
    fn learn_bit(&self, s: &mut MixedState<M::State>, bit: u32) {
        for m in &mut s.mixers {
            m.learn(&s.inputs, bit);
        }
        s.final_mixer.learn(&s.layer, bit);
        s.apm_order0.learn(bit);
        s.apm_order2.learn(bit);
        s.contexts.learn(bit);
        s.c0 = (s.c0 << 1) | bit;
        s.bit_pos += 1;
        if s.bit_pos == 8 {
            let byte = s.c0 as u8;
            if let (Some(inner), None) = (&mut s.inner, &s.path) {
                self.inner.observe(inner, u32::from(byte));
            }
            s.contexts.push_byte(byte);
            s.c0 = 1;
            s.bit_pos = 0;
        }
    }

    /// Mix and visit the 8 bits of `byte`, the encoder's step.
    fn code_byte(
        &self,
        s: &mut MixedState<M::State>,
        byte: u8,
        cdf: &mut Cdf,
        visit: &mut dyn FnMut(u32, &Cdf),
    ) {
        for k in (0..8).rev() {
            let bit = u32::from(byte >> k & 1);
            self.mix_bit(s);
            set_table(cdf, s.pr);
            visit(bit, cdf);
            self.learn_bit(s, bit);
        }
    }

    /// The encoder's whole block, mixed and visited bit by bit. The byte model's windows are
    /// scored by helper threads taken from `threads` (each window from a fresh state, so the
    /// split never changes a value; helpers are taken at the start and whenever one is free
    /// at a window's start) while this thread mixes each window as soon as it is ready, and
    /// scores the next unclaimed one itself when it would otherwise wait. Helpers score at
    /// most [`LOOKAHEAD`] windows ahead of the mixing, and a window's inputs are dropped once
    /// mixed, so the block costs a few windows of memory beyond its bytes.
    fn mix_block(
        &self,
        s: &mut MixedState<M::State>,
        block: &[u8],
        threads: &Budget,
        cdf: &mut Cdf,
        visit: &mut dyn FnMut(u32, &Cdf),
    ) {
        let window_len = self.window();
        let windows: Vec<&[u8]> = block.chunks(window_len).collect();
        let scored: Vec<Mutex<Option<Vec<[i16; 8]>>>> =
            windows.iter().map(|_| Mutex::new(None)).collect();
        let next = AtomicUsize::new(0);
        let mixing = AtomicUsize::new(0);
        // Claim the next unclaimed window and score it; false when every window is claimed.
        // A helper (`wait`) first lets the mixing come within `LOOKAHEAD` windows of it.
        let claim = |scorer: &mut WindowScorer<M>, wait: bool| {
            let w = next.fetch_add(1, Ordering::Relaxed);
            let Some(window) = windows.get(w) else {
                return false;
            };
            while wait && w >= mixing.load(Ordering::Acquire) + LOOKAHEAD {
                std::thread::sleep(std::time::Duration::from_micros(100));
            }
            let inputs = scorer.score(&self.inner, window);
            *scored[w].lock().expect("BUG: a scorer panicked") = Some(inputs);
            true
        };
        std::thread::scope(|scope| {
            // Start a helper for every spare thread while windows are left to claim.
            let hire = || {
                while next.load(Ordering::Relaxed) + 1 < windows.len() {
                    let Some(permit) = threads.try_take() else {
                        break;
                    };
                    let claim = &claim;
                    scope.spawn(move || {
                        let _permit = permit;
                        let mut scorer = WindowScorer::new(&self.inner);
                        while claim(&mut scorer, true) {}
                    });
                }
            };
            let mut scorer = WindowScorer::new(&self.inner);
            for (w, window) in windows.iter().enumerate() {
                hire();
                let mut spins = 0;
                let inputs = loop {
                    let ready = scored[w].lock().expect("BUG: a scorer panicked").take();
                    if let Some(inputs) = ready {
                        break inputs;
                    }
                    if !claim(&mut scorer, false) {
                        // Another thread scores this window: wait for it.
                        team::back_off(&mut spins);
                    }
                };
                mixing.store(w, Ordering::Release);
                s.path = Some(inputs);
                s.path_start = w * window_len;
                for &byte in window.iter() {
                    self.code_byte(s, byte, cdf, visit);
                }
            }
        });
    }

    /// The decoder's path, at a byte boundary: the byte model's table for the next byte, and
    /// its cumulative sums. The byte model restarts every `context` bytes (its window).
    fn byte_model_table(&self, s: &mut MixedState<M::State>) {
        if !self.neural || s.path.is_some() {
            return;
        }
        let inner = s.inner.get_or_insert_with(|| self.inner.new_state());
        let pos = s.contexts.position();
        if pos.is_multiple_of(self.window()) {
            self.inner.reset(inner);
        }
        self.inner.predict(inner, &mut s.table);
        cumulate(&s.table, &mut s.cum);
    }

    /// The byte model's window: it restarts every this many bytes of a block.
    fn window(&self) -> usize {
        self.inner.max_chunk_len().unwrap_or(usize::MAX).max(1)
    }
}

/// One thread's byte model for scoring the encoder's windows (teacher forced).
struct WindowScorer<M: Model> {
    state: M::State,
    table: Cdf,
    cum: Vec<u32>,
}

impl<M: Model> WindowScorer<M> {
    fn new(model: &M) -> WindowScorer<M> {
        WindowScorer {
            state: model.new_state(),
            table: byte_table(model),
            cum: vec![0; 257],
        }
    }

    /// The byte model's input for every bit of `window`, from a fresh state.
    fn score(&mut self, model: &M, window: &[u8]) -> Vec<[i16; 8]> {
        model.reset(&mut self.state);
        let symbols: Vec<u32> = window.iter().map(|&b| u32::from(b)).collect();
        model.prepare(&mut self.state, &symbols);
        let mut out = Vec::with_capacity(window.len());
        for &byte in window {
            model.predict(&mut self.state, &mut self.table);
            cumulate(&self.table, &mut self.cum);
            let mut inputs = [0i16; 8];
            let mut c0 = 1;
            for (k, input) in inputs.iter_mut().enumerate() {
                *input = bit_input(&self.cum, c0, k as u32) as i16;
                c0 = (c0 << 1) | u32::from(byte >> (7 - k) & 1);
            }
            out.push(inputs);
            model.observe(&mut self.state, u32::from(byte));
        }
        out
    }
}

/// A table for a byte model's predictions.
fn byte_table<M: Model>(model: &M) -> Cdf {
    Cdf::uniform(model.precision(), 256).expect("BUG: a byte model's table")
}

/// `cum[b]`: the sum of the table's frequencies of the bytes below `b` (`cum[256]`: the total).
fn cumulate(table: &Cdf, cum: &mut [u32]) {
    cum[0] = 0;
    for b in 0..256u32 {
        cum[b as usize + 1] = cum[b as usize] + table.frequency(b);
    }
}

/// The byte model's stretched probability that bit `bit_pos` is 1, given the bits `c0` (with a
/// leading 1) before it: the exact integer sum of the table over the bytes that begin with those
/// bits and a 1, over the sum over all bytes that begin with those bits.
fn bit_input(cum: &[u32], c0: u32, bit_pos: u32) -> i32 {
    let prefix = (c0 - (1 << bit_pos)) as usize;
    let lo = prefix << (8 - bit_pos);
    let mid = lo + (1 << (7 - bit_pos));
    let hi = lo + (1 << (8 - bit_pos));
    let total = u64::from(cum[hi] - cum[lo]);
    let ones = u64::from(cum[hi] - cum[mid]);
    stretch(((ones * 4096 + total / 2) / total.max(1)).clamp(1, 4095) as u32)
}

impl<S> std::fmt::Debug for MixedState<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MixedState")
            .field("position", &self.contexts.position())
            .field("bit_pos", &self.bit_pos)
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests;
