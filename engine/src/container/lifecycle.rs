//! Start, stop, kill, pause, remove, wait, attach, logs, the exit monitor with restart
//! policies, and recovery at open.

use super::record::{self, ContainerRecord};
use super::{
    AttachOptions, Attached, ContainerError, ContainerService, Gen, Live, LogOptions, LogStream,
    WaitCondition, io_err, is_mounted, lock, shim, signal, spec,
};
use crate::image::digest::Digest;
use crate::{Error, Result};
use berth_shim::protocol::Request;
use berth_shim::{ExitStatus, LogConfig, LogDriver, LogReader, Mode, ShimConfig};
use bollard_stubs::models::{
    ContainerUpdateBody, ContainerWaitExitError, ContainerWaitResponse, Health, HealthStatusEnum,
    RestartPolicyNameEnum,
};
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

/// Docker's restart backoff: starts at 100 ms, doubles, resets after 10 s of running.
const BACKOFF_START_MS: u64 = 100;
const BACKOFF_MAX_MS: u64 = 60_000;

fn task_err(e: tokio::task::JoinError) -> Error {
    ContainerError::Internal(format!("task failed: {e}")).into()
}

fn log_settings(rec: &ContainerRecord, path: &Path) -> LogConfig {
    let lc = rec.host_config.log_config.clone().unwrap_or_default();
    let driver = match lc.typ.as_deref() {
        Some("none") => LogDriver::None,
        Some("local") => LogDriver::Local,
        _ => LogDriver::JsonFile,
    };
    let opts = lc.config.unwrap_or_default();
    let max_size = opts
        .get("max-size")
        .and_then(|s| spec::parse_size(s))
        .filter(|s| *s > 0)
        .unwrap_or(0) as u64;
    let max_file = opts
        .get("max-file")
        .and_then(|s| s.parse().ok())
        .filter(|n| *n > 0)
        .unwrap_or(1);
    LogConfig {
        driver,
        path: if driver == LogDriver::None {
            Default::default()
        } else {
            path.to_path_buf()
        },
        max_size,
        max_file,
    }
}

impl ContainerService {
    /// Mounts the rootfs if nobody uses it yet.
    pub(super) fn mount_ref(&self, id: &str) -> Result<()> {
        let live = self.live(id);
        let mut refs = lock(&live.mount_refs);
        let target = self.rootfs(id);
        if *refs == 0 && !is_mounted(&target) {
            let rec = self.get(id)?;
            let d = Digest::parse(&rec.image_id)
                .map_err(|_| ContainerError::Internal(format!("bad image id {}", rec.image_id)))?;
            let img = self.inner.state.image(&d)?.ok_or_else(|| {
                ContainerError::Conflict(format!(
                    "image {} of container {id} is gone",
                    rec.image_id
                ))
            })?;
            let dir = self.dir(id);
            std::fs::create_dir_all(&target).map_err(io_err("create", &target))?;
            self.inner
                .images
                .mount_rootfs(&img, &dir.join("upper"), &dir.join("work"), &target)?;
        }
        *refs += 1;
        Ok(())
    }

    /// Drops one user of the rootfs mount; unmounts with the last.
    pub(super) fn mount_unref(&self, id: &str) {
        let live = self.live(id);
        let mut refs = lock(&live.mount_refs);
        *refs = refs.saturating_sub(1);
        if *refs == 0 {
            let t = self.rootfs(id);
            if is_mounted(&t) {
                let _ = crate::image::snapshot::unmount_rootfs(&t);
            }
        }
    }

    /// `docker start`.
    pub async fn start(&self, id: &str) -> Result<()> {
        let id = self.resolve(id)?;
        let live = self.live(&id);
        let _op = live.op.lock().await;
        let rec = self.get(&id)?;
        match rec.state.status.as_str() {
            "running" => return Err(ContainerError::NotModified.into()),
            "paused" => {
                return Err(ContainerError::Conflict(
                    "cannot start a paused container, try unpause instead".into(),
                )
                .into());
            }
            "removing" | "dead" => {
                return Err(ContainerError::Conflict(
                    "container is marked for removal and cannot be started".into(),
                )
                .into());
            }
            _ => {}
        }
        live.restart_gen.fetch_add(1, Ordering::SeqCst);
        live.backoff_ms.store(0, Ordering::SeqCst);
        self.modify(&id, |r| r.manual_stop = false)?;
        self.start_locked(&id, &live).await
    }

