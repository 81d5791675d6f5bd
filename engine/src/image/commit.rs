//! Commit: the diff of a container's upper directory becomes a new layer on top of its image
//! (`docker commit`, and each filesystem step of a build).

use super::archive::rfc3339_now;
use super::digest::{Digest, HashingWriter};
use super::reference::Reference;
use super::registry::{MEDIA_OCI_CONFIG, MEDIA_OCI_LAYER_GZIP, MEDIA_OCI_MANIFEST};
use super::snapshot::diff_to_tar;
use super::{ImageError, ImageService, Platform};
use crate::state::ImageRecord;
use crate::{Error, Result};
use std::fs::File;
use std::io::Write;
use std::path::Path;

/// What `commit` records besides the layer.
#[derive(Debug, Clone, Default)]
pub struct CommitOptions {
    /// The history entry's `created_by` (the build instruction, or the container command).
    pub created_by: String,
    /// The history entry's comment (`docker commit -m`).
    pub comment: Option<String>,
    /// The image author (`docker commit -a`).
    pub author: Option<String>,
    /// Fields merged into the config's `config` object (`Env`, `Cmd`, `WorkingDir`, ...).
    pub config: serde_json::Map<String, serde_json::Value>,
    /// Record only config and history, without a layer (ENV, CMD, ... in a build).
    pub empty_layer: bool,
    /// Tag the result with this reference.
    pub reference: Option<String>,
}

fn io_err<'a>(op: &'static str, path: &'a Path) -> impl FnOnce(std::io::Error) -> Error + 'a {
    move |source| {
        ImageError::Io {
            op,
            path: path.to_path_buf(),
            source,
        }
        .into()
    }
}

impl ImageService {
    /// Makes a new image from `base` (none: from scratch) plus the content of `upper`
    /// (an overlay upper directory; whiteouts become OCI whiteouts). Blocking.
    pub fn commit(
        &self,
        base: Option<&ImageRecord>,
        upper: Option<&Path>,
        opts: &CommitOptions,
    ) -> Result<ImageRecord> {
        let _writer = self.gc_lock.blocking_read();
        let tag = opts
            .reference
            .as_deref()
            .map(Reference::parse)
            .transpose()?;
        let mut cfg: serde_json::Value = match base {
            Some(b) => serde_json::from_slice(&self.store.read(&b.id)?).map_err(|e| {
                ImageError::BadConfig {
                    digest: b.id.clone(),
                    reason: e.to_string(),
                }
            })?,
            None => {
                let p = Platform::host();
                serde_json::json!({
                    "architecture": p.architecture, "os": p.os, "config": {},
                    "rootfs": {"type": "layers", "diff_ids": []}, "history": [],
                })
            }
        };
        let mut layers: Vec<Digest> = base
            .map(|b| b.layers.iter().map(|l| l.digest.clone()).collect())
            .unwrap_or_default();
        let now = rfc3339_now();

        if !opts.empty_layer {
            let upper =
                upper.ok_or_else(|| ImageError::Task("commit without a layer directory".into()))?;
            let (blob, diff_id) = self.write_layer(upper)?;
            layers.push(blob);
            let ids = cfg["rootfs"]["diff_ids"].as_array_mut();
            match ids {
                Some(ids) => ids.push(diff_id.to_string().into()),
                None => {
                    cfg["rootfs"] = serde_json::json!({"type": "layers", "diff_ids": [diff_id]});
                }
            }
        }
        let obj = cfg
            .as_object_mut()
            .ok_or_else(|| ImageError::Task("base config is not an object".into()))?;
        obj.insert("created".into(), now.clone().into());
        if let Some(a) = &opts.author {
            obj.insert("author".into(), a.clone().into());
        }
        let c = obj.entry("config").or_insert_with(|| serde_json::json!({}));
        if !c.is_object() {
            *c = serde_json::json!({});
        }
        if let Some(c) = c.as_object_mut() {
            for (k, v) in &opts.config {
                c.insert(k.clone(), v.clone());
            }
        }
        let mut h = serde_json::json!({"created": now, "created_by": opts.created_by});
        if let Some(m) = &opts.comment {
            h["comment"] = m.clone().into();
        }
        if opts.empty_layer {
            h["empty_layer"] = true.into();
        }
        match obj.get_mut("history").and_then(|v| v.as_array_mut()) {
            Some(hist) => hist.push(h),
            None => {
                obj.insert("history".into(), serde_json::json!([h]));
            }
        }
        let cfg_bytes = serde_json::to_vec(&cfg).map_err(|e| ImageError::Task(e.to_string()))?;
        let cfg_d = self.store.write_blob(&cfg_bytes, None)?;

        let mut descs = Vec::new();
        for (i, d) in layers.iter().enumerate() {
            let mt = base
                .and_then(|b| b.layers.get(i))
                .map(|l| l.media_type.clone())
                .unwrap_or_else(|| MEDIA_OCI_LAYER_GZIP.to_string());
            descs.push(
                serde_json::json!({"mediaType": mt, "digest": d, "size": self.store.size(d)?}),
            );
        }
        let manifest = serde_json::json!({
            "schemaVersion": 2, "mediaType": MEDIA_OCI_MANIFEST,
            "config": {"mediaType": MEDIA_OCI_CONFIG, "digest": cfg_d, "size": cfg_bytes.len()},
            "layers": descs,
        });
        let mbytes = serde_json::to_vec(&manifest).map_err(|e| ImageError::Task(e.to_string()))?;
        let rec =
            self.register_image(&cfg_d, &layers, Some((Digest::of(&mbytes), mbytes.clone())))?;
        self.store.write_blob(&mbytes, Some(&rec.manifest_digest))?;
        let tags: Vec<String> = tag.iter().map(|t| t.to_string()).collect();
        self.state.put_image(&rec, &tags)?;
        Ok(rec)
    }

