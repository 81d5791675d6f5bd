//! The `com.docker.compose.*` labels docker compose v2 writes, so tools that read them (and
//! compose itself) recognise Berth's containers, networks and volumes.

/// The project name.
pub const PROJECT: &str = "com.docker.compose.project";
/// The service name.
pub const SERVICE: &str = "com.docker.compose.service";
/// The container's number within its service (1-based).
pub const NUMBER: &str = "com.docker.compose.container-number";
/// The service's config hash (see `compose_spec::hash`).
pub const CONFIG_HASH: &str = "com.docker.compose.config-hash";
/// `True` for `compose run` containers.
pub const ONEOFF: &str = "com.docker.compose.oneoff";
/// The service's dependencies, `svc:condition:restart` joined by commas.
pub const DEPENDS_ON: &str = "com.docker.compose.depends_on";
/// The image ID the container was created from.
pub const IMAGE: &str = "com.docker.compose.image";
/// The project's working directory.
pub const WORKING_DIR: &str = "com.docker.compose.project.working_dir";
/// The Compose files, joined by commas.
pub const CONFIG_FILES: &str = "com.docker.compose.project.config_files";
/// The environment files, joined by commas.
pub const ENV_FILE: &str = "com.docker.compose.project.environment_file";
/// The compose version that created the object.
pub const VERSION: &str = "com.docker.compose.version";
/// A network's key in the project's `networks`.
pub const NETWORK: &str = "com.docker.compose.network";
/// A volume's key in the project's `volumes`.
pub const VOLUME: &str = "com.docker.compose.volume";
/// The container a recreated container replaced.
pub const REPLACE: &str = "com.docker.compose.replace";
/// Marks a one-off container's slug.
pub const SLUG: &str = "com.docker.compose.slug";

/// The compose version Berth writes in `com.docker.compose.version` (the compose v2 release
/// whose behaviour it follows).
pub const COMPOSE_VERSION: &str = "2.29.7";

/// The `filters` JSON selecting a project's objects, plus optional extra labels.
pub fn project_filter(project: &str, extra: &[String]) -> String {
    let mut labels = vec![format!("{PROJECT}={project}")];
    labels.extend(extra.iter().cloned());
    serde_json::json!({ "label": labels }).to_string()
}
