//! Hostile clients against the real binary, one process per test so that
//! each can read its server's own peak RSS (`VmHWM`). Every test builds its
//! own hostile input, then checks the answer, that no decoder ran where a
//! header already told the truth, the server's peak memory against its
//! configured budget, and normal service right after.

mod common;

use common::{fixture, start_binary_with};
use imaginator::pipeline::layers::craft;
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
    let (status, body, took) = server.post("/transform/sharp?sigma=9", fixture("photo.jpg")).await;
    println!("sharpen(9) on 800x500: {status} in {took:?}");
    assert_eq!(status, 422, "{body}");
    assert!(body.contains("operation_too_expensive"), "{body}");
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
