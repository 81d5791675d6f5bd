//! Push to a real registry (token auth): chunked and monolithic uploads, cross-repository
//! mount, then pull again into a fresh engine.

mod common;

use berth_engine::image::{Progress, ProgressSink};
use common::*;
use std::sync::{Arc, Mutex};

#[test]
fn push_then_pull_again() {
    let reg = Registry::start(Auth::Token);
    let source = reg.seed_busybox();
    let rt = tokio::runtime::Runtime::new().unwrap();
    let eng = Engine::new(Some(&reg));
    let orig = format!("{}/busybox:latest", reg.host());
    let img = rt
        .block_on(eng.images.pull(&orig, None, ProgressSink::none()))
        .unwrap();

    // Chunked upload (chunks much smaller than the busybox layer) into a new repository;
    // the registry may mount the blobs from `busybox` instead.
    let pushed = format!("{}/pushed/chunked:v1", reg.host());
    eng.images.tag(&orig, &pushed).unwrap();
    let events = Arc::new(Mutex::new(Vec::new()));
    let ev = events.clone();
    let sink = ProgressSink::new(move |p| ev.lock().unwrap().push(p));
    let digest = rt.block_on(eng.images.push(&pushed, sink)).unwrap();
    assert_eq!(digest, img.manifest_digest);
    assert!(
        events
            .lock()
            .unwrap()
            .iter()
            .any(|e| matches!(e, Progress::LayerMounted { .. })),
        "expected a cross-repository mount: {:?}",
        events.lock().unwrap()
    );

    // A fresh engine has no mount source: real uploads, chunked.
    let eng2 = Engine::new(Some(&reg));
    rt.block_on(eng2.images.pull(&pushed, None, ProgressSink::none()))
        .unwrap();
    let again = format!("{}/other/repo:v2", reg.host());
    eng2.images.tag(&pushed, &again).unwrap();
    // Forget where it came from so nothing is mounted.
    let mut rec = eng2.images.resolve(&again).unwrap();
    rec.repo_digests.clear();
    eng2.images.state().remove_image(&rec.id).unwrap();
    eng2.images
        .state()
        .put_image(&rec, &[again.to_string()])
        .unwrap();
    let events = Arc::new(Mutex::new(Vec::new()));
    let ev = events.clone();
    let sink = ProgressSink::new(move |p| ev.lock().unwrap().push(p));
    rt.block_on(eng2.images.push_with_chunk_size(&again, 256 * 1024, sink))
        .unwrap();
    let n_progress = events
        .lock()
        .unwrap()
        .iter()
        .filter(|e| matches!(e, Progress::LayerProgress { .. }))
        .count();
    assert!(n_progress >= 2, "expected several chunks");

    // A third engine pulls what was pushed; same image, same rootfs.
    let eng3 = Engine::new(Some(&reg));
    let back = rt
        .block_on(eng3.images.pull(&again, None, ProgressSink::none()))
        .unwrap();
    assert_eq!(back.id, img.id);
    let snap = eng3.images.snapshots().path(&back.layers[0].chain_id);
    assert_eq!(tree(&snap), tree(&source));
}
