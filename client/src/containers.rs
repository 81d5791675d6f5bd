//! Typed calls of `/containers/*`, `/events` and `/system/prune`-style endpoints, and the two
//! streaming shapes they answer with: raw bytes (logs, export, archives) and JSON lines
//! (stats, events).

use crate::error::{ClientError, Result};
use crate::images::enc;
use crate::transport::{Client, Hijacked, RequestBody, body_bytes, empty, full};
use bollard_stubs::models::{
    ContainerCreateBody, ContainerCreateResponse, ContainerTopResponse, ContainerUpdateBody,
};
use bytes::{Bytes, BytesMut};
use http_body_util::BodyExt;
use hyper::Method;
use hyper::body::Incoming;
use serde::de::DeserializeOwned;

/// A response body read chunk by chunk.
#[derive(Debug)]
pub struct ByteStream {
    body: Incoming,
}

impl ByteStream {
    /// Wraps a response body.
    pub fn new(body: Incoming) -> Self {
        Self { body }
    }

    /// The next chunk; `None` at the end.
    pub async fn next(&mut self) -> Result<Option<Bytes>> {
        loop {
            match self.body.frame().await {
                Some(Ok(f)) => {
                    if let Ok(data) = f.into_data() {
                        if data.is_empty() {
                            continue;
                        }
                        return Ok(Some(data));
                    }
                }
                Some(Err(e)) => return Err(ClientError::Http(e.to_string())),
                None => return Ok(None),
            }
        }
    }

    /// The whole rest of the body.
    pub async fn collect(mut self) -> Result<Bytes> {
        let mut out = BytesMut::new();
        while let Some(b) = self.next().await? {
            out.extend_from_slice(&b);
        }
        Ok(out.freeze())
    }
}

/// A body of JSON documents one after another (stats, events), decoded one at a time.
#[derive(Debug)]
pub struct JsonLines {
    bytes: ByteStream,
    buf: BytesMut,
    done: bool,
}

impl JsonLines {
    /// Wraps a response body.
    pub fn new(body: Incoming) -> Self {
        Self {
            bytes: ByteStream::new(body),
            buf: BytesMut::new(),
            done: false,
        }
    }

    /// The next document; `None` at the end of the stream.
    pub async fn next<T: DeserializeOwned>(&mut self) -> Result<Option<T>> {
        loop {
            while let Some(i) = self.buf.iter().position(|&b| b == b'\n') {
                let line = self.buf.split_to(i + 1);
                let line = line.trim_ascii();
                if line.is_empty() {
                    continue;
                }
                return serde_json::from_slice(line)
                    .map(Some)
                    .map_err(|e| ClientError::Decode(e.to_string()));
            }
            if self.done {
                let rest = self.buf.split();
                let rest = rest.trim_ascii();
                if rest.is_empty() {
                    return Ok(None);
                }
                return serde_json::from_slice(rest)
                    .map(Some)
                    .map_err(|e| ClientError::Decode(e.to_string()));
            }
            match self.bytes.next().await? {
                Some(b) => self.buf.extend_from_slice(&b),
                None => self.done = true,
            }
        }
    }
}

/// A `POST /containers/{id}/wait` whose headers came back: the daemon is now watching the
/// container, so starting it cannot race past the wait.
#[derive(Debug)]
pub struct WaitHandle {
    body: Incoming,
}

impl WaitHandle {
    /// The exit code, once the wait condition is met.
    pub async fn status(self) -> Result<i64> {
        let b = self
            .body
            .collect()
            .await
            .map_err(|e| ClientError::Http(e.to_string()))?
            .to_bytes();
        let v: serde_json::Value =
            serde_json::from_slice(&b).map_err(|e| ClientError::Decode(e.to_string()))?;
        if let Some(m) = v
            .get("Error")
            .and_then(|e| e.get("Message"))
            .and_then(|m| m.as_str())
            .filter(|m| !m.is_empty())
        {
            return Err(ClientError::Stream(m.to_string()));
        }
        Ok(v.get("StatusCode").and_then(|c| c.as_i64()).unwrap_or(0))
    }
}

