//! Real multi-host swarms on one machine (network namespaces on a test bridge), driven by the
//! real docker CLI against Berth managers.

mod common;

use common::cluster::{Cluster, IMAGE};
use std::collections::HashMap;

/// Running tasks of `service` per node ID, as `docker service ps` on host `via` shows them.
fn running_per_node(c: &Cluster, via: usize, service: &str) -> HashMap<String, usize> {
    let out = c.hosts[via].docker(&[
        "service",
        "ps",
        "--no-trunc",
        "-f",
        "desired-state=running",
        "--format",
        "{{.Node}} {{.CurrentState}}",
        service,
    ]);
    let mut per = HashMap::new();
    for l in String::from_utf8_lossy(&out.stdout).lines() {
        let mut it = l.split_whitespace();
        if let (Some(node), Some("Running")) = (it.next(), it.next()) {
            *per.entry(node.to_string()).or_default() += 1;
        }
    }
    per
}

fn wait_running(
    c: &Cluster,
    via: usize,
    service: &str,
    n: usize,
    secs: u64,
) -> HashMap<String, usize> {
    Cluster::wait_for(secs, &format!("{n} running tasks of {service}"), || {
        let per = running_per_node(c, via, service);
        (per.values().sum::<usize>() == n).then_some(per)
    })
}

#[test]
fn three_managers_two_workers_spread_a_service_and_survive_the_leader() {
    let mut c = Cluster::swarm(5, 3);
    let h0 = &c.hosts[0];
    let ls = h0.docker_ok(&["node", "ls", "--format", "{{.ManagerStatus}}"]);
    assert_eq!(ls.lines().filter(|l| *l == "Leader").count(), 1, "{ls}");
    assert_eq!(ls.lines().filter(|l| *l == "Reachable").count(), 2, "{ls}");
    h0.docker_ok(&[
        "service",
        "create",
        "-d",
        "--name",
        "web",
        "--replicas",
        "10",
        IMAGE,
        "sleep",
        "1000",
    ]);
    let per = wait_running(&c, 0, "web", 10, 60);
    assert_eq!(per.len(), 5, "spread over every node: {per:?}");
    assert!(per.values().all(|n| *n == 2), "evenly: {per:?}");

    // kill -9 the leader: another manager takes over, nothing committed is lost.
    c.kill9(0);
    let leader = Cluster::wait_for(15, "a new leader", || {
        let out =
            c.hosts[1].docker(&["node", "ls", "--format", "{{.Hostname}} {{.ManagerStatus}}"]);
        let text = String::from_utf8_lossy(&out.stdout).into_owned();
        let moved = text
            .lines()
            .any(|l| l.ends_with(" Leader") && !l.starts_with("h0 "));
        // The new leader may win the election before its last word from h0 ages out (2 s).
        let gone = text.lines().any(|l| l == "h0 Unreachable");
        (moved && gone).then_some(text)
    });
    assert!(!leader.contains("h0 Leader"), "{leader}");
    c.hosts[1].docker_ok(&[
        "service",
        "create",
        "-d",
        "--name",
        "api",
        "--replicas",
        "2",
        IMAGE,
        "sleep",
        "1000",
    ]);
    let services = c.hosts[2].docker_ok(&["service", "ls", "--format", "{{.Name}}"]);
    assert!(
        services.contains("web") && services.contains("api"),
        "{services}"
    );
    // The old leader comes back and catches up.
    c.start(0);
    Cluster::wait_for(20, "h0 caught up", || {
        let out = c.hosts[0].docker(&["service", "ls", "--format", "{{.Name}}"]);
        String::from_utf8_lossy(&out.stdout)
            .contains("api")
            .then_some(())
    });
}

#[test]
fn a_stopped_worker_has_its_tasks_rescheduled_and_drain_moves_tasks() {
    let mut c = Cluster::swarm(3, 1);
    let h0 = &c.hosts[0];
    h0.docker_ok(&[
        "service",
        "create",
        "-d",
        "--name",
        "w",
        "--replicas",
        "6",
        IMAGE,
        "sleep",
        "1000",
    ]);
    wait_running(&c, 0, "w", 6, 60);
    let worker2 = c.hosts[0]
        .docker_ok(&["node", "ls", "-q", "-f", "role=worker"])
        .lines()
        .map(str::to_string)
        .collect::<Vec<_>>();
    assert_eq!(worker2.len(), 2);
    c.kill9(2);
    let per = Cluster::wait_for(30, "tasks rescheduled away from the dead worker", || {
        let per = running_per_node(&c, 0, "w");
        (per.values().sum::<usize>() == 6 && per.len() == 2).then_some(per)
    });
    assert_eq!(per.len(), 2, "{per:?}");
    let down = c.hosts[0].docker_ok(&["node", "ls", "--format", "{{.Status}}"]);
    assert!(down.contains("Down"), "{down}");

    // Drain the remaining worker: everything ends up on the manager.
    let h1 = c.hosts[1]
        .docker_ok(&["info", "--format", "{{.Swarm.NodeID}}"])
        .trim()
        .to_string();
    c.hosts[0].docker_ok(&["node", "update", "--availability", "drain", &h1]);
    Cluster::wait_for(30, "tasks drained", || {
        let per = running_per_node(&c, 0, "w");
        (per.values().sum::<usize>() == 6 && per.len() == 1).then_some(())
    });
}

