//! Printing the model as `docker compose config` does: YAML in go-yaml v3's style (2-space
//! indentation, indented sequences, sorted maps, the same quoting rules) or JSON as Go's
//! `json.MarshalIndent` writes it (HTML-escaped, `x-*` keys only at the top level).

use std::cell::Cell;
use std::fmt::Write as _;

use serde::Serialize;
use serde_json::Value;

use crate::de::EXTENSIONS_FIELD;

mod yaml;

thread_local! {
    static JSON_MODE: Cell<bool> = const { Cell::new(false) };
}

/// True while serializing for JSON output or the config hash: compose-go's JSON marshalling
/// differs from its YAML one in a few places (`command: null`, `ipam: {}`, no extensions).
pub fn json_mode() -> bool {
    JSON_MODE.with(Cell::get)
}

/// Serialize a value to a JSON tree with JSON-mode field rules.
pub fn to_json_value<T: Serialize>(value: &T) -> serde_json::Result<Value> {
    struct Reset(bool);
    impl Drop for Reset {
        fn drop(&mut self) {
            JSON_MODE.with(|c| c.set(self.0));
        }
    }
    let _reset = Reset(JSON_MODE.with(|c| c.replace(true)));
    serde_json::to_value(value)
}

/// Serialize a value to a JSON tree with YAML-mode field rules.
pub fn to_yaml_value<T: Serialize>(value: &T) -> serde_json::Result<Value> {
    serde_json::to_value(value)
}

/// The YAML-mode tree with `#extensions` inlined: what the YAML output reads back as.
pub fn to_plain_value<T: Serialize>(value: &T) -> serde_json::Result<Value> {
    fn inline(v: Value) -> Value {
        match v {
            Value::Object(m) => {
                let mut out = serde_json::Map::with_capacity(m.len());
                for (k, v) in m {
                    if k == EXTENSIONS_FIELD {
                        if let Value::Object(ext) = v {
                            out.extend(ext);
                        }
                    } else {
                        out.insert(k, inline(v));
                    }
                }
                Value::Object(out)
            }
            Value::Array(a) => Value::Array(a.into_iter().map(inline).collect()),
            other => other,
        }
    }
    Ok(inline(to_yaml_value(value)?))
}

/// Render as YAML the way go-yaml v3 (and so `docker compose config`) does.
pub fn to_yaml<T: Serialize>(value: &T) -> serde_json::Result<String> {
    let mut out = String::new();
    yaml::write(value, &mut out)?;
    Ok(out)
}

/// Render as indented JSON the way compose-go's `Project.MarshalJSON` does: a Go map (keys
/// sorted) of name, services, networks, volumes, secrets, configs and the project's `x-*` keys,
/// indented by two spaces, with no final newline.
pub fn to_json<T: Serialize>(value: &T) -> serde_json::Result<String> {
    let v = to_json_value(value)?;
    let v = match v {
        Value::Object(mut m) => {
            let ext = m.shift_remove(EXTENSIONS_FIELD);
            m.shift_remove("models");
            let mut entries: Vec<(String, Value)> = m.into_iter().collect();
            if let Some(Value::Object(ext)) = ext {
                entries.extend(ext);
            }
            entries.sort_by(|a, b| a.0.cmp(&b.0));
            let mut v = Value::Object(entries.into_iter().collect());
            strip_extensions(&mut v);
            v
        }
        mut other => {
            strip_extensions(&mut other);
            other
        }
    };
    let s = serde_json::to_string_pretty(&v)?;
    Ok(go_html_escape(&s))
}

/// Drop nested extension objects (JSON marshalling has `json:"-"` on them).
pub fn strip_extensions(v: &mut Value) {
    match v {
        Value::Object(m) => {
            m.shift_remove(EXTENSIONS_FIELD);
            for (_, x) in m.iter_mut() {
                strip_extensions(x);
            }
        }
        Value::Array(a) => a.iter_mut().for_each(strip_extensions),
        _ => {}
    }
}

/// Go's `encoding/json` escaping of `<`, `>`, `&`, U+2028 and U+2029.
pub fn go_html_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '<' => out.push_str("\\u003c"),
            '>' => out.push_str("\\u003e"),
            '&' => out.push_str("\\u0026"),
            '\u{2028}' => out.push_str("\\u2028"),
            '\u{2029}' => out.push_str("\\u2029"),
            _ => out.push(c),
        }
    }
    out
}

