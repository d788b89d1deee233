//! Every file of real-world bad-input corpora (Pillow's Tests/images with its
//! OSS-Fuzz crash/oom/timeout files and decompression bombs; Go's invalid and
//! truncated images) through `POST /images`, `POST /transform/thumbnail` and
//! two aliases that run the rest of the filter set (extend, alpha, colour
//! spaces, ICC profiles, resample, canvas, pattern, repeat, compose):
//! each answer is 2xx, or 4xx with a JSON error (503 under load aside), never
//! another 5xx, never a crash or hang; memory stays bounded; and originals
//! stored before the run come back byte-identical afterwards.
//! The corpora are fetched by tests/corpus/fetch (scripts/test runs it).

use crate::common;

use crate::common::{TestServer, fixture};
use futures::StreamExt;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

fn corpus_files() -> Vec<PathBuf> {
    let dir = std::env::var("IMAGINATOR_CORPUS_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|_| common::repo_path("target/corpus"));
    assert!(
        dir.join("pillow").is_dir() && dir.join("go").is_dir(),
        "corpora missing in {}: run tests/corpus/fetch",
        dir.display()
    );
    let mut files: Vec<PathBuf> = common::files_under(&dir).into_iter().map(|(p, _)| p).collect();
    files.sort();
    files
}

struct Outcome {
    endpoint: &'static str,
    file: PathBuf,
    status: u16,
    code: String,
    took: Duration,
}

fn peak_rss_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
        .unwrap_or(0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn real_malformed_files_get_clear_answers_and_nothing_stored_is_harmed() {
    // Every operation that reads more than the pixels (resolution, profiles,
    // alpha, a second image), on every file.
    let photo_id = imaginator::storage::ImageId::of(&fixture("photo.jpg"))
        .as_str()
        .to_string();
    let every_op = format!(
        "chain = \"fit-in(256,256):gravity(center):bg('#ff000080'):extend(-4,-4,1.05w,1.05h):alpha(remove):\
         colorspace(lab):colorspace(srgb):resample(96,96):canvas(0.1,0.1):pattern(0.5w,0.5h):\
         repeat(2,2,0.3w,0.3h):crop(0,0,1hcm,1vcm):compose(original({photo_id}),multiply,1,1)\"\n\
         [output]\nformat = \"png\"\ninterlace = true\n"
    );
    let profiles = "chain = \"fit-in(128,128):profile(srgb,fogra39):profile(fogra39,srgb)\"\n";
    let server = TestServer::start_with(&[("every-op", &every_op), ("profiles", profiles)], |s| {
        s.workers = 2;
        s.queue = Some(64);
        s.job_deadline = imaginator::config::HumanDuration(Duration::from_secs(10));
    })
    .await;
    let before: Vec<(String, Vec<u8>)> = {
        let mut v = Vec::new();
        for name in ["photo.jpg", "alpha.png", "photo.webp"] {
            let (status, meta) = server.upload(fixture(name)).await;
            assert_eq!(status, 201);
            v.push((meta["id"].as_str().unwrap().to_string(), fixture(name)));
        }
        v
    };

    let files = corpus_files();
    let started = Instant::now();
    let jobs = files.iter().flat_map(|f| {
        [
            ("/images", f.clone()),
            ("/transform/thumbnail?width=64", f.clone()),
            ("/transform/every-op", f.clone()),
            ("/transform/profiles", f.clone()),
        ]
    });
    let outcomes: Vec<Outcome> = futures::stream::iter(jobs)
        .map(|(endpoint, file)| {
            let (client, url) = (server.client.clone(), server.url(endpoint));
            async move {
                let body = std::fs::read(&file).unwrap();
                let t = Instant::now();
                let response = client
                    .post(url)
                    .header("content-type", "application/octet-stream")
                    .body(body)
                    .timeout(Duration::from_secs(60))
                    .send()
                    .await
                    .unwrap_or_else(|e| panic!("{}: no answer ({e})", file.display()));
                let status = response.status().as_u16();
                let bytes = response.bytes().await.unwrap_or_default();
                let code = if status >= 400 {
                    serde_json::from_slice::<serde_json::Value>(&bytes)
                        .ok()
                        .and_then(|v| v["error"]["code"].as_str().map(str::to_string))
                        .unwrap_or_else(|| "NOT-JSON".to_string())
                } else {
                    String::new()
                };
                Outcome {
                    endpoint: match endpoint {
                        "/images" => "POST /images",
                        "/transform/every-op" => "every-op",
                        "/transform/profiles" => "profiles",
                        _ => "POST /transform",
                    },
                    file,
                    status,
                    code,
                    took: t.elapsed(),
                }
            }
        })
        .buffer_unordered(4)
        .collect()
        .await;

    // The table.
    let mut by: BTreeMap<(&str, String), usize> = BTreeMap::new();
    for o in &outcomes {
        let key = if o.status < 300 {
            format!("{} accepted", o.status)
        } else {
            format!("{} {}", o.status, o.code)
        };
        *by.entry((o.endpoint, key)).or_default() += 1;
    }
    println!(
        "\ncorpus: {} files, {} requests in {:.1?}",
        files.len(),
        outcomes.len(),
        started.elapsed()
    );
    println!("{:<16} {:<40} {:>6}", "endpoint", "answer", "count");
    for ((endpoint, key), n) in &by {
        println!("{endpoint:<16} {key:<40} {n:>6}");
    }
    let mut slowest: Vec<&Outcome> = outcomes.iter().collect();
    slowest.sort_by_key(|o| std::cmp::Reverse(o.took));
    for o in slowest.iter().take(5) {
        println!("slow: {:>8.1?} {} {} -> {}", o.took, o.endpoint, rel(&o.file), o.status);
    }
    let peak = peak_rss_kib();
    println!("peak RSS of the test process (server included): {} MiB", peak / 1024);

    let bad: Vec<String> = outcomes
        .iter()
        .filter(|o| !(o.status < 300 || (400..500).contains(&o.status) || o.status == 503) || o.code == "NOT-JSON")
        .map(|o| format!("{} {} -> {} {}", o.endpoint, rel(&o.file), o.status, o.code))
        .collect();
    assert!(
        bad.is_empty(),
        "{} answers were neither 2xx nor a JSON 4xx:\n{}",
        bad.len(),
        bad.join("\n")
    );
    assert!(peak < 2 * 1024 * 1024, "peak RSS {} MiB", peak / 1024);

    assert_eq!(server.get("/healthz").await.status(), 200, "still alive");
    for (id, bytes) in before {
        let got = server.get(&format!("/images/{id}")).await.bytes().await.unwrap();
        assert_eq!(got.as_ref(), bytes.as_slice(), "original {id} unharmed");
    }
    server.stop().await;
}

fn rel(p: &Path) -> String {
    let s = p.to_string_lossy();
    s.rsplit("corpus/").next().unwrap_or(&s).to_string()
}
