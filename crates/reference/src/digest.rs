//! Content digests (`sha256:<64 lowercase hex>`), validated as the OCI `go-digest` package does.

use std::fmt;
use std::io;
use std::str::FromStr;

use berth_errdefs::{Category, HasCategory};
use sha2::Digest as _;

/// A hash algorithm a [`Digest`] may use.
///
/// These are the algorithms `go-digest` registers; any other algorithm name that is well-formed
/// is rejected as unsupported rather than as malformed, as Docker does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Algorithm {
    /// SHA-256, the canonical algorithm for image content and ids.
    Sha256,
    /// SHA-384.
    Sha384,
    /// SHA-512.
    Sha512,
}

impl Algorithm {
    /// The name written before the `:` (`"sha256"`).
    pub const fn as_str(self) -> &'static str {
        match self {
            Algorithm::Sha256 => "sha256",
            Algorithm::Sha384 => "sha384",
            Algorithm::Sha512 => "sha512",
        }
    }

    /// How many hex characters an encoded hash of this algorithm has.
    pub const fn hex_len(self) -> usize {
        match self {
            Algorithm::Sha256 => 64,
            Algorithm::Sha384 => 96,
            Algorithm::Sha512 => 128,
        }
    }

    fn from_name(name: &str) -> Option<Self> {
        match name {
            "sha256" => Some(Algorithm::Sha256),
            "sha384" => Some(Algorithm::Sha384),
            "sha512" => Some(Algorithm::Sha512),
            _ => None,
        }
    }
}

impl fmt::Display for Algorithm {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Why a string is not a valid digest. The messages are `go-digest`'s.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DigestError {
    /// No `algorithm:hex` shape, or non-hex / uppercase hex in a known algorithm.
    #[error("invalid checksum digest format")]
    InvalidFormat,
    /// A known algorithm with the wrong number of hex characters.
    #[error("invalid checksum digest length")]
    InvalidLength,
    /// A well-formed digest of an algorithm berth does not know.
    #[error("unsupported digest algorithm")]
    Unsupported,
}

impl HasCategory for DigestError {
    fn category(&self) -> Category {
        Category::InvalidParameter
    }
}

/// A validated content digest such as `sha256:6e9f…` (lowercase hex of the right length).
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Digest {
    algorithm: Algorithm,
    /// The whole `algorithm:hex` text, kept so `as_str` and `Display` need no allocation.
    text: String,
}

impl Digest {
    /// Parses and validates `algorithm:hex`.
    pub fn parse(s: &str) -> Result<Self, DigestError> {
        let (name, hex) = match s.split_once(':') {
            Some((name, hex)) if !name.is_empty() && !hex.is_empty() => (name, hex),
            _ => return Err(DigestError::InvalidFormat),
        };
        let Some(algorithm) = Algorithm::from_name(name) else {
            // go-digest tells a well-formed digest of an unknown algorithm apart from junk.
            return Err(if is_well_formed_unknown(name, hex) {
                DigestError::Unsupported
            } else {
                DigestError::InvalidFormat
            });
        };
        if hex.len() != algorithm.hex_len() {
            return Err(DigestError::InvalidLength);
        }
        if !is_lower_hex(hex) {
            return Err(DigestError::InvalidFormat);
        }
        Ok(Self {
            algorithm,
            text: s.to_owned(),
        })
    }

    /// The SHA-256 digest of `bytes`.
    pub fn sha256_of(bytes: &[u8]) -> Self {
        Self::from_sha256_hash(&sha2::Sha256::digest(bytes).into())
    }

    /// The digest for a finished SHA-256 hash (for callers that hash in a stream).
    pub fn from_sha256_hash(hash: &[u8; 32]) -> Self {
        let mut text = String::with_capacity(7 + 64);
        text.push_str("sha256:");
        push_hex(&mut text, hash);
        Self {
            algorithm: Algorithm::Sha256,
            text,
        }
    }

    /// The algorithm.
    pub fn algorithm(&self) -> Algorithm {
        self.algorithm
    }

    /// The encoded hash, without the `algorithm:` prefix.
    pub fn hex(&self) -> &str {
        &self.text[self.algorithm.as_str().len() + 1..]
    }

    /// The first 12 hex characters, as `docker images` shows an image id.
    pub fn short_id(&self) -> &str {
        &self.hex()[..12]
    }

    /// The whole `algorithm:hex` text.
    pub fn as_str(&self) -> &str {
        &self.text
    }
}

impl fmt::Display for Digest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

impl fmt::Debug for Digest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Digest({})", self.text)
    }
}

impl FromStr for Digest {
    type Err = DigestError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s)
    }
}

impl AsRef<str> for Digest {
    fn as_ref(&self) -> &str {
        &self.text
    }
}

impl serde::Serialize for Digest {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.text)
    }
}

impl<'de> serde::Deserialize<'de> for Digest {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        Self::parse(&s).map_err(serde::de::Error::custom)
    }
}

/// Computes a SHA-256 [`Digest`] over data written to it in pieces.
///
/// Implements [`io::Write`], so it can sit behind `io::copy` or a tee while a blob streams in.
#[derive(Debug, Clone, Default)]
pub struct Sha256Digester {
    hasher: sha2::Sha256,
}

