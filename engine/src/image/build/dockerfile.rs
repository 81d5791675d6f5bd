//! The Dockerfile parser: parser directives (`# escape=`, `# syntax=`), line continuations,
//! comments, heredocs, exec and shell forms, flags, and every instruction Berth builds.
//! Words keep their quotes and variables: the builder expands them with the build's
//! ARG/ENV values (see [`super::shell_words`]) in the instructions Docker expands.

use std::fmt;

/// A syntax error, with the 1-based line it starts on.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("Dockerfile parse error on line {line}: {message}")]
pub struct ParseError {
    /// The line.
    pub line: usize,
    /// What is wrong.
    pub message: String,
}

/// A command in exec form (`["a", "b"]`) or shell form (`a b`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Command {
    /// Run directly.
    Exec(Vec<String>),
    /// Run through the image's `SHELL`.
    Shell(String),
}

/// A here-document attached to RUN, COPY or ADD.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Heredoc {
    /// The delimiter word (`EOF`).
    pub name: String,
    /// The body, with a final newline.
    pub content: String,
    /// False when the delimiter was quoted: no variable expansion.
    pub expand: bool,
}

/// COPY or ADD.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct CopyArgs {
    /// Source words (or heredoc names).
    pub sources: Vec<String>,
    /// Destination word.
    pub dest: String,
    /// `--from=stage|image`.
    pub from: Option<String>,
    /// `--chown=user:group`.
    pub chown: Option<String>,
    /// `--chmod=mode`.
    pub chmod: Option<String>,
    /// `--link`.
    pub link: bool,
    /// `--checksum=sha256:<hex>` (ADD of a URL only).
    pub checksum: Option<String>,
    /// Heredoc sources.
    pub heredocs: Vec<Heredoc>,
}

/// HEALTHCHECK.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Healthcheck {
    /// The test command; `None` for `HEALTHCHECK NONE`.
    pub command: Option<Command>,
    /// `--interval`, `--timeout`, `--start-period`, `--start-interval`, `--retries`.
    pub flags: Vec<(String, String)>,
}

/// One instruction.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Instruction {
    /// FROM image [AS name].
    From {
        /// The image word (or `scratch`, or a stage name).
        image: String,
        /// The stage name.
        name: Option<String>,
        /// `--platform`.
        platform: Option<String>,
    },
    /// RUN.
    Run {
        /// The command.
        command: Command,
        /// Flags such as `--mount`, `--network` (kept, not all honoured).
        flags: Vec<(String, String)>,
        /// Here-documents.
        heredocs: Vec<Heredoc>,
    },
    /// CMD.
    Cmd(Command),
    /// ENTRYPOINT.
    Entrypoint(Command),
    /// SHELL (exec form only).
    Shell(Vec<String>),
    /// COPY.
    Copy(CopyArgs),
    /// ADD.
    Add(CopyArgs),
    /// ENV key=value ... (raw words).
    Env(Vec<(String, String)>),
    /// ARG name[=default] ...
    Arg(Vec<(String, Option<String>)>),
    /// WORKDIR.
    Workdir(String),
    /// USER.
    User(String),
    /// EXPOSE.
    Expose(Vec<String>),
    /// LABEL key=value ...
    Label(Vec<(String, String)>),
    /// HEALTHCHECK.
    Healthcheck(Healthcheck),
    /// VOLUME.
    Volume(Vec<String>),
    /// STOPSIGNAL.
    StopSignal(String),
    /// ONBUILD (the trigger is kept as text).
    Onbuild(String),
    /// MAINTAINER (deprecated).
    Maintainer(String),
}

/// An instruction with where it came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Step {
    /// 1-based line of the instruction keyword.
    pub line: usize,
    /// The instruction as written (continuations joined), for history and cache keys.
    pub original: String,
    /// The parsed instruction.
    pub instruction: Instruction,
}

/// A build stage: FROM and what follows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Stage {
    /// The FROM step.
    pub from: Step,
    /// The stage name (`AS name`), lower-cased.
    pub name: Option<String>,
    /// The steps after FROM.
    pub steps: Vec<Step>,
}

