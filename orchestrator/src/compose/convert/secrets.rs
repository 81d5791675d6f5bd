//! `secrets` and `configs`. File-based ones are read-only bind mounts (secrets under
//! `/run/secrets/`, configs at their target, by default `/<name>`); those whose content comes
//! from `environment` or `content` are copied in after create, as compose's `injectSecrets` and
//! `injectConfigs` do.

use bollard_stubs::models::{Mount, MountBindOptions, MountType};
use compose_spec::model::{FileObject, FileReference};

use super::{ContainerSpec, invalid, mounts::absolute};
use crate::compose::error::Result;

/// A file to copy into the container before it starts.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FileCopy {
    /// The path in the container (absolute, or relative to `/`).
    pub target: String,
    /// The file's content.
    pub content: Vec<u8>,
    /// The file mode (compose's default is `0444`).
    pub mode: u32,
    /// The owner, when the reference names one.
    pub uid: Option<u32>,
    /// The group, when the reference names one.
    pub gid: Option<u32>,
}

impl FileCopy {
    /// Whether the copy must keep its uid and gid (the archive call's `copyUIDGID`).
    pub fn copy_uid_gid(&self) -> bool {
        self.uid.is_some() || self.gid.is_some()
    }

    /// A tar archive of the one file, to extract at `/`.
    pub fn archive(&self) -> std::io::Result<Vec<u8>> {
        let mut header = tar::Header::new_gnu();
        header.set_size(self.content.len() as u64);
        header.set_mode(self.mode);
        header.set_uid(u64::from(self.uid.unwrap_or(0)));
        header.set_gid(u64::from(self.gid.unwrap_or(0)));
        header.set_entry_type(tar::EntryType::Regular);
        let mtime = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        header.set_mtime(mtime);
        let mut b = tar::Builder::new(Vec::new());
        b.append_data(
            &mut header,
            self.target.trim_start_matches('/'),
            self.content.as_slice(),
        )?;
        b.into_inner()
    }
}

#[derive(Clone, Copy, PartialEq)]
enum Kind {
    Secret,
    Config,
}

impl Kind {
    fn key(self) -> &'static str {
        match self {
            Kind::Secret => "secrets",
            Kind::Config => "configs",
        }
    }

    fn word(self) -> &'static str {
        match self {
            Kind::Secret => "secret",
            Kind::Config => "config",
        }
    }

    /// Where a reference lands: secrets under `/run/secrets/` unless absolute, configs at
    /// `/<source>` by default.
    fn target(self, r: &FileReference) -> String {
        match (self, r.target.as_deref().filter(|t| !t.is_empty())) {
            (Kind::Secret, None) => format!("/run/secrets/{}", r.source),
            (Kind::Secret, Some(t)) if !t.starts_with('/') => format!("/run/secrets/{t}"),
            (Kind::Config, None) => format!("/{}", r.source),
            (Kind::Config, Some(t)) if !t.starts_with('/') => format!("/{t}"),
            (_, Some(t)) => t.to_string(),
        }
    }
}

/// The references of one kind with their definitions; external and driver-managed objects are
/// refused, as compose refuses them.
fn references<'a>(
    spec: &'a ContainerSpec,
    kind: Kind,
) -> Result<Vec<(&'a FileReference, &'a FileObject)>> {
    let s = spec.service;
    let (refs, defs) = match kind {
        Kind::Secret => (&s.secrets, &spec.project.secrets),
        Kind::Config => (&s.configs, &spec.project.configs),
    };
    refs.iter()
        .map(|r| {
            let field = format!("{}[{}]", kind.key(), r.source);
            let def = defs
                .get(&r.source)
                .ok_or_else(|| invalid(s, &field, format!("undefined {}", kind.word())))?;
            let name = def.name.as_deref().unwrap_or(&r.source);
            if def.external.external {
                return Err(invalid(
                    s,
                    &field,
                    format!("unsupported external {} {name}", kind.word()),
                ));
            }
            if def.driver.is_some() {
                return Err(invalid(
                    s,
                    &field,
                    format!("Docker Compose does not support {}.*.driver", kind.key()),
                ));
            }
            if def.template_driver.is_some() {
                return Err(invalid(
                    s,
                    &field,
                    format!(
                        "Docker Compose does not support {}.*.template_driver",
                        kind.key()
                    ),
                ));
            }
            Ok((r, def))
        })
        .collect()
}

/// Read-only bind mounts of file-based secrets, then configs.
pub(super) fn mounts(spec: &ContainerSpec) -> Result<Vec<Mount>> {
    let mut out = Vec::new();
    for kind in [Kind::Secret, Kind::Config] {
        for (r, def) in references(spec, kind)? {
            if def.environment.is_some() || def.content.is_some() {
                continue;
            }
            let Some(file) = def.file.as_deref() else {
                return Err(invalid(
                    spec.service,
                    &format!("{}[{}]", kind.key(), r.source),
                    format!("{} has no file, environment or content", kind.word()),
                ));
            };
            let source = absolute(spec, file);
            if r.uid.is_some() || r.gid.is_some() || r.mode.is_some() {
                tracing::warn!(
                    service = %spec.service.name,
                    "{} `uid`, `gid` and `mode` are not supported, they will be ignored",
                    kind.key()
                );
            }
            if kind == Kind::Secret && !std::path::Path::new(&source).exists() {
                tracing::warn!("secret file {} does not exist", r.source);
            }
            out.push(Mount {
                typ: Some(MountType::BIND),
                source: Some(source),
                target: Some(kind.target(r)),
                read_only: Some(true),
                // A secret's host path must exist: no mountpoint is created for it.
                bind_options: (kind == Kind::Secret).then(MountBindOptions::default),
                ..Default::default()
            });
        }
    }
    Ok(out)
}

