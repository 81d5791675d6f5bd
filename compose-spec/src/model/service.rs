//! A service and the types of its keys.

use std::fmt;

use indexmap::IndexMap;
use serde::de::{self, MapAccess, SeqAccess, Visitor};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use super::ports::{ServicePort, ports};
use super::values::{
    self, Cpus, Duration, Extensions, FileMode, Mapping, MappingWithEquals, OptOut, UnitBytes,
    is_false, is_zero,
};
use super::volumes::{ServiceVolume, volumes};
use crate::de::EXTENSIONS_FIELD;

/// Decode a value that has a short (scalar or list) and a long (mapping) syntax: the long form
/// goes through `T`'s derived `Deserialize` with unknown-key checks and `x-*` extensions.
pub(crate) fn short_or_long<'de, D, T, V>(d: D, visitor: V) -> Result<T, D::Error>
where
    D: Deserializer<'de>,
    V: Visitor<'de, Value = T>,
{
    d.deserialize_struct("#any", &[EXTENSIONS_FIELD], visitor)
}

/// A service definition.
#[derive(Clone, Debug, Default, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct Service {
    /// The service's key in `services` (not printed).
    #[serde(skip)]
    pub name: String,
    /// Profiles that enable the service.
    #[serde(
        skip_serializing_if = "Vec::is_empty",
        deserialize_with = "values::list"
    )]
    pub profiles: Vec<String>,
    /// OCI annotations.
    #[serde(
        skip_serializing_if = "IndexMap::is_empty",
        deserialize_with = "values::list_or_dict",
        serialize_with = "values::sorted"
    )]
    pub annotations: Mapping,
    /// Whether `up` attaches to the service's output.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub attach: Option<bool>,
    /// How to build the image.
    #[serde(skip_serializing_if = "Option::is_none", deserialize_with = "build")]
    pub build: Option<Build>,
    /// Development workflow (`watch`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub develop: Option<Develop>,
    /// Block IO limits.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub blkio_config: Option<BlkioConfig>,
    /// Added capabilities.
    #[serde(
        skip_serializing_if = "Vec::is_empty",
        deserialize_with = "values::list"
    )]
    pub cap_add: Vec<String>,
    /// Dropped capabilities.
    #[serde(
        skip_serializing_if = "Vec::is_empty",
        deserialize_with = "values::list"
    )]
    pub cap_drop: Vec<String>,
    /// Parent cgroup.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cgroup_parent: Option<String>,
    /// Cgroup namespace mode (`host` or `private`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cgroup: Option<String>,
    /// Number of usable CPUs (Windows).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cpu_count: Option<i64>,
    /// Usable percentage of CPUs (Windows).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cpu_percent: Option<Cpus>,
    /// CFS period in microseconds.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cpu_period: Option<i64>,
    /// CFS quota in microseconds.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cpu_quota: Option<i64>,
    /// Realtime period in microseconds.
    #[serde(
        skip_serializing_if = "Option::is_none",
        deserialize_with = "micros_or_duration"
    )]
    pub cpu_rt_period: Option<i64>,
    /// Realtime runtime in microseconds.
    #[serde(
        skip_serializing_if = "Option::is_none",
        deserialize_with = "micros_or_duration"
    )]
    pub cpu_rt_runtime: Option<i64>,
    /// CPU count limit.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cpus: Option<Cpus>,
    /// Allowed CPUs.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cpuset: Option<String>,
    /// Relative CPU weight.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cpu_shares: Option<i64>,
    /// Command, split like a shell when written as a string.
    #[serde(
        skip_serializing_if = "skip_command",
        deserialize_with = "values::command"
    )]
    pub command: Option<Vec<String>>,
    /// Configs mounted into the container.
    #[serde(
        skip_serializing_if = "Vec::is_empty",
        deserialize_with = "file_references"
    )]
    pub configs: Vec<FileReference>,
    /// Fixed container name.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub container_name: Option<String>,
    /// Windows credential spec.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub credential_spec: Option<CredentialSpec>,
    /// Services this one depends on.
    #[serde(
        skip_serializing_if = "IndexMap::is_empty",
        deserialize_with = "depends_on",
        serialize_with = "values::sorted"
    )]
    pub depends_on: IndexMap<String, ServiceDependency>,
    /// Deployment settings.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub deploy: Option<Deploy>,
    /// Device cgroup rules.
    #[serde(
        skip_serializing_if = "Vec::is_empty",
        deserialize_with = "values::list"
    )]
    pub device_cgroup_rules: Vec<String>,
    /// Host devices.
    #[serde(
        skip_serializing_if = "Vec::is_empty",
        deserialize_with = "device_mappings"
    )]
    pub devices: Vec<DeviceMapping>,
    /// DNS servers.
    #[serde(
        skip_serializing_if = "Vec::is_empty",
        deserialize_with = "values::string_or_list"
    )]
    pub dns: Vec<String>,
    /// DNS options.
    #[serde(
        skip_serializing_if = "Vec::is_empty",
        deserialize_with = "values::list"
    )]
    pub dns_opt: Vec<String>,
    /// DNS search domains.
    #[serde(
        skip_serializing_if = "Vec::is_empty",
        deserialize_with = "values::string_or_list"
    )]
    pub dns_search: Vec<String>,
    /// NIS domain name.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub domainname: Option<String>,
    /// Entrypoint, split like a shell when written as a string.
    #[serde(
        skip_serializing_if = "skip_command",
        deserialize_with = "values::command"
    )]
    pub entrypoint: Option<Vec<String>>,
    /// External provider managing the service.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub provider: Option<Provider>,
    /// Environment variables; `None` is a variable named without a value.
    #[serde(
        skip_serializing_if = "IndexMap::is_empty",
        deserialize_with = "environment",
        serialize_with = "values::sorted"
    )]
    pub environment: MappingWithEquals,
    /// Files of environment variables.
    #[serde(skip_serializing_if = "Vec::is_empty", deserialize_with = "env_files")]
    pub env_file: Vec<EnvFile>,
    /// Exposed ports.
    #[serde(
        skip_serializing_if = "Vec::is_empty",
        deserialize_with = "values::string_or_number_list"
    )]
    pub expose: Vec<String>,
    /// `extends`, normally resolved (and removed) by the loader.
    #[serde(skip_serializing_if = "Option::is_none", deserialize_with = "extends")]
    pub extends: Option<Extends>,
    /// Links to containers outside the project.
    #[serde(
        skip_serializing_if = "Vec::is_empty",
        deserialize_with = "values::list"
    )]
    pub external_links: Vec<String>,
    /// Extra `/etc/hosts` entries: host -> addresses.
    #[serde(
        skip_serializing_if = "IndexMap::is_empty",
        deserialize_with = "extra_hosts",
        serialize_with = "hosts_list"
    )]
    pub extra_hosts: IndexMap<String, Vec<String>>,
    /// Additional groups.
    #[serde(
        skip_serializing_if = "Vec::is_empty",
        deserialize_with = "values::number_list"
    )]
    pub group_add: Vec<String>,
    /// GPU requests (`all` is one request with count -1).
    #[serde(skip_serializing_if = "Vec::is_empty", deserialize_with = "gpus")]
    pub gpus: Vec<DeviceRequest>,
    /// Hostname.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub hostname: Option<String>,
    /// Health check.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub healthcheck: Option<Healthcheck>,
    /// Image reference.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub image: Option<String>,
    /// Run an init process.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub init: Option<bool>,
    /// IPC mode (`host`, `shareable`, `service:x`, `container:x`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ipc: Option<String>,
    /// Isolation technology (Windows).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub isolation: Option<String>,
    /// Container labels.
    #[serde(
        skip_serializing_if = "IndexMap::is_empty",
        deserialize_with = "values::list_or_dict",
        serialize_with = "values::sorted"
    )]
    pub labels: Mapping,
    /// Files of labels.
    #[serde(
        skip_serializing_if = "Vec::is_empty",
        deserialize_with = "values::string_or_list"
    )]
    pub label_file: Vec<String>,
    /// Links to other services (`service[:alias]`).
    #[serde(
        skip_serializing_if = "Vec::is_empty",
        deserialize_with = "values::list"
    )]
    pub links: Vec<String>,
    /// Logging driver.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub logging: Option<Logging>,
    /// Memory limit.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub mem_limit: Option<UnitBytes>,
    /// Memory soft limit.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub mem_reservation: Option<UnitBytes>,
    /// Memory plus swap limit.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub memswap_limit: Option<UnitBytes>,
    /// Swappiness (0-100).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub mem_swappiness: Option<UnitBytes>,
    /// MAC address.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub mac_address: Option<String>,
    /// AI models the service uses.
    #[serde(
        skip_serializing_if = "IndexMap::is_empty",
        deserialize_with = "service_models",
        serialize_with = "values::sorted"
    )]
    pub models: IndexMap<String, Option<ServiceModel>>,
    /// Network mode (`host`, `none`, `service:x`, `container:x`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub network_mode: Option<String>,
    /// Networks the service joins.
    #[serde(
        skip_serializing_if = "IndexMap::is_empty",
        deserialize_with = "service_networks",
        serialize_with = "values::sorted"
    )]
    pub networks: IndexMap<String, Option<ServiceNetwork>>,
    /// Disable the OOM killer.
    #[serde(skip_serializing_if = "is_false")]
    pub oom_kill_disable: bool,
    /// OOM score adjustment.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub oom_score_adj: Option<i64>,
    /// PID mode.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pid: Option<String>,
    /// PIDs limit.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pids_limit: Option<i64>,
    /// Target platform.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub platform: Option<String>,
    /// Published ports, in long syntax.
    #[serde(skip_serializing_if = "Vec::is_empty", deserialize_with = "ports")]
    pub ports: Vec<ServicePort>,
    /// Privileged mode.
    #[serde(skip_serializing_if = "is_false")]
    pub privileged: bool,
    /// Pull policy.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pull_policy: Option<String>,
    /// Refresh interval for `pull_policy: refresh`-like policies.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pull_refresh_after: Option<String>,
    /// Read-only root filesystem.
    #[serde(skip_serializing_if = "is_false")]
    pub read_only: bool,
    /// Restart policy.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub restart: Option<String>,
    /// OCI runtime.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub runtime: Option<String>,
    /// Number of containers.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub scale: Option<i64>,
    /// Secrets mounted into the container.
    #[serde(
        skip_serializing_if = "Vec::is_empty",
        deserialize_with = "file_references"
    )]
    pub secrets: Vec<FileReference>,
    /// Security options.
    #[serde(
        skip_serializing_if = "Vec::is_empty",
        deserialize_with = "values::list"
    )]
    pub security_opt: Vec<String>,
    /// Size of /dev/shm.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub shm_size: Option<UnitBytes>,
    /// Keep stdin open.
    #[serde(skip_serializing_if = "is_false")]
    pub stdin_open: bool,
    /// Time to wait after the stop signal.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub stop_grace_period: Option<Duration>,
    /// Stop signal.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub stop_signal: Option<String>,
    /// Storage driver options.
    #[serde(
        skip_serializing_if = "IndexMap::is_empty",
        deserialize_with = "values::dict",
        serialize_with = "values::sorted"
    )]
    pub storage_opt: Mapping,
    /// Kernel parameters.
    #[serde(
        skip_serializing_if = "IndexMap::is_empty",
        deserialize_with = "values::list_or_dict",
        serialize_with = "values::sorted"
    )]
    pub sysctls: Mapping,
    /// tmpfs mounts.
    #[serde(
        skip_serializing_if = "Vec::is_empty",
        deserialize_with = "values::string_or_list"
    )]
    pub tmpfs: Vec<String>,
    /// Allocate a TTY.
    #[serde(skip_serializing_if = "is_false")]
    pub tty: bool,
    /// Resource limits.
    #[serde(
        skip_serializing_if = "IndexMap::is_empty",
        serialize_with = "values::sorted"
    )]
    pub ulimits: IndexMap<String, Ulimit>,
    /// Mount the engine API socket.
    #[serde(skip_serializing_if = "is_false")]
    pub use_api_socket: bool,
    /// User.
    #[serde(
        skip_serializing_if = "Option::is_none",
        deserialize_with = "values::opt_string_like"
    )]
    pub user: Option<String>,
    /// User namespace mode.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub userns_mode: Option<String>,
    /// UTS mode.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub uts: Option<String>,
    /// Mounts, in long syntax.
    #[serde(skip_serializing_if = "Vec::is_empty", deserialize_with = "volumes")]
    pub volumes: Vec<ServiceVolume>,
    /// Services or containers to take volumes from.
    #[serde(
        skip_serializing_if = "Vec::is_empty",
        deserialize_with = "values::list"
    )]
    pub volumes_from: Vec<String>,
    /// Working directory.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub working_dir: Option<String>,
    /// Hooks run before the container starts.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub pre_start: Vec<ServiceHook>,
    /// Hooks run after the container started.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub post_start: Vec<ServiceHook>,
    /// Hooks run before the container stops.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub pre_stop: Vec<ServiceHook>,
    /// `x-*` keys.
    #[serde(
        rename = "#extensions",
        deserialize_with = "values::extensions",
        skip_serializing_if = "IndexMap::is_empty",
        serialize_with = "values::sorted"
    )]
    pub extensions: Extensions,
}

