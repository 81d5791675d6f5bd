//! `cp`: files between a container and the local filesystem through the archive endpoints,
//! with docker's naming rules (into an existing directory, or renamed to a new path), `-`
//! for a tar stream on stdin or stdout, `-a` to keep ownership, `-L` to follow links.

use anyhow::{Context, Result, bail};
use berth_client::Client;
use clap::Args;
use std::io::{IsTerminal, Write};
use std::path::{Component, Path, PathBuf};

/// `cp` flags.
#[derive(Debug, Args)]
pub struct CpArgs {
    /// Archive mode (copy all uid/gid information).
    #[arg(short, long)]
    pub(crate) archive: bool,
    /// Always follow symbol link in SRC_PATH.
    #[arg(short = 'L', long)]
    pub(crate) follow_link: bool,
    /// Suppress progress output during copy.
    #[arg(short, long)]
    pub(crate) quiet: bool,
    /// SRC_PATH (CONTAINER:SRC_PATH or a local path or -).
    pub(crate) src: String,
    /// DEST_PATH (CONTAINER:DEST_PATH or a local path or -).
    pub(crate) dest: String,
}

/// `CONTAINER:PATH` split, or `None` for a local path (docker: a colon before any slash).
pub fn split_cp_arg(arg: &str) -> Option<(&str, &str)> {
    if arg.starts_with('/') || arg.starts_with('.') {
        return None;
    }
    let (c, p) = arg.split_once(':')?;
    if c.is_empty() || c.contains('/') {
        return None;
    }
    Some((c, p))
}

/// Replaces the first path component of a tar entry (`old`) by `new`.
fn rebase(entry: &Path, old: &str, new: &str) -> Option<PathBuf> {
    let mut comps = entry
        .components()
        .filter(|c| !matches!(c, Component::CurDir));
    let first = comps.next()?;
    if first.as_os_str() != old {
        return None;
    }
    let mut p = PathBuf::from(new);
    for c in comps {
        p.push(c);
    }
    Some(p)
}

fn base_name(p: &str) -> String {
    Path::new(p.trim_end_matches('/'))
        .file_name()
        .map(|n| n.to_string_lossy().to_string())
        .unwrap_or_else(|| "/".into())
}

/// `cp`.
pub async fn cp(c: &Client, a: CpArgs) -> Result<()> {
    match (split_cp_arg(&a.src), split_cp_arg(&a.dest)) {
        (Some((ct, src)), None) => from_container(c, &a, ct, src).await,
        (None, Some((ct, dst))) => to_container(c, &a, ct, dst).await,
        (Some(_), Some(_)) => bail!("copying between containers is not supported"),
        (None, None) => bail!("must specify at least one container source"),
    }
}

async fn from_container(c: &Client, a: &CpArgs, ct: &str, src: &str) -> Result<()> {
    let mut src = src.to_string();
    if a.follow_link {
        let st = c.archive_stat(ct, &src).await?;
        if let Some(t) = st["linkTarget"].as_str().filter(|t| !t.is_empty()) {
            src = t.to_string();
        }
    }
    let (stat, mut body) = c.archive_get(ct, &src).await?;
    if a.dest == "-" {
        let mut out = std::io::stdout().lock();
        while let Some(b) = body.next().await? {
            out.write_all(&b)?;
        }
        out.flush()?;
        return Ok(());
    }
    let tar = body.collect().await?;
    let dest = PathBuf::from(&a.dest);
    let name = stat["name"].as_str().unwrap_or("").to_string();
    let src_is_dir = stat["mode"].as_u64().is_some_and(|m| m & (1 << 31) != 0);
    let contents_only = src.ends_with("/.");
    // Into an existing directory keeps the name; a new path renames the copied root, or
    // (for `dir/.`) becomes the directory the contents go into.
    let (dir, rename) = if dest.is_dir() {
        (dest.clone(), None)
    } else {
        if a.dest.ends_with('/') {
            bail!("no such directory");
        }
        if src_is_dir && dest.exists() {
            bail!("cannot copy a directory to a file: {}", a.dest);
        }
        let parent = dest
            .parent()
            .filter(|p| !p.as_os_str().is_empty())
            .unwrap_or(Path::new("."))
            .to_path_buf();
        if !parent.is_dir() {
            bail!("no such directory");
        }
        if contents_only {
            std::fs::create_dir(&dest).with_context(|| format!("mkdir {}", a.dest))?;
            (dest.clone(), None)
        } else {
            (parent, Some(base_name(&a.dest)))
        }
    };
    let mut ar = tar::Archive::new(std::io::Cursor::new(&tar[..]));
    ar.set_preserve_permissions(true);
    ar.set_preserve_ownerships(a.archive);
    ar.set_overwrite(true);
    for entry in ar.entries().context("reading the archive")? {
        let mut e = entry.context("reading the archive")?;
        let path = e.path()?.to_path_buf();
        let target = match &rename {
            Some(new) => rebase(&path, &name, new).unwrap_or(path),
            None => path,
        };
        let out = dir.join(&target);
        if let Some(p) = out.parent() {
            std::fs::create_dir_all(p).with_context(|| format!("create {}", p.display()))?;
        }
        e.unpack(&out)
            .with_context(|| format!("extract {}", out.display()))?;
    }
    if !a.quiet && std::io::stderr().is_terminal() {
        eprintln!(
            "Successfully copied {} to {}",
            crate::engine::format::human_size(tar.len() as f64),
            a.dest
        );
    }
    Ok(())
}

