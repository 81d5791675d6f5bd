//! Push: blobs first (existence check, cross-repository mount, monolithic or chunked
//! upload), the manifest last.

use super::digest::Digest;
use super::progress::{Progress, ProgressSink};
use super::reference::Reference;
use super::registry::{RegistryClient, RegistryError};
use super::{ImageError, ImageService};
use crate::Result;
use reqwest::header::{self, HeaderValue};
use reqwest::{Method, StatusCode};
use std::io::Read;

/// Blobs larger than this go up in chunks of this size (PATCH), smaller ones in one PUT.
pub const DEFAULT_CHUNK_SIZE: u64 = 64 << 20;

/// Appends `digest=` to an upload URL, keeping its `?_state=` query intact.
pub fn with_digest(location: &str, digest: &Digest) -> String {
    let sep = if location.contains('?') { '&' } else { '?' };
    format!(
        "{location}{sep}digest={}",
        digest.as_str().replace(':', "%3A")
    )
}

fn location(
    client: &RegistryClient,
    resp: &reqwest::Response,
    url: &str,
) -> std::result::Result<String, RegistryError> {
    resp.headers()
        .get(header::LOCATION)
        .and_then(|v| v.to_str().ok())
        .map(|l| client.absolute(l))
        .ok_or_else(|| RegistryError::Invalid(format!("{url}: upload response without Location")))
}

async fn expect(
    method: Method,
    url: &str,
    resp: reqwest::Response,
    ok: &[StatusCode],
    domain: &str,
) -> std::result::Result<reqwest::Response, RegistryError> {
    if ok.contains(&resp.status()) {
        return Ok(resp);
    }
    let status = resp.status();
    let body = resp.text().await.unwrap_or_default();
    Err(match status {
        StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN => RegistryError::Unauthorized {
            registry: domain.to_string(),
            detail: format!("{method} {url}: {status}: {body}"),
        },
        _ => RegistryError::Status {
            method,
            url: url.to_string(),
            status,
            message: body.chars().take(300).collect(),
        },
    })
}

fn http_err(method: Method, url: &str) -> impl FnOnce(reqwest::Error) -> RegistryError + '_ {
    move |source| RegistryError::Http {
        method,
        url: url.to_string(),
        source,
    }
}

impl ImageService {
    /// `docker push NAME[:TAG]`: uploads the image's blobs the registry lacks, then its
    /// manifest. Returns the manifest digest.
    pub async fn push(&self, reference: &str, progress: ProgressSink) -> Result<Digest> {
        self.push_with_chunk_size(reference, DEFAULT_CHUNK_SIZE, progress)
            .await
    }

    /// [`Self::push`] with another chunk size for large blobs.
    pub async fn push_with_chunk_size(
        &self,
        reference: &str,
        chunk_size: u64,
        progress: ProgressSink,
    ) -> Result<Digest> {
        let r = Reference::parse(reference)?;
        let img = self.resolve(reference)?;
        let client = RegistryClient::new(r.domain(), &self.registry)?;
        let repo = r.path().to_string();
        let prefix = format!("{}/", r.domain());
        let mut from: Vec<String> = img
            .repo_digests
            .iter()
            .filter_map(|rd| rd.split_once('@').map(|(n, _)| n))
            .filter_map(|n| n.strip_prefix(&prefix))
            .filter(|n| *n != repo)
            .map(str::to_string)
            .collect();
        from.dedup();
        let mut scopes = vec![format!("repository:{repo}:pull,push")];
        scopes.extend(from.iter().map(|f| format!("repository:{f}:pull")));
        let auth = match client.authorization(&scopes).await {
            Ok(a) => a,
            // Without pull rights on the mount sources, push without mounting.
            Err(_) if !from.is_empty() => {
                from.clear();
                client
                    .authorization(&[format!("repository:{repo}:pull,push")])
                    .await?
            }
            Err(e) => return Err(e.into()),
        };

        let mut blobs: Vec<(Digest, u64)> = img
            .layers
            .iter()
            .map(|l| (l.digest.clone(), l.size))
            .collect();
        blobs.push((img.id.clone(), self.store.size(&img.id)?));
        for (d, _) in &blobs {
            let size = self.store.size(d)?;
            self.push_blob(&client, &repo, &auth, d, size, &from, chunk_size, &progress)
                .await?;
        }

        let manifest = self.store.read(&img.manifest_digest)?;
        let tag = r.tag().unwrap_or(img.manifest_digest.as_str());
        let url = client.repo_url(&repo, &format!("manifests/{tag}"));
        let mut req = client
            .http()
            .put(&url)
            .header(header::CONTENT_TYPE, img.manifest_media_type.as_str())
            .body(manifest);
        if let Some(a) = &auth {
            req = req.header(header::AUTHORIZATION, a);
        }
        let resp = req.send().await.map_err(http_err(Method::PUT, &url))?;
        expect(
            Method::PUT,
            &url,
            resp,
            &[StatusCode::CREATED, StatusCode::OK],
            r.domain(),
        )
        .await?;
        let rd = format!("{}@{}", r.repository(), img.manifest_digest);
        let mut rec = img.clone();
        if !rec.repo_digests.contains(&rd) {
            rec.repo_digests.push(rd);
            self.state.put_image(&rec, &[])?;
        }
        progress.emit(Progress::Done {
            digest: img.manifest_digest.clone(),
        });
        Ok(img.manifest_digest)
    }

