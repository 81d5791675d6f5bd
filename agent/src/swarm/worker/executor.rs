//! The executor: converges this node's task containers to the manager's assignments through
//! the Engine API, as swarmkit's container executor does, and reports observed states.

use super::files::{DataSet, TaskFiles};
use super::spec::{self, Attachment, NETWORK_ID_LABEL, TASK_ID_LABEL, TASK_LABEL};
use berth_client::{Client, ClientError};
use berth_engine::network::{Ipv4Net, MeshRule, NetworkService, OverlaySpec, VirtualIp};
use berth_orchestrator::swarm::overlay::OverlayView;
use berth_orchestrator::swarm::state::{TaskStatusUpdate, task_state_rank};
use bollard_stubs::models::{
    ContainerStatus, Network, NetworkCreateRequest, Task, TaskState, TaskStatus,
};
use futures_util::future::join_all;
use serde_json::{Value, json};
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::net::Ipv4Addr;
use tokio::sync::Mutex;

/// A task container as one container list shows it.
#[derive(Debug, Clone)]
struct Seen {
    id: String,
    /// `created`, `running`, `exited`, ...
    state: String,
    /// Docker's status line (`Up 3 seconds (healthy)`, `Exited (1) 2 seconds ago`).
    status: String,
}

impl Seen {
    fn from_summary(v: &Value) -> Option<(String, Self)> {
        let task = v.get("Labels")?.get(TASK_ID_LABEL)?.as_str()?.to_string();
        let s = |k: &str| v.get(k).and_then(Value::as_str).unwrap_or("").to_string();
        Some((
            task,
            Self {
                id: s("Id"),
                state: s("State"),
                status: s("Status"),
            },
        ))
    }

    fn running(&self) -> bool {
        matches!(self.state.as_str(), "running" | "paused" | "restarting")
    }

    fn exited(&self) -> bool {
        matches!(self.state.as_str(), "exited" | "dead")
    }

    fn health(&self) -> Option<&'static str> {
        ["(health: starting)", "(healthy)", "(unhealthy)"]
            .into_iter()
            .find(|h| self.status.contains(h))
    }

    /// The exit code in `Exited (N) ...`.
    fn exit_code(&self) -> Option<i64> {
        let rest = self.status.strip_prefix("Exited (")?;
        rest.split(')').next()?.parse().ok()
    }
}

#[derive(Default)]
struct Inner {
    /// The last status this executor produced per task.
    reported: HashMap<String, TaskStatus>,
    /// Node-local networks made for swarm networks: swarm network ID -> local name. `None`
    /// until read from the engine (at the first round, and after a failure).
    local_networks: Option<BTreeMap<String, String>>,
}

/// The overlay part of an assignment: the views of the networks this node's tasks use and
/// the addresses its tasks have on them.
#[derive(Debug, Clone, Default)]
pub struct OverlayAssignment {
    /// Per overlay network: where every task is and what services resolve to.
    pub views: Vec<OverlayView>,
    /// Task ID -> swarm network ID -> address.
    pub addresses: BTreeMap<String, BTreeMap<String, Ipv4Addr>>,
    /// This node's address on the ingress network (the routing mesh's source address).
    pub ingress_addr: Option<Ipv4Addr>,
}

/// Runs assigned tasks as containers on this node's engine.
pub struct Executor {
    client: Client,
    node_id: String,
    files: TaskFiles,
    inner: Mutex<Inner>,
    /// The engine's network service, for the kernel side of overlay networks (VXLAN peers,
    /// service names, VIP rules); without it swarm networks are node-local bridges.
    net: Option<NetworkService>,
}

fn rank(s: TaskState) -> u16 {
    task_state_rank(s)
}

fn status(
    state: TaskState,
    message: &str,
    err: Option<String>,
    cs: Option<ContainerStatus>,
) -> TaskStatus {
    TaskStatus {
        timestamp: Some(berth_engine::image::archive::rfc3339_now()),
        state: Some(state),
        message: Some(message.to_string()),
        err,
        container_status: cs,
        port_status: None,
    }
}

