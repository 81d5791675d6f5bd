//! Pull: manifest (index -> platform), config, then every layer streamed in one pass
//! (download -> compressed digest -> decompress -> diff ID -> untar into its snapshot),
//! layers in parallel, present layers skipped, interrupted blobs resumed with `Range`.

use super::digest::{Digest, Hasher, HashingReader, chain_id};
use super::progress::{Progress, ProgressSink};
use super::reference::Reference;
use super::registry::{self, RegistryClient, RegistryError};
use super::snapshot::PendingSnapshot;
use super::store::{Ingest, StoreError};
use super::unpack::unpack_layer;
use super::{ImageError, ImageService, Platform};
use crate::state::{ImageRecord, LayerRecord};
use crate::{Error, Result};
use bytes::{Buf, Bytes};
use futures_util::StreamExt;
use oci_spec::image::{ImageIndex, ImageManifest};
use std::io::{self, BufRead, BufReader, Read};
use std::sync::Arc;
use std::time::Duration;

/// Layers downloaded at once.
const PARALLEL_LAYERS: usize = 4;
/// Attempts per layer (each resumes what the previous one received).
const LAYER_ATTEMPTS: u32 = 4;
const PROGRESS_STEP: u64 = 1 << 20;
/// Chunks in flight between download and unpack per layer: hyper hands over chunks of up to
/// a few hundred KiB, so this bounds memory per layer to about a MiB.
const CHANNEL_CHUNKS: usize = 4;

/// The parts of an image config the engine reads.
#[derive(Debug, serde::Deserialize)]
pub(crate) struct ConfigView {
    #[serde(default)]
    pub created: Option<String>,
    pub rootfs: RootFs,
}

#[derive(Debug, serde::Deserialize)]
pub(crate) struct RootFs {
    #[serde(default)]
    pub diff_ids: Vec<Digest>,
}

pub(crate) fn parse_config(bytes: &[u8], digest: &Digest) -> Result<ConfigView> {
    serde_json::from_slice(bytes).map_err(|e| {
        ImageError::BadConfig {
            digest: digest.clone(),
            reason: e.to_string(),
        }
        .into()
    })
}

/// Layer media types Berth unpacks (compression is detected from the content).
pub(crate) fn is_layer_media_type(mt: &str) -> bool {
    matches!(
        mt,
        registry::MEDIA_DOCKER_LAYER
            | registry::MEDIA_OCI_LAYER
            | registry::MEDIA_OCI_LAYER_GZIP
            | registry::MEDIA_OCI_LAYER_ZSTD
            | "application/vnd.docker.image.rootfs.diff.tar"
            | "application/vnd.docker.image.rootfs.foreign.diff.tar.gzip"
            | "application/vnd.oci.image.layer.nondistributable.v1.tar"
            | "application/vnd.oci.image.layer.nondistributable.v1.tar+gzip"
            | "application/vnd.oci.image.layer.nondistributable.v1.tar+zstd"
    )
}

pub(crate) fn is_config_media_type(mt: &str) -> bool {
    mt == registry::MEDIA_DOCKER_CONFIG || mt == registry::MEDIA_OCI_CONFIG
}

/// A blob named by a manifest: digest, size, media type.
pub(crate) type BlobRef = (Digest, u64, String);

/// One layer to fetch and/or unpack.
#[derive(Debug, Clone)]
pub(crate) struct LayerJob {
    pub digest: Digest,
    pub media_type: String,
    pub size: u64,
    pub diff_id: Digest,
    pub chain_id: Digest,
}

/// Picks the index entry for `platform` (os and architecture must match; the variant too
/// when asked for).
pub(crate) fn choose_platform(
    index: &ImageIndex,
    platform: &Platform,
    reference: &str,
) -> std::result::Result<Digest, RegistryError> {
    for m in index.manifests() {
        let Some(p) = m.platform() else { continue };
        if p.os().to_string() != platform.os
            || p.architecture().to_string() != platform.architecture
        {
            continue;
        }
        if let Some(v) = &platform.variant
            && p.variant().as_deref() != Some(v.as_str())
        {
            continue;
        }
        return Digest::try_from(m.digest()).map_err(|e| RegistryError::InvalidManifest {
            reference: reference.to_string(),
            reason: e.to_string(),
        });
    }
    Err(RegistryError::NoMatchingPlatform {
        platform: platform.to_string(),
        reference: reference.to_string(),
    })
}

