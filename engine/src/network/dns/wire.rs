//! The few pieces of the DNS wire format the server needs: one question in, A/AAAA/PTR answers
//! out, written into a reused buffer so a local answer allocates nothing.

use std::net::IpAddr;

/// Header length; the question starts right after it.
const HEADER: usize = 12;
/// The longest name the wire format allows, as dotted text.
pub(super) const MAX_NAME: usize = 255;
/// Answers point back at the question's name instead of repeating it.
const NAME_POINTER: [u8; 2] = [0xc0, 0x0c];
/// Docker's TTL for its records.
const TTL: u32 = 600;

pub(super) const TYPE_A: u16 = 1;
pub(super) const TYPE_PTR: u16 = 12;
pub(super) const TYPE_AAAA: u16 = 28;
pub(super) const TYPE_ANY: u16 = 255;
pub(super) const CLASS_IN: u16 = 1;
const CLASS_ANY: u16 = 255;

pub(super) const RCODE_FORMERR: u16 = 1;
pub(super) const RCODE_SERVFAIL: u16 = 2;
pub(super) const RCODE_NOTIMP: u16 = 4;

const FLAG_QR: u16 = 0x8000;
const FLAG_AA: u16 = 0x0400;
const FLAG_TC: u16 = 0x0200;
const FLAG_RD: u16 = 0x0100;
const FLAG_RA: u16 = 0x0080;
const OPCODE_MASK: u16 = 0x7800;

/// Why a message cannot be answered as a plain query.
#[derive(Debug, PartialEq, Eq)]
pub(super) enum Reject {
    /// Too short to carry a header, or itself a response: not worth an answer.
    Ignore,
    /// Answer with this rcode and no question.
    Rcode(u16),
}

/// The one question of a query; the name is lower-cased into the caller's buffer.
pub(super) struct Question {
    /// Where the question section ends in the query (after type and class).
    pub end: usize,
    pub qtype: u16,
    pub qclass: u16,
    /// Length of the dotted, lower-cased name in the caller's buffer (no trailing dot).
    pub name_len: usize,
}

impl Question {
    /// Whether the class is one local records can answer.
    pub fn class_is_in(&self) -> bool {
        self.qclass == CLASS_IN || self.qclass == CLASS_ANY
    }
}

/// The query's id, for relaying and error answers.
pub(super) fn id(msg: &[u8]) -> Option<u16> {
    Some(u16::from_be_bytes([*msg.first()?, *msg.get(1)?]))
}

/// Whether a response says it was truncated.
pub(super) fn is_truncated(msg: &[u8]) -> bool {
    msg.get(2)
        .is_some_and(|b| u16::from(*b) << 8 & FLAG_TC != 0)
}

/// Parses the header and the single question of `msg`, writing the name into `name`.
pub(super) fn parse_query(msg: &[u8], name: &mut [u8; MAX_NAME]) -> Result<Question, Reject> {
    if msg.len() < HEADER {
        return Err(Reject::Ignore);
    }
    let flags = u16::from_be_bytes([msg[2], msg[3]]);
    if flags & FLAG_QR != 0 {
        return Err(Reject::Ignore);
    }
    if flags & OPCODE_MASK != 0 {
        return Err(Reject::Rcode(RCODE_NOTIMP));
    }
    if u16::from_be_bytes([msg[4], msg[5]]) != 1 {
        return Err(Reject::Rcode(RCODE_FORMERR));
    }
    let mut pos = HEADER;
    let mut len = 0;
    loop {
        let label = usize::from(*msg.get(pos).ok_or(Reject::Rcode(RCODE_FORMERR))?);
        pos += 1;
        if label == 0 {
            break;
        }
        // Compression pointers (0xc0) and the reserved label types never start a question's labels.
        if label > 63 {
            return Err(Reject::Rcode(RCODE_FORMERR));
        }
        let bytes = msg
            .get(pos..pos + label)
            .ok_or(Reject::Rcode(RCODE_FORMERR))?;
        let dot = usize::from(len > 0);
        if len + dot + label > MAX_NAME {
            return Err(Reject::Rcode(RCODE_FORMERR));
        }
        if dot == 1 {
            name[len] = b'.';
        }
        for (slot, b) in name[len + dot..len + dot + label].iter_mut().zip(bytes) {
            *slot = b.to_ascii_lowercase();
        }
        len += dot + label;
        pos += label;
    }
    let tail = msg.get(pos..pos + 4).ok_or(Reject::Rcode(RCODE_FORMERR))?;
    Ok(Question {
        end: pos + 4,
        qtype: u16::from_be_bytes([tail[0], tail[1]]),
        qclass: u16::from_be_bytes([tail[2], tail[3]]),
        name_len: len,
    })
}

/// A response being written into a reused buffer, capped at `limit` bytes (TC set past it).
pub(super) struct Response<'a> {
    buf: &'a mut Vec<u8>,
    limit: usize,
    answers: u16,
    truncated: bool,
}

