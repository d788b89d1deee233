//! The built-in pages in a real browser: Debian's headless Chromium driven
//! through chromedriver (WebDriver), against the real service on 127.0.0.1.
//!
//! The playground: a fixture is uploaded through the page's file input, every
//! alias tile must show its image at the size the service itself renders,
//! with the facts read from `Server-Timing` and `X-Cache`; no request fails,
//! nothing is logged to the console, nothing moves on screen while images
//! arrive; the chain editor points at a syntax error's character and
//! previews a valid chain. The memory page: the charts draw and keep
//! updating, the page says which line an OOM kill depends on, and the heap
//! profile button shows a flame graph.
//!
//! Screenshots of both pages go to `target/ui-screenshots/` (a CI artifact);
//! with `IMAGINATOR_UPDATE_SCREENSHOTS=1` also to `docs/`, where README
//! shows them.

use crate::common;

use crate::common::{TestServer, fixture, repo_path};
use base64::Engine;
use serde_json::{Value, json};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const ELEMENT: &str = "element-6066-11e4-a52e-4f735466cecf";

struct Driver {
    child: Child,
    base: String,
    client: reqwest::Client,
}

impl Drop for Driver {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

impl Driver {
    async fn start() -> Driver {
        let port = free_port();
        let child = Command::new("chromedriver")
            .arg(format!("--port={port}"))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("chromedriver is needed for this test: run scripts/setup (it installs chromium-driver)");
        let driver = Driver {
            child,
            base: format!("http://127.0.0.1:{port}"),
            client: reqwest::Client::new(),
        };
        let until = Instant::now() + Duration::from_secs(30);
        loop {
            if let Ok(r) = driver.client.get(format!("{}/status", driver.base)).send().await
                && let Ok(v) = r.json::<Value>().await
                && v["value"]["ready"] == true
            {
                break;
            }
            assert!(Instant::now() < until, "chromedriver did not start");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        driver
    }

    async fn session(&self) -> Session {
        self.session_with(&[]).await
    }

    /// A session whose browser also gets `extra` command-line switches.
    async fn session_with(&self, extra: &[&str]) -> Session {
        let mut args = vec![
            "--headless=new",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-dev-shm-usage",
            "--window-size=1280,1400",
            "--hide-scrollbars",
            "--no-first-run",
        ];
        args.extend_from_slice(extra);
        let capabilities = json!({"capabilities": {"alwaysMatch": {
            "browserName": "chrome",
            "goog:chromeOptions": {
                "binary": "/usr/bin/chromium",
                "args": args
            },
            "goog:loggingPrefs": {"browser": "ALL"}
        }}});
        let r: Value = self
            .client
            .post(format!("{}/session", self.base))
            .json(&capabilities)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let id = r["value"]["sessionId"]
            .as_str()
            .unwrap_or_else(|| panic!("no WebDriver session: {r}"))
            .to_string();
        Session {
            base: format!("{}/session/{id}", self.base),
            client: self.client.clone(),
        }
    }
}

struct Session {
    base: String,
    client: reqwest::Client,
}

impl Session {
    async fn call(&self, method: reqwest::Method, path: &str, body: Option<Value>) -> Value {
        let mut request = self.client.request(method, format!("{}{path}", self.base));
        if let Some(body) = body {
            request = request.json(&body);
        }
        let v: Value = request.send().await.unwrap().json().await.unwrap();
        if let Some(error) = v["value"]["error"].as_str() {
            panic!("WebDriver {path}: {error}: {}", v["value"]["message"]);
        }
        v["value"].clone()
    }

    async fn goto(&self, url: &str) {
        self.call(reqwest::Method::POST, "/url", Some(json!({ "url": url })))
            .await;
    }

    async fn js(&self, script: &str) -> Value {
        self.call(
            reqwest::Method::POST,
            "/execute/sync",
            Some(json!({ "script": script, "args": [] })),
        )
        .await
    }

