//! `/berth/v1/`, Berth's dashboard API, against a real single-node berthd swarm manager: the
//! GET routes after `docker service create`, the event stream read with `curl -N` while the
//! service's task starts, errors, and the OpenAPI file covering every served route.

mod common;

use common::{Berthd, registry::Registry};
use serde_json::Value;
use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

/// One server-sent event: (event, id, data).
type Sse = (String, String, Value);

/// A berthd in swarm mode; on drop its services go, it leaves the swarm, then it stops and
/// its root is removed (by [`Berthd`]'s own drop).
struct Swarm {
    d: Berthd,
    _reg: Registry,
}

impl Swarm {
    fn start() -> Self {
        let (reg, d) = common::daemon_with_busybox();
        let s = Swarm { d, _reg: reg };
        s.d.docker_ok(&["swarm", "init", "--advertise-addr", "127.0.0.1"]);
        s
    }

    fn get(&self, path: &str) -> (u16, Value) {
        let (code, body) = self.d.curl("GET", path, None);
        let v = serde_json::from_str(&body)
            .unwrap_or_else(|e| panic!("GET {path} ({code}): {e}: {body}"));
        (code, v)
    }

    fn ok(&self, path: &str) -> Value {
        let (code, v) = self.get(path);
        assert_eq!(code, 200, "GET {path}: {v}\n{}", self.d.log());
        v
    }

    /// Polls `path` until `pred` holds.
    fn until(&self, path: &str, pred: impl Fn(&Value) -> bool) -> Value {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let v = self.ok(path);
            if pred(&v) {
                return v;
            }
            assert!(Instant::now() < deadline, "GET {path}: {v}");
            std::thread::sleep(Duration::from_millis(200));
        }
    }

    /// `curl -N` on the event stream, its events parsed by a reader thread.
    fn events(&self, query: &str, last_event_id: Option<&str>) -> Events {
        let mut cmd = Command::new("curl");
        cmd.args(["-sN", "--unix-socket"]).arg(&self.d.sock);
        if let Some(id) = last_event_id {
            cmd.args(["-H", &format!("Last-Event-ID: {id}")]);
        }
        let mut child = cmd
            .arg(format!("http://localhost/berth/v1/events{query}"))
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("curl");
        let out = child.stdout.take().expect("stdout");
        let (tx, rx) = mpsc::channel();
        let (ctx, crx) = mpsc::channel();
        std::thread::spawn(move || {
            let (mut event, mut id, mut data) = (String::new(), String::new(), String::new());
            for line in BufReader::new(out).lines() {
                let Ok(line) = line else { break };
                if let Some(c) = line.strip_prefix(':') {
                    let _ = ctx.send(c.trim().to_string());
                } else if let Some(v) = line.strip_prefix("event:") {
                    event = v.trim().to_string();
                } else if let Some(v) = line.strip_prefix("id:") {
                    id = v.trim().to_string();
                } else if let Some(v) = line.strip_prefix("data:") {
                    data.push_str(v.trim());
                } else if line.is_empty() && !data.is_empty() {
                    let v: Value = serde_json::from_str(&data).expect("event data is JSON");
                    if tx
                        .send((std::mem::take(&mut event), std::mem::take(&mut id), v))
                        .is_err()
                    {
                        break;
                    }
                    data.clear();
                }
            }
        });
        Events {
            child,
            rx,
            comments: crx,
            seen: Vec::new(),
        }
    }
}

impl Drop for Swarm {
    fn drop(&mut self) {
        let ids = self.d.docker(&["service", "ls", "-q"]);
        for id in String::from_utf8_lossy(&ids.stdout).split_whitespace() {
            let _ = self.d.docker(&["service", "rm", id]);
        }
        let _ = self.d.docker(&["swarm", "leave", "--force"]);
    }
}

/// A running `curl -N`; killed on drop.
struct Events {
    child: Child,
    rx: mpsc::Receiver<Sse>,
    comments: mpsc::Receiver<String>,
    seen: Vec<Sse>,
}

impl Events {
    /// Waits for an event satisfying `pred`; returns it.
    fn wait(&mut self, what: &str, secs: u64, pred: impl Fn(&Sse) -> bool) -> Sse {
        if let Some(e) = self.seen.iter().find(|e| pred(e)) {
            return e.clone();
        }
        let deadline = Instant::now() + Duration::from_secs(secs);
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.rx.recv_timeout(left) {
                Ok(e) => {
                    self.seen.push(e.clone());
                    if pred(&e) {
                        return e;
                    }
                }
                Err(_) => panic!("no {what} event within {secs}s; saw {:#?}", self.seen),
            }
        }
    }

    /// Waits for the stream's opening comment, so later changes are not missed.
    fn wait_open(&self) {
        let c = self
            .comments
            .recv_timeout(Duration::from_secs(10))
            .expect("the event stream opens");
        assert_eq!(c, "berth events");
    }
}