fn invalid(reference: &str, reason: impl Into<String>) -> Error {
    RegistryError::InvalidManifest {
        reference: reference.to_string(),
        reason: reason.into(),
    }
    .into()
}

/// Decodes a single-image manifest and checks its media types; returns config and layers.
pub(crate) fn manifest_parts(bytes: &[u8], reference: &str) -> Result<(BlobRef, Vec<BlobRef>)> {
    let m: ImageManifest =
        serde_json::from_slice(bytes).map_err(|e| invalid(reference, e.to_string()))?;
    let cfg = m.config();
    let cfg_mt = cfg.media_type().to_string();
    if !is_config_media_type(&cfg_mt) {
        return Err(RegistryError::UnsupportedMediaType {
            media_type: cfg_mt,
            what: format!("config of {reference}"),
        }
        .into());
    }
    let cfg_d = Digest::try_from(cfg.digest()).map_err(|e| invalid(reference, e.to_string()))?;
    let mut layers = Vec::new();
    for l in m.layers() {
        let mt = l.media_type().to_string();
        if !is_layer_media_type(&mt) {
            return Err(RegistryError::UnsupportedMediaType {
                media_type: mt,
                what: format!("layer of {reference}"),
            }
            .into());
        }
        let d = Digest::try_from(l.digest()).map_err(|e| invalid(reference, e.to_string()))?;
        layers.push((d, l.size(), mt));
    }
    Ok(((cfg_d, cfg.size(), cfg_mt), layers))
}

