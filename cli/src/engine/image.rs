//! `pull`, `push`, `images`, `image ...`, `history`, `tag`, `rmi`, `load`, `save`, `import`.

use super::format::{Row, ago, human_size, print_rows, render_value};
use super::system::auth_for;
use anyhow::{Context, Result, bail};
use berth_client::{Client, JsonMessage, JsonStream};
use clap::{Args, Subcommand};
use indicatif::{MultiProgress, ProgressBar, ProgressStyle};
use std::collections::HashMap;
use std::io::{IsTerminal, Read, Write};

/// Shows a JSON progress stream: bars per layer on a terminal, plain lines otherwise.
struct Progress {
    multi: Option<MultiProgress>,
    bars: HashMap<String, ProgressBar>,
    last: HashMap<String, String>,
    quiet: bool,
}

impl Progress {
    fn new(quiet: bool) -> Self {
        let tty = std::io::stdout().is_terminal() && !quiet;
        Self {
            multi: tty.then(MultiProgress::new),
            bars: HashMap::new(),
            last: HashMap::new(),
            quiet,
        }
    }

    fn show(&mut self, m: &JsonMessage) {
        if self.quiet {
            return;
        }
        let status = m.status.clone().unwrap_or_default();
        let Some(id) = m.id.clone() else {
            if !status.is_empty() {
                match &self.multi {
                    Some(mp) => {
                        let _ = mp.println(&status);
                    }
                    None => println!("{status}"),
                }
            }
            return;
        };
        match &self.multi {
            Some(mp) => {
                let bar = self.bars.entry(id.clone()).or_insert_with(|| {
                    let b = mp.add(ProgressBar::new(0));
                    b.set_style(
                        ProgressStyle::with_template(
                            "{prefix}: {msg:<16} [{bar:40}] {bytes}/{total_bytes}",
                        )
                        .unwrap_or_else(|_| ProgressStyle::default_bar())
                        .progress_chars("=> "),
                    );
                    b.set_prefix(id.clone());
                    b
                });
                if let Some(d) = &m.progress_detail
                    && let (Some(c), Some(t)) = (d.current, d.total)
                {
                    bar.set_length(t);
                    bar.set_position(c);
                }
                bar.set_message(status.clone());
                if status.contains("complete")
                    || status.contains("exists")
                    || status == "Pushed"
                    || status.starts_with("Mounted")
                {
                    bar.finish();
                }
            }
            None => {
                // Plain output: one line per state change, no byte counts.
                if m.progress_detail
                    .as_ref()
                    .is_some_and(|d| d.total.is_some())
                {
                    return;
                }
                if self.last.get(&id) != Some(&status) {
                    println!("{id}: {status}");
                    self.last.insert(id, status);
                }
            }
        }
    }
}

async fn follow(stream: JsonStream, quiet: bool) -> Result<Vec<JsonMessage>> {
    let mut p = Progress::new(quiet);
    let mut all = Vec::new();
    stream
        .for_each(|m| {
            p.show(m);
            all.push(m.clone());
        })
        .await?;
    Ok(all)
}

/// Splits `name[:tag|@digest]` into the image and the tag or digest.
fn split_ref(s: &str) -> (String, Option<String>) {
    let (n, t) = berth_client::images::split_reference(s);
    (n.to_string(), t.map(str::to_string))
}

/// `pull` flags.
#[derive(Debug, Args)]
pub struct PullArgs {
    /// Suppress verbose output.
    #[arg(short, long)]
    quiet: bool,
    /// Set platform if server is multi-platform capable.
    #[arg(long)]
    platform: Option<String>,
    /// NAME[:TAG|@DIGEST]
    name: String,
}

pub async fn pull(c: &Client, a: PullArgs) -> Result<()> {
    let (image, tag) = split_ref(&a.name);
    let tag = match tag {
        Some(t) => t,
        None => {
            if !a.quiet {
                println!("Using default tag: latest");
            }
            "latest".into()
        }
    };
    let auth = auth_for(&image);
    let s = c
        .pull(&image, &tag, a.platform.as_deref(), auth.as_ref())
        .await?;
    follow(s, a.quiet).await?;
    let sep = if tag.contains(':') { '@' } else { ':' };
    println!("{image}{sep}{tag}");
    Ok(())
}

