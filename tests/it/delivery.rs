//! Modern delivery (issue 31): aliases that negotiate their format from
//! `Accept`, client hints, Save-Data, progressive output, the copyright kept
//! through stripping, weak ETags, every body form on every body route, and
//! every rejection in our JSON.

use crate::common::{self, TestServer, decode, error_code, fixture, identify};
use image::GenericImageView;

const AVIF_FIRST: &str = "image/avif,image/webp,image/apng,image/*,*/*;q=0.8";

async fn upload(server: &TestServer, bytes: Vec<u8>) -> String {
    let (status, body) = server.upload(bytes).await;
    assert!(status == 201 || status == 200, "{body}");
    body["id"].as_str().unwrap().to_string()
}

async fn get_accepting(server: &TestServer, path: &str, accept: &str) -> reqwest::Response {
    server
        .client
        .get(server.url(path))
        .header("accept", accept)
        .send()
        .await
        .unwrap()
}

fn sniffed(bytes: &[u8]) -> imaginator::pipeline::format::ImageFormat {
    imaginator::pipeline::format::ImageFormat::sniff(bytes).expect("an image")
}

#[tokio::test]
async fn an_auto_alias_answers_the_best_format_the_client_accepts_and_keys_each() {
    use imaginator::pipeline::format::ImageFormat::*;
    let server = TestServer::start().await;
    let id = upload(&server, fixture("photo.jpg")).await;
    let path = format!("/images/{id}/picture?width=200");
    let mut etags = Vec::new();
    for (accept, format, mime) in [
        (AVIF_FIRST, Avif, "image/avif"),
        ("image/webp,*/*", Webp, "image/webp"),
        ("image/avif;q=0,image/webp;q=0.9,*/*;q=0.1", Webp, "image/webp"),
        ("*/*", Jpeg, "image/jpeg"),
        ("image/jpeg", Jpeg, "image/jpeg"),
    ] {
        let r = get_accepting(&server, &path, accept).await;
        assert_eq!(r.status(), 200, "{accept}");
        assert_eq!(r.headers()["content-type"], mime, "{accept}");
        assert_eq!(r.headers()["vary"], "Accept", "{accept}");
        let etag = r.headers()["etag"].to_str().unwrap().to_string();
        let bytes = r.bytes().await.unwrap();
        assert_eq!(sniffed(&bytes), format, "{accept}");
        etags.push((mime, etag));
    }
    // Each variant is its own cache entry: asking again is a hit.
    let again = get_accepting(&server, &path, AVIF_FIRST).await;
    assert_eq!(again.headers()["x-cache"], "hit-memory");
    assert_eq!(again.headers()["etag"].to_str().unwrap(), etags[0].1);
    assert_ne!(etags[0].1, etags[3].1, "AVIF and JPEG differ in key and ETag");
    assert_eq!(etags[1].1, etags[2].1, "two Accepts that choose WebP share the entry");
    // A 304 names what it varies on too.
    let r = server
        .client
        .get(server.url(&path))
        .header("accept", AVIF_FIRST)
        .header("if-none-match", &etags[0].1)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 304);
    assert_eq!(r.headers()["vary"], "Accept");
    // POST /transform negotiates the same way.
    let r = server
        .client
        .post(server.url("/transform/picture?width=100"))
        .header("accept", "image/webp")
        .body(fixture("photo.jpg"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.headers()["content-type"], "image/webp");
    assert_eq!(r.headers()["vary"], "Accept");
}

#[tokio::test]
async fn auto_formats_limits_what_auto_may_choose() {
    use imaginator::pipeline::format::ImageFormat::*;
    let server = TestServer::start_with(&[], |s| s.auto_formats = vec![Webp]).await;
    let id = upload(&server, fixture("photo.jpg")).await;
    let r = get_accepting(&server, &format!("/images/{id}/picture?width=120"), AVIF_FIRST).await;
    assert_eq!(sniffed(&r.bytes().await.unwrap()), Webp, "AVIF is off");
    let none = TestServer::start_with(&[], |s| s.auto_formats = vec![]).await;
    let id = upload(&none, fixture("photo.jpg")).await;
    let r = get_accepting(&none, &format!("/images/{id}/picture?width=120"), AVIF_FIRST).await;
    assert_eq!(sniffed(&r.bytes().await.unwrap()), Jpeg);
}

