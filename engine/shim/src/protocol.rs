//! The control socket protocol: one JSON request line, one JSON response line; after an
//! `attach` response the connection carries the process's stdio (Docker's 8-byte framing
//! without a tty, raw bytes with one).

use std::io::{BufRead, Read, Write};
use std::os::unix::net::UnixStream;
use std::path::Path;

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result, io_err, json_err};
use crate::exit::ExitStatus;
pub use crate::logfile::Stream;

/// The longest request or response line either side accepts.
pub const MAX_LINE: usize = 1 << 20;

/// A request to the shim, tagged by `"op"`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "snake_case")]
pub enum Request {
    /// Starts the process (runtime start, or the exec); answers with its pid.
    Start,
    /// Turns the connection into a stdio stream once answered.
    Attach {
        /// Forward what the client sends to the process's stdin.
        #[serde(default)]
        stdin: bool,
        /// Send the process's stdout.
        #[serde(default)]
        stdout: bool,
        /// Send the process's stderr.
        #[serde(default)]
        stderr: bool,
        /// Bytes that, typed in sequence on stdin, detach this client without closing the
        /// process's stdin (Docker's detach keys, already decoded); none when empty.
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        detach_keys: Vec<u8>,
    },
    /// Sets the terminal size (tty only).
    Resize {
        /// Rows.
        height: u16,
        /// Columns.
        width: u16,
    },
    /// Sends a signal to the process (with `all`, to every process of the container).
    Kill {
        /// Signal number.
        signal: i32,
        /// Every process in the container's cgroup.
        #[serde(default)]
        all: bool,
    },
    /// Freezes the container.
    Pause,
    /// Thaws the container.
    Resume,
    /// Reports pid, status and exit.
    State,
    /// Answers once the process has exited.
    Wait,
}

/// Lifecycle of the shim's process as `state` reports it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ProcessStatus {
    /// Created, not started.
    Created,
    /// Running.
    Running,
    /// Frozen.
    Paused,
    /// Exited.
    Stopped,
}

/// The one answer line: `{"ok":true,...}` or `{"ok":false,"error":"..."}`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Response {
    /// Whether the request succeeded.
    pub ok: bool,
    /// Why it failed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// The process's host pid (start, state, handshake); 0 for an exec not started yet.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pid: Option<i32>,
    /// The lifecycle status (state).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<ProcessStatus>,
    /// The exit status (wait, and state once stopped).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exit: Option<ExitStatus>,
}

impl Response {
    /// A bare success.
    pub fn ok() -> Response {
        Response {
            ok: true,
            ..Default::default()
        }
    }

    /// A success carrying a pid.
    pub fn with_pid(pid: i32) -> Response {
        Response {
            pid: Some(pid),
            ..Response::ok()
        }
    }

    /// A failure with its message.
    pub fn error(message: impl Into<String>) -> Response {
        Response {
            ok: false,
            error: Some(message.into()),
            ..Default::default()
        }
    }

    /// `Err(Error::Remote)` for a failure, the response otherwise.
    pub fn into_result(self) -> Result<Response> {
        if self.ok {
            Ok(self)
        } else {
            Err(Error::Remote(
                self.error
                    .unwrap_or_else(|| "shim reported an error".into()),
            ))
        }
    }
}

/// Writes one value as a JSON line.
pub fn write_line<W: Write, T: Serialize>(w: &mut W, value: &T) -> Result<()> {
    let mut data = serde_json::to_vec(value).map_err(json_err("encode protocol line"))?;
    data.push(b'\n');
    w.write_all(&data).map_err(io_err("write protocol line"))?;
    w.flush().map_err(io_err("write protocol line"))
}

/// Reads one JSON line; `Ok(None)` on EOF before any byte.
pub fn read_line<R: BufRead, T: DeserializeOwned>(r: &mut R) -> Result<Option<T>> {
    let mut line = Vec::new();
    let n = r
        .by_ref()
        .take(MAX_LINE as u64)
        .read_until(b'\n', &mut line)
        .map_err(io_err("read protocol line"))?;
    if n == 0 {
        return Ok(None);
    }
    parse_line(&line).map(Some)
}

