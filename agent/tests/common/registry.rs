//! A registry fixture of this crate's own: Debian's `docker-registry` on 127.0.0.1 (no auth or
//! htpasswd), in a temp dir, killed on drop; seeded with busybox from busybox-static via umoci
//! and skopeo. (The engine's fixture does more; this one stays small and stable.)

use std::fs;
use std::io::Write;
use std::net::TcpListener;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub const USER: &str = "testuser";
pub const PASS: &str = "testpass";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Auth {
    None,
    Htpasswd,
}

pub struct Registry {
    pub dir: tempfile::TempDir,
    pub port: u16,
    pub auth: Auth,
    child: Child,
}

impl Drop for Registry {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("free port")
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
        super::netns::isolate();
        let dir = tempfile::tempdir().expect("tempdir");
        let port = free_port();
        let d = dir.path();
        fs::create_dir_all(d.join("storage")).expect("storage dir");
        let mut cfg = format!(
            "version: 0.1\nlog:\n  level: error\n  accesslog:\n    disabled: true\n\
             storage:\n  filesystem:\n    rootdirectory: {}\n  delete:\n    enabled: true\n\
             http:\n  addr: 127.0.0.1:{port}\n  secret: test-fixture-secret\n",
            d.join("storage").display()
        );
        if auth == Auth::Htpasswd {
            let out = Command::new("htpasswd")
                .args(["-Bbn", USER, PASS])
                .output()
                .expect("htpasswd (apache2-utils)");
            fs::write(d.join("htpasswd"), out.stdout).expect("htpasswd file");
            cfg.push_str(&format!(
                "auth:\n  htpasswd:\n    realm: basic-realm\n    path: {}\n",
                d.join("htpasswd").display()
            ));
        }
        fs::write(d.join("config.yml"), cfg).expect("config");
        let child = Command::new("docker-registry")
            .arg("serve")
            .arg(d.join("config.yml"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("docker-registry");
        let reg = Self {
            dir,
            port,
            auth,
            child,
        };
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            if let Ok(mut s) = std::net::TcpStream::connect(("127.0.0.1", port)) {
                let _ = write!(s, "GET /v2/ HTTP/1.0\r\n\r\n");
                let mut b = [0u8; 8];
                if std::io::Read::read(&mut s, &mut b)
                    .map(|n| n > 0)
                    .unwrap_or(false)
                {
                    break;
                }
            }
            assert!(Instant::now() < deadline, "registry did not come up");
            std::thread::sleep(Duration::from_millis(30));
        }
        reg
    }

    pub fn host(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// Pushes `busybox:latest`, a one-layer image of busybox-static with every applet linked
    /// (Cmd /bin/sh).
    pub fn seed_busybox(&self) {
        let d = self.dir.path();
        let oci = d.join("seed-oci");
        let bundle = d.join("seed-bundle");
        let layout = format!("{}:latest", oci.display());
        run(Command::new("umoci").args(["init", "--layout"]).arg(&oci));
        run(Command::new("umoci").args(["new", "--image", &layout]));
        run(Command::new("umoci")
            .args(["unpack", "--rootless", "--image", &layout])
            .arg(&bundle));
        let rootfs = bundle.join("rootfs");
        fs::create_dir_all(rootfs.join("bin")).expect("bin");
        // The directories and account files of Docker Hub's busybox image.
        for d in [
            "etc",
            "root",
            "tmp",
            "var/spool/mail",
            "var/www",
            "home",
            "usr/sbin",
        ] {
            fs::create_dir_all(rootfs.join(d)).expect("dir");
        }
        use std::os::unix::fs::PermissionsExt;
        fs::set_permissions(rootfs.join("tmp"), fs::Permissions::from_mode(0o1777)).expect("tmp");
        fs::write(
            rootfs.join("etc/passwd"),
            "root:x:0:0:root:/root:/bin/sh\ndaemon:x:1:1:daemon:/usr/sbin:/bin/false\n\
             www-data:x:33:33:www-data:/var/www:/bin/false\nnobody:x:65534:65534:nobody:/home:/bin/false\n",
        )
        .expect("passwd");
        fs::write(
            rootfs.join("etc/group"),
            "root:x:0:\ndaemon:x:1:\nwww-data:x:33:\nnogroup:x:65534:\n",
        )
        .expect("group");
        fs::copy("/bin/busybox", rootfs.join("bin/busybox")).expect("busybox-static");
        // Every applet, so tests can run `sleep`, `top`, `wc`... as with the real busybox image.
        let list = Command::new("/bin/busybox")
            .arg("--list")
            .output()
            .expect("busybox --list");
        for a in String::from_utf8_lossy(&list.stdout).lines() {
            if a != "busybox" && !a.is_empty() {
                std::os::unix::fs::symlink("busybox", rootfs.join("bin").join(a)).expect("link");
            }
        }
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
        let mut cmd = Command::new("skopeo");
        cmd.args(["copy", "-q", "--dest-tls-verify=false"]);
        if self.auth == Auth::Htpasswd {
            cmd.args(["--dest-creds", &format!("{USER}:{PASS}")]);
        }
        run(cmd
            .arg(format!("oci:{}", layout_path(&oci)))
            .arg(format!("docker://{}/busybox:latest", self.host())));
    }
}

fn layout_path(oci: &Path) -> String {
    format!("{}:latest", oci.display())
}
