//! `network_mode`, `networks`, `mac_address` and links (compose's `defaultNetworkSettings`,
//! `createEndpointSettings` and `getLinks`).

use std::collections::HashMap;
use std::net::IpAddr;

use bollard_stubs::models::{EndpointIpamConfig, EndpointSettings, NetworkingConfig};
use compose_spec::model::{Service, ServiceNetwork};

use super::{ContainerSpec, invalid, network_name, non_empty, non_empty_map};
use crate::compose::error::Result;

/// How the container is networked.
pub(super) struct Settings {
    /// `HostConfig.NetworkMode`.
    pub mode: Option<String>,
    /// The create request's endpoint (the primary network).
    pub config: Option<NetworkingConfig>,
    /// The other networks, in priority order.
    pub extra: Vec<(String, EndpointSettings)>,
    /// `HostConfig.Links` (also set on every endpoint).
    pub links: Vec<String>,
}

/// The service's networks in compose's order: higher `priority` first, then by name.
fn by_priority(s: &Service) -> Vec<&str> {
    let mut keys: Vec<(&str, i64)> = s
        .networks
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_ref().map_or(0, |n| n.priority)))
        .collect();
    keys.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(b.0)));
    keys.into_iter().map(|(k, _)| k).collect()
}

/// The network mode, endpoints and links of the container.
pub(super) fn settings(spec: &ContainerSpec) -> Result<Settings> {
    let s = spec.service;
    let links = links(spec);
    if let Some(mode) = s.network_mode.as_deref() {
        let mode = match mode.strip_prefix("service:") {
            Some(name) => match spec.service_containers.get(name) {
                Some(id) => format!("container:{id}"),
                None => {
                    return Err(invalid(
                        s,
                        "network_mode",
                        format!(
                            "cannot share network namespace with service {name}: container missing"
                        ),
                    ));
                }
            },
            // compose sends `disabled` with NetworkDisabled set; `none` is the engine's word for
            // the same thing and needs no network of that name.
            None if mode == "disabled" => "none".to_string(),
            None => mode.to_string(),
        };
        return Ok(Settings {
            mode: Some(mode),
            config: None,
            extra: Vec::new(),
            links,
        });
    }
    if spec.project.networks.is_empty() {
        return Ok(Settings {
            mode: Some("none".into()),
            config: None,
            extra: Vec::new(),
            links,
        });
    }
    let ordered = by_priority(s);
    let (primary, rest) = match ordered.split_first() {
        Some((p, rest)) => (*p, rest),
        None => ("default", &[][..]),
    };
    let mut main = endpoint(spec, primary, &links)?;
    if let Some(mac) = s.mac_address.as_deref().filter(|m| !m.is_empty()) {
        match main.mac_address.as_deref() {
            Some(own) if !own.eq_ignore_ascii_case(mac) => {
                return Err(invalid(
                    s,
                    "mac_address",
                    format!(
                        "the service-level mac_address should have the same value as network {primary}"
                    ),
                ));
            }
            Some(_) => {}
            None => main.mac_address = Some(mac_address(s, "mac_address", mac)?),
        }
    }
    let main_name = network_name(spec.project, primary);
    let extra = rest
        .iter()
        .map(|key| {
            Ok((
                network_name(spec.project, key),
                endpoint(spec, key, &links)?,
            ))
        })
        .collect::<Result<Vec<_>>>()?;
    Ok(Settings {
        mode: Some(main_name.clone()),
        config: Some(NetworkingConfig {
            endpoints_config: Some(HashMap::from([(main_name, main)])),
        }),
        extra,
        links,
    })
}

/// The container's name, then (except for `run` containers, as compose's
/// `--use-aliases` default) the service name and the network's aliases.
fn aliases(spec: &ContainerSpec, cfg: Option<&ServiceNetwork>) -> Vec<String> {
    let mut out = vec![spec.name.to_string()];
    if !spec.oneoff {
        out.push(spec.service.name.clone());
        if let Some(c) = cfg {
            out.extend(c.aliases.iter().cloned());
        }
    }
    out
}

