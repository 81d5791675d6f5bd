//! Docker's json-file records: `{"log":"...","stream":"stdout","time":"<RFC3339Nano>"}\n`,
//! escaped exactly as Docker's jsonlog encoder does (HTML-safe, invalid UTF-8 as U+FFFD).

use serde::Deserialize;

use super::{LogEntry, Stream};

const HEX: &[u8; 16] = b"0123456789abcdef";

/// Appends the JSON string body of `s` (without quotes) the way Docker escapes it.
fn escape(s: &[u8], out: &mut Vec<u8>) {
    for chunk in s.utf8_chunks() {
        for c in chunk.valid().chars() {
            match c {
                '\\' | '"' => {
                    out.push(b'\\');
                    out.push(c as u8);
                }
                '\n' => out.extend_from_slice(b"\\n"),
                '\r' => out.extend_from_slice(b"\\r"),
                c if (c as u32) < 0x20 || matches!(c, '<' | '>' | '&') => {
                    let b = c as u8;
                    out.extend_from_slice(b"\\u00");
                    out.push(HEX[(b >> 4) as usize]);
                    out.push(HEX[(b & 0xf) as usize]);
                }
                '\u{2028}' | '\u{2029}' => {
                    out.extend_from_slice(b"\\u202");
                    out.push(HEX[(c as u32 & 0xf) as usize]);
                }
                c => {
                    let mut b = [0u8; 4];
                    out.extend_from_slice(c.encode_utf8(&mut b).as_bytes());
                }
            }
        }
        // Go decodes an invalid sequence one byte at a time, each becoming U+FFFD.
        for _ in chunk.invalid() {
            out.extend_from_slice(b"\\ufffd");
        }
    }
}

/// Appends one record line.
pub(super) fn encode(e: &LogEntry, out: &mut Vec<u8>) {
    out.extend_from_slice(b"{\"log\":\"");
    escape(&e.line, out);
    out.extend_from_slice(b"\",\"stream\":\"");
    out.extend_from_slice(e.stream.as_str().as_bytes());
    out.extend_from_slice(b"\",\"time\":\"");
    out.extend_from_slice(crate::time::format_docker(e.time).as_bytes());
    out.extend_from_slice(b"\"}\n");
}

#[derive(Deserialize)]
struct Record {
    log: String,
    stream: String,
    time: String,
}

/// Decodes one record line (with or without its `\n`).
pub(super) fn decode(line: &[u8]) -> Result<LogEntry, String> {
    let r: Record = serde_json::from_slice(line).map_err(|e| e.to_string())?;
    let stream =
        Stream::from_name(&r.stream).ok_or_else(|| format!("bad stream {:?}", r.stream))?;
    let time = crate::time::parse(&r.time).ok_or_else(|| format!("bad time {:?}", r.time))?;
    Ok(LogEntry {
        stream,
        time,
        line: r.log.into_bytes(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn docker_exact_bytes() {
        let e = LogEntry {
            stream: Stream::Stdout,
            time: crate::time::from_parts(1_795_839_918, 123_456_789),
            line: b"hello\n".to_vec(),
        };
        let mut out = Vec::new();
        encode(&e, &mut out);
        assert_eq!(
            String::from_utf8(out.clone()).unwrap(),
            "{\"log\":\"hello\\n\",\"stream\":\"stdout\",\"time\":\"2026-11-28T04:25:18.123456789Z\"}\n"
        );
        assert_eq!(decode(&out).unwrap(), e);
    }

    #[test]
    fn escapes_like_docker() {
        let mut out = Vec::new();
        escape(b"a\"b\\c\t<&>\r\x01\xff\xe2\x80\xa8\xc3\xa9", &mut out);
        assert_eq!(
            String::from_utf8(out).unwrap(),
            r#"a\"b\\c\u0009\u003c\u0026\u003e\r\u0001\ufffd\u2028é"#
        );
    }
}
