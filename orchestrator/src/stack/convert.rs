//! Compose project -> `ServiceSpec`s and network create requests.

use bollard_stubs::models::{
    EndpointPortConfig, EndpointPortConfigProtocolEnum, EndpointPortConfigPublishModeEnum,
    EndpointSpec, EndpointSpecModeEnum, HealthConfig, Ipam, IpamConfig, Limit, Mount,
    MountBindOptions, MountBindOptionsPropagationEnum, MountTmpfsOptions, MountType,
    MountVolumeOptions, MountVolumeOptionsDriverConfig, NetworkAttachmentConfig,
    NetworkCreateRequest, ResourceObject, ServiceSpec, ServiceSpecMode, ServiceSpecModeReplicated,
    ServiceSpecRollbackConfig, ServiceSpecRollbackConfigFailureActionEnum,
    ServiceSpecRollbackConfigOrderEnum, ServiceSpecUpdateConfig,
    ServiceSpecUpdateConfigFailureActionEnum, ServiceSpecUpdateConfigOrderEnum, TaskSpec,
    TaskSpecContainerSpec, TaskSpecContainerSpecConfigs, TaskSpecContainerSpecFile,
    TaskSpecContainerSpecFile1, TaskSpecContainerSpecSecrets, TaskSpecPlacement,
    TaskSpecPlacementPreferences, TaskSpecPlacementSpread, TaskSpecResources,
    TaskSpecRestartPolicy, TaskSpecRestartPolicyConditionEnum,
};
use compose_spec::model::{Deploy, Project, Service, UpdateConfig};
use std::collections::{BTreeSet, HashMap};
use std::str::FromStr;

/// The label naming a swarm object's stack.
pub const LABEL_NAMESPACE: &str = "com.docker.stack.namespace";
/// The label recording the image the stack file asked for.
pub const LABEL_IMAGE: &str = "com.docker.stack.image";

/// A stack file that cannot become swarm objects.
#[derive(Debug, thiserror::Error)]
pub enum StackError {
    /// A service has no image (stacks do not build).
    #[error("service {0} has no image: stack deploy does not build images")]
    NoImage(String),
    /// A value swarm cannot express.
    #[error("service {service}: {what}")]
    Invalid {
        /// The Compose service.
        service: String,
        /// What is wrong.
        what: String,
    },
    /// A top-level secret or config without usable content.
    #[error("{kind} {key}: {what}")]
    Data {
        /// `secret` or `config`.
        kind: String,
        /// Its key in the file.
        key: String,
        /// What is wrong.
        what: String,
    },
    /// `depends_on` goes round in a circle.
    #[error("circular dependency between services: {0}")]
    Cycle(String),
}

/// A network the stack creates (external networks are only referenced).
#[derive(Debug, Clone)]
pub struct StackNetwork {
    /// The request that creates it.
    pub create: NetworkCreateRequest,
}

/// One Compose service as a swarm service.
#[derive(Debug, Clone)]
pub struct StackService {
    /// The service's name in the Compose file.
    pub short_name: String,
    /// The spec, named `<stack>_<service>`.
    pub spec: ServiceSpec,
    /// The Compose services this one depends on (short names).
    pub depends_on: Vec<String>,
}

/// What `stack deploy` creates or updates.
#[derive(Debug, Clone, Default)]
pub struct StackPlan {
    /// Networks to create when missing, in name order.
    pub networks: Vec<StackNetwork>,
    /// External networks the services use; they must exist.
    pub external_networks: Vec<String>,
    /// Services in file order.
    pub services: Vec<StackService>,
    /// Short service names grouped by dependency level: a level depends only on earlier ones.
    pub levels: Vec<Vec<String>>,
    /// Secrets the stack creates (external ones are only referenced), in name order.
    pub secrets: Vec<StackData>,
    /// Configs the stack creates, in name order.
    pub configs: Vec<StackData>,
}

/// A secret or config the stack creates from a file (or, for configs, inline content).
#[derive(Debug, Clone)]
pub struct StackData {
    /// The swarm name: the top-level `name:` or `<stack>_<key>`.
    pub name: String,
    /// Labels, the stack namespace among them.
    pub labels: HashMap<String, String>,
    /// The content.
    pub data: Vec<u8>,
    /// `template_driver`.
    pub template_driver: Option<String>,
}

