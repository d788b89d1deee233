//! README's examples are real: every `GET` line of its language block is
//! served, and its shell one-liner for signing agrees with the service.

use crate::common::{TestServer, decode, fixture_origin, repo_path};

/// Each example: `GET <path>  -> <width>x<height> <FORMAT>`, what README
/// promises the path gives.
fn examples() -> Vec<(String, (u32, u32), String)> {
    let readme = std::fs::read_to_string(repo_path("README.md")).unwrap();
    let start = readme.find("<!-- readme-examples: start -->").expect("examples block");
    let end = readme
        .find("<!-- readme-examples: end -->")
        .expect("examples block end");
    readme[start..end]
        .lines()
        .filter_map(|l| l.strip_prefix("GET "))
        .map(|l| {
            let (path, promise) = l.split_once("->").unwrap_or_else(|| panic!("`{l}` promises no result"));
            let (size, format) = promise.trim().split_once(' ').expect("WxH FORMAT");
            let (w, h) = size.split_once('x').expect("WxH");
            (
                path.trim().to_string(),
                (w.parse().unwrap(), h.parse().unwrap()),
                format.trim().to_string(),
            )
        })
        .collect()
}

#[tokio::test]
async fn every_readme_chain_example_is_served() {
    let origin = fixture_origin().await;
    let server = TestServer::start_with(&[], |s| {
        s.allow_builtin_filters = true;
        s.domains.insert("origin".into(), origin.clone());
    })
    .await;
    let list = examples();
    assert!(list.len() >= 5, "{list:?}");
    for (path, size, format) in list {
        let response = server.get(&path).await;
        assert_eq!(response.status(), 200, "{path}");
        let (got_format, img) = decode(&response.bytes().await.unwrap());
        assert_eq!((img.width(), img.height()), size, "{path}: the size README promises");
        assert_eq!(
            format!("{got_format:?}").to_ascii_uppercase(),
            format,
            "{path}: the format README promises"
        );
    }
    server.stop().await;
}

#[test]
fn the_readme_signing_one_liner_matches_the_service() {
    let secret = "readme-secret-0123456789";
    let chain = "download(origin:photo.jpg):thumbnail(200)";
    let out = std::process::Command::new("bash")
        .arg("-c")
        .arg("printf %s \"$CHAIN\" | openssl dgst -sha256 -hmac \"$SECRET\" -binary | basenc --base64url | tr -d '='")
        .env("CHAIN", chain)
        .env("SECRET", secret)
        .output()
        .expect("bash, openssl and basenc");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(
        String::from_utf8(out.stdout).unwrap().trim(),
        imaginator::signature::sign(secret, chain)
    );
}