pub(crate) fn pad(out: &mut String, n: usize) {
    const SPACES: &str = "                                                                ";
    let mut n = n;
    while n > SPACES.len() {
        out.push_str(SPACES);
        n -= SPACES.len();
    }
    out.push_str(&SPACES[..n]);
}

pub(crate) fn go_yaml_float(f: f64) -> String {
    if f.is_nan() {
        return ".nan".to_string();
    }
    if f.is_infinite() {
        return if f > 0.0 { ".inf" } else { "-.inf" }.to_string();
    }
    let s = format!("{f}");
    let exp = if f == 0.0 {
        0
    } else {
        f.abs().log10().floor() as i32
    };
    if !(-4..21).contains(&exp) {
        // Go's 'g' format switches to exponent notation for large/small magnitudes.
        let e = format!("{f:e}");
        if let Some((m, x)) = e.split_once('e') {
            let x: i32 = x.parse().unwrap_or(0);
            let sign = if x < 0 { '-' } else { '+' };
            return format!("{m}e{sign}{:02}", x.abs());
        }
    }
    s
}

/// How go-yaml v3 would write a string scalar.
pub(crate) fn write_scalar_str(s: &str, indent: usize, out: &mut String, is_key: bool) {
    // Nearly every string is printable ASCII on one line: one byte scan settles `printable` and
    // the line-break check that the general path below makes char by char.
    let simple = s.bytes().all(|c| (b' '..=b'~').contains(&c));
    if simple || !s.contains('\n') || is_key || !printable(s) {
        if !simple && !printable(s) {
            write_double_quoted(s, out);
            return;
        }
        if resolves_to_non_string(s) {
            write_double_quoted(s, out);
        } else if plain_allowed(s) {
            out.push_str(s);
        } else {
            write_single_quoted(s, out);
        }
        return;
    }
    write_literal(s, indent, out);
}

fn write_single_quoted(s: &str, out: &mut String) {
    out.push('\'');
    for (i, part) in s.split('\'').enumerate() {
        if i > 0 {
            out.push_str("''");
        }
        out.push_str(part);
    }
    out.push('\'');
}

#[cfg(test)]
fn write_scalar_str_reference(s: &str, indent: usize, out: &mut String, is_key: bool) {
    if s.contains('\n') && !is_key && printable(s) {
        write_literal(s, indent, out);
        return;
    }
    if !printable(s) {
        write_double_quoted(s, out);
        return;
    }
    if resolves_to_non_string(s) {
        write_double_quoted(s, out);
        return;
    }
    if plain_allowed(s) {
        out.push_str(s);
    } else {
        out.push('\'');
        out.push_str(&s.replace('\'', "''"));
        out.push('\'');
    }
}

fn printable(s: &str) -> bool {
    s.chars().all(|c| {
        c == '\n'
            || c == '\t'
            || (c >= ' ' && c != '\u{7f}' && !('\u{80}'..'\u{a0}').contains(&c)) && c != '\u{feff}'
    })
}

