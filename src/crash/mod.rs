//! Crash quarantine.
//!
//! A crash inside a C decoder takes the whole process, and every request in
//! flight, with it; a client's retry then brings the same input to the next
//! replica. So each worker names its inputs in the crash journal
//! (`journal`) before decoding, and at start-up the inputs that were being
//! decoded when the previous process died of a fatal signal get a *strike*:
//! a small object under `quarantine/<id>/` in the shared store (the S3 bucket
//! when there is one, so every replica learns; `data_dir/quarantine`
//! otherwise). An input with `after_crashes` strikes is refused with 422
//! `quarantined` before it reaches a worker. Every replica re-reads the
//! strikes every `quarantine.refresh`.
//!
//! An unclean stop without a fatal signal (SIGKILL, an OOM kill) gives no
//! strike: nothing says the input was at fault.

pub mod journal;

use crate::config::QuarantineSettings;
use crate::metrics::Metrics;
use futures::TryStreamExt;
pub use journal::{InFlight, Journal, PreviousRun};
use object_store::ObjectStore;
use object_store::ObjectStoreExt;
use object_store::path::Path as ObjectPath;
use serde::Serialize;
use std::collections::{BTreeMap, HashSet};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// One crash an input was in flight at.
#[derive(Debug, Clone, Serialize, serde::Deserialize, PartialEq)]
pub struct Strike {
    /// The quarantined input's content id.
    pub id: String,
    /// Milliseconds since the epoch when the crash was found (at start-up).
    pub found_at_ms: u64,
    /// The fatal signal, e.g. 11 (SIGSEGV) or 6 (SIGABRT).
    pub signal: i32,
    /// The host (pod) that crashed.
    pub host: String,
}

/// An input and its strikes, as `GET /admin/quarantine` lists them.
#[derive(Debug, Clone, Serialize)]
pub struct Suspect {
    pub id: String,
    pub crashes: usize,
    pub quarantined: bool,
}

/// Proven inputs remembered at most (64-character ids: about 8 MiB).
const PROVEN_MAX: usize = 65_536;

pub struct Quarantine {
    journal: Journal,
    store: Arc<dyn ObjectStore>,
    prefix: ObjectPath,
    after_crashes: usize,
    /// Ids with at least `after_crashes` strikes.
    refused: RwLock<HashSet<String>>,
    /// Strikes not yet written (the store was unreachable).
    pending: Mutex<Vec<Strike>>,
    /// Inputs that have decoded successfully (in this process, or stored
    /// originals, decoded when uploaded): a crash on a helper thread is not
    /// blamed on them. Bounded: emptied when full.
    proven: RwLock<HashSet<String>>,
    metrics: Metrics,
}

impl std::fmt::Debug for Quarantine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Quarantine")
            .field("journal", &self.journal)
            .field("prefix", &self.prefix)
            .finish()
    }
}

impl Quarantine {
    /// Opens the journal in `data_dir`, turns what the previous process left
    /// in it into strikes, and reads every strike once. `store` and `prefix`
    /// say where strikes live.
    pub async fn open(
        data_dir: &std::path::Path,
        store: Arc<dyn ObjectStore>,
        prefix: &str,
        settings: &QuarantineSettings,
        metrics: Metrics,
    ) -> std::io::Result<Arc<Quarantine>> {
        let (journal, previous) = Journal::open(data_dir)?;
        // Exported at 0 from the start, so alerts see the series.
        for kind in ["signal", "unclean"] {
            metrics.crashes_found.with_label_values(&[kind]);
        }
        let prefix = if prefix.trim_matches('/').is_empty() {
            ObjectPath::from("quarantine")
        } else {
            ObjectPath::from(format!("{}/quarantine", prefix.trim_matches('/')))
        };
        let quarantine = Arc::new(Quarantine {
            journal,
            store,
            prefix,
            after_crashes: settings.after_crashes.max(1) as usize,
            refused: RwLock::new(HashSet::new()),
            pending: Mutex::new(Vec::new()),
            proven: RwLock::new(HashSet::new()),
            metrics,
        });
        quarantine.record_previous_run(&previous);
        if let Err(e) = quarantine.refresh().await {
            tracing::warn!(error = %e, "cannot read the quarantine list yet; retrying in the background");
        }
        Ok(quarantine)
    }

