//! `POST /build`, `/images/load` and `/images/create?fromSrc=-` driven by the real docker CLI
//! (`DOCKER_BUILDKIT=0 docker build`, `docker load`, `docker import`) and by the berth CLI.
//!
//! RUN steps need `target/release/berth-runtime` next to berthd
//! (`cargo build --release -p berth-runtime`).

mod common;

use common::Berthd;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

const APPLETS: &[&str] = &[
    "sh", "cat", "touch", "id", "env", "ls", "mkdir", "rm", "false", "true", "echo", "sleep",
];

/// A rootfs tar of Debian's busybox-static with a few applet links.
fn busybox_tar(dir: &Path) -> PathBuf {
    let root = dir.join("bbroot");
    fs::create_dir_all(root.join("bin")).unwrap();
    fs::create_dir_all(root.join("etc")).unwrap();
    fs::create_dir_all(root.join("tmp")).unwrap();
    fs::copy("/bin/busybox", root.join("bin/busybox")).unwrap();
    for a in APPLETS {
        std::os::unix::fs::symlink("busybox", root.join("bin").join(a)).unwrap();
    }
    fs::write(root.join("etc/passwd"), "root:x:0:0:root:/root:/bin/sh\n").unwrap();
    fs::write(root.join("etc/group"), "root:x:0:\n").unwrap();
    let tar = dir.join("bb.tar");
    let st = Command::new("tar")
        .arg("-C")
        .arg(&root)
        .arg("-cf")
        .arg(&tar)
        .arg(".")
        .status()
        .unwrap();
    assert!(st.success());
    tar
}

fn runtime_present() {
    let p = Path::new(env!("CARGO_BIN_EXE_berthd")).with_file_name("berth-runtime");
    assert!(
        p.is_file(),
        "{} is missing: cargo build --release -p berth-runtime",
        p.display()
    );
}

/// The docker CLI with the legacy builder.
fn docker_legacy(d: &Berthd, args: &[&str], dir: &Path) -> Output {
    Command::new("docker")
        .arg("-H")
        .arg(d.host())
        .args(args)
        .current_dir(dir)
        .env("DOCKER_BUILDKIT", "0")
        .env("DOCKER_CONFIG", d.dir.path().join("docker-config"))
        .env_remove("DOCKER_HOST")
        .env_remove("DOCKER_CONTEXT")
        .output()
        .expect("run docker")
}

