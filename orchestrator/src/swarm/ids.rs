//! Object identifiers and secrets: random, lowercase base-36, as swarmkit writes them.

use std::io::Read;

const ALPHABET: &[u8; 36] = b"0123456789abcdefghijklmnopqrstuvwxyz";

/// Fills `buf` from the kernel's CSPRNG.
pub fn random_bytes(buf: &mut [u8]) -> std::io::Result<()> {
    std::fs::File::open("/dev/urandom")?.read_exact(buf)
}

/// A 25-character object ID (nodes, services, tasks), like swarmkit's `identity.NewID`.
pub fn new_id() -> String {
    random_base36(25)
}

/// `len` random base-36 characters; falls back to a time-seeded value only if /dev/urandom
/// cannot be read, which on Linux means the machine is already broken.
pub fn random_base36(len: usize) -> String {
    let mut raw = vec![0u8; len];
    if random_bytes(&mut raw).is_err() {
        let seed = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or_default();
        for (i, b) in raw.iter_mut().enumerate() {
            *b = (seed >> ((i % 16) * 8)) as u8 ^ (i as u8).wrapping_mul(151);
        }
    }
    raw.iter()
        .map(|b| ALPHABET[(*b as usize) % 36] as char)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_25_base36_and_differ() {
        let a = new_id();
        let b = new_id();
        assert_eq!(a.len(), 25);
        assert!(a.bytes().all(|c| ALPHABET.contains(&c)));
        assert_ne!(a, b);
    }
}
