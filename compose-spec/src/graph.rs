//! The service dependency graph: edges from `depends_on` (with condition, `required`,
//! `restart`), `links`, `volumes_from`, and `network_mode` / `ipc` / `pid: service:X`. It
//! detects cycles (reported exactly as compose-go words them), orders start-up in parallel
//! levels and shutdown in reverse, and answers "what does X wait for / what waits for X".

use std::collections::HashMap;

use indexmap::IndexMap;
use petgraph::Direction;
use petgraph::graph::{DiGraph, NodeIndex};
use petgraph::visit::EdgeRef;

use crate::error::{Error, Result};
use crate::yaml::{Node, Resolved, Value};

/// When a dependency counts as ready.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum Condition {
    /// Its container started.
    #[default]
    ServiceStarted,
    /// It reports healthy.
    ServiceHealthy,
    /// It exited with status 0.
    ServiceCompletedSuccessfully,
}

impl Condition {
    /// Parse the spec's spelling; unknown values are `None`.
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "service_started" => Some(Condition::ServiceStarted),
            "service_healthy" => Some(Condition::ServiceHealthy),
            "service_completed_successfully" => Some(Condition::ServiceCompletedSuccessfully),
            _ => None,
        }
    }
}

/// The attribute that made a dependency.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Via {
    /// `depends_on`.
    DependsOn,
    /// `links`.
    Links,
    /// `volumes_from`.
    VolumesFrom,
    /// `network_mode: service:X`.
    NetworkMode,
    /// `ipc: service:X`.
    Ipc,
    /// `pid: service:X`.
    Pid,
}

impl Via {
    /// The attribute name.
    pub fn as_str(self) -> &'static str {
        match self {
            Via::DependsOn => "depends_on",
            Via::Links => "links",
            Via::VolumesFrom => "volumes_from",
            Via::NetworkMode => "network_mode",
            Via::Ipc => "ipc",
            Via::Pid => "pid",
        }
    }
}

/// One edge: a service waits for another.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Dependency {
    /// When the dependency is ready.
    pub condition: Condition,
    /// A missing required dependency is an error; a missing optional one is ignored.
    pub required: bool,
    /// Restart the dependent when the dependency restarts.
    pub restart: bool,
    /// Which attribute declared it.
    pub via: Via,
}

impl Dependency {
    fn implicit(via: Via) -> Self {
        Dependency {
            condition: Condition::ServiceStarted,
            required: true,
            restart: false,
            via,
        }
    }
}

/// The dependencies one service declares, in declaration order.
#[derive(Clone, Debug, Default)]
pub struct ServiceEdges {
    /// `(service, dependency)` pairs; a service may appear once per attribute.
    pub deps: Vec<(String, Dependency)>,
}

/// `service:X` -> `X`.
fn service_ref(s: &str) -> Option<&str> {
    s.strip_prefix("service:")
}

impl ServiceEdges {
    /// The names depended on (with repeats when several attributes name the same service).
    pub fn dependencies(&self) -> impl Iterator<Item = &str> {
        self.deps.iter().map(|(n, _)| n.as_str())
    }

    /// Add a dependency declared by `links` (`svc` or `svc:alias`).
    pub fn add_link(&mut self, link: &str) {
        let name = link.split_once(':').map_or(link, |(s, _)| s);
        self.deps
            .push((name.to_string(), Dependency::implicit(Via::Links)));
    }

    /// Add a dependency declared by `volumes_from` (`svc[:mode]`, `service:svc[:mode]`;
    /// `container:...` is not a service).
    pub fn add_volumes_from(&mut self, spec: &str) {
        let mut parts = spec.split(':');
        let first = parts.next().unwrap_or_default();
        let name = match first {
            "container" => return,
            "service" => parts.next().unwrap_or_default(),
            other => other,
        };
        if !name.is_empty() {
            self.deps
                .push((name.to_string(), Dependency::implicit(Via::VolumesFrom)));
        }
    }

