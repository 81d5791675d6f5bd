//! A scriptable fake registry over raw HTTP/1.1 on 127.0.0.1, for answers a real registry
//! never gives (bad digests, truncated bodies, 5xx, malformed manifests).

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

/// What to answer.
#[derive(Clone)]
pub enum Reply {
    /// Status, content type, body; blob GETs honour `Range`.
    Ok(u16, String, Vec<u8>),
    /// Announce the full length, send only `n` bytes, close.
    Truncate(Vec<u8>, usize),
    /// Announce the full length, send only `n` bytes, then hang (up to a minute) so the
    /// client can be killed mid-download.
    Stall(Vec<u8>, usize),
}

/// A request as seen.
#[derive(Debug, Clone)]
pub struct Seen {
    pub method: String,
    pub path: String,
    pub headers: HashMap<String, String>,
}

type Handler = dyn Fn(&Seen, usize) -> Reply + Send + Sync;

/// The server; stops on drop.
pub struct FakeRegistry {
    pub port: u16,
    pub seen: Arc<Mutex<Vec<Seen>>>,
    stop: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl FakeRegistry {
    /// `handler(request, n)` where `n` counts earlier requests to the same path.
    pub fn start(handler: impl Fn(&Seen, usize) -> Reply + Send + Sync + 'static) -> Self {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = l.local_addr().unwrap().port();
        l.set_nonblocking(true).unwrap();
        let seen = Arc::new(Mutex::new(Vec::<Seen>::new()));
        let stop = Arc::new(AtomicBool::new(false));
        let handler: Arc<Handler> = Arc::new(handler);
        let (s2, st2) = (seen.clone(), stop.clone());
        let thread = std::thread::spawn(move || {
            while !st2.load(Ordering::Relaxed) {
                match l.accept() {
                    Ok((c, _)) => {
                        let (h, s) = (handler.clone(), s2.clone());
                        std::thread::spawn(move || serve(c, h, s));
                    }
                    Err(_) => std::thread::sleep(std::time::Duration::from_millis(5)),
                }
            }
        });
        Self {
            port,
            seen,
            stop,
            thread: Some(thread),
        }
    }

    pub fn host(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }
}

impl Drop for FakeRegistry {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

fn serve(c: TcpStream, h: Arc<Handler>, seen: Arc<Mutex<Vec<Seen>>>) {
    c.set_nonblocking(false).ok();
    let mut r = BufReader::new(c.try_clone().unwrap());
    let mut w = c;
    loop {
        let mut line = String::new();
        if r.read_line(&mut line).unwrap_or(0) == 0 {
            return;
        }
        let mut parts = line.split_whitespace();
        let method = parts.next().unwrap_or("").to_string();
        let path = parts.next().unwrap_or("").to_string();
        let mut headers = HashMap::new();
        loop {
            let mut l = String::new();
            if r.read_line(&mut l).unwrap_or(0) == 0 {
                return;
            }
            let l = l.trim_end();
            if l.is_empty() {
                break;
            }
            if let Some((k, v)) = l.split_once(':') {
                headers.insert(k.trim().to_ascii_lowercase(), v.trim().to_string());
            }
        }
        if let Some(n) = headers
            .get("content-length")
            .and_then(|v| v.parse::<usize>().ok())
        {
            let mut body = vec![0u8; n];
            let _ = r.read_exact(&mut body);
        }
        let req = Seen {
            method,
            path,
            headers,
        };
        let n = {
            let mut s = seen.lock().unwrap();
            let n = s.iter().filter(|x| x.path == req.path).count();
            s.push(req.clone());
            n
        };
        let reply = h(&req, n);
        match reply {
            Reply::Ok(status, ct, body) => {
                let (status, body, range) = match req
                    .headers
                    .get("range")
                    .and_then(|v| v.strip_prefix("bytes="))
                    .and_then(|v| v.trim_end_matches('-').parse::<usize>().ok())
                {
                    Some(off) if status == 200 && off <= body.len() => {
                        let total = body.len();
                        (
                            206,
                            body[off..].to_vec(),
                            format!(
                                "Content-Range: bytes {off}-{}/{total}\r\n",
                                total.max(1) - 1
                            ),
                        )
                    }
                    _ => (status, body, String::new()),
                };
                let head = format!(
                    "HTTP/1.1 {status} X\r\nContent-Type: {ct}\r\nContent-Length: {}\r\n{range}\r\n",
                    body.len()
                );
                if w.write_all(head.as_bytes()).is_err() {
                    return;
                }
                if req.method != "HEAD" && w.write_all(&body).is_err() {
                    return;
                }
            }
            Reply::Stall(ref body, n) | Reply::Truncate(ref body, n) => {
                let head = format!(
                    "HTTP/1.1 200 OK\r\nContent-Type: application/octet-stream\r\nContent-Length: {}\r\n\r\n",
                    body.len()
                );
                let _ = w.write_all(head.as_bytes());
                let _ = w.write_all(&body[..n.min(body.len())]);
                let _ = w.flush();
                if matches!(reply, Reply::Stall(..)) {
                    std::thread::sleep(std::time::Duration::from_secs(60));
                }
                return;
            }
        }
    }
}

/// A one-layer image served by a fake registry: manifest, config and layer bytes.
pub struct FakeImage {
    pub manifest: Vec<u8>,
    pub manifest_digest: String,
    pub config: Vec<u8>,
    pub config_digest: String,
    pub layer: Vec<u8>,
    pub layer_digest: String,
}

impl FakeImage {
    /// `tar` gzipped into one layer, with a matching config and manifest.
    pub fn new(tar: &[u8], layer_media_type: &str) -> Self {
        use berth_engine::image::digest::Digest;
        let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        e.write_all(tar).unwrap();
        let layer = e.finish().unwrap();
        let diff_id = Digest::of(tar).to_string();
        let config = serde_json::to_vec(&serde_json::json!({
            "architecture": "amd64", "os": "linux",
            "rootfs": {"type": "layers", "diff_ids": [diff_id]},
        }))
        .unwrap();
        let layer_digest = Digest::of(&layer).to_string();
        let config_digest = Digest::of(&config).to_string();
        let manifest = serde_json::to_vec(&serde_json::json!({
            "schemaVersion": 2,
            "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "config": {"mediaType": "application/vnd.oci.image.config.v1+json",
                       "digest": config_digest, "size": config.len()},
            "layers": [{"mediaType": layer_media_type, "digest": layer_digest, "size": layer.len()}],
        }))
        .unwrap();
        let manifest_digest = Digest::of(&manifest).to_string();
        Self {
            manifest,
            manifest_digest,
            config,
            config_digest,
            layer,
            layer_digest,
        }
    }

    /// The ordinary answer for `req`; `None` for unknown paths.
    pub fn answer(&self, req: &Seen) -> Option<Reply> {
        let p = req.path.as_str();
        if p == "/v2/" {
            return Some(Reply::Ok(200, "application/json".into(), b"{}".to_vec()));
        }
        if p.ends_with("/manifests/latest")
            || p.ends_with(&format!("/manifests/{}", self.manifest_digest))
        {
            return Some(Reply::Ok(
                200,
                "application/vnd.oci.image.manifest.v1+json".into(),
                self.manifest.clone(),
            ));
        }
        if p.ends_with(&format!("/blobs/{}", self.config_digest)) {
            return Some(Reply::Ok(
                200,
                "application/octet-stream".into(),
                self.config.clone(),
            ));
        }
        if p.ends_with(&format!("/blobs/{}", self.layer_digest)) {
            return Some(Reply::Ok(
                200,
                "application/octet-stream".into(),
                self.layer.clone(),
            ));
        }
        None
    }
}

pub fn not_found() -> Reply {
    Reply::Ok(
        404,
        "application/json".into(),
        br#"{"errors":[{"code":"NOT_FOUND","message":"not here"}]}"#.to_vec(),
    )
}
