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
mod transform;
mod ui;
mod version;

use crate::service::AppState;

use crate::error::ApiError;
use crate::service::policy::{Access, Caller};
use axum::Router;
use axum::extract::{ConnectInfo, DefaultBodyLimit, MatchedPath, State};
use axum::http::{Method, StatusCode};
use axum::middleware;
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get, post};
use std::net::SocketAddr;
use tower_http::catch_panic::CatchPanicLayer;

/// Which routes a listener serves.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Routes {
    /// Everything on one listener (no `admin_listen`): admin routes check
    /// the caller (`admin::Admin`).
    All,
    /// The public listener when `admin_listen` is set: no admin route and no
    /// `/metrics` (404 there).
    Public,
    /// The admin listener: admin routes, `/metrics`, and health for probes.
    Admin,
}

/// What answers `GET /{*chain}`: the native chain language
/// (`native_chains`), or a front end mounted by the app (the compat profile).
pub type ChainRoute = axum::routing::MethodRouter<AppState>;

/// The native chain language's route.
pub fn native_chains() -> ChainRoute {
    get(chain::serve)
}

pub fn router(state: AppState, routes: Routes, chains: ChainRoute) -> Router {
    let mut r = Router::new();
    if routes != Routes::Admin {
        r = r
            .route("/aliases", get(aliases::list))
            .route(
                "/transform/{alias}",
                post(transform::transform).layer(DefaultBodyLimit::disable()),
            )
            .route("/images", post(images::upload).layer(DefaultBodyLimit::disable()))
            .route("/images/{id}/info", get(images::info))
            .route("/images/{id}/{alias}", get(images::rendition))
            .route("/info", post(images::info_of_body).layer(DefaultBodyLimit::disable()))
            .route("/{*chain}", chains);
    }
    r = r
        .route("/healthz", get(health::healthz))
        .route("/readyz", get(health::readyz))
        .route("/version", get(version::version));
    r = match routes {
        Routes::All => r.route("/images/{id}", get(images::original).delete(images::delete)),
        Routes::Public => r.route("/images/{id}", get(images::original).delete(not_found)),
        Routes::Admin => r.route("/images/{id}", delete(images::delete)),
    };
    // The pages: the playground with the public routes it drives, the
    // memory page wherever admin routes are.
    let ui_here = state.settings.ui.enabled.resolve(state.settings.listen);
    let playground = ui_here && routes != Routes::Admin;
    let memory_page = routes == Routes::Admin || (ui_here && routes == Routes::All);
    if playground {
        r = r
            .route("/ui", get(ui::playground))
            .route("/ui/api/chain", get(ui::chain));
    }
    if routes != Routes::Admin {
        r = r.route("/", get(move || index(playground)));
    }
    if memory_page {
        r = r.route("/ui/memory", get(ui::memory));
    }
    if playground || memory_page {
        r = r.route("/ui/assets/{name}", get(ui::asset));
    }
    if routes != Routes::Public {
        r = r
            .route("/admin/sign", post(ui::sign))
            .route("/metrics", get(health::metrics))
            .route("/admin/purge", post(images::purge))
            .route("/admin/quarantine", get(admin::quarantine_list))
            .route("/admin/quarantine/{id}", delete(admin::quarantine_release))
            .route("/dump_profile", get(debug::dump_profile))
            .route("/debug/memory", get(debug::memory))
            .route("/debug/memory/history", get(debug::history))
            .route("/debug/profiling", post(debug::profiling))
            .route("/debug/heap_growth", get(debug::heap_growth))
            .route("/debug/heap_baseline", post(debug::heap_baseline));
        #[cfg(feature = "leak-demo")]
        {
            r = r.route("/debug/leak", post(debug::leak));
        }
    }
    r.route_layer(middleware::from_fn_with_state((state.clone(), routes), guard))
        .route_layer(middleware::map_response_with_state(state.clone(), accept_ch))
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(middleware::from_fn(refuse_loops))
        .layer(middleware::map_response(json_rejections))
        .layer(middleware::from_fn_with_state(state.clone(), observe::observe))
        .layer(CatchPanicLayer::custom(|_| {
            tracing::error!("a request handler panicked");
            ApiError::internal().into_response()
        }))
        .with_state(state)
}

/// With `client_hints` on, every image response asks for the hints
/// (`Accept-CH`), and so do the pages (browsers honour it on a document,
/// then send the hints with that page's image requests to this origin).
async fn accept_ch(State(state): State<AppState>, mut response: Response) -> Response {
    if state.settings.client_hints
        && response
            .headers()
            .get(axum::http::header::CONTENT_TYPE)
            .is_some_and(|t| t.as_bytes().starts_with(b"image/") || t.as_bytes().starts_with(b"text/html"))
    {
        response.headers_mut().insert(
            axum::http::HeaderName::from_static("accept-ch"),
            axum::http::HeaderValue::from_static(crate::service::delivery::ACCEPT_CH),
        );
    }
    response
}

