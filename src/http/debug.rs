//! Operators' memory endpoints: the memory report, heap profiles in three
//! formats, profile growth over a window or since a baseline, and the
//! profiling switch. All admin only; dumps run one at a time (429 otherwise).

use super::admin::Admin;
use crate::error::ApiError;
use crate::memory::profile;
use crate::service::AppState;
use axum::Json;
use axum::extract::{Query, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use std::time::Duration;

#[derive(Deserialize, Default)]
pub struct FormatQuery {
    format: Option<String>,
}

pub async fn memory(_: Admin, State(state): State<AppState>, Query(q): Query<FormatQuery>) -> Response {
    let report = state.memory_report();
    match q.format.as_deref() {
        Some("text") => ([(header::CONTENT_TYPE, "text/plain; charset=utf-8")], report.to_text()).into_response(),
        _ => Json(report).into_response(),
    }
}

/// `GET /debug/memory/history`: the sampler's samples (two trend windows
/// and a minute), for the memory page to draw the minutes before it opened.
pub async fn history(_: Admin, State(state): State<AppState>) -> Json<serde_json::Value> {
    let h = &state.memory.history;
    Json(serde_json::json!({
        "window_seconds": h.window().as_secs(),
        "sample_seconds": h.sample_every().as_secs(),
        "samples": h.samples(),
    }))
}

fn busy() -> ApiError {
    ApiError::new(
        StatusCode::TOO_MANY_REQUESTS,
        "profile_in_progress",
        "another heap profile is being taken; try again when it is done",
    )
}

/// Runs diagnostics work on a blocking thread, measured as work in flight
/// (`memory::work`): the heap trend keeps sampling meanwhile, and what a
/// profile costs is not taken for the service's heap at rest.
async fn blocking<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> Result<T, ApiError> {
    tokio::task::spawn_blocking(move || {
        let _work = crate::memory::work::track();
        f()
    })
    .await
    .map_err(|_| ApiError::internal())
}

/// `GET /dump_profile[?format=raw|pprof|svg]`: activates sampling if needed and
/// returns the current heap profile (jemalloc `heap_v2` text by default, for
/// `jeprof --show_bytes BINARY heap.prof`).
pub async fn dump_profile(
    _: Admin,
    State(state): State<AppState>,
    Query(q): Query<FormatQuery>,
) -> Result<Response, ApiError> {
    let _guard = state.memory.profiling.try_lock().map_err(|_| busy())?;
    if !profile::active() {
        profile::set_active(true)?;
        tracing::info!("heap profiling activated by /dump_profile");
    }
    let raw = blocking(profile::dump).await??;
    render(
        raw,
        None,
        q.format.as_deref().unwrap_or("raw"),
        "imaginator heap (in use)",
    )
    .await
}

/// The most a render adds to the process's memory, with margin: measured at
/// 8-9 MiB of peak RSS for the first render after start (the ELF symbol
/// tables of the binary and its libraries, read and freed within 0.07-0.11 s
/// on the reference machine, release build; docs/memory.md).
const RENDER_NEEDS: u64 = 32 << 20;

/// A render is refused (503) when the container's limit leaves less than
/// `RENDER_NEEDS` of room: an operator investigating memory pressure must
/// not be the one who causes the OOM kill.
fn room_to_render() -> Result<(), ApiError> {
    let c = crate::memory::report::CgroupMemory::read();
    if let (Some(max), Some(current)) = (c.memory_max, c.memory_current)
        && max.saturating_sub(current) < RENDER_NEEDS
    {
        let mut e = ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "profile_needs_memory",
            format!(
                "rendering a profile needs up to {} MiB and the container has {} MiB left before its limit; \
                 take the raw profile (/dump_profile) and render it elsewhere with jeprof",
                RENDER_NEEDS >> 20,
                max.saturating_sub(current) >> 20
            ),
        );
        e.retry_after = Some(10);
        return Err(e);
    }
    Ok(())
}

