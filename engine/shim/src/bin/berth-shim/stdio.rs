//! The process's stdio: pipes (or a pty received over the console socket) whose far ends the
//! process inherits as fds 0, 1 and 2.

use std::fs::File;
use std::io;
use std::os::fd::{AsRawFd, OwnedFd};
use std::os::unix::net::UnixListener;
use std::path::PathBuf;

use anyhow::{Context, Result};
use berth_runtime::sys as rsys;
use berth_shim::ShimConfig;

use crate::sys;

/// Both sides of the process's stdio.
pub struct Stdio {
    /// What the process gets as fds 0, 1 and 2; dropped once it has them.
    child: Option<[OwnedFd; 3]>,
    /// Our end of the process's stdin (non-tty, `stdin` set).
    pub stdin: Option<OwnedFd>,
    /// Our end of its stdout (non-tty).
    pub stdout: Option<OwnedFd>,
    /// Our end of its stderr (non-tty).
    pub stderr: Option<OwnedFd>,
    /// The socket the runtime hands the pty master over (tty).
    console: Option<(UnixListener, PathBuf)>,
}

fn dev_null(write: bool) -> io::Result<OwnedFd> {
    let f = std::fs::OpenOptions::new()
        .read(!write)
        .write(write)
        .open("/dev/null")?;
    Ok(OwnedFd::from(f))
}

impl Stdio {
    /// Pipes for a non-tty process, or the console socket for a tty one.
    pub fn new(cfg: &ShimConfig) -> Result<Stdio> {
        if cfg.tty {
            let name = cfg
                .socket
                .file_stem()
                .map(|s| s.to_string_lossy().into_owned())
                .unwrap_or_else(|| "shim".into());
            let path = cfg.dir().join(format!("{name}-console.sock"));
            let _ = std::fs::remove_file(&path);
            let l = UnixListener::bind(&path)
                .with_context(|| format!("bind console socket {}", path.display()))?;
            let child = [dev_null(false)?, dev_null(true)?, dev_null(true)?];
            return Ok(Stdio {
                child: Some(child),
                stdin: None,
                stdout: None,
                stderr: None,
                console: Some((l, path)),
            });
        }
        let (in_child, in_ours) = if cfg.stdin {
            let (r, w) = sys::pipe().context("stdin pipe")?;
            sys::set_nonblocking(w.as_raw_fd())?;
            (r, Some(w))
        } else {
            (dev_null(false).context("open /dev/null")?, None)
        };
        let (out_r, out_w) = sys::pipe().context("stdout pipe")?;
        let (err_r, err_w) = sys::pipe().context("stderr pipe")?;
        sys::set_nonblocking(out_r.as_raw_fd())?;
        sys::set_nonblocking(err_r.as_raw_fd())?;
        Ok(Stdio {
            child: Some([in_child, out_w, err_w]),
            stdin: in_ours,
            stdout: Some(out_r),
            stderr: Some(err_r),
            console: None,
        })
    }

    /// The console socket path to give the runtime (tty only).
    pub fn console_path(&self) -> Option<PathBuf> {
        self.console.as_ref().map(|(_, p)| p.clone())
    }

    /// Runs `f` with the process's stdio on fds 0, 1 and 2, so that the init or exec process
    /// berth_runtime spawns inherits them (it marks every other fd close-on-exec), then puts
    /// ours back.
    pub fn with_child_stdio<T>(&self, f: impl FnOnce() -> T) -> Result<T> {
        let Some(child) = &self.child else {
            anyhow::bail!("the process's stdio was already handed over");
        };
        let saved = [
            sys::dup_cloexec(0).context("save fd 0")?,
            sys::dup_cloexec(1).context("save fd 1")?,
            sys::dup_cloexec(2).context("save fd 2")?,
        ];
        for (fd, src) in child.iter().enumerate() {
            rsys::dup2(src.as_raw_fd(), fd as i32).context("dup2 stdio")?;
        }
        let r = f();
        for (fd, src) in saved.iter().enumerate() {
            rsys::dup2(src.as_raw_fd(), fd as i32).context("restore stdio")?;
        }
        Ok(r)
    }

    /// Drops our copies of the process's ends, so its exit shows as EOF on ours.
    pub fn release_child(&mut self) {
        self.child = None;
    }

    /// Takes the pty master the container's process sent over the console socket.
    pub fn receive_master(&mut self) -> Result<OwnedFd> {
        let (l, path) = self
            .console
            .take()
            .context("no console socket (not a tty)")?;
        let _ = std::fs::remove_file(&path);
        // The runtime connected during create/exec and the process sent the master before
        // reporting ready, so the connection is already queued.
        let (conn, _) = l.accept().context("accept on console socket")?;
        let master = rsys::recv_fd(conn.as_raw_fd()).context("receive pty master")?;
        sys::set_nonblocking(master.as_raw_fd())?;
        Ok(master)
    }

    /// Removes the console socket file if it is still there.
    pub fn cleanup(&mut self) {
        if let Some((_, p)) = self.console.take() {
            let _ = std::fs::remove_file(p);
        }
    }
}

/// Points fds 0 and 1 at /dev/null and fd 2 at `log`: berthd's pipes are never written.
pub fn detach_std_fds(log: &File) -> Result<()> {
    let null = dev_null(true).context("open /dev/null")?;
    let null_in = dev_null(false).context("open /dev/null")?;
    rsys::dup2(null_in.as_raw_fd(), 0).context("dup2 fd 0")?;
    rsys::dup2(null.as_raw_fd(), 1).context("dup2 fd 1")?;
    rsys::dup2(log.as_raw_fd(), 2).context("dup2 fd 2")?;
    Ok(())
}
