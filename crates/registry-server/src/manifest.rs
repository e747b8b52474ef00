//! Manifest validation: which media types we accept, and what a manifest references.

use berth_content::Digest;
use serde::Deserialize;
use serde_json::{Map, Value};

use crate::error::{Code, RegistryError};

/// Docker image manifest, schema 2.
pub const DOCKER_MANIFEST: &str = "application/vnd.docker.distribution.manifest.v2+json";
/// Docker manifest list.
pub const DOCKER_LIST: &str = "application/vnd.docker.distribution.manifest.list.v2+json";
/// OCI image manifest.
pub const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
/// OCI image index.
pub const OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";

/// The largest manifest accepted or served (distribution's limit; CVE-2017-11468).
pub const MAX_MANIFEST_SIZE: usize = 4 << 20;

/// A content descriptor as manifests spell it.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Descriptor {
    /// The referenced content's media type.
    #[serde(default)]
    pub media_type: String,
    /// Its digest, checked by [`parse`].
    pub digest: String,
    /// Its size.
    pub size: i64,
    /// External URLs of non-distributable layers.
    #[serde(default)]
    pub urls: Vec<String>,
}

/// The fields of any accepted manifest type that the registry needs.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Raw {
    schema_version: Option<i64>,
    media_type: Option<String>,
    artifact_type: Option<String>,
    config: Option<Descriptor>,
    layers: Option<Vec<Descriptor>>,
    manifests: Option<Vec<Descriptor>>,
    subject: Option<Descriptor>,
    annotations: Option<Map<String, Value>>,
}

/// What a manifest references: blobs of the repository, or other manifests of it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reference {
    /// A config or layer blob.
    Blob(Digest),
    /// A child manifest of an index.
    Manifest(Digest),
}

/// A validated manifest.
#[derive(Debug)]
pub struct Manifest {
    /// Its media type (from the body, else the request's `Content-Type`).
    pub media_type: String,
    /// Everything it references that must exist in the repository.
    pub references: Vec<Reference>,
    /// The manifest it refers to (`subject`), for the referrers API.
    pub subject: Option<Digest>,
    /// `artifactType`, or the config's media type for an image manifest.
    pub artifact_type: Option<String>,
    /// Its annotations, copied into referrers descriptors.
    pub annotations: Option<Map<String, Value>>,
}

fn invalid(message: impl Into<String>) -> RegistryError {
    RegistryError::new(Code::ManifestInvalid, message)
}

/// Parses and validates a manifest body; `content_type` is the request's `Content-Type`.
pub fn parse(body: &[u8], content_type: Option<&str>) -> Result<Manifest, RegistryError> {
    let raw: Raw = serde_json::from_slice(body)
        .map_err(|e| invalid("manifest invalid").detail(e.to_string()))?;
    if raw.schema_version != Some(2) {
        return Err(invalid("unsupported manifest schemaVersion"));
    }
    let media_type = media_type_of(&raw, content_type)?;
    let is_index = media_type == OCI_INDEX || media_type == DOCKER_LIST;
    let mut references = Vec::new();
    if is_index {
        let children = raw
            .manifests
            .as_ref()
            .ok_or_else(|| invalid("index without manifests"))?;
        for child in children {
            references.push(Reference::Manifest(descriptor_digest(child)?));
        }
    } else {
        let config = raw
            .config
            .as_ref()
            .ok_or_else(|| invalid("manifest without config"))?;
        references.push(Reference::Blob(descriptor_digest(config)?));
        for layer in raw.layers.iter().flatten() {
            let digest = descriptor_digest(layer)?;
            // Non-distributable ("foreign") layers live elsewhere and are never pushed.
            if !is_foreign(layer) {
                references.push(Reference::Blob(digest));
            }
        }
    }
    let subject = raw.subject.as_ref().map(descriptor_digest).transpose()?;
    let artifact_type = raw.artifact_type.clone().or_else(|| {
        raw.config
            .as_ref()
            .filter(|_| !is_index)
            .map(|c| c.media_type.clone())
    });
    Ok(Manifest {
        media_type,
        references,
        subject,
        artifact_type,
        annotations: raw.annotations,
    })
}

