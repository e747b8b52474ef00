//! Blob uploads: `POST /v2/<name>/blobs/uploads/` (session, monolithic `?digest=`, or
//! `?mount=&from=`), then `PATCH` chunks, `PUT ?digest=` to finish, `GET` for the offset,
//! `DELETE` to cancel. A blob becomes visible only once its digest is verified.

use std::sync::Arc;

use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use berth_content::{Digest, Writer};

use super::{DOCKER_CONTENT_DIGEST, DOCKER_UPLOAD_UUID, Req, parse_digest, set};
use crate::Registry;
use crate::error::{Code, RegistryError, Result};
use crate::names::{RepoName, new_upload_id};
use crate::upload::{blocking, stream_into};

pub(super) async fn start(reg: Arc<Registry>, name: RepoName, req: Req) -> Result<Response> {
    if let Some(mount) = req.query("mount") {
        let digest = parse_digest(mount)?;
        let from = req.query("from").map(RepoName::parse).transpose()?;
        if mounted(&reg, &name, &digest, from).await? {
            return Ok(blob_created(&name, &digest));
        }
        // Unknown to the source: the client uploads instead, in the session we open.
    } else if let Some(digest) = req.query("digest") {
        let digest = parse_digest(digest)?;
        return monolithic(reg, name, digest, req).await;
    }
    let id = new_upload_id()?;
    {
        let (reg, name, id) = (Arc::clone(&reg), name.clone(), id.clone());
        blocking(move || Ok(reg.links.create_upload(&name, &id)?)).await?;
    }
    Ok(upload_progress(StatusCode::ACCEPTED, &name, &id, 0))
}

/// Links a blob the source repository has (or, without `from`, any stored blob: every
/// repository is readable by every user of this registry).
async fn mounted(
    reg: &Arc<Registry>,
    name: &RepoName,
    digest: &Digest,
    from: Option<RepoName>,
) -> Result<bool> {
    let (reg, name, digest) = (Arc::clone(reg), name.clone(), digest.clone());
    blocking(move || {
        let visible = match &from {
            Some(from) => reg.links.has_blob(from, &digest),
            None => true,
        };
        if !visible || !reg.store.exists(&digest) {
            return Ok(false);
        }
        reg.links.link_blob(&name, &digest)?;
        Ok(true)
    })
    .await
}

async fn monolithic(
    reg: Arc<Registry>,
    name: RepoName,
    digest: Digest,
    req: Req,
) -> Result<Response> {
    let writer = {
        let (reg, digest) = (Arc::clone(&reg), digest.clone());
        blocking(move || Ok(reg.store.writer(Some(digest), None)?)).await?
    };
    let ingest_ref = writer.ingest_ref().to_owned();
    let result = match stream_into(writer, req.body).await {
        Ok((writer, _)) => commit_and_link(&reg, &name, writer).await,
        Err(e) => Err(e),
    };
    if result.is_err() {
        // No session to resume a monolithic upload from: drop what arrived.
        let reg = Arc::clone(&reg);
        blocking(move || Ok(reg.store.abort(&ingest_ref)?)).await?;
    }
    result?;
    Ok(blob_created(&name, &digest))
}

async fn commit_and_link(reg: &Arc<Registry>, name: &RepoName, writer: Writer) -> Result<Digest> {
    let (reg, name) = (Arc::clone(reg), name.clone());
    blocking(move || {
        let digest = writer.commit()?;
        reg.links.link_blob(&name, &digest)?;
        Ok(digest)
    })
    .await
}

/// Verifies a session's bytes in the staging store, then promotes them to a served blob
/// only if they match the digest the client named; otherwise they are dropped.
async fn publish_session(
    reg: &Arc<Registry>,
    name: &RepoName,
    writer: Writer,
    expected: &Digest,
) -> Result<()> {
    let (reg, name, expected) = (Arc::clone(reg), name.clone(), expected.clone());
    blocking(move || {
        let actual = writer.commit()?;
        if actual != expected {
            let _ = reg.staging.delete(&actual); // already gone if a twin upload took it
            return Err(berth_content::ContentError::DigestMismatch { expected, actual }.into());
        }
        crate::storage::promote(&reg.staging, &reg.store, &actual)?;
        if !reg.store.exists(&actual) {
            return Err(RegistryError::internal(format!(
                "blob {actual} vanished while being published"
            )));
        }
        Ok(reg.links.link_blob(&name, &actual)?)
    })
    .await
}

pub(super) async fn status(reg: Arc<Registry>, name: RepoName, id: String) -> Result<Response> {
    session_exists(&reg, &name, &id).await?;
    let writer = reg.take_writer(&id, None).await?;
    let offset = writer.offset();
    reg.put_writer(&id, writer);
    Ok(upload_progress(StatusCode::NO_CONTENT, &name, &id, offset))
}

