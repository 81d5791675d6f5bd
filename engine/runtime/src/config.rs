//! Loading and validating a bundle's config.json; every error names the JSON field at fault.

use std::collections::HashSet;
use std::path::{Path, PathBuf};

use oci_spec::runtime::{LinuxNamespaceType, Spec};

/// Problems with a bundle or its config.json.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// config.json cannot be read.
    #[error("cannot read {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
    /// config.json is not valid JSON or a field has the wrong type.
    #[error("{path}: invalid config at `{field}`: {message}")]
    Parse {
        /// The file.
        path: PathBuf,
        /// The JSON path of the offending field.
        field: String,
        /// What is wrong.
        message: String,
    },
    /// A field has a value the runtime cannot honour.
    #[error("invalid config: `{field}`: {message}")]
    Invalid {
        /// The JSON path of the offending field.
        field: String,
        /// What is wrong.
        message: String,
    },
}

fn invalid(field: impl Into<String>, message: impl Into<String>) -> ConfigError {
    ConfigError::Invalid {
        field: field.into(),
        message: message.into(),
    }
}

/// Reads `<bundle>/config.json`, reporting the JSON path of the first bad field.
pub fn load(bundle: &Path) -> Result<Spec, ConfigError> {
    let path = bundle.join("config.json");
    let text = std::fs::read(&path).map_err(|source| ConfigError::Read {
        path: path.clone(),
        source,
    })?;
    parse(&text).map_err(|(field, message)| ConfigError::Parse {
        path,
        field,
        message,
    })
}

/// Parses config.json text; the error is (JSON path, message).
pub fn parse(text: &[u8]) -> Result<Spec, (String, String)> {
    // The path-tracking deserializer is a second full copy of Spec's decoder; running it only
    // to explain a failure keeps its pages out of every successful `create` (peak RSS).
    if let Ok(spec) = serde_json::from_slice(text) {
        return Ok(spec);
    }
    let de = &mut serde_json::Deserializer::from_slice(text);
    serde_path_to_error::deserialize(de).map_err(|e| {
        let field = e.path().to_string();
        let msg = e.inner().to_string();
        (if field == "." { "(root)".into() } else { field }, msg)
    })
}

