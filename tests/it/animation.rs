//! Animated GIF and WebP keep their animation when the output can animate:
//! frame count, every frame's size and content, delays and loop count, on
//! generated animations and on real ones from Pillow's test images; the
//! memory estimate holds against what ImageMagick held; outputs that cannot
//! animate get the first frame. (An animation too large for the pixel
//! budget: tests/budget.rs, in its own process, since the budget
//! is process-wide.)

use crate::common;

use crate::common::{TestServer, repo_path};
use image::AnimationDecoder;
use imaginator::config::Limits;
use imaginator::magick;
use imaginator::pipeline::alias::AliasSet;
use imaginator::pipeline::chain::compile;
use imaginator::pipeline::format::ImageFormat;
use imaginator::pipeline::parse::{ParseLimits, parse_chain};
use imaginator::render::{Job, Source};
use std::time::{Duration, Instant};

const COLOURS: [[u8; 4]; 3] = [[220, 20, 20, 255], [20, 200, 40, 255], [30, 40, 220, 255]];
const DELAYS_MS: [u32; 3] = [100, 70, 40];

/// `frames` frames of `w` x `h`, cycling through `COLOURS` with a moving
/// white square (so frames differ in part, as real animations do), looping
/// `loops` times.
fn gif(w: u32, h: u32, frames: usize, loops: u16) -> Vec<u8> {
    use image::codecs::gif::{GifEncoder, Repeat};
    use image::{Delay, Frame, Rgba, RgbaImage};
    let mut out = Vec::new();
    {
        let mut encoder = GifEncoder::new_with_speed(&mut out, 30);
        encoder.set_repeat(Repeat::Finite(loops)).unwrap();
        for n in 0..frames {
            let mut frame = RgbaImage::from_pixel(w, h, Rgba(COLOURS[n % 3]));
            let x0 = (n as u32 * 7) % (w / 2);
            for y in 0..h / 4 {
                for x in x0..x0 + w / 4 {
                    frame.put_pixel(x, y, Rgba([255, 255, 255, 255]));
                }
            }
            let delay = Delay::from_numer_denom_ms(DELAYS_MS[n % 3], 1);
            encoder.encode_frame(Frame::from_parts(frame, 0, 0, delay)).unwrap();
        }
    }
    out
}

/// The loop count of a GIF's NETSCAPE2.0 extension (0: forever).
fn gif_loops(bytes: &[u8]) -> Option<u16> {
    let at = bytes.windows(11).position(|w| w == b"NETSCAPE2.0")?;
    let b = &bytes[at + 11..at + 16];
    (b[0] == 3 && b[1] == 1).then(|| u16::from_le_bytes([b[2], b[3]]))
}

/// (canvas size, frames as RGBA canvases with their delays in ms).
fn gif_frames(bytes: &[u8]) -> ((u32, u32), Vec<(image::RgbaImage, u32)>) {
    let decoder = image::codecs::gif::GifDecoder::new(std::io::Cursor::new(bytes)).unwrap();
    let size = image::ImageDecoder::dimensions(&decoder);
    let frames = decoder
        .into_frames()
        .collect_frames()
        .unwrap()
        .into_iter()
        .map(|f| {
            let (n, d) = f.delay().numer_denom_ms();
            (f.into_buffer(), n / d)
        })
        .collect();
    (size, frames)
}

fn close(a: &image::Rgba<u8>, b: [u8; 4]) -> bool {
    a.0.iter()
        .zip(b)
        .all(|(x, y)| (i32::from(*x) - i32::from(y)).abs() <= 24)
}