/// compose-go's JSON marshalling keeps `command`/`entrypoint` as `null` (YAML omits them).
fn skip_command(c: &Option<Vec<String>>) -> bool {
    c.is_none() && !crate::output::json_mode()
}

fn micros_or_duration<'de, D: Deserializer<'de>>(d: D) -> Result<Option<i64>, D::Error> {
    let Some(t) = values::opt_string_like(d)? else {
        return Ok(None);
    };
    if let Ok(n) = t.parse::<i64>() {
        return Ok(Some(n));
    }
    Duration::parse(&t)
        .map(|d| Some(d.0 / 1000))
        .map_err(de::Error::custom)
}

/// `build`: a context path or the long form.
#[derive(Clone, Debug, Default, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct Build {
    /// Build context (path or URL).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub context: Option<String>,
    /// Dockerfile path, relative to the context.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub dockerfile: Option<String>,
    /// Inline Dockerfile.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub dockerfile_inline: Option<String>,
    /// Extra privileged entitlements.
    #[serde(
        skip_serializing_if = "Vec::is_empty",
        deserialize_with = "values::list"
    )]
    pub entitlements: Vec<String>,
    /// Build arguments.
    #[serde(
        skip_serializing_if = "IndexMap::is_empty",
        deserialize_with = "values::list_or_dict_opt",
        serialize_with = "values::sorted"
    )]
    pub args: MappingWithEquals,
    /// Provenance attestation.
    #[serde(
        skip_serializing_if = "Option::is_none",
        deserialize_with = "values::opt_string_like"
    )]
    pub provenance: Option<String>,
    /// SBOM attestation.
    #[serde(
        skip_serializing_if = "Option::is_none",
        deserialize_with = "values::opt_string_like"
    )]
    pub sbom: Option<String>,
    /// SSH agent sockets or keys.
    #[serde(skip_serializing_if = "Vec::is_empty", deserialize_with = "ssh")]
    pub ssh: Vec<SshKey>,
    /// Image labels.
    #[serde(
        skip_serializing_if = "IndexMap::is_empty",
        deserialize_with = "values::list_or_dict",
        serialize_with = "values::sorted"
    )]
    pub labels: Mapping,
    /// Cache sources.
    #[serde(
        skip_serializing_if = "Vec::is_empty",
        deserialize_with = "values::string_or_list"
    )]
    pub cache_from: Vec<String>,
    /// Cache destinations.
    #[serde(
        skip_serializing_if = "Vec::is_empty",
        deserialize_with = "values::string_or_list"
    )]
    pub cache_to: Vec<String>,
    /// Disable the build cache.
    #[serde(skip_serializing_if = "is_false")]
    pub no_cache: bool,
    /// Stages built without cache.
    #[serde(
        skip_serializing_if = "Vec::is_empty",
        deserialize_with = "values::string_or_list"
    )]
    pub no_cache_filter: Vec<String>,
    /// Named additional contexts.
    #[serde(
        skip_serializing_if = "IndexMap::is_empty",
        deserialize_with = "values::list_or_dict",
        serialize_with = "values::sorted"
    )]
    pub additional_contexts: Mapping,
    /// Always pull base images.
    #[serde(skip_serializing_if = "is_false")]
    pub pull: bool,
    /// Extra hosts during the build.
    #[serde(
        skip_serializing_if = "IndexMap::is_empty",
        deserialize_with = "extra_hosts",
        serialize_with = "hosts_list"
    )]
    pub extra_hosts: IndexMap<String, Vec<String>>,
    /// Isolation technology.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub isolation: Option<String>,
    /// Network for RUN instructions.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub network: Option<String>,
    /// Target stage.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub target: Option<String>,
    /// Secrets exposed to the build.
    #[serde(
        skip_serializing_if = "Vec::is_empty",
        deserialize_with = "file_references"
    )]
    pub secrets: Vec<FileReference>,
    /// Size of /dev/shm during the build.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub shm_size: Option<UnitBytes>,
    /// Tags for the built image.
    #[serde(
        skip_serializing_if = "Vec::is_empty",
        deserialize_with = "values::string_or_list"
    )]
    pub tags: Vec<String>,
    /// Ulimits during the build.
    #[serde(
        skip_serializing_if = "IndexMap::is_empty",
        serialize_with = "values::sorted"
    )]
    pub ulimits: IndexMap<String, Ulimit>,
    /// Target platforms.
    #[serde(
        skip_serializing_if = "Vec::is_empty",
        deserialize_with = "values::string_or_list"
    )]
    pub platforms: Vec<String>,
    /// Privileged build.
    #[serde(skip_serializing_if = "is_false")]
    pub privileged: bool,
    /// `x-*` keys.
    #[serde(
        rename = "#extensions",
        deserialize_with = "values::extensions",
        skip_serializing_if = "IndexMap::is_empty",
        serialize_with = "values::sorted"
    )]
    pub extensions: Extensions,
}

