//! Merging Compose models the way compose-go's `override` package does: mappings merge,
//! sequences append, and a table of per-attribute rules (keyed lists, `command` replaced,
//! logging by driver...). `!reset` and `!override` tags on the overriding side are applied here
//! too, which is what compose-go's `ResetProcessor` achieves with recorded paths.
//!
//! Nodes are moved, never cloned, so merging N files costs the size of the files.

pub(crate) mod path;
pub mod unicity;

use crate::error::{Error, Result};
use crate::yaml::{Key, Location, Mapping, Node, Resolved, Scalar, Tag, Value};

use path::{LIST, TreePath};

pub use unicity::enforce_unicity;

/// Merge `over` into `base` (both whole models), applying the per-attribute rules.
pub fn merge(base: Node, over: Node) -> Result<Node> {
    merge_at(base, over, &mut TreePath::root())
}

/// Merge one service definition onto the one it extends (`extends`), with service rules.
pub fn extend_service(base: Node, over: Node) -> Result<Node> {
    merge_at(base, over, &mut TreePath::from_segments(&["services", "x"]))
}

/// Merge a value defined at `path` (compose-go's `MergeYaml`).
pub(crate) fn merge_at(base: Node, over: Node, path: &mut TreePath) -> Result<Node> {
    if let Some(rule) = special(path) {
        return rule(base, over, path);
    }
    if over.is_null() && over.tag == Tag::None {
        return Ok(base);
    }
    // The loader merges the first file into an empty, synthetic mapping: keep a real location.
    let loc = if base.loc.is_synthetic() {
        over.loc.clone()
    } else {
        base.loc
    };
    match base.value {
        Value::Map(map) => match over.value {
            Value::Map(other) => Ok(Node {
                value: Value::Map(merge_mappings(map, other, path)?),
                loc,
                tag: Tag::None,
            }),
            _ => Err(cannot_override(&over, path, "mapping")),
        },
        Value::Seq(mut items) => match over.value {
            Value::Seq(other) => {
                items.extend(other.into_iter().filter_map(strip_tags));
                Ok(Node {
                    value: Value::Seq(items),
                    loc,
                    tag: Tag::None,
                })
            }
            _ => Err(cannot_override(&over, path, "sequence")),
        },
        _ => Ok(strip_tags(over).unwrap_or_else(|| Node::new(Value::Null, loc))),
    }
}

fn cannot_override(over: &Node, path: &TreePath, base_kind: &str) -> Error {
    Error::Merge {
        loc: over.loc.clone(),
        path: path.to_string(),
        message: format!("a {base_kind} cannot be overridden by {}", over.kind_name()),
    }
}

/// Merge `other` into `mapping` key by key, honouring `!reset` and `!override` on `other`.
pub(crate) fn merge_mappings(
    mut mapping: Mapping,
    other: Mapping,
    path: &mut TreePath,
) -> Result<Mapping> {
    for (k, v) in other {
        match v.tag {
            Tag::Reset => {
                mapping.shift_remove(k.name.as_str());
                continue;
            }
            Tag::Override => {
                if let Some(v) = strip_tags(v) {
                    mapping.insert(k, v);
                }
                continue;
            }
            _ => {}
        }
        match mapping.get_index_of(k.name.as_str()) {
            None => {
                if let Some(v) = strip_tags(v) {
                    mapping.insert(k, v);
                }
            }
            Some(i) => {
                let existing = std::mem::replace(
                    &mut mapping[i],
                    Node::new(Value::Null, Location::synthetic()),
                );
                path.push(&k.name);
                let merged = merge_at(existing, v, path);
                path.pop();
                mapping[i] = merged?;
            }
        }
    }
    Ok(mapping)
}

/// Drop `!reset` nodes and forget `!override` tags in a value that has nothing to merge with.
/// Returns `None` when the value itself is `!reset`.
pub fn strip_tags(mut node: Node) -> Option<Node> {
    if node.tag == Tag::Reset {
        return None;
    }
    strip_in_place(&mut node);
    Some(node)
}

fn strip_in_place(node: &mut Node) {
    if node.tag == Tag::Override {
        node.tag = Tag::None;
    }
    match &mut node.value {
        Value::Map(m) => {
            m.retain(|_, v| v.tag != Tag::Reset);
            m.values_mut().for_each(strip_in_place);
        }
        Value::Seq(items) => {
            items.retain(|v| v.tag != Tag::Reset);
            items.iter_mut().for_each(strip_in_place);
        }
        _ => {}
    }
}

type Rule = fn(Node, Node, &mut TreePath) -> Result<Node>;

