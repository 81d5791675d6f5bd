//! The flags `run` and `create` share, and their translation into a create body, as
//! docker/cli's `cli/command/container/opts.go` does it.

use anyhow::{Context, Result, bail};
use bollard_stubs::models::{
    ContainerCreateBody, EndpointSettings, HealthConfig, HostConfig, HostConfigLogConfig, Mount,
    MountBindOptions, MountBindOptionsPropagationEnum, MountTmpfsOptions, MountType,
    MountVolumeOptions, NetworkingConfig, PortBinding, PortMap, RestartPolicy,
    RestartPolicyNameEnum,
};
use clap::Args;
use std::collections::HashMap;

/// Flags of `create` and `run`.
#[derive(Debug, Args, Default, Clone)]
pub struct CreateOpts {
    /// Assign a name to the container.
    #[arg(long)]
    pub name: Option<String>,
    /// Keep STDIN open even if not attached.
    #[arg(short, long)]
    pub interactive: bool,
    /// Allocate a pseudo-TTY.
    #[arg(short, long)]
    pub tty: bool,
    /// Set environment variables.
    #[arg(short, long = "env")]
    pub env: Vec<String>,
    /// Read in a file of environment variables.
    #[arg(long)]
    pub env_file: Vec<String>,
    /// Bind mount a volume.
    #[arg(short, long = "volume")]
    pub volume: Vec<String>,
    /// Attach a filesystem mount to the container.
    #[arg(long)]
    pub mount: Vec<String>,
    /// Publish a container's port(s) to the host.
    #[arg(short, long = "publish")]
    pub publish: Vec<String>,
    /// Publish all exposed ports to random ports.
    #[arg(short = 'P', long)]
    pub publish_all: bool,
    /// Expose a port or a range of ports.
    #[arg(long)]
    pub expose: Vec<String>,
    /// Connect a container to a network.
    #[arg(long, alias = "net")]
    pub network: Option<String>,
    /// Restart policy to apply when a container exits.
    #[arg(long)]
    pub restart: Option<String>,
    /// Command to run to check health.
    #[arg(long)]
    pub health_cmd: Option<String>,
    /// Time between running the check (ms|s|m|h).
    #[arg(long)]
    pub health_interval: Option<String>,
    /// Maximum time to allow one check to run (ms|s|m|h).
    #[arg(long)]
    pub health_timeout: Option<String>,
    /// Consecutive failures needed to report unhealthy.
    #[arg(long)]
    pub health_retries: Option<i64>,
    /// Start period for the container to initialize before starting health-retries countdown.
    #[arg(long)]
    pub health_start_period: Option<String>,
    /// Time between running the check during the start period.
    #[arg(long)]
    pub health_start_interval: Option<String>,
    /// Disable any container-specified HEALTHCHECK.
    #[arg(long)]
    pub no_healthcheck: bool,
    /// Memory limit.
    #[arg(short, long)]
    pub memory: Option<String>,
    /// Swap limit equal to memory plus swap: '-1' to enable unlimited swap.
    #[arg(long)]
    pub memory_swap: Option<String>,
    /// Number of CPUs.
    #[arg(long)]
    pub cpus: Option<f64>,
    /// CPU shares (relative weight).
    #[arg(short = 'c', long)]
    pub cpu_shares: Option<i64>,
    /// Tune container pids limit (set -1 for unlimited).
    #[arg(long)]
    pub pids_limit: Option<i64>,
    /// Username or UID (format: <name|uid>[:<group|gid>]).
    #[arg(short, long)]
    pub user: Option<String>,
    /// Working directory inside the container.
    #[arg(short, long)]
    pub workdir: Option<String>,
    /// Overwrite the default ENTRYPOINT of the image.
    #[arg(long)]
    pub entrypoint: Option<String>,
    /// Container host name.
    #[arg(short = 'h', long)]
    pub hostname: Option<String>,
    /// Add Linux capabilities.
    #[arg(long)]
    pub cap_add: Vec<String>,
    /// Drop Linux capabilities.
    #[arg(long)]
    pub cap_drop: Vec<String>,
    /// Mount the container's root filesystem as read only.
    #[arg(long)]
    pub read_only: bool,
    /// Mount a tmpfs directory.
    #[arg(long)]
    pub tmpfs: Vec<String>,
    /// Run an init inside the container that forwards signals and reaps processes.
    #[arg(long)]
    pub init: bool,
    /// Security Options.
    #[arg(long)]
    pub security_opt: Vec<String>,
    /// Set meta data on a container.
    #[arg(short, long = "label")]
    pub label: Vec<String>,
    /// Give extended privileges to this container.
    #[arg(long)]
    pub privileged: bool,
    /// Logging driver for the container.
    #[arg(long)]
    pub log_driver: Option<String>,
    /// Log driver options.
    #[arg(long)]
    pub log_opt: Vec<String>,
    /// Signal to stop the container.
    #[arg(long)]
    pub stop_signal: Option<String>,
    /// Timeout (in seconds) to stop a container.
    #[arg(long)]
    pub stop_timeout: Option<i64>,
    /// Pull image before running ("always", "missing", "never").
    #[arg(long, default_value = "missing")]
    pub pull: String,
    /// Set platform if server is multi-platform capable.
    #[arg(long)]
    pub platform: Option<String>,
    /// Set custom DNS servers.
    #[arg(long)]
    pub dns: Vec<String>,
    /// Add a custom host-to-IP mapping (host:ip).
    #[arg(long)]
    pub add_host: Vec<String>,
    /// Size of /dev/shm.
    #[arg(long)]
    pub shm_size: Option<String>,
    /// PID namespace to use.
    #[arg(long)]
    pub pid: Option<String>,
    /// IPC mode to use.
    #[arg(long)]
    pub ipc: Option<String>,
    /// Automatically remove the container and its associated anonymous volumes when it exits.
    #[arg(long)]
    pub rm: bool,
    /// Print usage.
    #[arg(long, action = clap::ArgAction::Help)]
    pub help: Option<bool>,
    /// IMAGE [COMMAND] [ARG...]: one list, so that flags after the image go to the command.
    #[arg(
        required = true,
        trailing_var_arg = true,
        allow_hyphen_values = true,
        value_name = "IMAGE [COMMAND] [ARG...]"
    )]
    pub args: Vec<String>,
}