/// Checks the fields the runtime relies on; `bundle` resolves a relative root.path.
pub fn validate(spec: &Spec, bundle: &Path) -> Result<(), ConfigError> {
    if !spec.version().starts_with("1.") {
        return Err(invalid(
            "ociVersion",
            format!("unsupported version {:?}, expected 1.x", spec.version()),
        ));
    }
    let root = spec
        .root()
        .as_ref()
        .ok_or_else(|| invalid("root", "missing"))?;
    if root.path().as_os_str().is_empty() {
        return Err(invalid("root.path", "empty"));
    }
    let rootfs = rootfs_path(spec, bundle)?;
    if !rootfs.is_dir() {
        return Err(invalid(
            "root.path",
            format!("{} does not exist or is not a directory", rootfs.display()),
        ));
    }
    // process may be absent at create time (the spec makes it optional); start refuses then.
    if let Some(process) = spec.process() {
        validate_process(process, "process")?;
    }
    if let Some(mounts) = spec.mounts() {
        for (i, m) in mounts.iter().enumerate() {
            if !m.destination().is_absolute() {
                return Err(invalid(
                    format!("mounts[{i}].destination"),
                    format!("{} is not absolute", m.destination().display()),
                ));
            }
        }
    }
    if let Some(hooks) = spec.hooks() {
        #[allow(deprecated)]
        let lists = [
            ("prestart", hooks.prestart()),
            ("createRuntime", hooks.create_runtime()),
            ("createContainer", hooks.create_container()),
            ("startContainer", hooks.start_container()),
            ("poststart", hooks.poststart()),
            ("poststop", hooks.poststop()),
        ];
        for (name, list) in lists {
            for (i, h) in list.iter().flatten().enumerate() {
                if !h.path().is_absolute() {
                    return Err(invalid(
                        format!("hooks.{name}[{i}].path"),
                        "must be an absolute path",
                    ));
                }
            }
        }
    }
    let linux = spec
        .linux()
        .as_ref()
        .ok_or_else(|| invalid("linux", "missing"))?;
    let mut seen = HashSet::new();
    let namespaces = linux.namespaces().clone().unwrap_or_default();
    for (i, ns) in namespaces.iter().enumerate() {
        if !seen.insert(ns.typ()) {
            return Err(invalid(
                format!("linux.namespaces[{i}].type"),
                format!("duplicate namespace {}", ns.typ()),
            ));
        }
        if let Some(p) = ns.path() {
            if !p.is_absolute() {
                return Err(invalid(
                    format!("linux.namespaces[{i}].path"),
                    "must be an absolute path",
                ));
            }
        }
    }
    let has_userns = seen.contains(&LinuxNamespaceType::User);
    let maps = linux.uid_mappings().as_ref().is_some_and(|m| !m.is_empty())
        || linux.gid_mappings().as_ref().is_some_and(|m| !m.is_empty());
    if maps && !has_userns {
        return Err(invalid(
            "linux.uidMappings",
            "mappings given without a user namespace",
        ));
    }
    let new_userns = namespaces
        .iter()
        .any(|n| n.typ() == LinuxNamespaceType::User && n.path().is_none());
    if new_userns {
        if linux.uid_mappings().as_ref().is_none_or(|m| m.is_empty()) {
            return Err(invalid(
                "linux.uidMappings",
                "a new user namespace needs uid mappings",
            ));
        }
        if linux.gid_mappings().as_ref().is_none_or(|m| m.is_empty()) {
            return Err(invalid(
                "linux.gidMappings",
                "a new user namespace needs gid mappings",
            ));
        }
    }
    if spec.hostname().as_ref().is_some_and(|h| !h.is_empty())
        && !seen.contains(&LinuxNamespaceType::Uts)
    {
        return Err(invalid(
            "hostname",
            "setting a hostname needs a uts namespace",
        ));
    }
    if spec.domainname().as_ref().is_some_and(|h| !h.is_empty())
        && !seen.contains(&LinuxNamespaceType::Uts)
    {
        return Err(invalid(
            "domainname",
            "setting a domainname needs a uts namespace",
        ));
    }
    if let Some(devs) = linux.devices() {
        for (i, d) in devs.iter().enumerate() {
            if !d.path().is_absolute() {
                return Err(invalid(
                    format!("linux.devices[{i}].path"),
                    "must be an absolute path",
                ));
            }
        }
    }
    Ok(())
}

/// Checks a process object (config.json's `process` or an exec process.json).
pub fn validate_process(
    process: &oci_spec::runtime::Process,
    prefix: &str,
) -> Result<(), ConfigError> {
    let args = process.args().clone().unwrap_or_default();
    if args.is_empty() || args[0].is_empty() {
        return Err(invalid(format!("{prefix}.args"), "must not be empty"));
    }
    if !process.cwd().is_absolute() {
        return Err(invalid(
            format!("{prefix}.cwd"),
            format!("{:?} is not an absolute path", process.cwd()),
        ));
    }
    for (i, e) in process.env().iter().flatten().enumerate() {
        if !e.contains('=') {
            return Err(invalid(
                format!("{prefix}.env[{i}]"),
                format!("{e:?} is not KEY=VALUE"),
            ));
        }
    }
    let mut seen = HashSet::new();
    for (i, r) in process.rlimits().iter().flatten().enumerate() {
        if !seen.insert(format!("{:?}", r.typ())) {
            return Err(invalid(
                format!("{prefix}.rlimits[{i}].type"),
                "duplicate rlimit",
            ));
        }
        if r.soft() > r.hard() {
            return Err(invalid(
                format!("{prefix}.rlimits[{i}].soft"),
                "soft limit above hard limit",
            ));
        }
    }
    Ok(())
}

