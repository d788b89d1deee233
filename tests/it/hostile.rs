//! Hostile clients against the real binary, one process per test so that
//! each can read its server's own peak RSS (`VmHWM`). Every test builds its
//! own hostile input, then checks the answer, that no decoder ran where a
//! header already told the truth, the server's peak memory against its
//! configured budget, and normal service right after.

use crate::common;

use crate::common::{fixture, start_binary_with};
use imaginator::pipeline::layers::craft;
use imaginator::pipeline::metadata::craft as craft_meta;
use std::io::{Read, Write};
use std::time::{Duration, Instant};

const EXE: &str = env!("CARGO_BIN_EXE_imaginator");

struct Server {
    child: std::process::Child,
    base: String,
    addr: String,
    _data: tempfile::TempDir,
}

impl Server {
    fn start(env: &[(&str, &str)]) -> Server {
        let data = tempfile::tempdir().unwrap();
        let env: Vec<(&str, String)> = env.iter().map(|(k, v)| (*k, v.to_string())).collect();
        let (child, addr) = start_binary_with(EXE, data.path(), &env);
        Server {
            child,
            base: format!("http://{addr}"),
            addr,
            _data: data,
        }
    }

    /// The server process's peak resident memory so far, MiB.
    fn peak_rss_mib(&self) -> f64 {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.child.id())).unwrap();
        status
            .lines()
            .find_map(|l| l.strip_prefix("VmHWM:"))
            .and_then(|v| v.split_whitespace().next()?.parse::<f64>().ok())
            .unwrap()
            / 1024.0
    }

    async fn metric(&self, name: &str) -> f64 {
        let scrape = reqwest::get(format!("{}/metrics", self.base))
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        common::metric_or_zero(&scrape, name)
    }

    /// Jobs the pool has run or refused so far.
    async fn jobs(&self) -> f64 {
        self.metric("imaginator_job_queue_seconds_count").await
    }

    async fn post(&self, path: &str, body: Vec<u8>) -> (u16, String, Duration) {
        let started = Instant::now();
        let r = reqwest::Client::new()
            .post(format!("{}{path}", self.base))
            .header("content-type", "image/jpeg")
            .body(body)
            .send()
            .await
            .unwrap();
        let status = r.status().as_u16();
        (status, r.text().await.unwrap_or_default(), started.elapsed())
    }

    async fn serves_normally(&self) {
        let (status, _, _) = self.post("/transform/thumbnail?width=64", fixture("photo.jpg")).await;
        assert_eq!(status, 200, "normal service right after");
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Class 1: a container that understates its coded stream is judged by the
/// stream, refused before any decoder runs, and nothing is stored.
#[tokio::test]
async fn a_container_that_understates_its_coded_stream_is_refused_before_decoding() {
    let server = Server::start(&[]);
    for (name, file) in [
        ("AVIF", craft::lying_avif((100, 100), (16000, 16000))),
        ("HEIC", craft::lying_heic((100, 100), (12000, 9000))),
    ] {
        let jobs = server.jobs().await;
        for path in ["/transform/thumbnail", "/images"] {
            let (status, body, took) = server.post(path, file.clone()).await;
            println!("{name} {path}: {status} in {took:?}: {body}");
            assert_eq!(status, 413, "{name} {path}: {body}");
            assert!(body.contains("image_too_large"), "{body}");
            assert!(body.contains("16000x16000") || body.contains("12000x9000"), "{body}");
        }
        assert_eq!(
            server.jobs().await,
            jobs,
            "{name}: refused from the headers, no job ran"
        );
    }
    // Within the pixel limit but too large to decode within the budget: a
    // 7000x7000 AV1 stream (49 MP: about 590 MiB with libheif's own buffers)
    // behind a 100x100 ispe.
    let big = craft::lying_avif((100, 100), (7000, 7000));
    let jobs = server.jobs().await;
    let (status, body, took) = server.post("/transform/thumbnail", big).await;
    println!("AVIF 7000x7000 coded: {status} in {took:?}: {body}");
    assert_eq!(status, 413, "{body}");
    assert!(body.contains("magick_memory"), "{body}");
    assert_eq!(server.jobs().await, jobs + 1.0, "refused by the job before decoding");
    assert!(
        common::files_under(&server._data.path().join("originals")).is_empty(),
        "nothing stored"
    );
    println!("peak RSS {:.0} MiB", server.peak_rss_mib());
    server.serves_normally().await;
}

/// Class 2: every page and frame counts, not only the first; and only the
/// first frame of a many-frame file is decoded for a still output.
#[tokio::test]
async fn a_huge_page_between_small_ones_is_refused_and_later_frames_are_not_decoded() {
    let server = Server::start(&[]);
    let jobs = server.jobs().await;
    for (name, file) in [
        (
            "TIFF 1x1, 15000x15000, 1x1",
            craft::multipage_tiff(&[(1, 1), (15000, 15000), (1, 1)]),
        ),
        (
            "GIF with a 10000x8000 middle frame",
            craft::multiframe_gif((16, 16), &[(16, 16), (10000, 8000), (16, 16)]),
        ),
    ] {
        let (status, body, took) = server.post("/transform/thumbnail", file).await;
        println!("{name}: {status} in {took:?}");
        assert_eq!(status, 413, "{name}: {body}");
    }
    assert_eq!(server.jobs().await, jobs, "refused from the headers");

    // Ten real 3000x3000 frames (90 MP, about 720 MB of pixel cache if all
    // were decoded, past the 512 MiB budget): a thumbnail decodes one.
    let frames = craft::multiframe_gif((3000, 3000), &[(3000, 3000); 10]);
    println!("10 x 3000x3000 GIF: {} KB", frames.len() / 1024);
    let (status, body, took) = server.post("/transform/thumbnail", frames).await;
    let peak = server.peak_rss_mib();
    println!("10 x 3000x3000 GIF: {status} in {took:?}, peak RSS {peak:.0} MiB");
    assert_eq!(status, 200, "{body}");
    assert!(peak < 400.0, "one frame decoded, not ten: peak RSS {peak:.0} MiB");
    server.serves_normally().await;
}

/// Class 3: a multipart part whose headers never end is cut off at
/// `max_body`, whatever the field, without holding more than that.
#[tokio::test]
async fn multipart_headers_that_never_end_are_cut_off_at_the_body_limit() {
    let server = Server::start(&[("IMAGINATOR_MAX_BODY", "4MiB")]);
    let mut stream = std::net::TcpStream::connect(&server.addr).unwrap();
    stream.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
    let head = "POST /images HTTP/1.1\r\nHost: x\r\nContent-Type: multipart/form-data; boundary=XX\r\nTransfer-Encoding: chunked\r\n\r\n";
    stream.write_all(head.as_bytes()).unwrap();
    let first = b"--XX\r\nContent-Disposition: form-data; name=\"file\"\r\nX-Never-Ending: ";
    let filler = vec![b'a'; 64 * 1024];
    let chunk = |data: &[u8]| [format!("{:x}\r\n", data.len()).as_bytes(), data, b"\r\n"].concat();
    stream.write_all(&chunk(first)).unwrap();
    let started = Instant::now();
    let mut sent = first.len();
    // Up to 256 MiB, bounded; the server answers long before.
    let writer = {
        let mut stream = stream.try_clone().unwrap();
        std::thread::spawn(move || {
            while sent < 256 << 20 {
                if stream.write_all(&chunk(&filler)).is_err() {
                    break;
                }
                sent += filler.len();
            }
            sent
        })
    };
    let mut answer = vec![0u8; 4096];
    let n = stream.read(&mut answer).unwrap();
    let answer = String::from_utf8_lossy(&answer[..n]).to_string();
    let took = started.elapsed();
    let _ = stream.shutdown(std::net::Shutdown::Both);
    let sent = writer.join().unwrap();
    let peak = server.peak_rss_mib();
    println!(
        "never-ending part headers: answered after {took:?}, {} MiB sent, peak RSS {peak:.0} MiB",
        sent >> 20
    );
    assert!(answer.starts_with("HTTP/1.1 413"), "{answer}");
    assert!(peak < 120.0, "the body was cut at 4 MiB: peak RSS {peak:.0} MiB");
    server.serves_normally().await;
}

/// Class 4: bodies are admitted from their headers, so a crowd of large
/// slow uploads cannot pile up in memory; stalled ones are cut off.
#[tokio::test]
async fn a_crowd_of_large_slow_bodies_holds_no_more_than_the_in_flight_budget() {
    let server = Server::start(&[
        ("IMAGINATOR_WORKERS", "2"),
        ("IMAGINATOR_MAX_BODY", "16MiB"),
        ("IMAGINATOR_HTTP__BODY_TIMEOUT", "3s"),
    ]);
    let limit_mib = server.metric("imaginator_inflight_bytes_limit").await / 1048576.0;
    let body = 15 << 20;
    let mut clients = Vec::new();
    for _ in 0..24 {
        let addr = server.addr.clone();
        clients.push(std::thread::spawn(move || {
            let mut stream = std::net::TcpStream::connect(addr).unwrap();
            stream.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
            let head = format!(
                "POST /images HTTP/1.1\r\nHost: x\r\nContent-Type: image/jpeg\r\nContent-Length: {}\r\n\r\n",
                body + 1
            );
            stream.write_all(head.as_bytes()).unwrap();
            // All but one byte of the body, then a pause.
            let _ = stream.write_all(&vec![0xFF; body]);
            let mut answer = vec![0u8; 256];
            let n = stream.read(&mut answer).unwrap_or(0);
            String::from_utf8_lossy(&answer[..n])
                .lines()
                .next()
                .unwrap_or("")
                .to_string()
        }));
    }
    let answers: Vec<String> = clients.into_iter().map(|c| c.join().unwrap()).collect();
    let shed = answers.iter().filter(|a| a.contains(" 503 ")).count();
    let timed_out = answers.iter().filter(|a| a.contains(" 408 ")).count();
    let peak = server.peak_rss_mib();
    println!(
        "24 x 15 MiB stalled bodies: {shed} x 503, {timed_out} x 408, peak RSS {peak:.0} MiB (in-flight budget {limit_mib:.0} MiB)"
    );
    assert_eq!(shed + timed_out, 24, "{answers:?}");
    assert_eq!(timed_out, 10, "2 workers + 8 queue slots admitted, then timed out");
    assert!(
        peak < limit_mib + 100.0,
        "peak RSS {peak:.0} MiB within the in-flight budget and a margin"
    );
    assert_eq!(
        server.metric("imaginator_inflight_bytes").await,
        0.0,
        "everything returned"
    );
    server.serves_normally().await;
}

/// Class 5: an operation whose work would hold a worker for seconds is
/// refused before it runs; a cheap one right after is served at once.
#[tokio::test]
async fn an_expensive_operation_is_refused_before_it_runs() {
    let sharpen = "chain = \"sharpen({sigma})\"\n[[param]]\nname = \"sigma\"\ntype = \"number\"\ndefault = 1\nmin = 0.1\nmax = 10\n[output]\nformat = \"jpeg\"\n";
    let aliases = common::aliases_with(&[("sharp", sharpen)]);
    let server = Server::start(&[("IMAGINATOR_ALIASES_DIR", aliases.path().to_str().unwrap())]);
    let jobs = server.jobs().await;
    let (status, body, took) = server.post("/transform/sharp?sigma=9", fixture("photo.jpg")).await;
    println!("sharpen(9) on 800x500: {status} in {took:?}");
    assert_eq!(status, 422, "{body}");
    assert!(body.contains("operation_too_expensive"), "{body}");
    assert_eq!(
        server.jobs().await,
        jobs,
        "refused before it queued (the worker never saw it)"
    );
    let (status, _, took) = server.post("/transform/sharp?sigma=1", fixture("photo.jpg")).await;
    println!("sharpen(1): {status} in {took:?}");
    assert_eq!(status, 200);
    server.serves_normally().await;
}

/// Class 6: a failed rendition of a stored original is remembered: the
/// retry fails at once without decoding the same poison again.
#[tokio::test]
async fn a_failing_rendition_is_not_decoded_again_on_retry() {
    let sharpen = "chain = \"sharpen(9)\"\n[output]\nformat = \"jpeg\"\n";
    let aliases = common::aliases_with(&[("sharp", sharpen)]);
    let server = Server::start(&[("IMAGINATOR_ALIASES_DIR", aliases.path().to_str().unwrap())]);
    let (status, body, _) = server.post("/images", fixture("photo.jpg")).await;
    assert_eq!(status, 201);
    let id = serde_json::from_str::<serde_json::Value>(&body).unwrap()["id"]
        .as_str()
        .unwrap()
        .to_string();
    let url = format!("{}/images/{id}/sharp", server.base);
    assert_eq!(reqwest::get(&url).await.unwrap().status(), 422);
    let jobs = server.jobs().await;
    for _ in 0..5 {
        assert_eq!(reqwest::get(&url).await.unwrap().status(), 422);
    }
    assert_eq!(server.jobs().await, jobs, "retries are answered from the failure cache");
}

/// Class 7: uploads are decoded before they are stored, and bytes after the
/// image's end are not part of what is stored or served.
#[tokio::test]
async fn uploads_are_decoded_before_storing_and_trailing_bytes_are_dropped() {
    let server = Server::start(&[]);
    // Go's invalid-zlib.png has a readable header and undecodable data.
    let (status, body, _) = server.post("/images", fixture("invalid-zlib.png")).await;
    assert_eq!(status, 422, "{body}");
    assert!(
        !body.contains(" @ "),
        "no ImageMagick source locations reach clients: {body}"
    );
    // A small PNG carrying 20 MB of HTML after its end.
    let mut png = Vec::new();
    image::RgbImage::from_pixel(1, 1, image::Rgb([9, 9, 9]))
        .write_to(&mut std::io::Cursor::new(&mut png), image::ImageFormat::Png)
        .unwrap();
    let mut polyglot = png.clone();
    polyglot.extend(std::iter::repeat_n(b"<html><script>alert(1)</script></html>".as_slice(), 500_000).flatten());
    let (status, body, _) = server.post("/images", polyglot).await;
    assert_eq!(status, 201, "{body}");
    let meta: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(
        meta["bytes"].as_u64().unwrap(),
        png.len() as u64,
        "only the PNG is stored"
    );
    let served = reqwest::get(format!("{}/images/{}", server.base, meta["id"].as_str().unwrap()))
        .await
        .unwrap();
    assert_eq!(served.headers()["x-content-type-options"], "nosniff");
    assert_eq!(served.bytes().await.unwrap().as_ref(), png.as_slice());
    assert!(
        common::files_under(&server._data.path().join("originals"))
            .iter()
            .all(|(_, size)| *size < 4096),
        "nothing large stored"
    );
    server.serves_normally().await;
}

/// Class 7: the bound-plan memo keeps no long queries, whatever arrives.
#[tokio::test]
async fn long_queries_are_not_remembered() {
    let server = Server::start(&[]);
    let (_, body, _) = server.post("/images", fixture("photo.jpg")).await;
    let id = serde_json::from_str::<serde_json::Value>(&body).unwrap()["id"]
        .as_str()
        .unwrap()
        .to_string();
    let allocated = || async {
        let r: serde_json::Value = reqwest::get(format!("{}/debug/memory", server.base))
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        r["jemalloc"]["allocated"].as_f64().unwrap() / 1048576.0
    };
    // A 48 KB query that binds (the last `width` wins), different each time.
    let url = |i: usize| {
        format!(
            "{}/images/{id}/thumbnail?{}width={}",
            server.base,
            "width=64&".repeat(6000),
            100 + i
        )
    };
    assert_eq!(reqwest::get(url(0)).await.unwrap().status(), 200);
    let before = allocated().await;
    let client = reqwest::Client::new();
    for i in 1..=300 {
        assert_eq!(client.get(url(i)).send().await.unwrap().status(), 200);
    }
    let grew = allocated().await - before;
    println!("300 requests with 48 KB queries: heap grew {grew:.1} MiB");
    assert!(grew < 8.0, "long queries kept in memory: {grew:.1} MiB");
}

// ---------------------------------------------------------------------------
// Round 2: the surfaces added since (image info, EXIF, animation, the compat
// profile, connections, the quarantine), each class with input built here.
// ---------------------------------------------------------------------------

/// An ICC profile (v2, RGB display class) whose only tag is a `desc` of
/// `description`: built here, independent of the service's ICC reader.
fn icc_with_description(description: &[u8]) -> Vec<u8> {
    let tag_at = 128 + 4 + 12;
    let desc_len = 12 + description.len();
    let mut icc = vec![0u8; tag_at];
    let total = (tag_at + desc_len) as u32;
    icc[0..4].copy_from_slice(&total.to_be_bytes());
    icc[8] = 2;
    icc[12..16].copy_from_slice(b"mntr");
    icc[16..20].copy_from_slice(b"RGB ");
    icc[20..24].copy_from_slice(b"XYZ ");
    icc[36..40].copy_from_slice(b"acsp");
    icc[128..132].copy_from_slice(&1u32.to_be_bytes());
    icc[132..136].copy_from_slice(b"desc");
    icc[136..140].copy_from_slice(&(tag_at as u32).to_be_bytes());
    icc[140..144].copy_from_slice(&(desc_len as u32).to_be_bytes());
    icc.extend_from_slice(b"desc\0\0\0\0");
    icc.extend_from_slice(&(description.len() as u32).to_be_bytes());
    icc.extend_from_slice(description);
    icc
}

/// A `width` x `height` PNG of noise (hard to compress: about 3 bytes a pixel).
fn noise_png(width: u32, height: u32) -> Vec<u8> {
    let mut state = 0x2545_F491_4F6C_DD1Du64;
    let pixels = image::RgbImage::from_fn(width, height, |_, _| {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        let b = state.to_le_bytes();
        image::Rgb([b[0], b[1], b[2]])
    });
    let mut png = Vec::new();
    pixels
        .write_to(&mut std::io::Cursor::new(&mut png), image::ImageFormat::Png)
        .unwrap();
    png
}

fn small_png() -> Vec<u8> {
    let mut png = Vec::new();
    image::RgbImage::from_pixel(64, 48, image::Rgb([30, 120, 200]))
        .write_to(&mut std::io::Cursor::new(&mut png), image::ImageFormat::Png)
        .unwrap();
    png
}

impl Server {
    async fn upload(&self, body: Vec<u8>) -> String {
        let (status, body, _) = self.post("/images", body).await;
        assert!(status == 201 || status == 200, "{status}: {body}");
        serde_json::from_str::<serde_json::Value>(&body).unwrap()["id"]
            .as_str()
            .unwrap()
            .to_string()
    }

    /// A rendition miss (a width not asked before) of `id`: status and time.
    async fn miss(&self, id: &str, width: u32) -> (u16, Duration) {
        let started = Instant::now();
        let r = reqwest::Client::new()
            .get(format!("{}/images/{id}/thumbnail?width={width}", self.base))
            .timeout(Duration::from_secs(30))
            .send()
            .await
            .unwrap();
        if r.status() == 200 {
            assert_eq!(r.headers()["x-cache"], "miss", "a width not asked before");
        }
        (r.status().as_u16(), started.elapsed())
    }
}

/// Round 2, class 1: text from a file is bounded in what the service
/// answers (a 3 MB ICC description of 0xFF bytes made 9 MB of JSON, a 7.6 MB
/// one 22.8 MB); a profile past the metadata budget is refused outright.
#[tokio::test]
async fn text_from_a_file_is_bounded_and_an_info_answer_is_small() {
    let server = Server::start(&[]);
    let within = craft_meta::png_with_iccp(&small_png(), &icc_with_description(&vec![0xFF; 3 << 20]));
    println!("PNG with a 3 MiB ICC description: {} KB", within.len() / 1024);
    let (status, body, took) = server.post("/info", within).await;
    println!("POST /info: {status} in {took:?}, {} bytes of JSON", body.len());
    assert_eq!(status, 200, "{body}");
    assert!(body.len() < 4096, "an info answer is small: {} bytes", body.len());
    let info: serde_json::Value = serde_json::from_str(&body).unwrap();
    let description = info["icc"].as_str().unwrap();
    assert!(description.chars().count() <= 160, "{description}");

    let past = craft_meta::png_with_iccp(&small_png(), &icc_with_description(&vec![0xFF; 7_600_000]));
    let jobs = server.jobs().await;
    for path in ["/info", "/images", "/transform/thumbnail"] {
        let (status, body, took) = server.post(path, past.clone()).await;
        println!("{path} with a 7.6 MB ICC profile: {status} in {took:?}");
        assert_eq!(status, 422, "{body}");
        assert!(body.contains("metadata_too_large"), "{body}");
    }
    assert_eq!(server.jobs().await, jobs, "refused before any job");
    server.serves_normally().await;
}

/// Round 2, class 1: connections that ask for an answer and never read it
/// cannot hold the connection cap or memory: past `http.send_timeout` they
/// are closed, and at the cap they are shed for new clients at once.
#[tokio::test]
async fn clients_that_never_read_their_answers_lock_nobody_out() {
    let server = Server::start(&[
        ("IMAGINATOR_HTTP__MAX_CONNECTIONS", "64"),
        ("IMAGINATOR_HTTP__SEND_TIMEOUT", "20s"),
    ]);
    let big = noise_png(1100, 1100);
    println!("original: {:.1} MB", big.len() as f64 / 1e6);
    let id = server.upload(big).await;
    let photo = server.upload(fixture("photo.jpg")).await;
    let rss_before = server.peak_rss_mib();
    // 150 connections (the cap is 64) that each ask for the original with a
    // 4 KiB receive buffer and read nothing.
    let mut stuck = Vec::new();
    for _ in 0..150 {
        let socket = tokio::net::TcpSocket::new_v4().unwrap();
        socket.set_recv_buffer_size(4096).unwrap();
        let addr: std::net::SocketAddr = server.addr.parse().unwrap();
        let connecting = tokio::time::timeout(Duration::from_secs(2), socket.connect(addr)).await;
        let Ok(Ok(mut stream)) = connecting else { continue };
        use tokio::io::AsyncWriteExt;
        let request = format!("GET /images/{id} HTTP/1.1\r\nHost: x\r\n\r\n");
        let _ = stream.write_all(request.as_bytes()).await;
        stuck.push(stream);
    }
    tokio::time::sleep(Duration::from_secs(2)).await;
    for width in [101, 102, 103] {
        let (status, took) = server.miss(&photo, width).await;
        println!(
            "rendition miss while {} clients sit on unread answers: {status} in {took:?}",
            stuck.len()
        );
        assert_eq!(status, 200);
        assert!(took < Duration::from_secs(5), "served within 5 s: {took:?}");
    }
    let shed = server
        .metric("imaginator_http_connections_shed_total{reason=\"stuck\"}")
        .await;
    let peak = server.peak_rss_mib();
    println!("shed as stuck: {shed}; peak RSS {peak:.0} MiB (before {rss_before:.0} MiB)");
    assert!(shed >= 1.0, "stuck connections were shed for the new ones");
    assert!(
        peak < rss_before + 200.0,
        "unread answers hold little memory: {peak:.0} MiB"
    );
    drop(stuck);
}

/// Round 2, class 2: EXIF built to cost (IFDs of 512 entries pointing at one
/// large string) is refused from its size before ImageMagick or our reader
/// parses it, in every container that carries EXIF.
#[tokio::test]
async fn exif_built_to_cost_is_refused_before_parsing() {
    let server = Server::start(&[]);
    let png = small_png();
    let bomb_png = craft_meta::exif_bomb(512, 3 << 20);
    let bomb_jpeg = craft_meta::exif_bomb(512, 50 << 10);
    let files = [
        (
            "PNG zTXt raw profile",
            craft_meta::png_with_raw_exif(&png, &bomb_png, true),
        ),
        ("PNG eXIf", craft_meta::png_with_chunk(&png, b"eXIf", &bomb_png)),
        (
            "JPEG APP1",
            craft_meta::jpeg_with_exif(&fixture("photo.jpg"), &bomb_jpeg),
        ),
        (
            "WebP EXIF",
            craft_meta::webp_with_exif(&fixture("photo.webp"), 320, 200, &bomb_jpeg),
        ),
    ];
    let photo = server.upload(fixture("photo.jpg")).await;
    let jobs = server.jobs().await;
    for (name, file) in &files {
        println!("{name}: {} KB", file.len() / 1024);
        for path in ["/info", "/images", "/transform/thumbnail"] {
            let (status, body, took) = server.post(path, file.clone()).await;
            println!("  {path}: {status} in {took:?}");
            assert_eq!(status, 422, "{name} {path}: {body}");
            assert!(body.contains("metadata_too_large"), "{body}");
            assert!(took < Duration::from_secs(1), "{name} {path}: {took:?}");
        }
    }
    assert_eq!(server.jobs().await, jobs, "no job ran");
    // Asked again, the info answer comes from the failure memory.
    let (status, _, _) = server.post("/info", files[0].1.clone()).await;
    assert_eq!(status, 422);
    let failures = server.metric("imaginator_cache_hits_total{tier=\"failure\"}").await;
    let (status, _, _) = server.post("/info", files[0].1.clone()).await;
    assert_eq!(status, 422);
    assert_eq!(
        server.metric("imaginator_cache_hits_total{tier=\"failure\"}").await,
        failures + 1.0,
        "the failure of the input is remembered"
    );
    let (status, took) = server.miss(&photo, 150).await;
    assert_eq!((status, took < Duration::from_secs(5)), (200, true));
}

/// Round 2, class 3: bodies that are not arriving hold no worker slot and
/// are cut off in proportion to what they sent, so GET misses, which carry
/// no body, are served meanwhile.
#[tokio::test]
async fn bodies_that_trickle_hold_no_worker_and_are_cut_off_early() {
    let server = Server::start(&[("IMAGINATOR_WORKERS", "2"), ("IMAGINATOR_QUEUE", "8")]);
    let photo = server.upload(fixture("photo.jpg")).await;
    let mut tricklers = Vec::new();
    for _ in 0..10 {
        let addr = server.addr.clone();
        tricklers.push(std::thread::spawn(move || {
            let started = Instant::now();
            let mut stream = std::net::TcpStream::connect(addr).unwrap();
            stream.set_read_timeout(Some(Duration::from_secs(40))).unwrap();
            stream
                .write_all(b"POST /transform/thumbnail HTTP/1.1\r\nHost: x\r\nContent-Type: image/jpeg\r\nContent-Length: 1024\r\n\r\n\xFF\xD8")
                .unwrap();
            let mut answer = vec![0u8; 512];
            let n = stream.read(&mut answer).unwrap_or(0);
            let line = String::from_utf8_lossy(&answer[..n]).lines().next().unwrap_or("").to_string();
            (line, started.elapsed())
        }));
    }
    std::thread::sleep(Duration::from_millis(500));
    for width in 200..205 {
        let (status, took) = server.miss(&photo, width).await;
        println!("rendition miss beside 10 trickling bodies: {status} in {took:?}");
        assert_eq!(
            status, 200,
            "a GET miss is never starved by bodies that are not arriving"
        );
        assert!(took < Duration::from_secs(5), "{took:?}");
    }
    for t in tricklers {
        let (line, took) = t.join().unwrap();
        println!("trickling body: {line} after {took:?}");
        assert!(line.contains(" 408 "), "{line}");
        assert!(
            took < Duration::from_secs(10),
            "cut off for its pace, not after 30 s: {took:?}"
        );
    }
}

/// Round 2, class 4: an animation costs work per pixel, not a fixed
/// 0.09 s per frame; one too costly is refused before it queues; and
/// device pixel ratios that make the same image share one cache entry.
#[tokio::test]
async fn animations_cost_what_their_pixels_cost_and_dpr_is_no_way_past_the_cache() {
    let server = Server::start(&[("IMAGINATOR_WORKERS", "2")]);
    let tiny = craft::multiframe_gif((16, 16), &[(16, 16); 99]);
    let photo = server.upload(fixture("photo.jpg")).await;
    let started = Instant::now();
    let mut sends = Vec::new();
    for _ in 0..10 {
        let (base, body) = (server.base.clone(), tiny.clone());
        sends.push(tokio::spawn(async move {
            let r = reqwest::Client::new()
                .post(format!("{base}/transform/preview"))
                .body(body)
                .send()
                .await
                .unwrap();
            let status = r.status().as_u16();
            (status, r.bytes().await.unwrap())
        }));
    }
    // A client that honours `Retry-After` (the pool is full for as long as
    // ten tiny animations take, not for their deadline).
    let asked = Instant::now();
    let mut tries = 0;
    loop {
        tries += 1;
        let (status, _) = server.miss(&photo, 300 + tries).await;
        if status == 200 {
            break;
        }
        assert_eq!(status, 503);
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
    let took = asked.elapsed();
    println!("rendition miss beside ten 99-frame GIFs: served after {tries} tries in {took:?}");
    assert!(took < Duration::from_secs(5), "{took:?}");
    for s in sends {
        let (status, gif) = s.await.unwrap();
        assert_eq!(status, 200);
        let frames = image::codecs::gif::GifDecoder::new(std::io::Cursor::new(gif)).unwrap();
        assert_eq!(
            image::AnimationDecoder::into_frames(frames).count(),
            99,
            "still animated"
        );
    }
    println!("ten 99-frame 16x16 GIFs through preview: {:?}", started.elapsed());

    let huge = craft::multiframe_gif((1000, 1000), &[(1000, 1000); 99]);
    let jobs = server.jobs().await;
    let (status, body, took) = server.post("/transform/preview", huge).await;
    println!("99 frames of 1000x1000 to GIF: {status} in {took:?}: {body}");
    assert_eq!(status, 422, "{body}");
    assert!(body.contains("operation_too_expensive"), "{body}");
    assert_eq!(server.jobs().await, jobs, "refused before it queued");

    let gif = server.upload(tiny).await;
    let get = |dpr: &str| {
        let url = format!("{}/images/{gif}/preview?dpr={dpr}", server.base);
        async move { reqwest::get(url).await.unwrap() }
    };
    assert_eq!(get("1.01").await.headers()["x-cache"], "miss");
    for dpr in ["1.02", "1.5", "3.99"] {
        assert_eq!(
            get(dpr).await.headers()["x-cache"],
            "hit-memory",
            "dpr {dpr} makes the same 16x16 image: the same entry"
        );
    }
}

/// Round 2, smaller: a GIF of exactly `limits.max_frames` frames is
/// accepted (ImageMagick's own list limit is one more), one more frame is
/// refused in our words.
#[tokio::test]
async fn the_frame_limit_means_what_it_says() {
    let server = Server::start(&[]);
    let (status, body, _) = server
        .post("/transform/preview", craft::multiframe_gif((8, 8), &[(8, 8); 100]))
        .await;
    assert_eq!(status, 200, "100 frames with max_frames = 100: {body}");
    let (status, body, _) = server
        .post("/transform/preview", craft::multiframe_gif((8, 8), &[(8, 8); 101]))
        .await;
    assert_eq!(status, 413, "{body}");
    assert!(body.contains("101 frames"), "{body}");
}
