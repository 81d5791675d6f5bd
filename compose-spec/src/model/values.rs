//! Value types with more than one spelling in Compose files (durations, byte sizes, string or
//! list, list or mapping...) and the serde helpers that read every spelling and print the one
//! `docker compose config` prints.

use std::fmt;

use indexmap::IndexMap;
use serde::de::{self, MapAccess, SeqAccess, Visitor};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// `x-*` keys of an object, kept verbatim.
pub type Extensions = IndexMap<String, serde_json::Value>;

/// A mapping of strings (labels, annotations, sysctls, driver options).
pub type Mapping = IndexMap<String, String>;

/// A mapping whose values may be unset (`environment`, build `args`): `KEY` without `=`.
pub type MappingWithEquals = IndexMap<String, Option<String>>;

/// `x-*` values, with every nested mapping's keys sorted: compose-go holds them in Go maps,
/// so that is the order they print in.
pub fn extensions<'de, D: Deserializer<'de>>(d: D) -> Result<Extensions, D::Error> {
    fn sort(v: &mut serde_json::Value) {
        match v {
            serde_json::Value::Object(m) => {
                m.sort_keys();
                m.values_mut().for_each(sort);
            }
            serde_json::Value::Array(a) => a.iter_mut().for_each(sort),
            _ => {}
        }
    }
    let mut m: Extensions = IndexMap::deserialize(d)?;
    m.values_mut().for_each(sort);
    Ok(m)
}

/// Serialize a map with its keys sorted, as Go marshals maps.
pub fn sorted<S: Serializer, V: Serialize>(
    map: &IndexMap<String, V>,
    s: S,
) -> Result<S::Ok, S::Error> {
    use serde::ser::SerializeMap;
    let mut entries: Vec<(&String, &V)> = map.iter().collect();
    entries.sort_unstable_by(|a, b| a.0.cmp(b.0));
    let mut m = s.serialize_map(Some(entries.len()))?;
    for (k, v) in entries {
        m.serialize_entry(k, v)?;
    }
    m.end()
}

/// A scalar read as text, the way Go's `fmt.Sprint` prints it.
pub(crate) struct ScalarText(pub Option<String>);

impl<'de> Deserialize<'de> for ScalarText {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = ScalarText;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a boolean, null, number or string")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<ScalarText, E> {
                Ok(ScalarText(Some(v.to_string())))
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<ScalarText, E> {
                Ok(ScalarText(Some(v.to_string())))
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<ScalarText, E> {
                Ok(ScalarText(Some(v.to_string())))
            }
            fn visit_f64<E: de::Error>(self, v: f64) -> Result<ScalarText, E> {
                Ok(ScalarText(Some(go_float(v))))
            }
            fn visit_bool<E: de::Error>(self, v: bool) -> Result<ScalarText, E> {
                Ok(ScalarText(Some(v.to_string())))
            }
            fn visit_unit<E: de::Error>(self) -> Result<ScalarText, E> {
                Ok(ScalarText(None))
            }
            fn visit_none<E: de::Error>(self) -> Result<ScalarText, E> {
                Ok(ScalarText(None))
            }
        }
        d.deserialize_any(V)
    }
}

/// A float printed as Go's `%v` does for ordinary magnitudes.
pub(crate) fn go_float(v: f64) -> String {
    if v.fract() == 0.0 && v.abs() < 1e21 {
        format!("{}", v as i64)
    } else {
        format!("{v}")
    }
}

/// A string, or a number/boolean taken as its text (fields the schema types `string|number`).
pub fn string_like<'de, D: Deserializer<'de>>(d: D) -> Result<String, D::Error> {
    Ok(ScalarText::deserialize(d)?.0.unwrap_or_default())
}

/// Optional [`string_like`].
pub fn opt_string_like<'de, D: Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
    Ok(ScalarText::deserialize(d)?.0)
}

struct ListVisitor {
    what: &'static str,
    single: bool,
    numbers: bool,
}

