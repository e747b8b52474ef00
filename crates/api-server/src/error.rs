//! [`ApiError`]: the one conversion from an error to an HTTP response.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use berth_api_types::ErrorResponse;
use berth_errdefs::{Category, HasCategory};

/// An error on its way to the client: a category (which decides the status, through
/// [`Category::http_status`]) and the message Docker would send.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiError {
    /// Decides the status code.
    pub category: Category,
    /// The `message` of the JSON body.
    pub message: String,
}

impl ApiError {
    /// An error with an explicit category and message.
    pub fn new(category: Category, message: impl Into<String>) -> ApiError {
        ApiError {
            category,
            message: message.into(),
        }
    }

    /// `400` with `message`.
    pub fn invalid(message: impl Into<String>) -> ApiError {
        ApiError::new(Category::InvalidParameter, message)
    }
}

impl<E: HasCategory + std::error::Error> From<E> for ApiError {
    fn from(error: E) -> ApiError {
        ApiError::new(error.category(), error.to_string())
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status = StatusCode::from_u16(self.category.http_status())
            .unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        if status == StatusCode::NOT_MODIFIED {
            // A 304 has no body by definition; the CLI treats it as success.
            return status.into_response();
        }
        if status.is_server_error() {
            tracing::warn!(status = status.as_u16(), "{}", self.message);
        }
        json_response(
            status,
            &ErrorResponse {
                message: self.message,
            },
        )
    }
}

/// A JSON response the way Go's encoder writes it: `application/json` and a trailing `\n`.
pub(crate) fn json_response<T: serde::Serialize>(status: StatusCode, value: &T) -> Response {
    match serde_json::to_vec(value) {
        Ok(mut body) => {
            body.push(b'\n');
            let mut response = (status, body).into_response();
            response.headers_mut().insert(
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/json"),
            );
            response
        }
        Err(e) => {
            tracing::error!("cannot encode a response: {e}");
            StatusCode::INTERNAL_SERVER_ERROR.into_response()
        }
    }
}
