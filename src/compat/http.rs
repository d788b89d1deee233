//! `GET /{url}` in the compat profile: the original's request handling. The
//! path (without its `/`) and `?query` form one text, percent-decoded; an
//! optional 28-character signature and `/` come first; the rest is parsed
//! with the original's grammar, its aliases are expanded, its downloads and
//! `cache(name)` calls are resolved here, and what remains runs as one job.
//! `download(...)` alone answers the source's own bytes. Status codes are
//! the original's: a parse error or bad signature is 400, a failed download
//! passes the origin's status on, a filter error is 500; our limits,
//! overload and deadline answers keep their own codes. Errors are JSON.

use super::config::Compat;
use super::expand::{ExpandError, expand};
use super::grammar::{self, Node, Value};
use super::lower::{LEAF, LowerError, NAMES, lower};
use crate::cache::{CacheKey, Entry, ResultCache, SecondTier};
use crate::error::ApiError;
use crate::fetch::FetchError;
use crate::pipeline::format::ImageFormat;
use crate::pipeline::ops::original::MaxSize;
use crate::render::Rendered;
use crate::render::Source;
use crate::service::AppState;
use crate::storage::ImageId;
use axum::extract::State;
use axum::http::{HeaderName, HeaderValue, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use base64::Engine;
use bytes::Bytes;
use futures::future::BoxFuture;
use hmac::{KeyInit, Mac};
use std::collections::BTreeMap;
use std::sync::Arc;

/// The compat profile's state: its settings and its named caches.
pub struct Runtime {
    pub config: Compat,
    pub caches: BTreeMap<String, Arc<ResultCache<ApiError>>>,
}

impl Runtime {
    /// Opens every named cache (`caches:`), in its own directory and size.
    pub fn open(config: Compat, metrics: &crate::metrics::Metrics) -> std::io::Result<Runtime> {
        let mut caches = BTreeMap::new();
        for (name, c) in &config.caches {
            // The disk tier writes into `tmp` and renames into `cache`.
            std::fs::create_dir_all(c.dir.join("tmp"))?;
            let memory = (c.size / 8).min(64 << 20);
            let cache = Arc::new(ResultCache::new(
                memory,
                SecondTier::disk(&c.dir, c.size)?,
                metrics.clone(),
            )?);
            let indexing = Arc::clone(&cache);
            let name_for_log = name.clone();
            tokio::task::spawn_blocking(move || {
                let (entries, bytes, _) = indexing.rebuild_disk_index();
                tracing::info!(cache = %name_for_log, entries, bytes, "named cache opened");
            });
            caches.insert(name.clone(), cache);
        }
        Ok(Runtime { config, caches })
    }

    /// Bytes the named caches' memory tiers hold (left out of the heap trend, as the result cache is).
    pub fn memory_bytes(&self) -> u64 {
        self.caches.values().map(|c| c.bytes().0).sum()
    }
}

fn bad_url(message: impl Into<String>) -> ApiError {
    ApiError::new(StatusCode::BAD_REQUEST, "invalid_url", message)
}

fn filter_failed(message: impl Into<String>) -> ApiError {
    ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "filter_failed", message)
}

/// A download's failure: the origin's own status when it answered one.
fn download_error(e: FetchError) -> ApiError {
    match e {
        FetchError::Status(code, message) => {
            let status = StatusCode::from_u16(code).unwrap_or(StatusCode::BAD_GATEWAY);
            ApiError::new(status, "download_failed", message)
        }
        other => other.into(),
    }
}

/// The original's status for a tree that cannot become a plan: 500 for a
/// filter's own error, 400 for output it did not offer (`compat` decides
/// these codes: they are the original's contract).
fn lower_error(e: LowerError) -> ApiError {
    match e {
        LowerError::Filter(message) => filter_failed(message),
        LowerError::Unsupported(message) => ApiError::new(StatusCode::BAD_REQUEST, "unsupported_output", message),
    }
}