fn build<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Build>, D::Error> {
    struct V;
    impl<'de> Visitor<'de> for V {
        type Value = Option<Build>;
        fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
            f.write_str("a string or mapping")
        }
        fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
            Ok(None)
        }
        fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
            Ok(Some(Build {
                context: Some(v.to_string()),
                ..Build::default()
            }))
        }
        fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Self::Value, A::Error> {
            Build::deserialize(de::value::MapAccessDeserializer::new(map)).map(Some)
        }
    }
    short_or_long(d, V)
}

/// An SSH agent socket or key for the build: `default` or `id=path`.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct SshKey {
    /// The key id.
    pub id: String,
    /// The socket or key path, if any.
    pub path: Option<String>,
}

impl Serialize for SshKey {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match &self.path {
            None => s.serialize_str(&self.id),
            Some(p) => s.collect_str(&format_args!("{}: {}", self.id, p)),
        }
    }
}

fn ssh<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<SshKey>, D::Error> {
    struct V;
    impl<'de> Visitor<'de> for V {
        type Value = Vec<SshKey>;
        fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
            f.write_str("a mapping")
        }
        fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
            Ok(vec![ssh_key(v)])
        }
        fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
            let mut out = Vec::new();
            while let Some(v) = seq.next_element::<String>()? {
                out.push(ssh_key(&v));
            }
            Ok(out)
        }
        fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
            let mut out = Vec::new();
            while let Some(id) = map.next_key::<String>()? {
                let values::ScalarText(path) = map.next_value()?;
                out.push(SshKey { id, path });
            }
            Ok(out)
        }
    }
    d.deserialize_any(V)
}

