//! The resolved configuration: the fully evaluated tree `nix-instantiate --eval --strict` prints.
//!
//! Names and written strings are borrowed from the scenario rather than copied into a
//! `serde_json::Value`: on a large scenario, copying every name and string and hashing every key
//! into an ordered map took a fifth of the whole merge. It serializes (with serde) exactly as
//! the equivalent JSON value does; [`Config::to_json`] gives that value where one is wanted.

use std::borrow::Cow;

use serde::ser::{Serialize, SerializeMap, SerializeSeq, Serializer};

/// A resolved value. Attribute sets keep Nix's order (names sorted bytewise).
#[derive(Clone, Debug, PartialEq)]
pub enum Config<'s> {
    /// `null`
    Null,
    /// A boolean.
    Bool(bool),
    /// An integer.
    Int(i64),
    /// A float.
    Float(f64),
    /// A string: borrowed when written in the scenario, owned when computed.
    Str(Cow<'s, str>),
    /// A list.
    List(Vec<Config<'s>>),
    /// An attribute set, sorted by name.
    Attrs(Vec<(&'s str, Config<'s>)>),
}

impl Config<'_> {
    /// The same value as JSON (non-finite floats, which Nix cannot produce, become `null`).
    pub fn to_json(&self) -> serde_json::Value {
        use serde_json::Value as J;
        match self {
            Config::Null => J::Null,
            Config::Bool(b) => J::Bool(*b),
            Config::Int(i) => J::from(*i),
            Config::Float(f) => serde_json::Number::from_f64(*f).map_or(J::Null, J::Number),
            Config::Str(s) => J::String(s.to_string()),
            Config::List(xs) => J::Array(xs.iter().map(Config::to_json).collect()),
            Config::Attrs(a) => J::Object(
                a.iter()
                    .map(|(k, v)| ((*k).to_string(), v.to_json()))
                    .collect(),
            ),
        }
    }
}

impl Serialize for Config<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            Config::Null => s.serialize_unit(),
            Config::Bool(b) => s.serialize_bool(*b),
            Config::Int(i) => s.serialize_i64(*i),
            Config::Float(f) => s.serialize_f64(*f),
            Config::Str(x) => s.serialize_str(x),
            Config::List(xs) => {
                let mut seq = s.serialize_seq(Some(xs.len()))?;
                for x in xs {
                    seq.serialize_element(x)?;
                }
                seq.end()
            }
            Config::Attrs(a) => {
                let mut map = s.serialize_map(Some(a.len()))?;
                for (k, v) in a {
                    map.serialize_entry(k, v)?;
                }
                map.end()
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Config<'static> {
        Config::Attrs(vec![
            ("a", Config::List(vec![Config::Int(1), Config::Float(1.5)])),
            ("b", Config::Str(Cow::Borrowed("x\n\"y\""))),
            ("c", Config::Attrs(Vec::new())),
            ("d", Config::Null),
            ("e", Config::Bool(true)),
            ("f", Config::List(Vec::new())),
        ])
    }

    #[test]
    fn serializes_as_the_equivalent_json_value() {
        let c = sample();
        assert_eq!(
            serde_json::to_string_pretty(&c).unwrap(),
            serde_json::to_string_pretty(&c.to_json()).unwrap()
        );
        assert_eq!(
            serde_json::to_string(&c).unwrap(),
            r#"{"a":[1,1.5],"b":"x\n\"y\"","c":{},"d":null,"e":true,"f":[]}"#
        );
    }
}
