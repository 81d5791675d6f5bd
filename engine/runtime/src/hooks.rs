//! OCI lifecycle hooks: each runs with the container state as JSON on stdin.

use std::io::Write;
use std::os::unix::process::CommandExt;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use oci_spec::runtime::Hook;

/// A hook that could not run or failed.
#[derive(Debug, thiserror::Error)]
pub enum HookError {
    /// The hook binary could not be started.
    #[error("{kind} hook {path}: {source}")]
    Spawn {
        /// Hook kind (prestart, poststop, ...).
        kind: String,
        /// Hook path.
        path: String,
        /// The cause.
        source: std::io::Error,
    },
    /// The hook exited non-zero or was killed.
    #[error("{kind} hook {path} failed with exit code {code}")]
    Failed {
        /// Hook kind.
        kind: String,
        /// Hook path.
        path: String,
        /// Exit code (128+signal when killed).
        code: i32,
    },
    /// The hook ran past its timeout and was killed.
    #[error("{kind} hook {path} timed out after {secs}s")]
    Timeout {
        /// Hook kind.
        kind: String,
        /// Hook path.
        path: String,
        /// The configured timeout.
        secs: i64,
    },
}

/// Runs hooks in order, stopping at the first failure.
pub fn run(kind: &str, hooks: &[Hook], state_json: &[u8]) -> Result<(), HookError> {
    for h in hooks {
        run_one(kind, h, state_json)?;
    }
    Ok(())
}

fn run_one(kind: &str, h: &Hook, state_json: &[u8]) -> Result<(), HookError> {
    let path = h.path().display().to_string();
    tracing::debug!(kind, path, "running hook");
    let mut cmd = Command::new(h.path());
    let args = h.args().clone().unwrap_or_default();
    if let Some((argv0, rest)) = args.split_first() {
        cmd.arg0(argv0).args(rest);
    }
    cmd.env_clear();
    for kv in h.env().iter().flatten() {
        if let Some((k, v)) = kv.split_once('=') {
            cmd.env(k, v);
        }
    }
    cmd.stdin(Stdio::piped());
    let spawn_err = |source| HookError::Spawn {
        kind: kind.to_string(),
        path: path.clone(),
        source,
    };
    let mut child = cmd.spawn().map_err(spawn_err)?;
    if let Some(mut stdin) = child.stdin.take() {
        // A hook that ignores stdin may close it early; that is not a failure.
        let _ = stdin.write_all(state_json);
    }
    let deadline = h
        .timeout()
        .filter(|t| *t > 0)
        .map(|t| (t, Instant::now() + Duration::from_secs(t as u64)));
    let status = loop {
        match child.try_wait().map_err(spawn_err)? {
            Some(s) => break s,
            None => {
                if let Some((secs, d)) = deadline {
                    if Instant::now() >= d {
                        let _ = child.kill();
                        let _ = child.wait();
                        return Err(HookError::Timeout {
                            kind: kind.to_string(),
                            path,
                            secs,
                        });
                    }
                }
                std::thread::sleep(Duration::from_millis(1));
            }
        }
    };
    if !status.success() {
        use std::os::unix::process::ExitStatusExt;
        let code = status
            .code()
            .unwrap_or_else(|| 128 + status.signal().unwrap_or(0));
        return Err(HookError::Failed {
            kind: kind.to_string(),
            path,
            code,
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use oci_spec::runtime::HookBuilder;

    #[test]
    fn hook_gets_state_and_env() {
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("out");
        let h = HookBuilder::default()
            .path("/bin/sh")
            .args(vec![
                "sh".to_string(),
                "-c".to_string(),
                format!("cat > {}; echo $FOO >> {}", out.display(), out.display()),
            ])
            .env(vec!["FOO=bar".to_string()])
            .build()
            .unwrap();
        run("poststart", &[h], b"{\"id\":\"x\"}").unwrap();
        assert_eq!(
            std::fs::read_to_string(&out).unwrap(),
            "{\"id\":\"x\"}bar\n"
        );
    }

    #[test]
    fn failing_and_slow_hooks_error() {
        let fail = HookBuilder::default().path("/bin/false").build().unwrap();
        assert!(matches!(
            run("prestart", &[fail], b"{}"),
            Err(HookError::Failed { code: 1, .. })
        ));
        let slow = HookBuilder::default()
            .path("/bin/sleep")
            .args(vec!["sleep".to_string(), "5".to_string()])
            .timeout(1i64)
            .build()
            .unwrap();
        assert!(matches!(
            run("prestart", &[slow], b"{}"),
            Err(HookError::Timeout { .. })
        ));
    }
}
