//! What the Docker swarm API asks of a manager: reads from the local replica, writes through
//! Raft, with Docker's lookups (full ID, unique ID prefix, name) and messages.

use super::{Manager, ManagerError, now_rfc3339};
use crate::swarm::ca;
use crate::swarm::ids;
use crate::swarm::state::{ClusterState, Command, ServiceRecord};
use bollard_stubs::models::{
    ClusterInfo, JoinTokens, ManagerStatus, Network, Node, NodeSpec, NodeSpecRoleEnum, NodeState,
    ObjectVersion, Reachability, Service, ServiceServiceStatus, ServiceSpec, Swarm, SwarmSpec,
    Task, TaskState,
};
use std::collections::HashMap;

/// Finds one object by full ID, unique ID prefix or name, as the Docker CLI expects.
pub(super) fn lookup<'a, T>(
    kind: &str,
    key: &str,
    items: impl Iterator<Item = (&'a String, &'a T, Option<&'a str>)>,
) -> Result<&'a T, ManagerError>
where
    T: 'a,
{
    let mut by_prefix = Vec::new();
    for (id, item, name) in items {
        if id == key {
            return Ok(item);
        }
        if name == Some(key) {
            return Ok(item);
        }
        if !key.is_empty() && id.starts_with(key) {
            by_prefix.push(item);
        }
    }
    match by_prefix.len() {
        1 => Ok(by_prefix[0]),
        0 => Err(ManagerError::NotFound(format!("{kind} {key} not found"))),
        _ => Err(ManagerError::Invalid(format!(
            "{kind} {key} is ambiguous ({} matches found)",
            by_prefix.len()
        ))),
    }
}

impl Manager {
    /// `GET /swarm`: the cluster with its join tokens.
    pub fn swarm_inspect(&self) -> Result<Swarm, ManagerError> {
        self.store().read(|s| {
            let c = s.cluster.as_ref().ok_or(ManagerError::NotInitialised)?;
            let digest = ca::cert_digest(&c.ca_cert_pem)?;
            Ok(Swarm {
                id: Some(c.id.clone()),
                version: Some(ObjectVersion {
                    index: Some(c.version),
                }),
                created_at: Some(c.created_at.clone()),
                updated_at: Some(c.updated_at.clone()),
                spec: Some(c.spec.clone()),
                root_rotation_in_progress: Some(false),
                data_path_port: Some(4789),
                default_addr_pool: Some(vec!["10.0.0.0/8".into()]),
                subnet_size: Some(24),
                join_tokens: Some(JoinTokens {
                    worker: Some(ca::join_token(&digest, &c.worker_secret)),
                    manager: Some(ca::join_token(&digest, &c.manager_secret)),
                }),
                ..Default::default()
            })
        })
    }

    /// The cluster part of `GET /info`.
    pub fn cluster_info(&self) -> Option<ClusterInfo> {
        let swarm = self.swarm_inspect().ok()?;
        Some(ClusterInfo {
            id: swarm.id,
            version: swarm.version,
            created_at: swarm.created_at,
            updated_at: swarm.updated_at,
            spec: swarm.spec,
            root_rotation_in_progress: swarm.root_rotation_in_progress,
            data_path_port: swarm.data_path_port,
            default_addr_pool: swarm.default_addr_pool,
            subnet_size: swarm.subnet_size,
            tls_info: None,
        })
    }

    /// `POST /swarm/update`.
    pub async fn update_swarm(
        &self,
        version: u64,
        spec: SwarmSpec,
        rotate_worker: bool,
        rotate_manager: bool,
    ) -> Result<(), ManagerError> {
        self.write_ok(Command::UpdateCluster {
            version,
            spec: Box::new(spec),
            worker_secret: rotate_worker.then(|| ids::random_base36(25)),
            manager_secret: rotate_manager.then(|| ids::random_base36(25)),
        })
        .await
    }