    /// Starts a container whose op lock the caller holds.
    async fn start_locked(&self, id: &str, live: &Arc<Live>) -> Result<()> {
        let svc = self.clone();
        let idc = id.to_string();
        let prepared = tokio::task::spawn_blocking(move || svc.prepare_and_spawn(&idc))
            .await
            .map_err(task_err)?;
        let tty = match prepared {
            Ok(t) => t,
            Err(e) => return Err(self.fail_start(id, live, e)),
        };
        let sock = self.socket(id);
        let pending: Vec<_> = lock(&live.pending_attach).drain(..).collect();
        for (o, tx) in pending {
            let r = shim::attach(&sock, o.stdin, o.stdout, o.stderr, &o.detach_keys)
                .await
                .map(|stream| Attached { stream, tty })
                .map_err(Error::from);
            let _ = tx.send(r);
        }
        let pid = match shim::call(&sock, &Request::Start).await {
            Ok(r) => r.pid.unwrap_or(0),
            Err(e) => {
                let _ = shim::call(
                    &sock,
                    &Request::Kill {
                        signal: libc::SIGKILL,
                        all: true,
                    },
                )
                .await;
                return Err(self.fail_start(id, live, Error::from(e)));
            }
        };
        let has_health = self
            .get(id)?
            .config
            .healthcheck
            .as_ref()
            .and_then(|h| h.test.as_ref())
            .is_some_and(|t| !t.is_empty() && t[0] != "NONE");
        let (_, rec) = self.modify(id, |r| {
            r.state.status = "running".into();
            r.state.pid = pid as i64;
            r.state.started_at = berth_runtime::state::now_rfc3339();
            r.state.exit_code = 0;
            r.state.error.clear();
            r.state.oom_killed = false;
            r.has_been_started = true;
            if has_health {
                r.health = Some(Health {
                    status: Some(HealthStatusEnum::STARTING),
                    failing_streak: Some(0),
                    log: r
                        .health
                        .as_ref()
                        .and_then(|h| h.log.clone())
                        .or(Some(Vec::new())),
                });
            }
        })?;
        live.watch.send_modify(|g| g.started += 1);
        self.emit("start", &rec, &[]);
        self.spawn_monitor(id, live);
        if has_health {
            self.spawn_health(id, live);
        }
        Ok(())
    }

    /// A failed start as Docker handles it: the error recorded, attach requests waiting for
    /// the start released, AutoRemove honoured (so `docker run --rm` does not wait forever),
    /// and a missing program reported as the client's fault (400, which the CLI maps to 127).
    fn fail_start(&self, id: &str, live: &Arc<Live>, e: Error) -> Error {
        self.record_start_error(id, &e);
        let msg = e.to_string();
        for (_, tx) in lock(&live.pending_attach).drain(..) {
            let _ = tx.send(Err(ContainerError::Conflict(msg.clone()).into()));
        }
        if self
            .get(id)
            .is_ok_and(|r| r.host_config.auto_remove == Some(true))
        {
            // The caller holds the op lock that removal takes: remove once it is released.
            let svc = self.clone();
            let idc = id.to_string();
            tokio::spawn(async move {
                if let Err(e) = svc.remove(&idc, true, false).await {
                    tracing::warn!(id = %idc, error = %e, "auto-remove after a failed start");
                }
            });
        }
        let user_error = [
            "executable file not found",
            "no such file or directory",
            "permission denied",
        ]
        .iter()
        .any(|m| msg.contains(m));
        if user_error {
            ContainerError::Invalid(msg).into()
        } else {
            e
        }
    }

    fn record_start_error(&self, id: &str, e: &Error) {
        let msg = e.to_string();
        let code = if msg.contains("not found") || msg.contains("No such file") {
            127
        } else if msg.contains("permission denied") {
            126
        } else {
            128
        };
        let _ = self.modify(id, |r| {
            if !r.state.is_running() {
                r.state.status = if r.has_been_started {
                    "exited".into()
                } else {
                    "created".into()
                };
                r.state.error = msg.clone();
                r.state.exit_code = code;
            }
        });
    }