/// The absolute rootfs path: root.path, relative to the bundle when not absolute.
pub fn rootfs_path(spec: &Spec, bundle: &Path) -> Result<PathBuf, ConfigError> {
    let root = spec
        .root()
        .as_ref()
        .ok_or_else(|| invalid("root", "missing"))?;
    let p = root.path();
    let joined = if p.is_absolute() {
        p.clone()
    } else {
        bundle.join(p)
    };
    joined
        .canonicalize()
        .map_err(|e| invalid("root.path", format!("{}: {e}", joined.display())))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bundle() -> tempfile::TempDir {
        let d = tempfile::tempdir().unwrap();
        std::fs::create_dir(d.path().join("rootfs")).unwrap();
        d
    }

    fn base() -> serde_json::Value {
        serde_json::json!({
            "ociVersion": "1.0.2",
            "root": {"path": "rootfs"},
            "process": {"args": ["sh"], "cwd": "/", "user": {"uid": 0, "gid": 0}},
            "linux": {"namespaces": [{"type": "pid"}, {"type": "mount"}]}
        })
    }

    fn check(v: serde_json::Value, b: &Path) -> Result<(), ConfigError> {
        let spec = parse(v.to_string().as_bytes())
            .map_err(|(field, message)| ConfigError::Invalid { field, message })?;
        validate(&spec, b)
    }

    fn field_of(e: ConfigError) -> String {
        match e {
            ConfigError::Invalid { field, .. } | ConfigError::Parse { field, .. } => field,
            ConfigError::Read { .. } => "read".into(),
        }
    }

    #[test]
    fn valid_config_passes() {
        let b = bundle();
        check(base(), b.path()).unwrap();
    }

    #[test]
    fn wrong_type_names_the_field() {
        let b = bundle();
        let mut v = base();
        v["process"]["user"]["uid"] = serde_json::json!("root");
        assert_eq!(
            field_of(check(v, b.path()).unwrap_err()),
            "process.user.uid"
        );
    }

    #[test]
    fn missing_rootfs_names_root_path() {
        let b = bundle();
        let mut v = base();
        v["root"]["path"] = serde_json::json!("nope");
        assert_eq!(field_of(check(v, b.path()).unwrap_err()), "root.path");
    }

    #[test]
    fn empty_args_and_relative_cwd_rejected() {
        let b = bundle();
        let mut v = base();
        v["process"]["args"] = serde_json::json!([]);
        assert_eq!(field_of(check(v, b.path()).unwrap_err()), "process.args");
        let mut v = base();
        v["process"]["cwd"] = serde_json::json!("tmp");
        assert_eq!(field_of(check(v, b.path()).unwrap_err()), "process.cwd");
    }

    #[test]
    fn namespace_rules() {
        let b = bundle();
        let mut v = base();
        v["linux"]["namespaces"] = serde_json::json!([{"type": "pid"}, {"type": "pid"}]);
        assert_eq!(
            field_of(check(v, b.path()).unwrap_err()),
            "linux.namespaces[1].type"
        );
        let mut v = base();
        v["linux"]["namespaces"] = serde_json::json!([{"type": "user"}]);
        assert_eq!(
            field_of(check(v, b.path()).unwrap_err()),
            "linux.uidMappings"
        );
        let mut v = base();
        v["hostname"] = serde_json::json!("box");
        assert_eq!(field_of(check(v, b.path()).unwrap_err()), "hostname");
    }

    #[test]
    fn relative_mount_destination_rejected() {
        let b = bundle();
        let mut v = base();
        v["mounts"] = serde_json::json!([{"destination": "proc", "type": "proc"}]);
        assert_eq!(
            field_of(check(v, b.path()).unwrap_err()),
            "mounts[0].destination"
        );
    }
}
