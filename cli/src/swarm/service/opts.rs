//! The flags `service create` and `service update` share, and how they change a spec.

use crate::swarm::util::{parse_bytes, parse_duration};
use anyhow::{Context, Result, bail};
use bollard_stubs::models::{
    EndpointPortConfig, EndpointPortConfigProtocolEnum, EndpointPortConfigPublishModeEnum,
    EndpointSpec, EndpointSpecModeEnum, HealthConfig, Limit, Mount, MountType, MountVolumeOptions,
    NetworkAttachmentConfig, ResourceObject, ServiceSpec, ServiceSpecMode,
    ServiceSpecModeReplicated, ServiceSpecRollbackConfig,
    ServiceSpecRollbackConfigFailureActionEnum, ServiceSpecRollbackConfigOrderEnum,
    ServiceSpecUpdateConfig, ServiceSpecUpdateConfigFailureActionEnum,
    ServiceSpecUpdateConfigOrderEnum, TaskSpec, TaskSpecContainerSpec,
    TaskSpecContainerSpecConfigs, TaskSpecContainerSpecFile, TaskSpecContainerSpecFile1,
    TaskSpecContainerSpecSecrets, TaskSpecPlacement, TaskSpecPlacementPreferences,
    TaskSpecPlacementSpread, TaskSpecResources, TaskSpecRestartPolicy,
    TaskSpecRestartPolicyConditionEnum,
};
use clap::Args;
use std::str::FromStr;

