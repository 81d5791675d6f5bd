//! compose-go's `transform.Canonical`: short syntaxes rewritten to long ones at node level, so
//! merging and later stages see one shape (`ports` as mappings, `depends_on` as a mapping,
//! `build` as a mapping...). Nodes keep the location of what they were written as.

pub mod ports;
pub mod volume;

use crate::error::{Error, Result};
use crate::merge::go_text;
use crate::yaml::{Key, Location, Mapping, Node, Resolved, Scalar, Tag, Value};

/// Rewrite a whole model to canonical syntax. With `lenient` (interpolation disabled), values
/// that cannot be parsed yet (`${PORT}:80`) are left as written, as compose-go does.
pub fn canonical(root: &mut Node, lenient: bool) -> Result<()> {
    let Some(top) = root.as_map_mut() else {
        return Ok(());
    };
    for (key, value) in top.iter_mut() {
        match key.name.as_str() {
            "services" => {
                if let Some(services) = value.as_map_mut() {
                    let mut items: Vec<_> = services.iter_mut().collect();
                    crate::par::try_chunks(
                        &mut items,
                        || (),
                        |(name, service), _| {
                            let path = format!("services.{}", name.name);
                            transform_service(service, &path, lenient)
                        },
                    )?;
                }
            }
            "volumes" | "networks" | "secrets" | "configs" => {
                if let Some(resources) = value.as_map_mut() {
                    for (name, res) in resources.iter_mut() {
                        maybe_external(res, &format!("{}.{}", key.name, name.name))?;
                    }
                }
            }
            "include" => {
                if let Value::Seq(items) = &mut value.value {
                    for item in items.iter_mut() {
                        wrap_string(item, "path");
                    }
                }
            }
            _ => {}
        }
    }
    omit_empty_dns(root);
    Ok(())
}

fn invalid(loc: &Location, path: &str, message: impl Into<String>) -> Error {
    Error::Invalid {
        loc: loc.clone(),
        path: path.to_string(),
        message: message.into(),
    }
}

fn key(name: &str, loc: &Location) -> Key {
    Key::new(name, loc.clone())
}

fn string(text: impl Into<String>, loc: &Location) -> Node {
    Node::string(text, loc.clone())
}

fn plain(text: impl Into<String>, loc: &Location) -> Node {
    Node::new(Value::Scalar(Scalar::plain(text)), loc.clone())
}

fn is_string_scalar(n: &Node) -> bool {
    matches!(n.as_scalar().map(|s| s.resolve()), Some(Resolved::Str(_)))
}

/// `x` -> `{field: x}` when `x` is a scalar.
fn wrap_string(node: &mut Node, field: &str) {
    if matches!(node.value, Value::Scalar(_)) {
        let loc = node.loc.clone();
        let inner = std::mem::replace(node, Node::map(loc.clone()));
        if let Some(m) = node.as_map_mut() {
            m.insert(key(field, &loc), inner);
        }
    }
}

/// `x` -> `[x]` when `x` is a scalar.
fn string_or_list(node: &mut Node) {
    if matches!(node.value, Value::Scalar(_)) {
        let loc = node.loc.clone();
        let inner = std::mem::replace(node, Node::new(Value::Null, loc.clone()));
        *node = Node::new(Value::Seq(vec![inner]), loc);
    }
}

/// `[a, b]` -> `{a: null, b: null}`.
fn slice_to_map(node: &mut Node) {
    if let Value::Seq(items) = &mut node.value {
        let items = std::mem::take(items);
        let mut m = Mapping::with_capacity_and_hasher(items.len(), Default::default());
        for item in items {
            let name = go_text(&item);
            let loc = item.loc.clone();
            m.insert(Key::new(name, loc.clone()), Node::new(Value::Null, loc));
        }
        node.value = Value::Map(m);
    }
}

fn set_default(m: &mut Mapping, name: &str, value: Node) {
    if !m.contains_key(name) {
        let loc = value.loc.clone();
        m.insert(key(name, &loc), value);
    }
}

