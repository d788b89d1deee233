//! Admission by memory: ImageMagick's pixel-cache budget (`limits.magick_memory`
//! plus `magick_disk`; without a disk cache it is `magick_memory` alone) is
//! shared by every worker, and a job that finds it spent fails ("cache
//! resources exhausted"). Each job therefore reserves its
//! estimated need before it decodes and waits, until its deadline, while other
//! jobs hold the budget. A need larger than the whole budget is cut to the
//! whole budget: such a job runs alone rather than being refused.

use std::cell::Cell;
use std::sync::{Condvar, Mutex, OnceLock};
use std::time::Instant;

thread_local! {
    /// What the job running on this worker thread reserved.
    static HELD_HERE: Cell<u64> = const { Cell::new(0) };
}

pub struct Budget {
    total: u64,
    in_use: Mutex<u64>,
    freed: Condvar,
}

/// A reservation, returned when dropped.
pub struct Grant<'a> {
    budget: &'a Budget,
    bytes: u64,
}

impl Budget {
    pub fn new(total: u64) -> Budget {
        Budget {
            total,
            in_use: Mutex::new(0),
            freed: Condvar::new(),
        }
    }

    /// Reserves `bytes` (at most the whole budget), waiting until `deadline`
    /// for other jobs to return theirs. `None` when the deadline passes first.
    pub fn reserve(&self, bytes: u64, deadline: Instant) -> Option<Grant<'_>> {
        let bytes = bytes.min(self.total);
        let mut in_use = self.in_use.lock().unwrap_or_else(|e| e.into_inner());
        while *in_use + bytes > self.total {
            let left = deadline
                .checked_duration_since(Instant::now())
                .filter(|d| !d.is_zero())?;
            in_use = self
                .freed
                .wait_timeout(in_use, left)
                .unwrap_or_else(|e| e.into_inner())
                .0;
        }
        *in_use += bytes;
        HELD_HERE.with(|h| h.set(h.get() + bytes));
        Some(Grant { budget: self, bytes })
    }

    /// Whether jobs other than the one on this thread hold part of the
    /// budget: then a spent budget is contention (worth a retry), not an
    /// image too large for the budget.
    pub fn others_hold(&self) -> bool {
        self.in_use() > HELD_HERE.with(Cell::get)
    }

    /// The whole budget, in bytes.
    pub fn total(&self) -> u64 {
        self.total
    }

    /// Bytes reserved now.
    pub fn in_use(&self) -> u64 {
        *self.in_use.lock().unwrap_or_else(|e| e.into_inner())
    }
}

impl Drop for Grant<'_> {
    fn drop(&mut self) {
        let mut in_use = self.budget.in_use.lock().unwrap_or_else(|e| e.into_inner());
        *in_use -= self.bytes;
        HELD_HERE.with(|h| h.set(h.get().saturating_sub(self.bytes)));
        self.budget.freed.notify_all();
    }
}

static BUDGET: OnceLock<Budget> = OnceLock::new();

/// The process's budget, set once with ImageMagick's limits (`magick::init`).
pub fn set(total: u64) {
    let _ = BUDGET.set(Budget::new(total));
}

pub fn get() -> Option<&'static Budget> {
    BUDGET.get()
}

/// A share of the process's budget for one job (`None` when no budget is
/// configured), waited for until `deadline`; past it, a deadline error.
pub fn reserve_for_job(bytes: u64, deadline: Instant) -> Result<Option<Grant<'static>>, super::JobError> {
    match get() {
        Some(budget) => budget
            .reserve(bytes, deadline)
            .map(Some)
            .ok_or(super::JobError::Deadline),
        None => Ok(None),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;
    use std::time::Duration;

    #[test]
    fn reservations_wait_for_each_other_and_oversized_ones_run_alone() {
        let budget = Arc::new(Budget::new(100));
        let soon = || Instant::now() + Duration::from_millis(50);
        let a = budget.reserve(60, soon()).unwrap();
        // 60 + 50 > 100: waits, then gives up at the deadline.
        assert!(budget.reserve(50, soon()).is_none());
        // Released by another thread while we wait: we get it.
        let waiter = {
            let budget = Arc::clone(&budget);
            std::thread::spawn(move || {
                budget
                    .reserve(50, Instant::now() + Duration::from_secs(5))
                    .map(|g| g.bytes)
            })
        };
        std::thread::sleep(Duration::from_millis(20));
        drop(a);
        assert_eq!(waiter.join().unwrap(), Some(50));
        assert_eq!(budget.in_use(), 0, "the waiter's grant was dropped with its thread");
        // More than the whole budget: cut to the whole, so it runs alone.
        let big = budget.reserve(10_000, soon()).unwrap();
        assert_eq!(budget.in_use(), 100);
        assert!(budget.reserve(1, soon()).is_none());
        drop(big);
        assert_eq!(budget.in_use(), 0);
    }
}
