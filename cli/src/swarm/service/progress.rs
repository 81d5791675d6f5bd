//! Waiting for a service to converge (docker's `--detach=false`), printing progress lines.

use crate::swarm::util::s;
use anyhow::{Result, bail};
use berth_client::Client;
use serde_json::Value;
use std::time::Duration;

/// Running and desired task counts of a service, from its tasks.
pub async fn counts(c: &Client, service: &Value) -> Result<(u64, u64)> {
    let id = s(service, "/ID");
    let f = serde_json::json!({"service": {id.clone(): true}}).to_string();
    let tasks = c.tasks(Some(&f)).await?;
    let live: Vec<&Value> = tasks
        .iter()
        .filter(|t| s(t, "/ServiceID") == id && s(t, "/DesiredState") == "running")
        .collect();
    let running = live
        .iter()
        .filter(|t| s(t, "/Status/State") == "running")
        .count() as u64;
    let desired = match service
        .pointer("/Spec/Mode/Replicated/Replicas")
        .and_then(Value::as_u64)
    {
        Some(r) => r,
        None => live.len() as u64,
    };
    Ok((running, desired))
}

/// Waits until every desired task of `service` runs and any update has completed.
pub async fn wait_converged(c: &Client, service: &str) -> Result<()> {
    let mut last = None;
    loop {
        let svc = c.service_inspect(service).await?;
        let (running, desired) = counts(c, &svc).await?;
        if last != Some((running, desired)) {
            println!("overall progress: {running} out of {desired} tasks");
            last = Some((running, desired));
        }
        let update = s(&svc, "/UpdateStatus/State");
        match update.as_str() {
            "paused" | "rollback_paused" => {
                bail!("update paused: {}", s(&svc, "/UpdateStatus/Message"))
            }
            "rollback_completed" => {
                bail!("service rolled back: {}", s(&svc, "/UpdateStatus/Message"))
            }
            _ => {}
        }
        let updating = matches!(update.as_str(), "updating" | "rollback_started");
        let global = svc.pointer("/Spec/Mode/Global").is_some();
        if running == desired && !updating && (desired > 0 || !global) {
            println!("verify: Service converged");
            return Ok(());
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}
