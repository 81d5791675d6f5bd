//! Container networking: bridge networks, IPAM, network namespaces, published ports through
//! nftables, and the embedded DNS server.

pub mod dns;
