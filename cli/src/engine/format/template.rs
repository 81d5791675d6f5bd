//! A Go `text/template` subset evaluated against JSON, as docker's `--format` and `-f` use it:
//! actions with `{{-`/`-}}` trimming, pipelines, `if`/`range`/`with`, variables, and docker's
//! and Go's template functions. Values print the way Go's `fmt` prints decoded JSON.

use serde_json::{Map, Number, Value};
use std::fmt;

/// A template that failed to parse or to execute, worded like Go's `text/template`.
#[derive(Debug, Clone, PartialEq)]
pub enum TemplateError {
    /// The text is not a valid template.
    Parse {
        /// 1-based line of the offending action.
        line: usize,
        /// What is wrong, as Go says it.
        msg: String,
    },
    /// A command failed while running against the data.
    Exec {
        /// 1-based line of the failing command.
        line: usize,
        /// 0-based byte column of the failing command.
        col: usize,
        /// The failing command's source text.
        at: String,
        /// What went wrong.
        msg: String,
    },
}

impl fmt::Display for TemplateError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Parse { line, msg } => write!(f, "template: :{line}: {msg}"),
            Self::Exec { line, col, at, msg } => write!(
                f,
                "template: :{line}:{col}: executing \"\" at <{at}>: {msg}"
            ),
        }
    }
}

impl std::error::Error for TemplateError {}

type Result<T> = std::result::Result<T, TemplateError>;

/// A parsed template, reusable for many values (one per row).
#[derive(Debug, Clone)]
pub struct Template {
    nodes: Vec<Node>,
}

impl Template {
    /// Parses `src`; literal `\t` and `\n` in text (outside actions) become a tab and a newline.
    pub fn parse(src: &str) -> Result<Self> {
        let items = split(src)?;
        let mut p = Parser { items, pos: 0 };
        let (nodes, stop) = p.list()?;
        match stop {
            Stop::Eof => Ok(Self { nodes }),
            Stop::End(line) => Err(perr(line, "unexpected {{end}}")),
            Stop::Else(line, _) => Err(perr(line, "unexpected {{else}}")),
        }
    }

    /// Runs the template with `data` as both `.` and `$`.
    pub fn execute(&self, data: &Value) -> Result<String> {
        let mut ex = Exec {
            vars: vec![("$".to_string(), data.clone())],
            out: String::new(),
        };
        ex.walk(data, &self.nodes)?;
        Ok(ex.out)
    }
}

fn perr(line: usize, msg: impl Into<String>) -> TemplateError {
    TemplateError::Parse {
        line,
        msg: msg.into(),
    }
}

// ---------------------------------------------------------------- lexing

#[derive(Debug, Clone, PartialEq)]
enum Tok {
    Field(String),
    Dot,
    Var(String),
    Str(String),
    Num(String),
    Ident(String),
    Bool(bool),
    Nil,
    Declare,
    Assign,
    Pipe,
    LParen,
    RParen,
    Comma,
    Char(char),
}

impl fmt::Display for Tok {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Tok::Field(n) => write!(f, "<.{n}>"),
            Tok::Dot => write!(f, "<.>"),
            Tok::Var(n) => write!(f, "<{n}>"),
            Tok::Str(s) => write!(f, "{}", go_quote(s)),
            Tok::Num(n) | Tok::Ident(n) => write!(f, "<{n}>"),
            Tok::Bool(b) => write!(f, "<{b}>"),
            Tok::Nil => write!(f, "<nil>"),
            Tok::Declare => write!(f, "\":=\""),
            Tok::Assign => write!(f, "\"=\""),
            Tok::Pipe => write!(f, "\"|\""),
            Tok::LParen => write!(f, "\"(\""),
            Tok::RParen => write!(f, "\")\""),
            Tok::Comma => write!(f, "\",\""),
            Tok::Char(c) => write!(f, "\"{c}\""),
        }
    }
}

#[derive(Debug, Clone)]
struct Token {
    tok: Tok,
    /// Whether whitespace precedes it, which ends a field chain (`$x .A` is not `$x.A`).
    spaced: bool,
    start: usize,
    end: usize,
}

/// One piece of the template: text between actions, or an action's tokens.
#[derive(Debug)]
enum Item {
    Text(String),
    Action {
        toks: Vec<Token>,
        line: usize,
        src: std::rc::Rc<str>,
    },
}

fn is_space(c: u8) -> bool {
    matches!(c, b' ' | b'\t' | b'\r' | b'\n')
}

/// Splits the source into text and lexed actions, applying trim markers and dropping comments.
fn split(src: &str) -> Result<Vec<Item>> {
    let rc: std::rc::Rc<str> = src.into();
    let b = src.as_bytes();
    let line_at = |i: usize| src[..i].matches('\n').count() + 1;
    let mut items = Vec::new();
    let mut pos = 0;
    let mut trim_next = false;
    while pos <= src.len() {
        let Some(off) = src[pos..].find("{{") else {
            let mut t = &src[pos..];
            if trim_next {
                t = t.trim_start_matches([' ', '\t', '\r', '\n']);
            }
            items.push(Item::Text(unescape_text(t)));
            break;
        };
        let open = pos + off;
        let mut text = &src[pos..open];
        if trim_next {
            text = text.trim_start_matches([' ', '\t', '\r', '\n']);
        }
        let mut i = open + 2;
        if b.get(i) == Some(&b'-') && b.get(i + 1).is_some_and(|c| is_space(*c)) {
            text = text.trim_end_matches([' ', '\t', '\r', '\n']);
            i += 2;
        }
        items.push(Item::Text(unescape_text(text)));
        let line = line_at(open);
        let mut j = i;
        while j < b.len() && is_space(b[j]) {
            j += 1;
        }
        if src[j..].starts_with("/*") {
            let Some(c) = src[j + 2..].find("*/") else {
                return Err(perr(line, "unclosed comment"));
            };
            let mut k = j + 2 + c + 2;
            while k < b.len() && is_space(b[k]) {
                k += 1;
            }
            if src[k..].starts_with("-}}") && k > j + 2 + c + 2 {
                trim_next = true;
                pos = k + 3;
            } else if src[k..].starts_with("}}") {
                trim_next = false;
                pos = k + 2;
            } else {
                return Err(perr(line, "comment ends before closing delimiter"));
            }
            continue;
        }
        let (toks, end, trim) = lex_action(src, i, line)?;
        items.push(Item::Action {
            toks,
            line,
            src: rc.clone(),
        });
        trim_next = trim;
        pos = end;
    }
    Ok(items)
}

/// Docker's tables accept a literal `\t`; `\n` likewise, for one-line shells.
fn unescape_text(t: &str) -> String {
    t.replace("\\t", "\t").replace("\\n", "\n")
}

