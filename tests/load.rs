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
