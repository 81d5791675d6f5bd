//! Volumes of containers: which volumes a container mounts (decided at create, from Binds,
//! Mounts of type `volume` and the config's Volumes), mounting them at start (with copy-up),
//! and the Mounts list `inspect` shows.

use super::{ANONYMOUS_LABEL, CreateOptions, VolumeError, VolumeService, copy, lock};
use crate::Result;
use crate::state::CONTAINER_VOLUMES;
use bollard_stubs::models::{ContainerConfig, HostConfig, MountPoint, MountType};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::Path;

/// One volume mounted into a container.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct ContainerMount {
    /// The volume.
    pub name: String,
    /// Where it appears in the container.
    pub destination: String,
    /// Writable.
    pub rw: bool,
    /// The mode Docker shows (`z`, `ro`, `` for anonymous volumes of the config).
    pub mode: String,
    /// Copy the image's content at `destination` into the volume when it is empty.
    pub copy: bool,
}

pub(super) fn decode_list(key: &str, b: &[u8]) -> Result<Vec<ContainerMount>> {
    serde_json::from_slice(b).map_err(|source| {
        crate::state::StateError::Corrupt {
            key: key.to_string(),
            source,
        }
        .into()
    })
}

/// A `Binds` entry.
#[derive(Debug, Clone, PartialEq)]
enum Bind {
    /// `/host:/dst[:mode]`: spec generation mounts it.
    Host,
    /// `name:/dst[:mode]` or `/dst` (anonymous: empty name).
    Volume {
        name: String,
        dst: String,
        mode: String,
    },
}

const BIND_MODES: &[&str] = &[
    "ro", "rw", "z", "Z", "nocopy", "shared", "rshared", "slave", "rslave", "private", "rprivate",
];

/// Parses a `Binds` entry as Docker's Linux parser does.
fn parse_bind(spec: &str) -> Result<Bind, VolumeError> {
    let invalid = || VolumeError::Invalid(format!("invalid volume specification: '{spec}'"));
    let parts: Vec<&str> = spec.split(':').collect();
    let (src, dst, mode) = match parts.as_slice() {
        [d] => ("", *d, ""),
        [s, d] => (*s, *d, ""),
        [s, d, m] => (*s, *d, *m),
        _ => return Err(invalid()),
    };
    if dst.is_empty() {
        return Err(invalid());
    }
    if !dst.starts_with('/') {
        return Err(VolumeError::Invalid(format!(
            "invalid volume specification: '{spec}': invalid mount config for type \"{}\": invalid mount path: '{dst}' mount path must be absolute",
            if src.starts_with('/') {
                "bind"
            } else {
                "volume"
            }
        )));
    }
    for m in mode.split(',').filter(|m| !m.is_empty()) {
        if !BIND_MODES.contains(&m) {
            return Err(VolumeError::Invalid(format!(
                "invalid volume specification: '{spec}': invalid mode: {mode}"
            )));
        }
    }
    if src.starts_with('/') {
        return Ok(Bind::Host);
    }
    if !src.is_empty() {
        super::validate_name(src)?;
    }
    Ok(Bind::Volume {
        name: src.to_string(),
        dst: dst.to_string(),
        mode: mode.to_string(),
    })
}

fn clean(p: &str) -> String {
    let t = p.trim_end_matches('/');
    if t.is_empty() { "/".into() } else { t.into() }
}

fn anonymous_labels() -> Option<BTreeMap<String, String>> {
    Some(BTreeMap::from([(
        ANONYMOUS_LABEL.to_string(),
        String::new(),
    )]))
}

impl VolumeService {
    /// At container create: checks Binds and Mounts, creates the named volumes missing and
    /// the anonymous ones, and records what the container mounts. On error nothing it
    /// created is left.
    pub fn attach_container(
        &self,
        id: &str,
        config: &ContainerConfig,
        host: &HostConfig,
    ) -> Result<Vec<ContainerMount>> {
        let mut created: Vec<String> = Vec::new();
        let res = self.attach_inner(id, config, host, &mut created);
        if res.is_err() {
            for n in created {
                let _ = self.remove(&n, true);
            }
        }
        res
    }

