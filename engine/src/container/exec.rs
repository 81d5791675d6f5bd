//! `docker exec`: one shim in exec mode per process, joined to the container's namespaces.

use super::{Attached, ContainerError, ContainerService, io_err, lock, shim, spec, user};
use crate::{Error, Result};
use berth_shim::protocol::{FrameDecoder, Request};
use berth_shim::{ExitStatus, LogConfig, Mode, ShimConfig};
use bollard_stubs::models::{ExecConfig, ExecInspectResponse, ProcessConfig};
use oci_spec::runtime::{Process, Spec};
use std::path::PathBuf;
use std::time::Duration;
use tokio::io::AsyncReadExt;

/// One exec instance (kept in memory, like Docker).
pub(super) struct ExecState {
    pub container_id: String,
    pub config: ExecConfig,
    pub started: bool,
    pub running: bool,
    pub exit_code: Option<i64>,
    pub pid: i64,
    pub monitor: Option<tokio::task::JoinHandle<()>>,
}

impl ContainerService {
    fn exec_dir(&self, exec_id: &str) -> PathBuf {
        self.inner.opts.exec_root.join("execs").join(&exec_id[..24])
    }

    /// `POST /containers/{id}/exec`.
    pub async fn exec_create(&self, id: &str, cfg: ExecConfig) -> Result<String> {
        let id = self.resolve(id)?;
        let rec = self.get(&id)?;
        match rec.state.status.as_str() {
            "running" => {}
            "paused" => {
                return Err(ContainerError::Conflict(format!(
                    "Container {id} is paused, unpause the container before exec"
                ))
                .into());
            }
            _ => {
                return Err(
                    ContainerError::Conflict(format!("Container {id} is not running")).into(),
                );
            }
        }
        if cfg.cmd.as_ref().is_none_or(|c| c.is_empty()) {
            return Err(ContainerError::Invalid("No exec command specified".into()).into());
        }
        let exec_id = super::name::new_id();
        lock(&self.inner.execs).insert(
            exec_id.clone(),
            ExecState {
                container_id: id.clone(),
                config: cfg.clone(),
                started: false,
                running: false,
                exit_code: None,
                pid: 0,
                monitor: None,
            },
        );
        let (_, rec) = self.modify(&id, |r| r.exec_ids.push(exec_id.clone()))?;
        let cmd = cfg.cmd.unwrap_or_default().join(" ");
        self.emit(
            &format!("exec_create: {cmd}"),
            &rec,
            &[("execID", exec_id.clone())],
        );
        Ok(exec_id)
    }

    /// The exec's process: the container's, with the exec's args, env, user, cwd and TTY.
    fn exec_process(&self, cid: &str, cfg: &ExecConfig, tty: bool) -> Result<Process> {
        let path = self.dir(cid).join("config.json");
        let txt = std::fs::read(&path).map_err(io_err("read", &path))?;
        let spec: Spec = serde_json::from_slice(&txt)
            .map_err(|e| ContainerError::Internal(format!("bundle spec: {e}")))?;
        let rec = self.get(cid)?;
        let mut p = spec.process().clone().unwrap_or_default();
        p.set_args(cfg.cmd.clone());
        let mut env = p.env().clone().unwrap_or_default();
        spec::merge_env(&mut env, cfg.env.as_deref().unwrap_or(&[]));
        if tty && !env.iter().any(|e| e.starts_with("TERM=")) {
            env.push("TERM=xterm".into());
        }
        if let Some(u) = cfg.user.as_deref().filter(|u| !u.is_empty()) {
            let r = user::resolve(
                &self.rootfs(cid),
                u,
                rec.host_config.group_add.as_deref().unwrap_or(&[]),
            )?;
            let mut pu = p.user().clone();
            pu.set_uid(r.uid);
            pu.set_gid(r.gid);
            pu.set_additional_gids(Some(r.additional_gids));
            p.set_user(pu);
            env.retain(|e| !e.starts_with("HOME="));
            env.push(format!("HOME={}", r.home));
        }
        p.set_env(Some(env));
        if let Some(w) = cfg.working_dir.as_deref().filter(|w| !w.is_empty()) {
            p.set_cwd(PathBuf::from(w));
        }
        p.set_terminal(Some(tty));
        p.set_console_size(None);
        if cfg.privileged == Some(true) {
            let all = spec::capabilities(&bollard_stubs::models::HostConfig {
                privileged: Some(true),
                ..Default::default()
            })?;
            let v = serde_json::json!({"bounding": all, "effective": all, "permitted": all});
            p.set_capabilities(serde_json::from_value(v).ok());
        }
        Ok(p)
    }

