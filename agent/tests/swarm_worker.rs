//! The swarm worker against a real berthd: synthetic tasks through the executor (states,
//! labels, exits, shutdown, removal, networks with DNS by service name, adoption after a
//! restart) and the session loop against fake managers speaking the dispatcher protocol.

mod common;

use berth_agent::swarm::worker::spec::{NETWORK_ID_LABEL, SERVICE_NAME_LABEL};
use berth_agent::swarm::worker::{Executor, SessionConfig, run};
use berth_client::{Client, Host};
use berth_orchestrator::swarm::dispatcher::proto::{SESSION_PATH, SessionRequest, SessionResponse};
use bollard_stubs::models::{
    Network, NetworkAttachmentConfig, NodeDescription, Task, TaskSpec, TaskSpecContainerSpec,
    TaskState, TaskStatus,
};
use common::Berthd;
use http_body_util::BodyExt;
use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

const NODE: &str = "node0000000000000000000001";

fn rt() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
}

fn client(d: &Berthd) -> Client {
    Client::new(Host::Unix(d.sock.clone()), None).unwrap()
}

fn executor(d: &Berthd) -> Executor {
    Executor::new(client(d), NODE.into(), d.dir.path().join("task-files"))
}

fn task(id: &str, service: &str, slot: i64, image: &str, script: &str) -> Task {
    Task {
        id: Some(id.into()),
        name: Some(format!("{service}.{slot}")),
        service_id: Some(format!("svc{service}")),
        slot: Some(slot),
        node_id: Some(NODE.into()),
        labels: Some(HashMap::from([
            (SERVICE_NAME_LABEL.to_string(), service.to_string()),
            ("com.docker.stack.namespace".to_string(), "st".to_string()),
        ])),
        spec: Some(TaskSpec {
            container_spec: Some(TaskSpecContainerSpec {
                image: Some(image.into()),
                command: Some(vec!["sh".into(), "-c".into(), script.into()]),
                labels: Some(HashMap::from([("app".to_string(), service.to_string())])),
                stop_grace_period: Some(1_000_000_000),
                ..Default::default()
            }),
            ..Default::default()
        }),
        status: Some(TaskStatus {
            state: Some(TaskState::ASSIGNED),
            ..Default::default()
        }),
        desired_state: Some(TaskState::RUNNING),
        ..Default::default()
    }
}

fn on_network(mut t: Task, net: &str) -> Task {
    t.spec.as_mut().unwrap().networks = Some(vec![NetworkAttachmentConfig {
        target: Some(net.into()),
        aliases: None,
        driver_opts: None,
    }]);
    t
}

/// Applies the executor's reports to the tasks, as the manager would.
fn apply(
    tasks: &mut [Task],
    seen: &mut BTreeMap<String, TaskStatus>,
    ups: Vec<berth_orchestrator::swarm::state::TaskStatusUpdate>,
) {
    for u in ups {
        assert_eq!(u.node_id, NODE);
        if let Some(t) = tasks
            .iter_mut()
            .find(|t| t.id.as_deref() == Some(u.id.as_str()))
        {
            t.status = Some(u.status.clone());
        }
        seen.insert(u.id, u.status);
    }
}

fn state_of(seen: &BTreeMap<String, TaskStatus>, id: &str) -> Option<TaskState> {
    seen.get(id).and_then(|s| s.state)
}

