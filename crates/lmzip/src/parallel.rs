//! Runs independent per-chunk jobs on a fixed number of threads, preserving order.

use lmzip_engine::{Budget, team};

/// The budget of [`map_ordered`] running `items` jobs on `threads` threads: the threads left
/// once every run has its own are spare, for the jobs' helpers.
pub(crate) fn spare_threads(threads: usize, items: usize) -> Budget {
    Budget::spare(threads.saturating_sub(runs(threads, items)))
}

/// How many contiguous runs (threads) [`map_ordered`] cuts `items` into with `threads` states.
fn runs(threads: usize, items: usize) -> usize {
    let threads = threads.min(items).max(1);
    items.max(1).div_ceil(items.div_ceil(threads).max(1))
}

/// Apply `f` to every item, with one model state per thread; results come back in item order.
/// A thread whose run is done gives itself back to `spare` ([`spare_threads`]).
///
/// Items are split into contiguous runs, one per state. Which thread codes which chunk never
/// changes a result, because every chunk starts from a reset state.
pub(crate) fn map_ordered<S, I, O, F>(states: &mut [S], items: &[I], spare: &Budget, f: F) -> Vec<O>
where
    S: Send,
    I: Sync,
    O: Send,
    F: Fn(&mut S, &I) -> O + Sync,
{
    let threads = states.len().min(items.len()).max(1);
    let per = items.len().div_ceil(threads).max(1);
    map_runs_on(states, items, per, |state, run| {
        let results = run.iter().map(|item| f(state, item)).collect();
        spare.give_back();
        results
    })
}

/// Apply `f` to contiguous runs of items, one run per state set (thread); `f` returns one result
/// per item of its run. Results come back in item order.
///
/// With at least twice as many state sets as items (a solid block decoding alone on two
/// threads), each run gets a team of two threads ([`team::install`]): the network splits each
/// single-row step between them, computing the same bits.
pub(crate) fn map_runs<S, I, O, F>(states: &mut [S], items: &[I], f: F) -> Vec<O>
where
    S: Send,
    I: Sync,
    O: Send,
    F: Fn(&mut S, &[I]) -> Vec<O> + Sync,
{
    let threads = states.len().min(items.len()).max(1);
    let per = items.len().div_ceil(threads).max(1);
    let teams = states.len() >= 2 * threads;
    map_runs_on(states, items, per, |state: &mut S, run: &[I]| match teams {
        true => team::install(|| f(state, run)),
        false => f(state, run),
    })
}

/// Run `f` on each run of `per` items with its own state: the first run on this thread, the
/// others on threads of their own. Results come back in item order.
fn map_runs_on<S, I, O, F>(states: &mut [S], items: &[I], per: usize, f: F) -> Vec<O>
where
    S: Send,
    I: Sync,
    O: Send,
    F: Fn(&mut S, &[I]) -> Vec<O> + Sync,
{
    assert!(!states.is_empty() || items.is_empty(), "BUG: no state");
    let f = &f;
    let mut runs = states.iter_mut().zip(items.chunks(per));
    let Some((first_state, first_run)) = runs.next() else {
        return Vec::new();
    };
    std::thread::scope(|scope| {
        let handles: Vec<_> = runs
            .map(|(state, run)| scope.spawn(move || f(state, run)))
            .collect();
        let mut results = f(first_state, first_run);
        for handle in handles {
            results.extend(handle.join().expect("BUG: a chunk worker panicked"));
        }
        results
    })
}