    fn attach_inner(
        &self,
        id: &str,
        config: &ContainerConfig,
        host: &HostConfig,
        created: &mut Vec<String>,
    ) -> Result<Vec<ContainerMount>> {
        // Destinations taken by something that is not a volume of the config.
        let mut dests: Vec<String> = Vec::new();
        let mut claim = |d: &str| -> Result<(), VolumeError> {
            let d = clean(d);
            if dests.contains(&d) {
                return Err(VolumeError::Invalid(format!("Duplicate mount point: {d}")));
            }
            dests.push(d);
            Ok(())
        };
        let mut out: Vec<ContainerMount> = Vec::new();
        let mut make = |name: &str,
                        labels: Option<BTreeMap<String, String>>,
                        driver: Option<String>,
                        opts: Option<BTreeMap<String, String>>|
         -> Result<String> {
            let anonymous = name.is_empty();
            let (rec, new) = self.create_record(CreateOptions {
                name: (!anonymous).then(|| name.to_string()),
                driver,
                driver_opts: opts,
                labels: if anonymous {
                    anonymous_labels()
                } else {
                    labels
                },
            })?;
            if new {
                created.push(rec.name.clone());
            }
            Ok(rec.name)
        };
        for b in host.binds.iter().flatten() {
            let parsed = parse_bind(b)?;
            match parsed {
                Bind::Host => {
                    let dst = b.split(':').nth(1).unwrap_or("");
                    claim(dst)?;
                }
                Bind::Volume { name, dst, mode } => {
                    claim(&dst)?;
                    let vol = make(&name, None, None, None)?;
                    let opts: Vec<&str> = mode.split(',').filter(|m| !m.is_empty()).collect();
                    // Docker shows `z` (its default relabel mode) for named volumes.
                    let shown = if name.is_empty() || opts.iter().any(|m| matches!(*m, "z" | "Z")) {
                        mode.clone()
                    } else if mode.is_empty() {
                        "z".into()
                    } else {
                        format!("{mode},z")
                    };
                    out.push(ContainerMount {
                        name: vol,
                        destination: clean(&dst),
                        rw: !opts.contains(&"ro"),
                        mode: shown,
                        copy: !opts.contains(&"nocopy"),
                    });
                }
            }
        }
        for m in host.mounts.iter().flatten() {
            let target = m.target.clone().unwrap_or_default();
            let typ = m.typ.unwrap_or(MountType::VOLUME);
            let bad = |msg: String| {
                VolumeError::Invalid(format!("invalid mount config for type \"{typ}\": {msg}"))
            };
            if target.is_empty() {
                return Err(bad("field Target must not be empty".into()).into());
            }
            if !target.starts_with('/') {
                return Err(bad(format!(
                    "invalid mount path: '{target}' mount path must be absolute"
                ))
                .into());
            }
            claim(&target)?;
            let src = m.source.clone().unwrap_or_default();
            match typ {
                MountType::BIND => {
                    if src.is_empty() {
                        return Err(bad("field Source must not be empty".into()).into());
                    }
                    if !Path::new(&src).exists() {
                        return Err(bad(format!("bind source path does not exist: {src}")).into());
                    }
                }
                MountType::TMPFS => {
                    if !src.is_empty() {
                        return Err(bad("field Source must not be specified".into()).into());
                    }
                }
                MountType::VOLUME => {
                    let vo = m.volume_options.clone().unwrap_or_default();
                    let dc = vo.driver_config.clone().unwrap_or_default();
                    let opts = dc
                        .options
                        .map(|o| o.into_iter().collect::<BTreeMap<_, _>>())
                        .filter(|o| !o.is_empty());
                    let labels = vo.labels.map(|l| l.into_iter().collect());
                    if !src.is_empty() && src.starts_with('/') {
                        return Err(bad(format!(
                            "invalid volume name: '{src}': volume names must not be paths"
                        ))
                        .into());
                    }
                    let vol = make(&src, labels, dc.name, opts)?;
                    out.push(ContainerMount {
                        name: vol,
                        destination: clean(&target),
                        rw: m.read_only != Some(true),
                        mode: "z".into(),
                        copy: vo.no_copy != Some(true),
                    });
                }
                other => {
                    return Err(VolumeError::Invalid(format!(
                        "mount type {other} is not supported"
                    ))
                    .into());
                }
            }
        }
        for d in host.tmpfs.iter().flatten().map(|(d, _)| d) {
            claim(d)?;
        }
        let taken: Vec<String> = out.iter().map(|m| m.destination.clone()).collect();
        for v in config.volumes.iter().flatten() {
            let d = clean(v);
            if !d.starts_with('/') {
                return Err(VolumeError::Invalid(format!(
                    "invalid volume specification: '{v}': invalid mount config for type \"volume\": invalid mount path: '{v}' mount path must be absolute"
                ))
                .into());
            }
            // A bind, tmpfs or named volume at the same place wins over the image's VOLUME.
            if taken.contains(&d) || dests.contains(&d) {
                continue;
            }
            let vol = make("", None, None, None)?;
            out.push(ContainerMount {
                name: vol,
                destination: d.clone(),
                rw: true,
                mode: String::new(),
                copy: true,
            });
            dests.push(d);
        }
        let json =
            serde_json::to_vec(&out).map_err(|source| crate::state::StateError::Corrupt {
                key: id.to_string(),
                source,
            })?;
        self.inner.state.write(|txn| {
            txn.open_table(CONTAINER_VOLUMES)?
                .insert(id, json.as_slice())?;
            Ok(())
        })?;
        Ok(out)
    }