fn write_double_quoted(s: &str, out: &mut String) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            '\r' => out.push_str("\\r"),
            c if (c as u32) < 0x20 || c == '\u{7f}' => {
                let _ = write!(out, "\\x{:02X}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push('"');
}

fn write_literal(s: &str, indent: usize, out: &mut String) {
    out.push('|');
    if s.starts_with(' ') || s.starts_with('\n') {
        let _ = write!(out, "{}", 2);
    }
    let trailing = s.len() - s.trim_end_matches('\n').len();
    match trailing {
        0 => out.push('-'),
        1 => {}
        _ => out.push('+'),
    }
    let body = if trailing == 1 { &s[..s.len() - 1] } else { s };
    let body = if trailing > 1 {
        &body[..body.len() - 1]
    } else {
        body
    };
    for line in body.split('\n') {
        out.push('\n');
        if !line.is_empty() {
            pad(out, indent);
            out.push_str(line);
        }
    }
    // The caller writes the final line break.
}

/// go-yaml v3 quotes strings that would read back as another type, including YAML 1.1
/// booleans and base-60 numbers.
fn resolves_to_non_string(s: &str) -> bool {
    match s {
        "" | "~" | "null" | "Null" | "NULL" | "true" | "True" | "TRUE" | "false" | "False"
        | "FALSE" | ".inf" | ".Inf" | ".INF" | "+.inf" | "+.Inf" | "+.INF" | "-.inf" | "-.Inf"
        | "-.INF" | ".nan" | ".NaN" | ".NAN" | "y" | "Y" | "yes" | "Yes" | "YES" | "n" | "N"
        | "no" | "No" | "NO" | "on" | "On" | "ON" | "off" | "Off" | "OFF" => {
            return true;
        }
        _ => {}
    }
    let b = s.as_bytes();
    let first = b[0];
    if !(first.is_ascii_digit() || matches!(first, b'-' | b'+' | b'.')) {
        return false;
    }
    let plain: String = s.chars().filter(|c| *c != '_').collect();
    if go_int(&plain) {
        return true;
    }
    if is_yaml_float(s) {
        return true;
    }
    is_base60(s)
}

/// Go's `strconv.ParseInt(s, 0, 64)` syntax (sign, 0x/0o/0b/leading-0 prefixes).
fn go_int(s: &str) -> bool {
    let t = s.strip_prefix(['-', '+']).unwrap_or(s);
    if t.is_empty() {
        return false;
    }
    let (digits, radix) = if let Some(h) = t.strip_prefix("0x").or_else(|| t.strip_prefix("0X")) {
        (h, 16)
    } else if let Some(o) = t.strip_prefix("0o").or_else(|| t.strip_prefix("0O")) {
        (o, 8)
    } else if let Some(b) = t.strip_prefix("0b").or_else(|| t.strip_prefix("0B")) {
        (b, 2)
    } else if t.len() > 1 && t.starts_with('0') {
        (&t[1..], 8)
    } else {
        (t, 10)
    };
    !digits.is_empty() && digits.chars().all(|c| c.is_digit(radix))
}

fn is_yaml_float(s: &str) -> bool {
    let t = s.strip_prefix(['-', '+']).unwrap_or(s);
    let (mantissa, exp) = match t.find(['e', 'E']) {
        Some(i) => (&t[..i], Some(&t[i + 1..])),
        None => (t, None),
    };
    let ok_mantissa = match mantissa.split_once('.') {
        Some((a, b)) => {
            a.chars().all(|c| c.is_ascii_digit())
                && b.chars().all(|c| c.is_ascii_digit())
                && !(a.is_empty() && b.is_empty())
        }
        None => !mantissa.is_empty() && mantissa.chars().all(|c| c.is_ascii_digit()),
    };
    let ok_exp = match exp {
        None => true,
        Some(e) => {
            let e = e.strip_prefix(['-', '+']).unwrap_or(e);
            !e.is_empty() && e.chars().all(|c| c.is_ascii_digit())
        }
    };
    ok_mantissa && ok_exp
}

/// `^[-+]?[0-9][0-9_]*(?::[0-5]?[0-9])+(?:\.[0-9_]*)?$`
fn is_base60(s: &str) -> bool {
    let t = s.strip_prefix(['-', '+']).unwrap_or(s);
    let (main, frac) = match t.split_once('.') {
        Some((m, f)) => (m, Some(f)),
        None => (t, None),
    };
    if let Some(f) = frac {
        if !f.chars().all(|c| c.is_ascii_digit() || c == '_') {
            return false;
        }
    }
    let mut parts = main.split(':');
    let Some(head) = parts.next() else {
        return false;
    };
    if head.is_empty()
        || !head.as_bytes()[0].is_ascii_digit()
        || !head.chars().all(|c| c.is_ascii_digit() || c == '_')
    {
        return false;
    }
    let mut n = 0;
    for p in parts {
        n += 1;
        let ok = match p.as_bytes() {
            [d] => d.is_ascii_digit(),
            [a, d] => (b'0'..=b'5').contains(a) && d.is_ascii_digit(),
            _ => false,
        };
        if !ok {
            return false;
        }
    }
    n > 0
}

/// libyaml's analysis of whether a scalar may be written plain in block context.
fn plain_allowed(s: &str) -> bool {
    // Every indicator is ASCII, so bytes suffice: UTF-8 continuation bytes never match.
    let b = s.as_bytes();
    let (Some(&first), Some(&last)) = (b.first(), b.last()) else {
        return false;
    };
    if first == b' ' || last == b' ' || s.starts_with("---") || s.starts_with("...") {
        return false;
    }
    let blank_at = |i: usize| i >= b.len() || b[i] == b' ' || b[i] == b'\t';
    match first {
        b'#' | b',' | b'[' | b']' | b'{' | b'}' | b'&' | b'*' | b'!' | b'|' | b'>' | b'\''
        | b'"' | b'%' | b'@' | b'`' => return false,
        b'?' | b':' | b'-' if blank_at(1) => return false,
        _ => {}
    }
    for (i, &c) in b.iter().enumerate() {
        match c {
            b'\t' => return false,
            b':' if i > 0 && blank_at(i + 1) => return false,
            b'#' if i > 0 && (b[i - 1] == b' ' || b[i - 1] == b'\t') => return false,
            _ => {}
        }
    }
    true
}

/// A raw node tree printed the way compose prints a model it did not type (`config
/// --no-interpolate`): a Go map at every level, so keys are sorted; scalars keep their YAML type.
pub struct SortedNode<'a>(pub &'a crate::yaml::Node);

