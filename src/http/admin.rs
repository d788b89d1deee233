//! Admin-only access: `Authorization: Bearer <admin_token>` (compared in
//! constant time), or a loopback peer whose request carries no proxy
//! header. A local reverse proxy or a service-mesh sidecar connects from
//! loopback on behalf of anyone (Envoy/Istio inbound from 127.0.0.6), and
//! marks what it forwards (`Forwarded`, `X-Forwarded-For`, `X-Real-IP`,
//! `Via`, `X-Envoy-*`): such a request needs the token. Anything else gets
//! 403. The token is never logged. With `admin_listen`, admin routes are on
//! their own listener, which the same rules guard.

use super::AppState;
use crate::error::ApiError;
use axum::extract::{ConnectInfo, FromRequestParts};
use axum::http::request::Parts;
use axum::http::{HeaderMap, StatusCode, header};
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

/// Whether a proxy forwarded the request (it then speaks for someone else).
pub fn forwarded(headers: &HeaderMap) -> bool {
    headers.keys().any(|name| {
        let name = name.as_str();
        matches!(name, "forwarded" | "x-forwarded-for" | "x-real-ip" | "via") || name.starts_with("x-envoy-")
    })
}

/// Whether the request carries the admin bearer token (never when none is set).
pub fn has_token(headers: &HeaderMap, token: &str) -> bool {
    !token.is_empty()
        && headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "))
            .is_some_and(|given| bool::from(given.trim().as_bytes().ct_eq(token.as_bytes())))
}

impl FromRequestParts<AppState> for Admin {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Admin, ApiError> {
        if has_token(&parts.headers, &state.settings.admin_token) {
            return Ok(Admin);
        }
        let peer = parts.extensions.get::<ConnectInfo<SocketAddr>>().map(|c| c.0.ip());
        if peer.is_some_and(is_loopback) && !forwarded(&parts.headers) {
            return Ok(Admin);
        }
        Err(ApiError::new(
            StatusCode::FORBIDDEN,
            "forbidden",
            "admin endpoints answer the admin bearer token, or loopback callers whose request no proxy forwarded",
        ))
    }
}

/// `GET /admin/quarantine`: every input with a crash strike, and whether it
/// is refused.
pub async fn quarantine_list(
    _: Admin,
    axum::extract::State(state): axum::extract::State<AppState>,
) -> Result<axum::Json<serde_json::Value>, ApiError> {
    let suspects = state.quarantine.list().await.map_err(quarantine_store_error)?;
    Ok(axum::Json(serde_json::json!({
        "after_crashes": state.settings.quarantine.after_crashes,
        "inputs": suspects,
    })))
}

/// `DELETE /admin/quarantine/{id}`: forgets an input's strikes (every
/// replica follows at its next refresh).
pub async fn quarantine_release(
    _: Admin,
    axum::extract::State(state): axum::extract::State<AppState>,
    axum::extract::Path(id): axum::extract::Path<String>,
) -> Result<axum::Json<serde_json::Value>, ApiError> {
    let id =
        crate::storage::ImageId::parse(&id).ok_or_else(|| ApiError::not_found(format!("{id} is not an image id")))?;
    let released = state
        .quarantine
        .release(id.as_str())
        .await
        .map_err(quarantine_store_error)?;
    tracing::warn!(id = %id, strikes = released, "quarantine released by an operator");
    Ok(axum::Json(
        serde_json::json!({ "id": id.as_str(), "strikes_removed": released }),
    ))
}

fn quarantine_store_error(e: object_store::Error) -> ApiError {
    tracing::error!(error = %e, "quarantine store failed");
    let mut error = ApiError::new(
        StatusCode::SERVICE_UNAVAILABLE,
        "storage_unavailable",
        "the quarantine list is in storage that is unreachable; retry shortly",
    );
    error.retry_after = Some(1);
    error
}