fn transform_service(service: &mut Node, path: &str, lenient: bool) -> Result<()> {
    let Some(map) = service.as_map_mut() else {
        return Ok(());
    };
    for (k, v) in map.iter_mut() {
        if v.tag != Tag::None && v.is_null() {
            continue;
        }
        let p = || format!("{path}.{}", k.name);
        match k.name.as_str() {
            "build" => transform_build(v, &p(), lenient)?,
            "depends_on" => depends_on(v, &p())?,
            "env_file" => env_file(v, &p())?,
            "label_file" | "dns" => string_or_list(v),
            "extends" => wrap_string(v, "service"),
            "gpus" => {
                if matches!(v.value, Value::Scalar(_)) {
                    let loc = v.loc.clone();
                    let mut m = Mapping::default();
                    m.insert(key("count", &loc), string("all", &loc));
                    *v = Node::new(Value::Seq(vec![Node::new(Value::Map(m), loc.clone())]), loc);
                }
            }
            "networks" | "models" => slice_to_map(v),
            "volumes" => {
                if let Value::Seq(items) = &mut v.value {
                    for (i, item) in items.iter_mut().enumerate() {
                        volume_mount(item, &p, i, lenient)?;
                    }
                }
            }
            "devices" => {
                if let Value::Seq(items) = &mut v.value {
                    for (i, item) in items.iter_mut().enumerate() {
                        device_mapping(item, &p, i, lenient)?;
                    }
                }
            }
            "secrets" | "configs" => {
                if let Value::Seq(items) = &mut v.value {
                    for item in items.iter_mut() {
                        wrap_string(item, "source");
                    }
                }
            }
            "ports" => transform_ports(v, &p(), lenient)?,
            "develop" => {
                if let Some(watch) = v.as_map_mut().and_then(|m| m.get_mut("watch")) {
                    if let Value::Seq(items) = &mut watch.value {
                        for item in items.iter_mut() {
                            if let Some(m) = item.as_map_mut() {
                                for f in ["ignore", "include"] {
                                    if let Some(x) = m.get_mut(f) {
                                        string_or_list(x);
                                    }
                                }
                            }
                        }
                    }
                }
            }
            _ => {}
        }
    }
    Ok(())
}

fn transform_build(v: &mut Node, path: &str, lenient: bool) -> Result<()> {
    match &v.value {
        Value::Scalar(_) => {
            wrap_string(v, "context");
            return Ok(());
        }
        Value::Map(_) => {}
        _ => {
            return Err(invalid(
                &v.loc,
                path,
                format!("invalid type {} for build", v.kind_name()),
            ));
        }
    }
    let Some(m) = v.as_map_mut() else {
        return Ok(());
    };
    for (k, x) in m.iter_mut() {
        match k.name.as_str() {
            "secrets" => {
                if let Value::Seq(items) = &mut x.value {
                    for item in items.iter_mut() {
                        wrap_string(item, "source");
                    }
                }
            }
            "provenance" | "sbom"
                if matches!(x.value, Value::Scalar(_)) && !is_string_scalar(x) =>
            {
                let text = go_text(x);
                *x = string(text, &x.loc);
            }
            "additional_contexts" => key_value(x, &format!("{path}.{}", k.name), lenient)?,
            "ssh" => ssh(x, &format!("{path}.ssh"))?,
            _ => {}
        }
    }
    Ok(())
}

/// `["k=v"]` -> `{k: v}`.
fn key_value(v: &mut Node, path: &str, lenient: bool) -> Result<()> {
    let Value::Seq(items) = &v.value else {
        return Ok(());
    };
    let mut m = Mapping::with_capacity_and_hasher(items.len(), Default::default());
    for item in items {
        let text = go_text(item);
        let Some((a, b)) = text.split_once('=') else {
            if lenient {
                return Ok(());
            }
            return Err(invalid(
                &item.loc,
                path,
                format!("invalid value {text}, expected key=value"),
            ));
        };
        m.insert(Key::new(a, item.loc.clone()), string(b, &item.loc));
    }
    v.value = Value::Map(m);
    Ok(())
}

fn ssh(v: &mut Node, path: &str) -> Result<()> {
    let Value::Seq(items) = &v.value else {
        return Ok(());
    };
    let mut m = Mapping::with_capacity_and_hasher(items.len(), Default::default());
    for item in items {
        let Some(s) = item.as_str() else {
            return Err(invalid(&item.loc, path, "invalid ssh key type"));
        };
        match s.split_once('=') {
            Some((id, p)) => {
                m.insert(Key::new(id, item.loc.clone()), string(p, &item.loc));
            }
            None if s == "default" => {
                m.insert(
                    Key::new(s, item.loc.clone()),
                    Node::new(Value::Null, item.loc.clone()),
                );
            }
            None => return Err(invalid(&item.loc, path, format!("invalid ssh key {s:?}"))),
        }
    }
    v.value = Value::Map(m);
    Ok(())
}

