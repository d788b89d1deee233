//! `POST /transform/{alias}?param=value`: the body is an image, the answer the
//! transformed image.

use super::AppState;
use super::admin::has_token;
use super::admission::{admit, read_body};
use super::images::signed_query;
use crate::error::ApiError;
use axum::body::Body;
use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, header};
use axum::response::{IntoResponse, Response};

pub async fn transform(
    State(state): State<AppState>,
    Path(alias): Path<String>,
    RawQuery(query): RawQuery,
    uri: axum::http::Uri,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, ApiError> {
    // With `sign_all_routes`, the admin token stands in for a signature.
    let query = if has_token(&headers, &state.settings.admin_token) {
        query.map(|q| crate::signature::without_signature(&q))
    } else {
        signed_query(&state, &uri, query)?
    };
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
    let admitted = admit(state, headers)?;
    let input = read_body(body, admitted.limit, state.settings.http.body_timeout.0).await?;
    let format = super::images::sniff_body(&input)?;
    let rendered = state.render(input, None, format, plan, Some(admitted.slot)).await?;
    Ok(([(header::CONTENT_TYPE, rendered.format.mime())], rendered.bytes).into_response())
}
