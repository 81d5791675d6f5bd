//! A client of the distribution API (reqwest, rustls): ping, authentication, manifests and
//! blobs, uploads. Pull and push logic built on it lives in `pull` and `push`.

use super::auth::{Challenge, Credentials, TokenCache, TokenResponse};
use super::digest::Digest;
use reqwest::header::{self, HeaderMap, HeaderValue};
use reqwest::{Method, StatusCode};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// Docker schema2 manifest.
pub const MEDIA_DOCKER_MANIFEST: &str = "application/vnd.docker.distribution.manifest.v2+json";
/// Docker manifest list.
pub const MEDIA_DOCKER_LIST: &str = "application/vnd.docker.distribution.manifest.list.v2+json";
/// OCI image manifest.
pub const MEDIA_OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
/// OCI image index.
pub const MEDIA_OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";
/// Docker image config.
pub const MEDIA_DOCKER_CONFIG: &str = "application/vnd.docker.container.image.v1+json";
/// OCI image config.
pub const MEDIA_OCI_CONFIG: &str = "application/vnd.oci.image.config.v1+json";
/// Docker gzip layer.
pub const MEDIA_DOCKER_LAYER: &str = "application/vnd.docker.image.rootfs.diff.tar.gzip";
/// OCI gzip layer.
pub const MEDIA_OCI_LAYER_GZIP: &str = "application/vnd.oci.image.layer.v1.tar+gzip";
/// OCI zstd layer.
pub const MEDIA_OCI_LAYER_ZSTD: &str = "application/vnd.oci.image.layer.v1.tar+zstd";
/// OCI uncompressed layer.
pub const MEDIA_OCI_LAYER: &str = "application/vnd.oci.image.layer.v1.tar";

/// Manifests larger than this are refused (Docker's limit is 4 MiB too).
pub const MAX_MANIFEST_SIZE: usize = 4 << 20;

/// Errors talking to a registry.
#[derive(Debug, thiserror::Error)]
pub enum RegistryError {
    /// The request could not be sent or the response not read.
    #[error("{method} {url}: {source}")]
    Http {
        /// The method.
        method: Method,
        /// The URL.
        url: String,
        /// The cause.
        source: reqwest::Error,
    },
    /// The registry answered with an unexpected status.
    #[error("{method} {url}: {status}: {message}")]
    Status {
        /// The method.
        method: Method,
        /// The URL.
        url: String,
        /// The status.
        status: StatusCode,
        /// The registry's error message, if any.
        message: String,
    },
    /// Credentials are missing or were refused.
    #[error("unauthorized: authentication required for {registry} ({detail})")]
    Unauthorized {
        /// The registry.
        registry: String,
        /// What the registry said.
        detail: String,
    },
    /// The manifest, blob or repository does not exist.
    #[error("not found: {0}")]
    NotFound(String),
    /// A manifest could not be understood.
    #[error("invalid manifest {reference}: {reason}")]
    InvalidManifest {
        /// The manifest asked for.
        reference: String,
        /// Why it is invalid.
        reason: String,
    },
    /// A media type Berth does not handle.
    #[error("unsupported media type {media_type} for {what}")]
    UnsupportedMediaType {
        /// The media type.
        media_type: String,
        /// What carried it.
        what: String,
    },
    /// An index has no entry for the wanted platform.
    #[error("no matching manifest for {platform} in the manifest list entries of {reference}")]
    NoMatchingPlatform {
        /// The platform asked for.
        platform: String,
        /// The index.
        reference: String,
    },
    /// A registry URL or header could not be formed.
    #[error("invalid registry request: {0}")]
    Invalid(String),
}

impl RegistryError {
    /// Whether trying again may help (network errors, 429 and 5xx).
    pub fn is_retryable(&self) -> bool {
        match self {
            Self::Http { source, .. } => {
                source.is_timeout()
                    || source.is_connect()
                    || source.is_body()
                    || source.is_decode()
                    || source.is_request()
            }
            Self::Status { status, .. } => {
                *status == StatusCode::TOO_MANY_REQUESTS || status.is_server_error()
            }
            _ => false,
        }
    }
}

/// Settings shared by every registry client.
#[derive(Debug, Clone, Default)]
pub struct RegistryOptions {
    /// Registries (`host:port`) reached over plain HTTP besides 127.0.0.0/8.
    pub insecure_registries: Vec<String>,
    /// Credentials by registry domain (from `login`), before the Docker config file.
    pub credentials: HashMap<String, Credentials>,
    /// The Docker config file to read `auths` from; `None` uses the default location.
    pub docker_config: Option<std::path::PathBuf>,
    /// Do not read any Docker config file.
    pub ignore_docker_config: bool,
}

