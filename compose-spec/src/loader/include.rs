//! `include`: other Compose projects loaded with their own project directory and `.env`, and
//! their resources imported into the including file (compose-go's `ApplyInclude`).

use std::path::{Path, PathBuf};
use std::rc::Rc;

use super::paths::{join, relative};
use super::{Ctx, Loader, read_env_files};
use crate::error::{Error, Result};
use crate::merge::merge_at;
use crate::merge::path::TreePath;
use crate::yaml::{Node, Value};

/// One `include` entry in long form.
struct Include {
    paths: Vec<String>,
    project_directory: Option<String>,
    env_files: Vec<String>,
}

fn strings(node: &Node, path: &str) -> Result<Vec<String>> {
    match &node.value {
        Value::Scalar(_) => Ok(vec![crate::merge::go_text(node)]),
        Value::Seq(items) => items
            .iter()
            .map(|i| {
                i.as_str()
                    .map(str::to_string)
                    .ok_or_else(|| Error::Invalid {
                        loc: i.loc.clone(),
                        path: path.to_string(),
                        message: format!("must be a string, got {}", i.kind_name()),
                    })
            })
            .collect(),
        Value::Null => Ok(Vec::new()),
        Value::Map(_) => Err(Error::Invalid {
            loc: node.loc.clone(),
            path: path.to_string(),
            message: "must be a string or a list of strings, got mapping".into(),
        }),
    }
}

fn parse_entry(node: &Node, i: usize) -> Result<Include> {
    let path = format!("include[{i}]");
    match &node.value {
        Value::Scalar(_) => Ok(Include {
            paths: strings(node, &path)?,
            project_directory: None,
            env_files: Vec::new(),
        }),
        Value::Map(m) => {
            let paths = match m.get("path") {
                Some(p) => strings(p, &format!("{path}.path"))?,
                None => Vec::new(),
            };
            if paths.is_empty() {
                return Err(Error::Invalid {
                    loc: node.loc.clone(),
                    path,
                    message: "path is required".into(),
                });
            }
            let project_directory = m
                .get("project_directory")
                .and_then(Node::as_str)
                .map(str::to_string);
            let env_files = match m.get("env_file") {
                Some(e) => strings(e, &format!("{path}.env_file"))?,
                None => Vec::new(),
            };
            Ok(Include {
                paths,
                project_directory,
                env_files,
            })
        }
        _ => Err(Error::Invalid {
            loc: node.loc.clone(),
            path,
            message: format!("invalid type {} for include", node.kind_name()),
        }),
    }
}

impl Loader<'_> {
    /// Load every `include` of `doc` and import its resources; `include` is then removed.
    pub(super) fn apply_include(
        &mut self,
        doc: &mut Node,
        ctx: &Ctx,
        included: &[String],
    ) -> Result<()> {
        let Some(map) = doc.as_map_mut() else {
            return Ok(());
        };
        let Some(inc) = map.shift_remove("include") else {
            return Ok(());
        };
        let entries = match &inc.value {
            Value::Seq(items) => items,
            Value::Null => return Ok(()),
            _ => {
                return Err(Error::Invalid {
                    loc: inc.loc.clone(),
                    path: "include".into(),
                    message: format!("`include` must be a list, got {}", inc.kind_name()),
                });
            }
        };
        for (i, entry) in entries.iter().enumerate() {
            let entry = parse_entry(entry, i)?;
            let files: Vec<PathBuf> = entry
                .paths
                .iter()
                .map(|p| PathBuf::from(join(&ctx.dir, p)))
                .collect();
            let main = &files[0];
            let main_dir = main.parent().map(Path::to_path_buf).unwrap_or_default();
            let dir = match &entry.project_directory {
                None => main_dir,
                Some(pd) => PathBuf::from(join(&ctx.dir, pd)),
            };
            let main_name = main.to_string_lossy().to_string();
            if included.contains(&main_name) {
                let mut chain = included.to_vec();
                chain.push(main_name);
                return Err(Error::IncludeCycle { chain });
            }

            let env_files: Vec<PathBuf> = if entry.env_files.is_empty() {
                let f = dir.join(".env");
                if f.is_file() { vec![f] } else { Vec::new() }
            } else {
                entry
                    .env_files
                    .iter()
                    .filter(|f| f.as_str() != "/dev/null")
                    .map(|f| PathBuf::from(join(&ctx.dir, f)))
                    .collect()
            };
            let mut env = (*ctx.env).clone();
            for (k, v) in read_env_files(&env_files, &ctx.env)? {
                env.entry(k).or_insert(v);
            }
            let rel = relative(&ctx.dir, &dir);
            let id = self.next_ctx;
            self.next_ctx += 1;
            let inner = Ctx {
                dir,
                env: Rc::new(env),
                id,
            };
            let mut sources = Vec::with_capacity(files.len());
            for f in &files {
                sources.push(self.read_source(f)?);
            }
            let imported = self.load_model(sources, &inner, included.to_vec(), Some(&rel))?;
            import_resources(imported, doc)?;
        }
        Ok(())
    }
}

/// Add the included project's services, networks, volumes, secrets, configs and models; a
/// resource defined on both sides is merged, the including file's definition winning.
fn import_resources(imported: Node, target: &mut Node) -> Result<()> {
    let Value::Map(source) = imported.value else {
        return Ok(());
    };
    let Some(target) = target.as_map_mut() else {
        return Ok(());
    };
    for (key, from) in source {
        if !matches!(
            key.name.as_str(),
            "services" | "volumes" | "networks" | "secrets" | "configs" | "models"
        ) {
            continue;
        }
        let Value::Map(from) = from.value else {
            continue;
        };
        let to = target
            .entry(key.clone())
            .or_insert_with(|| Node::map(key.loc.clone()));
        if to.is_null() {
            *to = Node::map(key.loc.clone());
        }
        let Some(to) = to.as_map_mut() else {
            continue;
        };
        for (name, res) in from {
            match to.get_index_of(name.name.as_str()) {
                None => {
                    to.insert(name, res);
                }
                Some(i) => {
                    let local = std::mem::replace(&mut to[i], Node::map(res.loc.clone()));
                    let mut path = TreePath::from_segments(&[&key.name, &name.name]);
                    to[i] = merge_at(res, local, &mut path)?;
                }
            }
        }
    }
    Ok(())
}
