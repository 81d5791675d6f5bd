//! Typed calls of the swarm endpoints: `/swarm*`, `/nodes*`, `/services*`, `/tasks*`,
//! `/secrets*`, `/configs*`.
//! Objects come back as JSON (their shapes grow between API versions); specs go out typed.

use crate::containers::ByteStream;
use crate::error::Result;
use crate::images::enc;
use crate::transport::{Client, body_bytes, empty};
use bollard_stubs::models::{
    NodeSpec, ServiceCreateResponse, ServiceSpec, ServiceUpdateResponse, SwarmInitRequest,
    SwarmJoinRequest, SwarmSpec,
};
use hyper::Method;

fn with_filters(path: &str, filters: Option<&str>) -> String {
    match filters {
        Some(f) => {
            let sep = if path.contains('?') { '&' } else { '?' };
            format!("{path}{sep}filters={}", enc(f))
        }
        None => path.to_string(),
    }
}

/// Flags of `POST /swarm/update`.
#[derive(Debug, Default, Clone, Copy)]
pub struct SwarmUpdateFlags {
    /// Rotate the worker join token.
    pub rotate_worker_token: bool,
    /// Rotate the manager join token.
    pub rotate_manager_token: bool,
    /// Rotate the unlock key.
    pub rotate_manager_unlock_key: bool,
}

impl Client {
    /// `GET /swarm`: the swarm (with its join tokens) as JSON.
    pub async fn swarm_inspect(&self) -> Result<serde_json::Value> {
        self.get_json("/swarm").await
    }

    /// `POST /swarm/init`: the new node's ID.
    pub async fn swarm_init(&self, req: &SwarmInitRequest) -> Result<String> {
        self.post_json("/swarm/init", Some(req)).await
    }

    /// `POST /swarm/join`.
    pub async fn swarm_join(&self, req: &SwarmJoinRequest) -> Result<()> {
        self.post_json_no_answer("/swarm/join", req).await
    }

    /// `POST /swarm/leave?force=`.
    pub async fn swarm_leave(&self, force: bool) -> Result<()> {
        let resp = self
            .request(
                Method::POST,
                &format!("/swarm/leave?force={force}"),
                &[],
                empty(),
            )
            .await?;
        body_bytes(resp).await.map(|_| ())
    }

    /// `POST /swarm/update?version=`.
    pub async fn swarm_update(
        &self,
        version: u64,
        spec: &SwarmSpec,
        flags: SwarmUpdateFlags,
    ) -> Result<()> {
        let path = format!(
            "/swarm/update?version={version}&rotateWorkerToken={}&rotateManagerToken={}&rotateManagerUnlockKey={}",
            flags.rotate_worker_token, flags.rotate_manager_token, flags.rotate_manager_unlock_key
        );
        self.post_json_no_answer(&path, spec).await
    }

    /// `GET /swarm/unlockkey`.
    pub async fn swarm_unlock_key(&self) -> Result<serde_json::Value> {
        self.get_json("/swarm/unlockkey").await
    }

    /// `GET /nodes` with optional `filters` JSON.
    pub async fn nodes(&self, filters: Option<&str>) -> Result<Vec<serde_json::Value>> {
        self.get_json(&with_filters("/nodes", filters)).await
    }

    /// `GET /nodes/{id}`.
    pub async fn node_inspect(&self, id: &str) -> Result<serde_json::Value> {
        self.get_json(&format!("/nodes/{}", enc(id))).await
    }

    /// `POST /nodes/{id}/update?version=`.
    pub async fn node_update(&self, id: &str, version: u64, spec: &NodeSpec) -> Result<()> {
        let path = format!("/nodes/{}/update?version={version}", enc(id));
        self.post_json_no_answer(&path, spec).await
    }

    /// `DELETE /nodes/{id}?force=`.
    pub async fn node_remove(&self, id: &str, force: bool) -> Result<()> {
        let path = format!("/nodes/{}?force={force}", enc(id));
        let resp = self.request(Method::DELETE, &path, &[], empty()).await?;
        body_bytes(resp).await.map(|_| ())
    }

    /// `GET /services?status=true` with optional `filters` JSON.
    pub async fn services(&self, filters: Option<&str>) -> Result<Vec<serde_json::Value>> {
        self.get_json(&with_filters("/services?status=true", filters))
            .await
    }

    /// `GET /services/{id}`.
    pub async fn service_inspect(&self, id: &str) -> Result<serde_json::Value> {
        self.get_json(&format!("/services/{}?insertDefaults=false", enc(id)))
            .await
    }