/// Flags both `create` and `update` take; unset ones leave the spec alone.
#[derive(Debug, Args, Default)]
pub struct SpecFlags {
    /// Number of tasks.
    #[arg(long)]
    pub replicas: Option<i64>,
    /// Add or update a placement constraint.
    #[arg(long)]
    pub constraint: Vec<String>,
    /// Add a placement preference (spread=<label>).
    #[arg(long = "placement-pref")]
    pub placement_pref: Vec<String>,
    /// Maximum number of tasks per node (default 0 = unlimited).
    #[arg(long = "replicas-max-per-node")]
    pub replicas_max_per_node: Option<i64>,
    /// Attach a filesystem mount to the service.
    #[arg(long)]
    pub mount: Vec<String>,
    /// Specify secrets to expose to the service (name, or source=,target=,uid=,gid=,mode=).
    #[arg(long, alias = "secret-add")]
    pub secret: Vec<String>,
    /// Specify configurations to expose to the service (as --secret).
    #[arg(long, alias = "config-add")]
    pub config: Vec<String>,
    /// Publish a port as a node port.
    #[arg(short, long)]
    pub publish: Vec<String>,
    /// Network attachments.
    #[arg(long)]
    pub network: Vec<String>,
    /// Endpoint mode (vip or dnsrr).
    #[arg(long = "endpoint-mode")]
    pub endpoint_mode: Option<String>,
    /// Reserve CPUs.
    #[arg(long = "reserve-cpu")]
    pub reserve_cpu: Option<f64>,
    /// Reserve Memory.
    #[arg(long = "reserve-memory")]
    pub reserve_memory: Option<String>,
    /// Limit CPUs.
    #[arg(long = "limit-cpu")]
    pub limit_cpu: Option<f64>,
    /// Limit Memory.
    #[arg(long = "limit-memory")]
    pub limit_memory: Option<String>,
    /// Limit maximum number of processes (default 0 = unlimited).
    #[arg(long = "limit-pids")]
    pub limit_pids: Option<i64>,
    /// Restart when condition is met ("none", "on-failure", "any").
    #[arg(long = "restart-condition")]
    pub restart_condition: Option<String>,
    /// Delay between restart attempts (ns|us|ms|s|m|h).
    #[arg(long = "restart-delay")]
    pub restart_delay: Option<String>,
    /// Maximum number of restarts before giving up.
    #[arg(long = "restart-max-attempts")]
    pub restart_max_attempts: Option<i64>,
    /// Window used to evaluate the restart policy (ns|us|ms|s|m|h).
    #[arg(long = "restart-window")]
    pub restart_window: Option<String>,
    /// Maximum number of tasks updated simultaneously (0 to update all at once).
    #[arg(long = "update-parallelism")]
    pub update_parallelism: Option<i64>,
    /// Delay between updates (ns|us|ms|s|m|h).
    #[arg(long = "update-delay")]
    pub update_delay: Option<String>,
    /// Action on update failure ("pause", "continue", "rollback").
    #[arg(long = "update-failure-action")]
    pub update_failure_action: Option<String>,
    /// Duration after each task update to monitor for failure (ns|us|ms|s|m|h).
    #[arg(long = "update-monitor")]
    pub update_monitor: Option<String>,
    /// Failure rate to tolerate during an update.
    #[arg(long = "update-max-failure-ratio")]
    pub update_max_failure_ratio: Option<f64>,
    /// Update order ("start-first", "stop-first").
    #[arg(long = "update-order")]
    pub update_order: Option<String>,
    /// Maximum number of tasks rolled back simultaneously (0 to roll back all at once).
    #[arg(long = "rollback-parallelism")]
    pub rollback_parallelism: Option<i64>,
    /// Delay between task rollbacks (ns|us|ms|s|m|h).
    #[arg(long = "rollback-delay")]
    pub rollback_delay: Option<String>,
    /// Action on rollback failure ("pause", "continue").
    #[arg(long = "rollback-failure-action")]
    pub rollback_failure_action: Option<String>,
    /// Duration after each task rollback to monitor for failure (ns|us|ms|s|m|h).
    #[arg(long = "rollback-monitor")]
    pub rollback_monitor: Option<String>,
    /// Failure rate to tolerate during a rollback.
    #[arg(long = "rollback-max-failure-ratio")]
    pub rollback_max_failure_ratio: Option<f64>,
    /// Rollback order ("start-first", "stop-first").
    #[arg(long = "rollback-order")]
    pub rollback_order: Option<String>,
    /// Working directory inside the container.
    #[arg(short, long)]
    pub workdir: Option<String>,
    /// Username or UID (format: <name|uid>[:<group|gid>]).
    #[arg(short, long)]
    pub user: Option<String>,
    /// Container hostname.
    #[arg(long)]
    pub hostname: Option<String>,
    /// Command to run to check health.
    #[arg(long = "health-cmd")]
    pub health_cmd: Option<String>,
    /// Time between running the check (ms|s|m|h).
    #[arg(long = "health-interval")]
    pub health_interval: Option<String>,
    /// Maximum time to allow one check to run (ms|s|m|h).
    #[arg(long = "health-timeout")]
    pub health_timeout: Option<String>,
    /// Consecutive failures needed to report unhealthy.
    #[arg(long = "health-retries")]
    pub health_retries: Option<i64>,
    /// Start period for the container to initialize before counting retries (ms|s|m|h).
    #[arg(long = "health-start-period")]
    pub health_start_period: Option<String>,
    /// Disable any container-specified HEALTHCHECK.
    #[arg(long = "no-healthcheck")]
    pub no_healthcheck: bool,
    /// Time to wait before force killing a container (ns|us|ms|s|m|h).
    #[arg(long = "stop-grace-period")]
    pub stop_grace_period: Option<String>,
    /// Signal to stop the container.
    #[arg(long = "stop-signal")]
    pub stop_signal: Option<String>,
    /// Allocate a pseudo-TTY.
    #[arg(short, long)]
    pub tty: bool,
    /// Mount the container's root filesystem as read only.
    #[arg(long = "read-only")]
    pub read_only: bool,
    /// Use an init inside each service container to forward signals and reap processes.
    #[arg(long)]
    pub init: bool,
}

fn enum_of<T: FromStr>(what: &str, v: &str) -> Result<T> {
    T::from_str(v).map_err(|_| anyhow::anyhow!("invalid {what}: {v:?}"))
}

fn nano_cpus(c: f64) -> i64 {
    (c * 1e9).round() as i64
}

