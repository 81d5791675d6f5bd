//! Typed calls of `/images/*`, `/auth`, `/version`, `/info`, `/system/df`.

use crate::error::{ClientError, Result};
use crate::stream::JsonStream;
use crate::transport::{Client, body_bytes, empty};
use base64::Engine as _;
use bollard_stubs::models::{
    AuthConfig, AuthResponse, ImageDeleteResponseItem, ImageHistoryResponseItem,
    ImagePruneResponse, ImageSummary, SystemVersion,
};
use bytes::Bytes;
use hyper::Method;

/// Percent-encodes a query value.
pub fn enc(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// Splits `name[:tag|@digest]` into the name and the tag or digest (a registry port's colon
/// is not a tag's).
pub fn split_reference(s: &str) -> (&str, Option<&str>) {
    if let Some((n, d)) = s.split_once('@') {
        return (n, Some(d));
    }
    match s.rsplit_once(':') {
        Some((n, t)) if !t.contains('/') => (n, Some(t)),
        _ => (s, None),
    }
}

/// `X-Registry-Auth`: base64url of the auth JSON, as docker sends it.
pub fn registry_auth_header(auth: &AuthConfig) -> String {
    let json = serde_json::to_vec(auth).unwrap_or_default();
    base64::engine::general_purpose::URL_SAFE.encode(json)
}

impl Client {
    /// `GET /version`.
    pub async fn version(&self) -> Result<SystemVersion> {
        self.get_json("/version").await
    }

    /// `GET /info` (as JSON: its shape changes between API versions).
    pub async fn info(&self) -> Result<serde_json::Value> {
        self.get_json("/info").await
    }

    /// `GET /images/json`.
    pub async fn images(&self, all: bool, filters: Option<&str>) -> Result<Vec<ImageSummary>> {
        let mut q = format!("/images/json?all={}", u8::from(all));
        if let Some(f) = filters {
            q.push_str(&format!("&filters={}", enc(f)));
        }
        self.get_json(&q).await
    }

    /// `GET /images/{name}/json` (as JSON, printed as is by `inspect`).
    pub async fn image_inspect(&self, name: &str) -> Result<serde_json::Value> {
        self.get_json(&format!("/images/{name}/json")).await
    }

    /// `GET /images/{name}/history`.
    pub async fn image_history(&self, name: &str) -> Result<Vec<ImageHistoryResponseItem>> {
        self.get_json(&format!("/images/{name}/history")).await
    }

    /// `POST /images/{name}/tag`.
    pub async fn image_tag(&self, name: &str, repo: &str, tag: &str) -> Result<()> {
        let q = format!("/images/{name}/tag?repo={}&tag={}", enc(repo), enc(tag));
        self.request(Method::POST, &q, &[], empty()).await?;
        Ok(())
    }

    /// `DELETE /images/{name}`.
    pub async fn image_remove(
        &self,
        name: &str,
        force: bool,
        noprune: bool,
    ) -> Result<Vec<ImageDeleteResponseItem>> {
        let q = format!(
            "/images/{name}?force={}&noprune={}",
            u8::from(force),
            u8::from(noprune)
        );
        let resp = self.request(Method::DELETE, &q, &[], empty()).await?;
        let b = body_bytes(resp).await?;
        serde_json::from_slice(&b).map_err(|e| ClientError::Decode(e.to_string()))
    }

    /// `POST /images/prune`.
    pub async fn images_prune(&self, filters: Option<&str>) -> Result<ImagePruneResponse> {
        let q = match filters {
            Some(f) => format!("/images/prune?filters={}", enc(f)),
            None => "/images/prune".into(),
        };
        self.post_json::<(), _>(&q, None).await
    }

    /// `POST /images/create?fromImage=...&tag=...`: the pull's progress stream.
    pub async fn pull(
        &self,
        image: &str,
        tag: &str,
        platform: Option<&str>,
        auth: Option<&AuthConfig>,
    ) -> Result<JsonStream> {
        let mut q = format!("/images/create?fromImage={}&tag={}", enc(image), enc(tag));
        if let Some(p) = platform {
            q.push_str(&format!("&platform={}", enc(p)));
        }
        let headers: Vec<(&str, String)> = auth
            .map(|a| vec![("X-Registry-Auth", registry_auth_header(a))])
            .unwrap_or_default();
        let resp = self.request(Method::POST, &q, &headers, empty()).await?;
        Ok(JsonStream::new(resp.into_body()))
    }

    /// `POST /images/{name}/push?tag=...`: the push's progress stream.
    pub async fn push(
        &self,
        name: &str,
        tag: &str,
        auth: Option<&AuthConfig>,
    ) -> Result<JsonStream> {
        let q = format!("/images/{name}/push?tag={}", enc(tag));
        // The daemon wants the header even for anonymous pushes.
        let a = auth.cloned().unwrap_or_default();
        let headers = vec![("X-Registry-Auth", registry_auth_header(&a))];
        let resp = self.request(Method::POST, &q, &headers, empty()).await?;
        Ok(JsonStream::new(resp.into_body()))
    }

    /// `GET /images/get?names=...`: a `docker save` tarball.
    pub async fn save(&self, names: &[String]) -> Result<Bytes> {
        let q: Vec<String> = names.iter().map(|n| format!("names={}", enc(n))).collect();
        let resp = self
            .request(
                Method::GET,
                &format!("/images/get?{}", q.join("&")),
                &[],
                empty(),
            )
            .await?;
        body_bytes(resp).await
    }

    /// `POST /images/load`: loads a tarball; returns the progress stream.
    pub async fn load(&self, tar: Bytes, quiet: bool) -> Result<JsonStream> {
        let q = format!("/images/load?quiet={}", u8::from(quiet));
        let headers = vec![("Content-Type", "application/x-tar".to_string())];
        let resp = self
            .request(Method::POST, &q, &headers, crate::transport::full(tar))
            .await?;
        Ok(JsonStream::new(resp.into_body()))
    }

    /// `POST /images/create?fromSrc=-`: imports a rootfs tarball as an image.
    pub async fn import(
        &self,
        tar: Bytes,
        repo: &str,
        tag: &str,
        message: &str,
        changes: &[String],
    ) -> Result<JsonStream> {
        let mut q = format!(
            "/images/create?fromSrc=-&repo={}&tag={}&message={}",
            enc(repo),
            enc(tag),
            enc(message)
        );
        for c in changes {
            q.push_str(&format!("&changes={}", enc(c)));
        }
        let resp = self
            .request(Method::POST, &q, &[], crate::transport::full(tar))
            .await?;
        Ok(JsonStream::new(resp.into_body()))
    }

    /// `POST /auth`: checks credentials against a registry.
    pub async fn auth(&self, auth: &AuthConfig) -> Result<AuthResponse> {
        self.post_json("/auth", Some(auth)).await
    }

    /// `GET /system/df` (as JSON: its shape changes between API versions).
    pub async fn df(&self) -> Result<serde_json::Value> {
        self.get_json("/system/df").await
    }
}
