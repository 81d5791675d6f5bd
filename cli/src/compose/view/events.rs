//! `compose events`: the engine's container events for the project, in compose v2's line
//! format or as JSON objects.

use anyhow::Result;
use berth_client::Client;
use berth_orchestrator::compose::labels;
use clap::Args;
use serde_json::{Value, json};

use super::super::ComposeArgs;
use crate::engine::container::ps::go_time;

/// Flags of `compose events`.
#[derive(Args, Debug, Clone)]
pub struct EventsArgs {
    /// Output events as a stream of json objects.
    #[arg(long)]
    json: bool,
    /// Show all events created since timestamp.
    #[arg(long)]
    since: Option<String>,
    /// Stream events until this timestamp.
    #[arg(long)]
    until: Option<String>,
    /// SERVICE...
    service: Vec<String>,
}

/// `YYYY-MM-DD HH:MM:SS` and the nanoseconds of an event (UTC).
fn when(ev: &Value) -> (String, i64) {
    let nanos = ev["timeNano"]
        .as_i64()
        .filter(|n| *n != 0)
        .unwrap_or_else(|| ev["time"].as_i64().unwrap_or(0) * 1_000_000_000);
    let secs = nanos.div_euclid(1_000_000_000);
    let frac = nanos.rem_euclid(1_000_000_000);
    let t = go_time(secs);
    (t.get(..19).unwrap_or(&t).to_string(), frac)
}

/// Go's RFC 3339 with trimmed nanoseconds, as `time.Time` marshals in UTC.
fn rfc3339(date: &str, frac: i64) -> String {
    let mut s = date.replacen(' ', "T", 1);
    if frac != 0 {
        let f = format!("{frac:09}");
        s.push('.');
        s.push_str(f.trim_end_matches('0'));
    }
    s.push('Z');
    s
}

/// Runs `compose events` until the stream ends (`--until`) or the user interrupts it.
pub async fn run(args: &ComposeArgs, a: &EventsArgs, client: &Client) -> Result<()> {
    let (name, _) = super::project_for(args, &a.service)?;
    let filter = json!({ "label": [format!("{}={name}", labels::PROJECT)] }).to_string();
    let mut stream = client
        .events(a.since.as_deref(), a.until.as_deref(), Some(&filter))
        .await?;
    while let Some(ev) = stream.next::<Value>().await? {
        if ev["Type"].as_str() != Some("container") {
            continue;
        }
        let attrs = ev["Actor"]["Attributes"].as_object();
        let attr = |k: &str| attrs.and_then(|m| m.get(k)).and_then(Value::as_str);
        if attr(labels::ONEOFF) == Some("True") {
            continue;
        }
        let service = attr(labels::SERVICE).unwrap_or("").to_string();
        if !a.service.is_empty() && !a.service.contains(&service) {
            continue;
        }
        let mut kept: Vec<(String, String)> = attrs
            .map(|m| {
                m.iter()
                    .filter(|(k, _)| !k.starts_with("com.docker.compose."))
                    .map(|(k, v)| (k.clone(), v.as_str().unwrap_or("").to_string()))
                    .collect()
            })
            .unwrap_or_default();
        kept.sort();
        let id = ev["Actor"]["ID"].as_str().unwrap_or("");
        let action = ev["Action"].as_str().unwrap_or("");
        let (date, frac) = when(&ev);
        if a.json {
            let attributes: serde_json::Map<String, Value> = kept
                .into_iter()
                .map(|(k, v)| (k, Value::String(v)))
                .collect();
            let v = json!({
                "action": action,
                "attributes": attributes,
                "id": id,
                "service": service,
                "time": rfc3339(&date, frac),
                "type": "container",
            });
            println!("{v}");
        } else {
            let attrs: Vec<String> = kept.iter().map(|(k, v)| format!("{k}={v}")).collect();
            // compose prints the event's own trailing newline and then another.
            println!(
                "{date}.{:06} container {action} {id} ({})\n",
                frac / 1000,
                attrs.join(", ")
            );
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn event_times() {
        let ev = json!({"time": 1_700_000_000, "timeNano": 1_700_000_000_123_456_789_i64});
        let (date, frac) = when(&ev);
        assert_eq!(date, "2023-11-14 22:13:20");
        assert_eq!(frac, 123_456_789);
        assert_eq!(rfc3339(&date, frac), "2023-11-14T22:13:20.123456789Z");
        assert_eq!(rfc3339(&date, 0), "2023-11-14T22:13:20Z");
    }
}
