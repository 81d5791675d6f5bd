//! The shim's configuration: berthd writes it as JSON and passes its path as the only argument.

use std::path::{Path, PathBuf};

use oci_spec::runtime::Process;
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result, io_err, json_err};
pub use crate::logfile::LogDriver;

/// Whether the shim runs a container's init or one exec'd process.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Mode {
    /// Create the container from `bundle`; the exit is init's; the container is deleted after.
    Container,
    /// Run `process` in the existing container `id`; the container stays.
    Exec,
}

/// Where and how the process's output is kept.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LogConfig {
    /// The log driver.
    pub driver: LogDriver,
    /// The current log file (`<path>.1` .. are the rotated ones).
    #[serde(default)]
    pub path: PathBuf,
    /// Rotate once the current file reaches this many bytes; 0 never rotates.
    #[serde(default)]
    pub max_size: u64,
    /// How many files to keep, the current one included (at least 1).
    #[serde(default = "one")]
    pub max_file: u32,
}

fn one() -> u32 {
    1
}

impl Default for LogConfig {
    fn default() -> Self {
        LogConfig {
            driver: LogDriver::None,
            path: PathBuf::new(),
            max_size: 0,
            max_file: 1,
        }
    }
}

/// Everything one shim needs: `berth-shim /path/shim.json`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ShimConfig {
    /// Container or exec mode.
    pub mode: Mode,
    /// The runtime container id (Docker's 64-hex container id).
    pub id: String,
    /// The exec id (exec mode).
    #[serde(default)]
    pub exec_id: Option<String>,
    /// The bundle directory holding config.json (container mode).
    #[serde(default)]
    pub bundle: Option<PathBuf>,
    /// The process to run (exec mode).
    #[serde(default)]
    pub process: Option<Process>,
    /// berth_runtime's state root.
    pub runtime_root: PathBuf,
    /// The control socket; its directory also holds shim.log and the console socket.
    pub socket: PathBuf,
    /// Where the exit status is written when the process ends.
    pub exit_file: PathBuf,
    /// Logging.
    #[serde(default)]
    pub log: LogConfig,
    /// The process has a pseudo terminal (stdout and stderr are one stream).
    #[serde(default)]
    pub tty: bool,
    /// Keep the process's stdin open for attach clients (else it reads /dev/null).
    #[serde(default)]
    pub stdin: bool,
    /// Close the process's stdin when the first attached client closes its input.
    #[serde(default)]
    pub stdin_once: bool,
    /// Create the container with MS_MOVE + chroot instead of pivot_root.
    #[serde(default)]
    pub no_pivot: bool,
}

impl ShimConfig {
    /// Reads and checks a config file.
    pub fn load(path: &Path) -> Result<ShimConfig> {
        let data = std::fs::read(path).map_err(io_err(format!("read {}", path.display())))?;
        let cfg: ShimConfig =
            serde_json::from_slice(&data).map_err(json_err(format!("parse {}", path.display())))?;
        cfg.validate()?;
        Ok(cfg)
    }

    /// Writes the config atomically (what berthd does before spawning the shim).
    pub fn save(&self, path: &Path) -> Result<()> {
        self.validate()?;
        let data = serde_json::to_vec_pretty(self).map_err(json_err("encode shim config"))?;
        crate::atomic::write_file(path, &data)
    }

    /// Checks that the fields the mode needs are there.
    pub fn validate(&self) -> Result<()> {
        match self.mode {
            Mode::Container if self.bundle.is_none() => {
                return Err(Error::Config("container mode needs \"bundle\"".into()));
            }
            Mode::Exec if self.process.is_none() => {
                return Err(Error::Config("exec mode needs \"process\"".into()));
            }
            _ => {}
        }
        if self.id.is_empty() {
            return Err(Error::Config("\"id\" is empty".into()));
        }
        if self
            .socket
            .parent()
            .is_none_or(|p| p.as_os_str().is_empty())
        {
            return Err(Error::Config("\"socket\" needs a directory".into()));
        }
        if self.log.driver != LogDriver::None && self.log.path.as_os_str().is_empty() {
            return Err(Error::Config("\"log.path\" is empty".into()));
        }
        Ok(())
    }

    /// The directory of the control socket (shim.log and console.sock live there).
    pub fn dir(&self) -> &Path {
        self.socket.parent().unwrap_or(Path::new("."))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_documented_shape() {
        let cfg: ShimConfig = serde_json::from_str(
            r#"{"mode":"container","id":"abc","exec_id":null,"bundle":"/b","process":null,
                "runtime_root":"/run/berth/runtime","socket":"/run/berth/c/abc/shim.sock",
                "exit_file":"/run/berth/c/abc/exit.json",
                "log":{"driver":"json-file","path":"/l/abc-json.log","max_size":0,"max_file":1},
                "tty":false,"stdin":false,"stdin_once":false,"no_pivot":false}"#,
        )
        .unwrap();
        cfg.validate().unwrap();
        assert_eq!(cfg.log.driver, LogDriver::JsonFile);
        assert_eq!(cfg.dir(), Path::new("/run/berth/c/abc"));
    }

    #[test]
    fn exec_mode_needs_a_process() {
        let cfg: ShimConfig = serde_json::from_str(
            r#"{"mode":"exec","id":"abc","runtime_root":"/r","socket":"/s/x.sock",
                "exit_file":"/s/exit.json","log":{"driver":"none"}}"#,
        )
        .unwrap();
        assert!(cfg.validate().is_err());
    }
}
