//! The disk tier: one file per entry, written atomically, checked on read
//! (magic, length and CRC-32 of the payload: a torn or corrupted entry is
//! deleted and reported as a miss, never served), bounded in bytes with
//! least-recently-used eviction. The index is rebuilt at start-up from file
//! sizes and modification times (a disk hit refreshes the time).

use super::{CacheKey, Entry};
use crate::pipeline::format::ImageFormat;
use crate::storage::write_atomic;
use bytes::Bytes;
use lru::LruCache;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::{Instant, SystemTime};

const MAGIC: &[u8; 8] = b"IMGCACH1";
/// magic, crc32 (4), payload length (8), format name length (1).
const HEADER: usize = 8 + 4 + 8 + 1;

pub struct DiskTier {
    root: PathBuf,
    tmp: PathBuf,
    budget: u64,
    index: Mutex<Index>,
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
        })
    }

    fn index(&self) -> std::sync::MutexGuard<'_, Index> {
        self.index.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Rebuilds the index from the files on disk, oldest first, then evicts
    /// down to the budget. Returns (entries, bytes, seconds taken). Blocking.
    pub fn rebuild(&self) -> (usize, u64, f64) {
        let started = Instant::now();
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
            for (_, rel, size) in found {
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

    /// Writes an entry; returns the number of entries evicted to stay in budget.
    pub fn put(&self, key: &CacheKey, entry: &Entry) -> std::io::Result<usize> {
        let rel = key.disk_path();
        let data = encode(entry);
        if data.len() as u64 > self.budget {
            return Ok(0);
        }
        write_atomic(&self.tmp, &self.root.join(&rel), &data)?;
        {
            let mut index = self.index();
            if let Some(old) = index.lru.put(rel, data.len() as u64) {
                index.bytes -= old;
            }
            index.bytes += data.len() as u64;
        }
        Ok(self.evict())
    }

    fn evict(&self) -> usize {
        let mut evicted = 0;
        loop {
            let victim = {
                let mut index = self.index();
                if index.bytes <= self.budget {
                    break;
                }
                match index.lru.pop_lru() {
                    Some((rel, size)) => {
                        index.bytes -= size;
                        rel
                    }
                    None => break,
                }
            };
            let _ = std::fs::remove_file(self.root.join(victim));
            evicted += 1;
        }
        evicted
    }

    /// Removes every entry whose path starts with `prefix` (relative), or all.
    pub fn purge(&self, matches: impl Fn(&Path) -> bool) -> usize {
        let victims: Vec<PathBuf> = {
            let mut index = self.index();
            let victims: Vec<PathBuf> = index
                .lru
                .iter()
                .map(|(p, _)| p.clone())
                .filter(|p| matches(p))
                .collect();
            for v in &victims {
                if let Some(size) = index.lru.pop(v) {
                    index.bytes -= size;
                }
            }
            victims
        };
        for v in &victims {
            let _ = std::fs::remove_file(self.root.join(v));
        }
        victims.len()
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
}
