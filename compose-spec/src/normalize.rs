//! Normalization of a decoded [`Project`], as compose-go's `Normalize` plus the environment and
//! label resolution `docker compose config` applies: the implicit `default` network, implicit
//! dependencies, build defaults, `env_file`/`label_file` content, resource names.
//!
//! Relative paths are made absolute by the loader (`loader::paths`) on the node tree, before
//! decoding; the few paths normalization itself introduces (a defaulted build context) are
//! resolved here against the project directory.

use std::path::{Path, PathBuf};

use indexmap::IndexMap;

use crate::dotenv;
use crate::model::{
    DependencyCondition, MappingWithEquals, Network, Project, Service, ServiceDependency,
};

/// Which normalization steps run (the `config` flags switch them off).
#[derive(Clone, Copy, Debug)]
pub struct NormalizeOptions {
    /// Apply compose-go's normalization (`--no-normalize` clears it).
    pub normalize: bool,
    /// Relative paths are resolved (`--no-path-resolution` clears it).
    pub resolve_paths: bool,
}

impl Default for NormalizeOptions {
    fn default() -> Self {
        NormalizeOptions {
            normalize: true,
            resolve_paths: true,
        }
    }
}

/// A file named by `env_file` or `label_file` that could not be used.
#[derive(Debug, thiserror::Error)]
pub enum NormalizeError {
    /// A required `env_file` is missing.
    #[error("env file {} not found", path.display())]
    EnvFileNotFound {
        /// The missing file.
        path: PathBuf,
    },
    /// A `label_file` is missing.
    #[error("label file {} not found", path.display())]
    LabelFileNotFound {
        /// The missing file.
        path: PathBuf,
    },
    /// The file exists but cannot be parsed (the source error already names the file).
    #[error("{source}")]
    Dotenv {
        /// The file.
        path: PathBuf,
        /// Why.
        source: dotenv::DotenvError,
    },
}

/// Normalize a project in place.
pub fn normalize(project: &mut Project, opts: NormalizeOptions) -> Result<(), NormalizeError> {
    // Expanding the deprecated `external.name` is a fix-up every mode needs.
    external_names(project);
    let env = &project.environment;
    let working_dir = project.working_dir.clone();
    // compose-go resolves `env_file` and `label_file` content whether or not it normalizes.
    for service in project.services.values_mut() {
        resolve_env_files(service, env, &working_dir)?;
        resolve_label_files(service, &working_dir)?;
    }
    if !opts.normalize {
        return Ok(());
    }
    default_network(project);
    let env = &project.environment;
    for service in project.services.values_mut() {
        normalize_service(service, env, &working_dir, opts);
    }
    names_from_keys(project);
    Ok(())
}

/// Drop `env_file` and `label_file` once their content is in `environment` and `labels`, as
/// `docker compose config` (and the config hash) do (`WithDiscardEnvFile`).
pub fn discard_env_files(project: &mut Project) {
    for s in project.services.values_mut() {
        s.env_file.clear();
        s.label_file.clear();
    }
}

fn external_names(project: &mut Project) {
    macro_rules! fix {
        ($map:expr) => {
            for r in $map.values_mut() {
                if r.name.is_none() {
                    if let Some(n) = r.external.name.take() {
                        r.name = Some(n);
                    }
                }
            }
        };
    }
    fix!(project.networks);
    fix!(project.volumes);
    fix!(project.secrets);
    fix!(project.configs);
}

/// Services without `network_mode` or `provider` join `default` when they name no network,
/// and the `default` network exists only if some service uses it.
fn default_network(project: &mut Project) {
    let mut uses_default = false;
    for s in project.services.values_mut() {
        if s.provider.is_some() || s.network_mode.is_some() {
            continue;
        }
        if s.networks.is_empty() {
            s.networks.insert("default".to_string(), None);
            uses_default = true;
        } else if s.networks.contains_key("default") {
            uses_default = true;
        }
    }
    if uses_default && !project.networks.contains_key("default") {
        project
            .networks
            .insert("default".to_string(), Network::default());
    }
}

fn names_from_keys(project: &mut Project) {
    let prefix = project.name.clone();
    macro_rules! name {
        ($map:expr) => {
            for (key, r) in $map.iter_mut() {
                if r.name.is_none() {
                    r.name = Some(if r.external.external {
                        key.clone()
                    } else {
                        format!("{prefix}_{key}")
                    });
                }
            }
        };
    }
    name!(project.networks);
    name!(project.volumes);
    name!(project.secrets);
    name!(project.configs);
}

fn normalize_service(
    s: &mut Service,
    env: &IndexMap<String, String>,
    working_dir: &Path,
    opts: NormalizeOptions,
) {
    if s.pull_policy.as_deref() == Some("if_not_present") {
        s.pull_policy = Some("missing".to_string());
    }
    if let Some(build) = &mut s.build {
        if build.context.is_none() {
            build.context = Some(if opts.resolve_paths {
                working_dir.to_string_lossy().into_owned()
            } else {
                ".".to_string()
            });
        }
        if build.dockerfile.is_none() && build.dockerfile_inline.is_none() {
            build.dockerfile = Some("Dockerfile".to_string());
        }
        // Build args named without a value take the variable, or are dropped when it is unset.
        build.args.retain(|k, v| {
            if v.is_none() {
                *v = env.get(k).cloned();
            }
            v.is_some()
        });
    }
    implicit_dependencies(s);
    for v in &mut s.volumes {
        v.target = clean_path(&v.target);
    }
    if let Some(image) = &s.image {
        for hook in &mut s.pre_start {
            if hook.image.is_none() {
                hook.image = Some(image.clone());
            }
        }
    }
}

