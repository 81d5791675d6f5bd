//! The OCI runtime: turns a bundle into a running, isolated process.
//!
//! ```no_run
//! use berth_runtime::{Container, ContainerBuilder};
//! let c = ContainerBuilder::new("web", "/bundles/web").root("/run/berth-runtime").create()?;
//! c.start()?;
//! let c = Container::load(std::path::Path::new("/run/berth-runtime"), "web")?;
//! println!("{:?}", c.status());
//! # Ok::<(), berth_runtime::Error>(())
//! ```

pub use oci_spec;

pub mod cgroups;
pub mod config;
pub mod container;
mod error;
pub mod hooks;
pub mod process;
pub mod rootfs;
pub mod seccomp;
pub mod spec;
pub mod state;
pub mod sys;

pub use container::{Container, ContainerBuilder, OciState};
pub use error::{Error, Result};
pub use process::ExecOptions;
pub use seccomp::default_profile;
pub use state::Status;