#[test]
fn a_minority_cannot_write_and_heals() {
    let c = Cluster::swarm(3, 3);
    c.link(2, false);
    let o = c.hosts[2].docker(&[
        "service", "create", "-d", "--name", "x", IMAGE, "sleep", "100",
    ]);
    assert!(!o.status.success());
    let err = String::from_utf8_lossy(&o.stderr).into_owned();
    assert!(err.contains("leader"), "{err}");
    // Reads still work on the cut-off manager.
    c.hosts[2].docker_ok(&["node", "ls"]);
    c.hosts[0].docker_ok(&[
        "service", "create", "-d", "--name", "y", IMAGE, "sleep", "100",
    ]);
    c.link(2, true);
    Cluster::wait_for(20, "the minority caught up", || {
        let out = c.hosts[2].docker(&["service", "ls", "--format", "{{.Name}}"]);
        String::from_utf8_lossy(&out.stdout)
            .contains('y')
            .then_some(())
    });
}

#[test]
fn bad_input_gets_docker_errors() {
    let c = Cluster::swarm(2, 1);
    let h0 = &c.hosts[0];
    let o = c.hosts[1].docker(&[
        "swarm",
        "join",
        "--token",
        "SWMTKN-1-bad",
        &format!("{}:2377", h0.ip),
    ]);
    assert!(!o.status.success());
    let o = c.hosts[1].docker(&["service", "ls"]);
    assert!(String::from_utf8_lossy(&o.stderr).contains("not a swarm manager"));
    h0.docker_ok(&[
        "service", "create", "-d", "--name", "s", IMAGE, "sleep", "100",
    ]);
    let o = h0.docker(&[
        "service", "create", "-d", "--name", "s", IMAGE, "sleep", "100",
    ]);
    assert!(String::from_utf8_lossy(&o.stderr).contains("already exists"));
    // A stale version is a 409, as with Docker.
    let id = h0.docker_ok(&["service", "inspect", "-f", "{{.ID}}", "s"]);
    let (code, _) = {
        let body = r#"{"Name":"s","TaskTemplate":{"ContainerSpec":{"Image":"x"}}}"#;
        let out = std::process::Command::new("curl")
            .args([
                "-s",
                "-o",
                "/dev/null",
                "-w",
                "%{http_code}",
                "--unix-socket",
            ])
            .arg(&h0.sock)
            .args([
                "-X",
                "POST",
                "-H",
                "Content-Type: application/json",
                "-d",
                body,
            ])
            .arg(format!("http://x/services/{}/update?version=1", id.trim()))
            .output()
            .unwrap();
        (String::from_utf8_lossy(&out.stdout).into_owned(), ())
    };
    assert_eq!(code, "409");
}

/// `node ls` on host `via` as "hostname manager-status" lines, sorted.
fn manager_status(c: &Cluster, via: usize) -> String {
    let out = c.hosts[via].docker(&["node", "ls", "--format", "{{.Hostname}} {{.ManagerStatus}}"]);
    let mut lines: Vec<String> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| l.trim().to_string())
        .collect();
    lines.sort();
    lines.join("\n")
}

#[test]
fn promote_and_demote_move_nodes_in_and_out_of_raft() {
    let c = Cluster::swarm(3, 1);
    let last = c.hosts[0].docker(&["node", "demote", "h0"]);
    assert!(!last.status.success());
    let err = String::from_utf8_lossy(&last.stderr);
    assert!(err.contains("last manager"), "{err}");

    c.hosts[0].docker_ok(&["node", "promote", "h1", "h2"]);
    Cluster::wait_for(30, "h1 and h2 voting managers", || {
        let s = manager_status(&c, 0);
        (s == "h0 Leader\nh1 Reachable\nh2 Reachable").then_some(())
    });
    // A promoted node serves the manager API and its writes reach the leader.
    c.hosts[2].docker_ok(&[
        "service",
        "create",
        "-d",
        "--name",
        "web",
        "--replicas",
        "3",
        IMAGE,
        "sleep",
        "1000",
    ]);
    wait_running(&c, 1, "web", 3, 60);

    // Demoting the leader hands leadership over; the cluster keeps its state.
    c.hosts[1].docker_ok(&["node", "demote", "h0"]);
    let after = Cluster::wait_for(30, "h0 a worker, a new leader", || {
        let s = manager_status(&c, 1);
        let h0_worker = s.lines().any(|l| l == "h0");
        let led = s
            .lines()
            .any(|l| l.ends_with(" Leader") && !l.starts_with("h0"));
        (h0_worker && led).then_some(s)
    });
    assert!(after.contains("Reachable"), "{after}");
    Cluster::wait_for(20, "h0 answers as a worker", || {
        let out = c.hosts[0].docker(&["node", "ls"]);
        let err = String::from_utf8_lossy(&out.stderr).into_owned();
        (!out.status.success() && err.contains("Worker nodes")).then_some(())
    });
    c.hosts[2].docker_ok(&["service", "scale", "-d", "web=4"]);
    wait_running(&c, 2, "web", 4, 60);
    let info = c.hosts[0].docker_ok(&["info", "--format", "{{.Swarm.ControlAvailable}}"]);
    assert_eq!(info.trim(), "false");
}