/// `env_file` content under the service's own `environment`; unset variables take the
/// project environment's value.
fn resolve_env_files(
    s: &mut Service,
    env: &IndexMap<String, String>,
    working_dir: &Path,
) -> Result<(), NormalizeError> {
    let mut merged: MappingWithEquals = IndexMap::new();
    for f in &s.env_file {
        // With `--no-path-resolution` the printed path stays relative; it is read from the
        // project directory all the same.
        let full = working_dir.join(&f.path);
        let path = full.as_path();
        if !path.exists() {
            if f.required.0 {
                return Err(NormalizeError::EnvFileNotFound {
                    path: path.to_path_buf(),
                });
            }
            continue;
        }
        // `${X}` in an env file sees the service's own environment first, then what earlier
        // env files set, then the project environment, as compose-go resolves it.
        let lookup = |k: &str| {
            s.environment
                .get(k)
                .cloned()
                .flatten()
                .or_else(|| merged.get(k).cloned().flatten())
                .or_else(|| env.get(k).cloned())
        };
        let vars = if f.format.as_deref() == Some("raw") {
            dotenv::read_file_raw(path, Some(&lookup))
        } else {
            dotenv::read_file(path, &lookup)
        }
        .map_err(|source| NormalizeError::Dotenv {
            path: path.to_path_buf(),
            source,
        })?;
        for (k, v) in vars {
            merged.insert(k, Some(v));
        }
    }
    if merged.is_empty() {
        for (k, v) in s.environment.iter_mut() {
            if v.is_none() {
                *v = env.get(k).cloned();
            }
        }
        return Ok(());
    }
    for (k, v) in std::mem::take(&mut s.environment) {
        let v = v.or_else(|| env.get(&k).cloned());
        match v {
            Some(v) => {
                merged.insert(k, Some(v));
            }
            // A name without a value in `environment` keeps the env_file's value if any.
            None => {
                merged.entry(k).or_insert(None);
            }
        }
    }
    s.environment = merged;
    Ok(())
}

fn resolve_label_files(s: &mut Service, working_dir: &Path) -> Result<(), NormalizeError> {
    if s.label_file.is_empty() {
        return Ok(());
    }
    let mut merged = IndexMap::new();
    for f in &s.label_file {
        let full = working_dir.join(f);
        let path = full.as_path();
        if !path.exists() {
            return Err(NormalizeError::LabelFileNotFound {
                path: path.to_path_buf(),
            });
        }
        let vars =
            dotenv::read_file(path, &|_: &str| None).map_err(|source| NormalizeError::Dotenv {
                path: path.to_path_buf(),
                source,
            })?;
        merged.extend(vars);
    }
    merged.extend(std::mem::take(&mut s.labels));
    s.labels = merged;
    Ok(())
}

/// `links`, `service:` namespaces and `volumes_from` imply `depends_on` entries.
fn implicit_dependencies(s: &mut Service) {
    let mut add = |name: &str, restart: bool| {
        if !s.depends_on.contains_key(name) {
            s.depends_on.insert(
                name.to_string(),
                ServiceDependency {
                    condition: DependencyCondition::ServiceStarted,
                    restart,
                    required: true,
                    ..ServiceDependency::default()
                },
            );
        }
    };
    for link in &s.links {
        let parts: Vec<&str> = link.split(':').collect();
        let name = if parts.len() == 2 { parts[0] } else { link };
        add(name, true);
    }
    for ns in [&s.network_mode, &s.ipc, &s.pid, &s.uts, &s.cgroup]
        .into_iter()
        .flatten()
    {
        if let Some(shared) = ns.strip_prefix("service:") {
            add(shared, true);
        }
    }
    for v in &s.volumes_from {
        if !v.starts_with("container:") {
            let name = v.split(':').next().unwrap_or(v);
            add(name, false);
        }
    }
}

/// Go's `path.Clean`: lexical, slash-separated (one implementation, shared with `transform`).
pub use crate::transform::clean_path;

#[cfg(test)]
mod tests {
    use super::*;

    fn project(yaml: &str) -> Project {
        let file: std::sync::Arc<str> = std::sync::Arc::from("compose.yaml");
        let docs = crate::yaml::parse_documents(yaml, &file, Default::default()).unwrap();
        let mut p = Project::from_node(&docs[0]).unwrap();
        p.name = "demo".into();
        normalize(&mut p, NormalizeOptions::default()).unwrap();
        p
    }

    #[test]
    fn default_network_names_and_implicit_dependencies() {
        let p = project(
            "services:\n  web:\n    image: a\n    links: [db:database]\n    volumes_from: [data]\n  db:\n    image: b\n    network_mode: host\n  data:\n    image: c\n    networks: [back]\nnetworks:\n  back:\n    external: true\nvolumes:\n  v: {}\n",
        );
        let web = &p.services["web"];
        assert!(web.networks.contains_key("default"));
        assert!(p.services["db"].networks.is_empty());
        assert_eq!(p.networks["default"].name.as_deref(), Some("demo_default"));
        assert_eq!(p.networks["back"].name.as_deref(), Some("back"));
        assert_eq!(p.volumes["v"].name.as_deref(), Some("demo_v"));
        assert!(web.depends_on["db"].restart);
        assert!(!web.depends_on["data"].restart);
        assert!(web.depends_on["data"].required);
    }

    #[test]
    fn clean_path_is_lexical() {
        assert_eq!(clean_path("/a/b/../c/"), "/a/c");
        assert_eq!(clean_path("a/./b"), "a/b");
        assert_eq!(clean_path("/.."), "/");
        assert_eq!(clean_path(""), ".");
    }
}