/// The swarm name of top-level secret or config `key`.
fn data_name(
    namespace: &str,
    objects: &indexmap::IndexMap<String, compose_spec::model::FileObject>,
    key: &str,
) -> String {
    match objects.get(key) {
        Some(o) if o.name.is_some() => o.name.clone().unwrap_or_default(),
        Some(o) if o.external.external => key.to_string(),
        _ => scoped(namespace, key),
    }
}

/// The secrets or configs a stack creates; `kind` is `secret` or `config` for messages.
fn stack_data(
    namespace: &str,
    objects: &indexmap::IndexMap<String, compose_spec::model::FileObject>,
    kind: &str,
) -> Result<Vec<StackData>, StackError> {
    let mut out = Vec::new();
    for (key, o) in objects {
        if o.external.external {
            continue;
        }
        let data = match (&o.file, &o.content, &o.environment) {
            (Some(f), _, _) => std::fs::read(f).map_err(|e| StackError::Data {
                kind: kind.to_string(),
                key: key.clone(),
                what: format!("reading {f}: {e}"),
            })?,
            (None, Some(c), _) => c.clone().into_bytes(),
            (None, None, Some(var)) => std::env::var(var)
                .map_err(|_| StackError::Data {
                    kind: kind.to_string(),
                    key: key.clone(),
                    what: format!("environment variable {var} is not set"),
                })?
                .into_bytes(),
            (None, None, None) => {
                return Err(StackError::Data {
                    kind: kind.to_string(),
                    key: key.clone(),
                    what: "needs file, content or environment (or external: true)".into(),
                });
            }
        };
        out.push(StackData {
            name: data_name(namespace, objects, key),
            labels: with_namespace(namespace, o.labels.iter()),
            data,
            template_driver: o.template_driver.clone(),
        });
    }
    out.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(out)
}

/// A service's reference as docker's stack conversion fills it: target (default given),
/// uid and gid "0", mode 0444.
fn file_of(
    r: &compose_spec::model::FileReference,
    default_target: String,
) -> (Option<String>, Option<String>, Option<String>, Option<u32>) {
    (
        Some(r.target.clone().unwrap_or(default_target)),
        Some(r.uid.clone().unwrap_or_else(|| "0".into())),
        Some(r.gid.clone().unwrap_or_else(|| "0".into())),
        Some(r.mode.map(|m| m.0).unwrap_or(0o444)),
    )
}

/// `<namespace>_<name>`, docker's scoping of stack objects.
pub fn scoped(namespace: &str, name: &str) -> String {
    format!("{namespace}_{name}")
}

fn with_namespace<'a>(
    namespace: &str,
    labels: impl IntoIterator<Item = (&'a String, &'a String)>,
) -> HashMap<String, String> {
    let mut m: HashMap<String, String> = labels
        .into_iter()
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    m.insert(LABEL_NAMESPACE.into(), namespace.into());
    m
}

/// Converts a loaded (normalized) project into the stack's swarm objects.
pub fn convert(namespace: &str, project: &Project) -> Result<StackPlan, StackError> {
    let mut plan = StackPlan::default();
    let mut used = BTreeSet::new();
    for svc in project.services.values() {
        if svc.networks.is_empty() && svc.network_mode.is_none() {
            used.insert("default".to_string());
        }
        used.extend(svc.networks.keys().cloned());
    }
    for key in &used {
        let net = project.networks.get(key);
        let name = network_name(namespace, project, key);
        if net.is_some_and(|n| n.external.external) {
            plan.external_networks.push(name);
            continue;
        }
        let mut create = NetworkCreateRequest {
            name,
            driver: Some("overlay".into()),
            labels: Some(with_namespace(namespace, [])),
            ..Default::default()
        };
        if let Some(n) = net {
            if let Some(d) = &n.driver {
                create.driver = Some(d.clone());
            }
            if !n.driver_opts.is_empty() {
                create.options = Some(n.driver_opts.clone().into_iter().collect());
            }
            create.internal = Some(n.internal);
            create.attachable = Some(n.attachable);
            create.labels = Some(with_namespace(namespace, n.labels.iter()));
            if n.ipam.driver.is_some() || !n.ipam.config.is_empty() {
                let configs = n
                    .ipam
                    .config
                    .iter()
                    .map(|c| IpamConfig {
                        subnet: c.subnet.clone(),
                        gateway: c.gateway.clone(),
                        ip_range: c.ip_range.clone(),
                        ..Default::default()
                    })
                    .collect();
                create.ipam = Some(Ipam {
                    driver: n.ipam.driver.clone(),
                    config: Some(configs),
                    ..Default::default()
                });
            }
        }
        plan.networks.push(StackNetwork { create });
    }
    for (key, svc) in &project.services {
        let spec = service_spec(namespace, project, key, svc)?;
        plan.services.push(StackService {
            short_name: key.clone(),
            spec,
            depends_on: svc
                .depends_on
                .keys()
                .filter(|d| project.services.contains_key(*d))
                .cloned()
                .collect(),
        });
    }
    plan.levels = levels(&plan.services)?;
    plan.secrets = stack_data(namespace, &project.secrets, "secret")?;
    plan.configs = stack_data(namespace, &project.configs, "config")?;
    Ok(plan)
}

