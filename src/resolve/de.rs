//! Typed views of a resolved config: [`Config::deserialize`] reads any part of the tree into a
//! serde type, and every error says at which option path (`isoImage.contents[0].source`)
//! what was expected and what was found. Later stages read the config this way, never by
//! dotted-path lookups into JSON.

use std::fmt;

use serde::de::{self, DeserializeOwned, IntoDeserializer, Visitor};

use super::Config;
use crate::scenario::path;

/// One step of a path into a config: an attribute or a list index.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Segment {
    /// An attribute name.
    Attr(String),
    /// A list index (0-based).
    Index(usize),
}

/// A path into a config, shown as NixOS shows option paths, with list indices in brackets:
/// `fileSystems."/boot".device`, `isoImage.contents[0].source`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct OptionPath(pub Vec<Segment>);

impl OptionPath {
    /// A path of attribute names.
    pub fn of(names: &[&str]) -> OptionPath {
        OptionPath(names.iter().map(|n| Segment::Attr(n.to_string())).collect())
    }

    /// This path with `s` appended.
    pub fn child(&self, s: Segment) -> OptionPath {
        let mut p = self.clone();
        p.0.push(s);
        p
    }

    /// The option paths this path lies in, longest first: every prefix made of attribute
    /// names only, up to the first list index (inside a list, definitions are the list's).
    pub fn options(&self) -> Vec<String> {
        let names: Vec<&str> = self
            .0
            .iter()
            .map_while(|s| match s {
                Segment::Attr(a) => Some(a.as_str()),
                Segment::Index(_) => None,
            })
            .collect();
        (1..=names.len())
            .rev()
            .map(|n| path::show(&names[..n]))
            .collect()
    }
}

impl fmt::Display for OptionPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.0.is_empty() {
            return f.write_str("the config");
        }
        let mut out = String::new();
        for s in &self.0 {
            match s {
                Segment::Attr(a) => {
                    if !out.is_empty() {
                        out.push('.');
                    }
                    path::push_component(&mut out, a);
                }
                Segment::Index(i) => {
                    let _ = fmt::Write::write_fmt(&mut out, format_args!("[{i}]"));
                }
            }
        }
        f.write_str(&out)
    }
}

/// What is wrong at a path.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Problem {
    /// The option has no value in the config.
    Missing,
    /// A value of the wrong type.
    Type {
        /// What was expected.
        expected: String,
        /// What was there.
        found: String,
    },
    /// A value of the right type that is not allowed.
    Value(String),
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Problem::Missing => f.write_str("the resolved config has no such option"),
            Problem::Type { expected, found } => write!(f, "expected {expected}, found {found}"),
            Problem::Value(m) => f.write_str(m),
        }
    }
}

/// A config did not read as the type wanted.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{path}: {problem}")]
pub struct ConfigError {
    /// Where.
    pub path: OptionPath,
    /// What.
    pub problem: Problem,
}

impl ConfigError {
    /// An error at `path`.
    pub fn at(path: OptionPath, problem: Problem) -> ConfigError {
        ConfigError { path, problem }
    }

    /// The error seen from one level up: `s` goes in front of its path.
    fn within(mut self, s: Segment) -> ConfigError {
        self.path.0.insert(0, s);
        self
    }
}

impl de::Error for ConfigError {
    fn custom<T: fmt::Display>(msg: T) -> Self {
        ConfigError::at(OptionPath::default(), Problem::Value(msg.to_string()))
    }

    fn invalid_type(unexp: de::Unexpected<'_>, exp: &dyn de::Expected) -> Self {
        ConfigError::at(
            OptionPath::default(),
            Problem::Type {
                expected: exp.to_string(),
                found: unexp.to_string(),
            },
        )
    }

    fn missing_field(field: &'static str) -> Self {
        ConfigError::at(
            OptionPath(vec![Segment::Attr(field.to_string())]),
            Problem::Missing,
        )
    }
}