    /// Starts an exec; returns its attach stream unless `detach`.
    pub async fn exec_start(
        &self,
        exec_id: &str,
        detach: bool,
        tty: Option<bool>,
    ) -> Result<Option<Attached>> {
        let (cid, cfg) = {
            let mut ex = lock(&self.inner.execs);
            let e = ex
                .get_mut(exec_id)
                .ok_or_else(|| Error::from(ContainerError::NoSuchExec(exec_id.to_string())))?;
            if e.started {
                return Err(ContainerError::Conflict(format!(
                    "Error: Exec command {exec_id} is already running"
                ))
                .into());
            }
            e.started = true;
            (e.container_id.clone(), e.config.clone())
        };
        let res = self
            .exec_start_inner(exec_id, &cid, &cfg, detach, tty)
            .await;
        if res.is_err()
            && let Some(e) = lock(&self.inner.execs).get_mut(exec_id)
        {
            e.running = false;
            e.exit_code = Some(126);
        }
        res
    }

    async fn exec_start_inner(
        &self,
        exec_id: &str,
        cid: &str,
        cfg: &ExecConfig,
        detach: bool,
        tty: Option<bool>,
    ) -> Result<Option<Attached>> {
        let rec = self.get(cid)?;
        if rec.state.status != "running" {
            return Err(ContainerError::Conflict(format!("Container {cid} is not running")).into());
        }
        let tty = tty.or(cfg.tty).unwrap_or(false);
        let process = self.exec_process(cid, cfg, tty)?;
        let dir = self.exec_dir(exec_id);
        std::fs::create_dir_all(&dir).map_err(io_err("create", &dir))?;
        let sock = dir.join("shim.sock");
        let stdin = cfg.attach_stdin == Some(true) && !detach;
        let shim_cfg = ShimConfig {
            mode: Mode::Exec,
            id: cid.to_string(),
            exec_id: Some(exec_id.to_string()),
            bundle: Some(self.dir(cid)),
            process: Some(process),
            runtime_root: self.runtime_root(),
            socket: sock.clone(),
            exit_file: dir.join("exit.json"),
            log: LogConfig::default(),
            tty,
            stdin,
            stdin_once: true,
            no_pivot: false,
        };
        let bin = self.shim_binary()?;
        let cfg_path = dir.join("shim.json");
        let spawned = tokio::task::spawn_blocking(move || shim::spawn(&bin, &shim_cfg, &cfg_path))
            .await
            .map_err(|e| ContainerError::Internal(e.to_string()))?;
        if let Err(e) = spawned {
            let _ = std::fs::remove_dir_all(&dir);
            return Err(e.into());
        }
        let attached = if detach {
            None
        } else {
            let out = cfg.attach_stdout.unwrap_or(true);
            let err = cfg.attach_stderr.unwrap_or(true);
            let keys = match (&cfg.detach_keys, tty && stdin) {
                (_, false) => Vec::new(),
                (Some(k), true) if !k.is_empty() => shim::parse_detach_keys(k)?,
                (_, true) => shim::parse_detach_keys(shim::DEFAULT_DETACH_KEYS)?,
            };
            Some(Attached {
                stream: shim::attach(&sock, stdin, out, err, &keys).await?,
                tty,
            })
        };
        let pid = shim::call(&sock, &Request::Start).await?.pid.unwrap_or(0);
        if let Some(e) = lock(&self.inner.execs).get_mut(exec_id) {
            e.running = true;
            e.pid = pid as i64;
        }
        let cmd = cfg.cmd.clone().unwrap_or_default().join(" ");
        self.emit(
            &format!("exec_start: {cmd}"),
            &rec,
            &[("execID", exec_id.to_string())],
        );
        let svc = self.clone();
        let eid = exec_id.to_string();
        let cidc = cid.to_string();
        let h = tokio::spawn(async move {
            let exit = match shim::wait(&sock).await {
                Ok(e) => e,
                Err(_) => ExitStatus::read(&dir.join("exit.json"))
                    .ok()
                    .flatten()
                    .unwrap_or(ExitStatus {
                        exit_code: 126,
                        signal: None,
                        oom_killed: false,
                        pid: 0,
                        started_at: String::new(),
                        finished_at: String::new(),
                    }),
            };
            if let Some(e) = lock(&svc.inner.execs).get_mut(&eid) {
                e.running = false;
                e.exit_code = Some(exit.exit_code as i64);
            }
            let _ = std::fs::remove_dir_all(&dir);
            if let Ok(rec) = svc.get(&cidc) {
                svc.emit(
                    "exec_die",
                    &rec,
                    &[
                        ("execID", eid.clone()),
                        ("exitCode", exit.exit_code.to_string()),
                    ],
                );
            }
        });
        if let Some(e) = lock(&self.inner.execs).get_mut(exec_id) {
            e.monitor = Some(h);
        }
        Ok(attached)
    }

