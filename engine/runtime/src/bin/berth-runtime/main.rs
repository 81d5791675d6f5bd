//! `berth-runtime`: a runc-compatible command line over the berth-runtime library.

use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use berth_runtime::oci_spec::runtime::{Process, Spec};
use berth_runtime::{Container, ContainerBuilder, ExecOptions, Status, sys};
use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(
    name = "berth-runtime",
    version,
    about = "An OCI runtime (runc-compatible CLI)"
)]
struct Cli {
    /// State directory.
    #[arg(long, global = true, default_value = berth_runtime::state::DEFAULT_ROOT)]
    root: PathBuf,
    /// Log file (default: stderr).
    #[arg(long, global = true)]
    log: Option<PathBuf>,
    /// Log format: text or json.
    #[arg(long = "log-format", global = true, default_value = "text")]
    log_format: String,
    /// Debug logging.
    #[arg(long, global = true)]
    debug: bool,
    /// Accepted for runc compatibility; cgroups are managed through cgroupfs.
    #[arg(long = "systemd-cgroup", global = true, hide = true)]
    systemd_cgroup: bool,
    /// Accepted for runc compatibility.
    #[arg(long, global = true, hide = true)]
    rootless: Option<String>,
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Create a container (the process waits for `start`).
    Create {
        /// Container ID.
        id: String,
        /// Bundle directory.
        #[arg(long, short = 'b', default_value = ".")]
        bundle: PathBuf,
        /// Write init's pid here.
        #[arg(long = "pid-file")]
        pid_file: Option<PathBuf>,
        /// Receives the pty master when process.terminal is true.
        #[arg(long = "console-socket")]
        console_socket: Option<PathBuf>,
        /// Use MS_MOVE+chroot instead of pivot_root.
        #[arg(long = "no-pivot")]
        no_pivot: bool,
        /// Accepted for runc compatibility.
        #[arg(long = "no-new-keyring", hide = true)]
        no_new_keyring: bool,
        /// Accepted for runc compatibility.
        #[arg(long = "preserve-fds", hide = true)]
        preserve_fds: Option<u32>,
    },
    /// Start a created container.
    Start {
        /// Container ID.
        id: String,
    },
    /// Print the OCI state of a container.
    State {
        /// Container ID.
        id: String,
    },
    /// Send a signal (name or number, default SIGTERM).
    Kill {
        /// Container ID.
        id: String,
        /// Signal.
        signal: Option<String>,
        /// Signal every process of the container.
        #[arg(long, short = 'a')]
        all: bool,
    },
    /// Delete a container.
    Delete {
        /// Container ID.
        id: String,
        /// Kill it first if it still runs.
        #[arg(long, short = 'f')]
        force: bool,
    },
    /// Create and start a container; in the foreground, wait and return its exit code.
    Run {
        /// Container ID.
        id: String,
        /// Bundle directory.
        #[arg(long, short = 'b', default_value = ".")]
        bundle: PathBuf,
        /// Return after start.
        #[arg(long, short = 'd')]
        detach: bool,
        /// Write init's pid here.
        #[arg(long = "pid-file")]
        pid_file: Option<PathBuf>,
        /// Receives the pty master when process.terminal is true.
        #[arg(long = "console-socket")]
        console_socket: Option<PathBuf>,
        /// Use MS_MOVE+chroot instead of pivot_root.
        #[arg(long = "no-pivot")]
        no_pivot: bool,
        /// Accepted for runc compatibility.
        #[arg(long = "no-new-keyring", hide = true)]
        no_new_keyring: bool,
    },
    /// Run a process in a running container.
    Exec {
        /// Container ID.
        id: String,
        /// process.json to run instead of ARGS.
        #[arg(long, short = 'p')]
        process: Option<PathBuf>,
        /// Return after the process started.
        #[arg(long, short = 'd')]
        detach: bool,
        /// Allocate a pty (needs --console-socket).
        #[arg(long, short = 't')]
        tty: bool,
        /// Receives the pty master.
        #[arg(long = "console-socket")]
        console_socket: Option<PathBuf>,
        /// Extra KEY=VALUE environment.
        #[arg(long, short = 'e')]
        env: Vec<String>,
        /// Working directory.
        #[arg(long)]
        cwd: Option<PathBuf>,
        /// uid[:gid].
        #[arg(long, short = 'u')]
        user: Option<String>,
        /// Additional gids.
        #[arg(long = "additional-gids", short = 'g')]
        additional_gids: Vec<u32>,
        /// Write the process's pid here.
        #[arg(long = "pid-file")]
        pid_file: Option<PathBuf>,
        /// Set no_new_privs.
        #[arg(long = "no-new-privs")]
        no_new_privs: bool,
        /// The command.
        #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
        args: Vec<String>,
    },
    /// List the processes of a container.
    Ps {
        /// Container ID.
        id: String,
        /// table or json.
        #[arg(long, short = 'f', default_value = "table")]
        format: String,
    },
    /// List containers.
    List {
        /// table or json.
        #[arg(long, short = 'f', default_value = "table")]
        format: String,
        /// Only IDs.
        #[arg(long, short = 'q')]
        quiet: bool,
    },
    /// Freeze all processes of a container.
    Pause {
        /// Container ID.
        id: String,
    },
    /// Thaw a paused container.
    Resume {
        /// Container ID.
        id: String,
    },
    /// Print resource usage.
    Events {
        /// Container ID.
        id: String,
        /// Print stats once and exit.
        #[arg(long)]
        stats: bool,
    },
    /// Write a default config.json.
    Spec {
        /// Bundle directory.
        #[arg(long, short = 'b', default_value = ".")]
        bundle: PathBuf,
    },
    /// Print the features document.
    Features,
}

fn init_logging(cli: &Cli) -> Result<()> {
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
    let cli = Cli::parse();
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
            ..
        } => {
            ContainerBuilder::new(id, bundle)
                .root(&root)
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
            ..
        } => {
            if !detach {
                // Init may be spawned through an intermediate; become its reaper to wait for it.
                sys::prctl(libc::PR_SET_CHILD_SUBREAPER, 1, 0).context("PR_SET_CHILD_SUBREAPER")?;
            }
            let c = ContainerBuilder::new(&id, bundle)
                .root(&root)
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
            Container::load(&root, &id)?.delete(true)?;
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
            let pid = c.exec(&ExecOptions {
                process: proc,
                console_socket,
                detach,
                pid_file,
            })?;
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

fn load_process(path: &Path) -> Result<Process> {
    let text = std::fs::read(path).with_context(|| format!("read {}", path.display()))?;
    let de = &mut serde_json::Deserializer::from_slice(&text);
    serde_path_to_error::deserialize(de).map_err(|e| {
        anyhow::anyhow!(
            "{}: invalid process at `{}`: {}",
            path.display(),
            e.path(),
            e.inner()
        )
    })
}
