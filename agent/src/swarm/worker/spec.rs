//! A task as an Engine API container: its name, the labels Docker's swarm executor writes and
//! the create body built from the task's `ContainerSpec`, resources and published ports.

use bollard_stubs::models::{
    ContainerCreateBody, EndpointIpamConfig, EndpointPortConfig, EndpointPortConfigProtocolEnum,
    EndpointSettings, HostConfig, NetworkingConfig, PortBinding, RestartPolicy,
    RestartPolicyNameEnum, Task,
};
use std::collections::HashMap;

/// Present (empty) on every task container; what the executor lists by.
pub const TASK_LABEL: &str = "com.docker.swarm.task";
/// The task ID of a task container.
pub const TASK_ID_LABEL: &str = "com.docker.swarm.task.id";
/// The task name of a task container.
pub const TASK_NAME_LABEL: &str = "com.docker.swarm.task.name";
/// The service ID of a task container.
pub const SERVICE_ID_LABEL: &str = "com.docker.swarm.service.id";
/// The service name of a task container.
pub const SERVICE_NAME_LABEL: &str = "com.docker.swarm.service.name";
/// The node ID of a task container.
pub const NODE_ID_LABEL: &str = "com.docker.swarm.node.id";
/// The swarm network ID on the node-local bridge made for a swarm network.
pub const NETWORK_ID_LABEL: &str = "com.docker.swarm.network.id";
pub use berth_orchestrator::swarm::dispatcher::proto::ENDPOINT_PORTS_LABEL;

/// Docker's default stop grace period.
const DEFAULT_GRACE_SECS: i64 = 10;

/// `<task name>.<task id>`, as Docker names task containers.
pub fn container_name(task: &Task) -> String {
    format!(
        "{}.{}",
        task.name.as_deref().unwrap_or_default(),
        task.id.as_deref().unwrap_or_default()
    )
}

/// The service name of a task, as the manager put it in the task's labels.
pub fn service_name(task: &Task) -> String {
    task.labels
        .as_ref()
        .and_then(|l| l.get(SERVICE_NAME_LABEL).cloned())
        .or_else(|| {
            // `service.slot` / `service.nodeid`: the service name is everything before the
            // last dot.
            let name = task.name.as_deref()?;
            name.rsplit_once('.').map(|(s, _)| s.to_string())
        })
        .unwrap_or_default()
}

/// The stop grace period of a task in whole seconds (rounded up), Docker's 10 s by default.
pub fn stop_grace_secs(task: &Task) -> i64 {
    task.spec
        .as_ref()
        .and_then(|s| s.container_spec.as_ref())
        .and_then(|c| c.stop_grace_period)
        .map(|ns| (ns.max(0) + 999_999_999) / 1_000_000_000)
        .unwrap_or(DEFAULT_GRACE_SECS)
}

/// The published ports the manager passed along with a task.
pub fn endpoint_ports(task: &Task) -> Vec<EndpointPortConfig> {
    task.labels
        .as_ref()
        .and_then(|l| l.get(ENDPOINT_PORTS_LABEL))
        .and_then(|v| serde_json::from_str(v).ok())
        .unwrap_or_default()
}

/// One network the container joins: the local network's name and the DNS aliases on it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Attachment {
    /// The node-local network (named as the swarm network).
    pub network: String,
    /// Service name plus the aliases of the task spec (none on overlays, where the node's
    /// DNS gets service names from the managers).
    pub aliases: Vec<String>,
    /// The address the managers allocated (overlay networks).
    pub ipv4: Option<std::net::Ipv4Addr>,
}

