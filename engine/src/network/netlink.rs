//! A minimal rtnetlink client over a raw `NETLINK_ROUTE` socket: just the link, address and
//! route requests Berth needs, each acknowledged, on one socket per namespace.
//!
//! Hand-rolled rather than the `rtnetlink` crate: a dozen fixed requests do not justify an
//! async stack of four crates, and a blocking socket can be used from the netns setup thread.

use std::io;
use std::net::Ipv4Addr;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};

const NLMSG_HDR: usize = 16;
const IFINFO_LEN: usize = 16;

const IFLA_ADDRESS: u16 = 1;
const IFLA_IFNAME: u16 = 3;
const IFLA_MTU: u16 = 4;
const IFLA_MASTER: u16 = 10;
const IFLA_LINKINFO: u16 = 18;
const IFLA_NET_NS_FD: u16 = 28;
const IFLA_INFO_KIND: u16 = 1;
const IFLA_INFO_DATA: u16 = 2;
const VETH_INFO_PEER: u16 = 1;
const IFA_LOCAL: u16 = 2;
const IFA_ADDRESS: u16 = 1;
const IFA_BROADCAST: u16 = 4;
const RTA_GATEWAY: u16 = 5;
const NLA_F_NESTED: u16 = 0x8000;
const IFLA_VXLAN_ID: u16 = 1;
const IFLA_VXLAN_LEARNING: u16 = 7;
const IFLA_VXLAN_PROXY: u16 = 11;
const IFLA_VXLAN_PORT: u16 = 15;
const NDA_DST: u16 = 1;
const NDA_LLADDR: u16 = 2;
const NUD_PERMANENT: u16 = 0x80;
const NTF_SELF: u8 = 0x02;

/// One rtnetlink socket, bound to the network namespace it was opened in.
#[derive(Debug)]
pub struct Netlink {
    fd: OwnedFd,
    seq: u32,
}

/// A request under construction: the netlink header, a fixed payload, then attributes.
struct Msg {
    buf: Vec<u8>,
    nests: Vec<usize>,
}

impl Msg {
    fn new(ty: u16, flags: u16, fixed: &[u8]) -> Self {
        let mut buf = vec![0u8; NLMSG_HDR];
        buf[4..6].copy_from_slice(&ty.to_ne_bytes());
        let f = flags | libc::NLM_F_REQUEST as u16 | libc::NLM_F_ACK as u16;
        buf[6..8].copy_from_slice(&f.to_ne_bytes());
        buf.extend_from_slice(fixed);
        Self {
            buf,
            nests: Vec::new(),
        }
    }

    fn pad(&mut self) {
        while self.buf.len() % 4 != 0 {
            self.buf.push(0);
        }
    }

    fn attr(&mut self, ty: u16, data: &[u8]) -> &mut Self {
        let len = (4 + data.len()) as u16;
        self.buf.extend_from_slice(&len.to_ne_bytes());
        self.buf.extend_from_slice(&ty.to_ne_bytes());
        self.buf.extend_from_slice(data);
        self.pad();
        self
    }

    fn attr_str(&mut self, ty: u16, s: &str) -> &mut Self {
        let mut d = s.as_bytes().to_vec();
        d.push(0);
        self.attr(ty, &d)
    }

    fn attr_u32(&mut self, ty: u16, v: u32) -> &mut Self {
        self.attr(ty, &v.to_ne_bytes())
    }

    fn begin(&mut self, ty: u16) -> &mut Self {
        self.nests.push(self.buf.len());
        self.attr(ty | NLA_F_NESTED, &[])
    }

    fn end(&mut self) -> &mut Self {
        if let Some(at) = self.nests.pop() {
            let len = (self.buf.len() - at) as u16;
            self.buf[at..at + 2].copy_from_slice(&len.to_ne_bytes());
        }
        self
    }

    fn raw(&mut self, data: &[u8]) -> &mut Self {
        self.buf.extend_from_slice(data);
        self
    }
}