impl SpecFlags {
    /// Applies the set flags to `spec` (a new spec for create, the current one for update).
    pub fn apply(&self, spec: &mut ServiceSpec) -> Result<()> {
        if let Some(r) = self.replicas {
            let mode = spec.mode.get_or_insert_with(Default::default);
            if mode.global.is_some() {
                bail!("replicas can only be used with replicated or replicated-job mode");
            }
            mode.replicated = Some(ServiceSpecModeReplicated { replicas: Some(r) });
        }
        let task = spec.task_template.get_or_insert_with(TaskSpec::default);
        let c = task
            .container_spec
            .get_or_insert_with(TaskSpecContainerSpec::default);
        if let Some(w) = &self.workdir {
            c.dir = Some(w.clone());
        }
        if let Some(u) = &self.user {
            c.user = Some(u.clone());
        }
        if let Some(h) = &self.hostname {
            c.hostname = Some(h.clone());
        }
        if let Some(g) = &self.stop_grace_period {
            c.stop_grace_period = Some(parse_duration(g)?);
        }
        if let Some(sig) = &self.stop_signal {
            c.stop_signal = Some(sig.clone());
        }
        if self.tty {
            c.tty = Some(true);
        }
        if self.read_only {
            c.read_only = Some(true);
        }
        if self.init {
            c.init = Some(true);
        }
        if self.no_healthcheck {
            c.health_check = Some(HealthConfig {
                test: Some(vec!["NONE".into()]),
                ..Default::default()
            });
        } else if self.health_cmd.is_some()
            || self.health_interval.is_some()
            || self.health_timeout.is_some()
            || self.health_retries.is_some()
            || self.health_start_period.is_some()
        {
            let h = c.health_check.get_or_insert_with(HealthConfig::default);
            if let Some(cmd) = &self.health_cmd {
                h.test = Some(vec!["CMD-SHELL".into(), cmd.clone()]);
            }
            if let Some(d) = &self.health_interval {
                h.interval = Some(parse_duration(d)?);
            }
            if let Some(d) = &self.health_timeout {
                h.timeout = Some(parse_duration(d)?);
            }
            if let Some(r) = self.health_retries {
                h.retries = Some(r);
            }
            if let Some(d) = &self.health_start_period {
                h.start_period = Some(parse_duration(d)?);
            }
        }
        for r in &self.secret {
            let f = parse_file_ref(r, "")?;
            let list = c.secrets.get_or_insert_with(Vec::new);
            list.retain(|x| x.file.as_ref().and_then(|f| f.name.as_ref()) != Some(&f.target));
            list.push(TaskSpecContainerSpecSecrets {
                file: Some(f.file()),
                secret_id: None,
                secret_name: Some(f.source),
            });
        }
        for r in &self.config {
            let f = parse_file_ref(r, "/")?;
            let list = c.configs.get_or_insert_with(Vec::new);
            list.retain(|x| x.file.as_ref().and_then(|f| f.name.as_ref()) != Some(&f.target));
            list.push(TaskSpecContainerSpecConfigs {
                file: Some(f.file1()),
                runtime: None,
                config_id: None,
                config_name: Some(f.source),
            });
        }
        for m in &self.mount {
            let mount = parse_mount(m)?;
            let mounts = c.mounts.get_or_insert_with(Vec::new);
            mounts.retain(|x| x.target != mount.target);
            mounts.push(mount);
        }
        if !self.constraint.is_empty()
            || !self.placement_pref.is_empty()
            || self.replicas_max_per_node.is_some()
        {
            let p = task
                .placement
                .get_or_insert_with(TaskSpecPlacement::default);
            let cons = p.constraints.get_or_insert_with(Vec::new);
            for k in &self.constraint {
                if !cons.contains(k) {
                    cons.push(k.clone());
                }
            }
            for pref in &self.placement_pref {
                let Some(("spread", d)) = pref.split_once('=') else {
                    bail!("invalid placement preference {pref:?}: expected spread=<label>");
                };
                p.preferences
                    .get_or_insert_with(Vec::new)
                    .push(TaskSpecPlacementPreferences {
                        spread: Some(TaskSpecPlacementSpread {
                            spread_descriptor: Some(d.to_string()),
                        }),
                    });
            }
            if let Some(m) = self.replicas_max_per_node {
                p.max_replicas = Some(m);
            }
        }
        if self.reserve_cpu.is_some()
            || self.reserve_memory.is_some()
            || self.limit_cpu.is_some()
            || self.limit_memory.is_some()
            || self.limit_pids.is_some()
        {
            let r = task
                .resources
                .get_or_insert_with(TaskSpecResources::default);
            if self.limit_cpu.is_some() || self.limit_memory.is_some() || self.limit_pids.is_some()
            {
                let l = r.limits.get_or_insert_with(Limit::default);
                if let Some(cpu) = self.limit_cpu {
                    l.nano_cpus = Some(nano_cpus(cpu));
                }
                if let Some(m) = &self.limit_memory {
                    l.memory_bytes = Some(parse_bytes(m)?);
                }
                if let Some(p) = self.limit_pids {
                    l.pids = Some(p);
                }
            }
            if self.reserve_cpu.is_some() || self.reserve_memory.is_some() {
                let res = r.reservations.get_or_insert_with(ResourceObject::default);
                if let Some(cpu) = self.reserve_cpu {
                    res.nano_cpus = Some(nano_cpus(cpu));
                }
                if let Some(m) = &self.reserve_memory {
                    res.memory_bytes = Some(parse_bytes(m)?);
                }
            }
        }
        if self.restart_condition.is_some()
            || self.restart_delay.is_some()
            || self.restart_max_attempts.is_some()
            || self.restart_window.is_some()
        {
            let r = task
                .restart_policy
                .get_or_insert_with(TaskSpecRestartPolicy::default);
            if let Some(cond) = &self.restart_condition {
                r.condition = Some(enum_of::<TaskSpecRestartPolicyConditionEnum>(
                    "restart condition",
                    cond,
                )?);
            }
            if let Some(d) = &self.restart_delay {
                r.delay = Some(parse_duration(d)?);
            }
            if let Some(m) = self.restart_max_attempts {
                r.max_attempts = Some(m);
            }
            if let Some(d) = &self.restart_window {
                r.window = Some(parse_duration(d)?);
            }
        }
        for n in &self.network {
            let target = n
                .split(',')
                .find_map(|kv| {
                    kv.strip_prefix("name=")
                        .or_else(|| kv.strip_prefix("target="))
                })
                .unwrap_or(n);
            let nets = task.networks.get_or_insert_with(Vec::new);
            if !nets.iter().any(|x| x.target.as_deref() == Some(target)) {
                nets.push(NetworkAttachmentConfig {
                    target: Some(target.to_string()),
                    ..Default::default()
                });
            }
        }
        if self.update_parallelism.is_some()
            || self.update_delay.is_some()
            || self.update_failure_action.is_some()
            || self.update_monitor.is_some()
            || self.update_max_failure_ratio.is_some()
            || self.update_order.is_some()
        {
            let u = spec
                .update_config
                .get_or_insert_with(ServiceSpecUpdateConfig::default);
            if let Some(p) = self.update_parallelism {
                u.parallelism = Some(p);
            }
            if let Some(d) = &self.update_delay {
                u.delay = Some(parse_duration(d)?);
            }
            if let Some(f) = &self.update_failure_action {
                u.failure_action = Some(enum_of::<ServiceSpecUpdateConfigFailureActionEnum>(
                    "update failure action",
                    f,
                )?);
            }
            if let Some(d) = &self.update_monitor {
                u.monitor = Some(parse_duration(d)?);
            }
            if let Some(r) = self.update_max_failure_ratio {
                u.max_failure_ratio = Some(r);
            }
            if let Some(o) = &self.update_order {
                u.order = Some(enum_of::<ServiceSpecUpdateConfigOrderEnum>(
                    "update order",
                    o,
                )?);
            }
        }
        if self.rollback_parallelism.is_some()
            || self.rollback_delay.is_some()
            || self.rollback_failure_action.is_some()
            || self.rollback_monitor.is_some()
            || self.rollback_max_failure_ratio.is_some()
            || self.rollback_order.is_some()
        {
            let u = spec
                .rollback_config
                .get_or_insert_with(ServiceSpecRollbackConfig::default);
            if let Some(p) = self.rollback_parallelism {
                u.parallelism = Some(p);
            }
            if let Some(d) = &self.rollback_delay {
                u.delay = Some(parse_duration(d)?);
            }
            if let Some(f) = &self.rollback_failure_action {
                u.failure_action = Some(enum_of::<ServiceSpecRollbackConfigFailureActionEnum>(
                    "rollback failure action",
                    f,
                )?);
            }
            if let Some(d) = &self.rollback_monitor {
                u.monitor = Some(parse_duration(d)?);
            }
            if let Some(r) = self.rollback_max_failure_ratio {
                u.max_failure_ratio = Some(r);
            }
            if let Some(o) = &self.rollback_order {
                u.order = Some(enum_of::<ServiceSpecRollbackConfigOrderEnum>(
                    "rollback order",
                    o,
                )?);
            }
        }
        if self.endpoint_mode.is_some() || !self.publish.is_empty() {
            let e = spec.endpoint_spec.get_or_insert_with(EndpointSpec::default);
            if let Some(m) = &self.endpoint_mode {
                e.mode = Some(enum_of::<EndpointSpecModeEnum>("endpoint mode", m)?);
            }
            for p in &self.publish {
                for port in parse_publish(p)? {
                    let ports = e.ports.get_or_insert_with(Vec::new);
                    ports.retain(|x| {
                        !(x.published_port == port.published_port
                            && x.published_port.is_some()
                            && x.protocol == port.protocol)
                    });
                    ports.push(port);
                }
            }
        }
        Ok(())
    }
}