fn filters(label: &str) -> String {
    json!({ "label": [label] }).to_string()
}

impl Executor {
    /// An executor driving the engine behind `client` for node `node_id`, keeping the
    /// tasks' secret and config files on a tmpfs at `files_dir`.
    pub fn new(client: Client, node_id: String, files_dir: std::path::PathBuf) -> Self {
        Self {
            client,
            node_id,
            files: TaskFiles::new(files_dir),
            inner: Mutex::new(Inner::default()),
            net: None,
        }
    }

    /// Lets the executor program overlay networks through the engine's network service.
    pub fn with_networks(mut self, net: NetworkService) -> Self {
        self.net = Some(net);
        self
    }

    /// The engine this executor drives.
    pub fn client(&self) -> &Client {
        &self.client
    }

    /// The node this executor runs tasks for.
    pub fn node_id(&self) -> &str {
        &self.node_id
    }

    /// Converges this node's containers to the assigned tasks and returns the observed-state
    /// changes since the last call (only changes, the newest state per task).
    pub async fn converge(
        &self,
        tasks: &[Task],
        networks: &[Network],
        data: &DataSet,
    ) -> Vec<TaskStatusUpdate> {
        self.converge_with(tasks, networks, data, &OverlayAssignment::default())
            .await
    }

    /// [`Self::converge`] with the overlay networks' state, which it also programs.
    pub async fn converge_with(
        &self,
        tasks: &[Task],
        networks: &[Network],
        data: &DataSet,
        overlay: &OverlayAssignment,
    ) -> Vec<TaskStatusUpdate> {
        let mut inner = self.inner.lock().await;
        // One list per round; a failure here means the engine is not answering: try later.
        let seen = match self.list_task_containers().await {
            Ok(s) => s,
            Err(e) => {
                tracing::warn!(error = %e, "swarm worker: listing task containers");
                return Vec::new();
            }
        };
        let assigned: BTreeSet<&str> = tasks.iter().filter_map(|t| t.id.as_deref()).collect();

        // Containers of tasks no longer assigned go first, so their networks can go too.
        let stale: Vec<&Seen> = seen
            .iter()
            .filter(|(t, _)| !assigned.contains(t.as_str()))
            .map(|(_, c)| c)
            .collect();
        join_all(stale.iter().map(|c| self.remove_container(&c.id))).await;
        inner
            .reported
            .retain(|id, _| assigned.contains(id.as_str()));
        self.files.retain(&assigned);

        let Some(attachments) = self
            .ensure_networks(&mut inner, tasks, networks, overlay)
            .await
        else {
            return Vec::new();
        };
        if let (Some(net), Some(local)) = (&self.net, &inner.local_networks) {
            program_overlays(net, &self.node_id, local, overlay).await;
        }

        let seen = &seen;
        let steps = tasks.iter().filter_map(|t| {
            let id = t.id.as_deref()?;
            let prev = inner
                .reported
                .get(id)
                .cloned()
                .or_else(|| t.status.clone())
                .unwrap_or_default();
            let atts = attachments
                .get(id)
                .cloned()
                .unwrap_or_else(|| Ok(Vec::new()));
            Some(async move {
                let next = self.step(t, seen.get(id), &prev, atts, data).await;
                (id.to_string(), prev, next)
            })
        });
        let mut out = Vec::new();
        for (id, prev, next) in join_all(steps).await {
            let Some(next) = next else { continue };
            let before = prev.state.map(rank).unwrap_or(0);
            if next.state.map(rank).unwrap_or(0) <= before {
                continue;
            }
            inner.reported.insert(id.clone(), next.clone());
            out.push(TaskStatusUpdate {
                id,
                node_id: self.node_id.clone(),
                status: next,
            });
        }
        if let Some(net) = &self.net
            && !overlay.views.is_empty()
        {
            self.program_virtual_ips(net, tasks, overlay).await;
        }
        out
    }

