//! `GET`/`HEAD`/`DELETE /v2/<name>/blobs/<digest>`, with single-range reads.

use std::io::SeekFrom;
use std::sync::Arc;

use axum::body::Body;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use berth_content::Digest;
use bytes::BytesMut;
use tokio::io::{AsyncReadExt, AsyncSeekExt};

use super::{DOCKER_CONTENT_DIGEST, Req, delete_guard, parse_digest, set};
use crate::Registry;
use crate::error::{Code, RegistryError, Result};
use crate::names::RepoName;
use crate::upload::blocking;

const READ_CHUNK: usize = 256 << 10;

pub(super) async fn get(
    reg: Arc<Registry>,
    name: RepoName,
    digest: &str,
    req: Req,
) -> Result<Response> {
    let digest = parse_digest(digest)?;
    let (file, size) = open_linked(reg, name, digest.clone()).await?;
    let range = match req.header(&header::RANGE) {
        None => None,
        Some(spec) => match parse_range(spec, size) {
            Some(r) => Some(r),
            None => return Ok(unsatisfiable(size)),
        },
    };
    let (start, len) = range.unwrap_or((0, size));
    let mut response = if req.method == axum::http::Method::HEAD {
        StatusCode::OK.into_response()
    } else {
        let body = Body::from_stream(read_stream(file, start, len).await?);
        (StatusCode::OK, body).into_response()
    };
    if range.is_some() {
        *response.status_mut() = StatusCode::PARTIAL_CONTENT;
        let end = (start + len).saturating_sub(1);
        let content_range = format!("bytes {start}-{end}/{size}");
        set(&mut response, header::CONTENT_RANGE, &content_range);
    }
    set(&mut response, header::CONTENT_LENGTH, &len.to_string());
    set(
        &mut response,
        header::CONTENT_TYPE,
        "application/octet-stream",
    );
    set(&mut response, header::ACCEPT_RANGES, "bytes");
    set(&mut response, DOCKER_CONTENT_DIGEST, &digest.to_string());
    set(&mut response, header::ETAG, &format!("\"{digest}\""));
    Ok(response)
}

/// Opens a blob the repository links, with its size; `BLOB_UNKNOWN` otherwise.
async fn open_linked(
    reg: Arc<Registry>,
    name: RepoName,
    digest: Digest,
) -> Result<(std::fs::File, u64)> {
    blocking(move || {
        let unknown = || {
            RegistryError::new(Code::BlobUnknown, "blob unknown to registry")
                .detail(digest.to_string())
        };
        if !reg.links.has_blob(&name, &digest) {
            return Err(unknown());
        }
        match reg.store.get(&digest) {
            Ok(file) => {
                let size = file.metadata()?.len();
                Ok((file, size))
            }
            Err(e) if e.is_not_found() => Err(unknown()),
            Err(e) => Err(e.into()),
        }
    })
    .await
}

fn unsatisfiable(size: u64) -> Response {
    let mut response =
        RegistryError::new(Code::RangeInvalid, "requested range not satisfiable").into_response();
    set(
        &mut response,
        header::CONTENT_RANGE,
        &format!("bytes */{size}"),
    );
    response
}

/// One `bytes=` range (`a-b`, `a-`, `-n`) as (start, length) within `size`; `None` when it
/// is malformed, multiple, or outside the blob (all answered 416).
fn parse_range(spec: &str, size: u64) -> Option<(u64, u64)> {
    let spec = spec.trim().strip_prefix("bytes=")?;
    if spec.contains(',') {
        return None;
    }
    let (first, last) = spec.split_once('-')?;
    let (first, last) = (first.trim(), last.trim());
    if first.is_empty() {
        let suffix: u64 = last.parse().ok()?;
        if suffix == 0 || size == 0 {
            return None;
        }
        let len = suffix.min(size);
        return Some((size - len, len));
    }
    let start: u64 = first.parse().ok()?;
    let end = if last.is_empty() {
        size.checked_sub(1)?
    } else {
        last.parse::<u64>().ok()?.min(size.checked_sub(1)?)
    };
    if start >= size || end < start {
        return None;
    }
    Some((start, end - start + 1))
}

/// The bytes `start..start+len` of a blob, read as the client consumes them.
async fn read_stream(
    file: std::fs::File,
    start: u64,
    len: u64,
) -> Result<impl futures_util::Stream<Item = std::io::Result<bytes::Bytes>>> {
    let mut file = tokio::fs::File::from_std(file);
    file.seek(SeekFrom::Start(start)).await?;
    let reader = Some(file.take(len));
    Ok(futures_util::stream::unfold(reader, |reader| async move {
        let mut reader = reader?;
        let mut buf = BytesMut::with_capacity(READ_CHUNK);
        match reader.read_buf(&mut buf).await {
            Ok(0) => None,
            Ok(_) => Some((Ok(buf.freeze()), Some(reader))),
            Err(e) => Some((Err(e), None)),
        }
    }))
}

pub(super) async fn delete(reg: Arc<Registry>, name: RepoName, digest: &str) -> Result<Response> {
    delete_guard(&reg)?;
    let digest = parse_digest(digest)?;
    let detail = digest.to_string();
    // Only the repository's link goes: the blob may be shared, and `gc` removes it once
    // nothing references it.
    let removed = blocking(move || Ok(reg.links.unlink_blob(&name, &digest)?)).await?;
    if !removed {
        return Err(
            RegistryError::new(Code::BlobUnknown, "blob unknown to registry").detail(detail),
        );
    }
    let mut response = StatusCode::ACCEPTED.into_response();
    set(&mut response, header::CONTENT_LENGTH, "0");
    Ok(response)
}

#[cfg(test)]
mod tests {
    use super::parse_range;

    #[test]
    fn ranges() {
        assert_eq!(parse_range("bytes=0-9", 100), Some((0, 10)));
        assert_eq!(parse_range("bytes=90-", 100), Some((90, 10)));
        assert_eq!(parse_range("bytes=-10", 100), Some((90, 10)));
        assert_eq!(parse_range("bytes=-1000", 100), Some((0, 100)));
        assert_eq!(parse_range("bytes=50-1000", 100), Some((50, 50)));
        for bad in [
            "bytes=100-",
            "bytes=5-4",
            "bytes=0-1,3-4",
            "items=0-1",
            "bytes=-0",
            "bytes=x-",
        ] {
            assert_eq!(parse_range(bad, 100), None, "{bad}");
        }
    }
}
