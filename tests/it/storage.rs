//! Originals and the result cache, end to end.

use crate::common;

use crate::common::{TestServer, error_code, files_under, fixture, metric_value, png_declaring};

fn id_of(body: &serde_json::Value) -> String {
    body["id"].as_str().expect("id").to_string()
}

#[tokio::test]
async fn uploads_are_content_addressed_and_idempotent() {
    let server = TestServer::start().await;
    let (status, first) = server.upload(fixture("photo.jpg")).await;
    assert_eq!(status, 201);
    assert_eq!(first["format"], "jpeg");
    assert_eq!(first["width"], 800);
    assert_eq!(first["height"], 500);
    assert_eq!(first["bytes"], fixture("photo.jpg").len());
    assert_eq!(id_of(&first).len(), 64);
    let (status, again) = server.upload(fixture("photo.jpg")).await;
    assert_eq!(status, 200);
    assert_eq!(again, first);

    // Multipart, field `file`, reaches the same original.
    let form = reqwest::multipart::Form::new().part(
        "file",
        reqwest::multipart::Part::bytes(fixture("photo.jpg")).file_name("p.jpg"),
    );
    let response = server
        .client
        .post(server.url("/images"))
        .multipart(form)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(response.json::<serde_json::Value>().await.unwrap(), first);

    // Orientation is applied to the reported size.
    let (_, oriented) = server.upload(fixture("oriented.jpg")).await;
    assert_eq!(
        (oriented["width"].as_u64(), oriented["height"].as_u64()),
        (Some(300), Some(480))
    );
    server.stop().await;
}

#[tokio::test]
async fn originals_come_back_byte_for_byte_with_caching_headers() {
    let server = TestServer::start().await;
    for name in ["photo.jpg", "alpha.png", "photo.webp", "photo.gif", "photo.tiff"] {
        let (_, meta) = server.upload(fixture(name)).await;
        let id = id_of(&meta);
        let response = server.get(&format!("/images/{id}")).await;
        assert_eq!(response.status(), 200, "{name}");
        let headers = response.headers().clone();
        assert_eq!(headers["etag"], format!("\"{id}\""));
        assert!(headers["cache-control"].to_str().unwrap().contains("immutable"));
        let mime = headers["content-type"].to_str().unwrap().to_string();
        assert!(mime.starts_with("image/"), "{mime}");
        assert_eq!(
            response.bytes().await.unwrap().as_ref(),
            fixture(name).as_slice(),
            "{name}"
        );

        let head = server.head(&format!("/images/{id}")).await;
        assert_eq!(head.status(), 200);
        assert_eq!(head.headers()["content-type"].to_str().unwrap(), mime);
        assert!(head.bytes().await.unwrap().is_empty());

        let cached = server
            .get_if_none_match(&format!("/images/{id}"), &format!("\"{id}\""))
            .await;
        assert_eq!(cached.status(), 304);
    }
    let (status, code, _) = error_code(server.get(&format!("/images/{}", "0".repeat(64))).await).await;
    assert_eq!((status, code.as_str()), (404, "image_not_found"));
    let (status, _, _) = error_code(server.get("/images/..%2F..%2Fetc%2Fpasswd").await).await;
    assert_eq!(status, 404);
    server.stop().await;
}