/// `logs` query options.
#[derive(Debug, Default, Clone)]
pub struct LogsOptions {
    /// Keep streaming.
    pub follow: bool,
    /// Prefix lines with RFC 3339 timestamps.
    pub timestamps: bool,
    /// Lines from the end (`all` or a number).
    pub tail: Option<String>,
    /// Only since this time (unix seconds, possibly fractional).
    pub since: Option<String>,
    /// Only until this time.
    pub until: Option<String>,
}

/// `attach` query options.
#[derive(Debug, Default, Clone)]
pub struct AttachOptions {
    /// Attach stdin.
    pub stdin: bool,
    /// Attach stdout.
    pub stdout: bool,
    /// Attach stderr.
    pub stderr: bool,
    /// Replay the log first.
    pub logs: bool,
    /// Override the detach key sequence.
    pub detach_keys: Option<String>,
}

async fn no_content(resp: hyper::Response<Incoming>) -> Result<()> {
    body_bytes(resp).await.map(|_| ())
}

impl Client {
    /// `POST /containers/create`.
    pub async fn container_create(
        &self,
        name: Option<&str>,
        platform: Option<&str>,
        body: &ContainerCreateBody,
    ) -> Result<ContainerCreateResponse> {
        let mut q = Vec::new();
        if let Some(n) = name {
            q.push(format!("name={}", enc(n)));
        }
        if let Some(p) = platform {
            q.push(format!("platform={}", enc(p)));
        }
        let path = if q.is_empty() {
            "/containers/create".to_string()
        } else {
            format!("/containers/create?{}", q.join("&"))
        };
        self.post_json(&path, Some(body)).await
    }

    /// `GET /containers/{id}/json` (as JSON, printed as is by `inspect`).
    pub async fn container_inspect(&self, id: &str, size: bool) -> Result<serde_json::Value> {
        let q = if size { "?size=1" } else { "" };
        self.get_json(&format!("/containers/{id}/json{q}")).await
    }

    /// `GET /containers/json` (as JSON: fields vary between API versions).
    pub async fn containers(
        &self,
        all: bool,
        limit: Option<i64>,
        size: bool,
        filters: Option<&str>,
    ) -> Result<Vec<serde_json::Value>> {
        let mut q = format!("/containers/json?all={}", u8::from(all));
        if let Some(n) = limit {
            q.push_str(&format!("&limit={n}"));
        }
        if size {
            q.push_str("&size=1");
        }
        if let Some(f) = filters {
            q.push_str(&format!("&filters={}", enc(f)));
        }
        self.get_json(&q).await
    }

    async fn post_empty(&self, path_and_query: &str) -> Result<()> {
        let resp = self
            .request(Method::POST, path_and_query, &[], empty())
            .await?;
        no_content(resp).await
    }

    /// `POST /containers/{id}/start`.
    pub async fn container_start(&self, id: &str) -> Result<()> {
        self.post_empty(&format!("/containers/{id}/start")).await
    }

    /// `POST /containers/{id}/stop`.
    pub async fn container_stop(
        &self,
        id: &str,
        timeout: Option<i64>,
        signal: Option<&str>,
    ) -> Result<()> {
        self.post_empty(&format!(
            "/containers/{id}/stop{}",
            stop_query(timeout, signal)
        ))
        .await
    }

    /// `POST /containers/{id}/restart`.
    pub async fn container_restart(
        &self,
        id: &str,
        timeout: Option<i64>,
        signal: Option<&str>,
    ) -> Result<()> {
        let q = stop_query(timeout, signal);
        self.post_empty(&format!("/containers/{id}/restart{q}"))
            .await
    }

    /// `POST /containers/{id}/kill`.
    pub async fn container_kill(&self, id: &str, signal: Option<&str>) -> Result<()> {
        let q = signal
            .map(|s| format!("?signal={}", enc(s)))
            .unwrap_or_default();
        self.post_empty(&format!("/containers/{id}/kill{q}")).await
    }

    /// `DELETE /containers/{id}`.
    pub async fn container_remove(&self, id: &str, force: bool, volumes: bool) -> Result<()> {
        let q = format!(
            "/containers/{id}?force={}&v={}",
            u8::from(force),
            u8::from(volumes)
        );
        let resp = self.request(Method::DELETE, &q, &[], empty()).await?;
        no_content(resp).await
    }