impl ImageService {
    /// `docker pull`: fetches `reference` for `platform` (the host's when `None`), unpacks
    /// its layers and tags it. Nothing is tagged unless every layer arrived and verified.
    pub async fn pull(
        &self,
        reference: &str,
        platform: Option<Platform>,
        progress: ProgressSink,
    ) -> Result<ImageRecord> {
        let _writer = self.gc_lock.clone().read_owned().await;
        let r = Reference::parse(reference)?;
        let platform = platform.unwrap_or_else(Platform::host);
        let client = RegistryClient::new(r.domain(), &self.registry)?;
        let repo = r.path().to_string();
        let auth = client
            .authorization(&[format!("repository:{repo}:pull")])
            .await?;
        let what = r.to_string();
        let top = client.get_manifest(&repo, r.manifest_ref(), &auth).await?;
        if let Some(d) = r.digest()
            && top.digest.as_str() != d
        {
            return Err(invalid(&what, format!("content has digest {}", top.digest)));
        }
        progress.emit(Progress::Resolved {
            reference: what.clone(),
            digest: top.digest.clone(),
        });
        let manifest = match top.media_type.as_str() {
            registry::MEDIA_OCI_INDEX | registry::MEDIA_DOCKER_LIST => {
                let idx: ImageIndex = serde_json::from_slice(&top.bytes)
                    .map_err(|e| invalid(&what, e.to_string()))?;
                let d = choose_platform(&idx, &platform, &what)?;
                let m = client.get_manifest(&repo, d.as_str(), &auth).await?;
                if !matches!(
                    m.media_type.as_str(),
                    registry::MEDIA_OCI_MANIFEST | registry::MEDIA_DOCKER_MANIFEST
                ) {
                    return Err(RegistryError::UnsupportedMediaType {
                        media_type: m.media_type,
                        what: format!("platform manifest of {what}"),
                    }
                    .into());
                }
                m
            }
            registry::MEDIA_OCI_MANIFEST | registry::MEDIA_DOCKER_MANIFEST => top.clone(),
            other => {
                return Err(RegistryError::UnsupportedMediaType {
                    media_type: other.to_string(),
                    what: format!("manifest of {what}"),
                }
                .into());
            }
        };
        let ((cfg_d, cfg_size, _), layers) = manifest_parts(&manifest.bytes, &what)?;

        let cfg_bytes = if self.store.contains(&cfg_d) {
            self.store.read(&cfg_d)?
        } else {
            let b = client.get_blob_bytes(&repo, &cfg_d, &auth).await?;
            if b.len() as u64 != cfg_size {
                return Err(StoreError::SizeMismatch {
                    digest: cfg_d,
                    expected: cfg_size,
                    actual: b.len() as u64,
                }
                .into());
            }
            // Verified against its digest before it is written.
            self.store.write_blob(&b, Some(&cfg_d))?;
            b
        };
        let cfg = parse_config(&cfg_bytes, &cfg_d)?;
        if cfg.rootfs.diff_ids.len() != layers.len() {
            return Err(ImageError::BadConfig {
                digest: cfg_d,
                reason: format!(
                    "{} diff IDs for {} layers",
                    cfg.rootfs.diff_ids.len(),
                    layers.len()
                ),
            }
            .into());
        }

        let mut jobs = Vec::new();
        let mut parent: Option<Digest> = None;
        for ((d, size, mt), diff_id) in layers.into_iter().zip(cfg.rootfs.diff_ids.iter()) {
            let c = chain_id(parent.as_ref(), diff_id);
            parent = Some(c.clone());
            jobs.push(LayerJob {
                digest: d,
                media_type: mt,
                size,
                diff_id: diff_id.clone(),
                chain_id: c,
            });
        }
        let sizes = self
            .fetch_layers(&client, &repo, &auth, &jobs, &progress)
            .await?;

        // Everything verified: only now do manifest, index and image become visible.
        self.store
            .write_blob(&manifest.bytes, Some(&manifest.digest))?;
        if top.digest != manifest.digest {
            self.store.write_blob(&top.bytes, Some(&top.digest))?;
        }
        let rec = ImageRecord {
            id: cfg_d.clone(),
            manifest_digest: manifest.digest.clone(),
            manifest_media_type: manifest.media_type.clone(),
            repo_digests: vec![format!("{}@{}", r.repository(), top.digest)],
            layers: jobs
                .iter()
                .zip(&sizes)
                .map(|(j, s)| LayerRecord {
                    digest: j.digest.clone(),
                    media_type: j.media_type.clone(),
                    size: j.size,
                    diff_id: j.diff_id.clone(),
                    chain_id: j.chain_id.clone(),
                    diff_size: *s,
                })
                .collect(),
            created: cfg.created.clone(),
            size: sizes.iter().sum(),
        };
        let tags: Vec<String> = if r.tag().is_some() && r.digest().is_none() {
            vec![r.to_string()]
        } else {
            vec![]
        };
        self.state.put_image(&rec, &tags)?;
        progress.emit(Progress::Done {
            digest: cfg_d.clone(),
        });
        tracing::info!(reference = %what, id = %cfg_d, "pulled");
        Ok(rec)
    }

    /// Fetches and unpacks layers in parallel; returns each layer's uncompressed size.
    async fn fetch_layers(
        &self,
        client: &RegistryClient,
        repo: &str,
        auth: &Option<String>,
        jobs: &[LayerJob],
        progress: &ProgressSink,
    ) -> Result<Vec<u64>> {
        let known = self.known_diff_sizes()?;
        let sem = Arc::new(tokio::sync::Semaphore::new(PARALLEL_LAYERS));
        let mut set = tokio::task::JoinSet::new();
        for (i, job) in jobs.iter().enumerate() {
            let need_unpack = !self.snapshots.exists(&job.chain_id);
            let need_blob = !self.store.contains(&job.digest);
            if !need_unpack && !need_blob {
                progress.emit(Progress::LayerExists {
                    digest: job.digest.clone(),
                });
                continue;
            }
            let (svc, client, repo, auth, job, progress, sem) = (
                self.clone(),
                client.clone(),
                repo.to_string(),
                auth.clone(),
                job.clone(),
                progress.clone(),
                sem.clone(),
            );
            set.spawn(async move {
                let _permit = sem.acquire_owned().await;
                let r = svc
                    .fetch_layer(&client, &repo, &auth, &job, need_unpack, &progress)
                    .await;
                (i, r)
            });
        }
        let mut sizes: Vec<u64> = jobs
            .iter()
            .map(|j| known.get(&j.chain_id).copied().unwrap_or(0))
            .collect();
        let mut first_err = None;
        while let Some(res) = set.join_next().await {
            match res {
                Ok((i, Ok(Some(s)))) => sizes[i] = s,
                Ok((_, Ok(None))) => {}
                Ok((_, Err(e))) => {
                    if first_err.is_none() {
                        // One bad layer fails the pull: stop the others early.
                        set.abort_all();
                        first_err = Some(e);
                    }
                }
                Err(e) if e.is_cancelled() => {}
                Err(e) => {
                    first_err.get_or_insert(ImageError::Task(e.to_string()).into());
                }
            }
        }
        match first_err {
            Some(e) => Err(e),
            None => Ok(sizes),
        }
    }

