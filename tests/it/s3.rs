//! Two imaginator processes sharing one bucket of a real S3-compatible server
//! (Garage, installed by scripts/setup), all on 127.0.0.1: an upload through
//! one is served by the other, and so is a rendition the first one made.

use crate::common;

use crate::common::garage::Garage;
use crate::common::{fixture, start_binary_with};

const EXE: &str = env!("CARGO_BIN_EXE_imaginator");

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_replicas_share_originals_and_renditions_through_s3() {
    let garage = Garage::start();
    let env = garage.service_env("imaginator");
    let (dir_a, dir_b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let (mut a, addr_a) = start_binary_with(EXE, dir_a.path(), &env);
    let (mut b, addr_b) = start_binary_with(EXE, dir_b.path(), &env);
    let client = reqwest::Client::new();

    let upload = client
        .post(format!("http://{addr_a}/images"))
        .header("content-type", "image/jpeg")
        .body(fixture("photo.jpg"))
        .send()
        .await
        .unwrap();
    assert_eq!(upload.status(), 201);
    let id = upload.json::<serde_json::Value>().await.unwrap()["id"]
        .as_str()
        .unwrap()
        .to_string();

    // The other replica serves the original it never saw uploaded...
    let original = client.get(format!("http://{addr_b}/images/{id}")).send().await.unwrap();
    assert_eq!(original.status(), 200);
    assert_eq!(
        original.bytes().await.unwrap().as_ref(),
        fixture("photo.jpg").as_slice()
    );
    // ...and the same bytes uploaded there are recognised (200, same id).
    let again = client
        .post(format!("http://{addr_b}/images"))
        .header("content-type", "image/jpeg")
        .body(fixture("photo.jpg"))
        .send()
        .await
        .unwrap();
    assert_eq!(again.status(), 200);

    // A rendition made by A is found in the bucket by B.
    let path = format!("/images/{id}/thumbnail?width=100");
    let made = client.get(format!("http://{addr_a}{path}")).send().await.unwrap();
    assert_eq!(made.headers()["x-cache"], "miss");
    let made = made.bytes().await.unwrap();
    let shared = client.get(format!("http://{addr_b}{path}")).send().await.unwrap();
    assert_eq!(
        shared.headers()["x-cache"],
        "hit-disk",
        "B found A's rendition in the shared tier"
    );
    assert_eq!(shared.bytes().await.unwrap(), made);
    assert!(
        common::files_under(&dir_b.path().join("cache")).is_empty(),
        "nothing on B's local disk"
    );

    // Deleting through B removes it for A too.
    let deleted = client
        .delete(format!("http://{addr_b}/images/{id}"))
        .send()
        .await
        .unwrap();
    assert_eq!(deleted.status(), 204);
    let gone = client.get(format!("http://{addr_a}/images/{id}")).send().await.unwrap();
    assert_eq!(gone.status(), 404);
    // A still holds the rendition in its memory tier; it stops serving it
    // once it re-checks that the original exists (at most every 5 s).
    let started = std::time::Instant::now();
    let mut status = 200;
    while status == 200 && started.elapsed() < std::time::Duration::from_secs(15) {
        status = client
            .get(format!("http://{addr_a}{path}"))
            .send()
            .await
            .unwrap()
            .status()
            .as_u16();
        if status == 200 {
            tokio::time::sleep(std::time::Duration::from_millis(250)).await;
        }
    }
    println!(
        "A stopped serving the deleted image's rendition after {:?}",
        started.elapsed()
    );
    assert_eq!(
        status, 404,
        "a replica does not serve renditions of a deleted original for long"
    );

    for child in [&mut a, &mut b] {
        child.kill().unwrap();
        child.wait().unwrap();
    }
}
