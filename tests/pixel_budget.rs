//! ImageMagick's pixel-cache budget is process-wide (the first server's
//! limits win), so tests that need their own budget live in their own test
//! binary, that is their own process.

mod common;

use common::{TestServer, error_code, fixture};

/// An image that needs more pixel cache than the whole budget on an idle
/// server is too large (413), not "overloaded": a retry would fail the same
/// way, and Retry-After would invite one.
#[tokio::test]
async fn an_image_larger_than_the_whole_pixel_budget_is_413_not_503() {
    let server = TestServer::start_with(&[], |s| {
        s.limits.magick_memory = imaginator::config::ByteSize::mib(16);
    })
    .await;
    // 3000 x 3000 (9 MP, about 72 MB of pixel cache) of a tiny PNG file.
    let image = image::RgbImage::from_pixel(3000, 3000, image::Rgb([40, 90, 160]));
    let mut png = Vec::new();
    image
        .write_to(&mut std::io::Cursor::new(&mut png), image::ImageFormat::Png)
        .unwrap();
    let response = server.post("/transform/thumbnail", png).await;
    assert!(response.headers().get("retry-after").is_none(), "no retry invited");
    let (status, code, message) = error_code(response).await;
    assert_eq!((status, code.as_str()), (413, "image_too_large"), "{message}");
    assert!(message.contains("magick_memory"), "{message}");
    let ok = server.post("/transform/thumbnail?width=50", fixture("photo.jpg")).await;
    assert_eq!(ok.status(), 200, "a normal image still works");
    server.stop().await;
}
