//! Routers and handlers only: requests in, plans and jobs out, responses back.
//! No image logic lives here.

mod admin;
mod admission;
mod aliases;
mod chain;
mod debug;
mod health;
mod images;
mod observe;
mod state;
mod transform;
mod version;

pub use state::{AppState, BoundPlans, Shared};

use crate::error::ApiError;
use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::http::StatusCode;
use axum::middleware;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use tower_http::catch_panic::CatchPanicLayer;

pub fn router(state: AppState) -> Router {
    #[cfg(feature = "leak-demo")]
    let base = Router::new().route("/debug/leak", post(debug::leak));
    #[cfg(not(feature = "leak-demo"))]
    let base = Router::new();
    base.route("/healthz", get(health::healthz))
        .route("/readyz", get(health::readyz))
        .route("/metrics", get(health::metrics))
        .route("/aliases", get(aliases::list))
        .route("/version", get(version::version))
        .route("/transform/{alias}", post(transform::transform))
        .route("/images", post(images::upload).layer(DefaultBodyLimit::disable()))
        .route("/images/{id}", get(images::original).delete(images::delete))
        .route("/images/{id}/{alias}", get(images::rendition))
        .route("/admin/purge", post(images::purge))
        .route("/dump_profile", get(debug::dump_profile))
        .route("/debug/memory", get(debug::memory))
        .route("/debug/profiling", post(debug::profiling))
        .route("/debug/heap_growth", get(debug::heap_growth))
        .route("/debug/heap_baseline", post(debug::heap_baseline))
        .route("/{*chain}", get(chain::serve))
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(middleware::from_fn_with_state(state.clone(), observe::observe))
        .layer(CatchPanicLayer::custom(|_| {
            tracing::error!("a request handler panicked");
            ApiError::internal().into_response()
        }))
        .with_state(state)
}

async fn not_found() -> ApiError {
    ApiError::not_found("no such route")
}

async fn method_not_allowed() -> Response {
    ApiError::new(
        StatusCode::METHOD_NOT_ALLOWED,
        "method_not_allowed",
        "this route does not accept that method",
    )
    .into_response()
}
