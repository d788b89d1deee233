//! Purges against the races they must win, and single-flight bookkeeping.

use super::*;
use std::time::Duration;

/// In these tests, failures that start with `bad input` are remembered.
impl Failure for String {
    fn remember_for(&self) -> Option<Duration> {
        self.starts_with("bad input").then_some(Duration::from_secs(60))
    }
}

fn cache(dir: &Path) -> ResultCache<String> {
    std::fs::create_dir_all(dir.join("tmp")).unwrap();
    ResultCache::new(1 << 20, SecondTier::disk(dir, 1 << 20).unwrap(), Metrics::new()).unwrap()
}

fn key(image: &[u8], alias: &str) -> CacheKey {
    CacheKey::new(&ImageId::of(image), alias, "work", "salt")
}

fn entry(bytes: &'static [u8]) -> Entry {
    Entry {
        bytes: Bytes::from_static(bytes),
        format: ImageFormat::Jpeg,
    }
}

#[tokio::test]
async fn a_result_computed_while_its_image_is_purged_is_served_but_never_stored() {
    let dir = tempfile::tempdir().unwrap();
    let cache = Arc::new(cache(dir.path()));
    let k = key(b"photo", "thumbnail");
    let (release, gate) = tokio::sync::oneshot::channel::<()>();
    let (started_tx, started) = tokio::sync::oneshot::channel::<()>();
    let computing = {
        let (cache, k) = (Arc::clone(&cache), k.clone());
        tokio::spawn(async move {
            cache
                .get_or_compute(&k, || async move {
                    let _ = started_tx.send(());
                    let _ = gate.await;
                    Ok(entry(b"rendition"))
                })
                .await
        })
    };
    started.await.unwrap();
    // DELETE /images/{id} while the job runs.
    cache.purge(&Purge::Image(k.source.clone())).await;
    release.send(()).unwrap();
    let (served, tier) = computing.await.unwrap().unwrap();
    assert_eq!((served.bytes.as_ref(), tier), (b"rendition".as_ref(), Tier::Miss));
    // Stored nowhere: the next request computes again.
    let (_, tier) = cache
        .get_or_compute(&k, || async { Ok(entry(b"again")) })
        .await
        .unwrap();
    assert_eq!(tier, Tier::Miss, "the purged result was not kept in memory or on disk");
    // A key the purge did not name is stored as usual.
    let other = key(b"other", "thumbnail");
    cache
        .get_or_compute(&other, || async { Ok(entry(b"x")) })
        .await
        .unwrap();
    let (_, tier) = cache
        .get_or_compute(&other, || async { Ok(entry(b"x")) })
        .await
        .unwrap();
    assert_eq!(tier, Tier::Memory);
}

#[tokio::test]
async fn a_cancelled_leader_leaves_no_single_flight_entry_behind() {
    let dir = tempfile::tempdir().unwrap();
    let cache = Arc::new(cache(dir.path()));
    let k = key(b"photo", "avatar");
    let leader = {
        let (cache, k) = (Arc::clone(&cache), k.clone());
        tokio::spawn(async move {
            cache
                .get_or_compute(&k, std::future::pending::<Result<Entry, String>>)
                .await
        })
    };
    for _ in 0..100 {
        if cache.inflight_len() == 1 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    assert_eq!(cache.inflight_len(), 1, "the leader is in flight");
    leader.abort();
    let _ = leader.await;
    assert_eq!(cache.inflight_len(), 0, "the client left: nothing remains");
    // The key still works.
    let (_, tier) = cache.get_or_compute(&k, || async { Ok(entry(b"ok")) }).await.unwrap();
    assert_eq!(tier, Tier::Miss);
}

#[tokio::test]
async fn a_purge_reaches_entries_the_index_has_not_seen_yet() {
    let dir = tempfile::tempdir().unwrap();
    let k = key(b"photo", "thumbnail");
    {
        let first = cache(dir.path());
        first.get_or_compute(&k, || async { Ok(entry(b"old")) }).await.unwrap();
    }
    // A restart: the index is empty until the rebuild runs.
    let restarted = cache(dir.path());
    assert_eq!(restarted.bytes().1, 0, "not indexed yet");
    let purged = restarted.purge(&Purge::Image(k.source.clone())).await;
    assert_eq!(purged, 1);
    let (_, tier) = restarted
        .get_or_compute(&k, || async { Ok(entry(b"new")) })
        .await
        .unwrap();
    assert_eq!(tier, Tier::Miss, "the purged entry is not served from disk");
    let (entries, _, _) = restarted.rebuild_disk_index();
    assert_eq!(entries, 1, "only the new entry is indexed");
}

#[tokio::test]
async fn a_failure_of_the_input_is_remembered_and_others_are_not() {
    let dir = tempfile::tempdir().unwrap();
    let cache = cache(dir.path());
    let k = key(b"poison", "thumbnail");
    let ran = std::sync::atomic::AtomicUsize::new(0);
    let poison = || async {
        ran.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        Err::<Entry, _>("bad input: cannot decode".to_string())
    };
    assert!(cache.get_or_compute(&k, poison).await.is_err());
    assert!(cache.get_or_compute(&k, poison).await.is_err());
    assert_eq!(
        ran.load(std::sync::atomic::Ordering::SeqCst),
        1,
        "the second failure came from memory"
    );
    // A purge forgets it.
    cache.purge(&Purge::Image(k.source.clone())).await;
    assert!(cache.get_or_compute(&k, poison).await.is_err());
    assert_eq!(ran.load(std::sync::atomic::Ordering::SeqCst), 2);
    // An overload is not remembered.
    let busy_key = key(b"busy", "thumbnail");
    assert!(
        cache
            .get_or_compute(&busy_key, || async { Err::<Entry, _>("overloaded".to_string()) })
            .await
            .is_err()
    );
    let (_, tier) = cache
        .get_or_compute(&busy_key, || async { Ok(entry(b"fine")) })
        .await
        .unwrap();
    assert_eq!(tier, Tier::Miss);
}
