//! Consistency between services and the resources they reference (compose-go's
//! `checkConsistency`): undefined networks, volumes, secrets, configs, models and services,
//! services with neither image nor build, duplicate container names.

use std::collections::HashMap;

use crate::model::Project;
use crate::validate::{ValidationError, locate};
use crate::yaml::Node;

/// Check references between services and top-level resources. `root` gives locations.
pub fn check(project: &Project, root: Option<&Node>) -> Result<(), ValidationError> {
    let fail = |path: &[&str], message: String| ValidationError {
        loc: locate(root, path),
        message: format!("{message}: invalid compose project"),
    };
    let mut container_names: HashMap<&str, &str> = HashMap::new();
    for (name, s) in &project.services {
        let name = name.as_str();
        if s.image.is_none() && s.build.is_none() && s.provider.is_none() {
            return Err(fail(
                &["services", name],
                format!("service {name:?} has neither an image nor a build context specified"),
            ));
        }
        for net in s.networks.keys() {
            if !project.networks.contains_key(net) {
                return Err(fail(
                    &["services", name, "networks", net],
                    format!("service {name:?} refers to undefined network {net}"),
                ));
            }
        }
        for (i, v) in s.volumes.iter().enumerate() {
            if v.kind != "volume" {
                continue;
            }
            let Some(src) = v.source.as_deref().filter(|s| !s.is_empty()) else {
                continue;
            };
            if !project.volumes.contains_key(src) {
                let idx = i.to_string();
                return Err(fail(
                    &["services", name, "volumes", &idx],
                    format!("service {name:?} refers to undefined volume {src}"),
                ));
            }
        }
        let build_secrets = s.build.iter().flat_map(|b| b.secrets.iter());
        for (i, r) in s.secrets.iter().chain(build_secrets).enumerate() {
            if !project.secrets.contains_key(&r.source) {
                let idx = i.to_string();
                return Err(fail(
                    &["services", name, "secrets", &idx],
                    format!("service {name:?} refers to undefined secret {}", r.source),
                ));
            }
        }
        for (i, r) in s.configs.iter().enumerate() {
            if !project.configs.contains_key(&r.source) {
                let idx = i.to_string();
                return Err(fail(
                    &["services", name, "configs", &idx],
                    format!("service {name:?} refers to undefined config {}", r.source),
                ));
            }
        }
        for m in s.models.keys() {
            if !project.models.contains_key(m) {
                return Err(fail(
                    &["services", name, "models", m],
                    format!("service {name:?} refers to undefined model {m}"),
                ));
            }
        }
        for (dep, d) in &s.depends_on {
            if d.required
                && !project.services.contains_key(dep)
                && !project.disabled_services.contains_key(dep)
            {
                return Err(fail(
                    &["services", name, "depends_on", dep],
                    format!("service {name:?} depends on undefined service {dep:?}"),
                ));
            }
        }
        for (key, value) in [
            ("network_mode", &s.network_mode),
            ("ipc", &s.ipc),
            ("pid", &s.pid),
        ] {
            if let Some(other) = value.as_deref().and_then(|v| v.strip_prefix("service:")) {
                if !project.services.contains_key(other) {
                    return Err(fail(
                        &["services", name, key],
                        format!("service {other:?} not found for {key} 'service:{other}'"),
                    ));
                }
            }
        }
        for v in &s.volumes_from {
            if v.starts_with("container:") {
                continue;
            }
            let other = v.split(':').next().unwrap_or(v);
            if !project.services.contains_key(other) {
                return Err(fail(
                    &["services", name, "volumes_from"],
                    format!(
                        "service {name:?} refers to undefined service {other:?} in volumes_from"
                    ),
                ));
            }
        }
        if let Some(cn) = s.container_name.as_deref() {
            if let Some(prev) = container_names.insert(cn, name) {
                return Err(fail(
                    &["services", name, "container_name"],
                    format!("container name {cn:?} is already in use by service {prev:?}"),
                ));
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check_yaml(yaml: &str) -> Result<(), ValidationError> {
        let file: std::sync::Arc<str> = std::sync::Arc::from("compose.yaml");
        let docs = crate::yaml::parse_documents(yaml, &file, Default::default()).unwrap();
        let p = Project::from_node(&docs[0]).unwrap();
        check(&p, Some(&docs[0]))
    }

    #[test]
    fn undefined_references_name_file_and_line() {
        let e = check_yaml("services:\n  web:\n    image: a\n    networks: [front]\n").unwrap_err();
        assert_eq!(
            e.to_string(),
            "compose.yaml:4:15: service \"web\" refers to undefined network front: invalid compose project"
        );
        let e = check_yaml("services:\n  web:\n    image: a\n    secrets: [s]\n").unwrap_err();
        assert!(e.to_string().contains("refers to undefined secret s"));
        let e = check_yaml("services:\n  web:\n    build: .\n    volumes: [\"data:/d\"]\n")
            .unwrap_err();
        assert!(e.to_string().contains("refers to undefined volume data"));
        let e = check_yaml("services:\n  web: {}\n").unwrap_err();
        assert!(
            e.to_string()
                .contains("has neither an image nor a build context")
        );
        assert!(check_yaml("services:\n  web:\n    image: a\n    volumes: [\"./d:/d\"]\n").is_ok());
    }
}
