//! The one access policy of every route, in both profiles. The router gives
//! each route an `Access` class; `Policy::check` decides from the request's
//! headers, peer and URL before the handler runs and before a byte of a body
//! is read. No route carries rules of its own.
//!
//! - `Admin`: `Authorization: Bearer <admin_token>` (constant-time), or a
//!   loopback peer whose request no proxy forwarded (`Forwarded`,
//!   `X-Forwarded-For`, `X-Real-IP`, `Via`, `X-Envoy-*`): a local reverse
//!   proxy or a mesh sidecar connects from loopback on behalf of anyone, and
//!   the service's own downloads carry `Via` too.
//! - `Metrics`: on a dedicated admin listener, whoever reaches it (the
//!   network policy decides, and Prometheus scrapes from another pod); on a
//!   shared listener, as `Admin`.
//! - `Read` (stored originals, their info and renditions): when every route
//!   is signed, a `signature` query parameter over the path and the rest of
//!   the query, or the admin token; otherwise open.
//! - `Chain`: chain URLs carry their signature in the path, in the scheme of
//!   their front end; whether one is required is decided here
//!   (`chains_signed`), and the native scheme is checked here too.
//! - `Upload` (every route whose body is an image): `uploads` decides:
//!   `open`, `token` (`upload_token` or the admin token) or `signed` (a
//!   `signature` query parameter, or the admin token).
//! - `Authoring` (`/aliases`, the playground): open, or admin only when
//!   every route is signed (a page cannot sign its own requests).
//! - `Open`: health, readiness, version, the pages' static assets.
//!
//! A verified `signature` parameter is removed from the URL the handler
//! sees, so handlers bind only their own parameters.

use crate::config::{Settings, UploadPolicy};
use crate::error::ApiError;
use axum::http::{HeaderMap, StatusCode, Uri, header};
use std::net::IpAddr;
use subtle::ConstantTimeEq;

/// How a route is guarded (see the module comment).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Access {
    Open,
    Admin,
    Metrics,
    Read,
    Chain,
    Upload,
    Authoring,
}

/// Who is asking: the request's headers and the connection's peer.
#[derive(Clone, Copy)]
pub struct Caller<'a> {
    pub headers: &'a HeaderMap,
    pub peer: Option<IpAddr>,
}

pub struct Policy {
    admin_token: String,
    upload_token: String,
    /// Secrets of query signatures and native chain signatures (`secrets`,
    /// and the compat profile's `secret`).
    secrets: Vec<String>,
    /// `legacy_sha1_signatures`: the original's 28-character signatures on
    /// native chain URLs.
    legacy: bool,
    /// Every image route signed (`sign_all_routes`, `require_signature`).
    every_route: bool,
    /// Chain URLs must be signed.
    chains_signed: bool,
    uploads: UploadPolicy,
}

impl std::fmt::Debug for Policy {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.describe())
    }
}

/// Whether a proxy forwarded the request (it then speaks for someone else).
pub fn forwarded(headers: &HeaderMap) -> bool {
    headers.keys().any(|name| {
        let name = name.as_str();
        matches!(name, "forwarded" | "x-forwarded-for" | "x-real-ip" | "via") || name.starts_with("x-envoy-")
    })
}

/// Whether the request carries `Authorization: Bearer <token>` (never when
/// `token` is empty).
pub fn has_bearer(headers: &HeaderMap, token: &str) -> bool {
    !token.is_empty()
        && headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "))
            .is_some_and(|given| bool::from(given.trim().as_bytes().ct_eq(token.as_bytes())))
}

fn forbidden(code: &'static str, message: &str) -> ApiError {
    ApiError::new(StatusCode::FORBIDDEN, code, message.to_string())
}

fn invalid_signature() -> ApiError {
    forbidden("invalid_signature", "missing or wrong URL signature")
}

impl Policy {
    pub fn new(settings: &Settings) -> Policy {
        let mut secrets = settings.secrets.clone();
        let original = settings.original_signing.as_ref();
        if let Some(secret) = original.and_then(|o| o.secret.clone()) {
            secrets.push(secret);
        }
        Policy {
            admin_token: settings.admin_token.clone(),
            upload_token: settings.upload_token.clone(),
            secrets,
            legacy: settings.legacy_sha1_signatures,
            every_route: settings.signs_every_route(),
            chains_signed: match original {
                Some(o) => o.required && o.secret.is_some(),
                None => !settings.secrets.is_empty(),
            },
            uploads: settings.upload_policy(),
        }
    }

