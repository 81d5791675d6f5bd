//! The `HostConfig` fields that are neither resources, mounts, ports nor networks: privileges,
//! namespaces, DNS, restart and logging, as compose's `getCreateConfigs` fills them.

use std::net::IpAddr;

use bollard_stubs::models::{
    HostConfig, HostConfigCgroupnsModeEnum, HostConfigIsolationEnum, HostConfigLogConfig,
    RestartPolicy, RestartPolicyNameEnum,
};
use compose_spec::model::Service;

use super::{ContainerSpec, invalid, non_empty, non_empty_map};
use crate::compose::error::Result;

/// Fills the non-resource, non-mount, non-network part of the host config.
pub(super) fn apply(spec: &ContainerSpec, h: &mut HostConfig) -> Result<()> {
    let s = spec.service;
    h.annotations = non_empty_map(&s.annotations);
    h.cap_add = non_empty(s.cap_add.clone());
    h.cap_drop = non_empty(s.cap_drop.clone());
    h.init = s.init;
    h.ipc_mode = shared_namespace(spec, s.ipc.as_deref(), "ipc", "IPC")?;
    h.pid_mode = shared_namespace(spec, s.pid.as_deref(), "pid", "PID")?;
    h.uts_mode = s.uts.clone();
    h.userns_mode = s.userns_mode.clone();
    h.cgroupns_mode = match s.cgroup.as_deref() {
        None => None,
        Some("host") => Some(HostConfigCgroupnsModeEnum::HOST),
        Some("private") => Some(HostConfigCgroupnsModeEnum::PRIVATE),
        Some(other) => {
            return Err(invalid(
                s,
                "cgroup",
                format!("invalid value {other:?}, expected \"host\" or \"private\""),
            ));
        }
    };
    h.isolation = match s.isolation.as_deref() {
        None => None,
        Some("default") => Some(HostConfigIsolationEnum::DEFAULT),
        Some("process") => Some(HostConfigIsolationEnum::PROCESS),
        Some("hyperv") => Some(HostConfigIsolationEnum::HYPERV),
        Some(other) => {
            return Err(invalid(
                s,
                "isolation",
                format!("invalid isolation {other:?}"),
            ));
        }
    };
    h.readonly_rootfs = Some(s.read_only);
    h.privileged = Some(s.privileged);
    h.restart_policy = restart_policy(s)?;
    h.shm_size = s.shm_size.map(|b| b.0).filter(|&b| b != 0);
    h.sysctls = non_empty_map(&s.sysctls);
    h.storage_opt = non_empty_map(&s.storage_opt);
    h.dns = non_empty(dns(s)?);
    h.dns_search = non_empty(s.dns_search.clone());
    h.dns_options = non_empty(s.dns_opt.clone());
    // compose sends `host:ip`; the engine splits at the first colon, so IPv6 addresses survive.
    h.extra_hosts = non_empty(
        s.extra_hosts
            .iter()
            .flat_map(|(host, ips)| ips.iter().map(move |ip| format!("{host}:{ip}")))
            .collect(),
    );
    let (opts, unconfined) = security_opts(spec)?;
    h.security_opt = non_empty(opts);
    if unconfined {
        h.masked_paths = Some(Vec::new());
        h.readonly_paths = Some(Vec::new());
    }
    h.tmpfs = (!s.tmpfs.is_empty()).then(|| {
        s.tmpfs
            .iter()
            .map(|t| {
                let (path, opts) = t.split_once(':').unwrap_or((t, ""));
                (path.to_string(), opts.to_string())
            })
            .collect()
    });
    h.runtime = s.runtime.clone();
    h.log_config = s.logging.as_ref().map(|l| HostConfigLogConfig {
        typ: l.driver.clone(),
        config: non_empty_map(&l.options),
    });
    h.group_add = non_empty(s.group_add.clone());
    h.oom_score_adj = s.oom_score_adj.filter(|&v| v != 0);
    Ok(())
}

/// `service:x` becomes `container:<id>` of a running container of `x` (compose's
/// `resolveSharedNamespaces`); other modes pass through.
fn shared_namespace(
    spec: &ContainerSpec,
    mode: Option<&str>,
    field: &str,
    what: &str,
) -> Result<Option<String>> {
    let Some(mode) = mode else {
        return Ok(None);
    };
    match mode.strip_prefix("service:") {
        None => Ok(Some(mode.to_string())),
        Some(name) => match spec.service_containers.get(name) {
            Some(id) => Ok(Some(format!("container:{id}"))),
            None => Err(invalid(
                spec.service,
                field,
                format!("cannot share {what} namespace with service {name}: container missing"),
            )),
        },
    }
}

