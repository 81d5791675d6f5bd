//! The builder: runs a parsed Dockerfile's stages. FROM (scratch, images, earlier stages,
//! ARG before FROM), COPY and ADD (`--from`, `--chown`, `--chmod`, globs, `.dockerignore`,
//! local tar extraction), and the config instructions; each step's result is cached under
//! parent + instruction + content checksum of the copied files. RUN executes in a real
//! container (see [`super::run`]). Progress goes to a [`BuildOutput`] in the lines of
//! Docker's legacy builder (`Step 1/4 : ...`, ` ---> Running in ...`, ` ---> <id>`).

use super::dockerfile::{self, Command, CopyArgs, Instruction, Step};
use super::run::{RunError, RunRequest, user_db};
use super::shell_words::{process_word, process_words};
use crate::image::commit::CommitOptions;
use crate::image::digest::{Digest, Hasher};
use crate::image::snapshot::unmount_rootfs;
use crate::image::{ImageError, ImageService, ProgressSink};
use crate::state::ImageRecord;
use crate::{Error, Result};
use redb::{ReadableDatabase, TableDefinition};
use std::collections::HashMap;
use std::fs;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

/// Build cache: key (parent, instruction, content) -> image ID.
pub const BUILD_CACHE: TableDefinition<&str, &str> = TableDefinition::new("build_cache");

/// Errors of a build.
#[derive(Debug, thiserror::Error)]
pub enum BuildError {
    /// The Dockerfile does not parse.
    #[error(transparent)]
    Parse(#[from] dockerfile::ParseError),
    /// A step failed.
    #[error("step on line {line} ({instruction}): {message}")]
    Step {
        /// The line of the step.
        line: usize,
        /// The instruction as written.
        instruction: String,
        /// What went wrong.
        message: String,
    },
}

/// A receiver of output chunks.
type OutputFn = Arc<dyn Fn(&str) + Send + Sync>;

/// Receives a build's output: Docker's step lines and what RUN commands print.
#[derive(Clone, Default)]
pub struct BuildOutput(Option<OutputFn>);

impl BuildOutput {
    /// Output handed to `f`, chunk by chunk.
    pub fn new(f: impl Fn(&str) + Send + Sync + 'static) -> Self {
        Self(Some(Arc::new(f)))
    }

    /// Sends one chunk (nothing when no receiver was given).
    pub fn emit(&self, s: &str) {
        if let Some(f) = &self.0 {
            f(s)
        }
    }
}

impl std::fmt::Debug for BuildOutput {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(if self.0.is_some() {
            "BuildOutput(..)"
        } else {
            "BuildOutput(none)"
        })
    }
}

/// `docker build` options.
#[derive(Debug, Clone, Default)]
pub struct BuildOptions {
    /// The build context directory.
    pub context: PathBuf,
    /// The Dockerfile (default `<context>/Dockerfile`).
    pub dockerfile: Option<PathBuf>,
    /// `-t` references.
    pub tags: Vec<String>,
    /// `--build-arg`.
    pub build_args: HashMap<String, String>,
    /// `--target`.
    pub target: Option<String>,
    /// `--no-cache`.
    pub no_cache: bool,
    /// `--pull`: pull base images even when present.
    pub pull: bool,
    /// `--label`: labels added to the final image.
    pub labels: Vec<(String, String)>,
    /// Where progress and RUN output go.
    pub output: BuildOutput,
    /// The `berth-runtime` binary running RUN steps (default: see [`super::run::runtime_binary`]).
    pub runtime: Option<PathBuf>,
    /// Set to stop the build: the running step is killed and cleaned up.
    pub cancel: Option<Arc<AtomicBool>>,
}

/// What a build produced.
#[derive(Debug, Clone)]
pub struct BuildResult {
    /// The final image.
    pub image: ImageRecord,
    /// How many steps were served from the cache.
    pub cached_steps: usize,
    /// How many steps ran.
    pub executed_steps: usize,
}

fn step_err(s: &Step, m: impl std::fmt::Display) -> Error {
    ImageError::Build(
        BuildError::Step {
            line: s.line,
            instruction: s.original.clone(),
            message: m.to_string(),
        }
        .to_string(),
    )
    .into()
}

struct StageState {
    image: Option<ImageRecord>,
    env: Vec<(String, String)>,
    args: HashMap<String, String>,
    workdir: String,
    shell: Vec<String>,
    rt: tokio::runtime::Handle,
}

impl StageState {
    fn lookup(&self, k: &str) -> Option<String> {
        self.env
            .iter()
            .rev()
            .find(|(n, _)| n == k)
            .map(|(_, v)| v.clone())
            .or_else(|| self.args.get(k).cloned())
    }
}