/// HEAD and 304 answer from the metadata alone: with the stored blob
/// emptied on disk they still give the original's length and type. GET
/// streams the blob with its length declared up front.
#[tokio::test]
async fn head_and_304_read_no_blob_and_get_streams_it() {
    let data = tempfile::tempdir().unwrap();
    let server = TestServer::start_in(data.path(), &[], |_| {}).await;
    let photo = fixture("photo.jpg");
    let (_, meta) = server.upload(photo.clone()).await;
    let id = id_of(&meta);
    let blob = files_under(data.path())
        .into_iter()
        .map(|(p, _)| p)
        .find(|p| p.file_name().is_some_and(|n| n == id.as_str()))
        .expect("the stored blob");
    std::fs::write(&blob, b"").unwrap();
    let head = server.head(&format!("/images/{id}")).await;
    assert_eq!(head.status(), 200);
    assert_eq!(head.headers()["content-length"], photo.len().to_string().as_str());
    assert_eq!(head.headers()["content-type"], "image/jpeg");
    let cached = server
        .get_if_none_match(&format!("/images/{id}"), &format!("\"{id}\""))
        .await;
    assert_eq!(cached.status(), 304);

    std::fs::write(&blob, &photo).unwrap();
    let full = server.get(&format!("/images/{id}")).await;
    assert_eq!(full.status(), 200);
    assert_eq!(full.headers()["content-length"], photo.len().to_string().as_str());
    assert_eq!(full.bytes().await.unwrap().as_ref(), photo.as_slice());
    server.stop().await;
}

#[tokio::test]
async fn bad_uploads_are_refused_and_nothing_is_stored() {
    let server = TestServer::start_with(&[], |s| {
        s.max_body = imaginator::config::ByteSize(150 * 1024);
        s.upload_formats
            .retain(|f| *f != imaginator::pipeline::format::ImageFormat::Gif);
    })
    .await;
    let big = [fixture("photo.jpg"), vec![0; 100 * 1024]].concat();
    let cases: Vec<(&str, Vec<u8>, &str, u16, &str)> = vec![
        ("too big", big, "image/jpeg", 413, "body_too_large"),
        (
            "not an image",
            b"just text".to_vec(),
            "image/jpeg",
            415,
            "unsupported_format",
        ),
        (
            "disallowed format",
            fixture("photo.gif"),
            "image/gif",
            415,
            "format_not_allowed",
        ),
        (
            "bomb dimensions",
            png_declaring(100_000, 100_000),
            "image/png",
            413,
            "image_too_large",
        ),
        (
            "undecodable",
            fixture("invalid-trunc.png")[..60].to_vec(),
            "image/png",
            422,
            "undecodable_image",
        ),
        ("empty", Vec::new(), "image/png", 400, "empty_body"),
    ];
    for (what, body, content_type, status, code) in cases {
        let response = server
            .client
            .post(server.url("/images"))
            .header("content-type", content_type)
            .body(body)
            .send()
            .await
            .unwrap();
        let got = error_code(response).await;
        assert_eq!((got.0, got.1.as_str()), (status, code), "{what}: {}", got.2);
    }
    let stored: Vec<_> = files_under(&server.data.join("originals"));
    assert!(stored.is_empty(), "nothing stored: {stored:?}");
    server.stop().await;
}

#[tokio::test]
async fn renditions_miss_then_hit_memory_then_hit_disk_after_a_restart() {
    let data = tempfile::tempdir().unwrap();
    let server = TestServer::start_in(data.path(), &[], |_| {}).await;
    let (_, meta) = server.upload(fixture("photo.jpg")).await;
    let path = format!("/images/{}/thumbnail?width=120", id_of(&meta));
    let first = server.get(&path).await;
    assert_eq!(first.status(), 200);
    assert_eq!(first.headers()["x-cache"], "miss");
    assert_eq!(first.headers()["content-type"], "image/jpeg");
    let etag = first.headers()["etag"].to_str().unwrap().to_string();
    let bytes = first.bytes().await.unwrap();
    let (_, img) = common::decode(&bytes);
    assert_eq!((img.width(), img.height()), (120, 75));

    let second = server.get(&path).await;
    assert_eq!(second.headers()["x-cache"], "hit-memory");
    assert_eq!(second.headers()["etag"].to_str().unwrap(), etag);
    assert_eq!(second.bytes().await.unwrap(), bytes);

    let not_modified = server
        .client
        .get(server.url(&path))
        .header("if-none-match", &etag)
        .send()
        .await
        .unwrap();
    assert_eq!(not_modified.status(), 304);
    server.stop().await;

    let server = TestServer::start_in(data.path(), &[], |_| {}).await;
    let third = server.get(&path).await;
    assert_eq!(third.headers()["x-cache"], "hit-disk");
    assert_eq!(third.bytes().await.unwrap(), bytes);
    let fourth = server.get(&path).await;
    assert_eq!(fourth.headers()["x-cache"], "hit-memory");
    // Different parameters are different work.
    let other = server
        .get(&format!("/images/{}/thumbnail?width=60", id_of(&meta)))
        .await;
    assert_eq!(other.headers()["x-cache"], "miss");
    server.stop().await;
}

