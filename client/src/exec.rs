//! Typed calls of `/containers/{id}/exec` and `/exec/{id}/*`.

use crate::error::{ClientError, Result};
use crate::transport::{Client, Hijacked, body_bytes, empty, full};
use bollard_stubs::models::{ExecConfig, ExecInspectResponse};
use hyper::Method;

impl Client {
    /// `POST /containers/{id}/exec`: the new exec's id.
    pub async fn exec_create(&self, container: &str, cfg: &ExecConfig) -> Result<String> {
        let v: serde_json::Value = self
            .post_json(&format!("/containers/{container}/exec"), Some(cfg))
            .await?;
        v.get("Id")
            .and_then(|i| i.as_str())
            .map(str::to_string)
            .ok_or_else(|| ClientError::Decode("exec create: no Id in the answer".into()))
    }

    /// `POST /exec/{id}/start` attached: the hijacked connection.
    pub async fn exec_start_attached(&self, id: &str, tty: bool) -> Result<Hijacked> {
        let body = serde_json::json!({ "Detach": false, "Tty": tty }).to_string();
        let headers = vec![("Content-Type", "application/json".to_string())];
        self.upgrade(
            Method::POST,
            &format!("/exec/{id}/start"),
            &headers,
            full(body),
        )
        .await
    }

    /// `POST /exec/{id}/start` detached.
    pub async fn exec_start_detached(&self, id: &str) -> Result<()> {
        let body = serde_json::json!({ "Detach": true, "Tty": false }).to_string();
        let headers = vec![("Content-Type", "application/json".to_string())];
        let resp = self
            .request(
                Method::POST,
                &format!("/exec/{id}/start"),
                &headers,
                full(body),
            )
            .await?;
        body_bytes(resp).await.map(|_| ())
    }

    /// `GET /exec/{id}/json`.
    pub async fn exec_inspect(&self, id: &str) -> Result<ExecInspectResponse> {
        self.get_json(&format!("/exec/{id}/json")).await
    }

    /// `POST /exec/{id}/resize`.
    pub async fn exec_resize(&self, id: &str, height: u16, width: u16) -> Result<()> {
        let resp = self
            .request(
                Method::POST,
                &format!("/exec/{id}/resize?h={height}&w={width}"),
                &[],
                empty(),
            )
            .await?;
        body_bytes(resp).await.map(|_| ())
    }
}
