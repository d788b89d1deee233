//! `POST /transform/{alias}?param=value`: the body is an image, the answer the
//! transformed image.

use super::AppState;
use crate::error::ApiError;
use crate::pipeline::format::ImageFormat;
use axum::body::Body;
use axum::extract::{Path, RawQuery, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use http_body_util::{BodyExt, LengthLimitError, Limited};

pub async fn transform(
    State(state): State<AppState>,
    Path(alias): Path<String>,
    RawQuery(query): RawQuery,
    body: Body,
) -> Result<Response, ApiError> {
    let response = run(&state, &alias, query, body).await;
    state.count_alias(&alias, &response);
    response
}

async fn run(state: &AppState, alias: &str, query: Option<String>, body: Body) -> Result<Response, ApiError> {
    let (_, bound) = state.bind_alias(alias, query.as_deref())?;
    let plan = bound.plan.clone();
    let input = read_body(body, state.settings.max_body.0).await?;
    let format = ImageFormat::sniff(&input).ok_or_else(|| {
        ApiError::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported_format",
            "the body is not a JPEG, PNG, GIF, WebP, TIFF, AVIF or HEIC image",
        )
    })?;
    let rendered = state.render(input, format, plan).await?;
    Ok(([(header::CONTENT_TYPE, rendered.format.mime())], rendered.bytes).into_response())
}

/// Reads a request body, refusing it as soon as it passes `limit` bytes.
pub async fn read_body(body: Body, limit: u64) -> Result<Bytes, ApiError> {
    let limit = usize::try_from(limit).unwrap_or(usize::MAX);
    match Limited::new(body, limit).collect().await {
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
        Err(e) if e.downcast_ref::<LengthLimitError>().is_some() => Err(ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "body_too_large",
            format!("the request body is larger than {limit} bytes"),
        )),
        Err(_) => Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            "body_read_failed",
            "the request body could not be read",
        )),
    }
}
