//! The typed Compose model: every top-level and service key of the current Compose
//! specification, decoded from a merged [`yaml::Node`](crate::yaml::Node) and serialized in the
//! field order and naming `docker compose config` (compose-go) prints.

mod ports;
mod resources;
mod service;
mod values;
mod volumes;

use std::path::PathBuf;

use indexmap::IndexMap;
use serde::{Deserialize, Serialize};

pub use ports::{ServicePort, parse_port};
pub use resources::{External, FileObject, Ipam, IpamPool, Model, Network, Volume};
pub use service::*;
pub use values::{
    Cpus, Duration, Extensions, FileMode, Mapping, MappingWithEquals, OptOut, UnitBytes,
    split_shell,
};
pub use volumes::{
    ServiceVolume, VolumeBind, VolumeImage, VolumeTmpfs, VolumeVolume, parse_volume,
};

use crate::de::{DecodeError, NodeDeserializer, Path, from_node};
use crate::yaml::Node;

/// A Compose project: the canonical model `docker compose config` prints.
#[derive(Clone, Debug, Default, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Project {
    /// The project name.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub name: String,
    /// Services by name.
    #[serde(
        default,
        deserialize_with = "services",
        serialize_with = "values::sorted"
    )]
    pub services: IndexMap<String, Service>,
    /// Networks by key.
    #[serde(
        default,
        deserialize_with = "nullable_map",
        serialize_with = "values::sorted",
        skip_serializing_if = "IndexMap::is_empty"
    )]
    pub networks: IndexMap<String, Network>,
    /// Volumes by key.
    #[serde(
        default,
        deserialize_with = "nullable_map",
        serialize_with = "values::sorted",
        skip_serializing_if = "IndexMap::is_empty"
    )]
    pub volumes: IndexMap<String, Volume>,
    /// Secrets by key.
    #[serde(
        default,
        deserialize_with = "nullable_map",
        serialize_with = "values::sorted",
        skip_serializing_if = "IndexMap::is_empty"
    )]
    pub secrets: IndexMap<String, FileObject>,
    /// Configs by key.
    #[serde(
        default,
        deserialize_with = "nullable_map",
        serialize_with = "values::sorted",
        skip_serializing_if = "IndexMap::is_empty"
    )]
    pub configs: IndexMap<String, FileObject>,
    /// AI models by key.
    #[serde(
        default,
        deserialize_with = "nullable_map",
        serialize_with = "values::sorted",
        skip_serializing_if = "IndexMap::is_empty"
    )]
    pub models: IndexMap<String, Model>,
    /// Obsolete `version`, accepted and ignored as compose does.
    #[serde(
        default,
        skip_serializing,
        deserialize_with = "values::opt_string_like"
    )]
    pub version: Option<String>,
    /// `include` is applied by the loader; a leftover entry is accepted and not printed.
    #[serde(default, skip_serializing)]
    pub include: Option<Ignored>,
    /// `x-*` keys.
    #[serde(
        rename = "#extensions",
        deserialize_with = "values::extensions",
        default,
        serialize_with = "values::sorted",
        skip_serializing_if = "IndexMap::is_empty"
    )]
    pub extensions: Extensions,
    /// The project directory relative paths were resolved against.
    #[serde(skip)]
    pub working_dir: PathBuf,
    /// The Compose files the project was loaded from.
    #[serde(skip)]
    pub compose_files: Vec<PathBuf>,
    /// The environment used for interpolation and `environment` resolution.
    #[serde(skip)]
    pub environment: IndexMap<String, String>,
    /// Services disabled by profiles, kept for `--profiles` and dependency errors.
    #[serde(skip)]
    pub disabled_services: IndexMap<String, Service>,
}

/// A value that is accepted and dropped.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Ignored;

impl<'de> Deserialize<'de> for Ignored {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        serde::de::IgnoredAny::deserialize(d).map(|_| Ignored)
    }
}