impl RegistryOptions {
    fn credentials_for(&self, domain: &str) -> Option<Credentials> {
        if let Some(c) = self.credentials.get(domain) {
            return Some(c.clone());
        }
        if self.ignore_docker_config {
            return None;
        }
        let path = self
            .docker_config
            .clone()
            .or_else(super::auth::docker_config_path)?;
        super::auth::credentials_from_docker_config(&path, domain)
    }
}

/// Whether a registry is reached over plain HTTP: loopback addresses and configured ones.
pub fn is_insecure(domain: &str, insecure: &[String]) -> bool {
    if insecure.iter().any(|i| i == domain) {
        return true;
    }
    let host = if let Some(rest) = domain.strip_prefix('[') {
        rest.split(']').next().unwrap_or("")
    } else {
        domain.rsplit_once(':').map_or(domain, |(h, _)| h)
    };
    host.parse::<std::net::Ipv4Addr>()
        .map(|ip| ip.is_loopback())
        .unwrap_or(false)
}

#[derive(Debug, Default)]
struct AuthState {
    pinged: bool,
    challenge: Option<Challenge>,
    tokens: TokenCache,
}

/// A client of one registry.
#[derive(Clone)]
pub struct RegistryClient {
    http: reqwest::Client,
    domain: String,
    base: String,
    creds: Option<Credentials>,
    auth: Arc<Mutex<AuthState>>,
}

impl std::fmt::Debug for RegistryClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RegistryClient")
            .field("base", &self.base)
            .finish_non_exhaustive()
    }
}

/// A fetched manifest.
#[derive(Debug, Clone)]
pub struct FetchedManifest {
    /// The raw bytes, as digested.
    pub bytes: Vec<u8>,
    /// Their digest.
    pub digest: Digest,
    /// The media type (from the payload, else from `Content-Type`).
    pub media_type: String,
}

impl RegistryClient {
    /// A client for `domain` (`docker.io` goes to `registry-1.docker.io`).
    pub fn new(domain: &str, opts: &RegistryOptions) -> Result<Self, RegistryError> {
        let scheme = if is_insecure(domain, &opts.insecure_registries) {
            "http"
        } else {
            "https"
        };
        let host = if domain == super::reference::DEFAULT_DOMAIN {
            "registry-1.docker.io"
        } else {
            domain
        };
        let http = reqwest::Client::builder()
            .user_agent(concat!("berth/", env!("CARGO_PKG_VERSION")))
            .connect_timeout(Duration::from_secs(15))
            .read_timeout(Duration::from_secs(60))
            // Cross-host redirects (blob storage) must not carry our Authorization header;
            // reqwest strips it on host change.
            .redirect(reqwest::redirect::Policy::limited(10))
            .build()
            .map_err(|e| RegistryError::Invalid(e.to_string()))?;
        Ok(Self {
            http,
            domain: domain.to_string(),
            base: format!("{scheme}://{host}"),
            creds: opts.credentials_for(domain),
            auth: Arc::new(Mutex::new(AuthState::default())),
        })
    }

    /// The registry domain.
    pub fn domain(&self) -> &str {
        &self.domain
    }

    /// `scheme://host` of the registry.
    pub fn base_url(&self) -> &str {
        &self.base
    }

    fn url(&self, path: &str) -> String {
        format!("{}{}", self.base, path)
    }

    /// Resolves an upload `Location`, which may be relative.
    pub fn absolute(&self, location: &str) -> String {
        if location.starts_with("http://") || location.starts_with("https://") {
            location.to_string()
        } else {
            self.url(location)
        }
    }

    /// `GET /v2/`: learns which authentication the registry wants.
    pub async fn ping(&self) -> Result<(), RegistryError> {
        if self.lock_auth().pinged {
            return Ok(());
        }
        let url = self.url("/v2/");
        let resp = self
            .send_retry(|| self.http.get(&url), &Method::GET, &url)
            .await?;
        let status = resp.status();
        let challenge = resp
            .headers()
            .get_all(header::WWW_AUTHENTICATE)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .find_map(Challenge::parse);
        if status == StatusCode::UNAUTHORIZED && challenge.is_none() {
            return Err(RegistryError::Unauthorized {
                registry: self.domain.clone(),
                detail: "401 without a usable WWW-Authenticate challenge".into(),
            });
        }
        if !(status.is_success() || status == StatusCode::UNAUTHORIZED) {
            return Err(status_error(Method::GET, url, resp).await);
        }
        let mut a = self.lock_auth();
        a.pinged = true;
        a.challenge = if status == StatusCode::UNAUTHORIZED {
            challenge
        } else {
            None
        };
        Ok(())
    }