    /// Evaluates `expression` until it is truthy; returns its value.
    async fn wait(&self, expression: &str, within: Duration) -> Value {
        let until = Instant::now() + within;
        loop {
            let v = self.js(&format!("return ({expression});")).await;
            if v.as_bool() != Some(false) && !v.is_null() {
                return v;
            }
            assert!(Instant::now() < until, "timed out waiting for `{expression}`");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    async fn find(&self, css: &str) -> String {
        let v = self
            .call(
                reqwest::Method::POST,
                "/element",
                Some(json!({"using": "css selector", "value": css})),
            )
            .await;
        v[ELEMENT]
            .as_str()
            .unwrap_or_else(|| panic!("no element {css}: {v}"))
            .to_string()
    }

    async fn type_into(&self, css: &str, text: &str) {
        let element = self.find(css).await;
        self.call(
            reqwest::Method::POST,
            &format!("/element/{element}/clear"),
            Some(json!({})),
        )
        .await;
        self.call(
            reqwest::Method::POST,
            &format!("/element/{element}/value"),
            Some(json!({ "text": text })),
        )
        .await;
    }

    async fn click(&self, css: &str) {
        let element = self.find(css).await;
        self.call(
            reqwest::Method::POST,
            &format!("/element/{element}/click"),
            Some(json!({})),
        )
        .await;
    }

    /// The browser console's errors and warnings so far (chromedriver's log).
    async fn console_problems(&self) -> Vec<String> {
        let v = self
            .call(reqwest::Method::POST, "/se/log", Some(json!({"type": "browser"})))
            .await;
        v.as_array()
            .unwrap()
            .iter()
            .filter(|e| e["level"] == "SEVERE" || e["level"] == "WARNING")
            .map(|e| e["message"].as_str().unwrap_or_default().to_string())
            .collect()
    }

    async fn screenshot(&self, name: &str) {
        let png = self.call(reqwest::Method::GET, "/screenshot", None).await;
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(png.as_str().unwrap())
            .unwrap();
        assert_eq!(&bytes[1..4], b"PNG");
        let dir = repo_path("target/ui-screenshots");
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join(format!("{name}.png")), &bytes).unwrap();
        if std::env::var_os("IMAGINATOR_UPDATE_SCREENSHOTS").is_some() {
            std::fs::write(repo_path(&format!("docs/ui-{name}.png")), &bytes).unwrap();
        }
    }

    async fn quit(self) {
        let _ = self.client.delete(&self.base).send().await;
    }
}

/// Requests that failed, as the browser's resource timing saw them, apart
/// from the `expected` URL substrings.
async fn failed_requests(session: &Session, expected: &[&str]) -> Vec<String> {
    let v = session
        .js("return performance.getEntriesByType('resource')
                .filter(e => e.responseStatus >= 400 || e.responseStatus === 0 && e.initiatorType === 'fetch')
                .map(e => e.responseStatus + ' ' + e.name);")
        .await;
    v.as_array()
        .unwrap()
        .iter()
        .map(|x| x.as_str().unwrap().to_string())
        .filter(|x| !expected.iter().any(|e| x.contains(e)))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_playground_and_the_memory_page_work_in_headless_chromium() {
    let server = TestServer::start().await;
    let driver = Driver::start().await;
    let session = driver.session().await;

    // ---- The playground ----
    session.goto(&server.url("/ui")).await;
    let aliases = session
        .wait(
            "window.__playground && window.__playground.aliases",
            Duration::from_secs(20),
        )
        .await
        .as_u64()
        .unwrap();
    let listed = server.get("/aliases").await.json::<Value>().await.unwrap();
    assert_eq!(aliases as usize, listed["aliases"].as_array().unwrap().len());
    let photo = repo_path("tests/fixtures/photo.jpg");
    let input = session.find("#file").await;
    session
        .call(
            reqwest::Method::POST,
            &format!("/element/{input}/value"),
            Some(json!({ "text": photo.display().to_string() })),
        )
        .await;
    session
        .wait(
            "window.__playground.failures.length || window.__playground.id && [...document.querySelectorAll('.tile')]
                .every(t => t.dataset.state === 'done')",
            Duration::from_secs(90),
        )
        .await;
    let failures = session.js("return window.__playground.failures;").await;
    assert_eq!(failures, json!([]), "the page's own requests");
    let id = session
        .js("return window.__playground.id;")
        .await
        .as_str()
        .unwrap()
        .to_string();
    assert_eq!(id, common::sha256_hex(&fixture("photo.jpg")));
    let tiles = session
        .js("return [...document.querySelectorAll('.tile')].map(t => ({
                alias: t.dataset.alias, state: t.dataset.state,
                width: Number(t.dataset.width), height: Number(t.dataset.height),
                meta: t.querySelector('.meta').textContent,
                frame: t.querySelector('.frame').getBoundingClientRect().height }));")
        .await;
    for tile in tiles.as_array().unwrap() {
        let alias = tile["alias"].as_str().unwrap();
        assert_eq!(tile["state"], "done", "{alias}: {tile}");
        // The size the service renders for this alias with its defaults.
        let direct = server
            .get(&format!("/images/{id}/{alias}"))
            .await
            .bytes()
            .await
            .unwrap();
        let (_, img) = common::decode(&direct);
        assert_eq!(
            (
                tile["width"].as_u64().unwrap() as u32,
                tile["height"].as_u64().unwrap() as u32
            ),
            (img.width(), img.height()),
            "{alias}: the tile shows the rendition at its size"
        );
        let meta = tile["meta"].as_str().unwrap();
        assert!(
            meta.contains(&format!("{} × {}", img.width(), img.height())),
            "{alias}: {meta}"
        );
        assert!(
            meta.contains("ms on the server") && meta.contains("cache: "),
            "{alias}: Server-Timing and X-Cache read: {meta}"
        );
        assert_eq!(tile["frame"], 220.0, "{alias}: the image box has a fixed size");
    }
    let shift = session
        .js("return window.__playground.layoutShift;")
        .await
        .as_f64()
        .unwrap();
    let shifted = session.js("return window.__playground.shifted;").await;
    assert!(shift < 0.01, "layout shift while images loaded: {shift} ({shifted})");
    session.screenshot("playground").await;

    // An alias parameter edited within its bounds re-renders the tile.
    session
        .type_into(".tile[data-alias=thumbnail] input[name=width]", "120")
        .await;
    session
        .wait(
            "document.querySelector('.tile[data-alias=thumbnail]').dataset.width === '120'",
            Duration::from_secs(30),
        )
        .await;

    // The chain editor: a syntax error is pointed at, a valid chain previewed.
    let broken = format!("original({id}):thumbnail(200");
    session.type_into("#chain", &broken).await;
    let position = session
        .wait(
            "!document.getElementById('chain-error').hidden && document.getElementById('chain-error').dataset.position",
            Duration::from_secs(20),
        )
        .await;
    assert_eq!(position.as_str().unwrap(), broken.len().to_string());
    let caret = session
        .js("return document.getElementById('chain-error').textContent;")
        .await;
    let caret_line = caret.as_str().unwrap().lines().nth(1).unwrap().to_string();
    assert_eq!(
        caret_line.find('^'),
        Some(broken.len()),
        "the caret sits under the error: {caret}"
    );
    session.type_into("#chain", &format!("original({id}):avatar(96)")).await;
    session
        .wait(
            "document.getElementById('chain-error').hidden && document.getElementById('chain-meta').textContent.includes('96 × 96')",
            Duration::from_secs(30),
        )
        .await;
    let canonical = session
        .js("return document.getElementById('canonical').textContent;")
        .await;
    assert_eq!(canonical.as_str().unwrap(), format!("original({id}):avatar(96)"));

    assert_eq!(
        failed_requests(&session, &["/ui/api/chain"]).await,
        Vec::<String>::new()
    );
    let errors = session.js("return window.__playground.errors;").await;
    assert_eq!(errors, json!([]));
    // The chain check's 400 is the one error the browser logs, by design.
    let console: Vec<String> = session
        .console_problems()
        .await
        .into_iter()
        .filter(|m| !m.contains("/ui/api/chain"))
        .collect();
    assert!(console.is_empty(), "console: {console:?}");

    // ---- The memory page ----
    session.goto(&server.url("/ui/memory?every_ms=300")).await;
    session
        .wait("window.__memory && window.__memory.drawn >= 3", Duration::from_secs(30))
        .await;
    let bands = session
        .js("return [...document.querySelectorAll('#chart path[data-band]')].map(p => p.dataset.band);")
        .await;
    let bands: Vec<&str> = bands.as_array().unwrap().iter().map(|b| b.as_str().unwrap()).collect();
    assert!(bands.contains(&"heap"), "the heap is drawn: {bands:?}");
    let process = session
        .js("return document.querySelectorAll('#process-chart path[data-line=rssAnon], #process-chart path[data-band=heap]').length;")
        .await;
    assert_eq!(process, 2, "this process's chart: its heap and its RSS anon");
    let report = server.get("/debug/memory").await.json::<Value>().await.unwrap();
    if !report["cgroup"].is_null() {
        assert!(bands.contains(&"active") && bands.contains(&"inactive"), "{bands:?}");
        let line = session
            .js("return document.querySelector('#chart path[data-line=workingSet]') !== null;")
            .await;
        assert_eq!(line, true, "the working set is drawn as a line");
    }
    // It keeps updating: more samples, a different picture.
    let before = session
        .js("return [window.__memory.drawn, document.querySelector('#chart path[data-band=heap]').getAttribute('d')];")
        .await;
    for width in [50, 60, 70, 80] {
        server.get(&format!("/images/{id}/thumbnail?width={width}")).await;
    }
    let drawn = before[0].as_u64().unwrap();
    session
        .wait(
            &format!("window.__memory.drawn >= {} ", drawn + 3),
            Duration::from_secs(30),
        )
        .await;
    let after = session
        .js("return document.querySelector('#chart path[data-band=heap]').getAttribute('d');")
        .await;
    assert_ne!(after, before[1], "the chart moved on");
    let text = session
        .js("return document.getElementById('which-line').textContent;")
        .await;
    let text = text.as_str().unwrap();
    assert!(text.contains("OOM kill depends on") && text.contains("container_memory_working_set_bytes"));
    let explained = session
        .js("return document.querySelectorAll('#explanation li').length;")
        .await;
    assert!(explained.as_u64().unwrap() >= 3);
    session.screenshot("memory").await;

    // The heap profile button shows a flame graph.
    session.click("#profile").await;
    session
        .wait(
            "(() => { const f = document.querySelector('#profile-view iframe');
                      return f && f.contentDocument && f.contentDocument.querySelector('svg') !== null; })()",
            Duration::from_secs(60),
        )
        .await;
    assert_eq!(failed_requests(&session, &[]).await, Vec::<String>::new());
    let errors = session
        .js("return window.__memory.errors.concat(window.__memory.failures);")
        .await;
    assert_eq!(errors, json!([]));
    let console = session.console_problems().await;
    assert!(console.is_empty(), "console: {console:?}");
    session.quit().await;
    server.stop().await;
}

#[tokio::test]
async fn the_pages_are_served_only_where_they_belong() {
    // Off: no playground, and the public routes are untouched.
    let off = TestServer::start_with(&[], |s| s.ui.enabled = imaginator::config::UiEnabled::Off).await;
    assert_eq!(off.get("/ui").await.status(), 404);
    assert_eq!(off.get("/ui/memory").await.status(), 404);
    off.stop().await;
    // On: the memory page is admin only (a proxied request is not admin).
    let on = TestServer::start().await;
    assert_eq!(on.get("/ui").await.status(), 200);
    let proxied = on
        .client
        .get(on.url("/ui/memory"))
        .header("x-forwarded-for", "203.0.113.9")
        .send()
        .await
        .unwrap();
    assert_eq!(proxied.status(), 403);
    let js = on.get("/ui/assets/playground.js").await;
    assert_eq!(js.headers()["content-type"], "text/javascript; charset=utf-8");
    assert_eq!(on.get("/ui/assets/nothing.js").await.status(), 404);
    // Without secrets there is nothing to sign.
    let unsigned = on
        .client
        .post(on.url("/admin/sign"))
        .json(&json!({"path": "original(x):thumbnail(200)"}))
        .send()
        .await
        .unwrap();
    assert_eq!(unsigned.status(), 409);
    on.stop().await;

    // The signing helper's URL is one the service accepts.
    let signed = TestServer::start_with(&[], |s| s.secrets = vec!["k1".into()]).await;
    let (_, up) = signed.upload(fixture("photo.jpg")).await;
    let chain = format!("original({}):thumbnail(64)", up["id"].as_str().unwrap());
    assert_eq!(
        signed.get(&format!("/{chain}")).await.status(),
        403,
        "unsigned is refused"
    );
    let r = signed
        .client
        .post(signed.url("/admin/sign"))
        .json(&json!({ "path": chain }))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let url = r.json::<Value>().await.unwrap()["url"].as_str().unwrap().to_string();
    assert_eq!(signed.get(&url).await.status(), 200, "{url}");
    // Only for admins: a proxied caller is not one.
    let proxied = signed
        .client
        .post(signed.url("/admin/sign"))
        .header("x-forwarded-for", "203.0.113.9")
        .json(&json!({ "path": chain }))
        .send()
        .await
        .unwrap();
    assert_eq!(proxied.status(), 403);
    signed.stop().await;
}

/// A web page points `<img>` at an alias and gets the best format its
/// browser takes (AVIF from Chromium), sized by its device pixel ratio (a
/// 2x screen: client hints, asked for by `Accept-CH` on the page).
#[tokio::test]
async fn chromium_gets_avif_sized_by_its_dpr_from_an_auto_alias() {
    let server = TestServer::start_with(&[], |s| s.client_hints = true).await;
    let (_, up) = server.upload(fixture("photo.jpg")).await;
    let id = up["id"].as_str().unwrap().to_string();
    let driver = Driver::start().await;
    let session = driver.session_with(&["--force-device-scale-factor=2"]).await;
    // A page of this origin (it asks for client hints), then an <img>.
    session.goto(&server.url("/ui")).await;
    let src = format!("/images/{id}/picture?width=200");
    let loaded = session
        .js(&format!(
            "return await new Promise(done => {{
                const img = new Image();
                img.onload = () => {{
                    const t = performance.getEntriesByName(img.src)[0];
                    done({{ width: img.naturalWidth, height: img.naturalHeight,
                            type: t ? t.contentType : null, bytes: t ? t.encodedBodySize : null,
                            dpr: window.devicePixelRatio }});
                }};
                img.onerror = () => done({{ error: true }});
                img.src = '{src}';
            }});"
        ))
        .await;
    assert_eq!(loaded["dpr"], 2.0, "{loaded}");
    assert_eq!(loaded["type"], "image/avif", "{loaded}");
    assert_eq!(
        (loaded["width"].as_u64(), loaded["height"].as_u64()),
        (Some(400), Some(250)),
        "2x of 200 CSS px: {loaded}"
    );
    // The service rendered that variant: an AVIF request with the same
    // hint is a hit, a JPEG one is not.
    let ask = |accept: &'static str| {
        server
            .client
            .get(server.url(&src))
            .header("accept", accept)
            .header("sec-ch-dpr", "2")
            .send()
    };
    let avif = ask("image/avif,image/webp,*/*").await.unwrap();
    assert_eq!(avif.headers()["x-cache"], "hit-memory");
    let avif_bytes = avif.bytes().await.unwrap().len();
    let jpeg = ask("*/*").await.unwrap();
    assert_eq!(jpeg.headers()["x-cache"], "miss");
    let jpeg_bytes = jpeg.bytes().await.unwrap().len();
    println!("picture?width=200 at 2x: AVIF {avif_bytes} B to Chromium, JPEG {jpeg_bytes} B");
    assert_eq!(loaded["bytes"].as_u64(), Some(avif_bytes as u64));
    session.quit().await;
    server.stop().await;
}
