//! Creating containers and describing them: `create`, `inspect`, `list`.

use super::record::{self, ContainerRecord, RunState};
use super::{ContainerError, ContainerService, io_err, name, spec};
use crate::Result;
use crate::image::digest::Digest;
use bollard_stubs::models::{
    ContainerConfig, ContainerCreateBody, ContainerInspectResponse, ContainerState,
    ContainerStateStatusEnum, ContainerSummary, ContainerSummaryHealth, ContainerSummaryHostConfig,
    ContainerSummaryNetworkSettings, ContainerSummaryStateEnum, DriverData, EndpointSettings,
    HealthStatusEnum, HostConfig, HostConfigLogConfig, RestartPolicy, RestartPolicyNameEnum,
};
use serde_json::Value;
use std::collections::HashMap;
use std::path::Path;
use std::time::{Duration, SystemTime};

/// The log drivers this engine can write.
const LOG_DRIVERS: &[&str] = &["json-file", "local", "none"];

fn nonempty(v: &Option<Vec<String>>) -> bool {
    v.as_ref().is_some_and(|v| !v.is_empty())
}

/// The image's `config` object with nulls dropped, as a container config.
fn image_config(raw: &[u8]) -> ContainerConfig {
    let v: Value = serde_json::from_slice(raw).unwrap_or(Value::Null);
    let mut cfg = v.get("config").cloned().unwrap_or(Value::Null);
    if let Some(o) = cfg.as_object_mut() {
        o.retain(|_, v| !v.is_null());
    }
    serde_json::from_value(cfg).unwrap_or_default()
}

/// Docker's merge of the create body with the image config (daemon/create.go `merge`).
fn merge(body: &ContainerCreateBody, img: &ContainerConfig) -> ContainerConfig {
    let mut env = img.env.clone().unwrap_or_default();
    spec::merge_env(&mut env, body.env.as_deref().unwrap_or(&[]));
    let mut labels = img.labels.clone().unwrap_or_default();
    labels.extend(body.labels.clone().unwrap_or_default());
    let mut ports = img.exposed_ports.clone().unwrap_or_default();
    for p in body.exposed_ports.iter().flatten() {
        if !ports.contains(p) {
            ports.push(p.clone());
        }
    }
    let mut volumes = img.volumes.clone().unwrap_or_default();
    for p in body.volumes.iter().flatten() {
        if !volumes.contains(p) {
            volumes.push(p.clone());
        }
    }
    // An entrypoint given by the user resets the image's Cmd; `[""]` clears the entrypoint.
    let (entrypoint, cmd) = match &body.entrypoint {
        Some(e) if e.len() == 1 && e[0].is_empty() => (None, body.cmd.clone()),
        Some(e) if !e.is_empty() => (Some(e.clone()), body.cmd.clone()),
        _ => (
            img.entrypoint.clone(),
            if nonempty(&body.cmd) {
                body.cmd.clone()
            } else {
                img.cmd.clone()
            },
        ),
    };
    let mut health = body.healthcheck.clone().or_else(|| img.healthcheck.clone());
    if let (Some(h), Some(i)) = (&mut health, &img.healthcheck) {
        if !nonempty(&h.test) {
            h.test.clone_from(&i.test);
        }
        h.interval = h.interval.filter(|v| *v != 0).or(i.interval);
        h.timeout = h.timeout.filter(|v| *v != 0).or(i.timeout);
        h.retries = h.retries.filter(|v| *v != 0).or(i.retries);
        h.start_period = h.start_period.filter(|v| *v != 0).or(i.start_period);
        h.start_interval = h.start_interval.filter(|v| *v != 0).or(i.start_interval);
    }
    let pick = |a: &Option<String>, b: &Option<String>| {
        a.clone().filter(|s| !s.is_empty()).or_else(|| b.clone())
    };
    ContainerConfig {
        hostname: body.hostname.clone(),
        domainname: body.domainname.clone(),
        user: pick(&body.user, &img.user),
        attach_stdin: body.attach_stdin,
        attach_stdout: body.attach_stdout,
        attach_stderr: body.attach_stderr,
        exposed_ports: (!ports.is_empty()).then_some(ports),
        tty: Some(body.tty.unwrap_or(false)),
        open_stdin: Some(body.open_stdin.unwrap_or(false)),
        stdin_once: Some(body.stdin_once.unwrap_or(false)),
        env: Some(env),
        cmd,
        healthcheck: health,
        args_escaped: body.args_escaped,
        image: body.image.clone(),
        volumes: (!volumes.is_empty()).then_some(volumes),
        working_dir: pick(&body.working_dir, &img.working_dir),
        entrypoint,
        network_disabled: body.network_disabled,
        on_build: img.on_build.clone(),
        labels: Some(labels),
        stop_signal: pick(&body.stop_signal, &img.stop_signal),
        stop_timeout: body.stop_timeout,
        shell: body.shell.clone().or_else(|| img.shell.clone()),
    }
}