fn ssh_key(v: &str) -> SshKey {
    match v.split_once('=') {
        Some((id, path)) => SshKey {
            id: id.to_string(),
            path: Some(path.to_string()),
        },
        None => SshKey {
            id: v.to_string(),
            path: None,
        },
    }
}

/// `develop`.
#[derive(Clone, Debug, Default, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct Develop {
    /// Watch rules.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub watch: Vec<WatchRule>,
    /// `x-*` keys.
    #[serde(
        rename = "#extensions",
        deserialize_with = "values::extensions",
        skip_serializing_if = "IndexMap::is_empty",
        serialize_with = "values::sorted"
    )]
    pub extensions: Extensions,
}

/// One `develop.watch` rule.
#[derive(Clone, Debug, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct WatchRule {
    /// Path to watch.
    pub path: String,
    /// What to do on change.
    pub action: WatchAction,
    /// Target path in the container.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target: Option<String>,
    /// Command for `sync+exec`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exec: Option<ServiceHook>,
    /// Patterns to include.
    #[serde(
        default,
        skip_serializing_if = "Vec::is_empty",
        deserialize_with = "values::string_or_list"
    )]
    pub include: Vec<String>,
    /// Patterns to ignore.
    #[serde(
        default,
        skip_serializing_if = "Vec::is_empty",
        deserialize_with = "values::string_or_list"
    )]
    pub ignore: Vec<String>,
    /// Sync everything when watching starts.
    #[serde(default, skip_serializing_if = "is_false")]
    pub initial_sync: bool,
    /// `x-*` keys.
    #[serde(
        rename = "#extensions",
        deserialize_with = "values::extensions",
        default,
        skip_serializing_if = "IndexMap::is_empty",
        serialize_with = "values::sorted"
    )]
    pub extensions: Extensions,
}

/// A `develop.watch` action.
#[derive(Clone, Copy, Debug, Deserialize, Serialize, PartialEq, Eq)]
pub enum WatchAction {
    /// Copy changed files into the container.
    #[serde(rename = "sync")]
    Sync,
    /// Rebuild the image and recreate the container.
    #[serde(rename = "rebuild")]
    Rebuild,
    /// Restart the container.
    #[serde(rename = "restart")]
    Restart,
    /// Sync then restart.
    #[serde(rename = "sync+restart")]
    SyncRestart,
    /// Sync then run a command.
    #[serde(rename = "sync+exec")]
    SyncExec,
}

/// A lifecycle hook (`post_start`, `pre_stop`, `develop.watch.exec`).
#[derive(Clone, Debug, Default, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct ServiceHook {
    /// Command to run.
    #[serde(
        skip_serializing_if = "Option::is_none",
        deserialize_with = "values::command"
    )]
    pub command: Option<Vec<String>>,
    /// Image for `pre_start` hooks.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub image: Option<String>,
    /// User to run as.
    #[serde(
        skip_serializing_if = "Option::is_none",
        deserialize_with = "values::opt_string_like"
    )]
    pub user: Option<String>,
    /// Privileged.
    #[serde(skip_serializing_if = "is_false")]
    pub privileged: bool,
    /// Working directory.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub working_dir: Option<String>,
    /// Environment.
    #[serde(
        skip_serializing_if = "IndexMap::is_empty",
        deserialize_with = "values::list_or_dict_opt",
        serialize_with = "values::sorted"
    )]
    pub environment: MappingWithEquals,
    /// Run once per replica.
    #[serde(skip_serializing_if = "is_false")]
    pub per_replica: bool,
    /// `x-*` keys.
    #[serde(
        rename = "#extensions",
        deserialize_with = "values::extensions",
        skip_serializing_if = "IndexMap::is_empty",
        serialize_with = "values::sorted"
    )]
    pub extensions: Extensions,
}

/// `blkio_config`.
#[derive(Clone, Debug, Default, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct BlkioConfig {
    /// Relative weight.
    #[serde(skip_serializing_if = "is_zero")]
    pub weight: u16,
    /// Per-device weights.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub weight_device: Vec<WeightDevice>,
    /// Read rate limits (bytes per second).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub device_read_bps: Vec<ThrottleDevice>,
    /// Read rate limits (operations per second).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub device_read_iops: Vec<ThrottleDevice>,
    /// Write rate limits (bytes per second).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub device_write_bps: Vec<ThrottleDevice>,
    /// Write rate limits (operations per second).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub device_write_iops: Vec<ThrottleDevice>,
    /// `x-*` keys.
    #[serde(
        rename = "#extensions",
        deserialize_with = "values::extensions",
        skip_serializing_if = "IndexMap::is_empty",
        serialize_with = "values::sorted"
    )]
    pub extensions: Extensions,
}

/// A per-device block IO weight.
#[derive(Clone, Debug, Default, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct WeightDevice {
    /// Device path.
    pub path: String,
    /// Weight.
    pub weight: u16,
}

/// A per-device block IO rate.
#[derive(Clone, Debug, Default, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct ThrottleDevice {
    /// Device path.
    pub path: String,
    /// Rate.
    pub rate: UnitBytes,
}

/// A secret or config mounted into a service (or exposed to a build).
#[derive(Clone, Debug, Default, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct FileReference {
    /// Key in the top-level `secrets`/`configs`.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub source: String,
    /// Path or name in the container.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub target: Option<String>,
    /// Owner uid.
    #[serde(
        skip_serializing_if = "Option::is_none",
        deserialize_with = "values::opt_string_like"
    )]
    pub uid: Option<String>,
    /// Owner gid.
    #[serde(
        skip_serializing_if = "Option::is_none",
        deserialize_with = "values::opt_string_like"
    )]
    pub gid: Option<String>,
    /// File mode.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub mode: Option<FileMode>,
    /// `x-*` keys.
    #[serde(
        rename = "#extensions",
        deserialize_with = "values::extensions",
        skip_serializing_if = "IndexMap::is_empty",
        serialize_with = "values::sorted"
    )]
    pub extensions: Extensions,
}

struct FileReferenceVisitor;

impl<'de> Visitor<'de> for FileReferenceVisitor {
    type Value = FileReference;
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a string or mapping")
    }
    fn visit_str<E: de::Error>(self, v: &str) -> Result<FileReference, E> {
        Ok(FileReference {
            source: v.to_string(),
            ..FileReference::default()
        })
    }
    fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<FileReference, A::Error> {
        FileReference::deserialize(de::value::MapAccessDeserializer::new(map))
    }
}

