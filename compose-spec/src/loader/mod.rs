//! From files on disk to one merged model, as compose v2 (`cli` options) and compose-go's
//! `loader` do it: file discovery, the project directory and name, `.env` and `COMPOSE_*`
//! variables, then per file: parse, interpolate, `include`, `extends`, merge with the files
//! before it, enforce unicity and rewrite to canonical syntax; finally resolve relative paths
//! and apply profiles.

mod extends;
mod include;
pub(crate) mod interpolate;
pub(crate) mod paths;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::rc::Rc;
use std::sync::Arc;

use indexmap::IndexMap;

use crate::error::{Error, Result};
use crate::merge::{enforce_unicity, merge};
use crate::profiles::{ProfileSelection, apply_profiles};
use crate::yaml::{Key, Location, Mapping, Node, ParseLimits, Value, parse_documents};

/// Compose file names looked for, in order, when no file is given.
pub const DEFAULT_FILE_NAMES: [&str; 4] = [
    "compose.yaml",
    "compose.yml",
    "docker-compose.yml",
    "docker-compose.yaml",
];

/// Override file names looked for next to a discovered file.
pub const DEFAULT_OVERRIDE_FILE_NAMES: [&str; 4] = [
    "compose.override.yml",
    "compose.override.yaml",
    "docker-compose.override.yml",
    "docker-compose.override.yaml",
];

/// What to load and how; mirrors `docker compose` global flags.
#[derive(Clone, Debug)]
pub struct LoadOptions {
    /// `-f` files in order; `-` reads [`LoadOptions::stdin`]. Empty: `COMPOSE_FILE` or discovery.
    pub config_files: Vec<PathBuf>,
    /// Content of standard input, for `-f -`.
    pub stdin: Option<String>,
    /// `--project-directory`.
    pub project_directory: Option<PathBuf>,
    /// `-p`.
    pub project_name: Option<String>,
    /// `--env-file` (several allowed). Empty: `COMPOSE_ENV_FILES` or `<project dir>/.env`.
    pub env_files: Vec<PathBuf>,
    /// `--profile`. Empty: `COMPOSE_PROFILES`.
    pub profiles: Vec<String>,
    /// Services named on the command line: enabled even when their profiles are not.
    pub services: Vec<String>,
    /// The process environment (passed in so that tests are hermetic).
    pub os_env: IndexMap<String, String>,
    /// The current directory; `None` reads the process's.
    pub cwd: Option<PathBuf>,
    /// Substitute `${VAR}` expressions (`--no-interpolate` clears it).
    pub interpolate: bool,
    /// Normalize the model (`--no-normalize` clears it).
    pub normalize: bool,
    /// Make relative paths absolute (`--no-path-resolution` clears it).
    pub resolve_paths: bool,
    /// Check references between services and resources (`--no-consistency` clears it).
    pub consistency: bool,
    /// Bounds on YAML parsing.
    pub limits: ParseLimits,
}

impl Default for LoadOptions {
    fn default() -> Self {
        LoadOptions {
            config_files: Vec::new(),
            stdin: None,
            project_directory: None,
            project_name: None,
            env_files: Vec::new(),
            profiles: Vec::new(),
            services: Vec::new(),
            os_env: IndexMap::new(),
            cwd: None,
            interpolate: true,
            normalize: true,
            resolve_paths: true,
            consistency: true,
            limits: ParseLimits::default(),
        }
    }
}

/// The merged model as a node tree, with what was learned while loading it.
#[derive(Clone, Debug)]
pub struct LoadedNode {
    /// The merged, canonical model; services disabled by profiles are removed.
    pub node: Node,
    /// The project name.
    pub name: String,
    /// The project directory (absolute).
    pub working_dir: PathBuf,
    /// Variables used for interpolation: the OS environment over the `.env` files.
    pub environment: IndexMap<String, String>,
    /// The Compose files loaded, in order (`-` for stdin).
    pub files: Vec<PathBuf>,
    /// Warnings for the user (unset variables, obsolete `version`...).
    pub warnings: Vec<String>,
    /// Profiles that were enabled.
    pub profiles: Vec<String>,
    /// Every profile named by any service, sorted (for `config --profiles`).
    pub all_profiles: Vec<String>,
    /// Services left out because none of their profiles is enabled.
    pub disabled_services: Mapping,
}