    /// Points each running task container's VIPs at the healthy tasks behind them.
    async fn program_virtual_ips(
        &self,
        net: &NetworkService,
        tasks: &[Task],
        overlay: &OverlayAssignment,
    ) {
        let seen = match self.list_task_containers().await {
            Ok(s) => s,
            Err(e) => {
                tracing::warn!(error = %e, "swarm worker: listing task containers");
                return;
            }
        };
        for t in tasks {
            let Some(c) = t.id.as_deref().and_then(|id| seen.get(id)) else {
                continue;
            };
            if c.state != "running" {
                continue;
            }
            let mut vips: Vec<VirtualIp> = Vec::new();
            for target in t
                .spec
                .as_ref()
                .and_then(|s| s.networks.as_ref())
                .into_iter()
                .flatten()
                .filter_map(|a| a.target.as_deref())
            {
                let Some(v) = overlay.views.iter().find(|v| v.id == target) else {
                    continue;
                };
                vips.extend(v.services.iter().filter_map(|s| {
                    Some(VirtualIp {
                        vip: s.vip?,
                        backends: s.tasks.clone(),
                    })
                }));
            }
            if let Err(e) = net.set_virtual_ips(&c.id, vips).await {
                tracing::warn!(container = %c.id, error = %e, "swarm worker: service VIPs");
            }
        }
    }

    /// Stops and removes every task container and the networks made for them (the node left
    /// the swarm).
    pub async fn remove_all(&self) {
        let mut inner = self.inner.lock().await;
        match self.list_task_containers().await {
            Ok(seen) => {
                join_all(seen.values().map(|c| self.remove_container(&c.id))).await;
            }
            Err(e) => tracing::warn!(error = %e, "swarm worker: listing task containers"),
        }
        inner.reported.clear();
        inner.local_networks = None;
        self.files.remove_all();
        if let Ok(local) = self.list_local_networks().await {
            for name in local.values() {
                if let Err(e) = self.client.network_remove(name).await {
                    tracing::warn!(network = %name, error = %e, "swarm worker: removing network");
                }
            }
        }
    }

    async fn list_task_containers(&self) -> Result<BTreeMap<String, Seen>, ClientError> {
        let list = self
            .client
            .containers(true, None, false, Some(&filters(TASK_LABEL)))
            .await?;
        Ok(list.iter().filter_map(Seen::from_summary).collect())
    }

    async fn list_local_networks(&self) -> Result<BTreeMap<String, String>, ClientError> {
        let list = self
            .client
            .networks(Some(&filters(NETWORK_ID_LABEL)))
            .await?;
        Ok(list
            .iter()
            .filter_map(|n| {
                let id = n.get("Labels")?.get(NETWORK_ID_LABEL)?.as_str()?;
                let name = n.get("Name")?.as_str()?;
                Some((id.to_string(), name.to_string()))
            })
            .collect())
    }

    async fn remove_container(&self, id: &str) {
        match self.client.container_remove(id, true, false).await {
            Ok(()) => {}
            Err(e) if e.is_not_found() => {}
            Err(e) => tracing::warn!(container = %id, error = %e, "swarm worker: removing"),
        }
    }