/// Validates the host config and fills Docker's defaults.
fn host_defaults(h: &mut HostConfig) -> Result<(), ContainerError> {
    let inv = |m: &str| Err(ContainerError::Invalid(m.to_string()));
    if h.network_mode
        .as_deref()
        .is_none_or(|m| m.is_empty() || m == "default")
    {
        h.network_mode = Some("bridge".into());
    }
    let lc = h
        .log_config
        .get_or_insert_with(HostConfigLogConfig::default);
    let driver = lc
        .typ
        .clone()
        .filter(|t| !t.is_empty())
        .unwrap_or_else(|| "json-file".into());
    if !LOG_DRIVERS.contains(&driver.as_str()) {
        return Err(ContainerError::Invalid(format!(
            "failed to create task for container: logger: no log driver named '{driver}' is registered"
        )));
    }
    for (k, v) in lc.config.iter().flatten() {
        match k.as_str() {
            "max-size" if spec::parse_size(v).is_none() => {
                return inv(&format!("invalid max-size: {v}"));
            }
            "max-file" if v.parse::<u32>().map_or(true, |n| n == 0) => {
                return inv("max-file must be a positive integer");
            }
            "max-size" | "max-file" | "compress" | "labels" | "env" | "tag" | "mode" => {}
            other => {
                return inv(&format!(
                    "unknown log opt '{other}' for {driver} log driver"
                ));
            }
        }
    }
    lc.typ = Some(driver);
    let rp = h.restart_policy.get_or_insert_with(RestartPolicy::default);
    let name = rp
        .name
        .filter(|n| *n != RestartPolicyNameEnum::EMPTY)
        .unwrap_or(RestartPolicyNameEnum::NO);
    rp.name = Some(name);
    let count = rp.maximum_retry_count.unwrap_or(0);
    if count < 0 {
        return inv("invalid restart policy: maximum retry count can't be negative");
    }
    if count > 0 && name != RestartPolicyNameEnum::ON_FAILURE {
        return inv(
            "invalid restart policy: maximum retry count can only be used with 'on-failure'",
        );
    }
    if h.auto_remove == Some(true) && name != RestartPolicyNameEnum::NO {
        return inv("can't create 'AutoRemove' container with restart policy");
    }
    if h.memory.is_some_and(|m| m > 0 && m < 6 << 20) {
        return inv("Minimum memory limit allowed is 6MB");
    }
    if let (Some(m), Some(s)) = (h.memory, h.memory_swap)
        && m > 0
        && s > 0
        && s < m
    {
        return inv("Minimum memoryswap limit should be larger than memory limit, see usage");
    }
    for cap in h.cap_add.iter().chain(h.cap_drop.iter()).flatten() {
        let n = cap.to_ascii_uppercase();
        let n = if n.starts_with("CAP_") {
            n
        } else {
            format!("CAP_{n}")
        };
        if n != "CAP_ALL" && !spec::ALL_CAPS.contains(&n.as_str()) {
            return Err(ContainerError::Invalid(format!(
                "unknown capability: \"{n}\""
            )));
        }
    }
    Ok(())
}

const HOSTS: &str = "127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\nfe00::0\tip6-localnet\nff00::0\tip6-mcastprefix\nff02::1\tip6-allnodes\nff02::2\tip6-allrouters\n";