async fn render(raw: Vec<u8>, base: Option<Vec<u8>>, format: &str, title: &'static str) -> Result<Response, ApiError> {
    let format = format.to_string();
    if base.is_none() && format == "raw" {
        return Ok(([(header::CONTENT_TYPE, "application/octet-stream")], raw).into_response());
    }
    room_to_render()?;
    let rendered = blocking(move || -> Result<Response, ApiError> {
        let after = profile::parse(&raw)?;
        let profile = match &base {
            Some(before) => profile::growth(&profile::parse(before)?, &after),
            None => after,
        };
        if profile.stacks.is_empty() && format != "svg" && format != "pprof" {
            return Ok((
                [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
                format!(
                    "# {} (sampling every {} KiB on average, since profiling was activated)\n",
                    if base.is_some() {
                        "no sampled allocation grew in this window"
                    } else {
                        "no live allocation was sampled"
                    },
                    profile::sample_bytes() / 1024
                ),
            )
                .into_response());
        }
        let named = profile::name(&profile);
        let empty = if base.is_some() {
            "no sampled allocation grew in this window"
        } else {
            "no live allocation was sampled"
        };
        Ok(match format.as_str() {
            "pprof" => (
                [(header::CONTENT_TYPE, "application/octet-stream")],
                profile::to_pprof(&named),
            )
                .into_response(),
            "svg" => (
                [(header::CONTENT_TYPE, "image/svg+xml")],
                profile::to_flamegraph(&named, title, empty)?,
            )
                .into_response(),
            "collapsed" | "raw" => (
                [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
                profile::collapsed(&named),
            )
                .into_response(),
            other => {
                return Err(ApiError::new(
                    StatusCode::BAD_REQUEST,
                    "invalid_parameter",
                    format!("format `{other}` is not one of raw, pprof, svg, collapsed"),
                ));
            }
        })
    })
    .await;
    profile::render_done();
    rendered?
}

#[derive(Deserialize)]
pub struct GrowthQuery {
    /// Seconds between the two profiles (1..=600, default 30).
    seconds: Option<u64>,
    /// `baseline`: compare against the stored baseline instead of waiting.
    since: Option<String>,
    /// `collapsed` (default) or `svg`.
    format: Option<String>,
}

/// `GET /debug/heap_growth?seconds=N` or `?since=baseline`: only the stacks
/// whose live bytes grew, as collapsed stacks or a flame graph. This is
/// `jeprof --base` done by the service.
pub async fn heap_growth(
    _: Admin,
    State(state): State<AppState>,
    Query(q): Query<GrowthQuery>,
) -> Result<Response, ApiError> {
    let _guard = state.memory.profiling.try_lock().map_err(|_| busy())?;
    if !profile::active() {
        profile::set_active(true)?;
    }
    let format = q.format.unwrap_or_else(|| "collapsed".into());
    let before = match q.since.as_deref() {
        Some("baseline") => state
            .memory
            .baseline
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .as_ref()
            .map(|(raw, _)| raw.clone())
            .ok_or_else(|| {
                ApiError::new(
                    StatusCode::CONFLICT,
                    "no_baseline",
                    "no baseline stored: POST /debug/heap_baseline first",
                )
            })?,
        Some(other) => {
            return Err(ApiError::new(
                StatusCode::BAD_REQUEST,
                "invalid_parameter",
                format!("since=`{other}`: only `baseline` is known"),
            ));
        }
        None => {
            let seconds = q.seconds.unwrap_or(30);
            if !(1..=600).contains(&seconds) {
                return Err(ApiError::new(
                    StatusCode::BAD_REQUEST,
                    "invalid_parameter",
                    "seconds must be between 1 and 600",
                ));
            }
            let first = blocking(profile::dump).await??;
            // Kept while the window elapses: the diagnostics' bytes, not the heap's.
            let _kept = crate::memory::work::hold(first.len() as u64);
            tokio::time::sleep(Duration::from_secs(seconds)).await;
            first
        }
    };
    let after = blocking(profile::dump).await??;
    render(after, Some(before), &format, "imaginator heap growth").await
}

/// `POST /debug/heap_baseline`: stores the current profile for `?since=baseline`.
pub async fn heap_baseline(_: Admin, State(state): State<AppState>) -> Result<Response, ApiError> {
    let _guard = state.memory.profiling.try_lock().map_err(|_| busy())?;
    if !profile::active() {
        profile::set_active(true)?;
    }
    let raw = blocking(profile::dump).await??;
    let bytes = raw.len();
    let held = crate::memory::work::hold(bytes as u64);
    *state.memory.baseline.lock().unwrap_or_else(|e| e.into_inner()) = Some((raw, held));
    Ok(Json(serde_json::json!({"stored": true, "profile_bytes": bytes})).into_response())
}

/// `POST /debug/leak` with `{"mib": N}` (admin; built only with the
/// `leak-demo` feature, for the runbook): leaks N MiB, written so it is
/// resident, to show what a leaking service looks like.
#[cfg(feature = "leak-demo")]
pub async fn leak(_: Admin, Json(request): Json<serde_json::Value>) -> Json<serde_json::Value> {
    let mib = request["mib"].as_u64().unwrap_or(1).min(1024) as usize;
    let leaked: &'static mut [u8] = Box::leak(vec![0x5A_u8; mib << 20].into_boxed_slice());
    tracing::warn!(mib, "leaked on purpose (leak-demo build)");
    Json(serde_json::json!({ "leaked_bytes": leaked.len() }))
}

#[derive(Deserialize)]
pub struct ProfilingSwitch {
    active: bool,
}

/// `POST /debug/profiling` with `{"active": true|false}`.
pub async fn profiling(_: Admin, Json(switch): Json<ProfilingSwitch>) -> Result<Json<serde_json::Value>, ApiError> {
    profile::set_active(switch.active)?;
    tracing::info!(active = switch.active, "heap profiling switched");
    Ok(Json(serde_json::json!({
        "active": profile::active(),
        "sample_bytes": profile::sample_bytes(),
    })))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_window_in_which_nothing_grew_says_so() {
        profile::set_active(true).unwrap();
        let raw = profile::dump().unwrap();
        // The same profile twice: nothing grew between them.
        let response = render(raw.clone(), Some(raw), "collapsed", "t").await.unwrap();
        let body = axum::body::to_bytes(response.into_body(), 1 << 20).await.unwrap();
        let text = String::from_utf8(body.to_vec()).unwrap();
        assert!(
            text.starts_with("# no sampled allocation grew in this window"),
            "{text}"
        );
        assert!(text.contains("512 KiB"), "{text}");
    }
}
