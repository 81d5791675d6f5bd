//! Top-level resources: networks, volumes, secrets, configs and models.

use std::fmt;

use indexmap::IndexMap;
use serde::de::{self, MapAccess, Visitor};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use super::service::short_or_long;
use super::values::{self, Extensions, Mapping, is_false};

/// `external`: a boolean, or the deprecated `{name: ...}` form.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct External {
    /// The resource exists outside the project.
    pub external: bool,
    /// The deprecated `external.name`.
    pub name: Option<String>,
}

impl External {
    /// True when not external (omitted from output).
    pub fn is_false(&self) -> bool {
        !self.external
    }
}

impl Serialize for External {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_bool(self.external)
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ExternalLong {
    #[serde(default)]
    name: Option<String>,
    #[serde(
        rename = "#extensions",
        deserialize_with = "values::extensions",
        default
    )]
    _extensions: Extensions,
}

impl<'de> Deserialize<'de> for External {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = External;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a boolean or mapping")
            }
            fn visit_bool<E: de::Error>(self, v: bool) -> Result<External, E> {
                Ok(External {
                    external: v,
                    name: None,
                })
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<External, E> {
                match v {
                    "true" | "True" | "TRUE" | "1" => self.visit_bool(true),
                    "false" | "False" | "FALSE" | "0" => self.visit_bool(false),
                    _ => Err(E::custom("must be a boolean or mapping")),
                }
            }
            fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<External, A::Error> {
                let l = ExternalLong::deserialize(de::value::MapAccessDeserializer::new(map))?;
                Ok(External {
                    external: true,
                    name: l.name,
                })
            }
        }
        short_or_long(d, V)
    }
}

/// A top-level network.
#[derive(Clone, Debug, Default, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct Network {
    /// Engine-side name.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// Driver.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub driver: Option<String>,
    /// Driver options.
    #[serde(
        skip_serializing_if = "IndexMap::is_empty",
        deserialize_with = "values::dict",
        serialize_with = "values::sorted"
    )]
    pub driver_opts: Mapping,
    /// IP address management.
    #[serde(skip_serializing_if = "Ipam::skip")]
    pub ipam: Ipam,
    /// Managed outside the project.
    #[serde(skip_serializing_if = "External::is_false")]
    pub external: External,
    /// No external connectivity.
    #[serde(skip_serializing_if = "is_false")]
    pub internal: bool,
    /// Standalone containers may attach (swarm).
    #[serde(skip_serializing_if = "is_false")]
    pub attachable: bool,
    /// Labels.
    #[serde(
        skip_serializing_if = "IndexMap::is_empty",
        deserialize_with = "values::list_or_dict",
        serialize_with = "values::sorted"
    )]
    pub labels: Mapping,
    /// Enable IPv4.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub enable_ipv4: Option<bool>,
    /// Enable IPv6.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub enable_ipv6: Option<bool>,
    /// `x-*` keys.
    #[serde(
        rename = "#extensions",
        deserialize_with = "values::extensions",
        skip_serializing_if = "IndexMap::is_empty",
        serialize_with = "values::sorted"
    )]
    pub extensions: Extensions,
}

/// IPAM settings of a network.
#[derive(Clone, Debug, Default, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct Ipam {
    /// IPAM driver.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub driver: Option<String>,
    /// Address pools.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub config: Vec<IpamPool>,
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

impl Ipam {
    /// True when nothing is set.
    pub fn is_empty(&self) -> bool {
        self == &Ipam::default()
    }

    /// Go's JSON marshalling always writes `ipam` (a struct); YAML omits it when empty.
    fn skip(&self) -> bool {
        self.is_empty() && !crate::output::json_mode()
    }
}

/// One IPAM address pool.
#[derive(Clone, Debug, Default, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct IpamPool {
    /// Subnet in CIDR form.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub subnet: Option<String>,
    /// Gateway.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub gateway: Option<String>,
    /// Allocation range.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ip_range: Option<String>,
    /// Reserved addresses.
    #[serde(
        skip_serializing_if = "IndexMap::is_empty",
        deserialize_with = "values::dict",
        serialize_with = "values::sorted"
    )]
    pub aux_addresses: Mapping,
    /// `x-*` keys.
    #[serde(
        rename = "#extensions",
        deserialize_with = "values::extensions",
        skip_serializing_if = "IndexMap::is_empty",
        serialize_with = "values::sorted"
    )]
    pub extensions: Extensions,
}

/// A top-level volume.
#[derive(Clone, Debug, Default, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct Volume {
    /// Engine-side name.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// Driver.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub driver: Option<String>,
    /// Driver options.
    #[serde(
        skip_serializing_if = "IndexMap::is_empty",
        deserialize_with = "values::dict",
        serialize_with = "values::sorted"
    )]
    pub driver_opts: Mapping,
    /// Managed outside the project.
    #[serde(skip_serializing_if = "External::is_false")]
    pub external: External,
    /// Labels.
    #[serde(
        skip_serializing_if = "IndexMap::is_empty",
        deserialize_with = "values::list_or_dict",
        serialize_with = "values::sorted"
    )]
    pub labels: Mapping,
    /// `x-*` keys.
    #[serde(
        rename = "#extensions",
        deserialize_with = "values::extensions",
        skip_serializing_if = "IndexMap::is_empty",
        serialize_with = "values::sorted"
    )]
    pub extensions: Extensions,
}

/// A top-level secret or config.
#[derive(Clone, Debug, Default, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct FileObject {
    /// Engine-side name.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// File holding the content.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub file: Option<String>,
    /// Environment variable holding the content.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub environment: Option<String>,
    /// Inline content (configs).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub content: Option<String>,
    /// Managed outside the project.
    #[serde(skip_serializing_if = "External::is_false")]
    pub external: External,
    /// Labels.
    #[serde(
        skip_serializing_if = "IndexMap::is_empty",
        deserialize_with = "values::list_or_dict",
        serialize_with = "values::sorted"
    )]
    pub labels: Mapping,
    /// Driver (secrets).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub driver: Option<String>,
    /// Driver options (secrets).
    #[serde(
        skip_serializing_if = "IndexMap::is_empty",
        deserialize_with = "values::dict",
        serialize_with = "values::sorted"
    )]
    pub driver_opts: Mapping,
    /// Template driver.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub template_driver: Option<String>,
    /// `x-*` keys.
    #[serde(
        rename = "#extensions",
        deserialize_with = "values::extensions",
        skip_serializing_if = "IndexMap::is_empty",
        serialize_with = "values::sorted"
    )]
    pub extensions: Extensions,
}

/// A top-level AI model.
#[derive(Clone, Debug, Default, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct Model {
    /// Display name.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// Model reference.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub model: Option<String>,
    /// Context window size.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub context_size: Option<i64>,
    /// Runtime flags.
    #[serde(
        skip_serializing_if = "Vec::is_empty",
        deserialize_with = "values::list"
    )]
    pub runtime_flags: Vec<String>,
    /// `x-*` keys.
    #[serde(
        rename = "#extensions",
        deserialize_with = "values::extensions",
        skip_serializing_if = "IndexMap::is_empty",
        serialize_with = "values::sorted"
    )]
    pub extensions: Extensions,
}
