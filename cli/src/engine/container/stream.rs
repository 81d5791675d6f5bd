//! The attached streams of `run`, `start -a`, `attach` and `exec`: stdin into the hijacked
//! connection, its output (raw with a TTY, 8-byte framed without) to stdout and stderr, the
//! local terminal in raw mode, SIGWINCH to resize, and the detach key sequence.

use anyhow::{Result, bail};
use berth_client::{Client, Demuxer, Hijacked, StdStream};
use std::io::{IsTerminal, Read, Write};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::{mpsc, oneshot};

/// Docker's default detach sequence.
pub const DEFAULT_DETACH_KEYS: &str = "ctrl-p,ctrl-q";

/// Parses `ctrl-p,ctrl-q`-style detach keys into bytes.
pub fn parse_detach_keys(s: &str) -> Result<Vec<u8>> {
    let mut out = Vec::new();
    for key in s.split(',') {
        let k = key.trim();
        if let Some(c) = k.strip_prefix("ctrl-") {
            let b = match c.as_bytes() {
                [b @ b'a'..=b'z'] => b - b'a' + 1,
                [b'@'] => 0,
                [b'['] => 27,
                [b'\\'] => 28,
                [b']'] => 29,
                [b'^'] => 30,
                [b'_'] => 31,
                _ => bail!("Invalid escape keys ({s}) provided"),
            };
            out.push(b);
        } else if k.len() == 1 {
            out.push(k.as_bytes()[0]);
        } else {
            bail!("Invalid escape keys ({s}) provided");
        }
    }
    Ok(out)
}

/// Finds the detach sequence in stdin chunks that may split it, holding back a partial match.
#[derive(Debug)]
pub struct EscapeProxy {
    keys: Vec<u8>,
    matched: usize,
}

impl EscapeProxy {
    /// A proxy for this key sequence.
    pub fn new(keys: Vec<u8>) -> Self {
        Self { keys, matched: 0 }
    }

    /// The bytes to forward, and whether the sequence is complete (forward them, then stop).
    pub fn feed(&mut self, chunk: &[u8]) -> (Vec<u8>, bool) {
        let mut out = Vec::with_capacity(chunk.len());
        if self.keys.is_empty() {
            out.extend_from_slice(chunk);
            return (out, false);
        }
        for &b in chunk {
            if b == self.keys[self.matched] {
                self.matched += 1;
                if self.matched == self.keys.len() {
                    self.matched = 0;
                    return (out, true);
                }
            } else {
                out.extend_from_slice(&self.keys[..self.matched]);
                self.matched = 0;
                if b == self.keys[0] {
                    self.matched = 1;
                } else {
                    out.push(b);
                }
            }
        }
        (out, false)
    }
}

/// The local terminal in raw mode until dropped.
pub struct RawTerminal {
    saved: rustix::termios::Termios,
}

impl RawTerminal {
    /// Puts stdin in raw mode when it is a terminal.
    pub fn stdin() -> Option<Self> {
        let stdin = std::io::stdin();
        if !stdin.is_terminal() {
            return None;
        }
        let saved = rustix::termios::tcgetattr(&stdin).ok()?;
        let mut raw = saved.clone();
        // The container's TTY already turns \n into \r\n, so no local output processing.
        raw.make_raw();
        rustix::termios::tcsetattr(&stdin, rustix::termios::OptionalActions::Now, &raw).ok()?;
        Some(Self { saved })
    }
}

impl Drop for RawTerminal {
    fn drop(&mut self) {
        let _ = rustix::termios::tcsetattr(
            std::io::stdin(),
            rustix::termios::OptionalActions::Now,
            &self.saved,
        );
    }
}

/// The size (rows, columns) of the terminal on stdout.
pub fn terminal_size() -> Option<(u16, u16)> {
    let out = std::io::stdout();
    if !out.is_terminal() {
        return None;
    }
    let ws = rustix::termios::tcgetwinsize(&out).ok()?;
    (ws.ws_row > 0 && ws.ws_col > 0).then_some((ws.ws_row, ws.ws_col))
}

/// What a TTY size belongs to.
#[derive(Debug, Clone)]
pub enum ResizeTarget {
    /// A container's TTY.
    Container(String),
    /// An exec's TTY.
    Exec(String),
}

async fn resize(c: &Client, t: &ResizeTarget) {
    let Some((h, w)) = terminal_size() else {
        return;
    };
    let r = match t {
        ResizeTarget::Container(id) => c.container_resize(id, h, w).await,
        ResizeTarget::Exec(id) => c.exec_resize(id, h, w).await,
    };
    if let Err(e) = r {
        tracing::debug!(error = %e, "resize");
    }
}

