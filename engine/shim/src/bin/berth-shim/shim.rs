//! The shim's state and its single poll loop: signals, the process's output, the control
//! socket and its clients. No threads, no async runtime: one idle shim costs little memory.

use std::fs::File;
use std::io::{self, Read, Write};
use std::os::fd::{AsRawFd, OwnedFd, RawFd};
use std::os::unix::fs::OpenOptionsExt;
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::Path;
use std::time::{Duration, Instant, SystemTime};

use anyhow::{Context, Result};
use berth_runtime::{Container, ContainerBuilder, ExecOptions, Status};
use berth_shim::protocol::{self, MAX_LINE};
use berth_shim::{
    ExitStatus, LogWriter, Mode, ProcessStatus, Request, Response, ShimConfig, Stream,
};

use crate::stdio::{self, Stdio};
use crate::sys;

/// How long output may keep coming after the process exited (daemonized leftovers).
const DRAIN: Duration = Duration::from_secs(2);
/// How long attached clients get to take the last output before the shim exits.
const LINGER: Duration = Duration::from_secs(5);
/// Output queued for one client beyond this drops the client rather than block the process.
const CLIENT_QUEUE_MAX: usize = 4 << 20;
/// Stdin queued for the process beyond this stops reading from clients until it drains.
const STDIN_QUEUE_MAX: usize = 1 << 20;
/// Go's zero time, what Docker shows for a process that never started.
const NEVER: &str = "0001-01-01T00:00:00Z";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    /// Waiting for `start`.
    Created,
    /// The process runs.
    Running,
    /// The process exited; the rest of its output is read until EOF or the deadline.
    Draining(Instant),
    /// Exit status written; clients get their last bytes until the deadline.
    Done(Instant),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    /// Its request line has not arrived yet.
    Request,
    /// Streams stdio.
    Attach {
        stdin: bool,
        stdout: bool,
        stderr: bool,
    },
    /// Gets an answer when the process has exited.
    Wait,
    /// Answered; closes once the answer is out.
    Answered,
}

struct Client {
    sock: UnixStream,
    kind: Kind,
    inbuf: Vec<u8>,
    out: Vec<u8>,
    sent: usize,
    read_closed: bool,
    close_after_flush: bool,
    dead: bool,
    /// Detach keys of an attach client, and how many of them were just typed (held back).
    detach_keys: Vec<u8>,
    matched: usize,
}

impl Client {
    fn queued(&self) -> usize {
        self.out.len() - self.sent
    }

    fn queue_response(&mut self, r: &Response) {
        if let Ok(mut line) = serde_json::to_vec(r) {
            line.push(b'\n');
            self.out.extend_from_slice(&line);
        }
    }

    /// Writes what it can without blocking; closes once drained when asked to.
    fn flush(&mut self) {
        while self.queued() > 0 {
            match self.sock.write(&self.out[self.sent..]) {
                Ok(0) => {
                    self.dead = true;
                    return;
                }
                Ok(n) => self.sent += n,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(_) => {
                    self.dead = true;
                    return;
                }
            }
        }
        if self.queued() == 0 {
            // Give the memory back: an idle attach keeps no buffer.
            self.out = Vec::new();
            self.sent = 0;
            if self.close_after_flush {
                let _ = self.sock.shutdown(std::net::Shutdown::Both);
                self.dead = true;
            }
        }
    }

    /// Splits what the client typed into bytes for stdin and whether the detach sequence was
    /// completed. A partial match is held back until the next byte decides, as Docker does.
    fn filter_detach(&mut self, data: &[u8]) -> (Vec<u8>, bool) {
        if self.detach_keys.is_empty() {
            return (data.to_vec(), false);
        }
        let mut pass = Vec::with_capacity(data.len());
        for &b in data {
            if b == self.detach_keys[self.matched] {
                self.matched += 1;
                if self.matched == self.detach_keys.len() {
                    self.matched = 0;
                    return (pass, true);
                }
                continue;
            }
            pass.extend_from_slice(&self.detach_keys[..self.matched]);
            self.matched = 0;
            if b == self.detach_keys[0] {
                self.matched = 1;
                if self.detach_keys.len() == 1 {
                    self.matched = 0;
                    return (pass, true);
                }
            } else {
                pass.push(b);
            }
        }
        (pass, false)
    }