/// Lexes one action from `start` to its `}}`; returns the tokens, the index after the
/// delimiter, and whether it ended with ` -}}`.
fn lex_action(src: &str, start: usize, line: usize) -> Result<(Vec<Token>, usize, bool)> {
    let b = src.as_bytes();
    let mut toks = Vec::new();
    let mut i = start;
    let mut spaced = true;
    loop {
        let Some(&c) = b.get(i) else {
            // Go's parser meets a stray character before the lexer reaches the end.
            if let Some(t) = toks.iter().find(|t: &&Token| matches!(t.tok, Tok::Char(_))) {
                return Err(perr(line, format!("unexpected {} in operand", t.tok)));
            }
            return Err(perr(line, "unclosed action"));
        };
        if is_space(c) {
            if src[i + 1..].starts_with("-}}") {
                return Ok((toks, i + 4, true));
            }
            i += 1;
            spaced = true;
            continue;
        }
        if src[i..].starts_with("}}") {
            return Ok((toks, i + 2, false));
        }
        let s = i;
        let tok = match c {
            b'"' => {
                let mut out = String::new();
                let mut chars = src[i + 1..].char_indices();
                loop {
                    match chars.next() {
                        None | Some((_, '\n')) => {
                            return Err(perr(line, "unterminated quoted string"));
                        }
                        Some((k, '"')) => {
                            i = i + 1 + k + 1;
                            break;
                        }
                        Some((_, '\\')) => match chars.next().map(|x| x.1) {
                            Some('n') => out.push('\n'),
                            Some('t') => out.push('\t'),
                            Some('r') => out.push('\r'),
                            Some('\\') => out.push('\\'),
                            Some('"') => out.push('"'),
                            Some('\'') => out.push('\''),
                            Some('a') => out.push('\x07'),
                            Some('b') => out.push('\x08'),
                            Some('f') => out.push('\x0c'),
                            Some('v') => out.push('\x0b'),
                            Some('0') => out.push('\0'),
                            Some(e @ ('x' | 'u' | 'U')) => {
                                let n = match e {
                                    'x' => 2,
                                    'u' => 4,
                                    _ => 8,
                                };
                                let hex: String =
                                    (0..n).filter_map(|_| chars.next()).map(|x| x.1).collect();
                                match u32::from_str_radix(&hex, 16).ok().and_then(char::from_u32) {
                                    Some(ch) if hex.len() == n => out.push(ch),
                                    _ => return Err(perr(line, "invalid syntax")),
                                }
                            }
                            _ => return Err(perr(line, "invalid syntax")),
                        },
                        Some((_, ch)) => out.push(ch),
                    }
                }
                Tok::Str(out)
            }
            b'`' => {
                let Some(k) = src[i + 1..].find('`') else {
                    return Err(perr(line, "unterminated raw quoted string"));
                };
                let t = Tok::Str(src[i + 1..i + 1 + k].to_string());
                i += k + 2;
                t
            }
            b'\'' => {
                let mut it = src[i + 1..].chars();
                match (it.next(), it.next()) {
                    (Some(ch), Some('\'')) if ch != '\\' => {
                        i += 2 + ch.len_utf8();
                        Tok::Num((ch as u32).to_string())
                    }
                    _ => return Err(perr(line, "unterminated character constant")),
                }
            }
            b'.' if b
                .get(i + 1)
                .is_some_and(|c| c.is_ascii_alphanumeric() || *c == b'_') =>
            {
                let n = ident_len(&src[i + 1..]);
                let t = Tok::Field(src[i + 1..i + 1 + n].to_string());
                i += 1 + n;
                t
            }
            b'.' => {
                i += 1;
                Tok::Dot
            }
            b'$' => {
                let n = ident_len(&src[i + 1..]);
                let t = Tok::Var(src[i..i + 1 + n].to_string());
                i += 1 + n;
                t
            }
            b'0'..=b'9' | b'-' | b'+' => {
                let mut k = i + 1;
                while let Some(&d) = b.get(k) {
                    let sign_after_exp = (d == b'-' || d == b'+')
                        && matches!(b[k - 1], b'e' | b'E' | b'p' | b'P')
                        && !src[i..k].starts_with("0x");
                    if d.is_ascii_alphanumeric() || d == b'.' || d == b'_' || sign_after_exp {
                        k += 1;
                    } else {
                        break;
                    }
                }
                let t = &src[i..k];
                if !t[t.starts_with(['-', '+']) as usize..]
                    .starts_with(|c: char| c.is_ascii_digit())
                {
                    return Err(perr(line, format!("bad number syntax: {:?}", t)));
                }
                i = k;
                Tok::Num(t.to_string())
            }
            b':' if b.get(i + 1) == Some(&b'=') => {
                i += 2;
                Tok::Declare
            }
            b'=' => {
                i += 1;
                Tok::Assign
            }
            b'|' => {
                i += 1;
                Tok::Pipe
            }
            b'(' => {
                i += 1;
                Tok::LParen
            }
            b')' => {
                i += 1;
                Tok::RParen
            }
            b',' => {
                i += 1;
                Tok::Comma
            }
            c if c.is_ascii_alphabetic() || c == b'_' => {
                let n = ident_len(&src[i..]);
                let w = &src[i..i + n];
                i += n;
                match w {
                    "true" => Tok::Bool(true),
                    "false" => Tok::Bool(false),
                    "nil" => Tok::Nil,
                    _ => Tok::Ident(w.to_string()),
                }
            }
            _ => {
                let ch = src[i..].chars().next().unwrap_or('?');
                i += ch.len_utf8();
                Tok::Char(ch)
            }
        };
        toks.push(Token {
            tok,
            spaced,
            start: s,
            end: i,
        });
        spaced = false;
    }
}

fn ident_len(s: &str) -> usize {
    s.find(|c: char| !(c.is_alphanumeric() || c == '_'))
        .unwrap_or(s.len())
}

// ---------------------------------------------------------------- parsing

#[derive(Debug, Clone)]
enum Node {
    Text(String),
    Action(Pipe),
    If(Pipe, Vec<Node>, Vec<Node>),
    Range(Pipe, Vec<Node>, Vec<Node>),
    With(Pipe, Vec<Node>, Vec<Node>),
}

#[derive(Debug, Clone)]
struct Pipe {
    decl: Vec<String>,
    /// `=` rather than `:=`: assigns existing variables.
    assign: bool,
    cmds: Vec<Cmd>,
}

#[derive(Debug, Clone)]
struct Cmd {
    args: Vec<Arg>,
    line: usize,
    col: usize,
    src: String,
}

#[derive(Debug, Clone)]
enum Arg {
    Dot,
    Field(Vec<String>),
    Var(String, Vec<String>),
    Value(Value),
    Func(String),
    Pipe(Box<Pipe>, Vec<String>),
}

enum Stop {
    Eof,
    End(usize),
    Else(usize, Vec<Token>),
}

struct Parser {
    items: Vec<Item>,
    pos: usize,
}

const FUNCS: &[&str] = &[
    "json", "join", "split", "title", "lower", "upper", "pad", "truncate", "println", "print",
    "printf", "index", "slice", "len", "eq", "ne", "lt", "le", "gt", "ge", "and", "or", "not",
];

