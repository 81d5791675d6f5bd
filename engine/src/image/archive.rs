//! Image archives. `save` writes one tar that is both a `docker save` archive
//! (`manifest.json`, `repositories`) and an OCI image layout (`oci-layout`, `index.json`,
//! `blobs/sha256/`), as Docker 25+ does; `load` reads either (and legacy `<id>/layer.tar`
//! docker archives); `import` turns a rootfs tar into a one-layer image.

use super::digest::{Digest, HashingReader, HashingWriter, chain_id};
use super::pull::{decompressor, parse_config};
use super::reference::Reference;
use super::registry::{
    MEDIA_OCI_CONFIG, MEDIA_OCI_INDEX, MEDIA_OCI_LAYER, MEDIA_OCI_LAYER_GZIP, MEDIA_OCI_MANIFEST,
};
use super::unpack::unpack_layer;
use super::{ImageService, Platform};
use crate::state::{ImageRecord, LayerRecord};
use crate::{Error, Result};
use std::collections::HashMap;
use std::fs::File;
use std::io::{self, BufReader, Read, Write};
use std::path::{Path, PathBuf};

/// Errors reading or writing image archives.
#[derive(Debug, thiserror::Error)]
pub enum ArchiveError {
    /// A file operation failed.
    #[error("archive: {op} {path}: {source}")]
    Io {
        /// What was being done.
        op: &'static str,
        /// The path.
        path: PathBuf,
        /// The cause.
        source: io::Error,
    },
    /// The archive is not a docker-archive nor an OCI layout, or is inconsistent.
    #[error("invalid image archive: {0}")]
    Invalid(String),
}

fn aio<'a>(op: &'static str, path: &'a Path) -> impl FnOnce(io::Error) -> Error + 'a {
    move |source| {
        ArchiveError::Io {
            op,
            path: path.to_path_buf(),
            source,
        }
        .into()
    }
}

fn invalid(s: impl Into<String>) -> Error {
    ArchiveError::Invalid(s.into()).into()
}

/// Small JSON files of an archive are read into memory; larger entries never are.
const MAX_JSON: u64 = 16 << 20;

#[derive(serde::Deserialize)]
#[serde(rename_all = "PascalCase")]
struct DockerManifestEntry {
    config: String,
    #[serde(default)]
    repo_tags: Option<Vec<String>>,
    layers: Vec<String>,
}

