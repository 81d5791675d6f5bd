//! The services' images: pulled or built as `pull_policy`, `build` and the command's flags say,
//! before anything is created.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use berth_client::build::{BuildParams, context_tar};
use berth_client::{Client, ClientError};
use bytes::Bytes;
use compose_spec::model::{Project, Service};
use serde_json::Value;

use super::error::{ComposeError, Context, Result};
use super::progress::{Kind, Progress};

/// `--pull` of `up`/`create` (overrides every service's `pull_policy`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum PullOverride {
    /// Follow each service's `pull_policy`.
    #[default]
    Policy,
    /// Always pull.
    Always,
    /// Pull when absent.
    Missing,
    /// Never pull.
    Never,
}

/// `--build` / `--no-build`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum BuildOverride {
    /// Build when the image is missing (or `pull_policy: build`).
    #[default]
    Policy,
    /// Build every service that has `build`.
    Always,
    /// Never build; a missing image is an error.
    Never,
}

/// The image a service runs: `image`, or `<project>-<service>` for a build without one.
pub fn image_name(project: &Project, service: &Service) -> String {
    match &service.image {
        Some(i) => i.clone(),
        None => format!("{}-{}", project.name, service.name),
    }
}

/// `repo` and `tag` (default `latest`) of a reference; a digest reference is passed whole.
fn repo_tag(image: &str) -> (&str, &str) {
    if image.contains('@') {
        return (image, "");
    }
    let (repo, tag) = berth_client::images::split_reference(image);
    (repo, tag.unwrap_or("latest"))
}

async fn image_id(client: &Client, image: &str) -> Result<Option<String>> {
    match client.image_inspect(image).await {
        Ok(v) => Ok(v.get("Id").and_then(Value::as_str).map(str::to_string)),
        Err(ClientError::Daemon { status: 404, .. }) => Ok(None),
        Err(e) => Err(e).ctx(|| format!("inspecting image {image}")),
    }
}

/// Pulls one image, reporting progress.
pub async fn pull(client: &Client, service: &str, image: &str, progress: &Progress) -> Result<()> {
    let (repo, tag) = repo_tag(image);
    progress.event(Kind::Image, image, "Pulling");
    let stream = client
        .pull(repo, tag, None, None)
        .await
        .ctx(|| format!("pulling image {image} for service {service}"))?;
    stream
        .for_each(|_| {})
        .await
        .ctx(|| format!("pulling image {image} for service {service}"))?;
    progress.event(Kind::Image, image, "Pulled");
    Ok(())
}

/// Pushes one image, reporting progress.
pub async fn push(client: &Client, service: &str, image: &str, progress: &Progress) -> Result<()> {
    let (repo, tag) = repo_tag(image);
    progress.event(Kind::Image, image, "Pushing");
    let stream = client
        .push(repo, tag, None)
        .await
        .ctx(|| format!("pushing image {image} of service {service}"))?;
    stream
        .for_each(|_| {})
        .await
        .ctx(|| format!("pushing image {image} of service {service}"))?;
    progress.event(Kind::Image, image, "Pushed");
    Ok(())
}

/// The build context directory of a service.
fn context_dir(project: &Project, service: &Service) -> PathBuf {
    let ctx = service
        .build
        .as_ref()
        .and_then(|b| b.context.clone())
        .unwrap_or_else(|| ".".into());
    let p = Path::new(&ctx);
    if p.is_absolute() {
        p.to_path_buf()
    } else {
        project.working_dir.join(p)
    }
}

