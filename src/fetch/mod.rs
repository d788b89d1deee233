//! `download(url)`: fetching remote originals without becoming an SSRF proxy.
//! Only allowed origins are fetched: a domain shortcut's base URL, or a
//! configured allow-list prefix, matched by decoded whole segments (`origin`).
//! Addresses in loopback, private, link-local, CGNAT, unique-local and other
//! special ranges are refused unless the shortcut or allow-list entry names
//! them explicitly (an IP literal or `localhost`); the check is in the
//! resolver every connection, redirect and retry goes through, and the
//! connection goes to the address that was checked (`address`). One client
//! serves every download, with no proxy from the environment. Bytes, time and
//! redirects are capped.

mod address;
mod freshness;
mod origin;
mod sources;

use address::{GuardedResolver, Refused};
pub use address::{is_loopback, is_special};
pub use freshness::freshness;
use origin::Origins;
pub use sources::{Known, SourceCache};

use crate::config::DownloadSettings;
use crate::inflight::{Held, InflightBytes};
use crate::pipeline::format::ImageFormat;
use crate::storage::ImageId;
use bytes::{Bytes, BytesMut};
use futures::StreamExt;
use reqwest::header::HeaderValue;
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

#[derive(Debug, thiserror::Error)]
pub enum FetchError {
    #[error("{0}")]
    Forbidden(String),
    #[error("{0}")]
    BadUrl(String),
    #[error("the download is larger than {0} bytes")]
    TooLarge(u64),
    #[error("the download did not finish within {0:?}")]
    Timeout(Duration),
    #[error("{0}")]
    Upstream(String),
    /// The origin answered a status other than success (the compat profile
    /// passes it on, as imaginator 2018 did).
    #[error("{1}")]
    Status(u16, String),
    /// The in-flight byte budget is spent: transient, worth a retry.
    #[error("too many downloads and request bodies are in flight")]
    Busy,
}

/// A downloaded source and how long its origin says it stays fresh.
pub struct Fetched {
    pub bytes: Bytes,
    /// Its share of the in-flight byte budget, held while it is in use.
    pub held: Held,
    /// From the origin's `Cache-Control` (`s-maxage`, `max-age`; zero for
    /// `no-store`, `no-cache` or `private`) or `Expires`; `None` when it says
    /// nothing.
    pub max_age: Option<Duration>,
    /// The origin's validators, for revalidating later.
    pub etag: Option<HeaderValue>,
    pub last_modified: Option<HeaderValue>,
}

/// The answer to a request that may be conditional.
enum Answer {
    Full(Fetched),
    /// 304: what the cache holds is still the content; fresh for this long.
    NotModified(Option<Duration>),
}

/// A `download()` source as the source cache or the origin gave it.
pub struct Resolved {
    pub id: ImageId,
    /// `None` when the content is unknown to sniffing (not an image).
    pub format: Option<ImageFormat>,
    /// `None` when the source cache names the content but does not keep
    /// it: `Fetcher::resolve` with `need_bytes` downloads it.
    pub bytes: Option<Bytes>,
    pub held: Option<Held>,
    /// How long a result made from it may be cached by clients.
    pub max_age: Duration,
}

/// How the source cache and freshness are bounded.
#[derive(Clone, Debug)]
pub struct SourceCacheSettings {
    pub entries: usize,
    pub memory: u64,
    /// `cache.download_max_age`: no source is fresh for longer.
    pub max_age: Duration,
}

/// How a `download()` was answered, for `imaginator_source_cache_total`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Lookup {
    /// Fresh in the source cache: no origin request.
    Fresh,
    /// Stale, and the origin answered 304.
    Revalidated,
    /// Downloaded (unknown, stale without validators, changed, or bytes
    /// needed that the cache did not keep).
    Downloaded,
}

impl Lookup {
    pub fn label(self) -> &'static str {
        match self {
            Lookup::Fresh => "fresh",
            Lookup::Revalidated => "revalidated",
            Lookup::Downloaded => "downloaded",
        }
    }
}

pub struct Fetcher {
    shortcuts: BTreeMap<String, String>,
    /// `name:rest` is the base and `rest` concatenated, with no `/` added
    /// (imaginator 2018's rule, the compat profile).
    concatenate: bool,
    origins: Origins,
    settings: DownloadSettings,
    /// One client for every download: its resolver checks every address it
    /// connects to, and it uses no proxy but `fetch.proxy`.
    client: reqwest::Client,
    /// Bytes of downloads and request bodies held at once.
    inflight: Arc<InflightBytes>,
    sources: SourceCache,
    max_age: Duration,
    /// `imaginator_source_cache_total`, by `Lookup`.
    lookups: prometheus::IntCounterVec,
}