impl Parser {
    /// Parses nodes up to `{{end}}`, `{{else ...}}` or the end of input.
    fn list(&mut self) -> Result<(Vec<Node>, Stop)> {
        let mut nodes = Vec::new();
        while self.pos < self.items.len() {
            let i = self.pos;
            self.pos += 1;
            let (toks, line, src) = match &self.items[i] {
                Item::Text(t) => {
                    if !t.is_empty() {
                        nodes.push(Node::Text(t.clone()));
                    }
                    continue;
                }
                Item::Action { toks, line, src } => (toks.clone(), *line, src.clone()),
            };
            let kw = match toks.first() {
                Some(Token {
                    tok: Tok::Ident(k), ..
                }) => k.as_str(),
                _ => "",
            };
            match kw {
                "end" => {
                    if toks.len() > 1 {
                        return Err(perr(line, format!("unexpected {} in end", toks[1].tok)));
                    }
                    return Ok((nodes, Stop::End(line)));
                }
                "else" => return Ok((nodes, Stop::Else(line, toks[1..].to_vec()))),
                "if" | "range" | "with" => {
                    nodes.push(self.block(kw, &toks[1..], line, &src)?);
                }
                "define" | "template" | "block" | "break" | "continue" => {
                    return Err(perr(line, format!("{{{{{kw}}}}} is not supported")));
                }
                _ => nodes.push(Node::Action(pipeline(&toks, line, &src, true)?)),
            }
        }
        Ok((nodes, Stop::Eof))
    }

    /// Parses an `if`/`range`/`with` whose pipeline is `toks`, through its `{{end}}`.
    fn block(&mut self, kw: &str, toks: &[Token], line: usize, src: &str) -> Result<Node> {
        let pipe = pipeline(toks, line, src, true)?;
        if pipe.decl.len() > 1 && kw != "range" {
            return Err(perr(line, "too many declarations in command"));
        }
        if pipe.cmds.is_empty() {
            return Err(perr(line, format!("missing value for {kw}")));
        }
        let (body, stop) = self.list()?;
        let alt = match stop {
            Stop::Eof => return Err(perr(line, "unexpected EOF")),
            Stop::End(_) => Vec::new(),
            Stop::Else(el, rest) if rest.is_empty() => match self.list()? {
                (alt, Stop::End(_)) => alt,
                (_, Stop::Eof) => return Err(perr(el, "unexpected EOF")),
                (_, Stop::Else(l, _)) => {
                    return Err(perr(l, "expected end; found {{else}}"));
                }
            },
            Stop::Else(el, rest) => match &rest[0].tok {
                // `{{else if x}}` is an `if` in the else branch sharing the outer `{{end}}`.
                Tok::Ident(k) if (k == "if" || k == "with") && kw != "range" => {
                    vec![self.block(k, &rest[1..], el, src)?]
                }
                t => return Err(perr(el, format!("unexpected {t} in else"))),
            },
        };
        Ok(match kw {
            "if" => Node::If(pipe, body, alt),
            "range" => Node::Range(pipe, body, alt),
            _ => Node::With(pipe, body, alt),
        })
    }
}

/// Parses a pipeline (`$x := a b | c`) from an action's tokens.
fn pipeline(toks: &[Token], line: usize, src: &str, top: bool) -> Result<Pipe> {
    let mut decl = Vec::new();
    let mut assign = false;
    let mut rest = toks;
    let var = |t: Option<&Token>| match t.map(|t| &t.tok) {
        Some(Tok::Var(v)) => Some(v.clone()),
        _ => None,
    };
    if top {
        match (var(rest.first()), rest.get(1).map(|t| &t.tok)) {
            (Some(v), Some(Tok::Declare | Tok::Assign)) => {
                assign = rest[1].tok == Tok::Assign;
                decl.push(v);
                rest = &rest[2..];
            }
            (Some(v), Some(Tok::Comma)) => match (var(rest.get(2)), rest.get(3).map(|t| &t.tok)) {
                (Some(w), Some(Tok::Declare | Tok::Assign)) => {
                    assign = rest[3].tok == Tok::Assign;
                    decl = vec![v, w];
                    rest = &rest[4..];
                }
                _ => return Err(perr(line, "too many declarations in command")),
            },
            _ => {}
        }
    }
    let mut cmds = Vec::new();
    for part in rest.split(|t| t.tok == Tok::Pipe && !in_parens(rest, t)) {
        let Some(first) = part.first() else {
            return Err(perr(line, "missing value for command"));
        };
        let last = &part[part.len() - 1];
        let mut args = Vec::new();
        let mut i = 0;
        while i < part.len() {
            args.push(operand(part, &mut i, line, src)?);
        }
        cmds.push(Cmd {
            args,
            line,
            col: first.start - src[..first.start].rfind('\n').map_or(0, |n| n + 1),
            src: src[first.start..last.end].to_string(),
        });
    }
    if cmds.is_empty() {
        return Err(perr(line, "missing value for command"));
    }
    Ok(Pipe { decl, assign, cmds })
}

/// Whether token `t` sits inside parentheses within `toks` (so `|` there is not ours).
fn in_parens(toks: &[Token], t: &Token) -> bool {
    let mut depth = 0i32;
    for x in toks {
        if std::ptr::eq(x, t) {
            return depth > 0;
        }
        match x.tok {
            Tok::LParen => depth += 1,
            Tok::RParen => depth -= 1,
            _ => {}
        }
    }
    false
}

/// Parses one operand at `toks[*i]`, with any field chain glued to it (`(x).A`, `$v.A`).
fn operand(toks: &[Token], i: &mut usize, line: usize, src: &str) -> Result<Arg> {
    let t = &toks[*i];
    *i += 1;
    let mut arg = match &t.tok {
        Tok::Dot => Arg::Dot,
        Tok::Field(n) => Arg::Field(vec![n.clone()]),
        Tok::Var(v) => Arg::Var(v.clone(), Vec::new()),
        Tok::Str(s) => Arg::Value(Value::String(s.clone())),
        Tok::Bool(b) => Arg::Value(Value::Bool(*b)),
        Tok::Nil => Arg::Value(Value::Null),
        Tok::Num(n) => Arg::Value(
            parse_number(n).ok_or_else(|| perr(line, format!("bad number syntax: {:?}", n)))?,
        ),
        Tok::Ident(f) if FUNCS.contains(&f.as_str()) => Arg::Func(f.clone()),
        Tok::Ident(f) => return Err(perr(line, format!("function {f:?} not defined"))),
        Tok::LParen => {
            let mut depth = 1;
            let start = *i;
            while *i < toks.len() {
                match toks[*i].tok {
                    Tok::LParen => depth += 1,
                    Tok::RParen => depth -= 1,
                    _ => {}
                }
                if depth == 0 {
                    break;
                }
                *i += 1;
            }
            if depth != 0 {
                return Err(perr(line, "unclosed left paren"));
            }
            let inner = pipeline(&toks[start..*i], line, src, false)?;
            *i += 1;
            Arg::Pipe(Box::new(inner), Vec::new())
        }
        Tok::RParen => return Err(perr(line, "unexpected right paren")),
        other => return Err(perr(line, format!("unexpected {other} in operand"))),
    };
    while let Some(Token {
        tok: Tok::Field(n),
        spaced: false,
        ..
    }) = toks.get(*i)
    {
        match &mut arg {
            Arg::Field(f) | Arg::Var(_, f) | Arg::Pipe(_, f) => f.push(n.clone()),
            Arg::Dot => arg = Arg::Field(vec![n.clone()]),
            _ => return Err(perr(line, format!("unexpected <.{n}> in operand"))),
        }
        *i += 1;
    }
    Ok(arg)
}

