//! `.env` and `env_file` parsing, matching compose-go's `dotenv` package, plus the `raw`
//! env_file format that the docker compose CLI registers (docker/cli's `kvfile` parser).
//!
//! The default format follows compose-go's parser step by step, quirks included, so that a
//! file means the same thing to Berth as to docker compose: `KEY: value` is accepted like
//! `KEY=value`, text after a closing quote starts the next statement, a key without `=` takes
//! its value from the lookup only (never from earlier lines) and is skipped when unset, and
//! line numbers are counted the way compose-go counts them.

use std::path::{Path, PathBuf};

use indexmap::IndexMap;

use crate::interpolation::{InterpolationError, go_quote, substitute};

/// Resolves a variable name to its value, `None` when unset (the OS environment, usually).
pub type Lookup<'a> = dyn Fn(&str) -> Option<String> + 'a;

/// Why an env file could not be parsed.
#[derive(Debug, thiserror::Error)]
pub enum DotenvError {
    /// A key with an inner space, such as `MY KEY=1`.
    #[error("line {line}: key cannot contain a space")]
    KeyContainsSpace {
        /// 1-based line, as compose-go counts it.
        line: usize,
    },
    /// A key with a character other than letters, digits, `_ . - [ ]`.
    #[error("line {line}: unexpected character {} in variable name {}", go_quote(&.character.to_string()), go_quote(.name))]
    UnexpectedCharacter {
        /// 1-based line.
        line: usize,
        /// The offending character.
        character: char,
        /// The text of the line from the key on.
        name: String,
    },
    /// `export` with nothing after it.
    #[error("line {line}: zero length string")]
    ZeroLength {
        /// 1-based line.
        line: usize,
    },
    /// A quoted value without its closing quote.
    #[error("line {line}: unterminated quoted value {value}")]
    UnterminatedQuote {
        /// The line compose-go reports: the last line of the file.
        line: usize,
        /// The value's first line, opening quote included.
        value: String,
    },
    /// A value whose `${...}` expression failed (compose-go gives no line here; Berth does).
    #[error("line {line}: {source}")]
    Interpolation {
        /// 1-based line where the value starts.
        line: usize,
        /// What went wrong in the expression.
        source: InterpolationError,
    },
    /// `format: raw`: a line starting with `=`.
    #[error("line {line}: no variable name on line '{text}'")]
    RawMissingName {
        /// 1-based line.
        line: usize,
        /// The line without its leading whitespace.
        text: String,
    },
    /// `format: raw`: a key with a space or tab.
    #[error("line {line}: variable '{name}' contains whitespaces")]
    RawKeyWhitespace {
        /// 1-based line.
        line: usize,
        /// The key.
        name: String,
    },
    /// The file could not be read.
    #[error("failed to read {}: {source}", .path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The file is not UTF-8.
    #[error("failed to read {}: line {line}: invalid UTF-8", .path.display())]
    InvalidUtf8 {
        /// The file.
        path: PathBuf,
        /// 1-based line of the first invalid byte.
        line: usize,
    },
    /// A parse error in a default-format file.
    #[error("failed to read {}: {source}", .path.display())]
    InFile {
        /// The file.
        path: PathBuf,
        /// The error inside it.
        source: Box<DotenvError>,
    },
    /// A parse error in a `format: raw` file.
    #[error("failed to parse env_file {}: {source}", .path.display())]
    InRawFile {
        /// The file.
        path: PathBuf,
        /// The error inside it.
        source: Box<DotenvError>,
    },
}

impl DotenvError {
    /// The 1-based line the error is about, when it is about one.
    pub fn line(&self) -> Option<usize> {
        match self {
            DotenvError::KeyContainsSpace { line }
            | DotenvError::UnexpectedCharacter { line, .. }
            | DotenvError::ZeroLength { line }
            | DotenvError::UnterminatedQuote { line, .. }
            | DotenvError::Interpolation { line, .. }
            | DotenvError::RawMissingName { line, .. }
            | DotenvError::RawKeyWhitespace { line, .. }
            | DotenvError::InvalidUtf8 { line, .. } => Some(*line),
            DotenvError::Io { .. } => None,
            DotenvError::InFile { source, .. } | DotenvError::InRawFile { source, .. } => {
                source.line()
            }
        }
    }
}

