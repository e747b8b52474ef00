//! Repository names, tags and upload ids as they appear in URLs, validated before they
//! become paths on disk.

use berth_reference::{NAME_MAX_LEN, Reference};

use crate::error::{Code, RegistryError};

/// A repository name (`a/b/c`) that follows the reference grammar's path rules: lowercase
/// components separated by `/`, no domain, at most 255 characters.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct RepoName(String);

/// A placeholder domain, so that the reference parser never mistakes a first component
/// with a dot (`my.org/app`) for a registry host.
const PARSE_DOMAIN: &str = "registry.invalid";

impl RepoName {
    /// Validates a name, giving `NAME_INVALID`.
    pub fn parse(name: &str) -> Result<Self, RegistryError> {
        let invalid =
            || RegistryError::new(Code::NameInvalid, "invalid repository name").detail(name);
        if name.is_empty() || name.len() > NAME_MAX_LEN {
            return Err(invalid());
        }
        let parsed = Reference::parse_normalized(&format!("{PARSE_DOMAIN}/{name}"))
            .map_err(|_| invalid())?;
        if parsed.path() != name || !parsed.is_name_only() {
            return Err(invalid());
        }
        Ok(RepoName(name.to_owned()))
    }

    /// The name.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Display for RepoName {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// Validates a tag (`[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}`), giving `TAG_INVALID`.
pub fn validate_tag(tag: &str) -> Result<(), RegistryError> {
    let ok = Reference::parse_normalized(&format!("{PARSE_DOMAIN}/x"))
        .and_then(|r| r.with_tag(tag))
        .is_ok();
    if ok {
        Ok(())
    } else {
        Err(RegistryError::new(Code::TagInvalid, "invalid tag").detail(tag))
    }
}

/// Upload session ids are 32 lowercase hex characters; anything else is unknown.
pub fn validate_upload_id(id: &str) -> Result<(), RegistryError> {
    if id.len() == 32
        && id
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
    {
        Ok(())
    } else {
        Err(RegistryError::new(Code::BlobUploadUnknown, "blob upload unknown").detail(id))
    }
}

/// A fresh random upload id.
pub fn new_upload_id() -> std::io::Result<String> {
    let mut random = [0u8; 16];
    getrandom::fill(&mut random).map_err(std::io::Error::other)?;
    Ok(hex::encode(random))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_follow_the_path_grammar() {
        for ok in ["a", "a/b/c", "my.org/app", "x_y/z-w", "a__b"] {
            assert!(RepoName::parse(ok).is_ok(), "{ok}");
        }
        for bad in [
            "",
            "A",
            "a//b",
            "/a",
            "a/",
            "a:1",
            "a@sha256:00",
            "../x",
            "_x",
            "a/-b",
        ] {
            assert!(RepoName::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn tags_follow_the_grammar() {
        assert!(validate_tag("v1.0_rc-2").is_ok());
        assert!(validate_tag(".x").is_err());
        assert!(validate_tag(&"a".repeat(129)).is_err());
    }
}
