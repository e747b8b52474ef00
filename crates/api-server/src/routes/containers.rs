//! Container routes. Only the request checks exist yet: the containers service is not in
//! the engine, so a well-formed create is answered 501.

use axum::Router;
use axum::routing::post;
use berth_errdefs::Category;
use serde_json::{Map, Value};

use crate::Backend;
use crate::body::JsonBody;
use crate::error::ApiError;

pub(super) fn routes() -> Router<Backend> {
    Router::new().route("/containers/create", post(create))
}

async fn create(JsonBody(config): JsonBody<Map<String, Value>>) -> ApiError {
    match config {
        None => ApiError::invalid("config cannot be empty in order to create a container"),
        Some(_) => ApiError::new(
            Category::NotImplemented,
            "berth: creating containers is not implemented yet",
        ),
    }
}
