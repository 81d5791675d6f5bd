//! `/berth/v1/events`: node, service and task changes as server-sent events. Each applied
//! Raft index wakes the stream, which compares a fresh [`Snapshot`] with the previous one and
//! sends one event per object that appeared, changed or went away.

use super::model::{NodeView, ServiceView, Snapshot, TaskView};
use crate::api::{ApiError, ApiResult, Params};
use axum::response::sse::{Event, Sse};
use berth_orchestrator::swarm::manager::Manager;
use futures_util::Stream;
use serde::Serialize;
use serde_json::Value;
use std::collections::BTreeMap;
use std::convert::Infallible;
use std::time::Duration;
use tokio::sync::mpsc;
use tokio::time::Instant;

/// How long the stream may stay silent before a keep-alive comment, so proxies and clients
/// do not take an idle stream for a dead one.
pub const KEEP_ALIVE: Duration = Duration::from_secs(15);

/// The kind of object an event is about; also the SSE `event:` name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Kind {
    /// A node.
    Node,
    /// A service.
    Service,
    /// A task.
    Task,
}

impl Kind {
    /// The event name.
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Node => "node",
            Kind::Service => "service",
            Kind::Task => "task",
        }
    }

    fn parse(s: &str) -> Option<Self> {
        match s {
            "node" => Some(Kind::Node),
            "service" => Some(Kind::Service),
            "task" => Some(Kind::Task),
            _ => None,
        }
    }
}

/// What happened to the object.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Action {
    /// It appeared.
    Create,
    /// It changed.
    Update,
    /// It went away; the object is its last known state.
    Remove,
}

/// One object's change.
#[derive(Debug, Clone, PartialEq)]
pub struct Change {
    /// What kind of object.
    pub kind: Kind,
    /// What happened.
    pub action: Action,
    /// The object's ID.
    pub id: String,
    /// The object, shaped as the GET routes return it.
    pub object: Object,
}

/// An object of any kind, in its GET shape.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(untagged)]
pub enum Object {
    /// A node.
    Node(NodeView),
    /// A service.
    Service(ServiceView),
    /// A task.
    Task(TaskView),
}

/// The event's `data:` line.
#[derive(Serialize)]
struct Data<'a> {
    action: Action,
    id: &'a str,
    object: &'a Object,
}

impl Change {
    /// The JSON of the `data:` field.
    pub fn data(&self) -> Value {
        serde_json::to_value(Data {
            action: self.action,
            id: &self.id,
            object: &self.object,
        })
        .unwrap_or_default()
    }

    fn event(&self, index: u64) -> Event {
        Event::default()
            .event(self.kind.as_str())
            .id(index.to_string())
            .data(self.data().to_string())
    }
}

/// Compares two maps of one kind: by `changed` (version or whole view) for present objects.
fn diff_map<T: Clone>(
    out: &mut Vec<Change>,
    kind: Kind,
    old: &BTreeMap<String, T>,
    new: &BTreeMap<String, T>,
    changed: impl Fn(&T, &T) -> bool,
    wrap: impl Fn(T) -> Object,
) {
    for (id, v) in new {
        let action = match old.get(id) {
            None => Action::Create,
            Some(o) if changed(o, v) => Action::Update,
            Some(_) => continue,
        };
        out.push(Change {
            kind,
            action,
            id: id.clone(),
            object: wrap(v.clone()),
        });
    }
    for (id, v) in old {
        if !new.contains_key(id) {
            out.push(Change {
                kind,
                action: Action::Remove,
                id: id.clone(),
                object: wrap(v.clone()),
            });
        }
    }
}

