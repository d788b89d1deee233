//! Requests that carry a body are admitted when they arrive, before a byte of
//! the body is read: a declared length over `max_body` is a 413, and the
//! request must get a place in the worker pool and its share of the
//! in-flight byte budget (its declared length, or `max_body` when it declares
//! none), or it is answered 503 at once. Both refusals close the connection
//! (the server drains what the client still sends, so the client reads the
//! answer instead of a reset). The body is then read within `http.body_timeout`.

use super::AppState;
use crate::error::ApiError;
use crate::inflight::Held;
use crate::magick::Slot;
use axum::body::Body;
use axum::http::{HeaderMap, StatusCode, header};
use bytes::Bytes;
use http_body_util::{BodyExt, LengthLimitError, Limited};
use std::time::Duration;

/// What an admitted request holds until its answer is ready.
pub struct Admitted {
    /// Its place in the worker pool, spent by its job.
    pub slot: Slot,
    /// Its share of the in-flight byte budget.
    _held: Held,
    /// Most bytes its body may have.
    pub limit: u64,
}

pub fn body_too_large(limit: u64) -> ApiError {
    ApiError::new(
        StatusCode::PAYLOAD_TOO_LARGE,
        "body_too_large",
        format!("the request body is larger than {limit} bytes"),
    )
}

/// Admits a request from its headers alone (see the module comment).
pub fn admit(state: &AppState, headers: &HeaderMap) -> Result<Admitted, ApiError> {
    let max = state.settings.max_body.0;
    let declared = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok());
    if let Some(n) = declared
        && n > max
    {
        return Err(body_too_large(max).closing());
    }
    let retry = state.settings.retry_after_secs;
    let slot = state
        .pool
        .reserve()
        .map_err(|e| ApiError::from_submit(e, retry).closing())?;
    let limit = declared.unwrap_or(max);
    let held = state.inflight.try_hold(limit).ok_or_else(|| {
        ApiError {
            retry_after: Some(retry),
            ..ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "overloaded",
                "too many request bodies are in flight; retry after the indicated delay",
            )
        }
        .closing()
    })?;
    Ok(Admitted {
        slot,
        _held: held,
        limit,
    })
}

/// Reads a request body, refusing it as soon as it passes `limit` bytes or
/// takes longer than `timeout` to arrive.
pub async fn read_body(body: Body, limit: u64, timeout: Duration) -> Result<Bytes, ApiError> {
    let limit = usize::try_from(limit).unwrap_or(usize::MAX);
    let collected = tokio::time::timeout(timeout, Limited::new(body, limit).collect())
        .await
        .map_err(|_| {
            ApiError::new(
                StatusCode::REQUEST_TIMEOUT,
                "body_timeout",
                format!("the request body did not arrive within {timeout:?}"),
            )
            .closing()
        })?;
    match collected {
        Ok(collected) => {
            let bytes = collected.to_bytes();
            if bytes.is_empty() {
                return Err(ApiError::new(
                    StatusCode::BAD_REQUEST,
                    "empty_body",
                    "the request body is empty",
                ));
            }
            Ok(bytes)
        }
        Err(e) if e.downcast_ref::<LengthLimitError>().is_some() => Err(body_too_large(limit as u64).closing()),
        Err(_) => Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            "body_read_failed",
            "the request body could not be read",
        )
        .closing()),
    }
}
