//! Semantic checks the schema cannot express, worded as compose-go words them: conflicting
//! `external` settings, `name` vs `external.name`, empty bind sources, device request rules.
//! Errors carry the file and line of the offending value when the source tree is given.

use crate::model::{DeviceRequest, External, Mapping, Project};
use crate::yaml::{Location, Node};

/// A model that decodes but breaks a rule of the specification.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{}{message}", loc.as_ref().map(|l| format!("{l}: ")).unwrap_or_default())]
pub struct ValidationError {
    /// Where the offending value was written, when known.
    pub loc: Option<Location>,
    /// What is wrong.
    pub message: String,
}

/// Find the location of `path` (mapping keys, or sequence indexes as decimal) in a tree: the
/// deepest node that exists, so an error points as close to the problem as possible.
pub fn locate(root: Option<&Node>, path: &[&str]) -> Option<Location> {
    let mut node = root?;
    for seg in path {
        let next = match &node.value {
            crate::yaml::Value::Map(m) => m.get(*seg),
            crate::yaml::Value::Seq(items) => seg.parse::<usize>().ok().and_then(|i| items.get(i)),
            _ => None,
        };
        match next {
            Some(n) => node = n,
            None => break,
        }
    }
    Some(node.loc.clone())
}

fn err(root: Option<&Node>, path: &[&str], message: String) -> ValidationError {
    ValidationError {
        loc: locate(root, path),
        message,
    }
}

/// Check a decoded project. `root` is the merged source tree, for locations.
pub fn validate(project: &Project, root: Option<&Node>) -> Result<(), ValidationError> {
    for (name, v) in &project.volumes {
        external_conflicts(
            root,
            "volumes",
            name,
            &v.external,
            v.driver.is_some(),
            &v.driver_opts,
            &v.labels,
        )?;
        name_conflict(root, "volumes", name, v.name.as_deref(), &v.external)?;
    }
    for (name, n) in &project.networks {
        external_conflicts(
            root,
            "networks",
            name,
            &n.external,
            n.driver.is_some(),
            &n.driver_opts,
            &n.labels,
        )?;
        name_conflict(root, "networks", name, n.name.as_deref(), &n.external)?;
    }
    for (name, s) in &project.secrets {
        name_conflict(root, "secrets", name, s.name.as_deref(), &s.external)?;
    }
    for (name, c) in &project.configs {
        name_conflict(root, "configs", name, c.name.as_deref(), &c.external)?;
    }
    for (sname, s) in &project.services {
        for (i, v) in s.volumes.iter().enumerate() {
            let idx = i.to_string();
            let path = ["services", sname.as_str(), "volumes", idx.as_str()];
            if v.kind == "bind" && v.source.as_deref().is_none_or(str::is_empty) {
                return Err(err(
                    root,
                    &path,
                    format!(
                        "services.{sname}.volumes[{i}]: invalid mount config for type \"bind\": field Source must not be empty"
                    ),
                ));
            }
            if v.tmpfs.is_some() && v.kind != "tmpfs" {
                return Err(err(
                    root,
                    &path,
                    format!(
                        "services.{sname}.volumes[{i}]: tmpfs options are only allowed for type \"tmpfs\""
                    ),
                ));
            }
        }
        for (i, d) in s.gpus.iter().enumerate() {
            let idx = i.to_string();
            device_request(root, &["services", sname, "gpus", &idx], d, false)?;
        }
        if let Some(deploy) = &s.deploy {
            for (kind, res) in [
                ("limits", &deploy.resources.limits),
                ("reservations", &deploy.resources.reservations),
            ] {
                let Some(res) = res else { continue };
                for (i, d) in res.devices.iter().enumerate() {
                    let idx = i.to_string();
                    let path = [
                        "services",
                        sname,
                        "deploy",
                        "resources",
                        kind,
                        "devices",
                        &idx,
                    ];
                    device_request(root, &path, d, true)?;
                }
            }
        }
    }
    Ok(())
}

fn external_conflicts(
    root: Option<&Node>,
    kind: &str,
    name: &str,
    external: &External,
    driver: bool,
    driver_opts: &Mapping,
    labels: &Mapping,
) -> Result<(), ValidationError> {
    if !external.external {
        return Ok(());
    }
    for (set, key) in [
        (driver, "driver"),
        (!driver_opts.is_empty(), "driver_opts"),
        (!labels.is_empty(), "labels"),
    ] {
        if set {
            return Err(err(
                root,
                &[kind, name, key],
                format!(
                    "{kind}.{name}: conflicting parameters \"external\" and \"{key}\" specified"
                ),
            ));
        }
    }
    Ok(())
}

fn name_conflict(
    root: Option<&Node>,
    kind: &str,
    key: &str,
    name: Option<&str>,
    external: &External,
) -> Result<(), ValidationError> {
    if let (Some(n), Some(en)) = (name, external.name.as_deref()) {
        if n != en {
            return Err(err(
                root,
                &[kind, key, "external"],
                format!("{kind}.{key}: name and external.name conflict; only use name"),
            ));
        }
    }
    Ok(())
}

fn device_request(
    root: Option<&Node>,
    path: &[&str],
    d: &DeviceRequest,
    capabilities_required: bool,
) -> Result<(), ValidationError> {
    let dotted = dotted(path);
    if d.count.is_some() && !d.device_ids.is_empty() {
        return Err(err(
            root,
            path,
            format!("{dotted}: \"count\" and \"device_ids\" attributes are exclusive"),
        ));
    }
    if capabilities_required && d.capabilities.is_empty() {
        return Err(err(
            root,
            path,
            format!("{dotted} missing property 'capabilities'"),
        ));
    }
    Ok(())
}

/// `services.web.ports[1]` from path segments.
pub(crate) fn dotted(path: &[&str]) -> String {
    let mut s = String::new();
    for seg in path {
        if seg.bytes().all(|b| b.is_ascii_digit()) && !seg.is_empty() {
            s.push('[');
            s.push_str(seg);
            s.push(']');
        } else {
            if !s.is_empty() {
                s.push('.');
            }
            s.push_str(seg);
        }
    }
    s
}
