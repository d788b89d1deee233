//! The result tier in an S3-compatible bucket, shared by every replica:
//! objects `PREFIX/results/ab/<source>/<alias>/<hash>` in the disk tier's
//! checksummed format. A damaged object is deleted and reported as a miss.
//! Size is bounded by the bucket's lifecycle rules, not by this process.

use super::disk::{Read, decode, encode};
use super::{CacheKey, Entry};
use futures::TryStreamExt;
use object_store::path::Path as ObjectPath;
use object_store::{ObjectStore, ObjectStoreExt};
use std::path::Path;
use std::sync::Arc;

pub struct ObjectTier {
    store: Arc<dyn ObjectStore>,
    /// `PREFIX/results` (or `results`).
    root: String,
}

impl ObjectTier {
    pub fn new(store: Arc<dyn ObjectStore>, prefix: &str) -> ObjectTier {
        let prefix = prefix.trim_matches('/');
        let root = if prefix.is_empty() {
            "results".to_string()
        } else {
            format!("{prefix}/results")
        };
        ObjectTier { store, root }
    }

    fn path(&self, key: &CacheKey) -> ObjectPath {
        ObjectPath::from(format!("{}/{}", self.root, key.disk_path().to_string_lossy()))
    }

    pub async fn get(&self, key: &CacheKey) -> Read {
        let path = self.path(key);
        let bytes = match self.store.get(&path).await {
            Ok(result) => match result.bytes().await {
                Ok(bytes) => bytes,
                Err(_) => return Read::Miss,
            },
            Err(_) => return Read::Miss,
        };
        match decode(bytes.to_vec()) {
            Some(entry) => Read::Hit(entry),
            None => {
                let _ = self.store.delete(&path).await;
                Read::Corrupt
            }
        }
    }

    pub async fn put(&self, key: &CacheKey, entry: &Entry) -> std::io::Result<()> {
        self.store
            .put(&self.path(key), encode(entry).into())
            .await
            .map(|_| ())
            .map_err(std::io::Error::other)
    }

    /// Deletes every object whose path below the root `matches`.
    pub async fn purge(&self, matches: impl Fn(&Path) -> bool) -> usize {
        let root = ObjectPath::from(self.root.clone());
        let listed: Vec<object_store::ObjectMeta> = match self.store.list(Some(&root)).try_collect().await {
            Ok(listed) => listed,
            Err(e) => {
                tracing::warn!(error = %e, "could not list the result objects to purge");
                return 0;
            }
        };
        let mut purged = 0;
        for object in listed {
            let full = object.location.to_string();
            let rel = full.strip_prefix(&format!("{}/", self.root)).unwrap_or(&full);
            if matches(Path::new(rel)) && self.store.delete(&object.location).await.is_ok() {
                purged += 1;
            }
        }
        purged
    }
}