impl Fetcher {
    /// `proxy`: `fetch.proxy`, or empty for direct connections. The
    /// environment's `HTTP_PROXY`/`HTTPS_PROXY` are never used: a proxy does
    /// its own DNS, past the address checks.
    pub fn new(
        shortcuts: BTreeMap<String, String>,
        settings: DownloadSettings,
        proxy: &str,
        inflight: Arc<InflightBytes>,
        sources: SourceCacheSettings,
        lookups: prometheus::IntCounterVec,
    ) -> Result<Fetcher, String> {
        let origins = Origins::new(shortcuts.values().chain(settings.allowed_origins.iter()));
        // `localhost` named in an entry is an explicit decision to allow it;
        // IP literals never reach the resolver (`admit` matches them exactly).
        let explicit = origins.host_names().filter(|h| h == "localhost").collect();
        let mut marks = reqwest::header::HeaderMap::new();
        marks.insert(
            reqwest::header::VIA,
            HeaderValue::from_str(&format!("1.1 {}", via_pseudonym())).expect("an ASCII pseudonym"),
        );
        let mut client = reqwest::Client::builder()
            .user_agent(concat!("imaginator/", env!("CARGO_PKG_VERSION")))
            .default_headers(marks)
            .no_proxy()
            .dns_resolver(GuardedResolver::shared(explicit))
            .redirect(reqwest::redirect::Policy::none())
            .connect_timeout(settings.timeout.0);
        if !proxy.is_empty() {
            let proxy = reqwest::Proxy::all(proxy).map_err(|e| format!("fetch.proxy: {e}"))?;
            client = client.proxy(proxy);
        }
        let client = client
            .build()
            .map_err(|e| format!("cannot build the download client: {e}"))?;
        Ok(Fetcher {
            shortcuts,
            concatenate: false,
            origins,
            settings,
            client,
            inflight,
            sources: SourceCache::new(sources.entries, sources.memory),
            max_age: sources.max_age,
            lookups,
        })
    }

    /// imaginator 2018's download rules (the compat profile): shortcuts
    /// concatenate, and any public origin may be fetched, as it was. The
    /// address rules stay: special ranges are refused unless a shortcut's
    /// host names them.
    pub fn compat(mut self) -> Fetcher {
        self.concatenate = true;
        let own = std::mem::take(&mut self.origins).into_listeners();
        self.origins = Origins::public(self.shortcuts.values());
        self.origins.refuse_listeners(own);
        self
    }

    /// Never downloads from `listeners` (the service's own).
    pub fn refuse_listeners(mut self, listeners: impl IntoIterator<Item = std::net::SocketAddr>) -> Fetcher {
        self.origins.refuse_listeners(listeners);
        self
    }

    /// `name:rest` with a configured shortcut becomes `BASE/rest` (in the
    /// compat profile `BASErest`).
    pub fn expand(&self, spec: &str) -> String {
        if let Some((name, rest)) = spec.split_once(':')
            && let Some(base) = self.shortcuts.get(name)
        {
            if self.concatenate {
                return format!("{base}{rest}");
            }
            let base = base.trim_end_matches('/');
            return format!("{base}/{}", rest.trim_start_matches('/'));
        }
        spec.to_string()
    }

    /// Bytes of source images the source cache holds.
    pub fn cached_bytes(&self) -> u64 {
        self.sources.bytes()
    }

    /// The content `spec` names now: from the source cache while the
    /// origin's freshness lasts (no request at all), revalidated when stale
    /// (a 304 costs the origin no body), else downloaded. With `need_bytes`
    /// the answer always carries the bytes (downloading them if the cache
    /// named the content without keeping it).
    pub async fn resolve(&self, spec: &str, need_bytes: bool) -> Result<Resolved, FetchError> {
        let url = self.expand(spec);
        let now = Instant::now();
        let known = self.sources.get(&url);
        if let Some(k) = &known
            && (k.bytes.is_some() || !need_bytes)
        {
            if k.fresh_until > now {
                return Ok(self.cached(Lookup::Fresh, k, k.fresh_until - now));
            }
            if k.revalidatable() {
                match self.request(&url, Some(k)).await? {
                    Answer::NotModified(max_age) => {
                        let fresh = self.fresh_for(max_age);
                        self.sources.refresh(&url, now + fresh);
                        return Ok(self.cached(Lookup::Revalidated, k, fresh));
                    }
                    Answer::Full(fetched) => return Ok(self.remember(url, fetched, now).await),
                }
            }
        }
        match self.request(&url, None).await? {
            Answer::Full(fetched) => Ok(self.remember(url, fetched, now).await),
            Answer::NotModified(_) => Err(FetchError::Upstream(format!(
                "`{url}` answered 304 to an unconditional request"
            ))),
        }
    }