    /// `POST /services/create`.
    pub async fn service_create(&self, spec: &ServiceSpec) -> Result<ServiceCreateResponse> {
        self.post_json("/services/create", Some(spec)).await
    }

    /// `POST /services/{id}/update?version=` (`rollback=previous` asks for the previous spec).
    pub async fn service_update(
        &self,
        id: &str,
        version: u64,
        spec: &ServiceSpec,
        rollback: bool,
    ) -> Result<ServiceUpdateResponse> {
        let mut path = format!("/services/{}/update?version={version}", enc(id));
        if rollback {
            path.push_str("&rollback=previous");
        }
        self.post_json(&path, Some(spec)).await
    }

    /// `DELETE /services/{id}`.
    pub async fn service_remove(&self, id: &str) -> Result<()> {
        let path = format!("/services/{}", enc(id));
        let resp = self.request(Method::DELETE, &path, &[], empty()).await?;
        body_bytes(resp).await.map(|_| ())
    }

    /// `GET /services/{id}/logs` (or `/tasks/{id}/logs` when `o.task`): the log stream of
    /// the tasks, framed per stream unless they have a TTY.
    pub async fn swarm_logs(&self, id: &str, o: &SwarmLogsOptions) -> Result<ByteStream> {
        let kind = if o.task { "tasks" } else { "services" };
        let mut path = format!(
            "/{kind}/{}/logs?stdout=1&stderr=1&follow={}&timestamps={}&details={}",
            enc(id),
            o.follow,
            o.timestamps,
            o.details
        );
        for (k, v) in [("tail", &o.tail), ("since", &o.since)] {
            if let Some(v) = v {
                path.push_str(&format!("&{k}={}", enc(v)));
            }
        }
        let resp = self.request(Method::GET, &path, &[], empty()).await?;
        Ok(ByteStream::new(resp.into_body()))
    }

    /// `GET /tasks/{id}`.
    pub async fn task_inspect(&self, id: &str) -> Result<serde_json::Value> {
        self.get_json(&format!("/tasks/{}", enc(id))).await
    }

    /// `GET /tasks` with optional `filters` JSON.
    pub async fn tasks(&self, filters: Option<&str>) -> Result<Vec<serde_json::Value>> {
        self.get_json(&with_filters("/tasks", filters)).await
    }
}

/// Options of [`Client::swarm_logs`].
#[derive(Debug, Default, Clone)]
pub struct SwarmLogsOptions {
    /// The ID names a task, not a service.
    pub task: bool,
    /// Keep streaming.
    pub follow: bool,
    /// Prefix lines with their time.
    pub timestamps: bool,
    /// Prefix lines with the task's node, service and task IDs.
    pub details: bool,
    /// Lines from the end of each task's log (`all` or a number).
    pub tail: Option<String>,
    /// Only lines since this time (Unix seconds or RFC 3339).
    pub since: Option<String>,
}

impl Client {
    /// `GET /secrets` or `GET /configs` (`kind` is `secrets` or `configs`) with optional
    /// `filters` JSON.
    pub async fn swarm_data_list(
        &self,
        kind: &str,
        filters: Option<&str>,
    ) -> Result<Vec<serde_json::Value>> {
        self.get_json(&with_filters(&format!("/{kind}"), filters))
            .await
    }

    /// `GET /secrets/{id}` or `GET /configs/{id}`.
    pub async fn swarm_data_inspect(&self, kind: &str, id: &str) -> Result<serde_json::Value> {
        self.get_json(&format!("/{kind}/{}", enc(id))).await
    }

    /// `POST /secrets/create` or `POST /configs/create` with a `SecretSpec`/`ConfigSpec`;
    /// answers `{"ID": ...}`.
    pub async fn swarm_data_create(
        &self,
        kind: &str,
        spec: &serde_json::Value,
    ) -> Result<serde_json::Value> {
        self.post_json(&format!("/{kind}/create"), Some(spec)).await
    }

    /// `POST /secrets/{id}/update?version=` or the configs' equivalent (labels only).
    pub async fn swarm_data_update(
        &self,
        kind: &str,
        id: &str,
        version: u64,
        spec: &serde_json::Value,
    ) -> Result<()> {
        let path = format!("/{kind}/{}/update?version={version}", enc(id));
        self.post_json_no_answer(&path, spec).await
    }

    /// `DELETE /secrets/{id}` or `DELETE /configs/{id}`.
    pub async fn swarm_data_remove(&self, kind: &str, id: &str) -> Result<()> {
        let path = format!("/{kind}/{}", enc(id));
        let resp = self.request(Method::DELETE, &path, &[], empty()).await?;
        body_bytes(resp).await.map(|_| ())
    }
}