    fn wants_read(&self) -> bool {
        !self.read_closed && !self.close_after_flush
    }
}

/// What a pollfd entry stands for.
#[derive(Debug, Clone, Copy)]
enum Token {
    Signal,
    Listener,
    Stdout,
    Stderr,
    Pty,
    Stdin,
    Client(usize),
}

/// One shim: the process, its stdio, its log and the control socket.
pub struct Shim {
    cfg: ShimConfig,
    log: LogWriter,
    log_failed: bool,
    listener: Option<UnixListener>,
    sigfd: OwnedFd,
    io: Stdio,
    pty: Option<OwnedFd>,
    pending_size: Option<(u16, u16)>,
    stdin_buf: Vec<u8>,
    stdin_eof: bool,
    pid: i32,
    started_at: Option<String>,
    oom_before: u64,
    exit: Option<ExitStatus>,
    phase: Phase,
    clients: Vec<Client>,
}

/// Removes what setup created if it fails halfway.
struct SetupGuard<'a> {
    socket: &'a Path,
    armed: bool,
}

impl Drop for SetupGuard<'_> {
    fn drop(&mut self) {
        if self.armed {
            let _ = std::fs::remove_file(self.socket);
        }
    }
}

fn open_shim_log(cfg: &ShimConfig) -> Result<File> {
    let path = cfg.dir().join("shim.log");
    std::fs::OpenOptions::new()
        .append(true)
        .create(true)
        .mode(0o600)
        .custom_flags(libc::O_CLOEXEC)
        .open(&path)
        .with_context(|| format!("open {}", path.display()))
}

fn init_tracing(file: File) {
    let level = match std::env::var("BERTH_SHIM_LOG").as_deref() {
        Ok("debug") => tracing::Level::DEBUG,
        Ok("trace") => tracing::Level::TRACE,
        Ok("warn") => tracing::Level::WARN,
        _ => tracing::Level::INFO,
    };
    let _ = tracing_subscriber::fmt()
        .with_writer(std::sync::Mutex::new(file))
        .with_ansi(false)
        .with_target(false)
        .with_max_level(level)
        .try_init();
}

fn bind_socket(path: &Path) -> Result<UnixListener> {
    match std::fs::remove_file(path) {
        Err(e) if e.kind() != io::ErrorKind::NotFound => {
            return Err(e).with_context(|| format!("remove stale {}", path.display()));
        }
        _ => {}
    }
    // Bound with umask 0177 so the socket is 0600 from the first instant.
    let old = berth_runtime::sys::umask(0o177);
    let l = UnixListener::bind(path);
    berth_runtime::sys::umask(old);
    let l = l.with_context(|| format!("bind {}", path.display()))?;
    l.set_nonblocking(true)?;
    Ok(l)
}

fn oom_kills(cfg: &ShimConfig) -> u64 {
    Container::load(&cfg.runtime_root, &cfg.id)
        .and_then(|c| c.stats())
        .map(|s| s.oom_kills)
        .unwrap_or(0)
}

fn now() -> String {
    berth_shim::time::format_nanos(SystemTime::now())
}

