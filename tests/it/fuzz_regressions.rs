//! Every input the fuzzers ever stopped on (a panic, or memory past
//! libFuzzer's limit), replayed through the same pre-decode path the fuzz
//! target exercises (tests run with overflow checks on, as the fuzzer
//! does). A file lands in `fuzz/regressions/pre_decode/` together with its
//! fix.

use imaginator::pipeline::format::{ImageFormat, check_dimensions, header_dimensions};
use imaginator::pipeline::layers::claims;

fn regressions() -> Vec<(std::path::PathBuf, Vec<u8>)> {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz/regressions/pre_decode");
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .expect("regression directory")
        .map(|e| {
            let path = e.unwrap().path();
            let data = std::fs::read(&path).unwrap();
            (path, data)
        })
        .collect();
    files.sort();
    assert!(!files.is_empty(), "no regression inputs in {}", dir.display());
    files
}

fn pre_decode(data: &[u8]) {
    if let Some((w, h)) = header_dimensions(data) {
        let _ = check_dimensions(w, h, 16_384, 16_384, 50_000_000);
    }
    for f in ImageFormat::ALL {
        if let Some(c) = claims(data, f) {
            let _ = c.check(16_384, 16_384, 50_000_000, 100);
        }
    }
}

#[test]
fn every_recorded_fuzz_crash_is_handled_without_panicking() {
    for (path, data) in regressions() {
        let outcome = std::panic::catch_unwind(|| pre_decode(&data));
        assert!(outcome.is_ok(), "{} panics again", path.display());
    }
}

/// The reader's memory is bounded by the input, not by what the input
/// claims: bytes allocated on this thread (jemalloc's per-thread counter,
/// freed or not) stay under 64 times the file plus 1 MiB. The recorded
/// AVIF made the `iloc` reader collect 655 million extents (2 GB).
#[test]
fn reading_what_a_file_claims_allocates_in_proportion_to_the_file() {
    let allocated = tikv_jemalloc_ctl::thread::allocatedp::mib().unwrap().read().unwrap();
    for (path, data) in regressions() {
        let before = allocated.get();
        pre_decode(&data);
        let used = allocated.get() - before;
        let bound = 64 * data.len() as u64 + (1 << 20);
        assert!(
            used < bound,
            "{}: {used} bytes allocated reading a {}-byte file (bound {bound})",
            path.display(),
            data.len()
        );
    }
}