    pub(crate) fn known_diff_sizes(&self) -> Result<std::collections::HashMap<Digest, u64>> {
        Ok(self
            .state
            .images()?
            .into_iter()
            .flat_map(|i| i.layers)
            .map(|l| (l.chain_id, l.diff_size))
            .collect())
    }

    /// One layer, retried with resumption; returns the uncompressed size if unpacked.
    async fn fetch_layer(
        &self,
        client: &RegistryClient,
        repo: &str,
        auth: &Option<String>,
        job: &LayerJob,
        need_unpack: bool,
        progress: &ProgressSink,
    ) -> Result<Option<u64>> {
        let mut attempt = 0;
        let mut delay = Duration::from_millis(200);
        loop {
            attempt += 1;
            match self
                .fetch_layer_once(client, repo, auth, job, need_unpack, progress)
                .await
            {
                Ok(v) => {
                    progress.emit(Progress::LayerDone {
                        digest: job.digest.clone(),
                    });
                    return Ok(v);
                }
                Err(Attempt::Retry(e)) if attempt < LAYER_ATTEMPTS => {
                    tracing::warn!(layer = %job.digest, attempt, error = %e, "layer download interrupted, resuming");
                    tokio::time::sleep(delay).await;
                    delay *= 2;
                }
                Err(Attempt::Retry(e)) | Err(Attempt::Fail(e)) => return Err(e),
            }
        }
    }

    async fn fetch_layer_once(
        &self,
        client: &RegistryClient,
        repo: &str,
        auth: &Option<String>,
        job: &LayerJob,
        need_unpack: bool,
        progress: &ProgressSink,
    ) -> std::result::Result<Option<u64>, Attempt> {
        let from_store = self.store.contains(&job.digest);
        let (tx, rx) = tokio::sync::mpsc::channel::<io::Result<Bytes>>(CHANNEL_CHUNKS);
        let store = self.store.clone();
        let pending = if need_unpack {
            Some(
                self.snapshots
                    .prepare()
                    .map_err(|e| Attempt::Fail(e.into()))?,
            )
        } else {
            None
        };
        let digest = job.digest.clone();
        // The lock of the ingest file is taken on a blocking thread: another pull of the
        // same blob may hold it.
        let ingest = if from_store {
            None
        } else {
            let d = digest.clone();
            let st = store.clone();
            Some(
                tokio::task::spawn_blocking(move || st.ingest(&d))
                    .await
                    .map_err(|e| Attempt::Fail(ImageError::Task(e.to_string()).into()))?
                    .map_err(|e| Attempt::Fail(e.into()))?,
            )
        };
        let offset = ingest.as_ref().map_or(0, |i| i.len());
        let existing: Option<Box<dyn Read + Send>> = if from_store {
            Some(Box::new(
                store
                    .open_blob(&digest)
                    .map_err(|e| Attempt::Fail(e.into()))?,
            ))
        } else if offset > 0 {
            let i = ingest.as_ref().map(|i| i.existing());
            match i {
                Some(Ok(r)) => Some(Box::new(r)),
                Some(Err(e)) => return Err(Attempt::Fail(e.into())),
                None => None,
            }
        } else {
            None
        };
        let src = Source {
            existing,
            rx,
            cur: Bytes::new(),
            ingest,
            hasher: Hasher::new(),
            net_failed: false,
        };
        let job2 = job.clone();
        let consumer = tokio::task::spawn_blocking(move || consume(src, pending, &job2));

        if !from_store {
            progress.emit(Progress::LayerStart {
                digest: digest.clone(),
                total: job.size,
                resumed_from: offset,
            });
            if offset < job.size || job.size == 0 {
                if let Err(e) = self
                    .download(client, repo, auth, job, offset, &tx, progress)
                    .await
                {
                    drop(tx);
                    let _ = consumer.await;
                    return Err(if e.is_retryable() {
                        Attempt::Retry(e.into())
                    } else {
                        Attempt::Fail(e.into())
                    });
                }
            }
        }
        drop(tx);
        match consumer.await {
            Ok((Ok(v), _)) => Ok(v),
            Ok((Err(e), true)) => Err(Attempt::Retry(e)),
            // A resumed blob that fails verification may have a corrupt prefix: the ingest
            // file is gone now, so one more attempt starts from zero.
            Ok((Err(e @ Error::Store(StoreError::DigestMismatch { .. })), false)) if offset > 0 => {
                Err(Attempt::Retry(e))
            }
            Ok((Err(e), false)) => Err(Attempt::Fail(e)),
            Err(e) => Err(Attempt::Fail(ImageError::Task(e.to_string()).into())),
        }
    }