fn parse_number(n: &str) -> Option<Value> {
    let (neg, digits) = match n.strip_prefix('-') {
        Some(d) => (true, d),
        None => (false, n.strip_prefix('+').unwrap_or(n)),
    };
    let digits = digits.replace('_', "");
    let radix = |p: &str, r| {
        digits
            .strip_prefix(p)
            .and_then(|d| i64::from_str_radix(d, r).ok())
    };
    let int = radix("0x", 16)
        .or_else(|| radix("0X", 16))
        .or_else(|| radix("0o", 8))
        .or_else(|| radix("0b", 2))
        .or_else(|| digits.parse::<i64>().ok());
    if let Some(v) = int {
        return Some(Value::from(if neg { -v } else { v }));
    }
    let f: f64 = digits.parse().ok()?;
    Number::from_f64(if neg { -f } else { f }).map(Value::Number)
}

// ---------------------------------------------------------------- execution

struct Exec {
    vars: Vec<(String, Value)>,
    out: String,
}

fn xerr(cmd: &Cmd, msg: impl Into<String>) -> TemplateError {
    TemplateError::Exec {
        line: cmd.line,
        col: cmd.col,
        at: cmd.src.clone(),
        msg: msg.into(),
    }
}

impl Exec {
    fn walk(&mut self, dot: &Value, nodes: &[Node]) -> Result<()> {
        for n in nodes {
            let mark = self.vars.len();
            match n {
                Node::Text(t) => self.out.push_str(t),
                Node::Action(p) => {
                    let v = self.pipe(dot, p)?;
                    if p.decl.is_empty() {
                        self.out.push_str(&print_top(&v));
                    }
                    // Declarations at this level stay visible to later nodes.
                    continue;
                }
                Node::If(p, body, alt) => {
                    let v = self.pipe(dot, p)?;
                    self.walk(dot, if truth(&v) { body } else { alt })?;
                }
                Node::With(p, body, alt) => {
                    let v = self.pipe(dot, p)?;
                    if truth(&v) {
                        self.walk(&v, body)?;
                    } else {
                        self.walk(dot, alt)?;
                    }
                }
                Node::Range(p, body, alt) => {
                    let v = self.pipe_value(dot, p)?;
                    let pairs: Vec<(Value, Value)> = match v {
                        Value::Array(a) => a
                            .into_iter()
                            .enumerate()
                            .map(|(i, e)| (Value::from(i), e))
                            .collect(),
                        Value::Object(m) => {
                            let mut kv: Vec<_> =
                                m.into_iter().map(|(k, v)| (Value::String(k), v)).collect();
                            kv.sort_by(|a, b| a.0.as_str().cmp(&b.0.as_str()));
                            kv
                        }
                        Value::Null => Vec::new(),
                        Value::Number(n) if n.is_i64() || n.is_u64() => {
                            let n = n.as_i64().unwrap_or(0).max(0);
                            (0..n).map(|i| (Value::from(i), Value::from(i))).collect()
                        }
                        other => {
                            return Err(xerr(
                                &p.cmds[0],
                                format!("range can't iterate over {}", go_str(&other)),
                            ));
                        }
                    };
                    if pairs.is_empty() {
                        self.walk(dot, alt)?;
                    }
                    for (k, e) in pairs {
                        let inner = self.vars.len();
                        match p.decl.as_slice() {
                            [v] => self.set(p.assign, v, e.clone(), &p.cmds[0])?,
                            [a, b] => {
                                self.set(p.assign, a, k, &p.cmds[0])?;
                                self.set(p.assign, b, e.clone(), &p.cmds[0])?;
                            }
                            _ => {}
                        }
                        self.walk(&e, body)?;
                        self.vars.truncate(inner);
                    }
                }
            }
            self.vars.truncate(mark);
        }
        Ok(())
    }

    fn set(&mut self, assign: bool, name: &str, v: Value, cmd: &Cmd) -> Result<()> {
        if assign {
            match self.vars.iter_mut().rev().find(|(n, _)| n == name) {
                Some(slot) => slot.1 = v,
                None => return Err(xerr(cmd, format!("undefined variable: {name}"))),
            }
        } else {
            self.vars.push((name.to_string(), v));
        }
        Ok(())
    }

    /// Evaluates a pipeline and binds its declared variable, if any.
    fn pipe(&mut self, dot: &Value, p: &Pipe) -> Result<Value> {
        let v = self.pipe_value(dot, p)?;
        if let [name] = p.decl.as_slice() {
            self.set(p.assign, name, v.clone(), &p.cmds[0])?;
        }
        Ok(v)
    }

    fn pipe_value(&mut self, dot: &Value, p: &Pipe) -> Result<Value> {
        let mut prev = None;
        for c in &p.cmds {
            prev = Some(self.cmd(dot, c, prev)?);
        }
        Ok(prev.unwrap_or(Value::Null))
    }

    fn cmd(&mut self, dot: &Value, c: &Cmd, prev: Option<Value>) -> Result<Value> {
        let rest = &c.args[1..];
        match &c.args[0] {
            Arg::Func(f) => {
                let mut args = Vec::with_capacity(rest.len() + 1);
                for a in rest {
                    args.push(self.arg(dot, a, c)?);
                }
                args.extend(prev);
                call(f, args).map_err(|e| xerr(c, e))
            }
            // `.Label "key"` is the row method docker's ps and images formatters offer.
            Arg::Field(names)
                if names.last().is_some_and(|n| n == "Label")
                    && (!rest.is_empty() || prev.is_some()) =>
            {
                let recv = self.chain(&field_base(dot, &names[..names.len() - 1], c)?, &[], c)?;
                let mut args = Vec::new();
                for a in rest {
                    args.push(self.arg(dot, a, c)?);
                }
                args.extend(prev);
                let [Value::String(key)] = args.as_slice() else {
                    return Err(xerr(c, "wrong number of args for Label: want 1"));
                };
                Ok(Value::String(label(&recv, key)))
            }
            first => {
                if !rest.is_empty() || prev.is_some() {
                    return Err(xerr(
                        c,
                        format!("can't give argument to non-function {}", c.src_head()),
                    ));
                }
                self.arg(dot, first, c)
            }
        }
    }

