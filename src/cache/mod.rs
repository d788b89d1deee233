//! The result cache: a bytes-bounded LRU in memory in front of a
//! bytes-bounded disk tier that survives restarts, keyed by the canonical form
//! of the work (never the raw URL), with single-flight: identical concurrent
//! misses run one job and share its result.
//!
//! Purges win every race: each purge is logged with a generation number
//! before it removes anything, and a result computed while a purge that
//! names it happened is returned to its callers but never stored.

pub mod disk;
mod object;

pub use object::ObjectTier;

use crate::metrics::Metrics;
use crate::pipeline::format::ImageFormat;
use crate::storage::ImageId;
use bytes::Bytes;
use disk::{DiskTier, Read};
use lru::LruCache;
use sha2::{Digest, Sha256};
use std::collections::HashMap;
use std::future::Future;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use tokio::sync::OnceCell;

/// A cached result: encoded image bytes (shared, never copied on a hit).
#[derive(Clone, Debug)]
pub struct Entry {
    pub bytes: Bytes,
    pub format: ImageFormat,
}

/// Identity of a result: which original, which alias (for purges), and the
/// hash of everything that determines the bytes.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct CacheKey {
    pub source: ImageId,
    pub alias: String,
    /// SHA-256 (hex) of source, alias, canonical work and engine salt.
    pub hash: String,
}

impl CacheKey {
    /// `work`: the canonical plan plus anything negotiated (output format class).
    /// `salt`: engine versions, so an upgrade never serves stale renderings.
    pub fn new(source: &ImageId, alias: &str, work: &str, salt: &str) -> CacheKey {
        let mut h = Sha256::new();
        for part in [source.as_str(), alias, work, salt] {
            h.update((part.len() as u64).to_le_bytes());
            h.update(part.as_bytes());
        }
        CacheKey {
            source: source.clone(),
            alias: alias.to_string(),
            hash: hex::encode(h.finalize()),
        }
    }

    /// A strong ETag derived from the key: the same work always gives the same bytes.
    pub fn etag(&self) -> String {
        format!("\"{}\"", &self.hash[..32])
    }

    /// `ab/<source>/<alias>/<hash>`: purging an image or an alias is a prefix walk.
    pub(crate) fn disk_path(&self) -> PathBuf {
        Path::new(self.source.shard())
            .join(self.source.as_str())
            .join(&self.alias)
            .join(&self.hash)
    }
}

/// Where a response came from, for `X-Cache`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Tier {
    Memory,
    Disk,
    Miss,
}

impl Tier {
    pub fn header(self) -> &'static str {
        match self {
            Tier::Memory => "hit-memory",
            Tier::Disk => "hit-disk",
            Tier::Miss => "miss",
        }
    }
}

struct MemoryTier {
    lru: LruCache<String, (CacheKey, Entry)>,
    bytes: u64,
    budget: u64,
}

/// What to purge.
#[derive(Clone, Debug)]
pub enum Purge {
    Image(ImageId),
    Alias(String),
    All,
}

type Flight<E> = Arc<OnceCell<Result<(Entry, Tier), E>>>;

/// Purges remembered to judge results that were computing meanwhile.
const PURGE_LOG: usize = 4096;

/// Failures remembered at most (a negative cache is a bounded LRU).
const FAILURES: usize = 10_000;

/// Errors the cache may remember for a while: a result that failed for its
/// input (undecodable, too large, too expensive) fails again at once,
/// instead of decoding the same poison again on every retry.
pub trait Failure {
    /// How long to remember this failure; `None` for failures that may not
    /// repeat (overload, deadlines, internal errors).
    fn remember_for(&self) -> Option<std::time::Duration>;
}

/// The purges since some generation, oldest first.
struct PurgeLog {
    /// Generation of the newest purge (0: none yet).
    generation: u64,
    recent: std::collections::VecDeque<(u64, Purge)>,
}

impl PurgeLog {
    /// Whether a purge after generation `since` names `key`. Past the log's
    /// memory, assume one did (a result that slow is simply not stored).
    fn stale(&self, key: &CacheKey, since: u64) -> bool {
        if self.generation == since {
            return false;
        }
        match self.recent.front() {
            Some((oldest, _)) if *oldest <= since + 1 => self
                .recent
                .iter()
                .filter(|(g, _)| *g > since)
                .any(|(_, what)| what.names(key)),
            _ => true,
        }
    }
}

impl Purge {
    fn names(&self, key: &CacheKey) -> bool {
        match self {
            Purge::Image(id) => &key.source == id,
            Purge::Alias(alias) => &key.alias == alias,
            Purge::All => true,
        }
    }
}

