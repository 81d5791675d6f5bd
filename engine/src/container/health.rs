//! Healthchecks (Config.Healthcheck): probes run as execs, the last 5 results kept in
//! State.Health, `health_status` events on changes.

use super::{ContainerService, Live, lock};
use bollard_stubs::models::{HealthStatusEnum, HealthcheckResult};
use std::sync::Arc;
use std::time::{Duration, Instant};

const DEFAULT_INTERVAL: Duration = Duration::from_secs(30);
const DEFAULT_TIMEOUT: Duration = Duration::from_secs(30);
const DEFAULT_RETRIES: i64 = 3;
const DEFAULT_START_INTERVAL: Duration = Duration::from_secs(5);
const MAX_OUTPUT: usize = 4096;
const MAX_LOG: usize = 5;

fn dur(ns: Option<i64>, default: Duration) -> Duration {
    ns.filter(|n| *n > 0)
        .map(|n| Duration::from_nanos(n as u64))
        .unwrap_or(default)
}

impl ContainerService {
    pub(super) fn spawn_health(&self, id: &str, live: &Arc<Live>) {
        let svc = self.clone();
        let idc = id.to_string();
        let h = tokio::spawn(async move { svc.health_loop(&idc).await });
        lock(&live.tasks).push(h);
    }

    async fn health_loop(&self, id: &str) {
        let Ok(rec) = self.get(id) else { return };
        let Some(hc) = rec.config.healthcheck.clone() else {
            return;
        };
        let test = hc.test.clone().unwrap_or_default();
        let cmd: Vec<String> = match test.first().map(String::as_str) {
            Some("CMD") => test[1..].to_vec(),
            Some("CMD-SHELL") => {
                let mut sh = rec
                    .config
                    .shell
                    .clone()
                    .filter(|s| !s.is_empty())
                    .unwrap_or_else(|| vec!["/bin/sh".into(), "-c".into()]);
                sh.push(test[1..].join(" "));
                sh
            }
            _ => return,
        };
        let interval = dur(hc.interval, DEFAULT_INTERVAL);
        let timeout = dur(hc.timeout, DEFAULT_TIMEOUT);
        let retries = hc.retries.filter(|r| *r > 0).unwrap_or(DEFAULT_RETRIES);
        let start_period = dur(hc.start_period, Duration::ZERO);
        let start_interval = dur(hc.start_interval, DEFAULT_START_INTERVAL);
        let began = Instant::now();
        loop {
            let in_start = began.elapsed() < start_period;
            let starting = self
                .get(id)
                .ok()
                .and_then(|r| r.health)
                .and_then(|h| h.status)
                == Some(HealthStatusEnum::STARTING);
            tokio::time::sleep(if in_start && starting {
                start_interval
            } else {
                interval
            })
            .await;
            let start = berth_runtime::state::now_rfc3339();
            let (code, output) = match self
                .exec_capture(id, cmd.clone(), timeout, MAX_OUTPUT)
                .await
            {
                Ok((_, out, true)) => (
                    -1,
                    format!(
                        "Health check exceeded timeout ({}s){}",
                        timeout.as_secs(),
                        if out.is_empty() {
                            String::new()
                        } else {
                            format!(": {out}")
                        }
                    ),
                ),
                Ok((c, out, false)) => (c, out),
                Err(e) => {
                    // The container stopped or was paused: the monitor ends this loop.
                    (-1, e.to_string())
                }
            };
            let result = HealthcheckResult {
                start: Some(start),
                end: Some(berth_runtime::state::now_rfc3339()),
                exit_code: Some(code),
                output: Some(output),
            };
            let in_start = began.elapsed() < start_period;
            let Ok(((old, new), rec)) = self.modify(id, |r| {
                if !r.state.is_running() {
                    return (None, None);
                }
                let h = r.health.get_or_insert_with(Default::default);
                let old = h.status;
                let log = h.log.get_or_insert_with(Vec::new);
                log.push(result.clone());
                if log.len() > MAX_LOG {
                    let extra = log.len() - MAX_LOG;
                    log.drain(..extra);
                }
                if code == 0 {
                    h.status = Some(HealthStatusEnum::HEALTHY);
                    h.failing_streak = Some(0);
                } else if !(in_start && old == Some(HealthStatusEnum::STARTING)) {
                    let streak = h.failing_streak.unwrap_or(0) + 1;
                    h.failing_streak = Some(streak);
                    if streak >= retries {
                        h.status = Some(HealthStatusEnum::UNHEALTHY);
                    }
                }
                (old, h.status)
            }) else {
                return;
            };
            if new.is_none() {
                return;
            }
            if old != new
                && let Some(s) = new
            {
                self.emit(&format!("health_status: {s}"), &rec, &[]);
            }
        }
    }
}
