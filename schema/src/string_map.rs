//! A small sorted map of strings: a resource's metadata labels and annotations.
//!
//! Most resources carry none or a few. A `BTreeMap` allocates a node with room for eleven pairs
//! (about 540 bytes) for the first one; a boxed sorted slice holds only its pairs (48 bytes
//! each), which at 100,000 labelled resources is about 50 MB less. It serializes, deserializes
//! and describes itself (JSON Schema) exactly as a `BTreeMap<String, String>`: keys sorted, a
//! key given twice keeps its last value.

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::fmt;

use schemars::JsonSchema;
use serde::de::{MapAccess, Visitor};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// String keys to string values, sorted by key, each key once.
#[derive(Debug, Clone, PartialEq, Eq, Default, Hash)]
pub struct StringMap(Box<[(String, String)]>);

impl StringMap {
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// The value of `key`, if set.
    pub fn get(&self, key: &str) -> Option<&str> {
        self.0.binary_search_by(|(k, _)| k.as_str().cmp(key)).ok().map(|i| self.0[i].1.as_str())
    }

    /// The pairs in key order.
    pub fn iter(&self) -> impl ExactSizeIterator<Item = (&str, &str)> {
        self.0.iter().map(|(k, v)| (k.as_str(), v.as_str()))
    }

    /// Sort `pairs` by key; of a key given more than once the last value stays.
    fn from_pairs(mut pairs: Vec<(String, String)>) -> Self {
        // Reversed, a stable sort puts the last of equal keys first, and `dedup` keeps the first.
        pairs.reverse();
        pairs.sort_by(|a, b| a.0.cmp(&b.0));
        pairs.dedup_by(|later, earlier| later.0 == earlier.0);
        StringMap(pairs.into_boxed_slice())
    }
}

impl FromIterator<(String, String)> for StringMap {
    fn from_iter<I: IntoIterator<Item = (String, String)>>(iter: I) -> Self {
        Self::from_pairs(iter.into_iter().collect())
    }
}

impl From<BTreeMap<String, String>> for StringMap {
    fn from(map: BTreeMap<String, String>) -> Self {
        StringMap(map.into_iter().collect())
    }
}

impl<'a> IntoIterator for &'a StringMap {
    type Item = (&'a str, &'a str);
    type IntoIter = std::iter::Map<std::slice::Iter<'a, (String, String)>, fn(&'a (String, String)) -> (&'a str, &'a str)>;

    fn into_iter(self) -> Self::IntoIter {
        self.0.iter().map(|(k, v)| (k.as_str(), v.as_str()))
    }
}

impl Serialize for StringMap {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_map(self.iter())
    }
}

impl<'de> Deserialize<'de> for StringMap {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        /// Collects the pairs of a map as they come.
        struct PairsVisitor;
        impl<'de> Visitor<'de> for PairsVisitor {
            type Value = StringMap;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a map of strings to strings")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<StringMap, A::Error> {
                // The hint comes from the input: bounded so that it cannot reserve much.
                let mut pairs = Vec::with_capacity(map.size_hint().unwrap_or(0).min(64));
                while let Some(pair) = map.next_entry::<String, String>()? {
                    pairs.push(pair);
                }
                Ok(StringMap::from_pairs(pairs))
            }
        }
        deserializer.deserialize_map(PairsVisitor)
    }
}

impl JsonSchema for StringMap {
    fn inline_schema() -> bool {
        <BTreeMap<String, String>>::inline_schema()
    }

    fn schema_name() -> Cow<'static, str> {
        <BTreeMap<String, String>>::schema_name()
    }

    fn schema_id() -> Cow<'static, str> {
        <BTreeMap<String, String>>::schema_id()
    }

    fn json_schema(generator: &mut schemars::SchemaGenerator) -> schemars::Schema {
        <BTreeMap<String, String>>::json_schema(generator)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn it_reads_and_writes_as_a_sorted_map_whose_last_duplicate_wins() {
        let m: StringMap = serde_json::from_str(r#"{"tier":"a","app":"x","tier":"b"}"#).unwrap();
        assert_eq!(m.len(), 2);
        assert_eq!(m.get("tier"), Some("b"));
        assert_eq!(m.get("app"), Some("x"));
        assert_eq!(m.get("zone"), None);
        assert_eq!(serde_json::to_string(&m).unwrap(), r#"{"app":"x","tier":"b"}"#);
        let same: BTreeMap<String, String> = serde_json::from_str(r#"{"tier":"a","app":"x","tier":"b"}"#).unwrap();
        assert_eq!(serde_json::to_string(&same).unwrap(), serde_json::to_string(&m).unwrap(), "as a BTreeMap");
        assert_eq!(StringMap::from(same), m);
        let collected: StringMap = [("b".into(), "1".into()), ("a".into(), "2".into()), ("b".into(), "3".into())].into_iter().collect();
        assert_eq!(collected.iter().collect::<Vec<_>>(), [("a", "2"), ("b", "3")]);
        assert!(serde_json::from_str::<StringMap>(r#"{"a":1}"#).is_err(), "values are strings");
        assert!(serde_json::from_str::<StringMap>("[]").is_err(), "a map");
    }

    #[test]
    fn its_schema_is_the_schema_of_a_string_map() {
        let ours = schemars::schema_for!(StringMap);
        let theirs = schemars::schema_for!(BTreeMap<String, String>);
        assert_eq!(ours, theirs);
    }
}
