//! Network namespaces pinned by a bind mount on a file, as `ip netns add` does, so the
//! namespace outlives any process and the runtime joins it by path.

use super::netlink::Netlink;
use std::io;
use std::path::Path;

/// Creates a namespace pinned at `path` and returns a netlink socket inside it with `lo` up.
///
/// The namespace is made by a dedicated thread that exits afterwards, so no pooled thread
/// is ever left in a foreign namespace.
pub fn create(path: &Path) -> io::Result<Netlink> {
    if let Some(d) = path.parent() {
        std::fs::create_dir_all(d)?;
    }
    std::fs::File::create(path)?;
    let p = path.to_path_buf();
    let res = std::thread::spawn(move || -> io::Result<Netlink> {
        // SAFETY: unshare affects only this thread, which ends right after.
        if unsafe { libc::unshare(libc::CLONE_NEWNET) } != 0 {
            return Err(io::Error::last_os_error());
        }
        rustix::mount::mount_bind("/proc/thread-self/ns/net", &p)?;
        // A socket stays in the namespace it was opened in, whatever thread uses it later.
        let mut nl = Netlink::open()?;
        nl.set_up(1)?;
        Ok(nl)
    })
    .join()
    .map_err(|_| io::Error::other("netns thread panicked"))?;
    if res.is_err() {
        remove(path);
    }
    res
}

/// Unmounts and deletes a pinned namespace; the links inside die with it. Best effort; true
/// when a namespace was pinned there.
pub fn remove(path: &Path) -> bool {
    let pinned = rustix::mount::unmount(path, rustix::mount::UnmountFlags::DETACH).is_ok();
    let _ = std::fs::remove_file(path);
    pinned
}