impl Project {
    /// Decode a project from the merged, interpolated YAML of all its files.
    pub fn from_node(node: &Node) -> Result<Project, DecodeError> {
        if node.as_map().is_none() {
            return Err(
                DecodeError::at(&node.loc, "", "top-level object must be a mapping").bare_message(),
            );
        }
        let mut p: Project = match predecode_services(node) {
            Some(services) => {
                PREDECODED.with(|slot| *slot.borrow_mut() = Some(services));
                let p = from_node(node);
                PREDECODED.with(|slot| slot.borrow_mut().take());
                p?
            }
            None => from_node(node)?,
        };
        for (name, s) in p.services.iter_mut() {
            s.name.clone_from(name);
        }
        Ok(p)
    }

    /// Service names in alphabetical order.
    pub fn service_names(&self) -> Vec<&str> {
        let mut v: Vec<&str> = self.services.keys().map(String::as_str).collect();
        v.sort_unstable();
        v
    }
}

impl DecodeError {
    fn bare_message(mut self) -> Self {
        self.attach_path = false;
        self
    }
}

thread_local! {
    /// Services decoded in parallel by [`predecode_services`], taken by [`services`] in place
    /// of decoding the node again.
    static PREDECODED: std::cell::RefCell<Option<IndexMap<String, Service>>> =
        const { std::cell::RefCell::new(None) };
}

/// Decode a large `services` mapping on several threads. `None` when it is small, not a
/// mapping, or any service fails: the sequential decode then reports the same first error it
/// always did.
fn predecode_services(node: &Node) -> Option<IndexMap<String, Service>> {
    let services = node.get("services")?.as_map()?;
    if services.len() < crate::par::MIN_PARALLEL {
        return None;
    }
    let top = Path::Key(&Path::Root, "services");
    let mut items: Vec<_> = services.iter().collect();
    let chunks = crate::par::try_chunks(&mut items, Vec::new, |(name, svc), out| {
        let path = Path::Key(&top, &name.name);
        let s = Service::deserialize(NodeDeserializer::new(svc, path))?;
        out.push((name.name.clone(), s));
        Ok::<(), DecodeError>(())
    })
    .ok()?;
    let mut out = IndexMap::with_capacity(services.len());
    for (name, s) in chunks.into_iter().flatten() {
        out.insert(name, s);
    }
    Some(out)
}

/// `services`, allocated once at its final size: a service is several kilobytes, and growing
/// the map by doubling would copy thousands of them.
fn services<'de, D>(d: D) -> Result<IndexMap<String, Service>, D::Error>
where
    D: serde::Deserializer<'de>,
{
    struct V;
    impl<'de> serde::de::Visitor<'de> for V {
        type Value = IndexMap<String, Service>;
        fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
            f.write_str("a mapping")
        }
        fn visit_map<A: serde::de::MapAccess<'de>>(
            self,
            mut map: A,
        ) -> Result<Self::Value, A::Error> {
            if let Some(done) = PREDECODED.with(|slot| slot.borrow_mut().take()) {
                while map
                    .next_entry::<serde::de::IgnoredAny, serde::de::IgnoredAny>()?
                    .is_some()
                {}
                return Ok(done);
            }
            let mut out = IndexMap::with_capacity(map.size_hint().unwrap_or(0));
            while let Some(name) = map.next_key::<String>()? {
                let service: Service = map.next_value()?;
                out.insert(name, service);
            }
            Ok(out)
        }
    }
    d.deserialize_map(V)
}

/// A mapping whose values may be `null`, meaning "all defaults".
fn nullable_map<'de, D, T>(d: D) -> Result<IndexMap<String, T>, D::Error>
where
    D: serde::Deserializer<'de>,
    T: Deserialize<'de> + Default,
{
    let m: IndexMap<String, Option<T>> = IndexMap::deserialize(d)?;
    Ok(m.into_iter()
        .map(|(k, v)| (k, v.unwrap_or_default()))
        .collect())
}
