//! What the neural models share: a network that runs teacher-forced over a whole chunk or one
//! step per chunk with a key/value cache ([`Network`]), and the per-chunk state and coding steps
//! built on it ([`NetState`]). The byte Transformer and the Llama family each implement
//! [`Network`] and map their logits to a table; everything else is here, once.
//!
//! The start token is added here and nowhere else: input 0 of every chunk is the network's
//! start token, input `i > 0` the coded symbol `i - 1` (through [`Network::input`]).

use lmzip_coder::Cdf;
use lmzip_engine::Cache;

/// A network the neural models code with.
pub trait Network: Send + Sync {
    /// Activations reused between calls.
    type Scratch: Default + Send;

    /// Logits per row.
    fn vocab(&self) -> usize;

    /// The first input of every chunk.
    fn start(&self) -> u32;

    /// The network input for a coded symbol (the identity, unless some symbols have no input
    /// of their own).
    fn input(&self, symbol: u32) -> u32 {
        symbol
    }

    /// A cache for one chunk.
    fn new_cache(&self) -> Cache;

    /// Teacher-forced logits of every input at once (`inputs.len() × vocab`).
    fn forward(&self, inputs: &[u32], logits: &mut [f32], scratch: &mut Self::Scratch);

    /// One input per chunk: `inputs[b]` enters `caches[b]`, row `b` of `logits` receives the
    /// logits after it.
    fn step(
        &self,
        caches: &mut [&mut Cache],
        inputs: &[u32],
        logits: &mut [f32],
        scratch: &mut Self::Scratch,
    );
}

/// Check a normalization epsilon (named `eps_name` in messages) and a rotary base, as both
/// families' configs must.
pub fn check_eps_and_theta(eps: f32, eps_name: &str, theta: f64) -> Result<(), String> {
    if !(eps.is_finite() && eps > 0.0) {
        return Err(format!("{eps_name} must be positive"));
    }
    if !(theta.is_finite() && theta > 1.0) {
        return Err("rope_theta must be above 1".into());
    }
    Ok(())
}

/// The network inputs of a chunk coded as `symbols`: `start`, then the input of every symbol
/// but the last.
pub fn chunk_inputs(start: u32, symbols: &[u32], input: impl Fn(u32) -> u32) -> Vec<u32> {
    std::iter::once(start)
        .chain(symbols.iter().map(|&s| input(s)))
        .take(symbols.len())
        .collect()
}

/// Per-chunk state of a neural model.
#[derive(Debug, Default)]
pub struct NetState<S> {
    /// Symbols observed so far.
    pos: usize,
    /// The input the next prediction consumes: the start token, then the last symbol's.
    pending: u32,
    /// Teacher-forced logits of the whole chunk, when the encoder prepared it.
    prepared: Option<Vec<f32>>,
    /// The incremental path's cache, made on first use.
    cache: Option<Cache>,
    scratch: S,
    logits: Vec<f32>,
    /// Buffers for the model's logits → table step.
    pub(crate) table: TableBuffers,
}

/// Buffers a model's `fill` reuses between predictions.
#[derive(Debug, Default)]
pub(crate) struct TableBuffers {
    pub(crate) freqs: Vec<u32>,
    pub(crate) row: Vec<f32>,
}

impl<S: Default> NetState<S> {
    /// A state for a new chunk of `net`.
    pub(crate) fn new<N: Network<Scratch = S>>(net: &N) -> NetState<S> {
        NetState {
            pending: net.start(),
            ..NetState::default()
        }
    }
}

/// Make `state` a new chunk's, keeping its memory.
pub(crate) fn reset<N: Network>(net: &N, state: &mut NetState<N::Scratch>) {
    state.pos = 0;
    state.pending = net.start();
    state.prepared = None;
    if let Some(cache) = &mut state.cache {
        cache.clear();
    }
}

/// Score every symbol of the chunk at once (the encoder's teacher forcing).
pub(crate) fn prepare<N: Network>(net: &N, state: &mut NetState<N::Scratch>, symbols: &[u32]) {
    let inputs = chunk_inputs(net.start(), symbols, |s| net.input(s));
    let mut logits = state.prepared.take().unwrap_or_default();
    logits.resize(inputs.len() * net.vocab(), 0.0);
    net.forward(&inputs, &mut logits, &mut state.scratch);
    state.prepared = Some(logits);
}

/// Record the true symbol.
pub(crate) fn observe<N: Network>(net: &N, state: &mut NetState<N::Scratch>, symbol: u32) {
    state.pos += 1;
    state.pending = net.input(symbol);
}

/// The next symbol's table for each state: from the prepared logits where the encoder
/// prepared the chunk, else by one lockstep [`Network::step`] over all states. `fill` turns a
/// row of logits into a table.
pub(crate) fn predict_batch<N: Network>(
    net: &N,
    states: &mut [NetState<N::Scratch>],
    cdfs: &mut [Cdf],
    fill: &dyn Fn(&[f32], &mut TableBuffers, &mut Cdf),
) {
    let vocab = net.vocab();
    if states.iter().any(|s| s.prepared.is_some()) {
        for (state, cdf) in states.iter_mut().zip(cdfs.iter_mut()) {
            match &state.prepared {
                Some(prepared) => {
                    let row = &prepared[state.pos * vocab..(state.pos + 1) * vocab];
                    fill(row, &mut state.table, cdf);
                }
                None => {
                    let (one, cdf) = (std::slice::from_mut(state), std::slice::from_mut(cdf));
                    predict_batch(net, one, cdf, fill)
                }
            }
        }
        return;
    }
    let Some(first) = states.first_mut() else {
        return;
    };
    let mut scratch = std::mem::take(&mut first.scratch);
    let mut logits = std::mem::take(&mut first.logits);
    logits.resize(states.len() * vocab, 0.0);
    let inputs: Vec<u32> = states.iter().map(|s| s.pending).collect();
    let mut caches: Vec<&mut Cache> = states
        .iter_mut()
        .map(|s| &mut *s.cache.get_or_insert_with(|| net.new_cache()))
        .collect();
    net.step(&mut caches, &inputs, &mut logits, &mut scratch);
    for ((state, cdf), row) in states
        .iter_mut()
        .zip(cdfs.iter_mut())
        .zip(logits.chunks_exact(vocab))
    {
        fill(row, &mut state.table, cdf);
    }
    states[0].scratch = scratch;
    states[0].logits = logits;
}