/// `push` flags.
#[derive(Debug, Args)]
pub struct PushArgs {
    /// Suppress verbose output.
    #[arg(short, long)]
    quiet: bool,
    /// NAME[:TAG]
    name: String,
}

pub async fn push(c: &Client, a: PushArgs) -> Result<()> {
    let (image, tag) = split_ref(&a.name);
    let tag = match tag {
        Some(t) => t,
        None => {
            if !a.quiet {
                println!("Using default tag: latest");
            }
            "latest".into()
        }
    };
    let auth = auth_for(&image);
    let s = c.push(&image, &tag, auth.as_ref()).await?;
    follow(s, a.quiet).await?;
    if a.quiet {
        println!("{image}:{tag}");
    }
    Ok(())
}

/// `images` flags.
#[derive(Debug, Args)]
pub struct ImagesArgs {
    /// Show all images (default hides intermediate images).
    #[arg(short, long)]
    all: bool,
    /// Only show image IDs.
    #[arg(short, long)]
    quiet: bool,
    /// Show digests.
    #[arg(long)]
    digests: bool,
    /// Don't truncate output.
    #[arg(long)]
    no_trunc: bool,
    /// Filter output based on conditions provided (key=value).
    #[arg(short, long = "filter")]
    filter: Vec<String>,
    /// Format output using a template ('table', 'table TEMPLATE', 'json', or 'TEMPLATE').
    #[arg(long)]
    format: Option<String>,
    /// [REPOSITORY[:TAG]]
    reference: Option<String>,
}

/// Docker's map-form filters from `key=value` flags.
pub fn filters_json(flags: &[String], extra: &[(&str, String)]) -> Result<Option<String>> {
    let mut m: serde_json::Map<String, serde_json::Value> = serde_json::Map::new();
    let mut add = |k: &str, v: &str| {
        let e = m
            .entry(k.to_string())
            .or_insert_with(|| serde_json::json!({}));
        if let Some(o) = e.as_object_mut() {
            o.insert(v.to_string(), serde_json::Value::Bool(true));
        }
    };
    for f in flags {
        let (k, v) = f
            .split_once('=')
            .with_context(|| format!("bad format of filter (expected name=value): {f}"))?;
        add(k, v);
    }
    for (k, v) in extra {
        add(k, v);
    }
    Ok((!m.is_empty()).then(|| serde_json::Value::Object(m).to_string()))
}

fn short(id: &str, no_trunc: bool) -> String {
    if no_trunc {
        id.to_string()
    } else {
        id.trim_start_matches("sha256:").chars().take(12).collect()
    }
}