    /// `POST /containers/{id}/pause`.
    pub async fn container_pause(&self, id: &str) -> Result<()> {
        self.post_empty(&format!("/containers/{id}/pause")).await
    }

    /// `POST /containers/{id}/unpause`.
    pub async fn container_unpause(&self, id: &str) -> Result<()> {
        self.post_empty(&format!("/containers/{id}/unpause")).await
    }

    /// `POST /containers/{id}/rename`.
    pub async fn container_rename(&self, id: &str, name: &str) -> Result<()> {
        self.post_empty(&format!("/containers/{id}/rename?name={}", enc(name)))
            .await
    }

    /// `POST /containers/{id}/resize` (TTY size).
    pub async fn container_resize(&self, id: &str, height: u16, width: u16) -> Result<()> {
        self.post_empty(&format!("/containers/{id}/resize?h={height}&w={width}"))
            .await
    }

    /// `POST /containers/{id}/update`; returns the daemon's warnings.
    pub async fn container_update(
        &self,
        id: &str,
        body: &ContainerUpdateBody,
    ) -> Result<Vec<String>> {
        let v: serde_json::Value = self
            .post_json(&format!("/containers/{id}/update"), Some(body))
            .await?;
        Ok(v.get("Warnings")
            .and_then(|w| w.as_array())
            .map(|a| {
                a.iter()
                    .filter_map(|x| x.as_str().map(str::to_string))
                    .collect()
            })
            .unwrap_or_default())
    }

    /// `POST /containers/{id}/wait?condition=...`, returned as soon as the daemon answers
    /// the headers.
    pub async fn container_wait(&self, id: &str, condition: &str) -> Result<WaitHandle> {
        let resp = self
            .request(
                Method::POST,
                &format!("/containers/{id}/wait?condition={}", enc(condition)),
                &[],
                empty(),
            )
            .await?;
        Ok(WaitHandle {
            body: resp.into_body(),
        })
    }

    /// `POST /containers/{id}/attach?stream=1`: the hijacked connection.
    pub async fn container_attach(&self, id: &str, o: &AttachOptions) -> Result<Hijacked> {
        let mut q = format!(
            "/containers/{id}/attach?stream=1&stdin={}&stdout={}&stderr={}",
            u8::from(o.stdin),
            u8::from(o.stdout),
            u8::from(o.stderr)
        );
        if o.logs {
            q.push_str("&logs=1");
        }
        if let Some(k) = &o.detach_keys {
            q.push_str(&format!("&detachKeys={}", enc(k)));
        }
        self.upgrade(Method::POST, &q, &[], empty()).await
    }

    /// `GET /containers/{id}/logs`: the raw (framed unless TTY) log stream.
    pub async fn container_logs(&self, id: &str, o: &LogsOptions) -> Result<ByteStream> {
        let mut q = format!(
            "/containers/{id}/logs?stdout=1&stderr=1&follow={}&timestamps={}",
            u8::from(o.follow),
            u8::from(o.timestamps)
        );
        for (k, v) in [("tail", &o.tail), ("since", &o.since), ("until", &o.until)] {
            if let Some(v) = v {
                q.push_str(&format!("&{k}={}", enc(v)));
            }
        }
        let resp = self.request(Method::GET, &q, &[], empty()).await?;
        Ok(ByteStream::new(resp.into_body()))
    }

    /// `GET /containers/{id}/top`.
    pub async fn container_top(
        &self,
        id: &str,
        ps_args: Option<&str>,
    ) -> Result<ContainerTopResponse> {
        let q = ps_args
            .map(|a| format!("?ps_args={}", enc(a)))
            .unwrap_or_default();
        self.get_json(&format!("/containers/{id}/top{q}")).await
    }

    /// `GET /containers/{id}/stats`: one sample per second while `stream`, else one.
    pub async fn container_stats(&self, id: &str, stream: bool) -> Result<JsonLines> {
        let q = format!("/containers/{id}/stats?stream={}", u8::from(stream));
        let resp = self.request(Method::GET, &q, &[], empty()).await?;
        Ok(JsonLines::new(resp.into_body()))
    }

