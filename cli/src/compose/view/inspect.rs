//! `compose top`, `compose port` and `compose images`: what the engine knows about each of the
//! project's containers.

use anyhow::{Result, bail};
use berth_client::Client;
use berth_orchestrator::compose::containers::Select;
use clap::Args;
use serde_json::{Value, json};

use super::super::ComposeArgs;
use crate::engine::container::align;
use crate::engine::format::human_size;

/// `SERVICE...` alone (`compose top`).
#[derive(Args, Debug, Clone)]
pub struct ServicesArgs {
    /// SERVICE...
    service: Vec<String>,
}

/// Runs `compose top`: one table of every running container's processes, led by the
/// service and the container's number, `CMD` last, as compose v2.
pub async fn top(args: &ComposeArgs, a: &ServicesArgs, client: &Client) -> Result<()> {
    let (name, _) = super::project_for(args, &a.service)?;
    let mut list = super::listed(client, &name, Select::default(), &a.service).await?;
    list.sort_by(|x, y| x.name.cmp(&y.name));
    let mut header: Vec<String> = vec!["SERVICE".into(), "#".into()];
    let mut rows: Vec<Vec<(String, String)>> = Vec::new();
    for c in &list {
        let t = client.container_top(&c.id, None).await?;
        let titles = t.titles.unwrap_or_default();
        for t in &titles {
            if !header.contains(t) {
                header.push(t.clone());
            }
        }
        for p in t.processes.unwrap_or_default() {
            let mut row = vec![
                ("SERVICE".to_string(), c.service.clone()),
                ("#".to_string(), c.number.to_string()),
            ];
            row.extend(titles.iter().cloned().zip(p));
            rows.push(row);
        }
    }
    if rows.is_empty() {
        return Ok(());
    }
    if let Some(i) = header.iter().position(|h| h == "CMD") {
        let cmd = header.remove(i);
        header.push(cmd);
    }
    let mut lines = vec![header.join("\t")];
    for r in rows {
        let cells: Vec<String> = header
            .iter()
            .map(|h| {
                r.iter()
                    .find(|(k, _)| k == h)
                    .map_or_else(|| "-".to_string(), |(_, v)| v.clone())
            })
            .collect();
        lines.push(cells.join("\t"));
    }
    for l in align(&lines, 4, 2) {
        println!("{l}");
    }
    Ok(())
}

/// Flags of `compose port`.
#[derive(Args, Debug, Clone)]
pub struct PortArgs {
    /// tcp or udp.
    #[arg(long, default_value = "tcp")]
    protocol: String,
    /// Index of the container if service has multiple replicas.
    #[arg(long)]
    index: Option<u32>,
    /// SERVICE
    service: String,
    /// PRIVATE_PORT
    private_port: String,
}

/// Runs `compose port`: the public address of a service container's private port.
pub async fn port(args: &ComposeArgs, a: &PortArgs, client: &Client) -> Result<()> {
    let Ok(private) = a.private_port.parse::<u64>() else {
        bail!("invalid port: {}", a.private_port);
    };
    let (name, _) = super::project_for(args, std::slice::from_ref(&a.service))?;
    let c = super::service_container(client, &name, &a.service, a.index, false).await?;
    let ports = c.raw["Ports"].as_array().cloned().unwrap_or_default();
    let found = ports.iter().find(|p| {
        p["PrivatePort"].as_u64() == Some(private)
            && p["Type"].as_str().unwrap_or("tcp") == a.protocol
            && p["PublicPort"].as_u64().is_some_and(|n| n > 0)
    });
    let Some(p) = found else {
        bail!(
            "no port {private}/{} for container {}: {}",
            a.protocol,
            c.name,
            ports_summary(&ports)
        );
    };
    println!(
        "{}:{}",
        p["IP"].as_str().unwrap_or(""),
        p["PublicPort"].as_u64().unwrap_or(0)
    );
    Ok(())
}

