//! Loading a project from the global flags: the loader's merged tree, decoded, normalized and
//! checked.

use std::io::Read;

use anyhow::Context;
use compose_spec::loader::{LoadOptions, LoadedNode, load_node, load_project};
use compose_spec::model::Project;

use super::ComposeArgs;

/// What a subcommand asks of the loader.
#[derive(Clone, Copy, Debug)]
pub struct Switches {
    /// Substitute variables.
    pub interpolate: bool,
    /// Normalize the model.
    pub normalize: bool,
    /// Make relative paths absolute.
    pub resolve_paths: bool,
    /// Check references.
    pub consistency: bool,
}

/// A loaded project and what the loader had to say.
pub struct Loaded {
    /// The project.
    pub project: Project,
    /// Every profile any service names, sorted.
    pub all_profiles: Vec<String>,
}

/// The loader's options for the global flags.
fn options(args: &ComposeArgs, sw: Switches, services: &[String]) -> anyhow::Result<LoadOptions> {
    let stdin = if args.files.iter().any(|f| f.as_os_str() == "-") {
        let mut s = String::new();
        std::io::stdin()
            .read_to_string(&mut s)
            .context("reading the Compose file from standard input")?;
        Some(s)
    } else {
        None
    };
    Ok(LoadOptions {
        config_files: args.files.clone(),
        stdin,
        project_directory: args.project_directory.clone(),
        project_name: args.project_name.clone(),
        env_files: args.env_files.clone(),
        profiles: args.profiles.clone(),
        services: services.to_vec(),
        os_env: std::env::vars().collect(),
        cwd: None,
        interpolate: sw.interpolate,
        normalize: sw.normalize,
        resolve_paths: sw.resolve_paths,
        consistency: sw.consistency,
        ..LoadOptions::default()
    })
}

/// Load the merged model without typing it (`config --no-interpolate`).
pub fn load_model(
    args: &ComposeArgs,
    sw: Switches,
    services: &[String],
) -> anyhow::Result<LoadedNode> {
    let loaded = load_node(&options(args, sw, services)?)?;
    for w in &loaded.warnings {
        eprintln!("WARN[0000] {w}");
    }
    Ok(loaded)
}

/// Load the project the global flags designate.
pub fn load(args: &ComposeArgs, sw: Switches, services: &[String]) -> anyhow::Result<Loaded> {
    let opts = options(args, sw, services)?;
    let loaded = load_project(&opts)?;
    for w in &loaded.warnings {
        eprintln!("WARN[0000] {w}");
    }
    Ok(Loaded {
        project: loaded.project,
        all_profiles: loaded.all_profiles,
    })
}
