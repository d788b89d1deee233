//! Liveness, readiness and the Prometheus scrape.

use crate::service::AppState;
use axum::Json;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::IntoResponse;
use serde_json::json;

/// The process is alive and serving HTTP.
pub async fn healthz() -> Json<serde_json::Value> {
    Json(json!({"status": "ok"}))
}

/// Ready to take traffic: aliases loaded, every worker alive, storage
/// reachable (the data directory writable, or the bucket answering). When
/// not, `reason` says why.
pub async fn readyz(State(state): State<AppState>) -> impl IntoResponse {
    let aliases = state.aliases.aliases.len();
    let alive = state.pool.alive();
    let workers = state.pool.workers();
    let storage = state.storage_health.check().await;
    let mut reasons = Vec::new();
    if aliases == 0 {
        reasons.push("no aliases loaded".to_string());
    }
    if alive != workers {
        reasons.push(format!("{alive} of {workers} workers alive"));
    }
    if let Some(why) = &storage.reason {
        reasons.push(why.clone());
    }
    let ready = reasons.is_empty();
    let status = if ready {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    let mut body = json!({
        "status": if ready { "ready" } else { "not_ready" },
        "checks": {
            "aliases_loaded": aliases,
            "workers_alive": alive,
            "workers_configured": workers,
            "data_dir_writable": storage.kind != "local" || storage.reachable,
            "storage": storage,
        }
    });
    if !ready {
        body["reason"] = json!(reasons.join("; "));
    }
    (status, Json(body))
}

pub async fn metrics(State(state): State<AppState>) -> impl IntoResponse {
    (
        [(header::CONTENT_TYPE, "text/plain; version=0.0.4; charset=utf-8")],
        state.metrics.render(),
    )
}