/// `restart`, overridden by `deploy.restart_policy` (compose's `getRestartPolicy`).
fn restart_policy(s: &Service) -> Result<Option<RestartPolicy>> {
    let mut policy = None;
    if let Some(r) = s.restart.as_deref().filter(|r| !r.is_empty()) {
        let (name, count) = r.split_once(':').unwrap_or((r, ""));
        policy = Some(RestartPolicy {
            name: Some(policy_name(s, "restart", name)?),
            // compose ignores a count that is not a number.
            maximum_retry_count: Some(count.parse().unwrap_or(0)),
        });
    }
    if let Some(d) = s.deploy.as_ref().and_then(|d| d.restart_policy.as_ref()) {
        policy = Some(RestartPolicy {
            name: Some(policy_name(
                s,
                "deploy.restart_policy.condition",
                d.condition.as_deref().unwrap_or(""),
            )?),
            maximum_retry_count: Some(d.max_attempts.map_or(0, |n| n as i64)),
        });
    }
    Ok(policy)
}

fn policy_name(s: &Service, field: &str, name: &str) -> Result<RestartPolicyNameEnum> {
    Ok(match name {
        "" => RestartPolicyNameEnum::EMPTY,
        "none" | "no" => RestartPolicyNameEnum::NO,
        "on-failure" => RestartPolicyNameEnum::ON_FAILURE,
        "unless-stopped" => RestartPolicyNameEnum::UNLESS_STOPPED,
        "any" | "always" => RestartPolicyNameEnum::ALWAYS,
        other => {
            return Err(invalid(
                s,
                field,
                format!("invalid restart policy {other:?}"),
            ));
        }
    })
}

fn dns(s: &Service) -> Result<Vec<String>> {
    s.dns
        .iter()
        .map(|d| {
            d.parse::<IpAddr>()
                .map(|ip| ip.to_string())
                .map_err(|e| invalid(s, "dns", format!("invalid DNS address {d:?}: {e}")))
        })
        .collect()
}

/// docker CLI's `parseSecurityOpts` as compose copies it: a seccomp profile path is read
/// (relative to the project directory) and inlined as compact JSON; `systempaths=unconfined`
/// clears the masked and read-only paths instead of being sent.
fn security_opts(spec: &ContainerSpec) -> Result<(Vec<String>, bool)> {
    let s = spec.service;
    let mut unconfined = false;
    let mut out = Vec::new();
    for opt in &s.security_opt {
        if opt == "systempaths=unconfined" {
            unconfined = true;
            continue;
        }
        let (key, value) = match opt.split_once('=') {
            Some(kv) => kv,
            None if opt == "no-new-privileges" => (opt.as_str(), ""),
            None => opt.split_once(':').ok_or_else(|| {
                invalid(s, "security_opt", format!("invalid security-opt: {opt:?}"))
            })?,
        };
        if key == "seccomp" && value != "unconfined" && value != "builtin" {
            let path = spec.project.working_dir.join(value);
            let text = std::fs::read_to_string(&path).map_err(|e| {
                invalid(
                    s,
                    "security_opt",
                    format!("opening seccomp profile ({value}) failed: {e}"),
                )
            })?;
            let json: serde_json::Value = serde_json::from_str(&text).map_err(|e| {
                invalid(
                    s,
                    "security_opt",
                    format!("compacting json for seccomp profile ({value}) failed: {e}"),
                )
            })?;
            out.push(format!("seccomp={json}"));
        } else {
            out.push(opt.clone());
        }
    }
    Ok((out, unconfined))
}

#[cfg(test)]
mod tests {
    use bollard_stubs::models::{
        HostConfigCgroupnsModeEnum, HostConfigIsolationEnum, RestartPolicyNameEnum,
    };

    use super::super::testing::*;

    #[test]
    fn privileges_namespaces_and_misc() {
        let p = project(
            "services:\n  web:\n    image: x\n    cap_add: [NET_ADMIN]\n    cap_drop: [ALL]\n    privileged: true\n    read_only: true\n    init: true\n    group_add: [audio, 1000]\n    shm_size: 64m\n    sysctls: [net.core.somaxconn=1024]\n    storage_opt: {size: 1G}\n    annotations: {com.example.a: b}\n    ipc: shareable\n    pid: host\n    uts: host\n    userns_mode: host\n    cgroup: private\n    isolation: default\n    runtime: runc\n    oom_score_adj: -500\n    tmpfs: [/run, '/tmp:size=64m,mode=1777']\n    logging:\n      driver: json-file\n      options: {max-size: 10m}\n",
        );
        let h = convert(&p, "web").body.host_config.unwrap();
        assert_eq!(h.cap_add, Some(vec!["NET_ADMIN".to_string()]));
        assert_eq!(h.cap_drop, Some(vec!["ALL".to_string()]));
        assert_eq!(h.privileged, Some(true));
        assert_eq!(h.readonly_rootfs, Some(true));
        assert_eq!(h.init, Some(true));
        assert_eq!(
            h.group_add,
            Some(vec!["audio".to_string(), "1000".to_string()])
        );
        assert_eq!(h.shm_size, Some(64 << 20));
        assert_eq!(h.sysctls.unwrap()["net.core.somaxconn"], "1024");
        assert_eq!(h.storage_opt.unwrap()["size"], "1G");
        assert_eq!(h.annotations.unwrap()["com.example.a"], "b");
        assert_eq!(h.ipc_mode.as_deref(), Some("shareable"));
        assert_eq!(h.pid_mode.as_deref(), Some("host"));
        assert_eq!(h.uts_mode.as_deref(), Some("host"));
        assert_eq!(h.userns_mode.as_deref(), Some("host"));
        assert_eq!(h.cgroupns_mode, Some(HostConfigCgroupnsModeEnum::PRIVATE));
        assert_eq!(h.isolation, Some(HostConfigIsolationEnum::DEFAULT));
        assert_eq!(h.runtime.as_deref(), Some("runc"));
        assert_eq!(h.oom_score_adj, Some(-500));
        let tmpfs = h.tmpfs.unwrap();
        assert_eq!(tmpfs["/run"], "");
        assert_eq!(tmpfs["/tmp"], "size=64m,mode=1777");
        let log = h.log_config.unwrap();
        assert_eq!(log.typ.as_deref(), Some("json-file"));
        assert_eq!(log.config.unwrap()["max-size"], "10m");
    }

