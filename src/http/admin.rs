//! Admin-only routes, and `Admin`: the proof, in a handler's arguments,
//! that the service's policy (`service::policy`) admitted the caller as an
//! operator. With `admin_listen`, admin routes are on their own listener,
//! which the same rules guard.

use crate::error::ApiError;
use crate::service::AppState;
use crate::service::policy::Caller;
use axum::extract::{ConnectInfo, FromRequestParts};
use axum::http::StatusCode;
use axum::http::request::Parts;
use std::net::SocketAddr;

/// Proof that the caller may use admin endpoints.
pub struct Admin;

impl FromRequestParts<AppState> for Admin {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Admin, ApiError> {
        let peer = parts.extensions.get::<ConnectInfo<SocketAddr>>().map(|c| c.0.ip());
        state.policy.admin(Caller {
            headers: &parts.headers,
            peer,
        })?;
        Ok(Admin)
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
