//! Talking to `berth-shim`: spawning it (with its one-line handshake) and the control socket's
//! request/response lines, asynchronously.

use super::ContainerError;
use berth_shim::protocol::{self, Request, Response};
use berth_shim::{ExitStatus, ShimConfig};
use std::io::BufRead;
use std::path::Path;
use std::process::{Command, Stdio};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::UnixStream;

/// Writes the shim config next to the socket, spawns the shim and reads its handshake; returns
/// the PID it reports (the init's, or 0 in exec mode). Blocking.
pub fn spawn(bin: &Path, cfg: &ShimConfig, cfg_path: &Path) -> Result<i32, ContainerError> {
    cfg.save(cfg_path)
        .map_err(|e| ContainerError::Shim(format!("write config: {e}")))?;
    let mut child = Command::new(bin)
        .arg(cfg_path)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .map_err(super::error::io_err("spawn", bin))?;
    let mut line = String::new();
    let read = child
        .stdout
        .take()
        .map(|o| std::io::BufReader::new(o).read_line(&mut line));
    // The shim stays our child until it exits: reap it from a small thread so it never
    // lingers as a zombie (after a daemon restart init or a subreaper reaps it instead).
    let pid = child.id();
    let _ = std::thread::Builder::new()
        .name(format!("reap-{pid}"))
        .stack_size(64 * 1024)
        .spawn(move || {
            let _ = child.wait();
        });
    match read {
        Some(Ok(n)) if n > 0 => {}
        _ => {
            return Err(ContainerError::Shim(
                "the shim exited without a handshake".into(),
            ));
        }
    }
    let r: Response = protocol::parse_line(line.as_bytes())
        .map_err(|e| ContainerError::Shim(format!("bad handshake {line:?}: {e}")))?;
    if !r.ok {
        return Err(ContainerError::Shim(
            r.error.unwrap_or_else(|| "the shim failed to start".into()),
        ));
    }
    Ok(r.pid.unwrap_or(0))
}

async fn read_line(s: &mut UnixStream) -> Result<Response, ContainerError> {
    let mut line = Vec::with_capacity(128);
    loop {
        let b = s
            .read_u8()
            .await
            .map_err(|e| ContainerError::Shim(format!("read answer: {e}")))?;
        if b == b'\n' {
            break;
        }
        line.push(b);
        if line.len() > protocol::MAX_LINE {
            return Err(ContainerError::Shim("answer too long".into()));
        }
    }
    protocol::parse_line(&line).map_err(|e| ContainerError::Shim(e.to_string()))
}

/// The answer line of a plain call, read in chunks (nothing follows it on the stream).
async fn read_answer(s: &mut UnixStream) -> Result<Response, ContainerError> {
    let mut line = Vec::with_capacity(256);
    let mut buf = [0u8; 4096];
    while !line.contains(&b'\n') {
        let n = s
            .read(&mut buf)
            .await
            .map_err(|e| ContainerError::Shim(format!("read answer: {e}")))?;
        if n == 0 {
            return Err(ContainerError::Shim("read answer: early eof".into()));
        }
        line.extend_from_slice(&buf[..n]);
        if line.len() > protocol::MAX_LINE + 1 {
            return Err(ContainerError::Shim("answer too long".into()));
        }
    }
    let end = line.iter().position(|b| *b == b'\n').unwrap_or(line.len());
    protocol::parse_line(&line[..end]).map_err(|e| ContainerError::Shim(e.to_string()))
}

/// Sends `req` and reads the answer line. The stream goes on after it only for attach, so a
/// plain call reads the answer in one go rather than a byte at a time.
async fn request(
    sock: &Path,
    req: &Request,
    stream_follows: bool,
) -> Result<(UnixStream, Response), ContainerError> {
    let mut s = UnixStream::connect(sock)
        .await
        .map_err(|e| ContainerError::Shim(format!("connect {}: {e}", sock.display())))?;
    let mut data = serde_json::to_vec(req).map_err(|e| ContainerError::Internal(e.to_string()))?;
    data.push(b'\n');
    s.write_all(&data)
        .await
        .map_err(|e| ContainerError::Shim(format!("send request: {e}")))?;
    let r = if stream_follows {
        read_line(&mut s).await?
    } else {
        read_answer(&mut s).await?
    };
    if !r.ok {
        return Err(ContainerError::Shim(
            r.error.unwrap_or_else(|| "request failed".into()),
        ));
    }
    Ok((s, r))
}

/// One request, one answer.
pub async fn call(sock: &Path, req: &Request) -> Result<Response, ContainerError> {
    request(sock, req, false).await.map(|(_, r)| r)
}

/// Opens an attach stream.
pub async fn attach(
    sock: &Path,
    stdin: bool,
    stdout: bool,
    stderr: bool,
    detach_keys: &[u8],
) -> Result<UnixStream, ContainerError> {
    request(
        sock,
        &Request::Attach {
            stdin,
            stdout,
            stderr,
            detach_keys: detach_keys.to_vec(),
        },
        true,
    )
    .await
    .map(|(s, _)| s)
}

/// Waits for the process to exit.
pub async fn wait(sock: &Path) -> Result<ExitStatus, ContainerError> {
    let r = call(sock, &Request::Wait).await?;
    r.exit
        .ok_or_else(|| ContainerError::Shim("wait answered without an exit status".into()))
}

/// Docker's default detach sequence.
pub const DEFAULT_DETACH_KEYS: &str = "ctrl-p,ctrl-q";

/// Decodes Docker's detach keys (`ctrl-p,ctrl-q`, `a`, `ctrl-@`): a comma-separated list of
/// single characters or `ctrl-` + one of `a-z @ [ \\ ] ^ _`.
pub fn parse_detach_keys(s: &str) -> Result<Vec<u8>, ContainerError> {
    let bad = || ContainerError::Invalid(format!("Invalid escape keys ({s}) provided"));
    let mut out = Vec::new();
    for key in s.split(',') {
        let k = key.trim();
        let b = k.as_bytes();
        if b.len() == 1 {
            out.push(b[0]);
            continue;
        }
        let c = k
            .strip_prefix("ctrl-")
            .filter(|c| c.len() == 1)
            .ok_or_else(bad)?
            .as_bytes()[0]
            .to_ascii_lowercase();
        out.push(match c {
            b'a'..=b'z' => c - b'a' + 1,
            b'@' => 0,
            b'[' => 27,
            b'\\' => 28,
            b']' => 29,
            b'^' => 30,
            b'_' => 31,
            _ => return Err(bad()),
        });
    }
    Ok(out)
}

#[cfg(test)]
mod detach_key_tests {
    use super::*;

    #[test]
    fn docker_detach_keys() {
        assert_eq!(parse_detach_keys("ctrl-p,ctrl-q").unwrap(), [0x10, 0x11]);
        assert_eq!(parse_detach_keys("ctrl-@,a").unwrap(), [0, b'a']);
        assert!(parse_detach_keys("ctrl-").is_err());
        assert!(parse_detach_keys("ab").is_err());
        assert!(parse_detach_keys("ctrl-1").is_err());
    }
}
