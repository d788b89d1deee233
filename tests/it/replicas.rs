//! Three replicas on one bucket of a real S3 server (Garage) behind a real
//! load balancer (HAProxy, health-checking `/readyz`), all on 127.0.0.1,
//! under a steady mixed load (uploads, renditions, chain URLs, originals)
//! while faults are injected one after another:
//!
//! 1. one replica is SIGKILLed and restarted;
//! 2. Garage is stopped for a few seconds and started again;
//! 3. one replica runs with a result cache far smaller than the work, so it
//!    evicts all along;
//! 4. every replica is restarted in turn as Kubernetes rolls a Deployment:
//!    taken out of the endpoints, the manifest's preStop sleep, SIGTERM, the
//!    manifest's grace period, a new process, in again when ready.
//!
//! Checked: every acknowledged upload is readable afterwards from every
//! replica, byte for byte; no answer is torn or differs from the first
//! answer for the same URL; failures happen only inside a fault window, are
//! only 502/503 and carry a JSON error; no request fails during the rolling
//! restart; readiness goes false while the bucket is unreachable and true
//! again after. The run prints a table (docs/deploy.md records one).
//!
//! The replicas run the shipped Kubernetes configuration
//! (deploy/base/imaginator.toml), with only addresses, data directory and
//! bucket overridden, as the S3 overlay does.

use crate::common;

use crate::common::garage::{Garage, free_port};
use crate::common::{fixture, repo_path, start_binary_logged};
use futures::StreamExt;
use std::collections::{BTreeMap, HashMap};
use std::io::{Read, Write};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

const EXE: &str = env!("CARGO_BIN_EXE_imaginator");
const CLIENTS: usize = 6;

/// What the manifests say about stopping a pod.
struct Rollout {
    pre_stop: Duration,
    grace: Duration,
}

fn number_after(text: &str, key: &str) -> u64 {
    let at = text.find(key).unwrap_or_else(|| panic!("`{key}` in the manifest"));
    text[at + key.len()..]
        .trim_start_matches([':', ' ', '"'])
        .split(|c: char| !c.is_ascii_digit())
        .next()
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("a number after `{key}`"))
}

fn rollout() -> Rollout {
    let deployment = std::fs::read_to_string(repo_path("deploy/base/deployment.yaml")).unwrap();
    let pre_stop_at = deployment.find("preStop:").expect("a preStop hook");
    Rollout {
        pre_stop: Duration::from_secs(number_after(&deployment[pre_stop_at..], "seconds")),
        grace: Duration::from_secs(number_after(&deployment, "terminationGracePeriodSeconds")),
    }
}

struct Replica {
    name: String,
    port: u16,
    admin_port: u16,
    data: tempfile::TempDir,
    env: Vec<(&'static str, String)>,
    child: Option<Child>,
    starts: usize,
}

const UPLOAD_TOKEN: &str = "replicas-upload-token";

impl Replica {
    fn new(n: usize, storage: &[(&'static str, String)], extra: &[(&'static str, String)]) -> Replica {
        let (port, admin_port) = (free_port(), free_port());
        let mut env = storage.to_vec();
        env.extend_from_slice(&[
            (
                "IMAGINATOR_CONFIG",
                repo_path("deploy/base/imaginator.toml").display().to_string(),
            ),
            ("IMAGINATOR_LISTEN", format!("127.0.0.1:{port}")),
            ("IMAGINATOR_ADMIN_LISTEN", format!("127.0.0.1:{admin_port}")),
            // The shipped `uploads = "token"`, with the token its Secret gives.
            ("IMAGINATOR_UPLOAD_TOKEN", UPLOAD_TOKEN.to_string()),
        ]);
        env.extend_from_slice(extra);
        Replica {
            name: format!("r{n}"),
            port,
            admin_port,
            data: tempfile::tempdir().unwrap(),
            env,
            child: None,
            starts: 0,
        }
    }

    fn start(&mut self) {
        assert!(self.child.is_none());
        let mut env = self.env.clone();
        env.push(("HOSTNAME", format!("{}-{}", self.name, self.starts)));
        let (child, _) = start_binary_logged(EXE, self.data.path(), &env);
        self.child = Some(child);
        self.starts += 1;
    }