pub async fn images(c: &Client, a: ImagesArgs) -> Result<()> {
    let extra: Vec<(&str, String)> = a
        .reference
        .iter()
        .map(|r| ("reference", r.clone()))
        .collect();
    let f = filters_json(&a.filter, &extra)?;
    let list = c.images(a.all, f.as_deref()).await?;
    let mut rows = Vec::new();
    for img in &list {
        let mut refs: Vec<(String, String)> = img
            .repo_tags
            .iter()
            .filter_map(|t| {
                t.rsplit_once(':')
                    .map(|(r, t)| (r.to_string(), t.to_string()))
            })
            .collect();
        if refs.is_empty() {
            refs = img
                .repo_digests
                .iter()
                .filter_map(|d| {
                    d.split_once('@')
                        .map(|(r, _)| (r.to_string(), "<none>".into()))
                })
                .collect();
        }
        if refs.is_empty() {
            refs.push(("<none>".into(), "<none>".into()));
        }
        for (repo, tag) in refs {
            let digest = img
                .repo_digests
                .iter()
                .find(|d| d.starts_with(&format!("{repo}@")))
                .and_then(|d| d.split_once('@').map(|(_, x)| x.to_string()))
                .unwrap_or_else(|| "<none>".into());
            let mut r = Row::new();
            r.insert("ID", short(&img.id, a.no_trunc));
            r.insert("Repository", repo);
            r.insert("Tag", tag);
            r.insert("Digest", digest);
            r.insert("CreatedSince", ago(img.created));
            r.insert("CreatedAt", img.created.to_string());
            r.insert("Size", human_size(img.size as f64));
            rows.push(r);
        }
    }
    if a.quiet {
        let mut seen = std::collections::HashSet::new();
        for r in &rows {
            if seen.insert(r["ID"].clone()) {
                println!("{}", r["ID"]);
            }
        }
        return Ok(());
    }
    let mut cols = vec![("REPOSITORY", "Repository"), ("TAG", "Tag")];
    if a.digests {
        cols.push(("DIGEST", "Digest"));
    }
    cols.extend([
        ("IMAGE ID", "ID"),
        ("CREATED", "CreatedSince"),
        ("SIZE", "Size"),
    ]);
    let fmt = a
        .format
        .as_deref()
        .map(|f| if f == "json" { "{{json .}}" } else { f });
    print_rows(&rows, &cols, fmt);
    Ok(())
}

/// `image` subcommands.
#[derive(Debug, Subcommand)]
pub enum ImageCommand {
    /// Display detailed information on one or more images.
    Inspect(InspectArgs),
    /// Remove unused images.
    Prune(PruneArgs),
    /// List images.
    #[command(alias = "list")]
    Ls(ImagesArgs),
    /// Remove one or more images.
    #[command(alias = "remove")]
    Rm(RmiArgs),
    /// Download an image from a registry.
    Pull(PullArgs),
    /// Upload an image to a registry.
    Push(PushArgs),
    /// Show the history of an image.
    History(HistoryArgs),
    /// Create a tag TARGET_IMAGE that refers to SOURCE_IMAGE.
    Tag(TagArgs),
    /// Load an image from a tar archive or STDIN.
    Load(LoadArgs),
    /// Save one or more images to a tar archive.
    Save(SaveArgs),
    /// Import the contents from a tarball to create a filesystem image.
    Import(ImportArgs),
}

pub async fn image(c: &Client, cmd: ImageCommand) -> Result<()> {
    match cmd {
        ImageCommand::Inspect(a) => inspect(c, a).await,
        ImageCommand::Prune(a) => prune(c, a).await,
        ImageCommand::Ls(a) => images(c, a).await,
        ImageCommand::Rm(a) => rmi(c, a).await,
        ImageCommand::Pull(a) => pull(c, a).await,
        ImageCommand::Push(a) => push(c, a).await,
        ImageCommand::History(a) => history(c, a).await,
        ImageCommand::Tag(a) => tag(c, a).await,
        ImageCommand::Load(a) => load(c, a).await,
        ImageCommand::Save(a) => save(c, a).await,
        ImageCommand::Import(a) => import(c, a).await,
    }
}

/// `image inspect` flags.
#[derive(Debug, Args)]
pub struct InspectArgs {
    /// Format output using a custom template.
    #[arg(short, long)]
    format: Option<String>,
    /// IMAGE...
    #[arg(required = true)]
    names: Vec<String>,
}

pub async fn inspect(c: &Client, a: InspectArgs) -> Result<()> {
    let mut out = Vec::new();
    let mut failed = None;
    for n in &a.names {
        match c.image_inspect(n).await {
            Ok(v) => out.push(v),
            Err(e) if e.is_not_found() => {
                failed = Some(format!("Error: No such image: {n}"));
            }
            Err(e) => return Err(e.into()),
        }
    }
    match &a.format {
        Some(f) => {
            for v in &out {
                println!("{}", render_value(f, v));
            }
        }
        None => println!("{}", serde_json::to_string_pretty(&out)?),
    }
    if let Some(e) = failed {
        bail!(e);
    }
    Ok(())
}

