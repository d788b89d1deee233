//! Originals: content-addressed (the id is the SHA-256 of the bytes) and
//! written atomically (temporary file, fsync, rename, fsync of the directory),
//! so after a crash at any point a reader sees the whole original or none.

mod health;
mod known;
pub use health::{StorageHealth, StorageStatus};
pub use known::Known;

use crate::pipeline::format::ImageFormat;
use bytes::Bytes;
use object_store::ObjectStoreExt;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::fmt;
use std::io::Write;
use std::path::{Path, PathBuf};

/// Inputs up to this size are hashed where they are (a few hundred
/// microseconds at most).
const HASH_INLINE_MAX: usize = 256 << 10;

/// The id of an original: 64 lowercase hex digits of its SHA-256.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ImageId(String);

impl ImageId {
    pub fn of(bytes: &[u8]) -> ImageId {
        ImageId(hex::encode(Sha256::digest(bytes)))
    }

    /// `of`, computed on a blocking thread when `bytes` are large (SHA-256
    /// of 32 MiB takes about 20 ms: too long to hold an async worker).
    pub async fn of_shared(bytes: &bytes::Bytes) -> ImageId {
        if bytes.len() < HASH_INLINE_MAX {
            return ImageId::of(bytes);
        }
        let owned = bytes.clone();
        match tokio::task::spawn_blocking(move || ImageId::of(&owned)).await {
            Ok(id) => id,
            // Only if the runtime is shutting down: hash here.
            Err(_) => ImageId::of(bytes),
        }
    }

    pub fn parse(text: &str) -> Option<ImageId> {
        (text.len() == 64 && text.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b)))
            .then(|| ImageId(text.to_string()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// Two-level fan-out so no directory holds millions of entries.
    pub fn shard(&self) -> &str {
        &self.0[..2]
    }
}

impl fmt::Display for ImageId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// What is known of an original without decoding it; also the upload answer.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct OriginalMeta {
    pub id: String,
    pub format: ImageFormat,
    pub width: u32,
    pub height: u32,
    pub bytes: u64,
}

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("storage I/O failed: {0}")]
    Io(#[from] std::io::Error),
    #[error("stored metadata is damaged: {0}")]
    Meta(String),
    #[error("object storage failed: {0}")]
    Object(#[from] object_store::Error),
}

/// An original's bytes, read while they are sent.
pub type BlobStream = futures::stream::BoxStream<'static, Result<Bytes, std::io::Error>>;

/// The originals store the service was configured with.
#[derive(Clone, Debug)]
pub enum Originals {
    Local(LocalOriginals),
    Object(ObjectOriginals),
}

async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, StoreError> + Send + 'static,
) -> Result<T, StoreError> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| StoreError::Io(std::io::Error::other(e)))?
}

impl Originals {
    pub async fn meta(&self, id: &ImageId) -> Result<Option<OriginalMeta>, StoreError> {
        match self {
            Originals::Local(store) => {
                let (store, id) = (store.clone(), id.clone());
                blocking(move || store.meta(&id)).await
            }
            Originals::Object(store) => store.meta(id).await,
        }
    }

    pub async fn get(&self, id: &ImageId) -> Result<Option<(OriginalMeta, Bytes)>, StoreError> {
        match self {
            Originals::Local(store) => {
                let (store, id) = (store.clone(), id.clone());
                blocking(move || store.get(&id)).await
            }
            Originals::Object(store) => store.get(id).await,
        }
    }

    /// The original's bytes as they are read, for sending: a buffer at a
    /// time in memory, whatever the size. `None` when it is gone.
    pub async fn stream(&self, id: &ImageId) -> Result<Option<BlobStream>, StoreError> {
        use futures::{StreamExt, TryStreamExt};
        match self {
            Originals::Local(store) => match tokio::fs::File::open(store.blob_path(id)).await {
                Ok(file) => Ok(Some(tokio_util::io::ReaderStream::new(file).boxed())),
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
                Err(e) => Err(e.into()),
            },
            Originals::Object(store) => match store.store.get(&store.path(id, "")).await {
                Ok(result) => Ok(Some(result.into_stream().map_err(std::io::Error::other).boxed())),
                Err(object_store::Error::NotFound { .. }) => Ok(None),
                Err(e) => Err(e.into()),
            },
        }
    }

