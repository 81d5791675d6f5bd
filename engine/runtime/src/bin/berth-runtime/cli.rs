//! runc's command line, parsed by hand.
//!
//! A derive-based parser builds its whole command tree on every call, and those code pages
//! were the largest part of the runtime's peak RSS (docs/benchmarks.md "Runtime"). This parser
//! follows the same rules: global options anywhere, a command's options before and after its
//! positionals, `--opt VALUE`, `--opt=VALUE`, `-o VALUE`, `-oVALUE`, grouped short flags, `--`
//! ending options, and for `exec` everything after the command's first word belongs to it.

use std::path::PathBuf;

/// Parsed command line.
pub struct Cli {
    /// State directory.
    pub root: PathBuf,
    /// Log file (default: stderr).
    pub log: Option<PathBuf>,
    /// Log format: text or json.
    pub log_format: String,
    /// Debug logging.
    pub debug: bool,
    /// The command.
    pub cmd: Cmd,
}

/// A runtime command and its arguments.
pub enum Cmd {
    /// Create a container (the process waits for `start`).
    Create {
        id: String,
        bundle: PathBuf,
        pid_file: Option<PathBuf>,
        console_socket: Option<PathBuf>,
        no_pivot: bool,
        preserve_fds: u32,
    },
    /// Start a created container.
    Start { id: String },
    /// Print the OCI state of a container.
    State { id: String },
    /// Send a signal (name or number, default SIGTERM).
    Kill {
        id: String,
        signal: Option<String>,
        all: bool,
    },
    /// Delete a container.
    Delete { id: String, force: bool },
    /// Create and start a container; in the foreground, wait and return its exit code.
    Run {
        id: String,
        bundle: PathBuf,
        detach: bool,
        pid_file: Option<PathBuf>,
        console_socket: Option<PathBuf>,
        no_pivot: bool,
        preserve_fds: u32,
    },
    /// Run a process in a running container.
    Exec {
        id: String,
        process: Option<PathBuf>,
        detach: bool,
        tty: bool,
        console_socket: Option<PathBuf>,
        env: Vec<String>,
        cwd: Option<PathBuf>,
        user: Option<String>,
        additional_gids: Vec<u32>,
        pid_file: Option<PathBuf>,
        no_new_privs: bool,
        preserve_fds: u32,
        args: Vec<String>,
    },
    /// List the processes of a container.
    Ps { id: String, format: String },
    /// List containers.
    List { format: String, quiet: bool },
    /// Freeze all processes of a container.
    Pause { id: String },
    /// Thaw a paused container.
    Resume { id: String },
    /// Print resource usage.
    Events { id: String, stats: bool },
    /// Change the resource limits of a container.
    Update {
        id: String,
        /// LinuxResources JSON file, `-` for stdin; the flags are ignored when given (as runc).
        resources: Option<String>,
        /// The flags as a LinuxResources JSON object.
        flags: serde_json::Value,
    },
    /// Write a default config.json.
    Spec { bundle: PathBuf },
    /// Print the features document.
    Features,
}

/// What the command line asks for besides a command.
pub enum Parsed {
    /// Run this.
    Run(Box<Cli>),
    /// Print this text to stdout and exit 0 (--help, --version).
    Print(String),
}

/// An option: long name, short letter, whether it takes a value.
struct Opt(&'static str, Option<char>, bool);

/// A command: name, options, positional names (a trailing `?` marks an optional one; with
/// `trailing`, the last one collects every remaining word).
struct CmdSpec {
    name: &'static str,
    opts: &'static [Opt],
    positionals: &'static [&'static str],
    trailing: bool,
}

const GLOBAL: &[Opt] = &[
    Opt("root", None, true),
    Opt("log", None, true),
    Opt("log-format", None, true),
    Opt("debug", None, false),
    // Accepted for runc compatibility; cgroups are managed through cgroupfs.
    Opt("systemd-cgroup", None, false),
    Opt("rootless", None, true),
];