/// Docker's `units.RAMInBytes`: binary units, an optional `b`/`ib` suffix.
pub fn ram_in_bytes(s: &str) -> Result<i64> {
    let t = s.trim().to_ascii_lowercase();
    let t = t
        .strip_suffix("ib")
        .or_else(|| t.strip_suffix('b'))
        .unwrap_or(&t);
    let (num, mult) = match t.chars().last() {
        Some('k') => (&t[..t.len() - 1], 1i64 << 10),
        Some('m') => (&t[..t.len() - 1], 1 << 20),
        Some('g') => (&t[..t.len() - 1], 1 << 30),
        Some('t') => (&t[..t.len() - 1], 1 << 40),
        Some('p') => (&t[..t.len() - 1], 1 << 50),
        _ => (t, 1),
    };
    let n: f64 = num
        .trim()
        .parse()
        .map_err(|_| anyhow::anyhow!("invalid size: '{s}'"))?;
    if n < 0.0 {
        bail!("invalid size: '{s}'");
    }
    Ok((n * mult as f64) as i64)
}

/// Go's `time.ParseDuration` (h, m, s, ms, us, ns; combined like `1m30s`) in nanoseconds.
pub fn go_duration(s: &str) -> Result<i64> {
    let bad = || anyhow::anyhow!("time: invalid duration \"{s}\"");
    if s == "0" {
        return Ok(0);
    }
    let mut rest = s;
    let mut total = 0f64;
    if rest.is_empty() {
        return Err(bad());
    }
    while !rest.is_empty() {
        let n = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .ok_or_else(bad)?;
        let v: f64 = rest[..n].parse().map_err(|_| bad())?;
        rest = &rest[n..];
        let u = rest
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(rest.len());
        let mult = match &rest[..u] {
            "h" => 3.6e12,
            "m" => 6e10,
            "s" => 1e9,
            "ms" => 1e6,
            "us" | "µs" => 1e3,
            "ns" => 1.0,
            _ => return Err(bad()),
        };
        total += v * mult;
        rest = &rest[u..];
    }
    Ok(total as i64)
}