fn depends_on(v: &mut Node, path: &str) -> Result<()> {
    match &mut v.value {
        Value::Map(m) => {
            for (name, d) in m.iter_mut() {
                let loc = d.loc.clone();
                let Some(dm) = d.as_map_mut() else {
                    return Err(invalid(
                        &loc,
                        &format!("{path}.{}", name.name),
                        "unsupported value: expected a mapping",
                    ));
                };
                set_default(dm, "condition", string("service_started", &loc));
                set_default(dm, "required", plain("true", &loc));
            }
            Ok(())
        }
        Value::Seq(items) => {
            let items = std::mem::take(items);
            let mut m = Mapping::with_capacity_and_hasher(items.len(), Default::default());
            for item in items {
                let loc = item.loc.clone();
                let mut d = Mapping::with_capacity_and_hasher(2, Default::default());
                d.insert(key("condition", &loc), string("service_started", &loc));
                d.insert(key("required", &loc), plain("true", &loc));
                m.insert(
                    Key::new(go_text(&item), loc.clone()),
                    Node::new(Value::Map(d), loc),
                );
            }
            v.value = Value::Map(m);
            Ok(())
        }
        _ => Err(invalid(
            &v.loc,
            path,
            format!("invalid type {} for depends_on", v.kind_name()),
        )),
    }
}

fn env_file(v: &mut Node, path: &str) -> Result<()> {
    let one = |item: &mut Node| {
        let loc = item.loc.clone();
        match &mut item.value {
            Value::Scalar(_) => {
                wrap_string(item, "path");
                if let Some(m) = item.as_map_mut() {
                    m.insert(key("required", &loc), plain("true", &loc));
                }
            }
            Value::Map(m) => set_default(m, "required", plain("true", &loc)),
            _ => {}
        }
    };
    match &mut v.value {
        Value::Scalar(_) => {
            string_or_list(v);
            if let Value::Seq(items) = &mut v.value {
                items.iter_mut().for_each(one);
            }
            Ok(())
        }
        Value::Seq(items) => {
            items.iter_mut().for_each(one);
            Ok(())
        }
        _ => Err(invalid(
            &v.loc,
            path,
            format!("invalid type {} for env_file", v.kind_name()),
        )),
    }
}

fn volume_mount(item: &mut Node, path: &dyn Fn() -> String, i: usize, lenient: bool) -> Result<()> {
    if !matches!(item.value, Value::Scalar(_)) {
        return Ok(());
    }
    let spec = go_text(item);
    let parsed = match volume::parse_volume(&spec) {
        Ok(p) => p,
        Err(_) if lenient => return Ok(()),
        Err(e) => return Err(invalid(&item.loc, &format!("{}[{i}]", path()), e)),
    };
    let loc = item.loc.clone();
    let mut m = Mapping::with_capacity_and_hasher(6, Default::default());
    m.insert(key("type", &loc), string(parsed.kind, &loc));
    if !parsed.source.is_empty() {
        m.insert(key("source", &loc), string(parsed.source, &loc));
    }
    if !parsed.target.is_empty() {
        m.insert(
            key("target", &loc),
            string(clean_path(&parsed.target), &loc),
        );
    }
    if parsed.read_only {
        m.insert(key("read_only", &loc), plain("true", &loc));
    }
    if parsed.kind == "bind" {
        let mut b = Mapping::with_capacity_and_hasher(3, Default::default());
        if let Some(s) = parsed.selinux {
            b.insert(key("selinux", &loc), string(s, &loc));
        }
        if let Some(p) = parsed.propagation {
            b.insert(key("propagation", &loc), string(p, &loc));
        }
        b.insert(key("create_host_path", &loc), plain("true", &loc));
        m.insert(key("bind", &loc), Node::new(Value::Map(b), loc.clone()));
    } else if !parsed.no_volume_section {
        let mut vm = Mapping::default();
        if parsed.nocopy {
            vm.insert(key("nocopy", &loc), plain("true", &loc));
        }
        m.insert(key("volume", &loc), Node::new(Value::Map(vm), loc.clone()));
    } else if parsed.nocopy {
        let mut vm = Mapping::default();
        vm.insert(key("nocopy", &loc), plain("true", &loc));
        m.insert(key("volume", &loc), Node::new(Value::Map(vm), loc.clone()));
    }
    *item = Node::new(Value::Map(m), loc);
    Ok(())
}

