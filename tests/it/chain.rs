//! The original imaginator's URL language against real local HTTP origins on
//! 127.0.0.1: chains, aliases as filters, signed URLs, and the download rules
//! (SSRF refusal, redirect to a private address, oversized and slow origins).

use crate::common;

use crate::common::{TestServer, decode, error_code, fixture};
use axum::Router;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Redirect};
use axum::routing::get;
use image::GenericImageView;
use std::time::Duration;

/// A local origin: `/a.jpg` (a photo), `/big` (3 MiB), `/slow` (answers after
/// 5 s), `/to-private` (redirects to 127.0.0.2), `/to-a` (redirects to /a.jpg).
async fn origin() -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let app = Router::new()
        .route(
            "/a.jpg",
            get(|| async { ([(header::CONTENT_TYPE, "image/jpeg")], fixture("photo.jpg")) }),
        )
        .route("/big", get(|| async { vec![0xFFu8; 3 << 20] }))
        .route(
            "/slow",
            get(|| async {
                tokio::time::sleep(Duration::from_secs(5)).await;
                fixture("photo.jpg")
            }),
        )
        .route("/text", get(|| async { "not an image" }))
        .route("/missing", get(|| async { StatusCode::NOT_FOUND.into_response() }))
        .route(
            "/broken",
            get(|| async { StatusCode::INTERNAL_SERVER_ERROR.into_response() }),
        )
        .route(
            "/to-private",
            get(move || async move { Redirect::temporary(&format!("http://127.0.0.2:{port}/a.jpg")) }),
        )
        .route("/to-a", get(|| async { Redirect::temporary("/a.jpg") }))
        .route(
            "/short.jpg",
            get(|| async { ([(header::CACHE_CONTROL, "public, max-age=60")], fixture("photo.jpg")) }),
        );
    tokio::spawn(async move { axum::serve(listener, app).await });
    format!("http://127.0.0.1:{port}/")
}

async fn start(configure: impl FnOnce(&mut imaginator::Settings)) -> (TestServer, String) {
    let base = origin().await;
    let b = base.clone();
    let server = TestServer::start_with(&[], move |s| {
        s.domains.insert("origin".into(), b);
        s.download.timeout = imaginator::config::HumanDuration(Duration::from_secs(1));
        s.download.max_bytes = imaginator::config::ByteSize(1 << 20);
        configure(s);
    })
    .await;
    (server, base)
}

#[tokio::test]
async fn a_chain_downloads_and_applies_aliases() {
    let (server, base) = start(|s| s.log_filters_header = "X-Imaginator-Filters".into()).await;
    let response = server.get("/download(origin:a.jpg):thumbnail(100)").await;
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["x-cache"], "miss");
    let filters = response.headers()["x-imaginator-filters"].to_str().unwrap().to_string();
    assert!(
        filters.contains("download(origin:a.jpg), thumbnail") && filters.contains("miss"),
        "{filters}"
    );
    let (_, img) = decode(&response.bytes().await.unwrap());
    assert_eq!(img.dimensions(), (100, 63));

    // Nested form, percent-encoding and a trailing file name: the same work, now cached.
    let response = server.get("/thumbnail(download(origin%3Aa.jpg),100)/photo.jpg").await;
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["x-cache"], "hit-memory");
    // A URL under the shortcut's base is the same allowed origin.
    let response = server.get(&format!("/download({base}a.jpg):thumbnail(100)")).await;
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["x-cache"], "hit-memory");
    // A redirect inside the allowed origin is followed.
    let response = server.get("/download(origin:to-a):avatar(32)").await;
    assert_eq!(decode(&response.bytes().await.unwrap()).1.dimensions(), (32, 32));
    server.stop().await;
}

#[tokio::test]
async fn builtin_filters_only_when_allowed() {
    let (server, _) = start(|_| {}).await;
    let (status, code, _) = error_code(server.get("/download(origin:a.jpg):resize(10,10)").await).await;
    assert_eq!((status, code.as_str()), (403, "builtin_filter_forbidden"));
    server.stop().await;
    let (server, _) = start(|s| s.allow_builtin_filters = true).await;
    let response = server
        .get("/download(origin:a.jpg):resize(0.5w,0.5h):format(png)")
        .await;
    assert_eq!(response.headers()["content-type"], "image/png");
    assert_eq!(decode(&response.bytes().await.unwrap()).1.dimensions(), (400, 250));
    let (status, code, _) = error_code(server.get("/download(origin:a.jpg):explode(1)").await).await;
    assert_eq!((status, code.as_str()), (404, "unknown_filter"));
    server.stop().await;
}