    /// The volumes a container mounts.
    pub fn container_mounts(&self, id: &str) -> Result<Vec<ContainerMount>> {
        let raw = self.inner.state.read(|txn| {
            let t = txn.open_table(CONTAINER_VOLUMES)?;
            Ok(t.get(id)?.map(|v| v.value().to_vec()))
        })?;
        match raw {
            Some(b) => decode_list(id, &b),
            None => Ok(Vec::new()),
        }
    }

    /// At container start (blocking; the rootfs is mounted): mounts the container's volumes,
    /// copies the image's content into empty ones, and returns the host config with every
    /// volume turned into a bind of its `_data`, for spec generation. Release with
    /// [`VolumeService::release_container`].
    pub fn prepare_container(
        &self,
        id: &str,
        host: &HostConfig,
        rootfs: &Path,
    ) -> Result<HostConfig> {
        let mounts = self.container_mounts(id)?;
        self.release_container(id);
        let mut held = Vec::new();
        let res = (|| -> Result<Vec<String>> {
            let mut binds = Vec::new();
            for m in &mounts {
                let rec = self
                    .record(&m.name)?
                    .ok_or_else(|| VolumeError::NotFound(m.name.clone()))?;
                let data = self.acquire(&rec)?;
                held.push(m.name.clone());
                if m.copy && copy::is_empty(&data) {
                    let src = crate::container::rootpath::resolve(rootfs, &m.destination, true);
                    if src.is_dir() {
                        copy::copy_up(&src, &data)?;
                    }
                }
                let mode = if m.rw { "rw" } else { "ro" };
                binds.push(format!("{}:{}:{mode}", data.display(), m.destination));
            }
            Ok(binds)
        })();
        let binds = match res {
            Ok(b) => b,
            Err(e) => {
                for n in &held {
                    self.release(n);
                }
                return Err(e);
            }
        };
        lock(&self.inner.held).insert(id.to_string(), held);
        let mut h = host.clone();
        let mut all: Vec<String> = h
            .binds
            .iter()
            .flatten()
            .filter(|b| b.starts_with('/') && b.contains(':'))
            .cloned()
            .collect();
        all.extend(binds);
        h.binds = (!all.is_empty()).then_some(all);
        h.mounts = h.mounts.map(|ms| {
            ms.into_iter()
                .filter(|m| m.typ.is_some_and(|t| t != MountType::VOLUME))
                .collect()
        });
        Ok(h)
    }

