//! compose-go's `EnforceUnicity`: in keyed lists (environment, ports, volumes...), a later entry
//! with the same key replaces the earlier one in its position.

use std::collections::HashMap;

use crate::error::{Error, Result};
use crate::yaml::{Node, Resolved, Value};

use super::go_text;

/// Remove redefinitions from every keyed list of a model.
pub fn enforce_unicity(node: &mut Node) -> Result<()> {
    let Some(top) = node.as_map_mut() else {
        return Ok(());
    };
    for (k, v) in top.iter_mut() {
        let Some(entries) = v.as_map_mut() else {
            continue;
        };
        match k.name.as_str() {
            "services" => {
                for (name, service) in entries.iter_mut() {
                    if let Some(m) = service.as_map_mut() {
                        service_lists(m, &name.name)?;
                    }
                }
            }
            "networks" => {
                for (name, net) in entries.iter_mut() {
                    let Some(m) = net.as_map_mut() else { continue };
                    let base = format!("networks.{}", name.name);
                    for (nk, nv) in m.iter_mut() {
                        match nk.name.as_str() {
                            "labels" => dedupe(nv, key_value, || format!("{base}.labels"))?,
                            "ipam" => {
                                if let Some(o) = nv.as_map_mut().and_then(|i| i.get_mut("options"))
                                {
                                    dedupe(o, key_value, || format!("{base}.ipam.options"))?;
                                }
                            }
                            _ => {}
                        }
                    }
                }
            }
            _ => {}
        }
    }
    Ok(())
}

fn service_lists(service: &mut crate::yaml::Mapping, name: &str) -> Result<()> {
    for (k, v) in service.iter_mut() {
        let key = k.name.as_str();
        let path = || format!("services.{name}.{key}");
        match key {
            "build" | "deploy" => {
                let Some(m) = v.as_map_mut() else { continue };
                for (sk, sv) in m.iter_mut() {
                    let sub = sk.name.as_str();
                    let keyed = match key {
                        "build" => matches!(
                            sub,
                            "args" | "additional_contexts" | "platform" | "tags" | "labels"
                        ),
                        _ => sub == "labels",
                    };
                    if keyed {
                        dedupe(sv, key_value, || format!("services.{name}.{key}.{sub}"))?;
                    }
                }
            }
            "networks" => {
                let Some(m) = v.as_map_mut() else { continue };
                for (net, cfg) in m.iter_mut() {
                    let Some(c) = cfg.as_map_mut() else { continue };
                    for (ck, cv) in c.iter_mut() {
                        if matches!(ck.name.as_str(), "aliases" | "link_local_ips") {
                            dedupe(cv, key_value, || {
                                format!("services.{name}.networks.{}.{}", net.name, ck.name)
                            })?;
                        }
                    }
                }
            }
            _ => {
                if let Some(indexer) = indexer_for(key) {
                    dedupe(v, indexer, path)?;
                }
            }
        }
    }
    Ok(())
}

/// Keep one entry per key in a list; a later entry replaces the earlier one in place.
fn dedupe(node: &mut Node, indexer: Indexer, path: impl Fn() -> String) -> Result<()> {
    let Value::Seq(items) = &mut node.value else {
        return Ok(());
    };
    if items.len() < 2 {
        return Ok(());
    }
    let old = std::mem::take(items);
    let mut keys: HashMap<String, usize> = HashMap::with_capacity(old.len());
    let mut seq: Vec<Node> = Vec::with_capacity(old.len());
    for (i, entry) in old.into_iter().enumerate() {
        let key = indexer(&entry).map_err(|message| Error::Invalid {
            loc: entry.loc.clone(),
            path: format!("{}[{i}]", path()),
            message,
        })?;
        match keys.get(&key) {
            Some(&j) => seq[j] = entry,
            None => {
                keys.insert(key, seq.len());
                seq.push(entry);
            }
        }
    }
    *items = seq;
    Ok(())
}

type Indexer = fn(&Node) -> std::result::Result<String, String>;