    /// One line for the start-up log.
    pub fn describe(&self) -> String {
        format!(
            "uploads = {}{}; {}; admin: {}",
            self.uploads,
            match self.uploads {
                UploadPolicy::Token if self.upload_token.is_empty() && self.admin_token.is_empty() =>
                    " (no upload_token or admin_token is set: every upload is refused)",
                _ => "",
            },
            if self.every_route {
                "every image route is signed"
            } else if self.chains_signed {
                "chain URLs are signed"
            } else {
                "no route is signed"
            },
            if self.admin_token.is_empty() {
                "loopback callers no proxy forwarded"
            } else {
                "the admin token, or loopback callers no proxy forwarded"
            }
        )
    }

    pub fn uploads(&self) -> UploadPolicy {
        self.uploads
    }

    /// Whether chain URLs must carry a signature.
    pub fn chains_signed(&self) -> bool {
        self.chains_signed
    }

    /// Whether `caller` may use admin routes.
    pub fn is_admin(&self, caller: Caller<'_>) -> bool {
        has_bearer(caller.headers, &self.admin_token)
            || (caller.peer.is_some_and(crate::fetch::is_loopback) && !forwarded(caller.headers))
    }

    pub fn admin(&self, caller: Caller<'_>) -> Result<(), ApiError> {
        if self.is_admin(caller) {
            return Ok(());
        }
        Err(forbidden(
            "forbidden",
            "admin endpoints answer the admin bearer token, or loopback callers whose request no proxy forwarded",
        ))
    }

    /// Decides a request of class `access`. `admin_listener`: it arrived on
    /// the dedicated admin listener. Returns the URL the handler should see
    /// when a verified `signature` parameter was removed from it.
    pub fn check(
        &self,
        access: Access,
        admin_listener: bool,
        caller: Caller<'_>,
        uri: &Uri,
    ) -> Result<Option<Uri>, ApiError> {
        match access {
            Access::Open | Access::Chain => Ok(None),
            Access::Admin => self.admin(caller).map(|()| None),
            Access::Metrics if admin_listener => Ok(None),
            Access::Metrics => self.admin(caller).map(|()| None),
            Access::Authoring if !self.every_route || self.is_admin(caller) => Ok(None),
            Access::Authoring => Err(forbidden(
                "forbidden",
                "every route of this service is signed: the alias list and the playground are for operators",
            )),
            Access::Read if !self.every_route => Ok(None),
            Access::Read => self.signed(caller, uri),
            Access::Upload => match self.uploads {
                UploadPolicy::Open => Ok(None),
                UploadPolicy::Token => {
                    if has_bearer(caller.headers, &self.upload_token) || has_bearer(caller.headers, &self.admin_token) {
                        Ok(None)
                    } else {
                        let mut e = ApiError::new(
                            StatusCode::UNAUTHORIZED,
                            "upload_token_required",
                            "sending images needs `Authorization: Bearer <upload token>` (uploads = \"token\")",
                        );
                        e.bearer_challenge = true;
                        Err(e)
                    }
                }
                UploadPolicy::Signed => self.signed(caller, uri),
            },
        }
    }

    /// A `signature` query parameter over the path and the rest of the
    /// query, or the admin token (which stands in for any signature).
    fn signed(&self, caller: Caller<'_>, uri: &Uri) -> Result<Option<Uri>, ApiError> {
        let query = uri.query().unwrap_or_default();
        let path = uri.path().trim_start_matches('/');
        let verified = match crate::signature::query_signed(&self.secrets, path, query) {
            Some(true) => true,
            _ if has_bearer(caller.headers, &self.admin_token) => query.contains("signature="),
            _ => return Err(invalid_signature()),
        };
        if !verified {
            return Ok(None);
        }
        let rest = crate::signature::without_signature(query);
        let rebuilt = if rest.is_empty() {
            uri.path().to_string()
        } else {
            format!("{}?{rest}", uri.path())
        };
        Ok(Some(rebuilt.parse().map_err(|_| invalid_signature())?))
    }