/// `image prune` flags.
#[derive(Debug, Args)]
pub struct PruneArgs {
    /// Remove all unused images, not just dangling ones.
    #[arg(short, long)]
    all: bool,
    /// Do not prompt for confirmation.
    #[arg(short, long)]
    force: bool,
    /// Provide filter values (e.g. "until=<timestamp>").
    #[arg(long = "filter")]
    filter: Vec<String>,
}

pub async fn prune(c: &Client, a: PruneArgs) -> Result<()> {
    if !a.force {
        let warning = if a.all {
            "WARNING! This will remove all images without at least one container associated to them."
        } else {
            "WARNING! This will remove all dangling images."
        };
        if !super::container::confirm(warning)? {
            return Ok(());
        }
    }
    let extra = if a.all {
        vec![("dangling", "false".to_string())]
    } else {
        vec![]
    };
    let f = filters_json(&a.filter, &extra)?;
    let r = c.images_prune(f.as_deref()).await?;
    let items = r.images_deleted.unwrap_or_default();
    if !items.is_empty() {
        println!("Deleted Images:");
        for i in items {
            if let Some(u) = i.untagged {
                println!("untagged: {u}");
            }
            if let Some(d) = i.deleted {
                println!("deleted: {d}");
            }
        }
        println!();
    }
    println!(
        "Total reclaimed space: {}",
        human_size(r.space_reclaimed.unwrap_or(0) as f64)
    );
    Ok(())
}

/// `history` flags.
#[derive(Debug, Args)]
pub struct HistoryArgs {
    /// Print sizes and dates in human readable format.
    #[arg(long, default_value_t = true, action = clap::ArgAction::Set)]
    human: bool,
    /// Don't truncate output.
    #[arg(long)]
    no_trunc: bool,
    /// Only show image IDs.
    #[arg(short, long)]
    quiet: bool,
    /// Format output using a custom template.
    #[arg(long)]
    format: Option<String>,
    /// IMAGE
    name: String,
}

pub async fn history(c: &Client, a: HistoryArgs) -> Result<()> {
    let h = c.image_history(&a.name).await?;
    if a.quiet {
        for i in &h {
            println!(
                "{}",
                if i.id == "<missing>" {
                    i.id.clone()
                } else {
                    short(&i.id, a.no_trunc)
                }
            );
        }
        return Ok(());
    }
    let rows: Vec<Row> = h
        .iter()
        .map(|i| {
            let mut r = Row::new();
            let id = if i.id == "<missing>" {
                i.id.clone()
            } else {
                short(&i.id, a.no_trunc)
            };
            r.insert("ID", id);
            r.insert(
                "CreatedSince",
                if a.human {
                    ago(i.created)
                } else {
                    i.created.to_string()
                },
            );
            let by = if a.no_trunc || i.created_by.chars().count() <= 45 {
                i.created_by.clone()
            } else {
                format!("{}…", i.created_by.chars().take(44).collect::<String>())
            };
            r.insert("CreatedBy", by);
            r.insert(
                "Size",
                if a.human {
                    human_size(i.size as f64)
                } else {
                    i.size.to_string()
                },
            );
            r.insert("Comment", i.comment.clone());
            r
        })
        .collect();
    print_rows(
        &rows,
        &[
            ("IMAGE", "ID"),
            ("CREATED", "CreatedSince"),
            ("CREATED BY", "CreatedBy"),
            ("SIZE", "Size"),
            ("COMMENT", "Comment"),
        ],
        a.format.as_deref(),
    );
    Ok(())
}

/// `tag` arguments.
#[derive(Debug, Args)]
pub struct TagArgs {
    /// SOURCE_IMAGE[:TAG]
    source: String,
    /// TARGET_IMAGE[:TAG]
    target: String,
}

pub async fn tag(c: &Client, a: TagArgs) -> Result<()> {
    let (repo, t) = split_ref(&a.target);
    c.image_tag(&a.source, &repo, t.as_deref().unwrap_or("latest"))
        .await?;
    Ok(())
}

