//! A service, as the Compose model describes it, turned into the Engine API's container create
//! request, the way docker compose v2 does it (pkg/compose/create.go).

mod health;
mod host;
mod mounts;
mod network;
mod ports;
mod resources;
mod secrets;

use std::collections::HashMap;

use bollard_stubs::models::{ContainerCreateBody, EndpointSettings, HostConfig};
use compose_spec::model::{DependencyCondition, Project, Service};

use super::error::{ComposeError, Result};
use super::labels;

pub use mounts::inherit_volumes;
pub use secrets::FileCopy;

/// What one container of a service needs besides the service itself.
pub struct ContainerSpec<'a> {
    /// The whole project (networks, volumes, secrets and configs are looked up in it).
    pub project: &'a Project,
    /// The service.
    pub service: &'a Service,
    /// The container's name (`<project>-<service>-<n>` or `container_name`).
    pub name: &'a str,
    /// The container's number within its service.
    pub number: u32,
    /// A `compose run` container.
    pub oneoff: bool,
    /// The service's config hash (label).
    pub config_hash: &'a str,
    /// The image ID the container is created from (label), when known.
    pub image_id: Option<&'a str>,
    /// For `network_mode`/`ipc`/`pid: service:x` and `volumes_from: x`: a container of each
    /// service the project already runs, by service name.
    pub service_containers: &'a HashMap<String, String>,
}

/// The create request and the networks to connect after creating (the Engine API before 1.44
/// accepts one endpoint at create time; compose connects the others before starting).
pub struct CreatePlan {
    /// `POST /containers/create`'s body.
    pub body: ContainerCreateBody,
    /// Further networks (engine name, endpoint settings), connected in order.
    pub extra_networks: Vec<(String, EndpointSettings)>,
    /// The service's `platform` (the create call's `platform` query parameter).
    pub platform: Option<String>,
    /// Secrets and configs whose content comes from `environment` or `content`: compose copies
    /// them into the container after creating it and before starting it (`archive_put` at
    /// `/` with [`FileCopy::archive`]).
    pub copies: Vec<FileCopy>,
}

/// The engine's name of a project network key.
pub fn network_name(project: &Project, key: &str) -> String {
    match project.networks.get(key) {
        Some(n) => match (&n.name, n.external.external, &n.external.name) {
            (_, true, Some(ext)) => ext.clone(),
            (Some(name), _, _) => name.clone(),
            (None, true, None) => key.to_string(),
            (None, false, _) => format!("{}_{key}", project.name),
        },
        None if key == "default" => format!("{}_default", project.name),
        None => key.to_string(),
    }
}

/// The engine's name of a project volume key (`None` when the project declares no such volume).
pub fn volume_name(project: &Project, key: &str) -> Option<String> {
    let v = project.volumes.get(key)?;
    Some(match (&v.name, v.external.external, &v.external.name) {
        (_, true, Some(ext)) => ext.clone(),
        (Some(name), _, _) => name.clone(),
        (None, true, None) => key.to_string(),
        (None, false, _) => format!("{}_{key}", project.name),
    })
}

/// The labels every container of the service carries.
pub fn container_labels(spec: &ContainerSpec) -> HashMap<String, String> {
    let p = spec.project;
    let s = spec.service;
    let mut l: HashMap<String, String> = s
        .labels
        .iter()
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    l.insert(labels::PROJECT.into(), p.name.clone());
    l.insert(labels::SERVICE.into(), s.name.clone());
    // One-off (`run`) containers are not numbered.
    if !spec.oneoff {
        l.insert(labels::NUMBER.into(), spec.number.to_string());
    }
    l.insert(labels::CONFIG_HASH.into(), spec.config_hash.to_string());
    l.insert(
        labels::ONEOFF.into(),
        if spec.oneoff { "True" } else { "False" }.into(),
    );
    l.insert(labels::VERSION.into(), labels::COMPOSE_VERSION.into());
    l.insert(
        labels::WORKING_DIR.into(),
        p.working_dir.display().to_string(),
    );
    let files: Vec<String> = p
        .compose_files
        .iter()
        .map(|f| f.display().to_string())
        .collect();
    l.insert(labels::CONFIG_FILES.into(), files.join(","));
    if let Some(id) = spec.image_id {
        l.insert(labels::IMAGE.into(), id.to_string());
    }
    let deps: Vec<String> = s
        .depends_on
        .iter()
        .map(|(name, d)| {
            let cond = match d.condition {
                DependencyCondition::ServiceStarted => "service_started",
                DependencyCondition::ServiceHealthy => "service_healthy",
                DependencyCondition::ServiceCompletedSuccessfully => {
                    "service_completed_successfully"
                }
            };
            format!("{name}:{cond}:{}", d.restart)
        })
        .collect();
    l.insert(labels::DEPENDS_ON.into(), deps.join(","));
    l
}