fn network_name(namespace: &str, project: &Project, key: &str) -> String {
    match project.networks.get(key) {
        Some(n) if n.external.external => n
            .external
            .name
            .clone()
            .or_else(|| n.name.clone())
            .unwrap_or_else(|| key.to_string()),
        // The loader names project networks `<project>_<key>`; the project is the stack.
        Some(n) => n.name.clone().unwrap_or_else(|| scoped(namespace, key)),
        None => scoped(namespace, key),
    }
}

/// Groups services into dependency levels (Kahn's algorithm); a cycle is an error.
fn levels(services: &[StackService]) -> Result<Vec<Vec<String>>, StackError> {
    let mut done: BTreeSet<&str> = BTreeSet::new();
    let mut out = Vec::new();
    while done.len() < services.len() {
        let level: Vec<String> = services
            .iter()
            .filter(|s| !done.contains(s.short_name.as_str()))
            .filter(|s| s.depends_on.iter().all(|d| done.contains(d.as_str())))
            .map(|s| s.short_name.clone())
            .collect();
        if level.is_empty() {
            let left: Vec<&str> = services
                .iter()
                .map(|s| s.short_name.as_str())
                .filter(|n| !done.contains(n))
                .collect();
            return Err(StackError::Cycle(left.join(", ")));
        }
        for n in &level {
            if let Some(s) = services.iter().find(|s| &s.short_name == n) {
                done.insert(s.short_name.as_str());
            }
        }
        out.push(level);
    }
    Ok(out)
}

fn invalid(service: &str, what: impl Into<String>) -> StackError {
    StackError::Invalid {
        service: service.to_string(),
        what: what.into(),
    }
}