impl Serialize for SortedNode<'_> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use crate::yaml::{Resolved, Value as V};
        use serde::ser::{SerializeMap, SerializeSeq};
        match &self.0.value {
            V::Null => s.serialize_unit(),
            V::Scalar(sc) => match sc.resolve() {
                Resolved::Bool(b) => s.serialize_bool(b),
                Resolved::Int(i) => s.serialize_i64(i),
                Resolved::Float(f) => s.serialize_f64(f),
                Resolved::Str(t) => s.serialize_str(t),
            },
            V::Seq(items) => {
                let mut seq = s.serialize_seq(Some(items.len()))?;
                for i in items {
                    seq.serialize_element(&SortedNode(i))?;
                }
                seq.end()
            }
            V::Map(m) => {
                let mut entries: Vec<_> = m.iter().collect();
                entries.sort_unstable_by(|a, b| a.0.name.cmp(&b.0.name));
                let mut map = s.serialize_map(Some(entries.len()))?;
                for (k, v) in entries {
                    map.serialize_entry(&k.name, &SortedNode(v))?;
                }
                map.end()
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn scalar_fast_path_matches_the_general_rules() {
        let cases = [
            "",
            "~",
            "null",
            "yes",
            "No",
            "0440",
            "1_000",
            "1:20",
            "-1.5e3",
            ".5",
            "+.inf",
            "busybox:1",
            "a: b",
            "a:b",
            "#x",
            "x #y",
            "x#y",
            "- x",
            "-x",
            "it's",
            "'q'",
            "\"dq\"",
            " lead",
            "trail ",
            "---x",
            "...",
            "tab\there",
            "two\nlines",
            "two\nlines\n",
            "\nlead",
            " \nx",
            "caf\u{e9}",
            "\u{85}",
            "\u{feff}x",
            "del\u{7f}",
            "ctl\u{1}",
            "{a}",
            "[a]",
            "&a",
            "*a",
            "!t",
            "|",
            ">",
            "%",
            "@",
            "`",
            "?",
            "? x",
            ":",
            ": x",
            "$$VAR",
            "${X:-y}",
            "1.2.3",
            "0x1F",
            "0o17",
            "0b101",
            "8080:80",
        ];
        for s in cases {
            for is_key in [false, true] {
                let (mut a, mut b) = (String::new(), String::new());
                write_scalar_str(s, 4, &mut a, is_key);
                write_scalar_str_reference(s, 4, &mut b, is_key);
                assert_eq!(a, b, "{s:?} key={is_key}");
            }
        }
    }

    #[test]
    fn yaml_matches_go_yaml_style() {
        let v = json!({
            "services": {"web": {
                "command": ["-p", "3000", "a: b"],
                "environment": {"A": null, "B": "yes", "C": "0440"},
                "dockerfile_inline": "FROM alpine\nRUN x\n",
                "ports": [{"target": 80, "published": "8080"}],
                "volume": {},
                "cpus": 0.5
            }}
        });
        let y = to_yaml(&v).unwrap();
        assert_eq!(
            y,
            "services:\n  web:\n    command:\n      - -p\n      - \"3000\"\n      - 'a: b'\n    environment:\n      A: null\n      B: \"yes\"\n      C: \"0440\"\n    dockerfile_inline: |\n      FROM alpine\n      RUN x\n    ports:\n      - target: 80\n        published: \"8080\"\n    volume: {}\n    cpus: 0.5\n"
        );
    }
}
