//! Test fixtures: a real registry (Debian's `docker-registry`) on 127.0.0.1 with no auth,
//! htpasswd (bcrypt) or bearer tokens, each in its own temp dir and stopped on drop; OCI
//! layouts built in Rust or with umoci from busybox-static, pushed with skopeo.

#![allow(dead_code)]

pub mod fake;
#[path = "../../../tests/support/netns.rs"]
pub mod netns;

use std::fs;
use std::io::Write;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub const USER: &str = "testuser";
pub const PASS: &str = "testpass";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Auth {
    None,
    Htpasswd,
    Token,
}

/// A running registry; killed and its storage removed on drop.
pub struct Registry {
    pub dir: tempfile::TempDir,
    pub port: u16,
    pub auth: Auth,
    children: Vec<Child>,
}

impl Drop for Registry {
    fn drop(&mut self) {
        for c in &mut self.children {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("free port")
}

fn wait_http(port: u16, path: &str) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while Instant::now() < deadline {
        if let Ok(mut s) = std::net::TcpStream::connect(("127.0.0.1", port)) {
            let _ = write!(s, "GET {path} HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n");
            let mut buf = [0u8; 16];
            if std::io::Read::read(&mut s, &mut buf)
                .map(|n| n > 0)
                .unwrap_or(false)
            {
                return;
            }
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    panic!("127.0.0.1:{port} did not come up");
}

fn run(cmd: &mut Command) {
    let out = cmd.output().unwrap_or_else(|e| panic!("{cmd:?}: {e}"));
    assert!(
        out.status.success(),
        "{cmd:?} failed: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

impl Registry {
    pub fn start(auth: Auth) -> Self {
        netns::isolate();
        let dir = tempfile::tempdir().expect("tempdir");
        let port = free_port();
        let d = dir.path();
        fs::create_dir_all(d.join("storage")).unwrap();
        let mut cfg = format!(
            "version: 0.1\nlog:\n  level: error\n  accesslog:\n    disabled: true\n\
             storage:\n  filesystem:\n    rootdirectory: {}\n  delete:\n    enabled: true\n\
             http:\n  addr: 127.0.0.1:{port}\n  secret: test-fixture-secret\n",
            d.join("storage").display()
        );
        let mut children = Vec::new();
        match auth {
            Auth::None => {}
            Auth::Htpasswd => {
                let out = Command::new("htpasswd")
                    .args(["-Bbn", USER, PASS])
                    .output()
                    .expect("htpasswd (apache2-utils)");
                fs::write(d.join("htpasswd"), out.stdout).unwrap();
                cfg.push_str(&format!(
                    "auth:\n  htpasswd:\n    realm: basic-realm\n    path: {}\n",
                    d.join("htpasswd").display()
                ));
            }
            Auth::Token => {
                run(Command::new("openssl")
                    .args(["req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout"])
                    .arg(d.join("key.pem"))
                    .arg("-out")
                    .arg(d.join("cert.pem"))
                    .args(["-days", "2", "-subj", "/CN=fixture-token-issuer"]));
                let tport = free_port();
                let script =
                    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/token_server.py");
                let child = Command::new("python3")
                    .arg(script)
                    .arg(tport.to_string())
                    .arg(d.join("key.pem"))
                    .arg(d.join("cert.pem"))
                    .stdout(Stdio::null())
                    .stderr(Stdio::null())
                    .spawn()
                    .expect("python3 token server");
                children.push(child);
                wait_http(tport, "/token?service=x");
                cfg.push_str(&format!(
                    "auth:\n  token:\n    realm: http://127.0.0.1:{tport}/token\n    \
                     service: test-registry\n    issuer: test-issuer\n    rootcertbundle: {}\n",
                    d.join("cert.pem").display()
                ));
            }
        }
        fs::write(d.join("config.yml"), cfg).unwrap();
        let log = fs::File::create(d.join("registry.log")).unwrap();
        let child = Command::new("docker-registry")
            .arg("serve")
            .arg(d.join("config.yml"))
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("docker-registry");
        children.push(child);
        let mut reg = Self {
            dir,
            port,
            auth,
            children,
        };
        wait_http(port, "/v2/");
        // Keep `reg` alive across the wait so a failed start still cleans up.
        reg.children.shrink_to_fit();
        reg
    }

    pub fn host(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    fn creds_args(&self, flag: &str) -> Vec<String> {
        if self.auth == Auth::None {
            vec![]
        } else {
            vec![flag.to_string(), format!("{USER}:{PASS}")]
        }
    }

    /// `skopeo copy` of an OCI layout image into `repo:tag` here.
    pub fn push_layout(&self, layout: &Path, tag_in_layout: &str, dest: &str, extra: &[&str]) {
        let mut cmd = Command::new("skopeo");
        cmd.args(["copy", "-q", "--dest-tls-verify=false"])
            .args(self.creds_args("--dest-creds"))
            .args(extra)
            .arg(format!("oci:{}:{tag_in_layout}", layout.display()))
            .arg(format!("docker://{}/{dest}", self.host()));
        run(&mut cmd);
    }

    /// Seeds `busybox:latest` (OCI manifest, built by umoci from busybox-static) and
    /// `busybox-v2s2:latest` (the same image as a Docker schema2 manifest); returns the
    /// source rootfs they were built from.
    pub fn seed_busybox(&self) -> PathBuf {
        let d = self.dir.path();
        let oci = d.join("seed-oci");
        let bundle = d.join("seed-bundle");
        let layout = format!("{}:latest", oci.display());
        run(Command::new("umoci").args(["init", "--layout"]).arg(&oci));
        run(Command::new("umoci").args(["new", "--image", &layout]));
        run(Command::new("umoci")
            .args(["unpack", "--image", &layout])
            .arg(&bundle));
        let rootfs = bundle.join("rootfs");
        for sub in ["bin", "tmp", "etc"] {
            fs::create_dir_all(rootfs.join(sub)).unwrap();
        }
        fs::copy("/bin/busybox", rootfs.join("bin/busybox")).expect("busybox-static");
        for a in [
            "sh", "ls", "cat", "echo", "env", "nc", "sleep", "true", "false", "id",
        ] {
            std::os::unix::fs::symlink("busybox", rootfs.join("bin").join(a)).unwrap();
        }
        fs::write(rootfs.join("etc/hostname"), "berth\n").unwrap();
        run(Command::new("umoci")
            .args(["repack", "--image", &layout])
            .arg(&bundle));
        run(Command::new("umoci").args([
            "config",
            "--image",
            &layout,
            "--config.cmd",
            "/bin/sh",
            "--config.env",
            "PATH=/bin",
        ]));
        self.push_layout(&oci, "latest", "busybox:latest", &[]);
        self.push_layout(&oci, "latest", "busybox-v2s2:latest", &["--format", "v2s2"]);
        rootfs
    }
}

/// A layer compression.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Compression {
    None,
    Gzip,
    Zstd,
}

fn sha256_hex(b: &[u8]) -> String {
    berth_engine::image::digest::Digest::of(b).hex().to_string()
}

/// Builds OCI layouts by hand (multi-layer, whiteouts, zstd, indexes).
pub struct LayoutBuilder {
    pub dir: PathBuf,
    manifests: Vec<serde_json::Value>,
}

impl LayoutBuilder {
    pub fn new(dir: &Path) -> Self {
        fs::create_dir_all(dir.join("blobs/sha256")).unwrap();
        fs::write(dir.join("oci-layout"), r#"{"imageLayoutVersion":"1.0.0"}"#).unwrap();
        Self {
            dir: dir.to_path_buf(),
            manifests: Vec::new(),
        }
    }

    pub fn blob(&self, data: &[u8]) -> (String, u64) {
        let h = sha256_hex(data);
        fs::write(self.dir.join("blobs/sha256").join(&h), data).unwrap();
        (format!("sha256:{h}"), data.len() as u64)
    }

    /// Adds an image of `layers` (uncompressed tars); returns its manifest digest.
    pub fn image(&mut self, layers: &[Vec<u8>], comp: Compression, tag: Option<&str>) -> String {
        let mut descs = Vec::new();
        let mut diff_ids = Vec::new();
        for l in layers {
            diff_ids.push(format!("sha256:{}", sha256_hex(l)));
            let (data, mt) = match comp {
                Compression::None => (l.clone(), "application/vnd.oci.image.layer.v1.tar"),
                Compression::Gzip => {
                    let mut e =
                        flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
                    e.write_all(l).unwrap();
                    (
                        e.finish().unwrap(),
                        "application/vnd.oci.image.layer.v1.tar+gzip",
                    )
                }
                Compression::Zstd => (
                    zstd::encode_all(&l[..], 3).unwrap(),
                    "application/vnd.oci.image.layer.v1.tar+zstd",
                ),
            };
            let (d, s) = self.blob(&data);
            descs.push(serde_json::json!({"mediaType": mt, "digest": d, "size": s}));
        }
        let config = serde_json::json!({
            "architecture": "amd64", "os": "linux",
            "config": {"Env": ["PATH=/bin"], "Cmd": ["/bin/sh"]},
            "rootfs": {"type": "layers", "diff_ids": diff_ids},
            "history": [],
        });
        let (cd, cs) = self.blob(&serde_json::to_vec(&config).unwrap());
        let manifest = serde_json::json!({
            "schemaVersion": 2,
            "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": cd, "size": cs},
            "layers": descs,
        });
        let (md, ms) = self.blob(&serde_json::to_vec(&manifest).unwrap());
        let mut desc = serde_json::json!({
            "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "digest": md, "size": ms,
            "platform": {"architecture": "amd64", "os": "linux"},
        });
        if let Some(t) = tag {
            desc["annotations"] = serde_json::json!({"org.opencontainers.image.ref.name": t});
        }
        self.manifests.push(desc);
        self.write_index();
        md
    }

    /// Adds an index (under `tag`) over the given manifest descriptors.
    pub fn index(&mut self, entries: Vec<serde_json::Value>, tag: &str) -> String {
        let idx = serde_json::json!({
            "schemaVersion": 2,
            "mediaType": "application/vnd.oci.image.index.v1+json",
            "manifests": entries,
        });
        let (d, s) = self.blob(&serde_json::to_vec(&idx).unwrap());
        self.manifests.push(serde_json::json!({
            "mediaType": "application/vnd.oci.image.index.v1+json",
            "digest": d, "size": s,
            "annotations": {"org.opencontainers.image.ref.name": tag},
        }));
        self.write_index();
        d
    }

    pub fn descriptor(&self, manifest_digest: &str) -> serde_json::Value {
        self.manifests
            .iter()
            .find(|m| m["digest"] == manifest_digest)
            .cloned()
            .expect("manifest")
    }

    fn write_index(&self) {
        let idx = serde_json::json!({"schemaVersion": 2, "manifests": self.manifests});
        fs::write(
            self.dir.join("index.json"),
            serde_json::to_vec(&idx).unwrap(),
        )
        .unwrap();
    }
}

/// A tar builder for test layers.
pub struct TarBuilder(tar::Builder<Vec<u8>>);

impl TarBuilder {
    pub fn new() -> Self {
        Self(tar::Builder::new(Vec::new()))
    }
    fn header(kind: tar::EntryType, mode: u32, size: u64) -> tar::Header {
        let mut h = tar::Header::new_gnu();
        h.set_entry_type(kind);
        h.set_mode(mode);
        h.set_uid(0);
        h.set_gid(0);
        h.set_mtime(1_700_000_000);
        h.set_size(size);
        h
    }
    pub fn dir(mut self, p: &str) -> Self {
        let mut h = Self::header(tar::EntryType::Directory, 0o755, 0);
        self.0.append_data(&mut h, p, std::io::empty()).unwrap();
        self
    }
    pub fn file(mut self, p: &str, data: &[u8], mode: u32) -> Self {
        let mut h = Self::header(tar::EntryType::Regular, mode, data.len() as u64);
        self.0.append_data(&mut h, p, data).unwrap();
        self
    }
    pub fn symlink(mut self, p: &str, target: &str) -> Self {
        let mut h = Self::header(tar::EntryType::Symlink, 0o777, 0);
        self.0.append_link(&mut h, p, target).unwrap();
        self
    }
    pub fn hardlink(mut self, p: &str, target: &str) -> Self {
        let mut h = Self::header(tar::EntryType::Link, 0o644, 0);
        self.0.append_link(&mut h, p, target).unwrap();
        self
    }
    pub fn finish(self) -> Vec<u8> {
        self.0.into_inner().unwrap()
    }
}

/// An engine root in a temp dir.
pub struct Engine {
    pub dir: tempfile::TempDir,
    pub images: berth_engine::image::ImageService,
}

impl Engine {
    pub fn new(reg: Option<&Registry>) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let images = open_images(dir.path(), reg);
        Self { dir, images }
    }
}

/// The image service of an engine directory (as [`Engine::new`] lays it out), e.g. to reopen
/// one after a crash.
pub fn open_images(dir: &Path, reg: Option<&Registry>) -> berth_engine::image::ImageService {
    let state = berth_engine::state::StateStore::open(&dir.join("state.redb")).unwrap();
    let mut opts = berth_engine::image::registry::RegistryOptions {
        ignore_docker_config: true,
        ..Default::default()
    };
    if let Some(r) = reg
        && r.auth != Auth::None
    {
        opts.credentials.insert(
            r.host(),
            berth_engine::image::auth::Credentials {
                username: USER.into(),
                password: PASS.into(),
            },
        );
    }
    berth_engine::image::ImageService::open(&dir.join("root"), state, opts).unwrap()
}

/// (path, mode, uid, gid, content-or-link) of every entry under `root`, sorted.
pub fn tree(root: &Path) -> Vec<(String, u32, u32, u32, Vec<u8>)> {
    use std::os::unix::fs::MetadataExt;
    let mut out = Vec::new();
    fn walk(root: &Path, rel: &Path, out: &mut Vec<(String, u32, u32, u32, Vec<u8>)>) {
        let mut names: Vec<_> = fs::read_dir(root.join(rel))
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        names.sort();
        for n in names {
            let r = rel.join(&n);
            let p = root.join(&r);
            let m = fs::symlink_metadata(&p).unwrap();
            let content = if m.file_type().is_symlink() {
                fs::read_link(&p)
                    .unwrap()
                    .into_os_string()
                    .into_encoded_bytes()
            } else if m.is_file() {
                fs::read(&p).unwrap()
            } else {
                format!("rdev={}", m.rdev()).into_bytes()
            };
            out.push((
                r.to_string_lossy().into_owned(),
                m.mode(),
                m.uid(),
                m.gid(),
                content,
            ));
            if m.is_dir() {
                walk(root, &r, out);
            }
        }
    }
    walk(root, Path::new(""), &mut out);
    out
}