    /// Makes the node-local network of every swarm network the tasks use, removes those no
    /// task uses any more, and returns each task's attachments (or why they cannot be made);
    /// `None` when the engine's networks cannot be read.
    async fn ensure_networks(
        &self,
        inner: &mut Inner,
        tasks: &[Task],
        networks: &[Network],
        overlay: &OverlayAssignment,
    ) -> Option<HashMap<String, Result<Vec<Attachment>, String>>> {
        if inner.local_networks.is_none() {
            // The engine not answering is no reason to reject tasks: the round is skipped.
            match self.list_local_networks().await {
                Ok(l) => inner.local_networks = Some(l),
                Err(e) => {
                    tracing::warn!(error = %e, "swarm worker: listing networks");
                    return None;
                }
            }
        }
        let local = inner.local_networks.get_or_insert_with(BTreeMap::new);
        let by_target = |target: &str| {
            networks
                .iter()
                .find(|n| n.id.as_deref() == Some(target))
                .or_else(|| networks.iter().find(|n| n.name.as_deref() == Some(target)))
        };
        let mut out = HashMap::new();
        let mut needed = BTreeSet::new();
        // The routing mesh's network is on every node while a service publishes a port.
        let ingress = self
            .net
            .as_ref()
            .and_then(|n| Some((n, overlay.views.iter().find(|v| v.ingress)?)));
        let mut ingress_local = None;
        if let Some((n, v)) = ingress {
            needed.insert(v.id.clone());
            if !local.contains_key(&v.id) {
                let net = Network {
                    id: Some(v.id.clone()),
                    name: Some(v.name.clone()),
                    ..Default::default()
                };
                match create_overlay(n, v, &net).await {
                    Ok(name) => {
                        local.insert(v.id.clone(), name);
                    }
                    Err(e) => tracing::warn!(error = %e, "swarm worker: ingress network"),
                }
            }
            ingress_local = local.get(&v.id).map(|name| (v.id.clone(), name.clone()));
        }
        for t in tasks {
            let Some(tid) = t.id.clone() else { continue };
            let service = spec::service_name(t);
            let mut atts = Vec::new();
            let mut failure = None;
            for a in t
                .spec
                .as_ref()
                .and_then(|s| s.networks.as_ref())
                .into_iter()
                .flatten()
            {
                let target = a.target.as_deref().unwrap_or_default();
                let Some(net) = by_target(target) else {
                    failure = Some(format!("network {target} not found"));
                    break;
                };
                let id = net.id.clone().unwrap_or_else(|| target.to_string());
                needed.insert(id.clone());
                let view = self
                    .net
                    .as_ref()
                    .and_then(|n| Some((n, overlay.views.iter().find(|v| v.id == id)?)));
                if !local.contains_key(&id) {
                    let made = match view {
                        Some((n, v)) => create_overlay(n, v, net).await,
                        None => self.create_network(&id, net).await,
                    };
                    match made {
                        Ok(name) => {
                            local.insert(id.clone(), name);
                        }
                        Err(e) => {
                            failure = Some(format!("creating network {target}: {e}"));
                            break;
                        }
                    }
                }
                let (aliases, ipv4) = if view.is_some() {
                    let Some(ip) = overlay.addresses.get(&tid).and_then(|m| m.get(&id)) else {
                        failure = Some(format!("no address allocated on network {target}"));
                        break;
                    };
                    (Vec::new(), Some(*ip))
                } else {
                    let mut aliases = vec![service.clone()];
                    aliases.extend(a.aliases.iter().flatten().cloned());
                    aliases.dedup();
                    (aliases, None)
                };
                atts.push(Attachment {
                    network: local[&id].clone(),
                    aliases,
                    ipv4,
                });
            }
            if let Some((id, name)) = &ingress_local
                && let Some(ip) = overlay.addresses.get(&tid).and_then(|m| m.get(id))
            {
                atts.push(Attachment {
                    network: name.clone(),
                    aliases: Vec::new(),
                    ipv4: Some(*ip),
                });
            }
            out.insert(tid, failure.map_or(Ok(atts), Err));
        }
        let unused: Vec<(String, String)> = local
            .iter()
            .filter(|(id, _)| !needed.contains(*id))
            .map(|(id, name)| (id.clone(), name.clone()))
            .collect();
        for (id, name) in unused {
            match self.client.network_remove(&name).await {
                Ok(()) => {
                    local.remove(&id);
                }
                Err(e) if e.is_not_found() => {
                    local.remove(&id);
                }
                // Still in use (a container being removed): tried again next round.
                Err(e) => tracing::debug!(network = %name, error = %e, "swarm worker: network"),
            }
        }
        Some(out)
    }