    pub async fn put(&self, meta: &OriginalMeta, bytes: Bytes) -> Result<bool, StoreError> {
        match self {
            Originals::Local(store) => {
                let (store, meta) = (store.clone(), meta.clone());
                blocking(move || store.put(&meta, &bytes)).await
            }
            Originals::Object(store) => store.put(meta, bytes).await,
        }
    }

    pub async fn delete(&self, id: &ImageId) -> Result<bool, StoreError> {
        match self {
            Originals::Local(store) => {
                let (store, id) = (store.clone(), id.clone());
                blocking(move || store.delete(&id)).await
            }
            Originals::Object(store) => store.delete(id).await,
        }
    }

    /// The cached `GET /images/{id}/info` answer stored beside an original.
    pub async fn info(&self, id: &ImageId) -> Result<Option<Bytes>, StoreError> {
        match self {
            Originals::Local(local) => {
                let (local, id) = (local.clone(), id.clone());
                blocking(move || local.info(&id)).await
            }
            Originals::Object(object) => object.read(&object.path(id, ".info.json")).await,
        }
    }

    /// Stores the `info` answer beside an original (written whole, or not at all).
    pub async fn put_info(&self, id: &ImageId, json: Bytes) -> Result<(), StoreError> {
        match self {
            Originals::Local(local) => {
                let (local, id) = (local.clone(), id.clone());
                blocking(move || local.put_info(&id, &json)).await
            }
            Originals::Object(object) => {
                object.store.put(&object.path(id, ".info.json"), json.into()).await?;
                Ok(())
            }
        }
    }
}

/// Originals in an S3-compatible bucket, under `PREFIX/originals/`. Each
/// object is written whole by the server (a PUT is atomic), metadata first,
/// so the blob's presence still marks a complete original.
#[derive(Clone, Debug)]
pub struct ObjectOriginals {
    store: std::sync::Arc<dyn object_store::ObjectStore>,
    prefix: String,
}

impl ObjectOriginals {
    pub fn new(store: std::sync::Arc<dyn object_store::ObjectStore>, prefix: &str) -> ObjectOriginals {
        ObjectOriginals {
            store,
            prefix: prefix.trim_matches('/').to_string(),
        }
    }

    fn path(&self, id: &ImageId, suffix: &str) -> object_store::path::Path {
        let key = format!("originals/{}/{id}{suffix}", id.shard());
        if self.prefix.is_empty() {
            object_store::path::Path::from(key)
        } else {
            object_store::path::Path::from(format!("{}/{key}", self.prefix))
        }
    }

    async fn read(&self, path: &object_store::path::Path) -> Result<Option<Bytes>, StoreError> {
        match self.store.get(path).await {
            Ok(result) => Ok(Some(result.bytes().await?)),
            Err(object_store::Error::NotFound { .. }) => Ok(None),
            Err(e) => Err(e.into()),
        }
    }

    pub async fn meta(&self, id: &ImageId) -> Result<Option<OriginalMeta>, StoreError> {
        match self.store.head(&self.path(id, "")).await {
            Ok(_) => {}
            Err(object_store::Error::NotFound { .. }) => return Ok(None),
            Err(e) => return Err(e.into()),
        }
        match self.read(&self.path(id, ".json")).await? {
            Some(json) => serde_json::from_slice(&json)
                .map(Some)
                .map_err(|e| StoreError::Meta(e.to_string())),
            None => Ok(None),
        }
    }

    pub async fn get(&self, id: &ImageId) -> Result<Option<(OriginalMeta, Bytes)>, StoreError> {
        let Some(meta) = self.meta(id).await? else {
            return Ok(None);
        };
        Ok(self.read(&self.path(id, "")).await?.map(|bytes| (meta, bytes)))
    }

    pub async fn put(&self, meta: &OriginalMeta, bytes: Bytes) -> Result<bool, StoreError> {
        let id = ImageId::parse(&meta.id).ok_or_else(|| StoreError::Meta("bad id".into()))?;
        if self.meta(&id).await?.is_some() {
            return Ok(false);
        }
        let json = serde_json::to_vec(meta).map_err(|e| StoreError::Meta(e.to_string()))?;
        self.store.put(&self.path(&id, ".json"), json.into()).await?;
        self.store.put(&self.path(&id, ""), bytes.into()).await?;
        Ok(true)
    }

