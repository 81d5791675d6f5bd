//! The Docker Engine API: the router, version prefixes, errors, query parameters, filters and
//! the stream formats shared by the endpoint modules.

pub mod berth_v1;
pub mod build;
pub mod containers;
pub mod dashboard;
pub mod images;
pub mod networks;
pub mod progress;
pub mod secrets;
pub mod stream;
pub mod swarm;
pub mod system;
mod util;
pub mod volumes;

use crate::daemon::AppState;
use axum::Router;
use axum::body::Body;
use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use axum::http::{HeaderValue, Request, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use serde_json::Value;
use std::collections::HashMap;
use std::convert::Infallible;
use tower::ServiceExt;

pub use util::{human_size, parse_rfc3339, unix_to_rfc3339};

/// The oldest API version served.
pub const MIN_API_VERSION: ApiVersion = ApiVersion(1, 24);
/// The newest API version served (what `/_ping` advertises).
pub const API_VERSION: ApiVersion = ApiVersion(1, 50);
/// Berth's version, reported as the engine version.
pub const VERSION: &str = env!("CARGO_PKG_VERSION");

/// An API version (`1.41`), from the path prefix or the newest when unversioned.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct ApiVersion(pub u32, pub u32);

impl ApiVersion {
    /// Parses `1.41`.
    pub fn parse(s: &str) -> Option<Self> {
        let (a, b) = s.split_once('.')?;
        Some(Self(a.parse().ok()?, b.parse().ok()?))
    }
}

impl std::fmt::Display for ApiVersion {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}.{}", self.0, self.1)
    }
}

impl<S: Send + Sync> FromRequestParts<S> for ApiVersion {
    type Rejection = Infallible;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        Ok(parts
            .extensions
            .get::<ApiVersion>()
            .copied()
            .unwrap_or(API_VERSION))
    }
}

/// An API error: Docker's status and `{"message": ...}` body.
#[derive(Debug, Clone)]
pub struct ApiError {
    /// The HTTP status.
    pub status: StatusCode,
    /// The message clients print after "Error response from daemon: ".
    pub message: String,
}

impl ApiError {
    /// An error with this status and message.
    pub fn new(status: StatusCode, message: impl Into<String>) -> Self {
        Self {
            status,
            message: message.into(),
        }
    }

    /// 400 Bad Request.
    pub fn bad_request(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, message)
    }

    /// 404 Not Found.
    pub fn not_found(message: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, message)
    }

    /// 500 Internal Server Error.
    pub fn internal(message: impl Into<String>) -> Self {
        Self::new(StatusCode::INTERNAL_SERVER_ERROR, message)
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        if self.status == StatusCode::NOT_MODIFIED {
            // A 304 has no body.
            return self.status.into_response();
        }
        if self.status.is_server_error() && self.status != StatusCode::NOT_IMPLEMENTED {
            tracing::error!(status = %self.status, "{}", self.message);
        } else {
            tracing::debug!(status = %self.status, "{}", self.message);
        }
        let body = serde_json::json!({ "message": self.message }).to_string();
        (
            self.status,
            [(header::CONTENT_TYPE, "application/json")],
            body,
        )
            .into_response()
    }
}

