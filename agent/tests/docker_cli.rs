//! The real docker CLI (28.x) against a real berthd, with a real registry on 127.0.0.1.

mod common;

use common::Berthd;
use common::registry::{Auth, Registry, free_port};

fn lines(s: &str) -> Vec<&str> {
    s.lines().filter(|l| !l.trim().is_empty()).collect()
}

#[test]
fn docker_cli_image_workflow() {
    let reg = Registry::start(Auth::None);
    reg.seed_busybox();
    let mut d = Berthd::start(&[]);
    let r = reg.host();

    let v = d.docker_ok(&[
        "version",
        "--format",
        "{{.Server.APIVersion}} {{.Server.Os}}",
    ]);
    assert_eq!(v.trim(), "1.50 linux");

    let out = d.docker_ok(&["pull", &format!("{r}/busybox")]);
    assert!(out.contains("Pull complete"), "{out}");
    assert!(
        out.contains(&format!("Downloaded newer image for {r}/busybox:latest")),
        "{out}"
    );
    let again = d.docker_ok(&["pull", &format!("{r}/busybox:latest")]);
    assert!(again.contains("Image is up to date"), "{again}");

    let imgs = d.docker_ok(&["images"]);
    let l = lines(&imgs);
    assert!(l[0].starts_with("REPOSITORY"), "{imgs}");
    assert!(
        l.iter()
            .any(|x| x.starts_with(&format!("{r}/busybox")) && x.contains("latest")),
        "{imgs}"
    );

    d.docker_ok(&["tag", &format!("{r}/busybox"), "mine/bb:1"]);
    let fmt = d.docker_ok(&["images", "--format", "{{.Repository}}:{{.Tag}}"]);
    let mut names = lines(&fmt);
    names.sort();
    assert_eq!(
        names,
        vec![format!("{r}/busybox:latest").as_str(), "mine/bb:1"]
    );
    let filtered = d.docker_ok(&["images", "-q", "--filter", "reference=mine/*"]);
    assert_eq!(lines(&filtered).len(), 1, "{filtered}");

    // `docker inspect` without --type falls through containers to images.
    let insp = d.docker_ok(&["inspect", "mine/bb:1"]);
    let v: serde_json::Value = serde_json::from_str(&insp).expect("inspect JSON");
    assert_eq!(v[0]["RepoTags"].as_array().map(Vec::len), Some(2), "{insp}");
    assert_eq!(v[0]["Config"]["Cmd"][0], "/bin/sh");
    let id = d.docker_ok(&["image", "inspect", "-f", "{{.Id}}", "mine/bb:1"]);
    assert!(id.trim().starts_with("sha256:"), "{id}");

    let hist = d.docker_ok(&["history", "mine/bb:1"]);
    assert!(lines(&hist).len() >= 2, "{hist}");

    // `docker save` streams a tar that carries both the docker-archive and OCI layout files.
    let tar = tempfile::tempdir().expect("tempdir");
    let tar = tar.path().join("bb.tar");
    let tar_s = tar.to_string_lossy().to_string();
    d.docker_ok(&["save", "-o", &tar_s, "mine/bb:1"]);
    let listing = std::process::Command::new("tar")
        .args(["-tf", &tar_s])
        .output()
        .expect("tar");
    let listing = String::from_utf8_lossy(&listing.stdout).to_string();
    assert!(listing.lines().any(|l| l == "manifest.json"), "{listing}");
    assert!(listing.lines().any(|l| l == "index.json"), "{listing}");
    let missing = d.docker(&["save", "-o", &tar_s, "no-such-image"]);
    assert!(!missing.status.success());

    let pushed = d.docker_ok(&["tag", "mine/bb:1", &format!("{r}/pushed:v1")]);
    let _ = pushed;
    let out = d.docker_ok(&["push", &format!("{r}/pushed:v1")]);
    assert!(out.contains("v1: digest: sha256:"), "{out}");

    let rmi = d.docker_ok(&["rmi", "mine/bb:1"]);
    assert!(rmi.contains("Untagged: mine/bb:1"), "{rmi}");
    let missing = d.docker(&["rmi", "nope"]);
    assert!(!missing.status.success());
    assert!(String::from_utf8_lossy(&missing.stderr).contains("No such image"));

    // Remove everything, then pull what was pushed back.
    let pruned = d.docker_ok(&["image", "prune", "-a", "-f"]);
    assert!(pruned.contains("deleted: sha256:"), "{pruned}");
    assert_eq!(lines(&d.docker_ok(&["images", "-q"])).len(), 0);
    d.docker_ok(&["pull", &format!("{r}/pushed:v1")]);
    assert_eq!(lines(&d.docker_ok(&["images", "-q"])).len(), 1);

    let ev = d.docker_ok(&[
        "events",
        "--since",
        "0",
        "--until",
        &format!("{}", now() + 1),
        "--filter",
        "type=image",
        "--format",
        "{{.Action}}",
    ]);
    for a in ["pull", "tag", "untag", "push", "delete"] {
        assert!(ev.lines().any(|l| l == a), "{a} missing from events: {ev}");
    }

    let s = d.docker(&["search", "busybox"]);
    assert!(!s.status.success());
    assert!(String::from_utf8_lossy(&s.stderr).contains("not supported"));

    let info = d.docker_ok(&["info", "--format", "{{.Images}} {{.Driver}}"]);
    assert_eq!(info.trim(), "1 overlay2");
    d.docker_ok(&["system", "df"]);

    let missing = d.docker(&["pull", &format!("{r}/does-not-exist")]);
    assert!(!missing.status.success());
    assert_eq!(
        d.stop(),
        Some(0),
        "berthd did not stop cleanly: {}",
        d.log()
    );
    assert!(!d.sock.exists(), "socket left behind");
}

