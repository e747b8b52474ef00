//! Image references (`busybox`, `user/app:1`, `localhost:5000/a/b@sha256:…`), parsed and
//! normalised as Docker does (`distribution/reference`'s `ParseNormalizedNamed`).
//!
//! The grammar, checked by hand rather than by regular expression:
//!
//! ```text
//! reference      := name [ ":" tag ] [ "@" digest ]
//! name           := [ domain "/" ] path-component ( "/" path-component )*
//! domain         := host [ ":" port ]          host := domain-name | "[" ipv6 "]"
//! domain-name    := domain-component ( "." domain-component )*
//! domain-component := [a-zA-Z0-9] | [a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9]
//! port           := [0-9]+                     ipv6 := [a-fA-F0-9:]+
//! path-component := [a-z0-9]+ ( separator [a-z0-9]+ )*
//! separator      := "." | "_" | "__" | "-"+
//! tag            := [A-Za-z0-9_][A-Za-z0-9_.-]{0,127}
//! digest         := algorithm ":" hex{32,}   (then validated by [`Digest::parse`])
//! ```

use std::fmt;
use std::str::FromStr;

use berth_errdefs::{Category, HasCategory};

use crate::digest::{Digest, DigestError, is_lower_hex};

/// The registry that names without a domain belong to.
pub const DEFAULT_DOMAIN: &str = "docker.io";
/// Docker Hub's old name; normalised to [`DEFAULT_DOMAIN`].
const LEGACY_DEFAULT_DOMAIN: &str = "index.docker.io";
/// The namespace of Docker Hub's official images (`busybox` is `library/busybox`).
const OFFICIAL_REPO_PREFIX: &str = "library/";
/// The tag a reference gets when it names neither a tag nor a digest.
pub const DEFAULT_TAG: &str = "latest";
/// The longest repository path allowed (the domain is not counted).
pub const NAME_MAX_LEN: usize = 255;
const TAG_MAX_LEN: usize = 128;

/// Why a string is not a valid image reference. The messages are Docker's.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ReferenceError {
    /// The input was empty.
    #[error("repository name must have at least one component")]
    Empty,
    /// The input does not follow the grammar.
    #[error("invalid reference format")]
    InvalidFormat,
    /// The repository part, as Docker splits it, has uppercase letters.
    #[error("invalid reference format: repository name ({repository}) must be lowercase")]
    UppercaseRepository {
        /// The repository part as Docker reports it (`library/Busybox`).
        repository: String,
    },
    /// Only lowercasing would make the input valid.
    #[error("repository name must be lowercase")]
    Uppercase,
    /// The repository path is longer than [`NAME_MAX_LEN`].
    #[error("repository name must not be more than 255 characters")]
    NameTooLong,
    /// A bare 64-hex string, which would be confused with an image id.
    #[error("invalid repository name ({input}), cannot specify 64-byte hexadecimal strings")]
    HexIdentifier {
        /// The input.
        input: String,
    },
    /// A tag given to [`Reference::with_tag`] does not follow the tag grammar.
    #[error("invalid tag format")]
    InvalidTag,
    /// The digest part has the right shape but is not a valid digest.
    #[error(transparent)]
    Digest(#[from] DigestError),
}

impl HasCategory for ReferenceError {
    fn category(&self) -> Category {
        Category::InvalidParameter
    }
}

/// A normalised, named image reference: domain, path, and optionally a tag and a digest.
///
/// Built by [`Reference::parse_normalized`], the domain is never empty. `Display` gives the
/// full form (`docker.io/library/busybox:latest`); [`Reference::familiar_string`] gives the
/// short one Docker prints (`busybox:latest`).
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Reference {
    domain: String,
    path: String,
    tag: Option<String>,
    digest: Option<Digest>,
}

impl Reference {
    /// Parses what a user typed (`busybox`, `user/app:1`, `localhost:5000/x@sha256:…`) into its
    /// full form, as `docker pull`/`docker run` understand it.
    ///
    /// No default tag is added: `busybox` stays tag-less so callers can tell "no tag given"
    /// apart from `:latest`; use [`Reference::with_default_tag`] for that.
    pub fn parse_normalized(s: &str) -> Result<Self, ReferenceError> {
        if s.len() == 64 && is_lower_hex(s) {
            return Err(ReferenceError::HexIdentifier {
                input: s.to_owned(),
            });
        }
        let (domain, remainder) = split_docker_domain(s);
        // Docker checks case on everything up to the first ':' of the remainder, so the
        // repository it reports may include a digest's algorithm (`library/a@SHA256`).
        let repository = remainder.split(':').next().unwrap_or_default();
        if repository.to_lowercase() != repository {
            return Err(ReferenceError::UppercaseRepository {
                repository: repository.to_owned(),
            });
        }
        parse_full(&format!("{domain}/{remainder}"))
    }

