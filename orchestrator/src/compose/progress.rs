//! What `up`, `down` and friends tell the user while they work, in docker compose v2's plain
//! progress format (` Container web-1  Started`), on standard error.

use std::io::Write;
use std::sync::atomic::{AtomicBool, Ordering};

/// The kinds of object progress lines are about.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// A container.
    Container,
    /// A network.
    Network,
    /// A volume.
    Volume,
    /// An image.
    Image,
}

impl Kind {
    fn as_str(self) -> &'static str {
        match self {
            Kind::Container => "Container",
            Kind::Network => "Network",
            Kind::Volume => "Volume",
            Kind::Image => "Image",
        }
    }
}

/// Prints progress lines; silent when quiet.
#[derive(Debug, Default)]
pub struct Progress {
    quiet: AtomicBool,
}

impl Progress {
    /// A printer; `quiet` prints nothing.
    pub fn new(quiet: bool) -> Self {
        Self {
            quiet: AtomicBool::new(quiet),
        }
    }

    /// One line: ` Kind name  status`.
    pub fn event(&self, kind: Kind, name: &str, status: &str) {
        if self.quiet.load(Ordering::Relaxed) {
            return;
        }
        let mut e = std::io::stderr().lock();
        let _ = writeln!(e, " {} {name}  {status}", kind.as_str());
    }

    /// A warning, as compose prints them.
    pub fn warn(&self, msg: &str) {
        let mut e = std::io::stderr().lock();
        let _ = writeln!(e, "WARN[0000] {msg}");
    }
}
