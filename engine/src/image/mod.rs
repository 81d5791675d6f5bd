//! Images: references, the content store, snapshots, the registry client, pull and push,
//! archives. [`ImageService`] ties them to the engine's metadata store.

pub mod archive;
pub mod auth;
pub mod build;
pub mod commit;
pub mod digest;
pub mod inspect;
pub mod progress;
mod pull;
mod push;
pub mod reference;
pub mod registry;
pub mod snapshot;
pub mod store;
pub mod unpack;

use crate::state::{ImageRecord, StateStore};
use crate::{Error, Result};
use digest::Digest;
use reference::Reference;
use registry::RegistryOptions;
use snapshot::Snapshots;
use std::collections::HashSet;
use std::path::{Path, PathBuf};
use store::ContentStore;

pub use progress::{Progress, ProgressSink};

/// Image-level errors.
#[derive(Debug, thiserror::Error)]
pub enum ImageError {
    /// No image with this name or ID.
    #[error("No such image: {0}")]
    NotFound(String),
    /// An image ID prefix matches several images.
    #[error("image ID prefix {0} is ambiguous")]
    Ambiguous(String),
    /// A layer's content does not match the diff ID in the image config.
    #[error("layer {layer}: uncompressed content has digest {actual}, the config says {expected}")]
    DiffIdMismatch {
        /// The layer blob.
        layer: Digest,
        /// The diff ID from the config.
        expected: Digest,
        /// The digest of what was unpacked.
        actual: Digest,
    },
    /// An image config is unusable.
    #[error("image config {digest}: {reason}")]
    BadConfig {
        /// The config blob.
        digest: Digest,
        /// Why.
        reason: String,
    },
    /// The image is referenced under several names and `force` was not given.
    #[error(
        "conflict: unable to delete {0} (must be forced) - image is referenced in multiple repositories"
    )]
    MultipleReferences(String),
    /// A background task failed.
    #[error("internal task failed: {0}")]
    Task(String),
    /// A build failed (the message is what `docker build` prints).
    #[error("{0}")]
    Build(String),
    /// A file operation failed.
    #[error("{op} {path}: {source}")]
    Io {
        /// What was being done.
        op: &'static str,
        /// The path.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
}

/// The platform an index entry is chosen for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Platform {
    /// `linux`.
    pub os: String,
    /// `amd64`, `arm64`, ...
    pub architecture: String,
    /// `v8`, `v7`, ... if it matters.
    pub variant: Option<String>,
}

impl Platform {
    /// The platform of this machine.
    pub fn host() -> Self {
        let architecture = match std::env::consts::ARCH {
            "x86_64" => "amd64",
            "aarch64" => "arm64",
            "x86" => "386",
            "arm" => "arm",
            "powerpc64" => "ppc64le",
            "s390x" => "s390x",
            other => other,
        };
        Self {
            os: "linux".into(),
            architecture: architecture.into(),
            variant: None,
        }
    }

    /// Parses `os/arch[/variant]` as in `--platform`.
    pub fn parse(s: &str) -> Option<Self> {
        let mut it = s.split('/');
        let os = it.next().filter(|x| !x.is_empty())?.to_string();
        let architecture = it.next().filter(|x| !x.is_empty())?.to_string();
        let variant = it.next().map(str::to_string);
        if it.next().is_some() {
            return None;
        }
        Some(Self {
            os,
            architecture,
            variant,
        })
    }
}

impl std::fmt::Display for Platform {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.os, self.architecture)?;
        if let Some(v) = &self.variant {
            write!(f, "/{v}")?;
        }
        Ok(())
    }
}

/// What an image garbage collection removed.
#[derive(Debug, Default, Clone)]
pub struct GcReport {
    /// Blobs deleted.
    pub blobs: Vec<Digest>,
    /// Snapshots deleted.
    pub snapshots: Vec<Digest>,
    /// Bytes of blobs freed.
    pub bytes: u64,
}

/// The engine's image service: content store, snapshots and image metadata under one root.
#[derive(Debug, Clone)]
pub struct ImageService {
    root: PathBuf,
    store: ContentStore,
    snapshots: Snapshots,
    state: StateStore,
    registry: RegistryOptions,
    /// Writers (pull, load, import, commit) share it; `gc` takes it exclusively, so it never
    /// deletes a blob or snapshot that an unfinished operation has written but not yet
    /// registered.
    gc_lock: std::sync::Arc<tokio::sync::RwLock<()>>,
}

impl ImageService {
    /// Opens the image service under `root` (`<root>/blobs`, `<root>/snapshots`, ...).
    pub fn open(root: &Path, state: StateStore, registry: RegistryOptions) -> Result<Self> {
        Ok(Self {
            root: root.to_path_buf(),
            store: ContentStore::open(root)?,
            snapshots: Snapshots::open(root)?,
            state,
            registry,
            gc_lock: Default::default(),
        })
    }

    /// The content store.
    pub fn store(&self) -> &ContentStore {
        &self.store
    }

    /// The snapshots.
    pub fn snapshots(&self) -> &Snapshots {
        &self.snapshots
    }

