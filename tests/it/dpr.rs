//! Device pixel ratio: every alias takes `dpr` (1 to 4) and chains take a
//! `dpr(n)` step; sizes are multiplied, never beyond the source unless the
//! step enlarges anyway, and `dpr` is part of the cache key.

use crate::common::{TestServer, decode, error_code, fixture, metric_or_zero};

async fn size_of(server: &TestServer, path: &str) -> (u32, u32) {
    let r = server.get(path).await;
    assert_eq!(r.status(), 200, "{path}");
    let (_, img) = decode(&r.bytes().await.unwrap());
    (img.width(), img.height())
}

#[tokio::test]
async fn sizes_follow_the_device_pixel_ratio_up_to_the_source() {
    let server = TestServer::start().await;
    let (_, up) = server.upload(fixture("photo.jpg")).await; // 800 x 500
    let id = up["id"].as_str().unwrap();

    assert_eq!(
        size_of(&server, &format!("/images/{id}/thumbnail?width=200")).await,
        (200, 125)
    );
    assert_eq!(
        size_of(&server, &format!("/images/{id}/thumbnail?width=200&dpr=2")).await,
        (400, 250)
    );
    assert_eq!(
        size_of(&server, &format!("/images/{id}/thumbnail?width=200&dpr=1.5")).await,
        (300, 188)
    );
    // 4 x 200 would be 800 x 500: the source's own size, not more.
    assert_eq!(
        size_of(&server, &format!("/images/{id}/thumbnail?width=300&dpr=4")).await,
        (800, 500)
    );
    // A 2x avatar of 300 would be 600 x 600: the cover stops at the source's height.
    assert_eq!(
        size_of(&server, &format!("/images/{id}/avatar?size=300&dpr=2")).await,
        (500, 500)
    );
    assert_eq!(
        size_of(&server, &format!("/images/{id}/avatar?size=100&dpr=3")).await,
        (300, 300)
    );

    // Part of the cache key: a different rendition, then a hit of its own.
    let one = server.get(&format!("/images/{id}/thumbnail?width=200")).await;
    let two = server.get(&format!("/images/{id}/thumbnail?width=200&dpr=2")).await;
    assert_ne!(one.headers()["etag"], two.headers()["etag"]);
    assert_eq!(two.headers()["x-cache"], "hit-memory");

    // JPEG thumbnails at any ratio still take the fast path.
    let fast = metric_or_zero(&server.metrics().await, "imaginator_renders_total{engine=\"fast\"}");
    assert!(fast >= 3.0, "fast renders: {fast}");

    // Out of bounds: a clear 400.
    let (status, code, message) = error_code(server.get(&format!("/images/{id}/thumbnail?dpr=5")).await).await;
    assert_eq!((status, code.as_str()), (400, "invalid_parameter"), "{message}");
}

#[tokio::test]
async fn a_dpr_step_applies_to_the_geometry_that_follows_it() {
    let server = TestServer::start().await;
    let (_, up) = server.upload(fixture("photo.jpg")).await;
    let id = up["id"].as_str().unwrap();
    // Allowed with built-in filters off: it is a setting, like format().
    assert_eq!(
        size_of(&server, &format!("/original({id}):dpr(2):thumbnail(200)")).await,
        (400, 250)
    );
    assert_eq!(
        size_of(&server, &format!("/original({id}):thumbnail(200):dpr(2)")).await,
        (200, 125)
    );
    // The alias's own parameter, positionally (after its declared ones).
    assert_eq!(
        size_of(&server, &format!("/original({id}):thumbnail(200,2)")).await,
        (400, 250)
    );
    // An alias's dpr stops with the alias.
    assert_eq!(
        size_of(&server, &format!("/original({id}):thumbnail(400,2):avatar(100)")).await,
        (100, 100)
    );
    let (status, code, _) = error_code(server.get(&format!("/original({id}):dpr(0.5):thumbnail(200)")).await).await;
    assert_eq!((status, code.as_str()), (400, "invalid_parameter"));

    // Every alias lists the parameter with its bounds.
    let aliases: serde_json::Value = server.get("/aliases").await.json().await.unwrap();
    for alias in aliases["aliases"].as_array().unwrap() {
        let dpr = alias["params"]
            .as_array()
            .unwrap()
            .iter()
            .find(|p| p["name"] == "dpr")
            .unwrap_or_else(|| panic!("{} lists dpr", alias["name"]));
        assert_eq!(
            (dpr["min"].as_f64(), dpr["max"].as_f64(), dpr["default"].as_f64()),
            (Some(1.0), Some(4.0), Some(1.0))
        );
    }
}
