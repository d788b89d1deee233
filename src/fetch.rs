//! `download(url)`: fetching remote originals without becoming an SSRF proxy.
//! Only allowed origins are fetched: a domain shortcut's base URL, or a
//! configured allow-list prefix. Addresses in loopback, private, link-local,
//! CGNAT, unique-local and other special ranges are refused unless the
//! shortcut or allow-list entry names them explicitly (an IP literal or
//! `localhost`). The check runs after DNS resolution, the connection goes to
//! the address that was checked (no rebinding), and it runs again for every
//! redirect. Bytes, time and redirects are capped.

use crate::config::DownloadSettings;
use crate::inflight::{Held, InflightBytes};
use bytes::{Bytes, BytesMut};
use futures::StreamExt;
use std::collections::BTreeMap;
use std::net::{IpAddr, SocketAddr};
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

/// How long a response stays fresh by its own headers (see `Fetched::max_age`).
pub fn freshness(headers: &reqwest::header::HeaderMap) -> Option<Duration> {
    let cache_control = headers
        .get_all(reqwest::header::CACHE_CONTROL)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(|d| d.trim().to_ascii_lowercase())
        .collect::<Vec<_>>();
    if cache_control
        .iter()
        .any(|d| matches!(d.as_str(), "no-store" | "no-cache" | "private"))
    {
        return Some(Duration::ZERO);
    }
    let seconds = |name: &str| {
        cache_control.iter().find_map(|d| {
            d.strip_prefix(name)?
                .strip_prefix('=')?
                .trim_matches('"')
                .parse::<u64>()
                .ok()
        })
    };
    if let Some(s) = seconds("s-maxage").or_else(|| seconds("max-age")) {
        return Some(Duration::from_secs(s));
    }
    let date = |name| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| httpdate::parse_http_date(v).ok())
    };
    let expires = headers.get(reqwest::header::EXPIRES)?;
    let Some(expires_at) = date(reqwest::header::EXPIRES) else {
        // An unparsable Expires (often "0" or "-1") means already expired.
        return expires.to_str().ok().map(|_| Duration::ZERO);
    };
    let now = date(reqwest::header::DATE).unwrap_or_else(std::time::SystemTime::now);
    Some(expires_at.duration_since(now).unwrap_or(Duration::ZERO))
}

pub struct Fetcher {
    shortcuts: BTreeMap<String, String>,
    allowed: Vec<String>,
    settings: DownloadSettings,
    /// Bytes of downloads and request bodies held at once.
    inflight: Arc<InflightBytes>,
}

/// Whether an address is one a public image URL has no business resolving to.
pub fn is_special(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => {
            let [a, b, ..] = v4.octets();
            v4.is_loopback()
                || v4.is_private()
                || v4.is_link_local()
                || v4.is_unspecified()
                || v4.is_broadcast()
                || v4.is_multicast()
                || v4.is_documentation()
                || (a == 100 && (64..128).contains(&b)) // CGNAT 100.64.0.0/10
                || a == 0
                || a >= 240
        }
        IpAddr::V6(v6) => {
            if let Some(v4) = v6.to_ipv4_mapped() {
                return is_special(IpAddr::V4(v4));
            }
            let first = v6.segments()[0];
            v6.is_loopback()
                || v6.is_unspecified()
                || v6.is_multicast()
                || (first & 0xfe00) == 0xfc00 // unique local fc00::/7
                || (first & 0xffc0) == 0xfe80 // link local fe80::/10
        }
    }
}

fn host_of(url: &reqwest::Url) -> Result<String, FetchError> {
    url.host_str()
        .map(|h| h.trim_start_matches('[').trim_end_matches(']').to_string())
        .ok_or_else(|| FetchError::BadUrl(format!("`{url}` has no host")))
}

