//! Docker's stream formats: the JSON progress stream (`jsonmessage`) and the 8-byte
//! multiplexed stdout/stderr framing.

use crate::error::{ClientError, Result};
use bytes::{Buf, Bytes, BytesMut};
use http_body_util::BodyExt;
use hyper::body::Incoming;
use serde::{Deserialize, Serialize};

/// Byte counts of a progress message.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProgressDetail {
    /// Bytes done.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub current: Option<u64>,
    /// Bytes in all.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub total: Option<u64>,
}

/// The error of a progress stream.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ErrorDetail {
    /// The message.
    #[serde(default)]
    pub message: String,
}

/// One message of a JSON progress stream (pull, push, load, build).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct JsonMessage {
    /// `Downloading`, `Pull complete`, `Digest: ...`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<String>,
    /// The layer or tag the status is about.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    /// Docker's rendered progress bar.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub progress: Option<String>,
    /// Byte counts.
    #[serde(
        default,
        rename = "progressDetail",
        skip_serializing_if = "Option::is_none"
    )]
    pub progress_detail: Option<ProgressDetail>,
    /// Build output.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stream: Option<String>,
    /// The final error.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// The final error, structured.
    #[serde(
        default,
        rename = "errorDetail",
        skip_serializing_if = "Option::is_none"
    )]
    pub error_detail: Option<ErrorDetail>,
    /// Extra results (push digest, build image ID).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub aux: Option<serde_json::Value>,
}

impl JsonMessage {
    /// The error this message carries, if any.
    pub fn error_message(&self) -> Option<String> {
        self.error_detail
            .as_ref()
            .map(|e| e.message.clone())
            .filter(|m| !m.is_empty())
            .or_else(|| self.error.clone())
    }
}

/// Decodes a JSON progress stream from a response body, message by message.
#[derive(Debug)]
pub struct JsonStream {
    body: Incoming,
    buf: BytesMut,
    done: bool,
}

impl JsonStream {
    /// Wraps a response body.
    pub fn new(body: Incoming) -> Self {
        Self {
            body,
            buf: BytesMut::new(),
            done: false,
        }
    }

    /// The next message; `None` at the end of the stream.
    pub async fn next(&mut self) -> Result<Option<JsonMessage>> {
        loop {
            if let Some(m) = self.take_line()? {
                return Ok(Some(m));
            }
            if self.done {
                return Ok(None);
            }
            match self.body.frame().await {
                Some(Ok(f)) => {
                    if let Ok(data) = f.into_data() {
                        self.buf.extend_from_slice(&data);
                    }
                }
                Some(Err(e)) => return Err(ClientError::Http(e.to_string())),
                None => {
                    self.done = true;
                    if !self.buf.is_empty() && !self.buf.ends_with(b"\n") {
                        self.buf.extend_from_slice(b"\n");
                    }
                }
            }
        }
    }

    fn take_line(&mut self) -> Result<Option<JsonMessage>> {
        while let Some(i) = self.buf.iter().position(|&b| b == b'\n') {
            let line = self.buf.split_to(i + 1);
            let line = line.trim_ascii();
            if line.is_empty() {
                continue;
            }
            return serde_json::from_slice(line)
                .map(Some)
                .map_err(|e| ClientError::Decode(e.to_string()));
        }
        Ok(None)
    }

    /// Reads every message, calling `f` on each; fails with the stream's error message.
    pub async fn for_each(mut self, mut f: impl FnMut(&JsonMessage)) -> Result<()> {
        while let Some(m) = self.next().await? {
            if let Some(e) = m.error_message() {
                return Err(ClientError::Stream(e));
            }
            f(&m);
        }
        Ok(())
    }
}

/// Which stream a frame carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StdStream {
    /// Standard input.
    Stdin,
    /// Standard output.
    Stdout,
    /// Standard error.
    Stderr,
    /// Docker's system-error stream.
    System,
}

/// Splits Docker's multiplexed stream (`[stream, 0, 0, 0, len u32 BE]` + payload) into frames,
/// whatever the chunk boundaries.
#[derive(Debug, Default)]
pub struct Demuxer {
    buf: BytesMut,
}

impl Demuxer {
    /// An empty demuxer.
    pub fn new() -> Self {
        Self::default()
    }

    /// Feeds bytes; returns the frames now complete.
    pub fn push(&mut self, data: &[u8]) -> Result<Vec<(StdStream, Bytes)>> {
        self.buf.extend_from_slice(data);
        let mut out = Vec::new();
        while self.buf.len() >= 8 {
            let stream = match self.buf[0] {
                0 => StdStream::Stdin,
                1 => StdStream::Stdout,
                2 => StdStream::Stderr,
                3 => StdStream::System,
                b => {
                    return Err(ClientError::Decode(format!(
                        "invalid stream byte {b} in multiplexed stream"
                    )));
                }
            };
            let len =
                u32::from_be_bytes([self.buf[4], self.buf[5], self.buf[6], self.buf[7]]) as usize;
            if self.buf.len() < 8 + len {
                break;
            }
            self.buf.advance(8);
            out.push((stream, self.buf.split_to(len).freeze()));
        }
        Ok(out)
    }

    /// Bytes of an incomplete frame left over.
    pub fn pending(&self) -> usize {
        self.buf.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn demux_across_chunks() {
        let mut d = Demuxer::new();
        let data = b"\x01\0\0\0\0\0\0\x05hello\x02\0\0\0\0\0\0\x03err";
        let mut frames = d.push(&data[..6]).unwrap();
        frames.extend(d.push(&data[6..15]).unwrap());
        frames.extend(d.push(&data[15..]).unwrap());
        assert_eq!(
            frames,
            vec![
                (StdStream::Stdout, Bytes::from_static(b"hello")),
                (StdStream::Stderr, Bytes::from_static(b"err"))
            ]
        );
        assert_eq!(d.pending(), 0);
    }

    #[test]
    fn json_message() {
        let m: JsonMessage = serde_json::from_str(
            r#"{"status":"Downloading","progressDetail":{"current":1,"total":2},"id":"abc"}"#,
        )
        .unwrap();
        assert_eq!(m.progress_detail.unwrap().total, Some(2));
        let e: JsonMessage =
            serde_json::from_str(r#"{"errorDetail":{"message":"boom"},"error":"boom"}"#).unwrap();
        assert_eq!(e.error_message().as_deref(), Some("boom"));
    }
}