/// A parsed Dockerfile.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Dockerfile {
    /// The escape character (`\` or `` ` ``).
    pub escape: char,
    /// `# syntax=` if given (recorded, not acted on).
    pub syntax: Option<String>,
    /// ARGs before the first FROM.
    pub global_args: Vec<Step>,
    /// The stages in order.
    pub stages: Vec<Stage>,
}

impl fmt::Display for Command {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Command::Exec(v) => write!(f, "{}", serde_json::to_string(v).unwrap_or_default()),
            Command::Shell(s) => f.write_str(s),
        }
    }
}

fn err(line: usize, message: impl Into<String>) -> ParseError {
    ParseError {
        line,
        message: message.into(),
    }
}

/// Parses a Dockerfile.
pub fn parse(src: &str) -> Result<Dockerfile, ParseError> {
    let lines: Vec<&str> = src.lines().collect();
    let mut escape = '\\';
    let mut syntax = None;
    let mut i = 0;
    // Parser directives: only at the very top, before any other line.
    while i < lines.len() {
        let t = lines[i].trim();
        let Some(rest) = t.strip_prefix('#') else {
            break;
        };
        let Some((k, v)) = rest.split_once('=') else {
            break;
        };
        let k = k.trim().to_ascii_lowercase();
        if k.is_empty() || k.contains(char::is_whitespace) {
            break;
        }
        let v = v.trim();
        match k.as_str() {
            "escape" => {
                escape = match v {
                    "\\" => '\\',
                    "`" => '`',
                    _ => {
                        return Err(err(
                            i + 1,
                            format!("invalid escape token '{v}' does not match ` or \\"),
                        ));
                    }
                }
            }
            "syntax" => syntax = Some(v.to_string()),
            _ => {}
        }
        i += 1;
    }

    let mut steps: Vec<Step> = Vec::new();
    while i < lines.len() {
        let t = lines[i].trim_start();
        if t.is_empty() || t.starts_with('#') {
            i += 1;
            continue;
        }
        let start = i + 1;
        let mut logical = String::new();
        loop {
            let l = lines[i].trim_end();
            let (body, cont) = match l.strip_suffix(escape) {
                Some(b) => (b, true),
                None => (l, false),
            };
            logical.push_str(body);
            i += 1;
            if !cont {
                break;
            }
            // Comments and blank lines inside a continuation are dropped.
            while i < lines.len() {
                let n = lines[i].trim_start();
                if n.starts_with('#') || n.is_empty() {
                    i += 1;
                } else {
                    break;
                }
            }
            if i >= lines.len() {
                break;
            }
        }
        let logical = logical.trim().to_string();
        let (kw, rest) = match logical.split_once(char::is_whitespace) {
            Some((k, r)) => (k.to_ascii_uppercase(), r.trim_start().to_string()),
            None => (logical.to_ascii_uppercase(), String::new()),
        };
        // Heredocs follow the instruction line, in order.
        let mut heredocs = Vec::new();
        if matches!(kw.as_str(), "RUN" | "COPY" | "ADD") {
            for (name, strip, expand) in heredoc_markers(&rest) {
                let mut content = String::new();
                loop {
                    if i >= lines.len() {
                        return Err(err(start, format!("unterminated heredoc {name}")));
                    }
                    let l = lines[i];
                    i += 1;
                    let cmp = if strip { l.trim_start_matches('\t') } else { l };
                    if cmp == name {
                        break;
                    }
                    content.push_str(cmp);
                    content.push('\n');
                }
                heredocs.push(Heredoc {
                    name,
                    content,
                    expand,
                });
            }
        }
        let instruction = parse_instruction(&kw, &rest, heredocs, start)?;
        steps.push(Step {
            line: start,
            original: logical,
            instruction,
        });
    }

    let mut global_args = Vec::new();
    let mut stages: Vec<Stage> = Vec::new();
    for s in steps {
        match &s.instruction {
            Instruction::From { name, .. } => stages.push(Stage {
                name: name.as_ref().map(|n| n.to_ascii_lowercase()),
                from: s,
                steps: Vec::new(),
            }),
            Instruction::Arg(_) if stages.is_empty() => global_args.push(s),
            _ => match stages.last_mut() {
                Some(st) => st.steps.push(s),
                None => {
                    return Err(err(
                        s.line,
                        "no build stage in current context: the first instruction must be FROM (ARG may precede it)",
                    ));
                }
            },
        }
    }
    if stages.is_empty() {
        return Err(err(
            lines.len().max(1),
            "the Dockerfile has no FROM instruction",
        ));
    }
    Ok(Dockerfile {
        escape,
        syntax,
        global_args,
        stages,
    })
}