    fn lock_auth(&self) -> std::sync::MutexGuard<'_, AuthState> {
        // A poisoned lock only means another task panicked mid-update of a cache.
        self.auth.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The `Authorization` value for `scopes` (`repository:name:pull,push`), fetching a
    /// bearer token if the registry wants one.
    pub async fn authorization(&self, scopes: &[String]) -> Result<Option<String>, RegistryError> {
        self.ping().await?;
        let challenge = self.lock_auth().challenge.clone();
        match challenge {
            None => Ok(None),
            Some(Challenge::Basic { .. }) => match &self.creds {
                Some(c) => Ok(Some(c.basic_header())),
                None => Err(RegistryError::Unauthorized {
                    registry: self.domain.clone(),
                    detail: "the registry wants basic auth and no credentials are known".into(),
                }),
            },
            Some(Challenge::Bearer { realm, service, .. }) => {
                let key = scopes.join(" ");
                if let Some(t) = self.lock_auth().tokens.get(&key) {
                    return Ok(Some(format!("Bearer {t}")));
                }
                let mut req = self.http.get(&realm);
                let mut q: Vec<(&str, &str)> = Vec::new();
                if let Some(s) = &service {
                    q.push(("service", s));
                }
                for s in scopes {
                    q.push(("scope", s));
                }
                req = req.query(&q);
                if let Some(c) = &self.creds {
                    req = req.header(header::AUTHORIZATION, c.basic_header());
                }
                let resp = req.send().await.map_err(|source| RegistryError::Http {
                    method: Method::GET,
                    url: realm.clone(),
                    source,
                })?;
                if resp.status() == StatusCode::UNAUTHORIZED
                    || resp.status() == StatusCode::FORBIDDEN
                {
                    return Err(RegistryError::Unauthorized {
                        registry: self.domain.clone(),
                        detail: format!("token server {realm} answered {}", resp.status()),
                    });
                }
                if !resp.status().is_success() {
                    return Err(status_error(Method::GET, realm, resp).await);
                }
                let tr: TokenResponse =
                    resp.json().await.map_err(|source| RegistryError::Http {
                        method: Method::GET,
                        url: realm.clone(),
                        source,
                    })?;
                let token =
                    tr.token
                        .or(tr.access_token)
                        .ok_or_else(|| RegistryError::Unauthorized {
                            registry: self.domain.clone(),
                            detail: "token server returned no token".into(),
                        })?;
                self.lock_auth()
                    .tokens
                    .put(&key, token.clone(), tr.expires_in);
                Ok(Some(format!("Bearer {token}")))
            }
        }
    }

    /// Sends a request built by `make` (called again for each retry), retrying network
    /// errors, 429 and 5xx with exponential backoff.
    pub async fn send_retry(
        &self,
        make: impl Fn() -> reqwest::RequestBuilder,
        method: &Method,
        url: &str,
    ) -> Result<reqwest::Response, RegistryError> {
        let mut delay = Duration::from_millis(100);
        let mut attempt = 0;
        loop {
            attempt += 1;
            let res = make().send().await;
            match res {
                Ok(r)
                    if attempt < 4
                        && (r.status() == StatusCode::TOO_MANY_REQUESTS
                            || r.status().is_server_error()) =>
                {
                    tracing::debug!(%url, status = %r.status(), attempt, "retrying");
                }
                Ok(r) => return Ok(r),
                Err(e) if attempt < 4 && (e.is_connect() || e.is_timeout() || e.is_request()) => {
                    tracing::debug!(%url, error = %e, attempt, "retrying");
                }
                Err(source) => {
                    return Err(RegistryError::Http {
                        method: method.clone(),
                        url: url.to_string(),
                        source,
                    });
                }
            }
            tokio::time::sleep(delay).await;
            delay *= 4;
        }
    }

    /// Sends an authorized request for `repo` and maps 401/403/404 to errors.
    pub async fn request(
        &self,
        method: Method,
        url: &str,
        auth: &Option<String>,
        headers: HeaderMap,
        what: &str,
    ) -> Result<reqwest::Response, RegistryError> {
        let resp = self
            .send_retry(
                || {
                    let mut r = self
                        .http
                        .request(method.clone(), url)
                        .headers(headers.clone());
                    if let Some(a) = auth {
                        r = r.header(header::AUTHORIZATION, a);
                    }
                    r
                },
                &method,
                url,
            )
            .await?;
        check_status(method, url, resp, &self.domain, what).await
    }