/// Writes hostname, hosts and resolv.conf into the container directory.
fn write_etc_files(
    dir: &Path,
    cfg: &ContainerConfig,
    h: &HostConfig,
    id: &str,
) -> Result<(), ContainerError> {
    let host_net = h.network_mode.as_deref() == Some("host");
    let hostname = if host_net {
        std::fs::read_to_string("/etc/hostname")
            .unwrap_or_default()
            .trim()
            .to_string()
    } else {
        cfg.hostname
            .clone()
            .filter(|s| !s.is_empty())
            .unwrap_or_else(|| id[..12].to_string())
    };
    let w = |f: &str, s: &str| {
        let p = dir.join(f);
        std::fs::write(&p, s).map_err(io_err("write", p))
    };
    w("hostname", &format!("{hostname}\n"))?;
    let mut hosts = if host_net {
        std::fs::read_to_string("/etc/hosts").unwrap_or_else(|_| HOSTS.to_string())
    } else {
        HOSTS.to_string()
    };
    for e in h.extra_hosts.iter().flatten() {
        if let Some((n, ip)) = e.split_once(':').or_else(|| e.split_once('=')) {
            hosts.push_str(&format!("{ip}\t{n}\n"));
        }
    }
    w("hosts", &hosts)?;
    let host_resolv = std::fs::read_to_string("/etc/resolv.conf").unwrap_or_default();
    let mut ns: Vec<String> = Vec::new();
    let mut search: Vec<String> = Vec::new();
    let mut options: Vec<String> = Vec::new();
    for l in host_resolv.lines() {
        let mut f = l.split_whitespace();
        match f.next() {
            Some("nameserver") => ns.extend(f.map(str::to_string)),
            Some("search") | Some("domain") => search.extend(f.map(str::to_string)),
            Some("options") => options.extend(f.map(str::to_string)),
            _ => {}
        }
    }
    if !host_net {
        // Loopback resolvers of the host are unreachable from a private network namespace.
        ns.retain(|n| !n.starts_with("127.") && n != "::1");
        if ns.is_empty() {
            ns = vec!["8.8.8.8".into(), "8.8.4.4".into()];
        }
    }
    if let Some(d) = h.dns.clone().filter(|d| !d.is_empty()) {
        ns = d;
    }
    if let Some(d) = h.dns_search.clone().filter(|d| !d.is_empty()) {
        search = d;
    }
    if let Some(d) = h.dns_options.clone().filter(|d| !d.is_empty()) {
        options = d;
    }
    let mut r = String::new();
    for n in &ns {
        r.push_str(&format!("nameserver {n}\n"));
    }
    if !search.is_empty() {
        r.push_str(&format!("search {}\n", search.join(" ")));
    }
    if !options.is_empty() {
        r.push_str(&format!("options {}\n", options.join(" ")));
    }
    w("resolv.conf", &r)
}

/// Docker's `units.HumanDuration`.
pub(crate) fn human_duration(d: Duration) -> String {
    let s = d.as_secs();
    let h = s / 3600;
    if s < 1 {
        "Less than a second".into()
    } else if s == 1 {
        "1 second".into()
    } else if s < 60 {
        format!("{s} seconds")
    } else if s / 60 == 1 {
        "About a minute".into()
    } else if s < 3600 {
        format!("{} minutes", s / 60)
    } else if h == 1 {
        "About an hour".into()
    } else if h < 48 {
        format!("{h} hours")
    } else if h < 24 * 7 * 2 {
        format!("{} days", h / 24)
    } else if h < 24 * 30 * 2 {
        format!("{} weeks", h / 24 / 7)
    } else if h < 24 * 365 * 2 {
        format!("{} months", h / 24 / 30)
    } else {
        format!("{} years", h / 24 / 365)
    }
}

fn since(ts: &str) -> Duration {
    berth_shim::time::parse(ts)
        .and_then(|t| SystemTime::now().duration_since(t).ok())
        .unwrap_or_default()
}

