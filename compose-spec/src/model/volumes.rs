//! Service mounts: the long syntax, and the short syntax (`[SOURCE:]TARGET[:OPTIONS]`) turned
//! into it the way compose-go's `ParseVolume` does.

use std::fmt;

use indexmap::IndexMap;
use serde::de::{self, MapAccess, SeqAccess, Visitor};
use serde::{Deserialize, Deserializer, Serialize};

use super::service::short_or_long;
use super::values::{self, Extensions, Mapping, OptOut, UnitBytes, is_false};

/// A mount in long syntax.
#[derive(Clone, Debug, Default, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct ServiceVolume {
    /// `bind`, `volume`, `tmpfs`, `image`, `npipe` or `cluster`.
    #[serde(rename = "type")]
    pub kind: String,
    /// Host path, volume name or image reference.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub source: Option<String>,
    /// Path in the container.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub target: String,
    /// Mount read-only.
    #[serde(skip_serializing_if = "is_false")]
    pub read_only: bool,
    /// Consistency (`cached`, `delegated`): accepted, meaningful only on Docker Desktop.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub consistency: Option<String>,
    /// Bind options.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub bind: Option<VolumeBind>,
    /// Volume options.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub volume: Option<VolumeVolume>,
    /// tmpfs options.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tmpfs: Option<VolumeTmpfs>,
    /// Image mount options.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub image: Option<VolumeImage>,
    /// `x-*` keys.
    #[serde(
        rename = "#extensions",
        deserialize_with = "values::extensions",
        skip_serializing_if = "IndexMap::is_empty",
        serialize_with = "values::sorted"
    )]
    pub extensions: Extensions,
}

/// Bind mount options.
#[derive(Clone, Debug, Default, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct VolumeBind {
    /// SELinux relabeling (`z` or `Z`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub selinux: Option<String>,
    /// Propagation mode.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub propagation: Option<String>,
    /// Create a missing host path (default true).
    #[serde(skip_serializing_if = "OptOut::is_default")]
    pub create_host_path: OptOut,
    /// Recursive read-only mode.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub recursive: Option<String>,
    /// `x-*` keys.
    #[serde(
        rename = "#extensions",
        deserialize_with = "values::extensions",
        skip_serializing_if = "IndexMap::is_empty",
        serialize_with = "values::sorted"
    )]
    pub extensions: Extensions,
}

/// Volume mount options.
#[derive(Clone, Debug, Default, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct VolumeVolume {
    /// Labels of an anonymous volume.
    #[serde(
        skip_serializing_if = "IndexMap::is_empty",
        deserialize_with = "values::list_or_dict",
        serialize_with = "values::sorted"
    )]
    pub labels: Mapping,
    /// Do not copy image data into a new volume.
    #[serde(skip_serializing_if = "is_false")]
    pub nocopy: bool,
    /// Sub-path of the volume to mount.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub subpath: Option<String>,
    /// `x-*` keys.
    #[serde(
        rename = "#extensions",
        deserialize_with = "values::extensions",
        skip_serializing_if = "IndexMap::is_empty",
        serialize_with = "values::sorted"
    )]
    pub extensions: Extensions,
}

/// tmpfs mount options.
#[derive(Clone, Debug, Default, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct VolumeTmpfs {
    /// Size.
    #[serde(
        skip_serializing_if = "Option::is_none",
        deserialize_with = "tmpfs_size"
    )]
    pub size: Option<UnitBytes>,
    /// File mode.
    #[serde(
        skip_serializing_if = "Option::is_none",
        deserialize_with = "tmpfs_mode"
    )]
    pub mode: Option<u32>,
    /// `x-*` keys.
    #[serde(
        rename = "#extensions",
        deserialize_with = "values::extensions",
        skip_serializing_if = "IndexMap::is_empty",
        serialize_with = "values::sorted"
    )]
    pub extensions: Extensions,
}

/// Image mount options.
#[derive(Clone, Debug, Default, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct VolumeImage {
    /// Sub-path of the image to mount.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub subpath: Option<String>,
    /// `x-*` keys.
    #[serde(
        rename = "#extensions",
        deserialize_with = "values::extensions",
        skip_serializing_if = "IndexMap::is_empty",
        serialize_with = "values::sorted"
    )]
    pub extensions: Extensions,
}

fn tmpfs_size<'de, D: Deserializer<'de>>(d: D) -> Result<Option<UnitBytes>, D::Error> {
    struct V;
    impl Visitor<'_> for V {
        type Value = Option<UnitBytes>;
        fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
            f.write_str("a integer")
        }
        fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
            Ok(None)
        }
        fn visit_i64<E: de::Error>(self, v: i64) -> Result<Self::Value, E> {
            if v < 0 {
                return Err(E::custom("must be greater than or equal to 0"));
            }
            Ok(Some(UnitBytes(v)))
        }
        fn visit_u64<E: de::Error>(self, v: u64) -> Result<Self::Value, E> {
            self.visit_i64(v as i64)
        }
        fn visit_f64<E: de::Error>(self, _: f64) -> Result<Self::Value, E> {
            Err(E::custom("must be a integer"))
        }
        fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
            UnitBytes::parse(v).map(Some).map_err(E::custom)
        }
    }
    d.deserialize_any(V)
}