#[test]
fn published_ports_answer_on_every_node_through_the_routing_mesh() {
    let c = Cluster::swarm(2, 1);
    c.hosts[0].docker_ok(&[
        "service",
        "create",
        "-d",
        "--name",
        "www",
        "--replicas",
        "3",
        "-p",
        "18080:80",
        IMAGE,
        "sh",
        "-c",
        "hostname > /tmp/index.html; exec httpd -f -p 80 -h /tmp",
    ]);
    // Three tasks on two nodes: no task binds the port itself, so none crash-loops on it.
    let per = wait_running(&c, 0, "www", 3, 60);
    assert_eq!(per.len(), 2, "{per:?}");
    for target in [&c.hosts[0].ip, &c.hosts[1].ip] {
        let url = format!("http://{target}:18080/");
        let body = Cluster::wait_for(20, &format!("an answer from {url}"), || {
            let out = c.hosts[1].exec(&["wget", "-qO-", "-T", "2", &url]);
            out.status
                .success()
                .then(|| String::from_utf8_lossy(&out.stdout).into_owned())
        });
        assert!(!body.trim().is_empty(), "{url}: {body:?}");
    }
    std::thread::sleep(std::time::Duration::from_secs(2));
    let per = running_per_node(&c, 0, "www");
    assert_eq!(per.values().sum::<usize>(), 3, "still all running: {per:?}");

    // The routing mesh: with one task left, the port still answers on both nodes, from the
    // same task, and the answer comes back through the node that took the connection.
    c.hosts[0].docker_ok(&["service", "scale", "-d", "www=1"]);
    wait_running(&c, 0, "www", 1, 60);
    let mut bodies = std::collections::BTreeSet::new();
    for target in [&c.hosts[0].ip, &c.hosts[1].ip] {
        let url = format!("http://{target}:18080/");
        let body = Cluster::wait_for(20, &format!("the mesh answering at {url}"), || {
            let out = c.hosts[1].exec(&["wget", "-qO-", "-T", "2", &url]);
            out.status
                .success()
                .then(|| String::from_utf8_lossy(&out.stdout).trim().to_string())
                .filter(|b| !b.is_empty())
        });
        bodies.insert(body);
    }
    assert_eq!(
        bodies.len(),
        1,
        "both nodes lead to the one task: {bodies:?}"
    );
}

/// IDs of the running tasks of `service`, sorted.
fn running_task_ids(c: &Cluster, via: usize, service: &str) -> Vec<String> {
    let out = c.hosts[via].docker_ok(&[
        "service",
        "ps",
        "-q",
        "--no-trunc",
        "-f",
        "desired-state=running",
        service,
    ]);
    let mut ids: Vec<String> = out.lines().map(str::to_string).collect();
    ids.sort();
    ids
}

#[test]
fn the_whole_cluster_restarts_from_disk() {
    let mut c = Cluster::swarm(4, 3);
    c.hosts[0].docker_ok(&[
        "service",
        "create",
        "-d",
        "--name",
        "web",
        "--replicas",
        "4",
        IMAGE,
        "sleep",
        "1000",
    ]);
    wait_running(&c, 0, "web", 4, 60);
    let before = running_task_ids(&c, 0, "web");
    let cluster_id = c.hosts[0].docker_ok(&["info", "--format", "{{.Swarm.Cluster.ID}}"]);

    // A clean stop of every daemon, then a kill -9 of every daemon: both come back whole.
    for round in ["SIGTERM", "SIGKILL"] {
        for i in 0..4 {
            if round == "SIGTERM" {
                c.stop(i);
            } else {
                c.kill9(i);
            }
        }
        for i in 0..4 {
            c.start(i);
        }
        Cluster::wait_for(30, &format!("a leader after {round}"), || {
            let s = c.hosts[1].docker(&["node", "ls", "--format", "{{.Hostname}} {{.Status}}"]);
            let text = String::from_utf8_lossy(&s.stdout).into_owned();
            (s.status.success() && text.lines().filter(|l| l.ends_with(" Ready")).count() == 4)
                .then_some(())
        });
        let id = c.hosts[2].docker_ok(&["info", "--format", "{{.Swarm.Cluster.ID}}"]);
        assert_eq!(id, cluster_id, "same cluster after {round}");
        // The containers lived on; the same tasks are running, none was replaced.
        let per = wait_running(&c, 1, "web", 4, 30);
        assert_eq!(per.values().sum::<usize>(), 4);
        assert_eq!(running_task_ids(&c, 2, "web"), before, "after {round}");
    }
    // And the restarted cluster still takes writes.
    c.hosts[2].docker_ok(&["service", "scale", "-d", "web=5"]);
    wait_running(&c, 0, "web", 5, 60);
}