impl FileReference {
    fn short_or_long<'de, D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        short_or_long(d, FileReferenceVisitor)
    }
}

/// Wrapper so `Vec<FileReference>` accepts the short syntax items.
pub(crate) fn file_references<'de, D: Deserializer<'de>>(
    d: D,
) -> Result<Vec<FileReference>, D::Error> {
    struct Item(FileReference);
    impl<'de> Deserialize<'de> for Item {
        fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
            FileReference::short_or_long(d).map(Item)
        }
    }
    let v: Option<Vec<Item>> = Option::deserialize(d)?;
    Ok(v.unwrap_or_default().into_iter().map(|i| i.0).collect())
}

/// `credential_spec`.
#[derive(Clone, Debug, Default, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct CredentialSpec {
    /// Config name.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub config: Option<String>,
    /// File.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub file: Option<String>,
    /// Registry value.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub registry: Option<String>,
    /// `x-*` keys.
    #[serde(
        rename = "#extensions",
        deserialize_with = "values::extensions",
        skip_serializing_if = "IndexMap::is_empty",
        serialize_with = "values::sorted"
    )]
    pub extensions: Extensions,
}

/// When a dependency counts as ready.
#[derive(Clone, Copy, Debug, Default, Deserialize, Serialize, PartialEq, Eq, Hash)]
pub enum DependencyCondition {
    /// The dependency's container started.
    #[default]
    #[serde(rename = "service_started")]
    ServiceStarted,
    /// The dependency is healthy.
    #[serde(rename = "service_healthy")]
    ServiceHealthy,
    /// The dependency ran to completion with exit code 0.
    #[serde(rename = "service_completed_successfully")]
    ServiceCompletedSuccessfully,
}

/// One `depends_on` entry.
#[derive(Clone, Debug, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct ServiceDependency {
    /// When the dependency is ready.
    pub condition: DependencyCondition,
    /// Restart this service when the dependency restarts.
    #[serde(default, skip_serializing_if = "is_false")]
    pub restart: bool,
    /// `x-*` keys.
    #[serde(
        rename = "#extensions",
        deserialize_with = "values::extensions",
        default,
        skip_serializing_if = "IndexMap::is_empty",
        serialize_with = "values::sorted"
    )]
    pub extensions: Extensions,
    /// Fail if the dependency is missing (otherwise it is only a warning).
    #[serde(default = "yes")]
    pub required: bool,
}

impl Default for ServiceDependency {
    fn default() -> Self {
        ServiceDependency {
            condition: DependencyCondition::ServiceStarted,
            restart: false,
            extensions: Extensions::new(),
            required: true,
        }
    }
}

fn yes() -> bool {
    true
}

fn depends_on<'de, D: Deserializer<'de>>(
    d: D,
) -> Result<IndexMap<String, ServiceDependency>, D::Error> {
    struct V;
    impl<'de> Visitor<'de> for V {
        type Value = IndexMap<String, ServiceDependency>;
        fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
            f.write_str("a list or mapping")
        }
        fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
            Ok(IndexMap::new())
        }
        fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
            let mut out = IndexMap::new();
            while let Some(name) = seq.next_element::<String>()? {
                out.insert(name, ServiceDependency::default());
            }
            Ok(out)
        }
        fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Self::Value, A::Error> {
            IndexMap::deserialize(de::value::MapAccessDeserializer::new(map))
        }
    }
    d.deserialize_any(V)
}

/// `deploy`.
#[derive(Clone, Debug, Default, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct Deploy {
    /// `replicated`, `global`, `replicated-job` or `global-job`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub mode: Option<String>,
    /// Number of replicas.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub replicas: Option<i64>,
    /// Service labels.
    #[serde(
        skip_serializing_if = "IndexMap::is_empty",
        deserialize_with = "values::list_or_dict",
        serialize_with = "values::sorted"
    )]
    pub labels: Mapping,
    /// Rolling update settings.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub update_config: Option<UpdateConfig>,
    /// Rollback settings.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rollback_config: Option<UpdateConfig>,
    /// Resource limits and reservations.
    #[serde(skip_serializing_if = "Resources::is_empty")]
    pub resources: Resources,
    /// Restart policy.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub restart_policy: Option<RestartPolicy>,
    /// Placement constraints and preferences.
    #[serde(skip_serializing_if = "Placement::is_empty")]
    pub placement: Placement,
    /// `vip` or `dnsrr`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub endpoint_mode: Option<String>,
    /// `x-*` keys.
    #[serde(
        rename = "#extensions",
        deserialize_with = "values::extensions",
        skip_serializing_if = "IndexMap::is_empty",
        serialize_with = "values::sorted"
    )]
    pub extensions: Extensions,
}

/// `deploy.update_config` / `rollback_config`.
#[derive(Clone, Debug, Default, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct UpdateConfig {
    /// Containers updated at once.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub parallelism: Option<u64>,
    /// Delay between groups.
    #[serde(skip_serializing_if = "Duration::is_zero")]
    pub delay: Duration,
    /// `continue`, `rollback` or `pause`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub failure_action: Option<String>,
    /// Time to monitor each update.
    #[serde(skip_serializing_if = "Duration::is_zero")]
    pub monitor: Duration,
    /// Tolerated failure rate.
    #[serde(skip_serializing_if = "is_zero")]
    pub max_failure_ratio: Cpus,
    /// `stop-first` or `start-first`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub order: Option<String>,
    /// `x-*` keys.
    #[serde(
        rename = "#extensions",
        deserialize_with = "values::extensions",
        skip_serializing_if = "IndexMap::is_empty",
        serialize_with = "values::sorted"
    )]
    pub extensions: Extensions,
}

/// `deploy.resources`.
#[derive(Clone, Debug, Default, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct Resources {
    /// Limits.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub limits: Option<Resource>,
    /// Reservations.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reservations: Option<Resource>,
    /// `x-*` keys.
    #[serde(
        rename = "#extensions",
        deserialize_with = "values::extensions",
        skip_serializing_if = "IndexMap::is_empty",
        serialize_with = "values::sorted"
    )]
    pub extensions: Extensions,
}

impl Resources {
    /// True when nothing is set.
    pub fn is_empty(&self) -> bool {
        self.limits.is_none() && self.reservations.is_none() && self.extensions.is_empty()
    }
}

/// A set of resource limits or reservations.
#[derive(Clone, Debug, Default, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct Resource {
    /// CPUs.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cpus: Option<Cpus>,
    /// Memory.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub memory: Option<UnitBytes>,
    /// PIDs.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pids: Option<i64>,
    /// Device requests.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub devices: Vec<DeviceRequest>,
    /// Generic resources.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub generic_resources: Vec<GenericResource>,
    /// `x-*` keys.
    #[serde(
        rename = "#extensions",
        deserialize_with = "values::extensions",
        skip_serializing_if = "IndexMap::is_empty",
        serialize_with = "values::sorted"
    )]
    pub extensions: Extensions,
}