impl ImageService {
    /// `docker build`. Blocking; pulls missing base images on `rt`.
    pub fn build(&self, opts: &BuildOptions, rt: &tokio::runtime::Handle) -> Result<BuildResult> {
        let df_path = opts
            .dockerfile
            .clone()
            .unwrap_or_else(|| opts.context.join("Dockerfile"));
        let src = fs::read_to_string(&df_path).map_err(|source| ImageError::Io {
            op: "read",
            path: df_path.clone(),
            source,
        })?;
        let df = dockerfile::parse(&src).map_err(|e| ImageError::Build(e.to_string()))?;
        let ignore = read_dockerignore(&opts.context);
        let esc = df.escape;

        let mut global: HashMap<String, String> = HashMap::new();
        for s in &df.global_args {
            if let Instruction::Arg(list) = &s.instruction {
                for (k, v) in list {
                    let val = opts.build_args.get(k).cloned().or_else(|| {
                        v.as_ref()
                            .and_then(|v| process_word(v, esc, &|n| global.get(n).cloned()).ok())
                    });
                    if let Some(val) = val {
                        global.insert(k.clone(), val);
                    }
                }
            }
        }
        let last = match &opts.target {
            Some(t) => df
                .stages
                .iter()
                .position(|s| s.name.as_deref() == Some(&t.to_ascii_lowercase()))
                .ok_or_else(|| {
                    ImageError::Build(format!("target stage {t:?} could not be found"))
                })?,
            None => df.stages.len() - 1,
        };
        // Tags are checked before any work, as Docker does.
        let tags = opts
            .tags
            .iter()
            .map(|t| crate::image::reference::Reference::parse(t))
            .collect::<std::result::Result<Vec<_>, _>>()?;
        let mut df = df;
        if !opts.labels.is_empty() {
            // Docker appends `--label`s to the last stage as one more LABEL step.
            let quote = |s: &str| format!("\"{}\"", s.replace('\\', "\\\\").replace('"', "\\\""));
            let kvs: Vec<(String, String)> = opts
                .labels
                .iter()
                .map(|(k, v)| (quote(k), quote(v)))
                .collect();
            let original = format!(
                "LABEL {}",
                kvs.iter()
                    .map(|(k, v)| format!("{k}={v}"))
                    .collect::<Vec<_>>()
                    .join(" ")
            );
            df.stages[last].steps.push(Step {
                line: 0,
                original,
                instruction: Instruction::Label(kvs),
            });
        }
        let out = &opts.output;
        let total = df.global_args.len()
            + df.stages[..=last]
                .iter()
                .map(|s| 1 + s.steps.len())
                .sum::<usize>();
        let mut n = 0;
        let mut announce = |s: &Step| {
            n += 1;
            out.emit(&format!("Step {n}/{total} : {}\n", s.original));
        };
        for s in &df.global_args {
            announce(s);
        }
        let mut done: Vec<Option<ImageRecord>> = Vec::new();
        let (mut cached, mut executed) = (0, 0);
        for (si, stage) in df.stages.iter().enumerate().take(last + 1) {
            let Instruction::From { image, .. } = &stage.from.instruction else {
                continue;
            };
            self.check_cancel(opts)?;
            announce(&stage.from);
            let base_name = process_word(image, esc, &|n| global.get(n).cloned())
                .map_err(|e| step_err(&stage.from, e))?;
            let base = if base_name == "scratch" {
                None
            } else if let Some(i) = df.stages[..si]
                .iter()
                .position(|s| s.name.as_deref() == Some(&base_name.to_ascii_lowercase()))
            {
                done[i].clone()
            } else {
                Some(
                    self.base_image(&base_name, opts.pull, rt)
                        .map_err(|e| step_err(&stage.from, e))?,
                )
            };
            if let Some(b) = &base {
                out.emit(&format!(" ---> {}\n", &b.id.hex()[..12]));
            }
            let mut st = StageState {
                env: base
                    .as_ref()
                    .map(|b| self.config_env(b))
                    .unwrap_or_default(),
                workdir: base
                    .as_ref()
                    .and_then(|b| self.config_field(b, "WorkingDir"))
                    .and_then(|v| v.as_str().map(str::to_string))
                    .filter(|s| !s.is_empty())
                    .unwrap_or_else(|| "/".into()),
                image: base,
                args: HashMap::new(),
                shell: vec!["/bin/sh".into(), "-c".into()],
                rt: rt.clone(),
            };
            for step in &stage.steps {
                self.check_cancel(opts)?;
                announce(step);
                let hit = self.run_step(step, &mut st, esc, opts, &global, &df, &done, &ignore)?;
                if hit {
                    cached += 1;
                } else {
                    executed += 1;
                }
            }
            done.push(st.image);
        }
        let img = match done.last().cloned().flatten() {
            Some(i) => i,
            // FROM scratch with nothing else still makes an (empty) image.
            None => self.commit(
                None,
                None,
                &CommitOptions {
                    empty_layer: true,
                    ..Default::default()
                },
            )?,
        };
        out.emit(&format!("Successfully built {}\n", &img.id.hex()[..12]));
        for t in &tags {
            let r = t.to_string();
            // A durable write costs an fsync: skip it when the tag already points here.
            if self.state.resolve_tag(&r)?.as_ref() != Some(&img.id) {
                self.state.set_tag(&r, &img.id)?;
            }
            out.emit(&format!("Successfully tagged {}\n", t.familiar()));
        }
        Ok(BuildResult {
            image: img,
            cached_steps: cached,
            executed_steps: executed,
        })
    }

