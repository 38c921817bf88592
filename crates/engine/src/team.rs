//! Two threads sharing one decoder step: [`join`] runs two closures at once, one on the calling
//! thread and one on a helper thread that [`install`] started for it.
//!
//! A solid block decodes byte after byte, so its decoder cannot hand whole blocks to threads;
//! a team splits the work *inside* each step instead (a matrix product's column panels,
//! attention's heads). Which thread computes an output never changes its value: every element
//! is computed by the same kernel in the same order, so a team changes the speed only, never
//! the bits.
//!
//! A step of the byte Transformer joins about twenty times, a few microseconds apart, so the
//! helper waits for its next job by spinning on an atomic counter: waking a sleeping thread
//! through the OS costs more than a join's whole job. After [`SPINS`] rounds without news a
//! waiting thread yields its core at every round, so that a team on a busy machine (tests run
//! side by side, more threads than cores) still makes progress. Written by hand rather than
//! with rayon because rayon's idle workers yield to the OS between jobs, which at this grain
//! costs more than it saves.

use std::any::Any;
use std::cell::{Cell, UnsafeCell};
use std::panic::{AssertUnwindSafe, catch_unwind, resume_unwind};
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

/// Rounds a waiting thread spins (with [`std::hint::spin_loop`]) before it starts yielding its
/// core at every round: a few tens of microseconds, far above a join's usual wait.
pub const SPINS: u32 = 1 << 11;

/// A job for the helper: a type-erased `FnOnce` that lives on the poster's stack until the
/// helper reports it finished.
struct Job {
    data: *mut (),
    call: unsafe fn(*mut ()),
}

/// What the caller and the helper of one team share.
struct Shared {
    /// Jobs posted so far; the helper runs job `n` when it sees this reach `n`.
    posted: AtomicU64,
    /// The number of the last job the helper finished.
    finished: AtomicU64,
    /// The posted job, written by the caller before `posted` moves, taken by the helper after.
    job: UnsafeCell<Option<Job>>,
    /// Set when the team breaks up.
    stop: AtomicBool,
    /// Whether `panic` holds something (checked without the lock at every join).
    panicked: AtomicBool,
    /// A panic of the helper's job, to resume on the caller.
    panic: Mutex<Option<Box<dyn Any + Send>>>,
}

// SAFETY: `job` is written only by the caller while the helper is idle (before `posted` is
// released) and taken only by the helper after it acquired `posted`; the caller does not touch
// it again before it acquired `finished`. Every other field is thread-safe.
unsafe impl Sync for Shared {}

thread_local! {
    /// The team of the calling thread, while [`install`] runs and no join's first half does.
    static CURRENT: Cell<*const Shared> = const { Cell::new(std::ptr::null()) };
}

/// Run `f` with a team of two threads for the calling thread: inside `f`, [`join`] runs its
/// two closures at once. Without a second core (or inside another team) `f` simply runs, and
/// [`join`] runs its closures one after the other.
pub fn install<R>(f: impl FnOnce() -> R) -> R {
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    if cores < 2 || active() {
        return f();
    }
    let shared = Shared {
        posted: AtomicU64::new(0),
        finished: AtomicU64::new(0),
        job: UnsafeCell::new(None),
        stop: AtomicBool::new(false),
        panicked: AtomicBool::new(false),
        panic: Mutex::new(None),
    };
    std::thread::scope(|scope| {
        scope.spawn(|| serve(&shared));
        /// Breaks the team up however `f` ends, so that the scope can join the helper.
        struct Release<'a>(&'a Shared);
        impl Drop for Release<'_> {
            fn drop(&mut self) {
                CURRENT.with(|c| c.set(std::ptr::null()));
                self.0.stop.store(true, Ordering::Release);
            }
        }
        let _release = Release(&shared);
        CURRENT.with(|c| c.set(&shared));
        f()
    })
}

/// Whether the calling thread has a team ([`install`]), so that [`join`] runs in parallel.
pub fn active() -> bool {
    CURRENT.with(|c| !c.get().is_null())
}

