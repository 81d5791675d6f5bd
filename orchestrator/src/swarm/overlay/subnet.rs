//! IPv4 subnets of overlay networks and the pool default subnets come from.

use std::net::Ipv4Addr;

/// An IPv4 subnet, normalised (host bits cleared).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Subnet {
    /// The network address.
    pub addr: Ipv4Addr,
    /// The prefix length.
    pub prefix: u8,
}

/// Docker's default address pool for swarm networks, cut into /24s.
const POOL: Subnet = Subnet {
    addr: Ipv4Addr::new(10, 0, 0, 0),
    prefix: 8,
};
const POOL_SIZE: u8 = 24;

impl Subnet {
    fn mask(&self) -> u32 {
        if self.prefix == 0 {
            0
        } else {
            u32::MAX << (32 - self.prefix)
        }
    }

    /// The first address.
    pub fn first(&self) -> u32 {
        u32::from(self.addr) & self.mask()
    }

    /// The last address (broadcast).
    pub fn last(&self) -> u32 {
        self.first() | !self.mask()
    }

    /// Whether `ip` is inside.
    pub fn contains(&self, ip: Ipv4Addr) -> bool {
        u32::from(ip) & self.mask() == self.first()
    }

    /// Whether the two share an address.
    pub fn overlaps(&self, o: &Subnet) -> bool {
        self.first() <= o.last() && o.first() <= self.last()
    }

    /// Parses `a.b.c.d/n`, clearing host bits.
    pub fn parse(s: &str) -> Result<Self, String> {
        let bad = || format!("invalid CIDR address: {s}");
        let (a, p) = s.split_once('/').ok_or_else(bad)?;
        let addr: Ipv4Addr = a.parse().map_err(|_| bad())?;
        let prefix: u8 = p.parse().map_err(|_| bad())?;
        if prefix > 32 {
            return Err(bad());
        }
        let mut n = Self { addr, prefix };
        n.addr = Ipv4Addr::from(n.first());
        Ok(n)
    }

    /// The first /24 of the default pool that overlaps none of `taken`, skipping the first
    /// (Docker keeps 10.0.0.0/24 for the ingress network).
    pub fn free_default(taken: &[Subnet]) -> Option<Subnet> {
        let step = 1u32 << (32 - POOL_SIZE);
        (1..(1u32 << (POOL_SIZE - POOL.prefix)))
            .map(|i| Subnet {
                addr: Ipv4Addr::from(POOL.first() + i * step),
                prefix: POOL_SIZE,
            })
            .find(|c| !taken.iter().any(|t| t.overlaps(c)))
    }
}

impl std::fmt::Display for Subnet {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.addr, self.prefix)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_picks_free_pools() {
        let a = Subnet::parse("10.0.1.7/24").unwrap();
        assert_eq!(a.to_string(), "10.0.1.0/24");
        assert!(a.contains(Ipv4Addr::new(10, 0, 1, 255)));
        assert!(Subnet::parse("10.0.1.0/33").is_err());
        assert!(Subnet::parse("nonsense").is_err());
        let next = Subnet::free_default(&[a, Subnet::parse("10.0.2.0/23").unwrap()]).unwrap();
        assert_eq!(next.to_string(), "10.0.4.0/24");
        assert!(Subnet::parse("10.0.0.0/16").unwrap().overlaps(&a));
    }
}