/// `<<EOF`, `<<-EOF`, `<<"EOF"`, `<<'EOF'` markers in an instruction's arguments.
fn heredoc_markers(s: &str) -> Vec<(String, bool, bool)> {
    let mut out = Vec::new();
    let mut rest = s;
    while let Some(p) = rest.find("<<") {
        let mut r = &rest[p + 2..];
        let strip = r.starts_with('-');
        if strip {
            r = &r[1..];
        }
        let (quoted, q) = match r.chars().next() {
            Some(c @ ('"' | '\'')) => (true, Some(c)),
            _ => (false, None),
        };
        if let Some(q) = q {
            r = &r[1..];
            let end = r.find(q).unwrap_or(r.len());
            let name = &r[..end];
            if !name.is_empty() {
                out.push((name.to_string(), strip, !quoted));
            }
            rest = &r[(end + 1).min(r.len())..];
        } else {
            let end = r
                .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
                .unwrap_or(r.len());
            let name = &r[..end];
            if !name.is_empty() {
                out.push((name.to_string(), strip, true));
            }
            rest = &r[end..];
        }
    }
    out
}

/// Leading `--name=value` flags (and bare `--name`).
fn take_flags(s: &str) -> (Vec<(String, String)>, String) {
    let mut flags = Vec::new();
    let mut rest = s.trim_start();
    while let Some(r) = rest.strip_prefix("--") {
        let end = r.find(char::is_whitespace).unwrap_or(r.len());
        let f = &r[..end];
        match f.split_once('=') {
            Some((k, v)) => flags.push((k.to_string(), v.to_string())),
            None => flags.push((f.to_string(), String::new())),
        }
        rest = r[end..].trim_start();
    }
    (flags, rest.to_string())
}

/// A JSON array of strings is the exec form; anything else is the shell form.
fn command(s: &str) -> Command {
    let t = s.trim();
    if t.starts_with('[')
        && let Ok(v) = serde_json::from_str::<Vec<String>>(t)
    {
        return Command::Exec(v);
    }
    Command::Shell(t.to_string())
}

/// Splits on unquoted whitespace, keeping quotes and escapes for later expansion.
fn raw_words(s: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut quote: Option<char> = None;
    let mut chars = s.chars().peekable();
    while let Some(c) = chars.next() {
        match quote {
            Some(q) => {
                cur.push(c);
                if c == q {
                    quote = None;
                } else if c == '\\'
                    && q == '"'
                    && let Some(n) = chars.next()
                {
                    cur.push(n);
                }
            }
            None if c.is_whitespace() => {
                if !cur.is_empty() {
                    out.push(std::mem::take(&mut cur));
                }
            }
            None => {
                if c == '"' || c == '\'' {
                    quote = Some(c);
                } else if c == '\\'
                    && let Some(n) = chars.next()
                {
                    cur.push(c);
                    cur.push(n);
                    continue;
                }
                cur.push(c);
            }
        }
    }
    if !cur.is_empty() {
        out.push(cur);
    }
    out
}

