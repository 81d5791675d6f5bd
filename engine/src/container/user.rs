//! `User` (`uid`, `uid:gid`, `name`, `name:group`) and `GroupAdd` resolved against the
//! container's own /etc/passwd and /etc/group, as Docker does.

use super::ContainerError;
use super::rootpath;
use crate::image::build::users::UserDb;
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

fn read(rootfs: &Path, file: &str) -> String {
    std::fs::read_to_string(rootpath::resolve(rootfs, file, true)).unwrap_or_default()
}

/// The home directory of `uid` in a passwd file (`/` if unknown).
fn home_of(passwd: &str, uid: u32) -> String {
    passwd
        .lines()
        .map(|l| l.split(':').collect::<Vec<_>>())
        .find(|f| f.len() > 5 && f[2].parse() == Ok(uid))
        .map(|f| f[5].to_string())
        .unwrap_or_else(|| "/".into())
}

/// Resolves `user` (empty = root) and `group_add` inside `rootfs`.
pub fn resolve(
    rootfs: &Path,
    user: &str,
    group_add: &[String],
) -> Result<ResolvedUser, ContainerError> {
    let passwd = read(rootfs, "/etc/passwd");
    let db = UserDb::parse(&passwd, &read(rootfs, "/etc/group"));
    let invalid =
        |e: crate::image::build::users::UnknownName| ContainerError::Invalid(e.to_string());
    let r = db.resolve(user).map_err(invalid)?;
    let mut extra = r.additional_gids;
    for g in group_add {
        // `chown` resolves the group part by name or number.
        let (_, id) = db.chown(&format!("0:{g}")).map_err(invalid)?;
        if !extra.contains(&id) {
            extra.push(id);
        }
    }
    Ok(ResolvedUser {
        uid: r.uid,
        gid: r.gid,
        additional_gids: extra,
        home: home_of(&passwd, r.uid),
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