fn restart_policy(s: &str) -> Result<RestartPolicy> {
    let (name, count) = match s.split_once(':') {
        Some((n, c)) => (
            n,
            Some(c.parse::<i64>().map_err(|_| {
                anyhow::anyhow!(
                    "invalid restart policy format: maximum retry count must be an integer"
                )
            })?),
        ),
        None => (s, None),
    };
    let name = match name {
        "" | "no" => RestartPolicyNameEnum::NO,
        "always" => RestartPolicyNameEnum::ALWAYS,
        "unless-stopped" => RestartPolicyNameEnum::UNLESS_STOPPED,
        "on-failure" => RestartPolicyNameEnum::ON_FAILURE,
        other => bail!("invalid restart policy format: unknown policy '{other}'"),
    };
    if count.is_some() && name != RestartPolicyNameEnum::ON_FAILURE {
        bail!(
            "invalid restart policy format: maximum retry count can only be used with 'on-failure'"
        );
    }
    Ok(RestartPolicy {
        name: Some(name),
        maximum_retry_count: Some(count.unwrap_or(0)),
    })
}

/// `--restart` as the update and create bodies want it.
pub fn parse_restart(s: &str) -> Result<RestartPolicy> {
    restart_policy(s)
}

fn port_range(s: &str) -> Result<(u16, u16)> {
    let bad = || anyhow::anyhow!("invalid containerPort: {s}");
    match s.split_once('-') {
        Some((a, b)) => {
            let (a, b) = (
                a.parse::<u16>().map_err(|_| bad())?,
                b.parse::<u16>().map_err(|_| bad())?,
            );
            if b < a {
                return Err(bad());
            }
            Ok((a, b))
        }
        None => {
            let p = s.parse::<u16>().map_err(|_| bad())?;
            Ok((p, p))
        }
    }
}

/// `-p [ip:][hostPort:]containerPort[/proto]` into exposed ports and bindings.
pub fn parse_publish(spec: &str, exposed: &mut Vec<String>, map: &mut PortMap) -> Result<()> {
    let (rest, proto) = match spec.rsplit_once('/') {
        Some((r, p)) => (r, p.to_ascii_lowercase()),
        None => (spec, "tcp".to_string()),
    };
    // An IPv6 host IP comes in brackets: [::1]:80:80.
    let (ip, rest) = if let Some(r) = rest.strip_prefix('[') {
        let (ip, after) = r
            .split_once(']')
            .with_context(|| format!("invalid IP address in port spec: {spec}"))?;
        (ip.to_string(), after.trim_start_matches(':'))
    } else {
        ("".to_string(), rest)
    };
    let parts: Vec<&str> = rest.split(':').collect();
    let (ip, host, cport) = match parts.as_slice() {
        [c] => (ip, "", *c),
        [h, c] => (ip, *h, *c),
        [i, h, c] => (i.to_string(), *h, *c),
        _ => bail!("invalid port format: {spec}"),
    };
    if cport.is_empty() {
        bail!("no port specified: {spec}<empty>");
    }
    let (c0, c1) = port_range(cport)?;
    let host_range = if host.is_empty() {
        None
    } else {
        Some(port_range(host).map_err(|_| anyhow::anyhow!("invalid hostPort: {host}"))?)
    };
    if let Some((h0, h1)) = host_range
        && h1 - h0 != c1 - c0
        && c0 != c1
    {
        bail!("invalid ranges specified for container and host Ports: {cport} and {host}");
    }
    for (i, p) in (c0..=c1).enumerate() {
        let key = format!("{p}/{proto}");
        if !exposed.contains(&key) {
            exposed.push(key.clone());
        }
        let host_port = match host_range {
            None => String::new(),
            Some((h0, h1)) if c0 == c1 && h0 != h1 => format!("{h0}-{h1}"),
            Some((h0, _)) => (h0 + i as u16).to_string(),
        };
        map.entry(key)
            .or_insert_with(|| Some(Vec::new()))
            .get_or_insert_with(Vec::new)
            .push(PortBinding {
                host_ip: Some(ip.clone()),
                host_port: Some(host_port),
            });
    }
    Ok(())
}

