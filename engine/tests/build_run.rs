//! Builds with RUN in real containers (through `berth-runtime run`): files created, ENV, ARG
//! and USER visible, exec form, the legacy builder's error text, cache hits, COPY --chown by
//! name, cancel, and nothing left behind (mounts, cgroups, runtime state).
//!
//! Needs `target/release/berth-runtime` (`cargo build --release -p berth-runtime`).

mod common;

use berth_engine::image::build::builder::{BuildOptions, BuildOutput};
use common::*;
use std::fs;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

const APPLETS: &[&str] = &[
    "sh", "cat", "touch", "id", "env", "ls", "mkdir", "rm", "false", "true", "echo", "sleep",
    "hostname", "test",
];

fn runtime() -> PathBuf {
    let exe = std::env::current_exe().unwrap();
    let p = exe
        .parent()
        .unwrap()
        .parent()
        .unwrap()
        .join("berth-runtime");
    assert!(
        p.is_file(),
        "{} is missing: run `cargo build --release -p berth-runtime` first",
        p.display()
    );
    p
}

/// A busybox image from Debian's busybox-static, with a user `app` (1000:1000).
fn busybox(eng: &Engine, tag: &str) {
    let bb = fs::read("/bin/busybox").expect("busybox-static is installed");
    let mut t = TarBuilder::new()
        .dir("bin")
        .file("bin/busybox", &bb, 0o755)
        .dir("etc")
        .file(
            "etc/passwd",
            b"root:x:0:0:root:/root:/bin/sh\napp:x:1000:1000::/home/app:/bin/sh\n",
            0o644,
        )
        .file(
            "etc/group",
            b"root:x:0:\napp:x:1000:\nextra:x:2000:app\n",
            0o644,
        )
        .file("etc/motd", b"hi\n", 0o644)
        .dir("tmp");
    for a in APPLETS {
        t = t.symlink(&format!("bin/{a}"), "busybox");
    }
    let tar = t.finish();
    let img = eng.images.import(&tar[..], Some(tag)).unwrap();
    // /tmp must be world-writable for the USER step.
    let snap = eng.images.snapshots().path(&img.layers[0].chain_id);
    fs::set_permissions(
        snap.join("tmp"),
        std::os::unix::fs::PermissionsExt::from_mode(0o1777),
    )
    .unwrap();
}

fn capture() -> (BuildOutput, Arc<Mutex<String>>) {
    let buf = Arc::new(Mutex::new(String::new()));
    let b2 = buf.clone();
    (
        BuildOutput::new(move |s| b2.lock().unwrap().push_str(s)),
        buf,
    )
}

fn find(eng: &Engine, img: &berth_engine::state::ImageRecord, path: &str) -> Option<PathBuf> {
    img.layers
        .iter()
        .rev()
        .map(|l| eng.images.snapshots().path(&l.chain_id).join(path))
        .find(|p| p.symlink_metadata().is_ok())
}

fn read(eng: &Engine, img: &berth_engine::state::ImageRecord, path: &str) -> String {
    fs::read_to_string(find(eng, img, path).unwrap_or_else(|| panic!("{path} not in image")))
        .unwrap()
}

/// The step container IDs a build printed (` ---> Running in <id>`).
fn step_ids(log: &str) -> Vec<String> {
    log.lines()
        .filter_map(|l| l.strip_prefix(" ---> Running in "))
        .map(str::to_string)
        .collect()
}

/// Nothing of the build may remain: no mount under the engine dir, no cgroup of its steps,
/// no scratch directory.
fn assert_clean(eng: &Engine, log: &str) {
    let root = eng.dir.path().to_string_lossy().into_owned();
    let mounts = fs::read_to_string("/proc/self/mountinfo").unwrap();
    assert!(
        !mounts.lines().any(|l| l.contains(&root)),
        "mounts left under {root}:\n{mounts}"
    );
    let ids = step_ids(log);
    assert!(!ids.is_empty(), "no step ran:\n{log}");
    for ctl in fs::read_dir("/sys/fs/cgroup").unwrap() {
        let berth = ctl.unwrap().path().join("berth");
        for id in &ids {
            let cg = berth.join(format!("build-{id}"));
            assert!(!cg.exists(), "cgroup {} left", cg.display());
        }
    }
    let tmp = eng.dir.path().join("root/tmp");
    if let Ok(rd) = fs::read_dir(&tmp) {
        let left: Vec<_> = rd.map(|e| e.unwrap().file_name()).collect();
        assert!(left.is_empty(), "scratch dirs left: {left:?}");
    }
}

fn dockerfile(ctx: &Path, text: &str) {
    fs::create_dir_all(ctx).unwrap();
    fs::write(ctx.join("Dockerfile"), text).unwrap();
}

