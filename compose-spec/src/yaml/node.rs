//! The node tree: values, keys and their source locations.

use std::borrow::Borrow;
use std::fmt;
use std::hash::{Hash, Hasher};
use std::sync::Arc;

use indexmap::IndexMap;

/// A position in a source file: 1-based line and column.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Location {
    /// The file the node was read from (`-` for stdin, or a synthetic name).
    pub file: Arc<str>,
    /// 1-based line.
    pub line: u32,
    /// 1-based column.
    pub column: u32,
}

impl Location {
    /// A location for nodes that were not read from any file (defaults, generated values).
    pub fn synthetic() -> Self {
        Location {
            file: Arc::from(""),
            line: 0,
            column: 0,
        }
    }

    /// True when the node was made by the program rather than read from a file.
    pub fn is_synthetic(&self) -> bool {
        self.line == 0
    }
}

impl fmt::Display for Location {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.is_synthetic() {
            return f.write_str(&self.file);
        }
        write!(f, "{}:{}:{}", self.file, self.line, self.column)
    }
}

/// The tags Compose gives a meaning to; core-schema tags (`!!str`) are resolved at parse time.
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub enum Tag {
    /// No tag.
    #[default]
    None,
    /// `!reset`: drop the value inherited from earlier files.
    Reset,
    /// `!override`: replace the inherited value instead of merging with it.
    Override,
    /// Any other local tag, kept so validation can reject it with its location.
    Other(String),
}

/// How a scalar was written; quoted scalars are always strings, plain ones may be numbers.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ScalarStyle {
    /// Plain (unquoted) scalar: typed by the YAML 1.2 core schema.
    Plain,
    /// Single- or double-quoted, literal or folded block scalar, or `!!str`: always a string.
    Quoted,
}

/// A scalar's source text and style; its type is resolved on demand.
#[derive(Clone, Debug, PartialEq)]
pub struct Scalar {
    /// The scalar's text after YAML unescaping.
    pub text: String,
    /// Plain or quoted.
    pub style: ScalarStyle,
}

/// The type a scalar resolves to under the YAML 1.2 core schema (as go-yaml v3 does).
#[derive(Clone, Debug, PartialEq)]
pub enum Resolved<'a> {
    /// `true` / `false` in any of the core spellings.
    Bool(bool),
    /// A decimal, octal (`0o`) or hexadecimal (`0x`) integer.
    Int(i64),
    /// A float, `.inf` or `.nan`.
    Float(f64),
    /// Anything else.
    Str(&'a str),
}

impl Scalar {
    /// A quoted (string) scalar.
    pub fn string(text: impl Into<String>) -> Self {
        Scalar {
            text: text.into(),
            style: ScalarStyle::Quoted,
        }
    }

    /// A plain scalar, typed by its text.
    pub fn plain(text: impl Into<String>) -> Self {
        Scalar {
            text: text.into(),
            style: ScalarStyle::Plain,
        }
    }

    /// Resolve the scalar's type.
    pub fn resolve(&self) -> Resolved<'_> {
        if self.style == ScalarStyle::Quoted {
            return Resolved::Str(&self.text);
        }
        resolve_plain(&self.text)
    }
}

fn resolve_plain(t: &str) -> Resolved<'_> {
    match t {
        "true" | "True" | "TRUE" => return Resolved::Bool(true),
        "false" | "False" | "FALSE" => return Resolved::Bool(false),
        ".inf" | ".Inf" | ".INF" | "+.inf" | "+.Inf" | "+.INF" => {
            return Resolved::Float(f64::INFINITY);
        }
        "-.inf" | "-.Inf" | "-.INF" => return Resolved::Float(f64::NEG_INFINITY),
        ".nan" | ".NaN" | ".NAN" => return Resolved::Float(f64::NAN),
        _ => {}
    }
    let first = match t.as_bytes().first() {
        Some(b) => *b,
        None => return Resolved::Str(t),
    };
    if !(first.is_ascii_digit() || first == b'-' || first == b'+' || first == b'.') {
        return Resolved::Str(t);
    }
    let (neg, digits) = match t.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, t.strip_prefix('+').unwrap_or(t)),
    };
    let radix = if let Some(h) = digits.strip_prefix("0x") {
        Some((h, 16))
    } else {
        digits.strip_prefix("0o").map(|o| (o, 8))
    };
    if let Some((body, radix)) = radix {
        if !body.is_empty() && body.chars().all(|c| c.is_digit(radix)) {
            if let Ok(v) = i64::from_str_radix(body, radix) {
                return Resolved::Int(if neg { -v } else { v });
            }
        }
        return Resolved::Str(t);
    }
    if !digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit()) {
        return match t.parse::<i64>() {
            Ok(v) => Resolved::Int(v),
            Err(_) => t.parse::<f64>().map_or(Resolved::Str(t), Resolved::Float),
        };
    }
    if is_core_float(digits) {
        if let Ok(v) = t.parse::<f64>() {
            return Resolved::Float(v);
        }
    }
    Resolved::Str(t)
}

