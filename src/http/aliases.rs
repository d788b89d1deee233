//! `GET /aliases`: every alias with its description, parameters and output.

use crate::service::AppState;
use axum::Json;
use axum::extract::State;
use serde_json::{Value, json};

pub async fn list(State(state): State<AppState>) -> Json<Value> {
    let aliases: Vec<Value> = state
        .aliases
        .aliases
        .values()
        .map(|a| {
            json!({
                "name": a.name,
                "description": a.description,
                "chain": a.chain.to_string(),
                "params": a.params,
                "output": a.output,
            })
        })
        .collect();
    Json(json!({ "aliases": aliases }))
}
