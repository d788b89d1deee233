//! SIGKILL during a burst of uploads and cache writes: after a restart every
//! acknowledged upload is intact and nothing torn is ever served.

use crate::common::{decode, files_under, fixture, start_binary};
use std::time::Duration;

const EXE: &str = env!("CARGO_BIN_EXE_imaginator");

/// Distinct valid JPEGs: the same photo with a different comment segment
/// (bytes after the end marker would be removed before storing).
fn variant(n: usize) -> Vec<u8> {
    let photo = fixture("photo.jpg");
    let comment = format!("variant {n}").into_bytes();
    let mut out = photo[..2].to_vec();
    out.extend_from_slice(&[0xFF, 0xFE]);
    out.extend_from_slice(&((comment.len() + 2) as u16).to_be_bytes());
    out.extend_from_slice(&comment);
    out.extend_from_slice(&photo[2..]);
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_server_restarts_consistent() {
    let data = tempfile::tempdir().unwrap();
    let (mut child, addr) = start_binary(EXE, data.path());
    let client = reqwest::Client::new();
    let base = format!("http://{addr}");

    // Some originals with cached renditions first, so cache writes are part of the burst.
    let mut acknowledged: Vec<(String, Vec<u8>)> = Vec::new();
    for n in 0..4 {
        let bytes = variant(n);
        let r = client
            .post(format!("{base}/images"))
            .header("content-type", "image/jpeg")
            .body(bytes.clone())
            .send()
            .await
            .unwrap();
        let id = r.json::<serde_json::Value>().await.unwrap()["id"]
            .as_str()
            .unwrap()
            .to_string();
        acknowledged.push((id, bytes));
    }

    let mut burst = Vec::new();
    for n in 4..60 {
        let (client, base, bytes) = (client.clone(), base.clone(), variant(n));
        burst.push(tokio::spawn(async move {
            let r = client
                .post(format!("{base}/images"))
                .header("content-type", "image/jpeg")
                .body(bytes.clone())
                .send()
                .await
                .ok()?;
            if !r.status().is_success() {
                return None;
            }
            let id = r.json::<serde_json::Value>().await.ok()?["id"].as_str()?.to_string();
            Some((id, bytes))
        }));
    }
    for (id, _) in acknowledged.clone() {
        for width in [40, 60, 80, 100, 120] {
            let (client, base, id) = (client.clone(), base.clone(), id.clone());
            tokio::spawn(async move {
                client
                    .get(format!("{base}/images/{id}/thumbnail?width={width}"))
                    .send()
                    .await
            });
        }
    }
    tokio::time::sleep(Duration::from_millis(250)).await;
    child.kill().unwrap(); // SIGKILL
    child.wait().unwrap();
    for task in burst {
        if let Ok(Some(ack)) = task.await {
            acknowledged.push(ack);
        }
    }
    println!("{} uploads acknowledged before SIGKILL", acknowledged.len());

    let (mut child, addr) = start_binary(EXE, data.path());
    let base = format!("http://{addr}");
    for (id, bytes) in &acknowledged {
        let r = client.get(format!("{base}/images/{id}")).send().await.unwrap();
        assert_eq!(r.status(), 200, "acknowledged upload {id} survives");
        assert_eq!(
            r.bytes().await.unwrap().as_ref(),
            bytes.as_slice(),
            "byte-identical {id}"
        );
    }
    // Every original on disk is whole: its name is the hash of its bytes.
    for (path, _) in files_under(&data.path().join("originals")) {
        let name = path.file_name().unwrap().to_string_lossy().to_string();
        if !name.ends_with(".json") {
            let bytes = std::fs::read(&path).unwrap();
            assert_eq!(
                imaginator::storage::ImageId::of(&bytes).as_str(),
                name,
                "no torn original"
            );
        }
    }
    // Whatever the cache holds is served whole (or recomputed), never torn.
    for (id, _) in acknowledged.iter().take(4) {
        for width in [40, 60, 80, 100, 120] {
            let r = client
                .get(format!("{base}/images/{id}/thumbnail?width={width}"))
                .send()
                .await
                .unwrap();
            assert_eq!(r.status(), 200);
            let (_, img) = decode(&r.bytes().await.unwrap());
            assert_eq!(img.width(), width);
        }
    }
    child.kill().unwrap();
    child.wait().unwrap();
}
