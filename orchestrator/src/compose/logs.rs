//! The log multiplexer of `compose logs` and attached `up`: several containers' output as
//! `name  | line`, names padded to the longest and coloured per container as compose v2 does,
//! each line written whole so concurrent containers never interleave mid-line. Timestamps
//! (`-t`, `up --timestamps`) come from the engine: set `LogsOptions::timestamps`.

use std::collections::HashMap;
use std::io::{IsTerminal, Write};
use std::sync::{Arc, Mutex, PoisonError};

use berth_client::containers::LogsOptions;
use berth_client::{Client, Demuxer};
use tokio::sync::mpsc;
use tokio::task::JoinSet;

use super::containers::ProjectContainer;
use super::error::{Context, Result};
use super::labels;

/// compose v2's colour cycle (cyan, yellow, green, magenta, blue, then their bold variants).
const RAINBOW: [&str; 10] = [
    "36", "33", "32", "35", "34", "36;1", "33;1", "32;1", "35;1", "34;1",
];

/// How a [`LogPrinter`] decorates lines.
#[derive(Clone, Copy, Debug)]
pub struct PrinterOptions {
    /// Colour the prefixes.
    pub color: bool,
    /// Prefix lines with the container's name (`--no-log-prefix` turns it off).
    pub prefix: bool,
}

impl PrinterOptions {
    /// compose's defaults for standard output: colour on a terminal unless `no_color`.
    pub fn for_stdout(no_color: bool, no_prefix: bool) -> Self {
        Self {
            color: !no_color && std::io::stdout().is_terminal(),
            prefix: !no_prefix,
        }
    }
}

struct Presenter {
    color: Option<&'static str>,
}

struct PrinterState {
    out: Box<dyn Write + Send>,
    presenters: HashMap<String, Presenter>,
    width: usize,
    next_color: usize,
    /// A write failed: nobody reads any more.
    closed: bool,
}

/// Writes containers' lines with compose's `name  | ` prefix; cheap to clone and shared by
/// every follower task.
#[derive(Clone)]
pub struct LogPrinter {
    opts: PrinterOptions,
    state: Arc<Mutex<PrinterState>>,
}

impl LogPrinter {
    /// A printer writing to `out`.
    pub fn new(out: Box<dyn Write + Send>, opts: PrinterOptions) -> Self {
        Self {
            opts,
            state: Arc::new(Mutex::new(PrinterState {
                out,
                presenters: HashMap::new(),
                width: 0,
                next_color: 0,
                closed: false,
            })),
        }
    }

