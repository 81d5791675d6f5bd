//! Typed calls of `/volumes/*`.

use crate::error::Result;
use crate::images::enc;
use crate::transport::{Client, body_bytes, empty};
use bollard_stubs::models::{VolumeCreateRequest, VolumePruneResponse};
use hyper::Method;

impl Client {
    /// `POST /volumes/create`; the volume as the daemon sent it.
    pub async fn volume_create(&self, req: &VolumeCreateRequest) -> Result<serde_json::Value> {
        self.post_json("/volumes/create", Some(req)).await
    }

    /// `GET /volumes` with optional `filters` JSON: `{Volumes, Warnings}` as sent.
    pub async fn volumes(&self, filters: Option<&str>) -> Result<serde_json::Value> {
        let q = match filters {
            Some(f) => format!("/volumes?filters={}", enc(f)),
            None => "/volumes".into(),
        };
        self.get_json(&q).await
    }

    /// `GET /volumes/{name}`.
    pub async fn volume_inspect(&self, name: &str) -> Result<serde_json::Value> {
        self.get_json(&format!("/volumes/{}", enc(name))).await
    }

    /// `DELETE /volumes/{name}`.
    pub async fn volume_remove(&self, name: &str, force: bool) -> Result<()> {
        let path = format!("/volumes/{}?force={force}", enc(name));
        let resp = self.request(Method::DELETE, &path, &[], empty()).await?;
        body_bytes(resp).await.map(|_| ())
    }

    /// `POST /volumes/prune`.
    pub async fn volumes_prune(&self, filters: Option<&str>) -> Result<VolumePruneResponse> {
        let q = match filters {
            Some(f) => format!("/volumes/prune?filters={}", enc(f)),
            None => "/volumes/prune".into(),
        };
        self.post_json::<(), _>(&q, None).await
    }
}
