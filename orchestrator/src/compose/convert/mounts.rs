//! `volumes`, file secrets and configs as `Binds` and `Mounts`, and `volumes_from` (compose's
//! `buildContainerVolumes`). Compose prefers the legacy `Binds` strings whenever a mount needs
//! none of the Mount API's options, because only `Binds` creates a missing host path
//! (moby/moby#43483); everything else goes through `Mounts`.

use std::path::Path;

use bollard_stubs::models::{
    Mount, MountBindOptions, MountBindOptionsPropagationEnum, MountImageOptions, MountPoint,
    MountTmpfsOptions, MountType, MountVolumeOptions,
};
use compose_spec::model::{Service, ServiceVolume, VolumeBind, VolumeVolume};
use indexmap::IndexMap;

use super::{ContainerSpec, invalid, non_empty_map, secrets, volume_name};
use crate::compose::error::Result;

/// The container's mounts, split the way compose sends them.
pub(super) struct Built {
    /// `HostConfig.Binds`.
    pub binds: Vec<String>,
    /// `HostConfig.Mounts`.
    pub mounts: Vec<Mount>,
}

/// Service volumes first; file secrets and configs only where no volume has their target.
pub(super) fn build(spec: &ContainerSpec) -> Result<Built> {
    let s = spec.service;
    let mut by_target: IndexMap<String, Mount> = IndexMap::new();
    for v in &s.volumes {
        let m = mount(spec, v)?;
        by_target.insert(v.target.clone(), m);
    }
    for m in secrets::mounts(spec)? {
        if let Some(t) = &m.target {
            if !by_target.contains_key(t) {
                by_target.insert(t.clone(), m);
            }
        }
    }
    let mut out = Built {
        binds: Vec::new(),
        mounts: Vec::new(),
    };
    for (target, m) in by_target {
        let declared = s.volumes.iter().find(|v| v.target == target);
        let bind = match (m.typ, declared) {
            (Some(MountType::BIND), Some(v)) if !bind_requires_mount_api(v.bind.as_ref()) => {
                m.source.as_deref().map(|src| bind_string(src, v))
            }
            (Some(MountType::VOLUME), Some(v)) if !volume_requires_mount_api(v.volume.as_ref()) => {
                m.source
                    .as_deref()
                    .filter(|src| is_project_volume(spec, src))
                    .map(|src| bind_string(src, v))
            }
            _ => None,
        };
        match bind {
            Some(b) => out.binds.push(b),
            None => out.mounts.push(m),
        }
    }
    Ok(out)
}

/// Whether `name` is the engine name of one of the project's volumes.
fn is_project_volume(spec: &ContainerSpec, name: &str) -> bool {
    spec.project
        .volumes
        .keys()
        .any(|k| volume_name(spec.project, k).as_deref() == Some(name))
}

/// Options only the Mount API can express.
fn bind_requires_mount_api(b: Option<&VolumeBind>) -> bool {
    b.is_some_and(|b| !b.create_host_path.0 || b.propagation.is_some() || b.recursive.is_some())
}

fn volume_requires_mount_api(v: Option<&VolumeVolume>) -> bool {
    v.is_some_and(|v| !v.labels.is_empty() || v.subpath.is_some() || v.nocopy)
}

/// `source:target:rw|ro[,selinux][,propagation][,nocopy]` (compose's `toBindString`).
fn bind_string(source: &str, v: &ServiceVolume) -> String {
    let mut opts = vec![if v.read_only { "ro" } else { "rw" }.to_string()];
    if let Some(b) = &v.bind {
        opts.extend(b.selinux.iter().cloned());
        opts.extend(b.propagation.iter().cloned());
    }
    if v.volume.as_ref().is_some_and(|v| v.nocopy) {
        opts.push("nocopy".into());
    }
    format!("{source}:{}:{}", v.target, opts.join(","))
}

/// A bind source made absolute against the project directory (the loader normally did).
pub(super) fn absolute(spec: &ContainerSpec, source: &str) -> String {
    if Path::new(source).is_absolute() {
        source.to_string()
    } else {
        spec.project.working_dir.join(source).display().to_string()
    }
}