    async fn create_network(&self, id: &str, net: &Network) -> Result<String, String> {
        let name = net.name.clone().unwrap_or_else(|| id.to_string());
        let mut labels = net.labels.clone().unwrap_or_default();
        labels.insert(NETWORK_ID_LABEL.into(), id.to_string());
        let req = NetworkCreateRequest {
            name: name.clone(),
            driver: Some("bridge".into()),
            attachable: Some(true),
            internal: net.internal,
            labels: Some(labels),
            ..Default::default()
        };
        match self.client.network_create(&req).await {
            Ok(_) => Ok(name),
            // Made by a previous round whose answer was lost, or by hand: use it.
            Err(e) if e.status() == Some(409) => Ok(name),
            Err(e) => Err(e.to_string()),
        }
    }

    /// One task's next observed status, or `None` when nothing changed.
    async fn step(
        &self,
        task: &Task,
        seen: Option<&Seen>,
        prev: &TaskStatus,
        attachments: Result<Vec<Attachment>, String>,
        data: &DataSet,
    ) -> Option<TaskStatus> {
        let desired = task.desired_state.unwrap_or(TaskState::RUNNING);
        let observed = prev.state.unwrap_or(TaskState::ASSIGNED);
        let prev_cs = prev.container_status.clone();
        if rank(desired) >= rank(TaskState::SHUTDOWN) {
            let mut cs = prev_cs.unwrap_or_default();
            if let Some(c) = seen {
                cs.container_id = Some(c.id.clone());
                if c.running() {
                    let grace = spec::stop_grace_secs(task);
                    if let Err(e) = self.client.container_stop(&c.id, Some(grace), None).await
                        && !e.is_not_found()
                    {
                        tracing::warn!(container = %c.id, error = %e, "swarm worker: stopping");
                        return None;
                    }
                }
                if desired == TaskState::REMOVE {
                    self.remove_container(&c.id).await;
                }
            }
            if rank(observed) >= rank(TaskState::COMPLETE) {
                return None;
            }
            return Some(status(TaskState::SHUTDOWN, "shutdown", None, Some(cs)));
        }
        if rank(observed) >= rank(TaskState::COMPLETE) {
            return None;
        }
        let seen = match seen {
            Some(c) => c.clone(),
            None if rank(observed) >= rank(TaskState::STARTING) => {
                return Some(status(
                    TaskState::FAILED,
                    prev.message.as_deref().unwrap_or("started"),
                    Some("task: container removed".into()),
                    prev_cs,
                ));
            }
            None => {
                let reject =
                    |e: String| Some(status(TaskState::REJECTED, "preparing", Some(e), None));
                let atts = match attachments {
                    Ok(a) => a,
                    Err(e) => return reject(e),
                };
                if let Err(e) = self.ensure_image(task).await {
                    return reject(e.to_string());
                }
                let files = match self.files.prepare(task, data) {
                    Ok(m) => m,
                    Err(e) => return reject(e),
                };
                let mut body = spec::create_body(task, &self.node_id, &atts);
                if !files.is_empty() {
                    let hc = body.host_config.get_or_insert_with(Default::default);
                    hc.mounts.get_or_insert_with(Vec::new).extend(files);
                }
                let name = spec::container_name(task);
                let id = match self.client.container_create(Some(&name), None, &body).await {
                    Ok(r) => r.id,
                    Err(e) => return reject(e.to_string()),
                };
                let cs = ContainerStatus {
                    container_id: Some(id.clone()),
                    pid: None,
                    exit_code: None,
                };
                if desired == TaskState::READY {
                    return Some(status(TaskState::READY, "created", None, Some(cs)));
                }
                Seen {
                    id,
                    state: "created".into(),
                    status: String::new(),
                }
            }
        };
        let cs = |pid: Option<i64>, exit: Option<i64>| ContainerStatus {
            container_id: Some(seen.id.clone()),
            pid,
            exit_code: exit,
        };
        if seen.state == "created" {
            if desired == TaskState::READY {
                return Some(status(
                    TaskState::READY,
                    "created",
                    None,
                    Some(cs(None, None)),
                ));
            }
            if let Err(e) = self.client.container_start(&seen.id).await {
                return Some(status(
                    TaskState::REJECTED,
                    "created",
                    Some(e.to_string()),
                    Some(cs(None, None)),
                ));
            }
            // One inspect per start, for the PID and whether a healthcheck applies (the
            // image's counts too).
            let (pid, health) = self.pid_and_health(&seen.id).await;
            return Some(match health.as_deref() {
                None | Some("healthy") => {
                    status(TaskState::RUNNING, "started", None, Some(cs(pid, None)))
                }
                Some("unhealthy") => unhealthy(cs(pid, None)),
                Some(_) => status(TaskState::STARTING, "starting", None, Some(cs(pid, None))),
            });
        }
        let known_pid = prev_cs.as_ref().and_then(|c| c.pid).filter(|p| *p > 0);
        if seen.running() {
            let next = match seen.health() {
                Some("(health: starting)") => TaskState::STARTING,
                Some("(unhealthy)") => TaskState::FAILED,
                _ => TaskState::RUNNING,
            };
            if rank(next) <= rank(observed) {
                return None;
            }
            let pid = match known_pid {
                Some(p) => Some(p),
                None => self.pid_and_health(&seen.id).await.0,
            };
            return Some(match next {
                TaskState::FAILED => unhealthy(cs(pid, None)),
                TaskState::STARTING => {
                    status(TaskState::STARTING, "starting", None, Some(cs(pid, None)))
                }
                _ => status(TaskState::RUNNING, "started", None, Some(cs(pid, None))),
            });
        }
        if seen.exited() {
            let code = match seen.exit_code() {
                Some(c) => c,
                None => self.exit_code(&seen.id).await,
            };
            if code == 0 {
                return Some(status(
                    TaskState::COMPLETE,
                    "finished",
                    None,
                    Some(cs(known_pid, Some(0))),
                ));
            }
            return Some(status(
                TaskState::FAILED,
                prev.message.as_deref().unwrap_or("started"),
                Some(format!("task: non-zero exit ({code})")),
                Some(cs(known_pid, Some(code))),
            ));
        }
        None
    }