    /// Add a dependency from `network_mode`, `ipc` or `pid` when it is `service:X`.
    pub fn add_namespace(&mut self, value: &str, via: Via) {
        if let Some(name) = service_ref(value) {
            self.deps
                .push((name.to_string(), Dependency::implicit(via)));
        }
    }

    /// Read the edges of a typed service.
    pub fn from_service(service: &crate::model::Service) -> Self {
        use crate::model::DependencyCondition as C;
        let mut e = ServiceEdges::default();
        for (name, d) in &service.depends_on {
            let condition = match d.condition {
                C::ServiceStarted => Condition::ServiceStarted,
                C::ServiceHealthy => Condition::ServiceHealthy,
                C::ServiceCompletedSuccessfully => Condition::ServiceCompletedSuccessfully,
            };
            e.deps.push((
                name.clone(),
                Dependency {
                    condition,
                    required: d.required,
                    restart: d.restart,
                    via: Via::DependsOn,
                },
            ));
        }
        for l in &service.links {
            e.add_link(l);
        }
        for v in &service.volumes_from {
            e.add_volumes_from(v);
        }
        for (v, via) in [
            (&service.network_mode, Via::NetworkMode),
            (&service.ipc, Via::Ipc),
            (&service.pid, Via::Pid),
        ] {
            if let Some(v) = v {
                e.add_namespace(v, via);
            }
        }
        e
    }

    /// Read the edges of a service from its (canonical or short-syntax) node.
    pub fn from_node(service: &Node) -> Self {
        let mut e = ServiceEdges::default();
        let Some(m) = service.as_map() else {
            return e;
        };
        if let Some(d) = m.get("depends_on") {
            match &d.value {
                Value::Seq(items) => {
                    for i in items {
                        if let Some(s) = i.as_str() {
                            e.deps
                                .push((s.to_string(), Dependency::implicit(Via::DependsOn)));
                        }
                    }
                }
                Value::Map(deps) => {
                    for (name, spec) in deps {
                        let flag = |k: &str, default: bool| match spec
                            .get(k)
                            .and_then(Node::as_scalar)
                            .map(|s| s.resolve())
                        {
                            Some(Resolved::Bool(b)) => b,
                            _ => default,
                        };
                        let condition = spec
                            .get("condition")
                            .and_then(Node::as_str)
                            .and_then(Condition::parse)
                            .unwrap_or_default();
                        e.deps.push((
                            name.name.clone(),
                            Dependency {
                                condition,
                                required: flag("required", true),
                                restart: flag("restart", false),
                                via: Via::DependsOn,
                            },
                        ));
                    }
                }
                _ => {}
            }
        }
        let strings = |k: &str| -> Vec<&str> {
            match m.get(k).map(|n| &n.value) {
                Some(Value::Seq(items)) => items.iter().filter_map(Node::as_str).collect(),
                _ => Vec::new(),
            }
        };
        for l in strings("links") {
            e.add_link(l);
        }
        for v in strings("volumes_from") {
            e.add_volumes_from(v);
        }
        for (k, via) in [
            ("network_mode", Via::NetworkMode),
            ("ipc", Via::Ipc),
            ("pid", Via::Pid),
        ] {
            if let Some(v) = m.get(k).and_then(Node::as_str) {
                e.add_namespace(v, via);
            }
        }
        e
    }
}

/// Services and who waits for whom; edges point from a service to what it depends on.
#[derive(Debug)]
pub struct ServiceGraph {
    graph: DiGraph<String, Dependency>,
    index: IndexMap<String, NodeIndex>,
}