    /// Fills `ManagerStatus` from the Raft membership, as `node ls` shows it.
    fn with_manager_status(&self, mut node: Node) -> Node {
        let id = node.id.clone().unwrap_or_default();
        let leader = self.store().leader().map(|(_, p)| p.node_id);
        let member = self
            .store()
            .members()
            .into_iter()
            .find(|m| m.voter && m.peer.node_id == id);
        node.manager_status = member.map(|m| ManagerStatus {
            leader: Some(leader.as_deref() == Some(id.as_str())),
            reachability: Some(if m.reachable || leader.as_deref() == Some(id.as_str()) {
                Reachability::REACHABLE
            } else {
                Reachability::UNREACHABLE
            }),
            addr: Some(m.peer.addr.clone()),
        });
        node
    }

    /// `GET /nodes`.
    pub fn nodes(&self) -> Vec<Node> {
        let nodes: Vec<Node> = self.store().read(|s| s.nodes.values().cloned().collect());
        nodes
            .into_iter()
            .map(|n| self.with_manager_status(n))
            .collect()
    }

    /// `GET /nodes/{id}`: by ID, ID prefix or hostname.
    pub fn node(&self, key: &str) -> Result<Node, ManagerError> {
        let node = self.store().read(|s| {
            lookup(
                "node",
                key,
                s.nodes.iter().map(|(id, n)| {
                    let name = n.description.as_ref().and_then(|d| d.hostname.as_deref());
                    (id, n, name)
                }),
            )
            .cloned()
        })?;
        Ok(self.with_manager_status(node))
    }

    /// `POST /nodes/{id}/update?version=`.
    pub async fn update_node(
        &self,
        key: &str,
        version: u64,
        spec: NodeSpec,
    ) -> Result<(), ManagerError> {
        let node = self.node(key)?;
        let id = node.id.clone().unwrap_or_default();
        let was = node.spec.as_ref().and_then(|s| s.role);
        if was == Some(NodeSpecRoleEnum::MANAGER) && spec.role == Some(NodeSpecRoleEnum::WORKER) {
            self.check_demote(&id)?;
        }
        self.write_ok(Command::UpdateNodeSpec { id, version, spec })
            .await
    }

    /// `DELETE /nodes/{id}?force=`: refused for a node that is up unless forced, and for a
    /// manager (demote it first), as Docker does.
    pub async fn remove_node(&self, key: &str, force: bool) -> Result<(), ManagerError> {
        let node = self.node(key)?;
        let id = node.id.clone().unwrap_or_default();
        let role = node.spec.as_ref().and_then(|s| s.role);
        if role == Some(NodeSpecRoleEnum::MANAGER) {
            return Err(ManagerError::Invalid(format!(
                "rpc error: code = FailedPrecondition desc = node {id} is a cluster manager and is a member of the raft cluster. It must be demoted to worker before removal"
            )));
        }
        let down = node.status.as_ref().and_then(|s| s.state) == Some(NodeState::DOWN);
        if !down && !force {
            return Err(ManagerError::Invalid(format!(
                "rpc error: code = FailedPrecondition desc = node {id} is not down and can't be removed"
            )));
        }
        self.write_ok(Command::RemoveNode { id }).await
    }

    /// `GET /services`.
    pub fn services(&self) -> Vec<ServiceRecord> {
        self.store()
            .read(|s| s.services.values().cloned().collect())
    }

    /// `GET /services/{id}`.
    pub fn service(&self, key: &str) -> Result<ServiceRecord, ManagerError> {
        self.store().read(|s| service_in(s, key).cloned())
    }