    /// Writes the diff of `upper` as a gzip layer blob; returns (blob digest, diff ID).
    fn write_layer(&self, upper: &Path) -> Result<(Digest, Digest)> {
        let tmp = self
            .root
            .join("ingest")
            .join(super::store::unique_tmp_name("tmp"));
        let res = (|| -> Result<(Digest, Digest)> {
            let f = File::create(&tmp).map_err(io_err("create", &tmp))?;
            let gz =
                flate2::write::GzEncoder::new(HashingWriter::new(f), flate2::Compression::fast());
            let tar_w = HashingWriter::new(gz);
            let tar_w = diff_to_tar(upper, tar_w)?;
            let (gz, diff_id, _) = tar_w.finish();
            let hw = gz.finish().map_err(io_err("compress", &tmp))?;
            let (mut f, blob, _) = hw.finish();
            f.flush().map_err(io_err("write", &tmp))?;
            f.sync_all().map_err(io_err("fsync", &tmp))?;
            if !self.store.contains(&blob) {
                std::fs::rename(&tmp, self.store.blob_path(&blob))
                    .map_err(io_err("rename", &tmp))?;
            }
            Ok((blob, diff_id))
        })();
        let _ = std::fs::remove_file(&tmp);
        res
    }
}

/// Instructions `docker import -c` and `docker commit -c` accept.
const CHANGE_COMMANDS: &[&str] = &[
    "CMD",
    "ENTRYPOINT",
    "ENV",
    "EXPOSE",
    "HEALTHCHECK",
    "LABEL",
    "ONBUILD",
    "STOPSIGNAL",
    "USER",
    "VOLUME",
    "WORKDIR",
];

impl ImageService {
    /// Applies Dockerfile `changes` (`CMD ["sh"]`, `ENV A=b`, ...) and a history `message`
    /// on top of `img`, as `docker import -c/-m` does; tags the result with `reference`.
    /// Blocking.
    pub fn apply_changes(
        &self,
        img: &ImageRecord,
        changes: &[String],
        message: Option<&str>,
        reference: Option<&str>,
        rt: &tokio::runtime::Handle,
    ) -> Result<ImageRecord> {
        let mut df = format!("FROM {}\n", img.id);
        for c in changes {
            let c = c.trim();
            if c.is_empty() {
                continue;
            }
            let word = c
                .split_whitespace()
                .next()
                .unwrap_or_default()
                .to_ascii_uppercase();
            if !CHANGE_COMMANDS.contains(&word.as_str()) {
                return Err(
                    ImageError::Build(format!("{word} is not a valid change command")).into(),
                );
            }
            df.push_str(c);
            df.push('\n');
        }
        let ctx = self.build_context_dir()?;
        let dockerfile = ctx.path().join("Dockerfile");
        std::fs::write(&dockerfile, df).map_err(io_err("write", &dockerfile))?;
        let built = self.build(
            &super::build::builder::BuildOptions {
                context: ctx.path().to_path_buf(),
                ..Default::default()
            },
            rt,
        )?;
        let mut out = built.image;
        if let Some(m) = message.filter(|m| !m.is_empty()) {
            out = self.commit(
                Some(&out),
                None,
                &CommitOptions {
                    comment: Some(m.to_string()),
                    empty_layer: true,
                    ..Default::default()
                },
            )?;
        }
        if let Some(r) = reference {
            self.state
                .set_tag(&Reference::parse(r)?.to_string(), &out.id)?;
        }
        Ok(out)
    }

    /// An empty directory under the engine root for a build context; removed on drop.
    pub fn build_context_dir(&self) -> Result<tempfile::TempDir> {
        let d = self.root.join("tmp");
        std::fs::create_dir_all(&d).map_err(io_err("create", &d))?;
        tempfile::Builder::new()
            .prefix("context-")
            .tempdir_in(&d)
            .map_err(|e| io_err("create", &d)(e))
    }
}