#[tokio::test]
async fn download_rules_refuse_what_they_must() {
    let (server, base) = start(|_| {}).await;
    let cases = [
        // The same origin under another name (localhost): neither a shortcut nor on the allow list.
        (
            format!("/download({}a.jpg):thumbnail()", base.replace("127.0.0.1", "localhost")),
            403,
            "download_forbidden",
        ),
        (
            "/download(http://169.254.169.254/latest/meta-data):thumbnail()".to_string(),
            403,
            "download_forbidden",
        ),
        // An allowed origin redirecting to a private address: refused at the redirect.
        (
            "/download(origin:to-private):thumbnail()".to_string(),
            403,
            "download_forbidden",
        ),
        (
            "/download(origin:big):thumbnail()".to_string(),
            413,
            "download_too_large",
        ),
        (
            "/download(origin:slow):thumbnail()".to_string(),
            504,
            "download_timeout",
        ),
        (
            "/download(origin:text):thumbnail()".to_string(),
            415,
            "unsupported_format",
        ),
        (
            // The origin's 404 is ours too.
            "/download(origin:missing):thumbnail()".to_string(),
            404,
            "source_not_found",
        ),
        (
            // Its failure is the gateway's.
            "/download(origin:broken):thumbnail()".to_string(),
            502,
            "download_failed",
        ),
        (
            "/download(file:///etc/passwd):thumbnail()".to_string(),
            400,
            "invalid_url",
        ),
        (
            "/download(origin:a.jpg):thumbnail(0)".to_string(),
            400,
            "invalid_parameter",
        ),
        ("/download(origin:a.jpg):thumbnail(".to_string(), 400, "invalid_chain"),
    ];
    for (path, status, code) in cases {
        let started = std::time::Instant::now();
        let got = error_code(server.get(&path).await).await;
        assert_eq!((got.0, got.1.as_str()), (status, code), "{path}: {}", got.2);
        assert!(
            started.elapsed() < Duration::from_secs(4),
            "{path} answered within the download timeout"
        );
    }
    assert_eq!(server.get("/healthz").await.status(), 200);
    server.stop().await;
}

#[tokio::test]
async fn signed_urls_round_trip_and_nothing_unsigned_passes() {
    let secret = "a-long-enough-secret-0001";
    let (server, _) = start(|s| s.secrets = vec!["old-secret-still-valid-00".into(), secret.into()]).await;
    let chain = "download(origin:a.jpg):thumbnail(80)";
    let signature = imaginator::signature::sign(secret, chain);
    let response = server.get(&format!("/{signature}/{chain}")).await;
    assert_eq!(response.status(), 200);
    assert_eq!(decode(&response.bytes().await.unwrap()).1.width(), 80);

    let (status, code, _) = error_code(server.get(&format!("/{chain}")).await).await;
    assert_eq!((status, code.as_str()), (403, "invalid_signature"), "unsigned");
    let other = imaginator::signature::sign(secret, "download(origin:a.jpg):thumbnail(81)");
    let (status, _, _) = error_code(server.get(&format!("/{other}/{chain}")).await).await;
    assert_eq!(status, 403, "a signature for another chain");
    let legacy = imaginator::signature::sign_legacy(secret, chain)
        .replace('+', "-")
        .replace('/', "_");
    let (status, _, _) = error_code(server.get(&format!("/{legacy}/{chain}")).await).await;
    assert_eq!(status, 403, "legacy signatures are off by default");
    server.stop().await;

    let (server, _) = start(|s| {
        s.secrets = vec![secret.into()];
        s.legacy_sha1_signatures = true;
    })
    .await;
    let response = server.get(&format!("/{legacy}/{chain}")).await;
    assert_eq!(response.status(), 200, "the original's SHA-1 signatures when enabled");
    server.stop().await;
}

#[tokio::test]
async fn format_auto_negotiates_from_accept_and_varies_on_it() {
    let (server, _) = start(|_| {}).await;
    let path = server.url("/download(origin:a.jpg):thumbnail(64):format(auto)");
    let get = |accept: Option<&'static str>| {
        let (client, url) = (server.client.clone(), path.clone());
        async move {
            let mut req = client.get(url);
            if let Some(a) = accept {
                req = req.header("accept", a);
            }
            req.send().await.unwrap()
        }
    };
    let avif = get(Some("image/avif,image/webp,image/*;q=0.8")).await;
    assert_eq!(avif.headers()["content-type"], "image/avif");
    assert_eq!(avif.headers()["vary"], "Accept");
    let bytes = avif.bytes().await.unwrap();
    assert_eq!(
        imaginator::pipeline::format::ImageFormat::sniff(&bytes),
        Some(imaginator::pipeline::format::ImageFormat::Avif)
    );

    let webp = get(Some("image/avif;q=0.5,image/webp")).await;
    assert_eq!(webp.headers()["content-type"], "image/webp");
    assert_eq!(
        webp.headers()["x-cache"],
        "miss",
        "another negotiated format is other work"
    );
    assert_eq!(decode(&webp.bytes().await.unwrap()).1.width(), 64);

    let plain = get(None).await;
    assert_eq!(plain.headers()["content-type"], "image/jpeg");
    assert_eq!(plain.headers()["vary"], "Accept");
    let again = get(Some("image/avif")).await;
    assert_eq!(again.headers()["x-cache"], "hit-memory");
    server.stop().await;
}

