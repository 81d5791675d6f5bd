//! A project's containers as the engine reports them, read from their compose labels.

use berth_client::Client;
use serde_json::Value;

use super::error::{Context, Result};
use super::labels;

/// One container of a project, from `GET /containers/json`.
#[derive(Clone, Debug)]
pub struct ProjectContainer {
    /// Full container ID.
    pub id: String,
    /// Name without the leading `/`.
    pub name: String,
    /// `com.docker.compose.service`.
    pub service: String,
    /// `com.docker.compose.container-number` (0 when missing).
    pub number: u32,
    /// A `compose run` container.
    pub oneoff: bool,
    /// `com.docker.compose.config-hash`.
    pub config_hash: String,
    /// `com.docker.compose.image` (the image ID it was created from).
    pub image_id: String,
    /// The image reference as the engine reports it.
    pub image: String,
    /// `created`, `running`, `paused`, `restarting`, `exited`, `dead`.
    pub state: String,
    /// Docker's human status (`Up 3 seconds (healthy)`).
    pub status: String,
    /// The list entry as the engine sent it (ports, networks, command, ...).
    pub raw: Value,
}

impl ProjectContainer {
    /// Reads a list entry; `None` when it carries no service label.
    pub fn from_summary(v: &Value) -> Option<Self> {
        let l = v.get("Labels")?;
        let label = |k: &str| l.get(k).and_then(Value::as_str).unwrap_or("").to_string();
        let service = label(labels::SERVICE);
        if service.is_empty() {
            return None;
        }
        let name = v
            .get("Names")
            .and_then(|n| n.get(0))
            .and_then(Value::as_str)
            .unwrap_or("")
            .trim_start_matches('/')
            .to_string();
        Some(Self {
            id: v.get("Id").and_then(Value::as_str)?.to_string(),
            name,
            number: label(labels::NUMBER).parse().unwrap_or(0),
            oneoff: label(labels::ONEOFF).eq_ignore_ascii_case("true"),
            config_hash: label(labels::CONFIG_HASH),
            image_id: label(labels::IMAGE),
            service,
            image: v
                .get("Image")
                .and_then(Value::as_str)
                .unwrap_or("")
                .to_string(),
            state: v
                .get("State")
                .and_then(Value::as_str)
                .unwrap_or("")
                .to_string(),
            status: v
                .get("Status")
                .and_then(Value::as_str)
                .unwrap_or("")
                .to_string(),
            raw: v.clone(),
        })
    }

    /// Whether the container is running (or paused, or restarting: it has a process).
    pub fn is_running(&self) -> bool {
        matches!(self.state.as_str(), "running" | "paused" | "restarting")
    }
}

/// Which containers of a project to list.
#[derive(Clone, Copy, Debug, Default)]
pub struct Select {
    /// Stopped ones too.
    pub all: bool,
    /// `compose run` containers too.
    pub oneoff: bool,
}

/// The project's containers, ordered by service then number.
pub async fn list(client: &Client, project: &str, sel: Select) -> Result<Vec<ProjectContainer>> {
    let extra = if sel.oneoff {
        Vec::new()
    } else {
        vec![format!("{}=False", labels::ONEOFF)]
    };
    let filter = labels::project_filter(project, &extra);
    let raw = client
        .containers(sel.all, None, false, Some(&filter))
        .await
        .ctx(|| format!("listing the containers of project {project}"))?;
    let mut out: Vec<ProjectContainer> = raw
        .iter()
        .filter_map(ProjectContainer::from_summary)
        .collect();
    out.sort_by(|a, b| {
        (a.service.as_str(), a.oneoff, a.number, a.name.as_str()).cmp(&(
            b.service.as_str(),
            b.oneoff,
            b.number,
            b.name.as_str(),
        ))
    });
    Ok(out)
}