    fn check_cancel(&self, opts: &BuildOptions) -> Result<()> {
        if opts
            .cancel
            .as_ref()
            .is_some_and(|c| c.load(Ordering::Relaxed))
        {
            return Err(ImageError::Build("build cancelled".into()).into());
        }
        Ok(())
    }

    fn base_image(
        &self,
        name: &str,
        pull: bool,
        rt: &tokio::runtime::Handle,
    ) -> Result<ImageRecord> {
        match self.resolve(name) {
            Ok(i) if !pull => Ok(i),
            _ => rt.block_on(self.pull(name, None, ProgressSink::none())),
        }
    }

    fn config_field(&self, img: &ImageRecord, field: &str) -> Option<serde_json::Value> {
        let b = self.store.read(&img.id).ok()?;
        let v: serde_json::Value = serde_json::from_slice(&b).ok()?;
        v.get("config")?.get(field).cloned()
    }

    fn config_env(&self, img: &ImageRecord) -> Vec<(String, String)> {
        self.config_field(img, "Env")
            .and_then(|v| serde_json::from_value::<Vec<String>>(v).ok())
            .unwrap_or_default()
            .into_iter()
            .filter_map(|e| {
                e.split_once('=')
                    .map(|(k, v)| (k.to_string(), v.to_string()))
            })
            .collect()
    }

    fn cached(&self, key: &Digest) -> Option<ImageRecord> {
        let id = self
            .state
            .database()
            .begin_read()
            .ok()?
            .open_table(BUILD_CACHE)
            .ok()?
            .get(key.as_str())
            .ok()??
            .value()
            .to_string();
        self.state.image(&Digest::parse(&id).ok()?).ok()?
    }

    fn remember(&self, key: &Digest, id: &Digest) -> Result<()> {
        self.state.write(|txn| {
            txn.open_table(BUILD_CACHE)?
                .insert(key.as_str(), id.as_str())?;
            Ok(())
        })?;
        Ok(())
    }