    fn sigkill(&mut self) {
        let mut child = self.child.take().expect("running");
        child.kill().unwrap();
        child.wait().unwrap();
    }

    /// SIGTERM, then waits up to `grace` for the exit; returns how long the
    /// drain took and the exit status.
    fn sigterm(&mut self, grace: Duration) -> (Duration, std::process::ExitStatus) {
        let mut child = self.child.take().expect("running");
        let asked = Instant::now();
        // SAFETY: signalling our own child.
        unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
        loop {
            if let Some(status) = child.try_wait().unwrap() {
                return (asked.elapsed(), status);
            }
            if asked.elapsed() > grace {
                let _ = child.kill();
                panic!("{} did not exit within the grace period ({grace:?})", self.name);
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.port)
    }

    fn admin_url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.admin_port)
    }
}

impl Drop for Replica {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// HAProxy as Debian ships it, with its own configuration: round robin over
/// the replicas, health checks on `/readyz`, retries of failed connections on
/// another replica, JSON bodies for the errors it makes itself.
struct Balancer {
    child: Child,
    port: u16,
    socket: PathBuf,
    _dir: tempfile::TempDir,
}

impl Balancer {
    fn start(replicas: &[Replica]) -> Balancer {
        let bin = ["/usr/sbin/haproxy", "haproxy"]
            .into_iter()
            .find(|b| Command::new(b).arg("-v").output().is_ok_and(|o| o.status.success()))
            .expect("HAProxy is needed for this test: run scripts/setup (it installs it)");
        let dir = tempfile::tempdir().unwrap();
        let port = free_port();
        let socket = dir.path().join("admin.sock");
        for (status, reason, code) in [
            (502, "Bad Gateway", "bad_gateway"),
            (503, "Service Unavailable", "no_replica_available"),
            (504, "Gateway Timeout", "gateway_timeout"),
        ] {
            let body = format!(
                "{{\"error\":{{\"code\":\"{code}\",\"message\":\"the load balancer could not get an answer from a replica ({status})\"}}}}"
            );
            std::fs::write(
                dir.path().join(format!("{status}.http")),
                format!(
                    "HTTP/1.1 {status} {reason}\r\nContent-Type: application/json\r\nCache-Control: no-store\r\n\
                     Retry-After: 1\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                    body.len()
                ),
            )
            .unwrap();
        }
        let servers: String = replicas
            .iter()
            .map(|r| format!("  server {} 127.0.0.1:{} check\n", r.name, r.port))
            .collect();
        let d = dir.path().display();
        let config = format!(
            "global\n  stats socket {socket} mode 600 level admin\n  maxconn 1024\n\
             defaults\n  mode http\n  timeout connect 1s\n  timeout client 60s\n  timeout server 60s\n  \
             timeout http-request 10s\n  timeout check 5s\n  retries 3\n  option redispatch 1\n  retry-on conn-failure empty-response\n  \
             errorfile 502 {d}/502.http\n  errorfile 503 {d}/503.http\n  errorfile 504 {d}/504.http\n\
             frontend web\n  bind 127.0.0.1:{port}\n  acl read method GET HEAD\n  use_backend imaginator if read\n  \
             default_backend uploads\n\
             backend imaginator\n  balance uri whole\n  hash-type consistent\n  option httpchk GET /readyz\n  \
             http-check expect status 200\n  \
             default-server inter 1s fall 3 rise 2\n  http-response set-header X-Served-By %[srv_name]\n{servers}\
             backend uploads\n  balance roundrobin\n  option httpchk GET /readyz\n  http-check expect status 200\n  \
             default-server inter 1s fall 3 rise 2\n  http-response set-header X-Served-By %[srv_name]\n{servers}",
            socket = socket.display()
        );
        let path = dir.path().join("haproxy.cfg");
        std::fs::write(&path, config).unwrap();
        let child = Command::new(bin)
            .arg("-db")
            .arg("-f")
            .arg(&path)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let until = Instant::now() + Duration::from_secs(10);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() || !socket.exists() {
            assert!(Instant::now() < until, "HAProxy did not start");
            std::thread::sleep(Duration::from_millis(50));
        }
        Balancer {
            child,
            port,
            socket,
            _dir: dir,
        }
    }