    pub async fn delete(&self, id: &ImageId) -> Result<bool, StoreError> {
        let existed = self.meta(id).await?.is_some();
        for suffix in ["", ".json", ".info.json"] {
            match self.store.delete(&self.path(id, suffix)).await {
                Ok(()) | Err(object_store::Error::NotFound { .. }) => {}
                Err(e) => return Err(e.into()),
            }
        }
        Ok(existed)
    }
}

/// Writes `bytes` to `path` so that `path` never holds a partial file:
/// a unique temporary file in `tmp_dir` (same file system), fsync, rename,
/// fsync of the parent directory.
pub fn write_atomic(tmp_dir: &Path, path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    persist(write_temp(tmp_dir, bytes)?, path)
}

/// The first half of `write_atomic`: `bytes` in a new temporary file in
/// `tmp_dir`, on disk (fsynced). Dropping it removes the file.
pub fn write_temp(tmp_dir: &Path, bytes: &[u8]) -> std::io::Result<tempfile::NamedTempFile> {
    let mut tmp = tempfile::Builder::new().suffix(".tmp").tempfile_in(tmp_dir)?;
    tmp.write_all(bytes)?;
    tmp.as_file().sync_all()?;
    Ok(tmp)
}

/// The second half: moves a temporary file into place (creating its
/// directory) and fsyncs the directory.
pub fn persist(tmp: tempfile::NamedTempFile, path: &Path) -> std::io::Result<()> {
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent)?;
    }
    tmp.persist(path).map_err(|e| e.error)?;
    if let Some(parent) = path.parent() {
        std::fs::File::open(parent)?.sync_all()?;
    }
    Ok(())
}

/// Originals on the local disk, under `DATA_DIR/originals/`. Blocking.
#[derive(Clone, Debug)]
pub struct LocalOriginals {
    root: PathBuf,
    tmp: PathBuf,
}

impl LocalOriginals {
    /// Opens (creating) the store and removes temporary files a crash left behind.
    pub fn open(data_dir: &Path) -> std::io::Result<LocalOriginals> {
        let root = data_dir.join("originals");
        let tmp = data_dir.join("tmp");
        std::fs::create_dir_all(&root)?;
        std::fs::create_dir_all(&tmp)?;
        // Temporary files a crash left behind, and purged cache directories
        // that were not deleted yet.
        for entry in std::fs::read_dir(&tmp)?.flatten() {
            let path = entry.path();
            if path.is_dir() {
                let _ = std::fs::remove_dir_all(&path);
            } else {
                let _ = std::fs::remove_file(&path);
            }
        }
        Ok(LocalOriginals { root, tmp })
    }

    pub fn tmp_dir(&self) -> &Path {
        &self.tmp
    }

    fn blob_path(&self, id: &ImageId) -> PathBuf {
        self.root.join(id.shard()).join(id.as_str())
    }

    fn meta_path(&self, id: &ImageId) -> PathBuf {
        self.root.join(id.shard()).join(format!("{id}.json"))
    }

    fn info_path(&self, id: &ImageId) -> PathBuf {
        self.root.join(id.shard()).join(format!("{id}.info.json"))
    }

    pub fn info(&self, id: &ImageId) -> Result<Option<Bytes>, StoreError> {
        match std::fs::read(self.info_path(id)) {
            Ok(bytes) => Ok(Some(Bytes::from(bytes))),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(e.into()),
        }
    }

    pub fn put_info(&self, id: &ImageId, json: &[u8]) -> Result<(), StoreError> {
        write_atomic(&self.tmp, &self.info_path(id), json)?;
        Ok(())
    }

    /// The metadata of a stored original, if the original is there.
    pub fn meta(&self, id: &ImageId) -> Result<Option<OriginalMeta>, StoreError> {
        if !self.blob_path(id).is_file() {
            return Ok(None);
        }
        match std::fs::read(self.meta_path(id)) {
            Ok(bytes) => serde_json::from_slice(&bytes)
                .map(Some)
                .map_err(|e| StoreError::Meta(e.to_string())),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(e.into()),
        }
    }

    pub fn get(&self, id: &ImageId) -> Result<Option<(OriginalMeta, Bytes)>, StoreError> {
        let Some(meta) = self.meta(id)? else { return Ok(None) };
        match std::fs::read(self.blob_path(id)) {
            Ok(bytes) => Ok(Some((meta, Bytes::from(bytes)))),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(e.into()),
        }
    }

