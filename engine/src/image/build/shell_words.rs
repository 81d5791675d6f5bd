//! Docker's word processing for Dockerfile instructions: quote removal, the escape
//! character and variable substitution (`$V`, `${V}`, `${V:-w}`, `${V:+w}`, `${V-w}`,
//! `${V+w}`), with no expansion inside single quotes.

/// A substitution error.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WordError {
    /// `${` without a closing `}`.
    #[error("missing '}}' in {0:?}")]
    Unclosed(String),
    /// A quote without its closing quote.
    #[error("unexpected end of statement while looking for matching {quote} in {word:?}")]
    Quote {
        /// The quote character.
        quote: char,
        /// The word.
        word: String,
    },
    /// `${VAR?message}`: the variable is unset.
    #[error("{0}")]
    Required(String),
    /// An unsupported modifier.
    #[error("unsupported modifier ({0}) in substitution")]
    Modifier(char),
}

/// Expands one word (quotes removed) with variables from `lookup`.
pub fn process_word(
    word: &str,
    escape: char,
    lookup: &dyn Fn(&str) -> Option<String>,
) -> Result<String, WordError> {
    let mut out = process(word, escape, lookup, false)?;
    Ok(out.pop().unwrap_or_default())
}

/// Splits on unquoted whitespace and expands each word (ENV, LABEL, COPY arguments, ...).
pub fn process_words(
    s: &str,
    escape: char,
    lookup: &dyn Fn(&str) -> Option<String>,
) -> Result<Vec<String>, WordError> {
    process(s, escape, lookup, true)
}

fn process(
    s: &str,
    escape: char,
    lookup: &dyn Fn(&str) -> Option<String>,
    split: bool,
) -> Result<Vec<String>, WordError> {
    let chars: Vec<char> = s.chars().collect();
    let mut words = Vec::new();
    let mut cur = String::new();
    let mut in_word = false;
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        if split && c.is_whitespace() {
            if in_word {
                words.push(std::mem::take(&mut cur));
                in_word = false;
            }
            i += 1;
            continue;
        }
        in_word = true;
        if c == escape {
            if i + 1 < chars.len() {
                cur.push(chars[i + 1]);
                i += 2;
            } else {
                cur.push(c);
                i += 1;
            }
            continue;
        }
        match c {
            '\'' => {
                let start = i;
                i += 1;
                while i < chars.len() && chars[i] != '\'' {
                    cur.push(chars[i]);
                    i += 1;
                }
                if i >= chars.len() {
                    return Err(WordError::Quote {
                        quote: '\'',
                        word: chars[start..].iter().collect(),
                    });
                }
                i += 1;
            }
            '"' => {
                let start = i;
                i += 1;
                loop {
                    if i >= chars.len() {
                        return Err(WordError::Quote {
                            quote: '"',
                            word: chars[start..].iter().collect(),
                        });
                    }
                    let d = chars[i];
                    if d == '"' {
                        i += 1;
                        break;
                    }
                    if d == escape && i + 1 < chars.len() {
                        // Inside double quotes the escape only escapes `"`, `$` and itself.
                        let n = chars[i + 1];
                        if n == '"' || n == '$' || n == escape {
                            cur.push(n);
                            i += 2;
                            continue;
                        }
                        cur.push(d);
                        i += 1;
                        continue;
                    }
                    if d == '$' {
                        i = dollar(&chars, i, escape, lookup, &mut cur)?;
                        continue;
                    }
                    cur.push(d);
                    i += 1;
                }
            }
            '$' => {
                i = dollar(&chars, i, escape, lookup, &mut cur)?;
            }
            _ => {
                cur.push(c);
                i += 1;
            }
        }
    }
    if in_word || !split {
        words.push(cur);
    }
    Ok(words)
}

