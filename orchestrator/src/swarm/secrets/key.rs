//! The cluster's data key: seals secret and config data before it enters the Raft log.
//!
//! The key never travels through the log itself. `swarm init` makes it and keeps it in the
//! manager's directory; other managers fetch it from a manager that has it, over mutual TLS
//! with a manager certificate, and keep their own copy.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use ring::aead::{Aad, CHACHA20_POLY1305, LessSafeKey, NONCE_LEN, Nonce, UnboundKey};
use ring::rand::{SecureRandom, SystemRandom};
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;

/// The key file in the manager's swarm directory.
pub const KEY_FILE: &str = "data.key";

const KEY_LEN: usize = 32;

/// Errors of sealing, opening and storing the key.
#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    /// The system's random source failed.
    #[error("no random bytes from the system")]
    Random,
    /// Key material of the wrong shape.
    #[error("the data key is malformed")]
    Malformed,
    /// Sealed data that does not open with this key (tampered, or sealed by another cluster).
    #[error("sealed data does not open with the cluster's data key")]
    Open,
    /// Reading or writing the key file.
    #[error("{op} {path}: {source}")]
    Io {
        /// What was being done.
        op: &'static str,
        /// The file.
        path: String,
        /// The cause.
        source: std::io::Error,
    },
}

/// A ChaCha20-Poly1305 key; its bytes are shown nowhere but in the key file.
pub struct DataKey {
    key: LessSafeKey,
    raw: [u8; KEY_LEN],
}

impl std::fmt::Debug for DataKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("DataKey(..)")
    }
}

impl DataKey {
    /// A new random key.
    pub fn generate() -> Result<Self, KeyError> {
        let mut raw = [0u8; KEY_LEN];
        SystemRandom::new()
            .fill(&mut raw)
            .map_err(|_| KeyError::Random)?;
        Self::from_bytes(&raw)
    }

    /// The key from its raw bytes.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, KeyError> {
        let raw: [u8; KEY_LEN] = bytes.try_into().map_err(|_| KeyError::Malformed)?;
        let unbound = UnboundKey::new(&CHACHA20_POLY1305, &raw).map_err(|_| KeyError::Malformed)?;
        Ok(Self {
            key: LessSafeKey::new(unbound),
            raw,
        })
    }

    /// The key as base64, to hand to another manager.
    pub fn to_base64(&self) -> String {
        STANDARD.encode(self.raw)
    }

    /// The key from [`DataKey::to_base64`]'s form.
    pub fn from_base64(text: &str) -> Result<Self, KeyError> {
        let raw = STANDARD
            .decode(text.trim())
            .map_err(|_| KeyError::Malformed)?;
        Self::from_bytes(&raw)
    }

    /// The key kept in `dir`, if there is one.
    pub fn load(dir: &Path) -> Result<Option<Self>, KeyError> {
        let path = dir.join(KEY_FILE);
        match std::fs::read_to_string(&path) {
            Ok(text) => Self::from_base64(&text).map(Some),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(source) => Err(KeyError::Io {
                op: "read",
                path: path.display().to_string(),
                source,
            }),
        }
    }

    /// Keeps the key in `dir`, readable by root only; written whole or not at all.
    pub fn save(&self, dir: &Path) -> Result<(), KeyError> {
        let path = dir.join(KEY_FILE);
        let tmp = dir.join(format!("{KEY_FILE}.tmp"));
        let io = |op: &'static str, p: &Path| {
            let path = p.display().to_string();
            move |source| KeyError::Io { op, path, source }
        };
        std::fs::create_dir_all(dir).map_err(io("create", dir))?;
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o600)
            .open(&tmp)
            .map_err(io("create", &tmp))?;
        f.write_all(self.to_base64().as_bytes())
            .and_then(|()| f.sync_all())
            .map_err(io("write", &tmp))?;
        std::fs::rename(&tmp, &path).map_err(io("rename", &path))
    }

    /// `plain` sealed and bound to `context` (the object's kind and ID, so sealed data cannot
    /// be moved to another object): base64 of nonce, ciphertext and tag.
    pub fn seal(&self, context: &str, plain: &[u8]) -> Result<String, KeyError> {
        let mut nonce = [0u8; NONCE_LEN];
        SystemRandom::new()
            .fill(&mut nonce)
            .map_err(|_| KeyError::Random)?;
        let mut buf = plain.to_vec();
        self.key
            .seal_in_place_append_tag(
                Nonce::assume_unique_for_key(nonce),
                Aad::from(context.as_bytes()),
                &mut buf,
            )
            .map_err(|_| KeyError::Malformed)?;
        let mut out = nonce.to_vec();
        out.extend_from_slice(&buf);
        Ok(STANDARD.encode(out))
    }

    /// The plain data of [`DataKey::seal`]'s output, checked against `context`.
    pub fn open(&self, context: &str, sealed: &str) -> Result<Vec<u8>, KeyError> {
        let raw = STANDARD.decode(sealed).map_err(|_| KeyError::Open)?;
        if raw.len() < NONCE_LEN {
            return Err(KeyError::Open);
        }
        let (nonce, body) = raw.split_at(NONCE_LEN);
        let nonce = Nonce::try_assume_unique_for_key(nonce).map_err(|_| KeyError::Open)?;
        let mut buf = body.to_vec();
        let plain = self
            .key
            .open_in_place(nonce, Aad::from(context.as_bytes()), &mut buf)
            .map_err(|_| KeyError::Open)?;
        Ok(plain.to_vec())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sealed_data_opens_only_with_its_key_and_context() {
        let key = DataKey::generate().unwrap();
        let sealed = key.seal("secret/abc", b"hunter2").unwrap();
        assert!(!sealed.contains("hunter2"));
        assert_eq!(key.open("secret/abc", &sealed).unwrap(), b"hunter2");
        assert!(matches!(
            key.open("secret/xyz", &sealed),
            Err(KeyError::Open)
        ));
        let other = DataKey::generate().unwrap();
        assert!(matches!(
            other.open("secret/abc", &sealed),
            Err(KeyError::Open)
        ));
        // Two seals of the same data differ (fresh nonce each time).
        assert_ne!(sealed, key.seal("secret/abc", b"hunter2").unwrap());
    }

    #[test]
    fn key_file_round_trips_with_root_only_mode() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        assert!(DataKey::load(dir.path()).unwrap().is_none());
        let key = DataKey::generate().unwrap();
        key.save(dir.path()).unwrap();
        let mode = std::fs::metadata(dir.path().join(KEY_FILE))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
        let back = DataKey::load(dir.path()).unwrap().unwrap();
        let sealed = key.seal("c", b"x").unwrap();
        assert_eq!(back.open("c", &sealed).unwrap(), b"x");
    }
}
