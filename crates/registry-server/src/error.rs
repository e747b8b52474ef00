//! The distribution spec's error codes and their JSON form
//! (`{"errors":[{"code":…,"message":…,"detail":…}]}`): the one place that decides statuses.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use berth_content::ContentError;

/// The error codes of the OCI distribution spec (plus `RANGE_INVALID`, which distribution
/// uses for an out-of-order chunk).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Code {
    /// The blob is not known to the repository.
    BlobUnknown,
    /// An upload failed or its body did not match what it announced.
    BlobUploadInvalid,
    /// No such upload session.
    BlobUploadUnknown,
    /// A digest is malformed or does not match the content.
    DigestInvalid,
    /// A manifest references a blob or manifest the repository does not have.
    ManifestBlobUnknown,
    /// A manifest is not valid JSON or not a known manifest type.
    ManifestInvalid,
    /// No such manifest (tag or digest).
    ManifestUnknown,
    /// The repository name does not follow the grammar.
    NameInvalid,
    /// No such repository.
    NameUnknown,
    /// A size is wrong or over a limit.
    SizeInvalid,
    /// The operation is switched off (delete without `--delete-enabled`).
    Unsupported,
    /// Authentication is required.
    Unauthorized,
    /// Access was refused.
    Denied,
    /// The tag does not follow the grammar.
    TagInvalid,
    /// A `Range`/`Content-Range` cannot be satisfied.
    RangeInvalid,
    /// A pagination `n` is not a number.
    PaginationNumberInvalid,
    /// Anything else (storage failures).
    Unknown,
}

impl Code {
    /// The code's wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            Code::BlobUnknown => "BLOB_UNKNOWN",
            Code::BlobUploadInvalid => "BLOB_UPLOAD_INVALID",
            Code::BlobUploadUnknown => "BLOB_UPLOAD_UNKNOWN",
            Code::DigestInvalid => "DIGEST_INVALID",
            Code::ManifestBlobUnknown => "MANIFEST_BLOB_UNKNOWN",
            Code::ManifestInvalid => "MANIFEST_INVALID",
            Code::ManifestUnknown => "MANIFEST_UNKNOWN",
            Code::NameInvalid => "NAME_INVALID",
            Code::NameUnknown => "NAME_UNKNOWN",
            Code::SizeInvalid => "SIZE_INVALID",
            Code::Unsupported => "UNSUPPORTED",
            Code::Unauthorized => "UNAUTHORIZED",
            Code::Denied => "DENIED",
            Code::TagInvalid => "TAG_INVALID",
            Code::RangeInvalid => "RANGE_INVALID",
            Code::PaginationNumberInvalid => "PAGINATION_NUMBER_INVALID",
            Code::Unknown => "UNKNOWN",
        }
    }

    /// The HTTP status the code is sent with.
    pub fn status(self) -> StatusCode {
        match self {
            Code::BlobUnknown
            | Code::BlobUploadUnknown
            | Code::ManifestUnknown
            | Code::NameUnknown => StatusCode::NOT_FOUND,
            Code::Unsupported => StatusCode::METHOD_NOT_ALLOWED,
            Code::Unauthorized => StatusCode::UNAUTHORIZED,
            Code::Denied => StatusCode::FORBIDDEN,
            Code::RangeInvalid => StatusCode::RANGE_NOT_SATISFIABLE,
            Code::Unknown => StatusCode::INTERNAL_SERVER_ERROR,
            _ => StatusCode::BAD_REQUEST,
        }
    }
}

/// A registry error: a code, a message for people and an optional detail.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{}: {message}", code.as_str())]
pub struct RegistryError {
    /// What went wrong, as the spec names it.
    pub code: Code,
    /// A human-readable message.
    pub message: String,
    /// Machine-readable detail (the digest, the name, …).
    pub detail: Option<serde_json::Value>,
    /// Overrides [`Code::status`] (a manifest over the size limit is 413).
    pub status: Option<StatusCode>,
}

impl RegistryError {
    /// An error with a message and no detail.
    pub fn new(code: Code, message: impl Into<String>) -> Self {
        RegistryError {
            code,
            message: message.into(),
            detail: None,
            status: None,
        }
    }

    /// Adds a detail string.
    pub fn detail(mut self, detail: impl Into<String>) -> Self {
        self.detail = Some(serde_json::Value::String(detail.into()));
        self
    }

    /// Sends the error with another status than its code's.
    pub fn with_status(mut self, status: StatusCode) -> Self {
        self.status = Some(status);
        self
    }

    /// A storage failure; the message is logged and sent.
    pub fn internal(message: impl std::fmt::Display) -> Self {
        tracing::error!("registry storage: {message}");
        RegistryError::new(Code::Unknown, message.to_string())
    }
}

impl From<ContentError> for RegistryError {
    fn from(e: ContentError) -> Self {
        match e {
            ContentError::NotFound(d) => {
                RegistryError::new(Code::BlobUnknown, "blob unknown to registry")
                    .detail(d.to_string())
            }
            ContentError::InvalidDigest(d) => {
                RegistryError::new(Code::DigestInvalid, d.to_string())
            }
            ContentError::DigestMismatch { expected, actual } => RegistryError::new(
                Code::DigestInvalid,
                format!("provided digest {expected} did not match uploaded content {actual}"),
            )
            .detail(expected.to_string()),
            ContentError::SizeMismatch { .. } => {
                RegistryError::new(Code::SizeInvalid, e.to_string())
            }
            ContentError::IngestLocked(_) => RegistryError::new(
                Code::BlobUploadInvalid,
                "another request is writing to this upload",
            ),
            other => RegistryError::internal(other),
        }
    }
}

impl From<std::io::Error> for RegistryError {
    fn from(e: std::io::Error) -> Self {
        RegistryError::internal(e)
    }
}

impl IntoResponse for RegistryError {
    fn into_response(self) -> Response {
        let status = self.status.unwrap_or_else(|| self.code.status());
        let mut entry = serde_json::json!({ "code": self.code.as_str(), "message": self.message });
        if let Some(detail) = self.detail {
            entry["detail"] = detail;
        }
        let body = serde_json::json!({ "errors": [entry] }).to_string();
        let mut response = (status, body).into_response();
        response.headers_mut().insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        );
        response
    }
}

/// Shorthand for handler results.
pub type Result<T, E = RegistryError> = std::result::Result<T, E>;