/// Converges until `done` holds for the reported statuses.
async fn converge_until(
    ex: &Executor,
    tasks: &mut [Task],
    nets: &[Network],
    seen: &mut BTreeMap<String, TaskStatus>,
    what: &str,
    done: impl Fn(&BTreeMap<String, TaskStatus>) -> bool,
) {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let ups = ex.converge(tasks, nets, &Default::default()).await;
        apply(tasks, seen, ups);
        if done(seen) {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "timed out waiting for {what}: {seen:#?}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

fn inspect(d: &Berthd, name: &str) -> serde_json::Value {
    let out = d.docker_ok(&["inspect", name]);
    serde_json::from_str::<serde_json::Value>(&out).unwrap()[0].clone()
}

fn exists(d: &Berthd, name: &str) -> bool {
    d.docker(&["inspect", name]).status.success()
}

#[test]
fn executor_runs_tasks_through_swarmkit_states() {
    let (reg, d) = common::daemon_with_busybox();
    let pulled = format!("{}/busybox:latest", reg.host());
    d.docker_ok(&["rmi", &pulled]);
    let rt = rt();
    rt.block_on(async {
        let ex = executor(&d);
        let mut tasks = vec![
            task("t1", "web", 1, "busybox:latest", "sleep 300"),
            task("t2", "ok", 1, "busybox:latest", "exit 0"),
            task("t3", "bad", 1, "busybox:latest", "exit 1"),
            task("t4", "pull", 1, &pulled, "sleep 300"),
            task("t5", "missing", 1, "127.0.0.1:1/nothing:here", "true"),
        ];
        let mut seen = BTreeMap::new();
        converge_until(&ex, &mut tasks, &[], &mut seen, "all states", |s| {
            state_of(s, "t1") == Some(TaskState::RUNNING)
                && state_of(s, "t2") == Some(TaskState::COMPLETE)
                && state_of(s, "t3") == Some(TaskState::FAILED)
                && state_of(s, "t4") == Some(TaskState::RUNNING)
                && state_of(s, "t5") == Some(TaskState::REJECTED)
        })
        .await;

        // Labels as Docker writes them, and the container status.
        let c = inspect(&d, "web.1.t1");
        let labels = &c["Config"]["Labels"];
        assert_eq!(labels["com.docker.swarm.task"], "");
        assert_eq!(labels["com.docker.swarm.task.id"], "t1");
        assert_eq!(labels["com.docker.swarm.task.name"], "web.1.t1");
        assert_eq!(labels["com.docker.swarm.service.id"], "svcweb");
        assert_eq!(labels["com.docker.swarm.service.name"], "web");
        assert_eq!(labels["com.docker.swarm.node.id"], NODE);
        assert_eq!(labels["com.docker.stack.namespace"], "st");
        assert_eq!(labels["app"], "web");
        assert_eq!(c["HostConfig"]["RestartPolicy"]["Name"], "no");
        let st1 = &seen["t1"];
        assert_eq!(st1.message.as_deref(), Some("started"));
        let cs = st1.container_status.as_ref().unwrap();
        assert_eq!(cs.container_id.as_deref(), c["Id"].as_str());
        assert!(cs.pid.unwrap_or(0) > 0, "{cs:?}");

        assert_eq!(seen["t2"].message.as_deref(), Some("finished"));
        let st3 = &seen["t3"];
        assert_eq!(st3.err.as_deref(), Some("task: non-zero exit (1)"));
        assert_eq!(st3.container_status.as_ref().unwrap().exit_code, Some(1));
        assert!(seen["t5"].err.is_some(), "{:?}", seen["t5"]);

        // Nothing more to report when nothing changes.
        assert!(
            ex.converge(&tasks, &[], &Default::default())
                .await
                .is_empty()
        );

        // A new executor (berthd restarted) adopts the containers: nothing is created again
        // and nothing goes backwards.
        let ex = executor(&d);
        assert!(
            ex.converge(&tasks, &[], &Default::default())
                .await
                .is_empty()
        );
        let ids = d.docker_ok(&["ps", "-aq", "--filter", "label=com.docker.swarm.task.id=t1"]);
        assert_eq!(ids.lines().count(), 1, "{ids}");

        // Desired SHUTDOWN stops the container; dropping the task removes it.
        tasks[0].desired_state = Some(TaskState::SHUTDOWN);
        converge_until(&ex, &mut tasks, &[], &mut seen, "shutdown", |s| {
            state_of(s, "t1") == Some(TaskState::SHUTDOWN)
        })
        .await;
        assert_eq!(seen["t1"].message.as_deref(), Some("shutdown"));
        assert_eq!(inspect(&d, "web.1.t1")["State"]["Running"], false);
        tasks.retain(|t| t.id.as_deref() != Some("t1") && t.id.as_deref() != Some("t2"));
        ex.converge(&tasks, &[], &Default::default()).await;
        assert!(!exists(&d, "web.1.t1"));
        assert!(!exists(&d, "ok.1.t2"));
        assert!(exists(&d, "bad.1.t3"));

        // Desired REMOVE removes the container too.
        tasks[1].desired_state = Some(TaskState::REMOVE);
        ex.converge(&tasks, &[], &Default::default()).await;
        assert!(!exists(&d, "pull.1.t4"));
        ex.converge(&[], &[], &Default::default()).await;
        assert!(!exists(&d, "bad.1.t3"));
    });
}

#[test]
fn executor_networks_resolve_services_by_name() {
    let (_reg, d) = common::daemon_with_busybox();
    let rt = rt();
    rt.block_on(async {
        let ex = executor(&d);
        let net = Network {
            id: Some("swarmnet000000000000000001".into()),
            name: Some("st_backend".into()),
            driver: Some("overlay".into()),
            ..Default::default()
        };
        let nets = vec![net];
        let id = "swarmnet000000000000000001";
        let mut tasks = vec![
            on_network(task("n1", "st_web", 1, "busybox:latest", "sleep 300"), id),
            on_network(
                task("n2", "st_db", 1, "busybox:latest", "sleep 300"),
                "st_backend",
            ),
        ];
        let mut seen = BTreeMap::new();
        converge_until(&ex, &mut tasks, &nets, &mut seen, "running", |s| {
            state_of(s, "n1") == Some(TaskState::RUNNING)
                && state_of(s, "n2") == Some(TaskState::RUNNING)
        })
        .await;
        let n = serde_json::from_str::<serde_json::Value>(&d.docker_ok(&[
            "network",
            "inspect",
            "st_backend",
        ]))
        .unwrap()[0]
            .clone();
        assert_eq!(n["Labels"][NETWORK_ID_LABEL], id);
        assert_eq!(n["Driver"], "bridge");
        // Each task finds the other by service name.
        d.docker_ok(&["exec", "st_web.1.n1", "ping", "-c1", "-W2", "st_db"]);
        d.docker_ok(&["exec", "st_db.1.n2", "ping", "-c1", "-W2", "st_web"]);

        // No task uses it any more: the network goes with the containers.
        ex.converge(&[], &nets, &Default::default()).await;
        assert!(!exists(&d, "st_web.1.n1"));
        assert!(
            !d.docker(&["network", "inspect", "st_backend"])
                .status
                .success()
        );
    });
}

/// A fake manager: answers session requests from a shared script and records what it got.
#[derive(Default)]
struct Script {
    tasks: Vec<Task>,
    networks: Vec<Network>,
    version: u64,
    managers: Vec<String>,
    removed: bool,
    statuses: BTreeMap<String, TaskStatus>,
    /// (manager index, whether a description came) per request.
    requests: Vec<(usize, bool)>,
}

type Shared = Arc<Mutex<Script>>;

async fn fake_manager(
    index: usize,
    listener: tokio::net::TcpListener,
    script: Shared,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        // Connections live in this set: aborting the server drops them all, as a crash would.
        let mut conns = tokio::task::JoinSet::new();
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                return;
            };
            let script = script.clone();
            conns.spawn(async move {
                let svc = hyper::service::service_fn(
                    move |req: hyper::Request<hyper::body::Incoming>| {
                        let script = script.clone();
                        async move {
                            assert_eq!(req.uri().path(), SESSION_PATH);
                            let body = req.into_body().collect().await.unwrap().to_bytes();
                            let r: SessionRequest = serde_json::from_slice(&body).unwrap();
                            let answer = {
                                let mut s = script.lock().unwrap();
                                assert_eq!(r.node_id, NODE);
                                s.requests.push((index, r.description.is_some()));
                                for u in r.statuses {
                                    s.statuses.insert(u.id, u.status);
                                }
                                r.known_version != s.version
                            };
                            if !answer {
                                tokio::time::sleep(Duration::from_millis(300)).await;
                            }
                            let resp = {
                                let s = script.lock().unwrap();
                                SessionResponse {
                                    version: s.version,
                                    tasks: s.tasks.clone(),
                                    networks: s.networks.clone(),
                                    managers: s.managers.clone(),
                                    removed: s.removed,
                                    ..Default::default()
                                }
                            };
                            let bytes = serde_json::to_vec(&resp).unwrap();
                            Ok::<_, std::convert::Infallible>(hyper::Response::new(
                                http_body_util::Full::new(bytes::Bytes::from(bytes)),
                            ))
                        }
                    },
                );
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(hyper_util::rt::TokioIo::new(stream), svc)
                    .await;
            });
        }
    })
}

