//! The worker pool under pressure: a full queue sheds load with fast 503s,
//! deadlines free their worker, and the service recovers.

use crate::common::{HEAVY, TestServer, error_code, fixture, metric_value};
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

/// Every one of 512 simultaneous clients (one connection each) gets an HTTP
/// answer: 200, or 503 with `Retry-After` and `Connection: close`, decided
/// before its body was read. Nothing may end in a transport error (a reset
/// connection): the server drains what a refused client still sends before
/// closing. Latencies are printed, not asserted (docs/benchmarks.md records
/// them); on this 2-core machine, with another build beside it, ten runs in a
/// row had 0 transport errors, and the worst shed p50 was recorded in
/// docs/benchmarks.md.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flood_of_512_connections_gets_an_http_answer_for_every_request_then_normal_service() {
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
                    Err(e) => return Err(format!("{e:?}")),
                };
                let h = r.headers();
                let header = |name: &str| h.get(name).and_then(|v| v.to_str().ok()).map(str::to_string);
                let (retry_after, connection) = (header("retry-after"), header("connection"));
                let status = r.status().as_u16();
                r.bytes().await.map_err(|e| format!("reading the answer: {e:?}"))?;
                Ok((status, retry_after, connection, t.elapsed()))
            })
        })
        .collect();
    let mut ok = Vec::new();
    let mut shed = Vec::new();
    let mut transport = Vec::new();
    for handle in requests {
        match handle.await.unwrap() {
            Err(e) => transport.push(e),
            Ok((200, _, _, took)) => ok.push(took),
            Ok((503, retry_after, connection, took)) => {
                assert_eq!(retry_after.as_deref(), Some("1"), "503 carries Retry-After");
                assert_eq!(
                    connection.as_deref(),
                    Some("close"),
                    "a 503 before the body closes the connection"
                );
                shed.push(took);
            }
            Ok((other, ..)) => panic!("unexpected status {other}"),
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
        "512 connections against 2 workers + 8 slots in {:?}: {} served (p50 {:?}, p99 {:?}), {} shed (p50 {:?}, p99 {:?}), {} transport errors; RSS anon now {rss:.0} MiB",
        started.elapsed(),
        ok.len(),
        p(&ok, 0.5),
        p(&ok, 0.99),
        shed.len(),
        p(&shed, 0.5),
        p(&shed, 0.99),
        transport.len(),
    );
    assert!(
        transport.is_empty(),
        "{} requests got no HTTP answer, e.g. {:?}",
        transport.len(),
        &transport[..transport.len().min(3)]
    );
    assert!(ok.len() >= 10, "admitted requests succeed");
    assert!(!shed.is_empty(), "the excess is shed");
    // What the clients saw is what the server says it answered.
    let served = |status: &str| {
        metric_value(
            &scrape,
            &format!(
                "imaginator_http_requests_total{{method=\"POST\",route=\"/transform/{{alias}}\",status=\"{status}\"}}"
            ),
        )
    };
    assert_eq!(served("200"), ok.len() as f64);
    assert_eq!(served("503"), shed.len() as f64);
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

/// Sends `head` on a new connection and reads the answer's head, without
/// sending any body (a raw client: reqwest always sends the body first).
async fn answer_before_body(addr: &str, head: &str) -> (tokio::net::TcpStream, String) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    stream.write_all(head.as_bytes()).await.unwrap();
    let mut answer = Vec::new();
    let mut buf = [0u8; 4096];
    // Bounded: a server that waited for the body would answer only at its
    // body timeout (configured far beyond this).
    tokio::time::timeout(Duration::from_secs(20), async {
        while !answer.windows(4).any(|w| w == b"\r\n\r\n") {
            let n = stream.read(&mut buf).await.unwrap();
            assert!(n > 0, "connection closed before an answer");
            answer.extend_from_slice(&buf[..n]);
        }
    })
    .await
    .expect("an answer before the body was sent");
    (stream, String::from_utf8_lossy(&answer).to_ascii_lowercase())
}

/// After the answer, the client sends the body it announced anyway (as
/// clients that do not wait for an early answer do) and must then see the
/// server's orderly close, not a reset.
async fn send_body_then_expect_orderly_close(mut stream: tokio::net::TcpStream, bytes: usize) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let chunk = vec![0u8; 64 * 1024];
    let mut sent = 0;
    while sent < bytes {
        let n = chunk.len().min(bytes - sent);
        stream
            .write_all(&chunk[..n])
            .await
            .expect("the server still reads what we send");
        sent += n;
    }
    let mut rest = Vec::new();
    let read = tokio::time::timeout(Duration::from_secs(20), stream.read_to_end(&mut rest)).await;
    match read {
        Ok(Ok(_)) => {}
        Ok(Err(e)) => panic!("the connection ended with {e} instead of an orderly close"),
        Err(_) => panic!("the server never closed the connection"),
    }
}

