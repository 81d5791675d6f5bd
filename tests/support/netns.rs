//! Puts the calling test thread, and everything it spawns afterwards (registry, berthd,
//! docker, curl), into a network namespace of its own with loopback up.
//!
//! Every daemon creates its default bridge, nftables table and published ports; tests run in
//! parallel, so each one gets a private network stack in which those names, subnets and ports
//! cannot collide, and in which nothing outlives the test. Shared by the test harnesses of
//! several crates through `#[path]`.

use std::cell::Cell;
use std::process::Command;

thread_local! {
    static ISOLATED: Cell<bool> = const { Cell::new(false) };
}

/// Enters a fresh network namespace once per thread; `BERTH_TEST_HOST_NETWORK=1` opts out.
pub fn isolate() {
    if ISOLATED.with(|d| d.replace(true)) || std::env::var_os("BERTH_TEST_HOST_NETWORK").is_some() {
        return;
    }
    // SAFETY: unshare(2) only moves this thread into a new network namespace; it reads and
    // writes no memory of ours.
    let r = unsafe { libc::unshare(libc::CLONE_NEWNET) };
    assert_eq!(
        r,
        0,
        "unshare(CLONE_NEWNET): {}",
        std::io::Error::last_os_error()
    );
    let st = Command::new("ip")
        .args(["link", "set", "lo", "up"])
        .status()
        .expect("run ip");
    assert!(st.success(), "ip link set lo up");
}