impl Shim {
    /// Everything before the handshake: config, stdio, socket, and (container mode) create.
    pub fn setup(config_path: &Path) -> Result<Shim> {
        let cfg = ShimConfig::load(config_path)?;
        let shim_log = open_shim_log(&cfg)?;
        stdio::detach_std_fds(&shim_log)?;
        init_tracing(shim_log);
        // Own session: berthd's process group and terminal signals do not reach us.
        let _ = berth_runtime::sys::setsid();
        berth_runtime::sys::prctl(libc::PR_SET_CHILD_SUBREAPER, 1, 0)
            .context("PR_SET_CHILD_SUBREAPER")?;
        let sigfd = sys::signal_fd().context("signalfd")?;
        match std::fs::remove_file(&cfg.exit_file) {
            Err(e) if e.kind() != io::ErrorKind::NotFound => {
                return Err(e).with_context(|| format!("remove {}", cfg.exit_file.display()));
            }
            _ => {}
        }
        let log = LogWriter::open(&cfg.log)?;
        let listener = bind_socket(&cfg.socket)?;
        let mut guard = SetupGuard {
            socket: &cfg.socket,
            armed: true,
        };
        let mut io = Stdio::new(&cfg)?;
        let mut pid = 0;
        let mut pty = None;
        let mut oom_before = 0;
        let r = (|| -> Result<()> {
            match cfg.mode {
                Mode::Container => {
                    let bundle = cfg.bundle.clone().unwrap_or_default();
                    let builder = ContainerBuilder::new(cfg.id.clone(), bundle)
                        .root(cfg.runtime_root.clone())
                        .no_pivot(cfg.no_pivot)
                        .console_socket(io.console_path());
                    let c = io.with_child_stdio(|| builder.create())??;
                    io.release_child();
                    pid = c.pid();
                    if cfg.tty {
                        pty = Some(io.receive_master()?);
                    }
                    oom_before = c.stats().map(|s| s.oom_kills).unwrap_or(0);
                }
                Mode::Exec => {
                    let c = Container::load(&cfg.runtime_root, &cfg.id)?;
                    let status = c.status();
                    if status != Status::Running && status != Status::Created {
                        anyhow::bail!("container {} is not running", cfg.id);
                    }
                }
            }
            Ok(())
        })();
        if let Err(e) = r {
            io.cleanup();
            return Err(e);
        }
        guard.armed = false;
        drop(guard);
        tracing::info!(id = %cfg.id, exec = ?cfg.exec_id, pid, "ready");
        let shim = Shim {
            cfg,
            log,
            log_failed: false,
            listener: Some(listener),
            sigfd,
            io,
            pty,
            pending_size: None,
            stdin_buf: Vec::new(),
            stdin_eof: false,
            pid,
            started_at: None,
            oom_before,
            exit: None,
            phase: Phase::Created,
            clients: Vec::new(),
        };
        sys::trim_heap();
        sys::drop_clean_file_pages();
        Ok(shim)
    }

    /// The pid the handshake reports: init's, or 0 for an exec not started yet.
    pub fn handshake_pid(&self) -> i32 {
        self.pid
    }

    /// The loop; returns the exit code of the shim.
    pub fn run(&mut self) -> i32 {
        self.reap();
        let mut had_clients = false;
        loop {
            if let Phase::Done(deadline) = self.phase {
                if self.clients.is_empty() || Instant::now() >= deadline {
                    tracing::info!("exiting");
                    return 0;
                }
            }
            let (mut fds, tokens) = self.poll_set();
            if let Err(e) = sys::poll(&mut fds, self.timeout_ms()) {
                tracing::error!(error = %e, "poll failed");
                return 1;
            }
            for (pfd, tok) in fds.iter().zip(tokens) {
                if pfd.revents != 0 {
                    self.dispatch(tok, pfd.revents);
                }
            }
            self.clients.retain(|c| !c.dead);
            self.advance();
            if self.clients.is_empty() && had_clients {
                sys::trim_heap();
                sys::drop_clean_file_pages();
            }
            had_clients = !self.clients.is_empty();
        }
    }

    fn poll_set(&self) -> (Vec<libc::pollfd>, Vec<Token>) {
        let mut fds = Vec::with_capacity(6 + self.clients.len());
        let mut toks = Vec::with_capacity(6 + self.clients.len());
        let mut add = |fd: RawFd, events: i16, t: Token| {
            fds.push(libc::pollfd {
                fd,
                events,
                revents: 0,
            });
            toks.push(t);
        };
        add(self.sigfd.as_raw_fd(), libc::POLLIN, Token::Signal);
        if let Some(l) = &self.listener {
            add(l.as_raw_fd(), libc::POLLIN, Token::Listener);
        }
        let reading_output = !matches!(self.phase, Phase::Done(_));
        if reading_output {
            if let Some(fd) = &self.io.stdout {
                add(fd.as_raw_fd(), libc::POLLIN, Token::Stdout);
            }
            if let Some(fd) = &self.io.stderr {
                add(fd.as_raw_fd(), libc::POLLIN, Token::Stderr);
            }
            if let Some(fd) = &self.pty {
                let out = if self.stdin_buf.is_empty() {
                    0
                } else {
                    libc::POLLOUT
                };
                add(fd.as_raw_fd(), libc::POLLIN | out, Token::Pty);
            }
        }
        if let Some(fd) = &self.io.stdin {
            if !self.stdin_buf.is_empty() {
                add(fd.as_raw_fd(), libc::POLLOUT, Token::Stdin);
            }
        }
        let stdin_room = self.stdin_buf.len() < STDIN_QUEUE_MAX;
        for (i, c) in self.clients.iter().enumerate() {
            let mut ev = 0;
            if c.wants_read() && (stdin_room || !matches!(c.kind, Kind::Attach { stdin: true, .. }))
            {
                ev |= libc::POLLIN;
            }
            if c.queued() > 0 {
                ev |= libc::POLLOUT;
            }
            add(c.sock.as_raw_fd(), ev, Token::Client(i));
        }
        (fds, toks)
    }