async fn wait_for(script: &Shared, what: &str, f: impl Fn(&Script) -> bool) {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        if f(&script.lock().unwrap()) {
            return;
        }
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[test]
fn session_runs_assignments_reports_and_fails_over() {
    let (_reg, d) = common::daemon_with_busybox();
    let rt = rt();
    rt.block_on(async {
        let l1 = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let l2 = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addrs = vec![
            l1.local_addr().unwrap().to_string(),
            l2.local_addr().unwrap().to_string(),
        ];
        let script: Shared = Arc::new(Mutex::new(Script {
            tasks: vec![task("s1", "web", 1, "busybox:latest", "sleep 300")],
            version: 7,
            managers: addrs.clone(),
            ..Default::default()
        }));
        let m1 = fake_manager(0, l1, script.clone()).await;
        let m2 = fake_manager(1, l2, script.clone()).await;
        let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
        let cfg = SessionConfig {
            node_id: NODE.into(),
            managers: addrs.clone(),
            http: reqwest::Client::new(),
            scheme: "http".into(),
            description: NodeDescription {
                hostname: Some("h0".into()),
                ..Default::default()
            },
            role: None,
        };
        let worker = tokio::spawn(run(cfg, executor(&d), stop_rx));

        wait_for(&script, "s1 running at manager 1", |s| {
            s.statuses.get("s1").and_then(|t| t.state) == Some(TaskState::RUNNING)
        })
        .await;
        {
            let s = script.lock().unwrap();
            assert_eq!(
                s.requests[0],
                (0, true),
                "first request carries the description"
            );
            assert!(s.requests.iter().all(|r| r.0 == 0));
        }

        // Manager 1 dies: the worker goes on with manager 2 within about a second.
        m1.abort();
        let _ = m1.await;
        let died = Instant::now();
        let before = script.lock().unwrap().requests.len();
        wait_for(&script, "a request at manager 2", |s| {
            s.requests[before..].iter().any(|r| r.0 == 1)
        })
        .await;
        assert!(
            died.elapsed() < Duration::from_secs(5),
            "{:?}",
            died.elapsed()
        );
        {
            let s = script.lock().unwrap();
            let first = s.requests[before..].iter().find(|r| r.0 == 1).unwrap();
            assert!(first.1, "a new session starts with the description");
        }

        // New assignments arrive there: one task more, the first shut down.
        {
            let mut s = script.lock().unwrap();
            s.tasks[0].desired_state = Some(TaskState::SHUTDOWN);
            s.tasks
                .push(task("s2", "ok", 1, "busybox:latest", "exit 0"));
            s.version = 8;
        }
        wait_for(&script, "s1 shut down, s2 complete", |s| {
            s.statuses.get("s1").and_then(|t| t.state) == Some(TaskState::SHUTDOWN)
                && s.statuses.get("s2").and_then(|t| t.state) == Some(TaskState::COMPLETE)
        })
        .await;

        // Removed from the swarm: the worker removes its containers and returns.
        {
            let mut s = script.lock().unwrap();
            s.removed = true;
            s.version = 9;
        }
        tokio::time::timeout(Duration::from_secs(30), worker)
            .await
            .expect("worker returns when removed")
            .unwrap();
        assert!(!exists(&d, "web.1.s1"));
        assert!(!exists(&d, "ok.1.s2"));
        let _ = stop_tx.send(true);
        m2.abort();
    });
}

fn with_health(mut t: Task, cmd: &str) -> Task {
    let c = t.spec.as_mut().unwrap().container_spec.as_mut().unwrap();
    c.health_check = Some(bollard_stubs::models::HealthConfig {
        test: Some(vec!["CMD-SHELL".into(), cmd.into()]),
        interval: Some(300_000_000),
        timeout: Some(2_000_000_000),
        retries: Some(1),
        start_period: Some(0),
        start_interval: Some(300_000_000),
    });
    t
}

#[test]
fn executor_waits_for_health() {
    let (_reg, d) = common::daemon_with_busybox();
    let rt = rt();
    rt.block_on(async {
        let ex = executor(&d);
        let mut tasks = vec![
            with_health(
                task("h1", "good", 1, "busybox:latest", "sleep 300"),
                "sleep 1",
            ),
            with_health(
                task("h2", "sick", 1, "busybox:latest", "sleep 300"),
                "exit 1",
            ),
        ];
        let mut seen = BTreeMap::new();
        // Starting first, while the first check runs.
        converge_until(&ex, &mut tasks, &[], &mut seen, "starting", |s| {
            state_of(s, "h1").is_some()
        })
        .await;
        assert_eq!(
            state_of(&seen, "h1"),
            Some(TaskState::STARTING),
            "{seen:#?}"
        );
        assert_eq!(seen["h1"].message.as_deref(), Some("starting"));
        converge_until(
            &ex,
            &mut tasks,
            &[],
            &mut seen,
            "healthy and unhealthy",
            |s| {
                state_of(s, "h1") == Some(TaskState::RUNNING)
                    && state_of(s, "h2") == Some(TaskState::FAILED)
            },
        )
        .await;
        assert_eq!(seen["h2"].err.as_deref(), Some("task: unhealthy container"));
        ex.converge(&[], &[], &Default::default()).await;
        assert!(!exists(&d, "good.1.h1"));
    });
}

#[test]
fn executor_gives_tasks_their_secret_and_config_files_from_memory() {
    use berth_orchestrator::swarm::secrets::DataKind;
    let (_reg, d) = common::daemon_with_busybox();
    let rt = rt();
    rt.block_on(async {
        let ex = executor(&d);
        let mut t = task("sec1", "vault", 1, "busybox:latest", "sleep 300");
        let c = t.spec.as_mut().unwrap().container_spec.as_mut().unwrap();
        c.secrets = Some(
            serde_json::from_value(serde_json::json!([
                {"SecretID": "s1", "SecretName": "db", "File": {"Name": "db", "UID": "0", "GID": "0", "Mode": 292}},
                {"SecretID": "s2", "SecretName": "tls", "File": {"Name": "/etc/tls.key", "UID": "100", "GID": "101", "Mode": 256}}
            ]))
            .unwrap(),
        );
        c.configs = Some(
            serde_json::from_value(serde_json::json!([
                {"ConfigID": "c1", "ConfigName": "app", "File": {"Name": "app.conf", "UID": "0", "GID": "0", "Mode": 292}}
            ]))
            .unwrap(),
        );
        let data: berth_agent::swarm::worker::files::DataSet = HashMap::from([
            ((DataKind::Secret, "s1".to_string()), b"hunter2".to_vec()),
            ((DataKind::Secret, "s2".to_string()), b"-----KEY-----".to_vec()),
            ((DataKind::Config, "c1".to_string()), b"port=80\n".to_vec()),
        ]);
        // A task whose data did not arrive is rejected with the name of what is missing.
        let mut lacking = task("sec2", "lacking", 1, "busybox:latest", "sleep 300");
        lacking.spec = t.spec.clone();
        let mut tasks = vec![t, lacking];
        let partial: berth_agent::swarm::worker::files::DataSet = data
            .iter()
            .filter(|(k, _)| k.1 != "s2")
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        let mut seen = BTreeMap::new();
        let deadline = Instant::now() + Duration::from_secs(60);
        while state_of(&seen, "sec1") != Some(TaskState::RUNNING) {
            assert!(Instant::now() < deadline, "timed out: {seen:#?}");
            // sec2 only ever sees the partial set.
            let ups = ex.converge(&tasks[..1], &[], &data).await;
            apply(&mut tasks, &mut seen, ups);
            let ups = ex.converge(&tasks, &[], &partial).await;
            apply(&mut tasks, &mut seen, ups);
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        assert_eq!(state_of(&seen, "sec2"), Some(TaskState::REJECTED));
        assert_eq!(
            seen["sec2"].err.as_deref(),
            Some("secret tls is not available on this node")
        );
        let name = "vault.1.sec1";
        let show = |path: &str| d.docker_ok(&["exec", name, "cat", path]);
        assert_eq!(show("/run/secrets/db"), "hunter2");
        assert_eq!(show("/etc/tls.key"), "-----KEY-----");
        assert_eq!(show("/app.conf"), "port=80\n");
        let modes = d.docker_ok(&[
            "exec",
            name,
            "stat",
            "-c",
            "%a %u %g",
            "/run/secrets/db",
            "/etc/tls.key",
        ]);
        assert_eq!(modes, "444 0 0\n400 100 101\n");
        let write = d.docker(&["exec", name, "sh", "-c", "echo x > /run/secrets/db"]);
        assert!(!write.status.success(), "secret file is writable");
        // The files are on a tmpfs of their own, never on the root's disk.
        let files = d.dir.path().join("task-files");
        let mountinfo = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
        let line = mountinfo
            .lines()
            .find(|l| l.split(' ').nth(4) == Some(files.to_str().unwrap()))
            .expect("task-files is a mount point");
        assert!(line.contains(" - tmpfs "), "{line}");
        // The task goes: its files go with it.
        ex.converge(&[], &[], &data).await;
        assert!(!exists(&d, name));
        assert_eq!(std::fs::read_dir(&files).unwrap().count(), 0);
        ex.remove_all().await;
        assert!(!mountinfo_has(&files));
    });
}

fn mountinfo_has(path: &std::path::Path) -> bool {
    std::fs::read_to_string("/proc/self/mountinfo")
        .unwrap()
        .lines()
        .any(|l| l.split(' ').nth(4) == Some(path.to_str().unwrap()))
}
