//! Runs independent per-chunk jobs on a fixed number of threads, preserving order.

use lmzip_engine::team;

/// Apply `f` to every item, with one model state per thread; results come back in item order.
///
/// Items are split into contiguous runs, one per state. Which thread codes which chunk never
/// changes a result, because every chunk starts from a reset state.
pub(crate) fn map_ordered<S, I, O, F>(states: &mut [S], items: &[I], f: F) -> Vec<O>
where
    S: Send,
    I: Sync,
    O: Send,
    F: Fn(&mut S, &I) -> O + Sync,
{
    let threads = states.len().min(items.len()).max(1);
    if threads == 1 {
        let state = &mut states[0];
        return items.iter().map(|item| f(state, item)).collect();
    }
    let per = items.len().div_ceil(threads);
    let f = &f;
    std::thread::scope(|scope| {
        let handles: Vec<_> = states
            .iter_mut()
            .zip(items.chunks(per))
            .map(|(state, run)| {
                scope.spawn(move || run.iter().map(|item| f(state, item)).collect::<Vec<O>>())
            })
            .collect();
        handles
            .into_iter()
            .flat_map(|h| h.join().expect("BUG: a chunk worker panicked"))
            .collect()
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
    let run = |state: &mut S, run: &[I]| match teams {
        true => team::install(|| f(state, run)),
        false => f(state, run),
    };
    if threads == 1 {
        return run(&mut states[0], items);
    }
    let run = &run;
    std::thread::scope(|scope| {
        let handles: Vec<_> = states
            .iter_mut()
            .zip(items.chunks(per))
            .map(|(state, items)| scope.spawn(move || run(state, items)))
            .collect();
        handles
            .into_iter()
            .flat_map(|h| h.join().expect("BUG: a chunk worker panicked"))
            .collect()
    })
}