/// Reads one JSON line a byte at a time, so nothing after the newline is consumed (the attach
/// stream follows the response on the same connection).
pub fn read_line_unbuffered<R: Read, T: DeserializeOwned>(r: &mut R) -> Result<Option<T>> {
    let mut line = Vec::new();
    let mut byte = [0u8; 1];
    loop {
        match r.read(&mut byte) {
            Ok(0) if line.is_empty() => return Ok(None),
            Ok(0) => return Err(Error::Protocol("connection closed mid-line".into())),
            Ok(_) => {
                line.push(byte[0]);
                if byte[0] == b'\n' {
                    break;
                }
                if line.len() > MAX_LINE {
                    return Err(Error::Protocol("line too long".into()));
                }
            }
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(io_err("read protocol line")(e)),
        }
    }
    parse_line(&line).map(Some)
}

/// Parses a line (with or without its newline).
pub fn parse_line<T: DeserializeOwned>(line: &[u8]) -> Result<T> {
    let line = line.strip_suffix(b"\n").unwrap_or(line);
    serde_json::from_slice(line).map_err(json_err("parse protocol line"))
}

fn connect(socket: &Path) -> Result<UnixStream> {
    UnixStream::connect(socket).map_err(io_err(format!("connect {}", socket.display())))
}

/// Sends one request and returns the answer (a failure answer is `Err(Error::Remote)`).
/// `wait` blocks until the process exits.
pub fn call(socket: &Path, request: &Request) -> Result<Response> {
    let mut s = connect(socket)?;
    write_line(&mut s, request)?;
    match read_line_unbuffered::<_, Response>(&mut s)? {
        Some(r) => r.into_result(),
        None => Err(Error::Protocol(
            "the shim closed the connection without answering".into(),
        )),
    }
}

/// Attaches: returns the connection positioned at the start of the stdio stream.
pub fn attach(socket: &Path, stdin: bool, stdout: bool, stderr: bool) -> Result<UnixStream> {
    let mut s = connect(socket)?;
    write_line(
        &mut s,
        &Request::Attach {
            stdin,
            stdout,
            stderr,
            detach_keys: Vec::new(),
        },
    )?;
    match read_line_unbuffered::<_, Response>(&mut s)? {
        Some(r) => r.into_result().map(|_| s),
        None => Err(Error::Protocol(
            "the shim closed the connection without answering".into(),
        )),
    }
}

/// Size of Docker's stream frame header.
pub const FRAME_HEADER: usize = 8;

/// Appends one Docker stream frame `[stream,0,0,0,len u32 BE]` + data.
pub fn encode_frame(stream: Stream, data: &[u8], out: &mut Vec<u8>) {
    if data.is_empty() {
        out.extend_from_slice(&[stream as u8, 0, 0, 0, 0, 0, 0, 0]);
    }
    // Frames carry at most u32::MAX bytes; the shim reads far less at a time.
    for chunk in data.chunks(u32::MAX as usize) {
        out.push(stream as u8);
        out.extend_from_slice(&[0, 0, 0]);
        out.extend_from_slice(&(chunk.len() as u32).to_be_bytes());
        out.extend_from_slice(chunk);
    }
}

/// Parses a frame header into the stream and the payload length.
pub fn decode_header(h: &[u8; FRAME_HEADER]) -> Result<(Stream, usize)> {
    let stream = Stream::from_u8(h[0])
        .ok_or_else(|| Error::Protocol(format!("bad stream byte {} in frame header", h[0])))?;
    let len = u32::from_be_bytes([h[4], h[5], h[6], h[7]]) as usize;
    Ok((stream, len))
}

/// Splits a byte stream into Docker frames, whatever the chunking it arrives in.
#[derive(Debug, Default)]
pub struct FrameDecoder {
    buf: Vec<u8>,
}

impl FrameDecoder {
    /// An empty decoder.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds received bytes.
    pub fn push(&mut self, data: &[u8]) {
        self.buf.extend_from_slice(data);
    }