    fn timeout_ms(&self) -> i32 {
        let deadline = match self.phase {
            Phase::Draining(d) | Phase::Done(d) => d,
            _ => return -1,
        };
        let left = deadline.saturating_duration_since(Instant::now());
        (left.as_millis() as i32).saturating_add(1)
    }

    fn dispatch(&mut self, tok: Token, revents: i16) {
        match tok {
            Token::Signal => self.on_signals(),
            Token::Listener => self.accept(),
            Token::Stdout => self.on_output(Stream::Stdout),
            Token::Stderr => self.on_output(Stream::Stderr),
            Token::Pty => {
                if revents & libc::POLLOUT != 0 {
                    self.flush_stdin();
                }
                if revents & !libc::POLLOUT != 0 {
                    self.on_output(Stream::Stdout);
                }
            }
            Token::Stdin => self.flush_stdin(),
            Token::Client(i) => self.on_client(i, revents),
        }
    }

    fn advance(&mut self) {
        if let Phase::Draining(deadline) = self.phase {
            let closed = self.io.stdout.is_none() && self.io.stderr.is_none() && self.pty.is_none();
            if closed || Instant::now() >= deadline {
                self.finish();
            }
        }
    }

    // --- signals and the process's end ---

    fn on_signals(&mut self) {
        loop {
            match sys::read_signal(&self.sigfd) {
                Ok(Some(libc::SIGCHLD)) => self.reap(),
                Ok(Some(sig)) => self.forward(sig),
                Ok(None) => return,
                Err(e) => {
                    tracing::warn!(error = %e, "reading signalfd");
                    return;
                }
            }
        }
    }

    fn forward(&mut self, sig: i32) {
        if self.exit.is_some() {
            return;
        }
        if self.pid <= 0 {
            // An exec that never started: there is nothing to supervise.
            if matches!(
                sig,
                libc::SIGTERM | libc::SIGINT | libc::SIGHUP | libc::SIGQUIT
            ) {
                tracing::info!(sig, "terminated before start");
                self.abandon();
            }
            return;
        }
        tracing::debug!(sig, pid = self.pid, "forwarding signal");
        let _ = berth_runtime::sys::kill(self.pid, sig);
    }

    /// Exits without an exit status (exec mode, never started).
    fn abandon(&mut self) {
        self.listener = None;
        let _ = std::fs::remove_file(&self.cfg.socket);
        self.io.cleanup();
        for c in &mut self.clients {
            c.close_after_flush = true;
            if c.kind == Kind::Wait {
                c.queue_response(&Response::error("the process was never started"));
            }
        }
        self.phase = Phase::Done(Instant::now() + LINGER);
    }

    fn reap(&mut self) {
        loop {
            match berth_runtime::sys::waitpid(-1, libc::WNOHANG) {
                Ok((0, _)) | Err(_) => return,
                Ok((pid, status)) => {
                    if pid == self.pid && self.exit.is_none() {
                        self.on_exit(status);
                    }
                }
            }
        }
    }

    fn on_exit(&mut self, raw: i32) {
        let started = self.started_at.clone().unwrap_or_else(|| NEVER.into());
        let exit = ExitStatus::from_wait(self.pid, raw, started, false);
        tracing::info!(pid = self.pid, code = exit.exit_code, "process exited");
        self.exit = Some(exit);
        self.phase = Phase::Draining(Instant::now() + DRAIN);
        self.io.stdin = None;
        self.stdin_buf = Vec::new();
    }

