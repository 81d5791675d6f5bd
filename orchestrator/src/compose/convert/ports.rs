//! `ports` and `expose` as `ExposedPorts` and `PortBindings` (compose's `buildContainerPorts`
//! and `buildContainerPortBindingOptions`). The loader already expanded the short syntax into
//! one entry per container port; a host range for one container port stays a range, which the
//! engine allocates from.

use std::net::IpAddr;

use bollard_stubs::models::{PortBinding, PortMap};
use compose_spec::model::{Service, ServicePort};

use super::invalid;
use crate::compose::error::Result;

fn key(p: &ServicePort) -> String {
    format!("{}/{}", p.target, p.protocol.as_deref().unwrap_or("tcp"))
}

/// Published and exposed ports, `port/proto`, sorted and without duplicates.
pub(super) fn exposed_ports(s: &Service) -> Result<Vec<String>> {
    let mut out: Vec<String> = s.ports.iter().map(key).collect();
    for e in &s.expose {
        let (range, proto) = e.split_once('/').unwrap_or((e, "tcp"));
        let (start, end) = range.split_once('-').unwrap_or((range, range));
        let bad = || invalid(s, "expose", format!("invalid port range {e:?}"));
        let start: u16 = start.trim().parse().map_err(|_| bad())?;
        let end: u16 = end.trim().parse().map_err(|_| bad())?;
        if end < start {
            return Err(bad());
        }
        out.extend((start..=end).map(|p| format!("{p}/{}", proto.to_ascii_lowercase())));
    }
    out.sort();
    out.dedup();
    Ok(out)
}

/// One binding per `ports` entry, grouped by container port; an empty host port asks the
/// engine for a random one.
pub(super) fn port_bindings(s: &Service) -> Result<Option<PortMap>> {
    if s.ports.is_empty() {
        return Ok(None);
    }
    let mut map = PortMap::new();
    for p in &s.ports {
        let host_ip = match p.host_ip.as_deref().filter(|ip| !ip.is_empty()) {
            Some(ip) => ip
                .parse::<IpAddr>()
                .map(|ip| ip.to_string())
                .map_err(|e| invalid(s, "ports.host_ip", format!("{ip:?}: {e}")))?,
            None => String::new(),
        };
        map.entry(key(p))
            .or_insert_with(|| Some(Vec::new()))
            .get_or_insert_with(Vec::new)
            .push(PortBinding {
                host_ip: Some(host_ip),
                host_port: Some(p.published.clone().unwrap_or_default()),
            });
    }
    Ok(Some(map))
}

#[cfg(test)]
mod tests {
    use super::super::testing::*;

    #[test]
    fn ports_and_expose() {
        let p = project(
            "services:\n  web:\n    image: x\n    ports:\n      - 80\n      - '8080:80'\n      - '127.0.0.1:5000-5001:5000-5001/udp'\n      - '9000-9010:9000'\n      - target: 443\n        published: '8443'\n        host_ip: '::1'\n        protocol: tcp\n    expose: ['3000', '4000-4001/udp']\n",
        );
        let b = convert(&p, "web").body;
        assert_eq!(
            b.exposed_ports.unwrap(),
            [
                "3000/tcp", "4000/udp", "4001/udp", "443/tcp", "5000/udp", "5001/udp", "80/tcp",
                "9000/tcp"
            ]
        );
        let m = b.host_config.unwrap().port_bindings.unwrap();
        let b80 = m["80/tcp"].as_ref().unwrap();
        assert_eq!(b80.len(), 2);
        assert_eq!(b80[0].host_port.as_deref(), Some(""));
        assert_eq!(b80[0].host_ip.as_deref(), Some(""));
        assert_eq!(b80[1].host_port.as_deref(), Some("8080"));
        let u = m["5001/udp"].as_ref().unwrap();
        assert_eq!(u[0].host_ip.as_deref(), Some("127.0.0.1"));
        assert_eq!(u[0].host_port.as_deref(), Some("5001"));
        assert_eq!(
            m["9000/tcp"].as_ref().unwrap()[0].host_port.as_deref(),
            Some("9000-9010")
        );
        let s = m["443/tcp"].as_ref().unwrap();
        assert_eq!(s[0].host_ip.as_deref(), Some("::1"));
        assert_eq!(s[0].host_port.as_deref(), Some("8443"));
    }

    #[test]
    fn wire_format_is_the_engine_api_s() {
        let p = project("services:\n  web:\n    image: x\n    ports: ['8080:80']\n");
        let json = serde_json::to_value(convert(&p, "web").body).unwrap();
        assert_eq!(json["ExposedPorts"], serde_json::json!({"80/tcp": {}}));
        assert_eq!(
            json["HostConfig"]["PortBindings"],
            serde_json::json!({"80/tcp": [{"HostIp": "", "HostPort": "8080"}]})
        );
    }

    #[test]
    fn no_ports_no_bindings() {
        let p = project("services:\n  web:\n    image: x\n");
        let b = convert(&p, "web").body;
        assert!(b.exposed_ports.is_none());
        assert!(b.host_config.unwrap().port_bindings.is_none());
    }
}