impl Fetcher {
    pub fn new(
        shortcuts: BTreeMap<String, String>,
        settings: DownloadSettings,
        inflight: Arc<InflightBytes>,
    ) -> Fetcher {
        Fetcher {
            allowed: settings.allowed_origins.clone(),
            shortcuts,
            settings,
            inflight,
        }
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

    /// The shortcut base or allow-list entry `url` falls under, if any.
    fn origin_entry(&self, url: &reqwest::Url) -> Option<reqwest::Url> {
        self.shortcuts
            .values()
            .chain(self.allowed.iter())
            .filter_map(|entry| reqwest::Url::parse(entry).ok())
            .find(|entry| {
                entry.scheme() == url.scheme()
                    && entry.host_str() == url.host_str()
                    && entry.port_or_known_default() == url.port_or_known_default()
                    && url.path().starts_with(entry.path())
            })
    }

    /// Checks `url` against the allow rules and resolves it to the address to use.
    async fn admit(&self, url: &reqwest::Url) -> Result<SocketAddr, FetchError> {
        if !matches!(url.scheme(), "http" | "https") {
            return Err(FetchError::BadUrl(format!(
                "only http and https URLs can be downloaded, not `{}`",
                url.scheme()
            )));
        }
        if self.origin_entry(url).is_none() {
            return Err(FetchError::Forbidden(format!("`{url}` is not an allowed origin")));
        }
        let host = host_of(url)?;
        let port = url.port_or_known_default().unwrap_or(80);
        // The matching entry has this very host: an IP literal or `localhost`
        // there is an explicit decision to allow that address.
        let explicit = host == "localhost" || host.parse::<IpAddr>().is_ok();
        let addrs: Vec<SocketAddr> = tokio::net::lookup_host((host.as_str(), port))
            .await
            .map_err(|e| FetchError::Upstream(format!("cannot resolve `{host}`: {e}")))?
            .collect();
        let addr = *addrs
            .first()
            .ok_or_else(|| FetchError::Upstream(format!("`{host}` has no address")))?;
        if !explicit && addrs.iter().any(|a| is_special(a.ip())) {
            return Err(FetchError::Forbidden(format!(
                "`{host}` resolves to a private or special address; name it explicitly in a shortcut or the allow list"
            )));
        }
        Ok(addr)
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
            let addr = self.admit(&url).await?;
            let host = host_of(&url)?;
            // Connect to the address that was checked, whatever DNS says next.
            let client = reqwest::Client::builder()
                .redirect(reqwest::redirect::Policy::none())
                .resolve(&host, addr)
                .build()
                .map_err(|e| FetchError::Upstream(e.to_string()))?;
            let response = client
                .get(url.clone())
                .send()
                .await
                .map_err(|e| FetchError::Upstream(format!("fetching `{url}` failed: {e}")))?;
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn special_ranges_are_recognised() {
        for ip in [
            "127.0.0.1",
            "10.1.2.3",
            "172.16.0.1",
            "192.168.1.1",
            "169.254.169.254",
            "100.64.0.1",
            "0.0.0.0",
            "::1",
            "fc00::1",
            "fd12::1",
            "fe80::1",
            "::ffff:127.0.0.1",
            "::ffff:10.0.0.1",
        ] {
            assert!(is_special(ip.parse().unwrap()), "{ip}");
        }
        for ip in ["93.184.216.34", "1.1.1.1", "2606:4700::1111", "100.128.0.1"] {
            assert!(!is_special(ip.parse().unwrap()), "{ip}");
        }
    }

    #[test]
    fn freshness_follows_the_origins_caching_headers() {
        use reqwest::header::{CACHE_CONTROL, DATE, EXPIRES, HeaderMap, HeaderValue};
        let headers = |pairs: &[(reqwest::header::HeaderName, &'static str)]| {
            let mut h = HeaderMap::new();
            for (k, v) in pairs {
                h.append(k.clone(), HeaderValue::from_static(v));
            }
            h
        };
        let secs = |s| Some(Duration::from_secs(s));
        assert_eq!(freshness(&headers(&[])), None);
        assert_eq!(
            freshness(&headers(&[(CACHE_CONTROL, "public, max-age=600")])),
            secs(600)
        );
        assert_eq!(
            freshness(&headers(&[(CACHE_CONTROL, "max-age=600, s-maxage=60")])),
            secs(60)
        );
        assert_eq!(freshness(&headers(&[(CACHE_CONTROL, "no-cache")])), secs(0));
        assert_eq!(freshness(&headers(&[(CACHE_CONTROL, "private, max-age=600")])), secs(0));
        assert_eq!(
            freshness(&headers(&[
                (DATE, "Tue, 01 Dec 2026 10:00:00 GMT"),
                (EXPIRES, "Tue, 01 Dec 2026 11:00:00 GMT")
            ])),
            secs(3600)
        );
        assert_eq!(freshness(&headers(&[(EXPIRES, "0")])), secs(0));
    }

    #[test]
    fn shortcuts_expand_and_origins_match_by_prefix() {
        let mut shortcuts = BTreeMap::new();
        shortcuts.insert("origin".to_string(), "http://127.0.0.1:8080/img/".to_string());
        let gauge = prometheus::IntGauge::new("t", "t").unwrap();
        let f = Fetcher::new(
            shortcuts,
            DownloadSettings::default(),
            InflightBytes::new(1 << 30, gauge),
        );
        assert_eq!(f.expand("origin:a.jpg"), "http://127.0.0.1:8080/img/a.jpg");
        assert_eq!(f.expand("https://x/a.jpg"), "https://x/a.jpg");
        let inside = reqwest::Url::parse("http://127.0.0.1:8080/img/b/c.jpg").unwrap();
        let outside = reqwest::Url::parse("http://127.0.0.1:8080/secret").unwrap();
        let other_port = reqwest::Url::parse("http://127.0.0.1:9090/img/a.jpg").unwrap();
        assert!(f.origin_entry(&inside).is_some());
        assert!(f.origin_entry(&outside).is_none());
        assert!(f.origin_entry(&other_port).is_none());
    }
}
