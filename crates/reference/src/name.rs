//! Container names: Docker's validation rule, the leading-`/` convention, and random
//! `adjective_surname` names for containers created without `--name`.

use std::borrow::Borrow;
use std::fmt;
use std::str::FromStr;

use berth_errdefs::{Category, HasCategory};

use crate::id::fill_random;

/// A container name Docker would refuse.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("Invalid container name ({name}), only [a-zA-Z0-9][a-zA-Z0-9_.-] are allowed")]
pub struct NameError {
    /// The name exactly as given (with its `/`, if any, as Docker reports it).
    pub name: String,
}

impl HasCategory for NameError {
    fn category(&self) -> Category {
        Category::InvalidParameter
    }
}

/// A valid container name.
///
/// Docker stores and reports names with a leading `/` (`"Name": "/web"`, `"Names": ["/web"]`)
/// but events, `docker ps` and the CLI use the bare form; both are available without
/// allocating.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ContainerName(
    /// Always `/` + a name matching `[a-zA-Z0-9][a-zA-Z0-9_.-]+`.
    String,
);

impl ContainerName {
    /// Validates a user-supplied name; one leading `/` is allowed and ignored.
    ///
    /// The rule needs at least two characters: Docker's pattern is
    /// `[a-zA-Z0-9][a-zA-Z0-9_.-]+`, so `--name a` is refused.
    pub fn parse(name: &str) -> Result<Self, NameError> {
        let bare = name.strip_prefix('/').unwrap_or(name);
        if is_valid_bare_name(bare) {
            Ok(Self(format!("/{bare}")))
        } else {
            Err(NameError {
                name: name.to_owned(),
            })
        }
    }

    /// A random `adjective_surname` name (see [`random_name`]).
    pub fn random(retry: u32) -> Self {
        Self(format!("/{}", random_name(retry)))
    }

    /// The name without its `/` (`web`), as the CLI and events show it.
    pub fn as_str(&self) -> &str {
        &self.0[1..]
    }

    /// The name with its `/` (`/web`), as the API's `Name` and `Names` fields carry it.
    pub fn with_slash(&self) -> &str {
        &self.0
    }
}

fn is_valid_bare_name(s: &str) -> bool {
    let b = s.as_bytes();
    b.len() >= 2
        && b[0].is_ascii_alphanumeric()
        && b[1..]
            .iter()
            .all(|&c| c.is_ascii_alphanumeric() || matches!(c, b'_' | b'.' | b'-'))
}

impl fmt::Display for ContainerName {
    /// The bare name.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl fmt::Debug for ContainerName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ContainerName({})", self.0)
    }
}

impl FromStr for ContainerName {
    type Err = NameError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s)
    }
}

// Lookups by "/name" in a map keyed by ContainerName; the slashed form is the whole identity.
impl Borrow<str> for ContainerName {
    fn borrow(&self) -> &str {
        &self.0
    }
}

impl serde::Serialize for ContainerName {
    /// Serialised with the `/`, the form Docker keeps on disk and on the wire.
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.0)
    }
}

impl<'de> serde::Deserialize<'de> for ContainerName {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        Self::parse(&s).map_err(serde::de::Error::custom)
    }
}

/// A random `adjective_surname` name, as Docker gives unnamed containers.
///
/// `retry` is how many names were already taken: from the first retry on, a random digit is
/// appended (`eager_noether3`) to make a clash less likely, as Docker does. The pairing
/// `boring_wozniak` is never produced (Steve Wozniak is not boring).
pub fn random_name(retry: u32) -> String {
    loop {
        let name = format!("{}_{}", pick(ADJECTIVES), pick(SURNAMES),);
        if name == "boring_wozniak" {
            continue;
        }
        if retry > 0 {
            return format!("{name}{}", random_below(10));
        }
        return name;
    }
}

fn pick(list: &'static [&'static str]) -> &'static str {
    list[random_below(list.len())]
}

/// A random number in `0..n`; the modulo bias over 64 bits is far below anything a name
/// could show.
fn random_below(n: usize) -> usize {
    let mut bytes = [0u8; 8];
    fill_random(&mut bytes);
    let r = u64::from_ne_bytes(bytes);
    // n is a list length, so it fits u64 and the remainder fits usize.
    usize::try_from(r % n as u64).unwrap_or(0)
}

/// Adjectives for generated names; lowercase ASCII letters only.
pub(crate) const ADJECTIVES: &[&str] = &[
    "agile", "amiable", "ardent", "astute", "awesome", "blissful", "bold", "boring", "brave",
    "breezy", "bright", "brisk", "busy", "calm", "candid", "careful", "charming", "cheerful",
    "clever", "cosmic", "crisp", "curious", "daring", "dazzling", "deft", "diligent", "dreamy",
    "dynamic", "eager", "earnest", "elated", "elegant", "epic", "fearless", "fervent", "festive",
    "fluent", "focused", "frank", "friendly", "frosty", "gallant", "gentle", "gifted", "gleeful",
    "glowing", "graceful", "happy", "hardy", "hearty", "helpful", "honest", "hopeful", "humble",
    "jolly", "jovial", "keen", "kind", "lively", "loyal", "lucid", "lucky", "magical", "mellow",
    "merry", "mighty", "modest", "nimble", "noble", "patient", "peaceful", "placid", "plucky",
    "polite", "proud", "quick", "quiet", "radiant", "rapid", "serene", "sharp", "shiny", "sincere",
    "snappy", "spirited", "splendid", "steady", "sturdy", "sunny", "swift", "tender", "thirsty",
    "tidy", "tranquil", "trusty", "upbeat", "valiant", "vibrant", "vigilant", "vivid", "warm",
    "wise", "witty", "zealous", "zen",
];