    /// Writes everything down: log, OOM, exit file, runtime state; then lets clients go.
    fn finish(&mut self) {
        self.io.stdout = None;
        self.io.stderr = None;
        self.pty = None;
        if let Err(e) = self.log.flush_all() {
            tracing::warn!(error = %e, "flushing the log");
        }
        let mut exit = match self.exit.take() {
            Some(e) => e,
            None => return,
        };
        let oom_delta = oom_kills(&self.cfg) > self.oom_before;
        exit.oom_killed = match self.cfg.mode {
            Mode::Container => oom_delta,
            Mode::Exec => oom_delta && exit.signal == Some(libc::SIGKILL),
        };
        if let Err(e) = exit.write_atomic(&self.cfg.exit_file) {
            tracing::error!(error = %e, "writing the exit status");
        }
        if self.cfg.mode == Mode::Container {
            match Container::load(&self.cfg.runtime_root, &self.cfg.id) {
                Ok(c) => {
                    if let Err(e) = c.delete(true) {
                        tracing::warn!(error = %e, "deleting the runtime container");
                    }
                }
                Err(e) => tracing::warn!(error = %e, "loading the runtime container"),
            }
        }
        let answer = Response {
            exit: Some(exit.clone()),
            ..Response::ok()
        };
        self.exit = Some(exit);
        // Unlinked first so nobody new connects, then the queued connections are taken in:
        // closing a listener resets them.
        let _ = std::fs::remove_file(&self.cfg.socket);
        self.accept();
        self.listener = None;
        self.io.cleanup();
        for c in &mut self.clients {
            if c.kind == Kind::Wait {
                c.queue_response(&answer);
            }
            c.close_after_flush = true;
            c.flush();
        }
        self.phase = Phase::Done(Instant::now() + LINGER);
    }

    // --- output ---

    fn on_output(&mut self, stream: Stream) {
        let fd = match (stream, self.pty.as_ref()) {
            (_, Some(p)) => p.as_raw_fd(),
            (Stream::Stderr, None) => match &self.io.stderr {
                Some(f) => f.as_raw_fd(),
                None => return,
            },
            _ => match &self.io.stdout {
                Some(f) => f.as_raw_fd(),
                None => return,
            },
        };
        let mut buf = [0u8; 32 * 1024];
        match sys::read(fd, &mut buf) {
            Ok(0) => self.close_output(stream),
            Ok(n) => self.fan_out(stream, &buf[..n]),
            Err(e)
                if matches!(
                    e.kind(),
                    io::ErrorKind::WouldBlock | io::ErrorKind::Interrupted
                ) => {}
            Err(e) => {
                // EIO on a pty master: every slave is closed.
                if e.raw_os_error() != Some(libc::EIO) {
                    tracing::warn!(error = %e, ?stream, "reading output");
                }
                self.close_output(stream);
            }
        }
    }

    fn close_output(&mut self, stream: Stream) {
        if self.pty.is_some() {
            self.pty = None;
        } else if stream == Stream::Stderr {
            self.io.stderr = None;
        } else {
            self.io.stdout = None;
        }
        if let Err(e) = self.log.flush_stream(stream) {
            self.log_error(e);
        }
    }

    fn log_error(&mut self, e: berth_shim::Error) {
        if !self.log_failed {
            tracing::error!(error = %e, "writing the log (further errors not shown)");
            self.log_failed = true;
        }
    }

    fn fan_out(&mut self, stream: Stream, data: &[u8]) {
        if let Err(e) = self.log.write(stream, data) {
            self.log_error(e);
        }
        let tty = self.cfg.tty;
        for c in &mut self.clients {
            let Kind::Attach { stdout, stderr, .. } = c.kind else {
                continue;
            };
            let wanted = match stream {
                Stream::Stdout => stdout,
                Stream::Stderr => stderr,
                Stream::Stdin => false,
            };
            if !wanted || c.dead {
                continue;
            }
            if tty {
                c.out.extend_from_slice(data);
            } else {
                protocol::encode_frame(stream, data, &mut c.out);
            }
            c.flush();
            if c.queued() > CLIENT_QUEUE_MAX {
                tracing::warn!("dropping an attach client that does not keep up");
                c.dead = true;
            }
        }
    }

