//! `GET /{chain}` (and `GET /{signature}/{chain}` when secrets are set): the
//! original imaginator's URL language, e.g.
//! `/download(origin:photo.jpg):thumbnail(200)/photo.jpg`.

use super::images::{cached_response, not_modified};
use crate::cache::{CacheKey, Entry};
use crate::error::ApiError;
use crate::pipeline::chain::{compile, strip_trailing_name};
use crate::pipeline::parse::{ParseLimits, parse_chain};
use crate::render::Source;
use crate::service::AppState;
use crate::service::delivery::{self, Vary};
use axum::extract::State;
use axum::http::{HeaderMap, HeaderName, HeaderValue, StatusCode, Uri, header};
use axum::response::Response;
use bytes::Bytes;
use std::borrow::Cow;

fn not_found() -> ApiError {
    ApiError::not_found("no such route")
}

const SOURCE_CHANGED: &str = "source_changed";

/// An origin answered other content than the source cache named while
/// computing a result: the chain is resolved again (once), bytes in hand.
fn source_changed() -> ApiError {
    let mut e = ApiError::new(
        StatusCode::SERVICE_UNAVAILABLE,
        SOURCE_CHANGED,
        "a source changed at its origin while the result was computed; retry",
    );
    e.retry_after = Some(1);
    e
}

/// A result made from a download is not immutable: its origin may change
/// the image under the same URL. It gets a bounded max-age instead.
fn limit_freshness(response: &mut Response, max_age: Option<std::time::Duration>) {
    if let Some(age) = max_age
        && let Ok(value) = HeaderValue::from_str(&format!("public, max-age={}", age.as_secs()))
    {
        response.headers_mut().insert(header::CACHE_CONTROL, value);
    }
}

pub async fn serve(State(state): State<AppState>, uri: Uri, headers: HeaderMap) -> Result<Response, ApiError> {
    let settings = &state.settings;
    let raw = uri.path().trim_start_matches('/');
    if raw.len() > settings.chain.max_url_len {
        return Err(ApiError::new(
            StatusCode::URI_TOO_LONG,
            "url_too_long",
            format!("the URL is longer than {} characters", settings.chain.max_url_len),
        ));
    }
    // Signed URLs: the signature covers the rest of the path exactly as sent.
    let rest = state.policy.native_chain(raw, uri.query())?;
    let memo = state.chains.get_or_compile(rest, || {
        let decoded = percent_encoding::percent_decode_str(rest)
            .decode_utf8()
            .map_err(|_| ApiError::new(StatusCode::BAD_REQUEST, "invalid_chain", "the URL is not valid UTF-8"))?;
        let text = strip_trailing_name(&decoded);
        if !text.contains('(') {
            return Err(not_found());
        }
        let limits = ParseLimits {
            max_len: settings.chain.max_url_len,
            max_steps: settings.chain.max_steps,
            max_depth: settings.chain.max_depth,
        };
        let chain = parse_chain(text, limits)
            .map_err(|e| ApiError::new(StatusCode::BAD_REQUEST, "invalid_chain", e.to_string()))?;
        Ok(compile(&chain, &state.aliases, settings.allow_builtin_filters)?)
    })?;
    let compiled = &memo.compiled;
    let specs = &memo.sources;

    // Every image the chain names, by content: a fresh download() from the
    // source cache costs no origin request, and a result already cached
    // needs no bytes at all. Should an origin change its image while the
    // cache still called it fresh, the bytes fetched for a miss name other
    // content than the key: the chain is resolved again, bytes in hand.
    let mut need_bytes = false;
    let mut vary;
    let (entry, tier, etag, max_age) = loop {
        let named =
            futures::future::try_join_all(specs.iter().map(|spec| state.resolve_source(spec, need_bytes))).await?;
        // Clients may keep the result as long as its shortest-lived source.
        let max_age = named.iter().filter_map(|n| n.max_age).min();
        // The remembered plan as it is, unless the request's headers change
        // it (the output format follows Accept; Save-Data).
        vary = Vary::default();
        let plan = match delivery::deliver(settings, &compiled.plan, &headers, &mut vary) {
            Some(plan) => Cow::Owned(plan),
            None => Cow::Borrowed(&compiled.plan),
        };
        let delivered = matches!(plan, Cow::Owned(_));
        // The key names the content of every image (never a URL) and any
        // assumed resolution; a device pixel ratio by what it makes of the
        // source, when its size is known (two ratios that make the same
        // image share an entry).
        let keyed = named[0]
            .size
            .and_then(|(w, h)| plan.keyed_for(crate::pipeline::ops::Size::new(w, h)));
        let mut work = match (keyed, &memo.canonical) {
            (Some(keyed), _) => keyed,
            (None, Some(canonical)) if !delivered => canonical.clone(),
            (None, _) => plan.canonical(),
        };
        for (i, (n, spec)) in named.iter().zip(specs).enumerate() {
            work.push_str(&format!("|#{i}={}@{:?}", n.id, spec.dpi()));
        }
        let key = CacheKey::new(&named[0].id, &format!("cache-{}", compiled.cache), &work, &state.salt);
        let etag = key.etag();
        if not_modified(&headers, &etag) {
            let mut response = cached_response(&state, StatusCode::NOT_MODIFIED, &etag, "", Bytes::new());
            limit_freshness(&mut response, max_age);
            vary.apply(response.headers_mut());
            return Ok(response);
        }
        let computed = state
            .cache
            .get_or_compute(&key, || async {
                let mut sources = Vec::with_capacity(named.len());
                for (n, spec) in named.into_iter().zip(specs) {
                    let (bytes, hold) = match n.bytes {
                        Some(bytes) => (bytes, n.hold),
                        None => {
                            let fetched = state.resolve_source(spec, true).await?;
                            if fetched.id != n.id {
                                return Err(source_changed());
                            }
                            (fetched.bytes.expect("asked for the bytes"), fetched.hold)
                        }
                    };
                    sources.push(Source {
                        id: n.id.clone(),
                        bytes,
                        format: n.format,
                        density: spec.dpi(),
                        hold,
                    });
                }
                // Owned only now, on a miss.
                let rendered = state.render_sources(sources, plan.into_owned(), None).await?;
                Ok(Entry {
                    bytes: Bytes::from(rendered.bytes),
                    format: rendered.format,
                })
            })
            .await;
        match computed {
            Err(e) if e.code == SOURCE_CHANGED && !need_bytes => need_bytes = true,
            Err(e) => return Err(e),
            Ok((entry, tier)) => break (entry, tier, etag, max_age),
        }
    };
    let mut response = cached_response(&state, StatusCode::OK, &etag, entry.format.mime(), entry.bytes);
    limit_freshness(&mut response, max_age);
    let h = response.headers_mut();
    h.insert("x-cache", HeaderValue::from_static(tier.header()));
    vary.apply(h);
    if !settings.log_filters_header.is_empty()
        && let Ok(name) = HeaderName::try_from(settings.log_filters_header.as_str())
        && let Ok(value) = HeaderValue::from_str(&format!(
            "{}; cache {}={}",
            compiled.filters.join(", "),
            compiled.cache,
            tier.header()
        ))
    {
        h.insert(name, value);
    }
    Ok(response)
}