impl ContainerService {
    /// `docker create`: resolves the image, merges its config, reserves the name and writes
    /// the container directory. Returns the ID and warnings.
    pub async fn create(
        &self,
        name: Option<&str>,
        body: ContainerCreateBody,
    ) -> Result<(String, Vec<String>)> {
        let image_ref = body
            .image
            .clone()
            .filter(|s| !s.is_empty())
            .ok_or_else(|| {
                ContainerError::Invalid(
                    "config cannot be empty in order to create a container".into(),
                )
            })?;
        let img = self.inner.images.resolve(&image_ref)?;
        let raw = self.inner.images.store().read(&img.id)?;
        let img_cfg = image_config(&raw);
        let mut host = body.host_config.clone().unwrap_or_default();
        host_defaults(&mut host)?;
        let config = merge(&body, &img_cfg);
        if !nonempty(&config.cmd) && !nonempty(&config.entrypoint) {
            return Err(ContainerError::Invalid("no command specified".into()).into());
        }
        let mut warnings = Vec::new();
        let net = host.network_mode.clone().unwrap_or_default();
        if host.init == Some(true) && !spec::INIT_CANDIDATES.iter().any(|p| Path::new(p).exists()) {
            warnings.push("no init binary found on the host; --init is ignored".into());
        }
        let id = name::new_id();
        let mut config = config;
        // Docker records the effective hostname in the config (the host's with host network).
        if config.hostname.as_deref().is_none_or(str::is_empty) {
            config.hostname = Some(if net == "host" {
                std::fs::read_to_string("/proc/sys/kernel/hostname")
                    .unwrap_or_default()
                    .trim()
                    .to_string()
            } else {
                id[..12].to_string()
            });
        }
        config.domainname.get_or_insert_with(String::new);
        let mut path_args: Vec<String> = config.entrypoint.clone().unwrap_or_default();
        path_args.extend(config.cmd.clone().unwrap_or_default());
        let mut rec = ContainerRecord {
            id: id.clone(),
            name: String::new(),
            created: berth_runtime::state::now_rfc3339(),
            image: image_ref,
            image_id: img.id.to_string(),
            config,
            host_config: host,
            networking: body.networking_config.clone(),
            path: path_args.first().cloned().unwrap_or_default(),
            args: path_args.iter().skip(1).cloned().collect(),
            state: RunState::default(),
            restart_count: 0,
            exec_ids: Vec::new(),
            health: None,
            creating: true,
            manual_stop: false,
            has_been_started: false,
        };
        match name.filter(|n| !n.is_empty()) {
            Some(n) => {
                rec.name = name::validate(n)?;
                record::insert(&self.inner.state, &rec)?;
            }
            None => {
                let mut retry = 0;
                loop {
                    rec.name = name::generate(retry);
                    match record::insert(&self.inner.state, &rec) {
                        Err(crate::Error::Container(ContainerError::NameConflict { .. }))
                            if retry < 10 =>
                        {
                            retry += 1
                        }
                        other => break other?,
                    }
                }
            }
        }
        let dir = self.dir(&id);
        let made = self
            .check_networks(&rec)
            .and_then(|()| {
                (|| -> Result<(), ContainerError> {
                    for d in ["rootfs", "upper", "work"] {
                        let p = dir.join(d);
                        std::fs::create_dir_all(&p).map_err(io_err("create", p))?;
                    }
                    write_etc_files(&dir, &rec.config, &rec.host_config, &id)
                })()
                .map_err(crate::Error::from)
            })
            .and_then(|()| {
                self.inner
                    .volumes
                    .attach_container(&id, &rec.config, &rec.host_config)
                    .map(drop)
            });
        if let Err(e) = made {
            let _ = std::fs::remove_dir_all(&dir);
            let _ = record::remove(&self.inner.state, &id);
            return Err(e);
        }
        rec.creating = false;
        record::put(&self.inner.state, &rec)?;
        self.emit("create", &rec, &[]);
        Ok((id, warnings))
    }

