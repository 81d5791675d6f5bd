//! Volumes with real containers: named, anonymous, option-mounted (tmpfs) volumes, copy-up,
//! binds and tmpfs mounts, in-use refusal and prune. Needs root and `berth-shim`.

use berth_engine::container::{ContainerOptions, ContainerService, WaitCondition};
use berth_engine::image::ImageService;
use berth_engine::image::registry::RegistryOptions;
use berth_engine::state::StateStore;
use berth_engine::volume::{ANONYMOUS_LABEL, CreateOptions, VolumeError, VolumeFilters};
use bollard_stubs::models::{
    ContainerCreateBody, HostConfig, Mount, MountTmpfsOptions, MountType, MountVolumeOptions,
};
use std::os::unix::fs::MetadataExt;
use std::path::PathBuf;
use std::time::Duration;

fn can_run() -> bool {
    // SAFETY: geteuid has no preconditions.
    unsafe { libc::geteuid() == 0 }
}

fn shim_binary() -> PathBuf {
    let exe = std::env::current_exe().unwrap();
    let dir = exe.parent().unwrap().parent().unwrap();
    let p = dir.join("berth-shim");
    if !p.exists() {
        let st = std::process::Command::new(env!("CARGO"))
            .args([
                "build",
                "--release",
                "-p",
                "berth-shim",
                "--bin",
                "berth-shim",
            ])
            .status()
            .unwrap();
        assert!(st.success());
    }
    p
}

fn hdr(mode: u32, uid: u64) -> tar::Header {
    let mut h = tar::Header::new_gnu();
    h.set_uid(uid);
    h.set_gid(uid);
    h.set_mtime(1_000_000);
    h.set_mode(mode);
    h.set_size(0);
    h
}