/// A generic (swarm) resource.
#[derive(Clone, Debug, Default, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct GenericResource {
    /// A discrete resource.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub discrete_resource_spec: Option<DiscreteResource>,
    /// `x-*` keys.
    #[serde(
        rename = "#extensions",
        deserialize_with = "values::extensions",
        skip_serializing_if = "IndexMap::is_empty",
        serialize_with = "values::sorted"
    )]
    pub extensions: Extensions,
}

/// A discrete generic resource.
#[derive(Clone, Debug, Default, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct DiscreteResource {
    /// Kind (`gpu`, `ssd`).
    pub kind: String,
    /// Count.
    pub value: i64,
    /// `x-*` keys.
    #[serde(
        rename = "#extensions",
        deserialize_with = "values::extensions",
        skip_serializing_if = "IndexMap::is_empty",
        serialize_with = "values::sorted"
    )]
    pub extensions: Extensions,
}

/// A device request (`gpus`, `deploy.resources.reservations.devices`).
#[derive(Clone, Debug, Default, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct DeviceRequest {
    /// Capabilities.
    #[serde(
        skip_serializing_if = "Vec::is_empty",
        deserialize_with = "values::list"
    )]
    pub capabilities: Vec<String>,
    /// Driver.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub driver: Option<String>,
    /// Count; -1 means all.
    #[serde(
        skip_serializing_if = "Option::is_none",
        deserialize_with = "device_count"
    )]
    pub count: Option<i64>,
    /// Device ids.
    #[serde(
        rename = "device_ids",
        skip_serializing_if = "Vec::is_empty",
        deserialize_with = "values::list"
    )]
    pub device_ids: Vec<String>,
    /// Driver options.
    #[serde(
        skip_serializing_if = "IndexMap::is_empty",
        deserialize_with = "values::list_or_dict",
        serialize_with = "values::sorted"
    )]
    pub options: Mapping,
    /// `x-*` keys.
    #[serde(
        rename = "#extensions",
        deserialize_with = "values::extensions",
        skip_serializing_if = "IndexMap::is_empty",
        serialize_with = "values::sorted"
    )]
    pub extensions: Extensions,
}

fn device_count<'de, D: Deserializer<'de>>(d: D) -> Result<Option<i64>, D::Error> {
    let Some(t) = values::opt_string_like(d)? else {
        return Ok(None);
    };
    if t.eq_ignore_ascii_case("all") {
        return Ok(Some(-1));
    }
    t.parse::<i64>().map(Some).map_err(|_| {
        de::Error::custom(format!(
            "invalid value \"{t}\", the only value allowed is 'all' or a number"
        ))
    })
}

fn gpus<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<DeviceRequest>, D::Error> {
    struct V;
    impl<'de> Visitor<'de> for V {
        type Value = Vec<DeviceRequest>;
        fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
            f.write_str("'all' or a list")
        }
        fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
            if v.eq_ignore_ascii_case("all") {
                Ok(vec![DeviceRequest {
                    count: Some(-1),
                    ..DeviceRequest::default()
                }])
            } else {
                Err(E::custom("must be 'all' or a list"))
            }
        }
        fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<Self::Value, A::Error> {
            Vec::deserialize(de::value::SeqAccessDeserializer::new(seq))
        }
    }
    d.deserialize_any(V)
}

/// `deploy.restart_policy`.
#[derive(Clone, Debug, Default, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct RestartPolicy {
    /// `none`, `on-failure` or `any`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub condition: Option<String>,
    /// Delay between attempts.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub delay: Option<Duration>,
    /// Maximum attempts.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_attempts: Option<u64>,
    /// Window to decide whether a restart succeeded.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub window: Option<Duration>,
    /// `x-*` keys.
    #[serde(
        rename = "#extensions",
        deserialize_with = "values::extensions",
        skip_serializing_if = "IndexMap::is_empty",
        serialize_with = "values::sorted"
    )]
    pub extensions: Extensions,
}

/// `deploy.placement`.
#[derive(Clone, Debug, Default, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct Placement {
    /// Constraints.
    #[serde(
        skip_serializing_if = "Vec::is_empty",
        deserialize_with = "values::list"
    )]
    pub constraints: Vec<String>,
    /// Preferences.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub preferences: Vec<PlacementPreference>,
    /// Maximum replicas per node.
    #[serde(rename = "max_replicas_per_node", skip_serializing_if = "is_zero")]
    pub max_replicas_per_node: u64,
    /// `x-*` keys.
    #[serde(
        rename = "#extensions",
        deserialize_with = "values::extensions",
        skip_serializing_if = "IndexMap::is_empty",
        serialize_with = "values::sorted"
    )]
    pub extensions: Extensions,
}

impl Placement {
    /// True when nothing is set.
    pub fn is_empty(&self) -> bool {
        self == &Placement::default()
    }
}

/// A placement preference.
#[derive(Clone, Debug, Default, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct PlacementPreference {
    /// Label to spread over.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub spread: String,
    /// `x-*` keys.
    #[serde(
        rename = "#extensions",
        deserialize_with = "values::extensions",
        skip_serializing_if = "IndexMap::is_empty",
        serialize_with = "values::sorted"
    )]
    pub extensions: Extensions,
}

/// A host device mapped into the container.
#[derive(Clone, Debug, Default, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct DeviceMapping {
    /// Host path.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub source: String,
    /// Container path.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub target: String,
    /// cgroup permissions (`rwm`).
    #[serde(skip_serializing_if = "String::is_empty")]
    pub permissions: String,
    /// `x-*` keys.
    #[serde(
        rename = "#extensions",
        deserialize_with = "values::extensions",
        skip_serializing_if = "IndexMap::is_empty",
        serialize_with = "values::sorted"
    )]
    pub extensions: Extensions,
}

