//! `POST /transform/{alias}?param=value`: the body is an image, the answer the
//! transformed image.

use super::admission::admit;
use crate::error::ApiError;
use crate::service::AppState;
use axum::body::Body;
use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, header};
use axum::response::{IntoResponse, Response};

pub async fn transform(
    State(state): State<AppState>,
    Path(alias): Path<String>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, ApiError> {
    // Who may send it, and its signature, were decided by the policy.
    let response = run(&state, &alias, query, &headers, body).await;
    state.count_alias(&alias, &response);
    response
}

async fn run(
    state: &AppState,
    alias: &str,
    query: Option<String>,
    headers: &HeaderMap,
    body: Body,
) -> Result<Response, ApiError> {
    let (_, bound) = state.bind_alias(alias, query.as_deref())?;
    let plan = bound.plan.clone();
    let mut admitted = admit(state, headers)?;
    let input = admitted.read(body).await?;
    let format = super::images::sniff_body(&input)?;
    let rendered = state.render(input, None, format, plan, None).await?;
    Ok(([(header::CONTENT_TYPE, rendered.format.mime())], rendered.bytes).into_response())
}
