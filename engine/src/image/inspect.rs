//! Docker-shaped views of an image: `image inspect` and `history`.

use super::reference::Reference;
use super::{ImageError, ImageService};
use crate::Result;
use serde_json::{Value, json};

/// One row of `docker history`.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct HistoryEntry {
    /// The image ID for the top row, `<missing>` below (as Docker prints for pulled images).
    pub id: String,
    /// Creation time (RFC 3339) as recorded.
    pub created: String,
    /// The command that made the step.
    pub created_by: String,
    /// Uncompressed size of the step's layer (0 for config-only steps).
    pub size: u64,
    /// The step's comment.
    pub comment: String,
}

impl ImageService {
    /// `docker image inspect`: the Engine API's ImageInspect fields Berth knows.
    pub fn inspect(&self, name: &str) -> Result<Value> {
        let img = self.resolve(name)?;
        let cfg: Value = serde_json::from_slice(&self.store.read(&img.id)?).map_err(|e| {
            ImageError::BadConfig {
                digest: img.id.clone(),
                reason: e.to_string(),
            }
        })?;
        let tags: Vec<String> = self
            .tags_of(&img.id)?
            .iter()
            .filter_map(|t| Reference::parse(t).ok().map(|r| r.familiar()))
            .collect();
        let repo_digests: Vec<String> = img
            .repo_digests
            .iter()
            .map(|rd| match rd.split_once('@') {
                Some((n, d)) => match Reference::parse_normalized(n) {
                    Ok(r) => format!("{}@{d}", r.familiar()),
                    Err(_) => rd.clone(),
                },
                None => rd.clone(),
            })
            .collect();
        Ok(json!({
            "Id": img.id,
            "RepoTags": tags,
            "RepoDigests": repo_digests,
            "Created": cfg.get("created").cloned().unwrap_or(Value::Null),
            "Author": cfg.get("author").cloned().unwrap_or(json!("")),
            "Architecture": cfg.get("architecture").cloned().unwrap_or(json!("")),
            "Variant": cfg.get("variant").cloned().unwrap_or(Value::Null),
            "Os": cfg.get("os").cloned().unwrap_or(json!("")),
            "Config": cfg.get("config").cloned().unwrap_or(json!({})),
            "Size": img.size,
            "RootFS": {
                "Type": "layers",
                "Layers": img.layers.iter().map(|l| l.diff_id.to_string()).collect::<Vec<_>>(),
            },
            "Descriptor": {
                "mediaType": img.manifest_media_type,
                "digest": img.manifest_digest,
                "size": self.store.size(&img.manifest_digest).unwrap_or(0),
            },
        }))
    }

    /// `docker history`: newest step first, sizes from the layers in order.
    pub fn history(&self, name: &str) -> Result<Vec<HistoryEntry>> {
        let img = self.resolve(name)?;
        let cfg: Value = serde_json::from_slice(&self.store.read(&img.id)?).map_err(|e| {
            ImageError::BadConfig {
                digest: img.id.clone(),
                reason: e.to_string(),
            }
        })?;
        let hist = cfg
            .get("history")
            .and_then(|h| h.as_array())
            .cloned()
            .unwrap_or_default();
        let mut layers = img.layers.iter();
        let mut out: Vec<HistoryEntry> = hist
            .iter()
            .map(|h| {
                let empty = h.get("empty_layer").and_then(|v| v.as_bool()) == Some(true);
                let size = if empty {
                    0
                } else {
                    layers.next().map_or(0, |l| l.diff_size)
                };
                let s = |k: &str| h.get(k).and_then(|v| v.as_str()).unwrap_or("").to_string();
                HistoryEntry {
                    id: "<missing>".into(),
                    created: s("created"),
                    created_by: s("created_by"),
                    size,
                    comment: s("comment"),
                }
            })
            .collect();
        // Layers without history entries (umoci, some importers) still show up.
        for l in layers {
            out.push(HistoryEntry {
                id: "<missing>".into(),
                created: String::new(),
                created_by: String::new(),
                size: l.diff_size,
                comment: String::new(),
            });
        }
        out.reverse();
        if let Some(top) = out.first_mut() {
            top.id = img.id.to_string();
        }
        Ok(out)
    }
}
