//! The built-in pages, served by the binary itself (HTML, CSS and JS
//! embedded at build time: no CDN, no network, works offline):
//!
//! - `GET /ui`: the playground for alias authors: an image through every
//!   alias side by side, a chain editor with live preview, and a signing
//!   helper (admin only) when `secrets` are set;
//! - `GET /ui/memory` (admin): live charts of `/debug/memory`, stacked the
//!   way the kubelet adds them up.
//!
//! Plus what the pages ask the server: `GET /ui/api/chain` (parse and
//! compile a chain: canonical form, or the error and where it is) and
//! `POST /admin/sign` (sign a path with the first secret).

use super::admin::Admin;
use crate::error::ApiError;
use crate::pipeline::chain::compile;
use crate::pipeline::parse::{ParseLimits, parse_chain};
use crate::service::AppState;
use axum::Json;
use axum::extract::{Path, Query, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::json;

const PLAYGROUND_HTML: &str = include_str!("ui/playground.html");
const MEMORY_HTML: &str = include_str!("ui/memory.html");
const ASSETS: &[(&str, &str, &str)] = &[
    ("ui.css", "text/css; charset=utf-8", include_str!("ui/ui.css")),
    (
        "playground.js",
        "text/javascript; charset=utf-8",
        include_str!("ui/playground.js"),
    ),
    (
        "memory.js",
        "text/javascript; charset=utf-8",
        include_str!("ui/memory.js"),
    ),
    ("favicon.svg", "image/svg+xml", include_str!("ui/favicon.svg")),
];

/// Pages and assets: never stale after an upgrade, never framed elsewhere,
/// no script but our own.
fn page(content_type: &'static str, body: &'static str) -> Response {
    (
        [
            (header::CONTENT_TYPE, content_type),
            (header::CACHE_CONTROL, "no-cache"),
            (
                header::CONTENT_SECURITY_POLICY,
                "default-src 'self'; img-src 'self' blob: data:; style-src 'self'; script-src 'self'; frame-src 'self' blob:; frame-ancestors 'self'",
            ),
        ],
        body,
    )
        .into_response()
}

pub async fn playground() -> Response {
    page("text/html; charset=utf-8", PLAYGROUND_HTML)
}

pub async fn memory(_: Admin) -> Response {
    page("text/html; charset=utf-8", MEMORY_HTML)
}

pub async fn asset(Path(name): Path<String>) -> Response {
    match ASSETS.iter().find(|(n, _, _)| *n == name) {
        Some((_, content_type, body)) => page(content_type, body),
        None => ApiError::not_found(format!("no asset {name}")).into_response(),
    }
}

#[derive(Deserialize)]
pub struct ChainQuery {
    c: String,
}

/// `GET /ui/api/chain?c=TEXT`: the chain's canonical form and whether the
/// service needs it signed, or a 400 whose error says at which character.
pub async fn chain(State(state): State<AppState>, Query(q): Query<ChainQuery>) -> Response {
    let settings = &state.settings;
    let limits = ParseLimits {
        max_len: settings.chain.max_url_len,
        max_steps: settings.chain.max_steps,
        max_depth: settings.chain.max_depth,
    };
    let parsed = match parse_chain(&q.c, limits) {
        Ok(chain) => chain,
        Err(e) => {
            let body = json!({"error": {"code": "invalid_chain", "message": e.message, "position": e.position}});
            return (StatusCode::BAD_REQUEST, Json(body)).into_response();
        }
    };
    match compile(&parsed, &state.aliases, settings.allow_builtin_filters) {
        Ok(compiled) => Json(json!({
            "canonical": parsed.to_string(),
            "source": compiled.source.to_string(),
            "filters": compiled.filters,
            "format": compiled.plan.output.format.to_string(),
            "signed": !settings.secrets.is_empty(),
        }))
        .into_response(),
        Err(e) => ApiError::from(e).into_response(),
    }
}

#[derive(Deserialize)]
pub struct SignRequest {
    /// What follows the signature: a chain (`original(...):thumbnail(200)`).
    path: String,
}

/// `POST /admin/sign {"path": "..."}`: `{"url": "/{signature}/{path}"}`,
/// signed with the first of `secrets`.
pub async fn sign(_: Admin, State(state): State<AppState>, Json(req): Json<SignRequest>) -> Result<Response, ApiError> {
    let Some(secret) = state.settings.secrets.first() else {
        return Err(ApiError::new(
            StatusCode::CONFLICT,
            "no_secrets",
            "no secrets are configured: URLs need no signature",
        ));
    };
    let path = req.path.trim_start_matches('/');
    let signature = crate::signature::sign(secret, path);
    Ok(Json(json!({ "url": format!("/{signature}/{path}") })).into_response())
}
