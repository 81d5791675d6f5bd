//! `watch`: follows the `develop.watch` rules of a project's services. Files under each rule's
//! path are scanned (polling, so no inotify limits and no new dependency) and, after a short
//! quiet period, changes are synced into the running containers (`sync`), followed by a restart
//! (`sync+restart`) or a command (`sync+exec`), or the image is rebuilt and the service
//! recreated (`rebuild`), or the containers restarted (`restart`).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use berth_client::Client;
use berth_client::build::excluded;
use bollard_stubs::models::ExecConfig;
use compose_spec::model::{Project, WatchAction, WatchRule};

use super::containers::{self, Select};
use super::error::{ComposeError, Context, Result};
use super::images;
use super::progress::Progress;
use super::up::{self, UpOptions};

/// How often the trees are scanned.
const POLL: Duration = Duration::from_millis(300);
/// Changes are applied once nothing changed for this long (editors write in bursts).
const QUIET: Duration = Duration::from_millis(300);

type Snapshot = BTreeMap<PathBuf, (SystemTime, u64)>;

/// One rule of one service, with its resolved host path.
struct Rule {
    service: String,
    rule: WatchRule,
    root: PathBuf,
    snapshot: Snapshot,
}

fn rel(root: &Path, p: &Path) -> String {
    p.strip_prefix(root)
        .unwrap_or(p)
        .to_string_lossy()
        .replace('\\', "/")
}

fn scan(root: &Path, ignore: &[String], include: &[String]) -> Snapshot {
    let mut out = Snapshot::new();
    let mut stack = vec![root.to_path_buf()];
    if let Ok(m) = std::fs::metadata(root)
        && m.is_file()
    {
        out.insert(
            root.to_path_buf(),
            (m.modified().unwrap_or(SystemTime::UNIX_EPOCH), m.len()),
        );
        return out;
    }
    while let Some(dir) = stack.pop() {
        let Ok(rd) = std::fs::read_dir(&dir) else {
            continue;
        };
        for e in rd.flatten() {
            let p = e.path();
            let r = rel(root, &p);
            if excluded(&r, ignore) {
                continue;
            }
            let Ok(m) = e.metadata() else {
                continue;
            };
            if m.is_dir() {
                stack.push(p);
            } else if include.is_empty()
                || include
                    .iter()
                    .any(|i| excluded(&r, std::slice::from_ref(i)))
            {
                out.insert(p, (m.modified().unwrap_or(SystemTime::UNIX_EPOCH), m.len()));
            }
        }
    }
    out
}

/// Paths changed or added, and paths removed, between two scans.
fn diff(old: &Snapshot, new: &Snapshot) -> (Vec<PathBuf>, Vec<PathBuf>) {
    let changed = new
        .iter()
        .filter(|(p, v)| old.get(*p) != Some(v))
        .map(|(p, _)| p.clone())
        .collect();
    let removed = old
        .keys()
        .filter(|p| !new.contains_key(*p))
        .cloned()
        .collect();
    (changed, removed)
}

/// The rules of the selected services.
fn rules(project: &Project, services: &[String]) -> Result<Vec<Rule>> {
    let mut out = Vec::new();
    for name in services {
        let Some(s) = project.services.get(name) else {
            continue;
        };
        let Some(dev) = &s.develop else {
            continue;
        };
        for r in &dev.watch {
            let p = Path::new(&r.path);
            let root = if p.is_absolute() {
                p.to_path_buf()
            } else {
                project.working_dir.join(p)
            };
            if matches!(r.action, WatchAction::Rebuild) && s.build.is_none() {
                return Err(ComposeError::Invalid(format!(
                    "service \"{name}\" has a rebuild watch rule but no build section"
                )));
            }
            let snapshot = scan(&root, &r.ignore, &r.include);
            out.push(Rule {
                service: name.clone(),
                rule: r.clone(),
                root,
                snapshot,
            });
        }
    }
    if out.is_empty() {
        return Err(ComposeError::Invalid(
            "none of the selected services is configured for watch, consider setting a 'develop' section".into(),
        ));
    }
    Ok(out)
}

/// A tar of `files` (host paths under `root`), named by their path relative to `root`.
fn tar_of(root: &Path, files: &[PathBuf]) -> Result<Vec<u8>> {
    let mut b = tar::Builder::new(Vec::new());
    b.follow_symlinks(false);
    for f in files {
        let name = if f == root {
            f.file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default()
        } else {
            rel(root, f)
        };
        b.append_path_with_name(f, &name)
            .map_err(|e| ComposeError::Invalid(format!("reading {}: {e}", f.display())))?;
    }
    b.into_inner()
        .map_err(|e| ComposeError::Invalid(format!("packing changed files: {e}")))
}