impl ServiceGraph {
    /// Build the graph, reporting dependencies on undefined services (`disabled` tells which
    /// missing services exist but are disabled, with their profiles) and cycles.
    pub fn new(
        services: impl IntoIterator<Item = (String, ServiceEdges)>,
        disabled: &dyn Fn(&str) -> Option<Vec<String>>,
    ) -> Result<Self> {
        let services: Vec<(String, ServiceEdges)> = services.into_iter().collect();
        let mut graph = DiGraph::with_capacity(services.len(), services.len());
        let mut index = IndexMap::with_capacity(services.len());
        for (name, _) in &services {
            index.insert(name.clone(), graph.add_node(name.clone()));
        }
        // One edge per pair: `depends_on` is read first, so its condition wins over the
        // implicit `service_started` of links, volumes_from and shared namespaces.
        let mut seen: std::collections::HashSet<(NodeIndex, NodeIndex)> =
            std::collections::HashSet::new();
        for (name, edges) in &services {
            let from = index[name.as_str()];
            for (dep, d) in &edges.deps {
                match index.get(dep.as_str()) {
                    Some(&to) => {
                        if seen.insert((from, to)) {
                            graph.add_edge(from, to, *d);
                        }
                    }
                    None if !d.required => {}
                    None => {
                        if let Some(profiles) = disabled(dep) {
                            return Err(Error::DisabledDependency {
                                service: name.clone(),
                                dependency: dep.clone(),
                                profiles,
                            });
                        }
                        return Err(Error::UndefinedDependency {
                            service: name.clone(),
                            dependency: dep.clone(),
                            via: d.via.as_str(),
                        });
                    }
                }
            }
        }
        let g = ServiceGraph { graph, index };
        g.check_cycle()?;
        Ok(g)
    }

    /// Build the graph of a typed project's enabled services.
    pub fn from_project(project: &crate::model::Project) -> Result<Self> {
        let services = project
            .services
            .iter()
            .map(|(k, s)| (k.clone(), ServiceEdges::from_service(s)));
        let lookup = |name: &str| {
            project
                .disabled_services
                .get(name)
                .map(|s| s.profiles.clone())
        };
        ServiceGraph::new(services, &lookup)
    }

    /// Build the graph of the `services` mapping of a model node.
    pub fn from_model_node(root: &Node, disabled: &crate::yaml::Mapping) -> Result<Self> {
        let services = root
            .get("services")
            .and_then(Node::as_map)
            .map(|m| {
                m.iter()
                    .map(|(k, v)| (k.name.clone(), ServiceEdges::from_node(v)))
                    .collect::<Vec<_>>()
            })
            .unwrap_or_default();
        let lookup = |name: &str| disabled.get(name).map(crate::profiles::service_profiles);
        ServiceGraph::new(services, &lookup)
    }

    /// compose-go's cycle search: services in name order, children in name order, the first
    /// cycle found reported as `a -> b -> a`. A linear check runs first so acyclic graphs
    /// (the usual case) never pay for the ordered search.
    fn check_cycle(&self) -> Result<()> {
        if !petgraph::algo::is_cyclic_directed(&self.graph) {
            return Ok(());
        }
        let mut children: HashMap<NodeIndex, Vec<NodeIndex>> = HashMap::new();
        for n in self.graph.node_indices() {
            let mut c: Vec<NodeIndex> = self.graph.neighbors(n).collect();
            c.sort_by(|a, b| self.graph[*a].cmp(&self.graph[*b]));
            c.dedup();
            children.insert(n, c);
        }
        let mut names: Vec<NodeIndex> = self.graph.node_indices().collect();
        names.sort_by(|a, b| self.graph[*a].cmp(&self.graph[*b]));
        // A node fully explored without finding a cycle has none reachable from it.
        let mut safe = vec![false; self.graph.node_count()];
        for start in names {
            let mut path = vec![start];
            if let Some(cycle) = self.search(&mut path, &children, &mut safe) {
                return Err(Error::DependencyCycle { cycle });
            }
        }
        Ok(())
    }