    /// The registry part (`docker.io`, `localhost:5000`, `[::1]:5000`).
    pub fn domain(&self) -> &str {
        &self.domain
    }

    /// The repository path inside the registry (`library/busybox`).
    pub fn path(&self) -> &str {
        &self.path
    }

    /// `domain/path`, without tag or digest (`docker.io/library/busybox`).
    pub fn name(&self) -> String {
        format!("{}/{}", self.domain, self.path)
    }

    /// The tag, if one was given.
    pub fn tag(&self) -> Option<&str> {
        self.tag.as_deref()
    }

    /// The digest, if one was given.
    pub fn digest(&self) -> Option<&Digest> {
        self.digest.as_ref()
    }

    /// True when the reference has neither tag nor digest.
    pub fn is_name_only(&self) -> bool {
        self.tag.is_none() && self.digest.is_none()
    }

    /// Adds the `latest` tag when there is neither a tag nor a digest (Docker's `TagNameOnly`).
    #[must_use]
    pub fn with_default_tag(mut self) -> Self {
        if self.is_name_only() {
            self.tag = Some(DEFAULT_TAG.to_owned());
        }
        self
    }

    /// The reference `docker pull` resolves: tag and digest → digest only; name only → `latest`
    /// (Docker's `ParseDockerRef`).
    #[must_use]
    pub fn docker_ref(mut self) -> Self {
        if self.digest.is_some() {
            self.tag = None;
        }
        self.with_default_tag()
    }

    /// The same repository with `tag` (a digest, if any, is kept).
    pub fn with_tag(mut self, tag: &str) -> Result<Self, ReferenceError> {
        if !is_tag(tag) {
            return Err(ReferenceError::InvalidTag);
        }
        self.tag = Some(tag.to_owned());
        Ok(self)
    }

    /// The same repository with `digest` (a tag, if any, is kept).
    #[must_use]
    pub fn with_digest(mut self, digest: Digest) -> Self {
        self.digest = Some(digest);
        self
    }

    /// The repository alone, tag and digest dropped.
    #[must_use]
    pub fn name_only(mut self) -> Self {
        self.tag = None;
        self.digest = None;
        self
    }

    /// The name as Docker shows it: `docker.io/` and `library/` dropped (`busybox`,
    /// `user/app`, `localhost:5000/x`).
    pub fn familiar_name(&self) -> String {
        if self.domain != DEFAULT_DOMAIN {
            return self.name();
        }
        match self.path.strip_prefix(OFFICIAL_REPO_PREFIX) {
            // Only a single component below `library/` is an official image.
            Some(rest) if !rest.contains('/') => rest.to_owned(),
            _ => self.path.clone(),
        }
    }

    /// The whole reference as Docker shows it (`busybox:latest`, `user/app@sha256:…`).
    pub fn familiar_string(&self) -> String {
        let mut s = self.familiar_name();
        self.push_suffix(&mut s);
        s
    }

    fn push_suffix(&self, s: &mut String) {
        if let Some(tag) = &self.tag {
            s.push(':');
            s.push_str(tag);
        }
        if let Some(digest) = &self.digest {
            s.push('@');
            s.push_str(digest.as_str());
        }
    }
}

impl fmt::Display for Reference {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut s = self.name();
        self.push_suffix(&mut s);
        f.write_str(&s)
    }
}

impl fmt::Debug for Reference {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Reference({self})")
    }
}

impl FromStr for Reference {
    type Err = ReferenceError;
    /// Same as [`Reference::parse_normalized`]; the full form parses back to itself.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse_normalized(s)
    }
}

impl serde::Serialize for Reference {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> serde::Deserialize<'de> for Reference {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        Self::parse_normalized(&s).map_err(serde::de::Error::custom)
    }
}

/// Either an image id / digest or a named reference: how `docker run X` or `docker rmi X`
/// reads its argument (Docker's `ParseAnyReference`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AnyReference {
    /// A bare 64-hex id (taken as sha256) or a full digest.
    Digest(Digest),
    /// Anything else that parses as a reference.
    Named(Reference),
}