    async fn ensure_image(&self, task: &Task) -> Result<(), ClientError> {
        let image = task
            .spec
            .as_ref()
            .and_then(|s| s.container_spec.as_ref())
            .and_then(|c| c.image.clone())
            .unwrap_or_default();
        match self.client.image_inspect(&image).await {
            Ok(_) => return Ok(()),
            Err(e) if e.is_not_found() => {}
            Err(e) => return Err(e),
        }
        let (name, tag) = berth_client::images::split_reference(&image);
        self.client
            .pull(name, tag.unwrap_or("latest"), None, None)
            .await?
            .for_each(|_| {})
            .await
    }

    async fn pid_and_health(&self, id: &str) -> (Option<i64>, Option<String>) {
        match self.client.container_inspect(id, false).await {
            Ok(v) => {
                let st = v.get("State");
                let pid = st.and_then(|s| s.get("Pid")).and_then(Value::as_i64);
                let health = st
                    .and_then(|s| s.get("Health"))
                    .and_then(|h| h.get("Status"))
                    .and_then(Value::as_str)
                    .map(str::to_string);
                (pid, health)
            }
            Err(_) => (None, None),
        }
    }

    async fn exit_code(&self, id: &str) -> i64 {
        self.client
            .container_inspect(id, false)
            .await
            .ok()
            .and_then(|v| v.get("State")?.get("ExitCode")?.as_i64())
            .unwrap_or(-1)
    }
}

