//! The disk tier: one file per entry, written atomically, checked on read
//! (magic, length and CRC-32 of the payload: a torn or corrupted entry is
//! deleted and reported as a miss, never served), bounded in bytes with
//! least-recently-used eviction. The index is rebuilt at start-up from file
//! sizes and modification times (a disk hit refreshes the time).
//!
//! Files enter and leave under the index lock (the rename that publishes an
//! entry, the removal that evicts one), so an eviction never deletes a file
//! that was just rewritten. Purges work on the directories themselves, not
//! only the index, so they also reach entries the start-up rebuild has not
//! indexed yet.

use super::{CacheKey, Entry, Purge};
use crate::pipeline::format::ImageFormat;
use crate::storage::{persist, write_temp};
use bytes::Bytes;
use lru::LruCache;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Instant, SystemTime};

const MAGIC: &[u8; 8] = b"IMGCACH1";
/// magic, crc32 (4), payload length (8), format name length (1).
const HEADER: usize = 8 + 4 + 8 + 1;

pub struct DiskTier {
    root: PathBuf,
    tmp: PathBuf,
    budget: u64,
    index: Mutex<Index>,
    /// Purges so far: a rebuild that saw a purge happen re-checks the files
    /// it found before indexing them.
    purges: AtomicU64,
}

struct Index {
    /// Relative path -> size in bytes, most recently used last.
    lru: LruCache<PathBuf, u64>,
    bytes: u64,
}

/// Outcome of a read.
pub enum Read {
    Hit(Entry),
    Miss,
    /// The file was damaged and has been removed.
    Corrupt,
}

pub fn encode(entry: &Entry) -> Vec<u8> {
    let name = entry.format.name().as_bytes();
    let mut out = Vec::with_capacity(HEADER + name.len() + entry.bytes.len());
    out.extend_from_slice(MAGIC);
    out.extend_from_slice(&crc32fast::hash(&entry.bytes).to_le_bytes());
    out.extend_from_slice(&(entry.bytes.len() as u64).to_le_bytes());
    out.push(name.len() as u8);
    out.extend_from_slice(name);
    out.extend_from_slice(&entry.bytes);
    out
}

pub fn decode(mut file: Vec<u8>) -> Option<Entry> {
    if file.len() < HEADER || &file[..8] != MAGIC {
        return None;
    }
    let crc = u32::from_le_bytes(file[8..12].try_into().ok()?);
    let len = u64::from_le_bytes(file[12..20].try_into().ok()?) as usize;
    let name_len = file[20] as usize;
    let start = HEADER + name_len;
    if file.len() != start.checked_add(len)? {
        return None;
    }
    let format = ImageFormat::parse(std::str::from_utf8(&file[HEADER..start]).ok()?)?;
    let payload = file.split_off(start);
    (crc32fast::hash(&payload) == crc).then(|| Entry {
        bytes: Bytes::from(payload),
        format,
    })
}

impl DiskTier {
    pub fn new(root: PathBuf, tmp: PathBuf, budget: u64) -> std::io::Result<DiskTier> {
        std::fs::create_dir_all(&root)?;
        Ok(DiskTier {
            root,
            tmp,
            budget,
            index: Mutex::new(Index {
                lru: LruCache::unbounded(),
                bytes: 0,
            }),
            purges: AtomicU64::new(0),
        })
    }

