//! The HTTP transport: one HTTP/1.1 connection per request over a UNIX socket, TCP or TCP
//! with (mutual) TLS, and API version negotiation through `/_ping`.

use crate::error::{ClientError, Result};
use crate::host::{Host, TlsFiles};
use bytes::Bytes;
use http_body_util::combinators::BoxBody;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::{Method, Request, Response, StatusCode, header};
use hyper_util::rt::TokioIo;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use serde::Serialize;
use serde::de::DeserializeOwned;
use std::sync::{Arc, Mutex};
use tokio::io::{AsyncRead, AsyncWrite};

/// The newest API version this client speaks.
pub const CLIENT_API_VERSION: (u32, u32) = (1, 50);

/// A request body.
pub type RequestBody = BoxBody<Bytes, std::io::Error>;

/// An empty request body.
pub fn empty() -> RequestBody {
    Full::new(Bytes::new())
        .map_err(|never| match never {})
        .boxed()
}

/// A request body of the given bytes.
pub fn full(b: impl Into<Bytes>) -> RequestBody {
    Full::new(b.into()).map_err(|never| match never {}).boxed()
}

/// An Engine API client.
#[derive(Clone)]
pub struct Client {
    host: Host,
    tls: Option<(Arc<rustls::ClientConfig>, ServerName<'static>)>,
    version: Arc<Mutex<Option<String>>>,
}

impl std::fmt::Debug for Client {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Client")
            .field("host", &self.host)
            .field("tls", &self.tls.is_some())
            .finish()
    }
}

fn tls_err(e: impl std::fmt::Display) -> ClientError {
    ClientError::Tls(e.to_string())
}

/// Accepts any server certificate: `--tls` without `--tlsverify`, as docker allows.
#[derive(Debug)]
struct NoVerify(Arc<rustls::crypto::CryptoProvider>);

