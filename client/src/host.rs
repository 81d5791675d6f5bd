//! Which daemon to talk to: `-H`, `BERTH_HOST`, `DOCKER_HOST`, and the TLS files of
//! `--tlsverify`/`DOCKER_TLS_VERIFY`/`DOCKER_CERT_PATH`.

use crate::error::{ClientError, Result};
use std::path::{Path, PathBuf};

/// The default daemon socket.
pub const DEFAULT_HOST: &str = "unix:///run/berth/berth.sock";

/// A daemon address.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Host {
    /// A UNIX socket.
    Unix(PathBuf),
    /// TCP `host:port`.
    Tcp {
        /// Host name or IP.
        host: String,
        /// Port.
        port: u16,
    },
}

impl Host {
    /// Parses `unix:///path` or `tcp://host:port` (`tcp://host` means port 2376).
    pub fn parse(s: &str) -> Result<Self> {
        let bad = || ClientError::BadHost(s.to_string());
        if let Some(p) = s.strip_prefix("unix://") {
            if p.is_empty() {
                return Err(bad());
            }
            return Ok(Self::Unix(PathBuf::from(p)));
        }
        let rest = s
            .strip_prefix("tcp://")
            .or_else(|| s.strip_prefix("https://"))
            .or_else(|| s.strip_prefix("http://"))
            .ok_or_else(bad)?;
        let rest = rest.trim_end_matches('/');
        let (host, port) = if let Some(r) = rest.strip_prefix('[') {
            let (h, p) = r.split_once(']').ok_or_else(bad)?;
            (h.to_string(), p.strip_prefix(':').unwrap_or(""))
        } else {
            match rest.rsplit_once(':') {
                Some((h, p)) => (h.to_string(), p),
                None => (rest.to_string(), ""),
            }
        };
        let port = if port.is_empty() {
            2376
        } else {
            port.parse().map_err(|_| bad())?
        };
        if host.is_empty() {
            return Err(bad());
        }
        Ok(Self::Tcp { host, port })
    }

    /// The host from `-H`, else `BERTH_HOST`, else `DOCKER_HOST`, else the default socket.
    pub fn resolve(flag: Option<&str>) -> Result<Self> {
        let env = |k| std::env::var(k).ok().filter(|v: &String| !v.is_empty());
        let s = flag
            .map(str::to_string)
            .or_else(|| env("BERTH_HOST"))
            .or_else(|| env("DOCKER_HOST"))
            .unwrap_or_else(|| DEFAULT_HOST.to_string());
        Self::parse(&s)
    }
}

impl std::fmt::Display for Host {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Unix(p) => write!(f, "unix://{}", p.display()),
            Self::Tcp { host, port } => write!(f, "tcp://{host}:{port}"),
        }
    }
}

/// The files of a TLS connection, as docker names them.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct TlsFiles {
    /// CA to verify the daemon with (`ca.pem`); `None` trusts nothing but skips nothing:
    /// verification is then off only if `verify` is false.
    pub ca: Option<PathBuf>,
    /// Client certificate (`cert.pem`).
    pub cert: Option<PathBuf>,
    /// Client key (`key.pem`).
    pub key: Option<PathBuf>,
    /// Verify the daemon's certificate.
    pub verify: bool,
}

impl TlsFiles {
    /// The files in a `DOCKER_CERT_PATH`-style directory that exist.
    pub fn from_dir(dir: &Path, verify: bool) -> Self {
        let f = |n: &str| Some(dir.join(n)).filter(|p| p.exists());
        Self {
            ca: f("ca.pem"),
            cert: f("cert.pem"),
            key: f("key.pem"),
            verify,
        }
    }

    /// TLS settings from flags and the environment as docker does: `--tlsverify` or
    /// `DOCKER_TLS_VERIFY` turn verification on; `--tls`, `--tlsverify` or any explicit file
    /// turn TLS on; files default to `DOCKER_CERT_PATH` (or `~/.docker`).
    pub fn resolve(
        tls: bool,
        tlsverify: bool,
        ca: Option<PathBuf>,
        cert: Option<PathBuf>,
        key: Option<PathBuf>,
    ) -> Option<Self> {
        let env_verify = std::env::var("DOCKER_TLS_VERIFY")
            .map(|v| !v.is_empty())
            .unwrap_or(false);
        let verify = tlsverify || env_verify;
        if !(tls || verify || ca.is_some() || cert.is_some() || key.is_some()) {
            return None;
        }
        let dir = std::env::var_os("DOCKER_CERT_PATH")
            .map(PathBuf::from)
            .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".docker")))
            .unwrap_or_default();
        let d = Self::from_dir(&dir, verify);
        Some(Self {
            ca: ca.or(d.ca),
            cert: cert.or(d.cert),
            key: key.or(d.key),
            verify,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hosts() {
        assert_eq!(
            Host::parse("unix:///run/berth/berth.sock").unwrap(),
            Host::Unix("/run/berth/berth.sock".into())
        );
        assert_eq!(
            Host::parse("tcp://127.0.0.1:2376").unwrap(),
            Host::Tcp {
                host: "127.0.0.1".into(),
                port: 2376
            }
        );
        assert_eq!(
            Host::parse("tcp://example").unwrap(),
            Host::Tcp {
                host: "example".into(),
                port: 2376
            }
        );
        assert!(Host::parse("ftp://x").is_err());
        assert_eq!(
            Host::resolve(Some("unix:///a")).unwrap(),
            Host::Unix("/a".into())
        );
    }
}