    /// Running, desired and completed task counts of a service (`?status=true`).
    pub fn service_status(&self, service_id: &str) -> ServiceServiceStatus {
        self.store().read(|s| {
            let mut status = ServiceServiceStatus::default();
            let (mut running, mut desired, mut completed) = (0u64, 0u64, 0u64);
            let spec = s
                .services
                .get(service_id)
                .and_then(|r| r.service.spec.as_ref());
            let mode = spec.and_then(|sp| sp.mode.as_ref());
            if let Some(m) = mode.filter(|m| m.replicated_job.is_some() || m.global_job.is_some()) {
                // Jobs as Docker counts them: the current iteration's completions, and as
                // desired what may still run (`0/0 (4/4 completed)` once done).
                let template = spec.and_then(|sp| sp.task_template.as_ref());
                for t in s.tasks_of(service_id) {
                    let observed = t.status.as_ref().and_then(|s| s.state);
                    if t.spec.as_ref() != template {
                        continue;
                    }
                    match observed {
                        Some(TaskState::COMPLETE) => completed += 1,
                        Some(TaskState::RUNNING)
                            if t.desired_state == Some(TaskState::COMPLETE) =>
                        {
                            running += 1
                        }
                        _ => {}
                    }
                    if t.desired_state == Some(TaskState::COMPLETE)
                        && observed != Some(TaskState::COMPLETE)
                    {
                        desired += 1;
                    }
                }
                if let Some(r) = &m.replicated_job {
                    let max = r.max_concurrent.unwrap_or(1).max(1) as u64;
                    let total = r.total_completions.unwrap_or(max as i64).max(0) as u64;
                    desired = max.min(total.saturating_sub(completed));
                }
                status.running_tasks = Some(running);
                status.desired_tasks = Some(desired);
                status.completed_tasks = Some(completed);
                return status;
            }
            for t in s.tasks_of(service_id) {
                let observed = t.status.as_ref().and_then(|s| s.state);
                if t.desired_state == Some(TaskState::RUNNING) {
                    desired += 1;
                    if observed == Some(TaskState::RUNNING) {
                        running += 1;
                    }
                }
                if observed == Some(TaskState::COMPLETE) {
                    completed += 1;
                }
            }
            let spec_desired = s
                .services
                .get(service_id)
                .and_then(|r| r.service.spec.as_ref())
                .and_then(|sp| sp.mode.as_ref())
                .and_then(|m| m.replicated.as_ref())
                .and_then(|r| r.replicas);
            status.running_tasks = Some(running);
            // Global services have no replica count: their desired tasks are those the
            // orchestrator created.
            status.desired_tasks = Some(spec_desired.map(|r| r as u64).unwrap_or(desired));
            status.completed_tasks = Some(completed);
            status
        })
    }

    /// `POST /services/create`: validates and records the service; tasks follow from the
    /// control loop.
    pub async fn create_service(&self, mut spec: ServiceSpec) -> Result<String, ManagerError> {
        validate_service_spec(&mut spec)?;
        self.resolve_networks(&mut spec)?;
        self.resolve_data_refs(&mut spec)?;
        let id = ids::new_id();
        let at = now_rfc3339();
        let service = Service {
            id: Some(id.clone()),
            spec: Some(spec.clone()),
            created_at: Some(at.clone()),
            updated_at: Some(at),
            endpoint: Some(bollard_stubs::models::ServiceEndpoint {
                spec: spec.endpoint_spec.clone(),
                ports: None,
                virtual_ips: None,
            }),
            ..Default::default()
        };
        self.write_ok(Command::CreateService(Box::new(service)))
            .await?;
        Ok(id)
    }

    /// `POST /services/{id}/update?version=[&rollback=previous]`.
    pub async fn update_service(
        &self,
        key: &str,
        version: u64,
        spec: Option<ServiceSpec>,
        rollback: bool,
    ) -> Result<(), ManagerError> {
        let record = self.service(key)?;
        let id = record.service.id.clone().unwrap_or_default();
        let mut spec = if rollback {
            record.previous_spec.clone().ok_or_else(|| {
                ManagerError::Invalid(format!(
                    "rpc error: code = FailedPrecondition desc = service {id} does not have a previous spec"
                ))
            })?
        } else {
            spec.ok_or_else(|| ManagerError::Invalid("service spec is required".into()))?
        };
        validate_service_spec(&mut spec)?;
        self.resolve_networks(&mut spec)?;
        self.resolve_data_refs(&mut spec)?;
        let current_name = record.service.spec.as_ref().and_then(|s| s.name.clone());
        if spec.name != current_name {
            return Err(ManagerError::Invalid(
                "rpc error: code = Unimplemented desc = renaming services is not supported".into(),
            ));
        }
        self.write_ok(Command::UpdateService {
            id,
            version,
            spec: Box::new(spec),
            rollback,
        })
        .await
    }

