//! The Engine API's `filters` query parameter: a JSON map from a filter key to a set of values,
//! `{"label":{"a=b":true},"status":{"running":true}}`, or the pre-1.22 list form
//! `{"label":["a=b"]}`. Matching follows moby's `filters.Args`.
//!
//! The boolean in the set form carries no meaning (Docker ignores it too); a value is in the
//! set if it is a key of the inner object. Keys are kept sorted so errors and JSON output are
//! deterministic.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::hash::BuildHasher;

use berth_errdefs::{Category, HasCategory};

/// A filter parameter that cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum FilterError {
    /// The parameter is not JSON of either accepted shape. Docker's message says no more.
    #[error("invalid filter")]
    InvalidJson {
        /// The JSON parser's complaint about the set form, for logs.
        #[source]
        source: serde_json::Error,
    },
    /// A key the endpoint does not support, or values a key cannot take.
    #[error("invalid filter '{key}{}'", values.as_ref().map(|v| format!("=[{}]", v.join(" "))).unwrap_or_default())]
    Invalid {
        /// The filter key.
        key: String,
        /// The values, when they are what is wrong (`dangling=[maybe]`).
        values: Option<Vec<String>>,
    },
}

impl HasCategory for FilterError {
    fn category(&self) -> Category {
        Category::InvalidParameter
    }
}

/// Something labels can be looked up in: the container's, image's, volume's or network's
/// label map.
pub trait LabelLookup {
    /// The value of label `key`, if set.
    fn label(&self, key: &str) -> Option<&str>;
}

impl<S: BuildHasher> LabelLookup for HashMap<String, String, S> {
    fn label(&self, key: &str) -> Option<&str> {
        self.get(key).map(String::as_str)
    }
}

impl LabelLookup for BTreeMap<String, String> {
    fn label(&self, key: &str) -> Option<&str> {
        self.get(key).map(String::as_str)
    }
}

/// Parsed `filters`: each key with its set of values.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Filters {
    fields: BTreeMap<String, BTreeSet<String>>,
}

impl Filters {
    /// No filters.
    pub fn new() -> Self {
        Self::default()
    }

    /// Parses the query parameter (already URL-decoded). An empty string means no filters.
    pub fn parse(json: &str) -> Result<Self, FilterError> {
        if json.is_empty() {
            return Ok(Self::new());
        }
        // Docker accepts `null` for the whole map and for a key's set; a null set still
        // makes `contains` true, with no values.
        type SetForm = Option<BTreeMap<String, Option<BTreeMap<String, bool>>>>;
        type ListForm = Option<BTreeMap<String, Option<Vec<String>>>>;
        let fields = match serde_json::from_str::<SetForm>(json) {
            Ok(set) => collect(set, |values| values.into_keys()),
            Err(source) => match serde_json::from_str::<ListForm>(json) {
                Ok(list) => collect(list, Vec::into_iter),
                Err(_) => return Err(FilterError::InvalidJson { source }),
            },
        };
        Ok(Self { fields })
    }

    /// The set form, as the docker CLI sends it (`{}` when empty).
    pub fn to_json(&self) -> String {
        let set: BTreeMap<&str, BTreeMap<&str, bool>> = self
            .fields
            .iter()
            .map(|(k, values)| {
                (
                    k.as_str(),
                    values.iter().map(|v| (v.as_str(), true)).collect(),
                )
            })
            .collect();
        // A map of strings to maps of bools always serialises.
        serde_json::to_string(&set).unwrap_or_else(|_| String::from("{}"))
    }

    /// Adds `value` to `key`'s set.
    pub fn add(&mut self, key: impl Into<String>, value: impl Into<String>) {
        self.fields
            .entry(key.into())
            .or_default()
            .insert(value.into());
    }

    /// True if no key is set.
    pub fn is_empty(&self) -> bool {
        self.fields.is_empty()
    }

    /// How many keys are set.
    pub fn len(&self) -> usize {
        self.fields.len()
    }

    /// The keys, sorted.
    pub fn keys(&self) -> impl Iterator<Item = &str> {
        self.fields.keys().map(String::as_str)
    }

    /// The values of `key`, sorted; empty if the key is absent.
    pub fn get(&self, key: &str) -> Vec<&str> {
        self.fields
            .get(key)
            .map(|values| values.iter().map(String::as_str).collect())
            .unwrap_or_default()
    }

    /// True if `key` was given at all (even with no values).
    pub fn contains(&self, key: &str) -> bool {
        self.fields.contains_key(key)
    }

    /// True if `key` has no values (so does not filter) or `source` is one of them.
    pub fn exact_match(&self, key: &str, source: &str) -> bool {
        self.values(key)
            .is_none_or(|values| values.contains(source))
    }

    /// True if `key` has no values, or `source` equals or starts with one of them (how
    /// Docker matches an `id` filter against a full id).
    pub fn fuzzy_match(&self, key: &str, source: &str) -> bool {
        self.values(key)
            .is_none_or(|values| values.iter().any(|v| source.starts_with(v.as_str())))
    }