    /// The next complete frame, if one is buffered.
    pub fn next_frame(&mut self) -> Result<Option<(Stream, Vec<u8>)>> {
        let Some(header) = self.buf.first_chunk::<FRAME_HEADER>() else {
            return Ok(None);
        };
        let (stream, len) = decode_header(header)?;
        if self.buf.len() < FRAME_HEADER + len {
            return Ok(None);
        }
        let data = self.buf[FRAME_HEADER..FRAME_HEADER + len].to_vec();
        self.buf.drain(..FRAME_HEADER + len);
        Ok(Some((stream, data)))
    }

    /// Bytes received that do not make a whole frame yet.
    pub fn pending(&self) -> usize {
        self.buf.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn request_wire_shape() {
        let r: Request = parse_line(br#"{"op":"kill","signal":15}"#).unwrap();
        assert_eq!(
            r,
            Request::Kill {
                signal: 15,
                all: false
            }
        );
        let r: Request =
            parse_line(b"{\"op\":\"attach\",\"stdin\":true,\"stdout\":true}\n").unwrap();
        assert_eq!(
            r,
            Request::Attach {
                stdin: true,
                stdout: true,
                stderr: false,
                detach_keys: Vec::new(),
            }
        );
        assert_eq!(
            serde_json::to_string(&Request::Wait).unwrap(),
            r#"{"op":"wait"}"#
        );
        assert_eq!(
            serde_json::to_string(&Request::Resize {
                height: 24,
                width: 80
            })
            .unwrap(),
            r#"{"op":"resize","height":24,"width":80}"#
        );
    }

    #[test]
    fn response_wire_shape() {
        assert_eq!(
            serde_json::to_string(&Response::with_pid(42)).unwrap(),
            r#"{"ok":true,"pid":42}"#
        );
        assert_eq!(
            serde_json::to_string(&Response::error("no")).unwrap(),
            r#"{"ok":false,"error":"no"}"#
        );
        let r: Response =
            parse_line(br#"{"ok":true,"pid":1,"status":"running","exit":null}"#).unwrap();
        assert_eq!(r.status, Some(ProcessStatus::Running));
        assert!(Response::error("x").into_result().is_err());
    }

    #[test]
    fn frames_round_trip_in_any_chunking() {
        let mut wire = Vec::new();
        encode_frame(Stream::Stdout, b"hello\n", &mut wire);
        encode_frame(Stream::Stderr, b"", &mut wire);
        encode_frame(Stream::Stderr, b"oops", &mut wire);
        assert_eq!(&wire[..8], &[1, 0, 0, 0, 0, 0, 0, 6]);
        let mut d = FrameDecoder::new();
        let mut got = Vec::new();
        for b in &wire {
            d.push(std::slice::from_ref(b));
            while let Some(f) = d.next_frame().unwrap() {
                got.push(f);
            }
        }
        assert_eq!(
            got,
            vec![
                (Stream::Stdout, b"hello\n".to_vec()),
                (Stream::Stderr, Vec::new()),
                (Stream::Stderr, b"oops".to_vec())
            ]
        );
        assert_eq!(d.pending(), 0);
        let mut bad = FrameDecoder::new();
        bad.push(&[9, 0, 0, 0, 0, 0, 0, 0]);
        assert!(bad.next_frame().is_err());
    }

    #[test]
    fn line_helpers() {
        let mut buf = Vec::new();
        write_line(&mut buf, &Request::State).unwrap();
        assert_eq!(buf, b"{\"op\":\"state\"}\n");
        buf.extend_from_slice(b"rest");
        let mut cur = std::io::Cursor::new(buf);
        let r: Option<Request> = read_line_unbuffered(&mut cur).unwrap();
        assert_eq!(r, Some(Request::State));
        let mut rest = Vec::new();
        cur.read_to_end(&mut rest).unwrap();
        assert_eq!(rest, b"rest");
        let mut empty = std::io::Cursor::new(Vec::new());
        assert!(read_line::<_, Request>(&mut empty).unwrap().is_none());
    }
}