impl<'s> Config<'s> {
    /// Reads this config (or a part of it) as `T`.
    ///
    /// # Example
    ///
    /// ```
    /// #[derive(serde::Deserialize)]
    /// struct Net {
    ///     #[serde(rename = "hostName")]
    ///     host_name: String,
    /// }
    /// #[derive(serde::Deserialize)]
    /// struct Root {
    ///     networking: Net,
    /// }
    /// let text = "modules:\n  - options: {networking.hostName: {type: str}}\n  - config: {networking.hostName: h}\n";
    /// let s = isoproof::scenario::load_str(text, "s.yaml", std::path::Path::new(".")).unwrap();
    /// let r = isoproof::resolve::resolve(&s);
    /// let root: Root = r.config.unwrap().deserialize().unwrap();
    /// assert_eq!(root.networking.host_name, "h");
    /// ```
    pub fn deserialize<T: DeserializeOwned>(&self) -> Result<T, ConfigError> {
        T::deserialize(ConfigDeserializer(self))
    }
}

/// A config value being read.
struct ConfigDeserializer<'a, 's>(&'a Config<'s>);

impl<'de> de::Deserializer<'de> for ConfigDeserializer<'_, '_> {
    type Error = ConfigError;

    fn deserialize_any<V: Visitor<'de>>(self, v: V) -> Result<V::Value, ConfigError> {
        match self.0 {
            Config::Null => v.visit_unit(),
            Config::Bool(b) => v.visit_bool(*b),
            Config::Int(i) => v.visit_i64(*i),
            Config::Float(f) => v.visit_f64(*f),
            Config::Str(s) => v.visit_str(s),
            Config::List(xs) => v.visit_seq(Seq {
                items: xs.iter(),
                index: 0,
            }),
            Config::Attrs(a) => v.visit_map(Map {
                items: a.iter(),
                value: None,
            }),
        }
    }

    fn deserialize_option<V: Visitor<'de>>(self, v: V) -> Result<V::Value, ConfigError> {
        match self.0 {
            Config::Null => v.visit_none(),
            _ => v.visit_some(self),
        }
    }

    fn deserialize_enum<V: Visitor<'de>>(
        self,
        _name: &'static str,
        _variants: &'static [&'static str],
        v: V,
    ) -> Result<V::Value, ConfigError> {
        match self.0 {
            Config::Str(s) => v.visit_enum(s.as_ref().into_deserializer()),
            _ => self.deserialize_any(v),
        }
    }

    serde::forward_to_deserialize_any! {
        bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string bytes byte_buf
        unit unit_struct newtype_struct seq tuple tuple_struct map struct identifier ignored_any
    }
}

struct Seq<'a, 's> {
    items: std::slice::Iter<'a, Config<'s>>,
    index: usize,
}

impl<'de> de::SeqAccess<'de> for Seq<'_, '_> {
    type Error = ConfigError;

    fn next_element_seed<T: de::DeserializeSeed<'de>>(
        &mut self,
        seed: T,
    ) -> Result<Option<T::Value>, ConfigError> {
        let Some(x) = self.items.next() else {
            return Ok(None);
        };
        let i = self.index;
        self.index += 1;
        seed.deserialize(ConfigDeserializer(x))
            .map(Some)
            .map_err(|e| e.within(Segment::Index(i)))
    }

    fn size_hint(&self) -> Option<usize> {
        Some(self.items.len())
    }
}

struct Map<'a, 's> {
    items: std::slice::Iter<'a, (&'s str, Config<'s>)>,
    value: Option<&'a (&'s str, Config<'s>)>,
}

impl<'de> de::MapAccess<'de> for Map<'_, '_> {
    type Error = ConfigError;

