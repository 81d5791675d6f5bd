//! A container's `/etc/hosts` and `/etc/resolv.conf` once its addresses are known, as Docker
//! writes them: its own address and hostname in hosts, and on user-defined networks the
//! embedded DNS server instead of the host's resolvers.

use super::sandbox::SandboxInfo;
use std::path::Path;

/// Rewrites `hosts` (from the create-time copy in `hosts.base`) and, on user-defined
/// networks, `resolv.conf` in the container directory `dir`. Files are rewritten in place so
/// bind mounts of them keep seeing the new content.
pub fn write(dir: &Path, hostname: &str, domain: &str, sb: &SandboxInfo) -> std::io::Result<()> {
    let hosts = dir.join("hosts");
    let base_path = dir.join("hosts.base");
    let base = match std::fs::read_to_string(&base_path) {
        Ok(b) => b,
        Err(_) => {
            let b = std::fs::read_to_string(&hosts).unwrap_or_default();
            std::fs::write(&base_path, &b)?;
            b
        }
    };
    let gw = sb.endpoints.first().and_then(|e| e.gateway);
    let mut out = String::new();
    for l in base.lines() {
        // `--add-host name:host-gateway` points at the gateway of the first network.
        match l.split_once('\t') {
            Some(("host-gateway", name)) => {
                if let Some(g) = gw {
                    out.push_str(&format!("{g}\t{name}\n"));
                }
            }
            _ => {
                out.push_str(l);
                out.push('\n');
            }
        }
    }
    if let Some(e) = sb.endpoints.first() {
        let fqdn = if domain.is_empty() {
            hostname.to_string()
        } else {
            format!("{hostname}.{domain} {hostname}")
        };
        out.push_str(&format!("{}\t{fqdn}\n", e.ip));
    }
    std::fs::write(&hosts, out)?;
    if sb.user_network
        && let Some(g) = gw
    {
        let resolv = dir.join("resolv.conf");
        let old = std::fs::read_to_string(&resolv).unwrap_or_default();
        let base = dir.join("resolv.conf.base");
        let old = match std::fs::read_to_string(&base) {
            Ok(b) => b,
            Err(_) => {
                std::fs::write(&base, &old)?;
                old
            }
        };
        let mut r = format!("nameserver {g}\n");
        let mut options = vec!["ndots:0".to_string()];
        for l in old.lines() {
            if l.starts_with("search ") {
                r.push_str(l);
                r.push('\n');
            } else if let Some(o) = l.strip_prefix("options ") {
                options.extend(
                    o.split_whitespace()
                        .filter(|x| !x.starts_with("ndots:"))
                        .map(str::to_string),
                );
            }
        }
        r.push_str(&format!("options {}\n", options.join(" ")));
        std::fs::write(&resolv, r)?;
    }
    Ok(())
}