/// Parses env-file `content`; `lookup` (the OS environment, usually) resolves keys without `=`
/// and wins over earlier lines in `${VAR}` expressions.
pub fn parse(
    content: &str,
    lookup: &dyn Fn(&str) -> Option<String>,
) -> Result<IndexMap<String, String>, DotenvError> {
    let content = content.strip_prefix('\u{FEFF}').unwrap_or(content);
    let mut out = IndexMap::new();
    Parser { line: 1 }.parse(content, &mut out, lookup)?;
    Ok(out)
}

/// Parses `format: raw` content: `KEY=VALUE` lines taken verbatim, keys without `=` skipped.
pub fn parse_raw(content: &str) -> Result<IndexMap<String, String>, DotenvError> {
    parse_raw_with_lookup(content, None)
}

/// Parses `format: raw` content, resolving keys without `=` through `lookup` as docker compose does.
pub fn parse_raw_with_lookup(
    content: &str,
    lookup: Option<&Lookup>,
) -> Result<IndexMap<String, String>, DotenvError> {
    let mut out = IndexMap::new();
    for (index, raw) in content.split('\n').enumerate() {
        let number = index + 1;
        // bufio.ScanLines drops one trailing CR per line.
        let mut text = raw.strip_suffix('\r').unwrap_or(raw);
        if number == 1 {
            text = text.strip_prefix('\u{FEFF}').unwrap_or(text);
        }
        let text = text.trim_start();
        if text.is_empty() || text.starts_with('#') {
            continue;
        }
        let (key, value) = match text.split_once('=') {
            Some((k, v)) => (k, Some(v)),
            None => (text, None),
        };
        if key.is_empty() {
            return Err(DotenvError::RawMissingName {
                line: number,
                text: text.to_owned(),
            });
        }
        if key.contains([' ', '\t']) {
            return Err(DotenvError::RawKeyWhitespace {
                line: number,
                name: key.to_owned(),
            });
        }
        match value {
            Some(v) => {
                out.insert(key.to_owned(), trim_quotes(v).to_owned());
            }
            None => {
                if let Some(v) = lookup.and_then(|f| f(key)) {
                    out.insert(key.to_owned(), trim_quotes(&v).to_owned());
                }
            }
        }
    }
    Ok(out)
}

/// Reads and parses the env file at `path`; errors name the file and the line.
pub fn read_file(
    path: &Path,
    lookup: &dyn Fn(&str) -> Option<String>,
) -> Result<IndexMap<String, String>, DotenvError> {
    let text = read_utf8(path)?;
    parse(&text, lookup).map_err(|e| DotenvError::InFile {
        path: path.to_owned(),
        source: Box::new(e),
    })
}

/// Reads and parses a `format: raw` env file at `path`.
pub fn read_file_raw(
    path: &Path,
    lookup: Option<&Lookup>,
) -> Result<IndexMap<String, String>, DotenvError> {
    let text = read_utf8(path)?;
    parse_raw_with_lookup(&text, lookup).map_err(|e| DotenvError::InRawFile {
        path: path.to_owned(),
        source: Box::new(e),
    })
}

fn read_utf8(path: &Path) -> Result<String, DotenvError> {
    let bytes = std::fs::read(path).map_err(|source| DotenvError::Io {
        path: path.to_owned(),
        source,
    })?;
    String::from_utf8(bytes).map_err(|e| {
        let valid = e.utf8_error().valid_up_to();
        let line = 1 + e.as_bytes()[..valid]
            .iter()
            .filter(|&&b| b == b'\n')
            .count();
        DotenvError::InvalidUtf8 {
            path: path.to_owned(),
            line,
        }
    })
}