/// Surnames of notable scientists and engineers; lowercase ASCII letters only.
pub(crate) const SURNAMES: &[&str] = &[
    "agnesi",
    "allen",
    "ampere",
    "archimedes",
    "babbage",
    "backus",
    "bardeen",
    "bartik",
    "bell",
    "bernerslee",
    "bohr",
    "boole",
    "brattain",
    "cerf",
    "chandrasekhar",
    "clarke",
    "conway",
    "copernicus",
    "corbato",
    "cray",
    "curie",
    "darwin",
    "dijkstra",
    "dirac",
    "easley",
    "edison",
    "einstein",
    "engelbart",
    "euclid",
    "euler",
    "faraday",
    "fermi",
    "feynman",
    "franklin",
    "galileo",
    "gauss",
    "goldberg",
    "goodall",
    "hamilton",
    "hawking",
    "heisenberg",
    "hamming",
    "hodgkin",
    "hopper",
    "hypatia",
    "jackson",
    "jemison",
    "johnson",
    "joule",
    "kare",
    "kepler",
    "kernighan",
    "khorana",
    "knuth",
    "kowalevski",
    "lamarr",
    "lamport",
    "leakey",
    "lovelace",
    "maxwell",
    "mcclintock",
    "meitner",
    "mendel",
    "mirzakhani",
    "moore",
    "morse",
    "napier",
    "newton",
    "nightingale",
    "nobel",
    "noether",
    "noyce",
    "ohm",
    "pascal",
    "pasteur",
    "pauling",
    "perlman",
    "planck",
    "raman",
    "ritchie",
    "rubin",
    "rutherford",
    "sagan",
    "salk",
    "shannon",
    "shockley",
    "sinoussi",
    "somerville",
    "stallman",
    "tesla",
    "thompson",
    "torvalds",
    "turing",
    "volta",
    "vonneumann",
    "watt",
    "wiles",
    "wilson",
    "wing",
    "wozniak",
    "wu",
    "yalow",
    "yonath",
    "zuse",
];

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn accepts_docker_names_with_or_without_slash() {
        for ok in ["wire-x", "/wire-x", "a1", "A.b_c-d", "0_", "x..", "web.1"] {
            let n = ContainerName::parse(ok).unwrap();
            assert_eq!(n.as_str(), ok.trim_start_matches('/'));
            assert_eq!(n.with_slash(), format!("/{}", n.as_str()));
        }
    }

    #[test]
    fn rejects_with_dockers_message() {
        let err = ContainerName::parse("wire bad!").unwrap_err();
        assert_eq!(
            err.to_string(),
            "Invalid container name (wire bad!), only [a-zA-Z0-9][a-zA-Z0-9_.-] are allowed"
        );
        assert_eq!(err.category(), Category::InvalidParameter);
        // Docker reports the name as it was given, slash included.
        assert_eq!(
            ContainerName::parse("/a b").unwrap_err().to_string(),
            "Invalid container name (/a b), only [a-zA-Z0-9][a-zA-Z0-9_.-] are allowed"
        );
    }

    #[test]
    fn rejects_hostile_names() {
        for bad in [
            "", "/", "a", "/a", "//ab", "-ab", "_ab", ".ab", "a/b", "a b", "ab\0", "ébc", "a:b",
            "../x", "ab\n",
        ] {
            assert!(ContainerName::parse(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn serde_keeps_the_slash() {
        let n = ContainerName::parse("web").unwrap();
        let json = serde_json::to_string(&n).unwrap();
        assert_eq!(json, "\"/web\"");
        assert_eq!(serde_json::from_str::<ContainerName>(&json).unwrap(), n);
        assert!(serde_json::from_str::<ContainerName>("\"a b\"").is_err());
    }

    #[test]
    fn word_lists_make_valid_distinct_names() {
        for list in [ADJECTIVES, SURNAMES] {
            assert!(list.len() >= 100, "{}", list.len());
            let mut seen = std::collections::HashSet::new();
            for w in list {
                assert!(
                    !w.is_empty() && w.bytes().all(|c| c.is_ascii_lowercase()),
                    "{w}"
                );
                assert!(seen.insert(w), "{w} twice");
            }
        }
        // The one pairing random_name skips must be possible, or the rule is dead code.
        assert!(ADJECTIVES.contains(&"boring") && SURNAMES.contains(&"wozniak"));
    }

    #[test]
    fn random_names_are_valid_and_retry_adds_a_digit() {
        for _ in 0..500 {
            let name = random_name(0);
            let (adjective, surname) = name.split_once('_').unwrap();
            assert!(ADJECTIVES.contains(&adjective) && SURNAMES.contains(&surname));
            assert_ne!(name, "boring_wozniak");
            assert!(ContainerName::parse(&name).is_ok());

            let retried = random_name(2);
            let last = retried.as_bytes()[retried.len() - 1];
            assert!(last.is_ascii_digit(), "{retried}");
            assert!(ContainerName::random(1).with_slash().starts_with('/'));
        }
    }

    proptest! {
        #[test]
        fn parse_agrees_with_the_pattern(s in "/?[a-zA-Z0-9_. /!-]{0,12}") {
            let bare = s.strip_prefix('/').unwrap_or(&s);
            let mut chars = bare.chars();
            let expected = bare.len() >= 2
                && chars.next().is_some_and(|c| c.is_ascii_alphanumeric())
                && chars.all(|c| c.is_ascii_alphanumeric() || "_.-".contains(c));
            prop_assert_eq!(ContainerName::parse(&s).is_ok(), expected);
        }
    }
}
