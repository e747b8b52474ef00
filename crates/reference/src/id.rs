//! Object ids: random 64-hex ids (containers, execs, networks), image ids (config digests),
//! truncation to the 12-character short form, and unique-prefix lookup as `docker rm abc` does.

use std::borrow::Borrow;
use std::fmt;
use std::str::FromStr;

use berth_errdefs::{Category, HasCategory};

use crate::digest::{Algorithm, Digest, DigestError, is_lower_hex, push_hex};

/// Length of a full id in hex characters.
pub const ID_LEN: usize = 64;
/// Length of the short id Docker prints (`docker ps`, container hostnames).
pub const SHORT_ID_LEN: usize = 12;

/// Why an id is invalid.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IdError {
    /// Not exactly 64 lowercase hex characters.
    #[error("invalid id {id:?}: must be 64 lowercase hex characters")]
    Invalid {
        /// The offending input.
        id: String,
    },
    /// An image id that is not a valid sha256 digest.
    #[error("invalid image id {id:?}: {source}")]
    InvalidImageId {
        /// The offending input.
        id: String,
        /// What is wrong with it as a digest.
        source: DigestError,
    },
}

impl HasCategory for IdError {
    fn category(&self) -> Category {
        Category::InvalidParameter
    }
}

/// Why a prefix did not resolve to exactly one id. Messages are Docker's `truncindex` ones; the
/// engine wraps `NotFound` in its own `No such container: x`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PrefixError {
    /// An empty prefix would match everything.
    #[error("Prefix can't be empty")]
    Empty,
    /// More than one candidate starts with the prefix.
    #[error("multiple IDs found with provided prefix: {prefix}")]
    Ambiguous {
        /// The prefix looked up.
        prefix: String,
    },
    /// No candidate starts with the prefix.
    #[error("ID does not exist")]
    NotFound {
        /// The prefix looked up.
        prefix: String,
    },
}

impl HasCategory for PrefixError {
    fn category(&self) -> Category {
        match self {
            PrefixError::Empty | PrefixError::Ambiguous { .. } => Category::InvalidParameter,
            PrefixError::NotFound { .. } => Category::NotFound,
        }
    }
}

/// Finds the one candidate that equals `prefix` or starts with it.
///
/// An exact match wins even if other, longer candidates share it as a prefix. Otherwise two or
/// more matches are [`PrefixError::Ambiguous`], as `docker rm abc` reports when `abc` is not
/// unique. The caller strips any `sha256:` from image-id prefixes first.
pub fn resolve_prefix<'a, T, I>(candidates: I, prefix: &str) -> Result<&'a T, PrefixError>
where
    T: AsRef<str> + ?Sized + 'a,
    I: IntoIterator<Item = &'a T>,
{
    if prefix.is_empty() {
        return Err(PrefixError::Empty);
    }
    let mut found: Option<&'a T> = None;
    let mut ambiguous = false;
    for candidate in candidates {
        let s = candidate.as_ref();
        if s == prefix {
            return Ok(candidate);
        }
        if s.starts_with(prefix) {
            ambiguous |= found.is_some();
            found = Some(candidate);
        }
    }
    match found {
        _ if ambiguous => Err(PrefixError::Ambiguous {
            prefix: prefix.to_owned(),
        }),
        Some(candidate) => Ok(candidate),
        None => Err(PrefixError::NotFound {
            prefix: prefix.to_owned(),
        }),
    }
}

/// A fresh random 64-hex id, as Docker makes for containers, execs and networks.
///
/// Like Docker, an id whose 12-character short form is all digits is thrown away and drawn
/// again: the short id becomes the container's hostname, and an all-numeric hostname breaks
/// tools that take it for an address (moby issue #3869).
pub fn generate_id() -> String {
    loop {
        let mut bytes = [0u8; ID_LEN / 2];
        fill_random(&mut bytes);
        let mut id = String::with_capacity(ID_LEN);
        push_hex(&mut id, &bytes);
        if !id[..SHORT_ID_LEN].bytes().all(|c| c.is_ascii_digit()) {
            return id;
        }
    }
}

/// Fills `buf` from the kernel's random source.
pub(crate) fn fill_random(buf: &mut [u8]) {
    // getrandom(2) does not fail on the kernels berth supports once the pool is seeded (it
    // blocks until then); if it does, the host is broken beyond what any caller could handle,
    // so this panics like Docker's `GenerateRandomID` does.
    getrandom::fill(buf).expect("the kernel's random source failed");
}

/// True if `s` is a full id: exactly 64 lowercase hex characters.
pub fn is_full_id(s: &str) -> bool {
    s.len() == ID_LEN && is_lower_hex(s)
}

