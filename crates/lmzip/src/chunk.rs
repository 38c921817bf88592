//! Code one chunk: the buffer-level core under the streams.
//!
//! Every chunk is coded from a fresh model state, so chunks are independent: any subset can be
//! coded or decoded in any order, on any thread.

use crate::Error;
use lmzip_coder::{Cdf, Decoder, Encoder};
use lmzip_models::{Model, Symbols, symbolize};

/// Code `data` with `model`, resetting `state` first. Returns the coded bytes.
pub fn encode<M: Model>(model: &M, state: &mut M::State, data: &[u8]) -> Vec<u8> {
    model.reset(state);
    model.prepare(state, data);
    let mut cdf = initial_cdf(model);
    let mut enc = Encoder::new();
    for symbol in symbolize(model.symbols(), data) {
        model.predict(state, &mut cdf);
        enc.encode(symbol, &cdf);
        model.observe(state, symbol);
    }
    enc.finish()
}

/// The code length, in bits, of each byte of `data` under `model` from a fresh state: −log2 of
/// the probability the model's integer table gives the true symbol, summed over the byte's
/// symbols. [`encode`] spends this, plus at most a few bytes per chunk of coder overhead.
pub fn code_lengths<M: Model>(model: &M, state: &mut M::State, data: &[u8]) -> Vec<f64> {
    model.reset(state);
    model.prepare(state, data);
    let mut cdf = initial_cdf(model);
    let per = model.symbols().per_byte();
    let mut bits = vec![0.0; data.len()];
    for (i, symbol) in symbolize(model.symbols(), data).enumerate() {
        model.predict(state, &mut cdf);
        bits[i / per] += cdf.cost_bits(symbol);
        model.observe(state, symbol);
    }
    bits
}

/// Decode `len` bytes coded by [`encode`] with the same model, resetting `state` first.
pub fn decode<M: Model>(
    model: &M,
    state: &mut M::State,
    coded: &[u8],
    len: usize,
) -> Result<Vec<u8>, Error> {
    model.reset(state);
    let mut cdf = initial_cdf(model);
    let mut dec = Decoder::new(coded);
    let mut out = Vec::with_capacity(len);
    match model.symbols() {
        Symbols::Bytes => {
            for _ in 0..len {
                model.predict(state, &mut cdf);
                let s = dec.decode(&cdf).map_err(undecodable)?;
                model.observe(state, s);
                out.push(s as u8);
            }
        }
        Symbols::Bits => {
            for _ in 0..len {
                let mut byte = 0u32;
                for _ in 0..8 {
                    model.predict(state, &mut cdf);
                    let s = dec.decode(&cdf).map_err(undecodable)?;
                    model.observe(state, s);
                    byte = (byte << 1) | s;
                }
                out.push(byte as u8);
            }
        }
    }
    dec.finish().map_err(undecodable)?;
    Ok(out)
}

/// Decode many chunks in lockstep, one coding step for all of them at a time, through
/// [`Model::predict_batch`]. Result `i` equals [`decode`] of chunk `i`; a chunk that fails to
/// decode drops out of the batch without disturbing the others.
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
    let per_byte = model.symbols().per_byte();
    let mut decoders: Vec<Decoder> = chunks.iter().map(|(c, _)| Decoder::new(c)).collect();
    let mut cdfs = vec![initial_cdf(model); chunks.len()];
    let mut symbols: Vec<Vec<u32>> = chunks
        .iter()
        .map(|&(_, len)| Vec::with_capacity(len * per_byte))
        .collect();
    let mut failed: Vec<Option<Error>> = chunks.iter().map(|_| None).collect();
    let steps = chunks
        .iter()
        .map(|&(_, len)| len * per_byte)
        .max()
        .unwrap_or(0);
    let mut active: Vec<usize> = Vec::with_capacity(chunks.len());
    for step in 0..steps {
        // Chunks are ordered arbitrarily: gather those that still have symbols.
        active.clear();
        active.extend(
            (0..chunks.len()).filter(|&i| step < chunks[i].1 * per_byte && failed[i].is_none()),
        );
        if active.len() == chunks.len() {
            model.predict_batch(states, &mut cdfs);
        } else {
            for &i in &active {
                model.predict(&mut states[i], &mut cdfs[i]);
            }
        }
        for &i in &active {
            match decoders[i].decode(&cdfs[i]) {
                Ok(s) => {
                    model.observe(&mut states[i], s);
                    symbols[i].push(s);
                }
                Err(e) => failed[i] = Some(undecodable(e)),
            }
        }
    }
    decoders
        .into_iter()
        .zip(symbols)
        .zip(failed)
        .map(|((dec, syms), failed)| {
            if let Some(e) = failed {
                return Err(e);
            }
            dec.finish().map_err(undecodable)?;
            Ok(match model.symbols() {
                Symbols::Bytes => syms.into_iter().map(|s| s as u8).collect(),
                Symbols::Bits => syms
                    .chunks(8)
                    .map(|bits| bits.iter().fold(0u32, |b, &s| (b << 1) | s) as u8)
                    .collect(),
            })
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
