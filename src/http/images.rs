//! Originals and their cached renditions:
//! `POST /images`, `GET|HEAD|DELETE /images/{id}`, `GET /images/{id}/{alias}`.

use super::admin::Admin;
use super::admission::{Admitted, admit};
use crate::cache::{CacheKey, Entry};
use crate::error::ApiError;
use crate::pipeline::format::ImageFormat;
use crate::pipeline::layers;
use crate::service::AppState;
use crate::service::delivery::{self, Vary};
use crate::storage::{ImageId, OriginalMeta};
use axum::Json;
use axum::body::Body;
use axum::extract::{FromRequest, Multipart, Path, RawQuery, Request, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;

/// The image a request carries, on every route that takes one (`POST
/// /images`, `/info`, `/transform/{alias}`): the raw body whatever its
/// Content-Type says (the bytes are sniffed, never the type trusted: curl's
/// `--data-binary` sends `application/x-www-form-urlencoded`), or the
/// multipart/form-data field `file` (`curl -F file=@photo.jpg`). The whole
/// request body is read first (within `max_body` and `http.body_timeout`,
/// whatever its fields), so no part of a multipart body can grow past it.
pub(super) async fn body_image(state: &AppState, request: Request, admitted: &mut Admitted) -> Result<Bytes, ApiError> {
    let multipart = request
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.trim_start().to_ascii_lowercase().starts_with("multipart/form-data"));
    let (parts, body) = request.into_parts();
    let body = admitted.read(body).await?;
    if body.is_empty() {
        return Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            "empty_body",
            "the request has no body: send the image as the body, or as the multipart/form-data field `file`",
        ));
    }
    if !multipart {
        return Ok(body);
    }
    let request = Request::from_parts(parts, axum::body::Body::from(body));
    let mut multipart = Multipart::from_request(request, state)
        .await
        .map_err(|_| bad_multipart())?;
    while let Some(field) = multipart.next_field().await.map_err(|_| bad_multipart())? {
        if field.name() != Some("file") {
            continue;
        }
        let bytes = field.bytes().await.map_err(|_| bad_multipart())?;
        if bytes.is_empty() {
            return Err(ApiError::new(
                StatusCode::BAD_REQUEST,
                "empty_body",
                "the field `file` is empty",
            ));
        }
        return Ok(bytes);
    }
    Err(ApiError::new(
        StatusCode::BAD_REQUEST,
        "missing_file",
        "no multipart field named `file`",
    ))
}

fn bad_multipart() -> ApiError {
    ApiError::new(
        StatusCode::BAD_REQUEST,
        "bad_multipart",
        "the multipart body is malformed",
    )
}

/// The format of an image sent as a request body, from its magic bytes.
pub(super) fn sniff_body(bytes: &[u8]) -> Result<ImageFormat, ApiError> {
    ImageFormat::sniff(bytes).ok_or_else(|| {
        ApiError::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported_format",
            "the body is not a JPEG, PNG, GIF, WebP, TIFF, AVIF or HEIC image",
        )
    })
}

/// `POST /images`: 201 with the new original's id and header facts, or 200
/// with the same answer when these exact bytes are already stored.
pub async fn upload(State(state): State<AppState>, request: Request) -> Result<Response, ApiError> {
    let mut admitted = admit(&state, request.headers())?;
    let bytes = body_image(&state, request, &mut admitted).await?;
    let format = sniff_body(&bytes)?;
    if !state.settings.upload_formats.contains(&format) {
        return Err(ApiError::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "format_not_allowed",
            format!("{format} uploads are not allowed here"),
        ));
    }
    // What follows the image's own end (a PNG after IEND, a JPEG after its
    // end-of-image marker) is not part of it and is not stored: a file that
    // is also an HTML page is served as an image only.
    let bytes = match layers::claims(&bytes, format).and_then(|c| c.end) {
        Some(end) if end < bytes.len() => {
            tracing::info!(
                removed = bytes.len() - end,
                "trailing bytes after the image removed before storing"
            );
            bytes.slice(..end)
        }
        _ => bytes,
    };
    let id = ImageId::of_shared(&bytes).await;
    if let Some(meta) = state.originals.meta(&id).await.map_err(ApiError::from)? {
        return Ok((StatusCode::OK, Json(meta)).into_response());
    }
    let probe = state.validate(bytes.clone(), &id, format, None).await?;
    let meta = OriginalMeta {
        id: id.to_string(),
        format,
        width: probe.oriented.width,
        height: probe.oriented.height,
        bytes: bytes.len() as u64,
    };
    let created = state.originals.put(&meta, bytes).await.map_err(ApiError::from)?;
    let status = if created { StatusCode::CREATED } else { StatusCode::OK };
    tracing::info!(id = %meta.id, format = %format, bytes = meta.bytes, created, "original stored");
    Ok((status, Json(meta)).into_response())
}

fn image_not_found() -> ApiError {
    ApiError::new(StatusCode::NOT_FOUND, "image_not_found", "no such image")
}