const CREATE_OPTS: &[Opt] = &[
    Opt("bundle", Some('b'), true),
    Opt("pid-file", None, true),
    Opt("console-socket", None, true),
    Opt("no-pivot", None, false),
    Opt("no-new-keyring", None, false),
    Opt("preserve-fds", None, true),
];

const RUN_OPTS: &[Opt] = &[
    Opt("bundle", Some('b'), true),
    Opt("detach", Some('d'), false),
    Opt("pid-file", None, true),
    Opt("console-socket", None, true),
    Opt("no-pivot", None, false),
    Opt("no-new-keyring", None, false),
    Opt("preserve-fds", None, true),
];

const EXEC_OPTS: &[Opt] = &[
    Opt("process", Some('p'), true),
    Opt("detach", Some('d'), false),
    Opt("tty", Some('t'), false),
    Opt("console-socket", None, true),
    Opt("env", Some('e'), true),
    Opt("cwd", None, true),
    Opt("user", Some('u'), true),
    Opt("additional-gids", Some('g'), true),
    Opt("pid-file", None, true),
    Opt("no-new-privs", None, false),
    Opt("preserve-fds", None, true),
];

/// `update`'s flags: (option, JSON section, JSON field, value kind).
const UPDATE_FLAGS: &[(&str, &str, &str, Kind)] = &[
    ("memory", "memory", "limit", Kind::Bytes),
    ("memory-reservation", "memory", "reservation", Kind::Bytes),
    ("memory-swap", "memory", "swap", Kind::Bytes),
    ("kernel-memory", "memory", "kernel", Kind::Bytes),
    ("kernel-memory-tcp", "memory", "kernelTCP", Kind::Bytes),
    ("cpu-share", "cpu", "shares", Kind::Unsigned),
    ("cpu-shares", "cpu", "shares", Kind::Unsigned),
    ("cpu-period", "cpu", "period", Kind::Unsigned),
    ("cpu-quota", "cpu", "quota", Kind::Signed),
    ("cpu-rt-period", "cpu", "realtimePeriod", Kind::Unsigned),
    ("cpu-rt-runtime", "cpu", "realtimeRuntime", Kind::Signed),
    ("cpuset-cpus", "cpu", "cpus", Kind::Text),
    ("cpuset-mems", "cpu", "mems", Kind::Text),
    ("pids-limit", "pids", "limit", Kind::Signed),
    ("blkio-weight", "blockIO", "weight", Kind::Unsigned),
];

/// How an `update` flag's value is read.
#[derive(Clone, Copy)]
enum Kind {
    /// A byte count with an optional binary unit (`512m`, `1g`), or -1 for unlimited.
    Bytes,
    Unsigned,
    Signed,
    Text,
}

const UPDATE_OPTS: &[Opt] = &[
    Opt("resources", Some('r'), true),
    Opt("memory", Some('m'), true),
    Opt("memory-reservation", None, true),
    Opt("memory-swap", None, true),
    Opt("kernel-memory", None, true),
    Opt("kernel-memory-tcp", None, true),
    Opt("cpu-share", None, true),
    Opt("cpu-shares", None, true),
    Opt("cpu-period", None, true),
    Opt("cpu-quota", None, true),
    Opt("cpu-rt-period", None, true),
    Opt("cpu-rt-runtime", None, true),
    Opt("cpuset-cpus", None, true),
    Opt("cpuset-mems", None, true),
    Opt("pids-limit", None, true),
    Opt("blkio-weight", None, true),
];

