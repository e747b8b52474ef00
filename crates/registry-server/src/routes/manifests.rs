//! `GET`/`HEAD`/`PUT`/`DELETE /v2/<name>/manifests/<tag-or-digest>`.

use std::io::Write;
use std::sync::Arc;

use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use berth_content::Digest;
use futures_util::StreamExt;
use serde_json::json;

use super::{DOCKER_CONTENT_DIGEST, OCI_SUBJECT, Req, delete_guard, parse_digest, set};
use crate::Registry;
use crate::error::{Code, RegistryError, Result};
use crate::manifest::{self, MAX_MANIFEST_SIZE, Manifest, Reference};
use crate::names::{RepoName, validate_tag};
use crate::upload::blocking;

/// A manifest reference from the URL: a digest if it has a `:` (tags cannot).
enum Target {
    Tag(String),
    Digest(Digest),
}

fn target(reference: &str) -> Result<Target> {
    if reference.contains(':') {
        Ok(Target::Digest(parse_digest(reference)?))
    } else {
        validate_tag(reference)?;
        Ok(Target::Tag(reference.to_owned()))
    }
}

fn unknown(reference: impl Into<String>) -> RegistryError {
    RegistryError::new(Code::ManifestUnknown, "manifest unknown to registry").detail(reference)
}

pub(super) async fn get(
    reg: Arc<Registry>,
    name: RepoName,
    reference: String,
    req: Req,
) -> Result<Response> {
    let target = target(&reference)?;
    let accept: Vec<String> = req
        .headers
        .get_all(header::ACCEPT)
        .iter()
        .filter_map(|v| v.to_str().ok().map(str::to_owned))
        .collect();
    let (digest, media_type, body) = blocking(move || {
        let digest = match target {
            Target::Digest(d) => d,
            Target::Tag(tag) => reg
                .links
                .tag(&name, &tag)?
                .ok_or_else(|| unknown(&reference))?,
        };
        let media_type = reg
            .links
            .revision_media_type(&name, &digest)?
            .ok_or_else(|| unknown(&reference))?;
        let accept: Vec<&str> = accept.iter().map(String::as_str).collect();
        if !manifest::accepts(&accept, &media_type) {
            return Err(unknown(&reference).detail(format!(
                "manifest is {media_type}, which the Accept header does not allow"
            )));
        }
        let body = reg.store.read_all(&digest, MAX_MANIFEST_SIZE as u64)?;
        Ok((digest, media_type, body))
    })
    .await?;
    let len = body.len();
    let mut response = (StatusCode::OK, body).into_response();
    set(&mut response, header::CONTENT_TYPE, &media_type);
    set(&mut response, header::CONTENT_LENGTH, &len.to_string());
    set(&mut response, DOCKER_CONTENT_DIGEST, &digest.to_string());
    set(&mut response, header::ETAG, &format!("\"{digest}\""));
    Ok(response)
}

pub(super) async fn put(
    reg: Arc<Registry>,
    name: RepoName,
    reference: String,
    req: Req,
) -> Result<Response> {
    let target = target(&reference)?;
    let too_large = || {
        RegistryError::new(
            Code::SizeInvalid,
            format!("manifest is larger than {MAX_MANIFEST_SIZE} bytes"),
        )
        .with_status(StatusCode::PAYLOAD_TOO_LARGE)
    };
    let content_type = req.header(&header::CONTENT_TYPE).map(str::to_owned);
    let body = read_limited(req.body).await?.ok_or_else(too_large)?;
    let parsed = manifest::parse(&body, content_type.as_deref())?;
    let digest = digest_for(&target, &body)?;
    let subject = parsed.subject.clone();
    {
        let (digest, name) = (digest.clone(), name.clone());
        blocking(move || store_manifest(&reg, &name, &target, &digest, &body, &parsed)).await?;
    }
    let mut response = StatusCode::CREATED.into_response();
    set(
        &mut response,
        header::LOCATION,
        &format!("/v2/{name}/manifests/{digest}"),
    );
    set(&mut response, DOCKER_CONTENT_DIGEST, &digest.to_string());
    set(&mut response, header::CONTENT_LENGTH, "0");
    if let Some(subject) = subject {
        set(&mut response, OCI_SUBJECT, &subject.to_string());
    }
    Ok(response)
}

