//! The deserializer proper: walks a node tree, keeps the YAML path, locates every error.

use std::fmt;

use serde::de::{self, DeserializeOwned, IntoDeserializer, Visitor};

use super::error::DecodeError;
use crate::yaml::{Key, Node, Resolved, Scalar, Value};

/// Field name under which a struct receives its `x-*` keys, as one mapping.
pub const EXTENSIONS_FIELD: &str = "#extensions";

/// Struct name prefix that asks for "any node kind; a mapping is decoded as a struct": lets
/// custom `Deserialize` impls accept a short (scalar) or long (mapping) syntax.
pub(crate) const ANY_PREFIX: &str = "#any";

/// The YAML path of a node, built on the stack while descending and rendered only for errors.
#[derive(Clone, Copy, Debug)]
pub enum Path<'a> {
    /// The document root.
    Root,
    /// A mapping member.
    Key(&'a Path<'a>, &'a str),
    /// A sequence item.
    Index(&'a Path<'a>, usize),
}

impl fmt::Display for Path<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Path::Root => Ok(()),
            Path::Key(parent, key) => {
                if matches!(parent, Path::Root) {
                    f.write_str(key)
                } else {
                    write!(f, "{parent}.{key}")
                }
            }
            Path::Index(parent, i) => write!(f, "{parent}[{i}]"),
        }
    }
}

/// Decode a model type from a node.
pub fn from_node<T: DeserializeOwned>(node: &Node) -> Result<T, DecodeError> {
    T::deserialize(NodeDeserializer::new(node, Path::Root))
}

/// A serde deserializer over one node.
pub struct NodeDeserializer<'a> {
    node: &'a Node,
    path: Path<'a>,
}

impl<'a> NodeDeserializer<'a> {
    /// A deserializer for `node` found at `path`.
    pub fn new(node: &'a Node, path: Path<'a>) -> Self {
        NodeDeserializer { node, path }
    }

    fn locate(&self, mut e: DecodeError) -> DecodeError {
        if !e.is_located() {
            e.loc = Some(self.node.loc.clone());
            e.path = self.path.to_string();
        }
        e
    }

    fn fail(&self, message: &str) -> DecodeError {
        self.locate(DecodeError::new(message))
    }

    fn scalar(&self) -> Option<&'a Scalar> {
        match &self.node.value {
            Value::Scalar(s) => Some(s),
            _ => None,
        }
    }

    fn integer(&self) -> Result<i128, DecodeError> {
        match self.scalar().map(resolve) {
            Some(Resolved::Int(i)) => Ok(i128::from(i)),
            Some(Resolved::Str(t)) => t
                .trim()
                .parse::<i128>()
                .map_err(|_| self.fail("must be a integer")),
            Some(Resolved::Float(f)) if f.fract() == 0.0 && f.abs() < 1e18 => Ok(f as i128),
            _ => Err(self.fail("must be a integer")),
        }
    }

    fn float(&self) -> Result<f64, DecodeError> {
        match self.scalar().map(resolve) {
            Some(Resolved::Int(i)) => Ok(i as f64),
            Some(Resolved::Float(f)) => Ok(f),
            Some(Resolved::Str(t)) => t.trim().parse().map_err(|_| self.fail("must be a number")),
            _ => Err(self.fail("must be a number")),
        }
    }

    fn map_access(&self, struct_mode: bool, extensions: bool) -> Result<MapAcc<'a>, DecodeError> {
        match &self.node.value {
            Value::Map(m) => Ok(MapAcc {
                iter: m.iter(),
                all: m,
                value: None,
                path: self.path,
                struct_mode,
                extensions,
                ext_node: None,
                ext_done: false,
                parent: self.node,
            }),
            _ => Err(self.fail("must be a mapping")),
        }
    }
}

