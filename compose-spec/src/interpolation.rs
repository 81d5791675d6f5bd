//! Compose variable substitution, matching compose-go's `template` package.
//!
//! compose-go drives substitution with one regular expression,
//! `\$(?i:(?P<escaped>\$)|(?P<named>[_a-z][_a-z0-9]*)|{(?:(?P<braced>[_a-z][_a-z0-9]*(?::?[-+?](.*))?)}|(?P<invalid>)))`,
//! plus a brace counter that cuts a greedy braced match back to its balanced `}` and
//! substitutes what follows on its own. This module reproduces that behaviour with a
//! hand-written scanner (no regex dependency), including its quirks: `.*` stops at a newline,
//! a `{` in a default swallows the byte after it when counting braces, and nested
//! expressions in an unused branch are never evaluated.

use std::fmt::Write as _;

/// Deepest nesting of defaults, replacements and error messages evaluated before giving up.
///
/// compose-go has no limit; real files nest two or three levels, and a bound keeps hostile
/// input from exhausting the stack.
pub const MAX_NESTING: usize = 64;

/// Result of substituting one string.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Substituted {
    /// The string with every expression replaced.
    pub value: String,
    /// Variables referenced that were unset and had no default (compose warns and uses "").
    pub unset: Vec<String>,
}

/// Why a template could not be substituted.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum InterpolationError {
    /// A `$` starts something that is neither `$$`, `$NAME` nor a well-formed `${...}`.
    #[error("Invalid template: {}", go_quote(.template))]
    InvalidTemplate {
        /// The (sub)string being substituted when the error was found, as compose-go reports it.
        template: String,
    },
    /// `${VAR:?msg}` or `${VAR?msg}` with the variable missing.
    #[error("required variable {variable} is missing a value{}", reason_suffix(.reason))]
    MissingRequired {
        /// Name of the required variable.
        variable: String,
        /// The message after `?`, itself substituted; may be empty.
        reason: String,
    },
    /// Defaults nested deeper than [`MAX_NESTING`].
    #[error("interpolation nested deeper than {limit} levels")]
    TooDeep {
        /// The limit that was exceeded.
        limit: usize,
    },
}

impl InterpolationError {
    /// The error as compose-go's `interpolation` package words it for the value at `path`.
    pub fn at_path(&self, path: &str) -> String {
        match self {
            InterpolationError::InvalidTemplate { template } => format!(
                "invalid interpolation format for {path}.\nYou may need to escape any $ with another $.\n{template}"
            ),
            other => format!("error while interpolating {path}: {other}"),
        }
    }
}

fn reason_suffix(reason: &str) -> String {
    if reason.is_empty() {
        String::new()
    } else {
        format!(": {reason}")
    }
}

/// Substitutes every `$` expression of `template`, reading variables through `lookup`.
pub fn substitute(
    template: &str,
    lookup: &dyn Fn(&str) -> Option<String>,
) -> Result<Substituted, InterpolationError> {
    if !template.contains('$') {
        return Ok(Substituted {
            value: template.to_owned(),
            unset: Vec::new(),
        });
    }
    let mut unset = Vec::new();
    let value = Scanner {
        lookup,
        unset: &mut unset,
    }
    .run(template, 0)?;
    Ok(Substituted {
        value,
        unset: dedup(unset),
    })
}

fn dedup(names: Vec<String>) -> Vec<String> {
    if names.len() < 2 {
        return names;
    }
    let mut seen = std::collections::HashSet::with_capacity(names.len());
    names
        .into_iter()
        .filter(|n| seen.insert(n.clone()))
        .collect()
}

/// The six operators. compose-go picks the one that occurs first in the matched text, which is
/// always the one right after the name, `:x` winning over the `x` one byte later.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Op {
    RequiredNonEmpty,
    Required,
    DefaultIfEmpty,
    DefaultIfUnset,
    ReplaceIfNonEmpty,
    ReplaceIfSet,
}

impl Op {
    /// Parses the operator at the start of `s`, as `:?[-+?]` would.
    fn at(s: &[u8]) -> Option<(Op, usize)> {
        let (colon, sym) = match s {
            [b':', c, ..] if matches!(c, b'-' | b'+' | b'?') => (true, *c),
            [c, ..] if matches!(c, b'-' | b'+' | b'?') => (false, *c),
            _ => return None,
        };
        let op = match (colon, sym) {
            (true, b'?') => Op::RequiredNonEmpty,
            (false, b'?') => Op::Required,
            (true, b'-') => Op::DefaultIfEmpty,
            (false, b'-') => Op::DefaultIfUnset,
            (true, _) => Op::ReplaceIfNonEmpty,
            (false, _) => Op::ReplaceIfSet,
        };
        Some((op, if colon { 2 } else { 1 }))
    }
}