fn parse_id(id: &str) -> Result<ImageId, ApiError> {
    ImageId::parse(id).ok_or_else(image_not_found)
}

/// Whether `If-None-Match` names `etag` (or `*`), by the weak comparison
/// RFC 9110 (13.1.2) asks for: `W/"x"` and `"x"` match each other (proxies
/// that compress weaken a tag).
pub(super) fn not_modified(headers: &HeaderMap, etag: &str) -> bool {
    let opaque = |t: &str| t.trim().trim_start_matches("W/").to_string();
    let ours = opaque(etag);
    headers
        .get_all(header::IF_NONE_MATCH)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .any(|t| t.trim() == "*" || opaque(t) == ours)
}

/// A response with the body's type, its ETag and the configured Cache-Control.
pub(super) fn cached_response(
    state: &AppState,
    status: StatusCode,
    etag: &str,
    content_type: &str,
    body: Bytes,
) -> Response {
    let mut response = (status, body).into_response();
    let h = response.headers_mut();
    if let Ok(v) = HeaderValue::from_str(content_type) {
        h.insert(header::CONTENT_TYPE, v);
    }
    if let Ok(v) = HeaderValue::from_str(etag) {
        h.insert(header::ETAG, v);
    }
    if let Ok(v) = HeaderValue::from_str(&state.settings.cache.cache_control) {
        h.insert(header::CACHE_CONTROL, v);
    }
    response
}

/// `GET /images/{id}` (and `HEAD`): the original bytes, exactly.
pub async fn original(
    State(state): State<AppState>,
    Path(id): Path<String>,
    method: Method,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let id = parse_id(&id)?;
    let etag = format!("\"{id}\"");
    // The metadata answers HEAD and 304 without reading the blob; GET
    // streams it, so a large original never sits whole in memory.
    let meta = state
        .originals
        .meta(&id)
        .await
        .map_err(ApiError::from)?
        .ok_or_else(image_not_found)?;
    if not_modified(&headers, &etag) {
        return Ok(cached_response(
            &state,
            StatusCode::NOT_MODIFIED,
            &etag,
            meta.format.mime(),
            Bytes::new(),
        ));
    }
    let body = if method == Method::HEAD {
        Body::empty()
    } else {
        let stream = state
            .originals
            .stream(&id)
            .await
            .map_err(ApiError::from)?
            .ok_or_else(image_not_found)?;
        Body::from_stream(stream)
    };
    let mut response = cached_response(&state, StatusCode::OK, &etag, meta.format.mime(), Bytes::new());
    *response.body_mut() = body;
    response
        .headers_mut()
        .insert(header::CONTENT_LENGTH, HeaderValue::from(meta.bytes));
    Ok(response)
}

/// `DELETE /images/{id}` (admin): the original and every result derived from it.
pub async fn delete(_: Admin, State(state): State<AppState>, Path(id): Path<String>) -> Result<StatusCode, ApiError> {
    let id = parse_id(&id)?;
    if !state.originals.delete(&id).await.map_err(ApiError::from)? {
        return Err(image_not_found());
    }
    state.known.forget(&id);
    let purged = state.cache.purge(&crate::cache::Purge::Image(id)).await;
    tracing::info!(purged, "original deleted with its results");
    Ok(StatusCode::NO_CONTENT)
}

/// `GET /images/{id}/{alias}?params`: a rendition, through the result cache.
pub async fn rendition(
    State(state): State<AppState>,
    Path((id, alias_name)): Path<(String, String)>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let response = render_cached(&state, id, &alias_name, query, headers).await;
    state.count_alias(&alias_name, &response);
    response
}

