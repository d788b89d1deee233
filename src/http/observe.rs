//! One log line and one metric sample per request, labelled by matched route.

use crate::service::AppState;
use axum::extract::{MatchedPath, Request, State};
use axum::middleware::Next;
use axum::response::Response;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;
use tracing::Instrument;

static REQUEST_IDS: AtomicU64 = AtomicU64::new(1);

pub async fn observe(State(state): State<AppState>, request: Request, next: Next) -> Response {
    let started = Instant::now();
    let method = request.method().clone();
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map_or("unmatched", |m| m.as_str())
        .to_string();
    let id = REQUEST_IDS.fetch_add(1, Ordering::Relaxed);
    let span = tracing::info_span!("request", id, method = %method, route = %route);
    let declares_body = declares_body(request.headers());
    let (mut response, job) = crate::service::timing::scope(next.run(request).instrument(span.clone())).await;
    // An error may come before the body was read (a route that does not
    // exist here, an id refused from the path): the connection cannot carry
    // another request after unread bytes, so say so rather than let the
    // client reuse it and meet a closed socket.
    if declares_body && (response.status().is_client_error() || response.status().is_server_error()) {
        response.headers_mut().insert(
            axum::http::header::CONNECTION,
            axum::http::HeaderValue::from_static("close"),
        );
    }
    // No browser may guess a type other than the one declared: an image
    // response stays an image whatever bytes it holds.
    response.headers_mut().insert(
        axum::http::header::X_CONTENT_TYPE_OPTIONS,
        axum::http::HeaderValue::from_static("nosniff"),
    );

    let status = response.status();
    let elapsed = started.elapsed();
    let image = response
        .headers()
        .get(axum::http::header::CONTENT_TYPE)
        .is_some_and(|v| v.as_bytes().starts_with(b"image/"));
    if image || status == axum::http::StatusCode::NOT_MODIFIED {
        let tier = response.headers().get("x-cache").and_then(|v| v.to_str().ok());
        if let Ok(value) = axum::http::HeaderValue::from_str(&crate::service::timing::header(elapsed, tier, job)) {
            response.headers_mut().insert("server-timing", value);
        }
    }
    let m = &state.metrics;
    m.http_requests
        .with_label_values(&[method.as_str(), route.as_str(), status.as_str()])
        .inc();
    m.http_duration
        .with_label_values(&[method.as_str(), route.as_str()])
        .observe(elapsed.as_secs_f64());
    span.in_scope(|| {
        tracing::info!(
            status = status.as_u16(),
            duration_ms = elapsed.as_secs_f64() * 1000.0,
            "{method} {route} {}",
            status.as_u16()
        )
    });
    response
}

/// Whether the request says a body follows (a non-zero Content-Length, or
/// any Transfer-Encoding).
fn declares_body(headers: &axum::http::HeaderMap) -> bool {
    headers.contains_key(axum::http::header::TRANSFER_ENCODING)
        || headers
            .get(axum::http::header::CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.trim().parse::<u64>().ok())
            .is_some_and(|n| n > 0)
}
