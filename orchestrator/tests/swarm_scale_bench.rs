//! Control plane at scale (ignored by default): three real managers on 127.0.0.1 (Raft with
//! fsync, mutual TLS on their cluster ports) and 1,000 simulated agents in this process, each
//! joined with its own key and certificate and keeping its own session. Measures the time until
//! every node is ready, tasks/s from creating 10 x 1,000 replicas to every task RUNNING, and the
//! time from stopping 100 agents to their tasks running elsewhere.
//! Run: `tests/bench/swarm-agents.sh` (= `cargo test --release -p berth-orchestrator --test
//! swarm_scale_bench -- --ignored --nocapture`); `SWARM_SCALE_AGENTS`, `SWARM_SCALE_SERVICES`,
//! `SWARM_SCALE_REPLICAS`, `SWARM_SCALE_KILL` tune it.

use berth_orchestrator::swarm::ca::{self, Role, RootCa};
use berth_orchestrator::swarm::ids;
use berth_orchestrator::swarm::manager::ops::InitSpec;
use berth_orchestrator::swarm::manager::{Manager, ManagerConfig};
use berth_orchestrator::swarm::sim::{self, SimAgent, SimStats};
use berth_orchestrator::swarm::state::{ClusterState, observed_state};
use bollard_stubs::models::{
    NodeState, ServiceSpec, ServiceSpecMode, ServiceSpecModeReplicated, SwarmSpec, TaskSpec,
    TaskSpecContainerSpec, TaskState,
};
use futures_util::StreamExt;
use std::collections::HashSet;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};
use tokio::sync::watch;
use tokio::task::JoinHandle;

/// Nomad's C1M: 3,750 containers placed per second on 5 servers.
const NOMAD_C1M_PER_SEC: f64 = 3750.0;

fn env_usize(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A running simulated agent and the switch that stops it.
struct Running {
    node_id: String,
    stop: watch::Sender<bool>,
    task: JoinHandle<()>,
}

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.stop.send(true);
        self.task.abort();
    }
}

/// Shuts the managers down even when an assertion fails half way.
struct Managers(Vec<Manager>);

impl Managers {
    fn leader(&self) -> Option<&Manager> {
        self.0.iter().find(|m| m.store().is_leader())
    }
}

impl Drop for Managers {
    fn drop(&mut self) {
        let ms = std::mem::take(&mut self.0);
        // Only reached with managers left when the test body panics: shut them down in the
        // background; the runtime ends with the test and stops whatever is left.
        if let Ok(h) = tokio::runtime::Handle::try_current() {
            h.spawn(async move {
                for m in ms {
                    m.shutdown().await;
                }
            });
        }
    }
}

/// The agents' own runtime, so that the managers' Raft timers and handlers do not queue behind
/// a thousand agent tasks (on a real cluster agents run elsewhere); the OS shares the cores.
struct AgentRuntime(Option<tokio::runtime::Runtime>);

impl AgentRuntime {
    fn new() -> Self {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .thread_name("sim-agents")
            .enable_all()
            .build()
            .unwrap();
        Self(Some(rt))
    }

    fn handle(&self) -> tokio::runtime::Handle {
        self.0.as_ref().unwrap().handle().clone()
    }
}

impl Drop for AgentRuntime {
    fn drop(&mut self) {
        // A runtime must not be dropped (blocking) inside another one's context.
        if let Some(rt) = self.0.take() {
            rt.shutdown_background();
        }
    }
}

fn spawn_agent(rt: &tokio::runtime::Handle, agent: SimAgent, stats: &Arc<SimStats>) -> Running {
    let (stop, rx) = watch::channel(false);
    let node_id = agent.node_id.clone();
    let task = rt.spawn(agent.run(rx, stats.clone()));
    Running {
        node_id,
        stop,
        task,
    }
}

async fn start_manager(
    root: &Path,
    name: &str,
    port: u16,
    node_id: &str,
    ca_pem: &str,
    cert: ca::KeyedCert,
) -> Manager {
    Manager::start(ManagerConfig {
        dir: root.join(name),
        node_id: node_id.to_string(),
        advertise_addr: format!("127.0.0.1:{port}"),
        listen_addr: format!("127.0.0.1:{port}").parse().unwrap(),
        ca_pem: ca_pem.to_string(),
        cert,
    })
    .await
    .unwrap()
}