/// Counts the regular files under `dir`.
pub(crate) fn count_files(dir: &Path) -> usize {
    let mut count = 0;
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for entry in std::fs::read_dir(&d).into_iter().flatten().flatten() {
            match entry.file_type() {
                Ok(t) if t.is_dir() => stack.push(entry.path()),
                Ok(_) => count += 1,
                Err(_) => {}
            }
        }
    }
    count
}

/// Removes a single-flight entry when the last request sharing it is done
/// or cancelled (a cancelled leader would otherwise leave it behind).
struct FlightGuard<'a, E> {
    inflight: &'a Mutex<HashMap<String, Flight<E>>>,
    key: &'a str,
    flight: Option<Flight<E>>,
}

impl<E> Drop for FlightGuard<'_, E> {
    fn drop(&mut self) {
        let mut inflight = self.inflight.lock().unwrap_or_else(|e| e.into_inner());
        let mine = self.flight.take();
        if let (Some(mine), Some(entry)) = (mine, inflight.get(self.key))
            && Arc::ptr_eq(&mine, entry)
        {
            drop(mine);
            // Clones are made and dropped under this lock: 1 is the map's own.
            if Arc::strong_count(entry) == 1 {
                inflight.remove(self.key);
            }
        }
    }
}

/// The tier behind memory: local files, or objects shared by every replica.
pub enum SecondTier {
    Disk(Arc<DiskTier>),
    Object(ObjectTier),
}

impl SecondTier {
    pub fn disk(data_dir: &Path, budget: u64) -> std::io::Result<SecondTier> {
        Ok(SecondTier::Disk(Arc::new(DiskTier::new(
            data_dir.join("cache"),
            data_dir.join("tmp"),
            budget,
        )?)))
    }

    async fn get(&self, key: &CacheKey) -> Read {
        match self {
            SecondTier::Disk(disk) => {
                let (disk, key) = (Arc::clone(disk), key.clone());
                tokio::task::spawn_blocking(move || disk.get(&key))
                    .await
                    .unwrap_or(Read::Miss)
            }
            SecondTier::Object(tier) => tier.get(key).await,
        }
    }

    /// Stores an entry unless `still_wanted` says a purge made it stale
    /// (asked as late as the tier allows: under the disk index lock; just
    /// before the upload for objects).
    async fn put(
        &self,
        key: &CacheKey,
        entry: &Entry,
        still_wanted: impl Fn() -> bool + Send + 'static,
    ) -> std::io::Result<usize> {
        match self {
            SecondTier::Disk(disk) => {
                let (disk, key, entry) = (Arc::clone(disk), key.clone(), entry.clone());
                tokio::task::spawn_blocking(move || disk.put(&key, &entry, still_wanted))
                    .await
                    .map_err(std::io::Error::other)?
            }
            SecondTier::Object(tier) if still_wanted() => tier.put(key, entry).await.map(|()| 0),
            SecondTier::Object(_) => Ok(0),
        }
    }

    /// Whether an entry's relative path (`ab/<source>/<alias>/<hash>`) is named by `what`.
    fn matches(what: &Purge, rel: &Path) -> bool {
        let parts: Vec<_> = rel
            .components()
            .map(|c| c.as_os_str().to_string_lossy().into_owned())
            .collect();
        match what {
            Purge::Image(id) => parts.get(1).is_some_and(|s| s == id.as_str()),
            Purge::Alias(alias) => parts.get(2).is_some_and(|s| s == alias),
            Purge::All => true,
        }
    }

    async fn purge(&self, what: &Purge) -> usize {
        match self {
            SecondTier::Disk(disk) => {
                let (disk, what) = (Arc::clone(disk), what.clone());
                tokio::task::spawn_blocking(move || disk.purge(&what))
                    .await
                    .unwrap_or(0)
            }
            SecondTier::Object(tier) => tier.purge(|rel| SecondTier::matches(what, rel)).await,
        }
    }

    fn stats(&self) -> (usize, u64) {
        match self {
            SecondTier::Disk(disk) => disk.stats(),
            // A bucket's size is the bucket's business (lifecycle rules), not this process's.
            SecondTier::Object(_) => (0, 0),
        }
    }
}

pub struct ResultCache<E> {
    memory: Mutex<MemoryTier>,
    disk: SecondTier,
    inflight: Mutex<HashMap<String, Flight<E>>>,
    purges: Arc<Mutex<PurgeLog>>,
    /// Recent failures by key hash: until when, the key (for purges), the error.
    failures: Mutex<LruCache<String, (std::time::Instant, CacheKey, E)>>,
    metrics: Metrics,
}

