//! Memory you can explain: jemalloc serves ImageMagick, profiles see it, and
//! the memory report and metrics are consistent.

mod common;

use common::{HEAVY, TestServer, error_code, fixture, metric_value};
use std::time::{Duration, Instant};

#[test]
fn c_malloc_and_imagemagick_allocations_are_counted_by_jemalloc() {
    assert!(
        imaginator::memory::c_malloc_tracked(),
        "libc malloc goes through jemalloc"
    );
    assert!(
        imaginator::magick::allocations_tracked(),
        "64 MiB from ImageMagick's AcquireMagickMemory shows in jemalloc's stats.allocated"
    );
    assert!(
        imaginator::memory::profile::enabled(),
        "prof:true is compiled into malloc_conf"
    );
    assert_eq!(imaginator::memory::profile::sample_bytes(), 512 * 1024);
}

#[tokio::test]
async fn the_memory_report_has_every_field_and_they_reconcile() {
    let server = TestServer::start().await;
    let r: serde_json::Value = server.get("/debug/memory").await.json().await.unwrap();
    for key in ["allocated", "active", "resident", "mapped", "retained", "metadata"] {
        assert!(r["jemalloc"][key].as_u64().is_some(), "jemalloc.{key}");
    }
    for key in ["rss", "rss_anon", "rss_file", "rss_shmem", "pss", "anonymous"] {
        assert!(r["process"][key].as_u64().is_some(), "process.{key}");
    }
    for key in ["memory", "map", "disk", "area"] {
        assert!(r["imagemagick"][key].as_u64().is_some(), "imagemagick.{key}");
    }
    for key in ["memory_bytes", "disk_bytes"] {
        assert!(r["result_cache"][key].as_u64().is_some(), "result_cache.{key}");
    }
    assert_eq!(r["allocator"]["c_malloc_tracked"], true);
    let c = &r["cgroup"];
    for key in [
        "memory_current",
        "memory_max",
        "anon",
        "file",
        "active_file",
        "inactive_file",
        "shmem",
        "kernel",
        "working_set",
    ] {
        assert!(c.get(key).is_some(), "cgroup.{key} present (maybe null)");
    }
    if c["version"].is_u64() {
        let current = c["memory_current"].as_u64().unwrap();
        let inactive = c["inactive_file"].as_u64().unwrap();
        assert_eq!(c["working_set"].as_u64().unwrap(), current.saturating_sub(inactive));
    }
    // The text reconciles this process's resident memory with jemalloc's
    // pages in use, from the same sample.
    let (j, p) = (&r["jemalloc"], &r["process"]);
    let in_use = j["active"].as_u64().unwrap() + j["metadata"].as_u64().unwrap();
    let anon = p["rss_anon"].as_u64().unwrap();
    let line = r["explanation"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|l| l.as_str())
        .find(|l| l.starts_with("This process"))
        .expect("a line about this process")
        .to_string();
    let (word, remainder) = if anon >= in_use {
        ("The other ", anon - in_use)
    } else {
        ("exceed what is resident by ", in_use - anon)
    };
    let stated: f64 = line[line.find(word).unwrap_or_else(|| panic!("`{word}` in {line}")) + word.len()..]
        .split(' ')
        .next()
        .unwrap()
        .parse()
        .unwrap();
    assert!((stated - remainder as f64 / 1048576.0).abs() < 0.051, "{line}");
    let text = server.get("/debug/memory?format=text").await.text().await.unwrap();
    assert!(
        text.contains("jemalloc") && text.contains("working") || text.contains("No memory cgroup"),
        "{text}"
    );
    server.stop().await;
}

#[tokio::test]
async fn memory_gauges_are_exported() {
    let server = TestServer::start().await;
    let scrape = server.metrics().await;
    for name in [
        "imaginator_jemalloc_allocated_bytes",
        "imaginator_jemalloc_resident_bytes",
        "imaginator_process_rss_anon_bytes",
        "imaginator_imagemagick_memory_bytes",
        "imaginator_allocator_c_malloc_tracked",
    ] {
        assert!(scrape.contains(&format!("# TYPE {name} gauge")), "{name}");
    }
    assert_eq!(metric_value(&scrape, "imaginator_allocator_c_malloc_tracked"), 1.0);
    assert!(metric_value(&scrape, "imaginator_jemalloc_allocated_bytes") > 0.0);
    server.stop().await;
}