/// Sends the terminal size now and on every SIGWINCH, until the returned task is aborted.
/// `nudge` first sends a size one larger so a process already running redraws (`attach`).
pub fn monitor_size(c: &Client, t: ResizeTarget, nudge: bool) -> tokio::task::JoinHandle<()> {
    let c = c.clone();
    tokio::spawn(async move {
        if nudge
            && let (Some((h, w)), ResizeTarget::Container(id)) = (terminal_size(), &t)
            && let Err(e) = c.container_resize(id, h + 1, w + 1).await
        {
            tracing::debug!(error = %e, "resize");
        }
        resize(&c, &t).await;
        let Ok(mut sig) =
            tokio::signal::unix::signal(tokio::signal::unix::SignalKind::window_change())
        else {
            return;
        };
        while sig.recv().await.is_some() {
            resize(&c, &t).await;
        }
    })
}

/// Reads stdin on a plain thread (a blocked read must not keep the runtime from ending).
pub fn stdin_chunks() -> mpsc::Receiver<Vec<u8>> {
    let (tx, rx) = mpsc::channel(16);
    std::thread::spawn(move || {
        let mut stdin = std::io::stdin();
        let mut buf = vec![0u8; 32 * 1024];
        loop {
            match stdin.read(&mut buf) {
                Ok(0) | Err(_) => break,
                Ok(n) => {
                    if tx.blocking_send(buf[..n].to_vec()).is_err() {
                        break;
                    }
                }
            }
        }
    });
    rx
}

/// How an attached session ended.
#[derive(Debug, PartialEq, Eq)]
pub enum End {
    /// The output stream ended (the process exited or the daemon closed it).
    Eof,
    /// The user typed the detach sequence.
    Detached,
}

/// Copies stdin (when given) into the connection and its output to stdout/stderr until the
/// output ends or the detach keys are typed.
pub async fn pump(
    conn: Hijacked,
    tty: bool,
    stdin: Option<mpsc::Receiver<Vec<u8>>>,
    detach_keys: Option<Vec<u8>>,
) -> Result<End> {
    let (mut rd, mut wr) = tokio::io::split(conn);
    let (detach_tx, detach_rx) = oneshot::channel::<()>();
    let input = stdin.map(|mut rx| {
        tokio::spawn(async move {
            let mut proxy = EscapeProxy::new(if tty {
                detach_keys.unwrap_or_default()
            } else {
                Vec::new()
            });
            while let Some(chunk) = rx.recv().await {
                let (fwd, escaped) = proxy.feed(&chunk);
                if !fwd.is_empty() && wr.write_all(&fwd).await.is_err() {
                    return;
                }
                let _ = wr.flush().await;
                if escaped {
                    let _ = detach_tx.send(());
                    return;
                }
            }
            // stdin ended: close our write side so the process sees EOF, as docker does.
            let _ = wr.shutdown().await;
        })
    });
    let output = async {
        let mut demux = Demuxer::new();
        let mut buf = vec![0u8; 32 * 1024];
        loop {
            let n = rd.read(&mut buf).await?;
            if n == 0 {
                return anyhow::Ok(());
            }
            if tty {
                let mut o = std::io::stdout().lock();
                o.write_all(&buf[..n])?;
                o.flush()?;
                continue;
            }
            for (s, data) in demux.push(&buf[..n])? {
                match s {
                    StdStream::Stderr => {
                        let mut e = std::io::stderr().lock();
                        e.write_all(&data)?;
                        e.flush()?;
                    }
                    _ => {
                        let mut o = std::io::stdout().lock();
                        o.write_all(&data)?;
                        o.flush()?;
                    }
                }
            }
        }
    };
    let end = tokio::select! {
        r = output => { r?; End::Eof }
        Ok(()) = detach_rx => End::Detached,
    };
    if let Some(t) = input {
        t.abort();
    }
    Ok(end)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn detach_keys() {
        assert_eq!(parse_detach_keys("ctrl-p,ctrl-q").unwrap(), [16, 17]);
        assert_eq!(parse_detach_keys("a,ctrl-[").unwrap(), [b'a', 27]);
        assert!(parse_detach_keys("ctrl-pp").is_err());
    }

    #[test]
    fn escape_across_chunks() {
        let mut p = EscapeProxy::new(vec![16, 17]);
        assert_eq!(p.feed(b"ab\x10"), (b"ab".to_vec(), false));
        assert_eq!(p.feed(b"c"), (b"\x10c".to_vec(), false));
        assert_eq!(p.feed(b"\x10"), (vec![], false));
        assert_eq!(p.feed(b"\x11rest"), (vec![], true));
        let mut p = EscapeProxy::new(vec![16, 17]);
        assert_eq!(p.feed(b"\x10\x10\x11"), (vec![16], true));
    }
}