/// The labels of a task container: the task's own labels (the stack namespace among them),
/// the container spec's, then the system labels, which win.
pub fn labels(task: &Task, node_id: &str) -> HashMap<String, String> {
    let mut out = HashMap::new();
    if let Some(l) = task
        .spec
        .as_ref()
        .and_then(|s| s.container_spec.as_ref())
        .and_then(|c| c.labels.as_ref())
    {
        out.extend(l.iter().map(|(k, v)| (k.clone(), v.clone())));
    }
    if let Some(l) = &task.labels {
        out.extend(
            l.iter()
                .filter(|(k, _)| k.as_str() != ENDPOINT_PORTS_LABEL)
                .map(|(k, v)| (k.clone(), v.clone())),
        );
    }
    let s = |v: &Option<String>| v.clone().unwrap_or_default();
    out.insert(TASK_LABEL.into(), String::new());
    out.insert(TASK_ID_LABEL.into(), s(&task.id));
    out.insert(TASK_NAME_LABEL.into(), container_name(task));
    out.insert(SERVICE_ID_LABEL.into(), s(&task.service_id));
    out.insert(SERVICE_NAME_LABEL.into(), service_name(task));
    out.insert(NODE_ID_LABEL.into(), node_id.to_string());
    out
}

fn port_key(p: &EndpointPortConfig) -> Option<String> {
    let proto = match p.protocol {
        Some(EndpointPortConfigProtocolEnum::UDP) => "udp",
        Some(EndpointPortConfigProtocolEnum::SCTP) => "sctp",
        _ => "tcp",
    };
    Some(format!("{}/{proto}", p.target_port?))
}

