//! Claims about the shipped binary, checked on the shipped binary: the
//! optimiser removes code that debug builds keep (an unused `malloc`/`free`
//! pair, for one), so these tests run `target/release/imaginator`, which
//! `scripts/test` builds before the suite.

use crate::common::{binary, repo_path};
use std::io::BufRead;
use std::path::PathBuf;
use std::process::Stdio;
use std::time::{Duration, Instant};

fn release_binary() -> PathBuf {
    let target = std::env::var_os("CARGO_TARGET_DIR").map_or_else(|| repo_path("target"), PathBuf::from);
    let exe = target.join("release/imaginator");
    assert!(
        exe.is_file(),
        "{} is missing: run `cargo build --release --locked` first (scripts/test does)",
        exe.display()
    );
    exe
}

#[test]
fn the_release_binary_starts_without_errors_and_counts_c_malloc_in_jemalloc() {
    let exe = release_binary();
    let data = tempfile::tempdir().unwrap();
    let mut child = binary(exe.to_str().unwrap())
        .env("IMAGINATOR_LISTEN", "127.0.0.1:0")
        .env("IMAGINATOR_DATA_DIR", data.path())
        .env("IMAGINATOR_LOG__FORMAT", "json")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .spawn()
        .expect("the release binary starts");
    let mut lines = std::io::BufReader::new(child.stdout.take().unwrap()).lines();
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut startup = Vec::new();
    let addr = loop {
        assert!(Instant::now() < deadline, "no start-up line");
        let line = lines.next().expect("the binary exited before starting").unwrap();
        let entry: serde_json::Value = serde_json::from_str(&line).expect("JSON log line");
        if entry["message"] == "imaginator started" {
            break entry["listen"].as_str().unwrap().to_string();
        }
        startup.push(entry);
    };
    std::thread::spawn(move || for _ in lines {});
    let errors: Vec<_> = startup.iter().filter(|e| e["level"] == "ERROR").collect();
    assert!(errors.is_empty(), "start-up logged errors: {errors:?}");

    let report: serde_json::Value = reqwest::blocking_get(&format!("http://{addr}/debug/memory"));
    assert_eq!(report["allocator"]["c_malloc_tracked"], true, "{}", report["allocator"]);
    assert_eq!(report["allocator"]["imagemagick_malloc_tracked"], true);
    let _ = child.kill();
    let _ = child.wait();
}

/// A tiny blocking GET returning JSON, without pulling in reqwest's blocking
/// client (the tests' reqwest is async only).
mod reqwest {
    pub fn blocking_get(url: &str) -> serde_json::Value {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap()
            .block_on(async { ::reqwest::get(url).await.unwrap().json().await.unwrap() })
    }
}