/// `--mode replicated|global`.
pub fn mode(mode: &str, replicas: Option<i64>) -> Result<ServiceSpecMode> {
    match mode {
        "replicated" => Ok(ServiceSpecMode {
            replicated: Some(ServiceSpecModeReplicated {
                replicas: Some(replicas.unwrap_or(1)),
            }),
            ..Default::default()
        }),
        "global" => {
            if replicas.is_some() {
                bail!("replicas can only be used with replicated or replicated-job mode");
            }
            Ok(ServiceSpecMode {
                global: Some(Default::default()),
                ..Default::default()
            })
        }
        m => bail!("invalid mode {m:?}: must be replicated or global"),
    }
}

/// `-p` short (`[published:]target[/proto]`) or long (`published=..,target=..,mode=..`).
pub fn parse_publish(p: &str) -> Result<Vec<EndpointPortConfig>> {
    let mut port = EndpointPortConfig {
        protocol: Some(EndpointPortConfigProtocolEnum::TCP),
        publish_mode: Some(EndpointPortConfigPublishModeEnum::INGRESS),
        ..Default::default()
    };
    let num = |s: &str| -> Result<i64> {
        s.parse::<u16>()
            .map(i64::from)
            .with_context(|| format!("invalid port {s:?} in {p:?}"))
    };
    if p.contains('=') {
        for kv in p.split(',') {
            let (k, v) = kv
                .split_once('=')
                .with_context(|| format!("invalid field {kv:?} in {p:?}"))?;
            match k {
                "published" => port.published_port = Some(num(v)?),
                "target" => port.target_port = Some(num(v)?),
                "mode" => port.publish_mode = Some(enum_of("publish mode", v)?),
                "protocol" => port.protocol = Some(enum_of("protocol", v)?),
                _ => bail!("invalid field key {k:?} in {p:?}"),
            }
        }
        if port.target_port.is_none() {
            bail!("missing mandatory field \"target\" in {p:?}");
        }
        return Ok(vec![port]);
    }
    let (ports, proto) = match p.split_once('/') {
        Some((a, b)) => (a, Some(b)),
        None => (p, None),
    };
    if let Some(proto) = proto {
        port.protocol = Some(enum_of("protocol", proto)?);
    }
    match ports.rsplit_once(':') {
        Some((published, target)) => {
            port.published_port = Some(num(published.rsplit(':').next().unwrap_or(published))?);
            port.target_port = Some(num(target)?);
        }
        None => port.target_port = Some(num(ports)?),
    }
    Ok(vec![port])
}