impl<E: Clone + Send + Sync + Failure + 'static> ResultCache<E> {
    pub fn new(memory_budget: u64, disk: SecondTier, metrics: Metrics) -> std::io::Result<Self> {
        Ok(ResultCache {
            memory: Mutex::new(MemoryTier {
                lru: LruCache::unbounded(),
                bytes: 0,
                budget: memory_budget,
            }),
            disk,
            inflight: Mutex::new(HashMap::new()),
            purges: Arc::new(Mutex::new(PurgeLog {
                generation: 0,
                recent: std::collections::VecDeque::new(),
            })),
            failures: Mutex::new(LruCache::new(
                std::num::NonZeroUsize::new(FAILURES).expect("a positive bound"),
            )),
            metrics,
        })
    }

    /// Rebuilds the disk index (blocking; run it off the async threads).
    pub fn rebuild_disk_index(&self) -> (usize, u64, f64) {
        let result = match &self.disk {
            SecondTier::Disk(disk) => disk.rebuild(),
            SecondTier::Object(_) => (0, 0, 0.0),
        };
        self.update_gauges();
        result
    }

    fn mem(&self) -> std::sync::MutexGuard<'_, MemoryTier> {
        self.memory.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn count(&self, what: &str, tier: &str) {
        match what {
            "hit" => self.metrics.cache_hits.with_label_values(&[tier]).inc(),
            "miss" => self.metrics.cache_misses.with_label_values(&[tier]).inc(),
            _ => {}
        }
    }

    fn generation(&self) -> u64 {
        self.purges.lock().unwrap_or_else(|e| e.into_inner()).generation
    }

    /// Keeps `entry` in memory unless it is too large, or a purge since
    /// generation `since` named it.
    fn remember(&self, key: &CacheKey, entry: &Entry, since: u64) {
        let size = entry.bytes.len() as u64;
        let mut evicted = 0;
        {
            let mut mem = self.mem();
            // Checked under the memory lock: a purge logs itself before it
            // sweeps memory, so it either sees this entry or this sees it.
            if size > mem.budget || self.purges.lock().unwrap_or_else(|e| e.into_inner()).stale(key, since) {
                return;
            }
            if let Some((_, (_, old))) = mem.lru.push(key.hash.clone(), (key.clone(), entry.clone())) {
                mem.bytes -= old.bytes.len() as u64;
            }
            mem.bytes += size;
            while mem.bytes > mem.budget {
                match mem.lru.pop_lru() {
                    Some((_, (_, e))) => {
                        mem.bytes -= e.bytes.len() as u64;
                        evicted += 1;
                    }
                    None => break,
                }
            }
        }
        self.metrics
            .cache_evictions
            .with_label_values(&["memory"])
            .inc_by(evicted);
    }

    /// Returns the cached result for `key`, or runs `compute` once for all
    /// concurrent callers with the same key and stores its result in both tiers.
    pub async fn get_or_compute<F, Fut>(&self, key: &CacheKey, compute: F) -> Result<(Entry, Tier), E>
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<Entry, E>>,
    {
        if let Some((_, entry)) = self.mem().lru.get(&key.hash).cloned() {
            self.count("hit", "memory");
            return Ok((entry, Tier::Memory));
        }
        self.count("miss", "memory");
        if let Some(failure) = self.recent_failure(key) {
            self.count("hit", "failure");
            return Err(failure);
        }
        let flight: Flight<E> = Arc::clone(
            self.inflight
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .entry(key.hash.clone())
                .or_default(),
        );
        // The guard owns this request's share of the flight, so that a
        // cancelled request gives it back too.
        let guard = FlightGuard {
            inflight: &self.inflight,
            key: &key.hash,
            flight: Some(flight),
        };
        let result = guard
            .flight
            .as_ref()
            .expect("set above")
            .get_or_init(|| async {
                let since = self.generation();
                match self.disk.get(key).await {
                    Read::Hit(entry) => {
                        self.count("hit", "disk");
                        self.remember(key, &entry, since);
                        return Ok((entry, Tier::Disk));
                    }
                    Read::Corrupt => {
                        tracing::warn!(key = %key.hash, "discarded a damaged disk cache entry");
                        self.metrics.cache_corrupt.inc();
                        self.count("miss", "disk");
                    }
                    Read::Miss => self.count("miss", "disk"),
                }
                let entry = match compute().await {
                    Ok(entry) => entry,
                    Err(e) => {
                        self.remember_failure(key, &e);
                        return Err(e);
                    }
                };
                self.remember(key, &entry, since);
                let (purges, stored_key) = (Arc::clone(&self.purges), key.clone());
                let still_wanted = move || {
                    !purges
                        .lock()
                        .unwrap_or_else(|e| e.into_inner())
                        .stale(&stored_key, since)
                };
                match self.disk.put(key, &entry, still_wanted).await {
                    Ok(evicted) => self
                        .metrics
                        .cache_evictions
                        .with_label_values(&["disk"])
                        .inc_by(evicted as u64),
                    Err(err) => tracing::warn!(error = %err, "could not write a cache entry to the second tier"),
                }
                Ok((entry, Tier::Miss))
            })
            .await
            .clone();
        drop(guard);
        self.update_gauges();
        result
    }

    /// A failure remembered for `key` (by `get_or_compute` or `note_failure`)
    /// that has not expired: for answers computed outside the cache (an
    /// image's info) that must not pay for the same poison again.
    pub fn recall_failure(&self, key: &CacheKey) -> Option<E> {
        let failure = self.recent_failure(key);
        if failure.is_some() {
            self.count("hit", "failure");
        }
        failure
    }

    /// Remembers `e` for `key` when it is a failure of the input
    /// (`Failure::remember_for`).
    pub fn note_failure(&self, key: &CacheKey, e: &E) {
        self.remember_failure(key, e);
    }

    fn recent_failure(&self, key: &CacheKey) -> Option<E> {
        let mut failures = self.failures.lock().unwrap_or_else(|e| e.into_inner());
        match failures.get(&key.hash) {
            Some((until, _, e)) if *until > std::time::Instant::now() => Some(e.clone()),
            Some(_) => {
                failures.pop(&key.hash);
                None
            }
            None => None,
        }
    }

    fn remember_failure(&self, key: &CacheKey, e: &E) {
        if let Some(ttl) = e.remember_for() {
            self.failures.lock().unwrap_or_else(|e| e.into_inner()).put(
                key.hash.clone(),
                (std::time::Instant::now() + ttl, key.clone(), e.clone()),
            );
        }
    }

    /// Single-flight entries now (for tests: none may outlive its requests).
    pub fn inflight_len(&self) -> usize {
        self.inflight.lock().unwrap_or_else(|e| e.into_inner()).len()
    }

    /// Removes matching entries from both tiers; returns how many (disk + memory).
    pub async fn purge(&self, what: &Purge) -> usize {
        {
            // Logged first: results computing meanwhile will not be stored.
            let mut log = self.purges.lock().unwrap_or_else(|e| e.into_inner());
            log.generation += 1;
            let generation = log.generation;
            log.recent.push_back((generation, what.clone()));
            if log.recent.len() > PURGE_LOG {
                log.recent.pop_front();
            }
        }
        let keep = |key: &CacheKey| !what.names(key);
        {
            let mut failures = self.failures.lock().unwrap_or_else(|e| e.into_inner());
            let forget: Vec<String> = failures
                .iter()
                .filter(|(_, (_, k, _))| !keep(k))
                .map(|(h, _)| h.clone())
                .collect();
            for h in forget {
                failures.pop(&h);
            }
        }
        let memory = {
            let mut mem = self.mem();
            let victims: Vec<String> = mem
                .lru
                .iter()
                .filter(|(_, (k, _))| !keep(k))
                .map(|(h, _)| h.clone())
                .collect();
            for h in &victims {
                if let Some((_, e)) = mem.lru.pop(h) {
                    mem.bytes -= e.bytes.len() as u64;
                }
            }
            victims.len()
        };
        let disk = self.disk.purge(what).await;
        self.update_gauges();
        memory + disk
    }

    /// (memory bytes, disk bytes).
    pub fn bytes(&self) -> (u64, u64) {
        (self.mem().bytes, self.disk.stats().1)
    }

    fn update_gauges(&self) {
        let (mem_entries, mem_bytes) = {
            let mem = self.mem();
            (mem.lru.len(), mem.bytes)
        };
        let (disk_entries, disk_bytes) = self.disk.stats();
        let m = &self.metrics;
        m.cache_entries.with_label_values(&["memory"]).set(mem_entries as i64);
        m.cache_bytes.with_label_values(&["memory"]).set(mem_bytes as i64);
        m.cache_entries.with_label_values(&["disk"]).set(disk_entries as i64);
        m.cache_bytes.with_label_values(&["disk"]).set(disk_bytes as i64);
    }
}

#[cfg(test)]
mod tests;