    /// Mounts the rootfs, writes the bundle and spawns the shim. Blocking. Returns `tty`.
    fn prepare_and_spawn(&self, id: &str) -> Result<bool> {
        let rec = self.get(id)?;
        self.mount_ref(id)?;
        let res = (|| -> Result<bool> {
            let dir = self.dir(id);
            let rootfs = self.rootfs(id);
            let pid_of = |name: &str| -> Result<i64, ContainerError> {
                let other = self
                    .resolve(name)
                    .map_err(|_| ContainerError::NotFound(name.to_string()))?;
                let o = self
                    .get(&other)
                    .map_err(|_| ContainerError::NotFound(name.to_string()))?;
                if !o.state.is_running() || o.state.pid <= 0 {
                    return Err(ContainerError::Conflict(format!(
                        "cannot join namespaces of a non running container: {other} is not running"
                    )));
                }
                Ok(o.state.pid)
            };
            // Volumes become binds of their `_data` (mounted, copied up) for the spec.
            let host = self
                .inner
                .volumes
                .prepare_container(id, &rec.host_config, &rootfs)?;
            let netns = self.prepare_network(&rec, &dir)?;
            let (spec, _warnings) = spec::build(&spec::SpecInput {
                id,
                config: &rec.config,
                host: &host,
                rootfs: &rootfs,
                dir: &dir,
                pid_of: &pid_of,
                netns: netns.as_deref(),
            })?;
            let cfg_path = dir.join("config.json");
            let data = serde_json::to_vec_pretty(&spec)
                .map_err(|e| ContainerError::Internal(e.to_string()))?;
            std::fs::write(&cfg_path, data).map_err(io_err("write", &cfg_path))?;
            let run = self.run_dir(id);
            std::fs::create_dir_all(&run).map_err(io_err("create", &run))?;
            let sock = self.socket(id);
            let _ = std::fs::remove_file(&sock);
            let exit_file = dir.join("exit.json");
            let _ = std::fs::remove_file(&exit_file);
            let tty = rec.config.tty == Some(true);
            let cfg = ShimConfig {
                mode: Mode::Container,
                id: id.to_string(),
                exec_id: None,
                bundle: Some(dir.clone()),
                process: None,
                runtime_root: self.runtime_root(),
                socket: sock,
                exit_file,
                log: log_settings(&rec, &self.log_path(id)),
                tty,
                stdin: rec.config.open_stdin == Some(true),
                stdin_once: rec.config.stdin_once == Some(true),
                no_pivot: false,
            };
            shim::spawn(&self.shim_binary()?, &cfg, &run.join("shim.json"))?;
            Ok(tty)
        })();
        if res.is_err() {
            self.inner.volumes.release_container(id);
            self.inner.networks.teardown_sandbox(id);
            self.mount_unref(id);
        }
        res
    }

    /// Makes the container's network namespace, endpoints and published ports and writes
    /// its hosts and resolv.conf; returns the namespace to join. Blocking.
    fn prepare_network(
        &self,
        rec: &super::record::ContainerRecord,
        dir: &Path,
    ) -> Result<Option<std::path::PathBuf>> {
        let Some(req) = self.sandbox_request(rec)? else {
            return Ok(None);
        };
        let sb = self.inner.networks.setup_sandbox(&req)?;
        let domain = rec.config.domainname.clone().unwrap_or_default();
        crate::network::etc::write(dir, &req.hostname, &domain, &sb)
            .map_err(io_err("write network files in", dir))?;
        Ok(Some(sb.netns))
    }

    fn spawn_monitor(&self, id: &str, live: &Arc<Live>) {
        let svc = self.clone();
        let idc = id.to_string();
        let mut stop = self.inner.shutdown.subscribe();
        let h = tokio::spawn(async move {
            let sock = svc.socket(&idc);
            let res = tokio::select! {
                r = shim::wait(&sock) => r,
                _ = stop.wait_for(|s| *s) => return,
            };
            if svc.shutting_down() {
                return;
            }
            let exit = match res {
                Ok(e) => e,
                Err(_) => svc.exit_from_file(&idc),
            };
            svc.on_exit(&idc, exit, "the container's shim exited unexpectedly")
                .await;
        });
        *lock(&live.monitor) = Some(h);
    }

    /// The exit status the shim left, or Docker's "exited while the daemon was down" 255.
    fn exit_from_file(&self, id: &str) -> ExitStatus {
        match ExitStatus::read(&self.dir(id).join("exit.json")) {
            Ok(Some(e)) => e,
            _ => ExitStatus {
                exit_code: 255,
                signal: None,
                oom_killed: false,
                pid: 0,
                started_at: String::new(),
                finished_at: berth_runtime::state::now_rfc3339(),
            },
        }
    }

