//! Health, readiness, alias listing and metrics of a running server.

use crate::common::{self, TestServer, fixture, metric_value};

#[tokio::test]
async fn health_and_readiness() {
    let server = TestServer::start().await;
    let response = server.get("/healthz").await;
    assert_eq!(response.status(), 200);
    let response = server.get("/readyz").await;
    assert_eq!(response.status(), 200);
    let body: serde_json::Value = response.json().await.unwrap();
    assert_eq!(body["status"], "ready");
    assert_eq!(body["checks"]["workers_alive"], 2);
    assert_eq!(body["checks"]["data_dir_writable"], true);
    let shipped = std::fs::read_dir(common::repo_path("aliases"))
        .unwrap()
        .filter(|e| e.as_ref().unwrap().path().extension().is_some_and(|x| x == "toml"))
        .count();
    assert_eq!(body["checks"]["aliases_loaded"], shipped, "every shipped alias file");
    server.stop().await;
}

#[tokio::test]
async fn aliases_are_listed_with_their_parameters() {
    let server = TestServer::start().await;
    let body: serde_json::Value = server.get("/aliases").await.json().await.unwrap();
    let aliases = body["aliases"].as_array().unwrap();
    let thumbnail = aliases
        .iter()
        .find(|a| a["name"] == "thumbnail")
        .expect("thumbnail listed");
    assert!(!thumbnail["description"].as_str().unwrap().is_empty());
    let width = &thumbnail["params"][0];
    assert_eq!(width["name"], "width");
    assert_eq!(width["type"], "int");
    assert_eq!(width["default"], 400);
    assert_eq!(width["min"], 1);
    assert_eq!(width["max"], 4096);
    let avatar = aliases.iter().find(|a| a["name"] == "avatar").expect("avatar listed");
    assert_eq!(avatar["params"][0]["name"], "size");
    assert_eq!(avatar["params"][0]["default"], 256);
    assert_eq!(avatar["params"][0]["max"], 2048);
    let preview = aliases.iter().find(|a| a["name"] == "preview").expect("preview listed");
    // Only the device pixel ratio every alias takes.
    let params: Vec<&str> = preview["params"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["name"].as_str().unwrap())
        .collect();
    assert_eq!(params, ["dpr"]);
    assert_eq!(preview["output"]["keep"][0], "png");
    server.stop().await;
}

#[tokio::test]
async fn metrics_count_requests_by_matched_route_and_jobs_by_outcome() {
    let server = TestServer::start().await;
    for _ in 0..2 {
        let response = server.post("/transform/thumbnail?width=20", fixture("photo.gif")).await;
        assert_eq!(response.status(), 200);
    }
    let _ = server.post("/transform/thumbnail", fixture("invalid-trunc.png")).await;
    let _ = server.get("/definitely/not/here").await;
    let scrape = server.metrics().await;
    for name in [
        "imaginator_http_requests_total",
        "imaginator_http_request_duration_seconds",
        "imaginator_jobs_total",
        "imaginator_queue_depth",
        "imaginator_job_queue_seconds",
        "imaginator_job_run_seconds",
    ] {
        assert!(
            scrape.contains(&format!("# TYPE {name} ")),
            "{name} missing from:\n{scrape}"
        );
    }
    assert_eq!(
        metric_value(
            &scrape,
            "imaginator_http_requests_total{method=\"POST\",route=\"/transform/{alias}\",status=\"200\"}"
        ),
        2.0
    );
    assert_eq!(
        metric_value(
            &scrape,
            "imaginator_http_requests_total{method=\"GET\",route=\"/{*chain}\",status=\"404\"}"
        ),
        1.0,
        "raw paths never become labels"
    );
    assert_eq!(metric_value(&scrape, "imaginator_jobs_total{outcome=\"ok\"}"), 2.0);
    assert_eq!(
        metric_value(&scrape, "imaginator_jobs_total{outcome=\"bad_input\"}"),
        1.0
    );
    assert_eq!(metric_value(&scrape, "imaginator_job_run_seconds_count"), 3.0);
    assert_eq!(
        metric_value(
            &scrape,
            "imaginator_alias_requests_total{alias=\"thumbnail\",status=\"200\"}"
        ),
        2.0
    );
    assert_eq!(
        metric_value(
            &scrape,
            "imaginator_alias_requests_total{alias=\"thumbnail\",status=\"422\"}"
        ),
        1.0,
        "errors by alias"
    );
    server.stop().await;
}
