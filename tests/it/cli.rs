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

/// `imaginator --help | head -1`: the reader closes the pipe early; that is
/// no failure (it was a panic, exit 101, about half the time).
#[test]
fn help_into_a_closed_pipe_exits_cleanly() {
    for args in [vec!["--help"], vec!["sign", "--help"], vec!["--print-config"]] {
        for _ in 0..10 {
            let mut child = imaginator()
                .args(&args)
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .unwrap();
            // Closed before the binary writes a byte.
            drop(child.stdout.take());
            let out = child.wait_with_output().unwrap();
            assert!(
                out.status.code() == Some(0),
                "{args:?}: {:?} {}",
                out.status,
                String::from_utf8_lossy(&out.stderr)
            );
            assert!(!String::from_utf8_lossy(&out.stderr).contains("panicked"));
        }
    }
}

#[test]
fn every_subcommand_has_help_and_config_goes_anywhere() {
    for sub in ["serve", "check-aliases", "migrate", "sign"] {
        let out = run(imaginator().args([sub, "--help"]));
        assert!(out.status.success(), "{sub}");
        assert!(
            String::from_utf8_lossy(&out.stdout).contains("Usage: imaginator"),
            "{sub}"
        );
    }
    let dir = tempfile::tempdir().unwrap();
    let yaml = dir.path().join("imaginator.yml");
    std::fs::write(&yaml, "secret: s3cret\n").unwrap();
    let path = "download(o:a.jpg):resize(10,0)";
    let before = run(imaginator().arg("--config").arg(&yaml).args(["sign", path]));
    let after = run(imaginator().args(["sign", "--config"]).arg(&yaml).arg(path));
    assert!(before.status.success(), "{}", String::from_utf8_lossy(&before.stderr));
    assert_eq!(before.stdout, after.stdout, "--config before or after the subcommand");
    let expected = imaginator::compat::http::sign("s3cret", path);
    assert_eq!(
        String::from_utf8_lossy(&before.stdout).trim(),
        format!("/{expected}/{path}")
    );
    // --secret=S and --secret S, before or after the path.
    let a = run(imaginator().args(["sign", "--secret=a-secret-of-twenty-chars", path]));
    let b = run(imaginator().args(["sign", path, "--secret", "a-secret-of-twenty-chars"]));
    assert!(a.status.success());
    assert_eq!(a.stdout, b.stdout);
    // An unknown flag is a usage error (2), not a panic.
    let out = run(imaginator().arg("--frobnicate"));
    assert_eq!(out.status.code(), Some(2));
}

#[test]
fn sign_warns_when_the_route_it_signs_is_not_checked() {
    let out = run(imaginator().args([
        "sign",
        "--secret",
        "a-secret-of-twenty-chars",
        "images/abc/thumbnail?width=10",
    ]));
    assert!(out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("sign_all_routes"), "{err}");
    let out = run(imaginator()
        .args(["sign", "images/abc/thumbnail?width=10"])
        .env("IMAGINATOR_SECRETS", "a-secret-of-twenty-chars")
        .env("IMAGINATOR_SIGN_ALL_ROUTES", "true"));
    assert!(out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).is_empty(), "checked: no warning");
}

#[test]
fn check_aliases_applies_the_servers_rules_to_a_file_or_the_configured_directory() {
    let dir = common::aliases_with(&[("info", "chain = \"fit-in(10,10)\"\n")]);
    let out = run(imaginator().arg("check-aliases").arg(dir.path()));
    assert_eq!(out.status.code(), Some(1), "an alias named info stops the server");
    assert!(String::from_utf8_lossy(&out.stdout).contains("may not be named `info`"));
    let one = dir.path().join("thumbnail.toml");
    let out = run(imaginator().arg("check-aliases").arg(&one));
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stdout));
    assert!(String::from_utf8_lossy(&out.stdout).contains("1 alias file(s), 0 broken"));
    // No path: the configured aliases_dir.
    let out = run(imaginator()
        .arg("check-aliases")
        .env("IMAGINATOR_ALIASES_DIR", dir.path()));
    assert_eq!(out.status.code(), Some(1));
    let empty = tempfile::tempdir().unwrap();
    let out = run(imaginator()
        .arg("check-aliases")
        .env("IMAGINATOR_ALIASES_DIR", empty.path()));
    assert_eq!(out.status.code(), Some(1), "the server would not start");
    let out = run(imaginator()
        .arg("check-aliases")
        .env("IMAGINATOR_ALIASES_DIR", empty.path())
        .env("IMAGINATOR_ALLOW_BUILTIN_FILTERS", "true"));
    assert!(out.status.success(), "builtins alone are a service");
}

#[test]
fn print_config_leaves_credentials_out() {
    let out = run(imaginator()
        .arg("--print-config")
        .env("IMAGINATOR_FETCH__PROXY", "http://me:hunter2-password@127.0.0.1:3128")
        .env("IMAGINATOR_ADMIN_TOKEN", "admin-token-value"));
    assert!(out.status.success());
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(
        !text.contains("hunter2") && !text.contains("admin-token-value"),
        "{text}"
    );
    assert!(text.contains("# Credentials are not printed"), "{text}");
}

#[test]
fn outside_the_checkout_the_binary_says_what_is_missing_and_how_to_fix_it() {
    let nowhere = tempfile::tempdir().unwrap();
    let out = run(imaginator()
        .current_dir(nowhere.path())
        .env("IMAGINATOR_LISTEN", "127.0.0.1:0")
        .env_remove("IMAGINATOR_ALIASES_DIR"));
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("aliases")
            && err.contains("IMAGINATOR_ALIASES_DIR")
            && err.contains("IMAGINATOR_ALLOW_BUILTIN_FILTERS"),
        "{err}"
    );
}

#[test]
fn the_start_up_line_says_where_the_playground_is() {
    let data = tempfile::tempdir().unwrap();
    let (mut child, started) = common::start_binary_logged(env!("CARGO_BIN_EXE_imaginator"), data.path(), &[]);
    let listen = started["listen"].as_str().unwrap();
    assert_eq!(started["ui"], format!("http://{listen}/ui"), "{started}");
    let _ = child.kill();
    let _ = child.wait();
    let (mut child, started) = common::start_binary_logged(
        env!("CARGO_BIN_EXE_imaginator"),
        data.path(),
        &[("IMAGINATOR_UI__ENABLED", "false".to_string())],
    );
    assert!(started.get("ui").is_none_or(|u| u.is_null()), "{started}");
    let _ = child.kill();
    let _ = child.wait();
}