    /// Fetches a manifest by tag or digest, with every media type Berth reads in `Accept`.
    pub async fn get_manifest(
        &self,
        repo: &str,
        reference: &str,
        auth: &Option<String>,
    ) -> Result<FetchedManifest, RegistryError> {
        let url = self.url(&format!("/v2/{repo}/manifests/{reference}"));
        let mut h = HeaderMap::new();
        h.insert(
            header::ACCEPT,
            HeaderValue::from_static(
                "application/vnd.oci.image.index.v1+json, \
                 application/vnd.docker.distribution.manifest.list.v2+json, \
                 application/vnd.oci.image.manifest.v1+json, \
                 application/vnd.docker.distribution.manifest.v2+json",
            ),
        );
        let what = format!("manifest {repo}:{reference}");
        let resp = self.request(Method::GET, &url, auth, h, &what).await?;
        let ct = resp
            .headers()
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .map(|s| s.split(';').next().unwrap_or("").trim().to_string());
        if resp
            .content_length()
            .is_some_and(|n| n > MAX_MANIFEST_SIZE as u64)
        {
            return Err(RegistryError::InvalidManifest {
                reference: what,
                reason: "larger than 4 MiB".into(),
            });
        }
        let bytes = resp.bytes().await.map_err(|source| RegistryError::Http {
            method: Method::GET,
            url: url.clone(),
            source,
        })?;
        if bytes.len() > MAX_MANIFEST_SIZE {
            return Err(RegistryError::InvalidManifest {
                reference: what,
                reason: "larger than 4 MiB".into(),
            });
        }
        let digest = Digest::of(&bytes);
        if reference.starts_with("sha256:") && digest.as_str() != reference {
            return Err(RegistryError::InvalidManifest {
                reference: what,
                reason: format!("content has digest {digest}"),
            });
        }
        let media_type = detect_manifest_type(&bytes, ct.as_deref()).map_err(|reason| {
            RegistryError::InvalidManifest {
                reference: what.clone(),
                reason,
            }
        })?;
        Ok(FetchedManifest {
            bytes: bytes.to_vec(),
            digest,
            media_type,
        })
    }

    /// Starts a blob download, from `offset` with `Range` when resuming.
    pub async fn get_blob(
        &self,
        repo: &str,
        digest: &Digest,
        offset: u64,
        auth: &Option<String>,
    ) -> Result<reqwest::Response, RegistryError> {
        let url = self.url(&format!("/v2/{repo}/blobs/{digest}"));
        let mut h = HeaderMap::new();
        if offset > 0 {
            let v = HeaderValue::from_str(&format!("bytes={offset}-"))
                .map_err(|e| RegistryError::Invalid(e.to_string()))?;
            h.insert(header::RANGE, v);
        }
        let resp = self
            .send_retry(
                || {
                    let mut r = self.http.get(&url).headers(h.clone());
                    if let Some(a) = auth {
                        r = r.header(header::AUTHORIZATION, a);
                    }
                    r
                },
                &Method::GET,
                &url,
            )
            .await?;
        if resp.status() == StatusCode::RANGE_NOT_SATISFIABLE {
            return Ok(resp);
        }
        check_status(
            Method::GET,
            &url,
            resp,
            &self.domain,
            &format!("blob {digest}"),
        )
        .await
    }

    /// Fetches a small blob (a config) whole.
    pub async fn get_blob_bytes(
        &self,
        repo: &str,
        digest: &Digest,
        auth: &Option<String>,
    ) -> Result<Vec<u8>, RegistryError> {
        let resp = self.get_blob(repo, digest, 0, auth).await?;
        let url = resp.url().to_string();
        let b = resp.bytes().await.map_err(|source| RegistryError::Http {
            method: Method::GET,
            url,
            source,
        })?;
        Ok(b.to_vec())
    }

    /// `HEAD` a blob: its size if the registry has it.
    pub async fn blob_exists(
        &self,
        repo: &str,
        digest: &Digest,
        auth: &Option<String>,
    ) -> Result<Option<u64>, RegistryError> {
        let url = self.url(&format!("/v2/{repo}/blobs/{digest}"));
        let resp = self
            .send_retry(
                || {
                    let mut r = self.http.head(&url);
                    if let Some(a) = auth {
                        r = r.header(header::AUTHORIZATION, a);
                    }
                    r
                },
                &Method::HEAD,
                &url,
            )
            .await?;
        if resp.status() == StatusCode::NOT_FOUND {
            return Ok(None);
        }
        let resp = check_status(Method::HEAD, &url, resp, &self.domain, "blob").await?;
        Ok(Some(resp.content_length().unwrap_or(0)))
    }