/// Every rendering of a profile taken while ImageMagick holds a 10 MP pixel
/// cache names it. Jobs run back to back on one worker for the whole check,
/// and each rendering is retried (within a bound) until it lands inside a
/// job: a single job is over before a debug build has symbolised the first
/// profile, and a profile taken after it rightly no longer holds its memory.
#[tokio::test]
async fn a_heap_profile_taken_during_a_job_shows_imagemagick_allocations() {
    let server = TestServer::start_with(&[HEAVY], |s| s.workers = 1).await;
    let switched: serde_json::Value = server
        .client
        .post(server.url("/debug/profiling"))
        .json(&serde_json::json!({"active": true}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(switched["active"], true);

    let busy = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(true));
    let jobs = {
        let (client, url, busy) = (server.client.clone(), server.url("/transform/heavy"), busy.clone());
        tokio::spawn(async move {
            let mut statuses = Vec::new();
            // Bounded: at most 200 jobs of about half a second each.
            while busy.load(std::sync::atomic::Ordering::Relaxed) && statuses.len() < 200 {
                let status = client
                    .post(&url)
                    .body(fixture("photo.jpg"))
                    .send()
                    .await
                    .unwrap()
                    .status();
                statuses.push(status.as_u16());
            }
            statuses
        })
    };
    // Wait (boundedly) until ImageMagick holds the 10 MP pixel cache.
    let until = Instant::now() + Duration::from_secs(20);
    let mut im_bytes = 0;
    while Instant::now() < until {
        let r: serde_json::Value = server.get("/debug/memory").await.json().await.unwrap();
        im_bytes = r["imagemagick"]["memory"].as_u64().unwrap();
        if im_bytes > 40 << 20 {
            assert!(
                r["jemalloc"]["allocated"].as_u64().unwrap() >= im_bytes,
                "ImageMagick's pixel cache is inside jemalloc's heap"
            );
            break;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    assert!(im_bytes > 40 << 20, "saw ImageMagick memory {im_bytes}");

    // ImageMagick's pixel cache, by the function that asked for it (the
    // allocation wrappers it inlines are cut as the allocator's).
    let names_pixel_cache = |text: &str| text.contains("OpenPixelCache") || text.contains("AcquirePixelCache");
    let rendered = |format: &'static str| {
        let server = &server;
        async move {
            let until = Instant::now() + Duration::from_secs(60);
            let mut last = String::new();
            while Instant::now() < until {
                last = server
                    .get(&format!("/dump_profile?format={format}"))
                    .await
                    .text()
                    .await
                    .unwrap();
                if names_pixel_cache(&last) {
                    return last;
                }
            }
            panic!(
                "no {format} profile taken during a job named ImageMagick's allocations; the last:\n{}",
                last.lines().take(10).collect::<Vec<_>>().join("\n")
            );
        }
    };
    let collapsed = rendered("collapsed").await;
    let svg = rendered("svg").await;
    assert!(svg.contains("<svg"), "an SVG flame graph");
    let raw = server.get("/dump_profile").await.bytes().await.unwrap();
    assert!(raw.starts_with(b"heap_v2/"), "jemalloc heap profile header");
    let pprof = server.get("/dump_profile?format=pprof").await.bytes().await.unwrap();
    assert_eq!(&pprof[..2], &[0x1f, 0x8b], "gzip-compressed pprof");
    busy.store(false, std::sync::atomic::Ordering::Relaxed);
    let statuses = jobs.await.unwrap();
    assert!(statuses.iter().all(|&s| s == 200), "every job succeeded: {statuses:?}");

    // Stacks read root first and end in the code that allocated, not in
    // the allocator: every leaf is checked against a list written here,
    // independent of the service's own classification.
    let top = collapsed.lines().next().unwrap();
    let frames: Vec<&str> = top.rsplit_once(' ').unwrap().0.split(';').collect();
    assert!(
        ["clone", "start_thread", "_start", "main", "std::", "libc.so"]
            .iter()
            .any(|r| frames[0].contains(r)),
        "root first: {top}"
    );
    for line in collapsed.lines() {
        let leaf = line.rsplit_once(' ').unwrap().0.rsplit(';').next().unwrap();
        assert!(!is_allocator(leaf), "a stack ends in the allocator ({leaf}): {line}");
    }
    let mut pprof_text = Vec::new();
    std::io::Read::read_to_end(&mut flate2::read::GzDecoder::new(&pprof[..]), &mut pprof_text).unwrap();
    let pprof_text = String::from_utf8_lossy(&pprof_text);
    for output in [collapsed.as_str(), svg.as_str(), &pprof_text] {
        for internal in DISTINCTIVE_ALLOCATOR_NAMES {
            assert!(
                !output.contains(internal),
                "the allocator's frames ({internal}) are left out"
            );
        }
    }
    server.stop().await;
}

/// Names that only the allocator's frames have: Rust's allocation shims,
/// the global allocator, jemalloc and its profiler, ImageMagick's wrappers.
const DISTINCTIVE_ALLOCATOR_NAMES: &[&str] = &[
    "__rust_alloc",
    "__rust_realloc",
    "__rdl_alloc",
    "alloc_impl",
    "alloc::alloc::Global",
    "raw_vec",
    "RawVec",
    "exchange_malloc",
    "tikv_jemallocator",
    "_rjem_",
    "prof_backtrace",
    "je_prof",
    "AcquireMagickMemory",
    "AcquireAlignedMemory",
    "AcquireQuantumMemory",
    "AcquireVirtualMemory",
];

/// Whether a frame is the allocator's, by this test's own list.
fn is_allocator(frame: &str) -> bool {
    const C_ENTRY_POINTS: &[&str] = &[
        "malloc",
        "calloc",
        "realloc",
        "free",
        "posix_memalign",
        "aligned_alloc",
        "memalign",
        "allocate",
        "alloc",
    ];
    C_ENTRY_POINTS.contains(&frame) || DISTINCTIVE_ALLOCATOR_NAMES.iter().any(|n| frame.contains(n))
}

/// Rendering profiles symbolises with caches of tens of MiB; they must not
/// stay in the process, or the heap floor the leak verdict watches rises
/// because someone looked.
#[tokio::test]
async fn rendering_profiles_leaves_no_heap_behind() {
    let server = TestServer::start().await;
    async fn allocated(server: &TestServer) -> u64 {
        let r: serde_json::Value = server.get("/debug/memory").await.json().await.unwrap();
        r["jemalloc"]["allocated"].as_u64().unwrap()
    }
    // Live allocations to profile (renditions kept in the memory tier), and
    // the heap before the first render: the first is the one that parses
    // debug information.
    let switched = server
        .client
        .post(server.url("/debug/profiling"))
        .json(&serde_json::json!({"active": true}))
        .send()
        .await
        .unwrap();
    assert_eq!(switched.status(), 200);
    let (_, json) = server.upload(fixture("photo.jpg")).await;
    let id = json["id"].as_str().unwrap().to_string();
    for width in 600..680 {
        assert_eq!(
            server
                .get(&format!("/images/{id}/thumbnail?width={width}"))
                .await
                .status(),
            200
        );
    }
    let before = allocated(&server).await;
    for _ in 0..3 {
        for format in ["collapsed", "svg", "pprof"] {
            let r = server.get(&format!("/dump_profile?format={format}")).await;
            assert_eq!(r.status(), 200, "{format}");
            r.bytes().await.unwrap();
        }
    }
    let after = allocated(&server).await;
    let grew = after.saturating_sub(before) as f64 / 1048576.0;
    println!(
        "heap before {:.1} MiB, after nine renders {:.1} MiB",
        before as f64 / 1048576.0,
        after as f64 / 1048576.0
    );
    assert!(grew < 8.0, "rendering profiles left {grew:.1} MiB of heap behind");
    server.stop().await;
}

/// During a burst of jobs the text report never shows a negative figure or
/// calls the container's memory this process's heap.
#[tokio::test]
async fn the_memory_report_stays_consistent_during_a_burst() {
    let server = TestServer::start().await;
    let burst: Vec<_> = (0..24)
        .map(|i| {
            let (client, url) = (
                server.client.clone(),
                server.url(&format!("/transform/thumbnail?width={}", 100 + i)),
            );
            tokio::spawn(async move {
                client
                    .post(url)
                    .body(fixture("photo.jpg"))
                    .send()
                    .await
                    .unwrap()
                    .status()
            })
        })
        .collect();
    let mut reports = 0;
    while burst.iter().any(|h| !h.is_finished()) || reports < 5 {
        let text = server.get("/debug/memory?format=text").await.text().await.unwrap();
        let negative = text
            .as_bytes()
            .windows(2)
            .any(|w| w[0] == b'-' && w[1].is_ascii_digit());
        assert!(!negative, "a negative figure:\n{text}");
        assert!(!text.contains("(heap)"), "{text}");
        reports += 1;
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    for h in burst {
        assert!([200, 503].contains(&h.await.unwrap().as_u16()));
    }
    println!("{reports} reports sampled during the burst");
    server.stop().await;
}

#[tokio::test]
async fn heap_growth_reports_only_what_grew_since_the_baseline() {
    let server = TestServer::start().await;
    let stored: serde_json::Value = server
        .client
        .post(server.url("/debug/heap_baseline"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(stored["stored"], true);
    let growth = server.get("/debug/heap_growth?since=baseline").await;
    assert_eq!(growth.status(), 200);
    let (status, code, _) = error_code(server.get("/debug/heap_growth?seconds=0").await).await;
    assert_eq!((status, code.as_str()), (400, "invalid_parameter"));
    // What stays allocated after the baseline shows up: about 8 MiB of
    // renditions kept in the memory tier (sampling every 512 KiB on average
    // all but guarantees samples).
    let (_, json) = server.upload(fixture("photo.jpg")).await;
    let id = json["id"].as_str().unwrap().to_string();
    for width in 700..800 {
        let r = server.get(&format!("/images/{id}/thumbnail?width={width}")).await;
        assert_eq!(r.status(), 200);
    }
    let grown = server
        .get("/debug/heap_growth?since=baseline")
        .await
        .text()
        .await
        .unwrap();
    assert!(
        !grown.starts_with('#'),
        "allocations kept since the baseline are reported: {grown:?}"
    );
    let growth = server.get("/debug/heap_growth?seconds=1&format=svg").await;
    assert_eq!(growth.status(), 200);
    assert!(growth.text().await.unwrap().contains("<svg"));
    server.stop().await;
}

#[tokio::test]
async fn one_profile_at_a_time() {
    let server = TestServer::start().await;
    let slow = {
        let (client, url) = (server.client.clone(), server.url("/debug/heap_growth?seconds=2"));
        tokio::spawn(async move { client.get(url).send().await.unwrap().status() })
    };
    tokio::time::sleep(Duration::from_millis(300)).await;
    let (status, code, _) = error_code(server.get("/dump_profile").await).await;
    assert_eq!((status, code.as_str()), (429, "profile_in_progress"));
    assert_eq!(slow.await.unwrap(), 200);
    assert_eq!(server.get("/dump_profile").await.status(), 200);
    server.stop().await;
}

#[tokio::test]
async fn admin_endpoints_refuse_other_callers_without_the_token() {
    use axum::body::Body;
    use axum::extract::ConnectInfo;
    use axum::http::Request;
    use std::net::SocketAddr;
    use tower::ServiceExt;

    // The router is driven in-process with a non-loopback peer address: no
    // traffic leaves the machine.
    let data = tempfile::tempdir().unwrap();
    let (mut settings, _) = imaginator::Settings::load(
        None,
        vec![
            ("IMAGINATOR_LISTEN".into(), "127.0.0.1:0".into()),
            ("IMAGINATOR_DATA_DIR".into(), data.path().display().to_string()),
            (
                "IMAGINATOR_ALIASES_DIR".into(),
                common::repo_path("aliases").display().to_string(),
            ),
            ("IMAGINATOR_WORKERS".into(), "1".into()),
        ],
    )
    .unwrap();
    settings.admin_token = "s3cret-token".into();
    let app = imaginator::App::build(settings).await.unwrap();
    let router = app.router();
    let remote: SocketAddr = "192.0.2.10:40000".parse().unwrap();
    let call = |path: &str, token: Option<&str>| {
        let mut req = Request::get(path).body(Body::empty()).unwrap();
        req.extensions_mut().insert(ConnectInfo(remote));
        if let Some(t) = token {
            req.headers_mut()
                .insert("authorization", format!("Bearer {t}").parse().unwrap());
        }
        router.clone().oneshot(req)
    };
    for path in ["/dump_profile", "/debug/memory", "/debug/heap_growth?since=baseline"] {
        let response = call(path, None).await.unwrap();
        assert_eq!(response.status(), 403, "{path} without token");
        let response = call(path, Some("wrong-token")).await.unwrap();
        assert_eq!(response.status(), 403, "{path} with a wrong token");
    }
    assert_eq!(call("/debug/memory", Some("s3cret-token")).await.unwrap().status(), 200);
    assert_eq!(
        call("/healthz", None).await.unwrap().status(),
        200,
        "public routes stay public"
    );
}

/// The result cache's memory tier fills to `cache.memory` by design. The
/// heap figure the leak verdict and alert watch
/// (`imaginator_heap_outside_cache_bytes`) leaves it out, so a filling
/// cache is not mistaken for a leak; and the cache's own count matches the
/// heap it holds (if it under-counted, the figure outside would grow).
/// Against the binary, alone in its process.
#[tokio::test]
async fn filling_the_result_cache_does_not_move_the_heap_outside_it() {
    let exe = env!("CARGO_BIN_EXE_imaginator");
    let data = tempfile::tempdir().unwrap();
    let (mut child, addr) = common::start_binary_with(exe, data.path(), &[]);
    let base = format!("http://{addr}");
    let client = reqwest::Client::new();
    let upload: serde_json::Value = client
        .post(format!("{base}/images"))
        .header("content-type", "image/jpeg")
        .body(fixture("photo.jpg"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let id = upload["id"].as_str().unwrap();
    let scrape = || async {
        client
            .get(format!("{base}/metrics"))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap()
    };
    let figures = |s: &str| {
        (
            metric_value(s, "imaginator_cache_bytes{tier=\"memory\"}"),
            metric_value(s, "imaginator_heap_outside_cache_bytes"),
        )
    };
    // Warm the paths once so one-time allocations are in the baseline.
    for width in [100, 101] {
        let r = client
            .get(format!("{base}/images/{id}/thumbnail?width={width}"))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
    }
    let (cache_before, outside_before) = figures(&scrape().await);
    for width in 400..600 {
        let r = client
            .get(format!("{base}/images/{id}/thumbnail?width={width}"))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
        assert_eq!(r.headers()["x-cache"], "miss");
        r.bytes().await.unwrap();
    }
    let (cache_after, outside_after) = figures(&scrape().await);
    let cache_growth = cache_after - cache_before;
    let outside_growth = outside_after - outside_before;
    eprintln!(
        "cache memory tier +{:.1} MiB, heap outside it {:+.1} MiB",
        cache_growth / 1048576.0,
        outside_growth / 1048576.0
    );
    assert!(cache_growth > (4 << 20) as f64, "200 renditions fill the memory tier");
    assert!(
        outside_growth < cache_growth / 4.0,
        "the heap outside the cache grew {outside_growth} bytes while the cache grew {cache_growth}"
    );
    child.kill().unwrap();
    child.wait().unwrap();
}

// ---------------------------------------------------------------------------
// The leak verdict under load: it measures the heap at rest (live heap minus
// the caches' memory tiers and the work in flight), so a healthy load step
// never reads as growth, and a real leak does within three windows.
// ---------------------------------------------------------------------------

const EXE: &str = env!("CARGO_BIN_EXE_imaginator");
/// Short windows so the tests take about a minute (a sample every 2 s).
const WINDOW_SECONDS: u64 = 20;

struct Process {
    child: std::process::Child,
    base: String,
    _data: tempfile::TempDir,
}

impl Drop for Process {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn start_process(extra: &[(&str, String)]) -> Process {
    let data = tempfile::tempdir().unwrap();
    let mut env = vec![
        ("IMAGINATOR_MEMORY__TREND_WINDOW", format!("{WINDOW_SECONDS}s")),
        ("IMAGINATOR_WORKERS", "2".to_string()),
    ];
    env.extend(extra.iter().map(|(k, v)| (*k, v.clone())));
    let (child, addr) = common::start_binary_with(EXE, data.path(), &env);
    Process {
        child,
        base: format!("http://{addr}"),
        _data: data,
    }
}

/// (seconds since `t0`, verdict, heap at rest MiB, work in flight MiB).
async fn verdict(client: &reqwest::Client, base: &str, t0: Instant) -> (f64, String, f64, f64) {
    let r: serde_json::Value = client
        .get(format!("{base}/debug/memory"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let mib = |v: &serde_json::Value| v.as_f64().unwrap_or(0.0) / 1048576.0;
    (
        t0.elapsed().as_secs_f64(),
        r["heap"]["verdict"].as_str().unwrap().to_string(),
        mib(&r["heap"]["now"]),
        mib(&r["heap"]["in_flight"]),
    )
}

/// Two clients of steady, varied work (renditions that fill the cache,
/// avatars and previews sent as bodies) until `until`.
fn steady_load(base: &str, id: &str, until: Instant) -> Vec<tokio::task::JoinHandle<usize>> {
    (0..2)
        .map(|client_no| {
            let (base, id) = (base.to_string(), id.to_string());
            tokio::spawn(async move {
                let client = reqwest::Client::new();
                let mut n = 0usize;
                while Instant::now() < until {
                    n += 1;
                    let r = match n % 3 {
                        0 => {
                            client
                                .get(format!(
                                    "{base}/images/{id}/thumbnail?width={}",
                                    40 + (n * 7 + client_no) % 700
                                ))
                                .send()
                                .await
                        }
                        1 => {
                            client
                                .post(format!("{base}/transform/avatar?size={}", 64 + n % 200))
                                .header("content-type", "image/jpeg")
                                .body(fixture("photo.jpg"))
                                .send()
                                .await
                        }
                        _ => {
                            client
                                .post(format!("{base}/transform/preview"))
                                .header("content-type", "image/jpeg")
                                .body(fixture("photo.jpg"))
                                .send()
                                .await
                        }
                    };
                    assert!(r.unwrap().status().is_success());
                }
                n
            })
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_load_step_never_reads_as_growth() {
    let server = start_process(&[]);
    let client = reqwest::Client::new();
    let (_, id) = {
        let r = client
            .post(format!("{}/images", server.base))
            .header("content-type", "image/jpeg")
            .body(fixture("photo.jpg"))
            .send()
            .await
            .unwrap();
        let json: serde_json::Value = r.json().await.unwrap();
        ((), json["id"].as_str().unwrap().to_string())
    };
    let t0 = Instant::now();
    let idle_until = t0 + Duration::from_secs(WINDOW_SECONDS);
    let load_until = idle_until + Duration::from_secs(2 * WINDOW_SECONDS + 5);
    let mut timeline = Vec::new();
    while Instant::now() < idle_until {
        timeline.push(verdict(&client, &server.base, t0).await);
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
    let load = steady_load(&server.base, &id, load_until);
    while Instant::now() < load_until {
        timeline.push(verdict(&client, &server.base, t0).await);
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
    let mut requests = 0;
    for l in load {
        requests += l.await.unwrap();
    }
    for (t, v, at_rest, in_flight) in &timeline {
        println!("{t:5.1} s  {v:8}  heap at rest {at_rest:6.1} MiB  in flight {in_flight:6.1} MiB");
    }
    println!("{requests} requests in the plateau");
    assert!(
        timeline.iter().all(|(_, v, _, _)| v != "growing"),
        "a healthy load step read as growth"
    );
    assert!(
        timeline.iter().any(|(_, v, _, _)| v == "stable"),
        "the verdict was reached"
    );
}

/// A shared library, preloaded, whose thread leaks 2 MiB every 2 s
/// (written, so resident) in a function named for the heap profile.
fn leaking_library(dir: &std::path::Path) -> std::path::PathBuf {
    let source = dir.join("leak.c");
    std::fs::write(
        &source,
        r#"
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
void *imaginator_test_leaky_function(void *unused) {
    (void) unused;
    for (int i = 0; i < 100; i++) { /* bounded: 200 MiB */
        char *p = malloc(2 << 20);
        if (p) memset(p, 0x5A, 2 << 20);
        sleep(2);
    }
    return 0;
}
__attribute__((constructor)) static void start(void) {
    pthread_t t;
    if (getenv("IMAGINATOR_TEST_LEAK") && pthread_create(&t, 0, imaginator_test_leaky_function, 0) == 0)
        pthread_detach(t);
}
"#,
    )
    .unwrap();
    let library = dir.join("libleak.so");
    let built = std::process::Command::new("cc")
        .args(["-shared", "-fPIC", "-O1", "-pthread", "-o"])
        .arg(&library)
        .arg(&source)
        .status()
        .unwrap();
    assert!(built.success(), "cc builds the leaking library");
    library
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_real_leak_under_load_reads_growing_within_three_windows_and_names_its_function() {
    let dir = tempfile::tempdir().unwrap();
    let library = leaking_library(dir.path());
    let server = start_process(&[
        ("LD_PRELOAD", library.display().to_string()),
        ("IMAGINATOR_TEST_LEAK", "1".to_string()),
    ]);
    let client = reqwest::Client::new();
    let switched = client
        .post(format!("{}/debug/profiling", server.base))
        .json(&serde_json::json!({"active": true}))
        .send()
        .await
        .unwrap();
    assert_eq!(switched.status(), 200);
    // Under steady load (the case that cried wolf before).
    let photo: serde_json::Value = client
        .post(format!("{}/images", server.base))
        .header("content-type", "image/jpeg")
        .body(fixture("photo.jpg"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let load = steady_load(
        &server.base,
        photo["id"].as_str().unwrap(),
        Instant::now() + Duration::from_secs(2 * WINDOW_SECONDS + 10),
    );
    let t0 = Instant::now();
    // A growth profile over the whole time the verdict forms: the sampler
    // keeps sampling meanwhile (it went blind while profiling before).
    let growth = {
        let (client, base) = (client.clone(), server.base.clone());
        tokio::spawn(async move {
            client
                .get(format!("{base}/debug/heap_growth?seconds={}", 2 * WINDOW_SECONDS + 10))
                .send()
                .await
                .unwrap()
                .text()
                .await
                .unwrap()
        })
    };
    let mut timeline = Vec::new();
    let deadline = t0 + Duration::from_secs(3 * WINDOW_SECONDS + 10);
    let mut first_growing = None;
    while Instant::now() < deadline {
        let v = verdict(&client, &server.base, t0).await;
        if v.1 == "growing" && first_growing.is_none() {
            first_growing = Some(v.0);
        }
        timeline.push(v);
        if first_growing.is_some() {
            break;
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
    for (t, v, at_rest, in_flight) in &timeline {
        println!("{t:5.1} s  {v:8}  heap at rest {at_rest:6.1} MiB  in flight {in_flight:6.1} MiB");
    }
    let first = first_growing.expect("a real leak of 2 MiB every 2 s reads growing");
    println!("first `growing` after {first:.1} s ({WINDOW_SECONDS} s windows)");
    assert!(
        first <= (3 * WINDOW_SECONDS) as f64 + 5.0,
        "within three windows of the leak's start"
    );
    assert!(
        !growth.is_finished(),
        "the verdict formed while a growth profile was being taken"
    );
    let growth = growth.await.unwrap();
    for l in load {
        l.await.unwrap();
    }
    let top = growth.lines().next().unwrap_or_default();
    println!("heap growth, top: {top}");
    let leaf = top
        .rsplit_once(' ')
        .map_or("", |(stack, _)| stack)
        .rsplit(';')
        .next()
        .unwrap();
    assert_eq!(
        leaf, "imaginator_test_leaky_function",
        "the leaking function is on top: {top}"
    );
}