    /// Records an exit, unmounts, emits `die`, then applies the restart policy or AutoRemove.
    /// `lost_msg` becomes State.Error when no exit status was recorded.
    async fn on_exit(&self, id: &str, exit: ExitStatus, lost_msg: &str) {
        let live = self.live(id);
        // Healthcheck loops end with the process (this runs inside the monitor task).
        for t in lock(&live.tasks).drain(..) {
            t.abort();
        }
        let svc = self.clone();
        let idc = id.to_string();
        let _ = tokio::task::spawn_blocking(move || svc.cleanup_runtime(&idc)).await;
        let lost = exit.pid == 0 && exit.exit_code == 255 && exit.started_at.is_empty();
        let started = Instant::now();
        // Lazy: a crash that loses this leaves the record running with its shim gone, and
        // recovery runs this again (restart decision included).
        let Ok((decision, rec)) = self.modify_with(
            id,
            |r| {
                let ran_for = berth_shim::time::parse(&r.state.started_at)
                    .and_then(|t| std::time::SystemTime::now().duration_since(t).ok())
                    .unwrap_or_default();
                r.state.pid = 0;
                r.state.exit_code = exit.exit_code as i64;
                r.state.oom_killed = exit.oom_killed;
                r.state.finished_at = if exit.finished_at.is_empty() {
                    berth_runtime::state::now_rfc3339()
                } else {
                    exit.finished_at.clone()
                };
                if lost {
                    r.state.error = lost_msg.to_string();
                }
                if let Some(h) = &mut r.health {
                    h.status = Some(HealthStatusEnum::UNHEALTHY);
                    h.failing_streak = Some(0);
                }
                let rp = r.host_config.restart_policy.clone().unwrap_or_default();
                let max = rp.maximum_retry_count.unwrap_or(0);
                let restart = !r.manual_stop
                    && match rp.name.unwrap_or(RestartPolicyNameEnum::NO) {
                        RestartPolicyNameEnum::ALWAYS | RestartPolicyNameEnum::UNLESS_STOPPED => {
                            true
                        }
                        RestartPolicyNameEnum::ON_FAILURE => {
                            exit.exit_code != 0 && (max == 0 || r.restart_count < max)
                        }
                        _ => false,
                    };
                r.state.status = if restart {
                    "restarting".into()
                } else {
                    "exited".into()
                };
                if restart {
                    r.restart_count += 1;
                }
                (restart, ran_for)
            },
            true,
        ) else {
            return;
        };
        let (restart, ran_for) = decision;
        if exit.oom_killed {
            self.emit("oom", &rec, &[]);
        }
        self.emit("die", &rec, &[("exitCode", exit.exit_code.to_string())]);
        // Waiters (stop, wait) wake only now, so `die` is always published before `stop`.
        live.watch.send_modify(|g| {
            g.exits += 1;
            g.last_exit = exit.exit_code as i64;
        });
        if restart {
            let prev = live.backoff_ms.load(Ordering::SeqCst);
            let next = if ran_for >= Duration::from_secs(10) || prev == 0 {
                BACKOFF_START_MS
            } else {
                (prev * 2).min(BACKOFF_MAX_MS)
            };
            live.backoff_ms.store(next, Ordering::SeqCst);
            let gen_now = live.restart_gen.load(Ordering::SeqCst);
            let svc = self.clone();
            let idc = id.to_string();
            let l = live.clone();
            tokio::spawn(async move {
                tokio::time::sleep(Duration::from_millis(next).saturating_sub(started.elapsed()))
                    .await;
                let _op = l.op.lock().await;
                if l.restart_gen.load(Ordering::SeqCst) != gen_now || svc.shutting_down() {
                    return;
                }
                match svc.get(&idc) {
                    Ok(r) if r.state.status == "restarting" => {}
                    _ => return,
                }
                if let Err(e) = svc.start_locked(&idc, &l).await {
                    tracing::warn!(container = %idc, error = %e, "restart failed");
                    let _ = svc.modify(&idc, |r| r.state.status = "exited".into());
                }
            });
        } else if rec.host_config.auto_remove == Some(true) {
            let svc = self.clone();
            let idc = id.to_string();
            tokio::spawn(async move {
                // Like Docker's --rm: anonymous volumes go with the container.
                let _ = svc.remove(&idc, true, true).await;
            });
        }
    }

    /// Unmounts a removed container's rootfs and deletes its directories (best effort).
    fn discard_files(&self, id: &str) {
        let t = self.rootfs(id);
        if is_mounted(&t) {
            let _ = crate::image::snapshot::unmount_rootfs(&t);
        }
        let _ = std::fs::remove_dir_all(self.dir(id));
        let _ = std::fs::remove_dir_all(self.run_dir(id));
    }

    /// Unmounts the rootfs and removes runtime leftovers (state dir, cgroups). Blocking.
    fn cleanup_runtime(&self, id: &str) {
        self.mount_unref(id);
        self.inner.volumes.release_container(id);
        self.inner.networks.teardown_sandbox(id);
        let rt = self.runtime_root();
        if let Ok(c) = berth_runtime::Container::load(&rt, id) {
            let _ = c.delete(true);
        }
        let _ = std::fs::remove_dir_all(rt.join(id));
        if let Ok(rd) = std::fs::read_dir("/sys/fs/cgroup") {
            for e in rd.flatten() {
                let _ = std::fs::remove_dir(e.path().join("berth").join(id));
            }
        }
    }

    /// Sends a signal through the shim.
    async fn signal(&self, id: &str, sig: i32) -> Result<()> {
        shim::call(
            &self.socket(id),
            &Request::Kill {
                signal: sig,
                all: false,
            },
        )
        .await?;
        Ok(())
    }

    /// Waits until the exit counter passes `after`; false on timeout.
    async fn wait_exit(live: &Live, after: u64, timeout: Option<Duration>) -> bool {
        let mut rx = live.watch.subscribe();
        let fut = rx.wait_for(|g| g.exits > after || g.removed);
        match timeout {
            Some(t) => matches!(tokio::time::timeout(t, fut).await, Ok(Ok(_))),
            None => fut.await.is_ok(),
        }
    }