#[test]
fn run_steps_create_files_see_env_args_user_and_hit_the_cache() {
    let eng = Engine::new(None);
    busybox(&eng, "bb:run");
    let ctx = eng.dir.path().join("ctx");
    dockerfile(
        &ctx,
        "FROM bb:run\n\
         ENV GREETING=hello\n\
         ARG WHO=world\n\
         RUN echo \"$GREETING $WHO\" > /greeting && mkdir -p /data && touch /data/x && rm /etc/motd\n\
         RUN [\"/bin/sh\", \"-c\", \"hostname > /hn; id -u > /uid; test -e /etc/hosts && echo ok > /hosts-ok\"]\n\
         COPY --chown=app:extra f.txt /home/app/f.txt\n\
         WORKDIR /tmp\n\
         USER app\n\
         RUN id -u > me && id -G > groups && pwd > where\n",
    );
    fs::write(ctx.join("f.txt"), "F").unwrap();
    let rt = tokio::runtime::Runtime::new().unwrap();
    let (output, log) = capture();
    let opts = BuildOptions {
        context: ctx.clone(),
        tags: vec!["built:run".into()],
        build_args: [("WHO".to_string(), "berth".to_string())].into(),
        output,
        runtime: Some(runtime()),
        ..Default::default()
    };
    let r = eng.images.build(&opts, rt.handle()).unwrap_or_else(|e| {
        panic!("build failed: {e}\n{}", log.lock().unwrap());
    });
    let img = &r.image;
    assert_eq!(read(&eng, img, "greeting"), "hello berth\n");
    assert!(find(&eng, img, "data/x").is_some());
    assert_eq!(read(&eng, img, "uid"), "0\n");
    assert_eq!(read(&eng, img, "hosts-ok"), "ok\n");
    assert_eq!(read(&eng, img, "hn").trim().len(), 12);
    assert_eq!(read(&eng, img, "tmp/me"), "1000\n");
    assert_eq!(read(&eng, img, "tmp/where"), "/tmp\n");
    let f = find(&eng, img, "home/app/f.txt").unwrap();
    let m = fs::symlink_metadata(&f).unwrap();
    assert_eq!((m.uid(), m.gid()), (1000, 2000));
    // The deletion is a whiteout in the first RUN layer.
    let first_run = &img.layers[1];
    let wh = eng
        .images
        .snapshots()
        .path(&first_run.chain_id)
        .join("etc/motd");
    assert!(
        fs::symlink_metadata(&wh)
            .map(|m| std::os::unix::fs::FileTypeExt::is_char_device(&m.file_type()))
            .unwrap_or(false),
        "rm /etc/motd is a whiteout"
    );
    // Mount points and generated files are not part of any RUN layer.
    for l in &img.layers[1..] {
        let p = eng.images.snapshots().path(&l.chain_id);
        for x in [
            "proc",
            "sys",
            "dev",
            "etc/hosts",
            "etc/hostname",
            "etc/resolv.conf",
        ] {
            assert!(!p.join(x).exists(), "{x} leaked into a layer");
        }
    }
    let text = log.lock().unwrap().clone();
    assert!(text.starts_with("Step 1/9 : FROM bb:run\n ---> "), "{text}");
    assert!(text.contains(" ---> Running in "), "{text}");
    assert!(text.contains("Successfully tagged built:run\n"), "{text}");
    assert_eq!(r.executed_steps, 7, "{text}");
    assert_clean(&eng, &text);

    let (output, log) = capture();
    let again = eng
        .images
        .build(
            &BuildOptions {
                output,
                ..opts.clone()
            },
            rt.handle(),
        )
        .unwrap();
    assert_eq!(again.image.id, r.image.id);
    assert_eq!(again.executed_steps, 0);
    assert!(log.lock().unwrap().contains(" ---> Using cache\n"));

    // Another ARG value is another RUN.
    let changed = eng
        .images
        .build(
            &BuildOptions {
                build_args: [("WHO".to_string(), "you".to_string())].into(),
                output: BuildOutput::default(),
                ..opts.clone()
            },
            rt.handle(),
        )
        .unwrap();
    assert_eq!(read(&eng, &changed.image, "greeting"), "hello you\n");
    let (output, log) = capture();
    let nocache = eng
        .images
        .build(
            &BuildOptions {
                no_cache: true,
                output,
                ..opts.clone()
            },
            rt.handle(),
        )
        .unwrap();
    assert_eq!(nocache.cached_steps, 1, "only ARG counts as cached");
    assert_clean(&eng, &log.lock().unwrap());
}