    /// `GET /containers/{id}/export`: the root filesystem as a tar stream.
    pub async fn container_export(&self, id: &str) -> Result<ByteStream> {
        let resp = self
            .request(
                Method::GET,
                &format!("/containers/{id}/export"),
                &[],
                empty(),
            )
            .await?;
        Ok(ByteStream::new(resp.into_body()))
    }

    /// `HEAD /containers/{id}/archive?path=...`: the decoded `X-Docker-Container-Path-Stat`.
    pub async fn archive_stat(&self, id: &str, path: &str) -> Result<serde_json::Value> {
        let resp = self
            .request(
                Method::HEAD,
                &format!("/containers/{id}/archive?path={}", enc(path)),
                &[],
                empty(),
            )
            .await?;
        Ok(path_stat(resp.headers()))
    }

    /// `GET /containers/{id}/archive?path=...`: the path's stat and a tar stream of it.
    pub async fn archive_get(
        &self,
        id: &str,
        path: &str,
    ) -> Result<(serde_json::Value, ByteStream)> {
        let resp = self
            .request(
                Method::GET,
                &format!("/containers/{id}/archive?path={}", enc(path)),
                &[],
                empty(),
            )
            .await?;
        let stat = path_stat(resp.headers());
        Ok((stat, ByteStream::new(resp.into_body())))
    }

    /// `PUT /containers/{id}/archive?path=...`: extracts a tar into a directory.
    pub async fn archive_put(
        &self,
        id: &str,
        path: &str,
        tar: RequestBody,
        copy_uid_gid: bool,
    ) -> Result<()> {
        let q = format!(
            "/containers/{id}/archive?path={}&noOverwriteDirNonDir=true&copyUIDGID={}",
            enc(path),
            copy_uid_gid
        );
        let headers = vec![("Content-Type", "application/x-tar".to_string())];
        let resp = self.request(Method::PUT, &q, &headers, tar).await?;
        no_content(resp).await
    }

    /// `POST /containers/prune`.
    pub async fn containers_prune(&self, filters: Option<&str>) -> Result<serde_json::Value> {
        let q = match filters {
            Some(f) => format!("/containers/prune?filters={}", enc(f)),
            None => "/containers/prune".into(),
        };
        self.post_json::<(), _>(&q, None).await
    }

    /// `POST /{kind}/prune` for networks, volumes and the build cache (`system prune`).
    pub async fn prune(&self, kind: &str, filters: Option<&str>) -> Result<serde_json::Value> {
        let q = match filters {
            Some(f) => format!("/{kind}/prune?filters={}", enc(f)),
            None => format!("/{kind}/prune"),
        };
        self.post_json::<(), _>(&q, None).await
    }

    /// `GET /events`: the event stream.
    pub async fn events(
        &self,
        since: Option<&str>,
        until: Option<&str>,
        filters: Option<&str>,
    ) -> Result<JsonLines> {
        let mut q = Vec::new();
        for (k, v) in [("since", since), ("until", until), ("filters", filters)] {
            if let Some(v) = v {
                q.push(format!("{k}={}", enc(v)));
            }
        }
        let path = if q.is_empty() {
            "/events".to_string()
        } else {
            format!("/events?{}", q.join("&"))
        };
        let resp = self.request(Method::GET, &path, &[], empty()).await?;
        Ok(JsonLines::new(resp.into_body()))
    }

    /// Sends raw bytes as a request body (helper for callers building tarballs in memory).
    pub fn body_of(b: impl Into<Bytes>) -> RequestBody {
        full(b)
    }
}

fn stop_query(timeout: Option<i64>, signal: Option<&str>) -> String {
    let mut q = Vec::new();
    if let Some(t) = timeout {
        q.push(format!("t={t}"));
    }
    if let Some(s) = signal {
        q.push(format!("signal={}", enc(s)));
    }
    if q.is_empty() {
        String::new()
    } else {
        format!("?{}", q.join("&"))
    }
}

fn path_stat(h: &hyper::HeaderMap) -> serde_json::Value {
    use base64::Engine as _;
    h.get("X-Docker-Container-Path-Stat")
        .and_then(|v| v.to_str().ok())
        .and_then(|s| base64::engine::general_purpose::STANDARD.decode(s).ok())
        .and_then(|b| serde_json::from_slice(&b).ok())
        .unwrap_or(serde_json::Value::Null)
}