impl<'de> Visitor<'de> for ListVisitor {
    type Value = Vec<String>;
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str(self.what)
    }
    fn visit_str<E: de::Error>(self, v: &str) -> Result<Vec<String>, E> {
        if self.single {
            Ok(vec![v.to_string()])
        } else {
            Err(E::invalid_type(de::Unexpected::Str(v), &self))
        }
    }
    fn visit_i64<E: de::Error>(self, v: i64) -> Result<Vec<String>, E> {
        if self.single && self.numbers {
            Ok(vec![v.to_string()])
        } else {
            Err(E::invalid_type(de::Unexpected::Signed(v), &self))
        }
    }
    fn visit_u64<E: de::Error>(self, v: u64) -> Result<Vec<String>, E> {
        self.visit_i64(v as i64)
    }
    fn visit_unit<E: de::Error>(self) -> Result<Vec<String>, E> {
        Ok(Vec::new())
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Vec<String>, A::Error> {
        let mut out = Vec::with_capacity(seq.size_hint().unwrap_or(0));
        if self.numbers {
            while let Some(ScalarText(v)) = seq.next_element()? {
                out.push(v.unwrap_or_default());
            }
        } else {
            while let Some(v) = seq.next_element::<String>()? {
                out.push(v);
            }
        }
        Ok(out)
    }
}

/// A string or a list of strings, as a list.
pub fn string_or_list<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<String>, D::Error> {
    d.deserialize_any(ListVisitor {
        what: "a string or list",
        single: true,
        numbers: false,
    })
}

/// A list of strings or numbers, as strings (or a single one).
pub fn string_or_number_list<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<String>, D::Error> {
    d.deserialize_any(ListVisitor {
        what: "a string, number or list",
        single: true,
        numbers: true,
    })
}

/// A list of strings or numbers, as strings.
pub fn number_list<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<String>, D::Error> {
    d.deserialize_any(ListVisitor {
        what: "a list",
        single: false,
        numbers: true,
    })
}

/// A list of strings that may also be `null`.
pub fn list<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<String>, D::Error> {
    d.deserialize_any(ListVisitor {
        what: "a list",
        single: false,
        numbers: false,
    })
}

struct DictVisitor {
    /// `KEY` without `=` in a list means "unset" (environment) rather than "" (labels).
    keep_unset: bool,
}

impl<'de> Visitor<'de> for DictVisitor {
    type Value = MappingWithEquals;
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a mapping")
    }
    fn visit_unit<E: de::Error>(self) -> Result<MappingWithEquals, E> {
        Ok(IndexMap::new())
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<MappingWithEquals, A::Error> {
        let mut out = IndexMap::with_capacity(seq.size_hint().unwrap_or(0));
        while let Some(ScalarText(v)) = seq.next_element()? {
            let v = v.unwrap_or_default();
            match v.split_once('=') {
                Some((k, val)) => out.insert(k.to_string(), Some(val.to_string())),
                None if self.keep_unset => out.insert(v, None),
                None => out.insert(v, Some(String::new())),
            };
        }
        Ok(out)
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<MappingWithEquals, A::Error> {
        let mut out = IndexMap::with_capacity(map.size_hint().unwrap_or(0));
        while let Some(k) = map.next_key::<String>()? {
            let ScalarText(v) = map.next_value()?;
            let v = if self.keep_unset {
                v
            } else {
                Some(v.unwrap_or_default())
            };
            out.insert(k, v);
        }
        Ok(out)
    }
}

/// A list of `KEY=VALUE` or a mapping, values as text; `KEY` alone and `null` mean "unset".
pub fn list_or_dict_opt<'de, D: Deserializer<'de>>(d: D) -> Result<MappingWithEquals, D::Error> {
    d.deserialize_any(DictVisitor { keep_unset: true })
}

/// A list of `KEY=VALUE` or a mapping, values as text; `KEY` alone and `null` mean "".
pub fn list_or_dict<'de, D: Deserializer<'de>>(d: D) -> Result<Mapping, D::Error> {
    let m = d.deserialize_any(DictVisitor { keep_unset: false })?;
    Ok(m.into_iter()
        .map(|(k, v)| (k, v.unwrap_or_default()))
        .collect())
}

/// A mapping only (no list form), values as text.
pub fn dict<'de, D: Deserializer<'de>>(d: D) -> Result<Mapping, D::Error> {
    let m: IndexMap<String, ScalarText> = IndexMap::deserialize(d)?;
    Ok(m.into_iter()
        .map(|(k, v)| (k, v.0.unwrap_or_default()))
        .collect())
}

/// A command as a string (split like a POSIX shell) or a list; `null` is no command.
pub fn command<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Vec<String>>, D::Error> {
    struct V;
    impl<'de> Visitor<'de> for V {
        type Value = Option<Vec<String>>;
        fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
            f.write_str("a null, string or list")
        }
        fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
            Ok(None)
        }
        fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
            split_shell(v).map(Some).map_err(E::custom)
        }
        fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<Self::Value, A::Error> {
            ListVisitor {
                what: "a list",
                single: false,
                numbers: true,
            }
            .visit_seq(seq)
            .map(Some)
        }
    }
    d.deserialize_any(V)
}

