//! Whether the configured storage answers: what `/readyz` reports, so a load
//! balancer stops sending traffic to a replica that cannot reach its bucket.

use object_store::ObjectStoreExt;
use serde::Serialize;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// A probe result is reused this long: load balancers probe every replica
/// often, and one storage request per interval is enough.
const REUSE_FOR: Duration = Duration::from_millis(500);

/// The longest a readiness probe of object storage waits.
const PROBE_TIMEOUT: Duration = Duration::from_secs(2);

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct StorageStatus {
    /// `local` or `s3`.
    pub kind: &'static str,
    pub reachable: bool,
    /// Why not, when not.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

enum Target {
    /// The data directory must accept a write.
    Local(PathBuf),
    /// A HEAD of a key under the prefix must get an answer (found or not).
    Object {
        store: Arc<dyn object_store::ObjectStore>,
        probe: object_store::path::Path,
        timeout: Duration,
    },
}

pub struct StorageHealth {
    target: Target,
    last: Mutex<Option<(Instant, StorageStatus)>>,
    /// One probe at a time; others wait for its answer.
    probing: tokio::sync::Mutex<()>,
}

impl std::fmt::Debug for StorageHealth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StorageHealth").finish_non_exhaustive()
    }
}

impl StorageHealth {
    pub fn local(data_dir: &Path) -> StorageHealth {
        StorageHealth::new(Target::Local(data_dir.to_path_buf()))
    }

    pub fn object(store: Arc<dyn object_store::ObjectStore>, prefix: &str, timeout: Duration) -> StorageHealth {
        let prefix = prefix.trim_matches('/');
        let key = if prefix.is_empty() {
            ".readiness-probe".to_string()
        } else {
            format!("{prefix}/.readiness-probe")
        };
        StorageHealth::new(Target::Object {
            store,
            probe: object_store::path::Path::from(key),
            timeout: timeout.min(PROBE_TIMEOUT),
        })
    }

    fn new(target: Target) -> StorageHealth {
        StorageHealth {
            target,
            last: Mutex::new(None),
            probing: tokio::sync::Mutex::new(()),
        }
    }

    fn recent(&self) -> Option<StorageStatus> {
        let last = self.last.lock().unwrap_or_else(|e| e.into_inner());
        last.as_ref()
            .filter(|(at, _)| at.elapsed() < REUSE_FOR)
            .map(|(_, s)| s.clone())
    }

    /// Probes the storage, or reuses a probe made in the last half second.
    pub async fn check(&self) -> StorageStatus {
        if let Some(status) = self.recent() {
            return status;
        }
        let _one = self.probing.lock().await;
        if let Some(status) = self.recent() {
            return status;
        }
        let status = match &self.target {
            Target::Local(dir) => {
                let dir = dir.clone();
                let writable = tokio::task::spawn_blocking(move || data_dir_writable(&dir))
                    .await
                    .unwrap_or(false);
                StorageStatus {
                    kind: "local",
                    reachable: writable,
                    reason: (!writable).then(|| "the data directory does not accept writes".to_string()),
                }
            }
            Target::Object { store, probe, timeout } => {
                let answer = tokio::time::timeout(*timeout, store.head(probe)).await;
                let reason = match answer {
                    Ok(Ok(_)) | Ok(Err(object_store::Error::NotFound { .. })) => None,
                    Ok(Err(e)) => Some(format!("object storage error: {e}")),
                    Err(_) => Some(format!("object storage did not answer within {timeout:?}")),
                };
                StorageStatus {
                    kind: "s3",
                    reachable: reason.is_none(),
                    reason,
                }
            }
        };
        *self.last.lock().unwrap_or_else(|e| e.into_inner()) = Some((Instant::now(), status.clone()));
        status
    }
}

fn data_dir_writable(dir: &Path) -> bool {
    let probe = dir.join(format!(".ready-probe-{}", std::process::id()));
    let ok = std::fs::write(&probe, b"ok").is_ok();
    let _ = std::fs::remove_file(&probe);
    ok
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn an_unreachable_bucket_is_reported_with_the_reason_within_the_timeout() {
        // A port nothing listens on.
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let store = object_store::aws::AmazonS3Builder::new()
            .with_bucket_name("b")
            .with_region("r")
            .with_access_key_id("k")
            .with_secret_access_key("s")
            .with_allow_http(true)
            .with_endpoint(format!("http://127.0.0.1:{port}"))
            .build()
            .unwrap();
        let health = StorageHealth::object(Arc::new(store), "p", Duration::from_secs(1));
        let started = Instant::now();
        let status = health.check().await;
        assert!(!status.reachable);
        assert!(status.reason.unwrap().contains("object storage"));
        assert!(started.elapsed() < Duration::from_secs(5));
    }

    #[tokio::test]
    async fn a_writable_data_dir_is_reachable() {
        let dir = tempfile::tempdir().unwrap();
        let status = StorageHealth::local(dir.path()).check().await;
        assert_eq!(
            status,
            StorageStatus {
                kind: "local",
                reachable: true,
                reason: None
            }
        );
    }
}
