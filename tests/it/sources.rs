//! The source cache: a chain hit on a fresh `download()` makes no request to
//! the origin, a stale one is revalidated (a 304 costs the origin no body),
//! and an origin that changes its image gets the new image rendered. Against
//! a real local origin on 127.0.0.1 that counts what it is asked.

use crate::common::{TestServer, decode, fixture, metric_value};
use axum::Router;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use image::GenericImageView;
use std::sync::{Arc, Mutex};
use std::time::Duration;

#[derive(Default)]
struct Origin {
    /// 0: photo.jpg (landscape), 1: oriented.jpg (another image).
    version: u8,
    max_age: u32,
    /// 200s with a body, and 304s.
    full: u32,
    not_modified: u32,
}

type Shared = Arc<Mutex<Origin>>;

async fn image(State(origin): State<Shared>, headers: HeaderMap) -> Response {
    let mut o = origin.lock().unwrap();
    let etag = format!("\"v{}\"", o.version);
    let cache_control = format!("public, max-age={}", o.max_age);
    if headers.get(header::IF_NONE_MATCH).is_some_and(|v| v == etag.as_str()) {
        o.not_modified += 1;
        return (
            StatusCode::NOT_MODIFIED,
            [(header::ETAG, etag), (header::CACHE_CONTROL, cache_control)],
        )
            .into_response();
    }
    o.full += 1;
    let body = fixture(if o.version == 0 { "photo.jpg" } else { "oriented.jpg" });
    ([(header::ETAG, etag), (header::CACHE_CONTROL, cache_control)], body).into_response()
}

async fn start(max_age: u32, configure: impl FnOnce(&mut imaginator::Settings)) -> (TestServer, Shared) {
    let origin: Shared = Arc::new(Mutex::new(Origin {
        max_age,
        ..Origin::default()
    }));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://127.0.0.1:{}/", listener.local_addr().unwrap().port());
    let app = Router::new().route("/img.jpg", get(image)).with_state(origin.clone());
    tokio::spawn(async move { axum::serve(listener, app).await });
    let server = TestServer::start_with(&[], move |s| {
        s.domains.insert("origin".into(), base);
        s.allow_builtin_filters = true;
        configure(s);
    })
    .await;
    (server, origin)
}

fn counts(origin: &Shared) -> (u32, u32) {
    let o = origin.lock().unwrap();
    (o.full, o.not_modified)
}

async fn width_of(response: reqwest::Response) -> u32 {
    assert_eq!(response.status(), 200);
    decode(&response.bytes().await.unwrap()).1.dimensions().0
}

#[tokio::test]
async fn a_fresh_source_costs_the_origin_nothing() {
    let (server, origin) = start(60, |_| {}).await;
    let first = server.get("/download(origin:img.jpg):resize(100,0)").await;
    assert_eq!(first.headers()["x-cache"], "miss");
    assert_eq!(width_of(first).await, 100);
    assert_eq!(counts(&origin), (1, 0));
    for _ in 0..50 {
        let hit = server.get("/download(origin:img.jpg):resize(100,0)").await;
        assert_eq!(hit.headers()["x-cache"], "hit-memory");
        assert_eq!(width_of(hit).await, 100);
    }
    // A new result from the same fresh source: its bytes were kept.
    let other = server.get("/download(origin:img.jpg):resize(50,0)").await;
    assert_eq!(other.headers()["x-cache"], "miss");
    assert_eq!(width_of(other).await, 50);
    assert_eq!(counts(&origin), (1, 0), "52 chain requests, one origin request");
    let scrape = server.get("/metrics").await.text().await.unwrap();
    assert_eq!(
        metric_value(&scrape, "imaginator_source_cache_total{result=\"fresh\"}"),
        51.0
    );
    assert_eq!(
        metric_value(&scrape, "imaginator_source_cache_total{result=\"downloaded\"}"),
        1.0
    );
    server.stop().await;
}

#[tokio::test]
async fn a_stale_source_is_revalidated_and_a_changed_one_is_rendered_anew() {
    let (server, origin) = start(1, |_| {}).await;
    let url = "/download(origin:img.jpg):resize(100,0)";
    let first = server.get(url).await;
    let etag = first.headers()[header::ETAG].clone();
    assert_eq!(width_of(first).await, 100);
    assert_eq!(counts(&origin), (1, 0));

    tokio::time::sleep(Duration::from_millis(1100)).await;
    let again = server.get(url).await;
    assert_eq!(again.headers()[header::ETAG], etag, "the same content, the same result");
    assert_eq!(again.headers()["x-cache"], "hit-memory");
    assert_eq!(counts(&origin), (1, 1), "stale: revalidated with a 304, no body");

    origin.lock().unwrap().version = 1;
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let changed = server.get(url).await;
    assert_ne!(changed.headers()[header::ETAG], etag, "new content, a new result");
    assert_eq!(changed.headers()["x-cache"], "miss");
    let (_, img) = decode(&changed.bytes().await.unwrap());
    // oriented.jpg is stored landscape with EXIF orientation 6: portrait.
    assert_eq!(img.width(), 100);
    assert!(img.height() > img.width(), "the new image, oriented");
    assert_eq!(counts(&origin), (2, 1));
    server.stop().await;
}

#[tokio::test]
async fn bytes_not_kept_are_fetched_again_only_for_a_new_result() {
    let (server, origin) = start(60, |s| s.cache.sources_memory = imaginator::config::ByteSize(0)).await;
    assert_eq!(
        width_of(server.get("/download(origin:img.jpg):resize(100,0)").await).await,
        100
    );
    assert_eq!(
        width_of(server.get("/download(origin:img.jpg):resize(100,0)").await).await,
        100
    );
    assert_eq!(counts(&origin), (1, 0), "a hit needs only the content's name");
    assert_eq!(
        width_of(server.get("/download(origin:img.jpg):resize(50,0)").await).await,
        50
    );
    assert_eq!(counts(&origin), (2, 0), "a new result needs the bytes");

    // The origin changes its image while the cache still calls it fresh:
    // the bytes fetched for a new result name other content, and the chain
    // is resolved again with them.
    origin.lock().unwrap().version = 1;
    let changed = server.get("/download(origin:img.jpg):resize(40,0)").await;
    assert_eq!(changed.status(), 200);
    let (_, img) = decode(&changed.bytes().await.unwrap());
    assert!(
        img.height() > img.width(),
        "the new image, not the old one under its key"
    );
    assert_eq!(counts(&origin).0, 4);
    server.stop().await;
}

#[tokio::test]
async fn zero_entries_turn_the_source_cache_off() {
    let (server, origin) = start(60, |s| s.cache.sources_entries = 0).await;
    for _ in 0..3 {
        assert_eq!(
            width_of(server.get("/download(origin:img.jpg):resize(100,0)").await).await,
            100
        );
    }
    assert_eq!(counts(&origin), (3, 0), "every chain downloads");
    server.stop().await;
}