    /// `GET /exec/{id}/json`.
    pub fn exec_inspect(&self, exec_id: &str) -> Result<ExecInspectResponse> {
        let ex = lock(&self.inner.execs);
        let e = ex
            .get(exec_id)
            .ok_or_else(|| Error::from(ContainerError::NoSuchExec(exec_id.to_string())))?;
        let cmd = e.config.cmd.clone().unwrap_or_default();
        Ok(ExecInspectResponse {
            can_remove: Some(false),
            detach_keys: Some(e.config.detach_keys.clone().unwrap_or_default()),
            id: Some(exec_id.to_string()),
            running: Some(e.running),
            exit_code: e.exit_code,
            process_config: Some(ProcessConfig {
                privileged: Some(e.config.privileged.unwrap_or(false)),
                user: Some(e.config.user.clone().unwrap_or_default()),
                tty: Some(e.config.tty.unwrap_or(false)),
                entrypoint: cmd.first().cloned(),
                arguments: Some(cmd.iter().skip(1).cloned().collect()),
            }),
            open_stdin: Some(e.config.attach_stdin.unwrap_or(false)),
            open_stderr: Some(e.config.attach_stderr.unwrap_or(false)),
            open_stdout: Some(e.config.attach_stdout.unwrap_or(false)),
            container_id: Some(e.container_id.clone()),
            pid: Some(e.pid),
        })
    }

    /// Resizes an exec's TTY.
    pub async fn exec_resize(&self, exec_id: &str, h: u16, w: u16) -> Result<()> {
        if !lock(&self.inner.execs).contains_key(exec_id) {
            return Err(ContainerError::NoSuchExec(exec_id.to_string()).into());
        }
        let sock = self.exec_dir(exec_id).join("shim.sock");
        shim::call(
            &sock,
            &Request::Resize {
                height: h,
                width: w,
            },
        )
        .await?;
        Ok(())
    }

    /// Runs `cmd` in the container and collects up to `cap` bytes of output; kills it after
    /// `timeout`. Returns (exit code, output, timed out). Used by healthchecks.
    pub(super) async fn exec_capture(
        &self,
        id: &str,
        cmd: Vec<String>,
        timeout: Duration,
        cap: usize,
    ) -> Result<(i64, String, bool)> {
        let cfg = ExecConfig {
            cmd: Some(cmd),
            attach_stdout: Some(true),
            attach_stderr: Some(true),
            ..Default::default()
        };
        let eid = self.exec_create(id, cfg).await?;
        let res = async {
            let Some(mut a) = self.exec_start(&eid, false, Some(false)).await? else {
                return Err(ContainerError::Internal("exec did not attach".into()).into());
            };
            let mut dec = FrameDecoder::new();
            let mut out = Vec::new();
            let mut buf = [0u8; 4096];
            let read_all = async {
                loop {
                    match a.stream.read(&mut buf).await {
                        Ok(0) | Err(_) => break,
                        Ok(n) => {
                            dec.push(&buf[..n]);
                            while let Ok(Some((_, data))) = dec.next_frame() {
                                if out.len() < cap {
                                    out.extend_from_slice(&data[..data.len().min(cap - out.len())]);
                                }
                            }
                        }
                    }
                }
            };
            let timed_out = tokio::time::timeout(timeout, read_all).await.is_err();
            if timed_out {
                let sock = self.exec_dir(&eid).join("shim.sock");
                let _ = shim::call(
                    &sock,
                    &Request::Kill {
                        signal: libc::SIGKILL,
                        all: false,
                    },
                )
                .await;
                return Ok((-1, String::from_utf8_lossy(&out).to_string(), true));
            }
            // The stream closes when the process exits; the monitor records the code.
            let mut code = None;
            for _ in 0..100 {
                code = lock(&self.inner.execs).get(&eid).and_then(|e| e.exit_code);
                if code.is_some() {
                    break;
                }
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            Ok((
                code.unwrap_or(-1),
                String::from_utf8_lossy(&out).to_string(),
                false,
            ))
        }
        .await;
        // Healthcheck execs are not kept (Docker does not list them either).
        lock(&self.inner.execs).remove(&eid);
        let _ = self.modify(id, |r| r.exec_ids.retain(|e| *e != eid));
        res
    }
}