    fn arg(&mut self, dot: &Value, a: &Arg, c: &Cmd) -> Result<Value> {
        match a {
            Arg::Dot => Ok(dot.clone()),
            Arg::Field(names) => field_base(dot, names, c),
            Arg::Var(name, names) => {
                let Some((_, v)) = self.vars.iter().rev().find(|(n, _)| n == name) else {
                    return Err(xerr(c, format!("undefined variable: {name}")));
                };
                let v = v.clone();
                self.chain(&v, names, c)
            }
            Arg::Value(v) => Ok(v.clone()),
            Arg::Func(f) => call(f, Vec::new()).map_err(|e| xerr(c, e)),
            Arg::Pipe(p, names) => {
                let v = self.pipe_value(dot, p)?;
                self.chain(&v, names, c)
            }
        }
    }

    fn chain(&self, v: &Value, names: &[String], c: &Cmd) -> Result<Value> {
        field_base(v, names, c)
    }
}

impl Cmd {
    fn src_head(&self) -> &str {
        self.src.split_whitespace().next().unwrap_or("")
    }
}

/// Follows `.A.B` from `v`; a missing key is null (`<no value>`) like a Go map lookup.
fn field_base(v: &Value, names: &[String], c: &Cmd) -> Result<Value> {
    let mut cur = v;
    for n in names {
        cur = match cur {
            Value::Object(m) => match m.get(n) {
                Some(x) => x,
                None => return Ok(Value::Null),
            },
            Value::Null => return Ok(Value::Null),
            other => {
                return Err(xerr(
                    c,
                    format!("can't evaluate field {n} in type {}", go_type(other)),
                ));
            }
        };
    }
    Ok(cur.clone())
}

/// Reads `key` from a row's `Labels` (`k=v,k2=v2`) or from a label map.
fn label(recv: &Value, key: &str) -> String {
    match recv.get("Labels") {
        Some(Value::String(s)) => s
            .split(',')
            .filter_map(|kv| kv.split_once('='))
            .find(|(k, _)| *k == key)
            .map(|(_, v)| v.to_string())
            .unwrap_or_default(),
        Some(Value::Object(m)) => m.get(key).map(go_str).unwrap_or_default(),
        _ => String::new(),
    }
}

// ---------------------------------------------------------------- values

/// Go's truthiness: false, 0, "", nil and empty collections are false.
pub fn truth(v: &Value) -> bool {
    match v {
        Value::Null => false,
        Value::Bool(b) => *b,
        Value::Number(n) => n.as_f64().is_some_and(|f| f != 0.0),
        Value::String(s) => !s.is_empty(),
        Value::Array(a) => !a.is_empty(),
        Value::Object(m) => !m.is_empty(),
    }
}

fn go_type(v: &Value) -> &'static str {
    match v {
        Value::Null => "<nil>",
        Value::Bool(_) => "bool",
        Value::Number(n) if n.is_f64() => "float64",
        Value::Number(_) => "int",
        Value::String(_) => "string",
        Value::Array(_) => "[]interface {}",
        Value::Object(_) => "map[string]interface {}",
    }
}

/// What an action prints: a missing value is `<no value>`.
fn print_top(v: &Value) -> String {
    match v {
        Value::Null => "<no value>".into(),
        v => go_str(v),
    }
}

/// Go's `%v` of a decoded JSON value.
pub fn go_str(v: &Value) -> String {
    match v {
        Value::Null => "<nil>".into(),
        Value::Bool(b) => b.to_string(),
        Value::Number(n) => go_num(n),
        Value::String(s) => s.clone(),
        Value::Array(a) => format!("[{}]", a.iter().map(go_str).collect::<Vec<_>>().join(" ")),
        Value::Object(m) => {
            let mut kv: Vec<_> = m.iter().collect();
            kv.sort_by(|a, b| a.0.cmp(b.0));
            let parts: Vec<String> = kv
                .iter()
                .map(|(k, v)| format!("{k}:{}", go_str(v)))
                .collect();
            format!("map[{}]", parts.join(" "))
        }
    }
}

fn go_num(n: &Number) -> String {
    if n.is_i64() || n.is_u64() {
        return n.to_string();
    }
    let f = n.as_f64().unwrap_or(0.0);
    let a = f.abs();
    if a != 0.0 && !(1e-4..1e21).contains(&a) {
        // Go writes `1e+21` and `1.5e-05`: a signed, at least two-digit exponent.
        let s = format!("{f:e}");
        let (m, e) = s.split_once('e').unwrap_or((&s, "0"));
        let (sign, digits) = match e.strip_prefix('-') {
            Some(d) => ('-', d),
            None => ('+', e),
        };
        return format!("{m}e{sign}{digits:0>2}");
    }
    format!("{f}")
}

/// Go's `strconv.Quote`.
fn go_quote(s: &str) -> String {
    let mut o = String::from("\"");
    for c in s.chars() {
        match c {
            '"' => o.push_str("\\\""),
            '\\' => o.push_str("\\\\"),
            '\n' => o.push_str("\\n"),
            '\t' => o.push_str("\\t"),
            '\r' => o.push_str("\\r"),
            '\x07' => o.push_str("\\a"),
            '\x08' => o.push_str("\\b"),
            '\x0c' => o.push_str("\\f"),
            '\x0b' => o.push_str("\\v"),
            c if (c as u32) < 0x20 || c as u32 == 0x7f => {
                o.push_str(&format!("\\x{:02x}", c as u32))
            }
            c => o.push(c),
        }
    }
    o.push('"');
    o
}

fn as_int(v: &Value) -> Option<i64> {
    match v {
        Value::Number(n) => n.as_i64(),
        _ => None,
    }
}

fn want(name: &str, args: &[Value], n: usize) -> std::result::Result<(), String> {
    if args.len() == n {
        Ok(())
    } else {
        Err(format!(
            "wrong number of args for {name}: want {n} got {}",
            args.len()
        ))
    }
}

fn string_arg(name: &str, v: &Value) -> std::result::Result<String, String> {
    match v {
        Value::String(s) => Ok(s.clone()),
        other => Err(format!(
            "error calling {name}: wrong type for value; expected string; got {}",
            go_type(other)
        )),
    }
}

fn int_arg(name: &str, v: &Value) -> std::result::Result<i64, String> {
    as_int(v).ok_or_else(|| {
        format!(
            "error calling {name}: wrong type for value; expected int; got {}",
            go_type(v)
        )
    })
}

