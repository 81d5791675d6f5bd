//! A service, as the Compose model describes it, turned into the Engine API's container create
//! request, the way docker compose v2 does it (pkg/compose/create.go).

use std::collections::HashMap;

use bollard_stubs::models::{ContainerCreateBody, EndpointSettings, HostConfig, NetworkingConfig};
use compose_spec::model::{DependencyCondition, Project, Service};

use super::error::Result;
use super::labels;

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
    l.insert(labels::NUMBER.into(), spec.number.to_string());
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
    let env: Vec<String> = s
        .environment
        .iter()
        .filter_map(|(k, v)| v.as_ref().map(|v| format!("{k}={v}")))
        .collect();
    let mut nets = s.networks.iter();
    let mut endpoints = HashMap::new();
    let mut extra = Vec::new();
    let endpoint = |_key: &str| EndpointSettings {
        aliases: Some(vec![s.name.clone(), spec.name.to_string()]),
        ..Default::default()
    };
    if let Some((key, _)) = nets.next() {
        endpoints.insert(network_name(spec.project, key), endpoint(key));
    }
    for (key, _) in nets {
        extra.push((network_name(spec.project, key), endpoint(key)));
    }
    let network_mode = endpoints.keys().next().cloned();
    Ok(CreatePlan {
        body: ContainerCreateBody {
            image: s.image.clone(),
            cmd: s.command.clone(),
            entrypoint: s.entrypoint.clone(),
            env: Some(env),
            labels: Some(container_labels(spec)),
            host_config: Some(HostConfig {
                network_mode,
                ..Default::default()
            }),
            networking_config: Some(NetworkingConfig {
                endpoints_config: Some(endpoints),
            }),
            ..Default::default()
        },
        extra_networks: extra,
    })
}
