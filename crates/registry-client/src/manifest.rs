//! Manifests and indexes of both families (Docker schema 2, OCI), parsed strictly enough
//! that every digest is valid before it is used, and the platform choice in an index.

use berth_reference::Digest;
use serde::{Deserialize, Serialize};

use crate::error::{ClientError, Result};

/// Docker schema 2 image manifest.
pub const DOCKER_MANIFEST: &str = "application/vnd.docker.distribution.manifest.v2+json";
/// Docker manifest list.
pub const DOCKER_LIST: &str = "application/vnd.docker.distribution.manifest.list.v2+json";
/// OCI image manifest.
pub const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
/// OCI image index.
pub const OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";
/// Docker image config.
pub const DOCKER_CONFIG: &str = "application/vnd.docker.container.image.v1+json";
/// Docker gzip layer.
pub const DOCKER_LAYER_GZIP: &str = "application/vnd.docker.image.rootfs.diff.tar.gzip";
/// OCI image config.
pub const OCI_CONFIG: &str = "application/vnd.oci.image.config.v1+json";
/// OCI layer, uncompressed.
pub const OCI_LAYER: &str = "application/vnd.oci.image.layer.v1.tar";
/// OCI layer, gzip.
pub const OCI_LAYER_GZIP: &str = "application/vnd.oci.image.layer.v1.tar+gzip";
/// OCI layer, zstd.
pub const OCI_LAYER_ZSTD: &str = "application/vnd.oci.image.layer.v1.tar+zstd";

/// What a pull accepts, in Docker's order of preference.
pub const ACCEPT: &str = "application/vnd.docker.distribution.manifest.v2+json, \
application/vnd.docker.distribution.manifest.list.v2+json, \
application/vnd.oci.image.manifest.v1+json, application/vnd.oci.image.index.v1+json";

/// Most layers an image may have (Docker's limit is 128 for a graph driver; stores of other
/// engines allow more, so this only bounds hostile manifests).
const MAX_LAYERS: usize = 1000;
/// Most entries an index may have.
const MAX_INDEX_ENTRIES: usize = 1000;

/// A content descriptor.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Descriptor {
    /// Its media type.
    #[serde(rename = "mediaType", default)]
    pub media_type: String,
    /// Its size in bytes.
    pub size: u64,
    /// Its digest.
    pub digest: Digest,
    /// For index entries: the platform the manifest is for.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub platform: Option<Platform>,
}

/// A platform (`os/architecture[/variant]`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Platform {
    /// `linux`.
    #[serde(default)]
    pub os: String,
    /// `amd64`, `arm64`, …
    #[serde(default)]
    pub architecture: String,
    /// `v7`, `v8`, …
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub variant: Option<String>,
}

impl Platform {
    /// linux/amd64, the default of this host.
    pub fn linux_amd64() -> Platform {
        Platform {
            os: "linux".into(),
            architecture: "amd64".into(),
            variant: None,
        }
    }

    /// Parses `os/arch[/variant]` (as `--platform` gives it).
    pub fn parse(text: &str) -> Result<Platform> {
        let parts: Vec<&str> = text.split('/').collect();
        let ok = |s: &&str| {
            !s.is_empty()
                && s.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-' || b == b'.')
        };
        if !(2..=3).contains(&parts.len()) || !parts.iter().all(ok) {
            return Err(ClientError::InvalidPlatform(text.to_owned()));
        }
        Ok(Platform {
            os: parts[0].to_ascii_lowercase(),
            architecture: parts[1].to_ascii_lowercase(),
            variant: parts.get(2).map(|v| v.to_ascii_lowercase()),
        })
    }

    fn matches(&self, entry: &Platform) -> bool {
        let variant_ok = match (&self.variant, &entry.variant) {
            (None, _) => true,
            (Some(want), Some(have)) => want == have,
            (Some(_), None) => false,
        };
        self.os == entry.os && self.architecture == entry.architecture && variant_ok
    }
}

impl std::fmt::Display for Platform {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.os, self.architecture)?;
        if let Some(v) = &self.variant {
            write!(f, "/{v}")?;
        }
        Ok(())
    }
}

