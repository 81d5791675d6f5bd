//! The short port syntax (`[ip:][host:]container[/proto]`), parsed as compose-go does with
//! docker's `nat.ParsePortSpecs` and `types.ParsePortConfig`.

use std::net::IpAddr;

/// One published port in long form.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LongPort {
    /// Host address, empty for all.
    pub host_ip: String,
    /// Container port.
    pub target: u32,
    /// Host port or range, empty for an ephemeral port.
    pub published: String,
    /// `tcp`, `udp` or `sctp`.
    pub protocol: String,
}

/// Parse a short port spec into one entry per container port (ranges expand).
pub fn parse_port(spec: &str) -> Result<Vec<LongPort>, String> {
    let (mut ip, host_port, container) = split_parts(spec);
    let (container, proto) = match container.split_once('/') {
        Some((p, proto)) => (p, proto),
        None => (container, "tcp"),
    };
    let proto_lower = proto.to_ascii_lowercase();
    if ip.starts_with('[') {
        ip = ip.trim_start_matches('[').trim_end_matches(']').to_string();
    }
    if !ip.is_empty() && ip.parse::<IpAddr>().is_err() {
        return Err(format!("invalid IP address: {ip}"));
    }
    if container.is_empty() {
        return Err(format!("no port specified: {spec}<empty>"));
    }
    let (start, end) =
        port_range(container).ok_or_else(|| format!("invalid containerPort: {container}"))?;
    let (mut hstart, mut hend) = (0u64, 0u64);
    if !host_port.is_empty() {
        (hstart, hend) =
            port_range(&host_port).ok_or_else(|| format!("invalid hostPort: {host_port}"))?;
    }
    if !host_port.is_empty() && end - start != hend.wrapping_sub(hstart) && end != start {
        return Err(format!(
            "invalid ranges specified for container and host Ports: {container} and {host_port}"
        ));
    }
    if !matches!(proto_lower.as_str(), "tcp" | "udp" | "sctp") {
        return Err(format!("invalid proto: {proto}"));
    }
    let mut out: Vec<(String, LongPort)> = Vec::new();
    for i in 0..=(end - start) {
        let target = start + i;
        let mut published = String::new();
        if !host_port.is_empty() {
            published = (hstart + i).to_string();
        }
        if start == end && hstart != hend {
            published = format!("{published}-{hend}");
        }
        out.push((
            format!("{target}/{proto_lower}"),
            LongPort {
                host_ip: ip.clone(),
                target: target as u32,
                published,
                protocol: proto_lower.clone(),
            },
        ));
    }
    // compose-go walks the ports in the string order of "port/proto".
    out.sort_by(|a, b| a.0.cmp(&b.0));
    Ok(out.into_iter().map(|(_, p)| p).collect())
}

fn split_parts(raw: &str) -> (String, String, &str) {
    let parts: Vec<&str> = raw.split(':').collect();
    let n = parts.len();
    let container = parts[n - 1];
    match n {
        1 => (String::new(), String::new(), container),
        2 => (String::new(), parts[0].to_string(), container),
        3 => (parts[0].to_string(), parts[1].to_string(), container),
        _ => (
            parts[..n - 2].join(":"),
            parts[n - 2].to_string(),
            container,
        ),
    }
}

fn port_range(s: &str) -> Option<(u64, u64)> {
    let parse = |p: &str| -> Option<u64> {
        let v: u64 = p.parse().ok()?;
        (v <= 65535).then_some(v)
    };
    match s.split_once('-') {
        None => {
            let v = parse(s)?;
            Some((v, v))
        }
        Some((a, b)) => {
            let (a, b) = (parse(a)?, parse(b)?);
            (b >= a).then_some((a, b))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn short_ports() {
        let p = parse_port("127.0.0.1:8080:80/udp").unwrap();
        assert_eq!(
            p,
            vec![LongPort {
                host_ip: "127.0.0.1".into(),
                target: 80,
                published: "8080".into(),
                protocol: "udp".into()
            }]
        );
        assert_eq!(parse_port("3000-3002").unwrap().len(), 3);
        let p = parse_port("9090-9091:8080-8081").unwrap();
        assert_eq!(p[1].published, "9091");
        let p = parse_port("8000-8010:80").unwrap();
        assert_eq!(p[0].published, "8000-8010");
        let p = parse_port("[::1]:80:80").unwrap();
        assert_eq!(p[0].host_ip, "::1");
        assert!(parse_port("80:80/xyz").is_err());
        assert!(parse_port("8000-8001:80-82").is_err());
        assert!(parse_port("").is_err());
    }
}
