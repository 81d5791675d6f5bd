//! Profiles: a service with `profiles` runs only when one of them is enabled (`--profile`,
//! `COMPOSE_PROFILES`, `*`), or when it is named on the command line, which also enables what
//! it depends on.

use std::collections::BTreeSet;

use crate::error::{Error, Result};
use crate::graph::ServiceEdges;
use crate::yaml::{Mapping, Node, Value};

/// What [`apply_profiles`] set aside.
#[derive(Debug, Default)]
pub struct ProfileSelection {
    /// Services removed from the model because none of their profiles is enabled.
    pub disabled: Mapping,
    /// Every profile any service names, sorted.
    pub all_profiles: Vec<String>,
}

/// The profiles a service node lists.
pub fn service_profiles(service: &Node) -> Vec<String> {
    match service.get("profiles").map(|p| &p.value) {
        Some(Value::Seq(items)) => items.iter().map(crate::merge::go_text).collect(),
        Some(Value::Scalar(_)) => service
            .get("profiles")
            .map(|p| vec![crate::merge::go_text(p)])
            .unwrap_or_default(),
        _ => Vec::new(),
    }
}

/// compose-go's `HasProfile`: no profiles, or one of them enabled, or `*` enabled.
pub fn is_enabled(service_profiles: &[String], enabled: &[String]) -> bool {
    service_profiles.is_empty()
        || enabled
            .iter()
            .any(|p| p == "*" || service_profiles.iter().any(|s| s == p))
}

/// Move services whose profiles are not enabled out of `services`; services named in
/// `selected` (and, transitively, the services they depend on) stay enabled.
pub fn apply_profiles(
    root: &mut Node,
    enabled: &[String],
    selected: &[String],
) -> Result<ProfileSelection> {
    let mut out = ProfileSelection::default();
    let Some(services) = root
        .as_map_mut()
        .and_then(|m| m.get_mut("services"))
        .and_then(Node::as_map_mut)
    else {
        if let Some(name) = selected.first() {
            return Err(Error::NoSuchService(name.clone()));
        }
        return Ok(out);
    };
    let mut all = BTreeSet::new();
    let mut keep: Vec<bool> = Vec::with_capacity(services.len());
    for service in services.values() {
        let p = service_profiles(service);
        keep.push(is_enabled(&p, enabled));
        all.extend(p);
    }
    // Named services and what they need are enabled whatever their profiles.
    let mut stack: Vec<String> = Vec::new();
    for name in selected {
        if !services.contains_key(name.as_str()) {
            return Err(Error::NoSuchService(name.clone()));
        }
        stack.push(name.clone());
    }
    let mut visited = vec![false; services.len()];
    while let Some(name) = stack.pop() {
        let Some(i) = services.get_index_of(name.as_str()) else {
            continue;
        };
        if std::mem::replace(&mut visited[i], true) {
            continue;
        }
        keep[i] = true;
        let edges = ServiceEdges::from_node(&services[i]);
        for dep in edges.dependencies() {
            if services.contains_key(dep) {
                stack.push(dep.to_string());
            }
        }
    }
    if keep.iter().any(|k| !k) {
        let old = std::mem::take(services);
        for ((k, v), keep) in old.into_iter().zip(keep) {
            if keep {
                services.insert(k, v);
            } else {
                out.disabled.insert(k, v);
            }
        }
    }
    out.all_profiles = all.into_iter().collect();
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::yaml::{ParseLimits, parse_documents};
    use std::sync::Arc;

    fn doc(text: &str) -> Node {
        parse_documents(text, &Arc::from("c.yaml"), ParseLimits::default())
            .unwrap()
            .remove(0)
    }

    const FILE: &str = "services:\n  web:\n    depends_on: [db]\n    profiles: [front]\n  db:\n    profiles: [back]\n  tool:\n    image: x\n";

    fn names(n: &Node) -> Vec<String> {
        n.get("services")
            .and_then(Node::as_map)
            .map(|m| m.keys().map(|k| k.name.clone()).collect())
            .unwrap_or_default()
    }

    #[test]
    fn profiles_enable_services() {
        let mut n = doc(FILE);
        let sel = apply_profiles(&mut n, &[], &[]).unwrap();
        assert_eq!(names(&n), vec!["tool"]);
        assert_eq!(sel.all_profiles, vec!["back", "front"]);
        let mut n = doc(FILE);
        apply_profiles(&mut n, &["*".into()], &[]).unwrap();
        assert_eq!(names(&n).len(), 3);
        let mut n = doc(FILE);
        apply_profiles(&mut n, &["front".into()], &[]).unwrap();
        assert_eq!(names(&n), vec!["web", "tool"]);
    }

    #[test]
    fn naming_a_service_enables_it_and_its_dependencies() {
        let mut n = doc(FILE);
        let sel = apply_profiles(&mut n, &[], &["web".into()]).unwrap();
        assert_eq!(names(&n), vec!["web", "db", "tool"]);
        assert!(sel.disabled.is_empty());
        let mut n = doc(FILE);
        assert!(apply_profiles(&mut n, &[], &["nope".into()]).is_err());
    }
}