/// A watermark alias: an uploaded logo laid over every image, on every path
/// (`/images/{id}/{alias}`, `/transform/{alias}`, and as a filter in a chain),
/// matching `magick photo.jpg -gravity southeast logo.png -geometry +10+10 -composite`.
#[tokio::test]
async fn a_watermark_alias_lays_an_uploaded_original_over_the_image() {
    let logo = fixture("alpha.png");
    let logo_id = imaginator::storage::ImageId::of(&logo).as_str().to_string();
    let missing = "f".repeat(64);
    let alias = format!(
        "chain = \"gravity(south-east):compose(original({logo_id}),over,{{margin}},{{margin}})\"\n\
         [[param]]\nname = \"margin\"\ntype = \"int\"\ndefault = 10\nmin = 0\nmax = 100\n\
         [output]\nformat = \"png\"\n"
    );
    let broken = format!("chain = \"compose(original({missing}),over,0,0)\"\n[output]\nformat = \"png\"\n");
    let origin = common::fixture_origin().await;
    let server = TestServer::start_with(&[("watermark", &alias), ("broken", &broken)], |s| {
        s.domains.insert("fx".into(), origin.clone());
    })
    .await;

    // Until the logo is uploaded the alias has nothing to lay over: a clear 404.
    let (status, photo) = server.upload(fixture("photo.jpg")).await;
    assert_eq!(status, 201);
    let photo_id = photo["id"].as_str().unwrap().to_string();
    let (status, code, _) = error_code(server.get(&format!("/images/{photo_id}/watermark")).await).await;
    assert_eq!((status, code.as_str()), (404, "not_found"));
    assert_eq!(server.upload(logo.clone()).await.0, 201);

    let dir = tempfile::tempdir().unwrap();
    let reference = dir.path().join("reference.png");
    let ok = std::process::Command::new("magick")
        .current_dir(common::repo_path(""))
        .args([
            "tests/fixtures/photo.jpg",
            "-gravity",
            "southeast",
            "tests/fixtures/alpha.png",
        ])
        .args(["-geometry", "+10+10", "-composite", "-strip"])
        .arg(&reference)
        .status()
        .unwrap();
    assert!(ok.success());
    let reference = image::open(&reference).unwrap();

    let stored = server.get(&format!("/images/{photo_id}/watermark")).await;
    assert_eq!(stored.status(), 200);
    let transformed = server.post("/transform/watermark", fixture("photo.jpg")).await;
    assert_eq!(transformed.status(), 200);
    // As a filter in a URL chain (built-ins stay disabled for clients).
    let chained = server.get("/download(fx:photo.jpg):watermark(10)").await;
    assert_eq!(chained.status(), 200);
    for (path, response) in [("stored", stored), ("transform", transformed), ("chain", chained)] {
        // The alias's output format holds on every path, a chain included.
        assert_eq!(response.headers()[header::CONTENT_TYPE], "image/png", "{path}");
        let (_, ours) = decode(&response.bytes().await.unwrap());
        assert_eq!(ours.dimensions(), reference.dimensions());
        let score = common::psnr(&ours, &reference);
        assert!(
            score.is_infinite(),
            "{path}: pixel-identical to magick, got {score:.2} dB"
        );
    }
    // A different margin is different work.
    let moved = server.get(&format!("/images/{photo_id}/watermark?margin=50")).await;
    assert_eq!(moved.headers()["x-cache"], "miss");

    let (status, code, _) = error_code(server.get(&format!("/images/{photo_id}/broken")).await).await;
    assert_eq!((status, code.as_str()), (404, "not_found"));
    server.stop().await;
}

/// Only content-addressed results are immutable: a result made from a
/// download gets `cache.download_max_age`, or the origin's shorter max-age.
#[tokio::test]
async fn results_of_downloads_are_not_immutable_and_follow_a_shorter_origin_max_age() {
    let (server, _) = start(|_| {}).await;
    let cache_control = |r: &reqwest::Response| r.headers()[header::CACHE_CONTROL].to_str().unwrap().to_string();
    let downloaded = server.get("/download(origin:a.jpg):thumbnail(100)").await;
    assert_eq!(downloaded.status(), 200);
    assert_eq!(cache_control(&downloaded), "public, max-age=86400");
    let short = server.get("/download(origin:short.jpg):thumbnail(100)").await;
    assert_eq!(cache_control(&short), "public, max-age=60");
    // An uploaded original is content-addressed: its renditions stay immutable.
    let (_, json) = server.upload(fixture("photo.jpg")).await;
    let id = json["id"].as_str().unwrap();
    let rendition = server.get(&format!("/images/{id}/thumbnail")).await;
    assert!(cache_control(&rendition).contains("immutable"));
    let chained = server.get(&format!("/original({id}):thumbnail(100)")).await;
    assert_eq!(chained.status(), 200);
    assert!(
        cache_control(&chained).contains("immutable"),
        "{}",
        cache_control(&chained)
    );
    server.stop().await;
}