/// `--mount type=...,source=...,target=...` into a mount.
pub fn parse_mount(spec: &str) -> Result<Mount> {
    let mut m = Mount {
        typ: Some(MountType::VOLUME),
        ..Default::default()
    };
    let mut bind = MountBindOptions::default();
    let mut vol = MountVolumeOptions::default();
    let mut tmpfs = MountTmpfsOptions::default();
    for field in spec.split(',') {
        let (k, v) = match field.split_once('=') {
            Some((k, v)) => (k.trim().to_ascii_lowercase(), Some(v.trim())),
            None => (field.trim().to_ascii_lowercase(), None),
        };
        let flag = |v: Option<&str>| -> Result<bool> {
            match v {
                None | Some("1") | Some("true") => Ok(true),
                Some("0") | Some("false") => Ok(false),
                Some(o) => bail!("invalid value for {k}: {o}"),
            }
        };
        let need =
            || v.with_context(|| format!("invalid field '{field}' must be a key=value pair"));
        match k.as_str() {
            "type" => {
                m.typ = Some(match need()? {
                    "bind" => MountType::BIND,
                    "volume" => MountType::VOLUME,
                    "tmpfs" => MountType::TMPFS,
                    "npipe" => MountType::NPIPE,
                    "cluster" => MountType::CLUSTER,
                    "image" => MountType::IMAGE,
                    o => bail!("invalid mount type: {o}"),
                })
            }
            "source" | "src" => m.source = Some(need()?.to_string()),
            "target" | "dst" | "destination" => m.target = Some(need()?.to_string()),
            "readonly" | "ro" => m.read_only = Some(flag(v)?),
            "consistency" => m.consistency = Some(need()?.to_string()),
            "bind-propagation" => {
                bind.propagation = Some(match need()? {
                    "private" => MountBindOptionsPropagationEnum::PRIVATE,
                    "rprivate" => MountBindOptionsPropagationEnum::RPRIVATE,
                    "shared" => MountBindOptionsPropagationEnum::SHARED,
                    "rshared" => MountBindOptionsPropagationEnum::RSHARED,
                    "slave" => MountBindOptionsPropagationEnum::SLAVE,
                    "rslave" => MountBindOptionsPropagationEnum::RSLAVE,
                    o => bail!("invalid bind propagation: {o}"),
                })
            }
            "bind-nonrecursive" => bind.non_recursive = Some(flag(v)?),
            "volume-nocopy" => vol.no_copy = Some(flag(v)?),
            "volume-driver" => {
                vol.driver_config = Some(bollard_stubs::models::MountVolumeOptionsDriverConfig {
                    name: Some(need()?.to_string()),
                    options: None,
                })
            }
            "volume-label" => {
                let (lk, lv) = need()?.split_once('=').unwrap_or((need()?, ""));
                vol.labels
                    .get_or_insert_with(HashMap::new)
                    .insert(lk.to_string(), lv.to_string());
            }
            "tmpfs-size" => tmpfs.size_bytes = Some(ram_in_bytes(need()?)?),
            "tmpfs-mode" => {
                tmpfs.mode = Some(
                    i64::from_str_radix(need()?, 8)
                        .with_context(|| format!("invalid value for {k}: {}", v.unwrap_or("")))?,
                )
            }
            _ => bail!("unexpected key '{k}' in '{field}'"),
        }
    }
    if m.target.as_deref().unwrap_or("").is_empty() {
        bail!("target is required");
    }
    if bind != MountBindOptions::default() {
        m.bind_options = Some(bind);
    }
    if vol != MountVolumeOptions::default() {
        m.volume_options = Some(vol);
    }
    if tmpfs != MountTmpfsOptions::default() {
        m.tmpfs_options = Some(tmpfs);
    }
    Ok(m)
}

/// `--env-file` lines: `K=V`, bare `K` taken from this environment, `#` comments.
pub fn read_env_file(path: &str) -> Result<Vec<String>> {
    let text = std::fs::read_to_string(path).with_context(|| format!("open {path}"))?;
    let mut out = Vec::new();
    for line in text.lines() {
        let l = line.trim_start();
        if l.is_empty() || l.starts_with('#') {
            continue;
        }
        match l.split_once('=') {
            Some((k, v)) => {
                if k.contains(char::is_whitespace) {
                    bail!("variable '{k}' contains whitespaces");
                }
                out.push(format!("{k}={v}"));
            }
            None => {
                let k = l.trim_end();
                if let Ok(v) = std::env::var(k) {
                    out.push(format!("{k}={v}"));
                }
            }
        }
    }
    Ok(out)
}

fn env_entry(e: &str) -> Option<String> {
    if e.contains('=') {
        Some(e.to_string())
    } else {
        std::env::var(e).ok().map(|v| format!("{e}={v}"))
    }
}