/// Calls a template function by name.
fn call(name: &str, args: Vec<Value>) -> std::result::Result<Value, String> {
    let s = Value::String;
    Ok(match name {
        "json" => {
            want(name, &args, 1)?;
            s(serde_json::to_string(&args[0]).map_err(|e| format!("error calling json: {e}"))?)
        }
        "join" => {
            want(name, &args, 2)?;
            let sep = string_arg(name, &args[1])?;
            let Value::Array(a) = &args[0] else {
                return Err(format!(
                    "error calling join: wrong type for value; expected []string; got {}",
                    go_type(&args[0])
                ));
            };
            s(a.iter().map(go_str).collect::<Vec<_>>().join(&sep))
        }
        "split" => {
            want(name, &args, 2)?;
            let (t, sep) = (string_arg(name, &args[0])?, string_arg(name, &args[1])?);
            let parts: Vec<Value> = if sep.is_empty() {
                t.chars().map(|c| s(c.to_string())).collect()
            } else {
                t.split(sep.as_str()).map(|p| s(p.to_string())).collect()
            };
            Value::Array(parts)
        }
        "title" => {
            want(name, &args, 1)?;
            let t = string_arg(name, &args[0])?;
            let mut prev_sep = true;
            s(t.chars()
                .map(|c| {
                    let out = if prev_sep {
                        c.to_uppercase().collect::<String>()
                    } else {
                        c.to_string()
                    };
                    prev_sep = !(c.is_alphanumeric() || c == '_');
                    out
                })
                .collect())
        }
        "lower" | "upper" => {
            want(name, &args, 1)?;
            let t = string_arg(name, &args[0])?;
            s(if name == "lower" {
                t.to_lowercase()
            } else {
                t.to_uppercase()
            })
        }
        "pad" => {
            want(name, &args, 3)?;
            let t = string_arg(name, &args[0])?;
            let (pre, post) = (int_arg(name, &args[1])?, int_arg(name, &args[2])?);
            if t.is_empty() {
                s(t)
            } else {
                s(format!(
                    "{}{t}{}",
                    " ".repeat(pre.max(0) as usize),
                    " ".repeat(post.max(0) as usize)
                ))
            }
        }
        "truncate" => {
            want(name, &args, 2)?;
            let t = string_arg(name, &args[0])?;
            let n = int_arg(name, &args[1])?.max(0) as usize;
            s(t.chars().take(n).collect())
        }
        "print" => s(sprint(&args)),
        "println" => s(format!(
            "{}\n",
            args.iter().map(go_str).collect::<Vec<_>>().join(" ")
        )),
        "printf" => {
            let Some((f, rest)) = args.split_first() else {
                return Err("wrong number of args for printf: want at least 1 got 0".into());
            };
            s(sprintf(&string_arg(name, f)?, rest))
        }
        "index" => {
            let Some((item, keys)) = args.split_first() else {
                return Err("wrong number of args for index: want at least 1 got 0".into());
            };
            let mut cur = item.clone();
            for k in keys {
                cur = index1(&cur, k).map_err(|e| format!("error calling index: {e}"))?;
            }
            cur
        }
        "slice" => {
            let Some((item, idx)) = args.split_first() else {
                return Err("wrong number of args for slice: want at least 1 got 0".into());
            };
            let idx: Vec<i64> = idx
                .iter()
                .map(|i| int_arg(name, i))
                .collect::<std::result::Result<_, _>>()?;
            slice(item, &idx).map_err(|e| format!("error calling slice: {e}"))?
        }
        "len" => {
            want(name, &args, 1)?;
            Value::from(match &args[0] {
                Value::String(t) => t.len(),
                Value::Array(a) => a.len(),
                Value::Object(m) => m.len(),
                other => {
                    return Err(format!("error calling len: len of type {}", go_type(other)));
                }
            })
        }
        "eq" => {
            let Some((a, bs)) = args.split_first() else {
                return Err("wrong number of args for eq: want at least 1 got 0".into());
            };
            if bs.is_empty() {
                return Err("error calling eq: missing argument for comparison".into());
            }
            let mut r = false;
            for b in bs {
                r |= equal(a, b).map_err(|e| format!("error calling eq: {e}"))?;
            }
            Value::Bool(r)
        }
        "ne" => {
            want(name, &args, 2)?;
            Value::Bool(!equal(&args[0], &args[1]).map_err(|e| format!("error calling ne: {e}"))?)
        }
        "lt" | "le" | "gt" | "ge" => {
            want(name, &args, 2)?;
            let o = order(&args[0], &args[1]).map_err(|e| format!("error calling {name}: {e}"))?;
            Value::Bool(match name {
                "lt" => o.is_lt(),
                "le" => o.is_le(),
                "gt" => o.is_gt(),
                _ => o.is_ge(),
            })
        }
        "and" | "or" => {
            if args.is_empty() {
                return Err(format!(
                    "wrong number of args for {name}: want at least 1 got 0"
                ));
            }
            let stop = name == "or";
            let last = args.len() - 1;
            let pick = args.iter().position(|a| truth(a) == stop).unwrap_or(last);
            args[pick].clone()
        }
        "not" => {
            want(name, &args, 1)?;
            Value::Bool(!truth(&args[0]))
        }
        _ => return Err(format!("function {name:?} not defined")),
    })
}

fn index1(cur: &Value, k: &Value) -> std::result::Result<Value, String> {
    match (cur, k) {
        (Value::Array(a), k) => {
            let i = as_int(k).ok_or("cannot index slice/array with non-integer type")?;
            usize::try_from(i)
                .ok()
                .and_then(|i| a.get(i))
                .cloned()
                .ok_or_else(|| format!("index out of range: {i}"))
        }
        (Value::String(t), k) => {
            let i = as_int(k).ok_or("cannot index string with non-integer type")?;
            usize::try_from(i)
                .ok()
                .and_then(|i| t.as_bytes().get(i))
                .map(|b| Value::from(*b))
                .ok_or_else(|| format!("index out of range: {i}"))
        }
        (Value::Object(m), Value::String(k)) => Ok(m.get(k).cloned().unwrap_or(Value::Null)),
        (Value::Object(_), k) => Err(format!("value has type {}; should be string", go_type(k))),
        (Value::Null, _) => Err("index of untyped nil".into()),
        (other, _) => Err(format!("can't index item of type {}", go_type(other))),
    }
}

fn slice(item: &Value, idx: &[i64]) -> std::result::Result<Value, String> {
    let len = match item {
        Value::String(t) => t.len(),
        Value::Array(a) => a.len(),
        other => return Err(format!("can't slice item of type {}", go_type(other))),
    };
    let (i, j) = match idx {
        [] => (0, len as i64),
        [i] => (*i, len as i64),
        [i, j] => (*i, *j),
        _ => return Err("too many slice indexes".into()),
    };
    if i < 0 || j < i || j as usize > len {
        return Err(format!("index out of range: {}", if i < 0 { i } else { j }));
    }
    let (i, j) = (i as usize, j as usize);
    Ok(match item {
        Value::String(t) => Value::String(t.get(i..j).ok_or("invalid utf-8 boundary")?.into()),
        Value::Array(a) => Value::Array(a[i..j].to_vec()),
        _ => Value::Null,
    })
}