    // --- stdin ---

    fn feed_stdin(&mut self, data: &[u8]) {
        let open = if self.cfg.tty {
            self.pty.is_some()
        } else {
            self.io.stdin.is_some()
        };
        if !self.cfg.stdin || !open || self.stdin_eof {
            return;
        }
        self.stdin_buf.extend_from_slice(data);
        self.flush_stdin();
    }

    fn flush_stdin(&mut self) {
        let fd = if self.cfg.tty {
            self.pty.as_ref().map(|f| f.as_raw_fd())
        } else {
            self.io.stdin.as_ref().map(|f| f.as_raw_fd())
        };
        let Some(fd) = fd else {
            self.stdin_buf = Vec::new();
            return;
        };
        let mut done = 0;
        while done < self.stdin_buf.len() {
            match sys::write(fd, &self.stdin_buf[done..]) {
                Ok(n) => done += n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(_) => {
                    // The process closed its stdin.
                    self.stdin_buf = Vec::new();
                    if !self.cfg.tty {
                        self.io.stdin = None;
                    }
                    return;
                }
            }
        }
        self.stdin_buf.drain(..done);
        if self.stdin_buf.is_empty() {
            self.stdin_buf = Vec::new();
            if self.stdin_eof && !self.cfg.tty {
                self.io.stdin = None;
            }
        }
    }

    // --- clients ---

