//! `User` (`uid`, `uid:gid`, `name`, `name:group`) and `GroupAdd` resolved against the
//! container's own /etc/passwd and /etc/group, as Docker does.

use super::ContainerError;
use super::rootpath;
use std::path::Path;

/// A resolved user.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResolvedUser {
    /// User ID.
    pub uid: u32,
    /// Primary group ID.
    pub gid: u32,
    /// Supplementary groups (from /etc/group membership and `GroupAdd`).
    pub additional_gids: Vec<u32>,
    /// The home directory from /etc/passwd (`/` if unknown).
    pub home: String,
}

struct PasswdEntry {
    name: String,
    uid: u32,
    gid: u32,
    home: String,
}

struct GroupEntry {
    name: String,
    gid: u32,
    members: Vec<String>,
}

fn read(rootfs: &Path, file: &str) -> String {
    std::fs::read_to_string(rootpath::resolve(rootfs, file, true)).unwrap_or_default()
}

fn passwd(rootfs: &Path) -> Vec<PasswdEntry> {
    read(rootfs, "/etc/passwd")
        .lines()
        .filter_map(|l| {
            let f: Vec<&str> = l.split(':').collect();
            if f.len() < 4 {
                return None;
            }
            Some(PasswdEntry {
                name: f[0].to_string(),
                uid: f[2].parse().ok()?,
                gid: f[3].parse().ok()?,
                home: f.get(5).unwrap_or(&"/").to_string(),
            })
        })
        .collect()
}

fn groups(rootfs: &Path) -> Vec<GroupEntry> {
    read(rootfs, "/etc/group")
        .lines()
        .filter_map(|l| {
            let f: Vec<&str> = l.split(':').collect();
            if f.len() < 3 {
                return None;
            }
            Some(GroupEntry {
                name: f[0].to_string(),
                gid: f[2].parse().ok()?,
                members: f
                    .get(3)
                    .map(|m| {
                        m.split(',')
                            .filter(|s| !s.is_empty())
                            .map(str::to_string)
                            .collect()
                    })
                    .unwrap_or_default(),
            })
        })
        .collect()
}

fn find_group(groups: &[GroupEntry], g: &str) -> Result<u32, ContainerError> {
    if let Some(e) = groups.iter().find(|e| e.name == g) {
        return Ok(e.gid);
    }
    g.parse().map_err(|_| {
        ContainerError::Invalid(format!(
            "unable to find group {g}: no matching entries in group file"
        ))
    })
}

/// Resolves `user` (empty = root) and `group_add` inside `rootfs`.
pub fn resolve(
    rootfs: &Path,
    user: &str,
    group_add: &[String],
) -> Result<ResolvedUser, ContainerError> {
    let pw = passwd(rootfs);
    let gr = groups(rootfs);
    let (u, g) = match user.split_once(':') {
        Some((u, g)) => (u, Some(g)),
        None => (user, None),
    };
    let u = if u.is_empty() { "0" } else { u };
    let entry = pw.iter().find(|e| e.name == u).or_else(|| {
        u.parse::<u32>()
            .ok()
            .and_then(|n| pw.iter().find(|e| e.uid == n))
    });
    let (uid, mut gid, name, home) = match (entry, u.parse::<u32>()) {
        (Some(e), _) => (e.uid, e.gid, Some(e.name.clone()), e.home.clone()),
        (None, Ok(n)) => (n, 0, None, "/".to_string()),
        (None, Err(_)) => {
            return Err(ContainerError::Invalid(format!(
                "unable to find user {u}: no matching entries in passwd file"
            )));
        }
    };
    if let Some(g) = g.filter(|g| !g.is_empty()) {
        gid = find_group(&gr, g)?;
    }
    let mut extra: Vec<u32> = Vec::new();
    // Membership lists only apply when the user was given without an explicit group.
    if let (Some(n), None) = (&name, g) {
        for e in &gr {
            if e.members.iter().any(|m| m == n) && e.gid != gid && !extra.contains(&e.gid) {
                extra.push(e.gid);
            }
        }
    }
    for g in group_add {
        let id = find_group(&gr, g)?;
        if !extra.contains(&id) {
            extra.push(id);
        }
    }
    Ok(ResolvedUser {
        uid,
        gid,
        additional_gids: extra,
        home,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn users_and_groups() {
        let d = tempfile::tempdir().unwrap();
        std::fs::create_dir(d.path().join("etc")).unwrap();
        std::fs::write(
            d.path().join("etc/passwd"),
            "root:x:0:0:root:/root:/bin/sh\nwww:x:33:33:www:/var/www:/bin/false\n",
        )
        .unwrap();
        std::fs::write(
            d.path().join("etc/group"),
            "root:x:0:\nwww:x:33:\nvideo:x:44:www,bob\naudio:x:29:\n",
        )
        .unwrap();
        let r = resolve(d.path(), "", &[]).unwrap();
        assert_eq!((r.uid, r.gid, r.home.as_str()), (0, 0, "/root"));
        let r = resolve(d.path(), "www", &[]).unwrap();
        assert_eq!(
            (r.uid, r.gid, r.additional_gids.clone()),
            (33, 33, vec![44])
        );
        let r = resolve(d.path(), "www:audio", &["7".into()]).unwrap();
        assert_eq!((r.uid, r.gid, r.additional_gids), (33, 29, vec![7]));
        let r = resolve(d.path(), "1000:1000", &[]).unwrap();
        assert_eq!((r.uid, r.gid, r.home.as_str()), (1000, 1000, "/"));
        assert_eq!(resolve(d.path(), "33", &[]).unwrap().gid, 33);
        let e = resolve(d.path(), "nobody", &[]).unwrap_err().to_string();
        assert_eq!(
            e,
            "unable to find user nobody: no matching entries in passwd file"
        );
        assert!(resolve(d.path(), "www:nogroup", &[]).is_err());
    }
}
