//! Paths inside a container rootfs, resolved like the container would see them: symlinks are
//! followed relative to the rootfs, and `..` never climbs above it.

use std::path::{Component, Path, PathBuf};

/// Resolves `path` (as seen inside the container) to a host path under `root`. Every symlink
/// on the way is followed inside `root`; the last component is followed only if
/// `follow_last`. Missing components are kept as they are (the result may not exist).
pub fn resolve(root: &Path, path: &str, follow_last: bool) -> PathBuf {
    let mut todo: Vec<String> = components(path);
    todo.reverse();
    let mut cur: Vec<String> = Vec::new();
    let mut hops = 0;
    while let Some(c) = todo.pop() {
        match c.as_str() {
            "." | "" => continue,
            ".." => {
                cur.pop();
                continue;
            }
            _ => {}
        }
        let candidate = join(root, &cur).join(&c);
        let is_last = todo.is_empty();
        if (!is_last || follow_last)
            && hops < 255
            && let Ok(target) = std::fs::read_link(&candidate)
        {
            hops += 1;
            let t = target.to_string_lossy().to_string();
            if t.starts_with('/') {
                cur.clear();
            }
            let mut parts = components(&t);
            parts.reverse();
            todo.extend(parts);
            continue;
        }
        cur.push(c);
    }
    join(root, &cur)
}

fn components(p: &str) -> Vec<String> {
    Path::new(p)
        .components()
        .filter_map(|c| match c {
            Component::Normal(s) => Some(s.to_string_lossy().to_string()),
            Component::ParentDir => Some("..".into()),
            _ => None,
        })
        .collect()
}

fn join(root: &Path, parts: &[String]) -> PathBuf {
    let mut p = root.to_path_buf();
    for c in parts {
        p.push(c);
    }
    p
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stays_inside() {
        let d = tempfile::tempdir().unwrap();
        let r = d.path();
        std::fs::create_dir_all(r.join("a/b")).unwrap();
        std::os::unix::fs::symlink("/etc", r.join("a/abs")).unwrap();
        std::os::unix::fs::symlink("../../../../..", r.join("a/up")).unwrap();
        std::os::unix::fs::symlink("loop", r.join("loop")).unwrap();
        assert_eq!(resolve(r, "/../../etc/passwd", true), r.join("etc/passwd"));
        assert_eq!(resolve(r, "a/abs/passwd", true), r.join("etc/passwd"));
        assert_eq!(resolve(r, "a/up/etc", true), r.join("etc"));
        assert_eq!(resolve(r, "a/abs", false), r.join("a/abs"));
        assert_eq!(resolve(r, "/", true), r.to_path_buf());
        assert!(resolve(r, "loop", true).starts_with(r));
    }
}