/// Expands the variable at `chars[i] == '$'`; returns the index after it.
fn dollar(
    chars: &[char],
    i: usize,
    escape: char,
    lookup: &dyn Fn(&str) -> Option<String>,
    out: &mut String,
) -> Result<usize, WordError> {
    let mut j = i + 1;
    if j < chars.len() && chars[j] == '{' {
        j += 1;
        let start = j;
        while j < chars.len() && (chars[j].is_ascii_alphanumeric() || chars[j] == '_') {
            j += 1;
        }
        let name: String = chars[start..j].iter().collect();
        if j >= chars.len() {
            return Err(WordError::Unclosed(chars[i..].iter().collect()));
        }
        if chars[j] == '}' {
            out.push_str(&lookup(&name).unwrap_or_default());
            return Ok(j + 1);
        }
        let colon = chars[j] == ':';
        if colon {
            j += 1;
        }
        let Some(&m) = chars.get(j) else {
            return Err(WordError::Unclosed(chars[i..].iter().collect()));
        };
        j += 1;
        // The word runs to the matching brace and is itself expanded.
        let wstart = j;
        let mut depth = 1;
        while j < chars.len() {
            if chars[j] == '{' {
                depth += 1;
            } else if chars[j] == '}' {
                depth -= 1;
                if depth == 0 {
                    break;
                }
            }
            j += 1;
        }
        if j >= chars.len() {
            return Err(WordError::Unclosed(chars[i..].iter().collect()));
        }
        let raw: String = chars[wstart..j].iter().collect();
        let word = process_word(&raw, escape, lookup)?;
        let val = lookup(&name);
        let set = match &val {
            Some(v) => !(colon && v.is_empty()),
            None => false,
        };
        match m {
            '-' => out.push_str(&if set { val.unwrap_or_default() } else { word }),
            '+' => {
                if set {
                    out.push_str(&word)
                }
            }
            '?' => {
                if set {
                    out.push_str(&val.unwrap_or_default())
                } else {
                    return Err(WordError::Required(if word.is_empty() {
                        format!("{name}: is not allowed to be unset")
                    } else {
                        format!("{name}: {word}")
                    }));
                }
            }
            other => return Err(WordError::Modifier(other)),
        }
        return Ok(j + 1);
    }
    let start = j;
    while j < chars.len() && (chars[j].is_ascii_alphanumeric() || chars[j] == '_') {
        j += 1;
    }
    if j == start {
        out.push('$');
        return Ok(j);
    }
    let name: String = chars[start..j].iter().collect();
    out.push_str(&lookup(&name).unwrap_or_default());
    Ok(j)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(k: &str) -> Option<String> {
        match k {
            "A" => Some("a".into()),
            "E" => Some(String::new()),
            "SP" => Some("x y".into()),
            _ => None,
        }
    }

    fn w(s: &str) -> String {
        process_word(s, '\\', &env).unwrap()
    }

    #[test]
    fn substitutes_like_docker() {
        assert_eq!(w("$A"), "a");
        assert_eq!(w("${A}b"), "ab");
        assert_eq!(w("'$A'"), "$A");
        assert_eq!(w("\"$A\""), "a");
        assert_eq!(w("\\$A"), "$A");
        assert_eq!(w("${U:-def}"), "def");
        assert_eq!(w("${E:-def}"), "def");
        assert_eq!(w("${E-def}"), "");
        assert_eq!(w("${A:+alt}"), "alt");
        assert_eq!(w("${U:+alt}"), "");
        assert_eq!(w("${U:-${A}x}"), "ax");
        assert_eq!(w("$"), "$");
        assert_eq!(w("a$"), "a$");
        assert!(process_word("${U:?must}", '\\', &env).is_err());
        assert!(process_word("${A", '\\', &env).is_err());
        assert!(process_word("'abc", '\\', &env).is_err());
        assert_eq!(
            process_words("a \"b c\" $SP 'd e'", '\\', &env).unwrap(),
            ["a", "b c", "x y", "d e"]
        );
        assert_eq!(process_word("C:`\\x", '`', &env).unwrap(), "C:\\x");
    }
}
