//! Which URLs a download may fetch: the one origin policy of both profiles.
//!
//! - Under a domain shortcut's base URL or an allow-list entry, compared as
//!   decoded, whole path segments (an entry `/pub` does not admit
//!   `/pub-private/`), with no credentials, and no path segment that a
//!   server could read as a separator or a step up (`..%2f`, `%5c`,
//!   `%2e%2e`, even double-encoded): such a path would leave the allowed
//!   prefix once the origin decodes it.
//! - The compat profile also admits any public origin, as imaginator 2018
//!   did; a shortcut there admits its base's scheme, host and port (its path
//!   is concatenated, so no boundary), and nothing else on that host: a
//!   shortcut to `http://localhost:8080/` does not open `localhost:9090`.
//! - The service's own listeners are never a target, whatever the
//!   configuration says (a download of `/debug/memory` or `/dump_profile`
//!   from loopback would otherwise be an admin request).

use super::FetchError;
use percent_encoding::percent_decode_str;

/// The allowed URL prefixes.
#[derive(Debug, Default)]
pub struct Origins {
    entries: Vec<reqwest::Url>,
    /// Any URL whose host is not a special address (the compat profile);
    /// `entries` are then whole origins, allowed even on special addresses.
    public: bool,
    /// The service's own listeners: never fetched.
    own: Vec<std::net::SocketAddr>,
}

/// A path's segments, percent-decoded, without the empty one a trailing
/// slash leaves.
fn segments(url: &reqwest::Url) -> Vec<String> {
    let mut out: Vec<String> = url
        .path_segments()
        .into_iter()
        .flatten()
        .map(|s| percent_decode_str(s).decode_utf8_lossy().into_owned())
        .collect();
    if out.last().is_some_and(String::is_empty) {
        out.pop();
    }
    out
}

/// Whether a decoded segment could be a separator or a step up to a server
/// that decodes it (once more).
fn unsafe_segment(segment: &str) -> bool {
    let lower = segment.to_ascii_lowercase();
    segment == "."
        || segment == ".."
        || segment.contains(['/', '\\', '\0'])
        || lower.contains("%2f")
        || lower.contains("%5c")
        || lower.contains("%2e")
        || lower.contains("%00")
}