    /// `docker stop`: the stop signal, then SIGKILL after the timeout.
    pub async fn stop(&self, id: &str, signal: Option<&str>, timeout: Option<i64>) -> Result<()> {
        let id = self.resolve(id)?;
        let live = self.live(&id);
        let _op = live.op.lock().await;
        self.stop_locked(&id, &live, signal, timeout).await
    }

    async fn stop_locked(
        &self,
        id: &str,
        live: &Arc<Live>,
        sig: Option<&str>,
        timeout: Option<i64>,
    ) -> Result<()> {
        let rec = self.get(id)?;
        if rec.state.status == "restarting" {
            live.restart_gen.fetch_add(1, Ordering::SeqCst);
            let (_, rec) = self.modify(id, |r| {
                r.manual_stop = true;
                r.state.status = "exited".into();
            })?;
            self.emit("stop", &rec, &[]);
            return Ok(());
        }
        if !rec.state.is_running() {
            return Err(ContainerError::NotModified.into());
        }
        let stop_sig = match sig
            .filter(|s| !s.is_empty())
            .or(rec.config.stop_signal.as_deref())
        {
            Some(s) => signal::parse(s)?,
            None => libc::SIGTERM,
        };
        let t = timeout.or(rec.config.stop_timeout).unwrap_or(10);
        self.modify(id, |r| r.manual_stop = true)?;
        let before = live.watch.borrow().exits;
        let paused = rec.state.status == "paused";
        if self.signal(id, stop_sig).await.is_ok() {
            self.emit("kill", &rec, &[("signal", stop_sig.to_string())]);
            if paused {
                let _ = shim::call(&self.socket(id), &Request::Resume).await;
            }
            let limit = (t >= 0).then(|| Duration::from_secs(t as u64));
            if Self::wait_exit(live, before, limit).await {
                self.emit("stop", &rec, &[]);
                return Ok(());
            }
        }
        self.kill_and_wait(id, live, &rec, before).await?;
        self.emit("stop", &rec, &[]);
        Ok(())
    }

    async fn kill_and_wait(
        &self,
        id: &str,
        live: &Live,
        rec: &ContainerRecord,
        before: u64,
    ) -> Result<()> {
        if self.signal(id, libc::SIGKILL).await.is_ok() {
            self.emit("kill", rec, &[("signal", libc::SIGKILL.to_string())]);
            let _ = shim::call(&self.socket(id), &Request::Resume).await;
        }
        if !Self::wait_exit(live, before, Some(Duration::from_secs(30))).await {
            return Err(ContainerError::Internal(format!(
                "container {id} did not exit within 30 seconds of SIGKILL"
            ))
            .into());
        }
        Ok(())
    }

    /// `docker restart`.
    pub async fn restart(
        &self,
        id: &str,
        signal: Option<&str>,
        timeout: Option<i64>,
    ) -> Result<()> {
        let id = self.resolve(id)?;
        let live = self.live(&id);
        let _op = live.op.lock().await;
        match self.stop_locked(&id, &live, signal, timeout).await {
            Ok(()) | Err(Error::Container(ContainerError::NotModified)) => {}
            Err(e) => return Err(e),
        }
        live.restart_gen.fetch_add(1, Ordering::SeqCst);
        self.modify(&id, |r| r.manual_stop = false)?;
        self.start_locked(&id, &live).await?;
        let rec = self.get(&id)?;
        self.emit("restart", &rec, &[]);
        Ok(())
    }

    /// `docker kill`.
    pub async fn kill(&self, id: &str, sig: &str) -> Result<()> {
        let id = self.resolve(id)?;
        let n = signal::parse(sig)?;
        let rec = self.get(&id)?;
        if !rec.state.is_running() {
            return Err(ContainerError::Conflict(format!(
                "Cannot kill container: {id}: Container {id} is not running"
            ))
            .into());
        }
        self.modify(&id, |r| r.manual_stop = true)?;
        let live = self.live(&id);
        let before = live.watch.borrow().exits;
        self.signal(&id, n).await?;
        if rec.state.status == "paused" && n == libc::SIGKILL {
            let _ = shim::call(&self.socket(&id), &Request::Resume).await;
        }
        self.emit("kill", &rec, &[("signal", n.to_string())]);
        // Docker waits for a SIGKILLed container to be recorded as exited, so
        // `docker kill x && docker inspect x` already shows the exit code.
        if n == libc::SIGKILL
            && !Self::wait_exit(&live, before, Some(Duration::from_secs(10))).await
        {
            return Err(ContainerError::Internal(format!(
                "container {id} did not exit within 10 seconds of SIGKILL"
            ))
            .into());
        }
        Ok(())
    }