/// Waits until `f` holds, printing `progress` every few seconds.
async fn wait_until(
    what: &str,
    limit: Duration,
    mut f: impl FnMut() -> bool,
    mut progress: impl FnMut() -> String,
) -> Duration {
    let start = Instant::now();
    let mut said = Instant::now();
    while !f() {
        assert!(
            start.elapsed() < limit,
            "{what}: not done within {limit:?}: {}",
            progress()
        );
        if said.elapsed() > Duration::from_secs(5) {
            println!(
                "  ... {what}: {:.1}s: {}",
                start.elapsed().as_secs_f64(),
                progress()
            );
            said = Instant::now();
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    start.elapsed()
}

fn ready_nodes(s: &ClusterState) -> usize {
    s.nodes
        .values()
        .filter(|n| n.status.as_ref().and_then(|s| s.state) == Some(NodeState::READY))
        .count()
}

/// Tasks that should run and do, on nodes not in `dead`.
fn running(s: &ClusterState, dead: &HashSet<String>) -> usize {
    s.tasks
        .values()
        .filter(|t| {
            t.desired_state == Some(TaskState::RUNNING)
                && observed_state(t) == TaskState::RUNNING
                && !t.node_id.as_ref().is_some_and(|n| dead.contains(n))
        })
        .count()
}

fn task_counts(s: &ClusterState) -> String {
    let mut by_state = std::collections::BTreeMap::<String, usize>::new();
    for t in s.tasks.values() {
        if t.desired_state == Some(TaskState::RUNNING) {
            *by_state
                .entry(format!("{:?}", observed_state(t)))
                .or_default() += 1;
        }
    }
    format!("desired-running tasks by state {by_state:?}")
}

fn service(name: &str, replicas: i64) -> ServiceSpec {
    ServiceSpec {
        name: Some(name.into()),
        mode: Some(ServiceSpecMode {
            replicated: Some(ServiceSpecModeReplicated {
                replicas: Some(replicas),
            }),
            ..Default::default()
        }),
        task_template: Some(TaskSpec {
            container_spec: Some(TaskSpecContainerSpec {
                image: Some("busybox:latest".into()),
                command: Some(vec!["sleep".into(), "3600".into()]),
                ..Default::default()
            }),
            ..Default::default()
        }),
        ..Default::default()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "benchmark"]
async fn bench_simulated_agents_on_three_managers() {
    let agents = env_usize("SWARM_SCALE_AGENTS", 1000);
    let services = env_usize("SWARM_SCALE_SERVICES", 10);
    let replicas = env_usize("SWARM_SCALE_REPLICAS", 1000);
    let kill = env_usize("SWARM_SCALE_KILL", 100).min(agents);
    let total = services * replicas;
    let root = tempfile::tempdir().unwrap();
    let stats = Arc::new(SimStats::default());
    let agent_rt = AgentRuntime::new();
    let rt = agent_rt.handle();

    // The first manager inits the cluster, as `swarm init` does.
    let cluster_id = ids::new_id();
    let first_id = ids::new_id();
    let root_ca = RootCa::generate(&cluster_id).unwrap();
    let localhost = "127.0.0.1".parse().unwrap();
    let first_cert = root_ca
        .issue(&first_id, Role::Manager, &cluster_id, &[localhost])
        .unwrap();
    let port = free_port();
    let first = start_manager(
        root.path(),
        "m0",
        port,
        &first_id,
        &root_ca.cert_pem,
        first_cert.clone(),
    )
    .await;
    first
        .init_cluster(InitSpec {
            cluster_id: cluster_id.clone(),
            ca: root_ca.clone(),
            spec: SwarmSpec::default(),
            description: sim::description("manager-0"),
            availability: None,
            addr: "127.0.0.1".into(),
        })
        .await
        .unwrap();
    let mut ms = Managers(vec![first.clone()]);
    let tokens = first.swarm_inspect().unwrap().join_tokens.unwrap();
    let (worker_token, manager_token) = (tokens.worker.unwrap(), tokens.manager.unwrap());
    let first_addr = first.advertise_addr().to_string();
    let mut manager_agents = vec![spawn_agent(
        &rt,
        SimAgent {
            node_id: first_id.clone(),
            managers: vec![first_addr.clone()],
            http: berth_orchestrator::swarm::tls::client(&root_ca.cert_pem, Some(&first_cert))
                .unwrap(),
            description: sim::description("manager-0"),
        },
        &stats,
    )];

    // Two more managers join with the manager token, as `swarm join` does.
    for i in 1..3 {
        let port = free_port();
        let name = format!("manager-{i}");
        let joined = sim::join(
            &first_addr,
            &manager_token,
            &format!("127.0.0.1:{port}"),
            sim::description(&name),
        )
        .await
        .unwrap();
        assert_eq!(joined.response.role, Role::Manager);
        let m = start_manager(
            root.path(),
            &format!("m{i}"),
            port,
            &joined.response.node_id,
            &joined.response.ca_pem,
            joined.cert.clone(),
        )
        .await;
        ms.0.push(m);
        manager_agents.push(spawn_agent(
            &rt,
            SimAgent::new(&joined, sim::description(&name)).unwrap(),
            &stats,
        ));
    }
    let t = wait_until(
        "three voting managers",
        Duration::from_secs(60),
        || first.store().members().iter().filter(|m| m.voter).count() == 3,
        || format!("{:?}", first.store().members()),
    )
    .await;
    println!(
        "swarm scale: 3 managers voting after {:.2}s",
        t.as_secs_f64()
    );
    let addrs: Vec<String> =
        ms.0.iter()
            .map(|m| m.advertise_addr().to_string())
            .collect();

    // Workers join through all three managers (followers forward the writes); each starts its
    // session as soon as it has its certificate, as `swarm join` does.
    let start = Instant::now();
    let mut workers: Vec<Running> = futures_util::stream::iter(0..agents)
        .map(|i| {
            let (addr, token) = (addrs[i % addrs.len()].clone(), worker_token.clone());
            let (stats, rt) = (stats.clone(), rt.clone());
            let join = rt.clone().spawn(async move {
                let name = format!("sim-{i:05}");
                let mut last = None;
                for _ in 0..5 {
                    match sim::join(&addr, &token, "", sim::description(&name)).await {
                        Ok(j) => {
                            let agent = SimAgent::new(&j, sim::description(&name)).unwrap();
                            return spawn_agent(&rt, agent, &stats);
                        }
                        Err(e) => last = Some(e),
                    }
                    tokio::time::sleep(Duration::from_millis(200)).await;
                }
                panic!("join of {name} failed: {last:?}");
            });
            async move { join.await.unwrap() }
        })
        .buffer_unordered(64)
        .collect()
        .await;
    let join_time = start.elapsed();
    println!(
        "swarm scale: {agents} workers joined (CSR signed, node committed) in {:.2}s ({:.0} joins/s)",
        join_time.as_secs_f64(),
        agents as f64 / join_time.as_secs_f64()
    );
    let nodes = agents + 3;
    // During an election no manager leads: read the first one's replica meanwhile.
    let leader = || ms.leader().unwrap_or(&ms.0[0]).clone();
    let term = || leader().store().metrics().current_term;
    let first_term = term();
    let progress = || {
        format!(
            "rounds {} failures {} redirects {} reports {}",
            stats.rounds.load(Ordering::Relaxed),
            stats.failures.load(Ordering::Relaxed),
            stats.redirects.load(Ordering::Relaxed),
            stats.reports.load(Ordering::Relaxed)
        )
    };
    let t = wait_until(
        "all nodes ready",
        Duration::from_secs(120),
        || leader().store().read(ready_nodes) == nodes,
        || {
            format!(
                "{} of {nodes} ready; {}",
                leader().store().read(ready_nodes),
                progress()
            )
        },
    )
    .await;
    let ready_time = join_time + t;
    println!(
        "swarm scale: all {nodes} nodes Ready {:.2}s after the first join ({:.2}s after the last)",
        ready_time.as_secs_f64(),
        t.as_secs_f64()
    );

    // Deploy: services x replicas, until every task is RUNNING in the leader's store.
    let none = HashSet::new();
    let rounds_before = stats.rounds.load(Ordering::Relaxed);
    let failures_before = stats.failures.load(Ordering::Relaxed);
    let reports_before = stats.reports.load(Ordering::Relaxed);
    let start = Instant::now();
    for s in 0..services {
        let spec = service(&format!("svc{s}"), replicas as i64);
        let mut tries = 0;
        while let Err(e) = leader().create_service(spec.clone()).await {
            tries += 1;
            assert!(tries < 50, "creating svc{s}: {e}");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
    let created = start.elapsed();
    let placed = wait_until(
        "all tasks assigned",
        Duration::from_secs(300),
        || {
            leader().store().read(|s| {
                s.tasks
                    .values()
                    .filter(|t| t.desired_state == Some(TaskState::RUNNING) && t.node_id.is_some())
                    .count()
            }) >= total
        },
        || format!("{}; {}", leader().store().read(task_counts), progress()),
    )
    .await
        + created;
    let all_running = wait_until(
        "all tasks running",
        Duration::from_secs(600),
        || leader().store().read(|s| running(s, &none)) == total,
        || format!("{}; {}", leader().store().read(task_counts), progress()),
    )
    .await
        + placed;
    let rate = total as f64 / all_running.as_secs_f64();
    println!(
        "swarm scale: {services} services x {replicas} replicas = {total} tasks on {nodes} nodes: \
         created in {:.2}s, all assigned after {:.2}s, all RUNNING after {:.2}s: {rate:.0} tasks/s \
         ({:.2}x Nomad C1M's {NOMAD_C1M_PER_SEC:.0}/s)",
        created.as_secs_f64(),
        placed.as_secs_f64(),
        all_running.as_secs_f64(),
        rate / NOMAD_C1M_PER_SEC
    );
    println!(
        "swarm scale: during the deploy: {} session rounds, {} failed, {} status reports; Raft term now {}",
        stats.rounds.load(Ordering::Relaxed) - rounds_before,
        stats.failures.load(Ordering::Relaxed) - failures_before,
        stats.reports.load(Ordering::Relaxed) - reports_before,
        term()
    );

    // Node failure: stop `kill` agents; their tasks must run elsewhere.
    let dead_agents: Vec<Running> = workers.drain(..kill).collect();
    let dead: HashSet<String> = dead_agents.iter().map(|r| r.node_id.clone()).collect();
    let moved = leader().store().read(|s| {
        s.tasks
            .values()
            .filter(|t| {
                t.desired_state == Some(TaskState::RUNNING)
                    && t.node_id.as_ref().is_some_and(|n| dead.contains(n))
            })
            .count()
    });
    drop(dead_agents);
    let term_before_kill = term();
    let down = wait_until(
        "stopped nodes down",
        Duration::from_secs(240),
        || {
            leader().store().read(|s| {
                dead.iter().all(|id| {
                    s.nodes.get(id).and_then(|n| n.status.as_ref()?.state) == Some(NodeState::DOWN)
                })
            })
        },
        || {
            let up = leader().store().read(|s| {
                dead.iter()
                    .filter(|id| {
                        s.nodes.get(*id).and_then(|n| n.status.as_ref()?.state)
                            != Some(NodeState::DOWN)
                    })
                    .count()
            });
            format!("{up} not down yet; term {}; {}", term(), progress())
        },
    )
    .await;
    let rescheduled = wait_until(
        "tasks rescheduled and running",
        Duration::from_secs(300),
        || leader().store().read(|s| running(s, &dead)) == total,
        || format!("{}; {}", leader().store().read(task_counts), progress()),
    )
    .await
        + down;
    println!(
        "swarm scale: Raft term {term_before_kill} before the agents stopped, {} after",
        term()
    );
    println!(
        "swarm scale: {kill} agents stopped ({moved} tasks on them): all down after {:.2}s, \
         their tasks RUNNING elsewhere after {:.2}s (target under 5 s; Docker about 15 s)",
        down.as_secs_f64(),
        rescheduled.as_secs_f64()
    );
    println!(
        "swarm scale: totals: {}; Raft term {} -> {} (elections during the run: {})",
        progress(),
        first_term,
        term(),
        term() - first_term
    );

    drop(workers);
    drop(manager_agents);
    for m in std::mem::take(&mut ms.0) {
        m.shutdown().await;
    }
}