fn device_mappings<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<DeviceMapping>, D::Error> {
    struct Item(DeviceMapping);
    struct ItemV;
    impl<'de> Visitor<'de> for ItemV {
        type Value = Item;
        fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
            f.write_str("a string or mapping")
        }
        fn visit_str<E: de::Error>(self, v: &str) -> Result<Item, E> {
            let mut parts = v.splitn(3, ':');
            let source = parts.next().unwrap_or_default().to_string();
            let target = parts.next().map_or_else(|| source.clone(), str::to_string);
            let permissions = parts.next().unwrap_or("rwm").to_string();
            Ok(Item(DeviceMapping {
                source,
                target,
                permissions,
                extensions: Extensions::new(),
            }))
        }
        fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Item, A::Error> {
            DeviceMapping::deserialize(de::value::MapAccessDeserializer::new(map)).map(Item)
        }
    }
    impl<'de> Deserialize<'de> for Item {
        fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
            short_or_long(d, ItemV)
        }
    }
    let v: Option<Vec<Item>> = Option::deserialize(d)?;
    Ok(v.unwrap_or_default().into_iter().map(|i| i.0).collect())
}

/// `env_file` entry.
#[derive(Clone, Debug, Default, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct EnvFile {
    /// File path.
    pub path: String,
    /// A missing file is an error unless `false`.
    #[serde(skip_serializing_if = "OptOut::is_default")]
    pub required: OptOut,
    /// `raw` to read values without interpolation or quote handling.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub format: Option<String>,
}

fn env_files<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<EnvFile>, D::Error> {
    struct Item(EnvFile);
    struct ItemV;
    impl<'de> Visitor<'de> for ItemV {
        type Value = Item;
        fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
            f.write_str("a string or mapping")
        }
        fn visit_str<E: de::Error>(self, v: &str) -> Result<Item, E> {
            Ok(Item(EnvFile {
                path: v.to_string(),
                ..EnvFile::default()
            }))
        }
        fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Item, A::Error> {
            EnvFile::deserialize(de::value::MapAccessDeserializer::new(map)).map(Item)
        }
    }
    impl<'de> Deserialize<'de> for Item {
        fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
            short_or_long(d, ItemV)
        }
    }
    struct V;
    impl<'de> Visitor<'de> for V {
        type Value = Vec<EnvFile>;
        fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
            f.write_str("a string or list")
        }
        fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
            Ok(Vec::new())
        }
        fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
            Ok(vec![EnvFile {
                path: v.to_string(),
                ..EnvFile::default()
            }])
        }
        fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
            let mut out = Vec::new();
            while let Some(Item(e)) = seq.next_element()? {
                out.push(e);
            }
            Ok(out)
        }
    }
    d.deserialize_any(V)
}

fn environment<'de, D: Deserializer<'de>>(d: D) -> Result<MappingWithEquals, D::Error> {
    values::list_or_dict_opt(d)
}

/// `extends`.
#[derive(Clone, Debug, Default, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct Extends {
    /// File holding the base service.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub file: Option<String>,
    /// Base service name.
    pub service: String,
}

fn extends<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Extends>, D::Error> {
    struct V;
    impl<'de> Visitor<'de> for V {
        type Value = Option<Extends>;
        fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
            f.write_str("a string or mapping")
        }
        fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
            Ok(Some(Extends {
                file: None,
                service: v.to_string(),
            }))
        }
        fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Self::Value, A::Error> {
            Extends::deserialize(de::value::MapAccessDeserializer::new(map)).map(Some)
        }
    }
    short_or_long(d, V)
}

fn extra_hosts<'de, D: Deserializer<'de>>(d: D) -> Result<IndexMap<String, Vec<String>>, D::Error> {
    struct V;
    impl<'de> Visitor<'de> for V {
        type Value = IndexMap<String, Vec<String>>;
        fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
            f.write_str("a list or mapping")
        }
        fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
            Ok(IndexMap::new())
        }
        fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
            let mut out: IndexMap<String, Vec<String>> = IndexMap::new();
            while let Some(values::ScalarText(v)) = seq.next_element()? {
                let v = v.unwrap_or_default();
                // `=` first: IPv6 addresses contain `:`.
                let (host, ip) =
                    v.split_once('=')
                        .or_else(|| v.split_once(':'))
                        .ok_or_else(|| {
                            de::Error::custom(format!("invalid additional host, missing IP: {v}"))
                        })?;
                out.entry(host.to_string())
                    .or_default()
                    .extend(ip.split(',').map(clean_ip));
            }
            Ok(out)
        }
        fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
            let mut out: IndexMap<String, Vec<String>> = IndexMap::new();
            while let Some(host) = map.next_key::<String>()? {
                let StrList(ips) = map.next_value()?;
                out.entry(host)
                    .or_default()
                    .extend(ips.iter().map(|s| clean_ip(s)));
            }
            Ok(out)
        }
    }
    d.deserialize_any(V)
}

/// A string, number or list of them, as strings.
struct StrList(Vec<String>);

impl<'de> Deserialize<'de> for StrList {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        values::string_or_number_list(d).map(StrList)
    }
}

fn clean_ip(s: &str) -> String {
    // compose-go strips the brackets of `[::1]`.
    let s = s.trim();
    s.strip_prefix('[')
        .and_then(|r| r.strip_suffix(']'))
        .unwrap_or(s)
        .to_string()
}

fn hosts_list<S: Serializer>(h: &IndexMap<String, Vec<String>>, s: S) -> Result<S::Ok, S::Error> {
    let mut list: Vec<String> = h
        .iter()
        .flat_map(|(k, ips)| ips.iter().map(move |ip| format!("{k}={ip}")))
        .collect();
    list.sort_unstable();
    list.serialize(s)
}

/// `healthcheck`.
#[derive(Clone, Debug, Default, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct Healthcheck {
    /// Test command; a string becomes `["CMD-SHELL", s]`.
    #[serde(
        skip_serializing_if = "Vec::is_empty",
        deserialize_with = "health_test"
    )]
    pub test: Vec<String>,
    /// Timeout per check.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub timeout: Option<Duration>,
    /// Interval between checks.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub interval: Option<Duration>,
    /// Failures before unhealthy.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub retries: Option<u64>,
    /// Grace period after start.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub start_period: Option<Duration>,
    /// Interval during the start period.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub start_interval: Option<Duration>,
    /// Disable the image's health check.
    #[serde(skip_serializing_if = "is_false")]
    pub disable: bool,
    /// `x-*` keys.
    #[serde(
        rename = "#extensions",
        deserialize_with = "values::extensions",
        skip_serializing_if = "IndexMap::is_empty",
        serialize_with = "values::sorted"
    )]
    pub extensions: Extensions,
}

fn health_test<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<String>, D::Error> {
    struct V;
    impl<'de> Visitor<'de> for V {
        type Value = Vec<String>;
        fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
            f.write_str("a string or list")
        }
        fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
            Ok(Vec::new())
        }
        fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
            Ok(vec!["CMD-SHELL".to_string(), v.to_string()])
        }
        fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<Self::Value, A::Error> {
            Vec::deserialize(de::value::SeqAccessDeserializer::new(seq))
        }
    }
    d.deserialize_any(V)
}