fn indexer_for(key: &str) -> Option<Indexer> {
    match key {
        "annotations" | "cap_add" | "cap_drop" | "dns" | "dns_opt" | "dns_search"
        | "environment" | "labels" | "links" | "profiles" | "sysctls" | "tmpfs" => Some(key_value),
        "devices" => Some(device),
        "configs" => Some(config_mount),
        "secrets" => Some(secret_mount),
        "env_file" => Some(env_file),
        "expose" => Some(expose),
        "ports" => Some(port),
        "volumes" => Some(volume),
        _ => None,
    }
}

fn unexpected(node: &Node, what: &str) -> String {
    format!("{what}, got {}", node.kind_name())
}

fn key_value(node: &Node) -> std::result::Result<String, String> {
    match &node.value {
        Value::Scalar(_) | Value::Null => {
            let s = go_text(node);
            Ok(s.split_once('=').map_or(s.as_str(), |(k, _)| k).to_string())
        }
        _ => Err(unexpected(node, "expected a string")),
    }
}

fn str_at(node: &Node, key: &str) -> Option<String> {
    node.get(key).map(go_text)
}

fn volume(node: &Node) -> std::result::Result<String, String> {
    match &node.value {
        Value::Map(_) => str_at(node, "target")
            .ok_or_else(|| "service volume is missing a mount target".to_string()),
        Value::Scalar(_) => {
            let spec = go_text(node);
            crate::transform::volume::parse_volume(&spec).map(|v| v.target)
        }
        _ => Ok(String::new()),
    }
}

fn device(node: &Node) -> std::result::Result<String, String> {
    match &node.value {
        Value::Map(_) => str_at(node, "target")
            .ok_or_else(|| "service device is missing a mount target".to_string()),
        Value::Scalar(_) => {
            let s = go_text(node);
            let mut parts = s.split(':');
            let first = parts.next().unwrap_or_default().to_string();
            Ok(parts.next().map_or(first, str::to_string))
        }
        _ => Ok(String::new()),
    }
}

fn mount(node: &Node, default_dir: &str) -> std::result::Result<String, String> {
    match &node.value {
        Value::Scalar(_) => Ok(format!("{default_dir}/{}", go_text(node))),
        Value::Map(_) => Ok(match str_at(node, "target") {
            Some(t) => t,
            None => format!(
                "{default_dir}/{}",
                str_at(node, "source").unwrap_or_else(|| "<nil>".into())
            ),
        }),
        _ => Err(unexpected(node, "expected a string or a mapping")),
    }
}

fn config_mount(node: &Node) -> std::result::Result<String, String> {
    mount(node, "")
}

fn secret_mount(node: &Node) -> std::result::Result<String, String> {
    mount(node, "/run/secrets")
}

fn expose(node: &Node) -> std::result::Result<String, String> {
    match node.as_scalar().map(|s| s.resolve()) {
        Some(Resolved::Str(s)) => Ok(s.to_string()),
        Some(Resolved::Int(n)) => Ok(n.to_string()),
        _ => Err(unexpected(node, "unsupported expose value")),
    }
}

fn port(node: &Node) -> std::result::Result<String, String> {
    match &node.value {
        Value::Scalar(_) => Ok(go_text(node)),
        Value::Map(_) => {
            let Some(target) = str_at(node, "target") else {
                return Err("service ports is missing a target port".to_string());
            };
            let published = str_at(node, "published").unwrap_or_else(|| "<nil>".into());
            let host = str_at(node, "host_ip").unwrap_or_else(|| "0.0.0.0".into());
            let protocol = str_at(node, "protocol").unwrap_or_else(|| "tcp".into());
            Ok(format!("{host}:{published}:{target}/{protocol}"))
        }
        _ => Ok(String::new()),
    }
}

fn env_file(node: &Node) -> std::result::Result<String, String> {
    match &node.value {
        Value::Scalar(_) => Ok(go_text(node)),
        Value::Map(_) => {
            str_at(node, "path").ok_or_else(|| "environment path attribute is missing".to_string())
        }
        _ => Ok(String::new()),
    }
}