/// compose-go's `mergeSpecials` table.
fn special(path: &TreePath) -> Option<Rule> {
    let segs = path.segments();
    let first = segs.first().map(String::as_str);
    match (first, segs.len()) {
        (Some("networks"), 4) if path.matches(&["networks", "*", "ipam", "config"]) => {
            Some(merge_ipam_config)
        }
        (Some("networks" | "volumes"), 3) if segs[2] == "labels" => Some(merge_to_sequence),
        (Some("services"), 3) => match segs[2].as_str() {
            "annotations" | "dns" | "dns_opt" | "dns_search" | "env_file" | "label_file"
            | "environment" | "labels" | "sysctls" | "tmpfs" => Some(merge_to_sequence),
            "build" => Some(merge_build),
            "command" | "entrypoint" => Some(replace),
            "depends_on" => Some(merge_depends_on),
            "extra_hosts" => Some(merge_extra_hosts),
            "logging" => Some(merge_logging),
            "models" | "networks" => Some(merge_as_mapping),
            _ => None,
        },
        (Some("services"), 4) => match (segs[2].as_str(), segs[3].as_str()) {
            ("build", "args" | "additional_contexts" | "labels") => Some(merge_to_sequence),
            ("build", "extra_hosts") => Some(merge_extra_hosts),
            ("deploy", "labels") => Some(merge_to_sequence),
            ("healthcheck", "test") => Some(replace),
            // compose-go's mergeUlimit merges the override with itself: the override wins.
            ("ulimits", _) => Some(replace),
            _ => None,
        },
        (Some("services"), 6)
            if path.matches(&["services", "*", "volumes", LIST, "volume", "labels"]) =>
        {
            Some(merge_to_sequence)
        }
        _ => None,
    }
}

fn replace(base: Node, over: Node, _: &mut TreePath) -> Result<Node> {
    Ok(strip_tags(over).unwrap_or_else(|| Node::new(Value::Null, base.loc)))
}

fn merge_to_sequence(base: Node, over: Node, _: &mut TreePath) -> Result<Node> {
    let loc = base.loc.clone();
    let mut right = into_sequence(base);
    right.extend(into_sequence(over));
    Ok(Node::new(Value::Seq(right), loc))
}

fn merge_extra_hosts(base: Node, over: Node, _: &mut TreePath) -> Result<Node> {
    let loc = base.loc.clone();
    let mut right = into_sequence(base);
    let left: Vec<Node> = into_sequence(over)
        .into_iter()
        .filter(|n| !right.contains(n))
        .collect();
    right.extend(left);
    Ok(Node::new(Value::Seq(right), loc))
}

fn merge_logging(base: Node, over: Node, path: &mut TreePath) -> Result<Node> {
    let (Value::Map(config), Value::Map(other)) = (&base.value, &over.value) else {
        return replace(base, over, path);
    };
    let same = match (other.get("driver"), config.get("driver")) {
        (Some(d), Some(o)) => d == o,
        _ => true,
    };
    if !same {
        return replace(base, over, path);
    }
    let (Value::Map(config), Value::Map(other)) = (base.value, over.value) else {
        unreachable!("checked above")
    };
    Ok(Node::new(
        Value::Map(merge_mappings(config, other, path)?),
        base.loc,
    ))
}

fn merge_build(base: Node, over: Node, path: &mut TreePath) -> Result<Node> {
    let loc = base.loc.clone();
    let to_build = |n: Node| -> Mapping {
        match n.value {
            Value::Map(m) => m,
            Value::Scalar(_) => {
                let mut m = Mapping::default();
                let k = Key::new("context", n.loc.clone());
                m.insert(k, n);
                m
            }
            _ => Mapping::default(),
        }
    };
    if over.tag == Tag::Reset {
        return Ok(Node::new(Value::Null, loc));
    }
    let merged = merge_mappings(to_build(base), to_build(over), path)?;
    Ok(Node::new(Value::Map(merged), loc))
}

fn merge_depends_on(base: Node, over: Node, path: &mut TreePath) -> Result<Node> {
    let loc = base.loc.clone();
    let merged = merge_mappings(into_mapping(base, true), into_mapping(over, true), path)?;
    Ok(Node::new(Value::Map(merged), loc))
}

fn merge_as_mapping(base: Node, over: Node, path: &mut TreePath) -> Result<Node> {
    let loc = base.loc.clone();
    let merged = merge_mappings(into_mapping(base, false), into_mapping(over, false), path)?;
    Ok(Node::new(Value::Map(merged), loc))
}