fn endpoint(spec: &ContainerSpec, key: &str, links: &[String]) -> Result<EndpointSettings> {
    let s = spec.service;
    let cfg = s.networks.get(key).and_then(Option::as_ref);
    let mut ep = EndpointSettings {
        aliases: Some(aliases(spec, cfg)),
        links: non_empty(links.to_vec()),
        ..Default::default()
    };
    let Some(c) = cfg else {
        return Ok(ep);
    };
    let field = |f: &str| format!("networks.{key}.{f}");
    let ip = |v: Option<&str>, f: &str| -> Result<Option<String>> {
        v.filter(|v| !v.is_empty())
            .map(|v| {
                v.parse::<IpAddr>()
                    .map(|ip| ip.to_canonical().to_string())
                    .map_err(|e| invalid(s, &field(f), format!("{v:?}: {e}")))
            })
            .transpose()
    };
    let v4 = ip(c.ipv4_address.as_deref(), "ipv4_address")?;
    let v6 = ip(c.ipv6_address.as_deref(), "ipv6_address")?;
    let link_local = c
        .link_local_ips
        .iter()
        .filter(|l| !l.is_empty())
        .map(|l| ip(Some(l), "link_local_ips").map(Option::unwrap_or_default))
        .collect::<Result<Vec<_>>>()?;
    if v4.is_some() || v6.is_some() || !link_local.is_empty() {
        ep.ipam_config = Some(EndpointIpamConfig {
            ipv4_address: v4.clone(),
            ipv6_address: v6,
            link_local_ips: non_empty(link_local),
        });
    }
    ep.ip_address = v4;
    if let Some(mac) = c.mac_address.as_deref().filter(|m| !m.is_empty()) {
        ep.mac_address = Some(mac_address(s, &field("mac_address"), mac)?);
    }
    let mut opts = non_empty_map(&c.driver_opts);
    if let Some(ifname) = c.interface_name.as_deref().filter(|n| !n.is_empty()) {
        const IFNAME: &str = "com.docker.network.endpoint.ifname";
        let o = opts.get_or_insert_with(HashMap::new);
        if o.get(IFNAME).is_some_and(|n| n != ifname) {
            tracing::warn!(
                "ignoring services.{}.networks.{key}.interface_name as {IFNAME} driver_opts is already declared",
                s.name
            );
        }
        o.insert(IFNAME.to_string(), ifname.to_string());
    }
    ep.driver_opts = opts;
    ep.gw_priority = (c.gw_priority != 0).then_some(c.gw_priority);
    Ok(ep)
}

/// A MAC address as Go's `net.ParseMAC` accepts it (6, 8 or 20 octets, `:` or `-`).
fn mac_address(s: &Service, field: &str, mac: &str) -> Result<String> {
    let sep = if mac.contains('-') { '-' } else { ':' };
    let octets: Vec<&str> = mac.split(sep).collect();
    let ok = matches!(octets.len(), 6 | 8 | 20)
        && octets
            .iter()
            .all(|o| o.len() == 2 && o.chars().all(|c| c.is_ascii_hexdigit()));
    if !ok {
        return Err(invalid(s, field, format!("invalid MAC address {mac:?}")));
    }
    Ok(octets.join(":").to_ascii_lowercase())
}

