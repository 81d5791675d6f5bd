//! Published ports: the long syntax, and the short syntax (`[IP:][HOST:]CONTAINER[/PROTO]`,
//! with ranges) expanded into it the way compose-go (docker's `nat.ParsePortSpecs`) does.

use std::fmt;

use indexmap::IndexMap;
use serde::de::{self, MapAccess, SeqAccess, Visitor};
use serde::{Deserialize, Deserializer, Serialize};

use super::service::short_or_long;
use super::values::{self, Extensions};

/// A published port in long syntax.
#[derive(Clone, Debug, Default, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct ServicePort {
    /// Name of the mapping.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// `ingress` or `host`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub mode: Option<String>,
    /// Host address to bind.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub host_ip: Option<String>,
    /// Container port.
    #[serde(deserialize_with = "port_number", skip_serializing_if = "is_zero_u32")]
    pub target: u32,
    /// Host port or range.
    #[serde(
        skip_serializing_if = "Option::is_none",
        deserialize_with = "values::opt_string_like"
    )]
    pub published: Option<String>,
    /// `tcp` or `udp`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub protocol: Option<String>,
    /// Application protocol (`http`, `https`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub app_protocol: Option<String>,
    /// `x-*` keys.
    #[serde(
        rename = "#extensions",
        deserialize_with = "values::extensions",
        skip_serializing_if = "IndexMap::is_empty",
        serialize_with = "values::sorted"
    )]
    pub extensions: Extensions,
}

fn is_zero_u32(v: &u32) -> bool {
    *v == 0
}

fn port_number<'de, D: Deserializer<'de>>(d: D) -> Result<u32, D::Error> {
    let t = values::string_like(d)?;
    t.trim()
        .parse::<u32>()
        .map_err(|_| de::Error::custom(format!("invalid port number {t:?}")))
}

/// Expand one short-syntax port into long-syntax entries.
pub fn parse_port(spec: &str) -> Result<Vec<ServicePort>, String> {
    let (rest, proto) = match spec.rsplit_once('/') {
        Some((r, p)) => (r, p.to_ascii_lowercase()),
        None => (spec, "tcp".to_string()),
    };
    let (ip, host, container) = split_port_spec(rest)?;
    let (cstart, cend) =
        parse_range(container).map_err(|_| format!("invalid containerPort: {container}"))?;
    let host_range = if host.is_empty() {
        None
    } else {
        Some(parse_range(host).map_err(|_| format!("invalid hostPort: {host}"))?)
    };
    let ccount = cend - cstart;
    if let Some((hs, he)) = host_range {
        if ccount != 0 && he - hs != ccount {
            return Err(format!(
                "invalid ranges specified for container and host Ports: {container} and {host}"
            ));
        }
    }
    let mut out = Vec::with_capacity((ccount + 1) as usize);
    for i in 0..=ccount {
        let target = cstart + i;
        let published = match host_range {
            None => None,
            Some((hs, he)) if ccount == 0 && he != hs => Some(format!("{hs}-{he}")),
            Some((hs, _)) => Some((hs + i).to_string()),
        };
        out.push(ServicePort {
            mode: Some("ingress".to_string()),
            host_ip: if ip.is_empty() {
                None
            } else {
                Some(ip.to_string())
            },
            target,
            published,
            protocol: Some(proto.clone()),
            ..ServicePort::default()
        });
    }
    // nat.ParsePortSpecs returns a map that compose-go walks in sorted "port/proto" order.
    out.sort_by_cached_key(|p| format!("{}/{}", p.target, proto));
    Ok(out)
}

fn split_port_spec(s: &str) -> Result<(&str, &str, &str), String> {
    // An IPv6 host address is bracketed: `[::1]:80:80`.
    if let Some(rest) = s.strip_prefix('[') {
        let (ip, after) = rest
            .split_once(']')
            .ok_or_else(|| format!("invalid IP address: {s}"))?;
        let after = after
            .strip_prefix(':')
            .ok_or_else(|| format!("invalid port format: {s}"))?;
        let (host, container) = after
            .split_once(':')
            .ok_or_else(|| format!("invalid port format: {s}"))?;
        return Ok((ip, host, container));
    }
    let parts: Vec<&str> = s.split(':').collect();
    match parts.as_slice() {
        [c] => Ok(("", "", c)),
        [h, c] => Ok(("", h, c)),
        [ip, h, c] => Ok((ip, h, c)),
        _ => {
            // Unbracketed IPv6: everything before the last two fields is the address.
            let n = parts.len();
            let ip_len = s.len() - parts[n - 1].len() - parts[n - 2].len() - 2;
            Ok((&s[..ip_len], parts[n - 2], parts[n - 1]))
        }
    }
}

fn parse_range(s: &str) -> Result<(u32, u32), ()> {
    match s.split_once('-') {
        Some((a, b)) => {
            let a: u32 = a.parse().map_err(|_| ())?;
            let b: u32 = b.parse().map_err(|_| ())?;
            if b < a || b > 65535 {
                return Err(());
            }
            Ok((a, b))
        }
        None => {
            let a: u32 = s.parse().map_err(|_| ())?;
            if a > 65535 {
                return Err(());
            }
            Ok((a, a))
        }
    }
}

/// Deserialize `ports`: numbers, short strings and long mappings.
pub(crate) fn ports<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<ServicePort>, D::Error> {
    struct Item(Vec<ServicePort>);
    struct ItemV;
    impl<'de> Visitor<'de> for ItemV {
        type Value = Item;
        fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
            f.write_str("a number, string or mapping")
        }
        fn visit_i64<E: de::Error>(self, v: i64) -> Result<Item, E> {
            self.visit_str(&v.to_string())
        }
        fn visit_u64<E: de::Error>(self, v: u64) -> Result<Item, E> {
            self.visit_str(&v.to_string())
        }
        fn visit_str<E: de::Error>(self, v: &str) -> Result<Item, E> {
            parse_port(v).map(Item).map_err(E::custom)
        }
        fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Item, A::Error> {
            ServicePort::deserialize(de::value::MapAccessDeserializer::new(map))
                .map(|p| Item(vec![p]))
        }
    }
    impl<'de> Deserialize<'de> for Item {
        fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
            short_or_long(d, ItemV)
        }
    }
    struct V;
    impl<'de> Visitor<'de> for V {
        type Value = Vec<ServicePort>;
        fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
            f.write_str("a list")
        }
        fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
            Ok(Vec::new())
        }
        fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
            let mut out = Vec::new();
            while let Some(Item(p)) = seq.next_element()? {
                out.extend(p);
            }
            Ok(out)
        }
    }
    d.deserialize_any(V)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn short_ports_expand() {
        let p = parse_port("127.0.0.1:5000-5002:5000-5002").unwrap();
        assert_eq!(p.len(), 3);
        assert_eq!(p[1].published.as_deref(), Some("5001"));
        assert_eq!(p[1].host_ip.as_deref(), Some("127.0.0.1"));
        let p = parse_port("3000").unwrap();
        assert_eq!(p[0].target, 3000);
        assert_eq!(p[0].published, None);
        let p = parse_port("8000-8010:80/udp").unwrap();
        assert_eq!(p[0].published.as_deref(), Some("8000-8010"));
        assert_eq!(p[0].protocol.as_deref(), Some("udp"));
        let p = parse_port("[::1]:80:8080").unwrap();
        assert_eq!(p[0].host_ip.as_deref(), Some("::1"));
    }
}