fn service_spec(
    namespace: &str,
    project: &Project,
    key: &str,
    svc: &Service,
) -> Result<ServiceSpec, StackError> {
    let image = svc
        .image
        .clone()
        .ok_or_else(|| StackError::NoImage(key.to_string()))?;
    let deploy = svc.deploy.clone().unwrap_or_default();
    let env: Vec<String> = svc
        .environment
        .iter()
        .filter_map(|(k, v)| v.as_ref().map(|v| format!("{k}={v}")))
        .collect();
    let container = TaskSpecContainerSpec {
        image: Some(image.clone()),
        labels: Some(with_namespace(namespace, svc.labels.iter())),
        command: svc.entrypoint.clone(),
        args: svc.command.clone(),
        hostname: svc.hostname.clone(),
        env: (!env.is_empty()).then_some(env),
        dir: svc.working_dir.clone(),
        user: svc.user.clone(),
        tty: svc.tty.then_some(true),
        open_stdin: svc.stdin_open.then_some(true),
        read_only: svc.read_only.then_some(true),
        mounts: Some(mounts(namespace, project, key, svc)?).filter(|m| !m.is_empty()),
        secrets: Some(
            svc.secrets
                .iter()
                .map(|r| {
                    let f = file_of(r, r.source.clone());
                    TaskSpecContainerSpecSecrets {
                        file: Some(TaskSpecContainerSpecFile {
                            name: f.0,
                            uid: f.1,
                            gid: f.2,
                            mode: f.3,
                        }),
                        secret_id: None,
                        secret_name: Some(data_name(namespace, &project.secrets, &r.source)),
                    }
                })
                .collect::<Vec<_>>(),
        )
        .filter(|v| !v.is_empty()),
        configs: Some(
            svc.configs
                .iter()
                .map(|r| {
                    let f = file_of(r, format!("/{}", r.source));
                    TaskSpecContainerSpecConfigs {
                        file: Some(TaskSpecContainerSpecFile1 {
                            name: f.0,
                            uid: f.1,
                            gid: f.2,
                            mode: f.3,
                        }),
                        runtime: None,
                        config_id: None,
                        config_name: Some(data_name(namespace, &project.configs, &r.source)),
                    }
                })
                .collect::<Vec<_>>(),
        )
        .filter(|v| !v.is_empty()),
        stop_signal: svc.stop_signal.clone(),
        stop_grace_period: svc.stop_grace_period.map(|d| d.0),
        health_check: svc.healthcheck.as_ref().map(|h| {
            if h.disable {
                HealthConfig {
                    test: Some(vec!["NONE".into()]),
                    ..Default::default()
                }
            } else {
                HealthConfig {
                    test: (!h.test.is_empty()).then(|| h.test.clone()),
                    interval: h.interval.map(|d| d.0),
                    timeout: h.timeout.map(|d| d.0),
                    retries: h.retries.map(|r| r as i64),
                    start_period: h.start_period.map(|d| d.0),
                    start_interval: h.start_interval.map(|d| d.0),
                }
            }
        }),
        hosts: {
            let h: Vec<String> = svc
                .extra_hosts
                .iter()
                .flat_map(|(host, ips)| ips.iter().map(move |ip| format!("{ip} {host}")))
                .collect();
            (!h.is_empty()).then_some(h)
        },
        init: svc.init,
        sysctls: (!svc.sysctls.is_empty())
            .then(|| svc.sysctls.clone().into_iter().collect::<HashMap<_, _>>()),
        capability_add: (!svc.cap_add.is_empty()).then(|| svc.cap_add.clone()),
        capability_drop: (!svc.cap_drop.is_empty()).then(|| svc.cap_drop.clone()),
        ..Default::default()
    };
    let mode = match deploy.mode.as_deref() {
        None | Some("replicated") => ServiceSpecMode {
            replicated: Some(ServiceSpecModeReplicated {
                replicas: Some(deploy.replicas.or(svc.scale).unwrap_or(1)),
            }),
            ..Default::default()
        },
        Some("global") => {
            if deploy.replicas.is_some() {
                return Err(invalid(
                    key,
                    "replicas can only be used with replicated mode",
                ));
            }
            ServiceSpecMode {
                global: Some(HashMap::new()),
                ..Default::default()
            }
        }
        Some(m) => return Err(invalid(key, format!("unknown mode: {m}"))),
    };
    let placement = TaskSpecPlacement {
        constraints: (!deploy.placement.constraints.is_empty())
            .then(|| deploy.placement.constraints.clone()),
        preferences: (!deploy.placement.preferences.is_empty()).then(|| {
            deploy
                .placement
                .preferences
                .iter()
                .map(|p| TaskSpecPlacementPreferences {
                    spread: Some(TaskSpecPlacementSpread {
                        spread_descriptor: Some(p.spread.clone()),
                    }),
                })
                .collect()
        }),
        max_replicas: (deploy.placement.max_replicas_per_node > 0)
            .then_some(deploy.placement.max_replicas_per_node as i64),
        ..Default::default()
    };
    let resources = TaskSpecResources {
        limits: deploy.resources.limits.as_ref().map(|l| Limit {
            nano_cpus: l.cpus.map(|c| (f64::from(c.0) * 1e9).round() as i64),
            memory_bytes: l.memory.map(|m| m.0),
            pids: l.pids,
        }),
        reservations: deploy
            .resources
            .reservations
            .as_ref()
            .map(|r| ResourceObject {
                nano_cpus: r.cpus.map(|c| (f64::from(c.0) * 1e9).round() as i64),
                memory_bytes: r.memory.map(|m| m.0),
                ..Default::default()
            }),
        ..Default::default()
    };
    let restart_policy = restart_policy(key, svc, &deploy)?;
    let mut networks: Vec<NetworkAttachmentConfig> = Vec::new();
    let attached: Vec<(String, Vec<String>)> =
        if svc.networks.is_empty() && svc.network_mode.is_none() {
            vec![("default".into(), Vec::new())]
        } else {
            svc.networks
                .iter()
                .map(|(n, cfg)| {
                    (
                        n.clone(),
                        cfg.as_ref().map(|c| c.aliases.clone()).unwrap_or_default(),
                    )
                })
                .collect()
        };
    for (net, mut aliases) in attached {
        aliases.push(key.to_string());
        networks.push(NetworkAttachmentConfig {
            target: Some(network_name(namespace, project, &net)),
            aliases: Some(aliases),
            ..Default::default()
        });
    }
    networks.sort_by(|a, b| a.target.cmp(&b.target));
    let endpoint_mode = match deploy.endpoint_mode.as_deref() {
        None => None,
        Some("vip") => Some(EndpointSpecModeEnum::VIP),
        Some("dnsrr") => Some(EndpointSpecModeEnum::DNSRR),
        Some(m) => return Err(invalid(key, format!("unknown endpoint mode: {m}"))),
    };
    let ports = ports(key, svc)?;
    let mut labels = with_namespace(namespace, deploy.labels.iter());
    labels.insert(LABEL_IMAGE.into(), image);
    Ok(ServiceSpec {
        name: Some(scoped(namespace, key)),
        labels: Some(labels),
        task_template: Some(TaskSpec {
            container_spec: Some(container),
            resources: Some(resources),
            restart_policy,
            placement: Some(placement),
            networks: Some(networks),
            ..Default::default()
        }),
        mode: Some(mode),
        update_config: deploy
            .update_config
            .as_ref()
            .map(|u| update_config(key, u))
            .transpose()?,
        rollback_config: deploy
            .rollback_config
            .as_ref()
            .map(|u| update_config(key, u).map(rollback_of))
            .transpose()?,
        endpoint_spec: Some(EndpointSpec {
            mode: endpoint_mode,
            ports: (!ports.is_empty()).then_some(ports),
        }),
        ..Default::default()
    })
}