fn ifinfo(index: i32, flags: u32, change: u32) -> [u8; IFINFO_LEN] {
    let mut b = [0u8; IFINFO_LEN];
    b[0] = libc::AF_UNSPEC as u8;
    b[4..8].copy_from_slice(&index.to_ne_bytes());
    b[8..12].copy_from_slice(&flags.to_ne_bytes());
    b[12..16].copy_from_slice(&change.to_ne_bytes());
    b
}

/// Interface index of `name` in the calling thread's namespace, if it exists.
pub fn index_of(name: &str) -> Option<u32> {
    let c = std::ffi::CString::new(name).ok()?;
    // SAFETY: `c` is a valid NUL-terminated string for the duration of the call.
    let i = unsafe { libc::if_nametoindex(c.as_ptr()) };
    (i != 0).then_some(i)
}

impl Netlink {
    /// Opens a socket in the calling thread's network namespace.
    pub fn open() -> io::Result<Self> {
        // SAFETY: plain socket(2) call; the result is checked before use.
        let fd = unsafe {
            libc::socket(
                libc::AF_NETLINK,
                libc::SOCK_RAW | libc::SOCK_CLOEXEC,
                libc::NETLINK_ROUTE,
            )
        };
        if fd < 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: `fd` is a fresh descriptor that nothing else owns.
        let fd = unsafe { OwnedFd::from_raw_fd(fd) };
        Ok(Self { fd, seq: 1 })
    }

    /// Sends one request and waits for its acknowledgement.
    fn request(&mut self, m: Msg) -> io::Result<()> {
        self.exchange(m).map(drop)
    }

    /// Sends one request, waits for its acknowledgement and returns the interface index of
    /// a link message in the reply, if any.
    fn exchange(&mut self, mut m: Msg) -> io::Result<Option<u32>> {
        self.seq = self.seq.wrapping_add(1);
        let len = m.buf.len() as u32;
        m.buf[0..4].copy_from_slice(&len.to_ne_bytes());
        m.buf[8..12].copy_from_slice(&self.seq.to_ne_bytes());
        // SAFETY: the buffer is valid for its length; the kernel reads only.
        let n = unsafe { libc::send(self.fd.as_raw_fd(), m.buf.as_ptr().cast(), m.buf.len(), 0) };
        if n < 0 {
            return Err(io::Error::last_os_error());
        }
        let mut buf = [0u8; 8192];
        let mut found = None;
        loop {
            // SAFETY: the buffer is valid and writable for its length.
            let n =
                unsafe { libc::recv(self.fd.as_raw_fd(), buf.as_mut_ptr().cast(), buf.len(), 0) };
            if n < 0 {
                return Err(io::Error::last_os_error());
            }
            let mut off = 0usize;
            let n = n as usize;
            while off + NLMSG_HDR <= n {
                let mlen =
                    u32::from_ne_bytes(buf[off..off + 4].try_into().unwrap_or([0; 4])) as usize;
                let ty = u16::from_ne_bytes([buf[off + 4], buf[off + 5]]);
                let seq = u32::from_ne_bytes(buf[off + 8..off + 12].try_into().unwrap_or([0; 4]));
                if ty == libc::NLMSG_ERROR as u16 && seq == self.seq && off + 20 <= n {
                    let code =
                        i32::from_ne_bytes(buf[off + 16..off + 20].try_into().unwrap_or([0; 4]));
                    return if code == 0 {
                        Ok(found)
                    } else {
                        Err(io::Error::from_raw_os_error(-code))
                    };
                }
                if ty == libc::RTM_NEWLINK && seq == self.seq && off + NLMSG_HDR + 8 <= n {
                    let i = off + NLMSG_HDR + 4;
                    found = Some(u32::from_ne_bytes(
                        buf[i..i + 4].try_into().unwrap_or([0; 4]),
                    ));
                }
                if mlen < NLMSG_HDR {
                    break;
                }
                off += (mlen + 3) & !3;
            }
        }
    }