    /// The metadata store.
    pub fn state(&self) -> &StateStore {
        &self.state
    }

    /// The registry settings.
    pub fn registry_options(&self) -> &RegistryOptions {
        &self.registry
    }

    /// The root directory.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// Finds an image by name (`busybox`, `busybox:1`, `repo@sha256:...`), full ID or ID
    /// prefix, as Docker does.
    pub fn resolve(&self, name_or_id: &str) -> Result<ImageRecord> {
        let hexish = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_hexdigit());
        let id_part = name_or_id.strip_prefix("sha256:").unwrap_or(name_or_id);
        if let Ok(r) = Reference::parse(name_or_id) {
            if let Some(d) = r.digest() {
                let repo = r.repository();
                for img in self.state.images()? {
                    if img
                        .repo_digests
                        .iter()
                        .any(|rd| *rd == format!("{repo}@{d}"))
                        || img.manifest_digest.as_str() == d
                    {
                        return Ok(img);
                    }
                }
            } else if let Some(id) = self.state.resolve_tag(&r.to_string())?
                && let Some(img) = self.state.image(&id)?
            {
                return Ok(img);
            }
        }
        if hexish(id_part) && id_part.len() <= 64 {
            let matches: Vec<ImageRecord> = self
                .state
                .images()?
                .into_iter()
                .filter(|i| i.id.hex().starts_with(id_part))
                .collect();
            match matches.as_slice() {
                [one] => return Ok(one.clone()),
                [] => {}
                _ => return Err(ImageError::Ambiguous(name_or_id.to_string()).into()),
            }
        }
        Err(ImageError::NotFound(name_or_id.to_string()).into())
    }

    /// The normalized references pointing at an image.
    pub fn tags_of(&self, id: &Digest) -> Result<Vec<String>> {
        Ok(self
            .state
            .tags()?
            .into_iter()
            .filter(|(_, d)| d == id)
            .map(|(t, _)| t)
            .collect())
    }

    /// `docker tag SOURCE TARGET`.
    pub fn tag(&self, source: &str, target: &str) -> Result<()> {
        let img = self.resolve(source)?;
        let t = Reference::parse(target)?;
        self.state.set_tag(&t.to_string(), &img.id)?;
        Ok(())
    }

    /// `docker rmi`: untags `name`; removes the image once nothing references it (or with
    /// `force`). Returns Docker's list of `Untagged:`/`Deleted:` lines' subjects.
    pub fn remove(&self, name: &str, force: bool) -> Result<Vec<String>> {
        let img = self.resolve(name)?;
        let tags = self.tags_of(&img.id)?;
        let mut out = Vec::new();
        let by_name = Reference::parse(name)
            .ok()
            .map(|r| r.to_string())
            .filter(|r| tags.contains(r));
        if let Some(t) = by_name
            && tags.len() > 1
        {
            self.state.remove_tag(&t)?;
            out.push(format!("Untagged: {t}"));
            return Ok(out);
        }
        if tags.len() > 1 && !force {
            return Err(ImageError::MultipleReferences(img.id.hex()[..12].to_string()).into());
        }
        for t in self.state.remove_image(&img.id)? {
            out.push(format!("Untagged: {t}"));
        }
        out.push(format!("Deleted: {}", img.id));
        Ok(out)
    }

    /// Removes blobs and snapshots no image references (and temporaries). Blocking: waits
    /// for running pulls, loads, imports and commits; call it off the async runtime.
    pub fn gc(&self) -> Result<GcReport> {
        let _exclusive = self.gc_lock.blocking_write();
        let mut blobs = HashSet::new();
        let mut snaps = HashSet::new();
        for img in self.state.images()? {
            blobs.insert(img.id.clone());
            blobs.insert(img.manifest_digest.clone());
            for rd in &img.repo_digests {
                if let Some((_, d)) = rd.split_once('@')
                    && let Ok(d) = Digest::parse(d)
                {
                    blobs.insert(d);
                }
            }
            for l in &img.layers {
                blobs.insert(l.digest.clone());
                snaps.insert(l.chain_id.clone());
            }
        }
        let st = self.store.gc(&blobs)?;
        let removed = self.snapshots.gc(&snaps)?;
        Ok(GcReport {
            blobs: st.removed,
            snapshots: removed,
            bytes: st.bytes,
        })
    }

    /// The snapshot directories of an image, bottom layer first (overlay lowers).
    pub fn layer_paths(&self, img: &ImageRecord) -> Vec<PathBuf> {
        img.layers
            .iter()
            .map(|l| self.snapshots.path(&l.chain_id))
            .collect()
    }

    /// Mounts `img` as a container rootfs at `target` with its own upper and work dirs.
    pub fn mount_rootfs(
        &self,
        img: &ImageRecord,
        upper: &Path,
        work: &Path,
        target: &Path,
    ) -> Result<()> {
        let chain: Vec<Digest> = img.layers.iter().map(|l| l.chain_id.clone()).collect();
        self.snapshots
            .mount_rootfs(&chain, upper, work, target)
            .map_err(Error::from)
    }
}