    fn index(&self) -> std::sync::MutexGuard<'_, Index> {
        self.index.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Rebuilds the index from the files on disk, oldest first, then evicts
    /// down to the budget. Returns (entries, bytes, seconds taken). Blocking.
    pub fn rebuild(&self) -> (usize, u64, f64) {
        let started = Instant::now();
        let purges_before = self.purges.load(Ordering::SeqCst);
        let mut found: Vec<(SystemTime, PathBuf, u64)> = Vec::new();
        let mut stack = vec![self.root.clone()];
        while let Some(dir) = stack.pop() {
            let Ok(entries) = std::fs::read_dir(&dir) else { continue };
            for entry in entries.flatten() {
                let Ok(kind) = entry.file_type() else { continue };
                if kind.is_dir() {
                    stack.push(entry.path());
                } else if let Ok(meta) = entry.metadata() {
                    let rel = entry.path().strip_prefix(&self.root).map(Path::to_path_buf);
                    if let Ok(rel) = rel {
                        found.push((meta.modified().unwrap_or(SystemTime::UNIX_EPOCH), rel, meta.len()));
                    }
                }
            }
        }
        found.sort_unstable_by_key(|f| f.0);
        {
            let mut index = self.index();
            // A purge during the scan removed files the scan may have seen.
            let recheck = self.purges.load(Ordering::SeqCst) != purges_before;
            for (_, rel, size) in found {
                if recheck && !self.root.join(&rel).is_file() {
                    continue;
                }
                // Entries already indexed by live traffic during the scan are newer.
                if !index.lru.contains(&rel) {
                    index.bytes += size;
                    index.lru.push(rel.clone(), size);
                    index.lru.demote(&rel);
                }
            }
        }
        self.evict();
        let index = self.index();
        (index.lru.len(), index.bytes, started.elapsed().as_secs_f64())
    }

    pub fn get(&self, key: &CacheKey) -> Read {
        let rel = key.disk_path();
        let path = self.root.join(&rel);
        let file = match std::fs::read(&path) {
            Ok(file) => file,
            Err(_) => return Read::Miss,
        };
        let size = file.len() as u64;
        match decode(file) {
            Some(entry) => {
                let _ = std::fs::File::options()
                    .write(true)
                    .open(&path)
                    .and_then(|f| f.set_modified(SystemTime::now()));
                let mut index = self.index();
                if index.lru.get(&rel).is_none() {
                    index.bytes += size;
                    index.lru.push(rel, size);
                }
                Read::Hit(entry)
            }
            None => {
                let _ = std::fs::remove_file(&path);
                let mut index = self.index();
                if let Some(size) = index.lru.pop(&rel) {
                    index.bytes -= size;
                }
                Read::Corrupt
            }
        }
    }

    /// Writes an entry, unless `still_wanted` (asked under the index lock,
    /// just before the entry is published) says a purge has made it stale.
    /// Returns the number of entries evicted to stay in budget.
    pub fn put(&self, key: &CacheKey, entry: &Entry, still_wanted: impl Fn() -> bool) -> std::io::Result<usize> {
        let rel = key.disk_path();
        let data = encode(entry);
        if data.len() as u64 > self.budget {
            return Ok(0);
        }
        // The slow part (write and fsync) outside the lock.
        let tmp = write_temp(&self.tmp, &data)?;
        {
            let mut index = self.index();
            if !still_wanted() {
                return Ok(0);
            }
            persist(tmp, &self.root.join(&rel))?;
            if let Some(old) = index.lru.put(rel, data.len() as u64) {
                index.bytes -= old;
            }
            index.bytes += data.len() as u64;
        }
        Ok(self.evict())
    }

    fn evict(&self) -> usize {
        let mut evicted = 0;
        let mut index = self.index();
        while index.bytes > self.budget {
            let Some((rel, size)) = index.lru.pop_lru() else {
                break;
            };
            index.bytes -= size;
            // Under the lock: a put of the same entry cannot slip in between.
            let _ = std::fs::remove_file(self.root.join(rel));
            evicted += 1;
        }
        evicted
    }

