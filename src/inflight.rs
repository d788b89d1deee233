//! Bytes of request bodies and downloads held in memory at once. A request
//! that will bring bytes in (an upload, a body to transform, a source to
//! download) holds its share before the first byte arrives: its declared
//! length, or the largest it may be. When the budget is spent the request is
//! refused at once (503), so a crowd of large or slow bodies cannot pile up
//! in memory while they wait for a worker.

use prometheus::IntGauge;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

pub struct InflightBytes {
    total: u64,
    held: AtomicU64,
    gauge: IntGauge,
}

/// A share of the budget, returned when dropped.
pub struct Held {
    budget: Arc<InflightBytes>,
    bytes: u64,
}

impl InflightBytes {
    /// A budget of `total` bytes, reported on `gauge`.
    pub fn new(total: u64, gauge: IntGauge) -> Arc<InflightBytes> {
        Arc::new(InflightBytes {
            total,
            held: AtomicU64::new(0),
            gauge,
        })
    }

    /// Holds `bytes`, or `None` when that would pass the budget. A single
    /// request larger than the whole budget is refused too (its own limit,
    /// `max_body` or `download.max_bytes`, is checked before this).
    pub fn try_hold(self: &Arc<Self>, bytes: u64) -> Option<Held> {
        self.held
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |held| {
                held.checked_add(bytes).filter(|&sum| sum <= self.total)
            })
            .ok()?;
        self.gauge.add(bytes as i64);
        Some(Held {
            budget: Arc::clone(self),
            bytes,
        })
    }

    /// Bytes held now.
    pub fn held(&self) -> u64 {
        self.held.load(Ordering::SeqCst)
    }

    pub fn total(&self) -> u64 {
        self.total
    }
}

impl Held {
    pub fn bytes(&self) -> u64 {
        self.bytes
    }
}

impl Drop for Held {
    fn drop(&mut self) {
        self.budget.held.fetch_sub(self.bytes, Ordering::SeqCst);
        self.budget.gauge.sub(self.bytes as i64);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shares_are_refused_past_the_budget_and_returned_when_dropped() {
        let gauge = IntGauge::new("t", "t").unwrap();
        let budget = InflightBytes::new(100, gauge.clone());
        let a = budget.try_hold(60).unwrap();
        assert!(budget.try_hold(41).is_none());
        let b = budget.try_hold(40).unwrap();
        assert_eq!((budget.held(), gauge.get()), (100, 100));
        assert!(budget.try_hold(1).is_none());
        drop(a);
        assert_eq!(budget.held(), 40);
        assert!(budget.try_hold(u64::MAX).is_none(), "no overflow");
        drop(b);
        assert_eq!((budget.held(), gauge.get()), (0, 0));
    }
}