/// Split a command line the way go-shellwords does: quotes, backslash escapes, no expansion.
pub fn split_shell(s: &str) -> Result<Vec<String>, String> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut in_word = false;
    let mut chars = s.chars();
    while let Some(c) = chars.next() {
        match c {
            ' ' | '\t' | '\n' | '\r' => {
                if in_word {
                    out.push(std::mem::take(&mut cur));
                    in_word = false;
                }
            }
            '\\' => {
                in_word = true;
                if let Some(n) = chars.next() {
                    cur.push(n);
                }
            }
            '\'' => {
                in_word = true;
                loop {
                    match chars.next() {
                        Some('\'') => break,
                        Some(ch) => cur.push(ch),
                        None => return Err(format!("invalid command line string: {s}")),
                    }
                }
            }
            '"' => {
                in_word = true;
                loop {
                    match chars.next() {
                        Some('"') => break,
                        Some('\\') => match chars.next() {
                            Some(n @ ('"' | '\\' | '$' | '`')) => cur.push(n),
                            Some(n) => {
                                cur.push('\\');
                                cur.push(n);
                            }
                            None => return Err(format!("invalid command line string: {s}")),
                        },
                        Some(ch) => cur.push(ch),
                        None => return Err(format!("invalid command line string: {s}")),
                    }
                }
            }
            _ => {
                in_word = true;
                cur.push(c);
            }
        }
    }
    if in_word {
        out.push(cur);
    }
    Ok(out)
}

/// A duration such as `1m30s`, kept in nanoseconds and printed as Go's `time.Duration` prints.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Duration(pub i64);

impl Duration {
    /// Parse Go/str2duration syntax: `1h30m`, `1.5s`, `500ms`, `2d`; a bare `0` is zero.
    pub fn parse(s: &str) -> Result<Duration, String> {
        let t = s.trim();
        let err = || format!("invalid duration {s:?}");
        let (neg, mut rest) = match t.strip_prefix('-') {
            Some(r) => (true, r),
            None => (false, t.strip_prefix('+').unwrap_or(t)),
        };
        if rest == "0" {
            return Ok(Duration(0));
        }
        if rest.is_empty() {
            return Err(err());
        }
        let mut total: f64 = 0.0;
        while !rest.is_empty() {
            let num_end = rest
                .find(|c: char| !(c.is_ascii_digit() || c == '.'))
                .ok_or_else(|| format!("missing unit in duration {s:?}"))?;
            if num_end == 0 {
                return Err(err());
            }
            let n: f64 = rest[..num_end].parse().map_err(|_| err())?;
            rest = &rest[num_end..];
            let unit_end = rest
                .find(|c: char| c.is_ascii_digit() || c == '.')
                .unwrap_or(rest.len());
            let unit = match &rest[..unit_end] {
                "ns" => 1.0,
                "us" | "µs" | "μs" => 1e3,
                "ms" => 1e6,
                "s" => 1e9,
                "m" => 60e9,
                "h" => 3600e9,
                "d" => 86400e9,
                "w" => 604800e9,
                _ => return Err(format!("unknown unit in duration {s:?}")),
            };
            rest = &rest[unit_end..];
            total += n * unit;
        }
        let ns = total.round() as i64;
        Ok(Duration(if neg { -ns } else { ns }))
    }