impl AnyReference {
    /// Reads `s` as an id, a digest, or a named reference, in that order.
    ///
    /// A short hex prefix (`abc123`) is a valid repository name and comes back as
    /// [`AnyReference::Named`]; looking it up as an id prefix is the image store's job.
    pub fn parse(s: &str) -> Result<Self, ReferenceError> {
        if s.len() == 64 && is_lower_hex(s) {
            return Ok(Self::Digest(Digest::parse(&format!("sha256:{s}"))?));
        }
        if let Ok(d) = Digest::parse(s) {
            return Ok(Self::Digest(d));
        }
        Reference::parse_normalized(s).map(Self::Named)
    }
}

/// Splits off Docker Hub's domain the way the docker CLI does: the first component is a
/// domain only if it is `localhost`, has a `.` or `:`, or has uppercase letters.
fn split_docker_domain(s: &str) -> (&str, String) {
    let Some((first, rest)) = s.split_once('/') else {
        return (DEFAULT_DOMAIN, format!("{OFFICIAL_REPO_PREFIX}{s}"));
    };
    let (domain, remote) = if first == "localhost" {
        (first, rest)
    } else if first == LEGACY_DEFAULT_DOMAIN {
        (DEFAULT_DOMAIN, rest)
    } else if first.contains(['.', ':']) || first.to_lowercase() != first {
        (first, rest)
    } else {
        (DEFAULT_DOMAIN, s)
    };
    if domain == DEFAULT_DOMAIN && !remote.contains('/') {
        return (domain, format!("{OFFICIAL_REPO_PREFIX}{remote}"));
    }
    (domain, remote.to_owned())
}

/// Parses a full `domain/path[:tag][@digest]` (distribution's `Parse`), requiring a domain.
fn parse_full(s: &str) -> Result<Reference, ReferenceError> {
    if s.is_empty() {
        return Err(ReferenceError::Empty);
    }
    let Some(parts) = match_reference(s) else {
        let lower = s.to_lowercase();
        if lower != s && match_reference(&lower).is_some() {
            return Err(ReferenceError::Uppercase);
        }
        return Err(ReferenceError::InvalidFormat);
    };
    // Normalisation always puts a domain in front, but Docker's grammar falls back to reading
    // it all as a path when that "domain" is invalid (`a.b_c/d`), leaving a reference with no
    // registry. Nothing could pull or push such a name, so berth refuses it.
    let Some(domain) = parts.domain else {
        return Err(ReferenceError::InvalidFormat);
    };
    if parts.path.len() > NAME_MAX_LEN {
        return Err(ReferenceError::NameTooLong);
    }
    let digest = parts.digest.map(Digest::parse).transpose()?;
    Ok(Reference {
        domain: domain.to_owned(),
        path: parts.path.to_owned(),
        tag: parts.tag.map(str::to_owned),
        digest,
    })
}

/// The pieces of a string that follows the reference grammar.
struct Parts<'a> {
    domain: Option<&'a str>,
    path: &'a str,
    tag: Option<&'a str>,
    digest: Option<&'a str>,
}

/// Matches the whole reference grammar; `None` if `s` does not follow it.
fn match_reference(s: &str) -> Option<Parts<'_>> {
    let (name_tag, digest) = match s.split_once('@') {
        Some((name_tag, digest)) => (name_tag, Some(digest)),
        None => (s, None),
    };
    if digest.is_some_and(|d| !is_digest_shaped(d)) {
        return None;
    }
    // A ':' followed by a '/' belongs to a domain's port; the last ':' with no '/' after it
    // starts the tag.
    let (name, tag) = match name_tag.rsplit_once(':') {
        Some((name, tag)) if !tag.contains('/') => (name, Some(tag)),
        _ => (name_tag, None),
    };
    if tag.is_some_and(|t| !is_tag(t)) {
        return None;
    }
    let (domain, path) = split_name(name)?;
    Some(Parts {
        domain,
        path,
        tag,
        digest,
    })
}

/// Splits `name` into an optional domain and a path, preferring a domain as the grammar does.
fn split_name(name: &str) -> Option<(Option<&str>, &str)> {
    if let Some((first, rest)) = name.split_once('/')
        && is_domain(first)
        && is_path(rest)
    {
        return Some((Some(first), rest));
    }
    is_path(name).then_some((None, name))
}