    fn accept(&mut self) {
        let Some(l) = &self.listener else { return };
        loop {
            match l.accept() {
                Ok((sock, _)) => {
                    if sock.set_nonblocking(true).is_err() {
                        continue;
                    }
                    self.clients.push(Client {
                        sock,
                        kind: Kind::Request,
                        inbuf: Vec::new(),
                        out: Vec::new(),
                        sent: 0,
                        read_closed: false,
                        detach_keys: Vec::new(),
                        matched: 0,
                        close_after_flush: false,
                        dead: false,
                    });
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => {
                    if e.kind() != io::ErrorKind::WouldBlock {
                        tracing::warn!(error = %e, "accept");
                    }
                    return;
                }
            }
        }
    }

    fn on_client(&mut self, i: usize, revents: i16) {
        if revents & libc::POLLOUT != 0 {
            self.clients[i].flush();
        }
        if revents & (libc::POLLIN | libc::POLLHUP | libc::POLLERR) == 0 || self.clients[i].dead {
            return;
        }
        if !self.clients[i].wants_read() {
            if revents & (libc::POLLHUP | libc::POLLERR) != 0 {
                self.clients[i].dead = true;
            }
            return;
        }
        let mut buf = [0u8; 16 * 1024];
        let r = self.clients[i].sock.read(&mut buf);
        match r {
            Ok(0) => self.on_client_eof(i),
            Ok(n) => self.on_client_data(i, &buf[..n]),
            Err(e)
                if matches!(
                    e.kind(),
                    io::ErrorKind::WouldBlock | io::ErrorKind::Interrupted
                ) => {}
            Err(_) => self.clients[i].dead = true,
        }
    }

    fn on_client_eof(&mut self, i: usize) {
        let c = &mut self.clients[i];
        c.read_closed = true;
        match c.kind {
            Kind::Request => c.dead = true,
            Kind::Attach { stdin: true, .. } if self.cfg.stdin_once => {
                // Docker: the client's EOF ends the process's stdin.
                self.stdin_eof = true;
                self.flush_stdin();
            }
            _ => {}
        }
    }

    fn on_client_data(&mut self, i: usize, data: &[u8]) {
        match self.clients[i].kind {
            Kind::Request => {
                let c = &mut self.clients[i];
                c.inbuf.extend_from_slice(data);
                let Some(nl) = c.inbuf.iter().position(|&b| b == b'\n') else {
                    if c.inbuf.len() > MAX_LINE {
                        c.queue_response(&Response::error("request line too long"));
                        c.kind = Kind::Answered;
                        c.close_after_flush = true;
                        c.flush();
                    }
                    return;
                };
                let rest = c.inbuf.split_off(nl + 1);
                let line = std::mem::take(&mut c.inbuf);
                match protocol::parse_line::<Request>(&line) {
                    Ok(req) => self.handle(i, req),
                    Err(e) => {
                        let c = &mut self.clients[i];
                        c.queue_response(&Response::error(format!("bad request: {e}")));
                        c.kind = Kind::Answered;
                        c.close_after_flush = true;
                    }
                }
                // Bytes sent right behind an attach request are already stdin.
                if !rest.is_empty()
                    && matches!(self.clients[i].kind, Kind::Attach { stdin: true, .. })
                {
                    self.typed(i, &rest);
                }
                self.clients[i].flush();
            }
            Kind::Attach { stdin: true, .. } => self.typed(i, data),
            _ => {}
        }
    }

    /// Stdin from attach client `i`: its detach keys drop the client and leave stdin open.
    fn typed(&mut self, i: usize, data: &[u8]) {
        let (pass, detached) = self.clients[i].filter_detach(data);
        if !pass.is_empty() {
            self.feed_stdin(&pass);
        }
        if detached {
            tracing::debug!("client detached with its detach keys");
            let c = &mut self.clients[i];
            c.read_closed = true;
            let _ = c.sock.shutdown(std::net::Shutdown::Both);
            c.dead = true;
        }
    }

    fn handle(&mut self, i: usize, req: Request) {
        tracing::debug!(?req, "request");
        let resp = match req {
            Request::Attach {
                stdin,
                stdout,
                stderr,
                detach_keys,
            } => {
                let c = &mut self.clients[i];
                c.detach_keys = detach_keys;
                c.kind = Kind::Attach {
                    stdin,
                    stdout,
                    stderr,
                };
                c.queue_response(&Response::ok());
                if matches!(self.phase, Phase::Done(_)) {
                    c.close_after_flush = true;
                }
                return;
            }
            Request::Wait => {
                let c = &mut self.clients[i];
                if matches!(self.phase, Phase::Done(_)) {
                    c.queue_response(&Response {
                        exit: self.exit.clone(),
                        ..Response::ok()
                    });
                    c.kind = Kind::Answered;
                    c.close_after_flush = true;
                } else {
                    c.kind = Kind::Wait;
                }
                return;
            }
            Request::Start => self.start(),
            Request::Resize { height, width } => self.resize(height, width),
            Request::Kill { signal, all } => self.kill(signal, all),
            Request::Pause => self.container_op(|c| c.pause()),
            Request::Resume => self.container_op(|c| c.resume()),
            Request::State => self.state(),
        };
        let c = &mut self.clients[i];
        c.queue_response(&resp);
        c.kind = Kind::Answered;
        c.close_after_flush = true;
    }

    // --- requests ---

    fn start(&mut self) -> Response {
        if self.phase != Phase::Created {
            return Response::error("already started");
        }
        let r = match self.cfg.mode {
            Mode::Container => Container::load(&self.cfg.runtime_root, &self.cfg.id)
                .and_then(|c| c.start())
                .map_err(anyhow::Error::from),
            Mode::Exec => self.start_exec(),
        };
        match r {
            Ok(()) => {
                self.started_at = Some(now());
                self.phase = Phase::Running;
                tracing::info!(pid = self.pid, "started");
                sys::trim_heap();
                sys::drop_clean_file_pages();
                Response::with_pid(self.pid)
            }
            Err(e) => {
                let msg = format!("{e:#}");
                tracing::warn!(error = %msg, "start failed");
                if self.cfg.mode == Mode::Exec && self.pid <= 0 {
                    self.exec_failed(&msg);
                }
                Response::error(msg)
            }
        }
    }

    fn start_exec(&mut self) -> Result<()> {
        let c = Container::load(&self.cfg.runtime_root, &self.cfg.id)?;
        let process = self
            .cfg
            .process
            .clone()
            .context("exec mode without a process")?;
        let opts = ExecOptions {
            process,
            console_socket: self.io.console_path(),
            detach: true,
            pid_file: None,
        };
        self.oom_before = c.stats().map(|s| s.oom_kills).unwrap_or(0);
        let r = self.io.with_child_stdio(|| c.exec(&opts));
        self.io.release_child();
        self.pid = r??;
        if self.cfg.tty {
            let master = self.io.receive_master()?;
            if let Some((h, w)) = self.pending_size.take() {
                let _ = berth_runtime::sys::set_winsize(master.as_raw_fd(), h, w);
            }
            self.pty = Some(master);
        }
        Ok(())
    }

    /// An exec that could not run ends like Docker's: 127 when the program is missing, else 126.
    fn exec_failed(&mut self, msg: &str) {
        let code = if msg.contains("No such file") || msg.contains("not found") {
            127
        } else {
            126
        };
        self.exit = Some(ExitStatus::from_wait(0, code << 8, NEVER.into(), false));
        self.io.stdin = None;
        self.io.stdout = None;
        self.io.stderr = None;
        self.phase = Phase::Draining(Instant::now());
    }

    fn resize(&mut self, height: u16, width: u16) -> Response {
        if !self.cfg.tty {
            return Response::error("the process has no terminal");
        }
        match &self.pty {
            Some(m) => match berth_runtime::sys::set_winsize(m.as_raw_fd(), height, width) {
                Ok(()) => Response::ok(),
                Err(e) => Response::error(format!("resize: {e}")),
            },
            None => {
                self.pending_size = Some((height, width));
                Response::ok()
            }
        }
    }

    fn kill(&mut self, signal: i32, all: bool) -> Response {
        if self.exit.is_some() {
            return Response::error("the process has already exited");
        }
        let r = match self.cfg.mode {
            Mode::Container => Container::load(&self.cfg.runtime_root, &self.cfg.id)
                .and_then(|c| c.kill(signal, all))
                .map_err(|e| e.to_string()),
            Mode::Exec if self.pid <= 0 => Err("the exec process has not been started".into()),
            Mode::Exec => {
                berth_runtime::sys::kill(self.pid, signal).map_err(|e| format!("kill: {e}"))
            }
        };
        match r {
            Ok(()) => Response::ok(),
            Err(e) => Response::error(e),
        }
    }

    fn container_op(
        &mut self,
        op: impl FnOnce(&Container) -> berth_runtime::Result<()>,
    ) -> Response {
        if self.exit.is_some() {
            return Response::error("the process has already exited");
        }
        match Container::load(&self.cfg.runtime_root, &self.cfg.id).and_then(|c| op(&c)) {
            Ok(()) => Response::ok(),
            Err(e) => Response::error(e.to_string()),
        }
    }

    fn state(&self) -> Response {
        let status = if self.exit.is_some() {
            ProcessStatus::Stopped
        } else {
            let container = Container::load(&self.cfg.runtime_root, &self.cfg.id)
                .map(|c| c.status())
                .unwrap_or(Status::Stopped);
            match (self.phase, container) {
                (_, Status::Paused) => ProcessStatus::Paused,
                (Phase::Created, _) => ProcessStatus::Created,
                _ => ProcessStatus::Running,
            }
        };
        Response {
            pid: Some(self.pid),
            status: Some(status),
            exit: self.exit.clone(),
            ..Response::ok()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn client(keys: &[u8]) -> Client {
        let (sock, _) = UnixStream::pair().unwrap();
        Client {
            sock,
            kind: Kind::Request,
            inbuf: Vec::new(),
            out: Vec::new(),
            sent: 0,
            read_closed: false,
            close_after_flush: false,
            dead: false,
            detach_keys: keys.to_vec(),
            matched: 0,
        }
    }

    #[test]
    fn detach_keys_split_across_reads() {
        let mut c = client(&[0x10, 0x11]);
        assert_eq!(c.filter_detach(b"ab\x10"), (b"ab".to_vec(), false));
        assert_eq!(c.filter_detach(b"\x11zz"), (Vec::new(), true));
    }

    #[test]
    fn a_broken_sequence_is_passed_through() {
        let mut c = client(&[0x10, 0x11]);
        assert_eq!(c.filter_detach(b"\x10x"), (b"\x10x".to_vec(), false));
        assert_eq!(c.filter_detach(b"\x10\x10\x11"), (b"\x10".to_vec(), true));
        let mut none = client(&[]);
        assert_eq!(
            none.filter_detach(b"\x10\x11"),
            (b"\x10\x11".to_vec(), false)
        );
    }
}