    /// One step; returns whether it was a cache hit.
    #[allow(clippy::too_many_arguments)]
    fn run_step(
        &self,
        step: &Step,
        st: &mut StageState,
        esc: char,
        opts: &BuildOptions,
        global: &HashMap<String, String>,
        df: &dockerfile::Dockerfile,
        done: &[Option<ImageRecord>],
        ignore: &[String],
    ) -> Result<bool> {
        let lk = |s: &StageState| {
            let env = s.env.clone();
            let args = s.args.clone();
            move |k: &str| {
                env.iter()
                    .rev()
                    .find(|(n, _)| n == k)
                    .map(|(_, v)| v.clone())
                    .or_else(|| args.get(k).cloned())
            }
        };
        let word = |s: &StageState, w: &str| -> Result<String> {
            process_word(w, esc, &lk(s)).map_err(|e| step_err(step, e))
        };
        let mut config = serde_json::Map::new();
        let mut upper: Option<tempfile::TempDir> = None;
        let mut copy: Option<(&CopyArgs, bool)> = None;
        let mut run: Option<RunRequest> = None;
        let mut content = Hasher::new();
        match &step.instruction {
            Instruction::Arg(list) => {
                for (k, v) in list {
                    let val = opts
                        .build_args
                        .get(k)
                        .cloned()
                        .or_else(|| v.as_ref().and_then(|v| process_word(v, esc, &lk(st)).ok()))
                        .or_else(|| global.get(k).cloned());
                    if let Some(val) = val {
                        st.args.insert(k.clone(), val);
                    }
                }
                return Ok(true);
            }
            Instruction::Env(kvs) => {
                for (k, v) in kvs {
                    let v = word(st, v)?;
                    st.env.retain(|(n, _)| n != k);
                    st.env.push((k.clone(), v));
                }
                config.insert(
                    "Env".into(),
                    st.env
                        .iter()
                        .map(|(k, v)| format!("{k}={v}"))
                        .collect::<Vec<_>>()
                        .into(),
                );
            }
            Instruction::Workdir(w) => {
                let w = word(st, w)?;
                st.workdir = resolve_path(&st.workdir, &w);
                config.insert("WorkingDir".into(), st.workdir.clone().into());
            }
            Instruction::User(u) => {
                config.insert("User".into(), word(st, u)?.into());
            }
            Instruction::Cmd(c) => {
                config.insert("Cmd".into(), command_json(c, &st.shell));
            }
            Instruction::Entrypoint(c) => {
                config.insert("Entrypoint".into(), command_json(c, &st.shell));
            }
            Instruction::Shell(s) => {
                st.shell = s.clone();
                config.insert("Shell".into(), s.clone().into());
            }
            Instruction::Expose(ports) => {
                let mut m = self
                    .current_field(st, "ExposedPorts")
                    .and_then(|v| v.as_object().cloned())
                    .unwrap_or_default();
                for p in ports {
                    let p = word(st, p)?;
                    let p = if p.contains('/') {
                        p
                    } else {
                        format!("{p}/tcp")
                    };
                    m.insert(p, serde_json::json!({}));
                }
                config.insert("ExposedPorts".into(), m.into());
            }
            Instruction::Volume(vs) => {
                let mut m = self
                    .current_field(st, "Volumes")
                    .and_then(|v| v.as_object().cloned())
                    .unwrap_or_default();
                for v in vs {
                    m.insert(word(st, v)?, serde_json::json!({}));
                }
                config.insert("Volumes".into(), m.into());
            }
            Instruction::Label(kvs) => {
                let mut m = self
                    .current_field(st, "Labels")
                    .and_then(|v| v.as_object().cloned())
                    .unwrap_or_default();
                for (k, v) in kvs {
                    m.insert(word(st, k)?, word(st, v)?.into());
                }
                config.insert("Labels".into(), m.into());
            }
            Instruction::StopSignal(s) => {
                config.insert("StopSignal".into(), word(st, s)?.into());
            }
            Instruction::Healthcheck(h) => {
                let test = match &h.command {
                    None => serde_json::json!(["NONE"]),
                    Some(Command::Exec(v)) => {
                        let mut t = vec!["CMD".to_string()];
                        t.extend(v.iter().cloned());
                        t.into()
                    }
                    Some(Command::Shell(s)) => serde_json::json!(["CMD-SHELL", s]),
                };
                let mut hc = serde_json::json!({"Test": test});
                for (k, v) in &h.flags {
                    let key = match k.as_str() {
                        "interval" => "Interval",
                        "timeout" => "Timeout",
                        "start-period" => "StartPeriod",
                        "start-interval" => "StartInterval",
                        "retries" => "Retries",
                        other => return Err(step_err(step, format!("unknown flag --{other}"))),
                    };
                    hc[key] = if key == "Retries" {
                        v.parse::<u64>().map_err(|e| step_err(step, e))?.into()
                    } else {
                        parse_duration_ns(v)
                            .ok_or_else(|| step_err(step, "bad duration"))?
                            .into()
                    };
                }
                config.insert("Healthcheck".into(), hc);
            }
            Instruction::Onbuild(t) => {
                let mut v = self
                    .current_field(st, "OnBuild")
                    .and_then(|v| serde_json::from_value::<Vec<String>>(v).ok())
                    .unwrap_or_default();
                v.push(t.clone());
                config.insert("OnBuild".into(), v.into());
            }
            Instruction::Maintainer(_) => {}
            Instruction::Copy(c) | Instruction::Add(c) => {
                // Hash the sources first: a cache hit copies nothing.
                let is_add = matches!(step.instruction, Instruction::Add(_));
                self.copy_into(
                    step,
                    st,
                    c,
                    is_add,
                    esc,
                    opts,
                    df,
                    done,
                    ignore,
                    Path::new("/nonexistent"),
                    &mut content,
                    true,
                )?;
                copy = Some((c, is_add));
            }
            Instruction::Run {
                command, heredocs, ..
            } => {
                if !heredocs.is_empty() {
                    return Err(step_err(step, "here-documents in RUN need BuildKit"));
                }
                let args = match command {
                    Command::Exec(v) => v.clone(),
                    Command::Shell(s) => {
                        let mut v = st.shell.clone();
                        v.push(s.clone());
                        v
                    }
                };
                // ARG values reach RUN as environment and so belong to its cache key.
                let mut arg_env: Vec<String> = st
                    .args
                    .iter()
                    .filter(|(k, _)| !st.env.iter().any(|(n, _)| n == *k))
                    .map(|(k, v)| format!("{k}={v}"))
                    .collect();
                arg_env.sort();
                for a in &arg_env {
                    content.update(a.as_bytes());
                    content.update(b"\0");
                }
                let mut env: Vec<String> = st.env.iter().map(|(k, v)| format!("{k}={v}")).collect();
                env.extend(arg_env);
                run = Some(RunRequest {
                    args,
                    env,
                    workdir: st.workdir.clone(),
                    user: self
                        .current_field(st, "User")
                        .and_then(|v| v.as_str().map(str::to_string))
                        .unwrap_or_default(),
                });
            }
            Instruction::From { .. } => return Err(step_err(step, "unexpected FROM")),
        }
        // Cache key: parent image + the instruction + the content it copies.
        let mut k = Hasher::new();
        k.update(
            st.image
                .as_ref()
                .map_or("scratch", |i| i.id.as_str())
                .as_bytes(),
        );
        k.update(b"\0");
        k.update(step.original.as_bytes());
        k.update(b"\0");
        k.update(
            serde_json::to_string(&config)
                .unwrap_or_default()
                .as_bytes(),
        );
        k.update(content.finish().as_str().as_bytes());
        let key = k.finish();
        let out = &opts.output;
        if !opts.no_cache
            && let Some(img) = self.cached(&key)
        {
            out.emit(&format!(
                " ---> Using cache\n ---> {}\n",
                &img.id.hex()[..12]
            ));
            st.image = Some(img);
            return Ok(true);
        }
        let mut run_diff = None;
        if let Some(req) = &run {
            let d = self
                .run_step_container(st.image.as_ref(), req, opts, out)
                .map_err(|e| match e {
                    RunError::NonZero { .. } | RunError::Cancelled => {
                        Error::from(ImageError::Build(e.to_string()))
                    }
                    RunError::Setup(_) => step_err(step, e),
                })?;
            run_diff = Some(d);
        }
        if let Some((c, is_add)) = copy {
            let dir = self.build_tmp().map_err(|e| step_err(step, e))?;
            let mut scratch = Hasher::new();
            self.copy_into(
                step,
                st,
                c,
                is_add,
                esc,
                opts,
                df,
                done,
                ignore,
                dir.path(),
                &mut scratch,
                false,
            )?;
            upper = Some(dir);
        }
        let layer_dir: Option<PathBuf> = match (&upper, &run_diff) {
            (Some(u), _) => Some(u.path().to_path_buf()),
            (None, Some(d)) => Some(d.upper()),
            (None, None) => None,
        };
        let img = self.commit(
            st.image.as_ref(),
            layer_dir.as_deref(),
            &CommitOptions {
                created_by: step.original.clone(),
                config,
                empty_layer: layer_dir.is_none(),
                ..Default::default()
            },
        )?;
        if let Some(d) = &run_diff {
            out.emit(&format!(
                " ---> Removed intermediate container {}\n",
                d.short_id()
            ));
        }
        out.emit(&format!(" ---> {}\n", &img.id.hex()[..12]));
        self.remember(&key, &img.id)?;
        st.image = Some(img);
        Ok(false)
    }