/// The create request for one container of a service.
pub fn container_create(spec: &ContainerSpec) -> Result<CreatePlan> {
    let s = spec.service;
    let mut host = HostConfig::default();
    host::apply(spec, &mut host)?;
    resources::apply(s, &mut host)?;
    let exposed = ports::exposed_ports(s)?;
    host.port_bindings = ports::port_bindings(s)?;
    let m = mounts::build(spec)?;
    host.binds = non_empty(m.binds);
    host.mounts = non_empty(m.mounts);
    host.volumes_from = non_empty(mounts::volumes_from(spec)?);
    let copies = secrets::copies(spec)?;
    let net = network::settings(spec)?;
    host.network_mode = net.mode;
    host.links = non_empty(net.links);
    let body = ContainerCreateBody {
        hostname: s.hostname.clone(),
        domainname: s.domainname.clone(),
        user: s.user.clone(),
        exposed_ports: non_empty(exposed),
        tty: Some(s.tty),
        open_stdin: Some(s.stdin_open),
        stdin_once: Some(false),
        attach_stdin: Some(false),
        attach_stdout: Some(true),
        attach_stderr: Some(true),
        cmd: s.command.clone(),
        image: s.image.clone(),
        working_dir: s.working_dir.clone(),
        entrypoint: s.entrypoint.clone(),
        network_disabled: (s.network_mode.as_deref() == Some("disabled")).then_some(true),
        labels: Some(container_labels(spec)),
        stop_signal: s.stop_signal.clone(),
        env: Some(environment(spec)),
        healthcheck: health::config(s)?,
        stop_timeout: s.stop_grace_period.map(|d| d.0 / 1_000_000_000),
        host_config: Some(host),
        networking_config: net.config,
        ..Default::default()
    };
    Ok(CreatePlan {
        body,
        extra_networks: net.extra,
        platform: s.platform.clone(),
        copies,
    })
}

/// `KEY=value` pairs; a name without a value takes the project environment's value (the loader
/// normally did that already) and is left out when that is unset too.
fn environment(spec: &ContainerSpec) -> Vec<String> {
    spec.service
        .environment
        .iter()
        .filter_map(|(k, v)| {
            v.as_ref()
                .or_else(|| spec.project.environment.get(k))
                .map(|v| format!("{k}={v}"))
        })
        .collect()
}

/// `ComposeError::Invalid` naming the service and the field.
fn invalid(s: &Service, field: &str, msg: impl std::fmt::Display) -> ComposeError {
    ComposeError::Invalid(format!("service {:?}: {field}: {msg}", s.name))
}

fn non_empty<T>(v: Vec<T>) -> Option<Vec<T>> {
    (!v.is_empty()).then_some(v)
}

fn non_empty_map(m: &indexmap::IndexMap<String, String>) -> Option<HashMap<String, String>> {
    (!m.is_empty()).then(|| m.iter().map(|(k, v)| (k.clone(), v.clone())).collect())
}

#[cfg(test)]
pub(crate) mod testing {
    //! Projects loaded through the real loader, converted with an empty container map.

    use std::collections::HashMap;

    use bollard_stubs::models::{EndpointSettings, HostConfig};
    use compose_spec::loader::{LoadOptions, load};
    use compose_spec::model::Project;

    use super::{ContainerSpec, CreatePlan, container_create};
    use crate::compose::error::Result;

    /// Loads `yaml` as project `demo` with its directory at `dir`.
    pub fn project_in(dir: &std::path::Path, yaml: &str) -> Project {
        load(&LoadOptions {
            config_files: vec!["-".into()],
            stdin: Some(yaml.to_string()),
            project_directory: Some(dir.to_path_buf()),
            project_name: Some("demo".into()),
            cwd: Some(dir.to_path_buf()),
            os_env: [("FROM_OS".to_string(), "os-value".to_string())]
                .into_iter()
                .collect(),
            ..LoadOptions::default()
        })
        .unwrap()
    }

    /// Loads `yaml` as project `demo` in a fixed directory that need not exist.
    pub fn project(yaml: &str) -> Project {
        project_in(std::path::Path::new("/srv/demo"), yaml)
    }

    /// Converts container 1 of `service`, with `containers` as the running services.
    pub fn convert_with(
        p: &Project,
        service: &str,
        containers: &HashMap<String, String>,
    ) -> Result<CreatePlan> {
        let s = &p.services[service];
        let name = format!("demo-{service}-1");
        container_create(&ContainerSpec {
            project: p,
            service: s,
            name: &name,
            number: 1,
            oneoff: false,
            config_hash: "hash",
            image_id: None,
            service_containers: containers,
        })
    }