/// Reads a size as runc's `update` does: a number, an optional k/m/g/t/p unit (powers of
/// 1024, optional trailing `b`/`ib`), or -1 for unlimited.
pub fn parse_bytes(v: &str) -> Option<i64> {
    if v == "-1" {
        return Some(-1);
    }
    let t = v.trim().to_ascii_lowercase();
    let t = t.strip_suffix('b').unwrap_or(&t);
    let t = t.strip_suffix('i').unwrap_or(t);
    let (num, shift) = match t.char_indices().last()? {
        (i, 'k') => (&t[..i], 10),
        (i, 'm') => (&t[..i], 20),
        (i, 'g') => (&t[..i], 30),
        (i, 't') => (&t[..i], 40),
        (i, 'p') => (&t[..i], 50),
        _ => (t, 0),
    };
    let num = num.trim();
    if num.is_empty() || !num.bytes().all(|b| b.is_ascii_digit() || b == b'.') {
        return None;
    }
    let n: f64 = num.parse().ok()?;
    let bytes = n * (1u64 << shift) as f64;
    (bytes <= i64::MAX as f64).then_some(bytes as i64)
}

fn update_flags(m: &Matches) -> Result<serde_json::Value, UsageError> {
    let mut out = serde_json::Map::new();
    for (flag, section, field, kind) in UPDATE_FLAGS {
        let Some(v) = m.value(flag) else { continue };
        let bad = || usage(format!("--{flag}: invalid value {v:?}"));
        let value = match kind {
            Kind::Bytes => serde_json::Value::from(parse_bytes(&v).ok_or_else(bad)?),
            Kind::Unsigned => serde_json::Value::from(v.parse::<u64>().map_err(|_| bad())?),
            Kind::Signed => serde_json::Value::from(v.parse::<i64>().map_err(|_| bad())?),
            Kind::Text => serde_json::Value::from(v.clone()),
        };
        if let serde_json::Value::Object(sec) = out
            .entry(section.to_string())
            .or_insert_with(|| serde_json::json!({}))
        {
            sec.insert(field.to_string(), value);
        }
    }
    Ok(serde_json::Value::Object(out))
}

const ID: &[&str] = &["ID"];

const COMMANDS: &[CmdSpec] = &[
    CmdSpec {
        name: "create",
        opts: CREATE_OPTS,
        positionals: ID,
        trailing: false,
    },
    CmdSpec {
        name: "start",
        opts: &[],
        positionals: ID,
        trailing: false,
    },
    CmdSpec {
        name: "state",
        opts: &[],
        positionals: ID,
        trailing: false,
    },
    CmdSpec {
        name: "kill",
        opts: &[Opt("all", Some('a'), false)],
        positionals: &["ID", "SIGNAL?"],
        trailing: false,
    },
    CmdSpec {
        name: "delete",
        opts: &[Opt("force", Some('f'), false)],
        positionals: ID,
        trailing: false,
    },
    CmdSpec {
        name: "run",
        opts: RUN_OPTS,
        positionals: ID,
        trailing: false,
    },
    CmdSpec {
        name: "exec",
        opts: EXEC_OPTS,
        positionals: &["ID", "ARGS?"],
        trailing: true,
    },
    CmdSpec {
        name: "ps",
        opts: &[Opt("format", Some('f'), true)],
        positionals: ID,
        trailing: false,
    },
    CmdSpec {
        name: "list",
        opts: &[
            Opt("format", Some('f'), true),
            Opt("quiet", Some('q'), false),
        ],
        positionals: &[],
        trailing: false,
    },
    CmdSpec {
        name: "pause",
        opts: &[],
        positionals: ID,
        trailing: false,
    },
    CmdSpec {
        name: "resume",
        opts: &[],
        positionals: ID,
        trailing: false,
    },
    CmdSpec {
        name: "events",
        opts: &[Opt("stats", None, false)],
        positionals: ID,
        trailing: false,
    },
    CmdSpec {
        name: "update",
        opts: UPDATE_OPTS,
        positionals: ID,
        trailing: false,
    },
    CmdSpec {
        name: "spec",
        opts: &[Opt("bundle", Some('b'), true)],
        positionals: &[],
        trailing: false,
    },
    CmdSpec {
        name: "features",
        opts: &[],
        positionals: &[],
        trailing: false,
    },
];