/// How each route is guarded (`service::policy`). A route missing here is
/// admin-only until it is classified.
fn access_of(route: &str, method: &Method) -> Access {
    match route {
        "/" | "/healthz" | "/readyz" | "/version" | "/ui/assets/{name}" => Access::Open,
        "/metrics" => Access::Metrics,
        "/aliases" | "/ui" | "/ui/api/chain" => Access::Authoring,
        "/images/{id}" if method == Method::DELETE => Access::Admin,
        "/images/{id}" | "/images/{id}/info" | "/images/{id}/{alias}" => Access::Read,
        "/images" | "/info" | "/transform/{alias}" => Access::Upload,
        "/{*chain}" => Access::Chain,
        _ => Access::Admin,
    }
}

/// Asks the policy about every routed request before its handler runs (so
/// before a byte of its body is read); a verified signature parameter is
/// removed from the URL the handler sees.
async fn guard(
    State((state, routes)): State<(AppState, Routes)>,
    mut request: axum::extract::Request,
    next: middleware::Next,
) -> Response {
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map_or("", |m| m.as_str())
        .to_string();
    let access = access_of(&route, request.method());
    let peer = request.extensions().get::<ConnectInfo<SocketAddr>>().map(|c| c.0.ip());
    let caller = Caller {
        headers: request.headers(),
        peer,
    };
    match state
        .policy
        .check(access, routes == Routes::Admin, caller, request.uri())
    {
        Ok(None) => {}
        Ok(Some(uri)) => *request.uri_mut() = uri,
        Err(e) => return e.into_response(),
    }
    next.run(request).await
}

/// A request carrying this process's own `Via` pseudonym is one of its
/// downloads come back to it: 508, whatever the route (see
/// `fetch::via_pseudonym`).
async fn refuse_loops(request: axum::extract::Request, next: middleware::Next) -> Response {
    if crate::fetch::is_own_download(request.headers()) {
        return ApiError::new(
            StatusCode::LOOP_DETECTED,
            "request_loop",
            "this request is one of this service's own downloads: a download never reaches the service itself",
        )
        .into_response();
    }
    next.run(request).await
}

/// `GET /`: the playground when it is on, else what this service answers.
async fn index(playground: bool) -> Response {
    if playground {
        return axum::response::Redirect::to("/ui").into_response();
    }
    axum::Json(serde_json::json!({
        "service": "imaginator",
        "version": env!("CARGO_PKG_VERSION"),
        "routes": {
            "POST /images": "store an image (the body, or the multipart field `file`)",
            "GET /images/{id}": "the original",
            "GET /images/{id}/{alias}?params": "a cached rendition",
            "GET /images/{id}/info": "what the image is",
            "POST /transform/{alias}?params": "transform the body's image",
            "POST /info": "what the body's image is",
            "GET /aliases": "the aliases and their parameters",
            "GET /{chain}": "a chain of filters, e.g. /download(origin:a.jpg):resize(200,0)",
            "GET /healthz, /readyz, /version": "probes",
        },
    }))
    .into_response()
}

/// Every error is our JSON: axum's own extractor rejections (a wrong
/// Content-Type on a JSON route, malformed JSON, a bad query field) answer
/// plain text; they are rewritten here with a code for their status and
/// their text as the message.
async fn json_rejections(response: Response) -> Response {
    let status = response.status();
    let plain = response
        .headers()
        .get(axum::http::header::CONTENT_TYPE)
        .is_none_or(|t| t.as_bytes().starts_with(b"text/plain"));
    if !(status.is_client_error() || status.is_server_error()) || !plain {
        return response;
    }
    let (parts, body) = response.into_parts();
    let text = axum::body::to_bytes(body, 16 << 10).await.unwrap_or_default();
    let message = String::from_utf8_lossy(&text).trim().to_string();
    let code = match status {
        StatusCode::BAD_REQUEST => "bad_request",
        StatusCode::UNPROCESSABLE_ENTITY => "invalid_body",
        StatusCode::UNSUPPORTED_MEDIA_TYPE => "unsupported_media_type",
        StatusCode::PAYLOAD_TOO_LARGE => "body_too_large",
        StatusCode::NOT_FOUND => "not_found",
        StatusCode::METHOD_NOT_ALLOWED => "method_not_allowed",
        s if s.is_client_error() => "bad_request",
        _ => "internal",
    };
    let message = if message.is_empty() {
        status.canonical_reason().unwrap_or("error").to_string()
    } else {
        message
    };
    let mut rewritten = ApiError::new(status, code, message).into_response();
    // Keep what the first answer said besides its body (Allow, Retry-After...).
    for (name, value) in &parts.headers {
        if name != axum::http::header::CONTENT_TYPE && name != axum::http::header::CONTENT_LENGTH {
            rewritten.headers_mut().entry(name).or_insert(value.clone());
        }
    }
    rewritten
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