fn equal(a: &Value, b: &Value) -> std::result::Result<bool, String> {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => Ok(match (x.as_i64(), y.as_i64()) {
            (Some(x), Some(y)) => x == y,
            _ => x.as_f64() == y.as_f64(),
        }),
        (Value::Null, _) | (_, Value::Null) => Ok(a == b),
        (Value::String(_), Value::String(_)) | (Value::Bool(_), Value::Bool(_)) => Ok(a == b),
        (Value::Array(_) | Value::Object(_), _) | (_, Value::Array(_) | Value::Object(_)) => {
            Err("non-comparable type".into())
        }
        _ => Err("incompatible types for comparison".into()),
    }
}

fn order(a: &Value, b: &Value) -> std::result::Result<std::cmp::Ordering, String> {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => match (x.as_i64(), y.as_i64()) {
            (Some(x), Some(y)) => Ok(x.cmp(&y)),
            _ => x
                .as_f64()
                .zip(y.as_f64())
                .and_then(|(x, y)| x.partial_cmp(&y))
                .ok_or_else(|| "invalid type for comparison".into()),
        },
        (Value::String(x), Value::String(y)) => Ok(x.cmp(y)),
        (Value::String(_), Value::Number(_)) | (Value::Number(_), Value::String(_)) => {
            Err("incompatible types for comparison".into())
        }
        _ => Err("invalid type for comparison".into()),
    }
}

/// Go's `fmt.Sprint`: a space between operands when neither is a string.
fn sprint(args: &[Value]) -> String {
    let mut o = String::new();
    for (i, a) in args.iter().enumerate() {
        if i > 0 && !args[i - 1].is_string() && !a.is_string() {
            o.push(' ');
        }
        o.push_str(&go_str(a));
    }
    o
}

/// Go's `fmt.Sprintf` for the verbs templates use: %v %s %d %q %t %x %X %f %e %g %c %%.
fn sprintf(f: &str, args: &[Value]) -> String {
    let mut o = String::new();
    let mut it = f.chars().peekable();
    let mut next = args.iter();
    while let Some(c) = it.next() {
        if c != '%' {
            o.push(c);
            continue;
        }
        let (mut left, mut zero, mut plus) = (false, false, false);
        while let Some(&fl) = it.peek() {
            match fl {
                '-' => left = true,
                '0' => zero = true,
                '+' => plus = true,
                ' ' | '#' => {}
                _ => break,
            }
            it.next();
        }
        let mut width = String::new();
        while let Some(d) = it.next_if(char::is_ascii_digit) {
            width.push(d);
        }
        let mut prec: Option<usize> = None;
        if it.next_if_eq(&'.').is_some() {
            let mut p = String::new();
            while let Some(d) = it.next_if(char::is_ascii_digit) {
                p.push(d);
            }
            prec = Some(p.parse().unwrap_or(0));
        }
        let Some(verb) = it.next() else {
            o.push_str("%!(NOVERB)");
            break;
        };
        if verb == '%' {
            o.push('%');
            continue;
        }
        let Some(a) = next.next() else {
            o.push_str(&format!("%!{verb}(MISSING)"));
            continue;
        };
        let bad = || format!("%!{verb}({}={})", go_type(a), go_str(a));
        let num = matches!(a, Value::Number(_));
        let mut s = match verb {
            'v' => go_str(a),
            's' => match prec {
                Some(p) => go_str(a).chars().take(p).collect(),
                None => go_str(a),
            },
            'd' => match as_int(a) {
                Some(n) if plus && n >= 0 => format!("+{n}"),
                Some(n) => n.to_string(),
                None => bad(),
            },
            'q' => match a {
                Value::String(t) => go_quote(t),
                Value::Number(_) => as_int(a)
                    .and_then(|n| u32::try_from(n).ok())
                    .and_then(char::from_u32)
                    .map(|c| format!("{c:?}"))
                    .unwrap_or_else(bad),
                _ => bad(),
            },
            't' => match a {
                Value::Bool(b) => b.to_string(),
                _ => bad(),
            },
            'x' | 'X' => {
                let h = match a {
                    Value::String(t) => t.bytes().map(|b| format!("{b:02x}")).collect(),
                    _ => match as_int(a) {
                        Some(n) if n < 0 => format!("-{:x}", n.unsigned_abs()),
                        Some(n) => format!("{n:x}"),
                        None => bad(),
                    },
                };
                if verb == 'X' { h.to_uppercase() } else { h }
            }
            'f' | 'F' | 'e' | 'g' => match a.as_f64() {
                Some(x) => match verb {
                    'e' => {
                        let s = format!("{x:.*e}", prec.unwrap_or(6));
                        let (m, e) = s.split_once('e').unwrap_or((&s, "0"));
                        let (sign, d) = match e.strip_prefix('-') {
                            Some(d) => ('-', d),
                            None => ('+', e),
                        };
                        format!("{m}e{sign}{d:0>2}")
                    }
                    'g' => go_num(&Number::from_f64(x).unwrap_or_else(|| Number::from(0))),
                    _ => format!("{x:.*}", prec.unwrap_or(6)),
                },
                None => bad(),
            },
            'c' => as_int(a)
                .and_then(|n| u32::try_from(n).ok())
                .and_then(char::from_u32)
                .map(String::from)
                .unwrap_or_else(bad),
            _ => format!("%!{verb}({}={})", go_type(a), go_str(a)),
        };
        if let Ok(w) = width.parse::<usize>() {
            let n = s.chars().count();
            if n < w {
                let pad = w - n;
                if left {
                    s.push_str(&" ".repeat(pad));
                } else if zero && num {
                    let (sign, digits) = match s.strip_prefix('-') {
                        Some(d) => ("-", d.to_string()),
                        None => ("", s.clone()),
                    };
                    s = format!("{sign}{}{digits}", "0".repeat(pad));
                } else {
                    s = format!("{}{s}", " ".repeat(pad));
                }
            }
        }
        o.push_str(&s);
    }
    let extra: Vec<String> = next
        .map(|a| format!("{}={}", go_type(a), go_str(a)))
        .collect();
    if !extra.is_empty() {
        o.push_str(&format!("%!(EXTRA {})", extra.join(", ")));
    }
    o
}

