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

pub use address::is_special;
use address::{GuardedResolver, Refused};
pub use freshness::freshness;
use origin::Origins;

use crate::config::DownloadSettings;
use crate::inflight::{Held, InflightBytes};
use bytes::{Bytes, BytesMut};
use futures::StreamExt;
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

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
}

pub struct Fetcher {
    shortcuts: BTreeMap<String, String>,
    origins: Origins,
    settings: DownloadSettings,
    /// One client for every download: its resolver checks every address it
    /// connects to, and it uses no proxy but `fetch.proxy`.
    client: reqwest::Client,
    /// Bytes of downloads and request bodies held at once.
    inflight: Arc<InflightBytes>,
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
    ) -> Result<Fetcher, String> {
        let origins = Origins::new(shortcuts.values().chain(settings.allowed_origins.iter()));
        // `localhost` named in an entry is an explicit decision to allow it;
        // IP literals never reach the resolver (`admit` matches them exactly).
        let explicit = origins.host_names().filter(|h| h == "localhost").collect();
        let mut client = reqwest::Client::builder()
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
            origins,
            settings,
            client,
            inflight,
        })
    }

    /// `name:rest` with a configured shortcut becomes `BASE/rest`.
    pub fn expand(&self, spec: &str) -> String {
        if let Some((name, rest)) = spec.split_once(':')
            && let Some(base) = self.shortcuts.get(name)
        {
            let base = base.trim_end_matches('/');
            return format!("{base}/{}", rest.trim_start_matches('/'));
        }
        spec.to_string()
    }

    /// Downloads `spec` (a URL or `shortcut:path`) within the caps.
    pub async fn fetch(&self, spec: &str) -> Result<Fetched, FetchError> {
        let budget = self.settings.timeout.0;
        match tokio::time::timeout(budget, self.fetch_inner(spec)).await {
            Ok(result) => result,
            Err(_) => Err(FetchError::Timeout(budget)),
        }
    }

    async fn fetch_inner(&self, spec: &str) -> Result<Fetched, FetchError> {
        let mut url = reqwest::Url::parse(&self.expand(spec))
            .map_err(|e| FetchError::BadUrl(format!("`{spec}` is not a URL: {e}")))?;
        for _ in 0..=self.settings.max_redirects {
            // The URL rules for every hop; the address rules when connecting.
            self.origins.admit(&url)?;
            let response = self
                .client
                .get(url.clone())
                .send()
                .await
                .map_err(|e| connect_error(&url, e))?;
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
                return Err(FetchError::Upstream(format!("`{url}` answered {}", response.status())));
            }
            let max_age = freshness(response.headers());
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
            return Ok(Fetched {
                bytes: body.freeze(),
                held,
                max_age,
            });
        }
        Err(FetchError::Upstream(format!(
            "more than {} redirects",
            self.settings.max_redirects
        )))
    }
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

    #[test]
    fn shortcuts_expand_to_their_base_url() {
        let mut shortcuts = BTreeMap::new();
        shortcuts.insert("origin".to_string(), "http://127.0.0.1:8080/img/".to_string());
        let gauge = prometheus::IntGauge::new("t", "t").unwrap();
        let f = Fetcher::new(
            shortcuts,
            DownloadSettings::default(),
            "",
            InflightBytes::new(1 << 30, gauge),
        )
        .unwrap();
        assert_eq!(f.expand("origin:a.jpg"), "http://127.0.0.1:8080/img/a.jpg");
        assert_eq!(f.expand("https://x/a.jpg"), "https://x/a.jpg");
    }
}
