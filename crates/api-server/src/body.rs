//! [`JsonBody`]: Docker's checks on a JSON request body.

use axum::extract::{FromRequest, Request};
use axum::http::header;
use bytes::Bytes;
use serde::de::DeserializeOwned;

use crate::error::ApiError;

/// A JSON request body, checked as Docker checks it: a body whose Content-Type is missing or
/// other than `application/json` is refused, and malformed JSON is a 400 with the parser's message.
/// `None` when the request has no body.
#[derive(Debug)]
pub struct JsonBody<T>(pub Option<T>);

impl<S: Send + Sync, T: DeserializeOwned> FromRequest<S> for JsonBody<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, ApiError> {
        let content_type = req
            .headers()
            .get(header::CONTENT_TYPE)
            .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned());
        let bytes = Bytes::from_request(req, state)
            .await
            .map_err(|e| ApiError::invalid(e.body_text()))?;
        if bytes.is_empty() {
            return Ok(JsonBody(None));
        }
        // With a body, a missing Content-Type is as wrong as a wrong one (dockerd's rule).
        let content_type = content_type.unwrap_or_default();
        if !is_json(&content_type) {
            return Err(ApiError::invalid(format!(
                "Content-Type specified ({content_type}) must be 'application/json'"
            )));
        }
        serde_json::from_slice(&bytes)
            .map(|value| JsonBody(Some(value)))
            .map_err(|e| ApiError::invalid(e.to_string()))
    }
}

/// `application/json`, with or without parameters such as `charset`.
fn is_json(content_type: &str) -> bool {
    content_type
        .split(';')
        .next()
        .is_some_and(|media| media.trim().eq_ignore_ascii_case("application/json"))
}

#[cfg(test)]
mod tests {
    use super::is_json;

    #[test]
    fn json_content_types() {
        assert!(is_json("application/json"));
        assert!(is_json("application/json; charset=utf-8"));
        assert!(!is_json("text/plain"));
        assert!(!is_json("application/x-www-form-urlencoded"));
    }
}