/// Secrets and configs whose content is inline or in a project environment variable.
pub(super) fn copies(spec: &ContainerSpec) -> Result<Vec<FileCopy>> {
    let s = spec.service;
    let mut out = Vec::new();
    for kind in [Kind::Secret, Kind::Config] {
        for (r, def) in references(spec, kind)? {
            let field = || format!("{}[{}]", kind.key(), r.source);
            let name = def.name.as_deref().unwrap_or(&r.source);
            let content = match (&def.content, &def.environment) {
                (Some(c), _) => c.clone(),
                (None, Some(var)) => {
                    spec.project.environment.get(var).cloned().ok_or_else(|| {
                        invalid(
                            s,
                            &field(),
                            format!(
                                "environment variable {var:?} required by {} {name:?} is not set",
                                kind.word()
                            ),
                        )
                    })?
                }
                (None, None) => continue,
            };
            if content.is_empty() {
                continue;
            }
            if s.read_only {
                return Err(invalid(
                    s,
                    &field(),
                    format!(
                        "cannot create {} {name:?} in read-only service {}: `file` is the sole supported option",
                        kind.word(),
                        s.name
                    ),
                ));
            }
            let id = |v: &Option<String>, what: &str| -> Result<Option<u32>> {
                v.as_deref()
                    .filter(|v| !v.is_empty())
                    .map(|v| {
                        v.parse::<u32>()
                            .map_err(|_| invalid(s, &field(), format!("invalid {what} {v:?}")))
                    })
                    .transpose()
            };
            out.push(FileCopy {
                target: kind.target(r),
                content: content.into_bytes(),
                mode: r.mode.map_or(0o444, |m| m.0),
                uid: id(&r.uid, "uid")?,
                gid: id(&r.gid, "gid")?,
            });
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use bollard_stubs::models::MountType;

    use super::super::testing::*;

    #[test]
    fn file_secrets_and_configs_are_read_only_mounts() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("pw.txt"), "hunter2").unwrap();
        std::fs::write(dir.path().join("app.conf"), "x=1").unwrap();
        let p = project_in(
            dir.path(),
            "services:\n  web:\n    image: x\n    secrets:\n      - pw\n      - source: pw\n        target: other\n      - source: pw\n        target: /etc/pw\n    configs:\n      - app\n      - source: app\n        target: /etc/app.conf\n      - source: app\n        target: etc/relative.conf\n    volumes:\n      - /srv/override:/etc/pw\nsecrets:\n  pw:\n    file: ./pw.txt\nconfigs:\n  app:\n    file: ./app.conf\n",
        );
        let h = convert(&p, "web").body.host_config.unwrap();
        assert_eq!(h.binds.unwrap(), ["/srv/override:/etc/pw:rw"]);
        let m = h.mounts.unwrap();
        let targets: Vec<&str> = m.iter().map(|m| m.target.as_deref().unwrap()).collect();
        assert_eq!(
            targets,
            [
                "/run/secrets/pw",
                "/run/secrets/other",
                "/app",
                "/etc/app.conf",
                "/etc/relative.conf"
            ]
        );
        let pw = dir.path().join("pw.txt").display().to_string();
        assert_eq!(m[0].source.as_deref(), Some(pw.as_str()));
        assert!(m.iter().all(|m| m.read_only == Some(true)));
        assert!(m.iter().all(|m| m.typ == Some(MountType::BIND)));
    }

    #[test]
    fn environment_and_content_sources_are_copied() {
        let p = project(
            "services:\n  web:\n    image: x\n    secrets:\n      - source: token\n        uid: '1000'\n        mode: 0400\n    configs:\n      - inline\n      - source: inline\n        target: /etc/inline.conf\nsecrets:\n  token:\n    environment: FROM_OS\nconfigs:\n  inline:\n    content: hello\n",
        );
        let plan = convert(&p, "web");
        assert!(plan.body.host_config.unwrap().mounts.is_none());
        let c = &plan.copies;
        assert_eq!(c.len(), 3);
        assert_eq!(c[0].target, "/run/secrets/token");
        assert_eq!(c[0].content, b"os-value");
        assert_eq!(c[0].mode, 0o400);
        assert_eq!(c[0].uid, Some(1000));
        assert!(c[0].copy_uid_gid());
        assert_eq!(c[1].target, "/inline");
        assert_eq!(c[1].content, b"hello");
        assert_eq!(c[1].mode, 0o444);
        assert_eq!(c[2].target, "/etc/inline.conf");
        let archive = c[2].archive().unwrap();
        let mut a = tar::Archive::new(archive.as_slice());
        let entry = a.entries().unwrap().next().unwrap().unwrap();
        assert_eq!(entry.path().unwrap().to_str(), Some("etc/inline.conf"));
        assert_eq!(entry.header().mode().unwrap(), 0o444);
    }

    #[test]
    fn unset_environment_and_read_only_services_fail() {
        let p = project(
            "services:\n  web:\n    image: x\n    secrets: [token]\n  ro:\n    image: x\n    read_only: true\n    configs: [inline]\nsecrets:\n  token:\n    environment: NOT_SET_ANYWHERE\nconfigs:\n  inline:\n    content: hello\n",
        );
        assert_err(&p, "web", &["NOT_SET_ANYWHERE", "\"web\""]);
        assert_err(&p, "ro", &["read-only service ro"]);
    }

    #[test]
    fn external_secrets_are_refused() {
        let p = project(
            "services:\n  web:\n    image: x\n    secrets: [ext]\nsecrets:\n  ext:\n    external: true\n",
        );
        assert_err(&p, "web", &["unsupported external secret"]);
    }
}
