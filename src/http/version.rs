//! `GET /version`: what is running, how ImageMagick was built, which coders
//! the policy allows, the policy itself and the limits in force.

use crate::magick::{self, policy};
use crate::service::AppState;
use axum::Json;
use axum::extract::State;
use serde_json::{Value, json};

pub async fn version(State(state): State<AppState>) -> Json<Value> {
    let build = policy::build_info();
    let features: Vec<&str> = build.features.split_whitespace().collect();
    Json(json!({
        "imaginator": env!("CARGO_PKG_VERSION"),
        "imagemagick": {
            "version": build.version,
            "quantum_depth": build.quantum_depth,
            "hdri": features.contains(&"HDRI"),
            "openmp": features.contains(&"OpenMP"),
            "features": features,
            "delegates": build.delegates.split_whitespace().collect::<Vec<_>>(),
            "resource_limits": magick::resource_limits(),
        },
        "coders": policy::ALLOWED_CODERS.iter().filter(|c| policy::coder_readable(c)).collect::<Vec<_>>(),
        "policy": policy::POLICY,
        "limits": state.settings.limits,
        "upload_formats": state.settings.upload_formats,
    }))
}
