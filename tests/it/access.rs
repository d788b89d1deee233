//! Access control that survives proxies and sidecars, and origins that
//! cannot be escaped. Each bypass is reproduced with real local parts first
//! (a reverse proxy that adds X-Forwarded-For, an HTTP proxy set through the
//! environment, an origin that decodes `%2f`), then refused.

use crate::common;

use crate::common::{TestServer, error_code, fixture, start_binary_with};
use axum::Router;
use axum::extract::Request;
use axum::http::{StatusCode, header};
use axum::routing::any;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

const EXE: &str = env!("CARGO_BIN_EXE_imaginator");
const TOKEN: &str = "admin-token-0123456789";

/// A local reverse proxy in front of `upstream` that adds
/// `X-Forwarded-For`, as nginx, Caddy or a mesh sidecar does.
async fn reverse_proxy(upstream: String) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let client = reqwest::Client::new();
    let app = Router::new().fallback(any(move |request: Request| {
        let (client, upstream) = (client.clone(), upstream.clone());
        async move {
            let url = format!("{upstream}{}", request.uri());
            let method = request.method().clone();
            let mut forwarded = client.request(method, url).header("x-forwarded-for", "203.0.113.7");
            if let Some(auth) = request.headers().get(header::AUTHORIZATION) {
                forwarded = forwarded.header(header::AUTHORIZATION, auth.clone());
            }
            let body = axum::body::to_bytes(request.into_body(), 1 << 20).await.unwrap();
            let answer = forwarded.body(body).send().await.unwrap();
            let status = StatusCode::from_u16(answer.status().as_u16()).unwrap();
            (status, answer.bytes().await.unwrap())
        }
    }));
    tokio::spawn(async move { axum::serve(listener, app).await });
    format!("http://{addr}")
}

#[tokio::test]
async fn a_loopback_caller_behind_a_proxy_needs_the_token() {
    let server = TestServer::start_with(&[], |s| s.admin_token = TOKEN.into()).await;
    let proxy = reverse_proxy(server.base.clone()).await;
    let client = reqwest::Client::new();
    // Direct from loopback: admin, as `curl 127.0.0.1:3000/dump_profile` expects.
    assert_eq!(server.get("/debug/memory").await.status(), 200);
    // Through the proxy: the same loopback peer, but speaking for someone else.
    for (method, path) in [
        ("GET", "/debug/memory"),
        ("GET", "/dump_profile"),
        ("POST", "/admin/purge"),
        (
            "DELETE",
            "/images/0000000000000000000000000000000000000000000000000000000000000000",
        ),
    ] {
        let r = client
            .request(method.parse().unwrap(), format!("{proxy}{path}"))
            .json(&serde_json::json!({"all": true}))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 403, "{method} {path} through a proxy without the token");
    }
    let with_token = client
        .get(format!("{proxy}/debug/memory"))
        .bearer_auth(TOKEN)
        .send()
        .await
        .unwrap();
    assert_eq!(with_token.status(), 200, "the token opens it through the proxy");
    // Any of the proxy headers counts.
    for name in ["forwarded", "x-real-ip", "via", "x-envoy-external-address"] {
        let r = client
            .get(server.url("/debug/memory"))
            .header(name, "x")
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 403, "{name}");
    }
    server.stop().await;
}