async fn exec(client: &Client, id: &str, cmd: Vec<String>) -> Result<()> {
    let cfg = ExecConfig {
        cmd: Some(cmd),
        attach_stdout: Some(false),
        attach_stderr: Some(false),
        ..Default::default()
    };
    let eid = client.exec_create(id, &cfg).await.ctx(|| "exec".into())?;
    client
        .exec_start_detached(&eid)
        .await
        .ctx(|| "exec start".into())?;
    // Wait for it, so a following restart does not cut it short.
    for _ in 0..600 {
        let st = client
            .exec_inspect(&eid)
            .await
            .ctx(|| "exec inspect".into())?;
        if st.running != Some(true) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    Ok(())
}

/// Applies one rule's changes.
async fn apply(
    client: &Client,
    project: &Project,
    r: &Rule,
    changed: &[PathBuf],
    removed: &[PathBuf],
    progress: &Progress,
) -> Result<()> {
    let n = changed.len() + removed.len();
    let svc = &r.service;
    let list: Vec<_> = containers::list(
        client,
        &project.name,
        Select {
            all: false,
            oneoff: false,
        },
    )
    .await?
    .into_iter()
    .filter(|c| &c.service == svc)
    .collect();
    let sync = matches!(
        r.rule.action,
        WatchAction::Sync | WatchAction::SyncRestart | WatchAction::SyncExec
    );
    if sync {
        let target = r.rule.target.clone().unwrap_or_else(|| "/".into());
        eprintln!("Syncing service \"{svc}\" after {n} changes were detected");
        // A single watched file syncs to the target path itself.
        let (dest, tar_root) = if r.root.is_file() || (changed.len() == 1 && changed[0] == r.root) {
            let parent = Path::new(&target)
                .parent()
                .map(|p| p.to_string_lossy().into_owned())
                .unwrap_or_else(|| "/".into());
            (parent, r.root.clone())
        } else {
            (target.clone(), r.root.clone())
        };
        let tar = if changed.is_empty() {
            None
        } else {
            Some(tar_of(&tar_root, changed)?)
        };
        for c in &list {
            if let Some(t) = &tar {
                // Make sure the target directory exists before unpacking into it.
                exec(
                    client,
                    &c.id,
                    vec!["mkdir".into(), "-p".into(), dest.clone()],
                )
                .await?;
                client
                    .archive_put(&c.id, &dest, Client::body_of(t.clone()), false)
                    .await
                    .ctx(|| format!("syncing files into {}", c.name))?;
            }
            if !removed.is_empty() {
                let mut cmd = vec!["rm".to_string(), "-rf".to_string()];
                for p in removed {
                    cmd.push(format!(
                        "{}/{}",
                        target.trim_end_matches('/'),
                        rel(&r.root, p)
                    ));
                }
                exec(client, &c.id, cmd).await?;
            }
        }
    }
    match r.rule.action {
        WatchAction::Sync => {}
        WatchAction::Restart | WatchAction::SyncRestart => {
            eprintln!("service \"{svc}\" restarted");
            for c in &list {
                client
                    .container_restart(&c.id, None, None)
                    .await
                    .ctx(|| format!("restarting {}", c.name))?;
            }
        }
        WatchAction::SyncExec => {
            if let Some(cmd) = r.rule.exec.as_ref().and_then(|h| h.command.clone()) {
                for c in &list {
                    exec(client, &c.id, cmd.clone()).await?;
                }
            }
        }
        WatchAction::Rebuild => {
            eprintln!("Rebuilding service \"{svc}\" after changes were detected...");
            let Some(s) = project.services.get(svc) else {
                return Ok(());
            };
            let image = images::image_name(project, s);
            images::build(client, project, s, &image, progress).await?;
            let opts = UpOptions {
                services: vec![svc.clone()],
                no_deps: true,
                start: true,
                ..UpOptions::default()
            };
            up::up(client, project, &opts, progress).await?;
            eprintln!("service \"{svc}\" successfully built");
        }
    }
    Ok(())
}

/// Watches until `stop` resolves. The project is expected to be up (the CLI runs `up` first).
pub async fn watch(
    client: &Client,
    project: &Project,
    services: &[String],
    progress: &Progress,
    stop: impl std::future::Future<Output = ()>,
) -> Result<()> {
    let selected = up::selection(project, services, true)?;
    let mut rules = rules(project, &selected)?;
    eprintln!("Watch enabled");
    tokio::pin!(stop);
    loop {
        tokio::select! {
            _ = &mut stop => return Ok(()),
            _ = tokio::time::sleep(POLL) => {}
        }
        for r in rules.iter_mut() {
            let now = scan(&r.root, &r.rule.ignore, &r.rule.include);
            if now == r.snapshot {
                continue;
            }
            // Wait for the burst to settle.
            let mut settled = now;
            loop {
                tokio::time::sleep(QUIET).await;
                let again = scan(&r.root, &r.rule.ignore, &r.rule.include);
                if again == settled {
                    break;
                }
                settled = again;
            }
            let (changed, removed) = diff(&r.snapshot, &settled);
            r.snapshot = settled;
            if let Err(e) = apply(client, project, r, &changed, &removed, progress).await {
                // A failed sync or build is reported; watching goes on, as with compose.
                progress.warn(&e.to_string());
            }
        }
    }
}
