//! save/load round trips (docker-archive + OCI layout in one tar, and a skopeo-written OCI
//! archive), import of a rootfs tar.

mod common;

use berth_engine::image::ProgressSink;
use common::*;
use std::process::Command;

#[test]
fn save_load_roundtrip_and_skopeo_archives() {
    let reg = Registry::start(Auth::None);
    let source = reg.seed_busybox();
    let rt = tokio::runtime::Runtime::new().unwrap();
    let eng = Engine::new(Some(&reg));
    let r = format!("{}/busybox:latest", reg.host());
    let img = rt
        .block_on(eng.images.pull(&r, None, ProgressSink::none()))
        .unwrap();
    let out = eng.dir.path().join("saved.tar");
    eng.images
        .save(
            std::slice::from_ref(&r),
            std::fs::File::create(&out).unwrap(),
        )
        .unwrap();

    // Berth loads its own archive into a fresh engine.
    let eng2 = Engine::new(None);
    let loaded = eng2
        .images
        .load(std::fs::File::open(&out).unwrap())
        .unwrap();
    assert_eq!(loaded.len(), 1);
    assert_eq!(loaded[0].0.id, img.id);
    assert_eq!(loaded[0].1, vec![r.clone()]);
    let snap = eng2
        .images
        .snapshots()
        .path(&loaded[0].0.layers[0].chain_id);
    assert_eq!(tree(&snap), tree(&source));

    // skopeo reads it both as a docker-archive and as an OCI archive.
    let d = eng.dir.path();
    let st = Command::new("skopeo")
        .args(["copy", "-q"])
        .arg(format!("docker-archive:{}", out.display()))
        .arg(format!("oci:{}:fromdocker", d.join("o1").display()))
        .status()
        .unwrap();
    assert!(st.success(), "skopeo read the docker-archive");
    let st = Command::new("skopeo")
        .args(["copy", "-q"])
        .arg(format!("oci-archive:{}", out.display()))
        .arg(format!("dir:{}", d.join("o2").display()))
        .status()
        .unwrap();
    assert!(st.success(), "skopeo read the OCI archive");

    // An OCI archive written by skopeo loads too.
    let oci_tar = d.join("skopeo-oci.tar");
    let st = Command::new("skopeo")
        .args(["copy", "-q", "--src-tls-verify=false"])
        .arg(format!("docker://{}/busybox-v2s2:latest", reg.host()))
        .arg(format!(
            "oci-archive:{}:{}",
            oci_tar.display(),
            "127.0.0.1/x/bb:v1"
        ))
        .status()
        .unwrap();
    assert!(st.success());
    let eng3 = Engine::new(None);
    let loaded = eng3
        .images
        .load(std::fs::File::open(&oci_tar).unwrap())
        .unwrap();
    assert_eq!(loaded.len(), 1);
    let snap = eng3
        .images
        .snapshots()
        .path(&loaded[0].0.layers[0].chain_id);
    assert_eq!(tree(&snap), tree(&source));
    // And a docker-archive written by skopeo.
    let dtar = d.join("skopeo-docker.tar");
    let st = Command::new("skopeo")
        .args(["copy", "-q", "--src-tls-verify=false"])
        .arg(format!("docker://{}/busybox:latest", reg.host()))
        .arg(format!("docker-archive:{}:bb:v2", dtar.display()))
        .status()
        .unwrap();
    assert!(st.success());
    let loaded = eng3
        .images
        .load(std::fs::File::open(&dtar).unwrap())
        .unwrap();
    assert_eq!(loaded[0].1, vec!["docker.io/library/bb:v2".to_string()]);
    assert!(eng3.images.resolve("bb:v2").is_ok());
}

#[test]
fn import_rootfs_tar_then_gc() {
    let eng = Engine::new(None);
    let tar = TarBuilder::new()
        .dir("bin")
        .file("bin/hello", b"#!/bin/sh\necho hi\n", 0o755)
        .symlink("bin/sh", "/bin/busybox")
        .finish();
    let img = eng.images.import(&tar[..], Some("imported:v1")).unwrap();
    assert_eq!(img.layers.len(), 1);
    let found = eng.images.resolve("imported:v1").unwrap();
    assert_eq!(found.id, img.id);
    let snap = eng.images.snapshots().path(&img.layers[0].chain_id);
    assert_eq!(
        std::fs::read(snap.join("bin/hello")).unwrap(),
        b"#!/bin/sh\necho hi\n"
    );

    // A second tag keeps the image; removing both tags and collecting frees everything.
    eng.images.tag("imported:v1", "imported:v2").unwrap();
    let out = eng.images.remove("imported:v1", false).unwrap();
    assert_eq!(
        out,
        vec!["Untagged: docker.io/library/imported:v1".to_string()]
    );
    assert!(eng.images.gc().unwrap().blobs.is_empty());
    eng.images.remove("imported:v2", false).unwrap();
    let gc = eng.images.gc().unwrap();
    assert_eq!(gc.snapshots.len(), 1);
    assert!(
        gc.blobs.len() >= 3,
        "config, manifest, layer: {:?}",
        gc.blobs
    );
    assert!(eng.images.store().list().unwrap().is_empty());
    assert!(eng.images.snapshots().list().unwrap().is_empty());
}