/// One service volume as a Mount (compose's `buildMount`).
fn mount(spec: &ContainerSpec, v: &ServiceVolume) -> Result<Mount> {
    let s = spec.service;
    let field = || format!("volumes[{}]", v.target);
    let typ = match v.kind.as_str() {
        "bind" => MountType::BIND,
        "volume" => MountType::VOLUME,
        "tmpfs" => MountType::TMPFS,
        "image" => MountType::IMAGE,
        "npipe" => MountType::NPIPE,
        "cluster" => MountType::CLUSTER,
        other => {
            return Err(invalid(
                s,
                &field(),
                format!("unknown mount type {other:?}"),
            ));
        }
    };
    let source = match typ {
        MountType::BIND => match v.source.as_deref().filter(|s| !s.is_empty()) {
            Some(src) => Some(absolute(spec, src)),
            None => return Err(invalid(s, &field(), "a bind mount needs a source")),
        },
        MountType::VOLUME => v
            .source
            .as_deref()
            .filter(|s| !s.is_empty())
            .map(|src| volume_name(spec.project, src).unwrap_or_else(|| src.to_string())),
        _ => v.source.clone().filter(|s| !s.is_empty()),
    };
    let mut m = Mount {
        target: Some(v.target.clone()),
        source,
        typ: Some(typ),
        read_only: v.read_only.then_some(true),
        consistency: v.consistency.clone(),
        ..Default::default()
    };
    match typ {
        MountType::BIND => {
            if let Some(b) = &v.bind {
                m.bind_options = Some(bind_options(s, &field(), b)?);
            }
        }
        MountType::VOLUME => {
            m.volume_options = v.volume.as_ref().map(|o| MountVolumeOptions {
                no_copy: o.nocopy.then_some(true),
                labels: non_empty_map(&o.labels),
                subpath: o.subpath.clone(),
                ..Default::default()
            });
        }
        MountType::TMPFS => {
            m.tmpfs_options = v.tmpfs.as_ref().map(|t| MountTmpfsOptions {
                size_bytes: t.size.map(|b| b.0).filter(|&b| b != 0),
                mode: t.mode.map(i64::from).filter(|&m| m != 0),
                ..Default::default()
            });
        }
        MountType::IMAGE => {
            m.image_options = v.image.as_ref().map(|i| MountImageOptions {
                subpath: i.subpath.clone(),
            });
        }
        _ => {}
    }
    Ok(m)
}

fn bind_options(s: &Service, field: &str, b: &VolumeBind) -> Result<MountBindOptions> {
    use MountBindOptionsPropagationEnum as P;
    let propagation = match b.propagation.as_deref() {
        None | Some("") => None,
        Some("private") => Some(P::PRIVATE),
        Some("rprivate") => Some(P::RPRIVATE),
        Some("shared") => Some(P::SHARED),
        Some("rshared") => Some(P::RSHARED),
        Some("slave") => Some(P::SLAVE),
        Some("rslave") => Some(P::RSLAVE),
        Some(other) => {
            return Err(invalid(s, field, format!("invalid propagation {other:?}")));
        }
    };
    let mut o = MountBindOptions {
        propagation,
        create_mountpoint: b.create_host_path.0.then_some(true),
        ..Default::default()
    };
    match b.recursive.as_deref() {
        Some("disabled") => o.non_recursive = Some(true),
        Some("writable") => o.read_only_non_recursive = Some(true),
        Some("readonly") => o.read_only_force_recursive = Some(true),
        _ => {}
    }
    Ok(o)
}

/// On recreate, keeps the volumes of the container being replaced where the new one would
/// otherwise get fresh anonymous ones (compose's `buildContainerMountOptions` with `inherit`):
/// a mount at a path the image declares as a volume, unless the service mounts something
/// named there, and a mount at the target of one of the service's anonymous volumes. tmpfs
/// mounts are never inherited.
pub fn inherit_volumes(
    service: &Service,
    plan: &mut super::CreatePlan,
    old: &[MountPoint],
    image_volumes: &[String],
) {
    let host = plan.body.host_config.get_or_insert_with(Default::default);
    for m in old {
        let Some(dest) = m.destination.as_deref() else {
            continue;
        };
        let typ = match m.typ.as_deref() {
            Some("volume") => MountType::VOLUME,
            Some("bind") => MountType::BIND,
            Some("npipe") => MountType::NPIPE,
            Some("cluster") => MountType::CLUSTER,
            Some("image") => MountType::IMAGE,
            _ => continue,
        };
        let declared = service.volumes.iter().find(|v| v.target == dest);
        let anonymous = declared.is_some_and(|v| v.source.as_deref().unwrap_or("").is_empty());
        let from_image = image_volumes.iter().any(|v| v == dest);
        if !(anonymous || (from_image && declared.is_none())) {
            continue;
        }
        let source = if typ == MountType::VOLUME {
            m.name.clone()
        } else {
            m.source.clone()
        };
        let mounts = host.mounts.get_or_insert_with(Vec::new);
        mounts.retain(|x| x.target.as_deref() != Some(dest));
        mounts.push(Mount {
            typ: Some(typ),
            source,
            target: Some(dest.to_string()),
            read_only: (!m.rw.unwrap_or(true)).then_some(true),
            ..Default::default()
        });
    }
}