/// compose-go's `mergeIPAMConfig`: configs are matched by subnet.
fn merge_ipam_config(base: Node, over: Node, path: &mut TreePath) -> Result<Node> {
    let loc = base.loc.clone();
    let (Value::Seq(configs), Value::Seq(overrides)) = (base.value, over.value) else {
        return Err(Error::Merge {
            loc,
            path: path.to_string(),
            message: "ipam.config must be a sequence".into(),
        });
    };
    let subnet = |n: &Node| n.get("subnet").map(|s| s.value.clone());
    let mut out: Vec<Node> = Vec::new();
    for original in configs {
        for o in &overrides {
            let left = o.clone();
            if subnet(&left) != subnet(&original) && !out.iter().any(|a| subnet(a) == subnet(&left))
            {
                out.push(left);
                continue;
            }
            let merged = match (original.clone().value, left.value) {
                (Value::Map(r), Value::Map(l)) => Node::new(
                    Value::Map(merge_mappings(r, l, path)?),
                    original.loc.clone(),
                ),
                (_, v) => Node::new(v, left.loc),
            };
            let key = subnet(&merged);
            match out.iter().position(|a| subnet(a) == key) {
                Some(i) => out[i] = merged,
                None => out.push(merged),
            }
        }
    }
    Ok(Node::new(Value::Seq(out), loc))
}

/// A list form of a keyed attribute: mapping entries become `key=value` (sorted, as compose-go
/// sorts them), a lone string becomes a one-item list.
pub(crate) fn into_sequence(node: Node) -> Vec<Node> {
    match node.value {
        Value::Map(m) => {
            let mut seq: Vec<Node> = Vec::with_capacity(m.len());
            for (k, v) in m {
                if v.tag == Tag::Reset {
                    continue;
                }
                match v.value {
                    Value::Null => seq.push(Node::string(k.name, k.loc)),
                    Value::Seq(items) => {
                        for item in items {
                            let text = format!("{}={}", k.name, go_text(&item));
                            seq.push(Node::string(text, item.loc));
                        }
                    }
                    _ => {
                        let text = format!("{}={}", k.name, go_text(&v));
                        seq.push(Node::string(text, v.loc));
                    }
                }
            }
            seq.sort_by(|a, b| a.as_str().cmp(&b.as_str()));
            seq
        }
        Value::Seq(items) => items.into_iter().filter_map(strip_tags).collect(),
        Value::Scalar(_) => vec![node],
        Value::Null => Vec::new(),
    }
}

/// A mapping form of a list of names; with `depends_on` defaults for each entry.
fn into_mapping(node: Node, depends_on: bool) -> Mapping {
    match node.value {
        Value::Map(m) => m,
        Value::Seq(items) => {
            let mut out = Mapping::with_capacity_and_hasher(items.len(), Default::default());
            for item in items {
                let Some(name) = scalar_text(&item) else {
                    continue;
                };
                let value = if depends_on {
                    let mut d = Mapping::default();
                    d.insert(
                        Key::new("condition", item.loc.clone()),
                        Node::string("service_started", item.loc.clone()),
                    );
                    d.insert(
                        Key::new("required", item.loc.clone()),
                        Node::new(Value::Scalar(Scalar::plain("true")), item.loc.clone()),
                    );
                    Node::new(Value::Map(d), item.loc.clone())
                } else {
                    Node::new(Value::Null, item.loc.clone())
                };
                out.insert(Key::new(name, item.loc), value);
            }
            out
        }
        _ => Mapping::default(),
    }
}

/// The text of a scalar as Go's `%v` prints the decoded value.
pub(crate) fn go_text(n: &Node) -> String {
    match &n.value {
        Value::Null => "<nil>".into(),
        Value::Scalar(s) => match s.resolve() {
            Resolved::Bool(b) => b.to_string(),
            Resolved::Int(i) => i.to_string(),
            Resolved::Float(f) => {
                if f.is_infinite() {
                    if f > 0.0 {
                        "+Inf".into()
                    } else {
                        "-Inf".into()
                    }
                } else if f.is_nan() {
                    "NaN".into()
                } else {
                    f.to_string()
                }
            }
            Resolved::Str(t) => t.to_string(),
        },
        Value::Seq(_) | Value::Map(_) => format!("{:?}", n.to_json()),
    }
}

/// The text of a scalar node, whatever its type.
pub(crate) fn scalar_text(n: &Node) -> Option<String> {
    match &n.value {
        Value::Scalar(_) => Some(go_text(n)),
        _ => None,
    }
}