/// The short form of an id: any `algorithm:` prefix dropped, then the first 12 characters
/// (Docker's `stringid.TruncateID`). Shorter input is returned whole.
pub fn truncate_id(id: &str) -> &str {
    let id = id.split_once(':').map_or(id, |(_, rest)| rest);
    match id.char_indices().nth(SHORT_ID_LEN) {
        Some((end, _)) => &id[..end],
        None => id,
    }
}

/// A container's id: 64 lowercase hex characters.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ContainerId(String);

impl ContainerId {
    /// A new random id (see [`generate_id`]).
    pub fn generate() -> Self {
        Self(generate_id())
    }

    /// Accepts only a full id; prefixes are resolved with [`resolve_prefix`].
    pub fn parse(s: &str) -> Result<Self, IdError> {
        if is_full_id(s) {
            Ok(Self(s.to_owned()))
        } else {
            Err(IdError::Invalid { id: s.to_owned() })
        }
    }

    /// The full id.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The 12-character short id (also the container's default hostname).
    pub fn short(&self) -> &str {
        &self.0[..SHORT_ID_LEN]
    }
}

/// An image's id: the sha256 digest of its config, shown as `sha256:<hex>`.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ImageId(Digest);

impl ImageId {
    /// The id of the image whose config JSON is `config`.
    pub fn from_config(config: &[u8]) -> Self {
        Self(Digest::sha256_of(config))
    }

    /// Accepts `sha256:<64 hex>` or the bare 64 hex Docker also takes for an id.
    pub fn parse(s: &str) -> Result<Self, IdError> {
        let digest = if is_full_id(s) {
            Digest::parse(&format!("sha256:{s}"))
        } else {
            Digest::parse(s)
        };
        match digest {
            Ok(d) => Self::from_digest(d).map_err(|source| IdError::InvalidImageId {
                id: s.to_owned(),
                source,
            }),
            Err(source) => Err(IdError::InvalidImageId {
                id: s.to_owned(),
                source,
            }),
        }
    }

    /// Wraps a config digest; only sha256 digests are image ids.
    pub fn from_digest(digest: Digest) -> Result<Self, DigestError> {
        match digest.algorithm() {
            Algorithm::Sha256 => Ok(Self(digest)),
            _ => Err(DigestError::Unsupported),
        }
    }

    /// The config digest this id is.
    pub fn digest(&self) -> &Digest {
        &self.0
    }

    /// The 64 hex characters without `sha256:`.
    pub fn hex(&self) -> &str {
        self.0.hex()
    }

    /// The 12-character short id `docker images` prints.
    pub fn short(&self) -> &str {
        self.0.short_id()
    }

    /// `sha256:<hex>`.
    pub fn as_str(&self) -> &str {
        self.0.as_str()
    }
}

macro_rules! string_like {
    ($ty:ident, $name:literal) => {
        impl fmt::Display for $ty {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl fmt::Debug for $ty {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, concat!($name, "({})"), self.as_str())
            }
        }

        impl FromStr for $ty {
            type Err = IdError;
            fn from_str(s: &str) -> Result<Self, Self::Err> {
                Self::parse(s)
            }
        }

        impl AsRef<str> for $ty {
            fn as_ref(&self) -> &str {
                self.as_str()
            }
        }

        impl serde::Serialize for $ty {
            fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.serialize_str(self.as_str())
            }
        }

        impl<'de> serde::Deserialize<'de> for $ty {
            fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                let s = String::deserialize(d)?;
                Self::parse(&s).map_err(serde::de::Error::custom)
            }
        }
    };
}

string_like!(ContainerId, "ContainerId");
string_like!(ImageId, "ImageId");