    /// At container exit: drops the container's hold on its volumes (idempotent).
    pub fn release_container(&self, id: &str) {
        let held = lock(&self.inner.held).remove(id);
        for n in held.iter().flatten() {
            self.release(n);
        }
    }

    /// At container removal: forgets its mounts; `remove_anonymous` (`rm -v`, AutoRemove)
    /// also removes its anonymous volumes that no other container uses.
    pub fn detach_container(&self, id: &str, remove_anonymous: bool) -> Result<()> {
        self.release_container(id);
        let mounts = self.container_mounts(id)?;
        if !mounts.is_empty() {
            self.inner.state.write(|txn| {
                txn.open_table(CONTAINER_VOLUMES)?.remove(id)?;
                Ok(())
            })?;
        }
        if remove_anonymous {
            for m in mounts {
                let anonymous = self.record(&m.name)?.is_some_and(|r| r.is_anonymous());
                if anonymous && let Err(e) = self.remove(&m.name, true) {
                    tracing::warn!(volume = %m.name, error = %e, "keeping anonymous volume");
                }
            }
        }
        Ok(())
    }

    /// The Mounts list of `inspect` and `ps`: binds and tmpfs mounts of the host config and
    /// the container's volumes.
    pub fn mount_points(&self, id: &str, h: &HostConfig) -> Vec<MountPoint> {
        let mut out = Vec::new();
        for b in h.binds.iter().flatten().filter(|b| b.starts_with('/')) {
            let parts: Vec<&str> = b.split(':').collect();
            if parts.len() >= 2 {
                let mode = parts.get(2).copied().unwrap_or("");
                let prop = mode
                    .split(',')
                    .find(|o| o.contains("shared") || o.contains("slave") || o.contains("private"))
                    .unwrap_or("rprivate");
                out.push(MountPoint {
                    typ: Some("bind".into()),
                    source: Some(parts[0].to_string()),
                    destination: Some(parts[1].to_string()),
                    mode: Some(mode.to_string()),
                    rw: Some(!mode.split(',').any(|o| o == "ro")),
                    propagation: Some(prop.into()),
                    ..Default::default()
                });
            }
        }
        for m in h.mounts.iter().flatten() {
            let typ = m.typ.unwrap_or(MountType::VOLUME);
            if typ == MountType::VOLUME {
                continue;
            }
            let bind = typ == MountType::BIND;
            out.push(MountPoint {
                typ: Some(typ.to_string()),
                source: Some(m.source.clone().unwrap_or_default()),
                destination: m.target.clone(),
                mode: Some(String::new()),
                rw: Some(m.read_only != Some(true)),
                propagation: Some(if bind {
                    m.bind_options
                        .as_ref()
                        .and_then(|b| b.propagation)
                        .map(|p| p.to_string())
                        .filter(|p| !p.is_empty())
                        .unwrap_or_else(|| "rprivate".into())
                } else {
                    String::new()
                }),
                ..Default::default()
            });
        }
        for m in self.container_mounts(id).unwrap_or_default() {
            out.push(MountPoint {
                typ: Some("volume".into()),
                name: Some(m.name.clone()),
                source: Some(self.data_path(&m.name).to_string_lossy().into_owned()),
                destination: Some(m.destination),
                driver: Some(super::LOCAL_DRIVER.into()),
                mode: Some(m.mode),
                rw: Some(m.rw),
                propagation: Some(String::new()),
            });
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn binds() {
        assert_eq!(parse_bind("/a:/b:ro").unwrap(), Bind::Host);
        assert_eq!(
            parse_bind("data:/d:ro,nocopy").unwrap(),
            Bind::Volume {
                name: "data".into(),
                dst: "/d".into(),
                mode: "ro,nocopy".into()
            }
        );
        assert_eq!(
            parse_bind("/d").unwrap(),
            Bind::Volume {
                name: String::new(),
                dst: "/d".into(),
                mode: String::new()
            }
        );
        assert!(parse_bind("a:b").is_err());
        assert!(parse_bind("a:/b:bogus").is_err());
        assert!(parse_bind("a:/b:ro:x").is_err());
        assert!(parse_bind("a$b:/b").is_err());
    }
}