#[test]
fn a_failing_rolling_update_rolls_back() {
    let c = Cluster::swarm(2, 1);
    let h0 = &c.hosts[0];
    h0.docker_ok(&[
        "service",
        "create",
        "-d",
        "--name",
        "app",
        "--replicas",
        "2",
        IMAGE,
        "sleep",
        "1000",
    ]);
    wait_running(&c, 0, "app", 2, 60);
    // The new version exits at once: the update fails and goes back to the previous spec.
    h0.docker_ok(&[
        "service",
        "update",
        "-d",
        "--update-failure-action",
        "rollback",
        "--update-monitor",
        "3s",
        "--update-max-failure-ratio",
        "0",
        "--args",
        "false",
        "app",
    ]);
    let state = Cluster::wait_for(60, "rollback completed", || {
        let s = h0.docker_ok(&[
            "service",
            "inspect",
            "--format",
            "{{.UpdateStatus.State}}",
            "app",
        ]);
        (s.trim() == "rollback_completed").then_some(s)
    });
    assert_eq!(state.trim(), "rollback_completed");
    let args = h0.docker_ok(&[
        "service",
        "inspect",
        "--format",
        "{{json .Spec.TaskTemplate.ContainerSpec.Args}}",
        "app",
    ]);
    assert_eq!(args.trim(), r#"["sleep","1000"]"#);
    wait_running(&c, 0, "app", 2, 60);
    // History: the failed tasks of the bad version are still listed, shut down.
    let all = h0.docker_ok(&[
        "service",
        "ps",
        "--format",
        "{{.DesiredState}} {{.CurrentState}}",
        "app",
    ]);
    assert!(all.lines().any(|l| l.starts_with("Shutdown")), "{all}");
}

const STACK: &str = r#"
services:
  db:
    image: berth-examples/busybox:latest
    command: sleep 1000
  web:
    image: berth-examples/busybox:latest
    command: sleep 1000
    depends_on: [db]
    deploy:
      replicas: 3
      labels:
        tier: front
networks:
  default: {}
"#;

#[test]
fn stacks_deploy_from_the_docker_cli_and_berth() {
    let c = Cluster::swarm(2, 1);
    let h0 = &c.hosts[0];
    let file = h0.dir.join("stack.yml");
    std::fs::write(&file, STACK).expect("stack file");
    let file = file.to_string_lossy().into_owned();

    // The real docker CLI.
    h0.docker_ok(&[
        "stack",
        "deploy",
        "--resolve-image",
        "never",
        "-c",
        &file,
        "d",
    ]);
    wait_running(&c, 0, "d_web", 3, 60);
    wait_running(&c, 0, "d_db", 1, 60);
    let ls = h0.docker_ok(&["stack", "ls", "--format", "{{.Name}} {{.Services}}"]);
    assert!(ls.lines().any(|l| l == "d 2"), "{ls}");
    let ps = h0.docker_ok(&["stack", "ps", "--format", "{{.Name}}", "d"]);
    assert_eq!(ps.lines().count(), 4, "{ps}");
    let label = h0.docker_ok(&[
        "service",
        "inspect",
        "--format",
        "{{index .Spec.Labels \"com.docker.stack.namespace\"}} {{index .Spec.Labels \"tier\"}}",
        "d_web",
    ]);
    assert_eq!(label.trim(), "d front");

    // berth's own stack commands, on the other stack name.
    h0.berth_ok(&["stack", "deploy", "-c", &file, "b"]);
    wait_running(&c, 0, "b_web", 3, 60);
    let services = h0.berth_ok(&["stack", "services", "b"]);
    assert!(
        services.contains("b_db") && services.contains("b_web"),
        "{services}"
    );

    for (stack, tool) in [("d", "docker"), ("b", "berth")] {
        if tool == "docker" {
            h0.docker_ok(&["stack", "rm", stack]);
        } else {
            h0.berth_ok(&["stack", "rm", stack]);
        }
    }
    Cluster::wait_for(30, "stacks removed", || {
        let ls = h0.docker_ok(&["service", "ls", "-q"]);
        let nets = h0.docker_ok(&[
            "network",
            "ls",
            "--filter",
            "label=com.docker.stack.namespace",
            "-q",
        ]);
        (ls.trim().is_empty() && nets.trim().is_empty()).then_some(())
    });
}

#[test]
fn a_replicated_job_runs_to_completion() {
    let c = Cluster::swarm(2, 1);
    let h0 = &c.hosts[0];
    h0.docker_ok(&[
        "service",
        "create",
        "-d",
        "--name",
        "job",
        "--mode",
        "replicated-job",
        "--replicas",
        "4",
        "--max-concurrent",
        "2",
        IMAGE,
        "true",
    ]);
    let states = Cluster::wait_for(60, "four completed tasks", || {
        let out = h0.docker_ok(&["service", "ps", "--format", "{{.CurrentState}}", "job"]);
        (out.lines().filter(|l| l.starts_with("Complete")).count() == 4).then_some(out)
    });
    assert!(!states.contains("Failed"), "{states}");
    let ls = h0.docker_ok(&["service", "ls", "--format", "{{.Mode}} {{.Replicas}}"]);
    assert_eq!(ls.trim(), "replicated job 0/0 (4/4 completed)", "{ls}");
}

/// Kills the child process when the test ends, passed or not.
struct KillOnDrop(std::process::Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// `service logs` lines whose text starts with `word`: (task name before `@`, node after).
fn log_sources(out: &str, word: &str) -> std::collections::BTreeSet<(String, String)> {
    out.lines()
        .filter_map(|l| {
            let (prefix, text) = l.split_once(" | ")?;
            text.starts_with(word).then_some(())?;
            let (task, node) = prefix.trim().split_once('@')?;
            Some((task.to_string(), node.to_string()))
        })
        .collect()
}

#[test]
fn service_logs_come_from_every_node_through_any_manager() {
    let c = Cluster::swarm(3, 2);
    let h0 = &c.hosts[0];
    h0.docker_ok(&[
        "service",
        "create",
        "-d",
        "--name",
        "talk",
        "--replicas",
        "3",
        IMAGE,
        "sh",
        "-c",
        "echo hello; echo oops >&2; i=0; while true; i=$((i+1)); do echo tick $i; sleep 0.5; done",
    ]);
    let per = wait_running(&c, 0, "talk", 3, 60);
    assert_eq!(per.len(), 3, "one task per node: {per:?}");
    let nodes: std::collections::BTreeSet<String> = ["h0", "h1", "h2"].map(String::from).into();

    // The finished form, on the leader and on the other manager (relayed from the leader),
    // from the docker CLI: every task's first line, named `talk.<slot>.<task>@<node>`.
    for via in [0, 1] {
        let o = c.hosts[via].docker(&["service", "logs", "talk"]);
        assert!(o.status.success(), "{o:?}");
        let out = String::from_utf8_lossy(&o.stdout);
        let hello = log_sources(&out, "hello");
        assert_eq!(hello.len(), 3, "h{via}: {out}");
        let seen: std::collections::BTreeSet<String> = hello.iter().map(|s| s.1.clone()).collect();
        assert_eq!(seen, nodes, "h{via}: {out}");
        assert!(hello.iter().all(|(t, _)| t.starts_with("talk.")), "{out}");
        let err = String::from_utf8_lossy(&o.stderr);
        assert_eq!(
            log_sources(&err, "oops").len(),
            3,
            "stderr stays stderr: {err}"
        );
    }

    // --tail per task, and the berth CLI, and a task's own logs.
    let out = h0.berth_ok(&["service", "logs", "--tail", "1", "--no-task-ids", "talk"]);
    assert!(!out.contains("hello"), "{out}");
    assert!(log_sources(&out, "tick").len() <= 3, "{out}");
    let task = running_task_ids(&c, 0, "talk").remove(0);
    let out = h0.docker_ok(&["service", "logs", "--raw", &task]);
    assert_eq!(out.lines().filter(|l| *l == "hello").count(), 1, "{out}");

    // Following: new lines from all three nodes keep coming, through the other manager.
    let child = std::process::Command::new("docker")
        .args([
            "-H",
            &c.hosts[1].host(),
            "service",
            "logs",
            "-f",
            "--tail",
            "0",
            "talk",
        ])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let mut child = KillOnDrop(child);
    let stdout = child.0.stdout.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel::<String>();
    std::thread::spawn(move || {
        use std::io::BufRead;
        for l in std::io::BufReader::new(stdout)
            .lines()
            .map_while(Result::ok)
        {
            if tx.send(l).is_err() {
                break;
            }
        }
    });
    let mut text = String::new();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    while std::time::Instant::now() < deadline {
        if let Ok(l) = rx.recv_timeout(std::time::Duration::from_millis(200)) {
            text.push_str(&l);
            text.push('\n');
        }
        if log_sources(&text, "tick")
            .iter()
            .map(|s| &s.1)
            .collect::<std::collections::BTreeSet<_>>()
            .len()
            == 3
        {
            break;
        }
    }
    let seen: std::collections::BTreeSet<String> = log_sources(&text, "tick")
        .into_iter()
        .map(|s| s.1)
        .collect();
    assert_eq!(seen, nodes, "followed lines: {text}");
    assert!(
        !text.contains("hello"),
        "--tail 0 starts at the end: {text}"
    );
    drop(child);

    // A worker that leaves removes its task containers (as Docker does); its task moves.
    c.hosts[2].docker_ok(&["swarm", "leave"]);
    let left = c.hosts[2].docker_ok(&["ps", "-aq", "--filter", "label=com.docker.swarm.task"]);
    assert!(
        left.trim().is_empty(),
        "task containers left behind: {left}"
    );
    let per = Cluster::wait_for(30, "the worker's task on the managers", || {
        let per = running_per_node(&c, 0, "talk");
        (per.values().sum::<usize>() == 3 && !per.contains_key("h2")).then_some(per)
    });
    assert_eq!(per.len(), 2, "{per:?}");
}

/// Files below `dir` whose bytes contain `needle`, skipping mount points below it (the
/// worker's tmpfs of task files and container root filesystems).
fn files_containing(dir: &std::path::Path, needle: &[u8]) -> Vec<std::path::PathBuf> {
    let mountinfo = std::fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
    let mounts: Vec<&str> = mountinfo
        .lines()
        .filter_map(|l| l.split(' ').nth(4))
        .collect();
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let Ok(rd) = std::fs::read_dir(&d) else {
            continue;
        };
        for e in rd.flatten() {
            let p = e.path();
            let Ok(ft) = e.file_type() else { continue };
            if ft.is_dir() {
                if !mounts.contains(&p.to_string_lossy().as_ref()) {
                    stack.push(p);
                }
            } else if ft.is_file()
                && let Ok(bytes) = std::fs::read(&p)
                && bytes.windows(needle.len()).any(|w| w == needle)
            {
                out.push(p);
            }
        }
    }
    out
}

#[test]
fn secrets_and_configs_reach_only_the_tasks_that_use_them() {
    // h0 makes the cluster (and its data key), h1 joins as a manager and must fetch the key
    // before it can seal or open anything, h2 is the worker that runs the task.
    let c = Cluster::swarm(3, 2);
    let (h0, h1, h2) = (&c.hosts[0], &c.hosts[1], &c.hosts[2]);
    let secret_value = "hunter2-a8f3c1e9d2";
    let file = |name: &str, body: &str| {
        let p = h0.dir.join(name);
        std::fs::write(&p, body).unwrap();
        p.to_string_lossy().into_owned()
    };
    let id = h0.docker_ok(&[
        "secret",
        "create",
        "-l",
        "tier=db",
        "db",
        &file("db.txt", secret_value),
    ]);
    assert_eq!(id.trim().len(), 25, "{id}");
    Cluster::wait_for(20, "h1 to hold the data key", || {
        let o = h1.docker(&["config", "create", "app", &file("app.conf", "port=80\n")]);
        o.status.success().then_some(())
    });
    let ls = h1.docker_ok(&["secret", "ls", "--format", "{{.Name}} {{.Labels}}"]);
    assert_eq!(ls.trim(), "db tier=db");
    // A secret's data is never shown; a config's is.
    let inspect = h0.docker_ok(&["secret", "inspect", "db"]);
    assert!(!inspect.contains("\"Data\""), "{inspect}");
    let data = h0.docker_ok(&[
        "config",
        "inspect",
        "app",
        "--format",
        "{{json .Spec.Data}}",
    ]);
    assert_eq!(data.trim(), "\"cG9ydD04MAo=\"");
    // Docker's errors for bad input.
    let dup = h1.docker(&["secret", "create", "db", &file("x.txt", "x")]);
    assert!(
        String::from_utf8_lossy(&dup.stderr).contains("secret db already exists"),
        "{dup:?}"
    );
    let big = h0.docker(&[
        "secret",
        "create",
        "big",
        &file("big.txt", &"x".repeat(600 * 1024)),
    ]);
    assert!(
        String::from_utf8_lossy(&big.stderr)
            .contains("secret data must be larger than 0 and less than 512000 bytes"),
        "{big:?}"
    );
    let missing = h0.docker(&[
        "service", "create", "--secret", "nope", IMAGE, "sleep", "300",
    ]);
    assert!(
        String::from_utf8_lossy(&missing.stderr).contains("secret not found: nope"),
        "{missing:?}"
    );

    h0.docker_ok(&[
        "service",
        "create",
        "--detach",
        "--name",
        "vault",
        "--constraint",
        "node.role==worker",
        "--secret",
        "db",
        "--secret",
        "source=db,target=/etc/db.pass,uid=100,gid=101,mode=0400",
        "--config",
        "source=app,target=/etc/app.conf",
        IMAGE,
        "sleep",
        "300",
    ]);
    wait_running(&c, 0, "vault", 1, 60);
    let cid = h2.docker_ok(&[
        "ps",
        "-q",
        "--filter",
        "label=com.docker.swarm.service.name=vault",
    ]);
    let cid = cid.trim();
    assert!(!cid.is_empty(), "the task runs on the worker");
    let cat = |path: &str| h2.docker_ok(&["exec", cid, "cat", path]);
    assert_eq!(cat("/run/secrets/db"), secret_value);
    assert_eq!(cat("/etc/db.pass"), secret_value);
    assert_eq!(cat("/etc/app.conf"), "port=80\n");
    let modes = h2.docker_ok(&[
        "exec",
        cid,
        "stat",
        "-c",
        "%a %u %g",
        "/run/secrets/db",
        "/etc/db.pass",
    ]);
    assert_eq!(modes, "444 0 0\n400 100 101\n");

    // The data is sealed in the managers' Raft stores and on no node's disk; nodes without a
    // task that uses it never received it.
    for h in &c.hosts {
        let found = files_containing(&h.dir, secret_value.as_bytes())
            .into_iter()
            .filter(|p| !p.ends_with("db.txt") && !p.ends_with("x.txt"))
            .collect::<Vec<_>>();
        assert!(found.is_empty(), "secret data on disk: {found:?}");
    }
    for h in [h0, h1] {
        let files = h.dir.join("root/swarm/task-files");
        let n = std::fs::read_dir(&files).map(|d| d.count()).unwrap_or(0);
        assert_eq!(n, 0, "a node without the task holds task files");
    }

    let rm = h1.docker(&["secret", "rm", "db"]);
    assert!(
        String::from_utf8_lossy(&rm.stderr)
            .contains("secret 'db' is in use by the following service: vault"),
        "{rm:?}"
    );
    h0.docker_ok(&["service", "rm", "vault"]);
    Cluster::wait_for(30, "the task's container and files to go", || {
        let ps = h2.docker_ok(&[
            "ps",
            "-aq",
            "--filter",
            "label=com.docker.swarm.service.name=vault",
        ]);
        let files = h2.dir.join("root/swarm/task-files");
        let n = std::fs::read_dir(&files).map(|d| d.count()).unwrap_or(0);
        (ps.trim().is_empty() && n == 0).then_some(())
    });
    h1.docker_ok(&["secret", "rm", "db"]);
    h0.docker_ok(&["config", "rm", "app"]);
    assert_eq!(h0.docker_ok(&["secret", "ls", "-q"]).trim(), "");
    assert_eq!(h1.docker_ok(&["config", "ls", "-q"]).trim(), "");
}

const DATA_STACK: &str = r#"
services:
  app:
    image: berth-examples/busybox:latest
    command: ["sleep", "300"]
    secrets:
      - token
      - source: token
        target: /etc/token.copy
        mode: 0400
    configs:
      - source: settings
        target: /etc/settings.ini
configs:
  settings:
    file: ./settings.ini
secrets:
  token:
    file: ./token.txt
"#;

#[test]
fn berth_secret_config_service_and_stack_commands() {
    let c = Cluster::swarm(1, 1);
    let h0 = &c.hosts[0];
    assert!(
        DATA_STACK.contains(IMAGE),
        "DATA_STACK names the test image"
    );
    let token = "tok-5b0e7c";
    // `berth secret create NAME -` reads the data from stdin.
    let mut child = std::process::Command::new(common::cluster::berth_bin())
        .args([
            "-H",
            &h0.host(),
            "secret",
            "create",
            "-l",
            "env=test",
            "api",
            "-",
        ])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("berth");
    {
        use std::io::Write;
        child
            .stdin
            .take()
            .unwrap()
            .write_all(b"from-stdin")
            .unwrap();
    }
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success());
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim().len(), 25);
    let conf = h0.dir.join("motd");
    std::fs::write(&conf, "hello\n").unwrap();
    h0.berth_ok(&["config", "create", "motd", &conf.to_string_lossy()]);
    let ls = h0.berth_ok(&["secret", "ls"]);
    let header: Vec<&str> = ls.lines().next().unwrap().split_whitespace().collect();
    assert_eq!(
        header,
        ["ID", "NAME", "DRIVER", "CREATED", "UPDATED"],
        "{ls}"
    );
    assert!(
        ls.lines().nth(1).is_some_and(|l| l.contains(" api ")),
        "{ls}"
    );
    let pretty = h0.berth_ok(&["config", "inspect", "--pretty", "motd"]);
    assert!(pretty.contains("Data:\nhello"), "{pretty}");
    let empty = h0.berth(&["secret", "create", "nothing", "/dev/null"]);
    assert!(String::from_utf8_lossy(&empty.stderr).contains("data is empty"));

    h0.berth_ok(&[
        "service",
        "create",
        "--detach",
        "--name",
        "svc",
        "--secret",
        "api",
        "--config",
        "source=motd,target=/etc/motd,mode=0440",
        IMAGE,
        "sleep",
        "300",
    ]);
    wait_running(&c, 0, "svc", 1, 60);
    let cid = h0.docker_ok(&[
        "ps",
        "-q",
        "--filter",
        "label=com.docker.swarm.service.name=svc",
    ]);
    let cid = cid.trim();
    assert_eq!(
        h0.docker_ok(&["exec", cid, "cat", "/run/secrets/api"]),
        "from-stdin"
    );
    assert_eq!(
        h0.docker_ok(&["exec", cid, "stat", "-c", "%a", "/etc/motd"]),
        "440\n"
    );
    // `--secret-rm` takes the file away from new tasks.
    h0.berth_ok(&["service", "update", "--detach", "--secret-rm", "api", "svc"]);
    let refs = h0.docker_ok(&[
        "service",
        "inspect",
        "--format",
        "{{len .Spec.TaskTemplate.ContainerSpec.Secrets}}",
        "svc",
    ]);
    assert_eq!(refs.trim(), "0");
    h0.berth_ok(&["service", "rm", "svc"]);

    // Stacks create their secrets and configs from files, named <stack>_<key>.
    std::fs::write(h0.dir.join("token.txt"), token).unwrap();
    std::fs::write(h0.dir.join("settings.ini"), "[a]\nb=c\n").unwrap();
    let file = h0.dir.join("data-stack.yml");
    std::fs::write(&file, DATA_STACK).unwrap();
    let file = file.to_string_lossy().into_owned();
    for (stack, tool) in [("d", "docker"), ("b", "berth")] {
        let args = ["stack", "deploy", "-c", &file, stack];
        if tool == "docker" {
            h0.docker_ok(&args);
        } else {
            h0.berth_ok(&args);
        }
        let svc = format!("{stack}_app");
        wait_running(&c, 0, &svc, 1, 60);
        let label = format!("label=com.docker.swarm.service.name={svc}");
        let cid = h0.docker_ok(&["ps", "-q", "--filter", &label]);
        let cid = cid.trim();
        assert_eq!(
            h0.docker_ok(&["exec", cid, "cat", "/run/secrets/token"]),
            token,
            "{tool}"
        );
        assert_eq!(
            h0.docker_ok(&["exec", cid, "cat", "/etc/token.copy"]),
            token,
            "{tool}"
        );
        assert_eq!(
            h0.docker_ok(&["exec", cid, "cat", "/etc/settings.ini"]),
            "[a]\nb=c\n"
        );
        let names = h0.docker_ok(&["secret", "ls", "--format", "{{.Name}}"]);
        assert!(
            names.lines().any(|l| l == format!("{stack}_token")),
            "{names}"
        );
    }
    // A second deploy of an unchanged file keeps the objects.
    h0.berth_ok(&["stack", "deploy", "-c", &file, "b"]);
    h0.berth_ok(&["stack", "rm", "b"]);
    h0.docker_ok(&["stack", "rm", "d"]);
    Cluster::wait_for(30, "stack secrets and configs removed", || {
        let s = h0.docker_ok(&["secret", "ls", "--format", "{{.Name}}"]);
        let c = h0.docker_ok(&["config", "ls", "--format", "{{.Name}}"]);
        (s.trim() == "api" && c.trim() == "motd").then_some(())
    });
}