#[tokio::test]
async fn the_fallback_keeps_alpha_as_png() {
    use imaginator::pipeline::format::ImageFormat::*;
    let server = TestServer::start().await;
    let id = upload(&server, fixture("alpha.png")).await;
    let path = format!("/images/{id}/picture?width=100");
    let old = get_accepting(&server, &path, "*/*").await;
    assert_eq!(old.headers()["content-type"], "image/png");
    let (format, img) = decode(&old.bytes().await.unwrap());
    assert_eq!(format, image::ImageFormat::Png);
    assert!(img.color().has_alpha(), "transparency kept");
    let modern = get_accepting(&server, &path, "image/webp,*/*").await;
    assert_eq!(sniffed(&modern.bytes().await.unwrap()), Webp);
    // A photo without alpha falls back to JPEG.
    let id = upload(&server, fixture("photo.jpg")).await;
    let r = get_accepting(&server, &format!("/images/{id}/picture?width=100"), "*/*").await;
    assert_eq!(sniffed(&r.bytes().await.unwrap()), Jpeg);
}

#[tokio::test]
async fn alias_files_take_jpg_and_progressive_output() {
    let alias = "chain = \"fit-in(300,300)\"\n[output]\nformat = \"jpg\"\nprogressive = true\n";
    let server = TestServer::start_with(&[("prog", alias)], |_| {}).await;
    let r = server.post("/transform/prog", fixture("photo.jpg")).await;
    assert_eq!(r.status(), 200);
    let body = r.bytes().await.unwrap();
    assert_eq!(identify(&body, "%m %[interlace]"), "JPEG JPEG", "a progressive JPEG");
    let plain = server
        .post("/transform/thumbnail?width=300", fixture("photo.jpg"))
        .await;
    assert_eq!(identify(&plain.bytes().await.unwrap(), "%[interlace]"), "None");
    // A format no alias can write is refused at start-up, naming the choices.
    let dir = common::aliases_with(&[("bad", "chain = \"fit-in(1,1)\"\n[output]\nformat = \"bmp\"\n")]);
    let e = imaginator::pipeline::alias::AliasSet::load_dir(dir.path())
        .unwrap_err()
        .to_string();
    assert!(e.contains("bad.toml") && e.contains("auto, jpeg (jpg)"), "{e}");
}

/// The JPEG fixture with an EXIF block naming an artist and a copyright.
fn photo_with_attribution() -> Vec<u8> {
    let exif = imaginator::pipeline::exif::Exif {
        artist: Some("Ann Example".into()),
        copyright: Some("(c) 2026 Ann Example".into()),
        ..Default::default()
    };
    let block = exif.attribution_block().unwrap();
    let photo = fixture("photo.jpg");
    let mut out = photo[..2].to_vec();
    out.extend_from_slice(&[0xFF, 0xE1]);
    out.extend_from_slice(&((block.len() + 2) as u16).to_be_bytes());
    out.extend_from_slice(&block);
    out.extend_from_slice(&photo[2..]);
    out
}

#[tokio::test]
async fn stripping_keeps_the_copyright_and_artist_unless_told_not_to() {
    let all = "chain = \"fit-in(200,200)\"\n[output]\nformat = \"jpeg\"\nkeep_copyright = false\n";
    let server = TestServer::start_with(&[("bare", all)], |_| {}).await;
    let source = photo_with_attribution();
    assert_eq!(
        identify(&source, "%[EXIF:Artist]"),
        "Ann Example",
        "the fixture carries it"
    );
    for (path, format) in [
        ("/transform/thumbnail?width=200", "jpeg"),
        ("/transform/preview", "jpeg"),
    ] {
        let r = server.post(path, source.clone()).await;
        assert_eq!(r.status(), 200, "{path}");
        let out = r.bytes().await.unwrap();
        assert_eq!(
            identify(&out, "%[EXIF:Copyright]"),
            "(c) 2026 Ann Example",
            "{path} ({format})"
        );
        assert_eq!(identify(&out, "%[EXIF:Artist]"), "Ann Example", "{path}");
        assert_eq!(
            identify(&out, "%[EXIF:Orientation]"),
            "",
            "{path}: nothing else of the EXIF"
        );
    }
    let r = server.post("/transform/bare", source).await;
    let out = r.bytes().await.unwrap();
    assert_eq!(
        identify(&out, "%[EXIF:Copyright]"),
        "",
        "keep_copyright = false strips it"
    );
}