/// Go's `path.Clean` for container paths.
pub fn clean_path(p: &str) -> String {
    if p.is_empty() {
        return ".".into();
    }
    let rooted = p.starts_with('/');
    let mut out: Vec<&str> = Vec::new();
    for part in p.split('/') {
        match part {
            "" | "." => {}
            ".." => {
                if out.last().is_some_and(|l| *l != "..") {
                    out.pop();
                } else if !rooted {
                    out.push("..");
                }
            }
            x => out.push(x),
        }
    }
    let joined = out.join("/");
    match (rooted, joined.is_empty()) {
        (true, _) => format!("/{joined}"),
        (false, true) => ".".into(),
        (false, false) => joined,
    }
}

fn device_mapping(
    item: &mut Node,
    path: &dyn Fn() -> String,
    i: usize,
    lenient: bool,
) -> Result<()> {
    if !matches!(item.value, Value::Scalar(_)) {
        return Ok(());
    }
    let spec = go_text(item);
    let parts: Vec<&str> = spec.split(':').collect();
    let (src, mut dst, perms) = match parts.as_slice() {
        [s] => (*s, "", "rwm"),
        [s, d] => (*s, *d, "rwm"),
        [s, d, p] => (*s, *d, *p),
        _ if lenient => ("", "", "rwm"),
        _ => {
            return Err(invalid(
                &item.loc,
                &format!("{}[{i}]", path()),
                format!("confusing device mapping, please use long syntax: {spec}"),
            ));
        }
    };
    if dst.is_empty() {
        dst = src;
    }
    let loc = item.loc.clone();
    let mut m = Mapping::with_capacity_and_hasher(3, Default::default());
    m.insert(key("source", &loc), string(src, &loc));
    m.insert(key("target", &loc), string(dst, &loc));
    m.insert(key("permissions", &loc), string(perms, &loc));
    *item = Node::new(Value::Map(m), loc);
    Ok(())
}

fn transform_ports(v: &mut Node, path: &str, lenient: bool) -> Result<()> {
    let Value::Seq(items) = &mut v.value else {
        return Err(invalid(
            &v.loc,
            path,
            format!("invalid type {} for port", v.kind_name()),
        ));
    };
    if items.iter().all(|i| matches!(i.value, Value::Map(_))) {
        return Ok(());
    }
    let mut out: Vec<Node> = Vec::with_capacity(items.len());
    for (i, item) in std::mem::take(items).into_iter().enumerate() {
        match &item.value {
            Value::Map(_) => out.push(item),
            Value::Scalar(s) => {
                let spec = match s.resolve() {
                    Resolved::Int(n) => n.to_string(),
                    Resolved::Str(t) => t.to_string(),
                    _ => {
                        return Err(invalid(
                            &item.loc,
                            &format!("{path}[{i}]"),
                            format!("invalid type {} for port", item.kind_name()),
                        ));
                    }
                };
                let parsed = match ports::parse_port(&spec) {
                    Ok(p) => p,
                    Err(_) if lenient => {
                        out.push(item);
                        continue;
                    }
                    Err(e) => return Err(invalid(&item.loc, &format!("{path}[{i}]"), e)),
                };
                let loc = &item.loc;
                for p in parsed {
                    let mut m = Mapping::with_capacity_and_hasher(5, Default::default());
                    m.insert(key("mode", loc), string("ingress", loc));
                    if !p.host_ip.is_empty() {
                        m.insert(key("host_ip", loc), string(p.host_ip, loc));
                    }
                    if p.target != 0 {
                        m.insert(key("target", loc), plain(p.target.to_string(), loc));
                    }
                    if !p.published.is_empty() {
                        m.insert(key("published", loc), string(p.published, loc));
                    }
                    m.insert(key("protocol", loc), string(p.protocol, loc));
                    out.push(Node::new(Value::Map(m), loc.clone()));
                }
            }
            _ => {
                return Err(invalid(
                    &item.loc,
                    &format!("{path}[{i}]"),
                    format!("invalid type {} for port", item.kind_name()),
                ));
            }
        }
    }
    *items = out;
    Ok(())
}