/// `volumes_from`: `service[:mode]` names a running container of that service, and
/// `container:name[:mode]` a container by name (compose's `resolveVolumeFrom`, keeping the
/// access mode the engine understands).
pub(super) fn volumes_from(spec: &ContainerSpec) -> Result<Vec<String>> {
    let s = spec.service;
    s.volumes_from
        .iter()
        .map(|entry| {
            let (source, mode) = match entry.rsplit_once(':') {
                Some((src, m)) if m == "ro" || m == "rw" => (src, Some(m)),
                _ => (entry.as_str(), None),
            };
            let resolved = match source.strip_prefix("container:") {
                Some(name) => name.to_string(),
                None => spec
                    .service_containers
                    .get(source)
                    .cloned()
                    .ok_or_else(|| {
                        invalid(
                            s,
                            "volumes_from",
                            format!("cannot share volume with service {source}: container missing"),
                        )
                    })?,
            };
            Ok(match mode {
                Some(m) => format!("{resolved}:{m}"),
                None => resolved,
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use bollard_stubs::models::{MountBindOptionsPropagationEnum, MountType};

    use super::super::testing::*;

    #[test]
    fn binds_for_simple_mounts_mounts_for_the_rest() {
        let p = project(
            "services:\n  web:\n    image: x\n    volumes:\n      - ./data:/data\n      - /etc/hosts:/h:ro,z\n      - db:/var/lib/db\n      - /anon\n      - type: bind\n        source: /srv/x\n        target: /x\n        bind:\n          propagation: rshared\n      - type: bind\n        source: /srv/y\n        target: /y\n        bind:\n          create_host_path: false\n      - type: volume\n        source: db\n        target: /sub\n        volume:\n          subpath: a/b\n          nocopy: true\n      - type: tmpfs\n        target: /t\n        tmpfs:\n          size: 1m\n          mode: 0o1777\n      - ext:/ext\nvolumes:\n  db: {}\n  ext:\n    external: true\n    name: shared-data\n",
        );
        let h = convert(&p, "web").body.host_config.unwrap();
        assert_eq!(
            h.binds.unwrap(),
            [
                "/srv/demo/data:/data:rw",
                "/etc/hosts:/h:ro,z",
                "demo_db:/var/lib/db:rw",
                "shared-data:/ext:rw",
            ]
        );
        let m = h.mounts.unwrap();
        let by = |t: &str| m.iter().find(|m| m.target.as_deref() == Some(t)).unwrap();
        let anon = by("/anon");
        assert_eq!(anon.typ, Some(MountType::VOLUME));
        assert_eq!(anon.source, None);
        let x = by("/x");
        assert_eq!(x.typ, Some(MountType::BIND));
        let xo = x.bind_options.as_ref().unwrap();
        assert_eq!(
            xo.propagation,
            Some(MountBindOptionsPropagationEnum::RSHARED)
        );
        assert_eq!(xo.create_mountpoint, Some(true));
        let y = by("/y");
        assert_eq!(y.bind_options.as_ref().unwrap().create_mountpoint, None);
        let sub = by("/sub");
        assert_eq!(sub.source.as_deref(), Some("demo_db"));
        let so = sub.volume_options.as_ref().unwrap();
        assert_eq!(so.subpath.as_deref(), Some("a/b"));
        assert_eq!(so.no_copy, Some(true));
        let t = by("/t");
        assert_eq!(t.typ, Some(MountType::TMPFS));
        let to = t.tmpfs_options.as_ref().unwrap();
        assert_eq!(to.size_bytes, Some(1 << 20));
        assert_eq!(to.mode, Some(0o1777));
        assert_eq!(m.len(), 5);
    }

    #[test]
    fn volumes_from_services_and_containers() {
        let p = project(
            "services:\n  web:\n    image: x\n    volumes_from: ['data:ro', 'container:other', 'container:third:rw']\n  data:\n    image: x\n",
        );
        let h = host_with(&p, "web", &[("data", "id1")]);
        assert_eq!(h.volumes_from.unwrap(), ["id1:ro", "other", "third:rw"]);
        assert_err(&p, "web", &["cannot share volume with service data"]);
    }

    #[test]
    fn recreate_inherits_anonymous_and_image_volumes() {
        let p = project(
            "services:\n  web:\n    image: x\n    volumes:\n      - /anon\n      - db:/var/lib/db\n      - /srv/conf:/conf\nvolumes:\n  db: {}\n",
        );
        let mut plan = convert(&p, "web");
        let old = |typ: &str, name: &str, dest: &str| bollard_stubs::models::MountPoint {
            typ: Some(typ.to_string()),
            name: Some(name.to_string()),
            source: Some(format!("/var/lib/berth/volumes/{name}/_data")),
            destination: Some(dest.to_string()),
            rw: Some(true),
            ..Default::default()
        };
        let previous = [
            old("volume", "aaa", "/anon"),
            old("volume", "demo_db", "/var/lib/db"),
            old("volume", "bbb", "/image-vol"),
            old("volume", "ccc", "/conf"),
            old("tmpfs", "", "/image-tmp"),
        ];
        let image_volumes = [
            "/image-vol".to_string(),
            "/conf".to_string(),
            "/image-tmp".to_string(),
        ];
        super::inherit_volumes(&p.services["web"], &mut plan, &previous, &image_volumes);
        let h = plan.body.host_config.unwrap();
        assert_eq!(
            h.binds.unwrap(),
            ["demo_db:/var/lib/db:rw", "/srv/conf:/conf:rw"]
        );
        let m = h.mounts.unwrap();
        let got: Vec<(&str, &str)> = m
            .iter()
            .map(|m| (m.target.as_deref().unwrap(), m.source.as_deref().unwrap()))
            .collect();
        assert_eq!(got, [("/anon", "aaa"), ("/image-vol", "bbb")]);
    }
}