// Lets a map keyed by ContainerId be looked up with a plain &str; the string is the whole
// identity, so Hash/Eq/Ord agree with str's.
impl Borrow<str> for ContainerId {
    fn borrow(&self) -> &str {
        &self.0
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn generated_ids_are_full_unique_and_not_numeric_short() {
        let mut seen = std::collections::HashSet::new();
        for _ in 0..200 {
            let id = ContainerId::generate();
            assert!(is_full_id(id.as_str()), "{id}");
            assert!(!id.short().bytes().all(|c| c.is_ascii_digit()));
            assert!(seen.insert(id));
        }
    }

    #[test]
    fn container_id_parse_rejects_hostile_input() {
        let good = "a".repeat(64);
        assert!(ContainerId::parse(&good).is_ok());
        for bad in [
            String::new(),
            "a".repeat(63),
            "a".repeat(65),
            "A".repeat(64),
            format!("{}g", "a".repeat(63)),
            format!("{}\0", "a".repeat(63)),
            format!("{}é", "a".repeat(62)),
            format!("sha256:{}", "a".repeat(64)),
        ] {
            let err = ContainerId::parse(&bad).unwrap_err();
            assert_eq!(err.category(), Category::InvalidParameter, "{bad:?}");
        }
    }

    #[test]
    fn truncate_id_like_docker() {
        let hex = "0123456789abcdef".repeat(4);
        assert_eq!(truncate_id(&hex), "0123456789ab");
        assert_eq!(truncate_id(&format!("sha256:{hex}")), "0123456789ab");
        assert_eq!(truncate_id("abc"), "abc");
        assert_eq!(truncate_id(""), "");
        // Never splits a character, whatever it is given.
        assert_eq!(truncate_id("ééééééééééééé"), "éééééééééééé");
    }

    #[test]
    fn image_id_forms() {
        let id = ImageId::from_config(b"{}");
        assert_eq!(id.as_str(), format!("sha256:{}", id.hex()));
        assert_eq!(ImageId::parse(id.as_str()).unwrap(), id);
        assert_eq!(ImageId::parse(id.hex()).unwrap(), id);
        assert_eq!(id.short().len(), 12);
        assert_eq!(id.to_string(), id.as_str());
        let sha512 = format!("sha512:{}", "a".repeat(128));
        assert!(matches!(
            ImageId::parse(&sha512),
            Err(IdError::InvalidImageId {
                source: DigestError::Unsupported,
                ..
            })
        ));
        assert!(ImageId::parse("sha256:abc").is_err());
        assert!(ImageId::parse(&"A".repeat(64)).is_err());
    }

    #[test]
    fn serde_round_trip() {
        let c = ContainerId::generate();
        let json = serde_json::to_string(&c).unwrap();
        assert_eq!(serde_json::from_str::<ContainerId>(&json).unwrap(), c);
        assert!(serde_json::from_str::<ContainerId>("\"abc\"").is_err());
        let i = ImageId::from_config(b"x");
        let json = serde_json::to_string(&i).unwrap();
        assert_eq!(serde_json::from_str::<ImageId>(&json).unwrap(), i);
    }

    #[test]
    fn map_keyed_by_container_id_is_searchable_by_str() {
        let id = ContainerId::generate();
        let map = std::collections::HashMap::from([(id.clone(), 1)]);
        assert_eq!(map.get(id.as_str()), Some(&1));
    }

    #[test]
    fn resolve_prefix_unique_ambiguous_missing_empty() {
        let ids = ["abc123", "abd456", "ffff00"];
        assert_eq!(resolve_prefix(ids.iter(), "abc"), Ok(&"abc123"));
        assert_eq!(resolve_prefix(ids.iter(), "f"), Ok(&"ffff00"));
        assert_eq!(resolve_prefix(ids.iter(), "abc123"), Ok(&"abc123"));
        let err = resolve_prefix(ids.iter(), "ab").unwrap_err();
        assert_eq!(
            err.to_string(),
            "multiple IDs found with provided prefix: ab"
        );
        assert_eq!(err.category(), Category::InvalidParameter);
        let err = resolve_prefix(ids.iter(), "0").unwrap_err();
        assert_eq!(err.category(), Category::NotFound);
        assert_eq!(resolve_prefix(ids.iter(), ""), Err(PrefixError::Empty));
        let none: [&str; 0] = [];
        assert!(matches!(
            resolve_prefix(none.iter(), "a"),
            Err(PrefixError::NotFound { .. })
        ));
    }

    #[test]
    fn resolve_prefix_prefers_exact_match() {
        let ids = ["abc", "abcdef"];
        assert_eq!(resolve_prefix(ids.iter(), "abc"), Ok(&"abc"));
        assert!(resolve_prefix(ids.iter(), "ab").is_err());
    }

    #[test]
    fn resolve_prefix_over_owned_ids() {
        let ids: Vec<ContainerId> = (0..3).map(|_| ContainerId::generate()).collect();
        let target = &ids[1];
        let found = resolve_prefix(ids.iter(), target.as_str()).unwrap();
        assert_eq!(found, target);
    }

    proptest! {
        #[test]
        fn every_prefix_of_a_lone_id_resolves(len in 1usize..=64) {
            let id = generate_id();
            let ids = [id.as_str()];
            prop_assert_eq!(resolve_prefix(ids.iter(), &id[..len]), Ok(&id.as_str()));
        }

        #[test]
        fn truncate_id_never_panics(s in "\\PC*") {
            prop_assert!(truncate_id(&s).chars().count() <= SHORT_ID_LEN);
        }
    }
}
