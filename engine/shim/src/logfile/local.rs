//! The `local` driver's records, little endian:
//! `u32 len | u8 stream | i64 unix nanos | len bytes | u32 len`.
//! The length at both ends lets a reader walk the file backwards for `--tail`.

use super::{LogEntry, Stream};

/// Bytes before the payload.
pub(super) const HEADER: usize = 4 + 1 + 8;
/// Bytes after the payload.
pub(super) const TRAILER: usize = 4;
/// A record longer than this is taken as corruption (the writer splits at 16 KiB).
pub(super) const MAX_PAYLOAD: usize = 1 << 24;

/// Appends one record.
pub(super) fn encode(e: &LogEntry, out: &mut Vec<u8>) {
    let len = (e.line.len() as u32).to_le_bytes();
    out.extend_from_slice(&len);
    out.push(e.stream as u8);
    out.extend_from_slice(&crate::time::to_unix_nanos(e.time).to_le_bytes());
    out.extend_from_slice(&e.line);
    out.extend_from_slice(&len);
}

/// The payload length announced by a header, checked for sanity.
pub(super) fn payload_len(header: &[u8; HEADER]) -> Result<usize, String> {
    let len = u32::from_le_bytes([header[0], header[1], header[2], header[3]]) as usize;
    if len > MAX_PAYLOAD {
        return Err(format!("record length {len} too large"));
    }
    Ok(len)
}

/// Decodes a whole record (header, payload, trailer).
pub(super) fn decode(rec: &[u8]) -> Result<LogEntry, String> {
    let header: &[u8; HEADER] = rec.first_chunk().ok_or("short record")?;
    let len = payload_len(header)?;
    if rec.len() != HEADER + len + TRAILER {
        return Err("record size mismatch".into());
    }
    let trailer = &rec[HEADER + len..];
    if trailer != &header[..4] {
        return Err("record trailer does not match its header".into());
    }
    let stream = Stream::from_u8(header[4]).ok_or_else(|| format!("bad stream {}", header[4]))?;
    let mut ns = [0u8; 8];
    ns.copy_from_slice(&header[5..13]);
    Ok(LogEntry {
        stream,
        time: crate::time::from_unix_nanos(i64::from_le_bytes(ns)),
        line: rec[HEADER..HEADER + len].to_vec(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip() {
        let e = LogEntry {
            stream: Stream::Stderr,
            time: crate::time::from_parts(1_795_839_918, 7),
            line: b"boom\n".to_vec(),
        };
        let mut out = Vec::new();
        encode(&e, &mut out);
        assert_eq!(out.len(), HEADER + 5 + TRAILER);
        assert_eq!(decode(&out).unwrap(), e);
        out[HEADER + 5] ^= 1;
        assert!(decode(&out).is_err());
    }
}