fn restart_policy(
    key: &str,
    svc: &Service,
    deploy: &Deploy,
) -> Result<Option<TaskSpecRestartPolicy>, StackError> {
    if let Some(r) = &deploy.restart_policy {
        let condition = r
            .condition
            .as_deref()
            .map(|c| {
                TaskSpecRestartPolicyConditionEnum::from_str(c)
                    .map_err(|_| invalid(key, format!("unknown restart policy condition: {c}")))
            })
            .transpose()?;
        return Ok(Some(TaskSpecRestartPolicy {
            condition,
            delay: r.delay.map(|d| d.0),
            max_attempts: r.max_attempts.map(|m| m as i64),
            window: r.window.map(|d| d.0),
        }));
    }
    // docker/cli maps the container restart policy when deploy has none.
    let condition = match svc.restart.as_deref() {
        None => return Ok(None),
        Some("always" | "unless-stopped") => TaskSpecRestartPolicyConditionEnum::ANY,
        Some("no") => TaskSpecRestartPolicyConditionEnum::NONE,
        Some(s) if s.starts_with("on-failure") => TaskSpecRestartPolicyConditionEnum::ON_FAILURE,
        Some(s) => return Err(invalid(key, format!("unknown restart policy: {s}"))),
    };
    let max_attempts = svc
        .restart
        .as_deref()
        .and_then(|s| s.strip_prefix("on-failure:"))
        .and_then(|n| n.parse().ok());
    Ok(Some(TaskSpecRestartPolicy {
        condition: Some(condition),
        max_attempts,
        ..Default::default()
    }))
}

fn update_config(key: &str, u: &UpdateConfig) -> Result<ServiceSpecUpdateConfig, StackError> {
    let failure_action = u
        .failure_action
        .as_deref()
        .map(|f| {
            ServiceSpecUpdateConfigFailureActionEnum::from_str(f)
                .map_err(|_| invalid(key, format!("unknown failure_action: {f}")))
        })
        .transpose()?;
    let order = u
        .order
        .as_deref()
        .map(|o| {
            ServiceSpecUpdateConfigOrderEnum::from_str(o)
                .map_err(|_| invalid(key, format!("unknown order: {o}")))
        })
        .transpose()?;
    Ok(ServiceSpecUpdateConfig {
        // docker/cli: an unset parallelism is 1.
        parallelism: Some(u.parallelism.unwrap_or(1) as i64),
        delay: Some(u.delay.0),
        failure_action,
        monitor: Some(u.monitor.0),
        max_failure_ratio: Some(f64::from(u.max_failure_ratio.0)),
        order,
    })
}