/// The text of `--help`.
pub const USAGE: &str = "\
An OCI runtime (runc-compatible CLI)

Usage: berth-runtime [GLOBAL OPTIONS] COMMAND [OPTIONS] [ARGS]

Commands:
  create ID [-b|--bundle DIR] [--pid-file F] [--console-socket S] [--no-pivot]
          [--preserve-fds N]
  start ID                  state ID                  kill ID [SIGNAL] [-a|--all]
  delete ID [-f|--force]
  run ID [-b|--bundle DIR] [-d|--detach] [--pid-file F] [--console-socket S] [--no-pivot]
          [--preserve-fds N]
  exec ID [-p|--process F.json] [-d] [-t] [--console-socket S] [-e|--env K=V]... [--cwd DIR]
          [-u|--user UID[:GID]] [-g|--additional-gids GID]... [--pid-file F] [--no-new-privs]
          [--preserve-fds N]
          [--] [ARGS...]
  ps ID [-f|--format table|json]
  list [-f|--format table|json] [-q|--quiet]
  pause ID                  resume ID                 events ID --stats
  update ID [-r|--resources FILE|-] [-m|--memory N] [--memory-reservation N]
          [--memory-swap N] [--kernel-memory N] [--kernel-memory-tcp N] [--cpu-share N]
          [--cpu-period N] [--cpu-quota N] [--cpu-rt-period N] [--cpu-rt-runtime N]
          [--cpuset-cpus LIST] [--cpuset-mems LIST] [--pids-limit N] [--blkio-weight N]
  spec [-b|--bundle DIR]    features

Global options (anywhere on the line):
  --root DIR           state directory (default /run/berth-runtime)
  --log FILE           log file (default: stderr)
  --log-format FORMAT  text or json
  --debug              debug logging
  -h, --help           print this help
  -V, --version        print the version
";

/// A usage error (the caller exits with status 2, as clap and runc do).
#[derive(Debug)]
pub struct UsageError(pub String);

impl std::fmt::Display for UsageError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

fn usage(msg: impl Into<String>) -> UsageError {
    UsageError(msg.into())
}

/// The options given, in order, and the positionals.
#[derive(Default)]
struct Matches {
    opts: Vec<(&'static str, Option<String>)>,
    pos: Vec<String>,
}

impl Matches {
    fn flag(&self, name: &str) -> bool {
        self.opts.iter().any(|(n, _)| *n == name)
    }

    fn values(&self, name: &str) -> impl Iterator<Item = &str> {
        self.opts
            .iter()
            .filter(move |(n, _)| *n == name)
            .filter_map(|(_, v)| v.as_deref())
    }

    /// The last value given (a later option overrides an earlier one).
    fn value(&self, name: &str) -> Option<String> {
        self.values(name).last().map(str::to_string)
    }

    fn path(&self, name: &str) -> Option<PathBuf> {
        self.value(name).map(PathBuf::from)
    }

    fn bundle(&self) -> PathBuf {
        self.path("bundle").unwrap_or_else(|| PathBuf::from("."))
    }

    fn id(&mut self) -> String {
        std::mem::take(&mut self.pos[0])
    }
}

fn find<'a>(opts: &'a [Opt], long: Option<&str>, short: Option<char>) -> Option<&'a Opt> {
    opts.iter()
        .find(|o| long.is_some_and(|l| l == o.0) || (short.is_some() && o.1 == short))
}