impl From<berth_engine::Error> for ApiError {
    fn from(e: berth_engine::Error) -> Self {
        use berth_engine::Error as E;
        use berth_engine::image::ImageError as I;
        use berth_engine::image::registry::RegistryError as R;
        let status = match &e {
            E::Reference(_) => StatusCode::BAD_REQUEST,
            E::Image(I::NotFound(_)) => StatusCode::NOT_FOUND,
            E::Image(I::Ambiguous(_)) => StatusCode::BAD_REQUEST,
            E::Image(I::MultipleReferences(_)) => StatusCode::CONFLICT,
            E::State(berth_engine::state::StateError::NoSuchImage(_)) => StatusCode::NOT_FOUND,
            E::Registry(R::NotFound(_)) => StatusCode::NOT_FOUND,
            E::Registry(R::Unauthorized { .. }) => StatusCode::UNAUTHORIZED,
            E::Archive(berth_engine::image::archive::ArchiveError::Invalid(_)) => {
                StatusCode::BAD_REQUEST
            }
            E::Container(c) => {
                use berth_engine::container::ContainerError as C;
                match c {
                    C::NotFound(_) | C::NoSuchPath(_) | C::NoSuchExec(_) => StatusCode::NOT_FOUND,
                    C::NameConflict { .. } | C::Conflict(_) => StatusCode::CONFLICT,
                    C::Invalid(_) => StatusCode::BAD_REQUEST,
                    C::NotModified => StatusCode::NOT_MODIFIED,
                    C::NotImplemented(_) => StatusCode::NOT_IMPLEMENTED,
                    _ => StatusCode::INTERNAL_SERVER_ERROR,
                }
            }
            E::Network(n) => {
                use berth_engine::network::NetworkError as N;
                match n {
                    N::NotFound(_) => StatusCode::NOT_FOUND,
                    N::Conflict(_) => StatusCode::CONFLICT,
                    N::Forbidden(_) => StatusCode::FORBIDDEN,
                    N::Invalid(_) => StatusCode::BAD_REQUEST,
                    N::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
                }
            }
            E::Volume(v) => {
                use berth_engine::volume::VolumeError as V;
                match v {
                    V::NotFound(_) | V::NoPlugin { .. } => StatusCode::NOT_FOUND,
                    V::InUse { .. } | V::Conflict(_) => StatusCode::CONFLICT,
                    V::Invalid(_) => StatusCode::BAD_REQUEST,
                    _ => StatusCode::INTERNAL_SERVER_ERROR,
                }
            }
            _ => StatusCode::INTERNAL_SERVER_ERROR,
        };
        Self::new(status, e.to_string())
    }
}

/// A JSON request body; an empty body is `T::default()`, a bad one a 400 led by `what`.
pub fn json_body<T: serde::de::DeserializeOwned + Default>(
    body: &[u8],
    what: &str,
) -> ApiResult<T> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(T::default());
    }
    serde_json::from_slice(body).map_err(|e| ApiError::bad_request(format!("{what}: {e}")))
}

/// The result of a handler.
pub type ApiResult<T> = Result<T, ApiError>;

/// Query parameters in order, repeated keys kept (`names=a&names=b`).
#[derive(Debug, Clone, Default)]
pub struct Params(pub Vec<(String, String)>);

impl Params {
    /// Parses a query string.
    pub fn parse(q: &str) -> ApiResult<Self> {
        serde_urlencoded::from_str(q)
            .map(Self)
            .map_err(|e| ApiError::bad_request(format!("invalid query: {e}")))
    }

    /// The last value of `key`.
    pub fn get(&self, key: &str) -> Option<&str> {
        self.0
            .iter()
            .rev()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }

    /// Every value of `key`.
    pub fn all(&self, key: &str) -> Vec<&str> {
        self.0
            .iter()
            .filter(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
            .collect()
    }

    /// `key` as Docker parses booleans; `false` when absent.
    pub fn bool(&self, key: &str) -> bool {
        self.get(key).is_some_and(parse_bool)
    }

    /// The `filters` parameter.
    pub fn filters(&self) -> ApiResult<Filters> {
        match self.get("filters") {
            None => Ok(Filters::default()),
            Some(s) => Filters::parse(s),
        }
    }
}

impl<S: Send + Sync> FromRequestParts<S> for Params {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        Params::parse(parts.uri.query().unwrap_or(""))
    }
}

/// Docker's boolean query values: anything but empty, `0`, `no`, `false`, `none` is true.
pub fn parse_bool(s: &str) -> bool {
    let s = s.trim().to_ascii_lowercase();
    !matches!(s.as_str(), "" | "0" | "no" | "false" | "none")
}

/// Filters from `filters=`, in the CLI's map form (`{"label":{"a=b":true}}`) or docker-py's
/// list form (`{"label":["a=b"]}`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Filters(pub HashMap<String, Vec<String>>);

