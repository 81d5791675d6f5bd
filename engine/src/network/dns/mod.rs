//! The embedded DNS server that resolves container names on user-defined networks.
