//! ImageMagick's pixel-cache budget is process-wide (the first server's
//! limits win), so the tests that need a small budget share this test
//! binary, that is their own process, and one budget.

mod common;

use common::{TestServer, error_code, fixture};
use imaginator::config::ByteSize;

/// The one budget of this process: 16 MiB of pixel cache.
const BUDGET: ByteSize = ByteSize::mib(16);

/// An image that needs more pixel cache than the whole budget on an idle
/// server is too large (413), not "overloaded": a retry would fail the same
/// way, and Retry-After would invite one.
#[tokio::test]
async fn an_image_larger_than_the_whole_pixel_budget_is_413_not_503() {
    let server = TestServer::start_with(&[], |s| {
        s.limits.magick_memory = BUDGET;
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

/// `frames` frames of `w` x `h` in alternating colours.
fn gif(w: u32, h: u32, frames: usize) -> Vec<u8> {
    use image::codecs::gif::{GifEncoder, Repeat};
    use image::{Delay, Frame, Rgba, RgbaImage};
    let mut out = Vec::new();
    {
        let mut encoder = GifEncoder::new_with_speed(&mut out, 30);
        encoder.set_repeat(Repeat::Infinite).unwrap();
        for n in 0..frames {
            let colour = if n % 2 == 0 {
                [200, 20, 20, 255]
            } else {
                [20, 20, 200, 255]
            };
            let frame = RgbaImage::from_pixel(w, h, Rgba(colour));
            encoder
                .encode_frame(Frame::from_parts(frame, 0, 0, Delay::from_numer_denom_ms(50, 1)))
                .unwrap();
        }
    }
    out
}

#[tokio::test]
async fn an_animation_too_large_for_the_pixel_budget_is_refused_before_decoding() {
    let server = TestServer::start_with(&[], |s| {
        s.allow_builtin_filters = true;
        s.limits.magick_memory = BUDGET;
    })
    .await;
    // 40 frames of 400 x 400: 40 x (160,000 + 160,000) pixels x 10 bytes = 122 MiB.
    let (status, up) = server.upload(gif(400, 400, 40)).await;
    assert_eq!(status, 201, "{up}");
    let id = up["id"].as_str().unwrap();
    // Every job that reaches the pool, run or refused there, is counted
    // when it leaves the queue.
    let queued = "imaginator_job_queue_seconds_count";
    let jobs_before = common::metric_or_zero(&server.metrics().await, queued);
    let (status, code, message) = error_code(server.get(&format!("/images/{id}/preview")).await).await;
    assert_eq!((status, code.as_str()), (413, "image_too_large"), "{message}");
    assert!(message.contains("40 frames"), "{message}");
    let jobs_after = common::metric_or_zero(&server.metrics().await, queued);
    assert_eq!(
        jobs_before, jobs_after,
        "refused before it queued (the worker never saw it)"
    );
    // Its first frame as a JPEG fits: the still path is unchanged.
    assert_eq!(
        server.get(&format!("/images/{id}/thumbnail?width=100")).await.status(),
        200
    );
}