fn key_values(items: &[String]) -> HashMap<String, String> {
    items
        .iter()
        .map(|l| match l.split_once('=') {
            Some((k, v)) => (k.to_string(), v.to_string()),
            None => (l.to_string(), String::new()),
        })
        .collect()
}

impl CreateOpts {
    /// The image to create from.
    pub fn image(&self) -> &str {
        self.args.first().map(String::as_str).unwrap_or("")
    }

    /// The command after the image.
    pub fn command(&self) -> &[String] {
        self.args.get(1..).unwrap_or(&[])
    }

    /// The create body for these flags; `detach` as for `run -d` (`create` is detached).
    pub fn body(&self, detach: bool) -> Result<ContainerCreateBody> {
        // The argument list takes anything hyphenated, so an unknown flag lands here.
        if self.image().starts_with('-') {
            bail!("unknown flag: {}", self.image());
        }
        let mut env = Vec::new();
        for f in &self.env_file {
            env.extend(read_env_file(f)?);
        }
        env.extend(self.env.iter().filter_map(|e| env_entry(e)));

        let mut exposed = Vec::new();
        let mut ports = PortMap::new();
        for p in &self.publish {
            parse_publish(p, &mut exposed, &mut ports)?;
        }
        for e in &self.expose {
            let (rest, proto) = e.rsplit_once('/').unwrap_or((e, "tcp"));
            let (a, b) = port_range(rest)?;
            for p in a..=b {
                let k = format!("{p}/{proto}");
                if !exposed.contains(&k) {
                    exposed.push(k);
                }
            }
        }

        let mut binds = Vec::new();
        let mut volumes = Vec::new();
        for v in &self.volume {
            if v.contains(':') {
                binds.push(v.clone());
            } else {
                volumes.push(v.clone());
            }
        }
        let mounts = self
            .mount
            .iter()
            .map(|m| parse_mount(m))
            .collect::<Result<Vec<_>>>()?;
        let tmpfs: HashMap<String, String> = self
            .tmpfs
            .iter()
            .map(|t| match t.split_once(':') {
                Some((p, o)) => (p.to_string(), o.to_string()),
                None => (t.clone(), String::new()),
            })
            .collect();

        let healthcheck = self.healthcheck()?;
        let restart = match &self.restart {
            Some(r) => restart_policy(r)?,
            None => RestartPolicy {
                name: Some(RestartPolicyNameEnum::NO),
                maximum_retry_count: Some(0),
            },
        };
        if self.rm
            && restart
                .name
                .as_ref()
                .is_some_and(|n| *n != RestartPolicyNameEnum::NO)
        {
            bail!("conflicting options: cannot specify both --restart and --rm");
        }
        let log_config = HostConfigLogConfig {
            typ: Some(self.log_driver.clone().unwrap_or_default()),
            config: Some(key_values(&self.log_opt)),
        };
        let network = self
            .network
            .clone()
            .unwrap_or_else(|| "default".to_string());
        let memory = self.memory.as_deref().map(ram_in_bytes).transpose()?;
        let memory_swap = match self.memory_swap.as_deref() {
            Some("-1") => Some(-1),
            Some(s) => Some(ram_in_bytes(s)?),
            None => None,
        };
        let host = HostConfig {
            binds: (!binds.is_empty()).then_some(binds),
            mounts: (!mounts.is_empty()).then_some(mounts),
            tmpfs: (!tmpfs.is_empty()).then_some(tmpfs),
            network_mode: Some(network.clone()),
            port_bindings: Some(ports),
            publish_all_ports: Some(self.publish_all),
            restart_policy: Some(restart),
            auto_remove: Some(self.rm),
            memory,
            memory_swap,
            nano_cpus: self.cpus.map(|c| (c * 1e9).round() as i64),
            cpu_shares: self.cpu_shares,
            pids_limit: self.pids_limit,
            cap_add: (!self.cap_add.is_empty()).then(|| self.cap_add.clone()),
            cap_drop: (!self.cap_drop.is_empty()).then(|| self.cap_drop.clone()),
            readonly_rootfs: Some(self.read_only),
            init: self.init.then_some(true),
            security_opt: (!self.security_opt.is_empty()).then(|| self.security_opt.clone()),
            privileged: Some(self.privileged),
            log_config: Some(log_config),
            dns: (!self.dns.is_empty()).then(|| self.dns.clone()),
            extra_hosts: (!self.add_host.is_empty()).then(|| self.add_host.clone()),
            shm_size: self.shm_size.as_deref().map(ram_in_bytes).transpose()?,
            pid_mode: self.pid.clone(),
            ipc_mode: self.ipc.clone(),
            ..Default::default()
        };
        let attach = !detach;
        let stdin = self.interactive && attach;
        let entrypoint = self.entrypoint.as_ref().map(|e| vec![e.clone()]);
        Ok(ContainerCreateBody {
            hostname: self.hostname.clone(),
            user: self.user.clone(),
            attach_stdin: Some(stdin),
            attach_stdout: Some(attach),
            attach_stderr: Some(attach),
            exposed_ports: (!exposed.is_empty()).then_some(exposed),
            tty: Some(self.tty),
            open_stdin: Some(self.interactive),
            stdin_once: Some(stdin),
            env: (!env.is_empty()).then_some(env),
            cmd: (!self.command().is_empty()).then(|| self.command().to_vec()),
            healthcheck,
            image: Some(self.image().to_string()),
            volumes: (!volumes.is_empty()).then_some(volumes),
            working_dir: self.workdir.clone(),
            entrypoint,
            labels: Some(key_values(&self.label)),
            stop_signal: self.stop_signal.clone(),
            stop_timeout: self.stop_timeout,
            host_config: Some(host),
            networking_config: Some(NetworkingConfig {
                endpoints_config: Some(HashMap::from([(network, EndpointSettings::default())])),
            }),
            ..Default::default()
        })
    }