    /// Stores an original; `false` when it was already there (same id, same bytes).
    /// The metadata goes first and the blob last: the blob's presence is what
    /// makes an original visible, so a crash in between leaves nothing visible.
    pub fn put(&self, meta: &OriginalMeta, bytes: &[u8]) -> Result<bool, StoreError> {
        let id = ImageId::parse(&meta.id).ok_or_else(|| StoreError::Meta("bad id".into()))?;
        if self.meta(&id)?.is_some() {
            return Ok(false);
        }
        let json = serde_json::to_vec(meta).map_err(|e| StoreError::Meta(e.to_string()))?;
        write_atomic(&self.tmp, &self.meta_path(&id), &json)?;
        write_atomic(&self.tmp, &self.blob_path(&id), bytes)?;
        Ok(true)
    }

    /// Removes an original; `false` when there was none. The blob goes first.
    pub fn delete(&self, id: &ImageId) -> Result<bool, StoreError> {
        let existed = match std::fs::remove_file(self.blob_path(id)) {
            Ok(()) => true,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => false,
            Err(e) => return Err(e.into()),
        };
        let _ = std::fs::remove_file(self.meta_path(id));
        let _ = std::fs::remove_file(self.info_path(id));
        Ok(existed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn meta(bytes: &[u8]) -> OriginalMeta {
        OriginalMeta {
            id: ImageId::of(bytes).to_string(),
            format: ImageFormat::Png,
            width: 1,
            height: 1,
            bytes: bytes.len() as u64,
        }
    }

    #[tokio::test]
    async fn large_inputs_hashed_off_the_runtime_get_the_same_id() {
        for len in [10, HASH_INLINE_MAX + 1, 3 << 20] {
            let bytes = bytes::Bytes::from((0..len).map(|i| (i % 251) as u8).collect::<Vec<u8>>());
            assert_eq!(ImageId::of_shared(&bytes).await, ImageId::of(&bytes), "{len} bytes");
        }
    }

    #[test]
    fn ids_are_sha256_hex_and_parse_strictly() {
        let id = ImageId::of(b"abc");
        assert_eq!(
            id.as_str(),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
        assert_eq!(ImageId::parse(id.as_str()), Some(id));
        assert_eq!(ImageId::parse("../../etc/passwd"), None);
        assert_eq!(ImageId::parse(&"A".repeat(64)), None);
    }

    #[test]
    fn put_is_idempotent_and_get_returns_the_exact_bytes() {
        let dir = tempfile::tempdir().unwrap();
        let store = LocalOriginals::open(dir.path()).unwrap();
        let bytes = b"\x89PNG pretend".to_vec();
        assert!(store.put(&meta(&bytes), &bytes).unwrap());
        assert!(!store.put(&meta(&bytes), &bytes).unwrap());
        let (m, got) = store.get(&ImageId::of(&bytes)).unwrap().unwrap();
        assert_eq!(got.as_ref(), bytes.as_slice());
        assert_eq!(m, meta(&bytes));
        assert!(store.delete(&ImageId::of(&bytes)).unwrap());
        assert!(store.get(&ImageId::of(&bytes)).unwrap().is_none());
        assert!(!store.delete(&ImageId::of(&bytes)).unwrap());
    }

    #[test]
    fn metadata_without_a_blob_is_invisible_and_leftover_temporaries_are_removed() {
        let dir = tempfile::tempdir().unwrap();
        let store = LocalOriginals::open(dir.path()).unwrap();
        let bytes = b"half written".to_vec();
        let m = meta(&bytes);
        let id = ImageId::of(&bytes);
        // A crash after the metadata and before the blob:
        write_atomic(store.tmp_dir(), &store.meta_path(&id), &serde_json::to_vec(&m).unwrap()).unwrap();
        std::fs::write(store.tmp_dir().join("x.tmp"), b"partial").unwrap();
        assert!(store.get(&id).unwrap().is_none());
        let reopened = LocalOriginals::open(dir.path()).unwrap();
        assert_eq!(std::fs::read_dir(reopened.tmp_dir()).unwrap().count(), 0);
        assert!(reopened.put(&m, &bytes).unwrap(), "the upload can be retried");
    }
}