fn job(bytes: Vec<u8>, chain: &str) -> Job {
    let parsed = parse_chain(&format!("download(o:a.gif):{chain}"), ParseLimits::default()).unwrap();
    let plan = compile(&parsed, &AliasSet::default(), true).unwrap().plan;
    let limits = Limits::default();
    magick::init(&limits).unwrap();
    Job {
        sources: vec![Source {
            id: imaginator::storage::ImageId::of(&bytes),
            bytes: bytes.into(),
            format: ImageFormat::Gif,
            density: None,
            hold: None,
        }],
        plan,
        limits,
        deadline: Instant::now() + Duration::from_secs(60),
        decode_headroom: 1.0,
        fast_path: true,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn animations_keep_every_frame_delay_and_loop_count() {
    // First, alone in the process, the memory estimate against what
    // ImageMagick held while the frames were processed.
    let rendered = magick::run(job(gif(300, 200, 24, 5), "cover(150,100):format(gif)")).unwrap();
    assert_eq!(rendered.frames, 24);
    assert!(rendered.pixel_peak > 0);
    assert!(
        rendered.pixel_peak <= rendered.pixel_estimate,
        "ImageMagick held {} bytes, more than the {} estimated",
        rendered.pixel_peak,
        rendered.pixel_estimate
    );
    println!(
        "24 frames 300x200 -> 150x100: estimate {} KiB, peak held {} KiB",
        rendered.pixel_estimate >> 10,
        rendered.pixel_peak >> 10
    );

    let server = TestServer::start_with(&[], |s| s.allow_builtin_filters = true).await;
    let source = gif(120, 80, 3, 5);
    let (status, up) = server.upload(source.clone()).await;
    assert_eq!(status, 201);
    let id = up["id"].as_str().unwrap();

    // The preview alias keeps GIF as GIF, and the animation with it.
    let preview = server.get(&format!("/images/{id}/preview")).await;
    assert_eq!(preview.headers()["content-type"], "image/gif");
    let preview = preview.bytes().await.unwrap();
    let ((w, h), frames) = gif_frames(&preview);
    assert_eq!((w, h, frames.len()), (120, 80, 3));
    assert_eq!(gif_loops(&preview), Some(5), "loop count kept");
    for (n, (frame, delay)) in frames.iter().enumerate() {
        assert_eq!(*delay, DELAYS_MS[n], "frame {n}'s delay");
        assert!(
            close(frame.get_pixel(119, 79), COLOURS[n]),
            "frame {n}: {:?}",
            frame.get_pixel(119, 79)
        );
    }

    // Geometry applies to the whole canvas of every frame.
    let covered = server.get(&format!("/original({id}):cover(40,40):format(gif)")).await;
    let covered = covered.bytes().await.unwrap();
    let ((w, h), frames) = gif_frames(&covered);
    assert_eq!((w, h, frames.len()), (40, 40, 3));
    for (n, (frame, _)) in frames.iter().enumerate() {
        assert_eq!(frame.dimensions(), (40, 40));
        assert!(close(frame.get_pixel(39, 39), COLOURS[n]), "frame {n}");
    }

    // WebP animates too, with its delays.
    let webp = server.get(&format!("/original({id}):fit-in(60,60):format(webp)")).await;
    assert_eq!(webp.headers()["content-type"], "image/webp");
    let webp = webp.bytes().await.unwrap();
    let decoder = image::codecs::webp::WebPDecoder::new(std::io::Cursor::new(webp.as_ref())).unwrap();
    assert!(decoder.has_animation());
    let frames = decoder.into_frames().collect_frames().unwrap();
    assert_eq!(frames.len(), 3);
    for (n, f) in frames.iter().enumerate() {
        let (num, den) = f.delay().numer_denom_ms();
        assert_eq!(num / den, DELAYS_MS[n]);
        assert_eq!(f.buffer().dimensions(), (60, 40));
    }

    // format(auto) picks animated WebP for a client that takes it.
    let auto = server
        .client
        .get(server.url(&format!("/original({id}):fit-in(60,60):format(auto)")))
        .header("accept", "image/webp,image/*")
        .send()
        .await
        .unwrap();
    assert_eq!(auto.headers()["content-type"], "image/webp");
    let auto = auto.bytes().await.unwrap();
    assert!(
        image::codecs::webp::WebPDecoder::new(std::io::Cursor::new(auto.as_ref()))
            .unwrap()
            .has_animation()
    );

    // Outputs that cannot animate get the first frame.
    let still = server.get(&format!("/images/{id}/thumbnail?width=60")).await;
    assert_eq!(still.headers()["content-type"], "image/jpeg");
    let (_, img) = common::decode(&still.bytes().await.unwrap());
    assert!(close(
        &image::Rgba([
            img.to_rgba8().get_pixel(59, 39).0[0],
            img.to_rgba8().get_pixel(59, 39).0[1],
            img.to_rgba8().get_pixel(59, 39).0[2],
            255
        ]),
        COLOURS[0]
    ));

    // Real animations: every frame and delay of Pillow's test GIFs survive.
    for name in ["chi.gif", "dispose_bgnd.gif", "dispose_prev.gif"] {
        let path = repo_path("target/corpus/pillow").join(name);
        let Ok(bytes) = std::fs::read(&path) else {
            panic!("{} missing: run tests/corpus/fetch", path.display());
        };
        let (size, source_frames) = gif_frames(&bytes);
        let (status, up) = server.upload(bytes.clone()).await;
        assert_eq!(status, 201, "{name}");
        let out = server
            .get(&format!("/images/{}/preview", up["id"].as_str().unwrap()))
            .await;
        assert_eq!(out.status(), 200, "{name}");
        let out = out.bytes().await.unwrap();
        let (out_size, out_frames) = gif_frames(&out);
        assert_eq!(out_size, size, "{name}: within 1280 x 1280, kept as is");
        assert_eq!(out_frames.len(), source_frames.len(), "{name}: frames");
        let delays = |f: &[(image::RgbaImage, u32)]| f.iter().map(|(_, d)| *d).collect::<Vec<_>>();
        assert_eq!(delays(&out_frames), delays(&source_frames), "{name}: delays");
        assert_eq!(gif_loops(&out), gif_loops(&bytes).or(gif_loops(&out)), "{name}: loops");
        // Every frame looks like the source's frame.
        for (n, ((a, _), (b, _))) in out_frames.iter().zip(&source_frames).enumerate() {
            let diff: u64 = a
                .pixels()
                .zip(b.pixels())
                .map(|(p, q)| p.0.iter().zip(q.0).map(|(x, y)| u64::from(x.abs_diff(y))).sum::<u64>())
                .sum();
            let mean = diff as f64 / (4.0 * f64::from(a.width() * a.height()));
            assert!(mean < 6.0, "{name} frame {n}: mean difference {mean:.1}");
        }
        println!("{name}: {} frames of {}x{} kept", out_frames.len(), size.0, size.1);
    }
    server.stop().await;
}