impl rustls::client::danger::ServerCertVerifier for NoVerify {
    fn verify_server_cert(
        &self,
        _: &CertificateDer<'_>,
        _: &[CertificateDer<'_>],
        _: &ServerName<'_>,
        _: &[u8],
        _: rustls_pki_types::UnixTime,
    ) -> Result<rustls::client::danger::ServerCertVerified, rustls::Error> {
        Ok(rustls::client::danger::ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

fn client_tls(files: &TlsFiles) -> Result<Arc<rustls::ClientConfig>> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = rustls::ClientConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .map_err(tls_err)?;
    let builder = if files.verify {
        let ca = files
            .ca
            .as_ref()
            .ok_or_else(|| ClientError::Tls("--tlsverify needs a CA (ca.pem)".into()))?;
        let mut roots = rustls::RootCertStore::empty();
        for c in CertificateDer::pem_file_iter(ca)
            .map_err(|e| tls_err(format!("{}: {e}", ca.display())))?
        {
            roots
                .add(c.map_err(|e| tls_err(format!("{}: {e}", ca.display())))?)
                .map_err(tls_err)?;
        }
        builder.with_root_certificates(roots)
    } else {
        builder
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(NoVerify(provider)))
    };
    let cfg = match (&files.cert, &files.key) {
        (Some(c), Some(k)) => {
            let certs = CertificateDer::pem_file_iter(c)
                .map_err(|e| tls_err(format!("{}: {e}", c.display())))?
                .collect::<std::result::Result<Vec<_>, _>>()
                .map_err(|e| tls_err(format!("{}: {e}", c.display())))?;
            let key = PrivateKeyDer::from_pem_file(k)
                .map_err(|e| tls_err(format!("{}: {e}", k.display())))?;
            builder.with_client_auth_cert(certs, key).map_err(tls_err)?
        }
        _ => builder.with_no_client_auth(),
    };
    Ok(Arc::new(cfg))
}

trait Io: AsyncRead + AsyncWrite + Send + Unpin + 'static {}
impl<T: AsyncRead + AsyncWrite + Send + Unpin + 'static> Io for T {}

impl Client {
    /// A client of `host`, with TLS when `tls` is given (TCP only).
    pub fn new(host: Host, tls: Option<TlsFiles>) -> Result<Self> {
        let tls = match (&host, tls) {
            (Host::Tcp { host: h, .. }, Some(files)) => {
                let name = ServerName::try_from(h.clone()).map_err(tls_err)?;
                Some((client_tls(&files)?, name))
            }
            _ => None,
        };
        Ok(Self {
            host,
            tls,
            version: Arc::default(),
        })
    }

    /// A client of `-H`/`BERTH_HOST`/`DOCKER_HOST` with docker's TLS settings.
    pub fn from_env(flag: Option<&str>, tls: Option<TlsFiles>) -> Result<Self> {
        Self::new(Host::resolve(flag)?, tls)
    }

    /// The daemon address.
    pub fn host(&self) -> &Host {
        &self.host
    }

    async fn connect(&self) -> Result<Box<dyn Io>> {
        let conn_err = |source| ClientError::Connect {
            host: self.host.to_string(),
            source,
        };
        match &self.host {
            Host::Unix(p) => Ok(Box::new(
                tokio::net::UnixStream::connect(p).await.map_err(conn_err)?,
            )),
            Host::Tcp { host, port } => {
                let s = tokio::net::TcpStream::connect((host.as_str(), *port))
                    .await
                    .map_err(conn_err)?;
                let _ = s.set_nodelay(true);
                match &self.tls {
                    None => Ok(Box::new(s)),
                    Some((cfg, name)) => {
                        let t = tokio_rustls::TlsConnector::from(cfg.clone())
                            .connect(name.clone(), s)
                            .await
                            .map_err(tls_err)?;
                        Ok(Box::new(t))
                    }
                }
            }
        }
    }

    fn host_header(&self) -> String {
        match &self.host {
            // What the docker CLI sends over a socket.
            Host::Unix(_) => "api.moby.localhost".into(),
            Host::Tcp { host, port } => format!("{host}:{port}"),
        }
    }

    /// Sends one request to an exact path (no version prefix added).
    pub async fn send_raw(
        &self,
        method: Method,
        path_and_query: &str,
        headers: &[(&str, String)],
        body: RequestBody,
    ) -> Result<Response<Incoming>> {
        let io = self.connect().await?;
        let (mut tx, conn) = hyper::client::conn::http1::handshake(TokioIo::new(io))
            .await
            .map_err(|e| ClientError::Http(e.to_string()))?;
        tokio::spawn(async move {
            if let Err(e) = conn.with_upgrades().await {
                tracing::debug!(error = %e, "connection ended");
            }
        });
        let mut req = Request::builder()
            .method(method)
            .uri(path_and_query)
            .header(header::HOST, self.host_header())
            .header(
                header::USER_AGENT,
                concat!("Berth-Client/", env!("CARGO_PKG_VERSION")),
            );
        for (k, v) in headers {
            req = req.header(*k, v.as_str());
        }
        let req = req
            .body(body)
            .map_err(|e| ClientError::Http(e.to_string()))?;
        tx.send_request(req)
            .await
            .map_err(|e| ClientError::Http(e.to_string()))
    }

    /// `/_ping`: the daemon's API version (HEAD first, GET if that fails, as docker does).
    pub async fn ping(&self) -> Result<String> {
        let mut resp = self.send_raw(Method::HEAD, "/_ping", &[], empty()).await;
        if resp
            .as_ref()
            .map(|r| !r.status().is_success())
            .unwrap_or(true)
        {
            resp = self.send_raw(Method::GET, "/_ping", &[], empty()).await;
        }
        let resp = resp?;
        if !resp.status().is_success() {
            return Err(error_of(resp).await);
        }
        Ok(resp
            .headers()
            .get("Api-Version")
            .and_then(|v| v.to_str().ok())
            .unwrap_or("1.24")
            .to_string())
    }

    /// The negotiated version: the daemon's, capped at this client's.
    pub async fn api_version(&self) -> Result<String> {
        if let Some(v) = self.version.lock().ok().and_then(|g| g.clone()) {
            return Ok(v);
        }
        let server = self.ping().await?;
        let parse = |s: &str| {
            s.split_once('.')
                .and_then(|(a, b)| Some((a.parse::<u32>().ok()?, b.parse::<u32>().ok()?)))
        };
        let v = match parse(&server) {
            Some(s) if s < CLIENT_API_VERSION => server,
            _ => format!("{}.{}", CLIENT_API_VERSION.0, CLIENT_API_VERSION.1),
        };
        if let Ok(mut g) = self.version.lock() {
            *g = Some(v.clone());
        }
        Ok(v)
    }

    /// Sends a request to `/v<negotiated>/path`; daemon errors become [`ClientError::Daemon`].
    pub async fn request(
        &self,
        method: Method,
        path_and_query: &str,
        headers: &[(&str, String)],
        body: RequestBody,
    ) -> Result<Response<Incoming>> {
        let v = self.api_version().await?;
        let resp = self
            .send_raw(method, &format!("/v{v}{path_and_query}"), headers, body)
            .await?;
        if resp.status().is_client_error() || resp.status().is_server_error() {
            return Err(error_of(resp).await);
        }
        Ok(resp)
    }

    /// GET and decode JSON.
    pub async fn get_json<T: DeserializeOwned>(&self, path_and_query: &str) -> Result<T> {
        let resp = self
            .request(Method::GET, path_and_query, &[], empty())
            .await?;
        decode(resp).await
    }

    /// POST a JSON body (or none) and decode the JSON answer.
    pub async fn post_json<B: Serialize, T: DeserializeOwned>(
        &self,
        path_and_query: &str,
        body: Option<&B>,
    ) -> Result<T> {
        let resp = self.post_body(path_and_query, body).await?;
        decode(resp).await
    }

    /// POST a JSON body to an endpoint that answers with no content.
    pub async fn post_json_no_answer<B: Serialize>(
        &self,
        path_and_query: &str,
        body: &B,
    ) -> Result<()> {
        let resp = self.post_body(path_and_query, Some(body)).await?;
        body_bytes(resp).await.map(|_| ())
    }

    async fn post_body<B: Serialize>(
        &self,
        path_and_query: &str,
        body: Option<&B>,
    ) -> Result<Response<Incoming>> {
        let (headers, b) = match body {
            Some(b) => (
                vec![("Content-Type", "application/json".to_string())],
                full(serde_json::to_vec(b).map_err(|e| ClientError::Decode(e.to_string()))?),
            ),
            None => (vec![], empty()),
        };
        self.request(Method::POST, path_and_query, &headers, b)
            .await
    }
}

/// A connection taken over after `101 Switching Protocols` (attach, exec start): raw bytes
/// both ways.
pub type Hijacked = TokioIo<hyper::upgrade::Upgraded>;

impl Client {
    /// Sends a request with `Upgrade: tcp` and returns the upgraded connection; a daemon error
    /// becomes [`ClientError::Daemon`].
    pub async fn upgrade(
        &self,
        method: Method,
        path_and_query: &str,
        headers: &[(&str, String)],
        body: RequestBody,
    ) -> Result<Hijacked> {
        let mut all: Vec<(&str, String)> = vec![
            ("Upgrade", "tcp".to_string()),
            ("Connection", "Upgrade".to_string()),
        ];
        all.extend(headers.iter().map(|(k, v)| (*k, v.clone())));
        let resp = self.request(method, path_and_query, &all, body).await?;
        if resp.status() != StatusCode::SWITCHING_PROTOCOLS {
            return Err(ClientError::Http(format!(
                "expected 101 Switching Protocols, got {}",
                resp.status()
            )));
        }
        let up = hyper::upgrade::on(resp)
            .await
            .map_err(|e| ClientError::Http(e.to_string()))?;
        Ok(TokioIo::new(up))
    }
}

/// Reads a whole response body.
pub async fn body_bytes(resp: Response<Incoming>) -> Result<Bytes> {
    resp.into_body()
        .collect()
        .await
        .map(|c| c.to_bytes())
        .map_err(|e| ClientError::Http(e.to_string()))
}

async fn decode<T: DeserializeOwned>(resp: Response<Incoming>) -> Result<T> {
    let b = body_bytes(resp).await?;
    serde_json::from_slice(&b).map_err(|e| ClientError::Decode(e.to_string()))
}

async fn error_of(resp: Response<Incoming>) -> ClientError {
    let status = resp.status();
    let body = body_bytes(resp).await.unwrap_or_default();
    let message = serde_json::from_slice::<serde_json::Value>(&body)
        .ok()
        .and_then(|v| {
            v.get("message")
                .and_then(|m| m.as_str())
                .map(str::to_string)
        })
        .unwrap_or_else(|| {
            let t = String::from_utf8_lossy(&body).trim().to_string();
            if t.is_empty() {
                status
                    .canonical_reason()
                    .unwrap_or("unknown error")
                    .to_string()
            } else {
                t
            }
        });
    ClientError::Daemon {
        status: status.as_u16(),
        message,
    }
}

/// Whether a status is a success (for callers using [`Client::send_raw`]).
pub fn is_success(s: StatusCode) -> bool {
    s.is_success()
}
