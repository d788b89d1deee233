//! Crash quarantine, end to end on the real binary: an input that was being
//! decoded at two crashes is refused with 422 `quarantined`; an input in
//! flight when the process was SIGKILLed is not blamed; a release forgets;
//! with S3 storage, a replica that never crashed learns from the bucket.
//!
//! The crash is real (the worker calls `abort()` inside the job, as a C
//! decoder's assertion would); it is triggered by a marker the test build
//! looks for (`crash::test_hooks`, compiled out of release builds).

use crate::common;

use crate::common::garage::Garage;
use crate::common::{fixture, start_binary_with};
use std::os::unix::process::ExitStatusExt;
use std::path::Path;
use std::process::Child;
use std::time::{Duration, Instant};

const EXE: &str = env!("CARGO_BIN_EXE_imaginator");
const ABORT: &str = "imaginator-test-abort-here";
const HANG: &str = "imaginator-test-hang-here";

/// The fixture photo with a comment segment: a valid JPEG, distinct bytes.
fn with_comment(text: &str) -> Vec<u8> {
    let photo = fixture("photo.jpg");
    let comment = text.as_bytes();
    let mut out = photo[..2].to_vec();
    out.extend_from_slice(&[0xFF, 0xFE]);
    out.extend_from_slice(&((comment.len() + 2) as u16).to_be_bytes());
    out.extend_from_slice(comment);
    out.extend_from_slice(&photo[2..]);
    out
}

fn sha256(bytes: &[u8]) -> String {
    common::sha256_hex(bytes)
}

fn hooks(extra: &[(&'static str, String)]) -> Vec<(&'static str, String)> {
    let mut env = vec![
        ("IMAGINATOR_TEST_ABORT_MARKER", ABORT.to_string()),
        ("IMAGINATOR_TEST_HANG_MARKER", HANG.to_string()),
        ("IMAGINATOR_QUARANTINE__REFRESH", "1s".to_string()),
    ];
    env.extend_from_slice(extra);
    env
}

async fn upload(client: &reqwest::Client, addr: &str, bytes: Vec<u8>) -> Result<reqwest::Response, reqwest::Error> {
    client
        .post(format!("http://{addr}/images"))
        .header("content-type", "image/jpeg")
        .body(bytes)
        .send()
        .await
}

/// Sends the abort marker and checks the process died of SIGABRT.
async fn crash(client: &reqwest::Client, child: &mut Child, addr: &str, bytes: &[u8]) {
    let answer = upload(client, addr, bytes.to_vec()).await;
    assert!(answer.is_err(), "the process died mid-request: {answer:?}");
    let status = wait_exit(child, Duration::from_secs(20));
    assert_eq!(status.signal(), Some(libc_sigabrt()), "died of SIGABRT: {status:?}");
}

fn libc_sigabrt() -> i32 {
    6
}

fn wait_exit(child: &mut Child, within: Duration) -> std::process::ExitStatus {
    let until = Instant::now() + within;
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            return status;
        }
        assert!(Instant::now() < until, "the process did not exit");
        std::thread::sleep(Duration::from_millis(50));
    }
}