impl Origins {
    /// From configured prefixes (shortcut bases and `download.allowed_origins`).
    pub fn new<'a>(prefixes: impl IntoIterator<Item = &'a String>) -> Origins {
        Origins {
            entries: prefixes
                .into_iter()
                .filter_map(|p| reqwest::Url::parse(p).ok())
                .collect(),
            public: false,
            own: Vec::new(),
        }
    }

    /// The listeners refused (`refuse_listeners`).
    pub fn into_listeners(self) -> Vec<std::net::SocketAddr> {
        self.own
    }

    /// Never admits a URL that reaches one of `listeners` (the service's own).
    pub fn refuse_listeners(&mut self, listeners: impl IntoIterator<Item = std::net::SocketAddr>) {
        self.own.extend(listeners);
    }

    /// Whether `url` names one of the service's own listeners: its port, and
    /// a host that is the listener's address, a loopback address or name, or
    /// any local address when the listener is bound to all of them.
    fn is_own(&self, url: &reqwest::Url) -> bool {
        let Some(port) = url.port_or_known_default() else {
            return false;
        };
        let host = url.host_str().unwrap_or_default();
        let literal = host
            .trim_start_matches('[')
            .trim_end_matches(']')
            .parse::<std::net::IpAddr>()
            .ok();
        let loopback_name = host.eq_ignore_ascii_case("localhost") || host.to_ascii_lowercase().ends_with(".localhost");
        self.own.iter().filter(|l| l.port() == port).any(|listener| {
            let ip = listener.ip();
            match literal {
                Some(target) => {
                    target == ip
                        || target.is_unspecified()
                        || super::address::is_loopback(target)
                        || (ip.is_unspecified() && super::address::is_special(target))
                }
                None => loopback_name,
            }
        })
    }

    /// Any public origin, plus the hosts of `shortcuts` (whole hosts: a
    /// shortcut's base is concatenated, so its path is no boundary).
    pub fn public<'a>(shortcuts: impl IntoIterator<Item = &'a String>) -> Origins {
        let mut origins = Origins::new(shortcuts);
        for entry in &mut origins.entries {
            entry.set_path("/");
            entry.set_query(None);
        }
        origins.public = true;
        origins
    }

    /// The hosts entries name by name (not as IP literals).
    pub fn host_names(&self) -> impl Iterator<Item = String> + '_ {
        self.entries
            .iter()
            .filter_map(|e| e.host_str())
            .filter(|h| !h.starts_with('[') && h.parse::<std::net::IpAddr>().is_err())
            .map(str::to_string)
    }

    /// Refuses what no rule admits; `Ok` means `url` may be fetched (its
    /// address is still checked when the connection is made).
    pub fn admit(&self, url: &reqwest::Url) -> Result<(), FetchError> {
        if !matches!(url.scheme(), "http" | "https") {
            return Err(FetchError::BadUrl(format!(
                "only http and https URLs can be downloaded, not `{}`",
                url.scheme()
            )));
        }
        if !url.username().is_empty() || url.password().is_some() {
            return Err(FetchError::BadUrl("credentials in a download URL are refused".into()));
        }
        if self.is_own(url) {
            return Err(FetchError::Forbidden(format!(
                "`{url}` is this service's own listener: downloads never reach it"
            )));
        }
        let path = segments(url);
        if let Some(bad) = path.iter().find(|s| unsafe_segment(s)) {
            return Err(FetchError::BadUrl(format!(
                "the path segment `{bad}` could leave the allowed prefix once decoded: encoded separators and dot segments are refused"
            )));
        }
        let allowed = self.entries.iter().any(|entry| {
            entry.scheme() == url.scheme()
                && entry.host_str() == url.host_str()
                && entry.port_or_known_default() == url.port_or_known_default()
                && path.starts_with(&segments(entry))
        });
        if allowed {
            Ok(())
        } else if self
            .entries
            .iter()
            .any(|entry| entry.host_str().is_some_and(|h| url.host_str() == Some(h)))
        {
            // A host the configuration names is allowed on its named scheme
            // and port only: the resolver lets such a host reach special
            // addresses, so any other port would open every local service.
            Err(FetchError::Forbidden(format!(
                "`{url}` is not an allowed origin: a shortcut or allow-list entry admits its own scheme, host and port only"
            )))
        } else if self.public {
            // Host names are checked by the resolver on every connection;
            // IP literals never reach it, so they are checked here.
            let literal = url
                .host_str()
                .map(|h| h.trim_start_matches('[').trim_end_matches(']'))
                .and_then(|h| h.parse::<std::net::IpAddr>().ok());
            match literal {
                Some(ip) if super::address::is_special(ip) => Err(FetchError::Forbidden(format!(
                    "`{url}` is a private or special address; name it in a domain shortcut to allow it"
                ))),
                _ => Ok(()),
            }
        } else {
            Err(FetchError::Forbidden(format!("`{url}` is not an allowed origin")))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn url(s: &str) -> reqwest::Url {
        reqwest::Url::parse(s).unwrap()
    }

    #[test]
    fn prefixes_match_whole_decoded_segments() {
        let entries = [
            "http://127.0.0.1:8080/img/".to_string(),
            "https://cdn.example/pub".to_string(),
        ];
        let o = Origins::new(&entries);
        assert!(o.admit(&url("http://127.0.0.1:8080/img/b/c.jpg")).is_ok());
        assert!(o.admit(&url("https://cdn.example/pub/a.jpg")).is_ok());
        assert!(o.admit(&url("https://cdn.example/pub")).is_ok());
        for refused in [
            "http://127.0.0.1:8080/secret",
            "http://127.0.0.1:9090/img/a.jpg",
            "https://cdn.example/pub-private/a.jpg",
            "http://cdn.example/pub/a.jpg",
        ] {
            assert!(
                matches!(o.admit(&url(refused)), Err(FetchError::Forbidden(_))),
                "{refused}"
            );
        }
    }

    #[test]
    fn the_compat_profile_admits_public_origins_and_shortcut_hosts_only() {
        let shortcuts = ["http://127.0.0.1:8080/img/pho".to_string()];
        let o = Origins::public(&shortcuts);
        // The shortcut's whole host (its base is concatenated, not a path prefix).
        assert!(o.admit(&url("http://127.0.0.1:8080/img/photo.jpg")).is_ok());
        assert!(o.admit(&url("http://127.0.0.1:8080/other.jpg")).is_ok());
        // Public hosts as the original fetched them; names are checked by the resolver.
        assert!(o.admit(&url("https://images.example.org/a.jpg")).is_ok());
        assert!(o.admit(&url("http://93.184.216.34/a.jpg")).is_ok());
        for refused in [
            "http://127.0.0.1:9090/a.jpg",
            "http://10.1.2.3/a.jpg",
            "http://169.254.169.254/latest/meta-data",
            "http://[::1]/a.jpg",
            "http://[fd00::1]/a.jpg",
        ] {
            assert!(
                matches!(o.admit(&url(refused)), Err(FetchError::Forbidden(_))),
                "{refused}"
            );
        }
        assert!(matches!(
            o.admit(&url("file:///etc/passwd")),
            Err(FetchError::BadUrl(_))
        ));
    }

    #[test]
    fn a_shortcut_admits_its_scheme_host_and_port_and_nothing_else_on_that_host() {
        let shortcuts = [
            "http://localhost:18900/".to_string(),
            "https://cdn.example/img/".to_string(),
        ];
        for o in [Origins::public(&shortcuts), Origins::new(&shortcuts)] {
            assert!(o.admit(&url("http://localhost:18900/a.jpg")).is_ok());
            for refused in [
                "http://localhost:9090/debug/memory",
                "http://localhost/dump_profile",
                "https://localhost:18900/a.jpg",
                "http://cdn.example/img/a.jpg",
                "https://cdn.example:8443/img/a.jpg",
            ] {
                assert!(
                    matches!(o.admit(&url(refused)), Err(FetchError::Forbidden(_))),
                    "{refused}"
                );
            }
        }
    }

    #[test]
    fn the_services_own_listeners_are_never_admitted_whatever_the_entries_say() {
        let entries = [
            "http://127.0.0.1:3000/".to_string(),
            "http://localhost:3000/".to_string(),
            "http://10.0.0.5:3000/".to_string(),
        ];
        for mut o in [Origins::public(&entries), Origins::new(&entries)] {
            o.refuse_listeners(["127.0.0.1:3000".parse().unwrap(), "0.0.0.0:9090".parse().unwrap()]);
            for refused in [
                "http://127.0.0.1:3000/debug/memory",
                "http://localhost:3000/dump_profile",
                "http://LOCALHOST:3000/dump_profile",
                "http://127.0.0.2:3000/metrics",
                "http://[::1]:3000/metrics",
                "http://[::ffff:127.0.0.1]:3000/metrics",
                "http://0.0.0.0:3000/metrics",
                "http://10.0.0.5:9090/debug/memory",
                "http://app.localhost:9090/debug/memory",
            ] {
                let answer = o.admit(&url(refused));
                assert!(
                    matches!(&answer, Err(FetchError::Forbidden(m)) if m.contains("own listener")),
                    "{refused}: {:?}",
                    answer.err()
                );
            }
            // Another port of an entry's host is not ours (and not admitted
            // either, by the entry rule); an entry on a port not ours is.
            assert!(o.admit(&url("http://10.0.0.5:3000/a.jpg")).is_ok());
        }
    }

    #[test]
    fn encoded_separators_dot_segments_and_credentials_are_refused() {
        let entries = ["http://origin.example/img/".to_string()];
        let o = Origins::new(&entries);
        for refused in [
            "http://origin.example/img/..%2finternal.png",
            "http://origin.example/img/..%252finternal.png",
            "http://origin.example/img/..%5cinternal.png",
            "http://origin.example/img/%2e%2e%252f%2e%2e/x",
            "http://origin.example/img/a%00.png",
            "http://user:pass@origin.example/img/a.jpg",
            "http://user@origin.example/img/a.jpg",
            "ftp://origin.example/img/a.jpg",
        ] {
            assert!(
                matches!(o.admit(&url(refused)), Err(FetchError::BadUrl(_))),
                "{refused}"
            );
        }
        // Dot segments the URL parser resolves stay within the check.
        assert!(o.admit(&url("http://origin.example/img/../secret.png")).is_err());
        assert!(o.admit(&url("http://origin.example/img/a%20b.png")).is_ok());
    }
}
