//! The one error type at the HTTP edge: a status, a stable snake_case code and
//! a public message, rendered as `{"error":{"code","message"}}`. Internal
//! detail is logged here and never sent to the client. Every conversion
//! from a module's error into it lives here, one place per source.

use crate::fetch::FetchError;
use crate::memory::profile::ProfileError;
use crate::pipeline::alias::ParamError;
use crate::pipeline::chain::ChainError;
use crate::render::{JobError, SubmitError};
use crate::storage::StoreError;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};

#[derive(Debug, Clone)]
pub struct ApiError {
    pub status: StatusCode,
    pub code: &'static str,
    pub message: String,
    /// Seconds for `Retry-After` (503 only).
    pub retry_after: Option<u32>,
    /// Answer with `Connection: close`: the request's body was not read (the
    /// connection cannot carry another request; it is closed after a bounded
    /// drain of what the client still sends, see `server`).
    pub close: bool,
    /// Answer with `WWW-Authenticate: Bearer` (a 401: a token is needed).
    pub bearer_challenge: bool,
}

impl ApiError {
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> ApiError {
        ApiError {
            status,
            code,
            message: message.into(),
            retry_after: None,
            close: false,
            bearer_challenge: false,
        }
    }

    /// The same error, answered with `Connection: close`.
    pub fn closing(self) -> ApiError {
        ApiError { close: true, ..self }
    }

    pub fn not_found(message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::NOT_FOUND, "not_found", message)
    }

    pub fn internal() -> ApiError {
        ApiError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal_error",
            "the server failed to process this request; it has been logged",
        )
    }

    pub fn overloaded(retry_after: u32) -> ApiError {
        ApiError {
            retry_after: Some(retry_after),
            ..ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "overloaded",
                "all image workers are busy; retry after the indicated delay",
            )
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = serde_json::json!({"error": {"code": self.code, "message": self.message}});
        let mut response = (self.status, axum::Json(body)).into_response();
        if let Some(secs) = self.retry_after {
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(secs));
        }
        if self.bearer_challenge {
            response
                .headers_mut()
                .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        }
        if self.close {
            response
                .headers_mut()
                .insert(header::CONNECTION, HeaderValue::from_static("close"));
        }
        response
    }
}

/// Failures of the input itself are remembered by the result cache for a
/// minute: the same request fails again at once instead of decoding the same
/// poison again. Overload, deadlines and internal errors are not.
impl crate::cache::Failure for ApiError {
    fn remember_for(&self) -> Option<std::time::Duration> {
        matches!(self.status.as_u16(), 413 | 415 | 422).then_some(std::time::Duration::from_secs(60))
    }
}

impl From<ParamError> for ApiError {
    fn from(e: ParamError) -> ApiError {
        ApiError::new(StatusCode::BAD_REQUEST, "invalid_parameter", e.to_string())
    }
}

impl From<JobError> for ApiError {
    fn from(e: JobError) -> ApiError {
        match e {
            JobError::Decode(detail) => {
                tracing::info!(%detail, "undecodable image");
                ApiError::new(
                    StatusCode::UNPROCESSABLE_ENTITY,
                    "undecodable_image",
                    "the image is damaged or cannot be decoded",
                )
            }
            JobError::TooLarge(message) => ApiError::new(StatusCode::PAYLOAD_TOO_LARGE, "image_too_large", message),
            JobError::Deadline => ApiError::new(
                StatusCode::GATEWAY_TIMEOUT,
                "deadline_exceeded",
                "the image could not be processed within the time limit",
            ),
            JobError::Invalid(message) => ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, "invalid_operation", message),
            JobError::Metadata(message) => {
                ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, "metadata_too_large", message)
            }
            JobError::TooExpensive(message) => {
                ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, "operation_too_expensive", message)
            }
            JobError::Busy(detail) => {
                tracing::warn!(%detail, "ImageMagick's pixel-cache budget is spent by concurrent jobs");
                ApiError {
                    retry_after: Some(1),
                    ..ApiError::new(
                        StatusCode::SERVICE_UNAVAILABLE,
                        "overloaded",
                        "ImageMagick's memory budget is in use by other jobs; retry after the indicated delay",
                    )
                }
            }
            JobError::Failed(detail) => {
                tracing::error!(%detail, "ImageMagick failed on a decodable image");
                ApiError::internal()
            }
        }
    }
}