    /// A scratch directory under the engine root (same filesystem as the snapshots).
    pub(super) fn build_tmp(&self) -> std::io::Result<tempfile::TempDir> {
        let d = self.root.join("tmp");
        fs::create_dir_all(&d)?;
        tempfile::Builder::new().prefix("build-").tempdir_in(d)
    }

    fn current_field(&self, st: &StageState, f: &str) -> Option<serde_json::Value> {
        st.image.as_ref().and_then(|i| self.config_field(i, f))
    }

    /// Copies sources into `upper` at the destination; hashes what was copied.
    #[allow(clippy::too_many_arguments)]
    fn copy_into(
        &self,
        step: &Step,
        st: &StageState,
        c: &CopyArgs,
        is_add: bool,
        esc: char,
        opts: &BuildOptions,
        df: &dockerfile::Dockerfile,
        done: &[Option<ImageRecord>],
        ignore: &[String],
        upper: &Path,
        content: &mut Hasher,
        dry: bool,
    ) -> Result<()> {
        let lookup = |k: &str| st.lookup(k);
        let dest = process_word(&c.dest, esc, &lookup).map_err(|e| step_err(step, e))?;
        let dest_is_dir = dest.ends_with('/') || c.sources.len() > 1;
        let dest = resolve_path(&st.workdir, &dest);
        let (uid, gid) = match &c.chown {
            Some(o) => {
                let o = process_word(o, esc, &lookup).map_err(|e| step_err(step, e))?;
                match parse_chown(&o) {
                    Some(ids) => ids,
                    None => user_db(self, st.image.as_ref())
                        .chown(&o)
                        .map_err(|e| step_err(step, e))?,
                }
            }
            None => (0, 0),
        };
        let chmod = match &c.chmod {
            Some(m) => Some(
                u32::from_str_radix(m, 8)
                    .map_err(|_| step_err(step, format!("invalid --chmod {m:?}")))?,
            ),
            None => None,
        };
        // --from: a stage or an image, read through a read-only overlay mount.
        let mut _mount: Option<(tempfile::TempDir, MountedRoot)> = None;
        let root: PathBuf = match &c.from {
            Some(f) => {
                let f = process_word(f, esc, &lookup).map_err(|e| step_err(step, e))?;
                let img = match df
                    .stages
                    .iter()
                    .position(|s| s.name.as_deref() == Some(&f.to_ascii_lowercase()))
                {
                    Some(i) => done.get(i).cloned().flatten(),
                    None => match f.parse::<usize>() {
                        Ok(i) => done.get(i).cloned().flatten(),
                        Err(_) => Some(self.resolve(&f).map_err(|e| step_err(step, e))?),
                    },
                };
                let tmp = self.build_tmp().map_err(|e| step_err(step, e))?;
                let target = tmp.path().join("rootfs");
                if let Some(img) = img {
                    self.mount_rootfs(&img, &tmp.path().join("u"), &tmp.path().join("w"), &target)?;
                    _mount = Some((tmp, MountedRoot(target.clone())));
                } else {
                    fs::create_dir_all(&target).map_err(|e| step_err(step, e))?;
                    _mount = Some((tmp, MountedRoot(PathBuf::new())));
                }
                target
            }
            None => opts.context.clone(),
        };
        let dst_root = upper.join(dest.trim_start_matches('/'));
        for h in &c.heredocs {
            let body = if h.expand {
                process_word(
                    &format!("\"{}\"", h.content.replace('"', "\\\"")),
                    esc,
                    &lookup,
                )
                .unwrap_or_else(|_| h.content.clone())
            } else {
                h.content.clone()
            };
            let target = if dest_is_dir {
                dst_root.join(&h.name)
            } else {
                dst_root.clone()
            };
            write_file(
                &target,
                body.as_bytes(),
                chmod.unwrap_or(0o644),
                uid,
                gid,
                dry,
            )
            .map_err(|e| step_err(step, e))?;
            content.update(body.as_bytes());
        }
        let checksum = match &c.checksum {
            Some(w) => {
                let w = process_word(w, esc, &lookup).map_err(|e| step_err(step, e))?;
                Some(Digest::parse(&w).map_err(|_| {
                    step_err(
                        step,
                        format!("invalid checksum {w:?}: expected sha256:<64 hex digits>"),
                    )
                })?)
            }
            None => None,
        };
        let heredoc_names: Vec<&str> = c.heredocs.iter().map(|h| h.name.as_str()).collect();
        for s in &c.sources {
            if let Some(n) = s.strip_prefix("<<") {
                if heredoc_names.contains(
                    &n.trim_start_matches('-')
                        .trim_matches(|c| c == '"' || c == '\''),
                ) {
                    continue;
                }
            }
            let words = process_words(s, esc, &lookup).map_err(|e| step_err(step, e))?;
            for w in words {
                if is_add && (w.starts_with("http://") || w.starts_with("https://")) {
                    // Downloaded, never extracted; mode 0600 unless --chmod, as Docker does.
                    let (data, mtime) =
                        super::url::fetch(&st.rt, &w).map_err(|e| step_err(step, e))?;
                    if let Some(want) = &checksum {
                        let got = Digest::of(&data);
                        if &got != want {
                            return Err(step_err(
                                step,
                                format!("digest mismatch for {w}: expected {want}, got {got}"),
                            ));
                        }
                    }
                    content.update(w.as_bytes());
                    content.update(&data);
                    let target = if dest_is_dir {
                        dst_root.join(super::url::file_name(&w))
                    } else {
                        dst_root.clone()
                    };
                    write_file(&target, &data, chmod.unwrap_or(0o600), uid, gid, dry)
                        .and_then(|()| match mtime {
                            Some(t) if !dry => fs::File::options()
                                .write(true)
                                .open(&target)
                                .and_then(|f| f.set_modified(t)),
                            _ => Ok(()),
                        })
                        .map_err(|e| step_err(step, e))?;
                    continue;
                }
                if checksum.is_some() {
                    return Err(step_err(
                        step,
                        format!("checksum can't be specified for non-HTTP(S) sources: {w}"),
                    ));
                }
                let rel = w
                    .trim_start_matches('/')
                    .trim_start_matches("./")
                    .to_string();
                let matches = glob_in(&root, &rel, if c.from.is_none() { ignore } else { &[] })
                    .map_err(|e| step_err(step, e))?;
                if matches.is_empty() {
                    return Err(step_err(
                        step,
                        format!("failed to compute cache key: {w:?} not found"),
                    ));
                }
                for (src_rel, src) in matches {
                    let m = fs::symlink_metadata(&src).map_err(|e| step_err(step, e))?;
                    if m.is_dir() {
                        copy_tree(
                            &src,
                            &dst_root,
                            &src_rel,
                            ignore,
                            c.from.is_none(),
                            uid,
                            gid,
                            chmod,
                            content,
                            dry,
                        )
                        .map_err(|e| step_err(step, e))?;
                    } else if is_add && is_archive(&src) {
                        let f = fs::File::open(&src).map_err(|e| step_err(step, e))?;
                        let dec = crate::image::pull::decompressor(std::io::BufReader::new(f))
                            .map_err(|e| step_err(step, e))?;
                        let mut hr = crate::image::digest::HashingReader::new(dec);
                        if !dry {
                            fs::create_dir_all(&dst_root).map_err(|e| step_err(step, e))?;
                            crate::image::unpack::unpack_layer(&mut hr, &dst_root)?;
                        }
                        let (d, _) = hr.finish().map_err(|e| step_err(step, e))?;
                        content.update(d.as_str().as_bytes());
                    } else {
                        let name = src
                            .file_name()
                            .map(|n| n.to_os_string())
                            .unwrap_or_default();
                        let target = if dest_is_dir {
                            dst_root.join(name)
                        } else {
                            dst_root.clone()
                        };
                        copy_one(&src, &src_rel, &target, &m, uid, gid, chmod, content, dry)
                            .map_err(|e| step_err(step, e))?;
                    }
                }
            }
        }
        Ok(())
    }
}