    /// A command on HAProxy's runtime API.
    fn command(&self, line: &str) -> String {
        let mut s = std::os::unix::net::UnixStream::connect(&self.socket).unwrap();
        s.write_all(format!("{line}\n").as_bytes()).unwrap();
        let mut out = String::new();
        s.read_to_string(&mut out).unwrap();
        out
    }

    /// What Kubernetes does when a pod is deleted (endpoints stop routing
    /// to it) or becomes a ready endpoint again.
    /// In both backends: reads (hashed by URI) and uploads (round robin).
    fn set_state(&self, replica: &str, state: &str) {
        for backend in ["imaginator", "uploads"] {
            let out = self.command(&format!("set server {backend}/{replica} state {state}"));
            assert!(out.trim().is_empty(), "HAProxy: {out}");
        }
    }

    /// Servers HAProxy routes to now (status UP).
    fn up(&self) -> usize {
        self.command("show servers state imaginator")
            .lines()
            .filter(|l| l.split_whitespace().nth(5) == Some("2"))
            .count()
    }
}

impl Drop for Balancer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Kind {
    Upload,
    Rendition,
    Chain,
    Original,
}

#[derive(Debug)]
struct Outcome {
    at: Duration,
    /// When the answer (or the failure) was complete.
    done: Duration,
    kind: Kind,
    /// HTTP status, or 0 when no answer came.
    status: u16,
    error: Option<String>,
    served_by: String,
    x_cache: String,
    url: String,
}

/// A photo with a comment segment: a valid, distinct JPEG.
fn variant(tag: &str) -> Vec<u8> {
    let photo = fixture("photo.jpg");
    let comment = tag.as_bytes();
    let mut out = photo[..2].to_vec();
    out.extend_from_slice(&[0xFF, 0xFE]);
    out.extend_from_slice(&((comment.len() + 2) as u16).to_be_bytes());
    out.extend_from_slice(comment);
    out.extend_from_slice(&photo[2..]);
    out
}

struct Load {
    started: Instant,
    stop: AtomicBool,
    acknowledged: Mutex<Vec<(String, Arc<Vec<u8>>)>>,
    outcomes: Mutex<Vec<Outcome>>,
    /// First body seen per URL: every later answer must equal it.
    reference: Mutex<HashMap<String, Arc<Vec<u8>>>>,
    mismatches: Mutex<Vec<String>>,
    counter: AtomicUsize,
}

/// Expected (width, height) of a rendition URL of the 800x500 fixture.
fn expected_size(url: &str) -> Option<(u32, u32)> {
    if let Some(w) = url.split("thumbnail?width=").nth(1) {
        let w: u32 = w.parse().ok()?;
        return Some((w, (w * 500 + 400) / 800));
    }
    url.contains(":avatar(96)").then_some((96, 96))
}

async fn client_loop(load: Arc<Load>, client: reqwest::Client, base: String, me: usize) {
    let mut n = 0usize;
    while !load.stop.load(Ordering::SeqCst) {
        n += 1;
        let pick = load.counter.fetch_add(1, Ordering::SeqCst);
        let known = {
            let acked = load.acknowledged.lock().unwrap();
            (!acked.is_empty()).then(|| acked[pick % acked.len()].clone())
        };
        let (kind, request, url, body) = match (n % 5, known) {
            (0, _) | (_, None) => {
                let bytes = Arc::new(variant(&format!("replicas {me}-{n}")));
                let url = format!("{base}/images");
                (
                    Kind::Upload,
                    client
                        .post(&url)
                        .bearer_auth(UPLOAD_TOKEN)
                        .header("content-type", "image/jpeg")
                        .body(bytes.as_ref().clone()),
                    url,
                    Some(bytes),
                )
            }
            (1 | 2, Some((id, _))) => {
                let width = [64, 100, 160][pick % 3];
                let url = format!("{base}/images/{id}/thumbnail?width={width}");
                (Kind::Rendition, client.get(&url), url, None)
            }
            (3, Some((id, _))) => {
                // Builtin filters are off in the shipped configuration:
                // chains name aliases.
                let url = format!("{base}/original({id}):avatar(96)");
                (Kind::Chain, client.get(&url), url, None)
            }
            (_, Some((id, bytes))) => {
                let url = format!("{base}/images/{id}");
                (Kind::Original, client.get(&url), url, Some(bytes))
            }
        };
        let at = load.started.elapsed();
        let mut outcome = Outcome {
            at,
            done: at,
            kind,
            status: 0,
            error: None,
            served_by: String::new(),
            x_cache: String::new(),
            url: url.clone(),
        };
        match request.timeout(Duration::from_secs(60)).send().await {
            Err(e) => outcome.error = Some(format!("transport: {e}")),
            Ok(r) => {
                outcome.status = r.status().as_u16();
                let header = |name: &str| {
                    r.headers()
                        .get(name)
                        .and_then(|v| v.to_str().ok())
                        .unwrap_or("")
                        .to_string()
                };
                outcome.served_by = header("x-served-by");
                outcome.x_cache = header("x-cache");
                let json = header("content-type").starts_with("application/json");
                match r.bytes().await {
                    Err(e) => outcome.error = Some(format!("torn body: {e}")),
                    Ok(got) if outcome.status >= 400 => {
                        let code = serde_json::from_slice::<serde_json::Value>(&got)
                            .ok()
                            .and_then(|v| v["error"]["code"].as_str().map(str::to_string));
                        outcome.error = Some(match (json, code) {
                            (true, Some(code)) => code,
                            _ => format!("NOT JSON: {}", String::from_utf8_lossy(&got)),
                        });
                    }
                    Ok(got) => check_body(&load, kind, &url, body.as_deref(), &got),
                }
            }
        }
        outcome.done = load.started.elapsed();
        let failed = outcome.status == 0 || outcome.status >= 400;
        load.outcomes.lock().unwrap().push(outcome);
        if failed {
            // As a client honouring Retry-After would, a little quicker.
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

fn check_body(load: &Load, kind: Kind, url: &str, sent: Option<&Vec<u8>>, got: &[u8]) {
    let wrong = |why: String| load.mismatches.lock().unwrap().push(format!("{url}: {why}"));
    match kind {
        Kind::Upload => {
            let v: serde_json::Value = match serde_json::from_slice(got) {
                Ok(v) => v,
                Err(e) => return wrong(format!("upload answer is not JSON: {e}")),
            };
            let id = v["id"].as_str().unwrap_or_default().to_string();
            load.acknowledged
                .lock()
                .unwrap()
                .push((id, Arc::new(sent.expect("sent bytes").clone())));
        }
        Kind::Original => {
            if got != sent.expect("uploaded bytes").as_slice() {
                wrong(format!("original differs ({} bytes)", got.len()));
            }
        }
        Kind::Rendition | Kind::Chain => {
            let mut reference = load.reference.lock().unwrap();
            match reference.get(url) {
                Some(first) if first.as_slice() != got => {
                    wrong(format!("{} bytes, the first answer had {}", got.len(), first.len()))
                }
                Some(_) => {}
                None => {
                    match image::load_from_memory(got) {
                        Ok(img) => {
                            let size = (img.width(), img.height());
                            if Some(size) != expected_size(url) {
                                wrong(format!("size {size:?}"));
                            }
                        }
                        Err(e) => wrong(format!("does not decode: {e}")),
                    }
                    reference.insert(url.to_string(), Arc::new(got.to_vec()));
                }
            }
        }
    }
}

async fn ready(client: &reqwest::Client, replica: &Replica) -> (bool, serde_json::Value) {
    match client
        .get(replica.url("/readyz"))
        .timeout(Duration::from_secs(5))
        .send()
        .await
    {
        Ok(r) => {
            let ok = r.status() == 200;
            (ok, r.json().await.unwrap_or_default())
        }
        Err(_) => (false, serde_json::Value::Null),
    }
}

async fn wait_ready(client: &reqwest::Client, replica: &Replica, within: Duration) -> Duration {
    let started = Instant::now();
    while !ready(client, replica).await.0 {
        assert!(
            started.elapsed() < within,
            "{} not ready within {within:?}",
            replica.name
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    started.elapsed()
}

/// A table row: requests, failed, failures by status and code.
type Row = (usize, usize, BTreeMap<String, usize>);

/// Longest HAProxy may keep sending to a dead replica: three failed checks a
/// second apart (`fall 3`, `inter 1s`), plus the check timeout's margin.
const HAPROXY_DETECTS_DOWN: Duration = Duration::from_millis(3_500);

/// A fault: its name and when it was under way (start, end of recovery).
struct Window {
    name: &'static str,
    from: Duration,
    to: Duration,
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn three_replicas_behind_haproxy_survive_kills_storage_outages_and_a_rolling_restart() {
    let run = tokio::time::timeout(Duration::from_secs(300), scenario());
    run.await.expect("the multi-replica scenario is bounded at 5 minutes");
}

async fn scenario() {
    let rollout = rollout();
    let mut garage = Garage::start();
    let storage = garage.service_env("imaginator");
    let small_cache = [("IMAGINATOR_CACHE__MEMORY", "256KiB".to_string())];
    let mut replicas: Vec<Replica> = (0..3)
        .map(|n| Replica::new(n, &storage, if n == 2 { &small_cache } else { &[] }))
        .collect();
    for r in &mut replicas {
        r.start();
    }
    let balancer = Balancer::start(&replicas);
    let client = reqwest::Client::new();
    let until = Instant::now() + Duration::from_secs(20);
    while balancer.up() < 3 {
        assert!(Instant::now() < until, "HAProxy never saw three ready replicas");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    let load = Arc::new(Load {
        started: Instant::now(),
        stop: AtomicBool::new(false),
        acknowledged: Mutex::new(Vec::new()),
        outcomes: Mutex::new(Vec::new()),
        reference: Mutex::new(HashMap::new()),
        mismatches: Mutex::new(Vec::new()),
        counter: AtomicUsize::new(0),
    });
    let base = format!("http://127.0.0.1:{}", balancer.port);
    let clients: Vec<_> = (0..CLIENTS)
        .map(|me| tokio::spawn(client_loop(Arc::clone(&load), reqwest::Client::new(), base.clone(), me)))
        .collect();
    let now = || load.started.elapsed();
    let mut windows: Vec<Window> = Vec::new();
    let mut notes: Vec<String> = Vec::new();
    tokio::time::sleep(Duration::from_secs(3)).await;

    // 1. SIGKILL one replica, start it again.
    let from = now();
    let kill_from = from;
    replicas[0].sigkill();
    let killed_at = now();
    tokio::time::sleep(Duration::from_secs(1)).await;
    replicas[0].start();
    let took = wait_ready(&client, &replicas[0], Duration::from_secs(30)).await;
    // Until HAProxy's checks see it (rise 2 x 1 s) and a margin.
    tokio::time::sleep(Duration::from_millis(2500)).await;
    windows.push(Window {
        name: "SIGKILL r0",
        from,
        to: now(),
    });
    notes.push(format!("r0 restarted after SIGKILL, ready after {took:?}"));
    tokio::time::sleep(Duration::from_secs(2)).await;

    // 2. Storage unreachable for a few seconds.
    let from = now();
    garage.stop();
    // Each replica polled on its own: when did its readiness turn, and why.
    let outage = Instant::now();
    let watches = replicas.iter().map(|r| {
        let client = client.clone();
        async move {
            while outage.elapsed() < Duration::from_secs(5) {
                let (ok, body) = ready(&client, r).await;
                if !ok {
                    return Some((outage.elapsed(), body["reason"].as_str().unwrap_or("").to_string()));
                }
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            None
        }
    });
    let turned = futures::future::join_all(watches).await;
    let remaining = Duration::from_secs(5).saturating_sub(outage.elapsed());
    tokio::time::sleep(remaining).await;
    garage.resume();
    let back = Instant::now();
    for r in &replicas {
        wait_ready(&client, r, Duration::from_secs(30)).await;
    }
    let ready_again = back.elapsed();
    let until = Instant::now() + Duration::from_secs(20);
    while balancer.up() < 3 {
        assert!(Instant::now() < until, "HAProxy never routed to all replicas again");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    windows.push(Window {
        name: "S3 down 5 s",
        from,
        to: now(),
    });
    for (n, when) in turned.iter().enumerate() {
        assert!(
            when.is_some(),
            "replica r{n} stayed ready while its bucket was unreachable"
        );
    }
    let turned: Vec<(Duration, String)> = turned.into_iter().flatten().collect();
    assert!(
        turned.iter().all(|(_, why)| why.contains("object storage")),
        "readiness names the storage: {turned:?}"
    );
    notes.push(format!(
        "S3 outage: replicas not ready after {:?}, all ready again {ready_again:?} after S3 returned; reason: {}",
        turned.iter().map(|(t, _)| *t).collect::<Vec<_>>(),
        turned[0].1
    ));
    tokio::time::sleep(Duration::from_secs(2)).await;

    // r2's small cache has been full and evicting all along (read now: the
    // rolling restart starts new processes).
    let scrape = client
        .get(replicas[2].admin_url("/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let evictions = common::metric_or_zero(&scrape, "imaginator_cache_evictions_total{tier=\"memory\"}");
    let cached = common::metric_or_zero(&scrape, "imaginator_cache_bytes{tier=\"memory\"}");

    // 3. Rolling restart, as the Deployment's rollout does it.
    let from = now();
    for replica in replicas.iter_mut() {
        let name = replica.name.clone();
        balancer.set_state(&name, "maint");
        tokio::time::sleep(rollout.pre_stop).await;
        let (drained, status) = replica.sigterm(rollout.grace - rollout.pre_stop);
        assert!(status.success(), "{name} exits 0 on SIGTERM: {status:?}");
        replica.start();
        let took = wait_ready(&client, replica, Duration::from_secs(30)).await;
        balancer.set_state(&name, "ready");
        notes.push(format!(
            "rolling restart: {name} drained and exited in {drained:?}, new process ready in {took:?}"
        ));
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
    let rolling = Window {
        name: "rolling restart",
        from,
        to: now(),
    };
    tokio::time::sleep(Duration::from_secs(2)).await;
    load.stop.store(true, Ordering::SeqCst);
    for c in clients {
        c.await.unwrap();
    }

    // Every acknowledged upload, from every replica, byte for byte.
    let acknowledged = load.acknowledged.lock().unwrap().clone();
    let checks = acknowledged
        .iter()
        .flat_map(|(id, bytes)| replicas.iter().map(move |r| (r.url(&format!("/images/{id}")), bytes)));
    let unreadable: Vec<String> = futures::stream::iter(checks)
        .map(|(url, bytes)| {
            let client = client.clone();
            async move {
                let got = client.get(&url).send().await.unwrap();
                let status = got.status();
                (status != 200 || got.bytes().await.unwrap().as_ref() != bytes.as_slice())
                    .then(|| format!("{url}: {status}"))
            }
        })
        .buffer_unordered(16)
        .filter_map(|x| async move { x })
        .collect()
        .await;

    let outcomes = std::mem::take(&mut *load.outcomes.lock().unwrap());
    // A request belongs to a fault when it was under way during it.
    let in_window = |o: &Outcome| {
        windows
            .iter()
            .find(|w| o.at <= w.to && o.done >= w.from)
            .map(|w| w.name)
    };
    let mut table: BTreeMap<(&str, Kind), Row> = BTreeMap::new();
    let mut outside = Vec::new();
    let mut during_rollout = Vec::new();
    for o in &outcomes {
        let phase = if o.at <= rolling.to && o.done >= rolling.from {
            "rolling restart"
        } else {
            in_window(o).unwrap_or("steady")
        };
        let row = table.entry((phase, o.kind)).or_default();
        row.0 += 1;
        if o.status == 0 || o.status >= 400 {
            row.1 += 1;
            *row.2
                .entry(format!("{} {}", o.status, o.error.as_deref().unwrap_or("")))
                .or_default() += 1;
            let json_502_503 = matches!(o.status, 502 | 503)
                && o.error
                    .as_deref()
                    .is_some_and(|e| !e.starts_with("NOT JSON") && !e.starts_with("torn"));
            // An upload cut by the SIGKILL (it ended after the signal was
            // sent): its body was still being sent when the replica died,
            // or HAProxy, which had not yet seen the replica fail its checks
            // (fall 3 x inter 1 s), sent it on an idle connection to the
            // dead replica. A POST whose body is streaming cannot be retried
            // elsewhere, so HAProxy closes while the client writes and the
            // client sees the connection end. GETs are retried.
            let cut_upload = o.status == 0
                && o.kind == Kind::Upload
                && o.done >= kill_from
                && o.at <= killed_at + HAPROXY_DETECTS_DOWN;
            let tolerated = json_502_503 || cut_upload;
            if phase == "rolling restart" {
                during_rollout.push(o);
            } else if phase == "steady" || !tolerated {
                outside.push(o);
            }
        }
    }
    // Work done twice: a URL rendered again, by another replica or after a
    // restart, counted in the phase of the repeat. Requests for one URL that
    // overlap on one replica share one render (single-flight: every one of
    // them says "miss"), so they count once.
    let mut misses: HashMap<&str, Vec<&Outcome>> = HashMap::new();
    for o in outcomes.iter().filter(|o| o.x_cache == "miss") {
        misses.entry(&o.url).or_default().push(o);
    }
    for list in misses.values_mut() {
        list.sort_by_key(|o| o.at);
        let mut renders: Vec<&Outcome> = Vec::new();
        for o in list.iter() {
            let shared = renders
                .iter()
                .any(|r| r.served_by == o.served_by && o.at <= r.done && o.done >= r.at);
            if !shared {
                renders.push(o);
            }
        }
        *list = renders;
    }
    let rendered = misses.len();
    let twice: usize = misses.values().map(|v| v.len() - 1).sum();
    let mut repeats: BTreeMap<String, usize> = BTreeMap::new();
    for o in misses.values().flat_map(|v| v.iter().skip(1)) {
        let phase = if o.at <= rolling.to && o.done >= rolling.from {
            "rolling restart"
        } else {
            in_window(o).unwrap_or("steady")
        };
        *repeats.entry(format!("{phase} ({})", o.served_by)).or_default() += 1;
        if std::env::var_os("REPLICAS_DEBUG").is_some() {
            let all: Vec<String> = misses[o.url.as_str()]
                .iter()
                .map(|m| format!("{}@{:?}-{:?}", m.served_by, m.at, m.done))
                .collect();
            println!("repeat in {phase}: {} {all:?}", o.url);
        }
    }
    let mut per_replica: BTreeMap<&str, usize> = BTreeMap::new();
    for o in &outcomes {
        *per_replica.entry(o.served_by.as_str()).or_default() += 1;
    }

    println!("\n| phase | requests | kind | failed | failures |\n|---|---|---|---|---|");
    for ((phase, kind), (n, failed, why)) in &table {
        let why: Vec<String> = why.iter().map(|(k, v)| format!("{v} x {k}")).collect();
        println!("| {phase} | {n} | {kind:?} | {failed} | {} |", why.join(", "));
    }
    println!(
        "\n{} requests in {:.0} s through HAProxy; answered by {per_replica:?}",
        outcomes.len(),
        load.started.elapsed().as_secs_f64()
    );
    println!(
        "{} uploads acknowledged, each read back from all 3 replicas: {} unreadable",
        acknowledged.len(),
        unreadable.len()
    );
    println!(
        "{rendered} distinct rendition/chain URLs rendered; {twice} renders repeated the same URL on another replica \
         (or after a restart), by phase: {repeats:?}; r2 (256 KiB memory cache) evicted {evictions} entries, \
         holding {cached} bytes"
    );
    for n in &notes {
        println!("- {n}");
    }
    println!(
        "answers differing from the first answer for the same URL: {}",
        load.mismatches.lock().unwrap().len()
    );

    assert!(unreadable.is_empty(), "acknowledged uploads lost: {unreadable:?}");
    // Routing by URI sends each URL to one replica: a repeat needs a replica
    // to leave or return while its URL is being rendered. With round robin
    // the same load repeated 1.7% (docs/deploy.md, section 5).
    assert!(
        rendered > 100,
        "too few rendition URLs to judge duplication: {rendered}"
    );
    assert!(
        twice * 200 <= rendered,
        "{twice} of {rendered} rendition URLs rendered twice (goal: at most 0.5%): {repeats:?}"
    );
    assert!(
        load.mismatches.lock().unwrap().is_empty(),
        "wrong or torn answers: {:?}",
        load.mismatches.lock().unwrap()
    );
    assert!(
        outside.is_empty(),
        "failures outside a fault window, or not a JSON 502/503: {outside:#?}"
    );
    assert!(
        during_rollout.is_empty(),
        "requests failed during the rolling restart: {during_rollout:#?}"
    );
    assert!(evictions > 0.0, "r2's cache budget was filled and it evicted");
    assert!(acknowledged.len() >= 10, "the load made progress");
}