/// `external: {name: x}` -> `external: true` + `name: x` (deprecated form).
fn maybe_external(res: &mut Node, path: &str) -> Result<()> {
    let loc = res.loc.clone();
    let Some(m) = res.as_map_mut() else {
        return Ok(());
    };
    let Some(ext) = m.get_mut("external") else {
        return Ok(());
    };
    let Some(extmap) = ext.as_map() else {
        return Ok(());
    };
    let ext_name = extmap.get("name").cloned();
    let ext_loc = ext.loc.clone();
    *ext = plain("true", &ext_loc);
    if let Some(ext_name) = ext_name {
        match m.get("name") {
            Some(n) if *n != ext_name && go_text(n) != go_text(&ext_name) => {
                return Err(invalid(
                    &loc,
                    path,
                    "name and external.name conflict; only use name",
                ));
            }
            Some(_) => {}
            None => {
                m.insert(key("name", &ext_loc), ext_name);
            }
        }
    }
    Ok(())
}

/// compose-go's `OmitEmpty`: empty `dns` entries are dropped.
fn omit_empty_dns(root: &mut Node) {
    let Some(services) = root.as_map_mut().and_then(|m| m.get_mut("services")) else {
        return;
    };
    let Some(services) = services.as_map_mut() else {
        return;
    };
    for service in services.values_mut() {
        if let Some(dns) = service.as_map_mut().and_then(|m| m.get_mut("dns")) {
            if let Value::Seq(items) = &mut dns.value {
                items.retain(|i| !(i.is_null() || i.as_str() == Some("")));
            }
        }
    }
}

/// compose-go's `SetDefaultValues`: defaults that must exist before relative paths are
/// resolved (`build.context: .`) or that keyed merging relies on (port protocol, secret target).
pub fn set_defaults(root: &mut Node) {
    let Some(services) = root
        .as_map_mut()
        .and_then(|m| m.get_mut("services"))
        .and_then(Node::as_map_mut)
    else {
        return;
    };
    for service in services.values_mut() {
        let Some(m) = service.as_map_mut() else {
            continue;
        };
        for (k, v) in m.iter_mut() {
            let loc = v.loc.clone();
            match k.name.as_str() {
                "build" => {
                    if let Some(b) = v.as_map_mut() {
                        set_default(b, "context", string(".", &loc));
                    }
                }
                "secrets" => {
                    if let Value::Seq(items) = &mut v.value {
                        for item in items.iter_mut() {
                            let loc = item.loc.clone();
                            if let Some(s) = item.as_map_mut() {
                                let source = s.get("source").map(go_text).unwrap_or_default();
                                set_default(
                                    s,
                                    "target",
                                    string(format!("/run/secrets/{source}"), &loc),
                                );
                            }
                        }
                    }
                }
                "ports" => {
                    if let Value::Seq(items) = &mut v.value {
                        for item in items.iter_mut() {
                            let loc = item.loc.clone();
                            if let Some(p) = item.as_map_mut() {
                                set_default(p, "protocol", string("tcp", &loc));
                                set_default(p, "mode", string("ingress", &loc));
                            }
                        }
                    }
                }
                "gpus" => device_request_defaults(v),
                "deploy" => {
                    if let Some(devices) = v
                        .as_map_mut()
                        .and_then(|d| d.get_mut("resources"))
                        .and_then(Node::as_map_mut)
                        .and_then(|r| r.get_mut("reservations"))
                        .and_then(Node::as_map_mut)
                        .and_then(|r| r.get_mut("devices"))
                    {
                        device_request_defaults(devices);
                    }
                }
                "volumes" => {
                    if let Value::Seq(items) = &mut v.value {
                        for item in items.iter_mut() {
                            let loc = item.loc.clone();
                            if let Some(b) = item
                                .as_map_mut()
                                .and_then(|i| i.get_mut("bind"))
                                .and_then(Node::as_map_mut)
                            {
                                set_default(b, "create_host_path", plain("true", &loc));
                            }
                        }
                    }
                }
                _ => {}
            }
        }
    }
}

fn device_request_defaults(v: &mut Node) {
    if let Value::Seq(items) = &mut v.value {
        for item in items.iter_mut() {
            let loc = item.loc.clone();
            if let Some(d) = item.as_map_mut() {
                if !d.contains_key("count") && !d.contains_key("device_ids") {
                    d.insert(key("count", &loc), string("all", &loc));
                }
            }
        }
    }
}