fn now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

#[test]
fn registry_auth_login_and_push() {
    let reg = Registry::start(Auth::Htpasswd);
    let d = Berthd::start(&[]);
    let r = reg.host();
    let bad = d.docker(&["login", "-u", "testuser", "-p", "wrong", &r]);
    assert!(
        !bad.status.success(),
        "login with a wrong password succeeded"
    );
    let out = d.docker_ok(&["login", "-u", "testuser", "-p", "testpass", &r]);
    assert!(out.contains("Login Succeeded"), "{out}");
}

#[test]
fn tls_mutual_auth() {
    let dir = tempfile::tempdir().expect("tempdir");
    let certs = berth_client::certs::generate(dir.path(), &[], &[]).expect("certs");
    let port = free_port();
    let addr = format!("127.0.0.1:{port}");
    let d = Berthd::start_with(
        &[
            "-H".into(),
            format!("tcp://{addr}"),
            "--tlsverify".into(),
            "--tlscacert".into(),
            certs.ca.display().to_string(),
            "--tlscert".into(),
            certs.server_cert.display().to_string(),
            "--tlskey".into(),
            certs.server_key.display().to_string(),
        ],
        false,
    );
    let host = format!("tcp://{addr}");
    let ca = certs.ca.display().to_string();
    let cert = certs.cert.display().to_string();
    let key = certs.key.display().to_string();
    let ok = common::docker_at(
        &host,
        dir.path(),
        &["version", "--format", "{{.Server.Version}}"],
        &[
            "--tlsverify",
            "--tlscacert",
            &ca,
            "--tlscert",
            &cert,
            "--tlskey",
            &key,
        ],
    );
    assert!(
        ok.status.success(),
        "{}\n{}",
        String::from_utf8_lossy(&ok.stderr),
        d.log()
    );
    assert_eq!(
        String::from_utf8_lossy(&ok.stdout).trim(),
        env!("CARGO_PKG_VERSION")
    );
    // Containers over TLS, configured the environment way (DOCKER_TLS_VERIFY, DOCKER_CERT_PATH):
    // import a busybox rootfs, then `run --rm`, whose attach is an HTTP upgrade inside TLS.
    let rootfs = dir.path().join("rootfs");
    std::fs::create_dir_all(rootfs.join("bin")).expect("bin");
    std::fs::copy("/bin/busybox", rootfs.join("bin/busybox")).expect("busybox");
    std::os::unix::fs::symlink("busybox", rootfs.join("bin/sh")).expect("sh");
    let tar = dir.path().join("rootfs.tar");
    let st = std::process::Command::new("tar")
        .arg("-C")
        .arg(&rootfs)
        .arg("-cf")
        .arg(&tar)
        .arg(".")
        .status()
        .expect("tar");
    assert!(st.success());
    let env_docker = |args: &[&str]| {
        std::process::Command::new("docker")
            .args(args)
            .env("DOCKER_HOST", &host)
            .env("DOCKER_TLS_VERIFY", "1")
            .env("DOCKER_CERT_PATH", dir.path())
            .env("DOCKER_CONFIG", dir.path().join("docker-config"))
            .env_remove("DOCKER_CONTEXT")
            .output()
            .expect("docker")
    };
    let imp = env_docker(&["import", &tar.to_string_lossy(), "tlsbox:1"]);
    assert!(
        imp.status.success(),
        "{}",
        String::from_utf8_lossy(&imp.stderr)
    );
    let run = env_docker(&[
        "run",
        "--rm",
        "tlsbox:1",
        "/bin/busybox",
        "echo",
        "over tls",
    ]);
    assert!(
        run.status.success(),
        "{}\n{}",
        String::from_utf8_lossy(&run.stderr),
        d.log()
    );
    assert_eq!(String::from_utf8_lossy(&run.stdout), "over tls\n");

    let refused = common::docker_at(
        &host,
        dir.path(),
        &["version"],
        &["--tlsverify", "--tlscacert", &ca],
    );
    assert!(
        !refused.status.success(),
        "a client without a certificate got in"
    );
    // A certificate from another CA is refused too.
    let other = berth_client::certs::generate(&dir.path().join("other"), &[], &[]).expect("certs");
    let refused = common::docker_at(
        &host,
        dir.path(),
        &["version"],
        &[
            "--tlsverify",
            "--tlscacert",
            &ca,
            "--tlscert",
            &other.cert.display().to_string(),
            "--tlskey",
            &other.key.display().to_string(),
        ],
    );
    assert!(
        !refused.status.success(),
        "a certificate of another CA got in"
    );
}

#[test]
fn plain_tcp_refused_off_loopback() {
    let dir = tempfile::tempdir().expect("tempdir");
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_berthd"))
        .arg("--root")
        .arg(dir.path().join("root"))
        .arg("--exec-root")
        .arg(dir.path().join("run"))
        .args(["-H", &format!("tcp://0.0.0.0:{}", free_port())])
        .output()
        .expect("berthd");
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("without TLS"));
}