#[derive(Deserialize)]
struct Document {
    #[serde(rename = "schemaVersion", default)]
    schema_version: u32,
    #[serde(rename = "mediaType", default)]
    media_type: Option<String>,
    #[serde(default)]
    config: Option<Descriptor>,
    #[serde(default)]
    layers: Option<Vec<Descriptor>>,
    #[serde(default)]
    manifests: Option<Vec<Descriptor>>,
}

/// A parsed manifest or index.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Parsed {
    /// An image manifest: config and layers, bottom first.
    Image {
        /// The config blob.
        config: Descriptor,
        /// The layer blobs.
        layers: Vec<Descriptor>,
    },
    /// A manifest list or index.
    Index(Vec<Descriptor>),
}

/// Parses a manifest whose `Content-Type` was `content_type`; the document's own
/// `mediaType`, when present, wins.
pub fn parse(bytes: &[u8], content_type: &str, reference: &str) -> Result<Parsed> {
    let invalid = |reason: String| ClientError::InvalidManifest {
        reference: reference.to_owned(),
        reason,
    };
    let doc: Document = serde_json::from_slice(bytes).map_err(|e| invalid(e.to_string()))?;
    if doc.schema_version != 2 {
        return Err(invalid(format!(
            "schema version {} is not supported (Docker Image manifest version 2, schema 1 \
             support has been removed)",
            doc.schema_version
        )));
    }
    let kind = doc.media_type.as_deref().unwrap_or(content_type);
    let kind = kind.split(';').next().unwrap_or(kind).trim();
    match (kind, doc.manifests, doc.config, doc.layers) {
        (DOCKER_LIST | OCI_INDEX, Some(entries), _, _) => {
            if entries.len() > MAX_INDEX_ENTRIES {
                return Err(invalid(format!("{} index entries", entries.len())));
            }
            Ok(Parsed::Index(entries))
        }
        (DOCKER_MANIFEST | OCI_MANIFEST, None, Some(config), Some(layers)) => {
            if layers.len() > MAX_LAYERS {
                return Err(invalid(format!("{} layers", layers.len())));
            }
            Ok(Parsed::Image { config, layers })
        }
        // An OCI manifest may omit mediaType and come with a generic Content-Type.
        (_, None, Some(config), Some(layers)) if doc.media_type.is_none() => {
            if layers.len() > MAX_LAYERS {
                return Err(invalid(format!("{} layers", layers.len())));
            }
            Ok(Parsed::Image { config, layers })
        }
        (_, Some(entries), None, None) if doc.media_type.is_none() => Ok(Parsed::Index(entries)),
        (kind, ..) => Err(invalid(format!(
            "unsupported or inconsistent manifest type {kind:?}"
        ))),
    }
}

/// The entry of an index for `platform`, as Docker chooses it: the first exact match.
pub fn select(entries: &[Descriptor], platform: &Platform) -> Result<Descriptor> {
    entries
        .iter()
        .find(|e| {
            e.platform.as_ref().is_some_and(|p| platform.matches(p))
                && matches!(e.media_type.as_str(), DOCKER_MANIFEST | OCI_MANIFEST | "")
        })
        .cloned()
        .ok_or_else(|| ClientError::NoMatchingPlatform(platform.to_string()))
}