#[tokio::test]
async fn a_damaged_disk_entry_is_discarded_not_served() {
    let data = tempfile::tempdir().unwrap();
    let server = TestServer::start_in(data.path(), &[], |_| {}).await;
    let (_, meta) = server.upload(fixture("photo.jpg")).await;
    let path = format!("/images/{}/avatar?size=64", id_of(&meta));
    let good = server.get(&path).await.bytes().await.unwrap();
    server.stop().await;

    let entries = files_under(&data.path().join("cache"));
    assert_eq!(entries.len(), 1);
    let mut damaged = std::fs::read(&entries[0].0).unwrap();
    let last = damaged.len() - 10;
    damaged[last] ^= 0xFF;
    std::fs::write(&entries[0].0, &damaged).unwrap();

    let server = TestServer::start_in(data.path(), &[], |_| {}).await;
    let response = server.get(&path).await;
    assert_eq!(response.headers()["x-cache"], "miss", "the damaged entry is not served");
    assert_eq!(response.bytes().await.unwrap(), good);
    let scrape = server.metrics().await;
    assert_eq!(metric_value(&scrape, "imaginator_cache_corrupt_entries_total"), 1.0);
    server.stop().await;
}

#[tokio::test]
async fn identical_concurrent_misses_run_one_job() {
    let server = TestServer::start().await;
    let (_, meta) = server.upload(fixture("photo.jpg")).await;
    let before = metric_value(&server.metrics().await, "imaginator_jobs_total{outcome=\"ok\"}");
    let path = server.url(&format!("/images/{}/preview", id_of(&meta)));
    let requests: Vec<_> = (0..16)
        .map(|_| {
            let (client, url) = (server.client.clone(), path.clone());
            tokio::spawn(async move { client.get(url).send().await.unwrap().bytes().await.unwrap() })
        })
        .collect();
    let mut bodies = Vec::new();
    for r in requests {
        bodies.push(r.await.unwrap());
    }
    assert!(bodies.iter().all(|b| *b == bodies[0] && !b.is_empty()));
    let after = metric_value(&server.metrics().await, "imaginator_jobs_total{outcome=\"ok\"}");
    assert_eq!(after - before, 1.0, "16 identical requests, one job");
    server.stop().await;
}

#[tokio::test]
async fn purge_and_delete_remove_what_they_name() {
    let server = TestServer::start().await;
    let (_, a) = server.upload(fixture("photo.jpg")).await;
    let (_, b) = server.upload(fixture("photo.webp")).await;
    let (a, b) = (id_of(&a), id_of(&b));
    let get = |path: String| {
        let s = &server;
        async move { s.get(&path).await.headers()["x-cache"].to_str().unwrap().to_string() }
    };
    for id in [&a, &b] {
        get(format!("/images/{id}/thumbnail?width=50")).await;
        get(format!("/images/{id}/avatar?size=50")).await;
    }
    let purge = |body: serde_json::Value| {
        let s = &server;
        async move {
            let r = s.client.post(s.url("/admin/purge")).json(&body).send().await.unwrap();
            assert_eq!(r.status(), 200);
            r.json::<serde_json::Value>().await.unwrap()["purged"].as_u64().unwrap()
        }
    };
    assert!(purge(serde_json::json!({"alias": "avatar"})).await >= 2);
    assert_eq!(get(format!("/images/{a}/avatar?size=50")).await, "miss");
    assert_eq!(get(format!("/images/{a}/thumbnail?width=50")).await, "hit-memory");
    assert!(purge(serde_json::json!({"image": a})).await >= 2);
    assert_eq!(get(format!("/images/{a}/thumbnail?width=50")).await, "miss");
    assert_eq!(get(format!("/images/{b}/thumbnail?width=50")).await, "hit-memory");
    purge(serde_json::json!({"all": true})).await;
    assert_eq!(get(format!("/images/{b}/thumbnail?width=50")).await, "miss");
    assert!(files_under(&server.data.join("cache")).len() <= 1);

    let response = server
        .client
        .delete(server.url(&format!("/images/{b}")))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 204);
    let (status, code, _) = error_code(server.get(&format!("/images/{b}")).await).await;
    assert_eq!((status, code.as_str()), (404, "image_not_found"));
    let (status, _, _) = error_code(server.get(&format!("/images/{b}/thumbnail?width=50")).await).await;
    assert_eq!(status, 404, "its results are gone too");
    assert!(
        files_under(&server.data.join("cache"))
            .iter()
            .all(|(p, _)| !p.to_string_lossy().contains(&b))
    );
    let (status, _, _) = error_code(
        server
            .client
            .delete(server.url(&format!("/images/{b}")))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, 404);
    server.stop().await;
}