fn is_path(s: &str) -> bool {
    s.split('/').all(is_path_component)
}

/// `[a-z0-9]+` runs joined by exactly one of `.`, `_`, `__` or a run of `-`.
fn is_path_component(s: &str) -> bool {
    let b = s.as_bytes();
    let alnum = |c: u8| c.is_ascii_lowercase() || c.is_ascii_digit();
    if !b.first().is_some_and(|&c| alnum(c)) || !b.last().is_some_and(|&c| alnum(c)) {
        return false;
    }
    b.split(|&c| alnum(c))
        .filter(|sep| !sep.is_empty())
        .all(|sep| matches!(sep, b"." | b"_" | b"__") || sep.iter().all(|&c| c == b'-'))
}

fn is_domain(s: &str) -> bool {
    let (host, port) = if s.starts_with('[') {
        // IPv6 in brackets; a zone id or anything but hex and ':' inside is refused.
        let Some(close) = s.find(']') else {
            return false;
        };
        let (host, after) = s.split_at(close + 1);
        match after {
            "" => (host, None),
            _ => match after.strip_prefix(':') {
                Some(port) => (host, Some(port)),
                None => return false,
            },
        }
    } else {
        match s.split_once(':') {
            Some((host, port)) => (host, Some(port)),
            None => (s, None),
        }
    };
    let host_ok = match host.strip_prefix('[').and_then(|h| h.strip_suffix(']')) {
        Some(addr) => !addr.is_empty() && addr.bytes().all(|c| c.is_ascii_hexdigit() || c == b':'),
        None => host.split('.').all(is_domain_component),
    };
    host_ok && port.is_none_or(|p| !p.is_empty() && p.bytes().all(|c| c.is_ascii_digit()))
}

fn is_domain_component(s: &str) -> bool {
    let b = s.as_bytes();
    match (b.first(), b.last()) {
        (Some(first), Some(last)) => {
            first.is_ascii_alphanumeric()
                && last.is_ascii_alphanumeric()
                && b.iter().all(|&c| c.is_ascii_alphanumeric() || c == b'-')
        }
        _ => false,
    }
}

/// `[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}`.
fn is_tag(s: &str) -> bool {
    let word = |c: u8| c.is_ascii_alphanumeric() || c == b'_';
    let b = s.as_bytes();
    b.len() <= TAG_MAX_LEN
        && b.first().is_some_and(|&c| word(c))
        && b.iter().all(|&c| word(c) || c == b'.' || c == b'-')
}

