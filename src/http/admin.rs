//! Admin-only access: a loopback peer, or `Authorization: Bearer <admin_token>`
//! compared in constant time. Anything else gets 403. The token is never logged.

use super::AppState;
use crate::error::ApiError;
use axum::extract::{ConnectInfo, FromRequestParts};
use axum::http::request::Parts;
use axum::http::{StatusCode, header};
use std::net::{IpAddr, SocketAddr};
use subtle::ConstantTimeEq;

/// Proof that the caller may use admin endpoints.
pub struct Admin;

pub fn is_loopback(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => v4.is_loopback(),
        IpAddr::V6(v6) => v6.is_loopback() || v6.to_ipv4_mapped().is_some_and(|v4| v4.is_loopback()),
    }
}

impl FromRequestParts<AppState> for Admin {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Admin, ApiError> {
        let token = &state.settings.admin_token;
        if !token.is_empty()
            && let Some(given) = parts
                .headers
                .get(header::AUTHORIZATION)
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.strip_prefix("Bearer "))
            && bool::from(given.trim().as_bytes().ct_eq(token.as_bytes()))
        {
            return Ok(Admin);
        }
        let peer = parts.extensions.get::<ConnectInfo<SocketAddr>>().map(|c| c.0.ip());
        if peer.is_some_and(is_loopback) {
            return Ok(Admin);
        }
        Err(ApiError::new(
            StatusCode::FORBIDDEN,
            "forbidden",
            "admin endpoints answer loopback callers or the admin bearer token only",
        ))
    }
}