/// `k=v k2="v 2"`, or the legacy single `key value` form when `legacy` is allowed.
fn key_values(s: &str, line: usize, kw: &str) -> Result<Vec<(String, String)>, ParseError> {
    let words = raw_words(s);
    if words.is_empty() {
        return Err(err(line, format!("{kw} requires at least one argument")));
    }
    if !words[0].contains('=') {
        // Legacy `ENV key value with spaces`.
        let (k, v) = s.trim().split_once(char::is_whitespace).ok_or_else(|| {
            err(
                line,
                format!("{kw} names can not be blank / {kw} requires key=value"),
            )
        })?;
        return Ok(vec![(k.to_string(), v.trim_start().to_string())]);
    }
    words
        .into_iter()
        .map(|w| match w.split_once('=') {
            Some((k, v)) if !k.is_empty() => Ok((k.to_string(), v.to_string())),
            _ => Err(err(
                line,
                format!(
                    "{kw}: syntax error - can't find = in {w:?}. Must be of the form: name=value"
                ),
            )),
        })
        .collect()
}

fn parse_instruction(
    kw: &str,
    rest: &str,
    heredocs: Vec<Heredoc>,
    line: usize,
) -> Result<Instruction, ParseError> {
    let need = |what: &str| -> Result<(), ParseError> {
        if rest.trim().is_empty() {
            Err(err(line, format!("{what} requires at least one argument")))
        } else {
            Ok(())
        }
    };
    Ok(match kw {
        "FROM" => {
            need("FROM")?;
            let (flags, r) = take_flags(rest);
            let w = raw_words(&r);
            let (image, name) = match w.as_slice() {
                [i] => (i.clone(), None),
                [i, as_, n] if as_.eq_ignore_ascii_case("as") => (i.clone(), Some(n.clone())),
                _ => return Err(err(line, "FROM requires either one or three arguments")),
            };
            let platform = flags
                .into_iter()
                .find(|(k, _)| k == "platform")
                .map(|(_, v)| v);
            Instruction::From {
                image,
                name,
                platform,
            }
        }
        "RUN" => {
            need("RUN")?;
            let (flags, r) = take_flags(rest);
            Instruction::Run {
                command: command(&r),
                flags,
                heredocs,
            }
        }
        "CMD" => {
            need("CMD")?;
            Instruction::Cmd(command(rest))
        }
        "ENTRYPOINT" => {
            need("ENTRYPOINT")?;
            Instruction::Entrypoint(command(rest))
        }
        "SHELL" => match command(rest) {
            Command::Exec(v) if !v.is_empty() => Instruction::Shell(v),
            _ => return Err(err(line, "SHELL requires the arguments to be in JSON form")),
        },
        "COPY" | "ADD" => {
            let (flags, r) = take_flags(rest);
            let mut words = match command(&r) {
                Command::Exec(v) => v,
                Command::Shell(s) => raw_words(&s),
            };
            if words.len() < 2 {
                return Err(err(
                    line,
                    format!(
                        "{kw} requires at least two arguments, but only one was provided. Destination could not be determined."
                    ),
                ));
            }
            let dest = words.pop().unwrap_or_default();
            let mut a = CopyArgs {
                sources: words,
                dest,
                heredocs,
                ..Default::default()
            };
            for (k, v) in flags {
                match k.as_str() {
                    "from" => a.from = Some(v),
                    "chown" => a.chown = Some(v),
                    "chmod" => a.chmod = Some(v),
                    "link" => a.link = v.is_empty() || v == "true",
                    "checksum" if kw == "ADD" => a.checksum = Some(v),
                    "exclude" | "parents" => {}
                    "keep-git-dir" if kw == "ADD" => {}
                    other => return Err(err(line, format!("unknown flag: --{other}"))),
                }
            }
            if kw == "COPY" {
                Instruction::Copy(a)
            } else {
                Instruction::Add(a)
            }
        }
        "ENV" => Instruction::Env(key_values(rest, line, "ENV")?),
        "LABEL" => Instruction::Label(key_values(rest, line, "LABEL")?),
        "ARG" => {
            need("ARG")?;
            Instruction::Arg(
                raw_words(rest)
                    .into_iter()
                    .map(|w| match w.split_once('=') {
                        Some((k, v)) => (k.to_string(), Some(v.to_string())),
                        None => (w, None),
                    })
                    .collect(),
            )
        }
        "WORKDIR" => {
            need("WORKDIR")?;
            Instruction::Workdir(rest.trim().to_string())
        }
        "USER" => {
            need("USER")?;
            Instruction::User(rest.trim().to_string())
        }
        "EXPOSE" => {
            need("EXPOSE")?;
            Instruction::Expose(raw_words(rest))
        }
        "VOLUME" => {
            need("VOLUME")?;
            Instruction::Volume(match command(rest) {
                Command::Exec(v) => v,
                Command::Shell(s) => raw_words(&s),
            })
        }
        "STOPSIGNAL" => {
            need("STOPSIGNAL")?;
            Instruction::StopSignal(rest.trim().to_string())
        }
        "HEALTHCHECK" => {
            need("HEALTHCHECK")?;
            let (flags, r) = take_flags(rest);
            let (word, cmd) = r
                .split_once(char::is_whitespace)
                .map_or((r.as_str(), ""), |(a, b)| (a, b));
            match word.to_ascii_uppercase().as_str() {
                "NONE" if cmd.trim().is_empty() && flags.is_empty() => {
                    Instruction::Healthcheck(Healthcheck {
                        command: None,
                        flags,
                    })
                }
                "CMD" if !cmd.trim().is_empty() => Instruction::Healthcheck(Healthcheck {
                    command: Some(command(cmd)),
                    flags,
                }),
                _ => {
                    return Err(err(
                        line,
                        "HEALTHCHECK requires NONE or CMD followed by a command",
                    ));
                }
            }
        }
        "ONBUILD" => {
            need("ONBUILD")?;
            Instruction::Onbuild(rest.trim().to_string())
        }
        "MAINTAINER" => {
            need("MAINTAINER")?;
            Instruction::Maintainer(rest.trim().to_string())
        }
        "" => return Err(err(line, "empty instruction")),
        other => return Err(err(line, format!("unknown instruction: {other}"))),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_a_full_dockerfile() {
        let src = r#"# syntax=docker/dockerfile:1
# escape=\
ARG BASE=busybox
ARG TAG

FROM ${BASE}:${TAG:-latest} AS build
# a comment
RUN echo one \
    # dropped comment
    && echo two
RUN ["/bin/sh", "-c", "echo exec"]
RUN --mount=type=cache,target=/c echo flags
COPY --from=other --chown=1:2 --chmod=0755 a b /dst/
ADD "with space" /x
ENV A=1 B="two words"
ENV LEGACY value with spaces
LABEL org.example="v" other=x
WORKDIR /work
USER 1000:1000
EXPOSE 80/tcp 443
VOLUME ["/data", "/logs"]
HEALTHCHECK --interval=5s CMD ["true"]
STOPSIGNAL SIGTERM
SHELL ["/bin/sh", "-ec"]
CMD ["sh"]
ENTRYPOINT exec run
ONBUILD RUN echo later

from scratch
copy --from=build /dst /
"#;
        let d = parse(src).unwrap();
        assert_eq!(d.syntax.as_deref(), Some("docker/dockerfile:1"));
        assert_eq!(d.global_args.len(), 2);
        assert_eq!(d.stages.len(), 2);
        let s = &d.stages[0];
        assert_eq!(s.name.as_deref(), Some("build"));
        assert_eq!(s.from.line, 6);
        match &s.from.instruction {
            Instruction::From { image, .. } => assert_eq!(image, "${BASE}:${TAG:-latest}"),
            other => panic!("{other:?}"),
        }
        assert_eq!(
            s.steps[0].instruction,
            Instruction::Run {
                command: Command::Shell("echo one     && echo two".into()),
                flags: vec![],
                heredocs: vec![]
            }
        );
        assert_eq!(s.steps[0].line, 8);
        assert!(
            matches!(&s.steps[1].instruction, Instruction::Run { command: Command::Exec(v), .. } if v.len() == 3)
        );
        assert!(
            matches!(&s.steps[2].instruction, Instruction::Run { flags, .. } if flags[0].0 == "mount")
        );
        match &s.steps[3].instruction {
            Instruction::Copy(c) => {
                assert_eq!(c.sources, ["a", "b"]);
                assert_eq!(c.dest, "/dst/");
                assert_eq!(c.from.as_deref(), Some("other"));
                assert_eq!(c.chown.as_deref(), Some("1:2"));
                assert_eq!(c.chmod.as_deref(), Some("0755"));
            }
            other => panic!("{other:?}"),
        }
        assert!(
            matches!(&s.steps[4].instruction, Instruction::Add(c) if c.sources == ["\"with space\""])
        );
        assert_eq!(
            s.steps[5].instruction,
            Instruction::Env(vec![
                ("A".into(), "1".into()),
                ("B".into(), "\"two words\"".into())
            ])
        );
        assert_eq!(
            s.steps[6].instruction,
            Instruction::Env(vec![("LEGACY".into(), "value with spaces".into())])
        );
        assert!(matches!(&s.steps[11].instruction, Instruction::Volume(v) if v.len() == 2));
        assert!(
            matches!(&s.steps[12].instruction, Instruction::Healthcheck(h) if h.flags[0].0 == "interval")
        );
        assert_eq!(
            s.steps[14].instruction,
            Instruction::Shell(vec!["/bin/sh".into(), "-ec".into()])
        );
        assert_eq!(
            s.steps[16].instruction,
            Instruction::Entrypoint(Command::Shell("exec run".into()))
        );
        assert!(
            matches!(&d.stages[1].steps[0].instruction, Instruction::Copy(c) if c.from.as_deref() == Some("build"))
        );
    }

    #[test]
    fn heredocs_and_escape_directive() {
        let src = "# escape=`\nFROM scratch\nRUN <<EOF\necho a `\nEOF\nCOPY <<-'A' <<B /dst/\n\tliteral $X\n\tA\nexpanded $X\nB\nRUN echo x `\n  y\n";
        let d = parse(src).unwrap();
        assert_eq!(d.escape, '`');
        let st = &d.stages[0].steps;
        match &st[0].instruction {
            Instruction::Run { heredocs, .. } => {
                assert_eq!(heredocs[0].content, "echo a `\n");
                assert!(heredocs[0].expand);
            }
            other => panic!("{other:?}"),
        }
        match &st[1].instruction {
            Instruction::Copy(c) => {
                assert_eq!(c.heredocs.len(), 2);
                assert_eq!(c.heredocs[0].content, "literal $X\n");
                assert!(!c.heredocs[0].expand);
                assert_eq!(c.heredocs[1].content, "expanded $X\n");
                assert_eq!(c.dest, "/dst/");
            }
            other => panic!("{other:?}"),
        }
        assert_eq!(st[2].line, 11);
        assert!(
            matches!(&st[2].instruction, Instruction::Run { command: Command::Shell(s), .. } if s == "echo x   y")
        );
    }

    #[test]
    fn errors_carry_line_numbers() {
        let e = parse("FROM busybox\n\nRUNX echo\n").unwrap_err();
        assert_eq!(e.line, 3);
        assert!(e.to_string().contains("unknown instruction: RUNX"));
        assert_eq!(parse("RUN echo\n").unwrap_err().line, 1);
        assert_eq!(parse("FROM a\nCOPY onlyone\n").unwrap_err().line, 2);
        assert_eq!(parse("FROM a\nSHELL sh -c\n").unwrap_err().line, 2);
        assert_eq!(parse("FROM a b\n").unwrap_err().line, 1);
        assert_eq!(parse("FROM a\nRUN <<EOF\nno end\n").unwrap_err().line, 2);
        assert!(parse("# only a comment\n").is_err());
        assert_eq!(parse("FROM a\nENV\n").unwrap_err().line, 2);
    }
}