/// The scalar's type as go-yaml v3 resolves it: like the YAML 1.2 core schema, except that a
/// plain `0440` is octal (go-yaml parses integers with Go's base prefixes), as in file modes.
fn resolve(s: &Scalar) -> Resolved<'_> {
    let r = s.resolve();
    if let Resolved::Int(_) = r {
        let t = s.text.strip_prefix(['-', '+']).unwrap_or(&s.text);
        if t.len() > 1 && t.starts_with('0') && t.bytes().all(|b| b.is_ascii_digit()) {
            if let Ok(v) = i64::from_str_radix(&t[1..], 8) {
                return Resolved::Int(if s.text.starts_with('-') { -v } else { v });
            }
        }
    }
    r
}

/// Go's `strconv.ParseBool` spellings, which compose-go accepts for interpolated booleans.
fn parse_bool(t: &str) -> Option<bool> {
    match t {
        "1" | "t" | "T" | "true" | "TRUE" | "True" => Some(true),
        "0" | "f" | "F" | "false" | "FALSE" | "False" => Some(false),
        _ => None,
    }
}

macro_rules! int_method {
    ($method:ident, $ty:ty, $visit:ident) => {
        fn $method<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DecodeError> {
            let i = self.integer()?;
            let v = <$ty>::try_from(i).map_err(|_| self.fail("is out of range"))?;
            visitor.$visit(v).map_err(|e| self.locate(e))
        }
    };
}

impl<'de, 'a> de::Deserializer<'de> for NodeDeserializer<'a> {
    type Error = DecodeError;

    fn deserialize_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DecodeError> {
        let r = match &self.node.value {
            Value::Null => visitor.visit_unit(),
            Value::Scalar(s) => match resolve(s) {
                Resolved::Bool(b) => visitor.visit_bool(b),
                Resolved::Int(i) => visitor.visit_i64(i),
                Resolved::Float(f) => visitor.visit_f64(f),
                Resolved::Str(t) => visitor.visit_str(t),
            },
            Value::Seq(items) => visitor.visit_seq(SeqAcc {
                iter: items.iter().enumerate(),
                path: self.path,
            }),
            Value::Map(_) => visitor.visit_map(self.map_access(false, false)?),
        };
        r.map_err(|e| self.locate(e))
    }

    fn deserialize_bool<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DecodeError> {
        let b = match self.scalar().map(resolve) {
            Some(Resolved::Bool(b)) => b,
            Some(Resolved::Str(t)) => {
                parse_bool(t).ok_or_else(|| self.fail("must be a boolean"))?
            }
            _ => return Err(self.fail("must be a boolean")),
        };
        visitor.visit_bool(b).map_err(|e| self.locate(e))
    }

    int_method!(deserialize_i8, i8, visit_i8);
    int_method!(deserialize_i16, i16, visit_i16);
    int_method!(deserialize_i32, i32, visit_i32);
    int_method!(deserialize_i64, i64, visit_i64);
    int_method!(deserialize_u8, u8, visit_u8);
    int_method!(deserialize_u16, u16, visit_u16);
    int_method!(deserialize_u32, u32, visit_u32);
    int_method!(deserialize_u64, u64, visit_u64);

    fn deserialize_f32<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DecodeError> {
        let f = self.float()?;
        visitor.visit_f32(f as f32).map_err(|e| self.locate(e))
    }

    fn deserialize_f64<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DecodeError> {
        let f = self.float()?;
        visitor.visit_f64(f).map_err(|e| self.locate(e))
    }

    fn deserialize_char<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DecodeError> {
        self.deserialize_str(visitor)
    }

    fn deserialize_str<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DecodeError> {
        match self.scalar().map(resolve) {
            Some(Resolved::Str(t)) => visitor.visit_str(t).map_err(|e| self.locate(e)),
            _ => Err(self.fail("must be a string")),
        }
    }

    fn deserialize_string<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DecodeError> {
        self.deserialize_str(visitor)
    }

    fn deserialize_bytes<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DecodeError> {
        self.deserialize_str(visitor)
    }

    fn deserialize_byte_buf<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DecodeError> {
        self.deserialize_str(visitor)
    }

    fn deserialize_option<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DecodeError> {
        if self.node.is_null() {
            visitor.visit_none().map_err(|e| self.locate(e))
        } else {
            let (node, path) = (self.node, self.path);
            visitor
                .visit_some(NodeDeserializer { node, path })
                .map_err(|e| self.locate(e))
        }
    }