/// Builds one service's image, tagging it `image`.
pub async fn build(
    client: &Client,
    project: &Project,
    service: &Service,
    image: &str,
    progress: &Progress,
) -> Result<()> {
    let Some(b) = &service.build else {
        return Err(ComposeError::Invalid(format!(
            "service \"{}\" has no build section",
            service.name
        )));
    };
    let dir = context_dir(project, service);
    progress.event(Kind::Image, image, "Building");
    let (tar, dockerfile) = if let Some(inline) = &b.dockerfile_inline {
        let mut ctx = context_tar(&dir, None).ctx(|| format!("reading {}", dir.display()))?;
        ctx.1 = Some(append_inline_dockerfile(&mut ctx.0, inline)?);
        ctx
    } else {
        let df = b.dockerfile.as_ref().map(|d| {
            let p = Path::new(d);
            if p.is_absolute() {
                p.to_path_buf()
            } else {
                dir.join(p)
            }
        });
        let (tar, name) = context_tar(&dir, df.as_deref())
            .ctx(|| format!("reading the build context {}", dir.display()))?;
        let name = name.or_else(|| b.dockerfile.clone());
        (tar, name)
    };
    let build_args = b
        .args
        .iter()
        .filter_map(|(k, v)| {
            v.clone()
                .or_else(|| project.environment.get(k).cloned())
                .map(|v| (k.clone(), v))
        })
        .collect();
    let mut tags = vec![image.to_string()];
    tags.extend(b.tags.iter().cloned());
    let params = BuildParams {
        tags,
        dockerfile,
        build_args,
        labels: b
            .labels
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect(),
        target: b.target.clone(),
        no_cache: b.no_cache,
        pull: b.pull,
        quiet: false,
        platform: service.platform.clone(),
    };
    let what = || format!("building service \"{}\"", service.name);
    let stream = client.build(Bytes::from(tar), &params).await.ctx(what)?;
    let mut log = String::new();
    let res = stream
        .for_each(|m| {
            if let Some(s) = &m.stream {
                log.push_str(s);
            }
        })
        .await;
    if let Err(e) = res {
        let tail: Vec<&str> = log.lines().rev().take(10).collect();
        let tail: Vec<&str> = tail.into_iter().rev().collect();
        return Err(ComposeError::Invalid(format!(
            "failed to build service \"{}\": {e}\n{}",
            service.name,
            tail.join("\n")
        )));
    }
    progress.event(Kind::Image, image, "Built");
    Ok(())
}

fn append_inline_dockerfile(tar_bytes: &mut Vec<u8>, content: &str) -> Result<String> {
    // A tar ends with two zero blocks; drop them, append the file, end again.
    let end = tar_bytes.len().saturating_sub(1024);
    tar_bytes.truncate(end);
    let name = ".berth-dockerfile-inline";
    let mut h = tar::Header::new_gnu();
    h.set_size(content.len() as u64);
    h.set_mode(0o644);
    h.set_cksum();
    let mut b = tar::Builder::new(Vec::new());
    b.append_data(&mut h, name, content.as_bytes())
        .map_err(|e| ComposeError::Invalid(format!("inline Dockerfile: {e}")))?;
    let extra = b
        .into_inner()
        .map_err(|e| ComposeError::Invalid(format!("inline Dockerfile: {e}")))?;
    tar_bytes.extend_from_slice(&extra);
    Ok(name.to_string())
}

/// Makes every selected service's image present; returns image IDs by service.
pub async fn ensure(
    client: &Client,
    project: &Project,
    services: &[String],
    pull_override: PullOverride,
    build_override: BuildOverride,
    progress: &Progress,
) -> Result<HashMap<String, String>> {
    let mut tasks = Vec::new();
    for name in services {
        let Some(s) = project.services.get(name) else {
            continue;
        };
        tasks.push(async move {
            let image = image_name(project, s);
            let policy = s.pull_policy.as_deref().unwrap_or("missing");
            let mut present = image_id(client, &image).await?;
            let has_build = s.build.is_some();
            // A missing image with a build section is built, unless pulling is asked for
            // first (then a failed pull falls back to the build, below).
            let pull_first = policy == "always" || pull_override == PullOverride::Always;
            let must_build = has_build
                && build_override != BuildOverride::Never
                && (build_override == BuildOverride::Always
                    || policy == "build"
                    || (present.is_none() && !pull_first));
            if must_build {
                build(client, project, s, &image, progress).await?;
            } else {
                let pull_now = match pull_override {
                    PullOverride::Always => true,
                    PullOverride::Never => false,
                    PullOverride::Missing => present.is_none(),
                    PullOverride::Policy => match policy {
                        "always" => true,
                        "never" => false,
                        p if p.starts_with("daily")
                            || p.starts_with("weekly")
                            || p.starts_with("every_") =>
                        {
                            present.is_none()
                        }
                        _ => present.is_none(),
                    },
                };
                if pull_now {
                    match pull(client, name, &image, progress).await {
                        Ok(()) => {}
                        // compose falls back to building when a pull fails and a build exists.
                        Err(_) if has_build && build_override != BuildOverride::Never => {
                            build(client, project, s, &image, progress).await?;
                        }
                        Err(e) if present.is_some() && pull_override != PullOverride::Always => {
                            progress.warn(&e.to_string());
                        }
                        Err(e) => return Err(e),
                    }
                }
            }
            present = image_id(client, &image).await?;
            match present {
                Some(id) => Ok((name.clone(), id)),
                None => Err(ComposeError::Invalid(format!(
                    "service \"{name}\": image {image} is not present{}",
                    if has_build {
                        " and --no-build was given"
                    } else {
                        " and pull_policy forbids pulling it"
                    }
                ))),
            }
        });
    }
    let results = futures_util::future::join_all(tasks).await;
    results.into_iter().collect()
}