/// Parses `args` (without the program name).
pub fn parse(args: Vec<String>) -> Result<Parsed, UsageError> {
    let mut spec: Option<&CmdSpec> = None;
    let mut m = Matches::default();
    let mut only_positionals = false;
    let mut it = args.into_iter();
    while let Some(a) = it.next() {
        if only_positionals || !a.starts_with('-') || a == "-" {
            match spec {
                None => match a.as_str() {
                    "help" => return Ok(Parsed::Print(USAGE.into())),
                    name => {
                        spec = Some(
                            COMMANDS
                                .iter()
                                .find(|c| c.name == name)
                                .ok_or_else(|| usage(format!("unknown command {name:?}")))?,
                        )
                    }
                },
                Some(s) => {
                    m.pos.push(a);
                    if s.trailing && m.pos.len() == s.positionals.len() {
                        // The command's own words follow, hyphens and all.
                        only_positionals = true;
                    }
                }
            }
            continue;
        }
        if a == "--" {
            only_positionals = true;
            continue;
        }
        if a == "--help" || a == "-h" {
            return Ok(Parsed::Print(USAGE.into()));
        }
        if spec.is_none() && (a == "--version" || a == "-V" || a == "-v") {
            return Ok(Parsed::Print(format!(
                "berth-runtime {}\n",
                env!("CARGO_PKG_VERSION")
            )));
        }
        let cmd_opts = spec.map(|s| s.opts).unwrap_or(&[]);
        if let Some(body) = a.strip_prefix("--") {
            let (name, inline) = match body.split_once('=') {
                Some((n, v)) => (n, Some(v.to_string())),
                None => (body, None),
            };
            let opt = find(cmd_opts, Some(name), None)
                .or_else(|| find(GLOBAL, Some(name), None))
                .ok_or_else(|| usage(format!("unexpected argument '--{name}'")))?;
            let value = match (opt.2, inline) {
                (true, Some(v)) => Some(v),
                (true, None) => Some(
                    it.next()
                        .ok_or_else(|| usage(format!("'--{name}' needs a value")))?,
                ),
                (false, Some(_)) => return Err(usage(format!("'--{name}' takes no value"))),
                (false, None) => None,
            };
            m.opts.push((opt.0, value));
            continue;
        }
        // -abc: grouped flags, or -oVALUE / -o VALUE for an option with a value.
        let body = &a[1..];
        for (i, c) in body.char_indices() {
            let opt = find(cmd_opts, None, Some(c))
                .ok_or_else(|| usage(format!("unexpected argument '-{c}'")))?;
            if opt.2 {
                let rest = &body[i + c.len_utf8()..];
                let value = if rest.is_empty() {
                    it.next()
                        .ok_or_else(|| usage(format!("'-{c}' needs a value")))?
                } else {
                    rest.to_string()
                };
                m.opts.push((opt.0, Some(value)));
                break;
            }
            m.opts.push((opt.0, None));
        }
    }
    let spec = spec.ok_or_else(|| usage("no command given"))?;
    let required = spec
        .positionals
        .iter()
        .filter(|p| !p.ends_with('?'))
        .count();
    if m.pos.len() < required {
        return Err(usage(format!(
            "{}: missing {}",
            spec.name,
            spec.positionals[m.pos.len()]
        )));
    }
    if !spec.trailing && m.pos.len() > spec.positionals.len() {
        return Err(usage(format!(
            "{}: unexpected argument {:?}",
            spec.name,
            m.pos[spec.positionals.len()]
        )));
    }
    let cmd = command(spec.name, &mut m)?;
    Ok(Parsed::Run(Box::new(Cli {
        root: m
            .path("root")
            .unwrap_or_else(|| PathBuf::from(berth_runtime::state::DEFAULT_ROOT)),
        log: m.path("log"),
        log_format: m.value("log-format").unwrap_or_else(|| "text".into()),
        debug: m.flag("debug"),
        cmd,
    })))
}

fn preserve_fds(m: &Matches) -> Result<u32, UsageError> {
    match m.value("preserve-fds") {
        None => Ok(0),
        Some(n) => n
            .parse()
            .map_err(|_| usage(format!("--preserve-fds: {n:?} is not a number"))),
    }
}