/// A tar of `src` whose root entry is named `name` (`.` for a directory's contents).
fn tar_of(src: &Path, name: &str, follow: bool) -> Result<Vec<u8>> {
    let mut b = tar::Builder::new(Vec::new());
    b.follow_symlinks(follow);
    let meta = if follow {
        std::fs::metadata(src)
    } else {
        std::fs::symlink_metadata(src)
    }
    .with_context(|| format!("lstat {}", src.display()))?;
    if meta.is_dir() {
        b.append_dir_all(name, src)
            .with_context(|| format!("archive {}", src.display()))?;
    } else {
        b.append_path_with_name(src, name)
            .with_context(|| format!("archive {}", src.display()))?;
    }
    Ok(b.into_inner()?)
}

async fn to_container(c: &Client, a: &CpArgs, ct: &str, dst: &str) -> Result<()> {
    if a.src == "-" {
        let mut buf = Vec::new();
        std::io::Read::read_to_end(&mut std::io::stdin(), &mut buf)?;
        c.archive_put(ct, dst, Client::body_of(buf), a.archive)
            .await?;
        return Ok(());
    }
    let src = Path::new(&a.src);
    if std::fs::symlink_metadata(src).is_err() {
        bail!("lstat {}: no such file or directory", a.src);
    }
    let contents_only = a.src.ends_with("/.");
    let dest_stat = match c.archive_stat(ct, dst).await {
        Ok(s) => Some(s),
        Err(e) if e.is_not_found() => None,
        Err(e) => return Err(e.into()),
    };
    let dest_is_dir = dest_stat
        .as_ref()
        .and_then(|s| s["mode"].as_u64())
        .is_some_and(|m| m & (1 << 31) != 0);
    let (dir, name) = if dest_is_dir {
        let n = if contents_only {
            ".".to_string()
        } else {
            base_name(&a.src)
        };
        (dst.to_string(), n)
    } else {
        if dst.ends_with('/') && dest_stat.is_none() {
            bail!("no such directory");
        }
        if src.is_dir() && dest_stat.is_some() {
            bail!("cannot copy a directory to a file: {dst}");
        }
        let p = Path::new(dst.trim_end_matches('/'));
        let parent = p
            .parent()
            .map(|x| x.to_string_lossy().to_string())
            .filter(|x| !x.is_empty())
            .unwrap_or_else(|| "/".into());
        (parent, base_name(dst))
    };
    let tar = tar_of(src, &name, a.follow_link)?;
    let size = tar.len();
    c.archive_put(ct, &dir, Client::body_of(tar), a.archive)
        .await?;
    if !a.quiet && std::io::stderr().is_terminal() {
        eprintln!(
            "Successfully copied {} to {ct}:{dst}",
            crate::engine::format::human_size(size as f64)
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cp_args() {
        assert_eq!(split_cp_arg("web:/etc/hosts"), Some(("web", "/etc/hosts")));
        assert_eq!(split_cp_arg("./a:b"), None);
        assert_eq!(split_cp_arg("/tmp/x"), None);
        assert_eq!(split_cp_arg("-"), None);
        assert_eq!(
            rebase(Path::new("hosts/a/b"), "hosts", "h2"),
            Some(PathBuf::from("h2/a/b"))
        );
        assert_eq!(base_name("/etc/"), "etc");
    }
}