#[tokio::test]
async fn client_hints_size_renditions_and_are_named_in_vary() {
    let server = TestServer::start_with(&[], |s| s.client_hints = true).await;
    let id = upload(&server, fixture("photo.jpg")).await;
    let get = |path: String, hints: Vec<(&'static str, &'static str)>| {
        let server = &server;
        async move {
            let mut request = server.client.get(server.url(&path));
            for (k, v) in hints {
                request = request.header(k, v);
            }
            request.send().await.unwrap()
        }
    };
    let plain = get(format!("/images/{id}/thumbnail?width=100"), vec![]).await;
    assert_eq!(plain.headers()["accept-ch"], "Sec-CH-DPR, Sec-CH-Width, DPR, Width");
    assert_eq!(plain.headers()["vary"], "Sec-CH-DPR, DPR, Save-Data");
    let base = plain.bytes().await.unwrap();
    assert_eq!(decode(&base).1.dimensions(), (100, 63));
    // Sec-CH-DPR (or DPR) doubles the pixels of a rendition without `dpr`.
    for hint in [("sec-ch-dpr", "2"), ("dpr", "2")] {
        let r = get(format!("/images/{id}/thumbnail?width=100"), vec![hint]).await;
        assert_eq!(decode(&r.bytes().await.unwrap()).1.dimensions(), (200, 125), "{hint:?}");
    }
    // The query wins over the hint.
    let r = get(
        format!("/images/{id}/thumbnail?width=100&dpr=1.5"),
        vec![("sec-ch-dpr", "3")],
    )
    .await;
    assert_eq!(decode(&r.bytes().await.unwrap()).1.dimensions(), (150, 94));
    // Sec-CH-Width (device pixels) fills a `width` the query leaves out.
    let r = get(format!("/images/{id}/thumbnail"), vec![("sec-ch-width", "320")]).await;
    assert_eq!(r.headers()["vary"], "Sec-CH-DPR, DPR, Sec-CH-Width, Width, Save-Data");
    assert_eq!(decode(&r.bytes().await.unwrap()).1.dimensions(), (320, 200));
    let r = get(format!("/images/{id}/thumbnail"), vec![("width", "300"), ("dpr", "2")]).await;
    assert_eq!(
        decode(&r.bytes().await.unwrap()).1.dimensions(),
        (300, 188),
        "150 CSS px at 2x"
    );
    // Save-Data: on lowers the quality by 20 (the thumbnail's 80 to 60).
    let saving = get(format!("/images/{id}/thumbnail?width=100"), vec![("save-data", "on")]).await;
    let saved = saving.bytes().await.unwrap();
    assert_eq!(identify(&base, "%Q"), "80");
    assert_eq!(identify(&saved, "%Q"), "60");
    assert!(saved.len() < base.len(), "{} >= {}", saved.len(), base.len());

    // Off (the default): no Accept-CH, hints ignored, nothing added to Vary.
    let off = TestServer::start().await;
    let id = upload(&off, fixture("photo.jpg")).await;
    let r = off
        .client
        .get(off.url(&format!("/images/{id}/thumbnail?width=100")))
        .header("sec-ch-dpr", "2")
        .send()
        .await
        .unwrap();
    assert!(r.headers().get("accept-ch").is_none());
    assert!(r.headers().get("vary").is_none());
    assert_eq!(decode(&r.bytes().await.unwrap()).1.dimensions(), (100, 63));
}

#[tokio::test]
async fn if_none_match_compares_weakly() {
    let server = TestServer::start().await;
    let id = upload(&server, fixture("photo.jpg")).await;
    for path in [format!("/images/{id}/thumbnail?width=64"), format!("/images/{id}")] {
        let etag = server.get(&path).await.headers()["etag"].to_str().unwrap().to_string();
        assert!(!etag.starts_with("W/"));
        for tag in [etag.clone(), format!("W/{etag}"), format!("\"other\", W/{etag}")] {
            assert_eq!(
                server.get_if_none_match(&path, &tag).await.status(),
                304,
                "{path} {tag}"
            );
        }
        assert_eq!(server.get_if_none_match(&path, "W/\"other\"").await.status(), 200);
    }
}

#[tokio::test]
async fn every_body_route_takes_the_image_raw_under_any_type_or_as_multipart() {
    let server = TestServer::start().await;
    let photo = fixture("photo.jpg");
    for route in ["/images", "/info", "/transform/thumbnail?width=50"] {
        for content_type in [
            None,
            Some("application/x-www-form-urlencoded"),
            Some("text/plain"),
            Some("image/jpeg"),
            Some("application/octet-stream"),
        ] {
            let mut request = server.client.post(server.url(route)).body(photo.clone());
            if let Some(t) = content_type {
                request = request.header("content-type", t);
            }
            let r = request.send().await.unwrap();
            assert!(r.status().is_success(), "{route} as {content_type:?}: {}", r.status());
        }
        let form = reqwest::multipart::Form::new().part(
            "file",
            reqwest::multipart::Part::bytes(photo.clone()).file_name("photo.jpg"),
        );
        let r = server
            .client
            .post(server.url(route))
            .multipart(form)
            .send()
            .await
            .unwrap();
        assert!(r.status().is_success(), "{route} multipart: {}", r.status());
        let form = reqwest::multipart::Form::new().part("image", reqwest::multipart::Part::bytes(photo.clone()));
        let (status, code, _) = error_code(
            server
                .client
                .post(server.url(route))
                .multipart(form)
                .send()
                .await
                .unwrap(),
        )
        .await;
        assert_eq!((status, code.as_str()), (400, "missing_file"), "{route}");
        let (status, code, _) = error_code(server.client.post(server.url(route)).send().await.unwrap()).await;
        assert_eq!((status, code.as_str()), (400, "empty_body"), "{route}");
        let (status, code, _) = error_code(server.post(route, b"just text".to_vec()).await).await;
        assert_eq!((status, code.as_str()), (415, "unsupported_format"), "{route}");
    }
}

