//! A build context received as a tar stream (plain, gzip or zstd), as `POST /build` sends it.

use crate::Result;
use crate::image::{ImageError, ImageService};
use std::io::{BufReader, Read};
use std::path::Path;

impl ImageService {
    /// Unpacks a context tar into `dir`; entries escaping it (`../`, absolute links) are
    /// refused by the layer unpacker. Blocking.
    pub fn unpack_context(&self, r: impl Read, dir: &Path) -> Result<()> {
        let dec = crate::image::pull::decompressor(BufReader::with_capacity(256 * 1024, r))
            .map_err(|source| ImageError::Io {
                op: "read build context",
                path: dir.to_path_buf(),
                source,
            })?;
        crate::image::unpack::unpack_layer(dec, dir)?;
        Ok(())
    }
}