/// Docker's serialisation of a schema 2 manifest (three-space indent, fields in
/// distribution's order), so a push gives the digest `docker push` would.
pub fn docker_manifest(config: &Descriptor, layers: &[Descriptor]) -> Vec<u8> {
    #[derive(Serialize)]
    struct Manifest<'a> {
        #[serde(rename = "schemaVersion")]
        schema_version: u32,
        #[serde(rename = "mediaType")]
        media_type: &'a str,
        config: &'a Descriptor,
        layers: &'a [Descriptor],
    }
    let kind = if layers.iter().all(|l| l.media_type == DOCKER_LAYER_GZIP) {
        DOCKER_MANIFEST
    } else {
        OCI_MANIFEST
    };
    let manifest = Manifest {
        schema_version: 2,
        media_type: kind,
        config,
        layers,
    };
    let mut out = Vec::new();
    let formatter = serde_json::ser::PrettyFormatter::with_indent(b"   ");
    let mut ser = serde_json::Serializer::with_formatter(&mut out, formatter);
    // Serialising plain strings and numbers into a Vec cannot fail.
    let _ = manifest.serialize(&mut ser);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const D: &str = "sha256:0000000000000000000000000000000000000000000000000000000000000000";

    fn entry(os: &str, arch: &str, variant: Option<&str>) -> String {
        let v = variant.map_or(String::new(), |v| format!(r#","variant":"{v}""#));
        format!(
            r#"{{"mediaType":"{OCI_MANIFEST}","size":1,"digest":"{D}","platform":{{"os":"{os}","architecture":"{arch}"{v}}}}}"#
        )
    }

    #[test]
    fn index_selects_the_platform() {
        let doc = format!(
            r#"{{"schemaVersion":2,"mediaType":"{OCI_INDEX}","manifests":[{},{},{}]}}"#,
            entry("linux", "arm", Some("v7")),
            entry("linux", "amd64", None),
            entry("unknown", "unknown", None),
        );
        let Ok(Parsed::Index(entries)) = parse(doc.as_bytes(), "", "x") else {
            panic!("not an index");
        };
        let amd = select(&entries, &Platform::linux_amd64()).ok();
        assert_eq!(
            amd.and_then(|d| d.platform).map(|p| p.architecture),
            Some("amd64".to_owned())
        );
        let arm = select(
            &entries,
            &Platform::parse("linux/arm/v7").unwrap_or_else(|e| panic!("{e}")),
        );
        assert!(arm.is_ok());
        let err = select(
            &entries,
            &Platform::parse("linux/arm64").unwrap_or_else(|e| panic!("{e}")),
        );
        assert_eq!(
            err.err().map(|e| e.to_string()),
            Some("no matching manifest for linux/arm64 in the manifest list entries".to_owned())
        );
    }

    #[test]
    fn hostile_manifests_are_refused() {
        let layer = format!(r#"{{"mediaType":"{OCI_LAYER}","size":1,"digest":"{D}"}}"#);
        let bad = [
            "".to_owned(),
            "[]".to_owned(),
            r#"{"schemaVersion":1,"fsLayers":[]}"#.to_owned(),
            format!(r#"{{"schemaVersion":2,"mediaType":"{OCI_MANIFEST}","layers":[]}}"#),
            // A digest that would escape a path.
            r#"{"schemaVersion":2,"config":{"size":1,"digest":"sha256:../../etc/passwd"},"layers":[]}"#
                .to_owned(),
            // A negative size.
            format!(r#"{{"schemaVersion":2,"config":{{"size":-1,"digest":"{D}"}},"layers":[]}}"#),
            // A manifest that claims to be an index.
            format!(
                r#"{{"schemaVersion":2,"mediaType":"{OCI_INDEX}","config":{layer},"layers":[]}}"#
            ),
            format!(
                r#"{{"schemaVersion":2,"config":{layer},"layers":[{}]}}"#,
                vec![layer.as_str(); MAX_LAYERS + 1].join(",")
            ),
        ];
        for doc in bad {
            assert!(
                parse(doc.as_bytes(), OCI_MANIFEST, "x").is_err(),
                "accepted {:.200}",
                doc
            );
        }
        for p in [
            "linux",
            "linux/",
            "/amd64",
            "a/b/c/d",
            "linux/amd64/../x",
            "",
        ] {
            assert!(Platform::parse(p).is_err(), "{p}");
        }
    }

    #[test]
    fn pushed_manifests_are_formatted_as_docker_formats_them() {
        let d = |size| Descriptor {
            media_type: DOCKER_LAYER_GZIP.into(),
            size,
            digest: Digest::parse(D).unwrap_or_else(|e| panic!("{e}")),
            platform: None,
        };
        let config = Descriptor {
            media_type: DOCKER_CONFIG.into(),
            ..d(7)
        };
        let text = String::from_utf8(docker_manifest(&config, &[d(3)])).unwrap_or_default();
        let want = format!(
            "{{\n   \"schemaVersion\": 2,\n   \"mediaType\": \"{DOCKER_MANIFEST}\",\n   \"config\": {{\n      \"mediaType\": \"{DOCKER_CONFIG}\",\n      \"size\": 7,\n      \"digest\": \"{D}\"\n   }},\n   \"layers\": [\n      {{\n         \"mediaType\": \"{DOCKER_LAYER_GZIP}\",\n         \"size\": 3,\n         \"digest\": \"{D}\"\n      }}\n   ]\n}}"
        );
        assert_eq!(text, want);
    }
}
