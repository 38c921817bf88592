//! Code one chunk: the buffer-level core under the streams.
//!
//! Every chunk is coded from a fresh model state, so chunks are independent: any subset can be
//! coded or decoded in any order, on any thread.

use crate::Error;
use lmzip_coder::{Cdf, Decoder, Encoder};
use lmzip_models::{Assembler, Budget, Model};

/// Code `data` with `model`, resetting `state` first; the model may take helper threads from
/// `threads` ([`Model::code_chunk`]; never a change of the result). Returns the coded bytes.
pub fn encode<M: Model>(model: &M, state: &mut M::State, data: &[u8], threads: &Budget) -> Vec<u8> {
    let mut enc = Encoder::new();
    model.code_chunk(state, data, threads, &mut |symbol, cdf| {
        enc.encode(symbol, cdf)
    });
    enc.finish()
}

/// The code length, in bits, of each byte of `data` under `model` from a fresh state: −log2 of
/// the probability the model's integer table gives the true symbol, summed over the byte's
/// symbols (a token's bits are spread evenly over its bytes). [`encode`] spends this, plus at
/// most a few bytes per chunk of coder overhead.
pub fn code_lengths<M: Model>(
    model: &M,
    state: &mut M::State,
    data: &[u8],
    threads: &Budget,
) -> Vec<f64> {
    let mut bits = vec![0.0; data.len()];
    let mut assembler = Assembler::new(model);
    let mut first = 0;
    model.code_chunk(state, data, threads, &mut |symbol, cdf| {
        let cost = cdf.cost_bits(symbol);
        assembler
            .push(symbol)
            .expect("BUG: the encoder's symbols are valid");
        // The symbol's bytes: those it completed, or the byte it is part of.
        let end = assembler.len().max(first + 1).min(data.len());
        let share = cost / (end - first) as f64;
        for b in &mut bits[first..end] {
            *b += share;
        }
        first = assembler.len();
    });
    bits
}

/// Decode `len` bytes coded by [`encode`] with the same model, resetting `state` first.
pub fn decode<M: Model>(
    model: &M,
    state: &mut M::State,
    coded: &[u8],
    len: usize,
) -> Result<Vec<u8>, Error> {
    let results = decode_batch(model, std::slice::from_mut(state), &[(coded, len)]);
    results
        .into_iter()
        .next()
        .expect("BUG: one result per chunk")
}

/// One chunk being decoded: its coder and the bytes so far.
struct Pending<'a> {
    decoder: Decoder<'a>,
    assembler: Assembler<'a>,
    len: usize,
    failed: Option<Error>,
}

impl Pending<'_> {
    fn active(&self) -> bool {
        self.failed.is_none() && self.assembler.len() < self.len
    }

    /// Take one decoded symbol; a token running past the chunk's length is corruption.
    fn take(&mut self, symbol: Result<u32, lmzip_coder::Error>) -> Option<u32> {
        let symbol = match symbol {
            Ok(s) => s,
            Err(e) => {
                self.failed = Some(undecodable(e));
                return None;
            }
        };
        self.push(symbol).then_some(symbol)
    }

    /// Add a symbol's bytes; false (and failed) if it is invalid or runs past the length.
    fn push(&mut self, symbol: u32) -> bool {
        if self.assembler.push(symbol).is_err() || self.assembler.len() > self.len {
            self.failed = Some(Error::Corrupt(
                "the coded data does not decode to the chunk's length".into(),
            ));
            return false;
        }
        true
    }

    /// When the coder says every remaining symbol is symbol 0 (an all-zero run at the end of a
    /// chunk), take them without the model, so the model runs at most as many steps as the
    /// coded bytes can pay for ([`lmzip_coder::PAST_END`]). Returns whether it did.
    fn fill_zeros(&mut self) -> bool {
        if !self.decoder.rest_is_zero() {
            return false;
        }
        while self.active() && self.push(0) {}
        true
    }
}

/// Decode many chunks in lockstep, one coding step for all of them at a time, through
/// [`Model::predict_batch`]. Result `i` equals [`decode`] of chunk `i`; a chunk that fails to
/// decode drops out of the batch without disturbing the others.
///
/// Each step adds a bit, a byte or a token of at least one byte to every active chunk, so
/// decoding ends after at most `8 × len` steps whatever the coded bytes are; and the model runs
/// at most as many steps as the coded bytes can pay for (`docs/FORMAT.md`, "Work"), the rest
/// of a chunk being symbol 0 once the coder's state is zero past the end.
pub fn decode_batch<M: Model>(
    model: &M,
    states: &mut [M::State],
    chunks: &[(&[u8], usize)],
) -> Vec<Result<Vec<u8>, Error>> {
    assert!(states.len() >= chunks.len(), "BUG: one state per chunk");
    let states = &mut states[..chunks.len()];
    for state in states.iter_mut() {
        model.reset(state);
    }
    let context = model.max_chunk_len().unwrap_or(usize::MAX);
    let mut pending: Vec<Pending> = chunks
        .iter()
        .map(|&(coded, len)| Pending {
            decoder: Decoder::new(coded),
            assembler: Assembler::new(model),
            len,
            failed: (len > context).then(|| {
                Error::Unsupported(format!(
                    "a chunk of {len} bytes is longer than the model's context of {context}"
                ))
            }),
        })
        .collect();
    let mut cdfs = vec![initial_cdf(model); chunks.len()];
    let mut active: Vec<usize> = Vec::with_capacity(chunks.len());
    loop {
        // Chunks are ordered arbitrarily: gather those that still have symbols for the model.
        active.clear();
        active
            .extend((0..chunks.len()).filter(|&i| pending[i].active() && !pending[i].fill_zeros()));
        if active.is_empty() {
            break;
        }
        if active.len() == chunks.len() {
            model.predict_batch(states, &mut cdfs);
        } else {
            for &i in &active {
                model.predict(&mut states[i], &mut cdfs[i]);
            }
        }
        for &i in &active {
            let p = &mut pending[i];
            let decoded = p.decoder.decode(&cdfs[i]);
            if let Some(s) = p.take(decoded) {
                model.observe(&mut states[i], s);
            }
        }
    }
    pending
        .into_iter()
        .map(|p| {
            if let Some(e) = p.failed {
                return Err(e);
            }
            p.decoder.finish().map_err(undecodable)?;
            Ok(p.assembler.into_bytes())
        })
        .collect()
}

/// The coder found the chunk's bytes impossible under the model.
fn undecodable(_: lmzip_coder::Error) -> Error {
    Error::Corrupt("the coded data does not decode under this model".into())
}

fn initial_cdf<M: Model>(model: &M) -> Cdf {
    Cdf::uniform(model.precision(), model.symbols().alphabet_size())
        .expect("BUG: a model's precision fits its alphabet")
}