    fn deserialize_unit<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DecodeError> {
        if self.node.is_null() {
            visitor.visit_unit().map_err(|e| self.locate(e))
        } else {
            Err(self.fail("must be null"))
        }
    }

    fn deserialize_unit_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        visitor: V,
    ) -> Result<V::Value, DecodeError> {
        self.deserialize_unit(visitor)
    }

    fn deserialize_newtype_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        visitor: V,
    ) -> Result<V::Value, DecodeError> {
        let (node, path) = (self.node, self.path);
        visitor
            .visit_newtype_struct(NodeDeserializer { node, path })
            .map_err(|e| self.locate(e))
    }

    fn deserialize_seq<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DecodeError> {
        match &self.node.value {
            Value::Seq(items) => visitor
                .visit_seq(SeqAcc {
                    iter: items.iter().enumerate(),
                    path: self.path,
                })
                .map_err(|e| self.locate(e)),
            _ => Err(self.fail("must be a list")),
        }
    }

    fn deserialize_tuple<V: Visitor<'de>>(
        self,
        _len: usize,
        visitor: V,
    ) -> Result<V::Value, DecodeError> {
        self.deserialize_seq(visitor)
    }

    fn deserialize_tuple_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        _len: usize,
        visitor: V,
    ) -> Result<V::Value, DecodeError> {
        self.deserialize_seq(visitor)
    }

    fn deserialize_map<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DecodeError> {
        let acc = self.map_access(false, false)?;
        visitor.visit_map(acc).map_err(|e| self.locate(e))
    }

    fn deserialize_struct<V: Visitor<'de>>(
        self,
        name: &'static str,
        fields: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, DecodeError> {
        let extensions = fields.contains(&EXTENSIONS_FIELD);
        if name.starts_with(ANY_PREFIX) && !matches!(self.node.value, Value::Map(_)) {
            return self.deserialize_any(visitor);
        }
        let acc = self.map_access(true, extensions)?;
        visitor.visit_map(acc).map_err(|e| self.locate(e))
    }

    fn deserialize_enum<V: Visitor<'de>>(
        self,
        _name: &'static str,
        _variants: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, DecodeError> {
        match self.scalar().map(resolve) {
            Some(Resolved::Str(t)) => {
                let d: de::value::StrDeserializer<'_, DecodeError> = t.into_deserializer();
                visitor.visit_enum(d).map_err(|e| self.locate(e))
            }
            _ => Err(self.fail("must be a string")),
        }
    }

    fn deserialize_identifier<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DecodeError> {
        self.deserialize_str(visitor)
    }

    fn deserialize_ignored_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DecodeError> {
        visitor.visit_unit()
    }
}

struct SeqAcc<'a> {
    iter: std::iter::Enumerate<std::slice::Iter<'a, Node>>,
    path: Path<'a>,
}

impl<'de> de::SeqAccess<'de> for SeqAcc<'_> {
    type Error = DecodeError;

    fn next_element_seed<T: de::DeserializeSeed<'de>>(
        &mut self,
        seed: T,
    ) -> Result<Option<T::Value>, DecodeError> {
        match self.iter.next() {
            Some((i, node)) => {
                let path = Path::Index(&self.path, i);
                seed.deserialize(NodeDeserializer { node, path }).map(Some)
            }
            None => Ok(None),
        }
    }

    fn size_hint(&self) -> Option<usize> {
        Some(self.iter.len())
    }
}

struct MapAcc<'a> {
    iter: indexmap::map::Iter<'a, Key, Node>,
    all: &'a crate::yaml::Mapping,
    value: Option<(&'a Key, &'a Node)>,
    path: Path<'a>,
    /// Decoding a struct: `x-*` keys are extensions, not fields.
    struct_mode: bool,
    /// The struct has an [`EXTENSIONS_FIELD`] that receives the `x-*` keys.
    extensions: bool,
    ext_node: Option<Node>,
    ext_done: bool,
    parent: &'a Node,
}