/// A typed project with what the loader had to say about it.
#[derive(Clone, Debug)]
pub struct LoadedProject {
    /// The project: decoded, validated, normalized and (unless disabled) checked.
    pub project: crate::model::Project,
    /// The merged tree the project was decoded from (for locations in later errors).
    pub node: Node,
    /// Warnings for the user (unset variables, obsolete `version`...).
    pub warnings: Vec<String>,
    /// Every profile named by any service, sorted (for `config --profiles`).
    pub all_profiles: Vec<String>,
}

/// Load a project: files merged, decoded into the typed model, validated, normalized, and
/// (with `consistency`) checked for undefined references and dependency cycles.
pub fn load(opts: &LoadOptions) -> Result<crate::model::Project> {
    load_project(opts).map(|l| l.project)
}

/// [`load`], keeping the warnings, the merged tree and the list of profiles.
pub fn load_project(opts: &LoadOptions) -> Result<LoadedProject> {
    use crate::model::Project;
    let loaded = load_node(opts)?;
    let mut project = Project::from_node(&loaded.node)?;
    project.name = loaded.name;
    project.working_dir = loaded.working_dir;
    project.environment = loaded.environment;
    project.compose_files = loaded.files;
    if !loaded.disabled_services.is_empty() {
        let loc = Location::synthetic();
        let mut top = Mapping::default();
        top.insert(
            Key::new("services", loc.clone()),
            Node::new(Value::Map(loaded.disabled_services), loc.clone()),
        );
        let disabled = Project::from_node(&Node::new(Value::Map(top), loc))?;
        project.disabled_services = disabled.services;
    }
    crate::validate::validate(&project, Some(&loaded.node))?;
    crate::normalize::normalize(
        &mut project,
        crate::normalize::NormalizeOptions {
            normalize: opts.normalize,
            resolve_paths: opts.resolve_paths,
        },
    )?;
    if opts.consistency {
        crate::consistency::check(&project, Some(&loaded.node))?;
        crate::graph::ServiceGraph::from_project(&project)?;
    }
    Ok(LoadedProject {
        project,
        node: loaded.node,
        warnings: loaded.warnings,
        all_profiles: loaded.all_profiles,
    })
}