    /// The underlying HTTP client, for uploads with streamed bodies.
    pub fn http(&self) -> &reqwest::Client {
        &self.http
    }

    /// `scheme://host/v2/<repo>/...`.
    pub fn repo_url(&self, repo: &str, rest: &str) -> String {
        self.url(&format!("/v2/{repo}/{rest}"))
    }
}

/// The manifest's media type: its `mediaType` field, else `Content-Type`, else its shape
/// (umoci writes manifests without `mediaType`).
pub fn detect_manifest_type(bytes: &[u8], content_type: Option<&str>) -> Result<String, String> {
    let v: serde_json::Value =
        serde_json::from_slice(bytes).map_err(|e| format!("not JSON: {e}"))?;
    let Some(obj) = v.as_object() else {
        return Err("not a JSON object".into());
    };
    if let Some(mt) = obj.get("mediaType").and_then(|m| m.as_str()) {
        return Ok(mt.to_string());
    }
    if let Some(ct) = content_type
        && [
            MEDIA_DOCKER_MANIFEST,
            MEDIA_DOCKER_LIST,
            MEDIA_OCI_MANIFEST,
            MEDIA_OCI_INDEX,
        ]
        .contains(&ct)
    {
        return Ok(ct.to_string());
    }
    if obj.contains_key("manifests") {
        Ok(MEDIA_OCI_INDEX.to_string())
    } else if obj.contains_key("layers") && obj.contains_key("config") {
        Ok(MEDIA_OCI_MANIFEST.to_string())
    } else {
        Err("neither a manifest nor an index".into())
    }
}

async fn status_error(method: Method, url: String, resp: reqwest::Response) -> RegistryError {
    let status = resp.status();
    let body = resp.text().await.unwrap_or_default();
    RegistryError::Status {
        method,
        url,
        status,
        message: registry_message(&body),
    }
}

/// The first `errors[].message` of a distribution error body, else the body itself.
fn registry_message(body: &str) -> String {
    #[derive(serde::Deserialize)]
    struct Errs {
        errors: Vec<E>,
    }
    #[derive(serde::Deserialize)]
    struct E {
        #[serde(default)]
        code: String,
        #[serde(default)]
        message: String,
    }
    match serde_json::from_str::<Errs>(body) {
        Ok(e) if !e.errors.is_empty() => e
            .errors
            .iter()
            .map(|e| format!("{}: {}", e.code, e.message))
            .collect::<Vec<_>>()
            .join("; "),
        _ => body.chars().take(200).collect(),
    }
}

async fn check_status(
    method: Method,
    url: &str,
    resp: reqwest::Response,
    domain: &str,
    what: &str,
) -> Result<reqwest::Response, RegistryError> {
    let status = resp.status();
    if status.is_success() {
        return Ok(resp);
    }
    let body = resp.text().await.unwrap_or_default();
    Err(match status {
        StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN => RegistryError::Unauthorized {
            registry: domain.to_string(),
            detail: format!("{what}: {status}: {}", registry_message(&body)),
        },
        StatusCode::NOT_FOUND => RegistryError::NotFound(format!("{what} on {domain}")),
        _ => RegistryError::Status {
            method,
            url: url.to_string(),
            status,
            message: registry_message(&body),
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_http_only_for_loopback_and_configured() {
        assert!(is_insecure("127.0.0.1:5000", &[]));
        assert!(is_insecure("127.8.9.10", &[]));
        assert!(!is_insecure("10.0.0.1:5000", &[]));
        assert!(!is_insecure("docker.io", &[]));
        assert!(is_insecure("reg.local:5000", &["reg.local:5000".into()]));
    }

    #[test]
    fn detects_manifest_types() {
        let m = br#"{"schemaVersion":2,"config":{},"layers":[]}"#;
        assert_eq!(detect_manifest_type(m, None).unwrap(), MEDIA_OCI_MANIFEST);
        assert_eq!(
            detect_manifest_type(m, Some(MEDIA_DOCKER_MANIFEST)).unwrap(),
            MEDIA_DOCKER_MANIFEST
        );
        assert_eq!(
            detect_manifest_type(br#"{"schemaVersion":2,"manifests":[]}"#, None).unwrap(),
            MEDIA_OCI_INDEX
        );
        assert!(detect_manifest_type(b"{nope", None).is_err());
    }
}