/// `[-+]? ( \. [0-9]+ | [0-9]+ ( \. [0-9]* )? ) ( [eE] [-+]? [0-9]+ )?` without the sign.
fn is_core_float(s: &str) -> bool {
    let b = s.as_bytes();
    let mut i = 0;
    let int_start = i;
    while i < b.len() && b[i].is_ascii_digit() {
        i += 1;
    }
    let int_digits = i - int_start;
    let mut frac_digits = 0;
    if i < b.len() && b[i] == b'.' {
        i += 1;
        let s = i;
        while i < b.len() && b[i].is_ascii_digit() {
            i += 1;
        }
        frac_digits = i - s;
    }
    if int_digits == 0 && frac_digits == 0 {
        return false;
    }
    if i < b.len() && (b[i] == b'e' || b[i] == b'E') {
        i += 1;
        if i < b.len() && (b[i] == b'-' || b[i] == b'+') {
            i += 1;
        }
        let s = i;
        while i < b.len() && b[i].is_ascii_digit() {
            i += 1;
        }
        if i == s {
            return false;
        }
    }
    i == b.len()
}

/// A mapping key: its text and where it was written. Equality and hashing use the text only,
/// so a [`Mapping`] can be indexed with a `&str`.
#[derive(Clone, Debug)]
pub struct Key {
    /// The key's text.
    pub name: String,
    /// Where the key was written.
    pub loc: Location,
}

impl Key {
    /// A key with a location.
    pub fn new(name: impl Into<String>, loc: Location) -> Self {
        Key {
            name: name.into(),
            loc,
        }
    }
}

impl PartialEq for Key {
    fn eq(&self, other: &Self) -> bool {
        self.name == other.name
    }
}

impl Eq for Key {}

impl Hash for Key {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.name.hash(state);
    }
}

impl Borrow<str> for Key {
    fn borrow(&self) -> &str {
        &self.name
    }
}

/// A YAML mapping with string keys, in source order.
pub type Mapping = IndexMap<Key, Node, KeyHashState>;

/// Builds [`KeyHasher`]s with a seed chosen once per process.
#[derive(Clone, Copy, Debug)]
pub struct KeyHashState {
    seed: u64,
}

impl Default for KeyHashState {
    fn default() -> Self {
        static SEED: std::sync::OnceLock<u64> = std::sync::OnceLock::new();
        let seed = *SEED.get_or_init(|| {
            use std::hash::BuildHasher;
            std::collections::hash_map::RandomState::new().hash_one(0x0062_6572_7468_u64)
        });
        KeyHashState { seed }
    }
}

impl std::hash::BuildHasher for KeyHashState {
    type Hasher = KeyHasher;

    fn build_hasher(&self) -> KeyHasher {
        KeyHasher(self.seed)
    }
}

/// A multiply-rotate hash for mapping keys: SipHash cost a tenth of a large load, and the keys
/// are short strings from local files; the per-process seed keeps collisions unpredictable.
#[derive(Clone, Debug)]
pub struct KeyHasher(u64);

const KEY_HASH_K: u64 = 0xf135_7aea_2e62_a9c5;

impl KeyHasher {
    fn add(&mut self, word: u64) {
        self.0 = (self.0 ^ word).wrapping_mul(KEY_HASH_K).rotate_left(26);
    }
}

impl Hasher for KeyHasher {
    fn write(&mut self, bytes: &[u8]) {
        let mut chunks = bytes.chunks_exact(8);
        for c in &mut chunks {
            let mut w = [0u8; 8];
            w.copy_from_slice(c);
            self.add(u64::from_le_bytes(w));
        }
        let rest = chunks.remainder();
        if !rest.is_empty() {
            let mut w = [0u8; 8];
            w[..rest.len()].copy_from_slice(rest);
            self.add(u64::from_le_bytes(w) ^ ((rest.len() as u64) << 59));
        }
    }

    fn write_u8(&mut self, i: u8) {
        self.add(u64::from(i));
    }

    fn write_usize(&mut self, i: usize) {
        self.add(i as u64);
    }

    fn finish(&self) -> u64 {
        // Spread the high bits down: hashbrown picks buckets by the low bits.
        let h = self.0.wrapping_mul(KEY_HASH_K);
        h ^ (h >> 29)
    }
}

/// A node's value.
#[derive(Clone, Debug, PartialEq)]
pub enum Value {
    /// `null`, `~` or nothing.
    Null,
    /// A scalar of any type.
    Scalar(Scalar),
    /// A sequence.
    Seq(Vec<Node>),
    /// A mapping.
    Map(Mapping),
}