/// `logging`.
#[derive(Clone, Debug, Default, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct Logging {
    /// Driver.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub driver: Option<String>,
    /// Driver options.
    #[serde(
        skip_serializing_if = "IndexMap::is_empty",
        deserialize_with = "values::dict",
        serialize_with = "values::sorted"
    )]
    pub options: Mapping,
    /// `x-*` keys.
    #[serde(
        rename = "#extensions",
        deserialize_with = "values::extensions",
        skip_serializing_if = "IndexMap::is_empty",
        serialize_with = "values::sorted"
    )]
    pub extensions: Extensions,
}

/// A service's use of a model.
#[derive(Clone, Debug, Default, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct ServiceModel {
    /// Variable receiving the endpoint.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub endpoint_var: Option<String>,
    /// Variable receiving the model name.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub model_var: Option<String>,
    /// `x-*` keys.
    #[serde(
        rename = "#extensions",
        deserialize_with = "values::extensions",
        skip_serializing_if = "IndexMap::is_empty",
        serialize_with = "values::sorted"
    )]
    pub extensions: Extensions,
}

fn service_models<'de, D: Deserializer<'de>>(
    d: D,
) -> Result<IndexMap<String, Option<ServiceModel>>, D::Error> {
    list_or_map_of(d)
}

/// A service's attachment to a network.
#[derive(Clone, Debug, Default, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct ServiceNetwork {
    /// Aliases on the network.
    #[serde(
        skip_serializing_if = "Vec::is_empty",
        deserialize_with = "values::list"
    )]
    pub aliases: Vec<String>,
    /// Endpoint driver options.
    #[serde(
        skip_serializing_if = "IndexMap::is_empty",
        deserialize_with = "values::dict",
        serialize_with = "values::sorted"
    )]
    pub driver_opts: Mapping,
    /// Gateway priority.
    #[serde(skip_serializing_if = "is_zero")]
    pub gw_priority: i64,
    /// Interface name in the container.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub interface_name: Option<String>,
    /// Static IPv4 address.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ipv4_address: Option<String>,
    /// Static IPv6 address.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ipv6_address: Option<String>,
    /// Link-local addresses.
    #[serde(
        skip_serializing_if = "Vec::is_empty",
        deserialize_with = "values::list"
    )]
    pub link_local_ips: Vec<String>,
    /// MAC address on this network.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub mac_address: Option<String>,
    /// Connection priority.
    #[serde(skip_serializing_if = "is_zero")]
    pub priority: i64,
    /// `x-*` keys.
    #[serde(
        rename = "#extensions",
        deserialize_with = "values::extensions",
        skip_serializing_if = "IndexMap::is_empty",
        serialize_with = "values::sorted"
    )]
    pub extensions: Extensions,
}

fn service_networks<'de, D: Deserializer<'de>>(
    d: D,
) -> Result<IndexMap<String, Option<ServiceNetwork>>, D::Error> {
    list_or_map_of(d)
}

fn list_or_map_of<'de, D, T>(d: D) -> Result<IndexMap<String, Option<T>>, D::Error>
where
    D: Deserializer<'de>,
    T: Deserialize<'de>,
{
    struct V<T>(std::marker::PhantomData<T>);
    impl<'de, T: Deserialize<'de>> Visitor<'de> for V<T> {
        type Value = IndexMap<String, Option<T>>;
        fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
            f.write_str("a list or mapping")
        }
        fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
            Ok(IndexMap::new())
        }
        fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
            let mut out = IndexMap::new();
            while let Some(name) = seq.next_element::<String>()? {
                out.insert(name, None);
            }
            Ok(out)
        }
        fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Self::Value, A::Error> {
            IndexMap::deserialize(de::value::MapAccessDeserializer::new(map))
        }
    }
    d.deserialize_any(V(std::marker::PhantomData))
}

/// `provider`.
#[derive(Clone, Debug, Default, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Provider {
    /// Provider type (a CLI plugin name).
    #[serde(rename = "type")]
    pub kind: String,
    /// Options; a value may repeat.
    #[serde(
        default,
        skip_serializing_if = "IndexMap::is_empty",
        deserialize_with = "multi_options",
        serialize_with = "values::sorted"
    )]
    pub options: IndexMap<String, Vec<String>>,
    /// `x-*` keys.
    #[serde(
        rename = "#extensions",
        deserialize_with = "values::extensions",
        default,
        skip_serializing_if = "IndexMap::is_empty",
        serialize_with = "values::sorted"
    )]
    pub extensions: Extensions,
}

fn multi_options<'de, D: Deserializer<'de>>(
    d: D,
) -> Result<IndexMap<String, Vec<String>>, D::Error> {
    struct Item(Vec<String>);
    impl<'de> Deserialize<'de> for Item {
        fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
            values::string_or_number_list(d).map(Item)
        }
    }
    let m: IndexMap<String, Item> = IndexMap::deserialize(d)?;
    Ok(m.into_iter().map(|(k, v)| (k, v.0)).collect())
}

/// A ulimit: one value, or soft and hard limits.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Ulimit {
    /// Single value for both limits.
    pub single: Option<i64>,
    /// Soft limit.
    pub soft: i64,
    /// Hard limit.
    pub hard: i64,
}

impl Serialize for Ulimit {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeStruct;
        if let Some(v) = self.single {
            return s.serialize_i64(v);
        }
        let mut st = s.serialize_struct("Ulimit", 2)?;
        st.serialize_field("soft", &self.soft)?;
        st.serialize_field("hard", &self.hard)?;
        st.end()
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct UlimitLong {
    soft: i64,
    hard: i64,
    #[serde(
        rename = "#extensions",
        deserialize_with = "values::extensions",
        default
    )]
    _extensions: Extensions,
}

impl<'de> Deserialize<'de> for Ulimit {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Ulimit;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a integer or mapping")
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<Ulimit, E> {
                Ok(Ulimit {
                    single: Some(v),
                    ..Ulimit::default()
                })
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<Ulimit, E> {
                self.visit_i64(v as i64)
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Ulimit, E> {
                v.trim()
                    .parse::<i64>()
                    .map(|n| Ulimit {
                        single: Some(n),
                        ..Ulimit::default()
                    })
                    .map_err(|_| E::custom("must be a integer or mapping"))
            }
            fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Ulimit, A::Error> {
                let l = UlimitLong::deserialize(de::value::MapAccessDeserializer::new(map))?;
                Ok(Ulimit {
                    single: None,
                    soft: l.soft,
                    hard: l.hard,
                })
            }
        }
        short_or_long(d, V)
    }
}
