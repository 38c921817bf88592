//! Logistic mixing and adaptive probability maps, in integer arithmetic.

use crate::adaptive::{squash, stretch};

/// Weight update: `Δw = x · err · rate >> 14` (x and err on the 12-bit scale), where the rate
/// falls from `RATE_FLOOR + RATE_START` to `RATE_FLOOR` as the mixer learns (halfway after
/// `RATE_HALF_LIFE` updates): fast at the start of a block, steady later.
const RATE_FLOOR: i64 = 4;
const RATE_START: i64 = 12;
const RATE_HALF_LIFE: i64 = 1 << 16;
/// The constant rate of a mixer reset by [`Mixer::reset_steady`] (numerics 3 and later): one
/// that starts from a good prediction learns slowly from the first bit, so that adaptive models
/// that know nothing yet cannot pull it away in a short block.
const STEADY_RATE: i64 = 3;
/// Weights are kept within ±`WEIGHT_LIMIT` (1.0 is 65536).
const WEIGHT_LIMIT: i32 = 1 << 22;

/// A logistic mixer: weight sets selected by a small context, learned online by gradient descent
/// on coding cost.
pub(super) struct Mixer {
    n: usize,
    weights: Vec<i32>,
    /// The weight set of the last mix, and its output probability (12 bits).
    set: usize,
    pr: i32,
    /// Updates since the reset.
    updates: i64,
    /// Learn at [`STEADY_RATE`] rather than fast at first.
    steady: bool,
}

impl Mixer {
    /// A mixer of `n` inputs with `sets` weight sets.
    pub(super) fn new(n: usize, sets: usize) -> Mixer {
        Mixer {
            n,
            weights: vec![0; n * sets],
            set: 0,
            pr: 2048,
            updates: 0,
            steady: false,
        }
    }

    /// Every weight to `weight` (65536 is 1.0), learning fast at first.
    pub(super) fn reset(&mut self, weight: i32) {
        self.weights.iter_mut().for_each(|w| *w = weight);
        self.pr = 2048;
        self.updates = 0;
        self.steady = false;
    }

    /// Every weight to `weight`, learning at [`STEADY_RATE`] throughout.
    pub(super) fn reset_steady(&mut self, weight: i32) {
        self.reset(weight);
        self.steady = true;
    }

    /// Input `input`'s weight to `weight` in every set.
    pub(super) fn set_input_weight(&mut self, input: usize, weight: i32) {
        for set in self.weights.chunks_exact_mut(self.n) {
            set[input] = weight;
        }
    }

    /// Mix `inputs` (stretched probabilities) with weight set `set`; returns the stretched
    /// output.
    pub(super) fn mix(&mut self, inputs: &[i32], set: usize) -> i32 {
        self.set = set * self.n;
        let w = &self.weights[self.set..self.set + self.n];
        let dot: i64 = w
            .iter()
            .zip(inputs)
            .map(|(&w, &x)| i64::from(w) * i64::from(x))
            .sum();
        let out = (dot >> 16).clamp(-2047, 2047) as i32;
        self.pr = squash(out);
        out
    }

    /// Learn the coded bit for the last mix.
    pub(super) fn learn(&mut self, inputs: &[i32], bit: u32) {
        let rate = if self.steady {
            STEADY_RATE
        } else {
            RATE_FLOOR + RATE_START * RATE_HALF_LIFE / (RATE_HALF_LIFE + self.updates)
        };
        self.updates += 1;
        let err = i64::from(((bit as i32) << 12) - self.pr) * rate;
        let w = &mut self.weights[self.set..self.set + self.n];
        for (w, &x) in w.iter_mut().zip(inputs) {
            let dw = (i64::from(x) * err) >> 14;
            *w = (i64::from(*w) + dw).clamp(-i64::from(WEIGHT_LIMIT), i64::from(WEIGHT_LIMIT))
                as i32;
        }
    }
}

/// An adaptive probability map (secondary estimation): refines a probability under a context by
/// interpolating between 33 learned points on the stretch scale.
pub(super) struct Apm {
    table: Vec<u16>,
    /// The point the last refinement leaned on most, updated by `learn`.
    index: usize,
}

/// An APM point moves `1/2^APM_RATE` of the way to each coded bit.
const APM_RATE: i32 = 7;

impl Apm {
    /// A map over `contexts` contexts.
    pub(super) fn new(contexts: usize) -> Apm {
        let mut apm = Apm {
            table: vec![0; contexts * 33],
            index: 0,
        };
        apm.reset();
        apm
    }

    /// Back to the identity map.
    pub(super) fn reset(&mut self) {
        let mut identity = [0u16; 33];
        for (j, t) in identity.iter_mut().enumerate() {
            *t = (squash(j as i32 * 128 - 2048) * 16) as u16;
        }
        for row in self.table.chunks_exact_mut(33) {
            row.copy_from_slice(&identity);
        }
    }

    /// The refined 12-bit probability of `pr` (12 bits) under `context`.
    pub(super) fn refine(&mut self, pr: i32, context: usize) -> i32 {
        let s = stretch(pr as u32) + 2048;
        let (lo, w) = ((s >> 7) as usize, s & 127);
        let i = context * 33 + lo;
        self.index = i + (w >> 6) as usize;
        (i32::from(self.table[i]) * (128 - w) + i32::from(self.table[i + 1]) * w) >> 11
    }

    /// Learn the coded bit.
    pub(super) fn learn(&mut self, bit: u32) {
        let target = ((bit as i32) << 16) + ((bit as i32) << APM_RATE) - 2 * bit as i32;
        let t = &mut self.table[self.index];
        *t = (i32::from(*t) + ((target - i32::from(*t)) >> APM_RATE)) as u16;
    }
}