/// Load a project as one merged node tree (no typed model yet).
pub fn load_node(opts: &LoadOptions) -> Result<LoadedNode> {
    let cwd = match &opts.cwd {
        Some(c) => c.clone(),
        None => std::env::current_dir().map_err(|source| Error::Read {
            path: PathBuf::from("."),
            source,
        })?,
    };
    let os_env = &opts.os_env;

    // `COMPOSE_*` variables may come from the default `.env` too (compose v2 exports them
    // before reading its flags); the OS environment wins.
    let mut compose_env = os_env.clone();
    let pre_dir = project_dir_guess(opts, &cwd);
    let pre_env_files = env_file_list(opts, os_env, &pre_dir, &cwd)?;
    if !pre_env_files.is_empty() {
        for (k, v) in read_env_files(&pre_env_files, os_env)? {
            if k.starts_with("COMPOSE_") && !compose_env.contains_key(&k) {
                compose_env.insert(k, v);
            }
        }
    }

    let mut discovery_warnings = Vec::new();
    let files = config_paths(opts, &compose_env, &cwd, &mut discovery_warnings)?;
    let working_dir = match &opts.project_directory {
        Some(d) => absolute(&cwd, d),
        None => files
            .iter()
            .find(|f| f.as_os_str() != "-")
            .and_then(|f| f.parent().map(Path::to_path_buf))
            .unwrap_or_else(|| cwd.clone()),
    };

    // The environment: OS first, then .env files for what the OS does not set.
    let mut environment = os_env.clone();
    for (k, v) in &compose_env {
        environment.entry(k.clone()).or_insert_with(|| v.clone());
    }
    let env_files = env_file_list(opts, &compose_env, &working_dir, &cwd)?;
    for (k, v) in read_env_files(&env_files, os_env)? {
        environment.entry(k).or_insert(v);
    }

    let mut loader = Loader {
        opts,
        warnings: discovery_warnings,
        unset: Vec::new(),
        extends_cache: HashMap::new(),
        next_ctx: 1,
    };

    // Parse the top-level files once: the project name may come from their `name`.
    let mut sources = Vec::with_capacity(files.len());
    for f in &files {
        sources.push(loader.read_source(f)?);
    }
    let name = project_name(opts, &environment, &working_dir, &sources, &mut loader)?;
    environment.insert("COMPOSE_PROJECT_NAME".into(), name.clone());

    let env = Rc::new(environment);
    let ctx = Ctx {
        dir: working_dir.clone(),
        env: env.clone(),
        id: 0,
    };
    let main_file = sources
        .first()
        .map(|s| s.name.to_string())
        .unwrap_or_default();
    let mut node = loader.load_model(sources, &ctx, Vec::new(), None)?;
    let top_len = node.as_map().map_or(0, Mapping::len);
    if top_len == 0 {
        return Err(Error::EmptyFile { file: main_file });
    }
    if opts.resolve_paths {
        let home = env.get("HOME").map(String::as_str);
        paths::Resolver {
            base: &working_dir,
            home,
        }
        .resolve(&mut node)?;
    }
    if opts.normalize {
        if let Some(m) = node.as_map_mut() {
            let loc = Location::synthetic();
            m.insert(
                Key::new("name", loc.clone()),
                Node::string(name.clone(), loc),
            );
        }
    }

    let mut profiles = opts.profiles.clone();
    if profiles.is_empty() {
        if let Some(p) = env.get("COMPOSE_PROFILES") {
            profiles = p
                .split(',')
                .map(|s| s.trim().to_string())
                .filter(|s| !s.is_empty())
                .collect();
        }
    }
    let ProfileSelection {
        disabled,
        all_profiles,
    } = apply_profiles(&mut node, &profiles, &opts.services)?;

    let mut warnings = std::mem::take(&mut loader.warnings);
    let mut seen = std::collections::HashSet::new();
    for v in loader.unset.drain(..) {
        if seen.insert(v.clone()) {
            warnings.push(format!(
                "The \"{v}\" variable is not set. Defaulting to a blank string."
            ));
        }
    }
    drop(loader);
    let environment = Rc::try_unwrap(env).unwrap_or_else(|rc| (*rc).clone());
    Ok(LoadedNode {
        node,
        name,
        working_dir,
        environment,
        files,
        warnings,
        profiles,
        all_profiles,
        disabled_services: disabled,
    })
}

/// The directory `.env` is looked for in before the files are known (compose v2's guess).
fn project_dir_guess(opts: &LoadOptions, cwd: &Path) -> PathBuf {
    if let Some(d) = &opts.project_directory {
        return absolute(cwd, d);
    }
    opts.config_files
        .iter()
        .find(|f| f.as_os_str() != "-")
        .and_then(|f| absolute(cwd, f).parent().map(Path::to_path_buf))
        .unwrap_or_else(|| cwd.to_path_buf())
}

fn absolute(cwd: &Path, p: &Path) -> PathBuf {
    PathBuf::from(paths::clean(&cwd.join(p)))
}