#[test]
fn failing_run_reports_docker_text_and_cleans_up() {
    let eng = Engine::new(None);
    busybox(&eng, "bb:fail");
    let ctx = eng.dir.path().join("ctx");
    dockerfile(&ctx, "FROM bb:fail\nRUN echo before; false\n");
    let rt = tokio::runtime::Runtime::new().unwrap();
    let (output, log) = capture();
    let e = eng
        .images
        .build(
            &BuildOptions {
                context: ctx.clone(),
                output,
                runtime: Some(runtime()),
                ..Default::default()
            },
            rt.handle(),
        )
        .unwrap_err();
    assert_eq!(
        e.to_string(),
        "The command '/bin/sh -c echo before; false' returned a non-zero code: 1"
    );
    assert!(log.lock().unwrap().contains("before\n"));
    assert_clean(&eng, &log.lock().unwrap());

    dockerfile(&ctx, "FROM bb:fail\nRUN [\"/nonexistent\"]\n");
    let (output, log) = capture();
    let e = eng
        .images
        .build(
            &BuildOptions {
                context: ctx.clone(),
                output,
                runtime: Some(runtime()),
                ..Default::default()
            },
            rt.handle(),
        )
        .unwrap_err();
    assert!(e.to_string().contains("nonexistent"), "{e}");
    assert_clean(&eng, &log.lock().unwrap());
}

#[test]
fn cancel_stops_a_running_step_and_cleans_up() {
    let eng = Engine::new(None);
    busybox(&eng, "bb:cancel");
    let ctx = eng.dir.path().join("ctx");
    dockerfile(&ctx, "FROM bb:cancel\nRUN echo started; sleep 60\n");
    let rt = tokio::runtime::Runtime::new().unwrap();
    let cancel = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let c2 = cancel.clone();
    let log = Arc::new(Mutex::new(String::new()));
    let log2 = log.clone();
    let output = BuildOutput::new(move |s| {
        log2.lock().unwrap().push_str(s);
        if s.contains("started") {
            c2.store(true, std::sync::atomic::Ordering::Relaxed);
        }
    });
    let t0 = std::time::Instant::now();
    let e = eng
        .images
        .build(
            &BuildOptions {
                context: ctx.clone(),
                output,
                runtime: Some(runtime()),
                cancel: Some(cancel),
                ..Default::default()
            },
            rt.handle(),
        )
        .unwrap_err();
    assert_eq!(e.to_string(), "build cancelled");
    assert!(t0.elapsed().as_secs() < 20);
    assert_clean(&eng, &log.lock().unwrap());
}

/// Serves `body` with a Last-Modified header to every request on 127.0.0.1; counts requests.
fn http_server(body: &'static [u8]) -> (String, Arc<std::sync::atomic::AtomicUsize>) {
    use std::io::{Read, Write};
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = l.local_addr().unwrap();
    let hits = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let h2 = hits.clone();
    std::thread::spawn(move || {
        for s in l.incoming() {
            let Ok(mut s) = s else { break };
            let mut buf = [0u8; 4096];
            let _ = s.read(&mut buf);
            h2.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            let head = format!(
                "HTTP/1.1 200 OK\r\nContent-Length: {}\r\nLast-Modified: Sun, 06 Nov 1994 08:49:37 GMT\r\nConnection: close\r\n\r\n",
                body.len()
            );
            let _ = s.write_all(head.as_bytes());
            let _ = s.write_all(body);
        }
    });
    (format!("http://{addr}"), hits)
}