/// The URL-safe, padded base64 of HMAC-SHA1 over `message` (the original's signature).
pub fn sign(secret: &str, message: &str) -> String {
    let mut mac = hmac::Hmac::<sha1::Sha1>::new_from_slice(secret.as_bytes()).expect("any key length");
    mac.update(message.as_bytes());
    base64::engine::general_purpose::URL_SAFE.encode(mac.finalize().into_bytes())
}

/// Splits an optional signature off the decoded URL: 28 characters of
/// URL-safe base64, then `/`. Returns (signature, rest).
fn split_signature(url: &str) -> (Option<&str>, &str) {
    if url.len() > 28 && url.is_char_boundary(28) && url.as_bytes()[28] == b'/' {
        let candidate = &url[..28];
        if base64::engine::general_purpose::URL_SAFE.decode(candidate).is_ok() {
            return (Some(candidate), &url[29..]);
        }
    }
    (None, url)
}

fn same(a: &str, b: &str) -> bool {
    use subtle::ConstantTimeEq;
    a.len() == b.len() && bool::from(a.as_bytes().ct_eq(b.as_bytes()))
}

/// What one request builds up: the filter log and the sources it fetched.
struct Request {
    log: Vec<String>,
    sources: Vec<Source>,
}

/// The compat profile's front end for `GET /{*chain}`.
pub fn route(runtime: Arc<Runtime>) -> axum::routing::MethodRouter<AppState> {
    axum::routing::get(move |State(state): State<AppState>, uri: Uri| {
        let runtime = Arc::clone(&runtime);
        async move { serve(state, &runtime, uri).await }
    })
}

async fn serve(state: AppState, runtime: &Runtime, uri: Uri) -> Result<Response, ApiError> {
    let config = &runtime.config;
    let mut raw = uri.path().trim_start_matches('/').to_string();
    if let Some(q) = uri.query() {
        raw.push('?');
        raw.push_str(q);
    }
    if raw.len() > state.settings.chain.max_url_len {
        return Err(ApiError::new(
            StatusCode::URI_TOO_LONG,
            "url_too_long",
            format!("the URL is longer than {} characters", state.settings.chain.max_url_len),
        ));
    }
    let url = percent_encoding::percent_decode_str(&raw)
        .decode_utf8()
        .map_err(|_| bad_url("Url decoding error."))?;
    let (signature, rest) = split_signature(&url);
    match (signature, &config.secret) {
        (Some(sig), Some(secret)) if !same(sig, &sign(secret, rest)) => {
            return Err(ApiError::new(
                StatusCode::BAD_REQUEST,
                "invalid_signature",
                "Invalid signature.",
            ));
        }
        (None, Some(_)) if state.policy.chains_signed() => {
            return Err(ApiError::new(
                StatusCode::FORBIDDEN,
                "signature_required",
                "this service requires signed URLs (`require_signature`)",
            ));
        }
        _ => {}
    }
    let tree = grammar::parse(rest).map_err(|e| bad_url(e.to_string()))?;
    let tree = expand(tree, &config.aliases, state.settings.allow_builtin_filters).map_err(|e| match e {
        ExpandError::NoSuchFilter(_) | ExpandError::NotEnoughArguments { .. } => filter_failed(e.to_string()),
        ExpandError::TooLarge(_) => bad_url(e.to_string()),
    })?;
    check_names(&tree)?;

    let mut request = Request {
        log: Vec::new(),
        sources: Vec::new(),
    };
    let (bytes, format) = evaluate(&state, runtime, &tree, &mut request).await?;
    let mut response = (StatusCode::OK, bytes).into_response();
    let h = response.headers_mut();
    let mime = format.map_or("application/octet-stream", |f| f.mime());
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static(mime));
    // `download(...)` alone passes any bytes on: never let a browser sniff them into HTML.
    h.insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    if let Some(name) = &config.log_filters_header
        && let Ok(name) = HeaderName::try_from(name.as_str())
        && let Ok(value) = HeaderValue::from_str(&request.log.join(","))
    {
        h.insert(name, value);
    }
    Ok(response)
}