/// A value with its source location and Compose tag.
#[derive(Clone, Debug)]
pub struct Node {
    /// The value.
    pub value: Value,
    /// Where the value starts.
    pub loc: Location,
    /// `!reset`, `!override` or none.
    pub tag: Tag,
}

impl PartialEq for Node {
    /// Nodes compare by value and tag; where they were written does not matter.
    fn eq(&self, other: &Self) -> bool {
        self.value == other.value && self.tag == other.tag
    }
}

impl Node {
    /// A node with no tag.
    pub fn new(value: Value, loc: Location) -> Self {
        Node {
            value,
            loc,
            tag: Tag::None,
        }
    }

    /// A quoted string node.
    pub fn string(text: impl Into<String>, loc: Location) -> Self {
        Node::new(Value::Scalar(Scalar::string(text)), loc)
    }

    /// An empty mapping node.
    pub fn map(loc: Location) -> Self {
        Node::new(Value::Map(Mapping::default()), loc)
    }

    /// The mapping, if this node is one.
    pub fn as_map(&self) -> Option<&Mapping> {
        match &self.value {
            Value::Map(m) => Some(m),
            _ => None,
        }
    }

    /// The mapping, mutably, if this node is one.
    pub fn as_map_mut(&mut self) -> Option<&mut Mapping> {
        match &mut self.value {
            Value::Map(m) => Some(m),
            _ => None,
        }
    }

    /// The sequence, if this node is one.
    pub fn as_seq(&self) -> Option<&[Node]> {
        match &self.value {
            Value::Seq(s) => Some(s),
            _ => None,
        }
    }

    /// The scalar, if this node is one.
    pub fn as_scalar(&self) -> Option<&Scalar> {
        match &self.value {
            Value::Scalar(s) => Some(s),
            _ => None,
        }
    }

    /// The scalar's text when the node is a string (quoted, or plain that is not a number/bool).
    pub fn as_str(&self) -> Option<&str> {
        match &self.value {
            Value::Scalar(s) => match s.resolve() {
                Resolved::Str(t) => Some(t),
                _ => None,
            },
            _ => None,
        }
    }

    /// True for `null`.
    pub fn is_null(&self) -> bool {
        matches!(self.value, Value::Null)
    }

    /// Member of a mapping node.
    pub fn get(&self, key: &str) -> Option<&Node> {
        self.as_map().and_then(|m| m.get(key))
    }

    /// A word for the node's type, as validation errors use it ("a mapping", "a string").
    pub fn kind_name(&self) -> &'static str {
        match &self.value {
            Value::Null => "null",
            Value::Seq(_) => "array",
            Value::Map(_) => "mapping",
            Value::Scalar(s) => match s.resolve() {
                Resolved::Bool(_) => "boolean",
                Resolved::Int(_) => "integer",
                Resolved::Float(_) => "number",
                Resolved::Str(_) => "string",
            },
        }
    }

    /// Convert to JSON, typing plain scalars by the core schema (for `--format json` and tests).
    pub fn to_json(&self) -> serde_json::Value {
        use serde_json::Value as J;
        match &self.value {
            Value::Null => J::Null,
            Value::Scalar(s) => match s.resolve() {
                Resolved::Bool(b) => J::Bool(b),
                Resolved::Int(i) => J::from(i),
                Resolved::Float(f) => serde_json::Number::from_f64(f)
                    .map(J::Number)
                    .unwrap_or_else(|| J::String(s.text.clone())),
                Resolved::Str(t) => J::String(t.to_string()),
            },
            Value::Seq(items) => J::Array(items.iter().map(Node::to_json).collect()),
            Value::Map(m) => J::Object(
                m.iter()
                    .map(|(k, v)| (k.name.clone(), v.to_json()))
                    .collect(),
            ),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_scalars_resolve_like_yaml_1_2() {
        let r = |t: &str| match Scalar::plain(t).resolve() {
            Resolved::Str(_) => Resolved::Str("<str>"),
            Resolved::Bool(b) => Resolved::Bool(b),
            Resolved::Int(i) => Resolved::Int(i),
            Resolved::Float(f) => Resolved::Float(f),
        };
        assert_eq!(r("true"), Resolved::Bool(true));
        assert_eq!(r("yes"), Resolved::Str("<str>"));
        assert_eq!(r("123"), Resolved::Int(123));
        assert_eq!(r("-0x1F"), Resolved::Int(-31));
        assert_eq!(r("0o17"), Resolved::Int(15));
        assert_eq!(r("1.5"), Resolved::Float(1.5));
        assert_eq!(r("1e3"), Resolved::Float(1000.0));
        assert_eq!(r("8080:80"), Resolved::Str("<str>"));
        assert_eq!(r("1.2.3"), Resolved::Str("<str>"));
        assert_eq!(r("256m"), Resolved::Str("<str>"));
        assert_eq!(Scalar::string("123").resolve(), Resolved::Str("123"));
    }
}