/// The same settings as a rollback config (a distinct generated type).
pub(crate) fn rollback_of(u: ServiceSpecUpdateConfig) -> ServiceSpecRollbackConfig {
    ServiceSpecRollbackConfig {
        parallelism: u.parallelism,
        delay: u.delay,
        failure_action: u
            .failure_action
            .and_then(|f| ServiceSpecRollbackConfigFailureActionEnum::from_str(f.as_ref()).ok()),
        monitor: u.monitor,
        max_failure_ratio: u.max_failure_ratio,
        order: u
            .order
            .and_then(|o| ServiceSpecRollbackConfigOrderEnum::from_str(o.as_ref()).ok()),
    }
}

fn ports(key: &str, svc: &Service) -> Result<Vec<EndpointPortConfig>, StackError> {
    let mut out = Vec::new();
    for p in &svc.ports {
        let protocol = match p.protocol.as_deref() {
            None | Some("tcp") => EndpointPortConfigProtocolEnum::TCP,
            Some("udp") => EndpointPortConfigProtocolEnum::UDP,
            Some("sctp") => EndpointPortConfigProtocolEnum::SCTP,
            Some(x) => return Err(invalid(key, format!("unknown port protocol: {x}"))),
        };
        let publish_mode = match p.mode.as_deref() {
            None | Some("ingress") => EndpointPortConfigPublishModeEnum::INGRESS,
            Some("host") => EndpointPortConfigPublishModeEnum::HOST,
            Some(x) => return Err(invalid(key, format!("unknown port mode: {x}"))),
        };
        let published: Vec<Option<i64>> = match p.published.as_deref() {
            None | Some("") => vec![None],
            Some(s) => match s.split_once('-') {
                Some((a, b)) => {
                    let (a, b) = (port_number(key, a)?, port_number(key, b)?);
                    (a..=b).map(Some).collect()
                }
                None => vec![Some(port_number(key, s)?)],
            },
        };
        let single = published.len() == 1;
        for (i, pubp) in published.into_iter().enumerate() {
            out.push(EndpointPortConfig {
                name: p.name.clone(),
                protocol: Some(protocol),
                target_port: Some(i64::from(p.target) + if single { 0 } else { i as i64 }),
                published_port: pubp,
                publish_mode: Some(publish_mode),
            });
        }
    }
    Ok(out)
}

fn port_number(key: &str, s: &str) -> Result<i64, StackError> {
    s.trim()
        .parse::<u16>()
        .map(i64::from)
        .map_err(|_| invalid(key, format!("invalid published port: {s}")))
}