/// busybox with `VOLUME /data`, where the image has `/data/seed` (uid 1000, 0640), a
/// symlink and a subdirectory, `/data` itself owned by 1000 with mode 0750.
fn image_archive() -> Vec<u8> {
    let list = std::process::Command::new("/bin/busybox")
        .arg("--list")
        .output()
        .unwrap();
    let mut l = tar::Builder::new(Vec::new());
    for d in ["bin", "etc", "tmp", "proc", "sys", "dev"] {
        let mut h = hdr(0o755, 0);
        h.set_entry_type(tar::EntryType::Directory);
        l.append_data(&mut h, d, &[][..]).unwrap();
    }
    for (d, mode) in [("data", 0o750), ("data/sub", 0o700)] {
        let mut h = hdr(mode, 1000);
        h.set_entry_type(tar::EntryType::Directory);
        l.append_data(&mut h, d, &[][..]).unwrap();
    }
    for (p, c, mode, uid) in [
        ("data/seed", "from the image\n", 0o640, 1000),
        ("data/sub/deep", "deep\n", 0o600, 1000),
        ("etc/passwd", "root:x:0:0:root:/root:/bin/sh\n", 0o644, 0),
        ("etc/group", "root:x:0:\n", 0o644, 0),
    ] {
        let mut h = hdr(mode, uid);
        h.set_size(c.len() as u64);
        l.append_data(&mut h, p, c.as_bytes()).unwrap();
    }
    let mut h = hdr(0o777, 0);
    h.set_entry_type(tar::EntryType::Symlink);
    l.append_link(&mut h, "data/link", "seed").unwrap();
    let bb = std::fs::read("/bin/busybox").unwrap();
    let mut h = hdr(0o755, 0);
    h.set_size(bb.len() as u64);
    l.append_data(&mut h, "bin/busybox", &bb[..]).unwrap();
    for a in String::from_utf8_lossy(&list.stdout).lines() {
        if a == "busybox" || a.is_empty() {
            continue;
        }
        let mut h = hdr(0o777, 0);
        h.set_entry_type(tar::EntryType::Symlink);
        l.append_link(&mut h, format!("bin/{a}"), "busybox")
            .unwrap();
    }
    let layer = l.into_inner().unwrap();
    use sha2::Digest;
    let hex: String = sha2::Sha256::digest(&layer)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    let cfg = serde_json::to_vec(&serde_json::json!({
        "architecture": "amd64", "os": "linux",
        "config": {"Cmd": ["sh"], "Volumes": {"/data": {}},
            "Env": ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"]},
        "rootfs": {"type": "layers", "diff_ids": [format!("sha256:{hex}")]},
    }))
    .unwrap();
    let manifest = serde_json::to_vec(&serde_json::json!([
        {"Config": "config.json", "RepoTags": ["voltest:1"], "Layers": ["layer.tar"]}
    ]))
    .unwrap();
    let mut out = tar::Builder::new(Vec::new());
    for (name, data) in [
        ("layer.tar", &layer),
        ("config.json", &cfg),
        ("manifest.json", &manifest),
    ] {
        let mut h = hdr(0o644, 0);
        h.set_size(data.len() as u64);
        out.append_data(&mut h, name, &data[..]).unwrap();
    }
    out.into_inner().unwrap()
}

/// One engine under temp dirs; on drop kills its processes and removes every mount below
/// its root (rootfs and volume mounts) and its cgroups.
struct Env {
    svc: ContainerService,
    root: tempfile::TempDir,
    exec_root: tempfile::TempDir,
}

impl Env {
    async fn new() -> Env {
        let shim = shim_binary();
        let root = tempfile::Builder::new().prefix("bvt").tempdir().unwrap();
        let exec_root = tempfile::Builder::new()
            .prefix("bvx")
            .tempdir_in("/tmp")
            .unwrap();
        let state = StateStore::open(&root.path().join("state.redb")).unwrap();
        let images =
            ImageService::open(root.path(), state.clone(), RegistryOptions::default()).unwrap();
        let im = images.clone();
        tokio::task::spawn_blocking(move || im.load(&image_archive()[..]).unwrap())
            .await
            .unwrap();
        let opts = ContainerOptions {
            root: root.path().to_path_buf(),
            exec_root: exec_root.path().to_path_buf(),
            shim: Some(shim),
        };
        let svc = ContainerService::open(opts, state, images).await.unwrap();
        Env {
            svc,
            root,
            exec_root,
        }
    }

    async fn create(&self, host: HostConfig, cmd: &[&str]) -> berth_engine::Result<String> {
        let body = ContainerCreateBody {
            image: Some("voltest:1".into()),
            cmd: Some(cmd.iter().map(|s| s.to_string()).collect()),
            host_config: Some(host),
            ..Default::default()
        };
        self.svc.create(None, body).await.map(|(id, _)| id)
    }

    /// Creates, starts and waits for a container; returns its ID and exit code.
    async fn run(&self, host: HostConfig, cmd: &[&str]) -> (String, i64) {
        let id = self.create(host, cmd).await.unwrap();
        self.svc.start(&id).await.unwrap();
        let code = tokio::time::timeout(
            Duration::from_secs(30),
            self.svc.wait(&id, WaitCondition::NotRunning),
        )
        .await
        .expect("wait timed out")
        .unwrap()
        .status_code;
        (id, code)
    }

    fn binds(b: &[&str]) -> HostConfig {
        HostConfig {
            binds: Some(b.iter().map(|s| s.to_string()).collect()),
            ..Default::default()
        }
    }

    fn names(&self) -> Vec<String> {
        let v = self.svc.volumes().list(&VolumeFilters::default(), false);
        v.unwrap().into_iter().map(|v| v.name).collect()
    }
}

impl Drop for Env {
    fn drop(&mut self) {
        let roots = [
            self.root.path().to_string_lossy().to_string(),
            self.exec_root.path().to_string_lossy().to_string(),
        ];
        if let Ok(rd) = std::fs::read_dir("/proc") {
            for e in rd.flatten() {
                let cmd = std::fs::read(e.path().join("cmdline")).unwrap_or_default();
                let cmd = String::from_utf8_lossy(&cmd);
                if roots.iter().any(|r| cmd.contains(r.as_str()))
                    && let Ok(pid) = e.file_name().to_string_lossy().parse::<i32>()
                {
                    // SAFETY: signalling a process this test started.
                    unsafe { libc::kill(pid, libc::SIGKILL) };
                }
            }
        }
        let ids: Vec<String> = std::fs::read_dir(self.root.path().join("containers"))
            .map(|rd| {
                rd.flatten()
                    .map(|e| e.file_name().to_string_lossy().to_string())
                    .collect()
            })
            .unwrap_or_default();
        for id in &ids {
            let p = format!("/sys/fs/cgroup/pids/berth/{id}/cgroup.procs");
            for pid in std::fs::read_to_string(&p).unwrap_or_default().lines() {
                if let Ok(pid) = pid.trim().parse::<i32>() {
                    // SAFETY: the container's own processes.
                    unsafe { libc::kill(pid, libc::SIGKILL) };
                }
            }
        }
        std::thread::sleep(Duration::from_millis(100));
        let mut mounts: Vec<String> = std::fs::read_to_string("/proc/self/mountinfo")
            .unwrap_or_default()
            .lines()
            .filter_map(|l| l.split(' ').nth(4).map(str::to_string))
            .filter(|m| m.starts_with(roots[0].as_str()))
            .collect();
        mounts.sort_by_key(|m| std::cmp::Reverse(m.len()));
        for m in mounts {
            let _ = rustix::mount::unmount(m.as_str(), rustix::mount::UnmountFlags::DETACH);
        }
        for id in &ids {
            if let Ok(rd) = std::fs::read_dir("/sys/fs/cgroup") {
                for c in rd.flatten() {
                    let _ = std::fs::remove_dir(c.path().join("berth").join(id));
                }
            }
        }
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn named_volume_survives_container_removal() {
    if !can_run() {
        return;
    }
    let env = Env::new().await;
    let (id, code) = env
        .run(
            Env::binds(&["keep:/store"]),
            &["sh", "-c", "echo kept > /store/f"],
        )
        .await;
    assert_eq!(code, 0);
    let v = env.svc.volumes().inspect("keep").unwrap();
    assert_eq!(v.driver, "local");
    assert_eq!(v.scope, "local");
    assert!(v.mountpoint.ends_with("/volumes/keep/_data"));
    let mounts = env.svc.inspect(&id).unwrap().mounts.unwrap();
    let m = mounts
        .iter()
        .find(|m| m.destination.as_deref() == Some("/store"))
        .unwrap();
    assert_eq!(m.typ.as_deref(), Some("volume"));
    assert_eq!(m.name.as_deref(), Some("keep"));
    assert_eq!(m.mode.as_deref(), Some("z"));
    assert_eq!(m.rw, Some(true));
    env.svc.remove(&id, false, true).await.unwrap();
    assert!(
        env.names().contains(&"keep".to_string()),
        "named volumes stay with rm -v"
    );
    let (id2, code) = env
        .run(
            Env::binds(&["keep:/store:ro"]),
            &[
                "sh",
                "-c",
                "test \"$(cat /store/f)\" = kept && ! touch /store/g",
            ],
        )
        .await;
    assert_eq!(code, 0, "data survives and :ro is read-only");
    env.svc.remove(&id2, false, false).await.unwrap();
    env.svc.volumes().remove("keep", false).unwrap();
    assert!(!PathBuf::from(&v.mountpoint).exists());
}

#[tokio::test(flavor = "multi_thread")]
async fn copy_up_fills_an_empty_volume_once_and_not_with_nocopy() {
    if !can_run() {
        return;
    }
    let env = Env::new().await;
    let (a, code) = env.run(Env::binds(&["seeded:/data"]), &["true"]).await;
    assert_eq!(code, 0);
    let data = PathBuf::from(env.svc.volumes().inspect("seeded").unwrap().mountpoint);
    let seed = data.join("seed");
    assert_eq!(std::fs::read_to_string(&seed).unwrap(), "from the image\n");
    let md = std::fs::metadata(&seed).unwrap();
    assert_eq!((md.uid(), md.mode() & 0o7777), (1000, 0o640));
    let root = std::fs::metadata(&data).unwrap();
    assert_eq!((root.uid(), root.mode() & 0o7777), (1000, 0o750));
    assert_eq!(
        std::fs::read_link(data.join("link")).unwrap(),
        PathBuf::from("seed")
    );
    assert_eq!(
        std::fs::read_to_string(data.join("sub/deep")).unwrap(),
        "deep\n"
    );
    std::fs::write(&seed, "changed\n").unwrap();
    std::fs::remove_file(data.join("link")).unwrap();
    let (b, code) = env
        .run(
            Env::binds(&["seeded:/data"]),
            &[
                "sh",
                "-c",
                "test \"$(cat /data/seed)\" = changed && ! test -e /data/link",
            ],
        )
        .await;
    assert_eq!(code, 0, "a volume with content is not copied into again");
    let mount = Mount {
        target: Some("/data".into()),
        source: Some("bare".into()),
        typ: Some(MountType::VOLUME),
        volume_options: Some(MountVolumeOptions {
            no_copy: Some(true),
            labels: Some([("k".to_string(), "v".to_string())].into()),
            ..Default::default()
        }),
        ..Default::default()
    };
    let host = HostConfig {
        mounts: Some(vec![mount]),
        ..Default::default()
    };
    let (c, code) = env
        .run(host, &["sh", "-c", "test -z \"$(ls -A /data)\""])
        .await;
    assert_eq!(code, 0, "nocopy leaves the volume empty");
    let bare = env.svc.volumes().inspect("bare").unwrap();
    assert_eq!(bare.labels.unwrap().get("k").map(String::as_str), Some("v"));
    let (d, code) = env
        .run(
            Env::binds(&["bare2:/data:nocopy"]),
            &["sh", "-c", "test -z \"$(ls -A /data)\""],
        )
        .await;
    assert_eq!(code, 0, "-v name:/dst:nocopy too");
    for id in [a, b, c, d] {
        env.svc.remove(&id, false, true).await.unwrap();
    }
    for n in ["seeded", "bare", "bare2"] {
        env.svc.volumes().remove(n, false).unwrap();
    }
    assert!(env.names().is_empty(), "{:?}", env.names());
}

#[tokio::test(flavor = "multi_thread")]
async fn anonymous_volumes_go_with_rm_v_and_auto_remove() {
    if !can_run() {
        return;
    }
    let env = Env::new().await;
    // The image's VOLUME /data and `-v /scratch` give two anonymous volumes.
    let (id, code) = env
        .run(
            Env::binds(&["/scratch"]),
            &["sh", "-c", "test -e /data/seed && touch /scratch/x"],
        )
        .await;
    assert_eq!(code, 0, "anonymous volumes are copied up too");
    let anon = env.names();
    assert_eq!(anon.len(), 2);
    for n in &anon {
        assert_eq!(n.len(), 64);
        let v = env.svc.volumes().inspect(n).unwrap();
        assert!(v.labels.unwrap().contains_key(ANONYMOUS_LABEL));
    }
    let mounts = env.svc.inspect(&id).unwrap().mounts.unwrap();
    assert_eq!(
        mounts
            .iter()
            .filter(|m| m.typ.as_deref() == Some("volume"))
            .count(),
        2
    );
    let img_vol = mounts
        .iter()
        .find(|m| m.destination.as_deref() == Some("/data"))
        .unwrap();
    assert_eq!(img_vol.mode.as_deref(), Some(""));
    // A volume in use (by a stopped container) refuses removal.
    let err = env.svc.volumes().remove(&anon[0], false).unwrap_err();
    assert!(
        matches!(&err, berth_engine::Error::Volume(VolumeError::InUse { .. })),
        "{err}"
    );
    assert!(err.to_string().contains("volume is in use - ["), "{err}");
    assert!(err.to_string().contains(&id), "{err}");
    env.svc.remove(&id, false, true).await.unwrap();
    assert!(env.names().is_empty(), "rm -v removes anonymous volumes");

    // Without -v they stay.
    let (id, _) = env.run(HostConfig::default(), &["true"]).await;
    env.svc.remove(&id, false, false).await.unwrap();
    assert_eq!(env.names().len(), 1);
    let (gone, _) = env.svc.volumes().prune(&VolumeFilters::default()).unwrap();
    assert_eq!(gone.len(), 1);

    // --rm: AutoRemove takes its anonymous volume with it.
    let host = HostConfig {
        auto_remove: Some(true),
        ..Default::default()
    };
    let id = env.create(host, &["true"]).await.unwrap();
    env.svc.start(&id).await.unwrap();
    let _ = tokio::time::timeout(
        Duration::from_secs(30),
        env.svc.wait(&id, WaitCondition::Removed),
    )
    .await;
    for _ in 0..50 {
        if env.names().is_empty() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(env.names().is_empty(), "{:?}", env.names());
}

#[tokio::test(flavor = "multi_thread")]
async fn prune_takes_anonymous_unless_all_and_honours_labels() {
    if !can_run() {
        return;
    }
    let env = Env::new().await;
    let vols = env.svc.volumes();
    let mk = |name: &str, labels: &[(&str, &str)]| {
        vols.create(CreateOptions {
            name: Some(name.into()),
            labels: Some(
                labels
                    .iter()
                    .map(|(k, v)| (k.to_string(), v.to_string()))
                    .collect(),
            ),
            ..Default::default()
        })
        .unwrap()
    };
    mk("named1", &[("keep", "yes")]);
    mk("named2", &[]);
    let used = mk("used1", &[]);
    let again = mk("used1", &[("ignored", "x")]);
    assert_eq!(used, again, "create of an existing name returns it");
    let id = env
        .create(Env::binds(&["used1:/u"]), &["true"])
        .await
        .unwrap();
    let anon: Vec<String> = env.names().into_iter().filter(|n| n.len() == 64).collect();
    assert_eq!(anon.len(), 1, "the image's VOLUME");
    let dangling = VolumeFilters {
        dangling: Some(true),
        ..Default::default()
    };
    let d: Vec<String> = vols
        .list(&dangling, false)
        .unwrap()
        .into_iter()
        .map(|v| v.name)
        .collect();
    assert_eq!(d, ["named1", "named2"]);
    let by_label = VolumeFilters {
        label: vec!["keep=yes".into()],
        ..Default::default()
    };
    assert_eq!(vols.list(&by_label, false).unwrap().len(), 1);
    let by_name = VolumeFilters {
        name: vec!["named".into()],
        ..Default::default()
    };
    assert_eq!(vols.list(&by_name, false).unwrap().len(), 2);
    // Default prune: anonymous only, and the only anonymous one is in use.
    let (gone, _) = vols.prune(&VolumeFilters::default()).unwrap();
    assert!(gone.is_empty(), "{gone:?}");
    let all_but_keep = VolumeFilters {
        all: true,
        label_not: vec!["keep".into()],
        ..Default::default()
    };
    let (gone, _) = vols.prune(&all_but_keep).unwrap();
    assert_eq!(gone, ["named2"]);
    env.svc.remove(&id, false, false).await.unwrap();
    std::fs::write(vols.data_path("used1").join("f"), vec![0u8; 4096]).unwrap();
    let all = VolumeFilters {
        all: true,
        ..Default::default()
    };
    let (mut gone, space) = vols.prune(&all).unwrap();
    gone.sort();
    assert_eq!(gone.len(), 3, "{gone:?}");
    assert!(space >= 4096);
    assert!(env.names().is_empty());
}

#[tokio::test(flavor = "multi_thread")]
async fn binds_tmpfs_and_option_volumes() {
    if !can_run() {
        return;
    }
    let env = Env::new().await;
    let host_dir = tempfile::tempdir().unwrap();
    std::fs::write(host_dir.path().join("h"), "host\n").unwrap();
    let missing = host_dir.path().join("made/by/v");
    let tmpfs = Mount {
        target: Some("/t".into()),
        typ: Some(MountType::TMPFS),
        tmpfs_options: Some(MountTmpfsOptions {
            size_bytes: Some(1 << 20),
            mode: Some(0o1770),
            ..Default::default()
        }),
        ..Default::default()
    };
    let ro = Mount {
        target: Some("/ro".into()),
        source: Some(host_dir.path().to_string_lossy().into()),
        typ: Some(MountType::BIND),
        read_only: Some(true),
        ..Default::default()
    };
    let host = HostConfig {
        binds: Some(vec![
            format!("{}:/rw", host_dir.path().display()),
            format!("{}:/made", missing.display()),
        ]),
        mounts: Some(vec![tmpfs, ro]),
        tmpfs: Some([("/t2".to_string(), "size=2m,mode=700".to_string())].into()),
        ..Default::default()
    };
    let script = "set -e; cat /ro/h; ! touch /ro/x; echo w > /rw/w; \
        test \"$(stat -c %a /t)\" = 1770; grep ' /t tmpfs' /proc/mounts | grep -q size=1024k; \
        test \"$(stat -c %a /t2)\" = 700; grep ' /t2 tmpfs' /proc/mounts | grep -q size=2048k";
    let (id, code) = env.run(host, &["sh", "-c", script]).await;
    assert_eq!(code, 0);
    assert_eq!(
        std::fs::read_to_string(host_dir.path().join("w")).unwrap(),
        "w\n"
    );
    assert!(missing.is_dir(), "-v creates a missing host path");
    let mounts = env.svc.inspect(&id).unwrap().mounts.unwrap();
    let ro = mounts
        .iter()
        .find(|m| m.destination.as_deref() == Some("/ro"))
        .unwrap();
    assert_eq!((ro.typ.as_deref(), ro.rw), (Some("bind"), Some(false)));
    assert_eq!(ro.propagation.as_deref(), Some("rprivate"));
    env.svc.remove(&id, false, true).await.unwrap();

    // A local volume with tmpfs options is mounted while used, unmounted after.
    let vols = env.svc.volumes();
    let v = vols
        .create(CreateOptions {
            name: Some("tmpvol".into()),
            driver_opts: Some(
                [("type", "tmpfs"), ("device", "tmpfs"), ("o", "size=3m")]
                    .iter()
                    .map(|(k, v)| (k.to_string(), v.to_string()))
                    .collect(),
            ),
            ..Default::default()
        })
        .unwrap();
    assert_eq!(v.options.as_ref().unwrap().get("type").unwrap(), "tmpfs");
    let (id, code) = env
        .run(
            Env::binds(&["tmpvol:/tv"]),
            &[
                "sh",
                "-c",
                "grep ' /tv tmpfs' /proc/mounts | grep -q size=3072k",
            ],
        )
        .await;
    assert_eq!(code, 0);
    let mounted = || {
        std::fs::read_to_string("/proc/self/mountinfo")
            .unwrap()
            .contains(&format!(" {} ", v.mountpoint))
    };
    for _ in 0..50 {
        if !mounted() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(!mounted(), "unmounted with its last user");
    env.svc.remove(&id, false, false).await.unwrap();
    vols.remove("tmpvol", false).unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn bad_input_leaves_nothing_behind() {
    if !can_run() {
        return;
    }
    let env = Env::new().await;
    let vols = env.svc.volumes();
    let err = vols
        .create(CreateOptions {
            name: Some("x1".into()),
            driver: Some("nfsplug".into()),
            ..Default::default()
        })
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        "create x1: error looking up volume plugin nfsplug: plugin \"nfsplug\" not found"
    );
    for bad in ["a", "b/c", "-x"] {
        let e = vols
            .create(CreateOptions {
                name: Some(bad.into()),
                ..Default::default()
            })
            .unwrap_err();
        assert!(
            matches!(e, berth_engine::Error::Volume(VolumeError::Invalid(_))),
            "{e}"
        );
    }
    let e = vols
        .create(CreateOptions {
            name: Some("badopt".into()),
            driver_opts: Some([("bogus".to_string(), "1".to_string())].into()),
            ..Default::default()
        })
        .unwrap_err();
    assert_eq!(e.to_string(), "create badopt: invalid option: \"bogus\"");
    let e = vols.inspect("nope").unwrap_err();
    assert_eq!(e.to_string(), "get nope: no such volume");
    assert!(
        vols.remove("nope", true).is_ok(),
        "-f ignores a missing volume"
    );

    // A bad spec after a good one: the container and the volumes it made are gone.
    let e = env
        .create(Env::binds(&["fresh:/f", "x:y:z:w"]), &["true"])
        .await
        .unwrap_err();
    assert!(
        e.to_string()
            .contains("invalid volume specification: 'x:y:z:w'"),
        "{e}"
    );
    let e = env
        .create(Env::binds(&["fresh:/f", "other:/f"]), &["true"])
        .await
        .unwrap_err();
    assert!(e.to_string().contains("Duplicate mount point: /f"), "{e}");
    let missing = Mount {
        target: Some("/m".into()),
        source: Some("/nonexistent/berth-src".into()),
        typ: Some(MountType::BIND),
        ..Default::default()
    };
    let host = HostConfig {
        binds: Some(vec!["fresh:/f".into()]),
        mounts: Some(vec![missing]),
        ..Default::default()
    };
    let e = env.create(host, &["true"]).await.unwrap_err();
    assert_eq!(
        e.to_string(),
        "invalid mount config for type \"bind\": bind source path does not exist: /nonexistent/berth-src"
    );
    let bad_driver = Mount {
        target: Some("/m".into()),
        source: Some("viaplug".into()),
        typ: Some(MountType::VOLUME),
        volume_options: Some(MountVolumeOptions {
            driver_config: Some(bollard_stubs::models::MountVolumeOptionsDriverConfig {
                name: Some("nfsplug".into()),
                options: None,
            }),
            ..Default::default()
        }),
        ..Default::default()
    };
    let host = HostConfig {
        mounts: Some(vec![bad_driver]),
        ..Default::default()
    };
    assert!(env.create(host, &["true"]).await.is_err());
    assert!(env.svc.list().unwrap().is_empty());
    assert!(env.names().is_empty(), "{:?}", env.names());
}