/// Every filter name is known before anything is fetched.
fn check_names(node: &Node) -> Result<(), ApiError> {
    if !NAMES.contains(&node.name.as_str()) {
        return Err(filter_failed(format!("no such filter: {}", node.name)));
    }
    for arg in &node.args {
        if let Value::Image(inner) = arg {
            check_names(inner)?;
        }
    }
    Ok(())
}

/// The bytes and format of `node` (`None`: not an image): a download's
/// own bytes, a named cache's entry, or a job's output.
fn evaluate<'a>(
    state: &'a AppState,
    runtime: &'a Runtime,
    node: &'a Node,
    request: &'a mut Request,
) -> BoxFuture<'a, Result<(Bytes, Option<ImageFormat>), ApiError>> {
    Box::pin(async move {
        match node.name.as_str() {
            "download" => {
                let d = download(state, runtime, node, request).await?;
                Ok((d.bytes, d.format))
            }
            "cache" => {
                let entry = cache(state, runtime, node, request).await?;
                Ok((entry.bytes, Some(entry.format)))
            }
            _ => {
                let rendered = render(state, runtime, node, request).await?;
                Ok((Bytes::from(rendered.bytes), Some(rendered.format)))
            }
        }
    })
}

/// A downloaded source: its content id (computed once, by the fetcher), its
/// bytes, and its format (`None` when it is not an image).
struct Downloaded {
    id: ImageId,
    bytes: Bytes,
    format: Option<ImageFormat>,
}

/// `download(url[,dpi])`.
async fn download(
    state: &AppState,
    runtime: &Runtime,
    node: &Node,
    request: &mut Request,
) -> Result<Downloaded, ApiError> {
    let url = match node.args.first() {
        Some(Value::Text(url)) => url,
        _ => return Err(filter_failed("Argument 1 to `download` must be a string")),
    };
    request
        .log
        .push(format!("download({})", url.split(':').next().unwrap_or("")));
    let resolved = state.fetcher.resolve(url, true).await.map_err(download_error)?;
    let bytes = resolved.bytes.expect("asked for the bytes");
    if let (Some(allowed), Some(format)) = (&runtime.config.supported_formats, resolved.format)
        && !allowed.contains(&format)
    {
        return Err(ApiError::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported_format",
            format!("Unsupported image format: {format} (image.supported_formats)"),
        ));
    }
    Ok(Downloaded {
        id: resolved.id,
        bytes,
        format: resolved.format,
    })
}

/// `cache(image, name)`: the image's result from the named cache, or
/// computed once (single-flight) and stored there. The key is the image's
/// filter text, as the original's. As the original's: arguments after the
/// name are ignored, and a name no cache has is a miss whose result is
/// answered but cannot be saved (logged, as the original logged it).
async fn cache(state: &AppState, runtime: &Runtime, node: &Node, request: &mut Request) -> Result<Entry, ApiError> {
    let (inner, name) = match node.args.as_slice() {
        [Value::Image(inner), Value::Text(name), ..] => (inner, name),
        [Value::Image(_), ..] => return Err(filter_failed("Argument 2 to `cache` must be a string")),
        _ => return Err(filter_failed("Argument 1 to `cache` must be an image")),
    };
    let Some(store) = runtime.caches.get(name) else {
        request.log.push(format!("cache_miss({name})"));
        let (bytes, format) = evaluate(state, runtime, inner, request).await?;
        let format = format.ok_or_else(|| filter_failed("cache: only images can be cached"))?;
        tracing::warn!(cache = %name, "No such cache: {name} (the result is answered, not saved)");
        return Ok(Entry { bytes, format });
    };
    let text = inner.to_string();
    let id = ImageId::of(text.as_bytes());
    let key = CacheKey::new(&id, &format!("compat-{name}"), &text, &state.salt);
    let at = request.log.len();
    let mut ran = false;
    let result = store
        .get_or_compute(&key, || async {
            ran = true;
            let (bytes, format) = evaluate(state, runtime, inner, request).await?;
            let format = format.ok_or_else(|| filter_failed("cache: only images can be cached"))?;
            Ok(Entry { bytes, format })
        })
        .await;
    let (entry, _tier) = result?;
    // `cache_hit(name)` / `cache_miss(name)`, before what ran inside.
    let mark = if ran { "miss" } else { "hit" };
    request.log.insert(at, format!("cache_{mark}({name})"));
    Ok(entry)
}