impl ImageService {
    /// `docker save`: writes the images `names` to `w`.
    pub fn save(&self, names: &[String], w: impl Write) -> Result<()> {
        let mut b = tar::Builder::new(w);
        let mut written = std::collections::HashSet::new();
        let mut docker_manifest = Vec::new();
        let mut index = Vec::new();
        let mut repositories: HashMap<String, HashMap<String, String>> = HashMap::new();
        let tmp = Path::new("archive");
        for name in names {
            let img = self.resolve(name)?;
            let tag = Reference::parse(name).ok().filter(|r| {
                r.tag().is_some()
                    && r.digest().is_none()
                    && self
                        .tags_of(&img.id)
                        .map(|t| t.contains(&r.to_string()))
                        .unwrap_or(false)
            });
            let mut blobs = vec![img.id.clone(), img.manifest_digest.clone()];
            blobs.extend(img.layers.iter().map(|l| l.digest.clone()));
            for d in blobs {
                if !written.insert(d.clone()) {
                    continue;
                }
                let f = self.store.open_blob(&d)?;
                let size = self.store.size(&d)?;
                let mut h = tar::Header::new_ustar();
                h.set_size(size);
                h.set_mode(0o444);
                h.set_entry_type(tar::EntryType::Regular);
                b.append_data(&mut h, format!("blobs/sha256/{}", d.hex()), f)
                    .map_err(aio("write", tmp))?;
            }
            let mut annotations = serde_json::Map::new();
            if let Some(r) = &tag {
                annotations.insert("io.containerd.image.name".into(), r.to_string().into());
                annotations.insert(
                    "org.opencontainers.image.ref.name".into(),
                    r.tag().unwrap_or("latest").into(),
                );
                let repo = r.familiar();
                let repo = repo
                    .rsplit_once(':')
                    .map_or(repo.as_str(), |(n, _)| n)
                    .to_string();
                repositories.entry(repo).or_default().insert(
                    r.tag().unwrap_or("latest").to_string(),
                    img.id.hex().to_string(),
                );
            }
            index.push(serde_json::json!({
                "mediaType": img.manifest_media_type,
                "digest": img.manifest_digest,
                "size": self.store.size(&img.manifest_digest)?,
                "annotations": annotations,
            }));
            docker_manifest.push(serde_json::json!({
                "Config": format!("blobs/sha256/{}", img.id.hex()),
                "RepoTags": tag.iter().map(|r| r.familiar()).collect::<Vec<_>>(),
                "Layers": img.layers.iter().map(|l| format!("blobs/sha256/{}", l.digest.hex())).collect::<Vec<_>>(),
            }));
        }
        let files: [(&str, Vec<u8>); 4] = [
            ("oci-layout", br#"{"imageLayoutVersion":"1.0.0"}"#.to_vec()),
            (
                "index.json",
                serde_json::to_vec(&serde_json::json!({
                    "schemaVersion": 2, "mediaType": MEDIA_OCI_INDEX, "manifests": index,
                }))
                .map_err(|e| invalid(e.to_string()))?,
            ),
            (
                "manifest.json",
                serde_json::to_vec(&docker_manifest).map_err(|e| invalid(e.to_string()))?,
            ),
            (
                "repositories",
                serde_json::to_vec(&repositories).map_err(|e| invalid(e.to_string()))?,
            ),
        ];
        for (name, data) in files {
            let mut h = tar::Header::new_ustar();
            h.set_size(data.len() as u64);
            h.set_mode(0o644);
            h.set_entry_type(tar::EntryType::Regular);
            b.append_data(&mut h, name, &data[..])
                .map_err(aio("write", tmp))?;
        }
        b.into_inner()
            .map_err(aio("finish", tmp))?
            .flush()
            .map_err(aio("flush", tmp))?;
        Ok(())
    }

    /// `docker load`: reads a docker-archive or OCI layout tar (optionally compressed);
    /// returns the loaded images with the references they were tagged with. Blocking.
    pub fn load(&self, r: impl Read) -> Result<Vec<(ImageRecord, Vec<String>)>> {
        let _writer = self.gc_lock.blocking_read();
        let tmp = Path::new("archive");
        let dec =
            decompressor(BufReader::with_capacity(256 * 1024, r)).map_err(aio("read", tmp))?;
        let mut ar = tar::Archive::new(dec);
        let mut by_path: HashMap<String, Digest> = HashMap::new();
        let mut json: HashMap<String, Vec<u8>> = HashMap::new();
        for e in ar.entries().map_err(aio("read", tmp))? {
            let mut e = e.map_err(aio("read", tmp))?;
            if e.header().entry_type() != tar::EntryType::Regular {
                continue;
            }
            let path = super::unpack::sanitize(&e.path().map_err(aio("read", tmp))?)?
                .to_string_lossy()
                .into_owned();
            if matches!(
                path.as_str(),
                "manifest.json" | "index.json" | "repositories" | "oci-layout"
            ) && e.size() <= MAX_JSON
            {
                let mut v = Vec::new();
                e.read_to_end(&mut v)
                    .map_err(aio("read", Path::new(&path)))?;
                json.insert(path, v);
                continue;
            }
            // Every other file is content: blobs are verified against their names, legacy
            // layer.tar files are stored under the digest of what they contain.
            let named = path
                .strip_prefix("blobs/sha256/")
                .and_then(|h| Digest::parse(&format!("sha256:{h}")).ok());
            let d = match named {
                Some(d) if self.store.contains(&d) => {
                    io::copy(&mut e, &mut io::sink()).map_err(aio("read", Path::new(&path)))?;
                    d
                }
                Some(d) => self.store.ingest(&d)?.write_all_from(&mut e, None)?,
                None => self.store_unnamed(&mut e, &path)?,
            };
            by_path.insert(path, d);
        }

        let mut out = Vec::new();
        if let Some(m) = json.get("manifest.json") {
            let entries: Vec<DockerManifestEntry> =
                serde_json::from_slice(m).map_err(|e| invalid(format!("manifest.json: {e}")))?;
            for ent in entries {
                let cfg = by_path
                    .get(&ent.config)
                    .ok_or_else(|| invalid(format!("missing {}", ent.config)))?
                    .clone();
                let layers = ent
                    .layers
                    .iter()
                    .map(|l| {
                        by_path
                            .get(l)
                            .cloned()
                            .ok_or_else(|| invalid(format!("missing {l}")))
                    })
                    .collect::<Result<Vec<_>>>()?;
                let tags: Vec<String> = ent
                    .repo_tags
                    .unwrap_or_default()
                    .iter()
                    .filter_map(|t| Reference::parse(t).ok().map(|r| r.to_string()))
                    .collect();
                let rec = self.register_image(&cfg, &layers, None)?;
                self.state.put_image(&rec, &tags)?;
                out.push((rec, tags));
            }
        } else if let Some(idx) = json.get("index.json") {
            let idx: oci_spec::image::ImageIndex =
                serde_json::from_slice(idx).map_err(|e| invalid(format!("index.json: {e}")))?;
            for desc in idx.manifests() {
                let mut md = Digest::try_from(desc.digest()).map_err(|e| invalid(e.to_string()))?;
                let mut bytes = self.store.read(&md)?;
                let mt = super::registry::detect_manifest_type(&bytes, None).map_err(invalid)?;
                if mt == MEDIA_OCI_INDEX || mt == super::registry::MEDIA_DOCKER_LIST {
                    let inner: oci_spec::image::ImageIndex =
                        serde_json::from_slice(&bytes).map_err(|e| invalid(e.to_string()))?;
                    md = super::pull::choose_platform(&inner, &Platform::host(), md.as_str())?;
                    bytes = self.store.read(&md)?;
                }
                let (cfg, layers) = super::pull::manifest_parts(&bytes, md.as_str())?;
                let layer_ds: Vec<Digest> = layers.into_iter().map(|l| l.0).collect();
                let mut rec = self.register_image(&cfg.0, &layer_ds, Some((md.clone(), bytes)))?;
                let ann = desc.annotations().clone().unwrap_or_default();
                let name = ann
                    .get("io.containerd.image.name")
                    .or_else(|| ann.get("org.opencontainers.image.ref.name"))
                    .and_then(|n| Reference::parse(n).ok());
                let tags: Vec<String> = name.iter().map(|r| r.to_string()).collect();
                rec.repo_digests.clear();
                self.state.put_image(&rec, &tags)?;
                out.push((rec, tags));
            }
        } else {
            return Err(invalid("neither manifest.json nor index.json found"));
        }
        Ok(out)
    }

    fn store_unnamed(&self, r: &mut impl Read, path: &str) -> Result<Digest> {
        // The digest is known only at the end: spool to a temp file in the store's ingest.
        let dir = self.root.join("ingest");
        let tmp = dir.join(super::store::unique_tmp_name("tmp"));
        let res = (|| -> Result<Digest> {
            let f = File::create(&tmp).map_err(aio("create", &tmp))?;
            let mut hw = HashingWriter::new(f);
            io::copy(r, &mut hw).map_err(aio("read", Path::new(path)))?;
            let (f, d, _) = hw.finish();
            f.sync_all().map_err(aio("fsync", &tmp))?;
            if !self.store.contains(&d) {
                std::fs::rename(&tmp, self.store.blob_path(&d)).map_err(aio("rename", &tmp))?;
            }
            Ok(d)
        })();
        let _ = std::fs::remove_file(&tmp);
        res
    }

    /// Unpacks the layers of a config into snapshots (verifying diff IDs) and builds the
    /// image record, writing an OCI manifest when the archive had none.
    pub(crate) fn register_image(
        &self,
        cfg_d: &Digest,
        layers: &[Digest],
        manifest: Option<(Digest, Vec<u8>)>,
    ) -> Result<ImageRecord> {
        let cfg_bytes = self.store.read(cfg_d)?;
        let cfg = parse_config(&cfg_bytes, cfg_d)?;
        if cfg.rootfs.diff_ids.len() != layers.len() {
            return Err(invalid(format!(
                "config {cfg_d} has {} diff IDs for {} layers",
                cfg.rootfs.diff_ids.len(),
                layers.len()
            )));
        }
        let mut recs = Vec::new();
        let mut parent: Option<Digest> = None;
        for (d, diff_id) in layers.iter().zip(&cfg.rootfs.diff_ids) {
            let c = chain_id(parent.as_ref(), diff_id);
            parent = Some(c.clone());
            let diff_size = self.ensure_snapshot(d, diff_id, &c)?;
            let mut head = [0u8; 4];
            let n = self.store.open_blob(d)?.read(&mut head).unwrap_or(0);
            let media_type = if head[..n].starts_with(&[0x1f, 0x8b]) {
                MEDIA_OCI_LAYER_GZIP
            } else if head[..n].starts_with(&[0x28, 0xb5, 0x2f, 0xfd]) {
                super::registry::MEDIA_OCI_LAYER_ZSTD
            } else {
                MEDIA_OCI_LAYER
            };
            recs.push(LayerRecord {
                digest: d.clone(),
                media_type: media_type.to_string(),
                size: self.store.size(d)?,
                diff_id: diff_id.clone(),
                chain_id: c,
                diff_size,
            });
        }
        let (md, mt) = match manifest {
            Some((md, bytes)) => {
                let mt = super::registry::detect_manifest_type(&bytes, None).map_err(invalid)?;
                (md, mt)
            }
            None => {
                let m = serde_json::json!({
                    "schemaVersion": 2,
                    "mediaType": MEDIA_OCI_MANIFEST,
                    "config": {"mediaType": MEDIA_OCI_CONFIG, "digest": cfg_d, "size": cfg_bytes.len()},
                    "layers": recs.iter().map(|l| serde_json::json!({
                        "mediaType": l.media_type, "digest": l.digest, "size": l.size,
                    })).collect::<Vec<_>>(),
                });
                let bytes = serde_json::to_vec(&m).map_err(|e| invalid(e.to_string()))?;
                (
                    self.store.write_blob(&bytes, None)?,
                    MEDIA_OCI_MANIFEST.to_string(),
                )
            }
        };
        Ok(ImageRecord {
            id: cfg_d.clone(),
            manifest_digest: md,
            manifest_media_type: mt,
            repo_digests: vec![],
            size: recs.iter().map(|l| l.diff_size).sum(),
            layers: recs,
            created: cfg.created,
        })
    }

    /// Unpacks a stored layer blob into its snapshot unless present; returns its
    /// uncompressed size.
    fn ensure_snapshot(&self, blob: &Digest, diff_id: &Digest, chain: &Digest) -> Result<u64> {
        if self.snapshots.exists(chain) {
            // A committed snapshot was verified when it was made.
            return Ok(self
                .known_diff_sizes()?
                .get(chain)
                .copied()
                .unwrap_or_default());
        }
        let f = self.store.open_blob(blob)?;
        let path = self.store.blob_path(blob);
        let dec =
            decompressor(BufReader::with_capacity(256 * 1024, f)).map_err(aio("read", &path))?;
        let mut hr = HashingReader::new(dec);
        let pending = if self.snapshots.exists(chain) {
            None
        } else {
            let p = self.snapshots.prepare()?;
            unpack_layer(&mut hr, p.path())?;
            Some(p)
        };
        let (d, n) = hr.finish().map_err(aio("read", &path))?;
        if d != *diff_id {
            return Err(super::ImageError::DiffIdMismatch {
                layer: blob.clone(),
                expected: diff_id.clone(),
                actual: d,
            }
            .into());
        }
        if let Some(p) = pending {
            p.commit(chain)?;
        }
        Ok(n)
    }

    /// `docker import`: a rootfs tar (plain or compressed) becomes a one-layer image,
    /// tagged `reference` when given. Blocking.
    pub fn import(&self, r: impl Read, reference: Option<&str>) -> Result<ImageRecord> {
        let _writer = self.gc_lock.blocking_read();
        let tag = reference.map(Reference::parse).transpose()?;
        let tmpp = Path::new("import");
        // One pass: the plain tar is hashed (diff ID) while gzip writes the layer blob.
        let dec =
            decompressor(BufReader::with_capacity(256 * 1024, r)).map_err(aio("read", tmpp))?;
        let mut hr = HashingReader::new(dec);
        let dir = self.root.join("ingest");
        let tmp = dir.join(super::store::unique_tmp_name("tmp"));
        let res = (|| -> Result<(Digest, Digest)> {
            let f = File::create(&tmp).map_err(aio("create", &tmp))?;
            let hw = HashingWriter::new(f);
            let mut gz = flate2::write::GzEncoder::new(hw, flate2::Compression::fast());
            io::copy(&mut hr, &mut gz).map_err(aio("read", tmpp))?;
            let hw = gz.finish().map_err(aio("write", &tmp))?;
            let (f, blob, _) = hw.finish();
            f.sync_all().map_err(aio("fsync", &tmp))?;
            let (diff_id, _) = hr.finish().map_err(aio("read", tmpp))?;
            std::fs::rename(&tmp, self.store.blob_path(&blob)).map_err(aio("rename", &tmp))?;
            Ok((blob, diff_id))
        })();
        let _ = std::fs::remove_file(&tmp);
        let (blob, diff_id) = res?;
        let now = rfc3339_now();
        let p = Platform::host();
        let cfg = serde_json::json!({
            "architecture": p.architecture, "os": p.os, "created": now,
            "config": {},
            "rootfs": {"type": "layers", "diff_ids": [diff_id]},
            "history": [{"created": now, "comment": "Imported from -"}],
        });
        let cfg_bytes = serde_json::to_vec(&cfg).map_err(|e| invalid(e.to_string()))?;
        let cfg_d = self.store.write_blob(&cfg_bytes, None)?;
        let rec = self.register_image(&cfg_d, &[blob], None)?;
        let tags: Vec<String> = tag.iter().map(|t| t.to_string()).collect();
        self.state.put_image(&rec, &tags)?;
        Ok(rec)
    }
}

/// The current time as RFC 3339 (UTC, seconds).
pub fn rfc3339_now() -> String {
    let secs = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    let days = secs / 86400;
    let rem = secs % 86400;
    // Civil-from-days (Howard Hinnant's algorithm).
    let z = days as i64 + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = if m <= 2 { y + 1 } else { y };
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}
