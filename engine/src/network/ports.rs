//! Published ports: Docker's `PortBindings` and `PublishAllPorts` turned into host ports,
//! each reserved by a bound (never listening) socket so no other program can take it while
//! the kernel forwards it.

use super::NetworkError;
use super::nft::PortRule;
use bollard_stubs::models::{PortBinding, PortMap};
use serde::{Deserialize, Serialize};
use std::net::Ipv4Addr;
use std::os::fd::{FromRawFd, OwnedFd};

/// One published port of a running container.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PublishedPort {
    /// `tcp` or `udp`.
    pub proto: String,
    /// Host address (0.0.0.0: all).
    pub host_ip: Ipv4Addr,
    /// Host port.
    pub host_port: u16,
    /// Container port.
    pub port: u16,
    /// The container's address it goes to.
    pub ip: Ipv4Addr,
}

impl PublishedPort {
    /// Its nftables rule.
    pub fn rule(&self) -> PortRule {
        PortRule {
            proto: self.proto.clone(),
            host_ip: self.host_ip,
            host_port: self.host_port,
            ip: self.ip,
            port: self.port,
        }
    }
}

/// A socket reserving a host port.
#[derive(Debug)]
pub struct Held(#[allow(dead_code)] OwnedFd);

/// Binds `ip:port` (`port` 0: the kernel picks) and returns the socket and its port.
fn bind(proto: &str, ip: Ipv4Addr, port: u16) -> std::io::Result<(Held, u16)> {
    let ty = if proto == "udp" {
        libc::SOCK_DGRAM
    } else {
        libc::SOCK_STREAM
    };
    // SAFETY: plain socket(2); the result is checked.
    let fd = unsafe { libc::socket(libc::AF_INET, ty | libc::SOCK_CLOEXEC, 0) };
    if fd < 0 {
        return Err(std::io::Error::last_os_error());
    }
    // SAFETY: `fd` is fresh and owned by nothing else.
    let fd = unsafe { OwnedFd::from_raw_fd(fd) };
    use std::os::fd::AsRawFd;
    // No SO_REUSEADDR: two sockets with it may share a port while neither listens, and the
    // bind is exactly the "already allocated" check.
    let sa = libc::sockaddr_in {
        sin_family: libc::AF_INET as u16,
        sin_port: port.to_be(),
        sin_addr: libc::in_addr {
            s_addr: u32::from(ip).to_be(),
        },
        sin_zero: [0; 8],
    };
    let len = std::mem::size_of::<libc::sockaddr_in>() as u32;
    // SAFETY: `sa` is a valid sockaddr_in of `len` bytes.
    if unsafe {
        libc::bind(
            fd.as_raw_fd(),
            (&sa as *const libc::sockaddr_in).cast(),
            len,
        )
    } != 0
    {
        return Err(std::io::Error::last_os_error());
    }
    let mut out: libc::sockaddr_in = sa;
    let mut olen = len;
    // SAFETY: `out` is writable for `olen` bytes.
    unsafe {
        libc::getsockname(
            fd.as_raw_fd(),
            (&mut out as *mut libc::sockaddr_in).cast(),
            &mut olen,
        )
    };
    Ok((Held(fd), u16::from_be(out.sin_port)))
}

/// The first port in the ephemeral range the kernel gives out; Docker draws from 32768-60999.
fn random_port(proto: &str, ip: Ipv4Addr) -> std::io::Result<(Held, u16)> {
    bind(proto, ip, 0)
}

/// Parses `HostPort`: empty or `0` (random), `N`, or `N-M` (first free in the range).
fn host_ports(s: &str) -> Result<Option<(u16, u16)>, NetworkError> {
    let bad = || NetworkError::Invalid(format!("invalid port specification: \"{s}\""));
    let s = s.trim();
    if s.is_empty() || s == "0" {
        return Ok(None);
    }
    let (a, b) = s.split_once('-').unwrap_or((s, s));
    let a: u16 = a.parse().map_err(|_| bad())?;
    let b: u16 = b.parse().map_err(|_| bad())?;
    if a > b || a == 0 {
        return Err(bad());
    }
    Ok(Some((a, b)))
}

/// Reserves every binding of `bindings` (plus every exposed port when `all`), all or
/// nothing; the container's address is filled in later.
pub fn reserve(
    bindings: Option<&PortMap>,
    exposed: &[String],
    all: bool,
    default_ip: Ipv4Addr,
) -> Result<(Vec<PublishedPort>, Vec<Held>), NetworkError> {
    let mut wanted: Vec<(String, Option<PortBinding>)> = Vec::new();
    for (k, v) in bindings.into_iter().flatten() {
        match v.as_ref().filter(|v| !v.is_empty()) {
            Some(list) => wanted.extend(list.iter().map(|b| (k.clone(), Some(b.clone())))),
            None => wanted.push((k.clone(), None)),
        }
    }
    if all {
        for p in exposed {
            if !wanted.iter().any(|(k, _)| k == p) {
                wanted.push((p.clone(), None));
            }
        }
    }
    wanted.sort_by(|a, b| a.0.cmp(&b.0));
    let mut out = Vec::new();
    let mut held = Vec::new();
    for (key, b) in wanted {
        let (port, proto) = key.split_once('/').unwrap_or((key.as_str(), "tcp"));
        if proto == "sctp" {
            continue;
        }
        let port: u16 = port
            .parse()
            .map_err(|_| NetworkError::Invalid(format!("invalid port specification: \"{key}\"")))?;
        let b = b.unwrap_or_default();
        let host_ip = match b.host_ip.as_deref().filter(|s| !s.is_empty()) {
            Some(s) if s.contains(':') => continue,
            Some(s) => s
                .parse::<Ipv4Addr>()
                .map_err(|_| NetworkError::Invalid(format!("invalid host IP address: {s}")))?,
            None => default_ip,
        };
        let range = host_ports(b.host_port.as_deref().unwrap_or(""))?;
        let got = match range {
            None => random_port(proto, host_ip),
            Some((a, z)) => {
                let mut last = None;
                let mut ok = None;
                for p in a..=z {
                    match bind(proto, host_ip, p) {
                        Ok(h) => {
                            ok = Some(h);
                            break;
                        }
                        Err(e) => last = Some(e),
                    }
                }
                ok.ok_or_else(|| last.unwrap_or_else(|| std::io::Error::other("no port")))
            }
        };
        let (h, host_port) = got.map_err(|e| {
            let hp = b.host_port.clone().unwrap_or_default();
            if e.raw_os_error() == Some(libc::EADDRINUSE) {
                NetworkError::Forbidden(format!(
                    "driver failed programming external connectivity on endpoint: Bind for {host_ip}:{hp} failed: port is already allocated"
                ))
            } else {
                NetworkError::Internal(format!("bind {host_ip}:{hp}/{proto}: {e}"))
            }
        })?;
        held.push(h);
        out.push(PublishedPort {
            proto: proto.to_string(),
            host_ip,
            host_port,
            port,
            ip: Ipv4Addr::UNSPECIFIED,
        });
    }
    Ok((out, held))
}

/// Re-reserves ports after a restart of the engine; ports someone took meanwhile are skipped.
pub fn hold_existing(ports: &[PublishedPort]) -> Vec<Held> {
    ports
        .iter()
        .filter_map(|p| bind(&p.proto, p.host_ip, p.host_port).ok().map(|(h, _)| h))
        .collect()
}
