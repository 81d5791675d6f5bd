//! Commit: changes made in a container's overlay become a new layer and image.

mod common;

use berth_engine::image::commit::CommitOptions;
use berth_engine::image::snapshot::unmount_rootfs;
use common::*;
use std::fs;

struct Unmount(std::path::PathBuf);
impl Drop for Unmount {
    fn drop(&mut self) {
        let _ = unmount_rootfs(&self.0);
    }
}

#[test]
fn commit_container_changes() {
    let eng = Engine::new(None);
    let tar = TarBuilder::new()
        .dir("etc")
        .file("etc/keep", b"keep", 0o644)
        .file("etc/drop", b"drop", 0o644)
        .dir("data")
        .file("data/old", b"old", 0o644)
        .finish();
    let base = eng.images.import(&tar[..], Some("base:v1")).unwrap();

    let d = eng.dir.path();
    let (upper, work, mnt) = (d.join("c/upper"), d.join("c/work"), d.join("c/rootfs"));
    {
        let _g = Unmount(mnt.clone());
        eng.images.mount_rootfs(&base, &upper, &work, &mnt).unwrap();
        fs::write(mnt.join("etc/new"), b"new").unwrap();
        fs::remove_file(mnt.join("etc/drop")).unwrap();
        fs::remove_dir_all(mnt.join("data")).unwrap();
        fs::create_dir(mnt.join("data")).unwrap();
        fs::write(mnt.join("data/fresh"), b"fresh").unwrap();
    }
    let mut cfg = serde_json::Map::new();
    cfg.insert("Cmd".into(), serde_json::json!(["/bin/sh"]));
    let img = eng
        .images
        .commit(
            Some(&base),
            Some(&upper),
            &CommitOptions {
                created_by: "test".into(),
                comment: Some("committed".into()),
                config: cfg,
                reference: Some("committed:v1".into()),
                ..Default::default()
            },
        )
        .unwrap();
    assert_eq!(img.layers.len(), 2);
    assert_eq!(eng.images.resolve("committed:v1").unwrap().id, img.id);
    let cfg: serde_json::Value =
        serde_json::from_slice(&eng.images.store().read(&img.id).unwrap()).unwrap();
    assert_eq!(cfg["config"]["Cmd"][0], "/bin/sh");
    assert_eq!(cfg["history"].as_array().unwrap().len(), 2);

    let mnt2 = d.join("c2/rootfs");
    let _g = Unmount(mnt2.clone());
    eng.images
        .mount_rootfs(&img, &d.join("c2/upper"), &d.join("c2/work"), &mnt2)
        .unwrap();
    assert_eq!(fs::read(mnt2.join("etc/keep")).unwrap(), b"keep");
    assert_eq!(fs::read(mnt2.join("etc/new")).unwrap(), b"new");
    assert!(!mnt2.join("etc/drop").exists());
    assert!(!mnt2.join("data/old").exists());
    assert_eq!(fs::read(mnt2.join("data/fresh")).unwrap(), b"fresh");

    // Config-only step: no new layer.
    let mut env = serde_json::Map::new();
    env.insert("Env".into(), serde_json::json!(["A=1"]));
    let img2 = eng
        .images
        .commit(
            Some(&img),
            None,
            &CommitOptions {
                created_by: "ENV A=1".into(),
                config: env,
                empty_layer: true,
                ..Default::default()
            },
        )
        .unwrap();
    assert_eq!(img2.layers.len(), 2);
    assert_ne!(img2.id, img.id);

    // history: newest first, the config-only step has no size, the top row carries the ID.
    let img2_ref = img2.id.to_string();
    let h = eng.images.history(&img2_ref).unwrap();
    assert_eq!(h.len(), 3);
    assert_eq!(h[0].id, img2.id.to_string());
    assert_eq!(h[0].created_by, "ENV A=1");
    assert_eq!(h[0].size, 0);
    assert_eq!(h[1].comment, "committed");
    assert!(h[1].size > 0);
    let inspect = eng.images.inspect("committed:v1").unwrap();
    assert_eq!(inspect["RepoTags"][0], "committed:v1");
    assert_eq!(inspect["RootFS"]["Layers"].as_array().unwrap().len(), 2);
    assert_eq!(inspect["Config"]["Cmd"][0], "/bin/sh");
}
