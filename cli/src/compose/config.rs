//! `berth compose config`: print the canonical model as `docker compose config` (v2) does.

use std::collections::HashSet;
use std::io::Write;
use std::path::PathBuf;

use anyhow::{Context, bail};
use clap::{Args, ValueEnum};
use compose_spec::hash::service_hash;
use compose_spec::model::Project;
use compose_spec::output;

use super::ComposeArgs;
use super::project::{Switches, load, load_model};

/// Output formats.
#[derive(ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    /// YAML, as go-yaml writes it.
    Yaml,
    /// Indented JSON.
    Json,
}

/// Flags of `compose config`.
#[derive(Args, Debug, Clone)]
pub struct ConfigArgs {
    /// Format the output.
    #[arg(long, value_enum, default_value = "yaml")]
    pub format: Format,
    /// Print the service names, one per line.
    #[arg(long)]
    pub services: bool,
    /// Print the volume names, one per line.
    #[arg(long)]
    pub volumes: bool,
    /// Print the network names, one per line.
    #[arg(long)]
    pub networks: bool,
    /// Print the profile names, one per line.
    #[arg(long)]
    pub profiles: bool,
    /// Print the image names, one per line.
    #[arg(long)]
    pub images: bool,
    /// Print the service config hash, one per line ("*" for all services).
    #[arg(long, value_name = "SERVICES")]
    pub hash: Option<String>,
    /// Only validate the configuration, don't print anything.
    #[arg(short, long)]
    pub quiet: bool,
    /// Don't interpolate environment variables.
    #[arg(long)]
    pub no_interpolate: bool,
    /// Don't normalize the compose model.
    #[arg(long)]
    pub no_normalize: bool,
    /// Don't resolve file paths.
    #[arg(long)]
    pub no_path_resolution: bool,
    /// Don't check model consistency (undefined resources...).
    #[arg(long)]
    pub no_consistency: bool,
    /// Save to file (default to stdout).
    #[arg(short, long)]
    pub output: Option<PathBuf>,
    /// Services to render (and their dependencies' profiles).
    pub service_names: Vec<String>,
}

/// Run `compose config`.
pub fn run(global: &ComposeArgs, args: &ConfigArgs) -> anyhow::Result<()> {
    let sw = Switches {
        interpolate: !args.no_interpolate,
        normalize: !args.no_normalize,
        resolve_paths: !args.no_path_resolution,
        consistency: !args.no_consistency,
    };
    let listing = args.services
        || args.volumes
        || args.networks
        || args.profiles
        || args.images
        || args.hash.is_some();
    if args.no_interpolate && !listing {
        // compose prints the untyped model here: `${VAR}` may stand where a number belongs.
        let loaded = load_model(global, sw, &args.service_names)?;
        let node = output::SortedNode(&loaded.node);
        let out = match args.format {
            Format::Yaml => output::to_yaml(&node)?,
            Format::Json => output::go_html_escape(&serde_json::to_string_pretty(&node)?),
        };
        return emit_and_drop(args, out, loaded);
    }
    let mut loaded = load(global, sw, &args.service_names)?;
    // Their content is in `environment` and `labels` now; compose prints neither list.
    compose_spec::normalize::discard_env_files(&mut loaded.project);
    if !args.service_names.is_empty() {
        select_services(&mut loaded.project, &args.service_names)?;
    }
    let project = &loaded.project;
    let mut out = String::new();
    if args.services {
        for name in project.service_names() {
            out.push_str(name);
            out.push('\n');
        }
    } else if args.volumes {
        for name in sorted_keys(project.volumes.keys()) {
            out.push_str(name);
            out.push('\n');
        }
    } else if args.networks {
        for name in sorted_keys(project.networks.keys()) {
            out.push_str(name);
            out.push('\n');
        }
    } else if args.profiles {
        for p in &loaded.all_profiles {
            out.push_str(p);
            out.push('\n');
        }
    } else if args.images {
        for name in project.service_names() {
            let s = &project.services[name];
            match &s.image {
                Some(image) => out.push_str(image),
                None => out.push_str(&format!("{}-{}", project.name, name)),
            }
            out.push('\n');
        }
    } else if let Some(which) = &args.hash {
        let selected: Vec<&str> = if which == "*" {
            project.service_names()
        } else {
            which.split(',').map(str::trim).collect()
        };
        for name in selected {
            let Some(s) = project.services.get(name) else {
                bail!("no such service: {name}");
            };
            out.push_str(&format!("{name} {}\n", service_hash(s)?));
        }
    } else {
        out = match args.format {
            Format::Yaml => output::to_yaml(project)?,
            Format::Json => output::to_json(project)?,
        };
        if out.contains('$') {
            // A literal `$` left after interpolation must read back as itself.
            out = out.replace('$', "$$");
        }
    }
    emit_and_drop(args, out, loaded)
}

/// [`emit`] while another thread frees the model: a large project is hundreds of thousands of
/// small allocations, and freeing them overlaps with writing the output.
fn emit_and_drop<T: Send>(args: &ConfigArgs, out: String, loaded: T) -> anyhow::Result<()> {
    std::thread::scope(|scope| {
        scope.spawn(move || drop(loaded));
        emit(args, out)
    })
}

/// Print (or with `-o`, save) the output; `-q` prints nothing.
fn emit(args: &ConfigArgs, out: String) -> anyhow::Result<()> {
    if args.quiet {
        return Ok(());
    }
    match &args.output {
        Some(path) if !out.is_empty() => {
            std::fs::write(path, out).with_context(|| format!("writing {}", path.display()))?
        }
        _ => {
            let mut stdout = std::io::stdout().lock();
            stdout.write_all(out.as_bytes())?;
            stdout.flush()?;
        }
    }
    Ok(())
}

/// Keep the named services and, transitively, what they depend on (compose's
/// `WithSelectedServices`).
fn select_services(project: &mut Project, names: &[String]) -> anyhow::Result<()> {
    let mut keep: HashSet<String> = HashSet::new();
    let mut todo: Vec<String> = Vec::new();
    for n in names {
        if !project.services.contains_key(n) {
            bail!("no such service: {n}");
        }
        todo.push(n.clone());
    }
    while let Some(n) = todo.pop() {
        if !keep.insert(n.clone()) {
            continue;
        }
        if let Some(s) = project.services.get(&n) {
            todo.extend(
                s.depends_on
                    .keys()
                    .filter(|d| project.services.contains_key(*d))
                    .cloned(),
            );
        }
    }
    project.services.retain(|k, _| keep.contains(k));
    Ok(())
}

fn sorted_keys<'a>(keys: impl Iterator<Item = &'a String>) -> Vec<&'a str> {
    let mut v: Vec<&str> = keys.map(String::as_str).collect();
    v.sort_unstable();
    v
}