/// Addresses `name` resolves to inside container `ctr` on host `h` (busybox nslookup).
fn lookup(h: &common::cluster::Host, ctr: &str, name: &str) -> Vec<String> {
    let out = h.docker(&["exec", ctr, "nslookup", name]);
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let mut ips: Vec<String> = text
        .split("Name:")
        .skip(1)
        .flat_map(|block| {
            block
                .lines()
                .filter_map(|l| l.trim().strip_prefix("Address:"))
                .map(|a| a.split_whitespace().next().unwrap_or("").to_string())
                .collect::<Vec<_>>()
        })
        .filter(|a| !a.is_empty())
        .collect();
    ips.sort();
    ips
}

/// The one task container of `service` on host `h`.
fn task_container(h: &common::cluster::Host, service: &str) -> String {
    Cluster::wait_for(30, &format!("a container of {service}"), || {
        let label = format!("label=com.docker.swarm.service.name={service}");
        let out = h.docker(&["ps", "-q", "-f", &label]);
        let id = String::from_utf8_lossy(&out.stdout).trim().to_string();
        (!id.is_empty() && !id.contains('\n')).then_some(id)
    })
}

#[test]
fn an_overlay_network_spans_nodes_with_service_vips_and_task_names() {
    let mut c = Cluster::swarm(4, 1);
    let h0 = &c.hosts[0];
    let client_node = c.hosts[3]
        .docker_ok(&["info", "--format", "{{.Swarm.NodeID}}"])
        .trim()
        .to_string();
    h0.docker_ok(&["node", "update", "--label-add", "role=client", &client_node]);
    h0.docker_ok(&["network", "create", "-d", "overlay", "appnet"]);
    let overlapping = h0.docker(&[
        "network",
        "create",
        "-d",
        "overlay",
        "--subnet",
        "10.0.1.128/25",
        "clash",
    ]);
    assert!(!overlapping.status.success());
    assert!(
        String::from_utf8_lossy(&overlapping.stderr).contains("Pool overlaps"),
        "{overlapping:?}"
    );
    let serve = "mkdir -p /www && hostname > /www/index.html && exec httpd -f -p 8080 -h /www";
    h0.docker_ok(&[
        "service",
        "create",
        "-d",
        "--name",
        "web",
        "--network",
        "appnet",
        "--replicas",
        "3",
        "--constraint",
        "node.labels.role!=client",
        IMAGE,
        "sh",
        "-c",
        serve,
    ]);
    h0.docker_ok(&[
        "service",
        "create",
        "-d",
        "--name",
        "rr",
        "--network",
        "appnet",
        "--endpoint-mode",
        "dnsrr",
        "--replicas",
        "2",
        "--constraint",
        "node.labels.role!=client",
        IMAGE,
        "sleep",
        "1000",
    ]);
    h0.docker_ok(&[
        "service",
        "create",
        "-d",
        "--name",
        "client",
        "--network",
        "appnet",
        "--constraint",
        "node.labels.role==client",
        IMAGE,
        "sleep",
        "1000",
    ]);
    let per = wait_running(&c, 0, "web", 3, 90);
    assert_eq!(per.len(), 3, "one web task per non-client node: {per:?}");
    wait_running(&c, 0, "rr", 2, 60);
    wait_running(&c, 0, "client", 1, 60);
    let h3 = &c.hosts[3];
    let client = task_container(h3, "client");

    // The service name is its VIP; tasks.<service> and a dnsrr service name the tasks.
    let vip = h0.docker_ok(&[
        "service",
        "inspect",
        "-f",
        "{{range .Endpoint.VirtualIPs}}{{.Addr}}{{end}}",
        "web",
    ]);
    let vip = vip.trim().split('/').next().unwrap_or("").to_string();
    assert!(vip.starts_with("10.0."), "VIP {vip}");
    let tasks = Cluster::wait_for(15, "tasks.web names three tasks", || {
        let ips = lookup(h3, &client, "tasks.web");
        (ips.len() == 3).then_some(ips)
    });
    assert_eq!(lookup(h3, &client, "web"), vec![vip.clone()]);
    Cluster::wait_for(15, "the dnsrr service names its two tasks", || {
        (lookup(h3, &client, "rr").len() == 2).then_some(())
    });

    // Requests to the VIP from another node land on every replica.
    let fetch = |url: &str| {
        // busybox wget's own -T crashes (Debian 12's busybox-static), hence timeout(1).
        let o = h3.docker(&[
            "exec", &client, "timeout", "3", "wget", "-q", "-O", "-", url,
        ]);
        o.status
            .success()
            .then(|| String::from_utf8_lossy(&o.stdout).trim().to_string())
    };
    let seen = Cluster::wait_for(30, "requests through the VIP reach all three tasks", || {
        let mut seen = std::collections::BTreeSet::new();
        for _ in 0..12 {
            if let Some(body) = fetch("http://web:8080/") {
                seen.insert(body);
            }
        }
        (seen.len() == 3).then_some(seen)
    });
    assert_eq!(seen.len(), 3, "{seen:?}");
    // And each task is reachable at its own address across the overlay.
    for ip in &tasks {
        assert!(fetch(&format!("http://{ip}:8080/")).is_some(), "task {ip}");
    }

    // A node dies: within 5 s neither DNS nor the VIP points at its task.
    let victim = 2;
    let victim_id = c.hosts[victim]
        .docker_ok(&["info", "--format", "{{.Swarm.NodeID}}"])
        .trim()
        .to_string();
    let victim_ip = {
        let out = h0.docker_ok(&[
            "service",
            "ps",
            "-q",
            "-f",
            "desired-state=running",
            "-f",
            &format!("node={victim_id}"),
            "web",
        ]);
        let task = out.lines().next().unwrap_or("").to_string();
        assert!(!task.is_empty(), "a web task on the victim node");
        let before: std::collections::BTreeSet<String> = tasks.iter().cloned().collect();
        let ctr = task_container(&c.hosts[victim], "web");
        let ip = c.hosts[victim].docker_ok(&[
            "inspect",
            "-f",
            "{{range .NetworkSettings.Networks}}{{.IPAddress}}{{end}}",
            &ctr,
        ]);
        let ip = ip.trim().to_string();
        assert!(before.contains(&ip), "{ip} in {before:?}");
        ip
    };
    let killed = std::time::Instant::now();
    c.kill9(victim);
    let h3 = &c.hosts[3];
    Cluster::wait_for(5, "DNS drops the dead node's task", || {
        (!lookup(h3, &client, "tasks.web").contains(&victim_ip)).then_some(())
    });
    let dropped = killed.elapsed();
    let fetch = |url: &str| {
        let o = h3.docker(&[
            "exec", &client, "timeout", "2", "wget", "-q", "-O", "-", url,
        ]);
        o.status.success()
    };
    for _ in 0..6 {
        assert!(
            fetch("http://web:8080/"),
            "the VIP leads only to live tasks"
        );
    }
    eprintln!("dead node's task left DNS after {dropped:?}");
}