    fn cached(&self, how: Lookup, k: &Known, fresh: Duration) -> Resolved {
        self.lookups.with_label_values(&[how.label()]).inc();
        Resolved {
            id: k.id.clone(),
            format: Some(k.format),
            bytes: k.bytes.clone(),
            held: None,
            max_age: fresh,
        }
    }

    /// The origin's freshness, bounded by `cache.download_max_age` (which
    /// also applies when the origin says nothing).
    fn fresh_for(&self, origin: Option<Duration>) -> Duration {
        origin.map_or(self.max_age, |o| o.min(self.max_age))
    }

    /// Names a downloaded source and remembers it.
    async fn remember(&self, url: String, fetched: Fetched, now: Instant) -> Resolved {
        self.lookups.with_label_values(&[Lookup::Downloaded.label()]).inc();
        let fresh = self.fresh_for(fetched.max_age);
        let id = ImageId::of_shared(&fetched.bytes).await;
        let format = ImageFormat::sniff(&fetched.bytes);
        if let Some(format) = format
            && (!fresh.is_zero() || fetched.etag.is_some() || fetched.last_modified.is_some())
        {
            self.sources.put(
                url,
                Known {
                    id: id.clone(),
                    format,
                    fresh_until: now + fresh,
                    etag: fetched.etag.clone(),
                    last_modified: fetched.last_modified.clone(),
                    // Content the origin says not to reuse is only named
                    // (to revalidate it), never kept.
                    bytes: (!fresh.is_zero()).then(|| fetched.bytes.clone()),
                },
            );
        }
        Resolved {
            id,
            format,
            bytes: Some(fetched.bytes),
            held: Some(fetched.held),
            max_age: fresh,
        }
    }

    /// One request (conditional when `known` is given) within the time budget.
    async fn request(&self, url: &str, known: Option<&Known>) -> Result<Answer, FetchError> {
        let budget = self.settings.timeout.0;
        match tokio::time::timeout(budget, self.fetch_inner(url, known)).await {
            Ok(result) => result,
            Err(_) => Err(FetchError::Timeout(budget)),
        }
    }

    async fn fetch_inner(&self, spec: &str, known: Option<&Known>) -> Result<Answer, FetchError> {
        let mut url =
            reqwest::Url::parse(spec).map_err(|e| FetchError::BadUrl(format!("`{spec}` is not a URL: {e}")))?;
        for _ in 0..=self.settings.max_redirects {
            // The URL rules for every hop; the address rules when connecting.
            self.origins.admit(&url)?;
            let mut request = self.client.get(url.clone());
            if let Some(k) = known {
                if let Some(etag) = &k.etag {
                    request = request.header(reqwest::header::IF_NONE_MATCH, etag.clone());
                }
                if let Some(date) = &k.last_modified {
                    request = request.header(reqwest::header::IF_MODIFIED_SINCE, date.clone());
                }
            }
            let response = request.send().await.map_err(|e| connect_error(&url, e))?;
            if response.status() == reqwest::StatusCode::NOT_MODIFIED && known.is_some() {
                return Ok(Answer::NotModified(freshness(response.headers())));
            }
            if response.status().is_redirection() {
                let location = response
                    .headers()
                    .get(reqwest::header::LOCATION)
                    .and_then(|v| v.to_str().ok())
                    .ok_or_else(|| FetchError::Upstream("a redirect without a Location".into()))?;
                url = url
                    .join(location)
                    .map_err(|e| FetchError::BadUrl(format!("bad redirect `{location}`: {e}")))?;
                continue;
            }
            if !response.status().is_success() {
                return Err(FetchError::Status(
                    response.status().as_u16(),
                    format!("`{url}` answered {}", response.status()),
                ));
            }
            let max_age = freshness(response.headers());
            let etag = response.headers().get(reqwest::header::ETAG).cloned();
            let last_modified = response.headers().get(reqwest::header::LAST_MODIFIED).cloned();
            let cap = self.settings.max_bytes.0;
            if response.content_length().is_some_and(|n| n > cap) {
                return Err(FetchError::TooLarge(cap));
            }
            // Its share of the budget before the first byte of the body.
            let held = self
                .inflight
                .try_hold(response.content_length().unwrap_or(cap))
                .ok_or(FetchError::Busy)?;
            let mut body = BytesMut::new();
            let mut stream = response.bytes_stream();
            while let Some(chunk) = stream.next().await {
                let chunk = chunk.map_err(|e| FetchError::Upstream(format!("reading `{url}` failed: {e}")))?;
                if (body.len() + chunk.len()) as u64 > cap {
                    return Err(FetchError::TooLarge(cap));
                }
                body.extend_from_slice(&chunk);
            }
            return Ok(Answer::Full(Fetched {
                bytes: body.freeze(),
                held,
                max_age,
                etag,
                last_modified,
            }));
        }
        Err(FetchError::Upstream(format!(
            "more than {} redirects",
            self.settings.max_redirects
        )))
    }
}