/// `--env-file`, else `COMPOSE_ENV_FILES`, else `<dir>/.env` when it exists and is not
/// disabled by `COMPOSE_DISABLE_ENV_FILE`.
fn env_file_list(
    opts: &LoadOptions,
    env: &IndexMap<String, String>,
    dir: &Path,
    cwd: &Path,
) -> Result<Vec<PathBuf>> {
    if !opts.env_files.is_empty() {
        return Ok(opts.env_files.iter().map(|f| absolute(cwd, f)).collect());
    }
    if let Some(list) = env.get("COMPOSE_ENV_FILES") {
        let files: Vec<PathBuf> = list
            .split(',')
            .filter(|s| !s.is_empty())
            .map(|f| absolute(cwd, Path::new(f)))
            .collect();
        if !files.is_empty() {
            return Ok(files);
        }
    }
    if let Some(v) = env.get("COMPOSE_DISABLE_ENV_FILE") {
        if parse_go_bool(v).ok_or_else(|| Error::Path {
            path: PathBuf::from("COMPOSE_DISABLE_ENV_FILE"),
            message: format!("invalid boolean {v:?}"),
        })? {
            return Ok(Vec::new());
        }
    }
    let dotenv = dir.join(".env");
    if dotenv.is_file() {
        return Ok(vec![dotenv]);
    }
    Ok(Vec::new())
}

/// Go's `strconv.ParseBool`.
fn parse_go_bool(v: &str) -> Option<bool> {
    match v {
        "1" | "t" | "T" | "TRUE" | "true" | "True" => Some(true),
        "0" | "f" | "F" | "FALSE" | "false" | "False" => Some(false),
        _ => None,
    }
}

/// compose-go's `GetEnvFromFile`: later files override earlier ones; `${VAR}` in a file sees
/// `current` first, then what earlier files defined.
pub(crate) fn read_env_files(
    files: &[PathBuf],
    current: &IndexMap<String, String>,
) -> Result<IndexMap<String, String>> {
    let mut out: IndexMap<String, String> = IndexMap::new();
    for f in files {
        if !f.exists() {
            return Err(Error::EnvFileNotFound { path: f.clone() });
        }
        if f.is_dir() {
            return Err(Error::Path {
                path: f.clone(),
                message: "is a directory".into(),
            });
        }
        let lookup = |k: &str| current.get(k).or_else(|| out.get(k)).cloned();
        let vars = crate::dotenv::read_file(f, &lookup)?;
        out.extend(vars);
    }
    Ok(out)
}

/// `-f` files, else `COMPOSE_FILE`, else discovery from the current (or project) directory.
fn config_paths(
    opts: &LoadOptions,
    env: &IndexMap<String, String>,
    cwd: &Path,
    warnings: &mut Vec<String>,
) -> Result<Vec<PathBuf>> {
    if !opts.config_files.is_empty() {
        return Ok(opts
            .config_files
            .iter()
            .map(|f| {
                if f.as_os_str() == "-" {
                    f.clone()
                } else {
                    absolute(cwd, f)
                }
            })
            .collect());
    }
    if let Some(list) = env.get("COMPOSE_FILE") {
        let sep = env
            .get("COMPOSE_PATH_SEPARATOR")
            .filter(|s| !s.is_empty())
            .map_or(":", String::as_str);
        let mut out = Vec::new();
        for f in list.split(sep) {
            if f == "-" {
                out.push(PathBuf::from("-"));
                continue;
            }
            let p = absolute(cwd, Path::new(f));
            if !p.exists() {
                return Err(Error::Read {
                    path: p,
                    source: std::io::Error::from(std::io::ErrorKind::NotFound),
                });
            }
            out.push(p);
        }
        return Ok(out);
    }
    let start = match &opts.project_directory {
        Some(d) => absolute(cwd, d),
        None => cwd.to_path_buf(),
    };
    let mut dir = start.clone();
    loop {
        let found = |names: &[&str]| -> Vec<PathBuf> {
            names
                .iter()
                .map(|n| dir.join(n))
                .filter(|p| p.is_file())
                .collect()
        };
        let mains = found(&DEFAULT_FILE_NAMES);
        if let Some(main) = mains.first() {
            let overrides = found(&DEFAULT_OVERRIDE_FILE_NAMES);
            for (kind, list) in [("config", &mains), ("override", &overrides)] {
                if list.len() > 1 {
                    let names: Vec<String> = list.iter().map(|p| p.display().to_string()).collect();
                    warnings.push(format!(
                        "Found multiple {kind} files with supported names: {}",
                        names.join(", ")
                    ));
                    warnings.push(format!("Using {}", names[0]));
                }
            }
            let mut out = vec![main.clone()];
            out.extend(overrides.into_iter().take(1));
            return Ok(out);
        }
        match dir.parent() {
            Some(p) => dir = p.to_path_buf(),
            None => return Err(Error::NoConfigFile { dir: start }),
        }
    }
}

