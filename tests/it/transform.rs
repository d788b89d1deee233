//! End to end: real images through `POST /transform/{alias}` on a real server.

use crate::common;

use crate::common::{TestServer, decode, error_code, fixture, psnr};
use image::{GenericImageView, ImageFormat};

#[tokio::test]
async fn thumbnail_turns_every_input_format_into_a_fitted_jpeg() {
    let server = TestServer::start().await;
    for (name, (w, h)) in [
        ("photo.jpg", (100, 63)),
        ("alpha.png", (100, 63)),
        ("photo.webp", (100, 63)),
        ("photo.gif", (100, 63)),
        ("photo.tiff", (100, 63)),
    ] {
        let response = server.post("/transform/thumbnail?width=100", fixture(name)).await;
        assert_eq!(response.status(), 200, "{name}");
        assert_eq!(response.headers()["content-type"], "image/jpeg", "{name}");
        let (format, img) = decode(&response.bytes().await.unwrap());
        assert_eq!(format, ImageFormat::Jpeg, "{name}");
        assert_eq!(img.dimensions(), (w, h), "{name}");
    }
    server.stop().await;
}

#[tokio::test]
async fn thumbnail_never_enlarges_and_defaults_to_400() {
    let server = TestServer::start().await;
    let response = server.post("/transform/thumbnail", fixture("photo.gif")).await;
    assert_eq!(decode(&response.bytes().await.unwrap()).1.dimensions(), (320, 200));
    let response = server.post("/transform/thumbnail", fixture("photo.jpg")).await;
    assert_eq!(decode(&response.bytes().await.unwrap()).1.dimensions(), (400, 250));
    server.stop().await;
}

#[tokio::test]
async fn thumbnail_applies_exif_orientation_and_strips_metadata() {
    let server = TestServer::start().await;
    // Stored 480x300 with EXIF orientation 6 (rotate 90° clockwise to display).
    let response = server
        .post("/transform/thumbnail?width=100", fixture("oriented.jpg"))
        .await;
    assert_eq!(response.status(), 200);
    let bytes = response.bytes().await.unwrap();
    assert_eq!(decode(&bytes).1.dimensions(), (63, 100), "displayed as portrait");
    assert!(
        !bytes.windows(6).any(|w| w == b"Exif\0\0"),
        "no EXIF left in the output"
    );
    server.stop().await;
}

#[tokio::test]
async fn thumbnail_looks_like_the_source() {
    let server = TestServer::start().await;
    let source = image::load_from_memory(&fixture("photo.jpg")).unwrap();
    let response = server
        .post("/transform/thumbnail?width=200", fixture("photo.jpg"))
        .await;
    let (_, thumb) = decode(&response.bytes().await.unwrap());
    let reference = source.resize_exact(200, 125, image::imageops::FilterType::Lanczos3);
    let score = psnr(&thumb, &reference);
    assert!(
        score > 30.0,
        "PSNR against a Lanczos reference is {score:.1} dB, expected > 30"
    );
    server.stop().await;
}

#[tokio::test]
async fn avatar_is_an_exact_centre_cover_crop() {
    let server = TestServer::start().await;
    let response = server.post("/transform/avatar?size=64", fixture("photo.jpg")).await;
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["content-type"], "image/jpeg");
    let (format, avatar) = decode(&response.bytes().await.unwrap());
    assert_eq!(format, ImageFormat::Jpeg);
    assert_eq!(avatar.dimensions(), (64, 64));
    let source = image::load_from_memory(&fixture("photo.jpg")).unwrap();
    let centre = source.resize_to_fill(64, 64, image::imageops::FilterType::Lanczos3);
    let off_centre = source
        .crop_imm(0, 0, 500, 500)
        .resize_exact(64, 64, image::imageops::FilterType::Lanczos3);
    let (good, bad) = (psnr(&avatar, &centre), psnr(&avatar, &off_centre));
    assert!(good > 25.0, "PSNR against a centre crop is {good:.1} dB");
    assert!(
        good > bad + 3.0,
        "centre crop ({good:.1} dB) must match better than a corner crop ({bad:.1} dB)"
    );

    // Default size 256, and small sources are enlarged to fill the box.
    let response = server.post("/transform/avatar", fixture("photo.gif")).await;
    assert_eq!(response.status(), 200, "{:?}", response.headers());
    assert_eq!(decode(&response.bytes().await.unwrap()).1.dimensions(), (256, 256));
    server.stop().await;
}

