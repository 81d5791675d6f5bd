//! The configuration hash docker compose v2 stores in the `com.docker.compose.config-hash`
//! label and compares to decide whether a container must be recreated.
//!
//! As compose's `ServiceHash` (pkg/compose/hash.go): the SHA-256, in hex, of the service's JSON
//! marshalling (compose-go's JSON field names and order, maps sorted, `x-*` extensions and the
//! service name excluded, Go's HTML escaping of `<`, `>`, `&`) after clearing the attributes
//! that do not affect a running container: `build`, `pull_policy`, `scale`,
//! `deploy.replicas`, `depends_on` and `profiles`. Everything else counts: image, command,
//! environment (with `env_file` content merged in), ports, volumes, networks, labels, deploy
//! resources, healthcheck, and so on. Known gap: compose-go marshals a few untagged Go fields
//! with capitalised JSON names (`blkio_config` device entries); Berth uses the YAML names, so
//! hashes of services using `blkio_config.weight_device`/`device_*_bps|iops` differ from
//! compose's.

use sha2::{Digest, Sha256};

use crate::model::Service;
use crate::output;

/// The compose v2 config hash of a service.
pub fn service_hash(service: &Service) -> Result<String, serde_json::Error> {
    let mut s = service.clone();
    s.build = None;
    s.pull_policy = None;
    s.scale = None;
    if let Some(d) = &mut s.deploy {
        d.replicas = None;
    }
    s.depends_on.clear();
    s.profiles.clear();
    let mut v = output::to_json_value(&s)?;
    output::strip_extensions(&mut v);
    let json = output::go_html_escape(&serde_json::to_string(&v)?);
    let digest = Sha256::digest(json.as_bytes());
    let mut hex = String::with_capacity(64);
    for b in digest.iter() {
        use std::fmt::Write as _;
        let _ = write!(hex, "{b:02x}");
    }
    Ok(hex)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hash_ignores_scale_and_dependencies() {
        let mut a = Service {
            image: Some("nginx".into()),
            ..Service::default()
        };
        let h1 = service_hash(&a).unwrap();
        a.scale = Some(3);
        a.depends_on
            .insert("db".into(), crate::model::ServiceDependency::default());
        assert_eq!(h1, service_hash(&a).unwrap());
        a.image = Some("nginx:1".into());
        assert_ne!(h1, service_hash(&a).unwrap());
        assert_eq!(h1.len(), 64);
    }
}
