//! compose-go's `EnforceUnicity`: in keyed lists (environment, ports, volumes...), a later entry
//! with the same key replaces the earlier one in its position.

use std::collections::HashMap;

use crate::error::{Error, Result};
use crate::yaml::{Node, Resolved, Value};

use super::go_text;
use super::path::TreePath;

/// Remove redefinitions from every keyed list of a model.
pub fn enforce_unicity(node: &mut Node) -> Result<()> {
    walk(node, &mut TreePath::root())
}

fn walk(node: &mut Node, path: &mut TreePath) -> Result<()> {
    match &mut node.value {
        Value::Map(m) => {
            // Only the first levels of the model hold keyed lists; skip deep trees (x- data).
            if path.segments().len() > 4 {
                return Ok(());
            }
            for (k, v) in m.iter_mut() {
                path.push(&k.name);
                let r = walk(v, path);
                path.pop();
                r?;
            }
            Ok(())
        }
        Value::Seq(items) => {
            let Some(indexer) = indexer_for(path) else {
                return Ok(());
            };
            if items.len() < 2 {
                return Ok(());
            }
            let old = std::mem::take(items);
            let mut keys: HashMap<String, usize> = HashMap::with_capacity(old.len());
            let mut seq: Vec<Node> = Vec::with_capacity(old.len());
            for (i, entry) in old.into_iter().enumerate() {
                let key = indexer(&entry, path, i)?;
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
        _ => Ok(()),
    }
}

type Indexer = fn(&Node, &TreePath, usize) -> Result<String>;

fn indexer_for(path: &TreePath) -> Option<Indexer> {
    let segs = path.segments();
    match segs.len() {
        3 if segs[0] == "networks" && segs[2] == "labels" => Some(key_value),
        4 if path.matches(&["networks", "*", "ipam", "options"]) => Some(key_value),
        3 if segs[0] == "services" => match segs[2].as_str() {
            "annotations" | "cap_add" | "cap_drop" | "dns" | "dns_opt" | "dns_search"
            | "environment" | "labels" | "links" | "profiles" | "sysctls" | "tmpfs" => {
                Some(key_value)
            }
            "devices" => Some(device),
            "configs" => Some(config_mount),
            "secrets" => Some(secret_mount),
            "env_file" => Some(env_file),
            "expose" => Some(expose),
            "ports" => Some(port),
            "volumes" => Some(volume),
            _ => None,
        },
        4 if segs[0] == "services" && segs[2] == "build" => match segs[3].as_str() {
            "args" | "additional_contexts" | "platform" | "tags" | "labels" => Some(key_value),
            _ => None,
        },
        4 if segs[0] == "services" && segs[2] == "deploy" && segs[3] == "labels" => Some(key_value),
        5 if segs[0] == "services"
            && segs[2] == "networks"
            && matches!(segs[4].as_str(), "aliases" | "link_local_ips") =>
        {
            Some(key_value)
        }
        _ => None,
    }
}

fn unexpected(node: &Node, path: &TreePath, i: usize, what: &str) -> Error {
    Error::Invalid {
        loc: node.loc.clone(),
        path: format!("{path}[{i}]"),
        message: format!("{what}, got {}", node.kind_name()),
    }
}

fn key_value(node: &Node, path: &TreePath, i: usize) -> Result<String> {
    match &node.value {
        Value::Scalar(_) | Value::Null => {
            let s = go_text(node);
            Ok(s.split_once('=').map_or(s.as_str(), |(k, _)| k).to_string())
        }
        _ => Err(unexpected(node, path, i, "expected a string")),
    }
}

fn str_at(node: &Node, key: &str) -> Option<String> {
    node.get(key).map(go_text)
}

fn volume(node: &Node, path: &TreePath, i: usize) -> Result<String> {
    match &node.value {
        Value::Map(_) => str_at(node, "target").ok_or_else(|| Error::Invalid {
            loc: node.loc.clone(),
            path: format!("{path}[{i}]"),
            message: "service volume is missing a mount target".into(),
        }),
        Value::Scalar(_) => {
            let spec = go_text(node);
            crate::transform::volume::parse_volume(&spec)
                .map(|v| v.target)
                .map_err(|message| Error::Invalid {
                    loc: node.loc.clone(),
                    path: format!("{path}[{i}]"),
                    message,
                })
        }
        _ => Ok(String::new()),
    }
}

fn device(node: &Node, path: &TreePath, i: usize) -> Result<String> {
    match &node.value {
        Value::Map(_) => str_at(node, "target").ok_or_else(|| Error::Invalid {
            loc: node.loc.clone(),
            path: format!("{path}[{i}]"),
            message: "service device is missing a mount target".into(),
        }),
        Value::Scalar(_) => {
            let s = go_text(node);
            let mut parts = s.split(':');
            let first = parts.next().unwrap_or_default().to_string();
            Ok(parts.next().map_or(first, str::to_string))
        }
        _ => Ok(String::new()),
    }
}

fn mount(node: &Node, path: &TreePath, i: usize, default_dir: &str) -> Result<String> {
    match &node.value {
        Value::Scalar(_) => Ok(format!("{default_dir}/{}", go_text(node))),
        Value::Map(_) => Ok(match str_at(node, "target") {
            Some(t) => t,
            None => format!(
                "{default_dir}/{}",
                str_at(node, "source").unwrap_or_else(|| "<nil>".into())
            ),
        }),
        _ => Err(unexpected(node, path, i, "expected a string or a mapping")),
    }
}

fn config_mount(node: &Node, path: &TreePath, i: usize) -> Result<String> {
    mount(node, path, i, "")
}

fn secret_mount(node: &Node, path: &TreePath, i: usize) -> Result<String> {
    mount(node, path, i, "/run/secrets")
}

fn expose(node: &Node, path: &TreePath, i: usize) -> Result<String> {
    match node.as_scalar().map(|s| s.resolve()) {
        Some(Resolved::Str(s)) => Ok(s.to_string()),
        Some(Resolved::Int(n)) => Ok(n.to_string()),
        _ => Err(unexpected(node, path, i, "unsupported expose value")),
    }
}

fn port(node: &Node, path: &TreePath, i: usize) -> Result<String> {
    match &node.value {
        Value::Scalar(_) => Ok(go_text(node)),
        Value::Map(_) => {
            let Some(target) = str_at(node, "target") else {
                return Err(Error::Invalid {
                    loc: node.loc.clone(),
                    path: format!("{path}[{i}]"),
                    message: "service ports is missing a target port".into(),
                });
            };
            let published = str_at(node, "published").unwrap_or_else(|| "<nil>".into());
            let host = str_at(node, "host_ip").unwrap_or_else(|| "0.0.0.0".into());
            let protocol = str_at(node, "protocol").unwrap_or_else(|| "tcp".into());
            Ok(format!("{host}:{published}:{target}/{protocol}"))
        }
        _ => Ok(String::new()),
    }
}

fn env_file(node: &Node, path: &TreePath, i: usize) -> Result<String> {
    match &node.value {
        Value::Scalar(_) => Ok(go_text(node)),
        Value::Map(_) => str_at(node, "path").ok_or_else(|| Error::Invalid {
            loc: node.loc.clone(),
            path: format!("{path}[{i}]"),
            message: "environment path attribute is missing".into(),
        }),
        _ => Ok(String::new()),
    }
}
