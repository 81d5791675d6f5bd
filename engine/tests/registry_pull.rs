//! Pulls from a real registry (Debian's docker-registry) in every auth mode and format.

mod common;

use berth_engine::image::{Platform, Progress, ProgressSink};
use common::*;
use std::sync::{Arc, Mutex};

fn pull_busybox_in(auth: Auth) {
    let reg = Registry::start(auth);
    let source = reg.seed_busybox();
    let rt = tokio::runtime::Runtime::new().unwrap();
    for name in ["busybox", "busybox-v2s2"] {
        let eng = Engine::new(Some(&reg));
        let reference = format!("{}/{name}:latest", reg.host());
        let events = Arc::new(Mutex::new(Vec::new()));
        let ev = events.clone();
        let sink = ProgressSink::new(move |p| ev.lock().unwrap().push(p));
        let img = rt
            .block_on(eng.images.pull(&reference, None, sink))
            .unwrap_or_else(|e| panic!("pull {reference} ({auth:?}): {e}"));
        assert_eq!(img.layers.len(), 1);
        let expected_mt = if name == "busybox" {
            "application/vnd.oci.image.manifest.v1+json"
        } else {
            "application/vnd.docker.distribution.manifest.v2+json"
        };
        assert_eq!(img.manifest_media_type, expected_mt);
        let snap = eng.images.snapshots().path(&img.layers[0].chain_id);
        let want = tree(&source);
        assert!(
            want.iter()
                .any(|e| e.0 == "bin/busybox" && e.4.len() > 100_000)
        );
        assert_eq!(tree(&snap), want, "{name}: unpacked rootfs differs");
        let found = eng.images.resolve(&reference).unwrap();
        assert_eq!(found.id, img.id);
        assert_eq!(eng.images.resolve(&img.id.hex()[..12]).unwrap().id, img.id);
        assert!(
            events
                .lock()
                .unwrap()
                .iter()
                .any(|e| matches!(e, Progress::Done { .. }))
        );
        // A second pull finds every layer present.
        let again = rt
            .block_on(eng.images.pull(&reference, None, ProgressSink::none()))
            .unwrap();
        assert_eq!(again.id, img.id);
    }
}

#[test]
fn pull_without_auth() {
    pull_busybox_in(Auth::None);
}

#[test]
fn pull_with_htpasswd() {
    pull_busybox_in(Auth::Htpasswd);
}

#[test]
fn pull_with_bearer_token() {
    pull_busybox_in(Auth::Token);
}

#[test]
fn whiteouts_across_layers_and_overlay_mount() {
    let reg = Registry::start(Auth::None);
    let mut lb = LayoutBuilder::new(&reg.dir.path().join("layout"));
    let l1 = TarBuilder::new()
        .dir("etc")
        .file("etc/a", b"a", 0o644)
        .file("etc/b", b"b", 0o600)
        .dir("opq")
        .file("opq/x", b"x", 0o644)
        .file("bin/tool", b"#!/bin/sh\n", 0o755)
        .hardlink("bin/tool2", "bin/tool")
        .symlink("bin/abs", "/bin/tool")
        .finish();
    let l2 = TarBuilder::new()
        .file("etc/.wh.a", b"", 0o644)
        .file("opq/.wh..wh..opq", b"", 0o644)
        .file("opq/y", b"y", 0o644)
        .finish();
    let l3 = TarBuilder::new().file("etc/c", b"c", 0o644).finish();
    lb.image(&[l1, l2, l3], Compression::Gzip, Some("v1"));
    reg.push_layout(&lb.dir, "v1", "layered:v1", &["--preserve-digests"]);

    let eng = Engine::new(Some(&reg));
    let rt = tokio::runtime::Runtime::new().unwrap();
    let img = rt
        .block_on(eng.images.pull(
            &format!("{}/layered:v1", reg.host()),
            None,
            ProgressSink::none(),
        ))
        .unwrap();
    assert_eq!(img.layers.len(), 3);

    let mnt = eng.dir.path().join("mnt");
    let _guard = Unmount(mnt.clone());
    eng.images
        .mount_rootfs(
            &img,
            &eng.dir.path().join("upper"),
            &eng.dir.path().join("work"),
            &mnt,
        )
        .unwrap();
    assert!(!mnt.join("etc/a").exists());
    assert_eq!(std::fs::read(mnt.join("etc/b")).unwrap(), b"b");
    assert_eq!(std::fs::read(mnt.join("etc/c")).unwrap(), b"c");
    assert!(!mnt.join("opq/x").exists());
    assert_eq!(std::fs::read(mnt.join("opq/y")).unwrap(), b"y");
    assert_eq!(
        std::fs::read_link(mnt.join("bin/abs")).unwrap(),
        std::path::Path::new("/bin/tool")
    );
    use std::os::unix::fs::MetadataExt;
    assert_eq!(std::fs::metadata(mnt.join("bin/tool2")).unwrap().nlink(), 2);
}

struct Unmount(std::path::PathBuf);
impl Drop for Unmount {
    fn drop(&mut self) {
        let _ = berth_engine::image::snapshot::unmount_rootfs(&self.0);
    }
}

#[test]
fn index_platforms_and_compressions() {
    let reg = Registry::start(Auth::None);
    let mut lb = LayoutBuilder::new(&reg.dir.path().join("layout"));
    let zst = lb.image(
        &[TarBuilder::new().file("which", b"zstd", 0o644).finish()],
        Compression::Zstd,
        None,
    );
    let plain = lb.image(
        &[TarBuilder::new().file("which", b"plain", 0o644).finish()],
        Compression::None,
        None,
    );
    let mut arm = lb.descriptor(&plain);
    arm["platform"] = serde_json::json!({"architecture": "arm64", "os": "linux", "variant": "v8"});
    let amd = lb.descriptor(&zst);
    lb.index(vec![arm, amd], "multi");
    reg.push_layout(
        &lb.dir,
        "multi",
        "multi:latest",
        &["--all", "--preserve-digests"],
    );

    let rt = tokio::runtime::Runtime::new().unwrap();
    let eng = Engine::new(Some(&reg));
    let r = format!("{}/multi", reg.host());
    let amd64 = Platform::parse("linux/amd64").unwrap();
    let img = rt
        .block_on(eng.images.pull(&r, Some(amd64), ProgressSink::none()))
        .unwrap();
    let snap = eng.images.snapshots().path(&img.layers[0].chain_id);
    assert_eq!(std::fs::read(snap.join("which")).unwrap(), b"zstd");
    let arm = Platform::parse("linux/arm64/v8").unwrap();
    let img2 = rt
        .block_on(eng.images.pull(&r, Some(arm), ProgressSink::none()))
        .unwrap();
    let snap = eng.images.snapshots().path(&img2.layers[0].chain_id);
    assert_eq!(std::fs::read(snap.join("which")).unwrap(), b"plain");
    let err = rt
        .block_on(eng.images.pull(
            &r,
            Some(Platform::parse("linux/s390x").unwrap()),
            ProgressSink::none(),
        ))
        .unwrap_err();
    assert!(err.to_string().contains("no matching manifest"), "{err}");
    // Pull by digest.
    let by_digest = format!("{r}@{}", img.manifest_digest);
    let img3 = rt
        .block_on(eng.images.pull(&by_digest, None, ProgressSink::none()))
        .unwrap();
    assert_eq!(img3.id, img.id);
}
