//! What `download()` fetched, by URL: the content's id (its SHA-256), its
//! format, the origin's validators, until when the origin says it stays
//! fresh, and (within a byte budget) the bytes themselves. A chain whose
//! sources are all fresh here computes its result key without a request to
//! any origin; a stale one is revalidated with `If-None-Match` /
//! `If-Modified-Since`, and a 304 costs the origin no body.

use crate::pipeline::format::ImageFormat;
use crate::storage::ImageId;
use bytes::Bytes;
use lru::LruCache;
use reqwest::header::HeaderValue;
use std::num::NonZeroUsize;
use std::sync::Mutex;
use std::time::Instant;

/// One URL's last known answer.
#[derive(Clone, Debug)]
pub struct Known {
    pub id: ImageId,
    pub format: ImageFormat,
    pub fresh_until: Instant,
    pub etag: Option<HeaderValue>,
    pub last_modified: Option<HeaderValue>,
    /// Kept while the byte budget allows; a fresh entry without them still
    /// names the content (enough for a result-cache hit).
    pub bytes: Option<Bytes>,
}

impl Known {
    pub fn revalidatable(&self) -> bool {
        self.etag.is_some() || self.last_modified.is_some()
    }
}

pub struct SourceCache {
    inner: Mutex<Inner>,
    /// Bytes of source images kept at most.
    byte_budget: u64,
    /// `entries` = 0: nothing is remembered.
    off: bool,
}

struct Inner {
    entries: LruCache<String, Known>,
    /// Sum of the kept `bytes`.
    bytes: u64,
}

impl SourceCache {
    /// `entries`: URLs remembered at most (0 turns the cache off);
    /// `byte_budget`: bytes of images kept with them.
    pub fn new(entries: usize, byte_budget: u64) -> SourceCache {
        let cap = NonZeroUsize::new(entries.max(1)).expect("at least one");
        SourceCache {
            inner: Mutex::new(Inner {
                entries: LruCache::new(cap),
                bytes: 0,
            }),
            byte_budget,
            off: entries == 0,
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub fn get(&self, url: &str) -> Option<Known> {
        self.lock().entries.get(url).cloned()
    }

    /// Remembers `known` for `url`, keeping its bytes only if they fit the
    /// budget (dropping the bytes, not the entries, of the least recently
    /// used URLs to make room).
    pub fn put(&self, url: String, mut known: Known) {
        if self.off {
            return;
        }
        let mut inner = self.lock();
        let size = known.bytes.as_ref().map_or(0, |b| b.len() as u64);
        // One image may take a quarter of the budget at most.
        if size == 0 || size > self.byte_budget / 4 {
            known.bytes = None;
        }
        let added = known.bytes.as_ref().map_or(0, |b| b.len() as u64);
        if let Some((_, old)) = inner.entries.push(url, known) {
            inner.bytes -= old.bytes.map_or(0, |b| b.len() as u64);
        }
        inner.bytes += added;
        if inner.bytes > self.byte_budget {
            let mut over = inner.bytes - self.byte_budget;
            let mut freed = 0;
            // Least recently used first.
            for (_, k) in inner.entries.iter_mut().rev() {
                if over == 0 {
                    break;
                }
                if let Some(b) = k.bytes.take() {
                    let n = b.len() as u64;
                    freed += n;
                    over = over.saturating_sub(n);
                }
            }
            inner.bytes -= freed;
        }
    }

    /// A 304 from the origin: the same content, fresh until `fresh_until`.
    pub fn refresh(&self, url: &str, fresh_until: Instant) {
        if let Some(k) = self.lock().entries.get_mut(url) {
            k.fresh_until = fresh_until;
        }
    }

    /// Bytes of source images held.
    pub fn bytes(&self) -> u64 {
        self.lock().bytes
    }

    pub fn len(&self) -> usize {
        self.lock().entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn known(bytes: usize) -> Known {
        let data = Bytes::from(vec![7u8; bytes]);
        Known {
            id: ImageId::of(&data),
            format: ImageFormat::Jpeg,
            fresh_until: Instant::now() + Duration::from_secs(60),
            etag: None,
            last_modified: None,
            bytes: Some(data),
        }
    }

    #[test]
    fn bytes_stay_within_the_budget_and_entries_outlive_their_bytes() {
        let cache = SourceCache::new(100, 1000);
        for i in 0..10 {
            cache.put(format!("u{i}"), known(200));
            assert!(cache.bytes() <= 1000, "{} bytes held", cache.bytes());
        }
        assert_eq!(cache.len(), 10, "every URL still names its content");
        assert!(cache.get("u9").unwrap().bytes.is_some(), "the newest keeps its bytes");
        assert!(cache.get("u0").unwrap().bytes.is_none(), "the oldest lost its bytes");
        // Replacing an entry gives its bytes back.
        let before = cache.bytes();
        cache.put("u9".into(), known(100));
        assert_eq!(cache.bytes(), before - 100);
    }

    #[test]
    fn an_image_over_a_quarter_of_the_budget_is_named_but_not_kept() {
        let cache = SourceCache::new(100, 1000);
        cache.put("big".into(), known(300));
        let k = cache.get("big").unwrap();
        assert!(k.bytes.is_none());
        assert_eq!(cache.bytes(), 0);
    }

    #[test]
    fn zero_entries_remember_nothing() {
        let cache = SourceCache::new(0, 1 << 20);
        cache.put("u".into(), known(10));
        assert!(cache.get("u").is_none());
        assert_eq!(cache.bytes(), 0);
    }

    #[test]
    fn entries_are_bounded_by_count() {
        let cache = SourceCache::new(3, 1 << 20);
        for i in 0..5 {
            cache.put(format!("u{i}"), known(10));
        }
        assert_eq!(cache.len(), 3);
        assert!(cache.get("u0").is_none());
        assert_eq!(cache.bytes(), 30);
    }
}