impl Filters {
    /// Parses the JSON of a `filters` parameter.
    pub fn parse(s: &str) -> ApiResult<Self> {
        if s.trim().is_empty() {
            return Ok(Self::default());
        }
        let bad = |e: String| ApiError::bad_request(format!("invalid filter: {e}"));
        let v: Value = serde_json::from_str(s).map_err(|e| bad(e.to_string()))?;
        let Value::Object(map) = v else {
            return Err(bad("expected a JSON object".into()));
        };
        let mut out = HashMap::new();
        for (k, v) in map {
            let vals = match v {
                Value::Object(m) => m
                    .into_iter()
                    .filter(|(_, on)| on.as_bool().unwrap_or(true))
                    .map(|(x, _)| x)
                    .collect(),
                Value::Array(a) => a
                    .into_iter()
                    .map(|x| match x {
                        Value::String(s) => Ok(s),
                        other => Err(bad(format!("filter {k}: unexpected value {other}"))),
                    })
                    .collect::<ApiResult<Vec<_>>>()?,
                Value::String(s) => vec![s],
                other => return Err(bad(format!("filter {k}: unexpected value {other}"))),
            };
            out.insert(k, vals);
        }
        Ok(Self(out))
    }

    /// The values of a filter (empty when absent).
    pub fn get(&self, key: &str) -> &[String] {
        self.0.get(key).map(Vec::as_slice).unwrap_or(&[])
    }

    /// Whether a filter is present.
    pub fn contains(&self, key: &str) -> bool {
        self.0.contains_key(key)
    }

    /// Rejects filters not in `allowed`, as Docker does (`invalid filter 'x'`).
    pub fn allow(&self, allowed: &[&str]) -> ApiResult<()> {
        for k in self.0.keys() {
            if !allowed.contains(&k.as_str()) {
                return Err(ApiError::bad_request(format!("invalid filter '{k}'")));
            }
        }
        Ok(())
    }

    /// Whether `labels` match no `label!` filter (`key` or `key=value`).
    pub fn match_not_labels(&self, labels: &HashMap<String, String>) -> bool {
        self.get("label!").iter().all(|f| match f.split_once('=') {
            Some((k, v)) => labels.get(k).is_none_or(|x| x != v),
            None => !labels.contains_key(f.as_str()),
        })
    }

    /// The `until` filter in seconds since the epoch (the first value), as prune reads it.
    pub fn until(&self) -> ApiResult<Option<i64>> {
        match self.get("until").first() {
            None => Ok(None),
            Some(u) => parse_timestamp(u)
                .map(|t| Some(t.0))
                .ok_or_else(|| ApiError::bad_request(format!("invalid filter 'until={u}'"))),
        }
    }

    /// A boolean filter (`dangling=true`); `None` when absent.
    pub fn bool(&self, key: &str) -> ApiResult<Option<bool>> {
        match self.get(key) {
            [] => Ok(None),
            vals => {
                let mut out = None;
                for v in vals {
                    let b = match v.to_ascii_lowercase().as_str() {
                        "true" | "1" => true,
                        "false" | "0" => false,
                        _ => {
                            return Err(ApiError::bad_request(format!(
                                "invalid filter '{key}={v}'"
                            )));
                        }
                    };
                    out = Some(out.unwrap_or(false) || b);
                }
                Ok(out)
            }
        }
    }

    /// Whether `labels` satisfy every `label` filter (`key` or `key=value`).
    pub fn match_labels(&self, labels: &HashMap<String, String>) -> bool {
        self.get("label").iter().all(|f| match f.split_once('=') {
            Some((k, v)) => labels.get(k).is_some_and(|x| x == v),
            None => labels.contains_key(f.as_str()),
        })
    }
}

/// A time as Docker's daemon reads `since`/`until`: Unix seconds with an optional fraction,
/// RFC 3339, or a Go duration (`10m`, `1h30m`) counted back from now.
pub fn parse_timestamp(s: &str) -> Option<(i64, u32)> {
    if let Some((secs, frac)) = s.split_once('.')
        && let (Ok(secs), true) = (
            secs.parse::<i64>(),
            frac.chars().all(|c| c.is_ascii_digit()),
        )
    {
        let digits: String = frac.chars().chain(std::iter::repeat('0')).take(9).collect();
        return Some((secs, digits.parse().ok()?));
    }
    if let Ok(secs) = s.parse::<i64>() {
        return Some((secs, 0));
    }
    if let Some(t) = parse_rfc3339(s) {
        return Some(t);
    }
    let ago = go_duration(s)?;
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .ok()?;
    let t = now.checked_sub(ago)?;
    Some((t.as_secs() as i64, t.subsec_nanos()))
}