fn text(o: &Output) -> String {
    format!(
        "status {}\n--- stdout\n{}--- stderr\n{}",
        o.status,
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

fn ok(d: &Berthd, o: Output) -> String {
    assert!(
        o.status.success(),
        "{}\n--- berthd log\n{}",
        text(&o),
        d.log()
    );
    String::from_utf8_lossy(&o.stdout).into_owned()
}

#[test]
fn docker_cli_import_build_with_run_save_load() {
    runtime_present();
    let d = Berthd::start(&[]);
    let work = d.dir.path().join("work");
    fs::create_dir_all(&work).unwrap();
    let tar = busybox_tar(&work);

    // docker import with changes and a message.
    let id = ok(
        &d,
        docker_legacy(
            &d,
            &[
                "import",
                "-c",
                "CMD [\"sh\"]",
                "-c",
                "ENV FROM_IMPORT=yes",
                "-m",
                "imported for tests",
                tar.to_str().unwrap(),
                "bb:imp",
            ],
            &work,
        ),
    );
    assert!(id.trim().starts_with("sha256:"), "{id}");
    let cfg = ok(
        &d,
        docker_legacy(
            &d,
            &["image", "inspect", "-f", "{{json .Config}}", "bb:imp"],
            &work,
        ),
    );
    assert!(cfg.contains("\"Cmd\":[\"sh\"]"), "{cfg}");
    assert!(cfg.contains("FROM_IMPORT=yes"), "{cfg}");
    let hist = ok(
        &d,
        docker_legacy(&d, &["history", "--no-trunc", "bb:imp"], &work),
    );
    assert!(hist.contains("imported for tests"), "{hist}");

    // docker build (legacy builder) with RUN.
    let ctx = work.join("ctx");
    fs::create_dir_all(&ctx).unwrap();
    fs::write(
        ctx.join("Dockerfile"),
        "FROM bb:imp\nARG WHO\nENV X=1\nCOPY msg.txt /msg.txt\n\
         RUN echo \"ran $X for $WHO\" && cat /msg.txt > /copied && echo hello > /hello\n\
         CMD [\"cat\", \"/hello\"]\n",
    )
    .unwrap();
    fs::write(ctx.join("msg.txt"), "from the context\n").unwrap();
    fs::write(ctx.join("ignored.txt"), "x").unwrap();
    fs::write(ctx.join(".dockerignore"), "ignored.txt\n").unwrap();
    let out = ok(
        &d,
        docker_legacy(
            &d,
            &[
                "build",
                "-t",
                "built:1",
                "-t",
                "built:also",
                "--build-arg",
                "WHO=docker",
                "--label",
                "team=berth",
                ".",
            ],
            &ctx,
        ),
    );
    assert!(out.contains("Step 1/7 : FROM bb:imp"), "{out}");
    assert!(out.contains(" ---> Running in "), "{out}");
    assert!(out.contains("ran 1 for docker"), "{out}");
    assert!(out.contains("Successfully built "), "{out}");
    assert!(out.contains("Successfully tagged built:1"), "{out}");
    let labels = ok(
        &d,
        docker_legacy(
            &d,
            &[
                "image",
                "inspect",
                "-f",
                "{{json .Config.Labels}}",
                "built:also",
            ],
            &work,
        ),
    );
    assert!(labels.contains("\"team\":\"berth\""), "{labels}");

    // Cached the second time; -q prints the image ID only.
    let again = ok(
        &d,
        docker_legacy(
            &d,
            &[
                "build",
                "-t",
                "built:1",
                "--build-arg",
                "WHO=docker",
                "--label",
                "team=berth",
                ".",
            ],
            &ctx,
        ),
    );
    assert!(again.contains(" ---> Using cache"), "{again}");
    assert!(!again.contains("Running in"), "{again}");
    let q = ok(
        &d,
        docker_legacy(
            &d,
            &[
                "build",
                "-q",
                "--build-arg",
                "WHO=docker",
                "--label",
                "team=berth",
                ".",
            ],
            &ctx,
        ),
    );
    let want = ok(
        &d,
        docker_legacy(&d, &["image", "inspect", "-f", "{{.Id}}", "built:1"], &work),
    );
    assert_eq!(q.trim(), want.trim());

    // A failing RUN: the legacy builder's message and a non-zero exit.
    fs::write(ctx.join("Dockerfile.fail"), "FROM bb:imp\nRUN false\n").unwrap();
    let fail = docker_legacy(&d, &["build", "-f", "Dockerfile.fail", "."], &ctx);
    assert!(!fail.status.success(), "{}", text(&fail));
    assert!(
        String::from_utf8_lossy(&fail.stderr)
            .contains("The command '/bin/sh -c false' returned a non-zero code: 1"),
        "{}",
        text(&fail)
    );

    // save, remove, load.
    let saved = work.join("built.tar");
    ok(
        &d,
        docker_legacy(
            &d,
            &["save", "-o", saved.to_str().unwrap(), "built:1"],
            &work,
        ),
    );
    ok(&d, docker_legacy(&d, &["rmi", "built:1"], &work));
    let loaded = ok(
        &d,
        docker_legacy(&d, &["load", "-i", saved.to_str().unwrap()], &work),
    );
    assert!(loaded.contains("Loaded image: built:1"), "{loaded}");
    let id2 = ok(
        &d,
        docker_legacy(&d, &["image", "inspect", "-f", "{{.Id}}", "built:1"], &work),
    );
    assert_eq!(id2.trim(), want.trim());

    // Nothing of the builds is left behind: no step cgroups, no mounts, no scratch dirs.
    let mounts = fs::read_to_string("/proc/self/mountinfo").unwrap();
    assert!(
        !mounts.contains(d.dir.path().to_str().unwrap()),
        "mounts left: {mounts}"
    );
    for l in out
        .lines()
        .chain(fail_lines(&fail).iter().map(String::as_str))
    {
        if let Some(id) = l.strip_prefix(" ---> Running in ") {
            for ctl in fs::read_dir("/sys/fs/cgroup").unwrap() {
                let cg = ctl.unwrap().path().join(format!("berth/build-{id}"));
                assert!(!cg.exists(), "{} left", cg.display());
            }
        }
    }
    let tmp = d.dir.path().join("root/image/tmp");
    let left: Vec<_> = fs::read_dir(&tmp)
        .map(|r| r.map(|e| e.unwrap().file_name()).collect())
        .unwrap_or_default();
    assert!(left.is_empty(), "scratch dirs left: {left:?}");
}

fn fail_lines(o: &Output) -> Vec<String> {
    String::from_utf8_lossy(&o.stdout)
        .lines()
        .map(str::to_string)
        .collect()
}

fn berth_ok(d: &Berthd, args: &[&str]) -> String {
    ok(d, d.berth(args))
}

#[test]
fn berth_cli_import_build_load_and_commit() {
    runtime_present();
    let d = Berthd::start(&[]);
    let work = d.dir.path().join("work");
    fs::create_dir_all(&work).unwrap();
    let tar = busybox_tar(&work);
    let id = berth_ok(
        &d,
        &[
            "import",
            "-c",
            "CMD [\"sh\"]",
            tar.to_str().unwrap(),
            "bb:berth",
        ],
    );
    assert!(id.trim().starts_with("sha256:"), "{id}");

    let ctx = work.join("ctx");
    fs::create_dir_all(ctx.join("skip")).unwrap();
    fs::write(ctx.join("skip/big.bin"), "ignored").unwrap();
    fs::write(ctx.join(".dockerignore"), "skip\n").unwrap();
    fs::write(ctx.join("a.txt"), "A\n").unwrap();
    let df = work.join("Other.Dockerfile");
    fs::write(
        &df,
        "FROM bb:berth\nARG V=default\nCOPY . /ctx/\nRUN ls /ctx > /listing && echo $V > /v\n",
    )
    .unwrap();
    let out = berth_ok(
        &d,
        &[
            "build",
            "-t",
            "bb:built",
            "-f",
            df.to_str().unwrap(),
            "--build-arg",
            "V=given",
            ctx.to_str().unwrap(),
        ],
    );
    assert!(out.contains("Step 1/4 : FROM bb:berth"), "{out}");
    assert!(out.contains("Successfully tagged bb:built"), "{out}");
    let q = berth_ok(
        &d,
        &[
            "build",
            "-q",
            "-f",
            df.to_str().unwrap(),
            "--build-arg",
            "V=given",
            ctx.to_str().unwrap(),
        ],
    );
    let want = berth_ok(&d, &["image", "inspect", "-f", "{{.Id}}", "bb:built"]);
    assert_eq!(q.trim(), want.trim());

    // What the RUN saw: the context without the ignored directory.
    let run = d.docker(&["run", "--rm", "bb:built", "cat", "/listing", "/v"]);
    if run.status.success() {
        let seen = String::from_utf8_lossy(&run.stdout);
        assert!(seen.contains("a.txt") && !seen.contains("skip"), "{seen}");
        assert!(seen.contains("given"), "{seen}");
    }

    // A failing build exits non-zero with Docker's message.
    fs::write(&df, "FROM bb:berth\nRUN exit 3\n").unwrap();
    let fail = d.berth(&["build", "-f", df.to_str().unwrap(), ctx.to_str().unwrap()]);
    assert!(!fail.status.success());
    assert!(
        String::from_utf8_lossy(&fail.stderr)
            .contains("The command '/bin/sh -c exit 3' returned a non-zero code: 3"),
        "{}",
        text(&fail)
    );

    // save with docker, load with berth.
    let saved = work.join("saved.tar");
    ok(
        &d,
        d.docker(&["save", "-o", saved.to_str().unwrap(), "bb:built"]),
    );
    berth_ok(&d, &["rmi", "bb:built"]);
    let loaded = berth_ok(&d, &["load", "-i", saved.to_str().unwrap()]);
    assert!(loaded.contains("Loaded image: bb:built"), "{loaded}");

    // commit: a container's changes become an image (docker and berth).
    let made = d.docker(&[
        "run",
        "--name",
        "tocommit",
        "bb:berth",
        "sh",
        "-c",
        "echo committed > /c.txt",
    ]);
    assert!(made.status.success(), "{}\n{}", text(&made), d.log());
    let cid = berth_ok(
        &d,
        &[
            "commit",
            "-m",
            "from a container",
            "-c",
            "CMD [\"cat\", \"/c.txt\"]",
            "tocommit",
            "fromc:1",
        ],
    );
    assert!(cid.trim().starts_with("sha256:"), "{cid}");
    let hist = berth_ok(&d, &["history", "--no-trunc", "fromc:1"]);
    assert!(hist.contains("from a container"), "{hist}");
    let run = ok(&d, d.docker(&["run", "--rm", "fromc:1"]));
    assert_eq!(run, "committed\n");
    let did = ok(&d, d.docker(&["commit", "tocommit", "fromc:docker"]));
    assert!(did.trim().starts_with("sha256:"), "{did}");
    ok(&d, d.docker(&["rm", "tocommit"]));
}
