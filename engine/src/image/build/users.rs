//! User and group names of an image, resolved from its `/etc/passwd` and `/etc/group` as
//! Docker does for `USER` and `COPY --chown`.

use std::fmt;

/// A resolved user: uid, primary gid and supplementary gids.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ResolvedUser {
    /// The uid.
    pub uid: u32,
    /// The primary gid.
    pub gid: u32,
    /// Groups listing the user by name in `/etc/group`.
    pub additional_gids: Vec<u32>,
}

/// A name that neither file knows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnknownName {
    kind: &'static str,
    name: String,
}

impl fmt::Display for UnknownName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "unable to find {} {}: no matching entries in {} file",
            self.kind,
            self.name,
            if self.kind == "user" {
                "passwd"
            } else {
                "group"
            }
        )
    }
}

impl std::error::Error for UnknownName {}

/// Parsed `/etc/passwd` and `/etc/group` (either may be empty).
#[derive(Debug, Clone, Default)]
pub struct UserDb {
    passwd: Vec<(String, u32, u32)>,
    group: Vec<(String, u32, Vec<String>)>,
}

impl UserDb {
    /// Parses the two files' contents; malformed lines are skipped.
    pub fn parse(passwd: &str, group: &str) -> Self {
        let passwd = passwd
            .lines()
            .filter_map(|l| {
                let f: Vec<&str> = l.split(':').collect();
                Some((
                    f.first()?.to_string(),
                    f.get(2)?.parse().ok()?,
                    f.get(3)?.parse().ok()?,
                ))
            })
            .collect();
        let group = group
            .lines()
            .filter_map(|l| {
                let f: Vec<&str> = l.split(':').collect();
                let members = f
                    .get(3)
                    .map(|m| {
                        m.split(',')
                            .filter(|s| !s.is_empty())
                            .map(str::to_string)
                            .collect()
                    })
                    .unwrap_or_default();
                Some((f.first()?.to_string(), f.get(2)?.parse().ok()?, members))
            })
            .collect();
        Self { passwd, group }
    }

    /// Resolves `user[:group]` (names or numbers) as `USER` does for RUN.
    pub fn resolve(&self, spec: &str) -> Result<ResolvedUser, UnknownName> {
        let (u, g) = match spec.split_once(':') {
            Some((u, g)) => (u, Some(g)),
            None => (spec, None),
        };
        let entry = self
            .passwd
            .iter()
            .find(|(n, uid, _)| n == u || u.parse::<u32>().ok() == Some(*uid));
        let (uid, mut gid, name) = match (entry, u.parse::<u32>()) {
            (Some((n, uid, gid)), _) => (*uid, *gid, Some(n.as_str())),
            (None, Ok(uid)) => (uid, 0, None),
            (None, Err(_)) if u.is_empty() => (0, 0, None),
            (None, Err(_)) => {
                return Err(UnknownName {
                    kind: "user",
                    name: u.to_string(),
                });
            }
        };
        let mut additional_gids = Vec::new();
        match g {
            Some(g) if !g.is_empty() => gid = self.group_id(g)?,
            _ => {
                if let Some(name) = name {
                    additional_gids = self
                        .group
                        .iter()
                        .filter(|(_, id, m)| *id != gid && m.iter().any(|x| x == name))
                        .map(|(_, id, _)| *id)
                        .collect();
                }
            }
        }
        Ok(ResolvedUser {
            uid,
            gid,
            additional_gids,
        })
    }

    /// Resolves `--chown=user[:group]`; without a group the user's primary group is used,
    /// and a group alone given by name is looked up in `/etc/group`.
    pub fn chown(&self, spec: &str) -> Result<(u32, u32), UnknownName> {
        let (u, g) = match spec.split_once(':') {
            Some((u, g)) => (u, Some(g)),
            None => (spec, None),
        };
        let uid = match u.parse::<u32>() {
            Ok(n) => n,
            Err(_) => {
                self.passwd
                    .iter()
                    .find(|(n, _, _)| n == u)
                    .ok_or_else(|| UnknownName {
                        kind: "user",
                        name: u.to_string(),
                    })?
                    .1
            }
        };
        let gid = match g {
            Some(g) => self.group_id(g)?,
            None => match u.parse::<u32>() {
                // Docker: a numeric user without a group gets the same number as gid.
                Ok(n) => n,
                Err(_) => self
                    .passwd
                    .iter()
                    .find(|(n, _, _)| n == u)
                    .map_or(0, |e| e.2),
            },
        };
        Ok((uid, gid))
    }

    fn group_id(&self, g: &str) -> Result<u32, UnknownName> {
        if let Ok(n) = g.parse::<u32>() {
            return Ok(n);
        }
        self.group
            .iter()
            .find(|(n, _, _)| n == g)
            .map(|e| e.1)
            .ok_or_else(|| UnknownName {
                kind: "group",
                name: g.to_string(),
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_numbers() {
        let db = UserDb::parse(
            "root:x:0:0:root:/root:/bin/sh\nwww:x:33:34::/var/www:/bin/false\n",
            "root:x:0:\nweb:x:34:\nextra:x:50:www,other\n",
        );
        assert_eq!(
            db.resolve("www").unwrap(),
            ResolvedUser {
                uid: 33,
                gid: 34,
                additional_gids: vec![50]
            }
        );
        assert_eq!(db.resolve("1000").unwrap().uid, 1000);
        assert_eq!(db.resolve("www:root").unwrap().gid, 0);
        assert!(db.resolve("nobody").is_err());
        assert_eq!(db.chown("www").unwrap(), (33, 34));
        assert_eq!(db.chown("www:extra").unwrap(), (33, 50));
        assert_eq!(db.chown("1:2").unwrap(), (1, 2));
        assert_eq!(db.chown("7").unwrap(), (7, 7));
        assert_eq!(
            db.chown("ghost").unwrap_err().to_string(),
            "unable to find user ghost: no matching entries in passwd file"
        );
    }
}