/// compose-go's `NormalizeProjectName`: lowercase, keep `[a-z0-9_-]`, no leading `_`/`-`.
pub fn normalize_project_name(s: &str) -> String {
    let lower = s.to_lowercase();
    let kept: String = lower
        .chars()
        .filter(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || *c == '_' || *c == '-')
        .collect();
    kept.trim_start_matches(['_', '-']).to_string()
}

/// -p, then `COMPOSE_PROJECT_NAME`, then the last `name` of the files (interpolated), then
/// the project directory's base name.
fn project_name(
    opts: &LoadOptions,
    env: &IndexMap<String, String>,
    working_dir: &Path,
    sources: &[Source],
    loader: &mut Loader<'_>,
) -> Result<String> {
    // A `name` that is not a string is a schema error whatever sets the name.
    let mut from_file: Option<(String, Location)> = None;
    for s in sources {
        for doc in &s.docs {
            let Some(n) = doc.get("name") else { continue };
            match n.as_str() {
                Some("") => {}
                Some(t) => from_file = Some((t.to_string(), n.loc.clone())),
                None if n.is_null() => {}
                None => {
                    return Err(Error::Schema {
                        loc: n.loc.clone(),
                        message: "name must be a string".into(),
                    });
                }
            }
        }
    }
    let imperative = opts
        .project_name
        .clone()
        .filter(|n| !n.is_empty())
        .or_else(|| {
            env.get("COMPOSE_PROJECT_NAME")
                .filter(|n| !n.is_empty())
                .cloned()
        });
    if let Some(name) = imperative {
        if normalize_project_name(&name) != name {
            return Err(Error::InvalidProjectName(name));
        }
        return Ok(name);
    }
    let name = match from_file {
        Some((raw, loc)) => {
            let mut name = raw.clone();
            if opts.interpolate {
                name = interpolate::interpolate_str(&raw, env, &mut loader.unset).map_err(
                    |source| Error::Interpolation {
                        loc,
                        path: "name".into(),
                        source,
                    },
                )?;
            }
            if opts.normalize {
                name = normalize_project_name(&name);
            }
            name
        }
        None => {
            let base = working_dir
                .file_name()
                .map(|b| b.to_string_lossy().to_string())
                .unwrap_or_default();
            normalize_project_name(&base)
        }
    };
    if name.is_empty() {
        return Err(Error::EmptyProjectName);
    }
    Ok(name)
}

/// compose-go's `ResolveEnvironment`: `environment: [VAR]` entries take their value from the
/// project's variables, per project (an included project sees its own `.env`).
fn resolve_environment(root: &mut Node, env: &IndexMap<String, String>) {
    let Some(services) = root
        .as_map_mut()
        .and_then(|m| m.get_mut("services"))
        .and_then(Node::as_map_mut)
    else {
        return;
    };
    for service in services.values_mut() {
        let Some(Value::Seq(items)) = service
            .as_map_mut()
            .and_then(|m| m.get_mut("environment"))
            .map(|e| &mut e.value)
        else {
            continue;
        };
        for item in items.iter_mut() {
            let Some(name) = item.as_str() else { continue };
            if name.contains('=') {
                continue;
            }
            if let Some(v) = env.get(name) {
                let text = format!("{name}={v}");
                item.value = Value::Scalar(crate::yaml::Scalar::string(text));
            }
        }
    }
}

/// A parsed Compose file.
pub(crate) struct Source {
    /// Name used in messages and include-cycle detection (absolute path or `-`).
    name: Arc<str>,
    /// Its documents.
    docs: Vec<Node>,
}