    /// Converts container 1 of `service`.
    pub fn convert(p: &Project, service: &str) -> CreatePlan {
        convert_with(p, service, &HashMap::new()).unwrap()
    }

    /// The error converting `service`.
    pub fn convert_err(p: &Project, service: &str) -> String {
        match convert_with(p, service, &HashMap::new()) {
            Ok(_) => panic!("converting {service} succeeded"),
            Err(e) => e.to_string(),
        }
    }

    /// Asserts that converting `service` fails with a message containing every needle.
    pub fn assert_err(p: &Project, service: &str, needles: &[&str]) {
        let e = convert_err(p, service);
        assert!(needles.iter().all(|n| e.contains(n)), "{e}");
    }

    /// Running services and their container IDs.
    pub fn running(pairs: &[(&str, &str)]) -> HashMap<String, String> {
        pairs
            .iter()
            .map(|(s, id)| (s.to_string(), id.to_string()))
            .collect()
    }

    /// The host config of `service`'s container 1, with `pairs` running.
    pub fn host_with(p: &Project, service: &str, pairs: &[(&str, &str)]) -> HostConfig {
        let plan = convert_with(p, service, &running(pairs)).unwrap();
        plan.body.host_config.unwrap()
    }

    /// The create request's endpoints.
    pub fn endpoints(plan: &CreatePlan) -> HashMap<String, EndpointSettings> {
        let config = plan.body.networking_config.clone().unwrap();
        config.endpoints_config.unwrap()
    }
}

#[cfg(test)]
mod tests {
    use super::testing::*;

    #[test]
    fn basic_container_config() {
        let p = project(
            "services:\n  web:\n    image: busybox\n    command: sleep 1\n    entrypoint: []\n    working_dir: /w\n    user: '1000:1000'\n    hostname: h\n    domainname: example.com\n    tty: true\n    stdin_open: true\n    stop_signal: SIGINT\n    stop_grace_period: 1m30s\n    labels: {a: b}\n    platform: linux/amd64\n    environment:\n      A: '1'\n      FROM_OS:\n      UNSET:\n",
        );
        let plan = convert(&p, "web");
        let b = &plan.body;
        assert_eq!(b.image.as_deref(), Some("busybox"));
        assert_eq!(b.cmd, Some(vec!["sleep".to_string(), "1".to_string()]));
        assert_eq!(b.entrypoint, Some(vec![]));
        assert_eq!(b.working_dir.as_deref(), Some("/w"));
        assert_eq!(b.user.as_deref(), Some("1000:1000"));
        assert_eq!(b.hostname.as_deref(), Some("h"));
        assert_eq!(b.domainname.as_deref(), Some("example.com"));
        assert_eq!(b.tty, Some(true));
        assert_eq!(b.open_stdin, Some(true));
        assert_eq!(b.stop_signal.as_deref(), Some("SIGINT"));
        assert_eq!(b.stop_timeout, Some(90));
        assert_eq!(plan.platform.as_deref(), Some("linux/amd64"));
        assert_eq!(
            b.env,
            Some(vec!["A=1".to_string(), "FROM_OS=os-value".to_string()])
        );
        let labels = b.labels.as_ref().unwrap();
        assert_eq!(labels["a"], "b");
        assert_eq!(labels["com.docker.compose.service"], "web");
        assert_eq!(labels["com.docker.compose.project"], "demo");
        assert_eq!(labels["com.docker.compose.config-hash"], "hash");
        assert_eq!(labels["com.docker.compose.oneoff"], "False");
    }

    #[test]
    fn command_and_entrypoint_absent_stay_absent() {
        let p = project("services:\n  web:\n    image: busybox\n");
        let b = convert(&p, "web").body;
        assert_eq!(b.cmd, None);
        assert_eq!(b.entrypoint, None);
        assert_eq!(b.stop_timeout, None);
        assert_eq!(b.tty, Some(false));
    }

    #[test]
    fn env_file_content_is_in_the_environment() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("web.env"), "FROM_FILE=x\nA=file\n").unwrap();
        let p = project_in(
            dir.path(),
            "services:\n  web:\n    image: busybox\n    env_file: web.env\n    environment:\n      A: own\n",
        );
        let env = convert(&p, "web").body.env.unwrap();
        assert!(env.contains(&"FROM_FILE=x".to_string()), "{env:?}");
        assert!(env.contains(&"A=own".to_string()), "{env:?}");
    }
}