/// The manifest's digest, in the algorithm of the digest it is pushed by (SHA-256 for a
/// tag), which must match it.
fn digest_for(target: &Target, body: &[u8]) -> Result<Digest> {
    let algorithm = match target {
        Target::Digest(d) => d.algorithm(),
        Target::Tag(_) => berth_content::Algorithm::Sha256,
    };
    let mut hasher = algorithm.hasher();
    hasher.update(body);
    let digest = hasher.finish();
    match target {
        Target::Digest(d) if *d != digest => Err(RegistryError::new(
            Code::DigestInvalid,
            "manifest digest does not match its content",
        )
        .detail(d.to_string())),
        _ => Ok(digest),
    }
}

/// Past the manifest limit, this much more is read and thrown away before answering, so
/// that a client still sending gets the 413 rather than a reset connection.
const DRAIN_LIMIT: usize = 16 << 20;

/// Reads a manifest body; `None` when it is over [`MAX_MANIFEST_SIZE`].
async fn read_limited(body: axum::body::Body) -> Result<Option<Vec<u8>>> {
    let mut frames = body.into_data_stream();
    let mut data = Vec::new();
    let mut seen = 0usize;
    while let Some(frame) = frames.next().await {
        let frame = frame.map_err(|e| {
            RegistryError::new(Code::ManifestInvalid, "request body failed").detail(e.to_string())
        })?;
        seen = seen.saturating_add(frame.len());
        if seen > MAX_MANIFEST_SIZE + DRAIN_LIMIT {
            break;
        }
        if seen <= MAX_MANIFEST_SIZE {
            data.extend_from_slice(&frame);
        }
    }
    Ok((seen <= MAX_MANIFEST_SIZE).then_some(data))
}

/// Checks the references, then stores the bytes, the revision, the referrer and the tag, in
/// that order: a tag never points at something incomplete.
fn store_manifest(
    reg: &Registry,
    name: &RepoName,
    target: &Target,
    digest: &Digest,
    body: &[u8],
    parsed: &Manifest,
) -> Result<()> {
    for reference in &parsed.references {
        let (present, d) = match reference {
            Reference::Blob(d) => (reg.links.has_blob(name, d) && reg.store.exists(d), d),
            Reference::Manifest(d) => (reg.links.revision_media_type(name, d)?.is_some(), d),
        };
        if !present {
            return Err(RegistryError::new(
                Code::ManifestBlobUnknown,
                "manifest references an unknown blob",
            )
            .detail(d.to_string()));
        }
    }
    let mut writer = reg
        .store
        .writer(Some(digest.clone()), Some(body.len() as u64))?;
    writer.write_all(body)?;
    writer.commit()?;
    reg.links.put_revision(name, digest, &parsed.media_type)?;
    if let Some(subject) = &parsed.subject {
        let mut descriptor = json!({
            "mediaType": parsed.media_type,
            "digest": digest.to_string(),
            "size": body.len(),
        });
        if let Some(t) = &parsed.artifact_type {
            descriptor["artifactType"] = json!(t);
        }
        if let Some(a) = &parsed.annotations {
            descriptor["annotations"] = json!(a);
        }
        reg.links.add_referrer(name, subject, digest, &descriptor)?;
    }
    if let Target::Tag(tag) = target {
        reg.links.set_tag(name, tag, digest)?;
    }
    Ok(())
}

pub(super) async fn delete(
    reg: Arc<Registry>,
    name: RepoName,
    reference: String,
) -> Result<Response> {
    delete_guard(&reg)?;
    let target = target(&reference)?;
    blocking(move || {
        let removed = match &target {
            Target::Tag(tag) => reg.links.delete_tag(&name, tag)?,
            Target::Digest(digest) => delete_revision(&reg, &name, digest)?,
        };
        if removed {
            Ok(())
        } else {
            Err(unknown(&reference))
        }
    })
    .await?;
    let mut response = StatusCode::ACCEPTED.into_response();
    set(&mut response, header::CONTENT_LENGTH, "0");
    Ok(response)
}

/// Removes a revision, its tags and its referrers entry. The bytes stay for `gc`.
fn delete_revision(reg: &Registry, name: &RepoName, digest: &Digest) -> Result<bool> {
    if reg.links.revision_media_type(name, digest)?.is_none() {
        return Ok(false);
    }
    if let Ok(body) = reg.store.read_all(digest, MAX_MANIFEST_SIZE as u64)
        && let Ok(parsed) = manifest::parse(&body, None)
        && let Some(subject) = parsed.subject
    {
        reg.links.remove_referrer(name, &subject, digest)?;
    }
    Ok(reg.links.delete_revision(name, digest)?)
}