    fn next_key_seed<K: de::DeserializeSeed<'de>>(
        &mut self,
        seed: K,
    ) -> Result<Option<K::Value>, ConfigError> {
        let Some(entry) = self.items.next() else {
            return Ok(None);
        };
        self.value = Some(entry);
        seed.deserialize(entry.0.into_deserializer()).map(Some)
    }

    fn next_value_seed<V: de::DeserializeSeed<'de>>(
        &mut self,
        seed: V,
    ) -> Result<V::Value, ConfigError> {
        let (k, v) = self
            .value
            .take()
            .ok_or_else(|| <ConfigError as de::Error>::custom("a value without a key"))?;
        seed.deserialize(ConfigDeserializer(v))
            .map_err(|e| e.within(Segment::Attr(k.to_string())))
    }

    fn size_hint(&self) -> Option<usize> {
        Some(self.items.len())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::borrow::Cow;
    use std::collections::BTreeMap;

    #[derive(serde::Deserialize, Debug, PartialEq)]
    struct Item {
        source: String,
        #[serde(default)]
        mode: Option<i64>,
    }

    #[derive(serde::Deserialize, Debug, PartialEq)]
    #[serde(rename_all = "camelCase")]
    struct Image {
        volume_id: String,
        contents: Vec<Item>,
        files: BTreeMap<String, String>,
        kind: Kind,
    }

    #[derive(serde::Deserialize, Debug, PartialEq)]
    #[serde(rename_all = "lowercase")]
    enum Kind {
        Probe,
        Silent,
    }

    fn s(x: &'static str) -> Config<'static> {
        Config::Str(Cow::Borrowed(x))
    }

    fn config(contents: Config<'static>) -> Config<'static> {
        Config::Attrs(vec![(
            "isoImage",
            Config::Attrs(vec![
                ("contents", contents),
                ("files", Config::Attrs(vec![("/a b", s("x"))])),
                ("kind", s("silent")),
                ("other", Config::Int(1)),
                ("volumeId", s("V")),
            ]),
        )])
    }

    #[derive(serde::Deserialize, Debug)]
    struct Root {
        #[serde(rename = "isoImage")]
        iso_image: Image,
    }

    #[test]
    fn reads_typed_values() {
        let c = config(Config::List(vec![Config::Attrs(vec![("source", s("a"))])]));
        let r: Root = c.deserialize().unwrap();
        assert_eq!(r.iso_image.volume_id, "V");
        assert_eq!(
            r.iso_image.contents,
            [Item {
                source: "a".into(),
                mode: None
            }]
        );
        assert_eq!(r.iso_image.files["/a b"], "x");
        assert_eq!(r.iso_image.kind, Kind::Silent);
    }

    #[test]
    fn errors_name_the_option_path() {
        let c = config(Config::List(vec![
            Config::Attrs(vec![("source", s("a"))]),
            Config::Attrs(vec![("source", Config::Int(5))]),
        ]));
        let e = c.deserialize::<Root>().unwrap_err();
        assert_eq!(
            e.to_string(),
            "isoImage.contents[1].source: expected a string, found integer `5`"
        );
        assert_eq!(e.path.options(), ["isoImage.contents", "isoImage"]);
        let missing = config(Config::List(vec![Config::Attrs(vec![])]));
        let e = missing.deserialize::<Root>().unwrap_err();
        assert_eq!(e.path.to_string(), "isoImage.contents[0].source");
        assert_eq!(e.problem, Problem::Missing);
        let e = Config::Attrs(vec![]).deserialize::<Root>().unwrap_err();
        assert_eq!(
            e.to_string(),
            "isoImage: the resolved config has no such option"
        );
    }

    #[test]
    fn quoted_names_in_paths() {
        let p = OptionPath::of(&["fileSystems", "/boot", "device"]);
        assert_eq!(p.to_string(), "fileSystems.\"/boot\".device");
        assert_eq!(
            p.options(),
            [
                "fileSystems.\"/boot\".device",
                "fileSystems.\"/boot\"",
                "fileSystems"
            ]
        );
    }
}