/// The changes from `old` to `new`: nodes, then services, then tasks. Tasks compare by
/// version index (there can be many); nodes and services compare whole views, because their
/// running-task counts change with their tasks without a version bump of their own.
pub fn diff(old: &Snapshot, new: &Snapshot) -> Vec<Change> {
    let mut out = Vec::new();
    diff_map(
        &mut out,
        Kind::Node,
        &old.nodes,
        &new.nodes,
        |a, b| a != b,
        Object::Node,
    );
    diff_map(
        &mut out,
        Kind::Service,
        &old.services,
        &new.services,
        |a, b| a != b,
        Object::Service,
    );
    diff_map(
        &mut out,
        Kind::Task,
        &old.tasks,
        &new.tasks,
        |a, b| a.version != b.version,
        Object::Task,
    );
    out
}

/// What changed after Raft index `since`, for a client resuming with `Last-Event-ID`: the
/// objects whose version is newer, as updates. Removals in between cannot be recovered (the
/// store keeps no tombstones); clients resuming after a long gap should re-read the lists.
pub fn since(snap: &Snapshot, since: u64) -> Vec<Change> {
    let mut out = Vec::new();
    let mut push = |kind, id: &String, version: u64, object: Object| {
        if version > since {
            out.push(Change {
                kind,
                action: Action::Update,
                id: id.clone(),
                object,
            });
        }
    };
    for (id, n) in &snap.nodes {
        push(Kind::Node, id, n.version, Object::Node(n.clone()));
    }
    for (id, s) in &snap.services {
        push(Kind::Service, id, s.version, Object::Service(s.clone()));
    }
    for (id, t) in &snap.tasks {
        push(Kind::Task, id, t.version, Object::Task(t.clone()));
    }
    out
}

/// Which objects a client wants: kinds, a service (ID or name), a node (ID or hostname) and,
/// for task lists, an observed state. A filter applies to the kinds that have its attribute:
/// `service=` keeps that service and its tasks and drops nodes; `node=` keeps that node and
/// its tasks and drops services.
#[derive(Debug, Clone, Default)]
pub struct Filter {
    /// Kinds to send; empty means all.
    pub kinds: Vec<Kind>,
    /// A service ID or name.
    pub service: Option<String>,
    /// A node ID or hostname.
    pub node: Option<String>,
    /// An observed task state.
    pub state: Option<String>,
}

impl Filter {
    /// Reads `type=` (comma-separated or repeated), `service=` and `node=`.
    pub fn parse(p: &Params) -> ApiResult<Self> {
        let mut kinds = Vec::new();
        for v in p.all("type") {
            for t in v.split(',').map(str::trim).filter(|t| !t.is_empty()) {
                let k = Kind::parse(t).ok_or_else(|| {
                    ApiError::bad_request(format!(
                        "invalid event type '{t}' (one of: node, service, task)"
                    ))
                })?;
                if !kinds.contains(&k) {
                    kinds.push(k);
                }
            }
        }
        Ok(Filter {
            kinds,
            service: p
                .get("service")
                .filter(|v| !v.is_empty())
                .map(str::to_string),
            node: p.get("node").filter(|v| !v.is_empty()).map(str::to_string),
            state: None,
        })
    }

    fn service_is(&self, id: Option<&str>, snap: &Snapshot) -> bool {
        let Some(want) = &self.service else {
            return true;
        };
        let Some(id) = id else { return false };
        id == want || snap.services.get(id).is_some_and(|s| &s.name == want)
    }

    fn node_is(&self, id: Option<&str>, snap: &Snapshot) -> bool {
        let Some(want) = &self.node else {
            return true;
        };
        let Some(id) = id else { return false };
        id == want || snap.nodes.get(id).is_some_and(|n| &n.hostname == want)
    }

    /// Whether a task passes the service, node and state filters.
    pub fn task(&self, t: &TaskView, snap: &Snapshot) -> bool {
        self.service_is(t.service_id.as_deref(), snap)
            && self.node_is(t.node_id.as_deref(), snap)
            && self
                .state
                .as_ref()
                .is_none_or(|s| t.state.as_deref() == Some(s.as_str()))
    }