    #[test]
    fn dns_and_extra_hosts() {
        let p = project(
            "services:\n  web:\n    image: x\n    dns: [8.8.8.8, '::1']\n    dns_search: example.com\n    dns_opt: [use-vc]\n    extra_hosts: ['a:1.2.3.4', 'b=::1', 'c=5.6.7.8']\n  bad:\n    image: x\n    dns: not-an-ip\n",
        );
        let h = convert(&p, "web").body.host_config.unwrap();
        assert_eq!(h.dns, Some(vec!["8.8.8.8".to_string(), "::1".to_string()]));
        assert_eq!(h.dns_search, Some(vec!["example.com".to_string()]));
        assert_eq!(h.dns_options, Some(vec!["use-vc".to_string()]));
        assert_eq!(
            h.extra_hosts,
            Some(vec![
                "a:1.2.3.4".to_string(),
                "b:::1".to_string(),
                "c:5.6.7.8".to_string()
            ])
        );
        assert_err(&p, "bad", &["\"bad\"", "dns"]);
    }

    #[test]
    fn restart_policies() {
        let p = project(
            "services:\n  a:\n    image: x\n    restart: 'no'\n  b:\n    image: x\n    restart: always\n  c:\n    image: x\n    restart: on-failure:3\n  d:\n    image: x\n    restart: unless-stopped\n  e:\n    image: x\n    restart: always\n    deploy:\n      restart_policy:\n        condition: on-failure\n        max_attempts: 5\n  f:\n    image: x\n  g:\n    image: x\n    deploy:\n      restart_policy:\n        condition: any\n",
        );
        let r = |svc: &str| {
            convert(&p, svc)
                .body
                .host_config
                .unwrap()
                .restart_policy
                .map(|r| (r.name.unwrap(), r.maximum_retry_count.unwrap()))
        };
        assert_eq!(r("a"), Some((RestartPolicyNameEnum::NO, 0)));
        assert_eq!(r("b"), Some((RestartPolicyNameEnum::ALWAYS, 0)));
        assert_eq!(r("c"), Some((RestartPolicyNameEnum::ON_FAILURE, 3)));
        assert_eq!(r("d"), Some((RestartPolicyNameEnum::UNLESS_STOPPED, 0)));
        assert_eq!(r("e"), Some((RestartPolicyNameEnum::ON_FAILURE, 5)));
        assert_eq!(r("f"), None);
        assert_eq!(r("g"), Some((RestartPolicyNameEnum::ALWAYS, 0)));
    }

    #[test]
    fn security_opts_inline_seccomp_and_unconfined_paths() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join("seccomp.json"),
            "{\n  \"defaultAction\": \"SCMP_ACT_ALLOW\"\n}\n",
        )
        .unwrap();
        let p = project_in(
            dir.path(),
            "services:\n  web:\n    image: x\n    security_opt:\n      - no-new-privileges\n      - label:disable\n      - seccomp=seccomp.json\n      - apparmor=unconfined\n      - systempaths=unconfined\n  bad:\n    image: x\n    security_opt: [nonsense]\n",
        );
        let h = convert(&p, "web").body.host_config.unwrap();
        assert_eq!(
            h.security_opt,
            Some(vec![
                "no-new-privileges".to_string(),
                "label:disable".to_string(),
                "seccomp={\"defaultAction\":\"SCMP_ACT_ALLOW\"}".to_string(),
                "apparmor=unconfined".to_string(),
            ])
        );
        assert_eq!(h.masked_paths, Some(vec![]));
        assert_eq!(h.readonly_paths, Some(vec![]));
        assert_err(&p, "bad", &["security_opt"]);
    }

    #[test]
    fn service_namespaces_resolve_to_containers() {
        let p = project(
            "services:\n  web:\n    image: x\n    ipc: service:db\n    pid: container:other\n  db:\n    image: x\n",
        );
        let h = host_with(&p, "web", &[("db", "abc123")]);
        assert_eq!(h.ipc_mode.as_deref(), Some("container:abc123"));
        assert_eq!(h.pid_mode.as_deref(), Some("container:other"));
        assert_err(&p, "web", &["IPC namespace with service db"]);
    }
}