    /// `DELETE /services/{id}`.
    pub async fn remove_service(&self, key: &str) -> Result<(), ManagerError> {
        let record = self.service(key)?;
        let id = record.service.id.clone().unwrap_or_default();
        self.write_ok(Command::RemoveService { id }).await
    }

    /// `GET /tasks`, with names filled in as Docker shows them.
    pub fn tasks(&self) -> Vec<Task> {
        self.store().read(|s| {
            let names: HashMap<&str, &str> = s
                .services
                .iter()
                .filter_map(|(id, r)| {
                    Some((id.as_str(), r.service.spec.as_ref()?.name.as_deref()?))
                })
                .collect();
            s.tasks
                .values()
                .map(|t| {
                    let mut t = t.clone();
                    let svc = t
                        .service_id
                        .as_deref()
                        .and_then(|id| names.get(id))
                        .copied()
                        .unwrap_or_default();
                    t.name = Some(match (t.slot, &t.node_id) {
                        (Some(slot), _) if slot > 0 => format!("{svc}.{slot}"),
                        (_, Some(node)) => format!("{svc}.{node}"),
                        _ => svc.to_string(),
                    });
                    t
                })
                .collect()
        })
    }

    /// `GET /tasks/{id}`.
    pub fn task(&self, key: &str) -> Result<Task, ManagerError> {
        let tasks = self.tasks();
        let map: std::collections::BTreeMap<String, Task> = tasks
            .into_iter()
            .map(|t| (t.id.clone().unwrap_or_default(), t))
            .collect();
        lookup("task", key, map.iter().map(|(id, t)| (id, t, None))).cloned()
    }

    /// Swarm-scoped networks.
    pub fn networks(&self) -> Vec<Network> {
        self.store()
            .read(|s| s.networks.values().cloned().collect())
    }

    /// `POST /networks/create` with driver overlay on a manager.
    pub async fn create_network(&self, mut network: Network) -> Result<String, ManagerError> {
        let id = ids::new_id();
        network.id = Some(id.clone());
        network.created = Some(now_rfc3339());
        network.scope = Some("swarm".into());
        if network.driver.is_none() {
            network.driver = Some("overlay".into());
        }
        self.write_ok(Command::CreateNetwork(Box::new(network)))
            .await?;
        Ok(id)
    }

    /// `DELETE /networks/{id}` of a swarm network.
    pub async fn remove_network(&self, key: &str) -> Result<(), ManagerError> {
        let id = self.store().read(|s| {
            lookup(
                "network",
                key,
                s.networks.iter().map(|(id, n)| (id, n, n.name.as_deref())),
            )
            .map(|n| n.id.clone().unwrap_or_default())
        })?;
        self.write_ok(Command::RemoveNetwork { id }).await
    }

    /// Turns network names in a spec into the IDs tasks carry; unknown networks are an error.
    fn resolve_networks(&self, spec: &mut ServiceSpec) -> Result<(), ManagerError> {
        let Some(template) = spec.task_template.as_mut() else {
            return Ok(());
        };
        // The old top-level field is folded into the task template, as dockerd does.
        if let Some(old) = spec.networks.take() {
            template.networks.get_or_insert_with(Vec::new).extend(old);
        }
        let Some(nets) = template.networks.as_mut() else {
            return Ok(());
        };
        self.store().read(|s| {
            for n in nets.iter_mut() {
                let key = n.target.clone().unwrap_or_default();
                let found = lookup(
                    "network",
                    &key,
                    s.networks.iter().map(|(id, n)| (id, n, n.name.as_deref())),
                )
                .map_err(|_| ManagerError::NotFound(format!("network {key} not found")))?;
                n.target = found.id.clone();
            }
            Ok(())
        })
    }
}

fn service_in<'a>(s: &'a ClusterState, key: &str) -> Result<&'a ServiceRecord, ManagerError> {
    lookup(
        "service",
        key,
        s.services.iter().map(|(id, r)| {
            let name = r.service.spec.as_ref().and_then(|s| s.name.as_deref());
            (id, r, name)
        }),
    )
}

