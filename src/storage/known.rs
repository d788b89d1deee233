//! Which originals were seen to exist recently. A rendition is served only
//! for an original that exists: the store is asked at most once per
//! `RECHECK` per image (a file read locally, a HEAD with S3), so a replica
//! whose memory still holds renditions of an image another replica deleted
//! stops serving them within `RECHECK`. A delete through this replica
//! forgets the image at once.

use super::ImageId;
use std::collections::HashMap;
use std::sync::RwLock;
use std::time::{Duration, Instant};

/// How long a seen original counts as existing.
pub const RECHECK: Duration = Duration::from_secs(5);
/// Entries kept at most (a set this large is emptied and refilled).
const MAX_ENTRIES: usize = 100_000;

/// When an original was seen, and its size as displayed (width, height).
type Seen = (Instant, (u32, u32));

#[derive(Default)]
pub struct Known {
    seen: RwLock<HashMap<ImageId, Seen>>,
}

impl Known {
    /// The size (as displayed) of `id` when it was seen to exist within
    /// `RECHECK`.
    pub fn fresh(&self, id: &ImageId) -> Option<(u32, u32)> {
        self.seen
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .get(id)
            .filter(|(at, _)| at.elapsed() < RECHECK)
            .map(|(_, size)| *size)
    }

    pub fn saw(&self, id: &ImageId, size: (u32, u32)) {
        let mut seen = self.seen.write().unwrap_or_else(|e| e.into_inner());
        if seen.len() >= MAX_ENTRIES {
            seen.clear();
        }
        seen.insert(id.clone(), (Instant::now(), size));
    }

    pub fn forget(&self, id: &ImageId) {
        self.seen.write().unwrap_or_else(|e| e.into_inner()).remove(id);
    }
}