    /// `docker pause`.
    pub async fn pause(&self, id: &str) -> Result<()> {
        let id = self.resolve(id)?;
        let live = self.live(&id);
        let _op = live.op.lock().await;
        let rec = self.get(&id)?;
        match rec.state.status.as_str() {
            "running" => {}
            "paused" => {
                return Err(
                    ContainerError::Conflict(format!("Container {id} is already paused")).into(),
                );
            }
            _ => {
                return Err(
                    ContainerError::Conflict(format!("Container {id} is not running")).into(),
                );
            }
        }
        shim::call(&self.socket(&id), &Request::Pause).await?;
        let (_, rec) = self.modify(&id, |r| r.state.status = "paused".into())?;
        self.emit("pause", &rec, &[]);
        Ok(())
    }

    /// `docker unpause`.
    pub async fn unpause(&self, id: &str) -> Result<()> {
        let id = self.resolve(id)?;
        let live = self.live(&id);
        let _op = live.op.lock().await;
        let rec = self.get(&id)?;
        if rec.state.status != "paused" {
            return Err(ContainerError::Conflict(format!("Container {id} is not paused")).into());
        }
        shim::call(&self.socket(&id), &Request::Resume).await?;
        let (_, rec) = self.modify(&id, |r| r.state.status = "running".into())?;
        self.emit("unpause", &rec, &[]);
        Ok(())
    }

    /// `docker rm`; with `force` a running container is killed first; `volumes` also removes
    /// its anonymous volumes.
    pub async fn remove(&self, id: &str, force: bool, volumes: bool) -> Result<()> {
        let id = self.resolve(id)?;
        let live = self.live(&id);
        let _op = live.op.lock().await;
        let rec = self.get(&id)?;
        if rec.state.status == "removing" {
            return Err(ContainerError::Conflict(format!(
                "removal of container {id} is already in progress"
            ))
            .into());
        }
        if rec.state.is_running() || rec.state.status == "restarting" {
            if !force {
                let st = if rec.state.status == "paused" {
                    "paused"
                } else {
                    &rec.state.status
                };
                return Err(ContainerError::Conflict(format!(
                    "cannot remove container \"/{}\": container is {st}: stop the container before removing or force remove",
                    rec.name
                ))
                .into());
            }
            live.restart_gen.fetch_add(1, Ordering::SeqCst);
            self.modify(&id, |r| r.manual_stop = true)?;
            if rec.state.is_running() {
                let before = live.watch.borrow().exits;
                self.kill_and_wait(&id, &live, &rec, before).await?;
            }
        }
        self.modify(&id, |r| r.state.status = "removing".into())?;
        let execs: Vec<String> = lock(&self.inner.execs)
            .iter()
            .filter(|(_, e)| e.container_id == id)
            .map(|(k, _)| k.clone())
            .collect();
        for e in execs {
            if let Some(mut x) = lock(&self.inner.execs).remove(&e)
                && let Some(t) = x.monitor.take()
            {
                t.abort();
            }
        }
        let svc = self.clone();
        let idc = id.clone();
        tokio::task::spawn_blocking(move || {
            svc.cleanup_runtime(&idc);
            svc.discard_files(&idc);
        })
        .await
        .map_err(task_err)?;
        // Lazy: the durable "removing" above is what recovery finishes after a crash.
        record::remove_lazy(&self.inner.state, &id)?;
        if let Err(e) = self.inner.volumes.detach_container(&id, volumes) {
            tracing::warn!(container = %id, error = %e, "releasing volumes");
        }
        live.watch.send_modify(|g| g.removed = true);
        for (_, tx) in lock(&live.pending_attach).drain(..) {
            let _ = tx.send(Err(ContainerError::NotFound(id.clone()).into()));
        }
        lock(&self.inner.live).remove(&id);
        self.emit("destroy", &rec, &[]);
        Ok(())
    }

    /// `docker wait`.
    pub async fn wait(&self, id: &str, condition: WaitCondition) -> Result<ContainerWaitResponse> {
        let id = self.resolve(id)?;
        let live = self.live(&id);
        let mut rx = live.watch.subscribe();
        let g0: Gen = rx.borrow().clone();
        let rec = self.get(&id)?;
        let running = rec.state.is_running() || rec.state.status == "restarting";
        if condition == WaitCondition::NotRunning && !running {
            return Ok(ContainerWaitResponse {
                status_code: rec.state.exit_code,
                error: None,
            });
        }
        let g = rx
            .wait_for(|g| match condition {
                WaitCondition::Removed => g.removed,
                _ => g.exits > g0.exits || g.removed,
            })
            .await
            .map_err(|_| ContainerError::NotFound(id.clone()))?
            .clone();
        let err = self
            .get(&id)
            .ok()
            .map(|r| r.state.error)
            .filter(|e| !e.is_empty())
            .map(|m| ContainerWaitExitError { message: Some(m) });
        let code = if g.exits > 0 {
            g.last_exit
        } else {
            rec.state.exit_code
        };
        Ok(ContainerWaitResponse {
            status_code: code,
            error: err,
        })
    }