/// A Go duration string (`1h30m`, `90s`, `1.5h`, `300ms`).
fn go_duration(s: &str) -> Option<std::time::Duration> {
    let mut total = 0f64;
    let mut rest = s;
    if rest.is_empty() {
        return None;
    }
    while !rest.is_empty() {
        let n = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .filter(|&n| n > 0)?;
        let v: f64 = rest[..n].parse().ok()?;
        rest = &rest[n..];
        let u = rest
            .find(|c: char| c.is_ascii_digit())
            .unwrap_or(rest.len());
        let scale = match &rest[..u] {
            "h" => 3600.0,
            "m" => 60.0,
            "s" => 1.0,
            "ms" => 1e-3,
            "us" | "µs" => 1e-6,
            "ns" => 1e-9,
            _ => return None,
        };
        total += v * scale;
        rest = &rest[u..];
    }
    Some(std::time::Duration::from_secs_f64(total))
}

/// Which stream a multiplexed frame carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum StdStream {
    /// Standard input (written by clients, rarely framed).
    Stdin = 0,
    /// Standard output.
    Stdout = 1,
    /// Standard error.
    Stderr = 2,
    /// Docker's "system error" stream.
    System = 3,
}

/// One frame of Docker's multiplexed stream: `[stream, 0, 0, 0, len u32 BE]` and the payload.
pub fn frame(stream: StdStream, data: &[u8]) -> Bytes {
    let mut v = Vec::with_capacity(8 + data.len());
    v.push(stream as u8);
    v.extend_from_slice(&[0, 0, 0]);
    v.extend_from_slice(&(data.len() as u32).to_be_bytes());
    v.extend_from_slice(data);
    Bytes::from(v)
}

/// The `stdout` and `stderr` flags of a log request; Docker's 400 when neither is set.
pub fn log_streams(p: &Params) -> ApiResult<(bool, bool)> {
    let (stdout, stderr) = (p.bool("stdout"), p.bool("stderr"));
    if !stdout && !stderr {
        return Err(ApiError::bad_request(
            "Bad parameters: you must choose at least one stream",
        ));
    }
    Ok((stdout, stderr))
}

/// The `tail` of a log request: `None` for all lines (also for values Docker ignores).
pub fn log_tail(p: &Params) -> Option<usize> {
    match p.get("tail").unwrap_or("all") {
        "all" | "" => None,
        n => match n.parse::<i64>() {
            Ok(n) if n >= 0 => Some(n as usize),
            _ => None,
        },
    }
}

/// A log line as sent: as is on a TTY's single stream, else framed for its stream.
pub fn log_chunk(tty: bool, stream: StdStream, line: Vec<u8>) -> Bytes {
    if tty {
        Bytes::from(line)
    } else {
        frame(stream, &line)
    }
}

/// The content type of an attach, exec or log stream: multiplexed from API 1.42 when the
/// container has no TTY, raw otherwise.
pub fn stream_content_type(v: ApiVersion, tty: bool) -> &'static str {
    if !tty && v >= ApiVersion(1, 42) {
        "application/vnd.docker.multiplexed-stream"
    } else {
        "application/vnd.docker.raw-stream"
    }
}

/// A log stream's response: `body` with the content type [`stream_content_type`] names.
pub fn log_response(body: Body, v: ApiVersion, tty: bool) -> Response {
    let mut r = body.into_response();
    r.headers_mut().insert(
        axum::http::header::CONTENT_TYPE,
        axum::http::HeaderValue::from_static(stream_content_type(v, tty)),
    );
    r
}

/// A response body fed by a channel: handlers send chunks while it streams out.
pub fn channel_body(capacity: usize) -> (tokio::sync::mpsc::Sender<Bytes>, Body) {
    let (tx, rx) = tokio::sync::mpsc::channel::<Bytes>(capacity);
    let stream = futures_util::stream::unfold(rx, |mut rx| async move {
        rx.recv().await.map(|b| (Ok::<_, Infallible>(b), rx))
    });
    (tx, Body::from_stream(stream))
}

/// The API router, without version handling (see [`handle`]).
pub fn router(state: AppState) -> Router {
    Router::new()
        .merge(system::routes())
        .merge(images::routes())
        .merge(containers::routes())
        .merge(build::routes())
        .merge(volumes::routes())
        .merge(networks::routes())
        .merge(swarm::routes())
        .merge(secrets::routes())
        .merge(berth_v1::routes())
        .merge(dashboard::routes())
        .fallback(page_not_found)
        .with_state(state)
}