impl ApiError {
    pub fn from_submit(e: SubmitError, retry_after: u32) -> ApiError {
        match e {
            SubmitError::Overloaded => ApiError::overloaded(retry_after),
            SubmitError::ShuttingDown => ApiError {
                retry_after: Some(retry_after),
                ..ApiError::new(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "shutting_down",
                    "the service is shutting down",
                )
            },
        }
    }
}

/// A storage failure: 503 with `Retry-After` (the disk or the bucket is
/// failing or unreachable: a retry, maybe on another replica, may succeed),
/// or 500 when what is stored is damaged.
impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> ApiError {
        tracing::error!(error = %e, "storage failed");
        match e {
            StoreError::Meta(_) => ApiError::internal(),
            _ => {
                let mut error = ApiError::new(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "storage_unavailable",
                    "the image store is unreachable or failing; retry shortly",
                );
                error.retry_after = Some(1);
                error
            }
        }
    }
}

impl From<ChainError> for ApiError {
    fn from(e: ChainError) -> ApiError {
        match e {
            ChainError::BuiltinDisabled(..) => {
                ApiError::new(StatusCode::FORBIDDEN, "builtin_filter_forbidden", e.to_string())
            }
            ChainError::Unknown(..) => ApiError::new(StatusCode::NOT_FOUND, "unknown_filter", e.to_string()),
            ChainError::Invalid(_) => ApiError::new(StatusCode::BAD_REQUEST, "invalid_parameter", e.to_string()),
            ChainError::NoSource | ChainError::SecondSource => {
                ApiError::new(StatusCode::BAD_REQUEST, "invalid_chain", e.to_string())
            }
        }
    }
}

impl From<FetchError> for ApiError {
    fn from(e: FetchError) -> ApiError {
        match e {
            FetchError::Forbidden(m) => ApiError::new(StatusCode::FORBIDDEN, "download_forbidden", m),
            FetchError::BadUrl(m) => ApiError::new(StatusCode::BAD_REQUEST, "invalid_url", m),
            FetchError::TooLarge(_) => {
                ApiError::new(StatusCode::PAYLOAD_TOO_LARGE, "download_too_large", e.to_string())
            }
            FetchError::Timeout(_) => ApiError::new(StatusCode::GATEWAY_TIMEOUT, "download_timeout", e.to_string()),
            FetchError::Busy => ApiError {
                retry_after: Some(1),
                ..ApiError::new(StatusCode::SERVICE_UNAVAILABLE, "overloaded", e.to_string())
            },
            // The origin says the image is not there (404, 410): so do we.
            // Other statuses are the gateway's failure.
            FetchError::Status(code @ (404 | 410), m) => {
                tracing::info!(detail = %m, "download: the origin has no such image");
                ApiError::new(
                    StatusCode::from_u16(code).unwrap_or(StatusCode::NOT_FOUND),
                    "source_not_found",
                    format!("the origin answered {code}: no such source image"),
                )
            }
            FetchError::Upstream(m) | FetchError::Status(_, m) => {
                tracing::info!(detail = %m, "download failed");
                ApiError::new(
                    StatusCode::BAD_GATEWAY,
                    "download_failed",
                    "the source image could not be downloaded",
                )
            }
        }
    }
}

impl From<ProfileError> for ApiError {
    fn from(e: ProfileError) -> ApiError {
        match e {
            ProfileError::Disabled => ApiError::new(StatusCode::CONFLICT, "profiling_disabled", e.to_string()),
            other => {
                tracing::error!(error = %other, "heap profile failed");
                ApiError::internal()
            }
        }
    }
}