struct MountedRoot(PathBuf);
impl Drop for MountedRoot {
    fn drop(&mut self) {
        if !self.0.as_os_str().is_empty() {
            let _ = unmount_rootfs(&self.0);
        }
    }
}

fn command_json(c: &Command, shell: &[String]) -> serde_json::Value {
    match c {
        Command::Exec(v) => v.clone().into(),
        Command::Shell(s) => {
            let mut v = shell.to_vec();
            v.push(s.clone());
            v.into()
        }
    }
}

fn resolve_path(workdir: &str, p: &str) -> String {
    let joined = if p.starts_with('/') {
        p.to_string()
    } else {
        format!("{}/{}", workdir.trim_end_matches('/'), p)
    };
    let mut parts: Vec<&str> = Vec::new();
    for c in joined.split('/') {
        match c {
            "" | "." => {}
            ".." => {
                parts.pop();
            }
            c => parts.push(c),
        }
    }
    let mut s = format!("/{}", parts.join("/"));
    if p.ends_with('/') && s != "/" {
        s.push('/');
    }
    s
}

fn parse_chown(s: &str) -> Option<(u32, u32)> {
    let (u, g) = s.split_once(':').unwrap_or((s, s));
    let id = |x: &str| if x == "root" { Some(0) } else { x.parse().ok() };
    Some((id(u)?, id(g)?))
}

