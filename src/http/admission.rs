//! Requests that carry a body are admitted when they arrive, before a byte of
//! the body is read, and hold nothing scarce while the body trickles in:
//!
//! - A declared length over `max_body` is a 413. When the worker pool has no
//!   free place, or the in-flight byte budget could not take the declared
//!   length (`max_body` when none is declared), the answer is a 503 at once.
//!   Both refusals close the connection (the server drains what the client
//!   still sends, so the client reads the answer instead of a reset).
//! - The body's share of the in-flight byte budget is reserved from the
//!   headers, so an admitted body can always arrive whole; its place in the
//!   pool is only checked then, and reserved when the body is complete (by
//!   the job's submission): a body that is not arriving never keeps a GET
//!   miss from a worker.
//! - The body must keep pace: after `BODY_GRACE` it must have arrived at
//!   `http.body_min_rate` on average, and all of it within
//!   `http.body_timeout`, or the answer is 408. The deadline of the next
//!   byte grows with what was sent and is checked without waiting for that
//!   byte, so a client that declares 1 KiB and sends 2 bytes is cut off
//!   after about `BODY_GRACE`, not after the whole `body_timeout`.

use crate::error::ApiError;
use crate::inflight::Held;
use crate::service::AppState;
use axum::body::Body;
use axum::http::{HeaderMap, StatusCode, header};
use bytes::{Bytes, BytesMut};
use http_body_util::BodyExt;
use std::time::Duration;
use tokio::time::Instant;

/// A body has this long before its average rate is held to
/// `http.body_min_rate` (connection set-up, TCP slow start, a client that
/// waits for `100 Continue`).
pub const BODY_GRACE: Duration = Duration::from_secs(3);

/// An admitted request with a body: what it may send, and its share of the
/// in-flight byte budget, returned when this is dropped (after the answer
/// is ready).
pub struct Admitted {
    /// Most bytes its body may have.
    pub limit: u64,
    _held: Held,
    pace: Pace,
}

/// How fast a body must arrive.
#[derive(Clone, Copy, Debug)]
pub struct Pace {
    /// All of it within this.
    pub max: Duration,
    /// After `BODY_GRACE`, at least this many bytes a second on average.
    pub min_rate: u64,
}

impl Pace {
    /// The latest moment by which `received + 1` bytes must have arrived,
    /// counted from the start of the body.
    fn next_byte_due(&self, received: u64) -> Duration {
        let rate = self.min_rate.max(1) as f64;
        let by_rate = BODY_GRACE.as_secs_f64() + (received + 1) as f64 / rate;
        Duration::from_secs_f64(by_rate).min(self.max)
    }
}

pub fn body_too_large(limit: u64) -> ApiError {
    ApiError::new(
        StatusCode::PAYLOAD_TOO_LARGE,
        "body_too_large",
        format!("the request body is larger than {limit} bytes"),
    )
}

fn overloaded(retry: u32, message: &str) -> ApiError {
    ApiError {
        retry_after: Some(retry),
        ..ApiError::new(StatusCode::SERVICE_UNAVAILABLE, "overloaded", message.to_string())
    }
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
    if !state.pool.has_room() {
        state.metrics.jobs.with_label_values(&["rejected"]).inc();
        return Err(ApiError::overloaded(retry).closing());
    }
    let limit = declared.unwrap_or(max);
    let held = state.inflight.try_hold(limit).ok_or_else(|| {
        overloaded(
            retry,
            "too many request bodies are in flight; retry after the indicated delay",
        )
        .closing()
    })?;
    let http = &state.settings.http;
    Ok(Admitted {
        limit,
        _held: held,
        pace: Pace {
            max: http.body_timeout.0,
            min_rate: http.body_min_rate.0,
        },
    })
}

impl Admitted {
    /// Reads the body; refuses it as soon as it passes `limit` bytes or falls
    /// behind the pace.
    pub async fn read(&mut self, body: Body) -> Result<Bytes, ApiError> {
        let started = Instant::now();
        let mut body = body;
        let mut bytes = BytesMut::new();
        loop {
            let due = started + self.pace.next_byte_due(bytes.len() as u64);
            let frame = tokio::select! {
                frame = body.frame() => frame,
                _ = tokio::time::sleep_until(due) => return Err(self.too_slow(bytes.len(), started.elapsed())),
            };
            let Some(frame) = frame else { break };
            let frame = frame.map_err(|_| {
                ApiError::new(
                    StatusCode::BAD_REQUEST,
                    "body_read_failed",
                    "the request body could not be read",
                )
                .closing()
            })?;
            let Ok(chunk) = frame.into_data() else { continue };
            if (bytes.len() + chunk.len()) as u64 > self.limit {
                return Err(body_too_large(self.limit).closing());
            }
            bytes.extend_from_slice(&chunk);
        }
        if bytes.is_empty() {
            return Err(ApiError::new(
                StatusCode::BAD_REQUEST,
                "empty_body",
                "the request body is empty",
            ));
        }
        Ok(bytes.freeze())
    }

    fn too_slow(&self, received: usize, elapsed: Duration) -> ApiError {
        let message = if elapsed >= self.pace.max {
            format!("the request body did not arrive within {:?}", self.pace.max)
        } else {
            format!(
                "the request body is arriving too slowly: {received} bytes in {:.1} s (at least {} bytes a second after the first {} s)",
                elapsed.as_secs_f64(),
                self.pace.min_rate,
                BODY_GRACE.as_secs()
            )
        };
        ApiError::new(StatusCode::REQUEST_TIMEOUT, "body_timeout", message).closing()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_next_byte_is_due_by_the_minimum_rate_after_the_grace_and_never_after_the_timeout() {
        let pace = Pace {
            max: Duration::from_secs(30),
            min_rate: 1000,
        };
        assert_eq!(pace.next_byte_due(0), Duration::from_secs_f64(3.001));
        assert_eq!(pace.next_byte_due(1999), Duration::from_secs(5));
        assert_eq!(pace.next_byte_due(10_000_000), Duration::from_secs(30));
    }
}