impl<'a> Response<'a> {
    /// Starts an answer to `query` whose question ends at `question_end` (HEADER for none).
    pub fn start(buf: &'a mut Vec<u8>, query: &[u8], question_end: usize, limit: usize) -> Self {
        buf.clear();
        let flags = u16::from_be_bytes([query[2], query[3]]);
        let out = FLAG_QR | FLAG_AA | FLAG_RA | (flags & (OPCODE_MASK | FLAG_RD));
        let questions: u16 = if question_end > HEADER { 1 } else { 0 };
        buf.extend_from_slice(&query[..2]);
        buf.extend_from_slice(&out.to_be_bytes());
        buf.extend_from_slice(&questions.to_be_bytes());
        buf.extend_from_slice(&[0; 6]);
        buf.extend_from_slice(&query[HEADER..question_end]);
        Response {
            buf,
            limit,
            answers: 0,
            truncated: false,
        }
    }

    /// Adds an A or AAAA record for the question's name.
    pub fn address(&mut self, ip: IpAddr) {
        match ip {
            IpAddr::V4(v4) => self.record(TYPE_A, |b| b.extend_from_slice(&v4.octets())),
            IpAddr::V6(v6) => self.record(TYPE_AAAA, |b| b.extend_from_slice(&v6.octets())),
        }
    }

    /// Adds a PTR record pointing at the dotted `target` (no trailing dot).
    pub fn pointer(&mut self, target: &str) {
        self.record(TYPE_PTR, |b| {
            for label in target.split('.').filter(|l| !l.is_empty()) {
                let label = &label.as_bytes()[..label.len().min(63)];
                b.push(label.len() as u8);
                b.extend_from_slice(label);
            }
            b.push(0);
        });
    }

    fn record(&mut self, rtype: u16, rdata: impl FnOnce(&mut Vec<u8>)) {
        if self.truncated {
            return;
        }
        let start = self.buf.len();
        self.buf.extend_from_slice(&NAME_POINTER);
        self.buf.extend_from_slice(&rtype.to_be_bytes());
        self.buf.extend_from_slice(&CLASS_IN.to_be_bytes());
        self.buf.extend_from_slice(&TTL.to_be_bytes());
        self.buf.extend_from_slice(&[0, 0]);
        let data = self.buf.len();
        rdata(self.buf);
        let rdlen = (self.buf.len() - data) as u16;
        self.buf[data - 2..data].copy_from_slice(&rdlen.to_be_bytes());
        if self.buf.len() > self.limit {
            self.buf.truncate(start);
            self.truncated = true;
        } else {
            self.answers += 1;
        }
    }

    /// Writes the rcode, answer count and TC flag into the header.
    pub fn finish(self, rcode: u16) {
        let mut flags = u16::from_be_bytes([self.buf[2], self.buf[3]]) | (rcode & 0xf);
        if self.truncated {
            flags |= FLAG_TC;
        }
        self.buf[2..4].copy_from_slice(&flags.to_be_bytes());
        self.buf[6..8].copy_from_slice(&self.answers.to_be_bytes());
    }
}

/// The address a reverse name (`4.3.2.1.in-addr.arpa`, nibbles `.ip6.arpa`) stands for.
pub(super) fn reverse_ip(name: &str) -> Option<IpAddr> {
    if let Some(rest) = name.strip_suffix(".in-addr.arpa") {
        let mut octets = [0u8; 4];
        let mut parts = rest.split('.');
        for slot in octets.iter_mut().rev() {
            *slot = parts.next()?.parse().ok()?;
        }
        return parts.next().is_none().then(|| IpAddr::from(octets));
    }
    let rest = name.strip_suffix(".ip6.arpa")?;
    let mut value: u128 = 0;
    let mut count = 0;
    for (i, nibble) in rest.split('.').enumerate() {
        let digit = u128::from(
            u8::from_str_radix(nibble, 16)
                .ok()
                .filter(|_| nibble.len() == 1)?,
        );
        value |= digit << (4 * i);
        count += 1;
    }
    (count == 32).then(|| IpAddr::from(value.to_be_bytes()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reverse_names_parse() {
        assert_eq!(
            reverse_ip("4.3.2.10.in-addr.arpa"),
            Some("10.2.3.4".parse().unwrap())
        );
        assert_eq!(reverse_ip("3.2.10.in-addr.arpa"), None);
        let v6 = "1.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.8.b.d.0.1.0.0.2.ip6.arpa";
        assert_eq!(reverse_ip(v6), Some("2001:db8::1".parse().unwrap()));
    }

    #[test]
    fn malformed_questions_are_rejected() {
        let mut name = [0; MAX_NAME];
        assert_eq!(parse_query(&[0; 5], &mut name).err(), Some(Reject::Ignore));
        let mut msg = vec![0, 1, 1, 0, 0, 1, 0, 0, 0, 0, 0, 0, 3, b'w', b'e'];
        assert_eq!(
            parse_query(&msg, &mut name).err(),
            Some(Reject::Rcode(RCODE_FORMERR))
        );
        msg.extend_from_slice(&[b'b', 0, 0, 1, 0, 1]);
        let q = parse_query(&msg, &mut name).unwrap();
        assert_eq!(
            (&name[..q.name_len], q.qtype, q.end),
            (&b"web"[..], TYPE_A, msg.len())
        );
    }
}