    /// Removes every entry `what` names; returns how many files went. The
    /// directories that hold them are moved aside under the index lock (a
    /// rename each), so nothing of theirs is served once this returns, then
    /// deleted outside it. Entries not indexed yet (a rebuild in progress)
    /// go too: the directories are found on disk.
    pub fn purge(&self, what: &Purge) -> usize {
        let shards = || {
            std::fs::read_dir(&self.root)
                .into_iter()
                .flatten()
                .flatten()
                .map(|e| e.path())
                .filter(|p| p.is_dir())
        };
        let dirs: Vec<PathBuf> = match what {
            Purge::Image(id) => vec![self.root.join(id.shard()).join(id.as_str())],
            Purge::Alias(alias) => shards()
                .flat_map(|shard| std::fs::read_dir(shard).into_iter().flatten().flatten())
                .map(|image| image.path().join(alias))
                .filter(|p| p.is_dir())
                .collect(),
            Purge::All => shards().collect(),
        };
        let graveyard = match tempfile::Builder::new().prefix("purged-").tempdir_in(&self.tmp) {
            Ok(dir) => dir,
            Err(e) => {
                tracing::warn!(error = %e, "cannot purge the disk cache: no room in its tmp directory");
                return 0;
            }
        };
        {
            let mut index = self.index();
            self.purges.fetch_add(1, Ordering::SeqCst);
            for (i, dir) in dirs.iter().enumerate() {
                let _ = std::fs::rename(dir, graveyard.path().join(i.to_string()));
            }
            let victims: Vec<PathBuf> = index
                .lru
                .iter()
                .map(|(p, _)| p.clone())
                .filter(|p| super::SecondTier::matches(what, p))
                .collect();
            for v in &victims {
                if let Some(size) = index.lru.pop(v) {
                    index.bytes -= size;
                }
            }
        }
        let removed = crate::cache::count_files(graveyard.path());
        drop(graveyard);
        removed
    }

    pub fn stats(&self) -> (usize, u64) {
        let index = self.index();
        (index.lru.len(), index.bytes)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entries_round_trip_and_damage_is_detected() {
        let entry = Entry {
            bytes: Bytes::from_static(b"jpeg bytes here"),
            format: ImageFormat::Jpeg,
        };
        let encoded = encode(&entry);
        let back = decode(encoded.clone()).unwrap();
        assert_eq!(back.bytes, entry.bytes);
        assert_eq!(back.format, ImageFormat::Jpeg);
        let mut flipped = encoded.clone();
        *flipped.last_mut().unwrap() ^= 1;
        assert!(decode(flipped).is_none(), "a flipped bit");
        assert!(decode(encoded[..encoded.len() - 3].to_vec()).is_none(), "a torn write");
        assert!(decode(b"IMGCACH1".to_vec()).is_none());
        assert!(decode(Vec::new()).is_none());
    }

    /// Eviction and rewrites of the same entry, racing: the index and the
    /// files must agree afterwards (an evicted rewrite once left an indexed
    /// entry without its file).
    #[test]
    fn eviction_racing_rewrites_leaves_index_and_files_in_agreement() {
        use crate::storage::ImageId;
        use std::sync::Arc;
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("tmp")).unwrap();
        // Room for about eight 1 KiB entries.
        let tier = Arc::new(DiskTier::new(dir.path().join("cache"), dir.path().join("tmp"), 8 * 1100).unwrap());
        let entry = Entry {
            bytes: Bytes::from(vec![7u8; 1024]),
            format: ImageFormat::Png,
        };
        let hot = CacheKey::new(&ImageId::of(b"hot"), "a", "w", "s");
        let writers: Vec<_> = (0..2)
            .map(|t| {
                let (tier, entry, hot) = (Arc::clone(&tier), entry.clone(), hot.clone());
                std::thread::spawn(move || {
                    for i in 0..300 {
                        if t == 0 {
                            tier.put(&hot, &entry, || true).unwrap();
                        } else {
                            let key = CacheKey::new(&ImageId::of(format!("{i}").as_bytes()), "a", "w", "s");
                            tier.put(&key, &entry, || true).unwrap();
                        }
                    }
                })
            })
            .collect();
        for w in writers {
            w.join().unwrap();
        }
        let index = tier.index();
        let mut indexed = 0;
        for (rel, size) in index.lru.iter() {
            let on_disk = std::fs::metadata(tier.root.join(rel)).map(|m| m.len());
            assert_eq!(
                on_disk.ok(),
                Some(*size),
                "{} is indexed: its file must exist",
                rel.display()
            );
            indexed += size;
        }
        assert_eq!(index.bytes, indexed);
        assert!(index.bytes <= tier.budget);
        assert_eq!(
            crate::cache::count_files(&tier.root),
            index.lru.len(),
            "no file outside the index"
        );
    }
}
