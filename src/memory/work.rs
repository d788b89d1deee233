//! The heap that work in flight holds now, so that the heap trend measures
//! the heap **at rest**: live allocations minus the caches' memory tiers
//! (full by design) minus what running jobs, request bodies and the service's
//! own diagnostics hold at the moment of the sample. A sample taken while two
//! clients keep both workers busy then reads the same as one taken idle, and
//! only memory that stays behind (a leak) raises the floor.
//!
//! A thread measures a unit of work with `track()`: jemalloc keeps, per
//! thread, the bytes it has allocated and freed since it started
//! (`thread.allocatedp`, `thread.deallocatedp`); the work's bytes are the
//! thread's net allocation since `track()`, read by the sampler from another
//! thread while the work runs. Work that holds memory across await points
//! (a profile kept while a growth window elapses, a stored baseline) declares
//! its bytes with `hold()`.

use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use tikv_jemalloc_ctl::raw;

/// A thread's jemalloc counters, and its net allocation when its work began.
struct Entry {
    id: u64,
    allocated: *const u64,
    deallocated: *const u64,
    base: u64,
}

// SAFETY: the pointers are only read (see `in_flight`), and an entry exists
// only while its thread is inside `track()`, so they point at live counters.
unsafe impl Send for Entry {}

static WORK: Mutex<Vec<Entry>> = Mutex::new(Vec::new());
static NEXT: AtomicU64 = AtomicU64::new(1);
static HELD: AtomicU64 = AtomicU64::new(0);

thread_local! {
    /// This thread's counters (`None`: jemalloc's thread statistics are
    /// not available).
    static COUNTERS: Option<(*const u64, *const u64)> = counters();
}

fn counters() -> Option<(*const u64, *const u64)> {
    // SAFETY: both mallctls return a pointer to the calling thread's counter,
    // valid for the thread's lifetime.
    let allocated = unsafe { raw::read::<*mut u64>(b"thread.allocatedp\0") }.ok()?;
    // SAFETY: as above.
    let deallocated = unsafe { raw::read::<*mut u64>(b"thread.deallocatedp\0") }.ok()?;
    (!allocated.is_null() && !deallocated.is_null()).then_some((allocated.cast_const(), deallocated.cast_const()))
}

/// Reads a counter jemalloc keeps for some thread.
///
/// SAFETY: `counter` must point at a live thread's jemalloc counter. Its
/// owner writes it without synchronisation; an aligned 8-byte read cannot
/// tear on the 64-bit targets this service runs on, so the value read is
/// one the counter held (at worst slightly stale).
unsafe fn read(counter: *const u64) -> u64 {
    // SAFETY: see the function's contract.
    unsafe { std::ptr::read_volatile(counter) }
}

/// A unit of work on this thread, measured until it is dropped. Not `Send`:
/// it must end on the thread it began on.
#[must_use = "the work is measured until this is dropped"]
pub struct Tracked {
    id: Option<u64>,
    _thread_bound: std::marker::PhantomData<*const ()>,
}

/// Starts measuring the work this thread does from now on.
pub fn track() -> Tracked {
    let id = COUNTERS.with(|c| {
        let (allocated, deallocated) = (*c)?;
        // SAFETY: this thread's own counters.
        let base = unsafe { read(allocated).wrapping_sub(read(deallocated)) };
        let id = NEXT.fetch_add(1, Ordering::Relaxed);
        WORK.lock().unwrap_or_else(|e| e.into_inner()).push(Entry {
            id,
            allocated,
            deallocated,
            base,
        });
        Some(id)
    });
    Tracked {
        id,
        _thread_bound: std::marker::PhantomData,
    }
}

impl Drop for Tracked {
    fn drop(&mut self) {
        if let Some(id) = self.id {
            WORK.lock().unwrap_or_else(|e| e.into_inner()).retain(|e| e.id != id);
        }
    }
}

/// Bytes some work keeps across await points, declared until dropped.
#[must_use = "the bytes count as held until this is dropped"]
pub struct Held(u64);

pub fn hold(bytes: u64) -> Held {
    HELD.fetch_add(bytes, Ordering::Relaxed);
    Held(bytes)
}

impl Drop for Held {
    fn drop(&mut self) {
        HELD.fetch_sub(self.0, Ordering::Relaxed);
    }
}

/// Bytes the work in flight holds now: each tracked unit's net allocation
/// (at least 0: a job may free what another thread allocated), plus what
/// is declared held.
pub fn in_flight() -> u64 {
    let work = WORK.lock().unwrap_or_else(|e| e.into_inner());
    let tracked: u64 = work
        .iter()
        .map(|e| {
            // SAFETY: the entry's thread is inside `track()`, so its counters live.
            let net = unsafe { read(e.allocated).wrapping_sub(read(e.deallocated)) };
            let grown = net.wrapping_sub(e.base) as i64;
            grown.max(0) as u64
        })
        .sum();
    tracked + HELD.load(Ordering::Relaxed)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn work_in_flight_is_what_it_holds_and_nothing_once_it_ends() {
        let (started, stop) = (std::sync::Barrier::new(2), std::sync::Barrier::new(2));
        std::thread::scope(|s| {
            s.spawn(|| {
                let work = track();
                let block = std::hint::black_box(vec![7u8; 32 << 20]);
                started.wait();
                stop.wait();
                drop(block);
                drop(work);
            });
            started.wait();
            let during = in_flight();
            stop.wait();
            assert!(during >= 32 << 20, "32 MiB held by the work: {during}");
        });
        // Other tests of this process may be working meanwhile: only the
        // lower bound is certain.
        let held = hold(5 << 20);
        assert!(in_flight() >= 5 << 20);
        drop(held);
    }
}