    /// `docker inspect` of a container.
    pub fn inspect(&self, name_or_id: &str) -> Result<ContainerInspectResponse> {
        let id = self.resolve(name_or_id)?;
        let r = self.get(&id)?;
        let dir = self.dir(&id);
        let p = |f: &str| Some(dir.join(f).to_string_lossy().to_string());
        let s = &r.state;
        let status: ContainerStateStatusEnum =
            s.status.parse().unwrap_or(ContainerStateStatusEnum::EMPTY);
        let mut lowers = String::new();
        if let Ok(d) = Digest::parse(&r.image_id)
            && let Ok(Some(img)) = self.inner.state.image(&d)
        {
            let paths: Vec<String> = self
                .inner
                .images
                .layer_paths(&img)
                .iter()
                .rev()
                .map(|p| p.to_string_lossy().to_string())
                .collect();
            lowers = paths.join(":");
        }
        Ok(ContainerInspectResponse {
            id: Some(r.id.clone()),
            created: Some(r.created.clone()),
            path: Some(r.path.clone()),
            args: Some(r.args.clone()),
            state: Some(ContainerState {
                status: Some(status),
                running: Some(s.is_running()),
                paused: Some(s.status == "paused"),
                restarting: Some(s.status == "restarting"),
                oom_killed: Some(s.oom_killed),
                dead: Some(s.status == "dead"),
                pid: Some(s.pid),
                exit_code: Some(s.exit_code),
                error: Some(s.error.clone()),
                started_at: Some(s.started_at.clone()),
                finished_at: Some(s.finished_at.clone()),
                health: r.health.clone(),
            }),
            image: Some(r.image_id.clone()),
            resolv_conf_path: p("resolv.conf"),
            hostname_path: p("hostname"),
            hosts_path: p("hosts"),
            log_path: (r
                .host_config
                .log_config
                .as_ref()
                .and_then(|l| l.typ.as_deref())
                == Some("json-file"))
            .then(|| self.log_path(&id).to_string_lossy().to_string())
            .or(Some(String::new())),
            name: Some(format!("/{}", r.name)),
            restart_count: Some(r.restart_count),
            driver: Some("overlay2".into()),
            platform: Some("linux".into()),
            mount_label: Some(String::new()),
            process_label: Some(String::new()),
            app_armor_profile: Some(String::new()),
            exec_ids: (!r.exec_ids.is_empty()).then(|| r.exec_ids.clone()),
            host_config: Some(r.host_config.clone()),
            graph_driver: Some(DriverData {
                name: "overlay2".into(),
                data: HashMap::from([
                    ("LowerDir".to_string(), lowers),
                    (
                        "UpperDir".to_string(),
                        dir.join("upper").to_string_lossy().to_string(),
                    ),
                    (
                        "WorkDir".to_string(),
                        dir.join("work").to_string_lossy().to_string(),
                    ),
                    (
                        "MergedDir".to_string(),
                        dir.join("rootfs").to_string_lossy().to_string(),
                    ),
                ]),
            }),
            mounts: Some(self.inner.volumes.mount_points(&r.id, &r.host_config)),
            config: Some(r.config.clone()),
            network_settings: Some(self.network_settings(&r)),
            ..Default::default()
        })
    }

    /// Every container, newest first.
    pub fn list(&self) -> Result<Vec<ContainerSummary>> {
        let mut recs: Vec<ContainerRecord> = record::all(&self.inner.state)?
            .into_iter()
            .filter(|r| !r.creating)
            .collect();
        recs.sort_by(|a, b| b.created.cmp(&a.created));
        Ok(recs
            .iter()
            .map(|r| {
                let mut s = summary(r);
                s.ports = Some(self.port_summaries(r));
                if let Some(n) = self.network_settings(r).networks {
                    s.network_settings =
                        Some(ContainerSummaryNetworkSettings { networks: Some(n) });
                }
                s.mounts = Some(self.inner.volumes.mount_points(&r.id, &r.host_config));
                s
            })
            .collect())
    }
}