    fn record_previous_run(&self, previous: &PreviousRun) {
        let suspects = previous.suspects();
        match previous.crash {
            Some((_, signal)) if previous.on_helper_thread() => {
                self.metrics.crashes_found.with_label_values(&["signal"]).inc();
                tracing::error!(
                    signal,
                    suspects = ?suspects,
                    in_flight = previous.in_flight.len(),
                    "the previous process died of a fatal signal on a decoder's helper thread; \
                     the inputs in flight that never decoded successfully get a strike"
                );
            }
            Some((_, signal)) => {
                self.metrics.crashes_found.with_label_values(&["signal"]).inc();
                tracing::error!(
                    signal,
                    suspects = ?suspects,
                    "the previous process died of a fatal signal; the inputs it was decoding get a strike"
                );
            }
            None if previous.unclean() => {
                self.metrics.crashes_found.with_label_values(&["unclean"]).inc();
                tracing::warn!(
                    in_flight = previous.in_flight.len(),
                    "the previous process stopped uncleanly (SIGKILL or OOM kill?) with jobs in flight; \
                     no input is blamed"
                );
            }
            None => {}
        }
        let host = std::env::var("HOSTNAME").unwrap_or_else(|_| "unknown".into());
        let found_at_ms = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default()
            .as_millis() as u64;
        let signal = previous.crash.map(|(_, s)| s).unwrap_or(0);
        let mut pending = self.pending.lock().unwrap_or_else(|e| e.into_inner());
        pending.extend(suspects.into_iter().map(|id| Strike {
            id,
            found_at_ms,
            signal,
            host: host.clone(),
        }));
    }

    /// Marks `ids` in flight on this (worker) thread until the guard drops.
    pub fn enter<'a>(&self, ids: impl IntoIterator<Item = &'a str>) -> InFlight {
        let proven = self.proven.read().unwrap_or_else(|e| e.into_inner());
        self.journal.enter(ids.into_iter().map(|id| (id, proven.contains(id))))
    }

    /// Records that `id` decoded successfully.
    pub fn prove(&self, id: &str) {
        if self.proven.read().unwrap_or_else(|e| e.into_inner()).contains(id) {
            return;
        }
        let mut proven = self.proven.write().unwrap_or_else(|e| e.into_inner());
        if proven.len() >= PROVEN_MAX {
            proven.clear();
        }
        proven.insert(id.to_string());
    }

    /// Whether `id` is refused.
    pub fn is_quarantined(&self, id: &str) -> bool {
        self.refused.read().unwrap_or_else(|e| e.into_inner()).contains(id)
    }

    /// Writes pending strikes, then reads every strike and rebuilds the set
    /// of refused inputs. Returns how many are refused.
    pub async fn refresh(&self) -> Result<usize, object_store::Error> {
        let pending = std::mem::take(&mut *self.pending.lock().unwrap_or_else(|e| e.into_inner()));
        for (n, strike) in pending.iter().enumerate() {
            if let Err(e) = self.write(strike).await {
                let mut back = self.pending.lock().unwrap_or_else(|e| e.into_inner());
                back.extend(pending[n..].iter().cloned());
                return Err(e);
            }
        }
        let counts = self.counts().await?;
        let refused: HashSet<String> = counts
            .into_iter()
            .filter(|(_, n)| *n >= self.after_crashes)
            .map(|(id, _)| id)
            .collect();
        let n = refused.len();
        let mut set = self.refused.write().unwrap_or_else(|e| e.into_inner());
        for id in refused.difference(&set) {
            tracing::error!(id = %id, "input quarantined: it was being decoded at repeated crashes");
        }
        *set = refused;
        self.metrics.quarantined.set(n as i64);
        Ok(n)
    }

    async fn write(&self, strike: &Strike) -> Result<(), object_store::Error> {
        let name = format!(
            "{}-{}-{}.json",
            strike.found_at_ms,
            std::process::id(),
            hex::encode(rand_bytes())
        );
        let path = self.prefix.clone().join(strike.id.as_str()).join(name);
        let body = serde_json::to_vec(strike).expect("a strike serialises");
        self.store.put(&path, body.into()).await?;
        tracing::warn!(id = %strike.id, signal = strike.signal, "crash strike recorded");
        Ok(())
    }

    /// Strikes per input id.
    async fn counts(&self) -> Result<BTreeMap<String, usize>, object_store::Error> {
        let mut counts = BTreeMap::new();
        let mut listing = self.store.list(Some(&self.prefix));
        while let Some(meta) = listing.try_next().await? {
            let mut parts = meta.location.prefix_match(&self.prefix).into_iter().flatten();
            if let Some(id) = parts.next().and_then(|p| crate::storage::ImageId::parse(p.as_ref())) {
                *counts.entry(id.to_string()).or_insert(0) += 1;
            }
        }
        Ok(counts)
    }

    /// Every input with a strike.
    pub async fn list(&self) -> Result<Vec<Suspect>, object_store::Error> {
        Ok(self
            .counts()
            .await?
            .into_iter()
            .map(|(id, crashes)| Suspect {
                quarantined: crashes >= self.after_crashes,
                id,
                crashes,
            })
            .collect())
    }

    /// Forgets `id`'s strikes (an operator decided it is safe, e.g. after
    /// upgrading the decoder). Other replicas follow at their next refresh.
    pub async fn release(&self, id: &str) -> Result<usize, object_store::Error> {
        let dir = self.prefix.clone().join(id);
        let found: Vec<ObjectPath> = self.store.list(Some(&dir)).map_ok(|m| m.location).try_collect().await?;
        for path in &found {
            self.store.delete(path).await?;
        }
        self.refused.write().unwrap_or_else(|e| e.into_inner()).remove(id);
        self.metrics
            .quarantined
            .set(self.refused.read().unwrap_or_else(|e| e.into_inner()).len() as i64);
        Ok(found.len())
    }

    /// Refreshes every `every` in the background, for as long as the
    /// quarantine exists.
    pub fn spawn_refresh(self: &Arc<Self>, every: Duration) {
        let weak = Arc::downgrade(self);
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(every);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            tick.tick().await;
            loop {
                tick.tick().await;
                let Some(q) = weak.upgrade() else { break };
                if let Err(e) = q.refresh().await {
                    tracing::warn!(error = %e, "cannot refresh the quarantine list");
                }
            }
        });
    }
}