    #[allow(clippy::too_many_arguments)]
    async fn push_blob(
        &self,
        client: &RegistryClient,
        repo: &str,
        auth: &Option<String>,
        digest: &Digest,
        size: u64,
        from: &[String],
        chunk_size: u64,
        progress: &ProgressSink,
    ) -> Result<()> {
        if client.blob_exists(repo, digest, auth).await?.is_some() {
            progress.emit(Progress::LayerExists {
                digest: digest.clone(),
            });
            return Ok(());
        }
        let post = |q: String| {
            let url = client.repo_url(repo, &format!("blobs/uploads/{q}"));
            let mut req = client.http().post(&url).header(header::CONTENT_LENGTH, 0);
            if let Some(a) = auth {
                req = req.header(header::AUTHORIZATION, a);
            }
            (url, req)
        };
        let mut upload = None;
        for f in from {
            let (url, req) = post(format!(
                "?mount={}&from={f}",
                digest.as_str().replace(':', "%3A")
            ));
            let resp = req.send().await.map_err(http_err(Method::POST, &url))?;
            if resp.status() == StatusCode::CREATED {
                progress.emit(Progress::LayerMounted {
                    digest: digest.clone(),
                    from: f.clone(),
                });
                return Ok(());
            }
            if resp.status() == StatusCode::ACCEPTED {
                // The registry could not mount and opened an ordinary upload instead.
                upload = Some(location(client, &resp, &url)?);
                break;
            }
        }
        let mut loc = match upload {
            Some(l) => l,
            None => {
                let (url, req) = post(String::new());
                let resp = req.send().await.map_err(http_err(Method::POST, &url))?;
                let resp = expect(
                    Method::POST,
                    &url,
                    resp,
                    &[StatusCode::ACCEPTED],
                    client.domain(),
                )
                .await?;
                location(client, &resp, &url)?
            }
        };
        progress.emit(Progress::LayerStart {
            digest: digest.clone(),
            total: size,
            resumed_from: 0,
        });
        let path = self.store.blob_path(digest);
        if size <= chunk_size {
            let file = tokio::fs::File::open(&path)
                .await
                .map_err(|source| ImageError::Io {
                    op: "open",
                    path: path.clone(),
                    source,
                })?;
            let url = with_digest(&loc, digest);
            let mut req = client
                .http()
                .put(&url)
                .header(header::CONTENT_TYPE, "application/octet-stream")
                .header(header::CONTENT_LENGTH, size)
                .body(reqwest::Body::from(file));
            if let Some(a) = auth {
                req = req.header(header::AUTHORIZATION, a);
            }
            let resp = req.send().await.map_err(http_err(Method::PUT, &url))?;
            expect(
                Method::PUT,
                &url,
                resp,
                &[StatusCode::CREATED],
                client.domain(),
            )
            .await?;
        } else {
            let mut file = std::fs::File::open(&path).map_err(|source| ImageError::Io {
                op: "open",
                path: path.clone(),
                source,
            })?;
            let mut start = 0u64;
            while start < size {
                let n = chunk_size.min(size - start);
                let mut buf = vec![0u8; n as usize];
                file.read_exact(&mut buf).map_err(|source| ImageError::Io {
                    op: "read",
                    path: path.clone(),
                    source,
                })?;
                let range = HeaderValue::from_str(&format!("{start}-{}", start + n - 1))
                    .map_err(|e| RegistryError::Invalid(e.to_string()))?;
                let mut req = client
                    .http()
                    .patch(&loc)
                    .header(header::CONTENT_TYPE, "application/octet-stream")
                    .header(header::CONTENT_LENGTH, n)
                    .header("Content-Range", range)
                    .body(buf);
                if let Some(a) = auth {
                    req = req.header(header::AUTHORIZATION, a);
                }
                let resp = req.send().await.map_err(http_err(Method::PATCH, &loc))?;
                let resp = expect(
                    Method::PATCH,
                    &loc,
                    resp,
                    &[StatusCode::ACCEPTED],
                    client.domain(),
                )
                .await?;
                loc = location(client, &resp, &loc)?;
                start += n;
                progress.emit(Progress::LayerProgress {
                    digest: digest.clone(),
                    current: start,
                    total: size,
                });
            }
            let url = with_digest(&loc, digest);
            let mut req = client.http().put(&url).header(header::CONTENT_LENGTH, 0);
            if let Some(a) = auth {
                req = req.header(header::AUTHORIZATION, a);
            }
            let resp = req.send().await.map_err(http_err(Method::PUT, &url))?;
            expect(
                Method::PUT,
                &url,
                resp,
                &[StatusCode::CREATED],
                client.domain(),
            )
            .await?;
        }
        progress.emit(Progress::LayerDone {
            digest: digest.clone(),
        });
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_state_query() {
        let d = Digest::of(b"");
        assert_eq!(
            with_digest("http://r/v2/x/blobs/uploads/u?_state=abc", &d),
            format!(
                "http://r/v2/x/blobs/uploads/u?_state=abc&digest=sha256%3A{}",
                d.hex()
            )
        );
        assert!(with_digest("/v2/x/blobs/uploads/u", &d).contains("/u?digest="));
    }
}