    /// Whether a change passes; `snap` resolves names (the newest one known).
    pub fn matches(&self, c: &Change, snap: &Snapshot) -> bool {
        if !self.kinds.is_empty() && !self.kinds.contains(&c.kind) {
            return false;
        }
        match &c.object {
            Object::Node(n) => self.service.is_none() && self.node_is(Some(&n.id), snap),
            Object::Service(s) => {
                self.node.is_none()
                    && (self.service.as_deref() == Some(s.name.as_str())
                        || self.service_is(Some(&s.id), snap))
            }
            Object::Task(t) => {
                // A removed task's service may be gone too: match its recorded name.
                let by_name =
                    self.service.is_some() && self.service.as_deref() == t.service_name.as_deref();
                (by_name || self.service_is(t.service_id.as_deref(), snap))
                    && self.node_is(t.node_id.as_deref(), snap)
            }
        }
    }
}

/// The event stream of manager `m`, from now (or, with `last`, from after that index as far
/// as the current state tells).
pub fn sse(
    m: Manager,
    filter: Filter,
    last: Option<u64>,
) -> Sse<impl Stream<Item = Result<Event, Infallible>>> {
    let (tx, rx) = mpsc::channel::<Event>(64);
    tokio::spawn(pump(m, filter, last, tx));
    let stream = futures_util::stream::unfold(rx, |mut rx| async move {
        rx.recv().await.map(|e| (Ok::<_, Infallible>(e), rx))
    });
    Sse::new(stream)
}