fn is_name_start(c: char) -> bool {
    // (?i) in Go folds [a-z] to also match U+017F (long s) and U+212A (Kelvin sign).
    c == '_' || c.is_ascii_alphabetic() || c == '\u{17F}' || c == '\u{212A}'
}

fn is_name_char(c: char) -> bool {
    is_name_start(c) || c.is_ascii_digit()
}

/// Byte length of the name at the start of `s`, 0 when there is none.
fn name_len(s: &str) -> usize {
    let mut chars = s.char_indices();
    match chars.next() {
        Some((_, c)) if is_name_start(c) => {}
        _ => return 0,
    }
    chars
        .find(|&(_, c)| !is_name_char(c))
        .map_or(s.len(), |(i, _)| i)
}

/// compose-go's `getFirstBraceClosingIndex`, byte for byte (an opening brace skips the next byte).
fn first_brace_closing_index(s: &[u8]) -> Option<usize> {
    let mut open = 0i64;
    let mut i = 0;
    while i < s.len() {
        if s[i] == b'}' {
            open -= 1;
            if open == 0 {
                return Some(i);
            }
        }
        if s[i] == b'{' {
            open += 1;
            i += 1;
        }
        i += 1;
    }
    None
}

struct Scanner<'a> {
    lookup: &'a dyn Fn(&str) -> Option<String>,
    unset: &'a mut Vec<String>,
}

impl Scanner<'_> {
    /// One `SubstituteWithOptions` call over `template`; `depth` counts enclosing expressions.
    fn run(&mut self, template: &str, depth: usize) -> Result<String, InterpolationError> {
        if depth > MAX_NESTING {
            return Err(InterpolationError::TooDeep { limit: MAX_NESTING });
        }
        let bytes = template.as_bytes();
        let mut out = String::with_capacity(template.len());
        let mut pos = 0;
        // compose-go substitutes the text after a balanced `}` by a nested call over that text
        // only, which names that text in "Invalid template" errors; these are those spans.
        let mut contexts: Vec<(usize, usize)> = Vec::new();
        // Position of the last `}` before the next newline, cached per line: a greedy `.*}`
        // ends there, and recomputing it for every expression would be quadratic.
        let mut line_cache: Option<(usize, usize, Option<usize>)> = None;

        while let Some(offset) = template[pos..].find('$') {
            let dollar = pos + offset;
            out.push_str(&template[pos..dollar]);
            while contexts.last().is_some_and(|&(_, end)| end <= dollar) {
                contexts.pop();
            }
            let after = dollar + 1;
            match bytes.get(after) {
                None => {
                    out.push('$');
                    pos = after;
                }
                Some(b'$') => {
                    out.push('$');
                    pos = after + 1;
                }
                Some(b'{') => {
                    let name_start = after + 1;
                    let nlen = name_len(&template[name_start..]);
                    let name_end = name_start + nlen;
                    let op = if nlen == 0 {
                        None
                    } else {
                        Op::at(&bytes[name_end..])
                    };
                    let close = op.and_then(|(_, oplen)| {
                        let (_, _, last) = match line_cache {
                            Some(c @ (s, e, _)) if s <= name_end && name_end < e => c,
                            _ => {
                                let c = line_info(template, name_end);
                                line_cache = Some(c);
                                c
                            }
                        };
                        last.filter(|&l| l >= name_end + oplen)
                    });
                    match (op, close) {
                        (Some((op, oplen)), Some(last_close)) => {
                            let whole = &template[dollar..=last_close];
                            let (inner_end, next) =
                                match first_brace_closing_index(whole.as_bytes()) {
                                    Some(cbi) => (dollar + cbi, dollar + cbi + 1),
                                    None => (last_close, last_close + 1),
                                };
                            let name = &template[name_start..name_end];
                            let arg = &template[name_end + oplen..inner_end];
                            let value = self.apply(op, name, arg, depth)?;
                            out.push_str(&value);
                            if next <= last_close {
                                contexts.push((next, last_close + 1));
                            }
                            pos = next;
                        }
                        _ if nlen > 0 && bytes.get(name_end) == Some(&b'}') => {
                            let name = &template[name_start..name_end];
                            out.push_str(&self.get(name));
                            pos = name_end + 1;
                        }
                        _ => {
                            let ctx = contexts.last().map_or(template, |&(s, e)| &template[s..e]);
                            return Err(InterpolationError::InvalidTemplate {
                                template: ctx.to_owned(),
                            });
                        }
                    }
                }
                Some(_) => {
                    let nlen = name_len(&template[after..]);
                    if nlen == 0 {
                        out.push('$');
                        pos = after;
                    } else {
                        out.push_str(&self.get(&template[after..after + nlen]));
                        pos = after + nlen;
                    }
                }
            }
        }
        out.push_str(&template[pos..]);
        Ok(out)
    }

    /// A plain reference: the value, or "" with the name recorded as unset.
    fn get(&mut self, name: &str) -> String {
        match (self.lookup)(name) {
            Some(v) => v,
            None => {
                self.unset.push(name.to_owned());
                String::new()
            }
        }
    }

    fn apply(
        &mut self,
        op: Op,
        name: &str,
        arg: &str,
        depth: usize,
    ) -> Result<String, InterpolationError> {
        let value = (self.lookup)(name);
        let non_empty = value.as_deref().is_some_and(|v| !v.is_empty());
        match op {
            Op::DefaultIfEmpty | Op::DefaultIfUnset => {
                let use_default = match op {
                    Op::DefaultIfEmpty => !non_empty,
                    _ => value.is_none(),
                };
                if use_default {
                    self.run(arg, depth + 1)
                } else {
                    Ok(value.unwrap_or_default())
                }
            }
            Op::ReplaceIfNonEmpty | Op::ReplaceIfSet => {
                let replace = match op {
                    Op::ReplaceIfNonEmpty => non_empty,
                    _ => value.is_some(),
                };
                if replace {
                    self.run(arg, depth + 1)
                } else {
                    Ok(value.unwrap_or_default())
                }
            }
            Op::RequiredNonEmpty | Op::Required => {
                let missing = match op {
                    Op::RequiredNonEmpty => !non_empty,
                    _ => value.is_none(),
                };
                if missing {
                    let reason = self.run(arg, depth + 1)?;
                    Err(InterpolationError::MissingRequired {
                        variable: name.to_owned(),
                        reason,
                    })
                } else {
                    Ok(value.unwrap_or_default())
                }
            }
        }
    }
}