/// The container's ports, as compose lists them when the asked one is missing.
fn ports_summary(ports: &[Value]) -> String {
    ports
        .iter()
        .map(|p| {
            let private = p["PrivatePort"].as_u64().unwrap_or(0);
            let proto = p["Type"].as_str().unwrap_or("tcp");
            match p["PublicPort"].as_u64() {
                Some(public) if public > 0 => format!(
                    "{}:{public}->{private}/{proto}",
                    p["IP"].as_str().unwrap_or("")
                ),
                _ => format!("{private}/{proto}"),
            }
        })
        .collect::<Vec<_>>()
        .join(", ")
}

/// Flags of `compose images`.
#[derive(Args, Debug, Clone)]
pub struct ImagesArgs {
    /// Only display IDs.
    #[arg(short, long)]
    quiet: bool,
    /// Format the output. Values: [table | json].
    #[arg(long, default_value = "table")]
    format: String,
    /// SERVICE...
    service: Vec<String>,
}

/// One container's image, as compose's `ImageSummary`.
struct Image {
    id: String,
    container: String,
    repository: String,
    tag: String,
    size: i64,
}

/// Splits `repo:tag` at the tag's colon (not a registry port's).
fn repo_tag(reference: &str) -> (String, String) {
    let (r, t) = berth_client::images::split_reference(reference);
    (r.to_string(), t.unwrap_or("").to_string())
}

/// Runs `compose images`.
pub async fn images(args: &ComposeArgs, a: &ImagesArgs, client: &Client) -> Result<()> {
    let (name, _) = super::project_for(args, &a.service)?;
    let sel = Select {
        all: true,
        oneoff: false,
    };
    let mut list = super::listed(client, &name, sel, &a.service).await?;
    list.sort_by(|x, y| x.name.cmp(&y.name));
    let mut images = Vec::new();
    for c in &list {
        let image_id = c.raw["ImageID"].as_str().unwrap_or(&c.image).to_string();
        let info = client.image_inspect(&image_id).await?;
        let first_tag = info["RepoTags"]
            .as_array()
            .and_then(|t| t.first())
            .and_then(Value::as_str)
            .unwrap_or("");
        let (repository, tag) = repo_tag(first_tag);
        images.push(Image {
            id: info["Id"].as_str().unwrap_or(&image_id).to_string(),
            container: c.name.clone(),
            repository,
            tag,
            size: info["Size"].as_i64().unwrap_or(0),
        });
    }
    if a.quiet {
        let mut seen: Vec<&str> = Vec::new();
        for i in &images {
            let id = i.id.split_once(':').map_or(i.id.as_str(), |(_, h)| h);
            if !seen.contains(&id) {
                seen.push(id);
                println!("{id}");
            }
        }
        return Ok(());
    }
    match a.format.as_str() {
        "json" => {
            let v: Vec<Value> = images
                .iter()
                .map(|i| {
                    json!({"ID": i.id, "ContainerName": i.container, "Repository": i.repository,
                        "Tag": i.tag, "Size": i.size})
                })
                .collect();
            println!("{}", Value::Array(v));
        }
        "table" | "" => {
            let mut lines = vec!["CONTAINER\tREPOSITORY\tTAG\tIMAGE ID\tSIZE".to_string()];
            for i in &images {
                let id = i.id.split_once(':').map_or(i.id.as_str(), |(_, h)| h);
                let none = |s: &str| {
                    if s.is_empty() {
                        "<none>".to_string()
                    } else {
                        s.to_string()
                    }
                };
                lines.push(format!(
                    "{}\t{}\t{}\t{}\t{}",
                    i.container,
                    none(&i.repository),
                    none(&i.tag),
                    id.chars().take(12).collect::<String>(),
                    human_size(i.size as f64)
                ));
            }
            for l in align(&lines, 20, 3) {
                println!("{l}");
            }
        }
        f => bail!("format value \"{f}\" could not be parsed: parsing failed"),
    }
    Ok(())
}