    /// A printer on standard output.
    pub fn stdout(opts: PrinterOptions) -> Self {
        Self::new(Box::new(std::io::stdout()), opts)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, PrinterState> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Makes a name known so every prefix is padded to it from the first line on, and gives
    /// it the next colour of the cycle.
    pub fn register(&self, name: &str) {
        let mut st = self.lock();
        register_locked(&mut st, self.opts, name);
    }

    /// The prefix `name` gets now (`web-1  | `, coloured when enabled).
    pub fn prefix(&self, name: &str) -> String {
        let mut st = self.lock();
        prefix_locked(&mut st, self.opts, name)
    }

    /// Writes one line (without its newline) for `name`; false once the output is gone
    /// (`| head` closed it), so followers can stop instead of streaming into nothing.
    pub fn line(&self, name: &str, text: &[u8]) -> bool {
        let mut st = self.lock();
        let prefix = prefix_locked(&mut st, self.opts, name);
        let mut buf = Vec::with_capacity(prefix.len() + text.len() + 1);
        buf.extend_from_slice(prefix.as_bytes());
        buf.extend_from_slice(text);
        buf.push(b'\n');
        let ok = st.out.write_all(&buf).and_then(|()| st.out.flush()).is_ok();
        st.closed |= !ok;
        ok
    }

    /// Whether the output has gone away (a write failed).
    pub fn is_closed(&self) -> bool {
        self.lock().closed
    }

    /// Writes a status line about `name` in its colour, unprefixed (`web-1 exited with code
    /// 0`), as compose's `Status`.
    pub fn status(&self, name: &str, msg: &str) {
        let mut st = self.lock();
        register_locked(&mut st, self.opts, name);
        let text = format!("{name} {msg}");
        let line = match st.presenters.get(name).and_then(|p| p.color) {
            Some(c) => format!("\x1b[{c}m{text}\x1b[0m\n"),
            None => format!("{text}\n"),
        };
        let _ = st.out.write_all(line.as_bytes());
        let _ = st.out.flush();
    }
}

fn register_locked(st: &mut PrinterState, opts: PrinterOptions, name: &str) {
    if st.presenters.contains_key(name) {
        return;
    }
    let color = opts.color.then(|| {
        let c = RAINBOW[st.next_color % RAINBOW.len()];
        st.next_color += 1;
        c
    });
    st.presenters.insert(name.to_string(), Presenter { color });
    st.width = st.width.max(name.chars().count() + 1);
}

fn prefix_locked(st: &mut PrinterState, opts: PrinterOptions, name: &str) -> String {
    if !opts.prefix {
        return String::new();
    }
    register_locked(st, opts, name);
    let padded = format!("{name:<width$} | ", width = st.width);
    match st.presenters.get(name).and_then(|p| p.color) {
        Some(c) => format!("\x1b[{c}m{padded}\x1b[0m"),
        None => padded,
    }
}

/// The name compose v2 shows for a container: without the `project-` prefix when it has the
/// default `project-service-N` name, else its own `container_name`.
pub fn display_name(c: &ProjectContainer) -> String {
    let project = c
        .raw
        .get("Labels")
        .and_then(|l| l.get(labels::PROJECT))
        .and_then(serde_json::Value::as_str)
        .unwrap_or("");
    let default = format!("{project}-{}-{}", c.service, c.number);
    if !project.is_empty() && c.name == default {
        c.name[project.len() + 1..].to_string()
    } else {
        c.name.clone()
    }
}

/// Streams one container's log through the printer until the engine ends it (at once without
/// `follow`, when the container stops with it).
pub async fn stream(
    client: &Client,
    c: &ProjectContainer,
    opts: &LogsOptions,
    printer: &LogPrinter,
) -> Result<()> {
    let name = display_name(c);
    let tty = client
        .container_inspect(&c.id, false)
        .await
        .ctx(|| format!("inspecting container {}", c.name))?
        .pointer("/Config/Tty")
        .and_then(serde_json::Value::as_bool)
        .unwrap_or(false);
    let mut body = client
        .container_logs(&c.id, opts)
        .await
        .ctx(|| format!("reading the logs of {}", c.name))?;
    let mut demux = Demuxer::new();
    // One partial line per stream, so stdout and stderr lines stay whole.
    let mut partial: [Vec<u8>; 2] = [Vec::new(), Vec::new()];
    let emit = |buf: &mut Vec<u8>, data: &[u8]| {
        buf.extend_from_slice(data);
        while let Some(i) = buf.iter().position(|&b| b == b'\n') {
            let line: Vec<u8> = buf.drain(..=i).collect();
            let line = &line[..line.len() - 1];
            if !printer.line(&name, line.strip_suffix(b"\r").unwrap_or(line)) {
                return false;
            }
        }
        true
    };
    loop {
        let chunk = body
            .next()
            .await
            .ctx(|| format!("reading the logs of {}", c.name))?;
        let Some(chunk) = chunk else { break };
        if tty {
            if !emit(&mut partial[0], &chunk) {
                return Ok(());
            }
            continue;
        }
        let frames = demux
            .push(&chunk)
            .ctx(|| format!("reading the logs of {}", c.name))?;
        for (st, data) in frames {
            let i = usize::from(st == berth_client::StdStream::Stderr);
            if !emit(&mut partial[i], &data) {
                return Ok(());
            }
        }
    }
    for p in partial.iter().filter(|p| !p.is_empty()) {
        printer.line(&name, p);
    }
    Ok(())
}

/// Streams several containers' logs concurrently until every stream ends.
pub async fn follow(
    client: &Client,
    containers: Vec<ProjectContainer>,
    opts: LogsOptions,
    printer: LogPrinter,
) -> Result<()> {
    // Nothing is added later: the sender is dropped at once.
    let (tx, rx) = mpsc::unbounded_channel();
    drop(tx);
    follow_added(client, containers, opts, printer, rx).await
}

/// As [`follow`], also streaming every container sent on `added` (attached `up` sends them
/// as it creates them); returns once `added` is closed and every stream has ended. The
/// first error is returned after the other streams end.
pub async fn follow_added(
    client: &Client,
    containers: Vec<ProjectContainer>,
    opts: LogsOptions,
    printer: LogPrinter,
    mut added: mpsc::UnboundedReceiver<ProjectContainer>,
) -> Result<()> {
    for c in &containers {
        printer.register(&display_name(c));
    }
    let mut tasks = JoinSet::new();
    let spawn = |tasks: &mut JoinSet<Result<()>>, c: ProjectContainer| {
        let (client, opts, printer) = (client.clone(), opts.clone(), printer.clone());
        tasks.spawn(async move { stream(&client, &c, &opts, &printer).await });
    };
    for c in containers {
        spawn(&mut tasks, c);
    }
    let mut first_err = None;
    let mut open = true;
    loop {
        tokio::select! {
            c = added.recv(), if open => match c {
                Some(c) => {
                    printer.register(&display_name(&c));
                    spawn(&mut tasks, c);
                }
                None => open = false,
            },
            r = tasks.join_next(), if !tasks.is_empty() => {
                if printer.is_closed() {
                    // Nobody reads: the other streams (and the JoinSet) are dropped.
                    break;
                }
                match r {
                    Some(Ok(Err(e))) => {
                        tracing::debug!("log stream ended: {e}");
                        first_err.get_or_insert(e);
                    }
                    Some(Err(e)) => tracing::warn!("log follower panicked: {e}"),
                    _ => {}
                }
            }
            else => break,
        }
    }
    first_err.map_or(Ok(()), Err)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Clone, Default)]
    struct Sink(Arc<Mutex<Vec<u8>>>);

    impl Write for Sink {
        fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(b);
            Ok(b.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    fn printer(color: bool, prefix: bool) -> (Sink, LogPrinter) {
        let sink = Sink::default();
        let p = LogPrinter::new(Box::new(sink.clone()), PrinterOptions { color, prefix });
        (sink, p)
    }

    fn text(s: &Sink) -> String {
        String::from_utf8(s.0.lock().unwrap().clone()).unwrap()
    }

    #[test]
    fn prefixes_are_padded_to_the_longest_name() {
        let (sink, p) = printer(false, true);
        p.register("web-1");
        p.register("worker-1");
        p.line("web-1", b"hello");
        p.line("worker-1", b"busy");
        assert_eq!(text(&sink), "web-1     | hello\nworker-1  | busy\n");
    }

    #[test]
    fn colours_cycle_and_no_prefix_is_raw() {
        let (sink, p) = printer(true, true);
        p.line("a", b"x");
        p.line("b", b"y");
        p.status("a", "exited with code 0");
        assert_eq!(
            text(&sink),
            "\x1b[36ma  | \x1b[0mx\n\x1b[33mb  | \x1b[0my\n\x1b[36ma exited with code 0\x1b[0m\n"
        );
        let (sink, p) = printer(true, false);
        p.line("a", b"x");
        assert_eq!(text(&sink), "x\n");
    }
}
