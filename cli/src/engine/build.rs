//! `berth build` (the legacy builder API, output streamed as it comes) and `berth commit`.

use anyhow::{Context, Result, bail};
use berth_client::Client;
use berth_client::build::{BuildParams, CommitParams, context_tar, dockerfile_only_tar};
use clap::Args;
use std::io::{IsTerminal, Read, Write};
use std::path::PathBuf;

/// `build` flags.
#[derive(Debug, Args)]
pub struct BuildArgs {
    /// Name and optionally a tag in the "name:tag" format.
    #[arg(short, long = "tag")]
    tag: Vec<String>,
    /// Name of the Dockerfile (default: "PATH/Dockerfile").
    #[arg(short, long)]
    file: Option<PathBuf>,
    /// Set build-time variables.
    #[arg(long = "build-arg")]
    build_arg: Vec<String>,
    /// Do not use cache when building the image.
    #[arg(long)]
    no_cache: bool,
    /// Always attempt to pull a newer version of the image.
    #[arg(long)]
    pull: bool,
    /// Set the target build stage to build.
    #[arg(long)]
    target: Option<String>,
    /// Set metadata for an image.
    #[arg(long)]
    label: Vec<String>,
    /// Suppress the build output and print image ID on success.
    #[arg(short, long)]
    quiet: bool,
    /// Set platform if server is multi-platform capable.
    #[arg(long)]
    platform: Option<String>,
    /// Write the image ID to the file.
    #[arg(long)]
    iidfile: Option<PathBuf>,
    /// PATH | - (a context tar or a Dockerfile on STDIN)
    path: String,
}

/// `KEY=VALUE`, or `KEY` taken from the environment (skipped when unset), as docker does.
fn key_values(list: &[String], from_env: bool) -> Vec<(String, String)> {
    list.iter()
        .filter_map(|s| match s.split_once('=') {
            Some((k, v)) => Some((k.to_string(), v.to_string())),
            None if from_env => std::env::var(s).ok().map(|v| (s.clone(), v)),
            None => Some((s.clone(), String::new())),
        })
        .collect()
}

fn looks_like_archive(b: &[u8]) -> bool {
    b.starts_with(&[0x1f, 0x8b])
        || b.starts_with(&[0x28, 0xb5, 0x2f, 0xfd])
        || b.starts_with(b"BZh")
        || (b.len() >= 262 && &b[257..262] == b"ustar")
}

pub async fn build(c: &Client, a: BuildArgs) -> Result<()> {
    let (context, dockerfile) = if a.path == "-" {
        if std::io::stdin().is_terminal() {
            bail!("requested build from stdin, but stdin is a terminal");
        }
        let mut buf = Vec::new();
        std::io::stdin().read_to_end(&mut buf)?;
        if looks_like_archive(&buf) {
            let df = a.file.as_ref().map(|f| f.to_string_lossy().into_owned());
            (buf, df)
        } else {
            (dockerfile_only_tar(&buf)?, None)
        }
    } else {
        let ctx = PathBuf::from(&a.path);
        if !ctx.is_dir() {
            bail!("unable to prepare context: path {:?} not found", a.path);
        }
        context_tar(&ctx, a.file.as_deref()).context("preparing the build context")?
    };
    let params = BuildParams {
        tags: a.tag,
        dockerfile,
        build_args: key_values(&a.build_arg, true),
        labels: key_values(&a.label, false),
        target: a.target,
        no_cache: a.no_cache,
        pull: a.pull,
        quiet: a.quiet,
        platform: a.platform,
    };
    let stream = c.build(context.into(), &params).await?;
    let mut id = None;
    let mut out = std::io::stdout();
    stream
        .for_each(|m| {
            if let Some(s) = &m.stream
                && !a.quiet
            {
                let _ = out.write_all(s.as_bytes());
                let _ = out.flush();
            }
            if let Some(i) = m
                .aux
                .as_ref()
                .and_then(|x| x.get("ID"))
                .and_then(|x| x.as_str())
            {
                id = Some(i.to_string());
            }
        })
        .await?;
    if a.quiet
        && let Some(i) = &id
    {
        println!("{i}");
    }
    if let (Some(f), Some(i)) = (&a.iidfile, &id) {
        std::fs::write(f, i).with_context(|| format!("write {}", f.display()))?;
    }
    Ok(())
}

/// `commit` flags.
#[derive(Debug, Args)]
pub struct CommitArgs {
    /// Author (e.g., "John Hannibal Smith <hannibal@a-team.com>").
    #[arg(short, long, default_value = "")]
    author: String,
    /// Apply Dockerfile instruction to the created image.
    #[arg(short, long)]
    change: Vec<String>,
    /// Commit message.
    #[arg(short, long, default_value = "")]
    message: String,
    /// Pause container during commit.
    #[arg(short, long, default_value_t = true, action = clap::ArgAction::Set, num_args = 0..=1, default_missing_value = "true")]
    pause: bool,
    /// CONTAINER
    container: String,
    /// [REPOSITORY[:TAG]]
    reference: Option<String>,
}

pub async fn commit(c: &Client, a: CommitArgs) -> Result<()> {
    let (repo, tag) = match a.reference.as_deref() {
        Some(r) => match r.rsplit_once(':') {
            Some((n, t)) if !t.contains('/') => (n.to_string(), t.to_string()),
            _ => (r.to_string(), String::new()),
        },
        None => (String::new(), String::new()),
    };
    let id = c
        .commit(
            &a.container,
            &CommitParams {
                repo,
                tag,
                comment: a.message,
                author: a.author,
                changes: a.change,
                pause: a.pause,
            },
        )
        .await?;
    println!("{id}");
    Ok(())
}
