//! Debian's headless Chromium, driven through chromedriver's WebDriver HTTP protocol (plain
//! JSON over HTTP on 127.0.0.1), for end-to-end tests of the web dashboard. Both run in the
//! calling thread's network namespace; chromedriver and every process it starts are killed on
//! drop, even when the test panics, and the browser profile is removed.
//!
//! [`Relay`] makes a berthd UNIX socket reachable at a loopback TCP address of the test's own
//! namespace, so the browser can load pages from a host whose listener lives elsewhere.

use super::cluster::Cluster;
use serde_json::{Value, json};
use std::io::{Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::os::unix::net::UnixStream;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

/// The key of a web element reference in WebDriver answers (fixed by the W3C spec).
const ELEMENT: &str = "element-6066-11e4-a52e-4f735466cecf";

/// chromedriver and the Chromium binary it should start; a clear failure naming the Debian
/// packages when they are missing (scripts/setup installs them from scripts/packages.txt).
pub fn require() -> (PathBuf, PathBuf) {
    let driver = PathBuf::from("/usr/bin/chromedriver");
    // The real binary, not the /usr/bin/chromium shell wrapper, whose /etc/chromium.d flags
    // the test does not want.
    let chrome = ["/usr/lib/chromium/chromium", "/usr/bin/chromium"]
        .iter()
        .map(PathBuf::from)
        .find(|p| p.exists());
    match (driver.exists(), chrome) {
        (true, Some(chrome)) => (driver, chrome),
        (d, c) => panic!(
            "the dashboard test needs headless Chromium and chromedriver: {} missing; install \
             the Debian packages `chromium` and `chromium-driver` (scripts/setup does, from \
             scripts/packages.txt)",
            match (d, c.is_some()) {
                (false, false) => "/usr/bin/chromedriver and /usr/lib/chromium/chromium are",
                (false, true) => "/usr/bin/chromedriver is",
                _ => "/usr/lib/chromium/chromium is",
            }
        ),
    }
}

/// `target/test-artefacts/<name>/`, created: where screenshots and the driver's log go.
pub fn artefacts(name: &str) -> PathBuf {
    // The test binary is target/<profile>/deps/<test>-<hash>.
    let exe = std::env::current_exe().expect("current_exe");
    let target = exe
        .ancestors()
        .nth(3)
        .map(Path::to_path_buf)
        .unwrap_or_else(|| PathBuf::from("target"));
    let dir = target.join("test-artefacts").join(name);
    std::fs::create_dir_all(&dir).expect("artefact dir");
    dir
}

/// A WebDriver session in headless Chromium.
pub struct Browser {
    driver: Option<Child>,
    profile: tempfile::TempDir,
    base: String,
    session: Option<String>,
    artefacts: PathBuf,
    http: reqwest::Client,
    rt: tokio::runtime::Runtime,
}

fn free_port() -> u16 {
    let l = TcpListener::bind("127.0.0.1:0").expect("bind a free port");
    l.local_addr().expect("local addr").port()
}

impl Browser {
    /// Starts chromedriver and a browser session; screenshots go to `artefacts`.
    pub fn start(artefacts: PathBuf) -> Self {
        let (driver_bin, chrome) = require();
        let profile = tempfile::Builder::new()
            .prefix("berth-chromium-")
            .tempdir()
            .expect("profile dir");
        let port = free_port();
        let log = std::fs::File::create(artefacts.join("chromedriver.log")).expect("log");
        let driver = Command::new(driver_bin)
            .arg(format!("--port={port}"))
            .env("HOME", profile.path())
            .stdout(Stdio::null())
            .stderr(log)
            // Its own process group, so drop can kill chromedriver and the browser together.
            .process_group(0)
            .spawn()
            .expect("spawn chromedriver");
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime");
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(60))
            .no_proxy()
            .build()
            .expect("http client");
        let mut b = Browser {
            driver: Some(driver),
            profile,
            base: format!("http://127.0.0.1:{port}"),
            session: None,
            artefacts,
            http,
            rt,
        };
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let ready = b
                .raw(reqwest::Method::GET, "/status", None)
                .ok()
                .is_some_and(|(_, v)| v["value"]["ready"] == json!(true));
            if ready {
                break;
            }
            assert!(Instant::now() < deadline, "chromedriver did not come up");
            std::thread::sleep(Duration::from_millis(100));
        }
        let caps = json!({"capabilities": {"alwaysMatch": {
            "browserName": "chrome",
            "goog:chromeOptions": {
                "binary": chrome.to_string_lossy(),
                "args": [
                    "--headless=new",
                    "--no-sandbox",
                    "--disable-dev-shm-usage",
                    "--disable-gpu",
                    format!("--user-data-dir={}", b.profile.path().display()),
                    "--window-size=1400,1200",
                    "--no-first-run",
                    "--no-default-browser-check",
                    "--disable-background-networking",
                    "--disable-component-update",
                    "--disable-default-apps",
                    "--disable-sync",
                    "--disable-domain-reliability",
                ],
            },
        }}});
        let v = b.cmd(reqwest::Method::POST, "/session", Some(caps));
        let id = v["sessionId"].as_str().expect("sessionId").to_string();
        b.session = Some(id);
        b
    }

    /// One request to chromedriver: (status, JSON body).
    fn raw(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<Value>,
    ) -> Result<(u16, Value), String> {
        let url = format!("{}{}", self.base, path);
        self.rt.block_on(async {
            let mut req = self.http.request(method, &url);
            if let Some(b) = body {
                req = req.json(&b);
            }
            let r = req.send().await.map_err(|e| e.to_string())?;
            let status = r.status().as_u16();
            let v = r.json::<Value>().await.map_err(|e| e.to_string())?;
            Ok((status, v))
        })
    }

    /// A WebDriver command that must succeed; its `value`.
    fn cmd(&self, method: reqwest::Method, path: &str, body: Option<Value>) -> Value {
        let what = format!("{method} {path}");
        match self.raw(method, path, body) {
            Ok((200, v)) => v["value"].clone(),
            Ok((code, v)) => panic!("WebDriver {what}: {code} {}", v["value"]),
            Err(e) => panic!("WebDriver {what}: {e}"),
        }
    }

    fn session_path(&self, rest: &str) -> String {
        format!("/session/{}{rest}", self.session.as_deref().unwrap_or(""))
    }

    /// Opens `url`.
    pub fn goto(&self, url: &str) {
        self.cmd(
            reqwest::Method::POST,
            &self.session_path("/url"),
            Some(json!({ "url": url })),
        );
    }

    /// Runs `script` (a function body; `return` gives the value) in the page.
    pub fn js(&self, script: &str) -> Value {
        self.cmd(
            reqwest::Method::POST,
            &self.session_path("/execute/sync"),
            Some(json!({ "script": script, "args": [] })),
        )
    }

    /// The element matching a CSS selector, if any.
    pub fn find(&self, css: &str) -> Option<String> {
        let body = json!({ "using": "css selector", "value": css });
        match self.raw(
            reqwest::Method::POST,
            &self.session_path("/element"),
            Some(body),
        ) {
            Ok((200, v)) => v["value"][ELEMENT].as_str().map(str::to_string),
            Ok((404, _)) => None,
            Ok((code, v)) => panic!("find {css}: {code} {}", v["value"]),
            Err(e) => panic!("find {css}: {e}"),
        }
    }

    /// The element matching `css`, waiting up to `secs` for it to appear.
    pub fn element(&self, css: &str, secs: u64) -> String {
        Cluster::wait_for(secs, &format!("element {css}"), || self.find(css))
    }

    /// Clicks an element as a user would (WebDriver scrolls it into view first).
    pub fn click(&self, element: &str) {
        self.cmd(
            reqwest::Method::POST,
            &self.session_path(&format!("/element/{element}/click")),
            Some(json!({})),
        );
    }

    /// Empties an input, then types `text` into it.
    pub fn type_into(&self, element: &str, text: &str) {
        self.cmd(
            reqwest::Method::POST,
            &self.session_path(&format!("/element/{element}/clear")),
            Some(json!({})),
        );
        self.cmd(
            reqwest::Method::POST,
            &self.session_path(&format!("/element/{element}/value")),
            Some(json!({ "text": text })),
        );
    }

    /// An element's rendered text.
    pub fn text(&self, element: &str) -> String {
        self.cmd(
            reqwest::Method::GET,
            &self.session_path(&format!("/element/{element}/text")),
            None,
        )
        .as_str()
        .unwrap_or_default()
        .to_string()
    }

    /// Saves a PNG of the viewport as `<artefacts>/<name>.png`.
    pub fn screenshot(&self, name: &str) -> PathBuf {
        use base64::Engine;
        let v = self.cmd(
            reqwest::Method::GET,
            &self.session_path("/screenshot"),
            None,
        );
        let png = base64::engine::general_purpose::STANDARD
            .decode(v.as_str().expect("base64 screenshot"))
            .expect("screenshot is base64");
        assert!(png.starts_with(b"\x89PNG"), "screenshot is a PNG");
        let path = self.artefacts.join(format!("{name}.png"));
        std::fs::write(&path, png).expect("write screenshot");
        path
    }

    /// Polls `script` until it returns something other than `null`/`false`; that value.
    pub fn wait_js(&self, secs: u64, what: &str, script: &str) -> Value {
        let deadline = Instant::now() + Duration::from_secs(secs);
        loop {
            let v = self.js(script);
            if !(v.is_null() || v == json!(false)) {
                return v;
            }
            if Instant::now() >= deadline {
                let page = self.js("return document.body.innerText");
                panic!("timed out waiting for {what} ({v}); the page shows:\n{page}");
            }
            std::thread::sleep(Duration::from_millis(200));
        }
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        // Ending the session closes the browser cleanly; bounded, since a wedged browser is
        // what a failing test may leave.
        if let Some(id) = self.session.take() {
            let url = format!("{}/session/{id}", self.base);
            let _ = self.rt.block_on(async {
                tokio::time::timeout(Duration::from_secs(10), self.http.delete(&url).send()).await
            });
        }
        if let Some(mut d) = self.driver.take() {
            let _ = Command::new("kill")
                .args(["-KILL", "--", &format!("-{}", d.id())])
                .stderr(Stdio::null())
                .status();
            let _ = d.kill();
            let _ = d.wait();
        }
        // Browser processes that left the group (Chromium's zygote and crash handler may) are
        // found by the profile path only they carry.
        let profile = self.profile.path().to_string_lossy().into_owned();
        for _ in 0..20 {
            if super::kill_mentioning(&profile) == 0 {
                break;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

/// A loopback TCP address whose connections are piped to a UNIX socket.
pub struct Relay {
    addr: String,
    stop: Arc<AtomicBool>,
}

fn pipe(mut from: impl Read, mut to: impl Write, done: impl FnOnce()) {
    let mut buf = [0u8; 16 * 1024];
    loop {
        match from.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => {
                if to.write_all(&buf[..n]).is_err() {
                    break;
                }
            }
        }
    }
    done();
}

impl Relay {
    /// Listens on 127.0.0.1 (an ephemeral port) and relays to `sock`.
    pub fn start(sock: &Path) -> Self {
        let l = TcpListener::bind("127.0.0.1:0").expect("relay bind");
        let addr = l.local_addr().expect("relay addr").to_string();
        let stop = Arc::new(AtomicBool::new(false));
        let (sock, flag) = (sock.to_path_buf(), stop.clone());
        std::thread::spawn(move || {
            for conn in l.incoming() {
                if flag.load(Ordering::SeqCst) {
                    break;
                }
                let Ok(tcp) = conn else { continue };
                // A berthd being restarted has no socket for a moment: the browser sees the
                // connection close and retries, as it would against a real restart.
                let Ok(unix) = UnixStream::connect(&sock) else {
                    continue;
                };
                let (Ok(tcp2), Ok(unix2)) = (tcp.try_clone(), unix.try_clone()) else {
                    continue;
                };
                // Whichever side ends first shuts both down, so the other copy ends too.
                let (t1, u1) = (tcp.try_clone(), unix.try_clone());
                std::thread::spawn(move || {
                    pipe(tcp, unix, move || {
                        if let (Ok(t), Ok(u)) = (t1, u1) {
                            let _ = t.shutdown(Shutdown::Both);
                            let _ = u.shutdown(Shutdown::Both);
                        }
                    })
                });
                std::thread::spawn(move || {
                    pipe(unix2, &tcp2, || {
                        let _ = tcp2.shutdown(Shutdown::Both);
                    })
                });
            }
        });
        Relay { addr, stop }
    }

    /// `127.0.0.1:PORT`.
    pub fn addr(&self) -> &str {
        &self.addr
    }
}

impl Drop for Relay {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        // Wakes the accept loop so it sees the flag and returns.
        let _ = TcpStream::connect(&self.addr);
    }
}
