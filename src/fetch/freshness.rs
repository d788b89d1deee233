//! How long an origin's response stays fresh, by its own caching headers.

use std::time::Duration;

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

#[cfg(test)]
mod tests {
    use super::*;

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
}
