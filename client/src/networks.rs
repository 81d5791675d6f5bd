//! Typed calls of `/networks/*`.

use crate::error::Result;
use crate::images::enc;
use crate::transport::{Client, body_bytes, empty};
use bollard_stubs::models::{
    NetworkConnectRequest, NetworkCreateRequest, NetworkCreateResponse, NetworkDisconnectRequest,
    NetworkPruneResponse,
};
use hyper::Method;

impl Client {
    /// `POST /networks/create`.
    pub async fn network_create(
        &self,
        req: &NetworkCreateRequest,
    ) -> Result<NetworkCreateResponse> {
        self.post_json("/networks/create", Some(req)).await
    }

    /// `GET /networks` with optional `filters` JSON; each network as the daemon sent it.
    pub async fn networks(&self, filters: Option<&str>) -> Result<Vec<serde_json::Value>> {
        let q = match filters {
            Some(f) => format!("/networks?filters={}", enc(f)),
            None => "/networks".into(),
        };
        self.get_json(&q).await
    }

    /// `GET /networks/{id}`.
    pub async fn network_inspect(&self, id: &str) -> Result<serde_json::Value> {
        self.get_json(&format!("/networks/{}", enc(id))).await
    }

    /// `DELETE /networks/{id}`.
    pub async fn network_remove(&self, id: &str) -> Result<()> {
        let resp = self
            .request(
                Method::DELETE,
                &format!("/networks/{}", enc(id)),
                &[],
                empty(),
            )
            .await?;
        body_bytes(resp).await.map(|_| ())
    }

    /// `POST /networks/{id}/connect`.
    pub async fn network_connect(&self, id: &str, req: &NetworkConnectRequest) -> Result<()> {
        let path = format!("/networks/{}/connect", enc(id));
        self.post_json_no_answer(&path, req).await
    }

    /// `POST /networks/{id}/disconnect`.
    pub async fn network_disconnect(&self, id: &str, req: &NetworkDisconnectRequest) -> Result<()> {
        let path = format!("/networks/{}/disconnect", enc(id));
        self.post_json_no_answer(&path, req).await
    }

    /// `POST /networks/prune`.
    pub async fn networks_prune(&self, filters: Option<&str>) -> Result<NetworkPruneResponse> {
        let q = match filters {
            Some(f) => format!("/networks/prune?filters={}", enc(f)),
            None => "/networks/prune".into(),
        };
        self.post_json::<(), _>(&q, None).await
    }
}
