//! File replacement safe against process crashes: a reader sees the old file or the new one,
//! never a torn one, whichever process dies when. No fsync: the files written here (a shim's
//! config, a process's exit status) describe processes that a machine crash ends anyway, and
//! two fsyncs a write were a measurable part of every start and every stop.

use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;

use crate::error::{Result, io_err};

/// Writes `data` to `path` through a temporary file: write, rename.
pub fn write_file(path: &Path, data: &[u8]) -> Result<()> {
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy())
        .unwrap_or_default();
    let tmp = dir.join(format!(".{name}.tmp-{}", std::process::id()));
    let result = (|| {
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o644)
            .custom_flags(libc::O_CLOEXEC)
            .open(&tmp)
            .map_err(io_err(format!("create {}", tmp.display())))?;
        f.write_all(data)
            .map_err(io_err(format!("write {}", tmp.display())))?;
        std::fs::rename(&tmp, path).map_err(io_err(format!("rename to {}", path.display())))
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replaces_and_leaves_no_temp() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("exit.json");
        write_file(&p, b"one").unwrap();
        write_file(&p, b"two").unwrap();
        assert_eq!(std::fs::read(&p).unwrap(), b"two");
        assert_eq!(std::fs::read_dir(d.path()).unwrap().count(), 1);
    }
}