#[tokio::test]
async fn with_admin_listen_admin_routes_and_metrics_live_only_there() {
    let data = tempfile::tempdir().unwrap();
    let (mut child, started) =
        common::start_binary_logged(EXE, data.path(), &[("IMAGINATOR_ADMIN_LISTEN", "127.0.0.1:0".into())]);
    let addr = started["listen"].as_str().unwrap().to_string();
    let admin = started["admin_listen"]
        .as_str()
        .expect("the admin listener in the start-up line")
        .to_string();
    let client = reqwest::Client::new();
    let get = |base: &str, path: &str| client.get(format!("http://{base}{path}")).send();
    for path in ["/metrics", "/debug/memory", "/dump_profile"] {
        assert_eq!(get(&addr, path).await.unwrap().status(), 404, "public {path}");
        assert_eq!(get(&admin, path).await.unwrap().status(), 200, "admin {path}");
    }
    let id = "0".repeat(64);
    let public_delete = client
        .delete(format!("http://{addr}/images/{id}"))
        .send()
        .await
        .unwrap();
    assert_eq!(public_delete.status(), 404);
    let admin_delete = client
        .delete(format!("http://{admin}/images/{id}"))
        .send()
        .await
        .unwrap();
    assert_eq!(admin_delete.status(), 404, "served there (no such image)");
    let (status, code, _) = error_code(admin_delete).await;
    assert_eq!((status, code.as_str()), (404, "image_not_found"));
    // Images are public only.
    let r = client
        .post(format!("http://{addr}/transform/thumbnail?width=40"))
        .body(fixture("photo.jpg"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let r = client
        .post(format!("http://{admin}/transform/thumbnail?width=40"))
        .body(fixture("photo.jpg"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 404);
    // Refused with the body unread: the connection is not reused.
    assert_eq!(
        r.headers()["connection"],
        "close",
        "an error before the body closes the connection"
    );
    assert_eq!(
        get(&admin, "/readyz").await.unwrap().status(),
        200,
        "probes work on both"
    );
    child.kill().unwrap();
    child.wait().unwrap();
}

/// A local origin under `/img/`, an `/internal.png` outside it, and a
/// record of every path requested (as sent, before decoding).
async fn origin(seen: Arc<std::sync::Mutex<Vec<String>>>) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let app = Router::new().fallback(any(move |request: Request| {
        let seen = Arc::clone(&seen);
        async move {
            seen.lock().unwrap().push(request.uri().path().to_string());
            // Like many servers: decode the path, then resolve it.
            let decoded = percent_encoding::percent_decode_str(request.uri().path())
                .decode_utf8_lossy()
                .into_owned();
            if decoded.starts_with("/img/") || decoded.starts_with("/pub/") || decoded == "/internal.png" {
                (StatusCode::OK, fixture("photo.jpg")).into_response()
            } else {
                StatusCode::NOT_FOUND.into_response()
            }
        }
    }));
    tokio::spawn(async move { axum::serve(listener, app).await });
    format!("http://{addr}")
}

use axum::response::IntoResponse;

#[tokio::test]
async fn origins_cannot_be_escaped() {
    let seen = Arc::new(std::sync::Mutex::new(Vec::new()));
    let base = origin(Arc::clone(&seen)).await;
    let b = base.clone();
    let server = TestServer::start_with(&[], move |s| {
        s.allow_builtin_filters = true;
        s.domains.insert("origin".into(), format!("{b}/img/"));
        s.download.allowed_origins = vec![format!("{b}/pub")];
    })
    .await;
    // A step out of /img/ that only appears once the origin decodes %2f.
    let (status, code, _) = error_code(server.get("/download(origin:..%252finternal.png):resize(10,10)").await).await;
    assert_eq!((status, code.as_str()), (400, "invalid_url"));
    // An allow-list entry without a trailing slash is a whole segment.
    let ok = server.get(&format!("/download({base}/pub/a.jpg):resize(10,10)")).await;
    assert_eq!(ok.status(), 200);
    let (status, code, _) = error_code(
        server
            .get(&format!("/download({base}/pub-private/a.jpg):resize(10,10)"))
            .await,
    )
    .await;
    assert_eq!((status, code.as_str()), (403, "download_forbidden"));
    // Credentials are never forwarded.
    let with_user = base.replace("http://", "http://user:pass@");
    let (status, code, _) = error_code(
        server
            .get(&format!("/download({with_user}/img/a.jpg):resize(10,10)"))
            .await,
    )
    .await;
    assert_eq!((status, code.as_str()), (400, "invalid_url"));
    let seen = seen.lock().unwrap().clone();
    assert_eq!(seen, ["/pub/a.jpg"], "only the allowed request reached the origin");
    server.stop().await;
}

#[tokio::test]
async fn a_proxy_from_the_environment_is_never_used() {
    // A "proxy" that counts the connections it gets and answers none usefully.
    let connections = Arc::new(AtomicUsize::new(0));
    let proxy = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let proxy_addr = proxy.local_addr().unwrap();
    {
        let connections = Arc::clone(&connections);
        tokio::spawn(async move {
            while let Ok((socket, _)) = proxy.accept().await {
                connections.fetch_add(1, Ordering::SeqCst);
                drop(socket);
            }
        });
    }
    let seen = Arc::new(std::sync::Mutex::new(Vec::new()));
    let base = origin(Arc::clone(&seen)).await;
    let data = tempfile::tempdir().unwrap();
    let config = data.path().join("config.toml");
    std::fs::write(&config, format!("[domains]\norigin = \"{base}/img/\"\n")).unwrap();
    let proxy_url = format!("http://{proxy_addr}");
    let (mut child, addr) = start_binary_with(
        EXE,
        data.path(),
        &[
            ("IMAGINATOR_CONFIG", config.display().to_string()),
            ("HTTP_PROXY", proxy_url.clone()),
            ("HTTPS_PROXY", proxy_url.clone()),
            ("http_proxy", proxy_url.clone()),
            ("ALL_PROXY", proxy_url),
        ],
    );
    let r = reqwest::get(format!("http://{addr}/download(origin:a.jpg):thumbnail(50)"))
        .await
        .unwrap();
    assert_eq!(r.status(), 200, "fetched directly");
    assert_eq!(
        connections.load(Ordering::SeqCst),
        0,
        "the environment's proxy saw nothing"
    );
    assert_eq!(seen.lock().unwrap().len(), 1);
    child.kill().unwrap();
    child.wait().unwrap();
}

#[tokio::test]
async fn with_sign_all_routes_renditions_and_transforms_need_a_signature() {
    let secret = "a-secret-of-sixteen-chars";
    let server = TestServer::start_with(&[], |s| {
        s.secrets = vec![secret.into()];
        s.sign_all_routes = true;
        s.admin_token = TOKEN.into();
    })
    .await;
    // Every route is signed, so are uploads (or the admin token stands in).
    let unsigned_upload = server.upload(fixture("photo.jpg")).await;
    assert_eq!(unsigned_upload.0, 403);
    let json: serde_json::Value = server
        .client
        .post(server.url("/images"))
        .bearer_auth(TOKEN)
        .header("content-type", "image/jpeg")
        .body(fixture("photo.jpg"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let id = json["id"].as_str().unwrap();
    let path = format!("images/{id}/thumbnail?width=102");
    let unsigned = server.get(&format!("/{path}")).await;
    assert_eq!(unsigned.status(), 403);
    let signature = imaginator::signature::sign(secret, &path);
    let signed = server.get(&format!("/{path}&signature={signature}")).await;
    assert_eq!(signed.status(), 200);
    let tampered = server
        .get(&format!("/images/{id}/thumbnail?width=103&signature={signature}"))
        .await;
    assert_eq!(tampered.status(), 403);

    let transform = |query: String, token: bool| {
        let mut r = server
            .client
            .post(server.url(&format!("/transform/thumbnail{query}")))
            .body(fixture("photo.jpg"));
        if token {
            r = r.bearer_auth(TOKEN);
        }
        r.send()
    };
    assert_eq!(transform("?width=60".into(), false).await.unwrap().status(), 403);
    assert_eq!(transform("?width=60".into(), true).await.unwrap().status(), 200);
    let sig = imaginator::signature::sign(secret, "transform/thumbnail?width=60");
    assert_eq!(
        transform(format!("?width=60&signature={sig}"), false)
            .await
            .unwrap()
            .status(),
        200
    );
    server.stop().await;
}

/// `width=0102` and `width=102` are one parameter value: one job, one
/// cache entry, one ETag.
#[tokio::test]
async fn alias_parameters_are_canonical_in_the_cache_key() {
    let server = TestServer::start().await;
    let (_, json) = server.upload(fixture("photo.jpg")).await;
    let id = json["id"].as_str().unwrap();
    let first = server.get(&format!("/images/{id}/thumbnail?width=102")).await;
    assert_eq!(first.headers()["x-cache"], "miss");
    let second = server.get(&format!("/images/{id}/thumbnail?width=0102")).await;
    assert_eq!(second.headers()["x-cache"], "hit-memory");
    assert_eq!(first.headers()["etag"], second.headers()["etag"]);
    server.stop().await;
}

/// The original's signatures are standard base64, so about one in five
/// contains `/`; those verified never when the path was split at its first
/// `/`. Now they verify, and a wrong one still does not.
#[tokio::test]
async fn legacy_signatures_containing_a_slash_verify() {
    let secret = "legacy-secret-0123456789";
    let seen = Arc::new(std::sync::Mutex::new(Vec::new()));
    let base = origin(Arc::clone(&seen)).await;
    let b = base.clone();
    let server = TestServer::start_with(&[], move |s| {
        s.secrets = vec![secret.into()];
        s.legacy_sha1_signatures = true;
        s.allow_builtin_filters = true;
        s.domains.insert("origin".into(), format!("{b}/img/"));
    })
    .await;
    let (chain, signature) = (10..400)
        .map(|n| format!("download(origin:a.jpg):resize({n},{n})"))
        .map(|c| {
            let s = imaginator::signature::sign_legacy(secret, &c);
            (c, s)
        })
        .find(|(_, s)| s.contains('/'))
        .expect("some signature contains '/'");
    let signed = server.get(&format!("/{signature}/{chain}")).await;
    assert_eq!(signed.status(), 200, "/{signature}/{chain}");
    let other = chain.replace("a.jpg", "b.jpg");
    let (status, code, _) = error_code(server.get(&format!("/{signature}/{other}")).await).await;
    assert_eq!((status, code.as_str()), (403, "invalid_signature"));
    let (status, _, _) = error_code(server.get(&format!("/{chain}")).await).await;
    assert_eq!(status, 403, "unsigned chains are refused when secrets are set");
    server.stop().await;
}

/// Uploads follow `uploads`: with `token`, a body needs the upload token
/// (or the admin token), and the refusal says so with a 401 and a Bearer
/// challenge, before the body is read.
#[tokio::test]
async fn token_uploads_need_the_upload_token() {
    let server = TestServer::start_with(&[], |s| {
        s.uploads = Some(imaginator::config::UploadPolicy::Token);
        s.upload_token = "upload-token-0123".into();
    })
    .await;
    let client = reqwest::Client::new();
    for path in ["/images", "/transform/thumbnail", "/info"] {
        let r = client
            .post(server.url(path))
            .header("content-type", "image/jpeg")
            .body(fixture("photo.jpg"))
            .send()
            .await
            .unwrap();
        assert_eq!(
            r.headers().get("www-authenticate").map(|v| v.to_str().unwrap()),
            Some("Bearer")
        );
        let (status, code, _) = error_code(r).await;
        assert_eq!((status, code.as_str()), (401, "upload_token_required"), "{path}");
        let r = client
            .post(server.url(path))
            .bearer_auth("upload-token-0123")
            .header("content-type", "image/jpeg")
            .body(fixture("photo.jpg"))
            .send()
            .await
            .unwrap();
        assert!(r.status().is_success(), "{path} with the token: {}", r.status());
    }
}

/// Without `admin_listen`, `/metrics` is an operator route like the others;
/// on a dedicated admin listener it is open to whoever reaches that port.
#[tokio::test]
async fn metrics_are_for_operators_unless_on_their_own_listener() {
    let server = TestServer::start().await;
    let proxy = reverse_proxy(server.base.clone()).await;
    assert_eq!(server.get("/metrics").await.status(), 200, "a local operator");
    let relayed = reqwest::get(format!("{proxy}/metrics")).await.unwrap();
    assert_eq!(relayed.status(), 403, "relayed by a proxy");
}

/// The start-up log states who may upload and which routes are signed.
#[test]
fn the_start_up_log_states_the_access_policy() {
    let data = tempfile::tempdir().unwrap();
    let (mut child, started) = common::start_binary_logged(EXE, data.path(), &[]);
    let access = started["access"].as_str().unwrap_or_default().to_string();
    let _ = child.kill();
    let _ = child.wait();
    assert!(access.contains("uploads = open"), "{access}");
    assert!(access.contains("no route is signed"), "{access}");
}