/// The pseudonym in the `Via` header of every download this process makes
/// (`1.1 imaginator-<random>`). A request that arrives carrying it is one of
/// our own downloads come back: a loop, refused. (Carrying `Via` at all also
/// means it is never taken for a local operator's admin request.)
pub fn via_pseudonym() -> &'static str {
    static PSEUDONYM: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    PSEUDONYM.get_or_init(|| {
        // Not a secret (it only tells this process's requests apart): the
        // standard library's randomly keyed hasher is random enough.
        use std::hash::{BuildHasher, Hasher};
        let mut h = std::collections::hash_map::RandomState::new().build_hasher();
        h.write_u32(std::process::id());
        format!("imaginator-{:016x}", h.finish())
    })
}

/// Whether a request carries this process's `Via` pseudonym.
pub fn is_own_download(headers: &reqwest::header::HeaderMap) -> bool {
    let ours = via_pseudonym();
    headers
        .get_all(reqwest::header::VIA)
        .iter()
        .any(|v| v.to_str().is_ok_and(|v| v.contains(ours)))
}

/// A failed request: refused by the address rules (403), or the origin
/// could not be reached (502).
fn connect_error(url: &reqwest::Url, e: reqwest::Error) -> FetchError {
    let mut source: Option<&(dyn std::error::Error + 'static)> = Some(&e);
    while let Some(err) = source {
        if let Some(refused) = err.downcast_ref::<Refused>() {
            return FetchError::Forbidden(refused.to_string());
        }
        source = err.source();
    }
    FetchError::Upstream(format!("fetching `{url}` failed: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fetcher(shortcuts: &[(&str, &str)]) -> Fetcher {
        let gauge = prometheus::IntGauge::new("t", "t").unwrap();
        Fetcher::new(
            shortcuts.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect(),
            DownloadSettings::default(),
            "",
            InflightBytes::new(1 << 30, gauge),
            SourceCacheSettings {
                entries: 10,
                memory: 1 << 20,
                max_age: Duration::from_secs(60),
            },
            prometheus::IntCounterVec::new(prometheus::Opts::new("l", "l"), &["result"]).unwrap(),
        )
        .unwrap()
    }

    #[test]
    fn shortcuts_expand_to_their_base_url() {
        let f = fetcher(&[("origin", "http://127.0.0.1:8080/img/")]);
        assert_eq!(f.expand("origin:a.jpg"), "http://127.0.0.1:8080/img/a.jpg");
        assert_eq!(f.expand("https://x/a.jpg"), "https://x/a.jpg");
    }

    /// imaginator 2018's README: `domains: {http: "http://"}` and
    /// `download(http:example.com/image.jpg)`.
    #[test]
    fn a_bare_scheme_shortcut_concatenates_into_a_public_url_in_the_compat_profile() {
        let f = fetcher(&[("http", "http://")]).compat();
        let url = f.expand("http:example.com/image.jpg");
        assert_eq!(url, "http://example.com/image.jpg");
        let parsed = reqwest::Url::parse(&url).unwrap();
        assert!(f.origins.admit(&parsed).is_ok(), "a public origin, as any URL");
        let private = reqwest::Url::parse(&f.expand("http:127.0.0.1:9/a.jpg")).unwrap();
        assert!(
            f.origins.admit(&private).is_err(),
            "a bare scheme names no host, so it opens no private one"
        );
    }
}