/// compose's `getLinks`: for each linked service's container, `container:alias`,
/// `container:<service>-<n>` and `container:<project>-<service>-<n>` (`n` being this
/// container's number), then `external_links`. The linked container is named by the ID the
/// reconciler knows; the engine resolves IDs in links as it resolves names.
fn links(spec: &ContainerSpec) -> Vec<String> {
    let s = spec.service;
    let n = spec.number;
    let project = &spec.project.name;
    let mut out = Vec::new();
    for link in &s.links {
        let (svc, alias) = link.split_once(':').unwrap_or((link, link));
        if let Some(c) = spec.service_containers.get(svc) {
            out.push(format!("{c}:{alias}"));
            out.push(format!("{c}:{svc}-{n}"));
            out.push(format!("{c}:{project}-{svc}-{n}"));
        }
    }
    for link in &s.external_links {
        let (ext, alias) = link.split_once(':').unwrap_or((link, link));
        out.push(format!("{ext}:{alias}"));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::super::testing::*;

    #[test]
    fn default_network_and_aliases() {
        let p = project("services:\n  web:\n    image: x\n");
        let plan = convert(&p, "web");
        let h = plan.body.host_config.clone().unwrap();
        assert_eq!(h.network_mode.as_deref(), Some("demo_default"));
        let eps = endpoints(&plan);
        let ep = &eps["demo_default"];
        assert_eq!(
            ep.aliases,
            Some(vec!["demo-web-1".to_string(), "web".to_string()])
        );
        assert!(plan.extra_networks.is_empty());
    }

    #[test]
    fn networks_by_priority_with_endpoint_settings() {
        let p = project(
            "services:\n  web:\n    image: x\n    mac_address: 02:42:ac:11:00:02\n    networks:\n      zeta:\n        priority: 100\n        aliases: [api]\n        ipv4_address: 172.30.0.10\n        ipv6_address: 'fd00::10'\n        link_local_ips: [169.254.0.5]\n        driver_opts: {a: b}\n        interface_name: eth7\n        gw_priority: 5\n      alpha: {}\n      beta:\n        mac_address: 02-42-AC-11-00-09\nnetworks:\n  zeta: {}\n  alpha:\n    name: custom-alpha\n  beta:\n    external: true\n",
        );
        let plan = convert(&p, "web");
        let h = plan.body.host_config.clone().unwrap();
        assert_eq!(h.network_mode.as_deref(), Some("demo_zeta"));
        let eps = endpoints(&plan);
        assert_eq!(eps.len(), 1);
        let z = &eps["demo_zeta"];
        assert_eq!(
            z.aliases,
            Some(vec![
                "demo-web-1".to_string(),
                "web".to_string(),
                "api".to_string()
            ])
        );
        let ipam = z.ipam_config.as_ref().unwrap();
        assert_eq!(ipam.ipv4_address.as_deref(), Some("172.30.0.10"));
        assert_eq!(ipam.ipv6_address.as_deref(), Some("fd00::10"));
        assert_eq!(ipam.link_local_ips, Some(vec!["169.254.0.5".to_string()]));
        assert_eq!(z.mac_address.as_deref(), Some("02:42:ac:11:00:02"));
        let opts = z.driver_opts.as_ref().unwrap();
        assert_eq!(opts["a"], "b");
        assert_eq!(opts["com.docker.network.endpoint.ifname"], "eth7");
        assert_eq!(z.gw_priority, Some(5));
        let names: Vec<&str> = plan
            .extra_networks
            .iter()
            .map(|(n, _)| n.as_str())
            .collect();
        assert_eq!(names, ["custom-alpha", "beta"]);
        assert_eq!(
            plan.extra_networks[1].1.mac_address.as_deref(),
            Some("02:42:ac:11:00:09")
        );
        assert_eq!(plan.extra_networks[0].1.mac_address, None);
    }

    #[test]
    fn network_modes() {
        let p = project(
            "services:\n  a:\n    image: x\n    network_mode: host\n  b:\n    image: x\n    network_mode: none\n  c:\n    image: x\n    network_mode: service:a\n  d:\n    image: x\n    network_mode: container:foo\n  e:\n    image: x\n    network_mode: bridge\n",
        );
        let mode = |svc: &str| {
            let plan = convert_with(&p, svc, &running(&[("a", "aid")])).unwrap();
            assert!(plan.body.networking_config.is_none());
            plan.body.host_config.unwrap().network_mode.unwrap()
        };
        assert_eq!(mode("a"), "host");
        assert_eq!(mode("b"), "none");
        assert_eq!(mode("c"), "container:aid");
        assert_eq!(mode("d"), "container:foo");
        assert_eq!(mode("e"), "bridge");
        assert_err(&p, "c", &["network namespace with service a"]);
    }

    #[test]
    fn mismatched_mac_addresses_fail() {
        let p = project(
            "services:\n  web:\n    image: x\n    mac_address: 02:42:ac:11:00:02\n    networks:\n      n:\n        mac_address: 02:42:ac:11:00:03\nnetworks:\n  n: {}\n",
        );
        assert_err(&p, "web", &["mac_address"]);
    }

    #[test]
    fn links_and_external_links() {
        let p = project(
            "services:\n  web:\n    image: x\n    links: ['db:database', cache]\n    external_links: ['legacy:old', other]\n  db:\n    image: x\n  cache:\n    image: x\n",
        );
        let pairs = [("db", "dbid"), ("cache", "cid")];
        let plan = convert_with(&p, "web", &running(&pairs)).unwrap();
        let links = plan.body.host_config.clone().unwrap().links.unwrap();
        assert_eq!(
            links,
            [
                "dbid:database",
                "dbid:db-1",
                "dbid:demo-db-1",
                "cid:cache",
                "cid:cache-1",
                "cid:demo-cache-1",
                "legacy:old",
                "other:other"
            ]
        );
        let eps = endpoints(&plan);
        assert_eq!(eps["demo_default"].links.as_ref().unwrap().len(), 8);
    }
}