#[tokio::test]
async fn the_disk_tier_stays_within_its_budget() {
    let budget = 24 * 1024;
    let server = TestServer::start_with(&[], |s| {
        s.cache.disk = imaginator::config::ByteSize(budget);
        s.cache.memory = imaginator::config::ByteSize(8 * 1024);
    })
    .await;
    let (_, meta) = server.upload(fixture("photo.jpg")).await;
    // 19 renditions, about 60 KB in all (4:2:0 JPEG at q80).
    for width in (40..=400).step_by(20) {
        let r = server
            .get(&format!("/images/{}/thumbnail?width={width}", id_of(&meta)))
            .await;
        assert_eq!(r.status(), 200);
    }
    let on_disk: u64 = files_under(&server.data.join("cache")).iter().map(|(_, s)| s).sum();
    assert!(on_disk <= budget, "{on_disk} bytes on disk, budget {budget}");
    let scrape = server.metrics().await;
    assert!(metric_value(&scrape, "imaginator_cache_evictions_total{tier=\"disk\"}") > 0.0);
    assert!(metric_value(&scrape, "imaginator_cache_evictions_total{tier=\"memory\"}") > 0.0);
    assert!(metric_value(&scrape, "imaginator_cache_bytes{tier=\"memory\"}") <= 8.0 * 1024.0);
    server.stop().await;
}

/// DELETE wins against a rendition being computed at that moment: the job's
/// result goes to the request that asked for it, but is not stored, and the
/// next request for the rendition is a 404.
#[tokio::test]
async fn a_delete_during_a_rendition_job_leaves_nothing_behind() {
    let server = TestServer::start_with(&[common::HEAVY], |s| s.workers = 1).await;
    let (_, json) = server.upload(fixture("photo.jpg")).await;
    let id = json["id"].as_str().unwrap().to_string();
    let in_flight = {
        let (client, url) = (server.client.clone(), server.url(&format!("/images/{id}/heavy")));
        tokio::spawn(async move { client.get(url).send().await.unwrap().status() })
    };
    // Wait (boundedly) until the job runs (the upload's header check was the
    // first job), then delete.
    for _ in 0..500 {
        if common::metric_value(&server.metrics().await, "imaginator_job_queue_seconds_count") == 2.0 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    let deleted = server
        .client
        .delete(server.url(&format!("/images/{id}")))
        .send()
        .await
        .unwrap();
    assert_eq!(deleted.status(), 204);
    assert_eq!(
        in_flight.await.unwrap(),
        200,
        "the request that was running gets its answer"
    );
    let after = server.get(&format!("/images/{id}/heavy")).await;
    assert_eq!(after.status(), 404, "nothing of the deleted image is served afterwards");
    let cached = common::files_under(&server.data.join("cache"));
    assert!(cached.is_empty(), "nothing stored on disk: {cached:?}");
    server.stop().await;
}