/// docker/cli's `trimQuotes`: one pair of matching outer quotes is removed.
fn trim_quotes(value: &str) -> &str {
    let b = value.as_bytes();
    if b.len() >= 2 && b[0] == b[b.len() - 1] && matches!(b[0], b'\'' | b'"') {
        &value[1..value.len() - 1]
    } else {
        value
    }
}

/// compose-go's `isSpace`: whitespace except line breaks.
fn is_space(c: char) -> bool {
    matches!(
        c,
        '\t' | '\u{b}' | '\u{c}' | '\r' | ' ' | '\u{85}' | '\u{a0}'
    )
}

struct Parser {
    line: usize,
}

impl Parser {
    fn parse(
        &mut self,
        src: &str,
        out: &mut IndexMap<String, String>,
        lookup: &dyn Fn(&str) -> Option<String>,
    ) -> Result<(), DotenvError> {
        let mut cutset = src;
        loop {
            cutset = self.statement_start(cutset);
            if cutset.is_empty() {
                return Ok(());
            }
            let (key, left, inherited) = self.locate_key_name(cutset)?;
            if key.contains(' ') {
                return Err(DotenvError::KeyContainsSpace { line: self.line });
            }
            if inherited {
                if let Some(value) = lookup(key) {
                    out.insert(key.to_owned(), value);
                }
                cutset = left;
                continue;
            }
            let (value, left) = self.extract_value(left, out, lookup)?;
            out.insert(key.to_owned(), value);
            cutset = left;
        }
    }

    /// Skips blank and comment lines, counting newlines.
    fn statement_start<'s>(&mut self, mut src: &'s str) -> &'s str {
        loop {
            let Some(pos) = self.index_of_non_space(src) else {
                return "";
            };
            src = &src[pos..];
            if !src.starts_with('#') {
                return src;
            }
            match src.find('\n') {
                Some(nl) => src = &src[nl..],
                None => return "",
            }
        }
    }

    fn index_of_non_space(&mut self, src: &str) -> Option<usize> {
        for (i, c) in src.char_indices() {
            if c == '\n' {
                self.line += 1;
            }
            if !c.is_whitespace() {
                return Some(i);
            }
        }
        None
    }

    /// Returns the key, the text after its `=`/`:`, and whether the key stood alone on its line.
    fn locate_key_name<'s>(
        &mut self,
        src: &'s str,
    ) -> Result<(&'s str, &'s str, bool), DotenvError> {
        let mut src = src;
        // `^export\s+`, where Go's \s is [\t\n\f\r ].
        if let Some(after) = src.strip_prefix("export") {
            if after.starts_with(['\t', '\n', '\u{c}', '\r', ' ']) {
                src = after.trim_start_matches(is_space);
            }
        }

        let mut key = "";
        let mut offset = 0;
        let mut inherited = false;
        for (i, c) in src.char_indices() {
            if is_space(c) {
                continue;
            }
            match c {
                '=' | ':' | '\n' => {
                    key = &src[..i];
                    offset = i + 1;
                    inherited = c == '\n';
                    break;
                }
                '_' | '.' | '-' | '[' | ']' => {}
                c if c.is_alphabetic() || c.is_numeric() => {}
                c => {
                    return Err(DotenvError::UnexpectedCharacter {
                        line: self.line,
                        character: c,
                        name: src.split('\n').next().unwrap_or_default().to_owned(),
                    });
                }
            }
        }
        if src.is_empty() {
            return Err(DotenvError::ZeroLength { line: self.line });
        }
        // compose-go consumes the newline of a bare key only when the untrimmed key has no space.
        if inherited && !key.contains(' ') {
            self.line += 1;
        }
        let key = key.trim_end();
        let rest = src[offset..].trim_start_matches(is_space);
        Ok((key, rest, inherited))
    }

    /// Reads one value; returns it and the text after it.
    fn extract_value<'s>(
        &mut self,
        src: &'s str,
        out: &IndexMap<String, String>,
        lookup: &dyn Fn(&str) -> Option<String>,
    ) -> Result<(String, &'s str), DotenvError> {
        let start_line = self.line;
        let bytes = src.as_bytes();
        let quote = match bytes.first() {
            Some(&q @ (b'"' | b'\'')) => q,
            _ => {
                let (value, rest) = src.split_once('\n').unwrap_or((src, ""));
                self.line += 1;
                let value = value.split_once(" #").map_or(value, |(v, _)| v).trim_end();
                let value = expand(value, out, lookup, start_line)?;
                return Ok((value, rest));
            }
        };

        let mut escaped = false;
        let mut chars = Vec::new();
        for (i, &ch) in bytes.iter().enumerate().skip(1) {
            if ch == b'\n' {
                self.line += 1;
            }
            if ch != quote {
                if !escaped && ch == b'\\' {
                    escaped = true;
                    continue;
                }
                if escaped {
                    escaped = false;
                    chars.push(b'\\');
                }
                chars.push(ch);
                continue;
            }
            if escaped {
                // an escaped quote of the same kind: keep the quote, drop the backslash
                escaped = false;
                chars.push(ch);
                continue;
            }
            // Only ASCII backslashes were dropped, so the bytes are still UTF-8.
            let value = String::from_utf8(chars)
                .unwrap_or_else(|e| String::from_utf8_lossy(e.as_bytes()).into_owned());
            let value = if quote == b'"' {
                expand(&expand_escapes(&value), out, lookup, start_line)?
            } else {
                value
            };
            return Ok((value, &src[i + 1..]));
        }
        let end = src.find('\n').unwrap_or(src.len());
        Err(DotenvError::UnterminatedQuote {
            line: self.line,
            value: src[..end].to_owned(),
        })
    }
}

