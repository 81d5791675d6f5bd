//! `POST /build` (the legacy builder API) and `POST /commit`, plus the build context tar
//! as the docker CLI makes it: the context directory minus what `.dockerignore` excludes,
//! the Dockerfile and `.dockerignore` always included.

use crate::error::{ClientError, Result};
use crate::images::enc;
use crate::stream::JsonStream;
use crate::transport::{Client, body_bytes, full};
use bytes::Bytes;
use hyper::Method;
use std::path::{Path, PathBuf};

/// `docker build` parameters.
#[derive(Debug, Clone, Default)]
pub struct BuildParams {
    /// `-t` (repeatable).
    pub tags: Vec<String>,
    /// The Dockerfile's path inside the context tar.
    pub dockerfile: Option<String>,
    /// `--build-arg KEY[=VALUE]` (no value: taken from the environment by the caller).
    pub build_args: Vec<(String, String)>,
    /// `--label`.
    pub labels: Vec<(String, String)>,
    /// `--target`.
    pub target: Option<String>,
    /// `--no-cache`.
    pub no_cache: bool,
    /// `--pull`.
    pub pull: bool,
    /// `-q`.
    pub quiet: bool,
    /// `--platform`.
    pub platform: Option<String>,
}

/// `docker commit` parameters.
#[derive(Debug, Clone, Default)]
pub struct CommitParams {
    /// `REPOSITORY` of `[REPOSITORY[:TAG]]`.
    pub repo: String,
    /// `TAG`.
    pub tag: String,
    /// `-m`.
    pub comment: String,
    /// `-a`.
    pub author: String,
    /// `-c` (Dockerfile instructions).
    pub changes: Vec<String>,
    /// `-p` (default true).
    pub pause: bool,
}

fn json_object(kvs: &[(String, String)]) -> String {
    let m: serde_json::Map<String, serde_json::Value> = kvs
        .iter()
        .map(|(k, v)| (k.clone(), serde_json::Value::String(v.clone())))
        .collect();
    serde_json::Value::Object(m).to_string()
}

impl Client {
    /// `POST /build` with a context tar; returns the JSON message stream.
    pub async fn build(&self, context: Bytes, p: &BuildParams) -> Result<JsonStream> {
        let mut q = String::from("/build?rm=1");
        for t in &p.tags {
            q.push_str(&format!("&t={}", enc(t)));
        }
        if let Some(d) = &p.dockerfile {
            q.push_str(&format!("&dockerfile={}", enc(d)));
        }
        if !p.build_args.is_empty() {
            q.push_str(&format!("&buildargs={}", enc(&json_object(&p.build_args))));
        }
        if !p.labels.is_empty() {
            q.push_str(&format!("&labels={}", enc(&json_object(&p.labels))));
        }
        if let Some(t) = &p.target {
            q.push_str(&format!("&target={}", enc(t)));
        }
        if let Some(pl) = &p.platform {
            q.push_str(&format!("&platform={}", enc(pl)));
        }
        for (flag, on) in [("nocache", p.no_cache), ("pull", p.pull), ("q", p.quiet)] {
            if on {
                q.push_str(&format!("&{flag}=1"));
            }
        }
        let headers = vec![("Content-Type", "application/x-tar".to_string())];
        let resp = self
            .request(Method::POST, &q, &headers, full(context))
            .await?;
        Ok(JsonStream::new(resp.into_body()))
    }

    /// `POST /commit`: a new image from a container's changes; returns the image ID.
    pub async fn commit(&self, container: &str, p: &CommitParams) -> Result<String> {
        let mut q = format!(
            "/commit?container={}&repo={}&tag={}&comment={}&author={}&pause={}",
            enc(container),
            enc(&p.repo),
            enc(&p.tag),
            enc(&p.comment),
            enc(&p.author),
            p.pause
        );
        for c in &p.changes {
            q.push_str(&format!("&changes={}", enc(c)));
        }
        let headers = vec![("Content-Type", "application/json".to_string())];
        let resp = self
            .request(Method::POST, &q, &headers, full(Bytes::from_static(b"{}")))
            .await?;
        let body = body_bytes(resp).await?;
        let v: serde_json::Value = serde_json::from_slice(&body)
            .map_err(|e| ClientError::Decode(format!("commit response: {e}")))?;
        Ok(v.get("Id")
            .and_then(|x| x.as_str())
            .unwrap_or_default()
            .to_string())
    }
}

/// `.dockerignore` patterns of a context (comments and blank lines dropped).
pub fn dockerignore(ctx: &Path) -> Vec<String> {
    std::fs::read_to_string(ctx.join(".dockerignore"))
        .unwrap_or_default()
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .map(|l| {
            let neg = l.starts_with('!');
            let p = l
                .trim_start_matches('!')
                .trim_start_matches("./")
                .trim_start_matches('/')
                .trim_end_matches('/');
            if neg { format!("!{p}") } else { p.to_string() }
        })
        .collect()
}

/// Whether `rel` (slash-separated, relative to the context) is excluded: the last matching
/// pattern decides, `!` re-includes, a matching directory excludes what is below it.
pub fn excluded(rel: &str, patterns: &[String]) -> bool {
    let mut out = false;
    for p in patterns {
        let (neg, p) = match p.strip_prefix('!') {
            Some(p) => (true, p),
            None => (false, p.as_str()),
        };
        let hit = wildcard(p, rel)
            || rel
                .char_indices()
                .filter(|(_, c)| *c == '/')
                .any(|(i, _)| wildcard(p, &rel[..i]));
        if hit {
            out = !neg;
        }
    }
    out
}

