//! The `berth` CLI's image and system commands against a real berthd and registry.

mod common;

use common::Berthd;
use common::registry::{Auth, Registry, free_port};
use std::process::Output;

fn ok(d: &Berthd, args: &[&str]) -> String {
    let out: Output = d.berth(args);
    assert!(
        out.status.success(),
        "berth {args:?} failed: {}\n{}\n--- berthd log ---\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr),
        d.log()
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
fn berth_image_commands() {
    let reg = Registry::start(Auth::None);
    reg.seed_busybox();
    let d = Berthd::start(&[]);
    let r = reg.host();

    let v = ok(&d, &["version", "--format", "{{.Server.ApiVersion}}"]);
    assert_eq!(v.trim(), "1.50");
    let out = ok(&d, &["pull", &format!("{r}/busybox")]);
    assert!(out.contains("Pull complete"), "{out}");
    assert!(
        out.trim_end().ends_with(&format!("{r}/busybox:latest")),
        "{out}"
    );
    ok(&d, &["tag", &format!("{r}/busybox"), "mine/bb:1"]);
    let table = ok(&d, &["images"]);
    let first = table.lines().next().unwrap_or_default();
    assert!(
        first.starts_with("REPOSITORY") && first.contains("IMAGE ID") && first.ends_with("SIZE"),
        "{table}"
    );
    assert!(
        table
            .lines()
            .any(|l| l.starts_with("mine/bb ") && l.contains(" 1 ")),
        "{table}"
    );
    let names = ok(&d, &["images", "--format", "{{.Repository}}:{{.Tag}}"]);
    assert!(names.lines().any(|l| l == "mine/bb:1"), "{names}");
    let id = ok(&d, &["image", "inspect", "-f", "{{.Id}}", "mine/bb:1"]);
    assert!(id.trim().starts_with("sha256:"), "{id}");
    let hist = ok(&d, &["history", "mine/bb:1"]);
    assert!(hist.starts_with("IMAGE"), "{hist}");
    let out = ok(&d, &["push", &format!("{r}/busybox:latest")]);
    assert!(out.contains("latest: digest: sha256:"), "{out}");
    let rmi = ok(&d, &["rmi", "mine/bb:1"]);
    assert_eq!(rmi.trim(), "Untagged: mine/bb:1");
    let missing = d.berth(&["rmi", "nope"]);
    assert!(!missing.status.success());
    assert!(String::from_utf8_lossy(&missing.stderr).contains("No such image: nope"));
    let pruned = ok(&d, &["image", "prune", "-a", "-f"]);
    assert!(pruned.contains("deleted: sha256:"), "{pruned}");
    assert_eq!(ok(&d, &["images", "-q"]).trim(), "");
    let info = ok(&d, &["info", "--format", "{{.Driver}}"]);
    assert_eq!(info.trim(), "overlay2");
}

#[test]
fn berth_tls_init_and_mutual_tls() {
    let dir = tempfile::tempdir().expect("tempdir");
    let certs = dir.path().join("certs");
    let plain = Berthd::start(&[]);
    ok(
        &plain,
        &[
            "tls",
            "init",
            &certs.display().to_string(),
            "--ip",
            "127.0.0.1",
        ],
    );
    for f in [
        "ca.pem",
        "ca-key.pem",
        "server-cert.pem",
        "server-key.pem",
        "cert.pem",
        "key.pem",
    ] {
        assert!(certs.join(f).exists(), "{f} missing");
    }
    let addr = format!("127.0.0.1:{}", free_port());
    let p = |f: &str| certs.join(f).display().to_string();
    let d = Berthd::start_with(
        &[
            "-H".into(),
            format!("tcp://{addr}"),
            "--tlsverify".into(),
            "--tlscacert".into(),
            p("ca.pem"),
            "--tlscert".into(),
            p("server-cert.pem"),
            "--tlskey".into(),
            p("server-key.pem"),
        ],
        false,
    );
    let bin = std::path::Path::new(env!("CARGO_BIN_EXE_berthd")).with_file_name("berth");
    let out = std::process::Command::new(&bin)
        .args([
            "-H",
            &format!("tcp://{addr}"),
            "--tlsverify",
            "version",
            "--format",
            "{{.Server.Version}}",
        ])
        .env("DOCKER_CERT_PATH", &certs)
        .env_remove("DOCKER_HOST")
        .env_remove("BERTH_HOST")
        .output()
        .expect("berth");
    assert!(
        out.status.success(),
        "{}\n{}",
        String::from_utf8_lossy(&out.stderr),
        d.log()
    );
    let out = std::process::Command::new(&bin)
        .args([
            "-H",
            &format!("tcp://{addr}"),
            "--tlsverify",
            "--tlscacert",
            &p("ca.pem"),
            "version",
        ])
        .env("DOCKER_CERT_PATH", dir.path().join("nothing"))
        .env_remove("DOCKER_HOST")
        .env_remove("BERTH_HOST")
        .output()
        .expect("berth");
    assert!(
        !out.status.success(),
        "berth without a client certificate got in"
    );
}