fn summary(r: &ContainerRecord) -> ContainerSummary {
    let s = &r.state;
    let health = r.health.as_ref().and_then(|h| h.status);
    let status = match s.status.as_str() {
        "running" | "paused" => {
            let mut t = format!("Up {}", human_duration(since(&s.started_at)));
            match health {
                Some(HealthStatusEnum::STARTING) => t.push_str(" (health: starting)"),
                Some(HealthStatusEnum::HEALTHY) => t.push_str(" (healthy)"),
                Some(HealthStatusEnum::UNHEALTHY) => t.push_str(" (unhealthy)"),
                _ => {}
            }
            if s.status == "paused" {
                t.push_str(" (Paused)");
            }
            t
        }
        "restarting" => format!(
            "Restarting ({}) {} ago",
            s.exit_code,
            human_duration(since(&s.finished_at))
        ),
        "exited" => format!(
            "Exited ({}) {} ago",
            s.exit_code,
            human_duration(since(&s.finished_at))
        ),
        "created" => "Created".into(),
        "removing" => "Removal In Progress".into(),
        "dead" => "Dead".into(),
        other => other.to_string(),
    };
    // Docker quotes arguments with spaces in the list's Command.
    let mut command = vec![r.path.clone()];
    command.extend(r.args.iter().map(|a| {
        if a.contains(' ') {
            format!("'{a}'")
        } else {
            a.clone()
        }
    }));
    let net = r
        .host_config
        .network_mode
        .clone()
        .unwrap_or_else(|| "bridge".into());
    ContainerSummary {
        id: Some(r.id.clone()),
        names: Some(vec![format!("/{}", r.name)]),
        image: Some(r.image.clone()),
        image_id: Some(r.image_id.clone()),
        command: Some(command.join(" ")),
        created: berth_shim::time::parse(&r.created)
            .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
            .map(|d| d.as_secs() as i64),
        ports: Some(Vec::new()),
        labels: r.config.labels.clone(),
        state: s.status.parse::<ContainerSummaryStateEnum>().ok(),
        status: Some(status),
        host_config: Some(ContainerSummaryHostConfig {
            network_mode: Some(net.clone()),
            annotations: None,
        }),
        network_settings: Some(ContainerSummaryNetworkSettings {
            networks: Some(HashMap::from([(net, EndpointSettings::default())])),
        }),
        mounts: None,
        health: r.health.as_ref().map(|h| ContainerSummaryHealth {
            status: h.status.and_then(|s| s.to_string().parse().ok()),
            failing_streak: h.failing_streak,
        }),
        ..Default::default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn merge_like_docker() {
        let img = ContainerConfig {
            env: Some(vec!["PATH=/img".into(), "A=1".into()]),
            cmd: Some(vec!["sh".into()]),
            entrypoint: Some(vec!["/init".into()]),
            working_dir: Some("/app".into()),
            labels: Some([("a".to_string(), "1".to_string())].into()),
            ..Default::default()
        };
        let body = ContainerCreateBody {
            env: Some(vec!["A=2".into(), "B=3".into()]),
            labels: Some([("b".to_string(), "2".to_string())].into()),
            ..Default::default()
        };
        let m = merge(&body, &img);
        assert_eq!(m.env.unwrap(), ["PATH=/img", "A=2", "B=3"]);
        assert_eq!(m.cmd.unwrap(), ["sh"]);
        assert_eq!(m.entrypoint.unwrap(), ["/init"]);
        assert_eq!(m.working_dir.as_deref(), Some("/app"));
        assert_eq!(m.labels.unwrap().len(), 2);
        let body = ContainerCreateBody {
            entrypoint: Some(vec!["/bin/echo".into()]),
            ..Default::default()
        };
        let m = merge(&body, &img);
        assert_eq!(m.entrypoint.unwrap(), ["/bin/echo"]);
        assert!(m.cmd.is_none(), "a new entrypoint resets the image's Cmd");
        let body = ContainerCreateBody {
            entrypoint: Some(vec![String::new()]),
            cmd: Some(vec!["ls".into()]),
            ..Default::default()
        };
        let m = merge(&body, &img);
        assert!(m.entrypoint.is_none());
        assert_eq!(m.cmd.unwrap(), ["ls"]);
    }

    #[test]
    fn host_config_rules() {
        let mut h = HostConfig::default();
        host_defaults(&mut h).unwrap();
        assert_eq!(h.network_mode.as_deref(), Some("bridge"));
        assert_eq!(h.log_config.unwrap().typ.as_deref(), Some("json-file"));
        let mut h = HostConfig {
            auto_remove: Some(true),
            restart_policy: Some(RestartPolicy {
                name: Some(RestartPolicyNameEnum::ALWAYS),
                maximum_retry_count: None,
            }),
            ..Default::default()
        };
        assert_eq!(
            host_defaults(&mut h).unwrap_err().to_string(),
            "can't create 'AutoRemove' container with restart policy"
        );
        let mut h = HostConfig {
            memory: Some(1 << 20),
            ..Default::default()
        };
        assert_eq!(
            host_defaults(&mut h).unwrap_err().to_string(),
            "Minimum memory limit allowed is 6MB"
        );
        let mut h = HostConfig {
            log_config: Some(HostConfigLogConfig {
                typ: Some("syslog".into()),
                config: None,
            }),
            ..Default::default()
        };
        assert!(host_defaults(&mut h).is_err());
        assert_eq!(human_duration(Duration::from_secs(5)), "5 seconds");
        assert_eq!(human_duration(Duration::from_secs(90)), "About a minute");
        assert_eq!(human_duration(Duration::from_secs(7200)), "2 hours");
    }
}