    fn search(
        &self,
        path: &mut Vec<NodeIndex>,
        children: &HashMap<NodeIndex, Vec<NodeIndex>>,
        safe: &mut [bool],
    ) -> Option<Vec<String>> {
        let &v = path.last()?;
        if safe[v.index()] {
            return None;
        }
        for &c in children.get(&v).map(Vec::as_slice).unwrap_or_default() {
            if let Some(i) = path.iter().position(|p| *p == c) {
                let mut cycle: Vec<String> =
                    path[i..].iter().map(|n| self.graph[*n].clone()).collect();
                cycle.push(self.graph[c].clone());
                return Some(cycle);
            }
            path.push(c);
            let found = self.search(path, children, safe);
            path.pop();
            if found.is_some() {
                return found;
            }
        }
        safe[v.index()] = true;
        None
    }

    /// Start order: each level depends only on earlier levels; services in a level can start
    /// in parallel. Within a level, services keep their declaration order.
    pub fn start_order(&self) -> Vec<Vec<String>> {
        let n = self.graph.node_count();
        let mut level: Vec<Option<usize>> = vec![None; n];
        // Iterative post-order so deep chains cannot overflow the stack.
        for (_, &start) in &self.index {
            if level[start.index()].is_some() {
                continue;
            }
            let mut stack = vec![(start, false)];
            while let Some((v, expanded)) = stack.pop() {
                if level[v.index()].is_some() {
                    continue;
                }
                if expanded {
                    let l = self
                        .graph
                        .neighbors(v)
                        .map(|d| level[d.index()].map_or(0, |x| x + 1))
                        .max()
                        .unwrap_or(0);
                    level[v.index()] = Some(l);
                } else {
                    stack.push((v, true));
                    for d in self.graph.neighbors(v) {
                        if level[d.index()].is_none() {
                            stack.push((d, false));
                        }
                    }
                }
            }
        }
        let depth = level.iter().flatten().max().map_or(0, |m| m + 1);
        let mut out = vec![Vec::new(); depth];
        for (name, &ix) in &self.index {
            if let Some(l) = level[ix.index()] {
                out[l].push(name.clone());
            }
        }
        out
    }

    /// Stop order: dependents before what they depend on (start levels reversed).
    pub fn stop_order(&self) -> Vec<Vec<String>> {
        let mut levels = self.start_order();
        levels.reverse();
        levels
    }

    /// What `service` waits for, with how.
    pub fn dependencies(&self, service: &str) -> Vec<(&str, &Dependency)> {
        self.edges(service, Direction::Outgoing)
    }

    /// What waits for `service`, with how.
    pub fn dependents(&self, service: &str) -> Vec<(&str, &Dependency)> {
        self.edges(service, Direction::Incoming)
    }

    fn edges(&self, service: &str, dir: Direction) -> Vec<(&str, &Dependency)> {
        let Some(&ix) = self.index.get(service) else {
            return Vec::new();
        };
        let mut out: Vec<(&str, &Dependency)> = self
            .graph
            .edges_directed(ix, dir)
            .map(|e| {
                let other = if dir == Direction::Outgoing {
                    e.target()
                } else {
                    e.source()
                };
                (self.graph[other].as_str(), e.weight())
            })
            .collect();
        // petgraph lists edges newest first; callers expect declaration order.
        out.reverse();
        out
    }

    /// `services` and everything they transitively depend on, in start order (levels).
    pub fn start_order_of(&self, services: &[&str]) -> Vec<Vec<String>> {
        let mut wanted = vec![false; self.graph.node_count()];
        let mut stack: Vec<NodeIndex> = services
            .iter()
            .filter_map(|s| self.index.get(*s).copied())
            .collect();
        while let Some(v) = stack.pop() {
            if std::mem::replace(&mut wanted[v.index()], true) {
                continue;
            }
            stack.extend(self.graph.neighbors(v));
        }
        self.start_order()
            .into_iter()
            .map(|level| {
                level
                    .into_iter()
                    .filter(|n| {
                        self.index
                            .get(n.as_str())
                            .is_some_and(|i| wanted[i.index()])
                    })
                    .collect::<Vec<_>>()
            })
            .filter(|level| !level.is_empty())
            .collect()
    }