/// Interpolates a value: the lookup first, then the keys defined earlier in the file.
fn expand(
    value: &str,
    out: &IndexMap<String, String>,
    lookup: &dyn Fn(&str) -> Option<String>,
    line: usize,
) -> Result<String, DotenvError> {
    let resolve = |k: &str| lookup(k).or_else(|| out.get(k).cloned());
    substitute(value, &resolve)
        .map(|s| s.value)
        .map_err(|source| DotenvError::Interpolation { line, source })
}

/// compose-go's `expandEscapes`: `\a \b \f \n \r \t \v \" \\`, `\0ooo` octal, and `\$` kept
/// as `$$` for interpolation; other backslashes (`\x07`, `\u1234`, `\c`) stay as written.
fn expand_escapes(s: &str) -> String {
    if !s.contains('\\') {
        return s.to_owned();
    }
    let bytes = s.as_bytes();
    let mut out = String::with_capacity(s.len());
    let mut last = 0;
    let mut i = 0;
    while let Some(p) = s[i..].find('\\') {
        let b = i + p;
        let replacement: Option<(String, usize)> = match bytes.get(b + 1) {
            Some(b'0') => {
                let digits = bytes[b + 2..]
                    .iter()
                    .take(3)
                    .take_while(|d| d.is_ascii_digit())
                    .count();
                let end = b + 2 + digits;
                let octal = &bytes[b + 2..end];
                // `\0ddd` is read as Go's `\ddd`: exactly three octal digits, at most 0o377
                let value = (digits == 3 && octal.iter().all(|d| (b'0'..=b'7').contains(d)))
                    .then(|| octal.iter().fold(0u32, |v, d| v * 8 + u32::from(d - b'0')))
                    .filter(|&v| v <= 255)
                    .and_then(char::from_u32);
                Some((
                    value.map_or_else(|| s[b..end].to_owned(), String::from),
                    end,
                ))
            }
            Some(&c) if b"abcfnrtv$\"\\".contains(&c) => {
                let text = match c {
                    b'a' => "\u{7}",
                    b'b' => "\u{8}",
                    b'f' => "\u{c}",
                    b'n' => "\n",
                    b'r' => "\r",
                    b't' => "\t",
                    b'v' => "\u{b}",
                    b'$' => "$$",
                    b'"' => "\"",
                    b'\\' => "\\",
                    // `\c` is matched but is no Go escape, so it stays
                    _ => "\\c",
                };
                Some((text.to_owned(), b + 2))
            }
            _ => None,
        };
        match replacement {
            Some((text, end)) => {
                out.push_str(&s[last..b]);
                out.push_str(&text);
                last = end;
                i = end;
            }
            None => i = b + 1,
        }
    }
    out.push_str(&s[last..]);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn none(_: &str) -> Option<String> {
        None
    }

    fn one(input: &str) -> IndexMap<String, String> {
        match parse(input, &none) {
            Ok(m) => m,
            Err(e) => panic!("{input:?}: {e}"),
        }
    }

    fn value(input: &str, key: &str) -> String {
        one(input)
            .get(key)
            .cloned()
            .unwrap_or_else(|| panic!("{input:?}: no {key}"))
    }

    fn error(input: &str) -> String {
        match parse(input, &none) {
            Ok(m) => panic!("{input:?} parsed as {m:?}"),
            Err(e) => e.to_string(),
        }
    }

    #[test]
    fn expanding() {
        assert_eq!(value("FOO=test\nBAR=$FOO", "BAR"), "test");
        assert_eq!(value("FOO=test\nBAR=${FOO}bar", "BAR"), "testbar");
        assert_eq!(value("BAR=$FOO", "BAR"), "");
        assert_eq!(value("FOO=test\nBAR=\"quote $FOO\"", "BAR"), "quote test");
        assert_eq!(value("BAR='quote $FOO'", "BAR"), "quote $FOO");
        assert_eq!(value(r#"FOO="foo\$BAR""#, "FOO"), "foo$BAR");
        assert_eq!(value(r#"FOO="foo\${BAR}""#, "FOO"), "foo${BAR}");
        assert_eq!(
            value("FOO=test\nBAR=\"foo\\${FOO} ${FOO}\"", "BAR"),
            "foo${FOO} test"
        );
        assert_eq!(value("A=$$B", "A"), "$B");
    }

    #[test]
    fn lookup_wins_over_earlier_lines_and_feeds_bare_keys() {
        let env = |k: &str| (k == "ME" || k == "A").then(|| "env".to_string());
        let m = parse("A=file\nB=$A\nME\nNOPE\nC=$ME", &env).unwrap_or_default();
        assert_eq!(m.get("B").map(String::as_str), Some("env"));
        assert_eq!(m.get("ME").map(String::as_str), Some("env"));
        assert!(!m.contains_key("NOPE"));
        assert_eq!(m.get("C").map(String::as_str), Some("env"));
        // a bare key never reads earlier lines
        assert!(!one("A=1\nA2\n").contains_key("A2"));
    }

    #[test]
    fn multi_line_and_separator() {
        let input = "TEST_URLS=\"a:3333\nb:443\"";
        let m = one(input);
        assert_eq!(m.len(), 1);
        assert_eq!(m["TEST_URLS"], "a:3333\nb:443");
        let m = one("ONE=1\nTWO='2'\nTHREE = \"3\"");
        assert_eq!(
            (&m["ONE"][..], &m["TWO"][..], &m["THREE"][..]),
            ("1", "2", "3")
        );
    }

    #[test]
    fn text_after_a_closing_quote_is_the_next_statement() {
        let m = one("A=\"x\" B=2\n");
        assert_eq!((&m["A"][..], &m["B"][..]), ("x", "2"));
    }

    #[test]
    fn errors_carry_compose_go_wording_and_lines() {
        assert_eq!(
            error("lol$wut"),
            "line 1: unexpected character \"$\" in variable name \"lol$wut\""
        );
        for q in [
            r#"KEY=""#,
            r#"KEY="value"#,
            r#"KEY="value\""#,
            r#"KEY="value'"#,
            "KEY='",
            "KEY='value",
            r"KEY='value\'",
            r#"KEY='value""#,
        ] {
            assert!(error(q).contains("unterminated quoted value"), "{q}");
        }
        assert_eq!(
            error("# c\nfoo=\"\n a\n\"\nINVALID LINE\nzot=qix"),
            "line 5: key cannot contain a space"
        );
        assert_eq!(
            error("\n\nA=${B:?needed}"),
            "line 3: required variable B is missing a value: needed"
        );
        assert_eq!(error("export "), "line 1: zero length string");
        let e = parse("\nX Y=1", &none).err();
        assert_eq!(e.and_then(|e| e.line()), Some(2));
    }

    #[test]
    fn escapes() {
        assert_eq!(
            value(r#"KEY="Z\aZ\bZ\fZ\nZ\rZ\tZ\vZ\\Z\0123Z""#, "KEY"),
            "Z\u{7}Z\u{8}Z\u{c}Z\nZ\rZ\tZ\u{b}Z\\ZSZ"
        );
        assert_eq!(
            expand_escapes(r"\0 \01 \012 \0777 \0189 \c \x07"),
            r"\0 \01 \012 \0777 \0189 \c \x07"
        );
        assert_eq!(expand_escapes(r"\0377\\n"), "\u{ff}\\n");
        assert_eq!(value("FOO=a\\tb", "FOO"), "a\\tb");
        assert_eq!(value("FOO='a\\'b\\\\'", "FOO"), "a'b\\\\");
    }

    #[test]
    fn quirks_kept_from_compose_go() {
        assert_eq!(value("=\"value\"", ""), "value");
        assert_eq!(value("OPTION_A: Foo=bar", "OPTION_A"), "Foo=bar");
        assert_eq!(value("FOO=#bar", "FOO"), "#bar");
        assert_eq!(value("FOO=a\t#b", "FOO"), "a\t#b");
        assert_eq!(value("FOO=bar\r\nX=1", "FOO"), "bar");
        assert_eq!(value("\u{feff}A=1", "A"), "1");
        assert_eq!(value("exportA=1", "exportA"), "1");
        // a last line without `=` and without newline is a value for the empty key
        assert_eq!(value("A=1\nTRAILING", ""), "TRAILING");
    }

    #[test]
    fn raw_format() {
        let m = parse_raw("\u{feff}A='x y' \n  B=\"q\"\r\n# c\nC=$HOME ${X} \\n\nD\nE==")
            .unwrap_or_default();
        assert_eq!(m["A"], "'x y' ");
        assert_eq!(m["B"], "q");
        assert_eq!(m["C"], "$HOME ${X} \\n");
        assert!(!m.contains_key("D"));
        assert_eq!(m["E"], "=");
        let env = |k: &str| (k == "D").then(|| "'d'".to_string());
        let m = parse_raw_with_lookup("D\n", Some(&env)).unwrap_or_default();
        assert_eq!(m["D"], "d");
        let e = parse_raw("\n=x").err().map(|e| e.to_string());
        assert_eq!(e.as_deref(), Some("line 2: no variable name on line '=x'"));
        let e = parse_raw("A B=x").err().map(|e| e.to_string());
        assert_eq!(
            e.as_deref(),
            Some("line 1: variable 'A B' contains whitespaces")
        );
    }

    #[test]
    fn read_file_names_the_file() {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let path = dir.path().join("bad.env");
        std::fs::write(&path, "A=1\nB C=2\n").unwrap_or_else(|e| panic!("{e}"));
        let e = read_file(&path, &none).err().map(|e| e.to_string());
        assert_eq!(
            e,
            Some(format!(
                "failed to read {}: line 2: key cannot contain a space",
                path.display()
            ))
        );
        std::fs::write(&path, b"A=1\nB=\xff\n").unwrap_or_else(|e| panic!("{e}"));
        let e = read_file(&path, &none).err();
        assert_eq!(e.and_then(|e| e.line()), Some(2));
        let missing = read_file(&dir.path().join("missing.env"), &none);
        assert!(matches!(missing, Err(DotenvError::Io { .. })));
    }
}