/// The project a file belongs to: the main one or an included one.
pub(crate) struct Ctx {
    /// Absolute directory relative paths in the file are read against.
    dir: PathBuf,
    /// Variables for interpolation.
    env: Rc<IndexMap<String, String>>,
    /// Distinguishes include contexts in the `extends` cache (their variables differ).
    id: usize,
}

pub(crate) struct Loader<'a> {
    opts: &'a LoadOptions,
    warnings: Vec<String>,
    unset: Vec<String>,
    /// Services of files read for `extends: {file: ...}`, so each is read once.
    extends_cache: HashMap<(PathBuf, usize), Mapping>,
    next_ctx: usize,
}

/// Which steps [`Loader::load_file`] runs: extended files skip includes and extends.
#[derive(Clone, Copy)]
pub(crate) struct Steps {
    include: bool,
    extends: bool,
}

impl Loader<'_> {
    fn read_source(&mut self, path: &Path) -> Result<Source> {
        let (name, text): (Arc<str>, String) = if path.as_os_str() == "-" {
            (Arc::from("-"), self.opts.stdin.clone().unwrap_or_default())
        } else {
            let text = std::fs::read_to_string(path).map_err(|source| Error::Read {
                path: path.to_path_buf(),
                source,
            })?;
            (Arc::from(path.to_string_lossy().as_ref()), text)
        };
        let docs = parse_documents(&text, &name, self.opts.limits)?;
        Ok(Source { name, docs })
    }

    /// compose-go's `loadYamlModel`: the files of one project merged in order; with `rel`,
    /// relative paths are then resolved against it (included projects).
    fn load_model(
        &mut self,
        sources: Vec<Source>,
        ctx: &Ctx,
        included: Vec<String>,
        rel: Option<&Path>,
    ) -> Result<Node> {
        let mut dict = Node::map(Location::synthetic());
        for source in sources {
            let mut included = included.clone();
            dict = self.load_file(
                source,
                ctx,
                dict,
                &mut included,
                Steps {
                    include: true,
                    extends: true,
                },
            )?;
        }
        crate::transform::set_defaults(&mut dict);
        if let Some(rel) = rel {
            let home = ctx.env.get("HOME").cloned();
            paths::Resolver {
                base: rel,
                home: home.as_deref(),
            }
            .resolve(&mut dict)?;
        }
        resolve_environment(&mut dict, &ctx.env);
        Ok(dict)
    }

    /// compose-go's `loadYamlFile`: each document of `source` processed and merged into `dict`.
    fn load_file(
        &mut self,
        source: Source,
        ctx: &Ctx,
        mut dict: Node,
        included: &mut Vec<String>,
        steps: Steps,
    ) -> Result<Node> {
        let file = source.name.clone();
        for mut doc in source.docs {
            if !matches!(doc.value, Value::Map(_)) {
                return Err(Error::NotAMapping { loc: doc.loc });
            }
            if self.opts.interpolate {
                interpolate::interpolate(&mut doc, &ctx.env, &mut self.unset)?;
            }
            if steps.include {
                included.push(file.to_string());
                self.apply_include(&mut doc, ctx, included)?;
            }
            if steps.extends {
                self.apply_extends(&mut doc, &file, ctx)?;
            }
            dict = merge(dict, doc)?;
            enforce_unicity(&mut dict)?;
            if let Some(m) = dict.as_map_mut() {
                if m.shift_remove("version").is_some() {
                    let w = format!(
                        "{file}: the attribute `version` is obsolete, it will be ignored, please remove it to avoid potential confusion"
                    );
                    if !self.warnings.contains(&w) {
                        self.warnings.push(w);
                    }
                }
            }
            crate::transform::canonical(&mut dict, !self.opts.interpolate)?;
            enforce_unicity(&mut dict)?;
        }
        Ok(dict)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn project_names_normalize_like_compose() {
        assert_eq!(normalize_project_name("My Project.1"), "myproject1");
        assert_eq!(normalize_project_name("__x-y"), "x-y");
        assert_eq!(normalize_project_name("ÄBC"), "bc");
    }
}
