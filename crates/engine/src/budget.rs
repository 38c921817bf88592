//! The threads a job may add: `-T N` is one budget, owned by whoever starts the job and passed
//! down, so that blocks coded side by side and the helpers inside each block never make more
//! than N threads busy at once.
//!
//! A [`Budget`] counts the *spare* threads beyond those already working. A worker that wants a
//! helper takes a [`Permit`] ([`Budget::try_take`]) and holds it while the helper runs; a worker
//! that finishes early gives its own thread back ([`Budget::give_back`]), so that a long block
//! still being coded can take it up at its next window.

use std::sync::atomic::{AtomicUsize, Ordering};

/// Spare threads, shared by the workers of one job.
#[derive(Debug)]
pub struct Budget {
    spare: AtomicUsize,
}

impl Budget {
    /// A budget of `spare` threads beyond the callers'.
    pub fn spare(spare: usize) -> Budget {
        Budget {
            spare: AtomicUsize::new(spare),
        }
    }

    /// A spare thread, if one is free now.
    pub fn try_take(&self) -> Option<Permit<'_>> {
        self.spare
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| n.checked_sub(1))
            .ok()
            .map(|_| Permit { budget: self })
    }

    /// Add a thread that finished its own work to the spare ones.
    pub fn give_back(&self) {
        self.spare.fetch_add(1, Ordering::AcqRel);
    }

    /// How many spare threads are free now.
    pub fn free(&self) -> usize {
        self.spare.load(Ordering::Acquire)
    }
}

/// One spare thread taken from a [`Budget`]; given back when dropped.
#[derive(Debug)]
pub struct Permit<'a> {
    budget: &'a Budget,
}

impl Drop for Permit<'_> {
    fn drop(&mut self) {
        self.budget.give_back();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn permits_come_back_when_dropped() {
        let budget = Budget::spare(2);
        let a = budget.try_take().unwrap();
        let b = budget.try_take().unwrap();
        assert!(budget.try_take().is_none());
        drop(a);
        assert_eq!(budget.free(), 1);
        drop(b);
        budget.give_back();
        assert_eq!(budget.free(), 3);
    }
}