/// Go's `filepath.Match` plus `**` across directories, as `.dockerignore` uses it.
fn wildcard(pattern: &str, path: &str) -> bool {
    fn go(p: &[u8], s: &[u8]) -> bool {
        let Some((&c, rest)) = p.split_first() else {
            return s.is_empty();
        };
        match c {
            b'*' if rest.first() == Some(&b'*') => {
                let rest = rest[1..].strip_prefix(b"/").unwrap_or(&rest[1..]);
                (0..=s.len()).any(|i| go(rest, &s[i..]))
            }
            b'*' => {
                for i in 0..=s.len() {
                    if go(rest, &s[i..]) {
                        return true;
                    }
                    if s.get(i) == Some(&b'/') {
                        break;
                    }
                }
                false
            }
            b'?' => s.first().is_some_and(|&x| x != b'/') && go(rest, &s[1..]),
            _ => s.first() == Some(&c) && go(rest, &s[1..]),
        }
    }
    go(pattern.as_bytes(), path.as_bytes())
}

/// A build context as a tar, honouring `.dockerignore`. `dockerfile` outside the context is
/// added under a generated name, which is returned for the `dockerfile` parameter.
pub fn context_tar(ctx: &Path, dockerfile: Option<&Path>) -> Result<(Vec<u8>, Option<String>)> {
    let io = |op: &'static str, p: &Path, source: std::io::Error| ClientError::Io {
        op,
        path: p.to_path_buf(),
        source,
    };
    let patterns = dockerignore(ctx);
    let df_rel: Option<String> = match dockerfile {
        Some(df) => {
            let abs = if df.is_absolute() {
                df.to_path_buf()
            } else {
                std::env::current_dir()
                    .map_err(|e| io("resolve", df, e))?
                    .join(df)
            };
            let ctx_abs = ctx.canonicalize().map_err(|e| io("resolve", ctx, e))?;
            let abs = abs.canonicalize().map_err(|e| io("resolve", df, e))?;
            Some(match abs.strip_prefix(&ctx_abs) {
                Ok(r) => r.to_string_lossy().into_owned(),
                Err(_) => String::new(),
            })
        }
        None => None,
    };
    let mut b = tar::Builder::new(Vec::new());
    b.follow_symlinks(false);
    let keep = |rel: &str| {
        !excluded(rel, &patterns)
            || rel == ".dockerignore"
            || Some(rel) == df_rel.as_deref()
            || (df_rel.is_none() && rel == "Dockerfile")
    };
    let outside = df_rel.as_deref() == Some("");
    let mut stack: Vec<PathBuf> = vec![PathBuf::new()];
    while let Some(rel) = stack.pop() {
        let dir = ctx.join(&rel);
        let mut names: Vec<_> = std::fs::read_dir(&dir)
            .map_err(|e| io("list", &dir, e))?
            .filter_map(|e| e.ok().map(|e| e.file_name()))
            .collect();
        names.sort();
        for n in names {
            let r = rel.join(&n);
            let rs = r.to_string_lossy().into_owned();
            if !keep(&rs) || (outside && rs == ".dockerignore") {
                continue;
            }
            let full_path = ctx.join(&r);
            let m = std::fs::symlink_metadata(&full_path).map_err(|e| io("stat", &full_path, e))?;
            if m.is_dir() {
                b.append_dir(&r, &full_path)
                    .map_err(|e| io("add", &full_path, e))?;
                stack.push(r);
            } else {
                b.append_path_with_name(&full_path, &r)
                    .map_err(|e| io("add", &full_path, e))?;
            }
        }
    }
    let mut name = df_rel.clone().filter(|s| !s.is_empty());
    if let (Some(df), Some(rel)) = (dockerfile, &df_rel)
        && rel.is_empty()
    {
        // Outside the context: shipped under a name of its own that `.dockerignore` hides
        // from COPY, as the docker CLI does; a fixed name keeps the build cache valid.
        let generated = ".dockerfile.berth";
        b.append_path_with_name(df, generated)
            .map_err(|e| io("add", df, e))?;
        let mut ignore = std::fs::read(ctx.join(".dockerignore")).unwrap_or_default();
        ignore.extend_from_slice(format!("\n{generated}\n.dockerignore\n").as_bytes());
        let mut h = file_header(ignore.len());
        b.append_data(&mut h, ".dockerignore", &ignore[..])
            .map_err(|e| io("add", Path::new(".dockerignore"), e))?;
        name = Some(generated.to_string());
    }
    let data = b.into_inner().map_err(|e| io("finish", ctx, e))?;
    Ok((data, name))
}

/// The header of a generated regular file (root-owned, 0644, mtime 0 for a stable cache).
fn file_header(len: usize) -> tar::Header {
    let mut h = tar::Header::new_gnu();
    h.set_size(len as u64);
    h.set_mode(0o644);
    h.set_uid(0);
    h.set_gid(0);
    h.set_mtime(0);
    h.set_entry_type(tar::EntryType::Regular);
    h
}

/// A context of one Dockerfile (`docker build -` with a Dockerfile on stdin).
pub fn dockerfile_only_tar(dockerfile: &[u8]) -> Result<Vec<u8>> {
    let mut b = tar::Builder::new(Vec::new());
    let mut h = file_header(dockerfile.len());
    let io = |source| ClientError::Io {
        op: "write build context",
        path: PathBuf::from("Dockerfile"),
        source,
    };
    b.append_data(&mut h, "Dockerfile", dockerfile)
        .map_err(io)?;
    b.into_inner().map_err(io)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ignore_rules() {
        let p = vec![
            "*.log".to_string(),
            "node_modules".into(),
            "!keep.log".into(),
        ];
        assert!(excluded("a.log", &p));
        assert!(!excluded("keep.log", &p));
        assert!(excluded("node_modules/x/y.js", &p));
        assert!(!excluded("src/a.log", &p));
        assert!(excluded("src/a.log", &["**/*.log".into()]));
    }
}