/// A `--secret`/`--config` value: the object's name and the file it becomes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileRefFlag {
    /// The secret's or config's name.
    pub source: String,
    /// The target (a name below /run/secrets for secrets, or a path).
    pub target: String,
    /// Owner.
    pub uid: String,
    /// Group.
    pub gid: String,
    /// Permission bits.
    pub mode: u32,
}

impl FileRefFlag {
    fn file(&self) -> TaskSpecContainerSpecFile {
        TaskSpecContainerSpecFile {
            name: Some(self.target.clone()),
            uid: Some(self.uid.clone()),
            gid: Some(self.gid.clone()),
            mode: Some(self.mode),
        }
    }

    fn file1(&self) -> TaskSpecContainerSpecFile1 {
        TaskSpecContainerSpecFile1 {
            name: Some(self.target.clone()),
            uid: Some(self.uid.clone()),
            gid: Some(self.gid.clone()),
            mode: Some(self.mode),
        }
    }
}

/// `NAME` or `source=NAME[,target=T][,uid=U][,gid=G][,mode=0444]`, as docker parses it;
/// the default target is the name (prefixed with `default_dir` for configs).
pub fn parse_file_ref(v: &str, default_dir: &str) -> Result<FileRefFlag> {
    let mut f = FileRefFlag {
        source: String::new(),
        target: String::new(),
        uid: "0".into(),
        gid: "0".into(),
        mode: 0o444,
    };
    if !v.contains('=') {
        f.source = v.to_string();
    } else {
        for part in v.split(',') {
            let Some((k, val)) = part.split_once('=') else {
                bail!("invalid field '{part}' must be a key=value pair");
            };
            match k.to_lowercase().as_str() {
                "source" | "src" => f.source = val.to_string(),
                "target" => f.target = val.to_string(),
                "uid" => f.uid = val.to_string(),
                "gid" => f.gid = val.to_string(),
                "mode" => {
                    f.mode = u32::from_str_radix(val, 8)
                        .map_err(|_| anyhow::anyhow!("invalid mode specified: {val}"))?;
                }
                _ => bail!("invalid field in secret request: {k}"),
            }
        }
    }
    if f.source.is_empty() {
        bail!("source is required");
    }
    if f.target.is_empty() {
        f.target = format!("{default_dir}{}", f.source);
    }
    Ok(f)
}