    fn healthcheck(&self) -> Result<Option<HealthConfig>> {
        let dur = |s: &Option<String>, what: &str| -> Result<Option<i64>> {
            s.as_deref()
                .map(|d| {
                    let n = go_duration(d)?;
                    if n < 0 {
                        bail!("--{what} cannot be negative");
                    }
                    Ok(n)
                })
                .transpose()
        };
        let interval = dur(&self.health_interval, "health-interval")?;
        let timeout = dur(&self.health_timeout, "health-timeout")?;
        let start = dur(&self.health_start_period, "health-start-period")?;
        let start_interval = dur(&self.health_start_interval, "health-start-interval")?;
        let any = self.health_cmd.is_some()
            || interval.is_some()
            || timeout.is_some()
            || start.is_some()
            || start_interval.is_some()
            || self.health_retries.is_some();
        if self.no_healthcheck {
            if any {
                bail!("--no-healthcheck conflicts with --health-* options");
            }
            return Ok(Some(HealthConfig {
                test: Some(vec!["NONE".into()]),
                ..Default::default()
            }));
        }
        if !any {
            return Ok(None);
        }
        if self.health_retries.is_some_and(|r| r < 0) {
            bail!("--health-retries cannot be negative");
        }
        Ok(Some(HealthConfig {
            test: self
                .health_cmd
                .as_ref()
                .map(|c| vec!["CMD-SHELL".into(), c.clone()]),
            interval,
            timeout,
            retries: self.health_retries,
            start_period: start,
            start_interval,
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Parser)]
    #[command(disable_help_flag = true)]
    struct T {
        #[command(flatten)]
        o: CreateOpts,
    }

    fn parse(args: &[&str]) -> CreateOpts {
        let mut v = vec!["run"];
        v.extend_from_slice(args);
        T::try_parse_from(v).unwrap().o
    }

    #[test]
    fn sizes_and_durations() {
        assert_eq!(ram_in_bytes("512m").unwrap(), 512 << 20);
        assert_eq!(ram_in_bytes("1g").unwrap(), 1 << 30);
        assert_eq!(ram_in_bytes("1.5k").unwrap(), 1536);
        assert_eq!(ram_in_bytes("100").unwrap(), 100);
        assert_eq!(ram_in_bytes("64MiB").unwrap(), 64 << 20);
        assert!(ram_in_bytes("x").is_err());
        assert_eq!(go_duration("1m30s").unwrap(), 90_000_000_000);
        assert_eq!(go_duration("500ms").unwrap(), 500_000_000);
        assert_eq!(go_duration("0").unwrap(), 0);
        assert!(go_duration("5").is_err());
    }

    #[test]
    fn command_after_image_keeps_its_flags() {
        let o = parse(&["--name", "x", "busybox", "ls", "-l", "--all"]);
        assert_eq!(o.image(), "busybox");
        assert_eq!(o.command(), ["ls", "-l", "--all"]);
        assert_eq!(o.name.as_deref(), Some("x"));
        let o = parse(&["--entrypoint", "sh", "busybox", "-c", "echo"]);
        assert_eq!(o.command(), ["-c", "echo"]);
        assert_eq!(o.cpu_shares, None);
        let o = parse(&["-h", "box", "-it", "busybox"]);
        assert_eq!(o.hostname.as_deref(), Some("box"));
        assert!(o.interactive && o.tty);
    }

    #[test]
    fn flags_to_body() {
        let o = parse(&[
            "-e",
            "A=1",
            "-p",
            "127.0.0.1:8080:80",
            "-p",
            "9000-9001:90-91/udp",
            "-v",
            "/a:/b:ro",
            "-v",
            "/anon",
            "--mount",
            "type=tmpfs,target=/t,tmpfs-size=1m",
            "--restart",
            "on-failure:3",
            "--memory",
            "64m",
            "--cpus",
            "1.5",
            "--pids-limit",
            "20",
            "--health-cmd",
            "true",
            "--health-interval",
            "2s",
            "-l",
            "k=v",
            "--init",
            "--entrypoint",
            "",
            "--log-opt",
            "max-size=1m",
            "--tmpfs",
            "/run:size=1m",
            "busybox",
            "echo",
            "hi",
        ]);
        let b = o.body(false).unwrap();
        let v = serde_json::to_value(&b).unwrap();
        assert_eq!(v["Env"], serde_json::json!(["A=1"]));
        assert_eq!(v["Cmd"], serde_json::json!(["echo", "hi"]));
        assert_eq!(v["Entrypoint"], serde_json::json!([""]));
        assert_eq!(v["Volumes"], serde_json::json!({"/anon": {}}));
        assert_eq!(v["ExposedPorts"]["80/tcp"], serde_json::json!({}));
        assert_eq!(v["ExposedPorts"]["91/udp"], serde_json::json!({}));
        let h = &v["HostConfig"];
        assert_eq!(
            h["PortBindings"]["80/tcp"],
            serde_json::json!([{"HostIp": "127.0.0.1", "HostPort": "8080"}])
        );
        assert_eq!(h["PortBindings"]["91/udp"][0]["HostPort"], "9001");
        assert_eq!(h["Binds"], serde_json::json!(["/a:/b:ro"]));
        assert_eq!(h["Mounts"][0]["Type"], "tmpfs");
        assert_eq!(h["Mounts"][0]["TmpfsOptions"]["SizeBytes"], 1 << 20);
        assert_eq!(h["RestartPolicy"]["Name"], "on-failure");
        assert_eq!(h["RestartPolicy"]["MaximumRetryCount"], 3);
        assert_eq!(h["Memory"], 64 << 20);
        assert_eq!(h["NanoCpus"], 1_500_000_000i64);
        assert_eq!(h["PidsLimit"], 20);
        assert_eq!(h["Init"], true);
        assert_eq!(h["Tmpfs"]["/run"], "size=1m");
        assert_eq!(h["LogConfig"]["Config"]["max-size"], "1m");
        assert_eq!(h["NetworkMode"], "default");
        assert_eq!(
            v["Healthcheck"],
            serde_json::json!({"Test": ["CMD-SHELL", "true"], "Interval": 2_000_000_000i64})
        );
        assert_eq!(v["Labels"]["k"], "v");
        assert_eq!(v["AttachStdout"], true);
        assert_eq!(v["AttachStdin"], false);
    }

    #[test]
    fn bad_flags() {
        assert!(
            parse(&["--restart", "sometimes", "busybox"])
                .body(true)
                .is_err()
        );
        assert!(
            parse(&["--rm", "--restart", "always", "busybox"])
                .body(true)
                .is_err()
        );
        assert!(parse(&["-p", "80:90-91", "busybox"]).body(true).is_err());
        assert!(
            parse(&["--mount", "type=bind,source=/x", "busybox"])
                .body(true)
                .is_err()
        );
        let o = parse(&["--no-healthcheck", "busybox"]).body(true).unwrap();
        assert_eq!(o.healthcheck.unwrap().test.unwrap(), ["NONE"]);
    }
}
