//! `extends`: a service built on another one, from the same file or another (compose-go's
//! `ApplyExtends`). A file read for `extends` is loaded once per project and its relative
//! paths are rewritten against the extending file's directory.

use std::path::{Path, PathBuf};

use super::paths::{Resolver, relative};
use super::{Ctx, Loader, Steps};
use crate::error::{Error, Result};
use crate::merge::extend_service;
use crate::yaml::{Location, Mapping, Node, Value};

/// `(file, service)` pairs on the current `extends` chain, for cycle detection.
type Tracker = Vec<(String, String)>;

impl Loader<'_> {
    /// Apply `extends` to every service of `doc`.
    pub(super) fn apply_extends(&mut self, doc: &mut Node, file: &str, ctx: &Ctx) -> Result<()> {
        let Some(services) = doc.as_map_mut().and_then(|m| m.get_mut("services")) else {
            return Ok(());
        };
        let Some(services) = services.as_map_mut() else {
            return Ok(());
        };
        let names: Vec<String> = services
            .iter()
            .filter(|(_, s)| s.get("extends").is_some())
            .map(|(k, _)| k.name.clone())
            .collect();
        for name in names {
            self.extend(services, &name, file, ctx, &Vec::new())?;
        }
        Ok(())
    }

    /// Resolve `extends` of `services[name]` in place (recursively for its base).
    fn extend(
        &mut self,
        services: &mut Mapping,
        name: &str,
        file: &str,
        ctx: &Ctx,
        tracker: &Tracker,
    ) -> Result<()> {
        let Some(service) = services.get(name) else {
            return Ok(());
        };
        let Some(ext) = service.get("extends") else {
            return Ok(());
        };
        let loc = ext.loc.clone();
        let (reference, ref_file) = match &ext.value {
            Value::Scalar(_) => (crate::merge::go_text(ext), None),
            Value::Map(m) => {
                let Some(r) = m.get("service").and_then(Node::as_str) else {
                    return Err(Error::Extends {
                        loc,
                        service: name.to_string(),
                        file: file.to_string(),
                        message: format!("extends.{name}.service is required"),
                    });
                };
                (
                    r.to_string(),
                    m.get("file").and_then(Node::as_str).map(str::to_string),
                )
            }
            _ => {
                return Err(Error::Extends {
                    loc,
                    service: name.to_string(),
                    file: file.to_string(),
                    message: format!("invalid type {} for extends", ext.kind_name()),
                });
            }
        };

        let base = match ref_file {
            Some(ref_file) => {
                let path = PathBuf::from(super::paths::join(&ctx.dir, &ref_file));
                let key = (path.clone(), ctx.id);
                let mut other = match self.extends_cache.remove(&key) {
                    Some(s) => s,
                    None => self.load_extends_file(&path, ctx, name)?,
                };
                if !other.contains_key(reference.as_str()) {
                    return Err(Error::Extends {
                        loc,
                        service: name.to_string(),
                        file: file.to_string(),
                        message: format!("service {reference:?} not found in {ref_file}"),
                    });
                }
                let tracker = add(tracker, &ref_file, name)?;
                let r = self.extend(&mut other, &reference, file, ctx, &tracker);
                let base = other.get(reference.as_str()).cloned();
                self.extends_cache.insert(key, other);
                r?;
                base
            }
            None => {
                if !services.contains_key(reference.as_str()) {
                    return Err(Error::Extends {
                        loc,
                        service: name.to_string(),
                        file: file.to_string(),
                        message: format!("service {reference:?} not found"),
                    });
                }
                let tracker = add(tracker, file, name)?;
                self.extend(services, &reference, file, ctx, &tracker)?;
                services.get(reference.as_str()).cloned()
            }
        };
        let Some(base) = base else { return Ok(()) };
        let Some(slot) = services.get_mut(name) else {
            return Ok(());
        };
        let service = std::mem::replace(slot, Node::new(Value::Null, Location::synthetic()));
        let mut merged = extend_service(base, service)?;
        if let Some(m) = merged.as_map_mut() {
            m.shift_remove("extends");
        }
        *slot = merged;
        Ok(())
    }

    /// Read a file for `extends`: interpolated and canonical, no include or extends of its
    /// own applied yet, paths made relative to the extending project's directory.
    fn load_extends_file(&mut self, path: &Path, ctx: &Ctx, name: &str) -> Result<Mapping> {
        let source = self.read_source(path)?;
        let file_name = source.name.to_string();
        let dir = path.parent().map(Path::to_path_buf).unwrap_or_default();
        let inner = Ctx {
            dir: dir.clone(),
            env: ctx.env.clone(),
            id: ctx.id,
        };
        let mut dict = self.load_file(
            source,
            &inner,
            Node::map(Location::synthetic()),
            &mut Vec::new(),
            Steps {
                include: false,
                extends: false,
            },
        )?;
        let rel = relative(&ctx.dir, &dir);
        let home = ctx.env.get("HOME").cloned();
        Resolver {
            base: &rel,
            home: home.as_deref(),
        }
        .resolve(&mut dict)?;
        let no_services = || Error::Extends {
            loc: Location {
                file: std::sync::Arc::from(file_name.as_str()),
                ..Location::synthetic()
            },
            service: name.to_string(),
            file: file_name.clone(),
            message: "no services section".into(),
        };
        let Value::Map(mut top) = dict.value else {
            return Err(no_services());
        };
        match top.shift_remove("services").map(|s| s.value) {
            Some(Value::Map(services)) => Ok(services),
            _ => Err(no_services()),
        }
    }
}

/// compose-go's `cycleTracker.Add`.
fn add(tracker: &Tracker, file: &str, service: &str) -> Result<Tracker> {
    let entry = (file.to_string(), service.to_string());
    if tracker.contains(&entry) {
        let mut chain = vec![format!("  {} in {}", tracker[0].1, tracker[0].0)];
        for (f, s) in tracker[1..].iter().chain(std::iter::once(&entry)) {
            chain.push(format!("  extends {s} in {f}"));
        }
        return Err(Error::ExtendsCycle { chain });
    }
    let mut t = tracker.clone();
    t.push(entry);
    Ok(t)
}