/// `--mount type=volume,source=x,target=/y[,readonly][,volume-nocopy]`.
pub fn parse_mount(m: &str) -> Result<Mount> {
    let mut mount = Mount {
        typ: Some(MountType::VOLUME),
        ..Default::default()
    };
    for kv in m.split(',') {
        let (k, v) = kv.split_once('=').unwrap_or((kv, "true"));
        let flag = || v == "true" || v == "1";
        match k {
            "type" => mount.typ = Some(enum_of("mount type", v)?),
            "source" | "src" => mount.source = Some(v.to_string()),
            "target" | "dst" | "destination" => mount.target = Some(v.to_string()),
            "readonly" | "ro" => mount.read_only = Some(flag()),
            "consistency" => mount.consistency = Some(v.to_string()),
            "volume-nocopy" => {
                mount
                    .volume_options
                    .get_or_insert_with(MountVolumeOptions::default)
                    .no_copy = Some(flag())
            }
            "tmpfs-size" => {
                mount
                    .tmpfs_options
                    .get_or_insert_with(Default::default)
                    .size_bytes = Some(parse_bytes(v)?)
            }
            _ => bail!("unexpected key {k:?} in {m:?}"),
        }
    }
    if mount.target.is_none() {
        bail!("target is required in {m:?}");
    }
    Ok(mount)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn publish_short_and_long() {
        let p = &parse_publish("8080:80").unwrap()[0];
        assert_eq!((p.published_port, p.target_port), (Some(8080), Some(80)));
        let p = &parse_publish("published=53,target=53,protocol=udp,mode=host").unwrap()[0];
        assert_eq!(p.protocol, Some(EndpointPortConfigProtocolEnum::UDP));
        assert_eq!(
            p.publish_mode,
            Some(EndpointPortConfigPublishModeEnum::HOST)
        );
        assert!(parse_publish("published=1").is_err());
    }

    #[test]
    fn file_refs() {
        let f = parse_file_ref("db", "").unwrap();
        assert_eq!(
            (f.source.as_str(), f.target.as_str(), f.mode),
            ("db", "db", 0o444)
        );
        let f =
            parse_file_ref("source=app,target=/etc/app.conf,uid=5,gid=6,mode=0400", "/").unwrap();
        assert_eq!(
            (f.target.as_str(), f.uid.as_str(), f.gid.as_str(), f.mode),
            ("/etc/app.conf", "5", "6", 0o400)
        );
        assert_eq!(parse_file_ref("app", "/").unwrap().target, "/app");
        assert!(parse_file_ref("target=/x", "").is_err());
        assert!(parse_file_ref("source=a,mode=9", "").is_err());
    }

    #[test]
    fn mounts() {
        let m = parse_mount("type=bind,source=/tmp,target=/t,readonly").unwrap();
        assert_eq!(m.typ, Some(MountType::BIND));
        assert_eq!(m.read_only, Some(true));
    }
}