#[tokio::test]
async fn a_request_refused_for_load_is_answered_before_its_body_is_sent() {
    let server = TestServer::start_with(&[HEAVY], |s| {
        s.workers = 1;
        s.queue = Some(0);
        s.http.body_timeout = imaginator::config::HumanDuration(Duration::from_secs(120));
    })
    .await;
    // Occupy the only slot with a running job.
    let busy = {
        let (client, url) = (server.client.clone(), server.url("/transform/heavy"));
        tokio::spawn(async move {
            client
                .post(url)
                .body(fixture("photo.jpg"))
                .send()
                .await
                .unwrap()
                .status()
        })
    };
    for _ in 0..500 {
        if metric_value(&server.metrics().await, "imaginator_job_queue_seconds_count") == 1.0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let photo = fixture("photo.jpg");
    let addr = server.base.trim_start_matches("http://").to_string();
    let head = format!(
        "POST /transform/thumbnail HTTP/1.1\r\nHost: test\r\nContent-Type: image/jpeg\r\nContent-Length: {}\r\n\r\n",
        photo.len()
    );
    let (stream, answer) = answer_before_body(&addr, &head).await;
    assert!(answer.starts_with("http/1.1 503"), "{answer}");
    assert!(answer.contains("retry-after: 1"), "{answer}");
    assert!(answer.contains("connection: close"), "{answer}");
    send_body_then_expect_orderly_close(stream, photo.len()).await;
    assert_eq!(busy.await.unwrap(), 200, "the running job was not disturbed");
    server.stop().await;
}

#[tokio::test]
async fn a_body_declared_too_large_is_refused_before_it_is_sent_and_drained_after() {
    let server = TestServer::start_with(&[], |s| {
        s.max_body = imaginator::config::ByteSize(1 << 20);
    })
    .await;
    let addr = server.base.trim_start_matches("http://").to_string();
    let declared = 2 << 20;
    let head = format!(
        "POST /images HTTP/1.1\r\nHost: test\r\nContent-Type: image/jpeg\r\nContent-Length: {declared}\r\n\r\n"
    );
    let (stream, answer) = answer_before_body(&addr, &head).await;
    assert!(answer.starts_with("http/1.1 413"), "{answer}");
    assert!(answer.contains("connection: close"), "{answer}");
    send_body_then_expect_orderly_close(stream, declared).await;
    let scrape = server.metrics().await;
    assert_eq!(
        metric_value(&scrape, "imaginator_inflight_bytes"),
        0.0,
        "nothing held afterwards"
    );
    assert!(
        scrape.contains("imaginator_inflight_bytes 0"),
        "the in-flight gauge is exported"
    );
    server.stop().await;
}

#[tokio::test]
async fn clients_that_stall_are_cut_off_and_idle_connections_are_shed_at_the_cap() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let server = TestServer::start_with(&[], |s| {
        s.http.header_timeout = imaginator::config::HumanDuration(Duration::from_secs(1));
        s.http.body_timeout = imaginator::config::HumanDuration(Duration::from_secs(1));
        s.http.max_connections = 3;
    })
    .await;
    let addr = server.base.trim_start_matches("http://").to_string();
    // Headers that never end: the connection is closed at the header timeout.
    let mut stalled = tokio::net::TcpStream::connect(&addr).await.unwrap();
    stalled
        .write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Slow: ")
        .await
        .unwrap();
    let mut buf = [0u8; 1024];
    let closed = tokio::time::timeout(Duration::from_secs(20), stalled.read(&mut buf)).await;
    assert!(
        matches!(closed, Ok(Ok(0)) | Ok(Err(_))),
        "closed, not answered: {closed:?}"
    );

    // A body that stops halfway: 408 at the body timeout.
    let head = "POST /transform/thumbnail HTTP/1.1\r\nHost: x\r\nContent-Length: 1000\r\n\r\n0123456789";
    let (_, answer) = answer_before_body(&addr, head).await;
    assert!(answer.starts_with("http/1.1 408"), "{answer}");

    // Three idle connections fill the cap: a fourth is let in by shedding
    // the one idle the longest (it holds its place for nothing), at once
    // rather than at the header timeout.
    let mut idle: Vec<_> = futures::future::join_all((0..3).map(|_| tokio::net::TcpStream::connect(&addr)))
        .await
        .into_iter()
        .map(Result::unwrap)
        .collect();
    tokio::time::sleep(Duration::from_millis(100)).await;
    let waited = std::time::Instant::now();
    let response = reqwest::Client::new()
        .get(server.url("/healthz"))
        .timeout(Duration::from_secs(20))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    println!("a fourth connection was served after {:?}", waited.elapsed());
    assert!(
        waited.elapsed() < Duration::from_millis(900),
        "served before the idle ones timed out: {:?}",
        waited.elapsed()
    );
    let mut closed = 0;
    for conn in &mut idle {
        if let Ok(Ok(0)) = tokio::time::timeout(Duration::from_millis(100), conn.read(&mut buf)).await {
            closed += 1;
        }
    }
    assert!(closed >= 1, "an idle connection was shed");
    assert!(
        metric_value(
            &server.metrics().await,
            "imaginator_http_connections_shed_total{reason=\"idle\"}"
        ) >= 1.0
    );
    drop(idle);
    server.stop().await;
}
