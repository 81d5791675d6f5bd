//! berth-shim: supervises one container process (or one exec'd process) for berthd.
//!
//! `berth-shim /path/shim.json`: creates the container through berth_runtime, answers one JSON
//! line on stdout (`{"ok":true,"pid":N}` or `{"ok":false,"error":...}`), then serves the
//! control socket from a single poll loop until the process has exited and everything is
//! written down. It outlives berthd.

mod shim;
mod stdio;
mod sys;

use std::fs::File;
use std::io::Write;
use std::path::Path;

use berth_shim::Response;

fn main() {
    std::process::exit(real_main());
}

fn real_main() -> i32 {
    let args: Vec<std::ffi::OsString> = std::env::args_os().skip(1).collect();
    if args.len() != 1 {
        eprintln!("usage: berth-shim /path/shim.json");
        return 2;
    }
    sys::ignore_sigpipe();
    // The handshake goes to the original stdout; fd 1 itself is pointed at /dev/null early.
    let handshake = match sys::dup_cloexec(1) {
        Ok(fd) => File::from(fd),
        Err(e) => {
            eprintln!("berth-shim: stdout: {e}");
            return 1;
        }
    };
    match shim::Shim::setup(Path::new(&args[0])) {
        Ok(mut s) => {
            answer(handshake, &Response::with_pid(s.handshake_pid()));
            s.run()
        }
        Err(e) => {
            tracing::error!(error = %format!("{e:#}"), "setup failed");
            answer(handshake, &Response::error(format!("{e:#}")));
            1
        }
    }
}

/// Writes the handshake line and closes the pipe; berthd may already be gone.
fn answer(mut out: File, r: &Response) {
    let mut line = serde_json::to_vec(r).unwrap_or_else(|_| b"{\"ok\":false}".to_vec());
    line.push(b'\n');
    if let Err(e) = out.write_all(&line) {
        tracing::warn!(error = %e, "handshake not delivered");
    }
}