    #[allow(clippy::too_many_arguments)]
    async fn download(
        &self,
        client: &RegistryClient,
        repo: &str,
        auth: &Option<String>,
        job: &LayerJob,
        offset: u64,
        tx: &tokio::sync::mpsc::Sender<io::Result<Bytes>>,
        progress: &ProgressSink,
    ) -> std::result::Result<(), RegistryError> {
        let resp = client.get_blob(repo, &job.digest, offset, auth).await?;
        if resp.status() == reqwest::StatusCode::RANGE_NOT_SATISFIABLE {
            return Ok(());
        }
        // A server that ignores Range sends everything again: skip what we have.
        let mut skip = if offset > 0 && resp.status() != reqwest::StatusCode::PARTIAL_CONTENT {
            offset
        } else {
            0
        };
        let url = resp.url().to_string();
        let mut done = offset;
        let mut reported = 0;
        let mut stream = resp.bytes_stream();
        while let Some(chunk) = stream.next().await {
            let mut b = match chunk {
                Ok(b) => b,
                Err(source) => {
                    let _ = tx
                        .send(Err(io::Error::other(format!(
                            "download interrupted: {source}"
                        ))))
                        .await;
                    return Err(RegistryError::Http {
                        method: reqwest::Method::GET,
                        url,
                        source,
                    });
                }
            };
            if skip > 0 {
                let n = (skip as usize).min(b.len());
                b.advance(n);
                skip -= n as u64;
                if b.is_empty() {
                    continue;
                }
            }
            done += b.len() as u64;
            if tx.send(Ok(b)).await.is_err() {
                // The consumer stopped (bad content); its error is reported by the caller.
                return Ok(());
            }
            if done - reported >= PROGRESS_STEP {
                reported = done;
                progress.emit(Progress::LayerProgress {
                    digest: job.digest.clone(),
                    current: done,
                    total: job.size,
                });
            }
        }
        Ok(())
    }
}

enum Attempt {
    Retry(Error),
    Fail(Error),
}

/// The compressed byte stream of a layer: bytes already on disk first, then the network.
/// Everything is hashed; network bytes are appended to the ingest file as they arrive.
struct Source {
    existing: Option<Box<dyn Read + Send>>,
    rx: tokio::sync::mpsc::Receiver<io::Result<Bytes>>,
    cur: Bytes,
    ingest: Option<Ingest>,
    hasher: Hasher,
    net_failed: bool,
}