async fn page_not_found() -> ApiError {
    ApiError::not_found("page not found")
}

/// Handles one request: strips and checks the `/v1.xx` prefix, routes, and adds the headers
/// Docker puts on every response.
pub async fn handle(router: Router, mut req: Request<Body>) -> Response {
    let mut resp = match strip_version(&mut req) {
        Ok(()) => match router.oneshot(req).await {
            Ok(r) => r,
            Err(never) => match never {},
        },
        Err(e) => e.into_response(),
    };
    let h = resp.headers_mut();
    h.insert("Api-Version", HeaderValue::from_static("1.50"));
    h.insert("Ostype", HeaderValue::from_static("linux"));
    h.insert("Docker-Experimental", HeaderValue::from_static("false"));
    h.insert(
        header::SERVER,
        HeaderValue::from_static(concat!("Berth/", env!("CARGO_PKG_VERSION"), " (linux)")),
    );
    resp
}

fn strip_version(req: &mut Request<Body>) -> ApiResult<()> {
    let path = req.uri().path();
    let Some(rest) = path.strip_prefix("/v") else {
        return Ok(());
    };
    let (ver, tail) = match rest.find('/') {
        Some(i) => (&rest[..i], &rest[i..]),
        None => (rest, "/"),
    };
    let Some(v) = ApiVersion::parse(ver) else {
        return Ok(());
    };
    if v > API_VERSION {
        return Err(ApiError::bad_request(format!(
            "client version {v} is too new. Maximum supported API version is {API_VERSION}"
        )));
    }
    if v < MIN_API_VERSION {
        return Err(ApiError::bad_request(format!(
            "client version {v} is too old. Minimum supported API version is {MIN_API_VERSION}, \
             please upgrade your client to a newer version"
        )));
    }
    let pq = match req.uri().query() {
        Some(q) => format!("{tail}?{q}"),
        None => tail.to_string(),
    };
    let mut parts = req.uri().clone().into_parts();
    parts.path_and_query = Some(
        pq.parse()
            .map_err(|_| ApiError::bad_request("invalid request path"))?,
    );
    *req.uri_mut() =
        Uri::from_parts(parts).map_err(|_| ApiError::bad_request("invalid request path"))?;
    req.extensions_mut().insert(v);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn filters_both_forms() {
        let a = Filters::parse(r#"{"label":{"a=b":true},"dangling":{"true":true}}"#).unwrap();
        let b = Filters::parse(r#"{"label":["a=b"],"dangling":["true"]}"#).unwrap();
        assert_eq!(a, b);
        assert_eq!(a.bool("dangling").unwrap(), Some(true));
        assert!(Filters::parse("[1]").is_err());
    }

    #[test]
    fn timestamps() {
        assert_eq!(parse_timestamp("12.5"), Some((12, 500_000_000)));
        assert_eq!(parse_timestamp("1700000000"), Some((1_700_000_000, 0)));
        assert_eq!(go_duration("1h30m").map(|d| d.as_secs()), Some(5400));
        assert_eq!(go_duration("300ms").map(|d| d.as_millis()), Some(300));
        assert!(go_duration("10").is_none() && go_duration("5x").is_none());
        let (t, _) = parse_timestamp("10m").unwrap();
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs() as i64;
        assert!((now - 600 - t).abs() <= 2);
    }

    #[test]
    fn booleans() {
        for t in ["1", "true", "True", "yes"] {
            assert!(parse_bool(t));
        }
        for f in ["", "0", "false", "False", "no", "none"] {
            assert!(!parse_bool(f));
        }
    }

    #[test]
    fn frames() {
        assert_eq!(
            &frame(StdStream::Stderr, b"hi")[..],
            b"\x02\0\0\0\0\0\0\x02hi"
        );
    }

    #[test]
    fn versions() {
        let mut r = Request::get("/v1.41/images/json?all=1")
            .body(Body::empty())
            .unwrap();
        strip_version(&mut r).unwrap();
        assert_eq!(r.uri().path(), "/images/json");
        assert_eq!(r.uri().query(), Some("all=1"));
        let mut r = Request::get("/v1.99/_ping").body(Body::empty()).unwrap();
        assert_eq!(strip_version(&mut r).unwrap_err().status, 400);
    }
}