    /// True for a zero duration (omitted from output, as Go's `omitempty` does).
    pub fn is_zero(&self) -> bool {
        self.0 == 0
    }
}

impl fmt::Display for Duration {
    /// Go's `time.Duration.String`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut d = self.0;
        if d == 0 {
            return f.write_str("0s");
        }
        let neg = d < 0;
        if neg {
            f.write_str("-")?;
            d = -d;
        }
        let u = d as u64;
        fn frac(v: u64, prec: u32) -> String {
            let div = 10u64.pow(prec);
            let (w, r) = (v / div, v % div);
            if r == 0 {
                return w.to_string();
            }
            let s = format!("{r:0width$}", width = prec as usize);
            format!("{w}.{}", s.trim_end_matches('0'))
        }
        if u < 1_000 {
            return write!(f, "{u}ns");
        }
        if u < 1_000_000 {
            return write!(f, "{}µs", frac(u, 3));
        }
        if u < 1_000_000_000 {
            return write!(f, "{}ms", frac(u, 6));
        }
        let secs_ns = u % 60_000_000_000;
        let mins = u / 60_000_000_000;
        let (h, m) = (mins / 60, mins % 60);
        if h > 0 {
            write!(f, "{h}h{m}m")?;
        } else if m > 0 {
            write!(f, "{m}m")?;
        }
        write!(f, "{}s", frac(secs_ns, 9))
    }
}

impl Serialize for Duration {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Duration {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let t = ScalarText::deserialize(d)?
            .0
            .ok_or_else(|| de::Error::custom("must be a duration"))?;
        Duration::parse(&t).map_err(de::Error::custom)
    }
}

/// A byte size such as `256m` or `1g`, printed as a decimal string of bytes (`"268435456"`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct UnitBytes(pub i64);

impl UnitBytes {
    /// Parse docker's `RAMInBytes` syntax: digits with an optional `b/k/m/g/t/p` suffix (binary).
    pub fn parse(s: &str) -> Result<UnitBytes, String> {
        let t = s.trim();
        if let Ok(n) = t.parse::<i64>() {
            return Ok(UnitBytes(n));
        }
        let err = || format!("invalid size: '{s}'");
        let lower = t.to_ascii_lowercase();
        let num_end = lower
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .unwrap_or(lower.len());
        let n: f64 = lower[..num_end].parse().map_err(|_| err())?;
        let mut unit = lower[num_end..].trim_start();
        unit = unit.strip_suffix('b').unwrap_or(unit);
        unit = unit.strip_suffix('i').unwrap_or(unit);
        let mult: f64 = match unit {
            "" => 1.0,
            "k" => 1024.0,
            "m" => 1024f64.powi(2),
            "g" => 1024f64.powi(3),
            "t" => 1024f64.powi(4),
            "p" => 1024f64.powi(5),
            _ => return Err(err()),
        };
        Ok(UnitBytes((n * mult) as i64))
    }
}

impl Serialize for UnitBytes {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(&self.0)
    }
}

impl<'de> Deserialize<'de> for UnitBytes {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = UnitBytes;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a integer or string")
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<UnitBytes, E> {
                Ok(UnitBytes(v))
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<UnitBytes, E> {
                Ok(UnitBytes(v as i64))
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<UnitBytes, E> {
                UnitBytes::parse(v).map_err(E::custom)
            }
        }
        d.deserialize_any(V)
    }
}

