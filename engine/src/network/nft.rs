//! Berth's one nftables table, `ip berth`, rendered whole from state and swapped in atomically
//! by one `nft -f -` run: other software's tables are never touched.

use super::ipam::Ipv4Net;
use std::fmt::Write as _;
use std::io::Write as _;
use std::net::Ipv4Addr;
use std::process::{Command, Stdio};

/// One bridge network as the rules see it.
#[derive(Debug, Clone)]
pub struct NetRules {
    /// The bridge device.
    pub bridge: String,
    /// The subnet.
    pub subnet: Ipv4Net,
    /// No traffic in or out of the bridge.
    pub internal: bool,
    /// Masquerade traffic leaving through other interfaces.
    pub masquerade: bool,
}

/// One published port.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PortRule {
    /// `tcp` or `udp`.
    pub proto: String,
    /// The host address it is bound to; unspecified means every local address.
    pub host_ip: Ipv4Addr,
    /// The host port.
    pub host_port: u16,
    /// The container's address.
    pub ip: Ipv4Addr,
    /// The container port.
    pub port: u16,
}

/// The table's text: nat for published ports (from outside, from the host itself including
/// 127.0.0.1, hairpin) and masquerade, filter for isolation between bridges.
pub fn render(table: &str, nets: &[NetRules], ports: &[PortRule]) -> String {
    let mut s = String::new();
    // Declaring then deleting makes the swap work whether or not the table exists.
    let _ = writeln!(
        s,
        "table ip {table} {{}}\ndelete table ip {table}\ntable ip {table} {{"
    );
    s.push_str("  chain ports {\n");
    for p in ports {
        let daddr = if p.host_ip.is_unspecified() {
            String::new()
        } else {
            format!("ip daddr {} ", p.host_ip)
        };
        let _ = writeln!(
            s,
            "    {daddr}{} dport {} dnat to {}:{}",
            p.proto, p.host_port, p.ip, p.port
        );
    }
    s.push_str("  }\n");
    s.push_str(
        "  chain prerouting {\n    type nat hook prerouting priority dstnat; policy accept;\n    fib daddr type local jump ports\n  }\n",
    );
    s.push_str(
        "  chain output {\n    type nat hook output priority -100; policy accept;\n    fib daddr type local jump ports\n  }\n",
    );
    s.push_str(
        "  chain postrouting {\n    type nat hook postrouting priority srcnat; policy accept;\n",
    );
    for n in nets {
        // Host-to-127.0.0.1 traffic DNATed onto a bridge (route_localnet on it).
        let _ = writeln!(
            s,
            "    ip saddr 127.0.0.0/8 oifname \"{}\" masquerade",
            n.bridge
        );
        // Hairpin: a container reaching a published port of its own network.
        let _ = writeln!(
            s,
            "    ct status dnat ip saddr {0} ip daddr {0} oifname \"{1}\" masquerade",
            n.subnet, n.bridge
        );
        if n.masquerade && !n.internal {
            let _ = writeln!(
                s,
                "    ip saddr {} oifname != \"{}\" masquerade",
                n.subnet, n.bridge
            );
        }
    }
    s.push_str("  }\n");
    s.push_str("  chain forward {\n    type filter hook forward priority filter; policy accept;\n");
    for n in nets {
        if n.internal {
            let _ = writeln!(s, "    iifname \"{0}\" oifname != \"{0}\" drop", n.bridge);
            let _ = writeln!(s, "    oifname \"{0}\" iifname != \"{0}\" drop", n.bridge);
        }
    }
    s.push_str("    ct state established,related accept\n");
    for n in nets {
        let _ = writeln!(s, "    iifname \"{0}\" oifname \"{0}\" accept", n.bridge);
    }
    for n in nets {
        // Different Berth bridges never talk, except through published ports.
        let _ = writeln!(
            s,
            "    iifname \"{}\" oifname \"berth*\" ct status != dnat drop",
            n.bridge
        );
    }
    s.push_str("  }\n}\n");
    s
}

/// Applies a script with `nft -f -`.
pub fn apply(script: &str) -> std::io::Result<()> {
    run(Command::new("nft").args(["-f", "-"]), script)
}

/// Applies a script with `nft -f -` inside the network namespace pinned at `netns`.
pub fn apply_in(netns: &std::path::Path, script: &str) -> std::io::Result<()> {
    run(
        Command::new("nsenter")
            .arg(format!("--net={}", netns.display()))
            .args(["nft", "-f", "-"]),
        script,
    )
}

fn run(cmd: &mut Command, script: &str) -> std::io::Result<()> {
    let mut c = cmd
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()?;
    if let Some(mut i) = c.stdin.take() {
        i.write_all(script.as_bytes())?;
    }
    let out = c.wait_with_output()?;
    if !out.status.success() {
        return Err(std::io::Error::other(format!(
            "nft: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        )));
    }
    Ok(())
}

/// Removes the table (tests, uninstall). Best effort.
pub fn delete_table(table: &str) {
    let _ = apply(&format!("table ip {table} {{}}\ndelete table ip {table}\n"));
}