impl Sha256Digester {
    /// A digester that has seen no data yet.
    pub fn new() -> Self {
        Self::default()
    }

    /// Feeds more data.
    pub fn update(&mut self, bytes: &[u8]) {
        self.hasher.update(bytes);
    }

    /// The digest of everything fed so far.
    pub fn finish(self) -> Digest {
        Digest::from_sha256_hash(&self.hasher.finalize().into())
    }
}

impl io::Write for Sha256Digester {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.update(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// Lowercase hex, the only encoding Docker accepts for digests and ids.
pub(crate) fn is_lower_hex(s: &str) -> bool {
    s.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}

pub(crate) fn push_hex(out: &mut String, bytes: &[u8]) {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    for b in bytes {
        out.push(char::from(HEX[usize::from(b >> 4)]));
        out.push(char::from(HEX[usize::from(b & 0xf)]));
    }
}

/// go-digest's `DigestRegexp`: `[a-z0-9]+(?:[.+_-][a-z0-9]+)*:[a-zA-Z0-9=_-]+`.
fn is_well_formed_unknown(name: &str, encoded: &str) -> bool {
    let name_ok = name.split(['.', '+', '_', '-']).all(|part| {
        !part.is_empty()
            && part
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit())
    });
    let encoded_ok = encoded
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'=' | b'_' | b'-'));
    name_ok && encoded_ok
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use proptest::prelude::*;

    const EMPTY_SHA256: &str =
        "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";

    #[test]
    fn sha256_of_known_vectors() {
        assert_eq!(Digest::sha256_of(b"").as_str(), EMPTY_SHA256);
        assert_eq!(
            Digest::sha256_of(b"abc").hex(),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }

    #[test]
    fn streaming_digester_matches_one_shot() {
        let mut d = Sha256Digester::new();
        io::Write::write_all(&mut d, b"a").unwrap();
        d.update(b"bc");
        assert_eq!(d.finish(), Digest::sha256_of(b"abc"));
    }

    #[test]
    fn parse_accepts_known_algorithms() {
        let d = Digest::parse(EMPTY_SHA256).unwrap();
        assert_eq!(d.algorithm(), Algorithm::Sha256);
        assert_eq!(d.short_id(), "e3b0c44298fc");
        let sha512 = format!("sha512:{}", "ab".repeat(64));
        assert_eq!(
            Digest::parse(&sha512).unwrap().algorithm(),
            Algorithm::Sha512
        );
        let sha384 = format!("sha384:{}", "0".repeat(96));
        assert_eq!(
            Digest::parse(&sha384).unwrap().algorithm(),
            Algorithm::Sha384
        );
    }

    #[test]
    fn parse_rejects_hostile_input_with_go_digest_errors() {
        let cases: &[(&str, DigestError)] = &[
            ("", DigestError::InvalidFormat),
            ("sha256", DigestError::InvalidFormat),
            ("sha256:", DigestError::InvalidFormat),
            (":abc", DigestError::InvalidFormat),
            ("sha256:abc", DigestError::InvalidLength),
            (
                &EMPTY_SHA256[..EMPTY_SHA256.len() - 1],
                DigestError::InvalidLength,
            ),
            (&format!("{EMPTY_SHA256}0"), DigestError::InvalidLength),
            (
                &EMPTY_SHA256.to_uppercase().replace("SHA256", "sha256"),
                DigestError::InvalidFormat,
            ),
            (
                &format!("sha256:{}", "g".repeat(64)),
                DigestError::InvalidFormat,
            ),
            (
                &format!("sha256:{}\0", "a".repeat(63)),
                DigestError::InvalidFormat,
            ),
            (
                &format!("sha256:{}é", "a".repeat(62)),
                DigestError::InvalidFormat,
            ),
            (
                &format!("SHA256:{}", "a".repeat(64)),
                DigestError::InvalidFormat,
            ),
            (&format!("md5:{}", "a".repeat(32)), DigestError::Unsupported),
            ("sha256+b64:abc=", DigestError::Unsupported),
            ("bad alg:abc", DigestError::InvalidFormat),
            ("sha256::", DigestError::InvalidLength),
        ];
        for (input, want) in cases {
            assert_eq!(Digest::parse(input).as_ref(), Err(want), "{input:?}");
        }
    }

    #[test]
    fn serde_round_trip_and_rejects_invalid() {
        let d = Digest::sha256_of(b"x");
        let json = serde_json::to_string(&d).unwrap();
        assert_eq!(json, format!("\"{d}\""));
        assert_eq!(serde_json::from_str::<Digest>(&json).unwrap(), d);
        assert!(serde_json::from_str::<Digest>("\"sha256:zz\"").is_err());
    }

    #[test]
    fn errors_are_invalid_parameter() {
        assert_eq!(
            DigestError::Unsupported.category(),
            Category::InvalidParameter
        );
    }

    proptest! {
        #[test]
        fn parse_never_panics(s in "\\PC*") {
            let _ = Digest::parse(&s);
        }

        #[test]
        fn computed_digests_reparse(bytes in proptest::collection::vec(any::<u8>(), 0..256)) {
            let d = Digest::sha256_of(&bytes);
            prop_assert_eq!(Digest::parse(d.as_str()).unwrap(), d);
        }
    }
}