fn parse_duration_ns(s: &str) -> Option<u64> {
    let (num, mult) = if let Some(n) = s.strip_suffix("ms") {
        (n, 1_000_000u64)
    } else if let Some(n) = s.strip_suffix('s') {
        (n, 1_000_000_000)
    } else if let Some(n) = s.strip_suffix('m') {
        (n, 60_000_000_000)
    } else if let Some(n) = s.strip_suffix('h') {
        (n, 3_600_000_000_000)
    } else {
        return None;
    };
    let f: f64 = num.parse().ok()?;
    Some((f * mult as f64) as u64)
}

fn is_archive(p: &Path) -> bool {
    let mut head = [0u8; 262];
    let n = fs::File::open(p)
        .and_then(|mut f| std::io::Read::read(&mut f, &mut head))
        .unwrap_or(0);
    let h = &head[..n];
    h.starts_with(&[0x1f, 0x8b])
        || h.starts_with(&[0x28, 0xb5, 0x2f, 0xfd])
        || (n >= 262 && &h[257..262] == b"ustar")
}

/// `.dockerignore` patterns (comments and blank lines dropped).
fn read_dockerignore(ctx: &Path) -> Vec<String> {
    fs::read_to_string(ctx.join(".dockerignore"))
        .unwrap_or_default()
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .map(|l| l.trim_start_matches('/').trim_end_matches('/').to_string())
        .collect()
}

/// Whether `rel` is excluded by the patterns (last match wins; `!` re-includes).
fn ignored(rel: &str, patterns: &[String]) -> bool {
    let mut out = false;
    for p in patterns {
        let (neg, p) = match p.strip_prefix('!') {
            Some(p) => (true, p),
            None => (false, p.as_str()),
        };
        // A pattern matching a directory excludes everything below it.
        let hit = glob_match(p, rel)
            || rel
                .char_indices()
                .filter(|(_, c)| *c == '/')
                .any(|(i, _)| glob_match(p, &rel[..i]));
        if hit {
            out = !neg;
        }
    }
    out
}

/// `*` and `?` within a path component, `**` across components.
pub fn glob_match(pattern: &str, path: &str) -> bool {
    fn m(p: &[u8], s: &[u8]) -> bool {
        match (p.first(), s.first()) {
            (None, None) => true,
            (Some(b'*'), _) if p.get(1) == Some(&b'*') => {
                let rest = if p.get(2) == Some(&b'/') {
                    &p[3..]
                } else {
                    &p[2..]
                };
                (0..=s.len()).any(|i| m(rest, &s[i..]))
            }
            (Some(b'*'), _) => {
                let mut i = 0;
                loop {
                    if m(&p[1..], &s[i..]) {
                        return true;
                    }
                    if i >= s.len() || s[i] == b'/' {
                        return false;
                    }
                    i += 1;
                }
            }
            (Some(b'?'), Some(c)) if *c != b'/' => m(&p[1..], &s[1..]),
            (Some(a), Some(b)) if a == b => m(&p[1..], &s[1..]),
            _ => false,
        }
    }
    m(pattern.as_bytes(), path.as_bytes())
}