    /// `docker update`: cgroup resources (applied live) and the restart policy.
    pub async fn update(&self, id: &str, body: ContainerUpdateBody) -> Result<Vec<String>> {
        let id = self.resolve(id)?;
        let rec = self.get(&id)?;
        if let Some(rp) = &body.restart_policy
            && rec.host_config.auto_remove == Some(true)
            && rp.name.is_some_and(|n| {
                n != RestartPolicyNameEnum::NO && n != RestartPolicyNameEnum::EMPTY
            })
        {
            return Err(ContainerError::Invalid(
                "Restart policy cannot be updated because AutoRemove is enabled for the container"
                    .into(),
            )
            .into());
        }
        if body.memory.is_some_and(|m| m > 0 && m < 6 << 20) {
            return Err(
                ContainerError::Invalid("Minimum memory limit allowed is 6MB".into()).into(),
            );
        }
        let (_, rec) = self.modify(&id, |r| {
            let h = &mut r.host_config;
            macro_rules! set { ($($f:ident),*) => { $( if body.$f.is_some() { h.$f = body.$f.clone(); } )* } }
            set!(cpu_shares, memory, cpu_period, cpu_quota, cpuset_cpus, cpuset_mems, memory_reservation, memory_swap, nano_cpus, pids_limit, blkio_weight, restart_policy);
            if body.memory.is_some_and(|m| m > 0) && body.memory_swap.is_none() {
                h.memory_swap = body.memory.map(|m| m * 2);
            }
        })?;
        let mut warnings = Vec::new();
        if rec.state.is_running() {
            warnings.extend(super::stats::apply_resources(&id, &rec.host_config));
        }
        self.emit("update", &rec, &[]);
        Ok(warnings)
    }

    /// Resizes the container's TTY.
    pub async fn resize(&self, id: &str, h: u16, w: u16) -> Result<()> {
        let id = self.resolve(id)?;
        let rec = self.get(&id)?;
        if !rec.state.is_running() {
            return Err(ContainerError::Conflict(format!("Container {id} is not running")).into());
        }
        shim::call(
            &self.socket(&id),
            &Request::Resize {
                height: h,
                width: w,
            },
        )
        .await?;
        Ok(())
    }

    /// `docker attach`; before start, waits for the start (as `docker run -it` needs).
    pub async fn attach(&self, id: &str, opts: AttachOptions) -> Result<Attached> {
        let id = self.resolve(id)?;
        let live = self.live(&id);
        let rx = {
            let _op = live.op.lock().await;
            let rec = self.get(&id)?;
            let tty = rec.config.tty == Some(true);
            let stdin = opts.stdin && rec.config.open_stdin == Some(true);
            let detach_keys = if tty && stdin {
                opts.detach_keys.clone()
            } else {
                Vec::new()
            };
            if rec.state.is_running() {
                let sock = self.socket(&id);
                let stream =
                    shim::attach(&sock, stdin, opts.stdout, opts.stderr, &detach_keys).await?;
                return Ok(Attached { stream, tty });
            }
            let (tx, rx) = tokio::sync::oneshot::channel();
            let o = AttachOptions {
                stdin,
                detach_keys,
                ..opts
            };
            lock(&live.pending_attach).push((o, tx));
            rx
        };
        rx.await
            .map_err(|_| Error::from(ContainerError::NotFound(id.clone())))?
    }

    /// `docker logs`: entries from the log file; with `follow`, until the container stops.
    pub fn logs(&self, id: &str, opts: LogOptions) -> Result<LogStream> {
        let id = self.resolve(id)?;
        let rec = self.get(&id)?;
        let lc = log_settings(&rec, &self.log_path(&id));
        if lc.driver == LogDriver::None {
            return Err(ContainerError::NotImplemented(
                "configured logging driver does not support reading".into(),
            )
            .into());
        }
        let mut reader = LogReader::open(lc.driver, lc.path.clone(), lc.max_file)
            .map_err(|e| ContainerError::Internal(format!("open log: {e}")))?;
        if let Some(n) = opts.tail {
            reader = reader.tail(n);
        }
        if let Some(t) = opts.since {
            reader = reader.since(t);
        }
        if let Some(t) = opts.until {
            reader = reader.until(t);
        }
        let (tx, rx) = tokio::sync::mpsc::channel(256);
        let live = self.live(&id);
        let follow = opts.follow && rec.state.is_running() && opts.until.is_none();
        let stop = Arc::new(AtomicBool::new(false));
        if follow {
            // Stop following once the container exits (and the shim has flushed the log).
            let s = stop.clone();
            let mut w = live.watch.subscribe();
            let after = w.borrow().exits;
            let txc = tx.clone();
            tokio::spawn(async move {
                let exited = tokio::select! {
                    r = w.wait_for(|g| g.exits > after || g.removed) => r.is_ok(),
                    _ = txc.closed() => false,
                };
                if exited {
                    tokio::time::sleep(Duration::from_millis(200)).await;
                }
                s.store(true, Ordering::SeqCst);
            });
        }
        tokio::task::spawn_blocking(move || {
            let want = |e: &berth_shim::LogEntry| match e.stream {
                berth_shim::Stream::Stdout => opts.stdout,
                berth_shim::Stream::Stderr => opts.stderr,
                berth_shim::Stream::Stdin => false,
            };
            let send = |e: berth_shim::LogEntry| -> bool {
                if !want(&e) {
                    return true;
                }
                tx.blocking_send(e).is_ok()
            };
            let r = if follow {
                reader.follow(&stop, send)
            } else {
                reader.for_each(send)
            };
            if let Err(e) = r {
                tracing::debug!(error = %e, "log reader ended");
            }
        });
        Ok(rx)
    }