/// Replaces downloads and caches by fetched sources, lowers the rest to a
/// native plan (`lower`) and runs it as any plan runs: one job, with the
/// same limits, budget, deadline, quarantine and timing.
async fn render(state: &AppState, runtime: &Runtime, node: &Node, request: &mut Request) -> Result<Rendered, ApiError> {
    let tree = resolve(state, runtime, node, request).await?;
    let max = MaxSize {
        width: runtime.config.max_width,
        height: runtime.config.max_height,
    };
    let (input, plan) = lower(&tree, max).map_err(lower_error)?;
    let mut sources = std::mem::take(&mut request.sources);
    if input != 0 {
        // The plan's image comes first; `compose` steps name the others by index.
        return Err(filter_failed("internal: the chain's image is not the first"));
    }
    if sources.is_empty() {
        return Err(filter_failed("internal: a chain without an image"));
    }
    sources.truncate(crate::pipeline::chain::MAX_SOURCES);
    state
        .render_sources(sources, plan, None)
        .await
        .map_err(|e| match e.code {
            // The original answered 500 for a filter's own refusals.
            "invalid_operation" => filter_failed(e.message),
            _ => e,
        })
}

fn resolve<'a>(
    state: &'a AppState,
    runtime: &'a Runtime,
    node: &'a Node,
    request: &'a mut Request,
) -> BoxFuture<'a, Result<Node, ApiError>> {
    Box::pin(async move {
        let (id, bytes, format, density) = match node.name.as_str() {
            "download" => {
                let density = match node.args.get(1) {
                    None => None,
                    Some(Value::Int(d, grammar::Unit::None)) if (1..=10_000).contains(d) => Some(*d as f64),
                    Some(_) => return Err(filter_failed("Argument 2 to `download` must be a literal integer")),
                };
                let d = download(state, runtime, node, request).await?;
                (d.id, d.bytes, d.format, density)
            }
            "cache" => {
                let entry = cache(state, runtime, node, request).await?;
                (
                    ImageId::of_shared(&entry.bytes).await,
                    entry.bytes,
                    Some(entry.format),
                    None,
                )
            }
            _ => {
                request.log.push(node.name.clone());
                let mut args = Vec::with_capacity(node.args.len());
                for arg in &node.args {
                    args.push(match arg {
                        Value::Image(inner) => Value::Image(resolve(state, runtime, inner, request).await?),
                        other => other.clone(),
                    });
                }
                return Ok(Node {
                    name: node.name.clone(),
                    args,
                });
            }
        };
        let format = format.ok_or_else(|| {
            ApiError::new(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "unsupported_format",
                "the source is not a JPEG, PNG, GIF, WebP, TIFF, AVIF or HEIC image",
            )
        })?;
        let index = request.sources.len();
        if index >= crate::pipeline::chain::MAX_SOURCES {
            return Err(filter_failed(format!(
                "at most {} images per URL",
                crate::pipeline::chain::MAX_SOURCES
            )));
        }
        request.sources.push(Source {
            id,
            bytes,
            format,
            density,
            hold: None,
        });
        Ok(Node {
            name: LEAF.to_string(),
            args: vec![Value::Int(index as i64, grammar::Unit::None)],
        })
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signatures_are_the_originals() {
        let rest = "download(origin:a.jpg):resize(100,0)?v=1";
        let sig = sign("s3cret", rest);
        assert_eq!(sig.len(), 28);
        assert!(sig.ends_with('='), "padded");
        let url = format!("{sig}/{rest}");
        assert_eq!(split_signature(&url), (Some(sig.as_str()), rest));
        assert_eq!(split_signature(rest), (None, rest));
    }
}