fn tmpfs_mode<'de, D: Deserializer<'de>>(d: D) -> Result<Option<u32>, D::Error> {
    let Some(t) = values::opt_string_like(d)? else {
        return Ok(None);
    };
    let parsed = if t.len() > 1 && t.starts_with('0') {
        u32::from_str_radix(&t[1..], 8)
    } else {
        t.parse::<u32>()
    };
    parsed
        .map(Some)
        .map_err(|_| de::Error::custom(format!("invalid tmpfs mode {t:?}")))
}

/// Parse a short-syntax mount.
pub fn parse_volume(spec: &str) -> Result<ServiceVolume, String> {
    let mut v = ServiceVolume::default();
    if spec.is_empty() {
        return Err("invalid empty volume spec".to_string());
    }
    if spec.len() <= 2 {
        v.target = spec.to_string();
        v.kind = "volume".to_string();
        return Ok(v);
    }
    let mut buffer = String::new();
    let mut fields: Vec<String> = Vec::with_capacity(3);
    for c in spec.chars() {
        let drive = c == ':'
            && buffer.len() == 1
            && buffer.chars().all(|b| b.is_ascii_alphabetic())
            && fields.len() < 2;
        if c == ':' && !drive {
            if buffer.is_empty() {
                return Err(format!(
                    "invalid spec: {spec}: empty section between colons"
                ));
            }
            fields.push(std::mem::take(&mut buffer));
        } else {
            buffer.push(c);
        }
    }
    if buffer.is_empty() {
        return Err(format!(
            "invalid spec: {spec}: empty section between colons"
        ));
    }
    fields.push(buffer);
    let options = match fields.len() {
        1 => {
            v.target = fields.remove(0);
            None
        }
        2 => {
            v.target = fields.remove(1);
            v.source = Some(fields.remove(0));
            None
        }
        3 => {
            let opts = fields.remove(2);
            v.target = fields.remove(1);
            v.source = Some(fields.remove(0));
            Some(opts)
        }
        _ => return Err(format!("invalid spec: {spec}: too many colons")),
    };
    for option in options.iter().flat_map(|o| o.split(',')) {
        match option {
            "ro" => v.read_only = true,
            "rw" => v.read_only = false,
            "nocopy" => {
                v.volume.get_or_insert_with(VolumeVolume::default).nocopy = true;
            }
            "z" | "Z" => {
                v.bind.get_or_insert_with(VolumeBind::default).selinux = Some(option.to_string());
            }
            "rprivate" | "private" | "rshared" | "shared" | "rslave" | "slave" => {
                v.bind.get_or_insert_with(VolumeBind::default).propagation =
                    Some(option.to_string());
            }
            // Unknown options are ignored, as compose-go does.
            _ => {}
        }
    }
    if v.source.as_deref().is_some_and(is_file_path) {
        v.kind = "bind".to_string();
        v.bind.get_or_insert_with(VolumeBind::default);
    } else {
        v.kind = "volume".to_string();
        v.volume.get_or_insert_with(VolumeVolume::default);
    }
    Ok(v)
}

/// A mount source that names a host path rather than a volume.
pub(crate) fn is_file_path(s: &str) -> bool {
    let b = s.as_bytes();
    match b.first() {
        None => false,
        Some(b'.' | b'/' | b'~') => true,
        _ => s.starts_with("\\\\") || (b.len() >= 2 && b[0].is_ascii_alphabetic() && b[1] == b':'),
    }
}

/// Deserialize `volumes`: short strings and long mappings.
pub(crate) fn volumes<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<ServiceVolume>, D::Error> {
    struct Item(ServiceVolume);
    struct ItemV;
    impl<'de> Visitor<'de> for ItemV {
        type Value = Item;
        fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
            f.write_str("a string or mapping")
        }
        fn visit_str<E: de::Error>(self, v: &str) -> Result<Item, E> {
            parse_volume(v).map(Item).map_err(E::custom)
        }
        fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Item, A::Error> {
            ServiceVolume::deserialize(de::value::MapAccessDeserializer::new(map)).map(Item)
        }
    }
    impl<'de> Deserialize<'de> for Item {
        fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
            short_or_long(d, ItemV)
        }
    }
    struct V;
    impl<'de> Visitor<'de> for V {
        type Value = Vec<ServiceVolume>;
        fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
            f.write_str("a list")
        }
        fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
            Ok(Vec::new())
        }
        fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
            let mut out = Vec::new();
            while let Some(Item(v)) = seq.next_element()? {
                out.push(v);
            }
            Ok(out)
        }
    }
    d.deserialize_any(V)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn short_volumes() {
        let v = parse_volume("/var/lib/anonymous").unwrap();
        assert_eq!((v.kind.as_str(), v.source.as_deref()), ("volume", None));
        let v = parse_volume("~/configs:/etc/configs:ro").unwrap();
        assert_eq!(v.kind, "bind");
        assert!(v.read_only);
        let v = parse_volume("datavolume:/var/lib/volume").unwrap();
        assert_eq!(v.kind, "volume");
        let v = parse_volume("c:\\data:/data").unwrap();
        assert_eq!(v.source.as_deref(), Some("c:\\data"));
    }
}