/// Docker's checks on a service spec, with its messages; fills the default mode.
fn validate_service_spec(spec: &mut ServiceSpec) -> Result<(), ManagerError> {
    let invalid =
        |m: &str| ManagerError::Invalid(format!("rpc error: code = InvalidArgument desc = {m}"));
    let image = spec
        .task_template
        .as_ref()
        .and_then(|t| t.container_spec.as_ref())
        .and_then(|c| c.image.as_deref())
        .unwrap_or_default();
    if image.is_empty() {
        return Err(invalid("ContainerSpec: image reference must be provided"));
    }
    let name = spec.name.clone().unwrap_or_default();
    if name.is_empty() {
        spec.name = Some(crate::swarm::ids::random_base36(12));
    } else if !name
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
        || name.starts_with('-')
        || name.len() > 63
    {
        return Err(invalid("name must be valid as a DNS name component"));
    }
    let mode = spec.mode.get_or_insert_with(Default::default);
    if mode.replicated.is_none()
        && mode.global.is_none()
        && mode.replicated_job.is_none()
        && mode.global_job.is_none()
    {
        mode.replicated =
            Some(bollard_stubs::models::ServiceSpecModeReplicated { replicas: Some(1) });
    }
    if let Some(r) = mode.replicated.as_mut() {
        let n = r.replicas.get_or_insert(1);
        if *n < 0 {
            return Err(invalid("replicas must be zero or more"));
        }
    }
    Ok(())
}

/// What `swarm init` records besides the manager's own settings.
#[derive(Debug, Clone)]
pub struct InitSpec {
    /// The new cluster's ID.
    pub cluster_id: String,
    /// Its CA.
    pub ca: ca::RootCa,
    /// The cluster spec (`Orchestration.TaskHistoryRetentionLimit` and friends).
    pub spec: SwarmSpec,
    /// The first node's description.
    pub description: bollard_stubs::models::NodeDescription,
    /// `--availability` of the first node.
    pub availability: Option<bollard_stubs::models::NodeSpecAvailabilityEnum>,
    /// The first node's address as shown by `node inspect`.
    pub addr: String,
}

impl Manager {
    /// `swarm init` on a freshly started manager: a one-member Raft cluster holding the new
    /// cluster and this node.
    pub async fn init_cluster(&self, init: InitSpec) -> Result<(), ManagerError> {
        self.store().bootstrap().await?;
        let at = now_rfc3339();
        let mut spec = init.spec;
        if spec.name.is_none() {
            spec.name = Some("default".into());
        }
        let orchestration = spec.orchestration.get_or_insert_with(Default::default);
        orchestration.task_history_retention_limit.get_or_insert(5);
        let cluster = crate::swarm::state::ClusterRecord {
            id: init.cluster_id,
            version: 0,
            created_at: at.clone(),
            updated_at: at,
            spec,
            ca_cert_pem: init.ca.cert_pem,
            ca_key_pem: init.ca.key_pem,
            worker_secret: ids::random_base36(25),
            manager_secret: ids::random_base36(25),
        };
        let node = Node {
            id: Some(self.node_id().to_string()),
            spec: Some(NodeSpec {
                role: Some(NodeSpecRoleEnum::MANAGER),
                availability: Some(
                    init.availability
                        .unwrap_or(bollard_stubs::models::NodeSpecAvailabilityEnum::ACTIVE),
                ),
                ..Default::default()
            }),
            description: Some(init.description),
            status: Some(bollard_stubs::models::NodeStatus {
                state: Some(NodeState::READY),
                message: None,
                addr: Some(init.addr),
            }),
            ..Default::default()
        };
        // The key exists before the cluster does, so no secret can be created without it.
        self.create_data_key()?;
        // The first write may race the single-node election; retry briefly.
        let command = Command::Init {
            cluster: Box::new(cluster),
            node: Box::new(node),
        };
        let mut last = None;
        for _ in 0..50 {
            match self.write(command.clone()).await {
                Ok(crate::swarm::state::Outcome::Done) => return Ok(()),
                Ok(other) => return Err(ManagerError::Refused(other)),
                Err(e) => last = Some(e),
            }
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        }
        Err(last.unwrap_or(ManagerError::NotInitialised))
    }
}