/// The body's `mediaType` wins, but must agree with `Content-Type` when both are given;
/// an OCI manifest may omit both, and is then recognised by its shape.
fn media_type_of(raw: &Raw, content_type: Option<&str>) -> Result<String, RegistryError> {
    let header = content_type
        .map(|c| c.split(';').next().unwrap_or("").trim())
        .filter(|c| !c.is_empty());
    let media_type = match (raw.media_type.as_deref(), header) {
        (Some(body), Some(header)) if body != header => {
            return Err(invalid(format!(
                "mediaType {body:?} does not match Content-Type {header:?}"
            )));
        }
        (Some(body), _) => body.to_owned(),
        (None, Some(header)) => header.to_owned(),
        (None, None) if raw.manifests.is_some() => OCI_INDEX.to_owned(),
        (None, None) => OCI_MANIFEST.to_owned(),
    };
    if ![DOCKER_MANIFEST, DOCKER_LIST, OCI_MANIFEST, OCI_INDEX].contains(&media_type.as_str()) {
        return Err(invalid(format!(
            "unsupported manifest media type {media_type:?}"
        )));
    }
    Ok(media_type)
}

fn descriptor_digest(d: &Descriptor) -> Result<Digest, RegistryError> {
    if d.size < 0 {
        return Err(invalid(format!("negative size in descriptor {}", d.digest)));
    }
    Digest::parse(&d.digest)
        .map_err(|_| invalid("invalid digest in descriptor").detail(d.digest.clone()))
}

fn is_foreign(layer: &Descriptor) -> bool {
    layer.media_type.contains("foreign") || layer.media_type.contains("nondistributable")
}

/// Whether an `Accept` header allows `media_type`. No header (or `*/*`) allows anything.
pub fn accepts(accept: &[&str], media_type: &str) -> bool {
    let types: Vec<&str> = accept
        .iter()
        .flat_map(|h| h.split(','))
        .map(|t| t.split(';').next().unwrap_or("").trim())
        .filter(|t| !t.is_empty())
        .collect();
    types.is_empty() || types.iter().any(|t| *t == media_type || *t == "*/*")
}

#[cfg(test)]
mod tests {
    use super::*;

    const D: &str = "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";

    #[test]
    fn image_manifest_references_config_and_layers() {
        let body = format!(
            r#"{{"schemaVersion":2,"mediaType":"{OCI_MANIFEST}",
            "config":{{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"{D}","size":0}},
            "layers":[{{"mediaType":"application/vnd.oci.image.layer.v1.tar","digest":"{D}","size":0}}]}}"#
        );
        let m = parse(body.as_bytes(), None).expect("valid");
        assert_eq!(m.media_type, OCI_MANIFEST);
        assert_eq!(m.references.len(), 2);
        assert_eq!(
            m.artifact_type.as_deref(),
            Some("application/vnd.oci.image.config.v1+json")
        );
    }

    #[test]
    fn mismatched_content_type_and_bad_digests_are_invalid() {
        let body = format!(r#"{{"schemaVersion":2,"mediaType":"{OCI_INDEX}","manifests":[]}}"#);
        assert!(parse(body.as_bytes(), Some(OCI_MANIFEST)).is_err());
        assert!(parse(body.as_bytes(), Some(OCI_INDEX)).is_ok());
        let bad = r#"{"schemaVersion":2,"config":{"digest":"sha256:xyz","size":1}}"#;
        assert!(parse(bad.as_bytes(), None).is_err());
        assert!(parse(b"not json", None).is_err());
    }

    #[test]
    fn accept_lists_are_split() {
        assert!(accepts(&[], OCI_MANIFEST));
        assert!(accepts(
            &["a/b, application/vnd.oci.image.manifest.v1+json;q=0.5"],
            OCI_MANIFEST
        ));
        assert!(!accepts(&[DOCKER_MANIFEST], OCI_INDEX));
    }
}