    /// True if `key` has no values, or every value matches `labels`: `k` needs label `k` set,
    /// `k=v` needs it set to `v`.
    pub fn match_kv_list(&self, key: &str, labels: &impl LabelLookup) -> bool {
        self.values(key).is_none_or(|values| {
            values.iter().all(|value| {
                let (k, want) = match value.split_once('=') {
                    Some((k, v)) => (k, Some(v)),
                    None => (value.as_str(), None),
                };
                labels
                    .label(k)
                    .is_some_and(|have| want.is_none_or(|want| want == have))
            })
        })
    }

    /// Docker's label filtering for list and prune: every `label` value must match, and if
    /// `label!` was given (the CLI's `--filter label!=k=v`), its values must not all match.
    pub fn match_labels(&self, labels: &impl LabelLookup) -> bool {
        // A `label!` key with no values matches everything, so excludes everything, as in
        // Docker.
        self.match_kv_list("label", labels)
            && !(self.contains("label!") && self.match_kv_list("label!", labels))
    }

    /// The boolean value of `key` (`true`/`1` or `false`/`0`), or `default` if the key is
    /// absent. Both or neither → `invalid filter 'key=[values]'`, as for `dangling=maybe`.
    pub fn get_bool_or_default(&self, key: &str, default: bool) -> Result<bool, FilterError> {
        let Some(values) = self.fields.get(key) else {
            return Ok(default);
        };
        if values.is_empty() {
            return Err(FilterError::Invalid {
                key: key.to_owned(),
                values: None,
            });
        }
        let is_true = values.contains("1") || values.contains("true");
        let is_false = values.contains("0") || values.contains("false");
        if is_true == is_false {
            return Err(FilterError::Invalid {
                key: key.to_owned(),
                values: Some(values.iter().cloned().collect()),
            });
        }
        Ok(is_true)
    }

    /// Refuses any key not in `allowed` with `invalid filter 'key'` (the first, in sorted
    /// order).
    pub fn validate(&self, allowed: &[&str]) -> Result<(), FilterError> {
        match self.keys().find(|k| !allowed.contains(k)) {
            Some(key) => Err(FilterError::Invalid {
                key: key.to_owned(),
                values: None,
            }),
            None => Ok(()),
        }
    }

    /// `key`'s values if it has any; `None` means "does not filter".
    fn values(&self, key: &str) -> Option<&BTreeSet<String>> {
        self.fields.get(key).filter(|values| !values.is_empty())
    }
}