    /// A native chain URL (`{signature}/{chain}` when chains are signed):
    /// the chain, or 403. `query` is the request's query (the original's
    /// 28-character scheme signs it too).
    pub fn native_chain<'a>(&self, raw: &'a str, query: Option<&str>) -> Result<&'a str, ApiError> {
        if !self.chains_signed {
            return Ok(raw);
        }
        let legacy = self.legacy;
        crate::signature::split_signed(raw, legacy)
            .into_iter()
            .find(|(signature, rest)| {
                crate::signature::verify(&self.secrets, legacy, signature, rest)
                    || legacy && {
                        // The original's own scheme: the decoded rest, plus `?query`.
                        let decoded = percent_encoding::percent_decode_str(rest).decode_utf8_lossy();
                        let message = match query {
                            Some(q) => format!("{decoded}?{q}"),
                            None => decoded.into_owned(),
                        };
                        crate::signature::verify(&self.secrets, true, signature, &message)
                    }
            })
            .map(|(_, rest)| rest)
            .ok_or_else(invalid_signature)
    }

    /// The first secret, which `POST /admin/sign` signs with.
    pub fn signing_secret(&self) -> Option<&str> {
        self.secrets.first().map(String::as_str)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    const SECRET: &str = "0123456789abcdef-secret";

    fn policy(configure: impl FnOnce(&mut Settings)) -> Policy {
        let mut settings = Settings::default();
        configure(&mut settings);
        Policy::new(&settings)
    }

    fn headers(pairs: &[(&str, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.insert(
                axum::http::HeaderName::from_bytes(k.as_bytes()).unwrap(),
                HeaderValue::from_str(v).unwrap(),
            );
        }
        h
    }

    fn remote(headers: &HeaderMap) -> Caller<'_> {
        Caller {
            headers,
            peer: Some("203.0.113.9".parse().unwrap()),
        }
    }

    #[test]
    fn uploads_default_to_open_on_loopback_and_token_elsewhere_and_signed_when_every_route_is() {
        assert_eq!(policy(|_| {}).uploads(), UploadPolicy::Open);
        assert_eq!(
            policy(|s| s.listen = "0.0.0.0:3000".parse().unwrap()).uploads(),
            UploadPolicy::Token
        );
        assert_eq!(
            policy(|s| {
                s.secrets = vec![SECRET.into()];
                s.sign_all_routes = true;
            })
            .uploads(),
            UploadPolicy::Signed
        );
        assert_eq!(
            policy(|s| {
                s.listen = "0.0.0.0:3000".parse().unwrap();
                s.uploads = Some(UploadPolicy::Open);
            })
            .uploads(),
            UploadPolicy::Open
        );
    }

    #[test]
    fn token_uploads_take_the_upload_token_or_the_admin_token_only() {
        let p = policy(|s| {
            s.uploads = Some(UploadPolicy::Token);
            s.upload_token = "up-token".into();
            s.admin_token = "admin-token".into();
        });
        let uri: Uri = "/images".parse().unwrap();
        for (given, ok) in [
            ("Bearer up-token", true),
            ("Bearer admin-token", true),
            ("Bearer nope", false),
            ("up-token", false),
        ] {
            let h = headers(&[("authorization", given)]);
            assert_eq!(p.check(Access::Upload, false, remote(&h), &uri).is_ok(), ok, "{given}");
        }
        let none = HeaderMap::new();
        let refused = p.check(Access::Upload, false, remote(&none), &uri).unwrap_err();
        assert_eq!(refused.status, StatusCode::UNAUTHORIZED);
    }

    #[test]
    fn when_every_route_is_signed_reads_and_uploads_need_a_signature_and_lose_it_on_the_way_in() {
        let p = policy(|s| {
            s.secrets = vec![SECRET.into()];
            s.sign_all_routes = true;
        });
        let none = HeaderMap::new();
        for path in [
            "/images/abc/thumbnail?width=200",
            "/transform/thumbnail?width=200",
            "/info",
        ] {
            let uri: Uri = path.parse().unwrap();
            let access = if path.starts_with("/images") {
                Access::Read
            } else {
                Access::Upload
            };
            assert!(p.check(access, false, remote(&none), &uri).is_err(), "unsigned {path}");
            let message = path.trim_start_matches('/');
            let sig = crate::signature::sign(SECRET, message);
            let separator = if path.contains('?') { '&' } else { '?' };
            let signed: Uri = format!("{path}{separator}signature={sig}").parse().unwrap();
            let seen = p.check(access, false, remote(&none), &signed).unwrap().unwrap();
            assert_eq!(seen.to_string(), path, "the handler sees the URL without its signature");
        }
        let uri: Uri = "/aliases".parse().unwrap();
        assert!(p.check(Access::Authoring, false, remote(&none), &uri).is_err());
        let admin = headers(&[]);
        let local = Caller {
            headers: &admin,
            peer: Some("127.0.0.1".parse().unwrap()),
        };
        assert!(p.check(Access::Authoring, false, local, &uri).is_ok());
    }

    #[test]
    fn metrics_are_open_on_the_admin_listener_and_admin_only_on_a_shared_one() {
        let p = policy(|_| {});
        let none = HeaderMap::new();
        let uri: Uri = "/metrics".parse().unwrap();
        assert!(p.check(Access::Metrics, true, remote(&none), &uri).is_ok());
        assert!(p.check(Access::Metrics, false, remote(&none), &uri).is_err());
        let proxied = headers(&[("x-forwarded-for", "198.51.100.7")]);
        let via_proxy = Caller {
            headers: &proxied,
            peer: Some("127.0.0.1".parse().unwrap()),
        };
        assert!(p.check(Access::Metrics, false, via_proxy, &uri).is_err());
    }
}
