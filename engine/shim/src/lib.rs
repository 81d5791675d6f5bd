//! The container shim: the types berthd and `berth-shim` share (config, control protocol, exit
//! status) and the log drivers' writers and readers, which the engine uses for `docker logs`.
//!
//! ```no_run
//! use berth_shim::protocol::{self, Request};
//! let r = protocol::call("/run/berth/containers/abc/shim.sock".as_ref(), &Request::State)?;
//! println!("{:?} {:?}", r.status, r.pid);
//! # Ok::<(), berth_shim::Error>(())
//! ```

pub mod atomic;
pub mod config;
mod error;
pub mod exit;
pub mod logfile;
pub mod protocol;
pub mod time;

pub use config::{LogConfig, Mode, ShimConfig};
pub use error::{Error, Result};
pub use exit::ExitStatus;
pub use logfile::{LogDriver, LogEntry, LogReader, LogWriter, Stream};
pub use protocol::{ProcessStatus, Request, Response};