/// `rmi` flags.
#[derive(Debug, Args)]
pub struct RmiArgs {
    /// Force removal of the image.
    #[arg(short, long)]
    force: bool,
    /// Do not delete untagged parents.
    #[arg(long)]
    no_prune: bool,
    /// IMAGE...
    #[arg(required = true)]
    names: Vec<String>,
}

pub async fn rmi(c: &Client, a: RmiArgs) -> Result<()> {
    let mut errors = Vec::new();
    for n in &a.names {
        match c.image_remove(n, a.force, a.no_prune).await {
            Ok(items) => {
                for i in items {
                    if let Some(u) = i.untagged {
                        println!("Untagged: {u}");
                    }
                    if let Some(d) = i.deleted {
                        println!("Deleted: {d}");
                    }
                }
            }
            Err(e) => errors.push(e.to_string()),
        }
    }
    if !errors.is_empty() {
        bail!(errors.join("\n"));
    }
    Ok(())
}

/// `load` flags.
#[derive(Debug, Args)]
pub struct LoadArgs {
    /// Read from tar archive file, instead of STDIN.
    #[arg(short, long)]
    input: Option<std::path::PathBuf>,
    /// Suppress the load output.
    #[arg(short, long)]
    quiet: bool,
}

fn read_input(path: Option<&std::path::Path>) -> Result<Vec<u8>> {
    let mut buf = Vec::new();
    match path {
        Some(p) if p.as_os_str() != "-" => {
            buf = std::fs::read(p).with_context(|| format!("read {}", p.display()))?;
        }
        _ => {
            if std::io::stdin().is_terminal() {
                bail!("requested load from stdin, but stdin is empty");
            }
            std::io::stdin().read_to_end(&mut buf)?;
        }
    }
    Ok(buf)
}

pub async fn load(c: &Client, a: LoadArgs) -> Result<()> {
    let data = read_input(a.input.as_deref())?;
    let s = c.load(data.into(), a.quiet).await?;
    let msgs = follow(s, true).await?;
    for m in msgs {
        if let Some(st) = m.stream.or(m.status) {
            print!("{st}");
            if !st.ends_with('\n') {
                println!();
            }
        }
    }
    Ok(())
}

/// `save` flags.
#[derive(Debug, Args)]
pub struct SaveArgs {
    /// Write to a file, instead of STDOUT.
    #[arg(short, long)]
    output: Option<std::path::PathBuf>,
    /// IMAGE...
    #[arg(required = true)]
    names: Vec<String>,
}

pub async fn save(c: &Client, a: SaveArgs) -> Result<()> {
    if a.output.is_none() && std::io::stdout().is_terminal() {
        bail!("cowardly refusing to save to a terminal. Use the -o flag or redirect");
    }
    let data = c.save(&a.names).await?;
    match &a.output {
        Some(p) => std::fs::write(p, &data).with_context(|| format!("write {}", p.display()))?,
        None => std::io::stdout().write_all(&data)?,
    }
    Ok(())
}

/// `import` flags.
#[derive(Debug, Args)]
pub struct ImportArgs {
    /// Apply Dockerfile instruction to the created image.
    #[arg(short, long)]
    change: Vec<String>,
    /// Set commit message for imported image.
    #[arg(short, long, default_value = "")]
    message: String,
    /// file|URL|-
    file: std::path::PathBuf,
    /// [REPOSITORY[:TAG]]
    reference: Option<String>,
}

pub async fn import(c: &Client, a: ImportArgs) -> Result<()> {
    let data = read_input(Some(&a.file))?;
    let (repo, tag) = a.reference.as_deref().map(split_ref).unwrap_or_default();
    let s = c
        .import(
            data.into(),
            &repo,
            tag.as_deref().unwrap_or(""),
            &a.message,
            &a.change,
        )
        .await?;
    let msgs = follow(s, true).await?;
    if let Some(st) = msgs.iter().rev().find_map(|m| m.status.clone()) {
        println!("{st}");
    }
    Ok(())
}
