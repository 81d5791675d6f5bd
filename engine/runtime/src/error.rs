//! The crate error: one enum per module, folded here so callers match on a single type.

use crate::cgroups::CgroupError;
use crate::config::ConfigError;
use crate::hooks::HookError;
use crate::process::ProcessError;
use crate::seccomp::SeccompError;
use crate::state::StateError;

/// Every error the runtime library returns.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The bundle's config.json is unreadable or invalid.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// The state directory or a container's lifecycle state forbids the operation.
    #[error(transparent)]
    State(#[from] StateError),
    /// A cgroup operation failed.
    #[error(transparent)]
    Cgroup(#[from] CgroupError),
    /// The seccomp profile cannot be compiled.
    #[error(transparent)]
    Seccomp(#[from] SeccompError),
    /// Spawning or setting up the container process failed.
    #[error(transparent)]
    Process(#[from] ProcessError),
    /// A lifecycle hook failed.
    #[error(transparent)]
    Hook(#[from] HookError),
}

/// Result with the crate error.
pub type Result<T> = std::result::Result<T, Error>;