/// (line start, line end, last `}` within the line) for the line holding byte `at`.
fn line_info(s: &str, at: usize) -> (usize, usize, Option<usize>) {
    let bytes = s.as_bytes();
    let start = bytes[..at]
        .iter()
        .rposition(|&b| b == b'\n')
        .map_or(0, |p| p + 1);
    let end = bytes[at..]
        .iter()
        .position(|&b| b == b'\n')
        .map_or(bytes.len(), |p| at + p);
    let last = bytes[start..end]
        .iter()
        .rposition(|&b| b == b'}')
        .map(|p| start + p);
    (start, end, last)
}

/// Quotes `s` the way Go's `%q` / `strconv.Quote` does.
pub(crate) fn go_quote(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\u{7}' => out.push_str("\\a"),
            '\u{8}' => out.push_str("\\b"),
            '\u{c}' => out.push_str("\\f"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\u{b}' => out.push_str("\\v"),
            c if go_is_print(c) => out.push(c),
            c if (c as u32) < 0x80 => {
                let _ = write!(out, "\\x{:02x}", c as u32);
            }
            c if (c as u32) < 0x10000 => {
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            c => {
                let _ = write!(out, "\\U{:08x}", c as u32);
            }
        }
    }
    out.push('"');
    out
}

/// Approximates Go's `unicode.IsPrint` without Unicode category tables: controls, spaces
/// other than U+0020, format characters and private use are not printable.
fn go_is_print(c: char) -> bool {
    if c == ' ' {
        return true;
    }
    if c.is_control() || c.is_whitespace() {
        return false;
    }
    !matches!(c as u32,
        0xAD | 0x600..=0x605 | 0x61C | 0x6DD | 0x70F | 0x180E | 0x200B..=0x200F
        | 0x202A..=0x202E | 0x2060..=0x206F | 0xFEFF | 0xFFF9..=0xFFFB
        | 0xE000..=0xF8FF | 0xF0000..=0x10FFFF)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
        let map: std::collections::HashMap<String, String> = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        move |k| map.get(k).cloned()
    }

    fn sub(t: &str, pairs: &[(&str, &str)]) -> Result<Substituted, InterpolationError> {
        let e = env(pairs);
        substitute(t, &e)
    }

    fn ok(t: &str, pairs: &[(&str, &str)]) -> String {
        match sub(t, pairs) {
            Ok(s) => s.value,
            Err(e) => panic!("{t:?} failed: {e}"),
        }
    }

    fn err(t: &str, pairs: &[(&str, &str)]) -> String {
        match sub(t, pairs) {
            Ok(s) => panic!("{t:?} gave {:?}", s.value),
            Err(e) => e.to_string(),
        }
    }

    #[test]
    fn plain_forms() {
        let e = [("FOO", "first"), ("BAR", "")];
        assert_eq!(ok("no dollar", &e), "no dollar");
        assert_eq!(ok("$FOO-bar", &e), "first-bar");
        assert_eq!(ok("${FOO}x", &e), "firstx");
        assert_eq!(ok("$$FOO", &e), "$FOO");
        assert_eq!(ok("$ $} $1 $", &e), "$ $} $1 $");
        assert_eq!(ok("a$$$FOO", &e), "a$first");
    }

    #[test]
    fn operators() {
        let e = [("SET", "v"), ("EMPTY", "")];
        assert_eq!(ok("${EMPTY:-d}|${EMPTY-d}|${NO-d}", &e), "d||d");
        assert_eq!(ok("${SET:+r}|${EMPTY:+r}|${EMPTY+r}|${NO+r}", &e), "r||r|");
        assert_eq!(ok("${SET:?m}${EMPTY?m}", &e), "v");
        assert_eq!(
            err("${EMPTY:?must be set}", &e),
            "required variable EMPTY is missing a value: must be set"
        );
        assert_eq!(err("${NO?}", &e), "required variable NO is missing a value");
    }

    #[test]
    fn outer_text_and_later_operators_do_not_pick_the_operator() {
        let e = [("FOO", "first"), ("BAR", "")];
        assert_eq!(ok("+ok ${UNSET:-${BAR-defaultValue}}", &e), "+ok ");
        assert_eq!(ok(":?ok ${BAR-defaultValue}", &e), ":?ok ");
        assert_eq!(ok("${UNSET-va:-lu:?e}", &e), "va:-lu:?e");
        assert_eq!(ok("${FOO:+va:?lu:-e}", &e), "va:?lu:-e");
        assert_eq!(
            err("${UNSET_VAR?bar-baz}", &e),
            "required variable UNSET_VAR is missing a value: bar-baz"
        );
        assert!(err("${}", &e).starts_with("Invalid template"));
    }

    #[test]
    fn nesting_and_rest() {
        let e = [("A", "a")];
        assert_eq!(ok("${X:-${Y:-${Z:-q}}}", &e), "q");
        assert_eq!(ok("${X:-x} and ${A} and ${Y-y}}", &e), "x and a and y}");
        assert_eq!(ok("${X:-{\"j\":1}}", &e), "{\"j\":1}");
        // the `}` of the first line is not reachable from the second
        assert_eq!(ok("${X:-a}\n${Y:-b}", &e), "a\nb");
    }

    #[test]
    fn unset_is_reported_once_and_not_for_defaults() {
        let s = sub("$U ${U} ${D:-x} ${A:+${B}} ${C:-$U2}", &[]).unwrap_or_default();
        assert_eq!(s.unset, vec!["U".to_string(), "U2".to_string()]);
    }

    #[test]
    fn invalid_templates_name_the_innermost_text() {
        assert_eq!(err("${", &[]), "Invalid template: \"${\"");
        assert_eq!(err("x ${ foo}", &[]), "Invalid template: \"x ${ foo}\"");
        assert_eq!(err("${A:-${}", &[]), "Invalid template: \"${\"");
        assert_eq!(err("${A:-x} ${ }", &[]), "Invalid template: \" ${ }\"");
        assert_eq!(err("a\n${!}", &[]), "Invalid template: \"a\\n${!}\"");
    }

    #[test]
    fn at_path_wording() {
        let e = InterpolationError::InvalidTemplate {
            template: "${".into(),
        };
        assert_eq!(
            e.at_path("servicea.image"),
            "invalid interpolation format for servicea.image.\nYou may need to escape any $ with another $.\n${"
        );
        let e = InterpolationError::MissingRequired {
            variable: "FOO".into(),
            reason: "x".into(),
        };
        assert_eq!(
            e.at_path("s.environment.V"),
            "error while interpolating s.environment.V: required variable FOO is missing a value: x"
        );
    }

    #[test]
    fn deep_nesting_is_an_error() {
        let deep = "${A:-".repeat(10_000) + &"}".repeat(10_000);
        assert!(matches!(
            sub(&deep, &[]),
            Err(InterpolationError::TooDeep { .. })
        ));
        let fine = "${A:-".repeat(MAX_NESTING) + "x" + &"}".repeat(MAX_NESTING);
        assert_eq!(ok(&fine, &[]), "x");
    }

    #[test]
    fn many_expressions_on_one_line_are_linear() {
        let line = "${A:-x}".repeat(50_000);
        assert_eq!(ok(&line, &[]).len(), 50_000);
    }

    #[test]
    fn go_quoting() {
        assert_eq!(
            go_quote("a\"b\\\t\u{1}é\u{a0}"),
            "\"a\\\"b\\\\\\t\\x01é\\u00a0\""
        );
    }
}