/// Sources matching `rel` (globs allowed) under `root`, never escaping it.
fn glob_in(root: &Path, rel: &str, ignore: &[String]) -> std::io::Result<Vec<(String, PathBuf)>> {
    if rel.split('/').any(|c| c == "..") {
        return Err(std::io::Error::other(format!(
            "{rel:?} is outside the build context"
        )));
    }
    if rel.is_empty() || rel == "." {
        return Ok(vec![(String::new(), root.to_path_buf())]);
    }
    if !rel.contains(['*', '?']) {
        let p = root.join(rel);
        return Ok(if p.symlink_metadata().is_ok() && !ignored(rel, ignore) {
            vec![(rel.to_string(), p)]
        } else {
            vec![]
        });
    }
    let (dir, pat) = rel.rsplit_once('/').unwrap_or(("", rel));
    let mut out = Vec::new();
    let base = root.join(dir);
    let mut names: Vec<String> = match fs::read_dir(&base) {
        Ok(rd) => rd
            .filter_map(|e| e.ok())
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .collect(),
        Err(_) => vec![],
    };
    names.sort();
    for n in names {
        if glob_match(pat, &n) {
            let r = if dir.is_empty() {
                n.clone()
            } else {
                format!("{dir}/{n}")
            };
            if !ignored(&r, ignore) {
                out.push((r, base.join(&n)));
            }
        }
    }
    Ok(out)
}

fn write_file(
    target: &Path,
    data: &[u8],
    mode: u32,
    uid: u32,
    gid: u32,
    dry: bool,
) -> std::io::Result<()> {
    if dry {
        return Ok(());
    }
    if let Some(p) = target.parent() {
        fs::create_dir_all(p)?;
    }
    fs::write(target, data)?;
    std::os::unix::fs::lchown(target, Some(uid), Some(gid))?;
    fs::set_permissions(target, fs::Permissions::from_mode(mode))
}

#[allow(clippy::too_many_arguments)]
fn copy_one(
    src: &Path,
    rel: &str,
    target: &Path,
    m: &fs::Metadata,
    uid: u32,
    gid: u32,
    chmod: Option<u32>,
    content: &mut Hasher,
    dry: bool,
) -> std::io::Result<()> {
    if !dry {
        if let Some(p) = target.parent() {
            fs::create_dir_all(p)?;
        }
        let _ = fs::remove_file(target);
    }
    if m.file_type().is_symlink() {
        let l = fs::read_link(src)?;
        content.update(rel.as_bytes());
        content.update(l.as_os_str().as_encoded_bytes());
        if dry {
            return Ok(());
        }
        std::os::unix::fs::symlink(&l, target)?;
        std::os::unix::fs::lchown(target, Some(uid), Some(gid))?;
        return Ok(());
    }
    let data = fs::read(src)?;
    // The key covers the source's relative path, mode and bytes, never temporary paths.
    content.update(rel.as_bytes());
    content.update(&(m.mode() & 0o7777).to_le_bytes());
    content.update(&data);
    write_file(
        target,
        &data,
        chmod.unwrap_or(m.mode() & 0o7777),
        uid,
        gid,
        dry,
    )
}

#[allow(clippy::too_many_arguments)]
fn copy_tree(
    src: &Path,
    dst: &Path,
    rel: &str,
    ignore: &[String],
    use_ignore: bool,
    uid: u32,
    gid: u32,
    chmod: Option<u32>,
    content: &mut Hasher,
    dry: bool,
) -> std::io::Result<()> {
    if !dry {
        fs::create_dir_all(dst)?;
    }
    let mut names: Vec<_> = fs::read_dir(src)?
        .filter_map(|e| e.ok())
        .map(|e| e.file_name())
        .collect();
    names.sort();
    for n in names {
        let r = if rel.is_empty() {
            n.to_string_lossy().into_owned()
        } else {
            format!("{rel}/{}", n.to_string_lossy())
        };
        if use_ignore && ignored(&r, ignore) {
            continue;
        }
        let s = src.join(&n);
        let d = dst.join(&n);
        let m = fs::symlink_metadata(&s)?;
        if m.is_dir() {
            copy_tree(
                &s, &d, &r, ignore, use_ignore, uid, gid, chmod, content, dry,
            )?;
            if dry {
                continue;
            }
            std::os::unix::fs::lchown(&d, Some(uid), Some(gid))?;
            fs::set_permissions(
                &d,
                fs::Permissions::from_mode(chmod.unwrap_or(m.mode() & 0o7777)),
            )?;
        } else {
            copy_one(&s, &r, &d, &m, uid, gid, chmod, content, dry)?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn globs_paths_ignores() {
        assert!(glob_match("*.txt", "a.txt"));
        assert!(!glob_match("*.txt", "d/a.txt"));
        assert!(glob_match("**/*.txt", "d/e/a.txt"));
        assert!(glob_match("a?c", "abc"));
        assert!(ignored("node_modules/x/y", &["node_modules".into()]));
        assert!(!ignored("keep.md", &["*.md".into(), "!keep.md".into()]));
        assert_eq!(resolve_path("/app", "sub/"), "/app/sub/");
        assert_eq!(resolve_path("/app", "../x"), "/x");
        assert_eq!(resolve_path("/", "/abs"), "/abs");
        assert_eq!(parse_chown("1:2"), Some((1, 2)));
        assert_eq!(parse_duration_ns("1.5s"), Some(1_500_000_000));
    }
}
