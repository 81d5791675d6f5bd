//! Relative paths made absolute (or relative to an outer project) as compose-go's `paths`
//! package does, on the canonical node tree.
//!
//! `base` may itself be relative: an included or extended file is resolved against its
//! directory relative to the including project, and the outer resolution then completes the
//! path. That keeps `--no-path-resolution` output relative to the main project directory.

use std::path::{Component, Path, PathBuf};

use crate::error::{Error, Result};
use crate::yaml::{Node, Value};

/// Where relative paths are resolved and how `~` expands.
pub(crate) struct Resolver<'a> {
    /// The directory relative paths are joined to.
    pub base: &'a Path,
    /// `$HOME`, for `~`.
    pub home: Option<&'a str>,
}

impl Resolver<'_> {
    /// Resolve every path-valued attribute of a model.
    pub(crate) fn resolve(&self, root: &mut Node) -> Result<()> {
        let Some(top) = root.as_map_mut() else {
            return Ok(());
        };
        for (k, v) in top.iter_mut() {
            match k.name.as_str() {
                "services" => {
                    if let Some(services) = v.as_map_mut() {
                        for (name, service) in services.iter_mut() {
                            self.service(service, &name.name)?;
                        }
                    }
                }
                "configs" | "secrets" => {
                    if let Some(res) = v.as_map_mut() {
                        for r in res.values_mut() {
                            if let Some(f) = r.as_map_mut().and_then(|m| m.get_mut("file")) {
                                self.maybe_unix_path(f);
                            }
                        }
                    }
                }
                "volumes" => {
                    if let Some(res) = v.as_map_mut() {
                        for r in res.values_mut() {
                            self.volume_driver_opts(r);
                        }
                    }
                }
                _ => {}
            }
        }
        Ok(())
    }

    fn service(&self, service: &mut Node, name: &str) -> Result<()> {
        let Some(m) = service.as_map_mut() else {
            return Ok(());
        };
        for (k, v) in m.iter_mut() {
            match k.name.as_str() {
                "build" => {
                    if let Some(b) = v.as_map_mut() {
                        for (bk, bv) in b.iter_mut() {
                            match bk.name.as_str() {
                                "context" => self.context_path(bv),
                                "additional_contexts" => {
                                    if let Some(ctx) = bv.as_map_mut() {
                                        ctx.values_mut().for_each(|c| self.context_path(c));
                                    }
                                }
                                "ssh" => {
                                    if let Some(ssh) = bv.as_map_mut() {
                                        ssh.values_mut().for_each(|c| self.maybe_unix_path(c));
                                    }
                                }
                                _ => {}
                            }
                        }
                    }
                }
                "env_file" => {
                    if let Value::Seq(items) = &mut v.value {
                        for item in items {
                            if let Some(p) = item.as_map_mut().and_then(|m| m.get_mut("path")) {
                                self.abs_path(p);
                            }
                        }
                    }
                }
                "label_file" => {
                    if let Value::Seq(items) = &mut v.value {
                        items.iter_mut().for_each(|p| self.abs_path(p));
                    }
                }
                "extends" => {
                    if let Some(f) = v.as_map_mut().and_then(|m| m.get_mut("file")) {
                        self.abs_path(f);
                    }
                }
                "develop" => {
                    let watch = v.as_map_mut().and_then(|m| m.get_mut("watch"));
                    if let Some(Value::Seq(items)) = watch.map(|w| &mut w.value) {
                        for item in items {
                            if let Some(p) = item.as_map_mut().and_then(|m| m.get_mut("path")) {
                                self.abs_path(p);
                                resolve_symlink(p);
                            }
                        }
                    }
                }
                "volumes" => {
                    if let Value::Seq(items) = &mut v.value {
                        for (i, item) in items.iter_mut().enumerate() {
                            self.volume_mount(item, name, i)?;
                        }
                    }
                }
                _ => {}
            }
        }
        Ok(())
    }

    fn volume_mount(&self, item: &mut Node, service: &str, i: usize) -> Result<()> {
        let loc = item.loc.clone();
        let Some(m) = item.as_map_mut() else {
            return Ok(());
        };
        if m.get("type").and_then(Node::as_str) != Some("bind") {
            return Ok(());
        }
        match m.get_mut("source") {
            Some(src) => {
                self.maybe_unix_path(src);
                Ok(())
            }
            None => Err(Error::Invalid {
                loc,
                path: format!("services.{service}.volumes[{i}]"),
                message: "invalid mount config for type \"bind\": field Source must not be empty"
                    .into(),
            }),
        }
    }

    fn volume_driver_opts(&self, vol: &mut Node) {
        let Some(m) = vol.as_map_mut() else { return };
        if m.get("driver").and_then(Node::as_str) != Some("local") {
            return;
        }
        let Some(opts) = m.get_mut("driver_opts").and_then(Node::as_map_mut) else {
            return;
        };
        if opts.get("o").and_then(Node::as_str) == Some("bind") {
            if let Some(dev) = opts.get_mut("device") {
                self.maybe_unix_path(dev);
            }
        }
    }

    fn context_path(&self, node: &mut Node) {
        let Some(v) = node.as_str() else { return };
        if v.contains("://") || v.starts_with("service:") || is_remote_context(v) {
            return;
        }
        self.abs_path(node);
    }

    fn expand_user(&self, p: &str) -> String {
        if let Some(rest) = p.strip_prefix('~') {
            if let Some(home) = self.home {
                return join(Path::new(home), rest.trim_start_matches('/'));
            }
        }
        p.to_string()
    }

    /// compose-go's `absPath`.
    fn abs_path(&self, node: &mut Node) {
        let Some(v) = node.as_str() else { return };
        let v = self.expand_user(v);
        let out = if v.is_empty() || Path::new(&v).is_absolute() {
            v
        } else {
            join(self.base, &v)
        };
        set_string(node, out);
    }

    /// compose-go's `maybeUnixPath`: Windows absolute paths are kept too.
    fn maybe_unix_path(&self, node: &mut Node) {
        let Some(v) = node.as_str() else { return };
        let v = self.expand_user(v);
        let out = if v.starts_with('/') || is_windows_abs(&v) {
            v
        } else {
            join(self.base, &v)
        };
        set_string(node, out);
    }
}