#[tokio::test]
async fn preview_keeps_png_with_alpha_and_gif_and_turns_the_rest_into_jpeg() {
    let server = TestServer::start().await;
    let response = server.post("/transform/preview", fixture("alpha.png")).await;
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["content-type"], "image/png");
    let (format, img) = decode(&response.bytes().await.unwrap());
    assert_eq!(format, ImageFormat::Png);
    assert_eq!(img.dimensions(), (240, 150));
    assert!(img.color().has_alpha(), "alpha survives");
    let rgba = img.to_rgba8();
    assert!(
        rgba.get_pixel(2, 75)[3] < 40 && rgba.get_pixel(237, 75)[3] > 215,
        "the alpha gradient is kept"
    );

    for name in ["photo.jpg", "photo.webp", "photo.tiff"] {
        let response = server.post("/transform/preview", fixture(name)).await;
        assert_eq!(response.headers()["content-type"], "image/jpeg", "{name}");
        assert_eq!(decode(&response.bytes().await.unwrap()).0, ImageFormat::Jpeg, "{name}");
    }
    // GIF stays GIF (animated ones stay animated: tests/it/animation.rs).
    let response = server.post("/transform/preview", fixture("photo.gif")).await;
    assert_eq!(response.headers()["content-type"], "image/gif");
    assert_eq!(decode(&response.bytes().await.unwrap()).0, ImageFormat::Gif);
    server.stop().await;
}

#[tokio::test]
async fn cmyk_jpeg_is_accepted() {
    let server = TestServer::start().await;
    let response = server.post("/transform/thumbnail?width=50", fixture("cmyk.jpg")).await;
    assert_eq!(response.status(), 200);
    assert_eq!(decode(&response.bytes().await.unwrap()).1.width(), 50);
    server.stop().await;
}

#[tokio::test]
async fn bad_parameters_get_400_naming_the_parameter() {
    let server = TestServer::start().await;
    for (query, needle) in [
        ("width=0", "width"),
        ("width=4097", "width"),
        ("width=big", "width"),
        ("height=10", "height"),
    ] {
        let response = server
            .post(&format!("/transform/thumbnail?{query}"), fixture("photo.gif"))
            .await;
        let (status, code, message) = error_code(response).await;
        assert_eq!((status, code.as_str()), (400, "invalid_parameter"), "{query}");
        assert!(message.contains(needle), "{query}: {message}");
    }
    server.stop().await;
}

#[tokio::test]
async fn bad_input_gets_a_clear_json_error_and_the_server_keeps_serving() {
    let server = TestServer::start_with(&[], |s| s.max_body = imaginator::config::ByteSize(64 * 1024)).await;
    let cases: Vec<(&str, Vec<u8>, u16, &str)> = vec![
        ("unknown alias", fixture("photo.gif"), 404, "unknown_alias"),
        (
            "text body",
            b"hello, I am not an image".to_vec(),
            415,
            "unsupported_format",
        ),
        (
            "svg body",
            b"<svg xmlns='http://www.w3.org/2000/svg'/>".to_vec(),
            415,
            "unsupported_format",
        ),
        ("empty body", Vec::new(), 400, "empty_body"),
        ("too large", fixture("photo.jpg"), 413, "body_too_large"),
        ("truncated png", fixture("invalid-trunc.png"), 422, "undecodable_image"),
        (
            "corrupt zlib png",
            fixture("invalid-zlib.png"),
            422,
            "undecodable_image",
        ),
        (
            "jpeg magic then garbage",
            [&[0xFF, 0xD8, 0xFF, 0xE0][..], &[0x42; 600][..]].concat(),
            422,
            "undecodable_image",
        ),
    ];
    for (what, body, status, code) in cases {
        let path = if what == "unknown alias" {
            "/transform/nope"
        } else {
            "/transform/thumbnail"
        };
        let got = error_code(server.post(path, body).await).await;
        assert_eq!((got.0, got.1.as_str()), (status, code), "{what}: {}", got.2);
    }
    let response = server.post("/transform/thumbnail?width=10", fixture("photo.gif")).await;
    assert_eq!(response.status(), 200, "still serving");
    server.stop().await;
}

#[tokio::test]
async fn images_beyond_the_dimension_limits_are_refused_before_decoding() {
    let server = TestServer::start_with(&[], |s| s.limits.max_width = 300).await;
    let (status, code, message) = error_code(server.post("/transform/thumbnail", fixture("photo.jpg")).await).await;
    assert_eq!((status, code.as_str()), (413, "image_too_large"));
    assert!(message.contains("800x500"), "{message}");
    let scrape = server.metrics().await;
    assert_eq!(
        common::metric_value(&scrape, "imaginator_job_run_seconds_count"),
        0.0,
        "refused on the header, before any job ran"
    );
    server.stop().await;
}

#[tokio::test]
async fn unknown_routes_and_methods_answer_json() {
    let server = TestServer::start().await;
    let (status, code, _) = error_code(server.get("/no/such/route").await).await;
    assert_eq!((status, code.as_str()), (404, "not_found"));
    let (status, code, _) = error_code(server.get("/transform/thumbnail").await).await;
    assert_eq!((status, code.as_str()), (405, "method_not_allowed"));
    server.stop().await;
}
