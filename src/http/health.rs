//! Liveness, readiness and the Prometheus scrape.

use super::AppState;
use axum::Json;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::IntoResponse;
use serde_json::json;

/// The process is alive and serving HTTP.
pub async fn healthz() -> Json<serde_json::Value> {
    Json(json!({"status": "ok"}))
}

/// Ready to take traffic: aliases loaded, every worker alive, data dir writable.
pub async fn readyz(State(state): State<AppState>) -> impl IntoResponse {
    let aliases = state.aliases.aliases.len();
    let alive = state.pool.alive();
    let workers = state.pool.workers();
    let dir = state.settings.data_dir.clone();
    let writable = tokio::task::spawn_blocking(move || data_dir_writable(&dir))
        .await
        .unwrap_or(false);
    let ready = aliases > 0 && alive == workers && writable;
    let status = if ready {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (
        status,
        Json(json!({
            "status": if ready { "ready" } else { "not_ready" },
            "checks": {
                "aliases_loaded": aliases,
                "workers_alive": alive,
                "workers_configured": workers,
                "data_dir_writable": writable,
            }
        })),
    )
}

fn data_dir_writable(dir: &std::path::Path) -> bool {
    let probe = dir.join(format!(".ready-probe-{}", std::process::id()));
    let ok = std::fs::write(&probe, b"ok").is_ok();
    let _ = std::fs::remove_file(&probe);
    ok
}

pub async fn metrics(State(state): State<AppState>) -> impl IntoResponse {
    (
        [(header::CONTENT_TYPE, "text/plain; version=0.0.4; charset=utf-8")],
        state.metrics.render(),
    )
}
