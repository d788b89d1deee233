//! `POST /transform/{alias}?param=value`: the body is an image, the answer the
//! transformed image.

use super::admission::admit;
use crate::error::ApiError;
use crate::service::AppState;
use crate::service::delivery::{self, Vary};
use axum::extract::{Path, RawQuery, Request, State};
use axum::http::header;
use axum::response::{IntoResponse, Response};

pub async fn transform(
    State(state): State<AppState>,
    Path(alias): Path<String>,
    RawQuery(query): RawQuery,
    request: Request,
) -> Result<Response, ApiError> {
    // Who may send it, and its signature, were decided by the policy.
    let response = run(&state, &alias, query, request).await;
    state.count_alias(&alias, &response);
    response
}

async fn run(state: &AppState, alias: &str, query: Option<String>, request: Request) -> Result<Response, ApiError> {
    let headers = request.headers();
    let (query, mut vary) = match state.aliases.get(alias) {
        Some(a) => delivery::hinted_query(&state.settings, a, query.as_deref(), headers),
        None => (query, Vary::default()),
    };
    let (_, bound) = state.bind_alias(alias, query.as_deref())?;
    let plan =
        delivery::deliver(&state.settings, &bound.plan, headers, &mut vary).unwrap_or_else(|| bound.plan.clone());
    let mut admitted = admit(state, headers)?;
    let input = super::images::body_image(state, request, &mut admitted).await?;
    let format = super::images::sniff_body(&input)?;
    let rendered = state.render(input, None, format, plan, None).await?;
    let mut response = ([(header::CONTENT_TYPE, rendered.format.mime())], rendered.bytes).into_response();
    vary.apply(response.headers_mut());
    Ok(response)
}