/// Status, code and message of a rejection, asserting it is our JSON.
async fn rejection(r: reqwest::Response) -> (u16, String, String) {
    let status = r.status().as_u16();
    let ctype = r.headers().get("content-type").map(|v| v.to_str().unwrap().to_string());
    let text = r.text().await.unwrap();
    assert_eq!(ctype.as_deref(), Some("application/json"), "{status}: {text}");
    let v: serde_json::Value = serde_json::from_str(&text).unwrap_or_else(|_| panic!("not JSON: {text}"));
    let code = v["error"]["code"]
        .as_str()
        .unwrap_or_else(|| panic!("no code: {text}"))
        .to_string();
    let message = v["error"]["message"]
        .as_str()
        .unwrap_or_else(|| panic!("no message: {text}"))
        .to_string();
    assert!(!message.is_empty());
    for debug in ["Number {", "Some(", "..=", "Err(", "Ok("] {
        assert!(!message.contains(debug), "Rust debug text in {message}");
    }
    (status, code, message)
}

#[tokio::test]
async fn every_rejection_is_json_and_names_the_nearest_name() {
    let server = TestServer::start_with(&[], |s| s.allow_builtin_filters = true).await;
    let c = &server.client;
    // axum's own extractor rejections.
    let cases: Vec<(reqwest::RequestBuilder, u16)> = vec![
        (
            c.post(server.url("/admin/purge"))
                .header("content-type", "text/plain")
                .body("{}"),
            415,
        ),
        (
            c.post(server.url("/admin/purge"))
                .header("content-type", "application/json")
                .body("{not json"),
            400,
        ),
        (
            c.post(server.url("/admin/purge"))
                .header("content-type", "application/json")
                .body("{\"everything\":1}"),
            422,
        ),
        (c.get(server.url("/ui/api/chain")), 400),
        (c.get(server.url("/debug/heap_growth?seconds=abc")), 400),
        (c.delete(server.url("/healthz")), 405),
        (c.get(server.url("/nothing/here")), 404),
    ];
    for (request, status) in cases {
        let (got, code, message) = rejection(request.send().await.unwrap()).await;
        assert_eq!(got, status, "{code}: {message}");
    }
    // Our own, with suggestions and without Rust's notation.
    let id = upload(&server, fixture("photo.jpg")).await;
    let (_, code, message) = rejection(server.get(&format!("/images/{id}/thumbnial")).await).await;
    assert_eq!(code, "unknown_alias");
    assert!(message.contains("did you mean `thumbnail`?"), "{message}");
    let (_, code, message) = rejection(server.get(&format!("/images/{id}/thumbnail?widht=10")).await).await;
    assert_eq!(code, "invalid_parameter");
    assert!(message.contains("did you mean `width`?"), "{message}");
    let (_, code, message) = rejection(server.get(&format!("/original({id}):resise(10,10)")).await).await;
    assert_eq!(code, "unknown_filter");
    assert!(message.contains("did you mean `resize`?"), "{message}");
    let (_, _, message) = rejection(server.get(&format!("/original({id}):quality(0)")).await).await;
    assert!(message.contains("between 1 and 100"), "{message}");
    let (_, _, message) = rejection(server.get(&format!("/original({id}):dpr(9)")).await).await;
    assert!(message.contains("dpr"), "{message}");
}

#[tokio::test]
async fn the_root_opens_the_playground_or_lists_the_routes() {
    let server = TestServer::start().await;
    let client = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let r = client.get(server.url("/")).send().await.unwrap();
    assert!(r.status().is_redirection(), "{}", r.status());
    assert_eq!(r.headers()["location"], "/ui");
    let headless = TestServer::start_with(&[], |s| {
        s.ui.enabled = imaginator::config::UiEnabled::Off;
    })
    .await;
    let r = client.get(headless.url("/")).send().await.unwrap();
    assert_eq!(r.status(), 200);
    let index: serde_json::Value = r.json().await.unwrap();
    assert!(index["routes"]["POST /images"].is_string(), "{index}");
}