async fn render_cached(
    state: &AppState,
    id: String,
    alias_name: &str,
    query: Option<String>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let id = parse_id(&id)?;
    // Client hints fill what the query leaves out; the headers the answer
    // depends on are named in `Vary`, on 304s too.
    let (query, mut vary) = match state.aliases.get(alias_name) {
        Some(alias) => delivery::hinted_query(&state.settings, alias, query.as_deref(), &headers),
        None => (query, Vary::default()),
    };
    let (alias, bound) = state.bind_alias(alias_name, query.as_deref())?;
    let delivered = delivery::deliver(&state.settings, &bound.plan, &headers, &mut vary);
    let plan = delivered.as_ref().unwrap_or(&bound.plan);

    // Renditions only of an original that exists (checked at most every few
    // seconds per image: another replica may have deleted it).
    let size = match state.known.fresh(&id) {
        Some(size) => size,
        None => {
            // Not found: whatever this replica still caches of it stays
            // unreachable behind this check until evicted (no purge per
            // unknown id: that would be a cheap way to make the server work).
            let meta = state
                .originals
                .meta(&id)
                .await
                .map_err(ApiError::from)?
                .ok_or_else(image_not_found)?;
            let size = (meta.width, meta.height);
            state.known.saw(&id, size);
            size
        }
    };
    // A device pixel ratio is keyed by what it makes of this original: two
    // ratios that make the same image share one entry (a fractional `dpr`
    // must not be a free way past the cache).
    let key = match (
        plan.keyed_for(crate::pipeline::ops::Size::new(size.0, size.1)),
        &delivered,
    ) {
        (Some(keyed), _) => CacheKey::new(&id, &alias.name, &keyed, &state.salt),
        (None, Some(plan)) => CacheKey::new(&id, &alias.name, &plan.canonical(), &state.salt),
        (None, None) => CacheKey::new(&id, &alias.name, &bound.canonical, &state.salt),
    };
    let etag = key.etag();
    if not_modified(&headers, &etag) {
        let mut response = cached_response(state, StatusCode::NOT_MODIFIED, &etag, "", Bytes::new());
        vary.apply(response.headers_mut());
        return Ok(response);
    }
    let plan = plan.clone();

    let (entry, tier) = state
        .cache
        .get_or_compute(&key, || async {
            let (meta, bytes) = state
                .originals
                .get(&id)
                .await
                .map_err(ApiError::from)?
                .ok_or_else(image_not_found)?;
            // Stored originals were decoded when they were uploaded.
            state.quarantine.prove(id.as_str());
            let rendered = state.render(bytes, Some(id.clone()), meta.format, plan, None).await?;
            Ok(Entry {
                bytes: Bytes::from(rendered.bytes),
                format: rendered.format,
            })
        })
        .await?;
    let mut response = cached_response(state, StatusCode::OK, &etag, entry.format.mime(), entry.bytes);
    response
        .headers_mut()
        .insert("x-cache", HeaderValue::from_static(tier.header()));
    vary.apply(response.headers_mut());
    Ok(response)
}

#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PurgeRequest {
    image: Option<String>,
    alias: Option<String>,
    #[serde(default)]
    all: bool,
}

/// `POST /admin/purge` with `{"image": id}`, `{"alias": name}` or `{"all": true}`.
pub async fn purge(
    _: Admin,
    State(state): State<AppState>,
    Json(req): Json<PurgeRequest>,
) -> Result<Json<serde_json::Value>, ApiError> {
    use crate::cache::Purge;
    let what = match (req.image, req.alias, req.all) {
        (Some(id), None, false) => Purge::Image(parse_id(&id)?),
        (None, Some(alias), false) => Purge::Alias(alias),
        (None, None, true) => Purge::All,
        _ => {
            return Err(ApiError::new(
                StatusCode::BAD_REQUEST,
                "invalid_parameter",
                "give exactly one of `image`, `alias` or `all: true`",
            ));
        }
    };
    let purged = state.cache.purge(&what).await;
    Ok(Json(serde_json::json!({ "purged": purged })))
}

fn info_response(state: &AppState, id: Option<&ImageId>, info: crate::magick::ImageInfo) -> Response {
    let info = if state.settings.info.include_gps {
        info
    } else {
        info.without_gps()
    };
    let mut body = serde_json::to_value(&info).unwrap_or_default();
    if let Some(id) = id {
        body["id"] = serde_json::Value::String(id.to_string());
    }
    Json(body).into_response()
}

/// `GET /images/{id}/info`: what an uploaded image is (header facts, ICC
/// description, EXIF subset, ThumbHash). Computed once in the worker pool,
/// then stored beside the original.
pub async fn info(State(state): State<AppState>, Path(id): Path<String>) -> Result<Response, ApiError> {
    let id = parse_id(&id)?;
    if let Some(json) = state.originals.info(&id).await.map_err(ApiError::from)?
        && let Ok(info) = serde_json::from_slice::<crate::magick::ImageInfo>(&json)
    {
        return Ok(info_response(&state, Some(&id), info));
    }
    let (meta, bytes) = state
        .originals
        .get(&id)
        .await
        .map_err(ApiError::from)?
        .ok_or_else(image_not_found)?;
    // Stored originals were decoded when they were uploaded.
    state.quarantine.prove(id.as_str());
    let info = state.image_info(bytes, &id, meta.format, None).await?;
    if let Ok(json) = serde_json::to_vec(&info)
        && let Err(e) = state.originals.put_info(&id, Bytes::from(json)).await
    {
        // The answer stands; it is computed again next time.
        tracing::warn!(error = %e, "could not store an image's info");
    }
    Ok(info_response(&state, Some(&id), info))
}

/// `POST /info` (body: an image, raw or as the multipart field `file`): the
/// same answer for an image that is not stored. Nothing is kept.
pub async fn info_of_body(State(state): State<AppState>, request: Request) -> Result<Response, ApiError> {
    let mut admitted = admit(&state, request.headers())?;
    let bytes = body_image(&state, request, &mut admitted).await?;
    let format = sniff_body(&bytes)?;
    let id = ImageId::of_shared(&bytes).await;
    let info = state.image_info(bytes, &id, format, None).await?;
    Ok(info_response(&state, None, info))
}
