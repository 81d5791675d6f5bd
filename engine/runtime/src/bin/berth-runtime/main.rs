//! `berth-runtime`: a runc-compatible command line over the berth-runtime library.

use std::io::Write;
use std::path::Path;

use anyhow::{Context, Result, bail};
use berth_runtime::oci_spec::runtime::{LinuxResources, Process, Spec};
use berth_runtime::{Container, ContainerBuilder, ExecOptions, Status, sys};
mod cli;

use cli::{Cli, Cmd, Parsed};

/// Prints warnings and errors to stderr as `LEVEL target: message key=value`, without
/// tracing-subscriber's registry: the default path of every invocation stays a few pages smaller.
struct StderrWarnings;

impl tracing::Subscriber for StderrWarnings {
    fn enabled(&self, meta: &tracing::Metadata<'_>) -> bool {
        *meta.level() <= tracing::Level::WARN
    }
    fn new_span(&self, _: &tracing::span::Attributes<'_>) -> tracing::span::Id {
        tracing::span::Id::from_u64(1)
    }
    fn record(&self, _: &tracing::span::Id, _: &tracing::span::Record<'_>) {}
    fn record_follows_from(&self, _: &tracing::span::Id, _: &tracing::span::Id) {}
    fn event(&self, event: &tracing::Event<'_>) {
        struct Line(String);
        impl tracing::field::Visit for Line {
            fn record_debug(&mut self, f: &tracing::field::Field, v: &dyn std::fmt::Debug) {
                use std::fmt::Write as _;
                let _ = if f.name() == "message" {
                    write!(self.0, " {v:?}")
                } else {
                    write!(self.0, " {}={v:?}", f.name())
                };
            }
            fn record_str(&mut self, f: &tracing::field::Field, v: &str) {
                if f.name() == "message" {
                    self.0.push(' ');
                    self.0.push_str(v);
                } else {
                    self.record_debug(f, &v);
                }
            }
        }
        let meta = event.metadata();
        let mut line = Line(format!("{:>5} {}:", meta.level(), meta.target()));
        event.record(&mut line);
        line.0.push('\n');
        let _ = std::io::stderr().write_all(line.0.as_bytes());
    }
    fn enter(&self, _: &tracing::span::Id) {}
    fn exit(&self, _: &tracing::span::Id) {}
}

fn init_logging(cli: &Cli) -> Result<()> {
    if cli.log.is_none() && !cli.debug && std::env::var_os("BERTH_LOG").is_none() {
        // Nothing was asked for: warnings to stderr are all runc prints either.
        let _ = tracing::subscriber::set_global_default(StderrWarnings);
        return Ok(());
    }
    let level = if cli.debug {
        tracing::Level::DEBUG
    } else {
        tracing::Level::WARN
    };
    // EnvFilter compiles regexes; only pay for it when BERTH_LOG asks for fine-grained filters.
    let filter = std::env::var("BERTH_LOG")
        .ok()
        .and_then(|v| tracing_subscriber::EnvFilter::try_new(v).ok());
    let base = tracing_subscriber::fmt().with_ansi(false);
    macro_rules! finish {
        ($b:expr) => {
            match filter {
                Some(f) => $b.with_env_filter(f).init(),
                None => $b.with_max_level(level).init(),
            }
        };
    }
    match &cli.log {
        Some(path) => {
            let file = std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(path)
                .with_context(|| format!("open log file {}", path.display()))?;
            let w = std::sync::Mutex::new(file);
            if cli.log_format == "json" {
                finish!(base.json().with_writer(w));
            } else {
                finish!(base.with_writer(w));
            }
        }
        None => finish!(base.with_writer(std::io::stderr)),
    }
    Ok(())
}

fn parse_signal(s: &str) -> Result<i32> {
    if let Ok(n) = s.parse::<i32>() {
        if (1..=64).contains(&n) {
            return Ok(n);
        }
        bail!("invalid signal {s:?}");
    }
    let name = s.to_ascii_uppercase();
    let name = name.strip_prefix("SIG").unwrap_or(&name);
    let n = match name {
        "HUP" => libc::SIGHUP,
        "INT" => libc::SIGINT,
        "QUIT" => libc::SIGQUIT,
        "ILL" => libc::SIGILL,
        "TRAP" => libc::SIGTRAP,
        "ABRT" | "IOT" => libc::SIGABRT,
        "BUS" => libc::SIGBUS,
        "FPE" => libc::SIGFPE,
        "KILL" => libc::SIGKILL,
        "USR1" => libc::SIGUSR1,
        "SEGV" => libc::SIGSEGV,
        "USR2" => libc::SIGUSR2,
        "PIPE" => libc::SIGPIPE,
        "ALRM" => libc::SIGALRM,
        "TERM" => libc::SIGTERM,
        "STKFLT" => libc::SIGSTKFLT,
        "CHLD" => libc::SIGCHLD,
        "CONT" => libc::SIGCONT,
        "STOP" => libc::SIGSTOP,
        "TSTP" => libc::SIGTSTP,
        "TTIN" => libc::SIGTTIN,
        "TTOU" => libc::SIGTTOU,
        "URG" => libc::SIGURG,
        "XCPU" => libc::SIGXCPU,
        "XFSZ" => libc::SIGXFSZ,
        "VTALRM" => libc::SIGVTALRM,
        "PROF" => libc::SIGPROF,
        "WINCH" => libc::SIGWINCH,
        "IO" | "POLL" => libc::SIGIO,
        "PWR" => libc::SIGPWR,
        "SYS" => libc::SIGSYS,
        _ => bail!("unknown signal {s:?}"),
    };
    Ok(n)
}

/// Waits for `pid` (our child or reparented to us as subreaper), reaping others on the way.
fn wait_exit(pid: i32) -> Result<i32> {
    loop {
        let (got, status) = sys::waitpid(-1, 0).context("waitpid")?;
        if got == pid {
            return Ok(sys::exit_code(status));
        }
    }
}

fn main() {
    let args: Result<Vec<String>, _> = std::env::args_os()
        .skip(1)
        .map(|a| a.into_string())
        .collect();
    let parsed = match args {
        Ok(args) => cli::parse(args).map_err(|e| e.0),
        Err(a) => Err(format!("argument {a:?} is not valid UTF-8")),
    };
    let cli = match parsed {
        Ok(Parsed::Run(cli)) => *cli,
        Ok(Parsed::Print(text)) => {
            print!("{text}");
            std::process::exit(0);
        }
        Err(msg) => {
            eprintln!("berth-runtime: {msg}\nRun 'berth-runtime --help' for usage.");
            std::process::exit(2);
        }
    };
    if let Err(e) = init_logging(&cli) {
        eprintln!("berth-runtime: {e:#}");
        std::process::exit(1);
    }
    match run(cli) {
        Ok(code) => std::process::exit(code),
        Err(e) => {
            // Library errors already spell out their cause; anyhow's chain would repeat it.
            let msg = if e.downcast_ref::<berth_runtime::Error>().is_some() {
                e.to_string()
            } else {
                format!("{e:#}")
            };
            tracing::error!("{msg}");
            eprintln!("berth-runtime: {msg}");
            std::process::exit(1);
        }
    }
}

fn run(cli: Cli) -> Result<i32> {
    let root = cli.root.clone();
    match cli.cmd {
        Cmd::Create {
            id,
            bundle,
            pid_file,
            console_socket,
            no_pivot,
            preserve_fds,
        } => {
            ContainerBuilder::new(id, bundle)
                .root(&root)
                .preserve_fds(preserve_fds)
                .listen_fds(listen_fds())
                .pid_file(pid_file)
                .console_socket(console_socket)
                .no_pivot(no_pivot)
                .create()?;
            Ok(0)
        }
        Cmd::Start { id } => {
            Container::load(&root, &id)?.start()?;
            Ok(0)
        }
        Cmd::State { id } => {
            let c = Container::load(&root, &id)?;
            println!("{}", serde_json::to_string_pretty(&c.oci_state())?);
            Ok(0)
        }
        Cmd::Kill { id, signal, all } => {
            let sig = parse_signal(signal.as_deref().unwrap_or("SIGTERM"))?;
            Container::load(&root, &id)?.kill(sig, all)?;
            Ok(0)
        }
        Cmd::Delete { id, force } => {
            match Container::load(&root, &id) {
                Ok(c) => c.delete(force)?,
                Err(berth_runtime::Error::State(berth_runtime::state::StateError::NotFound(_)))
                    if force => {}
                Err(e) => return Err(e.into()),
            }
            Ok(0)
        }
        Cmd::Run {
            id,
            bundle,
            detach,
            pid_file,
            console_socket,
            no_pivot,
            preserve_fds,
        } => {
            if !detach {
                // Init may be spawned through an intermediate; become its reaper to wait for it.
                sys::prctl(libc::PR_SET_CHILD_SUBREAPER, 1, 0).context("PR_SET_CHILD_SUBREAPER")?;
            }
            let c = ContainerBuilder::new(&id, bundle)
                .root(&root)
                .preserve_fds(preserve_fds)
                .listen_fds(listen_fds())
                .pid_file(pid_file)
                .console_socket(console_socket)
                .no_pivot(no_pivot)
                .create()?;
            if let Err(e) = c.start() {
                let _ = c.delete(true);
                return Err(e.into());
            }
            if detach {
                return Ok(0);
            }
            sys::forward_signals_to(c.pid()).context("signal forwarding")?;
            let code = wait_exit(c.pid())?;
            c.delete(true)?;
            Ok(code)
        }
        Cmd::Exec {
            id,
            process,
            detach,
            tty,
            console_socket,
            env,
            cwd,
            user,
            additional_gids,
            pid_file,
            no_new_privs,
            preserve_fds,
            args,
        } => {
            let c = Container::load(&root, &id)?;
            let proc = match process {
                Some(p) => load_process(&p)?,
                None => {
                    if args.is_empty() {
                        bail!("exec needs a command or --process");
                    }
                    let mut p = c.spec().process().clone().unwrap_or_default();
                    p.set_args(Some(args));
                    let mut e = p.env().clone().unwrap_or_default();
                    e.extend(env);
                    p.set_env(Some(e));
                    if let Some(cwd) = cwd {
                        p.set_cwd(cwd);
                    }
                    if let Some(u) = user {
                        let mut usr = p.user().clone();
                        let (uid, gid) = u.split_once(':').unwrap_or((&u, "0"));
                        usr.set_uid(uid.parse().context("--user: uid must be a number")?);
                        usr.set_gid(gid.parse().context("--user: gid must be a number")?);
                        if !additional_gids.is_empty() {
                            usr.set_additional_gids(Some(additional_gids));
                        }
                        p.set_user(usr);
                    }
                    p.set_terminal(Some(tty));
                    if no_new_privs {
                        p.set_no_new_privileges(Some(true));
                    }
                    p
                }
            };
            if !detach {
                sys::prctl(libc::PR_SET_CHILD_SUBREAPER, 1, 0).context("PR_SET_CHILD_SUBREAPER")?;
            }
            let pid = c.exec_with_fds(
                &ExecOptions {
                    process: proc,
                    console_socket,
                    detach,
                    pid_file,
                },
                preserve_fds,
            )?;
            if detach {
                return Ok(0);
            }
            sys::forward_signals_to(pid).context("signal forwarding")?;
            wait_exit(pid)
        }
        Cmd::Ps { id, format } => {
            let c = Container::load(&root, &id)?;
            let pids = c.processes()?;
            if format == "json" {
                println!("{}", serde_json::to_string(&pids)?);
            } else {
                let mut out = std::io::stdout().lock();
                writeln!(out, "{:>8} CMD", "PID")?;
                for pid in pids {
                    let cmd = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
                    let cmd: String = String::from_utf8_lossy(&cmd)
                        .split('\0')
                        .filter(|s| !s.is_empty())
                        .collect::<Vec<_>>()
                        .join(" ");
                    writeln!(out, "{pid:>8} {cmd}")?;
                }
            }
            Ok(0)
        }
        Cmd::List { format, quiet } => {
            let list = Container::list(&root)?;
            if quiet {
                for c in &list {
                    println!("{}", c.id());
                }
            } else if format == "json" {
                let v: Vec<_> = list.iter().map(|c| c.oci_state()).collect();
                println!("{}", serde_json::to_string(&v)?);
            } else {
                let mut out = std::io::stdout().lock();
                writeln!(
                    out,
                    "{:<20} {:<8} {:<10} {:<40} CREATED",
                    "ID", "PID", "STATUS", "BUNDLE"
                )?;
                for c in &list {
                    let st = c.oci_state();
                    writeln!(
                        out,
                        "{:<20} {:<8} {:<10} {:<40} {}",
                        st.id,
                        st.pid,
                        st.status.to_string(),
                        st.bundle.display(),
                        st.created
                    )?;
                }
            }
            Ok(0)
        }
        Cmd::Pause { id } => {
            Container::load(&root, &id)?.pause()?;
            Ok(0)
        }
        Cmd::Resume { id } => {
            Container::load(&root, &id)?.resume()?;
            Ok(0)
        }
        Cmd::Events { id, stats } => {
            let c = Container::load(&root, &id)?;
            if !stats {
                bail!("only `events --stats` is supported");
            }
            if c.status() == Status::Stopped {
                bail!("container {id:?} is stopped");
            }
            let v = serde_json::json!({"type": "stats", "id": id, "data": c.stats()?});
            println!("{v}");
            Ok(0)
        }
        Cmd::Update {
            id,
            resources,
            flags,
        } => {
            let res: LinuxResources = match resources.as_deref() {
                Some("-") => {
                    let mut text = Vec::new();
                    std::io::Read::read_to_end(&mut std::io::stdin(), &mut text)
                        .context("read resources from stdin")?;
                    decode("stdin", &text, "resources")?
                }
                Some(path) => {
                    let text = std::fs::read(path).with_context(|| format!("read {path}"))?;
                    decode(path, &text, "resources")?
                }
                None => serde_json::from_value(flags).context("update flags")?,
            };
            let mut c = Container::load(&root, &id)?;
            c.update(&res)?;
            Ok(0)
        }
        Cmd::Spec { bundle } => {
            let path = bundle.join("config.json");
            if path.exists() {
                bail!("{} already exists", path.display());
            }
            let spec: Spec = berth_runtime::spec::default_spec();
            let text = serde_json::to_string_pretty(&spec)?;
            std::fs::write(&path, text).with_context(|| format!("write {}", path.display()))?;
            Ok(0)
        }
        Cmd::Features => {
            println!(
                "{}",
                serde_json::to_string_pretty(&berth_runtime::spec::features())?
            );
            Ok(0)
        }
    }
}

/// Socket-activation descriptors systemd handed to this process (LISTEN_PID is ours), which
/// runc passes on to the container.
fn listen_fds() -> u32 {
    let ours = std::env::var("LISTEN_PID")
        .ok()
        .and_then(|p| p.parse().ok())
        == Some(std::process::id());
    if !ours {
        return 0;
    }
    std::env::var("LISTEN_FDS")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(0)
}

fn load_process(path: &Path) -> Result<Process> {
    let text = std::fs::read(path).with_context(|| format!("read {}", path.display()))?;
    decode(&path.display().to_string(), &text, "process")
}

/// Decodes JSON naming the path of the first bad field.
fn decode<T: serde::de::DeserializeOwned>(source: &str, text: &[u8], what: &str) -> Result<T> {
    let de = &mut serde_json::Deserializer::from_slice(text);
    serde_path_to_error::deserialize(de)
        .map_err(|e| anyhow::anyhow!("{source}: invalid {what} at `{}`: {}", e.path(), e.inner()))
}