/// A CPU count (`cpus: 0.5` or `"0.5"`), printed as a number like Go's float32.
#[derive(Clone, Copy, Debug, Default, PartialEq, PartialOrd)]
pub struct Cpus(pub f32);

impl Serialize for Cpus {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        // Printing through f32's shortest form keeps `0.001` from becoming 0.0010000000474974513.
        let v: f64 = self.0.to_string().parse().unwrap_or(f64::from(self.0));
        if v.fract() == 0.0 && v.abs() < 1e15 {
            s.serialize_i64(v as i64)
        } else {
            s.serialize_f64(v)
        }
    }
}

impl<'de> Deserialize<'de> for Cpus {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let t = ScalarText::deserialize(d)?
            .0
            .ok_or_else(|| de::Error::custom("must be a number or string"))?;
        t.trim()
            .parse::<f32>()
            .map(Cpus)
            .map_err(|_| de::Error::custom(format!("invalid cpus value {t:?}")))
    }
}

/// A file mode: an integer or an octal string, printed as an octal string (`"0440"`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct FileMode(pub u32);

impl Serialize for FileMode {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(&format_args!("0{:o}", self.0))
    }
}

impl<'de> Deserialize<'de> for FileMode {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = FileMode;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a number or string")
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<FileMode, E> {
                u32::try_from(v)
                    .map(FileMode)
                    .map_err(|_| E::custom("must be a valid file mode"))
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<FileMode, E> {
                self.visit_i64(v as i64)
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<FileMode, E> {
                u32::from_str_radix(v.trim().trim_start_matches("0o"), 8)
                    .map(FileMode)
                    .map_err(|_| E::custom(format!("invalid file mode {v:?}")))
            }
        }
        d.deserialize_any(V)
    }
}

/// A boolean that defaults to `true` and is printed only when `false` (Go's `OptOut`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct OptOut(pub bool);

impl Default for OptOut {
    fn default() -> Self {
        OptOut(true)
    }
}

impl OptOut {
    /// True when the value is the default (`true`) and so omitted.
    pub fn is_default(&self) -> bool {
        self.0
    }
}

impl Serialize for OptOut {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_bool(self.0)
    }
}

impl<'de> Deserialize<'de> for OptOut {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        bool::deserialize(d).map(OptOut)
    }
}

/// Serde predicate: a `false` boolean is omitted.
pub fn is_false(b: &bool) -> bool {
    !*b
}

/// Serde predicate: a zero number is omitted.
pub fn is_zero<T: Default + PartialEq>(v: &T) -> bool {
    *v == T::default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_print_like_go() {
        let p = |s: &str| Duration::parse(s).unwrap().to_string();
        assert_eq!(p("60s"), "1m0s");
        assert_eq!(p("1m30s"), "1m30s");
        assert_eq!(p("120s"), "2m0s");
        assert_eq!(p("1h"), "1h0m0s");
        assert_eq!(p("1.5s"), "1.5s");
        assert_eq!(p("500ms"), "500ms");
        assert_eq!(p("10s"), "10s");
        assert_eq!(p("0"), "0s");
    }

    #[test]
    fn byte_sizes_are_binary() {
        assert_eq!(UnitBytes::parse("50M").unwrap().0, 52428800);
        assert_eq!(UnitBytes::parse("1g").unwrap().0, 1 << 30);
        assert_eq!(UnitBytes::parse("1gb").unwrap().0, 1 << 30);
        assert_eq!(UnitBytes::parse("10000").unwrap().0, 10000);
    }

    #[test]
    fn shell_split() {
        assert_eq!(
            split_shell(r#"bundle exec "a b" 'c d' e\ f"#).unwrap(),
            vec!["bundle", "exec", "a b", "c d", "e f"]
        );
    }
}