fn rand_bytes() -> [u8; 6] {
    use std::hash::{BuildHasher, Hasher};
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u128(
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default()
            .as_nanos(),
    );
    let v = h.finish().to_le_bytes();
    [v[0], v[1], v[2], v[3], v[4], v[5]]
}

/// Test-only hooks that make a worker crash or hang on a marker input, so the
/// quarantine can be tested end to end. Compiled out of release builds, and
/// inert unless their environment variables are set.
#[cfg(debug_assertions)]
pub fn test_hooks(input: &[u8]) {
    let contains = |marker: &str| !marker.is_empty() && input.windows(marker.len()).any(|w| w == marker.as_bytes());
    if let Ok(marker) = std::env::var("IMAGINATOR_TEST_ABORT_MARKER")
        && contains(&marker)
    {
        tracing::error!("test hook: aborting on the marker input");
        std::process::abort();
    }
    // A crash on a thread that holds no journal slot, as a decoder's helper
    // thread would crash, while this job stays in flight.
    if let Ok(marker) = std::env::var("IMAGINATOR_TEST_HELPER_ABORT_MARKER")
        && contains(&marker)
    {
        tracing::error!("test hook: aborting on a helper thread of the marker input's job");
        std::thread::spawn(|| {
            std::thread::sleep(Duration::from_millis(300));
            std::process::abort();
        });
        std::thread::sleep(Duration::from_secs(5));
    }
    if let Ok(marker) = std::env::var("IMAGINATOR_TEST_HANG_MARKER")
        && contains(&marker)
    {
        let seconds = std::env::var("IMAGINATOR_TEST_HANG_SECONDS")
            .ok()
            .and_then(|s| s.parse().ok())
            .unwrap_or(60);
        tracing::warn!(seconds, "test hook: hanging on the marker input");
        std::thread::sleep(Duration::from_secs(seconds));
    }
}

#[cfg(not(debug_assertions))]
#[inline(always)]
pub fn test_hooks(_input: &[u8]) {}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings() -> QuarantineSettings {
        QuarantineSettings::default()
    }

    const A: &str = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";

    #[tokio::test]
    async fn two_crashes_quarantine_an_input_and_release_forgets_them() {
        let data = tempfile::tempdir().unwrap();
        let shared = tempfile::tempdir().unwrap();
        let store: Arc<dyn ObjectStore> =
            Arc::new(object_store::local::LocalFileSystem::new_with_prefix(shared.path()).unwrap());
        let crash = PreviousRun {
            crash: Some((5, libc::SIGSEGV)),
            in_flight: vec![(5, vec![A.to_string()])],
            proven: Vec::new(),
        };
        let q = Quarantine::open(data.path(), Arc::clone(&store), "", &settings(), Metrics::new())
            .await
            .unwrap();
        q.record_previous_run(&crash);
        q.refresh().await.unwrap();
        assert!(!q.is_quarantined(A), "one crash is not enough");
        // An unclean stop without a signal gives no strike.
        q.record_previous_run(&PreviousRun {
            crash: None,
            in_flight: vec![(5, vec![A.to_string()])],
            proven: Vec::new(),
        });
        q.refresh().await.unwrap();
        assert!(!q.is_quarantined(A));
        q.record_previous_run(&crash);
        assert_eq!(q.refresh().await.unwrap(), 1);
        assert!(q.is_quarantined(A));

        // Another replica sharing the store learns it.
        let other_data = tempfile::tempdir().unwrap();
        let other = Quarantine::open(other_data.path(), store, "", &settings(), Metrics::new())
            .await
            .unwrap();
        assert!(other.is_quarantined(A));
        assert_eq!(other.list().await.unwrap()[0].crashes, 2);

        assert_eq!(q.release(A).await.unwrap(), 2);
        assert!(!q.is_quarantined(A));
        other.refresh().await.unwrap();
        assert!(!other.is_quarantined(A));
    }
}