/// Feeds one client until it goes away or the manager stops.
async fn pump(m: Manager, filter: Filter, last: Option<u64>, tx: mpsc::Sender<Event>) {
    let mut applied = m.store().applied();
    applied.borrow_and_update();
    let mut shutdown = m.shutdown_signal();
    let mut prev = Snapshot::take(&m);
    // A first comment makes the response start now, so clients see the stream is up.
    if tx
        .send(Event::default().comment("berth events"))
        .await
        .is_err()
    {
        return;
    }
    if let Some(after) = last {
        for c in since(&prev, after) {
            if filter.matches(&c, &prev) && tx.send(c.event(prev.index)).await.is_err() {
                return;
            }
        }
    }
    let mut quiet_until = Instant::now() + KEEP_ALIVE;
    loop {
        tokio::select! {
            _ = tx.closed() => return,
            r = shutdown.changed() => {
                if r.is_err() || *shutdown.borrow() {
                    return;
                }
            }
            r = applied.changed() => {
                if r.is_err() {
                    return;
                }
                let index = *applied.borrow_and_update();
                let next = Snapshot::take(&m);
                let index = index.max(next.index);
                for c in diff(&prev, &next) {
                    if filter.matches(&c, &next) {
                        if tx.send(c.event(index)).await.is_err() {
                            return;
                        }
                        quiet_until = Instant::now() + KEEP_ALIVE;
                    }
                }
                prev = next;
            }
            _ = tokio::time::sleep_until(quiet_until) => {
                if tx.send(Event::default().comment("keep-alive")).await.is_err() {
                    return;
                }
                quiet_until = Instant::now() + KEEP_ALIVE;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::berth_v1::model::{Platform, Replicas, Resources};

    fn task(id: &str, version: u64, state: &str) -> TaskView {
        TaskView {
            id: id.into(),
            name: "web.1".into(),
            service_id: Some("s1".into()),
            service_name: Some("web".into()),
            slot: Some(1),
            node_id: Some("n1".into()),
            desired_state: Some("running".into()),
            state: Some(state.into()),
            message: None,
            error: None,
            container_id: None,
            exit_code: None,
            status_timestamp: None,
            version,
            created_at: None,
            updated_at: None,
        }
    }

    fn service(running: u64) -> ServiceView {
        ServiceView {
            id: "s1".into(),
            name: "web".into(),
            stack: None,
            mode: "replicated".into(),
            replicas: Replicas {
                desired: 1,
                running,
                completed: 0,
            },
            image: Some("busybox".into()),
            labels: BTreeMap::new(),
            update_status: None,
            ports: Vec::new(),
            version: 5,
            created_at: None,
            updated_at: None,
        }
    }

    fn node() -> NodeView {
        NodeView {
            id: "n1".into(),
            hostname: "h1".into(),
            role: Some("manager".into()),
            availability: Some("active".into()),
            state: Some("ready".into()),
            message: None,
            addr: None,
            leader: true,
            manager_reachability: None,
            labels: BTreeMap::new(),
            resources: Resources::default(),
            platform: Platform::default(),
            engine_version: None,
            running_tasks: 0,
            version: 2,
            created_at: None,
            updated_at: None,
        }
    }

    #[test]
    fn diff_reports_create_update_remove() {
        let mut a = Snapshot::default();
        a.services.insert("s1".into(), service(0));
        a.tasks.insert("t1".into(), task("t1", 6, "pending"));
        a.tasks.insert("t2".into(), task("t2", 6, "running"));
        let mut b = a.clone();
        b.services.insert("s1".into(), service(1));
        b.tasks.insert("t1".into(), task("t1", 7, "running"));
        b.tasks.remove("t2");
        b.tasks.insert("t3".into(), task("t3", 7, "new"));
        b.nodes.insert("n1".into(), node());
        let got: Vec<(Kind, Action, String)> = diff(&a, &b)
            .into_iter()
            .map(|c| (c.kind, c.action, c.id))
            .collect();
        assert_eq!(
            got,
            vec![
                (Kind::Node, Action::Create, "n1".into()),
                (Kind::Service, Action::Update, "s1".into()),
                (Kind::Task, Action::Update, "t1".into()),
                (Kind::Task, Action::Create, "t3".into()),
                (Kind::Task, Action::Remove, "t2".into()),
            ]
        );
        assert!(diff(&b, &b).is_empty());
    }

    #[test]
    fn since_sends_newer_objects() {
        let mut s = Snapshot::default();
        s.tasks.insert("t1".into(), task("t1", 6, "running"));
        s.tasks.insert("t2".into(), task("t2", 9, "running"));
        s.nodes.insert("n1".into(), node());
        let ids: Vec<String> = since(&s, 6).into_iter().map(|c| c.id).collect();
        assert_eq!(ids, vec!["t2".to_string()]);
    }

    #[test]
    fn filters_by_type_service_and_node() {
        let mut s = Snapshot::default();
        s.services.insert("s1".into(), service(1));
        s.nodes.insert("n1".into(), node());
        let change = |object: Object, kind| Change {
            kind,
            action: Action::Update,
            id: "x".into(),
            object,
        };
        let t = change(Object::Task(task("t1", 1, "running")), Kind::Task);
        let n = change(Object::Node(node()), Kind::Node);
        let sv = change(Object::Service(service(1)), Kind::Service);
        let p = Params::parse("type=task&service=web").unwrap();
        let f = Filter::parse(&p).unwrap();
        assert!(f.matches(&t, &s));
        assert!(!f.matches(&n, &s) && !f.matches(&sv, &s));
        let f = Filter::parse(&Params::parse("service=s1").unwrap()).unwrap();
        assert!(f.matches(&sv, &s) && f.matches(&t, &s) && !f.matches(&n, &s));
        let f = Filter::parse(&Params::parse("node=h1").unwrap()).unwrap();
        assert!(f.matches(&n, &s) && f.matches(&t, &s) && !f.matches(&sv, &s));
        let f = Filter::parse(&Params::parse("service=other").unwrap()).unwrap();
        assert!(!f.matches(&t, &s));
        assert!(Filter::parse(&Params::parse("type=container").unwrap()).is_err());
        let data = t.data();
        assert_eq!(data["action"], "update");
        assert_eq!(data["object"]["service_name"], "web");
    }
}