impl Drop for Events {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn data_is(e: &Sse, event: &str, action: &str) -> bool {
    e.0 == event && e.2["action"] == action
}

#[test]
fn dashboard_api_on_a_single_node_swarm() {
    let s = Swarm::start();
    let mut all = s.events("", None);
    all.wait_open();
    let mut services = s.events("?type=service&service=web", None);
    services.wait_open();

    s.d.docker_ok(&[
        "service",
        "create",
        "-d",
        "--name",
        "web",
        "--label",
        "com.docker.stack.namespace=st",
        "busybox:latest",
        "sleep",
        "300",
    ]);

    // Events: the service, its task created, then updated to running.
    let created = services.wait("service create", 10, |e| data_is(e, "service", "create"));
    assert_eq!(created.2["object"]["name"], "web");
    assert_eq!(created.2["object"]["stack"], "st");
    assert!(created.1.parse::<u64>().unwrap() > 0, "id is a Raft index");
    let task = all.wait("task create", 10, |e| data_is(e, "task", "create"));
    let task_id = task.2["id"].as_str().unwrap().to_string();
    assert_eq!(task.2["object"]["service_name"], "web");
    all.wait("task running", 60, |e| {
        data_is(e, "task", "update")
            && e.2["id"] == task_id.as_str()
            && e.2["object"]["state"] == "running"
    });
    assert!(
        all.seen
            .iter()
            .all(|e| ["node", "service", "task"].contains(&e.0.as_str())),
        "{:#?}",
        all.seen
    );

    // GET routes.
    let cluster = s.ok("/berth/v1/cluster");
    assert!(!cluster["id"].as_str().unwrap().is_empty());
    assert_eq!(cluster["managers"].as_array().unwrap().len(), 1);
    assert_eq!(cluster["managers"][0]["leader"], true);
    assert_eq!(cluster["managers"][0]["reachability"], "reachable");
    assert_eq!(cluster["leader"], cluster["managers"][0]["node_id"]);
    assert!(cluster["raft"]["term"].as_u64().unwrap() >= 1);
    assert!(cluster["raft"]["last_applied_index"].as_u64().unwrap() > 0);
    assert_eq!(cluster["nodes"]["total"], 1);
    assert_eq!(cluster["services"]["by_mode"]["replicated"], 1);
    assert!(cluster["tasks"]["total"].as_u64().unwrap() >= 1);

    let nodes = s.ok("/berth/v1/nodes");
    assert_eq!(nodes.as_array().unwrap().len(), 1);
    let node = &nodes[0];
    assert_eq!(node["role"], "manager");
    assert_eq!(node["leader"], true);
    assert_eq!(node["state"], "ready");
    assert_eq!(node["availability"], "active");
    let node_id = node["id"].as_str().unwrap();
    let one = s.until(&format!("/berth/v1/nodes/{node_id}"), |n| {
        n["running_tasks"] == 1
    });
    assert!(one["resources"]["nano_cpus"].is_i64(), "{one}");
    let by_name = s.ok(&format!(
        "/berth/v1/nodes/{}",
        node["hostname"].as_str().unwrap()
    ));
    assert_eq!(by_name["id"], node_id);

    let svc = s.until("/berth/v1/services/web", |v| v["replicas"]["running"] == 1);
    assert_eq!(svc["mode"], "replicated");
    assert_eq!(svc["replicas"]["desired"], 1);
    assert_eq!(svc["stack"], "st");
    assert!(svc["image"].as_str().unwrap().starts_with("busybox:latest"));
    let list = s.ok("/berth/v1/services");
    assert_eq!(list[0]["id"], svc["id"]);
    // A running-count change is a service update on the stream too.
    services.wait("service replicas update", 10, |e| {
        data_is(e, "service", "update") && e.2["object"]["replicas"]["running"] == 1
    });

    let tasks = s.ok("/berth/v1/tasks?service=web&state=running");
    assert_eq!(tasks.as_array().unwrap().len(), 1, "{tasks}");
    let t = &tasks[0];
    assert_eq!(t["id"], task_id.as_str());
    assert_eq!(t["name"], "web.1");
    assert_eq!(t["slot"], 1);
    assert_eq!(t["node_id"], node_id);
    assert_eq!(t["desired_state"], "running");
    assert!(!t["container_id"].as_str().unwrap().is_empty());
    assert_eq!(
        s.ok(&format!("/berth/v1/tasks/{task_id}"))["id"],
        task_id.as_str()
    );
    assert_eq!(
        s.ok("/berth/v1/tasks?service=other")
            .as_array()
            .unwrap()
            .len(),
        0
    );
    assert_eq!(
        s.ok(&format!("/berth/v1/tasks?node={node_id}"))
            .as_array()
            .unwrap()
            .len(),
        1
    );

    let stacks = s.ok("/berth/v1/stacks");
    assert_eq!(stacks[0]["name"], "st");
    assert_eq!(stacks[0]["services"][0]["name"], "web");
    assert_eq!(
        s.ok("/berth/v1/stacks/st")["services"]
            .as_array()
            .unwrap()
            .len(),
        1
    );

    // Errors: JSON messages with 404 and 400.
    for path in [
        "/berth/v1/services/nope",
        "/berth/v1/nodes/nope",
        "/berth/v1/tasks/nope",
        "/berth/v1/stacks/nope",
    ] {
        let (code, v) = s.get(path);
        assert_eq!(code, 404, "{path}: {v}");
        assert!(v["message"].as_str().unwrap().contains("not found"), "{v}");
    }
    for path in [
        "/berth/v1/tasks?state=bogus",
        "/berth/v1/tasks?colour=red",
        "/berth/v1/events?type=container",
    ] {
        let (code, v) = s.get(path);
        assert_eq!(code, 400, "{path}: {v}");
        assert!(v["message"].is_string(), "{v}");
    }

    // Resuming with Last-Event-ID sends what changed after that index.
    let mut resumed = s.events("?type=node", Some("0"));
    resumed.wait_open();
    let n = resumed.wait("node catch-up", 10, |e| data_is(e, "node", "update"));
    assert_eq!(n.2["id"], node_id);

    // Removal: the service goes, its task is shut down and removed.
    s.d.docker_ok(&["service", "rm", "web"]);
    services.wait("service remove", 10, |e| data_is(e, "service", "remove"));
    all.wait("task shutdown", 30, |e| {
        e.0 == "task"
            && e.2["id"] == task_id.as_str()
            && (e.2["action"] == "remove" || e.2["object"]["desired_state"] != "running")
    });
}

#[test]
fn not_a_manager_is_503() {
    let d = Berthd::start(&[]);
    for path in [
        "/berth/v1/cluster",
        "/berth/v1/nodes",
        "/berth/v1/tasks",
        "/berth/v1/events",
    ] {
        let (code, body) = d.curl("GET", path, None);
        assert_eq!(code, 503, "{path}: {body}");
        let v: Value = serde_json::from_str(&body).unwrap();
        assert!(
            v["message"].as_str().unwrap().contains("not in a swarm"),
            "{v}"
        );
    }
}

#[test]
fn openapi_documents_every_route() {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../docs/api/berth-v1.yaml");
    let text = std::fs::read_to_string(path).unwrap();
    let doc: yaml_serde::Value = yaml_serde::from_str(&text).unwrap();
    assert!(doc["openapi"].as_str().unwrap().starts_with("3.0"));
    let paths = doc["paths"].as_mapping().expect("paths");
    let documented: Vec<&str> = paths.keys().filter_map(|k| k.as_str()).collect();
    let served = berth_agent::api::berth_v1::paths();
    for (p, methods) in &served {
        assert!(documented.contains(p), "{p} is served but not in {path}");
        for m in *methods {
            assert!(paths[*p][*m].is_mapping(), "{p} has no {m} in {path}");
            assert!(
                paths[*p][*m]["responses"]["200"].is_mapping(),
                "{m} {p}: no 200"
            );
        }
        let doc_methods: Vec<&str> = paths[*p]
            .as_mapping()
            .expect("path item")
            .keys()
            .filter_map(|k| k.as_str())
            .filter(|k| ["get", "put", "post", "delete", "patch"].contains(k))
            .collect();
        for m in doc_methods {
            assert!(methods.contains(&m), "{m} {p} is documented but not served");
        }
    }
    for p in &documented {
        assert!(
            served.iter().any(|(s, _)| s == p),
            "{p} is documented but not served"
        );
    }
    // Every schema reference resolves.
    let schemas = doc["components"]["schemas"].as_mapping().unwrap();
    for r in text.match_indices("#/components/schemas/") {
        let name: String = text[r.0 + r.1.len()..]
            .chars()
            .take_while(|c| c.is_alphanumeric())
            .collect();
        assert!(schemas.contains_key(name.as_str()), "missing schema {name}");
    }
}
