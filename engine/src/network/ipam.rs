//! IPv4 subnets and the address pools Docker draws default subnets from.

use serde::{Deserialize, Serialize};
use std::fmt;
use std::net::Ipv4Addr;
use std::str::FromStr;

/// An IPv4 subnet `addr/prefix`, stored normalised (host bits cleared).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Ipv4Net {
    /// The network address.
    pub addr: Ipv4Addr,
    /// The prefix length, 0..=32.
    pub prefix: u8,
}

impl Ipv4Net {
    /// The subnet mask as a number.
    pub fn mask(&self) -> u32 {
        if self.prefix == 0 {
            0
        } else {
            u32::MAX << (32 - self.prefix)
        }
    }

    /// The first address (host bits zero).
    pub fn network(&self) -> u32 {
        u32::from(self.addr) & self.mask()
    }

    /// The last address (host bits one).
    pub fn broadcast(&self) -> u32 {
        self.network() | !self.mask()
    }

    /// Whether `ip` is inside.
    pub fn contains(&self, ip: Ipv4Addr) -> bool {
        u32::from(ip) & self.mask() == self.network()
    }

    /// Whether the two share any address.
    pub fn overlaps(&self, o: &Ipv4Net) -> bool {
        self.network() <= o.broadcast() && o.network() <= self.broadcast()
    }
}

impl fmt::Display for Ipv4Net {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.addr, self.prefix)
    }
}

impl FromStr for Ipv4Net {
    type Err = String;

    /// Parses `a.b.c.d/n`; the host bits are kept so the caller can tell a gateway-like form.
    fn from_str(s: &str) -> Result<Self, String> {
        let bad = || format!("invalid CIDR address: {s}");
        let (a, p) = s.split_once('/').ok_or_else(bad)?;
        let addr: Ipv4Addr = a.parse().map_err(|_| bad())?;
        let prefix: u8 = p.parse().map_err(|_| bad())?;
        if prefix > 32 {
            return Err(bad());
        }
        Ok(Self { addr, prefix })
    }
}

impl Ipv4Net {
    /// The same subnet with host bits cleared.
    pub fn normalised(&self) -> Self {
        Self {
            addr: Ipv4Addr::from(self.network()),
            prefix: self.prefix,
        }
    }
}

/// Docker's default local pools: 172.17-31.0.0/16, then 192.168.0.0/16 cut into /20s.
pub fn default_pools() -> impl Iterator<Item = Ipv4Net> {
    let b16 = (17u8..=31).map(|b| Ipv4Net {
        addr: Ipv4Addr::new(172, b, 0, 0),
        prefix: 16,
    });
    let c20 = (0u8..16).map(|i| Ipv4Net {
        addr: Ipv4Addr::new(192, 168, i * 16, 0),
        prefix: 20,
    });
    b16.chain(c20)
}

/// Subnets of the host's routes (connected networks included, other engines' bridges too),
/// except the default route, from `/proc/net/route`.
pub fn host_routes() -> Vec<Ipv4Net> {
    let Ok(s) = std::fs::read_to_string("/proc/net/route") else {
        return Vec::new();
    };
    s.lines()
        .skip(1)
        .filter_map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            if f.len() < 8 {
                return None;
            }
            // Little-endian hex as the kernel prints it on x86 and arm.
            let dst = u32::from_str_radix(f[1], 16).ok()?.swap_bytes();
            let mask = u32::from_str_radix(f[7], 16).ok()?.swap_bytes();
            (mask != 0).then(|| Ipv4Net {
                addr: Ipv4Addr::from(dst),
                prefix: mask.count_ones() as u8,
            })
        })
        .collect()
}

/// Docker's MAC for an address: `02:42` then the four address bytes.
pub fn mac_for(ip: Ipv4Addr) -> [u8; 6] {
    let o = ip.octets();
    [0x02, 0x42, o[0], o[1], o[2], o[3]]
}

/// `aa:bb:...` form.
pub fn mac_string(m: [u8; 6]) -> String {
    m.iter()
        .map(|b| format!("{b:02x}"))
        .collect::<Vec<_>>()
        .join(":")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn overlap_and_contains() {
        let a: Ipv4Net = "10.1.0.0/16".parse().unwrap();
        let b: Ipv4Net = "10.1.5.0/24".parse().unwrap();
        let c: Ipv4Net = "10.2.0.0/16".parse().unwrap();
        assert!(a.overlaps(&b) && b.overlaps(&a) && !a.overlaps(&c));
        assert!(a.contains("10.1.255.3".parse().unwrap()));
        assert_eq!(
            default_pools().nth(15).unwrap().to_string(),
            "192.168.0.0/20"
        );
        assert!("10.0.0.0/33".parse::<Ipv4Net>().is_err());
    }
}
