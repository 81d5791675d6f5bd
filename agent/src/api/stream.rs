//! Bridges between async request/response bodies and the engine's blocking readers and writers,
//! so tar archives flow through without being held in memory.

use axum::body::Body;
use bytes::Bytes;
use futures_util::StreamExt;
use std::io::{self, Read};
use tokio::sync::mpsc;

/// A blocking `Write` that hands its bytes to an async response body.
pub struct ChannelWriter(pub mpsc::Sender<Bytes>);

impl io::Write for ChannelWriter {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.0
            .blocking_send(Bytes::copy_from_slice(buf))
            .map_err(|_| io::Error::new(io::ErrorKind::BrokenPipe, "client went away"))?;
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// A blocking `Read` over a request body, for use inside `spawn_blocking`.
pub struct BodyReader {
    rx: mpsc::Receiver<io::Result<Bytes>>,
    cur: Bytes,
}

/// Starts pumping `body` into a [`BodyReader`].
///
/// Once the reader is dropped the rest of the body is read and discarded: a tar
/// reader stops at the end-of-archive block and may leave padding unread, and a
/// handler may answer an error early; closing the connection on a client still
/// writing would turn its response into "broken pipe".
pub fn body_reader(body: Body) -> BodyReader {
    let (tx, rx) = mpsc::channel::<io::Result<Bytes>>(8);
    tokio::spawn(async move {
        let mut s = body.into_data_stream();
        let mut open = true;
        while let Some(chunk) = s.next().await {
            let item = chunk.map_err(|e| io::Error::other(e.to_string()));
            if item.is_err() {
                let _ = tx.send(item).await;
                break;
            }
            if open && tx.send(item).await.is_err() {
                open = false;
            }
        }
    });
    BodyReader {
        rx,
        cur: Bytes::new(),
    }
}

impl Read for BodyReader {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        while self.cur.is_empty() {
            match self.rx.blocking_recv() {
                Some(Ok(b)) => self.cur = b,
                Some(Err(e)) => return Err(e),
                None => return Ok(0),
            }
        }
        let n = buf.len().min(self.cur.len());
        buf[..n].copy_from_slice(&self.cur[..n]);
        self.cur = self.cur.slice(n..);
        Ok(n)
    }
}