#[test]
fn add_from_a_url_keeps_last_modified_and_caches_by_content() {
    let eng = Engine::new(None);
    let (url, hits) = http_server(b"downloaded\n");
    let ctx = eng.dir.path().join("ctx");
    dockerfile(
        &ctx,
        &format!(
            "FROM scratch\nADD {url}/files/data.txt /web/\nADD --chmod=0644 {url}/x /named.txt\n"
        ),
    );
    let rt = tokio::runtime::Runtime::new().unwrap();
    let opts = BuildOptions {
        context: ctx.clone(),
        ..Default::default()
    };
    let r = eng.images.build(&opts, rt.handle()).unwrap();
    let f = find(&eng, &r.image, "web/data.txt").unwrap();
    assert_eq!(fs::read(&f).unwrap(), b"downloaded\n");
    let m = fs::metadata(&f).unwrap();
    assert_eq!(m.mtime(), 784_111_777);
    assert_eq!(m.mode() & 0o777, 0o600);
    let n = fs::metadata(find(&eng, &r.image, "named.txt").unwrap()).unwrap();
    assert_eq!(n.mode() & 0o777, 0o644);
    assert!(hits.load(std::sync::atomic::Ordering::Relaxed) >= 2);
    // Same content: cache hits (the URL is fetched again to compare).
    let again = eng.images.build(&opts, rt.handle()).unwrap();
    assert_eq!(again.image.id, r.image.id);
    assert_eq!(again.executed_steps, 0);

    // --checksum: the right sha256 passes, a wrong one fails naming both, a local source
    // with a checksum is refused, COPY has no such flag.
    let right = berth_engine::image::digest::Digest::of(b"downloaded\n");
    let wrong = berth_engine::image::digest::Digest::of(b"other");
    fs::write(ctx.join("local.txt"), "l").unwrap();
    for (text, want_err) in [
        (format!("ADD --checksum={right} {url}/c.txt /c.txt"), None),
        (
            format!("ADD --checksum={wrong} {url}/c.txt /c.txt"),
            Some(format!("expected {wrong}, got {right}")),
        ),
        (
            format!("ADD --checksum=md5:abc {url}/c.txt /c.txt"),
            Some("invalid checksum".to_string()),
        ),
        (
            format!("ADD --checksum={right} local.txt /l.txt"),
            Some("non-HTTP(S) sources".to_string()),
        ),
        (
            format!("COPY --checksum={right} local.txt /l.txt"),
            Some("unknown flag: --checksum".to_string()),
        ),
    ] {
        dockerfile(&ctx, &format!("FROM scratch\n{text}\n"));
        match (eng.images.build(&opts, rt.handle()), want_err) {
            (Ok(r), None) => {
                let f = find(&eng, &r.image, "c.txt").unwrap();
                assert_eq!(fs::read(f).unwrap(), b"downloaded\n");
            }
            (Err(e), Some(w)) => assert!(e.to_string().contains(&w), "{text}: {e}"),
            (Ok(_), Some(w)) => panic!("{text}: built, expected an error with {w:?}"),
            (Err(e), None) => panic!("{text}: {e}"),
        }
    }
}

#[test]
fn run_on_an_image_of_a_hundred_layers() {
    // ~95 bytes of lower path per layer: the overlay options overflow mount(2)'s page.
    let eng = Engine::new(None);
    busybox(&eng, "bb:deep");
    let ctx = eng.dir.path().join("ctx");
    let mut text = String::from("FROM bb:deep\n");
    for i in 0..100 {
        fs::create_dir_all(&ctx).unwrap();
        fs::write(ctx.join(format!("f{i}")), format!("{i}\n")).unwrap();
        text.push_str(&format!("COPY f{i} /layers/f{i}\n"));
    }
    text.push_str("RUN cat /layers/f0 /layers/f99 > /seen && ls /layers > /list\n");
    dockerfile(&ctx, &text);
    let rt = tokio::runtime::Runtime::new().unwrap();
    let (output, log) = capture();
    let r = eng
        .images
        .build(
            &BuildOptions {
                context: ctx.clone(),
                tags: vec!["deep:latest".into()],
                output,
                runtime: Some(runtime()),
                ..Default::default()
            },
            rt.handle(),
        )
        .unwrap_or_else(|e| panic!("build failed: {e}\n{}", log.lock().unwrap()));
    assert_eq!(r.image.layers.len(), 102);
    assert_eq!(read(&eng, &r.image, "seen"), "0\n99\n");
    assert_eq!(read(&eng, &r.image, "list").lines().count(), 100);
    assert_clean(&eng, &log.lock().unwrap());
}

#[test]
fn add_chown_resolves_names_from_the_image() {
    let eng = Engine::new(None);
    busybox(&eng, "bb:chown");
    let ctx = eng.dir.path().join("ctx");
    dockerfile(
        &ctx,
        "FROM bb:chown\nADD --chown=app:extra f.txt /a.txt\nADD --chown=app f.txt /b.txt\n\
         ADD --chown=7:8 f.txt /c.txt\n",
    );
    fs::write(ctx.join("f.txt"), "F").unwrap();
    let rt = tokio::runtime::Runtime::new().unwrap();
    let opts = BuildOptions {
        context: ctx.clone(),
        ..Default::default()
    };
    let r = eng.images.build(&opts, rt.handle()).unwrap();
    for (p, ids) in [
        ("a.txt", (1000, 2000)),
        ("b.txt", (1000, 1000)),
        ("c.txt", (7, 8)),
    ] {
        let m = fs::symlink_metadata(find(&eng, &r.image, p).unwrap()).unwrap();
        assert_eq!((m.uid(), m.gid()), ids, "{p}");
    }
    dockerfile(&ctx, "FROM bb:chown\nADD --chown=ghost f.txt /d.txt\n");
    let e = eng
        .images
        .build(&opts, rt.handle())
        .unwrap_err()
        .to_string();
    assert!(e.contains("ghost"), "{e}");
}