/// The create body of a task's container, attached to `networks` (first one primary).
pub fn create_body(task: &Task, node_id: &str, networks: &[Attachment]) -> ContainerCreateBody {
    let spec = task.spec.clone().unwrap_or_default();
    let c = spec.container_spec.clone().unwrap_or_default();
    let limits = spec.resources.as_ref().and_then(|r| r.limits.clone());
    // Host-mode ports publish on this node. Ingress-mode ports are published on this node too,
    // until the routing mesh exists.
    let ports = endpoint_ports(task);
    let mut exposed = Vec::new();
    let mut bindings = HashMap::new();
    for p in &ports {
        let Some(key) = port_key(p) else { continue };
        exposed.push(key.clone());
        let host_port = p
            .published_port
            .filter(|p| *p > 0)
            .map(|p| p.to_string())
            .unwrap_or_default();
        bindings
            .entry(key)
            .or_insert_with(|| Some(Vec::new()))
            .get_or_insert_with(Vec::new)
            .push(PortBinding {
                host_ip: Some(String::new()),
                host_port: Some(host_port),
            });
    }
    let dns = c.dns_config.clone().unwrap_or_default();
    // Docker's `Hosts` entries are `IP name...`; the engine's ExtraHosts are `name:IP`.
    let extra_hosts: Vec<String> = c
        .hosts
        .iter()
        .flatten()
        .flat_map(|h| {
            let mut it = h.split_whitespace();
            let ip = it.next().unwrap_or_default().to_string();
            it.map(move |n| format!("{n}:{ip}")).collect::<Vec<_>>()
        })
        .collect();
    let host_config = HostConfig {
        mounts: c.mounts.clone(),
        nano_cpus: limits.as_ref().and_then(|l| l.nano_cpus).filter(|v| *v > 0),
        memory: limits
            .as_ref()
            .and_then(|l| l.memory_bytes)
            .filter(|v| *v > 0),
        pids_limit: limits.as_ref().and_then(|l| l.pids).filter(|v| *v > 0),
        init: c.init,
        sysctls: c.sysctls.clone(),
        cap_add: c.capability_add.clone(),
        cap_drop: c.capability_drop.clone(),
        ulimits: c.ulimits.clone(),
        readonly_rootfs: c.read_only,
        group_add: c.groups.clone(),
        oom_score_adj: c.oom_score_adj,
        extra_hosts: (!extra_hosts.is_empty()).then_some(extra_hosts),
        dns: dns.nameservers.clone(),
        dns_search: dns.search.clone(),
        dns_options: dns.options.clone(),
        port_bindings: (!bindings.is_empty()).then_some(bindings),
        network_mode: networks.first().map(|n| n.network.clone()),
        // Restarts are the manager's job: it replaces a failed task with a new one.
        restart_policy: Some(RestartPolicy {
            name: Some(RestartPolicyNameEnum::NO),
            maximum_retry_count: None,
        }),
        ..Default::default()
    };
    let endpoints: HashMap<String, EndpointSettings> = networks
        .iter()
        .map(|n| {
            (
                n.network.clone(),
                EndpointSettings {
                    aliases: Some(n.aliases.clone()),
                    ipam_config: n.ipv4.map(|ip| EndpointIpamConfig {
                        ipv4_address: Some(ip.to_string()),
                        ..Default::default()
                    }),
                    ..Default::default()
                },
            )
        })
        .collect();
    ContainerCreateBody {
        image: c.image.clone(),
        entrypoint: c.command.clone().filter(|v| !v.is_empty()),
        cmd: c.args.clone().filter(|v| !v.is_empty()),
        env: c.env.clone(),
        working_dir: c.dir.clone().filter(|d| !d.is_empty()),
        user: c.user.clone().filter(|u| !u.is_empty()),
        hostname: c.hostname.clone().filter(|h| !h.is_empty()),
        labels: Some(labels(task, node_id)),
        tty: c.tty,
        open_stdin: c.open_stdin,
        attach_stdin: c.open_stdin,
        stop_signal: c.stop_signal.clone().filter(|s| !s.is_empty()),
        stop_timeout: Some(stop_grace_secs(task)),
        healthcheck: c.health_check.clone(),
        exposed_ports: (!exposed.is_empty()).then_some(exposed),
        host_config: Some(host_config),
        networking_config: (!endpoints.is_empty()).then_some(NetworkingConfig {
            endpoints_config: Some(endpoints),
        }),
        ..Default::default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bollard_stubs::models::{TaskSpec, TaskSpecContainerSpec};

    fn task() -> Task {
        Task {
            id: Some("tid".into()),
            name: Some("web.1".into()),
            service_id: Some("sid".into()),
            labels: Some(HashMap::from([
                (SERVICE_NAME_LABEL.to_string(), "web".to_string()),
                ("com.docker.stack.namespace".to_string(), "st".to_string()),
                (
                    ENDPOINT_PORTS_LABEL.to_string(),
                    r#"[{"TargetPort":80,"PublishedPort":8080,"PublishMode":"host"}]"#.to_string(),
                ),
            ])),
            spec: Some(TaskSpec {
                container_spec: Some(TaskSpecContainerSpec {
                    image: Some("busybox".into()),
                    command: Some(vec!["sh".into()]),
                    args: Some(vec!["-c".into(), "true".into()]),
                    labels: Some(HashMap::from([("a".to_string(), "b".to_string())])),
                    stop_grace_period: Some(1_500_000_000),
                    hosts: Some(vec!["10.0.0.1 db db.local".into()]),
                    ..Default::default()
                }),
                ..Default::default()
            }),
            ..Default::default()
        }
    }

    #[test]
    fn create_body_carries_spec_labels_and_ports() {
        let nets = [Attachment {
            network: "st_default".into(),
            aliases: vec!["web".into()],
            ipv4: None,
        }];
        let b = create_body(&task(), "node1", &nets);
        assert_eq!(container_name(&task()), "web.1.tid");
        assert_eq!(b.entrypoint, Some(vec!["sh".to_string()]));
        assert_eq!(b.cmd, Some(vec!["-c".to_string(), "true".to_string()]));
        assert_eq!(b.stop_timeout, Some(2));
        let l = b.labels.unwrap();
        assert_eq!(l[TASK_ID_LABEL], "tid");
        assert_eq!(l[TASK_NAME_LABEL], "web.1.tid");
        assert_eq!(l[SERVICE_NAME_LABEL], "web");
        assert_eq!(l[NODE_ID_LABEL], "node1");
        assert_eq!(l["com.docker.stack.namespace"], "st");
        assert_eq!(l["a"], "b");
        assert!(!l.contains_key(ENDPOINT_PORTS_LABEL));
        let h = b.host_config.unwrap();
        assert_eq!(h.network_mode.as_deref(), Some("st_default"));
        let pb = h.port_bindings.unwrap();
        assert_eq!(
            pb["80/tcp"].as_ref().unwrap()[0].host_port.as_deref(),
            Some("8080")
        );
        assert_eq!(
            h.extra_hosts,
            Some(vec![
                "db:10.0.0.1".to_string(),
                "db.local:10.0.0.1".to_string()
            ])
        );
        assert_eq!(
            h.restart_policy.unwrap().name,
            Some(RestartPolicyNameEnum::NO)
        );
    }
}