    /// Service names in declaration order.
    pub fn services(&self) -> impl Iterator<Item = &str> {
        self.index.keys().map(String::as_str)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn edges(deps: &[&str]) -> ServiceEdges {
        ServiceEdges {
            deps: deps
                .iter()
                .map(|d| (d.to_string(), Dependency::implicit(Via::DependsOn)))
                .collect(),
        }
    }

    fn graph(spec: &[(&str, &[&str])]) -> Result<ServiceGraph> {
        ServiceGraph::new(spec.iter().map(|(n, d)| (n.to_string(), edges(d))), &|_| {
            None
        })
    }

    #[test]
    fn cycles_are_reported_like_compose_go() {
        let err = graph(&[
            ("service1", &["service2"]),
            ("service2", &["service3"]),
            ("service3", &["service1"]),
        ])
        .unwrap_err();
        assert_eq!(
            err.to_string(),
            "dependency cycle detected: service1 -> service2 -> service3 -> service1"
        );
        let err = graph(&[("service1", &["service1"])]).unwrap_err();
        assert_eq!(
            err.to_string(),
            "dependency cycle detected: service1 -> service1"
        );
    }

    #[test]
    fn levels_and_reverse() {
        let g = graph(&[
            ("web", &["api", "cache"]),
            ("api", &["db"]),
            ("db", &[]),
            ("cache", &[]),
        ])
        .unwrap();
        assert_eq!(
            g.start_order(),
            vec![vec!["db", "cache"], vec!["api"], vec!["web"]]
        );
        assert_eq!(g.stop_order()[0], vec!["web"]);
        assert_eq!(g.start_order_of(&["api"]), vec![vec!["db"], vec!["api"]]);
        assert_eq!(g.dependencies("web").len(), 2);
        assert_eq!(g.dependents("db")[0].0, "api");
    }

    #[test]
    fn undefined_and_optional_dependencies() {
        let err = graph(&[("web", &["db"])]).unwrap_err();
        assert!(
            err.to_string()
                .contains("depends on undefined service \"db\"")
        );
        let mut e = edges(&[]);
        e.deps.push((
            "db".into(),
            Dependency {
                required: false,
                ..Dependency::implicit(Via::DependsOn)
            },
        ));
        assert!(ServiceGraph::new([("web".to_string(), e)], &|_| None).is_ok());
    }

    #[test]
    fn implicit_edges() {
        let mut e = ServiceEdges::default();
        e.add_link("db:database");
        e.add_volumes_from("service:data:ro");
        e.add_volumes_from("container:abc");
        e.add_volumes_from("logs");
        e.add_namespace("service:net", Via::NetworkMode);
        e.add_namespace("host", Via::Pid);
        let names: Vec<&str> = e.dependencies().collect();
        assert_eq!(names, vec!["db", "data", "logs", "net"]);
        let mut web = edges(&["db"]);
        web.add_link("db");
        let g = ServiceGraph::new(
            [("web".to_string(), web), ("db".to_string(), edges(&[]))],
            &|_| None,
        )
        .unwrap();
        assert_eq!(g.dependencies("web").len(), 1);
        assert_eq!(g.dependencies("web")[0].1.via, Via::DependsOn);
    }

    #[test]
    fn wide_diamonds_stay_fast() {
        // 2,000 services each depending on all of the previous ten: no exponential walk.
        let names: Vec<String> = (0..2000).map(|i| format!("s{i:04}")).collect();
        let spec: Vec<(String, ServiceEdges)> = names
            .iter()
            .enumerate()
            .map(|(i, n)| {
                let deps: Vec<&str> = names[i.saturating_sub(10)..i]
                    .iter()
                    .map(String::as_str)
                    .collect();
                (n.clone(), edges(&deps))
            })
            .collect();
        let g = ServiceGraph::new(spec, &|_| None).unwrap();
        assert_eq!(g.start_order().len(), 2000);
    }
}