impl<'de> de::MapAccess<'de> for MapAcc<'_> {
    type Error = DecodeError;

    fn next_key_seed<K: de::DeserializeSeed<'de>>(
        &mut self,
        seed: K,
    ) -> Result<Option<K::Value>, DecodeError> {
        for (key, node) in self.iter.by_ref() {
            if self.struct_mode && key.name.starts_with("x-") {
                continue;
            }
            self.value = Some((key, node));
            let path = self.path;
            return seed
                .deserialize(KeyDeserializer { name: &key.name })
                .map(Some)
                .map_err(|mut e| {
                    if !e.is_located() {
                        e.loc = Some(key.loc.clone());
                        e.path = path.to_string();
                    }
                    e
                });
        }
        self.value = None;
        if self.extensions && !self.ext_done {
            self.ext_done = true;
            let ext: crate::yaml::Mapping = self
                .all
                .iter()
                .filter(|(k, _)| k.name.starts_with("x-"))
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect();
            if !ext.is_empty() {
                self.ext_node = Some(Node::new(Value::Map(ext), self.parent.loc.clone()));
                return seed
                    .deserialize(KeyDeserializer {
                        name: EXTENSIONS_FIELD,
                    })
                    .map(Some);
            }
        }
        Ok(None)
    }

    fn next_value_seed<V: de::DeserializeSeed<'de>>(
        &mut self,
        seed: V,
    ) -> Result<V::Value, DecodeError> {
        if let Some((key, node)) = self.value.take() {
            let path = Path::Key(&self.path, &key.name);
            return seed.deserialize(NodeDeserializer { node, path });
        }
        match &self.ext_node {
            Some(node) => seed.deserialize(NodeDeserializer {
                node,
                path: self.path,
            }),
            None => Err(DecodeError::new(
                "internal error: value requested before key",
            )),
        }
    }

    fn size_hint(&self) -> Option<usize> {
        Some(self.iter.len())
    }
}

struct KeyDeserializer<'a> {
    name: &'a str,
}

impl<'de> de::Deserializer<'de> for KeyDeserializer<'_> {
    type Error = DecodeError;

    fn deserialize_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DecodeError> {
        visitor.visit_str(self.name)
    }

    serde::forward_to_deserialize_any! {
        bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string
        bytes byte_buf option unit unit_struct newtype_struct seq tuple
        tuple_struct map struct enum identifier ignored_any
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use serde::Deserialize;

    use super::*;
    use crate::yaml::{ParseLimits, parse_documents};

    #[derive(Debug, Deserialize)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct Svc {
        image: Option<String>,
        ports: Option<Vec<String>>,
        replicas: Option<u32>,
        #[serde(rename = "#extensions", default)]
        ext: indexmap::IndexMap<String, serde_json::Value>,
    }

    #[derive(Debug, Deserialize)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct Top {
        services: indexmap::IndexMap<String, Svc>,
    }

    fn decode(text: &str) -> Result<Top, DecodeError> {
        let file: Arc<str> = Arc::from("compose.yaml");
        let docs = parse_documents(text, &file, ParseLimits::default()).unwrap();
        from_node(&docs[0])
    }

    #[test]
    fn errors_name_location_and_path() {
        let e = decode("services:\n  web:\n    ports: [\"80\", [1]]\n").unwrap_err();
        assert_eq!(
            e.to_string(),
            "compose.yaml:3:19: services.web.ports[1] must be a string"
        );
        let e = decode("services:\n  web:\n    imgae: x\n").unwrap_err();
        assert_eq!(
            e.to_string(),
            "compose.yaml:3:5: services.web additional properties 'imgae' not allowed (did you mean 'image'?)"
        );
        let e = decode("services: []\n").unwrap_err();
        assert_eq!(
            e.to_string(),
            "compose.yaml:1:11: services must be a mapping"
        );
    }

    #[test]
    fn strings_stand_for_numbers_and_extensions_are_kept() {
        let t = decode("services:\n  web:\n    replicas: \"3\"\n    x-foo: 1\n").unwrap();
        assert_eq!(t.services["web"].replicas, Some(3));
        assert_eq!(t.services["web"].ext["x-foo"], serde_json::json!(1));
    }
}