impl Read for Source {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if let Some(e) = &mut self.existing {
            let n = e.read(buf)?;
            if n > 0 {
                self.hasher.update(&buf[..n]);
                return Ok(n);
            }
            self.existing = None;
        }
        while self.cur.is_empty() {
            match self.rx.blocking_recv() {
                Some(Ok(b)) => {
                    if let Some(i) = &mut self.ingest {
                        i.append(&b).map_err(io::Error::other)?;
                    }
                    self.cur = b;
                }
                Some(Err(e)) => {
                    self.net_failed = true;
                    return Err(e);
                }
                None => return Ok(0),
            }
        }
        let n = buf.len().min(self.cur.len());
        buf[..n].copy_from_slice(&self.cur[..n]);
        self.cur.advance(n);
        self.hasher.update(&buf[..n]);
        Ok(n)
    }
}

/// Decompression chosen from the first bytes, as Docker does.
pub(crate) fn decompressor<'a, R: BufRead + 'a>(mut r: R) -> io::Result<Box<dyn Read + 'a>> {
    let head = r.fill_buf()?;
    if head.starts_with(&[0x1f, 0x8b]) {
        Ok(Box::new(flate2::bufread::MultiGzDecoder::new(r)))
    } else if head.starts_with(&[0x28, 0xb5, 0x2f, 0xfd]) {
        Ok(Box::new(zstd::stream::read::Decoder::with_buffer(r)?))
    } else {
        Ok(Box::new(r))
    }
}

/// Runs on a blocking thread: unpacks (if asked), verifies both digests, then commits the
/// blob and the snapshot. Returns whether a failure came from the network.
fn consume(
    mut src: Source,
    pending: Option<PendingSnapshot>,
    job: &LayerJob,
) -> (Result<Option<u64>>, bool) {
    let r = consume_inner(&mut src, pending, job);
    (r, src.net_failed)
}

fn consume_inner(
    src: &mut Source,
    pending: Option<PendingSnapshot>,
    job: &LayerJob,
) -> Result<Option<u64>> {
    let io_fail = |e: io::Error| -> Error {
        super::unpack::UnpackError::Archive(io::Error::other(format!("layer {}: {e}", job.digest)))
            .into()
    };
    let mut diff = None;
    if let Some(p) = &pending {
        let br = BufReader::with_capacity(256 * 1024, &mut *src);
        let dec = decompressor(br).map_err(io_fail)?;
        let mut hr = HashingReader::new(dec);
        unpack_layer(&mut hr, p.path())?;
        let (diff_id, diff_size) = hr.finish().map_err(io_fail)?;
        diff = Some((diff_id, diff_size));
    }
    // Whatever follows the tar (padding, or everything when not unpacking) is still hashed.
    io::copy(src, &mut io::sink()).map_err(io_fail)?;
    let actual = std::mem::take(&mut src.hasher).finish();
    match src.ingest.take() {
        Some(ing) => {
            // Both digests are checked before either the blob or the snapshot is visible.
            if actual != job.digest {
                return Err(ing.commit(actual, Some(job.size)).err().map_or_else(
                    || ImageError::Task("digest check".into()).into(),
                    Error::from,
                ));
            }
            if let Some((d, _)) = &diff
                && *d != job.diff_id
            {
                ing.discard();
                return Err(ImageError::DiffIdMismatch {
                    layer: job.digest.clone(),
                    expected: job.diff_id.clone(),
                    actual: d.clone(),
                }
                .into());
            }
            ing.commit(actual, Some(job.size))?;
        }
        None => {
            if actual != job.digest {
                return Err(StoreError::DigestMismatch {
                    expected: job.digest.clone(),
                    actual,
                    size: 0,
                }
                .into());
            }
        }
    }
    if let (Some(p), Some((d, s))) = (pending, diff) {
        if d != job.diff_id {
            return Err(ImageError::DiffIdMismatch {
                layer: job.digest.clone(),
                expected: job.diff_id.clone(),
                actual: d,
            }
            .into());
        }
        p.commit(&job.chain_id)?;
        return Ok(Some(s));
    }
    Ok(None)
}