fn mounts(
    namespace: &str,
    project: &Project,
    key: &str,
    svc: &Service,
) -> Result<Vec<Mount>, StackError> {
    let mut out = Vec::new();
    for v in &svc.volumes {
        let typ = MountType::from_str(&v.kind)
            .map_err(|_| invalid(key, format!("unsupported volume type: {}", v.kind)))?;
        let mut m = Mount {
            target: Some(v.target.clone()),
            typ: Some(typ),
            read_only: v.read_only.then_some(true),
            consistency: v.consistency.clone(),
            ..Default::default()
        };
        match v.kind.as_str() {
            "volume" => {
                m.source = v.source.as_ref().map(|s| match project.volumes.get(s) {
                    Some(vol) if vol.external.external => vol
                        .external
                        .name
                        .clone()
                        .or_else(|| vol.name.clone())
                        .unwrap_or_else(|| s.clone()),
                    Some(vol) => vol.name.clone().unwrap_or_else(|| scoped(namespace, s)),
                    None => s.clone(),
                });
                let mut opts = MountVolumeOptions {
                    labels: Some(with_namespace(namespace, [])),
                    ..Default::default()
                };
                if let Some(vv) = &v.volume {
                    opts.no_copy = vv.nocopy.then_some(true);
                    opts.subpath = vv.subpath.clone();
                    if !vv.labels.is_empty()
                        && let Some(l) = opts.labels.as_mut()
                    {
                        l.extend(vv.labels.clone());
                    }
                }
                if let Some(vol) = v.source.as_ref().and_then(|s| project.volumes.get(s))
                    && !vol.external.external
                    && (vol.driver.is_some() || !vol.driver_opts.is_empty())
                {
                    opts.driver_config = Some(MountVolumeOptionsDriverConfig {
                        name: vol.driver.clone(),
                        options: Some(vol.driver_opts.clone().into_iter().collect()),
                    });
                }
                m.volume_options = Some(opts);
            }
            "bind" => {
                m.source = v.source.clone();
                if let Some(b) = &v.bind
                    && let Some(p) = &b.propagation
                {
                    m.bind_options = Some(MountBindOptions {
                        propagation: MountBindOptionsPropagationEnum::from_str(p).ok(),
                        ..Default::default()
                    });
                }
            }
            "tmpfs" => {
                if let Some(t) = &v.tmpfs {
                    m.tmpfs_options = Some(MountTmpfsOptions {
                        size_bytes: t.size.map(|s| s.0),
                        mode: t.mode.map(i64::from),
                        ..Default::default()
                    });
                }
            }
            _ => m.source = v.source.clone(),
        }
        out.push(m);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use compose_spec::loader::{LoadOptions, load_project};

    fn load(yaml: &str) -> Project {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("stack.yml");
        std::fs::write(&f, yaml).unwrap();
        let opts = LoadOptions {
            config_files: vec![f],
            project_name: Some("st".into()),
            ..LoadOptions::default()
        };
        load_project(&opts).unwrap().project
    }

    const STACK: &str = r#"
services:
  db:
    image: busybox:latest
    command: ["sleep", "3600"]
    environment: {A: "1"}
    volumes: [data:/data, /tmp:/host:ro]
    deploy:
      replicas: 2
      labels: {tier: back}
      resources:
        limits: {cpus: "0.5", memory: 64M}
        reservations: {memory: 32M}
      restart_policy: {condition: on-failure, delay: 5s, max_attempts: 3}
      update_config: {parallelism: 2, delay: 10s, order: start-first, failure_action: rollback}
      placement:
        constraints: [node.role == manager]
        preferences: [{spread: node.labels.zone}]
        max_replicas_per_node: 1
  web:
    image: busybox:latest
    entrypoint: ["sh", "-c"]
    command: ["httpd -f"]
    ports: ["8080:80", {target: 443, published: "8443", mode: host}]
    networks:
      front: {aliases: [www]}
    depends_on: [db]
    deploy:
      mode: global
      endpoint_mode: dnsrr
    healthcheck:
      test: ["CMD", "true"]
      interval: 2s
networks:
  front: {}
volumes:
  data: {}
"#;

    #[test]
    fn converts_services_networks_and_order() {
        let plan = convert("st", &load(STACK)).unwrap();
        let names: Vec<&str> = plan
            .networks
            .iter()
            .map(|n| n.create.name.as_str())
            .collect();
        assert_eq!(names, ["st_default", "st_front"]);
        assert_eq!(plan.networks[0].create.driver.as_deref(), Some("overlay"));
        assert_eq!(
            plan.networks[0].create.labels.as_ref().unwrap()[LABEL_NAMESPACE],
            "st"
        );
        assert_eq!(
            plan.levels,
            vec![vec!["db".to_string()], vec!["web".into()]]
        );

        let db = &plan.services[0].spec;
        assert_eq!(db.name.as_deref(), Some("st_db"));
        let labels = db.labels.as_ref().unwrap();
        assert_eq!(labels[LABEL_NAMESPACE], "st");
        assert_eq!(labels[LABEL_IMAGE], "busybox:latest");
        assert_eq!(labels["tier"], "back");
        assert_eq!(
            db.mode
                .as_ref()
                .unwrap()
                .replicated
                .as_ref()
                .unwrap()
                .replicas,
            Some(2)
        );
        let t = db.task_template.as_ref().unwrap();
        let c = t.container_spec.as_ref().unwrap();
        assert_eq!(
            c.args.as_deref(),
            Some(&["sleep".to_string(), "3600".into()][..])
        );
        assert_eq!(c.env.as_deref(), Some(&["A=1".to_string()][..]));
        let m = c.mounts.as_ref().unwrap();
        assert_eq!(m[0].source.as_deref(), Some("st_data"));
        assert_eq!(m[0].typ, Some(MountType::VOLUME));
        assert_eq!(m[1].typ, Some(MountType::BIND));
        assert_eq!(m[1].read_only, Some(true));
        let r = t.resources.as_ref().unwrap();
        assert_eq!(r.limits.as_ref().unwrap().nano_cpus, Some(500_000_000));
        assert_eq!(r.limits.as_ref().unwrap().memory_bytes, Some(64 << 20));
        assert_eq!(
            r.reservations.as_ref().unwrap().memory_bytes,
            Some(32 << 20)
        );
        let rp = t.restart_policy.as_ref().unwrap();
        assert_eq!(
            rp.condition,
            Some(TaskSpecRestartPolicyConditionEnum::ON_FAILURE)
        );
        assert_eq!(rp.delay, Some(5_000_000_000));
        assert_eq!(rp.max_attempts, Some(3));
        let p = t.placement.as_ref().unwrap();
        assert_eq!(
            p.constraints.as_deref(),
            Some(&["node.role == manager".to_string()][..])
        );
        assert_eq!(p.max_replicas, Some(1));
        let u = db.update_config.as_ref().unwrap();
        assert_eq!(u.parallelism, Some(2));
        assert_eq!(u.delay, Some(10_000_000_000));
        assert_eq!(u.order, Some(ServiceSpecUpdateConfigOrderEnum::START_FIRST));
        assert_eq!(
            u.failure_action,
            Some(ServiceSpecUpdateConfigFailureActionEnum::ROLLBACK)
        );
        let nets = t.networks.as_ref().unwrap();
        assert_eq!(nets[0].target.as_deref(), Some("st_default"));
        assert_eq!(nets[0].aliases.as_deref(), Some(&["db".to_string()][..]));

        let web = &plan.services[1];
        assert_eq!(web.depends_on, ["db"]);
        let spec = &web.spec;
        assert!(spec.mode.as_ref().unwrap().global.is_some());
        let e = spec.endpoint_spec.as_ref().unwrap();
        assert_eq!(e.mode, Some(EndpointSpecModeEnum::DNSRR));
        let ports = e.ports.as_ref().unwrap();
        assert_eq!(ports[0].published_port, Some(8080));
        assert_eq!(ports[0].target_port, Some(80));
        assert_eq!(
            ports[0].publish_mode,
            Some(EndpointPortConfigPublishModeEnum::INGRESS)
        );
        assert_eq!(
            ports[1].publish_mode,
            Some(EndpointPortConfigPublishModeEnum::HOST)
        );
        let c = spec
            .task_template
            .as_ref()
            .unwrap()
            .container_spec
            .as_ref()
            .unwrap();
        assert_eq!(
            c.command.as_deref(),
            Some(&["sh".to_string(), "-c".into()][..])
        );
        assert_eq!(
            c.health_check.as_ref().unwrap().interval,
            Some(2_000_000_000)
        );
        let nets = spec
            .task_template
            .as_ref()
            .unwrap()
            .networks
            .as_ref()
            .unwrap();
        assert_eq!(nets[0].target.as_deref(), Some("st_front"));
        assert_eq!(
            nets[0].aliases.as_deref(),
            Some(&["www".to_string(), "web".into()][..])
        );
    }

    #[test]
    fn no_image_and_cycles_are_errors() {
        let p = load("services:\n  a:\n    build: .\n");
        assert!(matches!(convert("st", &p), Err(StackError::NoImage(_))));
        let services = vec![
            StackService {
                short_name: "a".into(),
                spec: ServiceSpec::default(),
                depends_on: vec!["b".into()],
            },
            StackService {
                short_name: "b".into(),
                spec: ServiceSpec::default(),
                depends_on: vec!["a".into()],
            },
        ];
        assert!(matches!(levels(&services), Err(StackError::Cycle(_))));
    }

    #[test]
    fn global_with_replicas_is_rejected() {
        let p = load("services:\n  a:\n    image: x\n    deploy: {mode: global, replicas: 2}\n");
        assert!(matches!(convert("st", &p), Err(StackError::Invalid { .. })));
    }
}