/// Run `a` on the calling thread and `b` on its team's helper at the same time, and return when
/// both are done; without a team ([`active`] is false), `a` then `b`. A panic in either is
/// resumed here, after both ended. Joins inside `a` or `b` run their closures one after the
/// other.
pub fn join<A: FnOnce(), B: FnOnce() + Send>(a: A, b: B) {
    let shared = CURRENT.with(|c| c.get());
    if shared.is_null() {
        a();
        b();
        return;
    }
    // SAFETY: `CURRENT` points at `install`'s `Shared` while `install`'s closure runs on this
    // thread, and is cleared before that `Shared` is dropped.
    let shared = unsafe { &*shared };
    let mut b = Some(b);
    /// Call the `Option<F>` at `data` once.
    unsafe fn call<F: FnOnce()>(data: *mut ()) {
        // SAFETY: `data` is the `Option<F>` that `join` keeps alive until this returned.
        let f = unsafe { &mut *(data as *mut Option<F>) };
        (f.take().expect("BUG: a job runs once"))()
    }
    let job = Job {
        data: (&mut b as *mut Option<B>).cast(),
        call: call::<B>,
    };
    // SAFETY: the helper is idle: every earlier job finished before the last join returned.
    unsafe { *shared.job.get() = Some(job) };
    let number = shared.posted.fetch_add(1, Ordering::Release) + 1;
    /// Waits for the helper's job however `a` ends: `b` borrows what `a`'s caller owns.
    struct Wait<'a>(&'a Shared, u64);
    impl Drop for Wait<'_> {
        fn drop(&mut self) {
            let mut spins = 0;
            while self.0.finished.load(Ordering::Acquire) < self.1 {
                back_off(&mut spins);
            }
        }
    }
    let wait = Wait(shared, number);
    // Joins inside `a` run sequentially: the helper is busy with `b`.
    CURRENT.with(|c| c.set(std::ptr::null()));
    let result = catch_unwind(AssertUnwindSafe(a));
    CURRENT.with(|c| c.set(shared));
    drop(wait);
    let helper_panic = match shared.panicked.swap(false, Ordering::Acquire) {
        true => shared.panic.lock().map(|mut p| p.take()).unwrap_or(None),
        false => None,
    };
    if let Err(panic) = result {
        resume_unwind(panic);
    }
    if let Some(panic) = helper_panic {
        resume_unwind(panic);
    }
}

/// The helper's loop: run each posted job, until the team breaks up.
fn serve(shared: &Shared) {
    let mut seen = 0;
    loop {
        let mut spins = 0;
        let number = loop {
            let number = shared.posted.load(Ordering::Acquire);
            if number != seen {
                break number;
            }
            if shared.stop.load(Ordering::Acquire) {
                return;
            }
            back_off(&mut spins);
        };
        seen = number;
        // SAFETY: acquiring `posted` made the caller's write of the job visible, and the caller
        // leaves it alone until `finished` says it ran.
        let job = unsafe { (*shared.job.get()).take() }.expect("BUG: a posted job");
        // SAFETY: `job` came from `join`, which keeps its closure alive until `finished` moves.
        if let Err(panic) = catch_unwind(AssertUnwindSafe(|| unsafe { (job.call)(job.data) })) {
            if let Ok(mut slot) = shared.panic.lock() {
                *slot = Some(panic);
            }
            shared.panicked.store(true, Ordering::Release);
        }
        shared.finished.store(number, Ordering::Release);
    }
}

/// One round of waiting for another thread: spin while `spins` (0 at the start of a wait) is
/// below [`SPINS`], then yield the core at every round.
pub fn back_off(spins: &mut u32) {
    if *spins < SPINS {
        *spins += 1;
        std::hint::spin_loop();
    } else {
        std::thread::yield_now();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn join_runs_both_halves_in_a_team_and_without_one() {
        let run = || {
            let (mut left, mut right) = (vec![0u64; 1000], vec![0u64; 1000]);
            for round in 0..200u64 {
                join(
                    || left.iter_mut().for_each(|x| *x += round),
                    || right.iter_mut().for_each(|x| *x += 2 * round),
                );
            }
            (left[999], right[0])
        };
        let expected = (199 * 200 / 2, 199 * 200);
        assert_eq!(run(), expected);
        assert_eq!(install(run), expected);
        assert!(!active());
    }

    #[test]
    fn a_team_runs_the_second_half_on_another_thread_when_there_are_two_cores() {
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
        let caller = std::thread::current().id();
        let (mut a_on, mut b_on) = (None, None);
        install(|| {
            assert_eq!(active(), cores >= 2);
            join(
                || a_on = Some(std::thread::current().id()),
                || b_on = Some(std::thread::current().id()),
            );
            // Nested joins run in order on the calling thread.
            join(|| assert!(!active()), || {});
        });
        assert_eq!(a_on, Some(caller));
        assert_eq!(b_on != Some(caller), cores >= 2);
    }

    #[test]
    fn a_panic_in_either_half_reaches_the_caller_after_both_ended() {
        for helper_panics in [false, true] {
            let mut other_ran = false;
            let result = catch_unwind(AssertUnwindSafe(|| {
                install(|| {
                    if helper_panics {
                        join(|| other_ran = true, || panic!("b"));
                    } else {
                        join(|| panic!("a"), || other_ran = true);
                    }
                })
            }));
            assert!(result.is_err());
            assert!(other_ran);
        }
        // The team broke up cleanly: a new one works.
        let mut x = 0;
        install(|| join(|| x += 1, || {}));
        assert_eq!(x, 1);
    }
}