fn set_string(node: &mut Node, text: String) {
    if node.as_str() != Some(text.as_str()) {
        node.value = Value::Scalar(crate::yaml::Scalar::string(text));
    }
}

fn is_remote_context(v: &str) -> bool {
    [
        "https://",
        "http://",
        "git://",
        "ssh://",
        "github.com/",
        "git@",
    ]
    .iter()
    .any(|p| v.starts_with(p))
}

fn is_windows_abs(v: &str) -> bool {
    let b = v.as_bytes();
    v.starts_with("\\\\")
        || (b.len() >= 3
            && b[0].is_ascii_alphabetic()
            && b[1] == b':'
            && matches!(b[2], b'\\' | b'/'))
}

fn resolve_symlink(node: &mut Node) {
    let Some(p) = node.as_str() else { return };
    let path = Path::new(p);
    let Ok(meta) = std::fs::symlink_metadata(path) else {
        return;
    };
    if meta.file_type().is_symlink() {
        if let Ok(real) = std::fs::canonicalize(path) {
            if let Some(s) = real.to_str() {
                set_string(node, s.to_string());
            }
        }
    }
}

/// Go's `filepath.Join`: join then clean (`.` and `..` folded, no trailing slash).
pub(crate) fn join(base: &Path, rel: &str) -> String {
    let joined = if base.as_os_str().is_empty() {
        PathBuf::from(rel)
    } else {
        base.join(rel)
    };
    clean(&joined)
}

/// Go's `filepath.Clean` on a Unix path.
pub(crate) fn clean(p: &Path) -> String {
    crate::transform::clean_path(&p.to_string_lossy())
}

/// Go's `filepath.Rel(base, target)` for two absolute, clean paths.
pub(crate) fn relative(base: &Path, target: &Path) -> PathBuf {
    let b: Vec<Component> = base.components().collect();
    let t: Vec<Component> = target.components().collect();
    let common = b.iter().zip(&t).take_while(|(x, y)| x == y).count();
    let mut out = PathBuf::new();
    for _ in common..b.len() {
        out.push("..");
    }
    for c in &t[common..] {
        out.push(c.as_os_str());
    }
    if out.as_os_str().is_empty() {
        out.push(".");
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn join_and_relative() {
        assert_eq!(join(Path::new("/p"), "./data"), "/p/data");
        assert_eq!(join(Path::new("dir"), "../x"), "x");
        assert_eq!(join(Path::new(""), "./x/"), "x");
        assert_eq!(
            relative(Path::new("/a/b"), Path::new("/a/c/d")),
            PathBuf::from("../c/d")
        );
        assert_eq!(
            relative(Path::new("/a"), Path::new("/a")),
            PathBuf::from(".")
        );
    }
}