/// Builds a JSON object of string fields (a table row) for templates.
pub fn row_value<'a>(fields: impl Iterator<Item = (&'a str, &'a str)>) -> Value {
    Value::Object(
        fields
            .map(|(k, v)| (k.to_string(), Value::String(v.to_string())))
            .collect::<Map<_, _>>(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn r(t: &str, v: &Value) -> String {
        match Template::parse(t) {
            Ok(t) => t.execute(v).unwrap_or_else(|e| format!("EXEC: {e}")),
            Err(e) => format!("PARSE: {e}"),
        }
    }

    fn data() -> Value {
        json!({
            "Name": "/web", "Id": "abc123", "Port": 80, "Ratio": 0.5, "Big": 1e21,
            "Args": ["a", "b", "c"], "Mounts": [], "Empty": {},
            "State": {"Running": true, "Pid": 42, "Status": "running"},
            "Config": {"Labels": {"z": "26", "a": "1", "com.docker.compose.service": "db"}},
            "NetworkSettings": {"Networks": {
                "net2": {"IPAddress": "10.0.0.3"}, "net1": {"IPAddress": "10.0.0.2"}}},
        })
    }

    #[test]
    fn fields_and_printing() {
        let d = data();
        assert_eq!(r("{{.Name}} {{.State.Pid}} {{.Ratio}}", &d), "/web 42 0.5");
        assert_eq!(
            r("{{.Args}} {{.Mounts}} {{.Empty}}", &d),
            "[a b c] [] map[]"
        );
        assert_eq!(
            r("{{.Config.Labels}}", &d),
            "map[a:1 com.docker.compose.service:db z:26]"
        );
        assert_eq!(r("{{.Nope}} {{.Nope.Deeper}}", &d), "<no value> <no value>");
        assert_eq!(r("{{.Big}} {{.State.Running}}", &d), "1e+21 true");
        assert_eq!(r("{{$}}", &json!({"a": null})), "map[a:<nil>]");
        assert_eq!(
            r("{{json .Mounts}}|{{json .State}}", &d),
            r#"[]|{"Running":true,"Pid":42,"Status":"running"}"#
        );
        assert_eq!(r("a\\tb\\n", &d), "a\tb\n");
        assert_eq!(r("{{/* note */}}x{{- /* trimmed */ -}} y", &d), "xy");
    }

    #[test]
    fn control_flow() {
        let d = data();
        assert_eq!(
            r(
                "{{range .NetworkSettings.Networks}}{{.IPAddress}} {{end}}",
                &d
            ),
            "10.0.0.2 10.0.0.3 "
        );
        assert_eq!(
            r(
                r#"{{range $k, $v := .Config.Labels}}{{$k}}={{$v}}{{"\n"}}{{end}}"#,
                &d
            ),
            "a=1\ncom.docker.compose.service=db\nz=26\n"
        );
        assert_eq!(
            r("{{range $i, $e := .Args}}{{$i}}{{$e}}{{end}}", &d),
            "0a1b2c"
        );
        assert_eq!(r("{{range .Mounts}}m{{else}}none{{end}}", &d), "none");
        assert_eq!(r("{{if .State.Running}}up{{else}}down{{end}}", &d), "up");
        assert_eq!(
            r("{{if .Mounts}}a{{else if .Args}}b{{else}}c{{end}}", &d),
            "b"
        );
        assert_eq!(
            r(
                "{{with .State}}{{.Status}}{{end}}{{with .Mounts}}x{{else}}y{{end}}",
                &d
            ),
            "runningy"
        );
        assert_eq!(r("{{$x := .Name}}{{$x}}{{$x = \"n\"}}{{$x}}", &d), "/webn");
        assert_eq!(r("{{range .Args}}{{$.Name}}{{end}}", &d), "/web/web/web");
        assert_eq!(r("{{range .Args -}}\n  {{.}}\n{{- end}}", &d), "abc");
        assert_eq!(r("{{(index .Args 1)}}{{(.State).Pid}}", &d), "b42");
    }

    #[test]
    fn functions() {
        let d = data();
        assert_eq!(
            r(r#"{{index .Config.Labels "a"}}{{index .Args 2}}"#, &d),
            "1c"
        );
        assert_eq!(
            r(
                r#"{{index . "NetworkSettings" "Networks" "net1" "IPAddress"}}"#,
                &d
            ),
            "10.0.0.2"
        );
        assert_eq!(
            r(r#"{{join .Args ","}} {{len .Args}} {{len .Mounts}}"#, &d),
            "a,b,c 3 0"
        );
        assert_eq!(
            r(
                r#"{{lower "AbC"}} {{.Name | upper}} {{title "hello big-world"}}"#,
                &d
            ),
            "abc /WEB Hello Big-World"
        );
        assert_eq!(
            r(
                r#"{{split "a:b" ":"}} {{pad "x" 1 2}}| {{truncate .Id 3}}"#,
                &d
            ),
            "[a b]  x  | abc"
        );
        assert_eq!(r(r#"{{printf "%s:%d" .Name .Port}}"#, &d), "/web:80");
        assert_eq!(
            r(
                r#"{{printf "%5d|%-4s|%q|%t|%x|%05d|%v" 42 "ab" "q" true 255 -7 .Args}}"#,
                &d
            ),
            "   42|ab  |\"q\"|true|ff|-0007|[a b c]"
        );
        assert_eq!(
            r(r#"{{printf "%d"}}{{printf "%s" 1 2}}"#, &d),
            "%!d(MISSING)1%!(EXTRA int=2)"
        );
        assert_eq!(r("{{println .Id}}", &d), "abc123\n");
        assert_eq!(r(r#"{{print "a" 1 2 "b"}}"#, &d), "a1 2b");
        assert_eq!(
            r(
                r#"{{eq .State.Status "exited" "running"}} {{ne .Port 80}} {{lt 1 2}} {{ge "b" "a"}}"#,
                &d
            ),
            "true false true true"
        );
        assert_eq!(
            r(
                r#"{{and .State.Running .Name}} {{or .Mounts "none"}} {{not .Mounts}}"#,
                &d
            ),
            "/web none true"
        );
        assert_eq!(
            r(r#"{{if and (eq .Port 80) (not .Mounts)}}ok{{end}}"#, &d),
            "ok"
        );
        assert_eq!(r(r#"{{slice .Id 1 3}}"#, &d), "bc");
    }

    #[test]
    fn row_label_method() {
        let row = row_value(
            [
                ("Labels", "a=1,com.docker.compose.service=db"),
                ("Names", "x"),
            ]
            .into_iter(),
        );
        assert_eq!(
            r(
                r#"{{.Label "com.docker.compose.service"}}|{{.Label "nope"}}"#,
                &row
            ),
            "db|"
        );
        assert_eq!(
            r(
                r#"{{.Config.Label "z"}}"#,
                &json!({"Config": {"Labels": {"z": "26"}}})
            ),
            "26"
        );
    }

    #[test]
    fn errors_read_like_go() {
        let d = data();
        assert_eq!(
            r("{{.Name}", &d),
            r#"PARSE: template: :1: unexpected "}" in operand"#
        );
        assert_eq!(r("{{.Name", &d), "PARSE: template: :1: unclosed action");
        assert_eq!(
            r("x\n{{nope .A}}", &d),
            r#"PARSE: template: :2: function "nope" not defined"#
        );
        assert_eq!(r("{{if .A}}x", &d), "PARSE: template: :1: unexpected EOF");
        assert_eq!(r("{{end}}", &d), "PARSE: template: :1: unexpected {{end}}");
        assert_eq!(
            r("{{}}", &d),
            "PARSE: template: :1: missing value for command"
        );
        assert_eq!(
            r("{{index .Args 9}}", &d),
            "EXEC: template: :1:2: executing \"\" at <index .Args 9>: error calling index: index out of range: 9"
        );
        assert_eq!(
            r("{{.Name.X}}", &d),
            "EXEC: template: :1:2: executing \"\" at <.Name.X>: can't evaluate field X in type string"
        );
    }
}