fn unhealthy(cs: ContainerStatus) -> TaskStatus {
    status(
        TaskState::FAILED,
        "started",
        Some("task: unhealthy container".into()),
        Some(cs),
    )
}

/// Makes this node's part of an overlay network (its bridge and VXLAN device); returns the
/// local network's name.
async fn create_overlay(
    net: &NetworkService,
    v: &OverlayView,
    n: &Network,
) -> Result<String, String> {
    let subnet = v.subnet.parse::<Ipv4Net>()?.normalised();
    let mut labels = n.labels.clone().unwrap_or_default();
    labels.insert(NETWORK_ID_LABEL.into(), v.id.clone());
    let spec = OverlaySpec {
        name: v.name.clone(),
        subnet,
        gateway: v.gateway,
        vni: v.vni,
        internal: v.internal,
        ingress: v.ingress,
        labels,
    };
    net.ensure_overlay(spec).await.map_err(|e| e.to_string())?;
    Ok(v.name.clone())
}

/// The names a service gives its network: its name and aliases lead to the VIP (or, in
/// `dnsrr` mode, to the tasks), `tasks.<name>` to the tasks.
fn service_names(v: &OverlayView) -> Vec<(String, Vec<Ipv4Addr>)> {
    let mut out = Vec::new();
    for s in &v.services {
        let front = s.vip.map_or_else(|| s.tasks.clone(), |vip| vec![vip]);
        out.push((s.name.clone(), front.clone()));
        out.extend(s.aliases.iter().map(|a| (a.clone(), front.clone())));
        out.push((format!("tasks.{}", s.name), s.tasks.clone()));
    }
    out
}

/// Programs every overlay network this node has: the other nodes' tasks on its VXLAN device
/// and the service names in its DNS.
async fn program_overlays(
    net: &NetworkService,
    node_id: &str,
    local: &BTreeMap<String, String>,
    overlay: &OverlayAssignment,
) {
    for v in &overlay.views {
        let Some(name) = local.get(&v.id) else {
            continue;
        };
        let peers: BTreeMap<Ipv4Addr, Ipv4Addr> = v
            .peers
            .iter()
            .filter(|p| p.node != node_id)
            .map(|p| (p.ip, p.node_addr))
            .collect();
        if let Err(e) = net.set_overlay_peers(name, peers).await {
            tracing::warn!(network = %name, error = %e, "swarm worker: overlay peers");
        }
        if v.ingress {
            if let Some(node_ip) = overlay.ingress_addr {
                let rules = v
                    .services
                    .iter()
                    .flat_map(|s| {
                        s.ports.iter().map(|p| MeshRule {
                            protocol: p.protocol.clone(),
                            published: p.published,
                            target: p.target,
                            backends: s.tasks.clone(),
                        })
                    })
                    .collect();
                if let Err(e) = net.set_mesh(name, node_ip, rules).await {
                    tracing::warn!(error = %e, "swarm worker: routing mesh");
                }
            }
            continue;
        }
        match net.get(name) {
            Ok(r) => net.set_network_names(&r.id, service_names(v)),
            Err(e) => tracing::warn!(network = %name, error = %e, "swarm worker: overlay names"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seen_reads_exit_code_and_health() {
        let s = |state: &str, status: &str| Seen {
            id: "c".into(),
            state: state.into(),
            status: status.into(),
        };
        assert_eq!(s("exited", "Exited (3) 2 seconds ago").exit_code(), Some(3));
        assert_eq!(
            s("exited", "Exited (0) Less than a second ago").exit_code(),
            Some(0)
        );
        assert_eq!(
            s("running", "Up 2 seconds (health: starting)").health(),
            Some("(health: starting)")
        );
        assert_eq!(s("running", "Up 2 seconds").health(), None);
    }
}
