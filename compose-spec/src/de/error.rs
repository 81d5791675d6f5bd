//! Decode errors with a location, a YAML path and compose-go's wording.

use std::fmt;

use crate::yaml::Location;

/// A value that does not fit the Compose model.
#[derive(Debug, Clone, PartialEq)]
pub struct DecodeError {
    /// Where the offending value (or key) was written; `None` until the deserializer fills it in.
    pub loc: Option<Location>,
    /// The YAML path of the value, `services.web.ports[1]`; empty for the top level.
    pub path: String,
    /// What is wrong: `must be a string`, `additional properties 'x' not allowed`, ...
    pub message: String,
    /// Whether `message` reads after the path (`services.x must be ...`) or stands alone.
    pub(crate) attach_path: bool,
}

impl DecodeError {
    /// An error about the value at `path`, message phrased to follow the path.
    pub fn new(message: impl Into<String>) -> Self {
        DecodeError {
            loc: None,
            path: String::new(),
            message: message.into(),
            attach_path: true,
        }
    }

    /// An error whose message is complete on its own (no path prefix).
    pub fn bare(message: impl Into<String>) -> Self {
        DecodeError {
            attach_path: false,
            ..DecodeError::new(message)
        }
    }

    /// An error at a known location and path.
    pub fn at(loc: &Location, path: impl Into<String>, message: impl Into<String>) -> Self {
        DecodeError {
            loc: Some(loc.clone()),
            path: path.into(),
            message: message.into(),
            attach_path: true,
        }
    }

    /// True once a location has been attached.
    pub fn is_located(&self) -> bool {
        self.loc.is_some()
    }
}

impl fmt::Display for DecodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(loc) = &self.loc {
            write!(f, "{loc}: ")?;
        }
        if self.attach_path {
            if self.path.is_empty() {
                if self.message.starts_with("must ") {
                    write!(f, "top-level object {}", self.message)
                } else {
                    f.write_str(&self.message)
                }
            } else if reads_after_path(&self.message) {
                write!(f, "{} {}", self.path, self.message)
            } else {
                write!(f, "{}: {}", self.path, self.message)
            }
        } else {
            f.write_str(&self.message)
        }
    }
}

impl std::error::Error for DecodeError {}

/// compose-go's schema messages continue the path (`x must be a string`); others follow a colon.
fn reads_after_path(message: &str) -> bool {
    [
        "must ",
        "additional properties ",
        "missing property ",
        "is out of range",
        "has an invalid value",
        "property ",
    ]
    .iter()
    .any(|p| message.starts_with(p))
}

impl serde::de::Error for DecodeError {
    fn custom<T: fmt::Display>(msg: T) -> Self {
        DecodeError::new(msg.to_string())
    }

    fn invalid_type(_unexp: serde::de::Unexpected<'_>, exp: &dyn serde::de::Expected) -> Self {
        DecodeError::new(format!("must be {exp}"))
    }

    fn invalid_value(unexp: serde::de::Unexpected<'_>, exp: &dyn serde::de::Expected) -> Self {
        DecodeError::new(format!("has an invalid value {unexp}, expected {exp}"))
    }

    fn unknown_variant(variant: &str, expected: &'static [&'static str]) -> Self {
        let mut msg = format!(
            "must be one of {}, not '{variant}'",
            expected
                .iter()
                .map(|v| format!("'{v}'"))
                .collect::<Vec<_>>()
                .join(", ")
        );
        if let Some(s) = suggest(variant, expected) {
            msg.push_str(&format!(" (did you mean '{s}'?)"));
        }
        DecodeError::new(msg)
    }

    fn unknown_field(field: &str, expected: &'static [&'static str]) -> Self {
        let mut msg = format!("additional properties '{field}' not allowed");
        if let Some(s) = suggest(field, expected) {
            msg.push_str(&format!(" (did you mean '{s}'?)"));
        }
        DecodeError::new(msg)
    }

    fn missing_field(field: &'static str) -> Self {
        DecodeError::new(format!("missing property '{field}'"))
    }

    fn duplicate_field(field: &'static str) -> Self {
        DecodeError::new(format!("property '{field}' is defined twice"))
    }
}

/// The closest expected name within an edit distance that still looks like a typo.
pub(crate) fn suggest<'a>(field: &str, expected: &[&'a str]) -> Option<&'a str> {
    // A typo is short; a long key would only make the distance table large.
    if field.len() > 64 {
        return None;
    }
    let max = (field.chars().count() / 3).clamp(1, 3);
    expected
        .iter()
        .filter(|e| !e.starts_with("x-") && !e.starts_with('#'))
        .map(|e| (levenshtein(field, e), *e))
        .filter(|(d, _)| *d <= max)
        .min_by_key(|(d, _)| *d)
        .map(|(_, e)| e)
}

/// Optimal-string-alignment distance: edits plus adjacent transpositions, the usual typos.
fn levenshtein(a: &str, b: &str) -> usize {
    let a: Vec<char> = a.chars().collect();
    let b: Vec<char> = b.chars().collect();
    let w = b.len() + 1;
    let mut d = vec![0usize; (a.len() + 1) * w];
    for i in 0..=a.len() {
        d[i * w] = i;
    }
    for (j, cell) in d.iter_mut().enumerate().take(w) {
        *cell = j;
    }
    for i in 1..=a.len() {
        for j in 1..=b.len() {
            let cost = usize::from(a[i - 1] != b[j - 1]);
            let mut v = (d[(i - 1) * w + j] + 1)
                .min(d[i * w + j - 1] + 1)
                .min(d[(i - 1) * w + j - 1] + cost);
            if i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] {
                v = v.min(d[(i - 2) * w + j - 2] + 1);
            }
            d[i * w + j] = v;
        }
    }
    d[a.len() * w + b.len()]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn suggests_close_names_only() {
        assert_eq!(
            suggest("enviroment", &["image", "environment", "env_file"]),
            Some("environment")
        );
        assert_eq!(suggest("zzzzzz", &["image", "environment"]), None);
    }
}