/// The reference grammar's digest shape: `[A-Za-z][A-Za-z0-9]*([-_+.][A-Za-z][A-Za-z0-9]*)*`,
/// `:`, then at least 32 hex digits of either case.
fn is_digest_shaped(s: &str) -> bool {
    let Some((algorithm, hex)) = s.split_once(':') else {
        return false;
    };
    let component_ok = |c: &str| {
        let b = c.as_bytes();
        b.first().is_some_and(u8::is_ascii_alphabetic) && b.iter().all(u8::is_ascii_alphanumeric)
    };
    algorithm.split(['-', '_', '+', '.']).all(component_ok)
        && hex.len() >= 32
        && hex.bytes().all(|c| c.is_ascii_hexdigit())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use proptest::prelude::*;

    const HEX: &str = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";

    fn parse(s: &str) -> Reference {
        Reference::parse_normalized(s).unwrap_or_else(|e| panic!("{s:?}: {e}"))
    }

    fn err(s: &str) -> ReferenceError {
        Reference::parse_normalized(s).unwrap_err()
    }

    #[test]
    fn normalises_like_docker() {
        // input, full form, familiar form
        let digest = format!("sha256:{HEX}");
        let cases = [
            ("busybox", "docker.io/library/busybox", "busybox"),
            (
                "busybox:1.36",
                "docker.io/library/busybox:1.36",
                "busybox:1.36",
            ),
            ("user/app", "docker.io/user/app", "user/app"),
            ("docker.io/busybox", "docker.io/library/busybox", "busybox"),
            (
                "docker.io/library/busybox:latest",
                "docker.io/library/busybox:latest",
                "busybox:latest",
            ),
            ("index.docker.io/user/app", "docker.io/user/app", "user/app"),
            (
                "docker.io/library/a/b",
                "docker.io/library/a/b",
                "library/a/b",
            ),
            ("localhost/x", "localhost/x", "localhost/x"),
            (
                "localhost:5000/a/b:tag",
                "localhost:5000/a/b:tag",
                "localhost:5000/a/b:tag",
            ),
            (
                "registry.example.com/a",
                "registry.example.com/a",
                "registry.example.com/a",
            ),
            (
                "Registry.Example.com/a",
                "Registry.Example.com/a",
                "Registry.Example.com/a",
            ),
            ("Foo/bar", "Foo/bar", "Foo/bar"),
            ("[::1]:5000/foo", "[::1]:5000/foo", "[::1]:5000/foo"),
            (
                "[2001:db8::1]/foo:v",
                "[2001:db8::1]/foo:v",
                "[2001:db8::1]/foo:v",
            ),
            ("example:5000/x", "example:5000/x", "example:5000/x"),
            ("localhost", "docker.io/library/localhost", "localhost"),
            (
                "localhost:5000",
                "docker.io/library/localhost:5000",
                "localhost:5000",
            ),
            (
                "a__b-c---e_f/g.h",
                "docker.io/a__b-c---e_f/g.h",
                "a__b-c---e_f/g.h",
            ),
            (
                "x:Tag_1.0-rc",
                "docker.io/library/x:Tag_1.0-rc",
                "x:Tag_1.0-rc",
            ),
            ("x:_", "docker.io/library/x:_", "x:_"),
        ];
        for (input, full, familiar) in cases {
            let r = parse(input);
            assert_eq!(r.to_string(), full, "{input}");
            assert_eq!(r.familiar_string(), familiar, "{input}");
            assert_eq!(parse(full), r, "{full} reparses");
        }
        let r = parse(&format!("127.0.0.1:5055/x@{digest}"));
        assert_eq!(r.domain(), "127.0.0.1:5055");
        assert_eq!(r.path(), "x");
        assert_eq!(r.tag(), None);
        assert_eq!(r.digest().unwrap().as_str(), digest);
        assert_eq!(r.familiar_string(), format!("127.0.0.1:5055/x@{digest}"));
    }

    #[test]
    fn accessors_and_default_tag() {
        let r = parse("busybox");
        assert_eq!(r.domain(), "docker.io");
        assert_eq!(r.path(), "library/busybox");
        assert_eq!(r.name(), "docker.io/library/busybox");
        assert!(r.is_name_only());
        let tagged = r.with_default_tag();
        assert_eq!(tagged.to_string(), "docker.io/library/busybox:latest");
        assert_eq!(tagged.familiar_string(), "busybox:latest");
        assert_eq!(tagged.familiar_name(), "busybox");
        assert_eq!(tagged.clone().name_only(), parse("busybox"));
        // An explicit tag or a digest is left alone.
        assert_eq!(parse("a:1").with_default_tag().tag(), Some("1"));
        let digested = parse(&format!("a@sha256:{HEX}")).with_default_tag();
        assert_eq!(digested.tag(), None);
    }

    #[test]
    fn name_tag_and_digest_together() {
        let r = parse(&format!("a:tag@sha256:{HEX}"));
        assert_eq!(
            r.to_string(),
            format!("docker.io/library/a:tag@sha256:{HEX}")
        );
        assert_eq!(r.tag(), Some("tag"));
        assert_eq!(r.digest().unwrap().hex(), HEX);
        assert_eq!(r.familiar_string(), format!("a:tag@sha256:{HEX}"));
        // What `docker pull` fetches: the digest wins over the tag.
        assert_eq!(
            r.docker_ref().to_string(),
            format!("docker.io/library/a@sha256:{HEX}")
        );
        assert_eq!(
            parse("a").docker_ref().to_string(),
            "docker.io/library/a:latest"
        );
    }

    #[test]
    fn with_tag_and_with_digest() {
        let d = Digest::parse(&format!("sha256:{HEX}")).unwrap();
        let r = parse("a").with_digest(d.clone()).with_tag("v1").unwrap();
        assert_eq!(r.tag(), Some("v1"));
        assert_eq!(r.digest(), Some(&d));
        for bad in ["", ".x", "-x", "a b", "x/y", "x:y", &"t".repeat(129)] {
            assert_eq!(
                parse("a").with_tag(bad),
                Err(ReferenceError::InvalidTag),
                "{bad:?}"
            );
        }
        assert!(parse("a").with_tag(&"t".repeat(128)).is_ok());
    }

    #[test]
    fn uppercase_repository_uses_dockers_message() {
        let e = err("Busybox");
        assert_eq!(
            e.to_string(),
            "invalid reference format: repository name (library/Busybox) must be lowercase"
        );
        assert_eq!(e.category(), Category::InvalidParameter);
        assert_eq!(
            err("UPPER/Case:1").to_string(),
            "invalid reference format: repository name (Case) must be lowercase"
        );
        assert_eq!(
            err("localhost:5000/Foo:bar").to_string(),
            "invalid reference format: repository name (Foo) must be lowercase"
        );
        // Docker checks up to the first ':', which here is inside the digest.
        assert_eq!(
            err(&format!("a@SHA256:{HEX}")).to_string(),
            "invalid reference format: repository name (library/a@SHA256) must be lowercase"
        );
    }

    #[test]
    fn rejects_hostile_input() {
        use ReferenceError as E;
        let cases: Vec<(String, ReferenceError)> = vec![
            (String::new(), E::InvalidFormat),
            ("../".into(), E::InvalidFormat),
            ("..".into(), E::InvalidFormat),
            ("a//b".into(), E::InvalidFormat),
            ("/a".into(), E::InvalidFormat),
            ("a/".into(), E::InvalidFormat),
            (":tag".into(), E::InvalidFormat),
            ("a:".into(), E::InvalidFormat),
            ("a@".into(), E::InvalidFormat),
            ("@sha256:abc".into(), E::InvalidFormat),
            ("a:b:c".into(), E::InvalidFormat),
            ("a:b/c".into(), E::InvalidFormat),
            ("a___b".into(), E::InvalidFormat),
            ("a..b".into(), E::InvalidFormat),
            ("a._b".into(), E::InvalidFormat),
            ("-a".into(), E::InvalidFormat),
            ("a-".into(), E::InvalidFormat),
            ("a b".into(), E::InvalidFormat),
            ("busybøx".into(), E::InvalidFormat),
            ("busy\0box".into(), E::InvalidFormat),
            ("a\n".into(), E::InvalidFormat),
            ("example.com:/a".into(), E::InvalidFormat),
            ("example.com:x/a".into(), E::InvalidFormat),
            ("-bad.com/a".into(), E::InvalidFormat),
            ("bad-.com/a".into(), E::InvalidFormat),
            ("a..com/x".into(), E::InvalidFormat),
            ("a.b_c/d".into(), E::InvalidFormat),
            ("[::1/x".into(), E::InvalidFormat),
            ("[]:5000/x".into(), E::InvalidFormat),
            ("[fe80::1%eth0]/x".into(), E::InvalidFormat),
            ("[::1]x/y".into(), E::InvalidFormat),
            ("localhost:5000/a:b:c".into(), E::InvalidFormat),
            (format!("a:{}", "t".repeat(129)), E::InvalidFormat),
            (format!("a:.{}", "t".repeat(3)), E::InvalidFormat),
            ("a".repeat(248), E::NameTooLong),
            ("a".repeat(1000), E::NameTooLong),
            (format!("x.io/{}", "a".repeat(256)), E::NameTooLong),
            ("a@sha256:abc".into(), E::InvalidFormat),
            (format!("a@sha256:{}", "g".repeat(64)), E::InvalidFormat),
            (
                format!("a@sha256:{}", &HEX[1..]),
                E::Digest(DigestError::InvalidLength),
            ),
            (
                format!("a@sha256:{HEX}0"),
                E::Digest(DigestError::InvalidLength),
            ),
            (
                format!("a@sha256:{}", HEX.to_uppercase()),
                E::Digest(DigestError::InvalidFormat),
            ),
            (
                format!("a@md5:{}", &HEX[..32]),
                E::Digest(DigestError::Unsupported),
            ),
            (format!("a@sha256:{HEX}@sha256:{HEX}"), E::InvalidFormat),
            (HEX.into(), E::HexIdentifier { input: HEX.into() }),
        ];
        for (input, want) in cases {
            assert_eq!(Reference::parse_normalized(&input), Err(want), "{input:?}");
        }
        // The limit is on the path alone: 247 + "library/" is exactly 255.
        assert!(Reference::parse_normalized(&"a".repeat(247)).is_ok());
        assert!(Reference::parse_normalized(&format!("x.io/{}", "a".repeat(255))).is_ok());
    }

    #[test]
    fn hex_identifier_message() {
        assert_eq!(
            err(HEX).to_string(),
            format!("invalid repository name ({HEX}), cannot specify 64-byte hexadecimal strings")
        );
        // A short or uppercase hex string is just a name.
        assert!(Reference::parse_normalized(&HEX[..12]).is_ok());
    }

    #[test]
    fn uppercase_outside_the_repository_is_reported_generically() {
        // Parse's own fallback: only lowercasing would make it valid.
        assert_eq!(parse_full("docker.io/a/B"), Err(ReferenceError::Uppercase));
        assert_eq!(parse_full(""), Err(ReferenceError::Empty));
    }

    #[test]
    fn any_reference() {
        let want = Digest::parse(&format!("sha256:{HEX}")).unwrap();
        assert_eq!(
            AnyReference::parse(HEX),
            Ok(AnyReference::Digest(want.clone()))
        );
        assert_eq!(
            AnyReference::parse(&format!("sha256:{HEX}")),
            Ok(AnyReference::Digest(want))
        );
        assert_eq!(
            AnyReference::parse("abc123"),
            Ok(AnyReference::Named(parse("abc123")))
        );
        assert!(AnyReference::parse("Bad").is_err());
    }

    #[test]
    fn serde_round_trip() {
        let r = parse("localhost:5000/a:1");
        let json = serde_json::to_string(&r).unwrap();
        assert_eq!(json, "\"localhost:5000/a:1\"");
        assert_eq!(serde_json::from_str::<Reference>(&json).unwrap(), r);
        assert!(serde_json::from_str::<Reference>("\"A\"").is_err());
    }

    fn component() -> impl Strategy<Value = String> {
        "[a-z0-9]{1,4}((\\.|_|__|-{1,3})[a-z0-9]{1,4}){0,2}"
    }

    /// A first component without '.', which Docker would take for a domain.
    fn first_component() -> impl Strategy<Value = String> {
        "[a-z0-9]{1,4}((_|__|-{1,3})[a-z0-9]{1,4}){0,2}"
    }

    fn reference_string() -> impl Strategy<Value = String> {
        let domain = proptest::option::of(prop_oneof![
            "[a-z0-9]{1,5}\\.[a-zA-Z0-9]([a-zA-Z0-9-]{0,4}[a-zA-Z0-9])?(:[0-9]{1,5})?",
            "localhost(:[0-9]{1,5})?",
            "\\[[0-9a-f]{0,4}:[0-9a-f:]{0,8}\\](:[0-9]{1,5})?",
        ]);
        let path = (
            first_component(),
            proptest::collection::vec(component(), 0..3),
        )
            .prop_map(|(first, rest)| [vec![first], rest].concat().join("/"));
        let tag = proptest::option::of("[A-Za-z0-9_][A-Za-z0-9_.-]{0,20}");
        let digest = proptest::option::of("[0-9a-f]{64}");
        (domain, path, tag, digest).prop_map(|(domain, path, tag, digest)| {
            let mut s = domain.map(|d| format!("{d}/")).unwrap_or_default() + &path;
            if let Some(t) = tag {
                s = format!("{s}:{t}");
            }
            if let Some(d) = digest {
                s = format!("{s}@sha256:{d}");
            }
            s
        })
    }

    proptest! {
        #[test]
        fn grammar_strings_parse_and_round_trip(s in reference_string()) {
            // A lone 64-hex path is refused on purpose; the generator cannot make one with
            // its short components.
            let r = Reference::parse_normalized(&s).unwrap();
            prop_assert_eq!(Reference::parse_normalized(&r.to_string()).unwrap(), r.clone());
            prop_assert_eq!(Reference::parse_normalized(&r.familiar_string()).unwrap(), r.clone());
            prop_assert!(r.to_string().ends_with(&s) || r.domain() == DEFAULT_DOMAIN);
        }

        #[test]
        fn parse_never_panics(s in any::<String>()) {
            if let Ok(r) = Reference::parse_normalized(&s) {
                prop_assert_eq!(Reference::parse_normalized(&r.to_string()).unwrap(), r);
            }
        }

        #[test]
        fn parse_never_panics_near_the_grammar(s in "[a-zA-Z0-9:/@._\\[\\]-]{0,40}") {
            if let Ok(r) = Reference::parse_normalized(&s) {
                prop_assert_eq!(Reference::parse_normalized(&r.to_string()).unwrap(), r.clone());
                prop_assert_eq!(Reference::parse_normalized(&r.familiar_string()).unwrap(), r);
            }
        }
    }
}