    /// Creates a bridge `name` with `mtu` (0: default) and a locally administered MAC.
    pub fn add_bridge(&mut self, name: &str, mtu: u32) -> io::Result<()> {
        let flags = (libc::NLM_F_CREATE | libc::NLM_F_EXCL) as u16;
        let mut m = Msg::new(libc::RTM_NEWLINK, flags, &ifinfo(0, 0, 0));
        m.attr_str(IFLA_IFNAME, name);
        if mtu > 0 {
            m.attr_u32(IFLA_MTU, mtu);
        }
        m.begin(IFLA_LINKINFO)
            .attr_str(IFLA_INFO_KIND, "bridge")
            .end();
        self.request(m)
    }

    /// Creates a veth pair: `host` here (on `master`, up) and `peer` created directly in the
    /// namespace `netns` with `mac`, so names never clash with the host's.
    pub fn add_veth(
        &mut self,
        host: &str,
        peer: &str,
        mtu: u32,
        master: u32,
        netns: RawFd,
        mac: [u8; 6],
    ) -> io::Result<()> {
        let flags = (libc::NLM_F_CREATE | libc::NLM_F_EXCL) as u16;
        let up = libc::IFF_UP as u32;
        let mut m = Msg::new(libc::RTM_NEWLINK, flags, &ifinfo(0, up, up));
        m.attr_str(IFLA_IFNAME, host);
        if mtu > 0 {
            m.attr_u32(IFLA_MTU, mtu);
        }
        m.attr_u32(IFLA_MASTER, master);
        m.begin(IFLA_LINKINFO)
            .attr_str(IFLA_INFO_KIND, "veth")
            .begin(IFLA_INFO_DATA)
            .begin(VETH_INFO_PEER)
            .raw(&ifinfo(0, 0, 0))
            .attr_str(IFLA_IFNAME, peer)
            .attr(IFLA_ADDRESS, &mac)
            .attr_u32(IFLA_NET_NS_FD, netns as u32);
        if mtu > 0 {
            m.attr_u32(IFLA_MTU, mtu);
        }
        m.end().end().end();
        self.request(m)
    }

    /// The index of link `name` in this socket's namespace.
    pub fn link_index(&mut self, name: &str) -> io::Result<u32> {
        let mut m = Msg::new(libc::RTM_GETLINK, 0, &ifinfo(0, 0, 0));
        m.attr_str(IFLA_IFNAME, name);
        self.exchange(m)?
            .ok_or_else(|| io::Error::new(io::ErrorKind::NotFound, name.to_string()))
    }

    /// Sets a link up.
    pub fn set_up(&mut self, index: u32) -> io::Result<()> {
        let up = libc::IFF_UP as u32;
        let m = Msg::new(libc::RTM_NEWLINK, 0, &ifinfo(index as i32, up, up));
        self.request(m)
    }

    /// Deletes a link (a veth's peer goes with it).
    pub fn del_link(&mut self, index: u32) -> io::Result<()> {
        let m = Msg::new(libc::RTM_DELLINK, 0, &ifinfo(index as i32, 0, 0));
        self.request(m)
    }

    /// Adds `addr/prefix` (with its broadcast) to a link.
    pub fn add_addr(&mut self, index: u32, addr: Ipv4Addr, prefix: u8) -> io::Result<()> {
        let mut fixed = [0u8; 8];
        fixed[0] = libc::AF_INET as u8;
        fixed[1] = prefix;
        fixed[4..8].copy_from_slice(&index.to_ne_bytes());
        let flags = (libc::NLM_F_CREATE | libc::NLM_F_REPLACE) as u16;
        let mut m = Msg::new(libc::RTM_NEWADDR, flags, &fixed);
        let mask = if prefix == 0 {
            0
        } else {
            u32::MAX << (32 - prefix)
        };
        let bcast = Ipv4Addr::from(u32::from(addr) | !mask);
        m.attr(IFA_LOCAL, &addr.octets())
            .attr(IFA_ADDRESS, &addr.octets())
            .attr(IFA_BROADCAST, &bcast.octets());
        self.request(m)
    }

