//! The worker pool under pressure: a full queue sheds load with fast 503s,
//! deadlines free their worker, and the service recovers.

mod common;

use common::{HEAVY, TestServer, error_code, fixture, metric_value};
use std::time::{Duration, Instant};

#[tokio::test]
async fn a_saturated_pool_answers_503_with_retry_after_then_recovers() {
    let server = TestServer::start_with(&[HEAVY], |s| {
        s.workers = 1;
        s.queue = Some(1);
    })
    .await;
    let started = Instant::now();
    let post_heavy = || {
        let client = server.client.clone();
        let url = server.url("/transform/heavy");
        tokio::spawn(async move {
            let t = Instant::now();
            let r = client.post(url).body(fixture("photo.jpg")).send().await.unwrap();
            (r, t.elapsed())
        })
    };
    // First occupy the worker, and wait (boundedly) until it has taken the job...
    let mut requests = vec![post_heavy()];
    for _ in 0..500 {
        if metric_value(&server.metrics().await, "imaginator_job_queue_seconds_count") == 1.0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    // ...then five more: one fits in the queue slot, four are shed.
    requests.extend((0..5).map(|_| post_heavy()));
    let mut admitted = 0;
    let mut shed = Vec::new();
    for handle in requests {
        let (response, took) = handle.await.unwrap();
        match response.status().as_u16() {
            200 => admitted += 1,
            503 => {
                assert_eq!(response.headers()["retry-after"], "1");
                let (_, code, _) = error_code(response).await;
                assert_eq!(code, "overloaded");
                shed.push(took);
            }
            other => panic!("unexpected status {other}"),
        }
    }
    println!(
        "6 heavy requests against 1 worker + 1 slot: {admitted} admitted, {} shed (slowest 503 after {:?}), all done in {:?}",
        shed.len(),
        shed.iter().max(),
        started.elapsed()
    );
    assert_eq!(admitted, 2, "the running and the queued job succeed");
    assert_eq!(shed.len(), 4, "the rest are shed");

    let scrape = server.metrics().await;
    assert_eq!(
        metric_value(&scrape, "imaginator_jobs_total{outcome=\"rejected\"}"),
        shed.len() as f64
    );
    let response = server.post("/transform/thumbnail?width=50", fixture("photo.gif")).await;
    assert_eq!(response.status(), 200, "serves normally afterwards");
    server.stop().await;
}

#[tokio::test]
async fn a_job_past_its_deadline_answers_504_and_frees_its_worker() {
    let server = TestServer::start_with(&[HEAVY], |s| {
        s.workers = 1;
        s.job_deadline = imaginator::config::HumanDuration(Duration::from_millis(150));
    })
    .await;
    let started = Instant::now();
    let (status, code, _) = error_code(server.post("/transform/heavy", fixture("photo.jpg")).await).await;
    assert_eq!((status, code.as_str()), (504, "deadline_exceeded"));
    println!("504 after {:?}", started.elapsed());

    // The only worker must be free again for the next (small) job to make its deadline.
    let response = server.post("/transform/thumbnail?width=50", fixture("photo.gif")).await;
    assert_eq!(response.status(), 200);
    let scrape = server.metrics().await;
    assert_eq!(
        metric_value(&scrape, "imaginator_jobs_total{outcome=\"deadline\"}"),
        1.0
    );
    assert_eq!(metric_value(&scrape, "imaginator_jobs_total{outcome=\"ok\"}"), 1.0);
    server.stop().await;
}

fn raise_fd_limit() {
    let mut lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: plain getrlimit/setrlimit on our own process.
    unsafe {
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) == 0 && lim.rlim_cur < lim.rlim_max.min(8192) {
            lim.rlim_cur = lim.rlim_max.min(8192);
            libc::setrlimit(libc::RLIMIT_NOFILE, &lim);
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flood_of_512_connections_is_shed_fast_and_the_service_recovers() {
    raise_fd_limit();
    let server = TestServer::start_with(&[], |s| s.workers = 2).await; // queue: 4 x 2 = 8
    let photo = bytes::Bytes::from(fixture("photo.jpg"));
    let started = Instant::now();
    let requests: Vec<_> = (0..512)
        .map(|i| {
            // One client per request: 512 separate connections.
            let client = reqwest::Client::new();
            let url = server.url(&format!("/transform/thumbnail?width={}", 100 + i % 300));
            let body = photo.clone();
            tokio::spawn(async move {
                let t = Instant::now();
                let r = match client
                    .post(url)
                    .body(body)
                    .timeout(Duration::from_secs(120))
                    .send()
                    .await
                {
                    Ok(r) => r,
                    // A transport error (not an HTTP answer): counted below.
                    Err(e) => return (0, false, t.elapsed(), Some(e.to_string())),
                };
                let retry_after = r.headers().get("retry-after").is_some();
                let status = r.status().as_u16();
                let _ = r.bytes().await;
                (status, retry_after, t.elapsed(), None)
            })
        })
        .collect();
    let mut ok = Vec::new();
    let mut shed = Vec::new();
    let mut transport = Vec::new();
    for handle in requests {
        let (status, retry_after, took, error) = handle.await.unwrap();
        if let Some(e) = error {
            transport.push(e);
            continue;
        }
        match status {
            200 => ok.push(took),
            503 => {
                assert!(retry_after, "503 carries Retry-After");
                shed.push(took);
            }
            other => panic!("unexpected status {other}"),
        }
    }
    shed.sort();
    ok.sort();
    let p = |v: &Vec<Duration>, q: f64| {
        v.get(((v.len() as f64 * q) as usize).min(v.len().saturating_sub(1)))
            .copied()
    };
    let scrape = server.metrics().await;
    let rss = metric_value(&scrape, "imaginator_process_rss_anon_bytes") / 1048576.0;
    println!(
        "512 connections against 2 workers + 8 slots in {:?}: {} served (p99 {:?}), {} shed (p50 {:?}, p99 {:?}); RSS anon now {rss:.0} MiB",
        started.elapsed(),
        ok.len(),
        p(&ok, 0.99),
        shed.len(),
        p(&shed, 0.5),
        p(&shed, 0.99)
    );
    // 512 clients and the server share one test process and 2 cores: a rare
    // connection reset on the client side has been seen under a concurrent
    // CI build. Tolerate at most 1% and show them; every other request must
    // get an HTTP answer, 200 or 503 only.
    if !transport.is_empty() {
        println!("transport errors: {} (first: {})", transport.len(), transport[0]);
    }
    assert!(
        transport.len() <= 5,
        "{} transport errors: {:?}",
        transport.len(),
        &transport[..transport.len().min(3)]
    );
    assert!(ok.len() >= 10, "admitted requests succeed");
    assert!(!shed.is_empty(), "the excess is shed");
    assert_eq!(
        ok.len() + shed.len() + transport.len(),
        512,
        "every request answered: no deadlock"
    );
    let peak: f64 = std::fs::read_to_string("/proc/self/status")
        .unwrap()
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
        .unwrap_or(0.0);
    assert!(
        peak / 1024.0 < 1024.0,
        "peak RSS {:.0} MiB within a 1 GiB budget",
        peak / 1024.0
    );

    let response = server.post("/transform/thumbnail?width=50", fixture("photo.gif")).await;
    assert_eq!(response.status(), 200, "serves normally right after");
    server.stop().await;
}
