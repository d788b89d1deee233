//! The real binary: configuration on the command line and in the environment,
//! start-up failures, and SIGTERM draining an in-flight request.

use crate::common;

use crate::common::fixture;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

fn imaginator() -> Command {
    common::binary(env!("CARGO_BIN_EXE_imaginator"))
}

fn start_server(data: &std::path::Path) -> (Child, String) {
    common::start_binary(env!("CARGO_BIN_EXE_imaginator"), data)
}

fn run(cmd: &mut Command) -> Output {
    cmd.stdin(Stdio::null()).output().expect("binary runs")
}

#[test]
fn print_config_shows_the_effective_settings_with_env_overrides() {
    let out = run(imaginator()
        .arg("--print-config")
        .env("IMAGINATOR_WORKERS", "3")
        .env("IMAGINATOR_LIMITS__MAX_WIDTH", "1234")
        .env("IMAGINATOR_JOB_DEADLINE", "5s"));
    assert!(out.status.success());
    let text = String::from_utf8(out.stdout).unwrap();
    for line in [
        "listen = \"127.0.0.1:3000\"",
        "workers = 3",
        "queue = 12",
        "max_width = 1234",
        "job_deadline = \"5s\"",
    ] {
        assert!(text.contains(line), "`{line}` missing from:\n{text}");
    }
}

#[test]
fn a_config_file_is_read_and_env_wins_over_it() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("imaginator.toml");
    std::fs::write(&file, "workers = 5\nqueue = 1\n").unwrap();
    let out = run(imaginator()
        .arg("--print-config")
        .arg("--config")
        .arg(&file)
        .env("IMAGINATOR_QUEUE", "9"));
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(text.contains("workers = 5") && text.contains("queue = 9"), "{text}");
}

#[test]
fn an_invalid_value_stops_start_up_with_one_line_naming_the_key() {
    let out = run(imaginator().env("IMAGINATOR_WORKERS", "lots"));
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8(out.stderr).unwrap();
    assert_eq!(err.trim().lines().count(), 1, "{err}");
    assert!(err.contains("IMAGINATOR_WORKERS") && err.contains("lots"), "{err}");

    let out = run(imaginator().env("IMAGINATOR_LISTEN", "127.0.0.1:99999"));
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8(out.stderr).unwrap().contains("listen"));
}

#[test]
fn a_broken_alias_file_stops_start_up_naming_the_file() {
    let dir = common::aliases_with(&[("broken", "chain = \"fit-in(100,\"\n")]);
    let out = run(imaginator()
        .env("IMAGINATOR_ALIASES_DIR", dir.path())
        .env("IMAGINATOR_LISTEN", "127.0.0.1:0")
        .env("IMAGINATOR_DATA_DIR", dir.path().join("data")));
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8(out.stderr).unwrap();
    assert!(err.contains("broken.toml"), "{err}");
}

fn wait_exit(child: &mut Child, limit: Duration) -> Option<std::process::ExitStatus> {
    let until = Instant::now() + limit;
    while Instant::now() < until {
        if let Some(status) = child.try_wait().unwrap() {
            return Some(status);
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    None
}

#[test]
fn sigterm_lets_an_in_flight_request_finish_then_exits_0() {
    let data = tempfile::tempdir().unwrap();
    let (mut child, addr) = start_server(data.path());
    let body = fixture("photo.gif");
    let (first, rest) = body.split_at(body.len() / 2);

    let mut stream = TcpStream::connect(&addr).unwrap();
    stream.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    write!(
        stream,
        "POST /transform/thumbnail?width=50 HTTP/1.1\r\nHost: {addr}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    )
    .unwrap();
    stream.write_all(first).unwrap();
    std::thread::sleep(Duration::from_millis(300));

    // SAFETY: sending a signal to our own child process.
    assert_eq!(unsafe { libc::kill(child.id() as i32, libc::SIGTERM) }, 0);
    std::thread::sleep(Duration::from_millis(300));
    assert!(
        child.try_wait().unwrap().is_none(),
        "the server waits for the in-flight request"
    );
    assert!(TcpStream::connect(&addr).is_err(), "no new connections once draining");

    stream.write_all(rest).unwrap();
    let mut response = Vec::new();
    stream.read_to_end(&mut response).unwrap();
    let head = String::from_utf8_lossy(&response[..response.len().min(200)]).to_string();
    assert!(head.starts_with("HTTP/1.1 200"), "{head}");
    assert!(head.to_ascii_lowercase().contains("content-type: image/jpeg"), "{head}");

    let status = wait_exit(&mut child, Duration::from_secs(20)).expect("exits after draining");
    assert!(status.success(), "exit status {status:?}");
}

#[test]
fn sigterm_when_idle_exits_0_promptly() {
    let data = tempfile::tempdir().unwrap();
    let (mut child, _) = start_server(data.path());
    // SAFETY: sending a signal to our own child process.
    assert_eq!(unsafe { libc::kill(child.id() as i32, libc::SIGTERM) }, 0);
    let status = wait_exit(&mut child, Duration::from_secs(10)).expect("exits");
    assert!(status.success(), "exit status {status:?}");
}

#[test]
fn sigterm_under_load_drains_admitted_work_then_exits_0() {
    let data = tempfile::tempdir().unwrap();
    let (mut child, addr) = start_server(data.path());
    let body = fixture("photo.jpg");
    let workers: Vec<_> = (0..12)
        .map(|i| {
            let (addr, body) = (addr.clone(), body.clone());
            std::thread::spawn(move || {
                let mut s = TcpStream::connect(&addr).ok()?;
                s.set_read_timeout(Some(Duration::from_secs(60))).unwrap();
                write!(
                    s,
                    "POST /transform/avatar?size={} HTTP/1.1\r\nHost: {addr}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
                    100 + i,
                    body.len()
                )
                .ok()?;
                s.write_all(&body).ok()?;
                let mut response = Vec::new();
                s.read_to_end(&mut response).ok()?;
                Some(String::from_utf8_lossy(&response[..response.len().min(12)]).to_string())
            })
        })
        .collect();
    std::thread::sleep(Duration::from_millis(30));
    let signalled = Instant::now();
    // SAFETY: sending a signal to our own child process.
    assert_eq!(unsafe { libc::kill(child.id() as i32, libc::SIGTERM) }, 0);
    let answers: Vec<Option<String>> = workers.into_iter().map(|w| w.join().unwrap()).collect();
    let status = wait_exit(&mut child, Duration::from_secs(25)).expect("exits within the grace period");
    assert!(status.success(), "exit status {status:?}");
    println!("exited {:?} after SIGTERM; answers: {answers:?}", signalled.elapsed());
    for answer in answers.iter().flatten() {
        // Admitted requests finish; late ones were refused or found the door closed.
        assert!(
            answer.starts_with("HTTP/1.1 200") || answer.starts_with("HTTP/1.1 503"),
            "{answer}"
        );
    }
    assert!(
        answers.iter().flatten().any(|a| a.starts_with("HTTP/1.1 200")),
        "in-flight work was drained"
    );
}