    /// Creates VXLAN device `name` (ID `vni`, UDP `port`) on bridge `master`, up: no learning
    /// and proxy ARP, so it answers and forwards only for the peers programmed into it and
    /// never floods the other nodes.
    pub fn add_vxlan(
        &mut self,
        name: &str,
        vni: u32,
        port: u16,
        mtu: u32,
        master: u32,
    ) -> io::Result<()> {
        let flags = (libc::NLM_F_CREATE | libc::NLM_F_EXCL) as u16;
        let up = libc::IFF_UP as u32;
        let mut m = Msg::new(libc::RTM_NEWLINK, flags, &ifinfo(0, up, up));
        m.attr_str(IFLA_IFNAME, name);
        if mtu > 0 {
            m.attr_u32(IFLA_MTU, mtu);
        }
        m.attr_u32(IFLA_MASTER, master);
        m.begin(IFLA_LINKINFO)
            .attr_str(IFLA_INFO_KIND, "vxlan")
            .begin(IFLA_INFO_DATA)
            .attr_u32(IFLA_VXLAN_ID, vni)
            .attr(IFLA_VXLAN_PORT, &port.to_be_bytes())
            .attr(IFLA_VXLAN_LEARNING, &[0])
            .attr(IFLA_VXLAN_PROXY, &[1])
            .end()
            .end();
        self.request(m)
    }

    /// Adds (`add`) or removes a remote task on VXLAN device `index`: the forwarding entry
    /// sending its MAC to `vtep`, and the neighbour entry the device answers ARP from.
    pub fn vxlan_peer(
        &mut self,
        index: u32,
        ip: Ipv4Addr,
        mac: [u8; 6],
        vtep: Ipv4Addr,
        add: bool,
    ) -> io::Result<()> {
        let (ty, flags) = if add {
            (
                libc::RTM_NEWNEIGH,
                (libc::NLM_F_CREATE | libc::NLM_F_REPLACE) as u16,
            )
        } else {
            (libc::RTM_DELNEIGH, 0)
        };
        let ndmsg = |family: i32, ntf: u8| {
            let mut b = [0u8; 12];
            b[0] = family as u8;
            b[4..8].copy_from_slice(&(index as i32).to_ne_bytes());
            b[8..10].copy_from_slice(&NUD_PERMANENT.to_ne_bytes());
            b[10] = ntf;
            b
        };
        let mut fdb = Msg::new(ty, flags, &ndmsg(libc::AF_BRIDGE, NTF_SELF));
        fdb.attr(NDA_LLADDR, &mac).attr(NDA_DST, &vtep.octets());
        let mut neigh = Msg::new(ty, flags, &ndmsg(libc::AF_INET, 0));
        neigh.attr(NDA_DST, &ip.octets()).attr(NDA_LLADDR, &mac);
        let missing = |e: &io::Error| !add && e.raw_os_error() == Some(libc::ENOENT);
        for m in [fdb, neigh] {
            match self.request(m) {
                Err(e) if !missing(&e) => return Err(e),
                _ => {}
            }
        }
        Ok(())
    }

    /// Sets a link's MAC address.
    pub fn set_mac(&mut self, index: u32, mac: [u8; 6]) -> io::Result<()> {
        let mut m = Msg::new(libc::RTM_NEWLINK, 0, &ifinfo(index as i32, 0, 0));
        m.attr(IFLA_ADDRESS, &mac);
        self.request(m)
    }

    /// Adds the default route via `gw`.
    pub fn add_default_route(&mut self, gw: Ipv4Addr) -> io::Result<()> {
        let fixed = [
            libc::AF_INET as u8,
            0,
            0,
            0,
            libc::RT_TABLE_MAIN,
            libc::RTPROT_BOOT,
            libc::RT_SCOPE_UNIVERSE,
            libc::RTN_UNICAST,
            0,
            0,
            0,
            0,
        ];
        let flags = (libc::NLM_F_CREATE | libc::NLM_F_REPLACE) as u16;
        let mut m = Msg::new(libc::RTM_NEWROUTE, flags, &fixed);
        m.attr(RTA_GATEWAY, &gw.octets());
        self.request(m)
    }
}
