//! Small helpers shared by the swarm commands: JSON field access, filters, IDs, durations.

use anyhow::{Context, Result};
use serde_json::Value;

/// A string at a JSON pointer, or "".
pub fn s(v: &Value, ptr: &str) -> String {
    match v.pointer(ptr) {
        Some(Value::String(s)) => s.clone(),
        Some(Value::Null) | None => String::new(),
        Some(x) => x.to_string(),
    }
}

/// The object's `Version.Index`.
pub fn version(v: &Value) -> u64 {
    v.pointer("/Version/Index")
        .and_then(Value::as_u64)
        .unwrap_or(0)
}

/// `-f key=value` flags (plus fixed ones) as the API's filters JSON.
pub fn filters(flags: &[String], extra: &[(&str, String)]) -> Result<Option<String>> {
    let mut m = serde_json::Map::new();
    let pairs = flags
        .iter()
        .map(|f| {
            f.split_once('=')
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .with_context(|| format!("bad format of filter (expected name=value): {f}"))
        })
        .chain(extra.iter().map(|(k, v)| Ok(((*k).to_string(), v.clone()))));
    for p in pairs {
        let (k, v) = p?;
        if let Some(o) = m
            .entry(k)
            .or_insert_with(|| Value::Object(Default::default()))
            .as_object_mut()
        {
            o.insert(v, Value::Bool(true));
        }
    }
    Ok((!m.is_empty()).then(|| Value::Object(m).to_string()))
}

/// A 12-character ID unless `--no-trunc`.
pub fn short_id(id: &str, no_trunc: bool) -> String {
    if no_trunc {
        id.to_string()
    } else {
        id.chars().take(12).collect()
    }
}

/// An RFC 3339 timestamp as Unix seconds (UTC, fraction ignored).
pub fn unix_of(ts: &str) -> Option<i64> {
    let (date, time) = ts.get(..19)?.split_once('T')?;
    let mut d = date.split('-').map(|x| x.parse::<i64>().ok());
    let (y, mo, da) = (d.next()??, d.next()??, d.next()??);
    let mut t = time.split(':').map(|x| x.parse::<i64>().ok());
    let (h, mi, se) = (t.next()??, t.next()??, t.next()??);
    // Days from civil (Howard Hinnant's algorithm).
    let y = if mo <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (mo + 9) % 12;
    let doy = (153 * mp + 2) / 5 + da - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    Some(days * 86400 + h * 3600 + mi * 60 + se)
}

/// Parses a Go duration (`10s`, `1m30s`, `500ms`) into nanoseconds.
pub fn parse_duration(s: &str) -> Result<i64> {
    compose_spec::model::Duration::parse(s)
        .map(|d| d.0)
        .map_err(|e| anyhow::anyhow!("invalid duration {s:?}: {e}"))
}

/// Parses a byte size (`64M`, `1g`, `1024`).
pub fn parse_bytes(s: &str) -> Result<i64> {
    compose_spec::model::UnitBytes::parse(s)
        .map(|b| b.0)
        .map_err(|e| anyhow::anyhow!("invalid size {s:?}: {e}"))
}

/// Image reference without its `@sha256:` digest, as docker's tables show it.
pub fn strip_digest(image: &str) -> String {
    image.split('@').next().unwrap_or(image).to_string()
}

/// `inspect` without `--pretty`: each object through the `--format` template, or all as one
/// JSON array; false (nothing printed) when the caller prints the pretty form.
pub fn print_inspected(all: &[Value], format: Option<&str>, pretty: bool) -> Result<bool> {
    if let Some(f) = format {
        for v in all {
            println!("{}", crate::engine::format::render_value(f, v));
        }
        return Ok(true);
    }
    if !pretty {
        println!("{}", serde_json::to_string_pretty(all)?);
        return Ok(true);
    }
    Ok(false)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamps() {
        assert_eq!(unix_of("1970-01-02T00:00:01.5Z"), Some(86401));
        assert_eq!(unix_of("2024-03-01T00:00:00Z"), Some(1_709_251_200));
    }
}