async fn listed(client: &reqwest::Client, addr: &str) -> serde_json::Value {
    let r = client
        .get(format!("http://{addr}/admin/quarantine"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    r.json().await.unwrap()
}

fn crashes_of(list: &serde_json::Value, id: &str) -> u64 {
    list["inputs"]
        .as_array()
        .unwrap()
        .iter()
        .find(|i| i["id"] == id)
        .map_or(0, |i| i["crashes"].as_u64().unwrap())
}

fn start(data: &Path, env: &[(&'static str, String)]) -> (Child, String) {
    start_binary_with(EXE, data, env)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_input_in_flight_at_two_crashes_is_refused_and_a_sigkill_blames_nobody() {
    let data = tempfile::tempdir().unwrap();
    let env = hooks(&[]);
    let client = reqwest::Client::new();
    let poison = with_comment(ABORT);
    let poison_id = sha256(&poison);

    // Crash 1.
    let (mut child, addr) = start(data.path(), &env);
    crash(&client, &mut child, &addr, &poison).await;
    let (mut child, addr) = start(data.path(), &env);
    assert_eq!(crashes_of(&listed(&client, &addr).await, &poison_id), 1);
    let scrape = client
        .get(format!("http://{addr}/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert_eq!(
        common::metric_value(&scrape, "imaginator_crashes_found_total{kind=\"signal\"}"),
        1.0
    );

    // Crash 2: refused from the next start on.
    crash(&client, &mut child, &addr, &poison).await;
    let (mut child, mut addr) = start(data.path(), &env);
    let refused = upload(&client, &addr, poison.clone()).await.unwrap();
    let (status, code, message) = common::error_code(refused).await;
    assert_eq!((status, code.as_str()), (422, "quarantined"), "{message}");
    let list = listed(&client, &addr).await;
    assert_eq!(crashes_of(&list, &poison_id), 2);
    assert_eq!(list["inputs"][0]["quarantined"], true);
    // The process serves everything else.
    let fine = upload(&client, &addr, with_comment("an ordinary photo")).await.unwrap();
    assert_eq!(fine.status(), 201);
    let scrape = metrics(&client, &addr).await;
    assert_eq!(common::metric_value(&scrape, "imaginator_quarantined_inputs"), 1.0);

    // An input in flight at two SIGKILLs (an OOM kill, a node drain) is not
    // blamed: nothing says it caused them.
    let innocent = with_comment(HANG);
    let innocent_id = sha256(&innocent);
    for _ in 0..2 {
        let pending = tokio::spawn({
            let (client, addr, bytes) = (client.clone(), addr.clone(), innocent.clone());
            async move { upload(&client, &addr, bytes).await }
        });
        // Wait until its job runs (the hook holds the worker for a minute):
        // a job has started (queue time observed) and not finished.
        let until = Instant::now() + Duration::from_secs(20);
        loop {
            let scrape = metrics(&client, &addr).await;
            if common::metric_or_zero(&scrape, "imaginator_job_queue_seconds_count")
                > common::metric_or_zero(&scrape, "imaginator_job_run_seconds_count")
            {
                break;
            }
            assert!(Instant::now() < until, "the hanging job never started");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        child.kill().unwrap();
        child.wait().unwrap();
        assert!(pending.await.unwrap().is_err());
        (child, addr) = start(data.path(), &env);
        assert_eq!(
            crashes_of(&listed(&client, &addr).await, &innocent_id),
            0,
            "a SIGKILL gives no strike"
        );
        let scrape = metrics(&client, &addr).await;
        assert_eq!(
            common::metric_value(&scrape, "imaginator_crashes_found_total{kind=\"unclean\"}"),
            1.0
        );
    }

    // An operator releases the input: it reaches a decoder again (and
    // crashes it again, which proves the refusal is gone).
    let released = client
        .delete(format!("http://{addr}/admin/quarantine/{poison_id}"))
        .send()
        .await
        .unwrap();
    assert_eq!(released.status(), 200);
    assert_eq!(
        released.json::<serde_json::Value>().await.unwrap()["strikes_removed"],
        2
    );
    crash(&client, &mut child, &addr, &poison).await;
}

async fn metrics(client: &reqwest::Client, addr: &str) -> String {
    client
        .get(format!("http://{addr}/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replicas_on_one_bucket_learn_of_a_quarantine_they_never_crashed_on() {
    let garage = Garage::start();
    let env = hooks(&garage.service_env("imaginator"));
    let client = reqwest::Client::new();
    let poison = with_comment(ABORT);
    let (dir_a, dir_b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let (mut b, addr_b) = start(dir_b.path(), &env);

    let (mut a, addr_a) = start(dir_a.path(), &env);
    crash(&client, &mut a, &addr_a, &poison).await;
    let (mut a, addr_a) = start(dir_a.path(), &env);
    crash(&client, &mut a, &addr_a, &poison).await;
    // A records its second strike when it starts again; B, which never saw
    // the input, refuses it at its next refresh (every second here).
    let (mut a, addr_a) = start(dir_a.path(), &env);
    let poison_id = sha256(&poison);
    let waiting = Instant::now();
    assert_eq!(crashes_of(&listed(&client, &addr_b).await, &poison_id), 2);
    // The list reads the bucket; what B refuses is what its last refresh read.
    while common::metric_value(&metrics(&client, &addr_b).await, "imaginator_quarantined_inputs") < 1.0 {
        assert!(
            waiting.elapsed() < Duration::from_secs(15),
            "B never learned of the quarantine"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let refused = upload(&client, &addr_b, poison.clone())
        .await
        .expect("B refuses the input instead of decoding it");
    let (status, code, _) = common::error_code(refused).await;
    assert_eq!((status, code.as_str()), (422, "quarantined"));
    let from_a = upload(&client, &addr_a, poison.clone()).await.unwrap();
    assert_eq!(from_a.status(), 422);
    for child in [&mut a, &mut b] {
        child.kill().unwrap();
        child.wait().unwrap();
    }
}

const HELPER: &str = "imaginator-test-helper-abort-here";

/// Hostile clients, round 2, class 7: a crash on a thread that holds no
/// journal slot (a decoder's helper thread, as dav1d's are for AVIF) while
/// a stored original was decoding beside it gives that original no strike:
/// it decoded when it was uploaded, so it is not what crashes the decoder.
/// The input that never decoded is blamed, and quarantined at the second
/// crash; the stored original keeps being served.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_crash_on_a_helper_thread_blames_only_inputs_that_never_decoded() {
    let data = tempfile::tempdir().unwrap();
    let env = hooks(&[
        ("IMAGINATOR_TEST_HELPER_ABORT_MARKER", HELPER.to_string()),
        ("IMAGINATOR_TEST_HANG_SECONDS", "3".to_string()),
        ("IMAGINATOR_WORKERS", "2".to_string()),
    ]);
    let client = reqwest::Client::new();
    let victim = with_comment(HANG);
    let victim_id = sha256(&victim);
    let crasher = with_comment(HELPER);
    let crasher_id = sha256(&crasher);

    let (mut child, mut addr) = start(data.path(), &env);
    assert_eq!(upload(&client, &addr, victim.clone()).await.unwrap().status(), 201);
    for round in 0..2u32 {
        // The victim's rendition decodes (its journal slot filled for 3 s)...
        let rendition = {
            let (client, url) = (
                client.clone(),
                format!("http://{addr}/images/{victim_id}/thumbnail?width={}", 100 + round),
            );
            tokio::spawn(async move { client.get(url).send().await })
        };
        tokio::time::sleep(Duration::from_millis(700)).await;
        // ...when the crasher's job crashes on a helper thread.
        let answer = client
            .post(format!("http://{addr}/transform/thumbnail"))
            .body(crasher.clone())
            .send()
            .await;
        assert!(answer.is_err(), "the process died mid-request: {answer:?}");
        let status = wait_exit(&mut child, Duration::from_secs(20));
        assert_eq!(status.signal(), Some(libc_sigabrt()), "died of SIGABRT: {status:?}");
        assert!(rendition.await.unwrap().is_err(), "the victim was in flight");
        (child, addr) = start(data.path(), &env);
    }
    let list = listed(&client, &addr).await;
    assert_eq!(
        crashes_of(&list, &victim_id),
        0,
        "the stored original is not blamed: {list}"
    );
    assert_eq!(crashes_of(&list, &crasher_id), 2, "{list}");
    let refused = client
        .post(format!("http://{addr}/transform/thumbnail"))
        .body(crasher.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(refused.status(), 422);
    let served = client
        .get(format!("http://{addr}/images/{victim_id}/thumbnail?width=90"))
        .send()
        .await
        .unwrap();
    assert_eq!(served.status(), 200, "the victim is still served");
    let _ = child.kill();
    let _ = child.wait();
}