fn command(name: &str, m: &mut Matches) -> Result<Cmd, UsageError> {
    Ok(match name {
        "create" => Cmd::Create {
            preserve_fds: preserve_fds(m)?,
            id: m.id(),
            bundle: m.bundle(),
            pid_file: m.path("pid-file"),
            console_socket: m.path("console-socket"),
            no_pivot: m.flag("no-pivot"),
        },
        "run" => Cmd::Run {
            preserve_fds: preserve_fds(m)?,
            id: m.id(),
            bundle: m.bundle(),
            detach: m.flag("detach"),
            pid_file: m.path("pid-file"),
            console_socket: m.path("console-socket"),
            no_pivot: m.flag("no-pivot"),
        },
        "start" => Cmd::Start { id: m.id() },
        "state" => Cmd::State { id: m.id() },
        "kill" => Cmd::Kill {
            signal: m.pos.get(1).cloned(),
            all: m.flag("all"),
            id: m.id(),
        },
        "delete" => Cmd::Delete {
            id: m.id(),
            force: m.flag("force"),
        },
        "exec" => Cmd::Exec {
            process: m.path("process"),
            detach: m.flag("detach"),
            tty: m.flag("tty"),
            console_socket: m.path("console-socket"),
            env: m.values("env").map(str::to_string).collect(),
            cwd: m.path("cwd"),
            user: m.value("user"),
            additional_gids: m
                .values("additional-gids")
                .map(|g| {
                    g.parse()
                        .map_err(|_| usage(format!("--additional-gids: {g:?} is not a number")))
                })
                .collect::<Result<_, _>>()?,
            pid_file: m.path("pid-file"),
            no_new_privs: m.flag("no-new-privs"),
            preserve_fds: preserve_fds(m)?,
            args: m.pos.split_off(1),
            id: m.id(),
        },
        "ps" => Cmd::Ps {
            format: m.value("format").unwrap_or_else(|| "table".into()),
            id: m.id(),
        },
        "list" => Cmd::List {
            format: m.value("format").unwrap_or_else(|| "table".into()),
            quiet: m.flag("quiet"),
        },
        "pause" => Cmd::Pause { id: m.id() },
        "resume" => Cmd::Resume { id: m.id() },
        "events" => Cmd::Events {
            stats: m.flag("stats"),
            id: m.id(),
        },
        "update" => Cmd::Update {
            resources: m.value("resources"),
            flags: update_flags(m)?,
            id: m.id(),
        },
        "spec" => Cmd::Spec { bundle: m.bundle() },
        _ => Cmd::Features,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cli(line: &str) -> Cli {
        match parse(line.split_whitespace().map(String::from).collect()) {
            Ok(Parsed::Run(c)) => *c,
            Ok(Parsed::Print(_)) => panic!("{line}: printed instead of parsing"),
            Err(e) => panic!("{line}: {e}"),
        }
    }

    fn err(line: &str) -> String {
        match parse(line.split_whitespace().map(String::from).collect()) {
            Err(e) => e.0,
            Ok(_) => panic!("{line}: accepted"),
        }
    }

    #[test]
    fn options_before_and_after_positionals_and_globals_anywhere() {
        for line in [
            "--root /r create --bundle /b --pid-file /p c1",
            "create c1 --bundle=/b --root=/r --pid-file /p",
            "create -b /b c1 --pid-file=/p --root /r",
            "create -b/b c1 --pid-file /p --root /r --no-new-keyring --preserve-fds 2",
        ] {
            let c = cli(line);
            assert_eq!(c.root, PathBuf::from("/r"), "{line}");
            let Cmd::Create {
                id,
                bundle,
                pid_file,
                ..
            } = c.cmd
            else {
                panic!("{line}: not create");
            };
            assert_eq!(
                (id.as_str(), bundle, pid_file),
                ("c1", PathBuf::from("/b"), Some(PathBuf::from("/p"))),
                "{line}"
            );
        }
        let c = cli("--debug --log /l --log-format json state x");
        assert!(c.debug);
        assert_eq!(c.log, Some(PathBuf::from("/l")));
        assert_eq!(c.log_format, "json");
        assert_eq!(
            cli("list").root,
            PathBuf::from(berth_runtime::state::DEFAULT_ROOT)
        );
    }

    #[test]
    fn exec_keeps_the_commands_own_words() {
        let c = cli("exec -e A=1 c1 --cwd /tmp -e B=2 ls -la --env X -- y");
        let Cmd::Exec {
            id, env, cwd, args, ..
        } = c.cmd
        else {
            panic!("not exec");
        };
        assert_eq!(id, "c1");
        assert_eq!(env, ["A=1", "B=2"]);
        assert_eq!(cwd, Some(PathBuf::from("/tmp")));
        assert_eq!(args, ["ls", "-la", "--env", "X", "--", "y"]);
        let Cmd::Exec { args, tty, .. } = cli("exec -td c1 -- sh -c true").cmd else {
            panic!("not exec");
        };
        assert!(tty);
        assert_eq!(args, ["sh", "-c", "true"]);
    }

    #[test]
    fn kill_run_and_flags() {
        let Cmd::Kill { id, signal, all } = cli("kill --all c1 KILL").cmd else {
            panic!("not kill");
        };
        assert_eq!(
            (id.as_str(), signal.as_deref(), all),
            ("c1", Some("KILL"), true)
        );
        let Cmd::Run { detach, bundle, .. } = cli("run -d c1").cmd else {
            panic!("not run");
        };
        assert!(detach);
        assert_eq!(bundle, PathBuf::from("."));
        let Cmd::List { format, quiet } = cli("list -q --format json").cmd else {
            panic!("not list");
        };
        assert_eq!((format.as_str(), quiet), ("json", true));
    }

    #[test]
    fn update_flags_become_linux_resources() {
        let Cmd::Update {
            id,
            resources,
            flags,
        } = cli("update --memory 64m c1 --pids-limit 10 --cpu-quota -1 --cpuset-cpus 0-1 --blkio-weight 300").cmd
        else {
            panic!("not update");
        };
        assert_eq!((id.as_str(), resources), ("c1", None));
        assert_eq!(
            flags,
            serde_json::json!({
                "memory": {"limit": 64i64 << 20},
                "pids": {"limit": 10},
                "cpu": {"quota": -1, "cpus": "0-1"},
                "blockIO": {"weight": 300},
            })
        );
        let Cmd::Update { resources, .. } = cli("update -r - c1").cmd else {
            panic!("not update");
        };
        assert_eq!(resources.as_deref(), Some("-"));
        assert!(err("update c1 --memory lots").contains("--memory"));
        assert!(err("update c1 --cpu-period -5").contains("--cpu-period"));
        for (text, bytes) in [
            ("1024", 1024),
            ("-1", -1),
            ("1k", 1024),
            ("1KiB", 1024),
            ("2MB", 2 << 20),
            ("1.5g", 3 << 29),
        ] {
            assert_eq!(parse_bytes(text), Some(bytes), "{text}");
        }
        for bad in ["", "m", "-2", "1x", "1 2"] {
            assert_eq!(parse_bytes(bad), None, "{bad}");
        }
    }

    #[test]
    fn usage_errors_name_the_problem() {
        assert!(err("create").contains("missing ID"));
        assert!(err("start a b").contains("unexpected argument \"b\""));
        assert!(err("bogus x").contains("unknown command"));
        assert!(err("state --nope x").contains("'--nope'"));
        assert!(err("create x --bundle").contains("needs a value"));
        assert!(err("delete --force=yes x").contains("takes no value"));
        assert!(err("").contains("no command"));
        assert!(matches!(
            parse(vec!["--version".into()]),
            Ok(Parsed::Print(v)) if v.starts_with("berth-runtime ")
        ));
        assert!(matches!(
            parse(vec!["run".into(), "--help".into()]),
            Ok(Parsed::Print(_))
        ));
    }
}