pub(super) async fn patch(
    reg: Arc<Registry>,
    name: RepoName,
    id: String,
    req: Req,
) -> Result<Response> {
    session_exists(&reg, &name, &id).await?;
    let writer = reg.take_writer(&id, None).await?;
    let expected_len = match check_content_range(&req, writer.offset()) {
        Ok(len) => len,
        Err(e) => {
            reg.put_writer(&id, writer);
            return Err(e);
        }
    };
    let (writer, written) = stream_into(writer, req.body).await?;
    let offset = writer.offset();
    reg.put_writer(&id, writer);
    if expected_len.is_some_and(|len| len != written) {
        return Err(RegistryError::new(
            Code::BlobUploadInvalid,
            format!(
                "Content-Range announced {} bytes, body had {written}",
                expected_len.unwrap_or(0)
            ),
        ));
    }
    Ok(upload_progress(StatusCode::ACCEPTED, &name, &id, offset))
}

pub(super) async fn finish(
    reg: Arc<Registry>,
    name: RepoName,
    id: String,
    req: Req,
) -> Result<Response> {
    session_exists(&reg, &name, &id).await?;
    let digest = parse_digest(req.query("digest").ok_or_else(|| {
        RegistryError::new(
            Code::DigestInvalid,
            "the digest query parameter is required",
        )
    })?)?;
    let writer = reg.take_writer(&id, Some(&digest)).await?;
    check_content_range(&req, writer.offset())?;
    let (writer, _) = stream_into(writer, req.body).await?;
    let committed = publish_session(&reg, &name, writer, &digest).await;
    // Verified and stored, or thrown away on a mismatch: the session is over either way.
    close_session(&reg, &name, &id).await?;
    committed?;
    Ok(blob_created(&name, &digest))
}

pub(super) async fn cancel(reg: Arc<Registry>, name: RepoName, id: String) -> Result<Response> {
    session_exists(&reg, &name, &id).await?;
    close_session(&reg, &name, &id).await?;
    let mut response = StatusCode::NO_CONTENT.into_response();
    set(&mut response, header::CONTENT_LENGTH, "0");
    Ok(response)
}

async fn session_exists(reg: &Arc<Registry>, name: &RepoName, id: &str) -> Result<()> {
    let (reg, name, id) = (Arc::clone(reg), name.clone(), id.to_owned());
    blocking(move || {
        if reg.links.upload_exists(&name, &id) {
            Ok(())
        } else {
            Err(
                RegistryError::new(Code::BlobUploadUnknown, "blob upload unknown to registry")
                    .detail(id),
            )
        }
    })
    .await
}

async fn close_session(reg: &Arc<Registry>, name: &RepoName, id: &str) -> Result<()> {
    reg.forget_writer(id);
    let (reg, name, id) = (Arc::clone(reg), name.clone(), id.to_owned());
    blocking(move || {
        reg.staging.abort(&Registry::ingest_ref(&id))?;
        Ok(reg.links.remove_upload(&name, &id)?)
    })
    .await
}

/// Checks `Content-Range: <start>-<end>` against the session's offset (416 when a chunk is
/// out of order or repeated) and against `Content-Length`; returns the announced length.
fn check_content_range(req: &Req, offset: u64) -> Result<Option<u64>> {
    let Some(value) = req.header(&header::CONTENT_RANGE) else {
        return Ok(None);
    };
    let out_of_order = || {
        RegistryError::new(
            Code::RangeInvalid,
            "Content-Range does not continue the upload",
        )
        .detail(format!("upload is at offset {offset}, got {value:?}"))
    };
    let spec = value.trim();
    let spec = spec
        .strip_prefix("bytes")
        .map(|s| s.trim_start_matches([' ', '=']))
        .unwrap_or(spec);
    let spec = spec.split('/').next().unwrap_or(spec);
    let (start, end) = spec.split_once('-').ok_or_else(out_of_order)?;
    let (start, end): (u64, u64) = match (start.trim().parse(), end.trim().parse()) {
        (Ok(s), Ok(e)) if e >= s => (s, e),
        _ => return Err(out_of_order()),
    };
    if start != offset {
        return Err(out_of_order());
    }
    let len = end - start + 1;
    let content_length = req
        .header(&header::CONTENT_LENGTH)
        .and_then(|v| v.parse::<u64>().ok());
    if content_length.is_some_and(|cl| cl != len) {
        return Err(RegistryError::new(
            Code::RangeInvalid,
            "Content-Range and Content-Length disagree",
        ));
    }
    Ok(Some(len))
}

fn upload_progress(status: StatusCode, name: &RepoName, id: &str, offset: u64) -> Response {
    let mut response = status.into_response();
    set(
        &mut response,
        header::LOCATION,
        &format!("/v2/{name}/blobs/uploads/{id}"),
    );
    set(
        &mut response,
        header::RANGE,
        &format!("0-{}", offset.saturating_sub(1)),
    );
    set(&mut response, DOCKER_UPLOAD_UUID, id);
    set(&mut response, header::CONTENT_LENGTH, "0");
    response
}

fn blob_created(name: &RepoName, digest: &Digest) -> Response {
    let mut response = StatusCode::CREATED.into_response();
    set(
        &mut response,
        header::LOCATION,
        &format!("/v2/{name}/blobs/{digest}"),
    );
    set(&mut response, DOCKER_CONTENT_DIGEST, &digest.to_string());
    set(&mut response, header::CONTENT_LENGTH, "0");
    response
}