    /// `docker container prune`: removes every stopped container; returns the IDs and the
    /// bytes their writable layers used.
    pub async fn prune(&self) -> Result<(Vec<String>, u64)> {
        let mut ids = Vec::new();
        let mut bytes = 0;
        for r in record::all(&self.inner.state)? {
            if r.creating
                || r.state.is_running()
                || matches!(r.state.status.as_str(), "restarting" | "removing")
            {
                continue;
            }
            let size = super::archive::dir_size(&self.dir(&r.id).join("upper"));
            if self.remove(&r.id, false, false).await.is_ok() {
                ids.push(r.id);
                bytes += size;
            }
        }
        Ok((ids, bytes))
    }

    /// Repairs state at open: see the module docs of `container`.
    pub(super) async fn recover(&self) -> Result<()> {
        let recs = record::all(&self.inner.state)?;
        let mut known: std::collections::HashSet<String> =
            recs.iter().map(|r| r.id.clone()).collect();
        known.extend(
            recs.iter()
                .filter_map(|r| r.id.get(..super::RUN_ID_LEN))
                .map(str::to_string),
        );
        // Directories of containers that never got a record.
        for base in [
            self.inner.opts.root.join("containers"),
            self.inner.opts.exec_root.join("containers"),
        ] {
            for e in std::fs::read_dir(&base)
                .map_err(io_err("read", &base))?
                .flatten()
            {
                let n = e.file_name().to_string_lossy().to_string();
                if !known.contains(&n) {
                    let t = e.path().join("rootfs");
                    if is_mounted(&t) {
                        let _ = crate::image::snapshot::unmount_rootfs(&t);
                    }
                    let _ = std::fs::remove_dir_all(e.path());
                }
            }
        }
        let mut to_start = Vec::new();
        for r in recs {
            if r.creating {
                let _ = std::fs::remove_dir_all(self.dir(&r.id));
                let _ = std::fs::remove_dir_all(self.run_dir(&r.id));
                record::remove(&self.inner.state, &r.id)?;
                continue;
            }
            if r.state.status == "removing" {
                // A removal cut short (its last write is lazy): finish it.
                self.inner.networks.teardown_sandbox(&r.id);
                self.discard_files(&r.id);
                record::remove(&self.inner.state, &r.id)?;
                if let Err(e) = self.inner.volumes.detach_container(&r.id, false) {
                    tracing::warn!(container = %r.id, error = %e, "releasing volumes");
                }
                continue;
            }
            let live = self.live(&r.id);
            if r.state.is_running() || r.state.status == "restarting" {
                let alive = matches!(
                    shim::call(&self.socket(&r.id), &Request::State).await,
                    Ok(resp) if matches!(resp.status, Some(berth_shim::ProcessStatus::Running | berth_shim::ProcessStatus::Paused))
                );
                if alive {
                    *lock(&live.mount_refs) = 1;
                    self.spawn_monitor(&r.id, &live);
                    if r.health.is_some() {
                        self.spawn_health(&r.id, &live);
                    }
                    continue;
                }
                let exit = self.exit_from_file(&r.id);
                *lock(&live.mount_refs) = 1;
                self.on_exit(&r.id, exit, "container exited while the daemon was down")
                    .await;
                continue;
            }
            let t = self.rootfs(&r.id);
            if is_mounted(&t) {
                let _ = crate::image::snapshot::unmount_rootfs(&t);
            }
            let policy = r.host_config.restart_policy.as_ref().and_then(|p| p.name);
            let restart = match policy {
                Some(RestartPolicyNameEnum::ALWAYS) => r.has_been_started,
                Some(RestartPolicyNameEnum::UNLESS_STOPPED) => r.has_been_started && !r.manual_stop,
                _ => false,
            };
            if restart && r.state.status == "exited" {
                to_start.push(r.id.clone());
            }
        }
        for id in to_start {
            if let Err(e) = self.start(&id).await {
                tracing::warn!(container = %id, error = %e, "restart at daemon start failed");
            }
        }
        Ok(())
    }
}