fn collect<V, I>(
    parsed: Option<BTreeMap<String, Option<V>>>,
    into_values: impl Fn(V) -> I,
) -> BTreeMap<String, BTreeSet<String>>
where
    I: Iterator<Item = String>,
{
    parsed
        .unwrap_or_default()
        .into_iter()
        .map(|(key, values)| {
            let set = values.map(&into_values).into_iter().flatten().collect();
            (key, set)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use proptest::prelude::*;

    fn labels(pairs: &[(&str, &str)]) -> HashMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    #[test]
    fn parses_the_set_form_the_cli_sends() {
        let f = Filters::parse(r#"{"name":{"wire":true},"status":{"running":true,"exited":true}}"#)
            .unwrap();
        assert_eq!(f.get("name"), ["wire"]);
        assert_eq!(f.get("status"), ["exited", "running"]);
        assert!(f.contains("status") && !f.contains("label"));
        assert!(f.get("label").is_empty());
        assert_eq!(f.len(), 2);
        assert_eq!(f.keys().collect::<Vec<_>>(), ["name", "status"]);
    }

    #[test]
    fn parses_the_legacy_list_form() {
        let f = Filters::parse(r#"{"label":["a=b","c"]}"#).unwrap();
        assert_eq!(f.get("label"), ["a=b", "c"]);
    }

    #[test]
    fn empty_and_null_inputs() {
        assert!(Filters::parse("").unwrap().is_empty());
        assert!(Filters::parse("{}").unwrap().is_empty());
        assert!(Filters::parse("null").unwrap().is_empty());
        let f = Filters::parse(r#"{"label":null}"#).unwrap();
        assert!(f.contains("label") && f.get("label").is_empty());
        // A key without values does not filter.
        assert!(f.match_kv_list("label", &labels(&[])));
    }

    #[test]
    fn false_values_still_count() {
        let f = Filters::parse(r#"{"name":{"x":false}}"#).unwrap();
        assert!(f.exact_match("name", "x"));
    }

    #[test]
    fn bad_json_is_invalid_parameter_with_dockers_words() {
        for bad in [
            "{",
            "not json",
            r#"{"label":"a=b"}"#,
            r#"{"label":{"a":"b"}}"#,
            "[]",
            "1",
            r#"{"label":[1]}"#,
            "\0",
        ] {
            let err = Filters::parse(bad).unwrap_err();
            assert_eq!(err.to_string(), "invalid filter", "{bad:?}");
            assert_eq!(err.category(), Category::InvalidParameter);
        }
    }

    #[test]
    fn exact_and_fuzzy_match() {
        let f = Filters::parse(r#"{"name":{"web":true},"id":{"abc":true}}"#).unwrap();
        assert!(f.exact_match("name", "web"));
        assert!(!f.exact_match("name", "web2"));
        assert!(f.exact_match("absent", "anything"));
        assert!(f.fuzzy_match("id", "abcdef"));
        assert!(!f.fuzzy_match("id", "xabc"));
        assert!(f.fuzzy_match("absent", "x"));
    }

    #[test]
    fn match_kv_list_key_and_key_value() {
        let l = labels(&[("a", "b"), ("c", "")]);
        let m = |json: &str| Filters::parse(json).unwrap().match_kv_list("label", &l);
        assert!(m("{}"));
        assert!(m(r#"{"label":{"a":true}}"#));
        assert!(m(r#"{"label":{"a=b":true}}"#));
        assert!(m(r#"{"label":{"a=b":true,"c":true}}"#));
        assert!(m(r#"{"label":{"c=":true}}"#));
        assert!(!m(r#"{"label":{"a=x":true}}"#));
        assert!(!m(r#"{"label":{"z":true}}"#));
        assert!(!m(r#"{"label":{"a=b":true,"z":true}}"#));
        // Only the first '=' splits: the value may contain more.
        let eq = labels(&[("k", "v=w")]);
        let f = Filters::parse(r#"{"label":{"k=v=w":true}}"#).unwrap();
        assert!(f.match_kv_list("label", &eq));
        // Any labelled filter fails on an object with no labels.
        assert!(!m_empty(r#"{"label":{"a":true}}"#));
    }

    fn m_empty(json: &str) -> bool {
        Filters::parse(json)
            .unwrap()
            .match_kv_list("label", &BTreeMap::new())
    }

    #[test]
    fn match_labels_with_negation() {
        let l = labels(&[("a", "b"), ("keep", "1")]);
        let m = |json: &str| Filters::parse(json).unwrap().match_labels(&l);
        assert!(m("{}"));
        assert!(m(r#"{"label":{"a=b":true}}"#));
        // `--filter label!=keep` excludes objects that have the label.
        assert!(!m(r#"{"label!":{"keep":true}}"#));
        assert!(!m(r#"{"label!":{"keep=1":true}}"#));
        assert!(m(r#"{"label!":{"keep=2":true}}"#));
        assert!(m(r#"{"label!":{"other":true}}"#));
        assert!(!m(r#"{"label":{"a=b":true},"label!":{"a":true}}"#));
    }

    #[test]
    fn get_bool_or_default_like_dangling() {
        let b = |json: &str| {
            Filters::parse(json)
                .unwrap()
                .get_bool_or_default("dangling", false)
        };
        assert!(!b("{}").unwrap());
        assert!(b(r#"{"dangling":{"true":true}}"#).unwrap());
        assert!(b(r#"{"dangling":{"1":true}}"#).unwrap());
        assert!(!b(r#"{"dangling":{"false":true}}"#).unwrap());
        assert_eq!(
            b(r#"{"dangling":{"maybe":true}}"#).unwrap_err().to_string(),
            "invalid filter 'dangling=[maybe]'"
        );
        assert_eq!(
            b(r#"{"dangling":{"true":true,"0":true}}"#)
                .unwrap_err()
                .to_string(),
            "invalid filter 'dangling=[0 true]'"
        );
        assert_eq!(
            b(r#"{"dangling":null}"#).unwrap_err().to_string(),
            "invalid filter 'dangling'"
        );
    }

    #[test]
    fn validate_names_the_first_unknown_key() {
        let f =
            Filters::parse(r#"{"status":{"running":true},"x":{"1":true},"b":{"1":true}}"#).unwrap();
        let err = f.validate(&["status", "label"]).unwrap_err();
        assert_eq!(err.to_string(), "invalid filter 'b'");
        assert_eq!(err.category(), Category::InvalidParameter);
        assert!(f.validate(&["status", "x", "b"]).is_ok());
        assert!(Filters::new().validate(&[]).is_ok());
    }

    #[test]
    fn to_json_round_trips() {
        let mut f = Filters::new();
        f.add("label", "a=b");
        f.add("label", "c");
        f.add("status", "running");
        assert_eq!(
            f.to_json(),
            r#"{"label":{"a=b":true,"c":true},"status":{"running":true}}"#
        );
        assert_eq!(Filters::parse(&f.to_json()).unwrap(), f);
        assert_eq!(Filters::new().to_json(), "{}");
    }

    proptest! {
        #[test]
        fn parse_never_panics(s in "\\PC*") {
            let _ = Filters::parse(&s);
        }

        #[test]
        fn set_form_round_trips(
            fields in proptest::collection::btree_map(
                "\\PC{0,8}",
                proptest::collection::btree_set("\\PC{0,8}", 0..4),
                0..4,
            )
        ) {
            let mut f = Filters::new();
            for (k, values) in &fields {
                for v in values {
                    f.add(k.clone(), v.clone());
                }
            }
            prop_assert_eq!(Filters::parse(&f.to_json()).unwrap(), f);
        }
    }
}
