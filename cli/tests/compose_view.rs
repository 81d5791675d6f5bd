//! `berth compose` read-side commands end to end against a private berthd: ps, logs, top,
//! port, images, ls, events, wait, exec and cp. The project's containers are made with plain
//! `berth run` and compose's labels, so these tests do not depend on `compose up`.

mod common;

use std::path::PathBuf;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use common::{BASE_IMAGE, Daemon, err, out};

/// Starts `project-service-n` with compose's labels; `extra` goes before the image, `cmd`
/// after it. Returns the container ID.
fn service(d: &Daemon, project: &str, svc: &str, n: u32, extra: &[&str], cmd: &[&str]) -> String {
    let name = format!("{project}-{svc}-{n}");
    let labels = [
        format!("com.docker.compose.project={project}"),
        format!("com.docker.compose.service={svc}"),
        format!("com.docker.compose.container-number={n}"),
        "com.docker.compose.oneoff=False".to_string(),
        "com.docker.compose.config-hash=0123abcd".to_string(),
        "com.docker.compose.project.config_files=/srv/app/compose.yaml".to_string(),
    ];
    let mut args: Vec<String> = vec!["run".into(), "-d".into(), "--name".into(), name];
    for l in &labels {
        args.push("--label".into());
        args.push(l.clone());
    }
    args.extend(extra.iter().map(|s| s.to_string()));
    args.push(BASE_IMAGE.into());
    args.extend(cmd.iter().map(|s| s.to_string()));
    let refs: Vec<&str> = args.iter().map(String::as_str).collect();
    d.ok(&refs).trim().to_string()
}

/// An empty project directory: commands find no Compose file and go by `-p`.
fn empty_dir(d: &Daemon, name: &str) -> PathBuf {
    let p = d.dir.path().join("empty").join(name);
    std::fs::create_dir_all(&p).expect("dir");
    p
}

/// `berth compose --project-directory DIR -p PROJECT ARGS`.
fn compose(d: &Daemon, project: &str, args: &[&str]) -> Output {
    let dir = empty_dir(d, project);
    let mut all = vec!["-p", project];
    all.extend_from_slice(args);
    d.compose(&dir, &all)
}

fn compose_ok(d: &Daemon, project: &str, args: &[&str]) -> String {
    let o = compose(d, project, args);
    assert!(
        o.status.success(),
        "compose {args:?}: {}{}",
        out(&o),
        err(&o)
    );
    out(&o)
}

/// Waits for a container to exit.
fn wait_exit(d: &Daemon, id: &str) {
    d.ok(&["wait", id]);
}

#[test]
fn ps_top_port_images_ls_and_wait() {
    let d = Daemon::start();
    let web1 = service(&d, "p", "web", 1, &["-p", "18080:80"], &["sleep", "300"]);
    let web2 = service(&d, "p", "web", 2, &[], &["sh", "-c", "exit 2"]);
    wait_exit(&d, &web2);
    let db1 = service(&d, "p", "db", 1, &[], &["sleep", "301"]);
    // Another project's container stays out of every view of p.
    service(&d, "other", "web", 1, &[], &["sleep", "302"]);

    // The default table: running containers only.
    let table = compose_ok(&d, "p", &["ps"]);
    let lines: Vec<&str> = table.lines().collect();
    assert_eq!(lines.len(), 3, "{table}");
    let header: Vec<&str> = lines[0].split_whitespace().collect();
    assert_eq!(
        header,
        [
            "NAME", "IMAGE", "COMMAND", "SERVICE", "CREATED", "STATUS", "PORTS"
        ],
        "{table}"
    );
    assert!(lines[1].starts_with("p-db-1 "), "{table}");
    assert!(lines[1].contains("\"sleep 301\""), "{table}");
    assert!(lines[1].contains(" db "), "{table}");
    assert!(lines[2].starts_with("p-web-1 "), "{table}");
    assert!(lines[2].contains(":18080->80/tcp"), "{table}");
    assert!(lines[2].contains("Up "), "{table}");
    // Columns line up under their headers.
    let col = lines[0].find("SERVICE").expect("SERVICE");
    assert_eq!(&lines[1][col..col + 3], "db ", "{table}");

    let all = compose_ok(&d, "p", &["ps", "-a"]);
    assert!(all.contains("p-web-2"), "{all}");
    assert!(all.contains("Exited (2)"), "{all}");
    assert!(!all.contains("other-web-1"), "{all}");

    let ids = compose_ok(&d, "p", &["ps", "-q"]);
    let mut ids: Vec<&str> = ids.lines().collect();
    ids.sort();
    let mut want = vec![web1.as_str(), db1.as_str()];
    want.sort();
    assert_eq!(ids, want);

    assert_eq!(compose_ok(&d, "p", &["ps", "--services"]), "db\nweb\n");
    assert_eq!(
        compose_ok(&d, "p", &["ps", "-a", "--services", "web"]),
        "web\n"
    );

    let json = compose_ok(&d, "p", &["ps", "--format", "json"]);
    let objs: Vec<serde_json::Value> = json
        .lines()
        .map(|l| serde_json::from_str(l).expect("one JSON object per line"))
        .collect();
    assert_eq!(objs.len(), 2, "{json}");
    let web = objs.iter().find(|o| o["Service"] == "web").expect("web");
    assert_eq!(web["Name"], "p-web-1");
    assert_eq!(web["Project"], "p");
    assert_eq!(web["State"], "running");
    assert_eq!(web["ExitCode"], 0);
    assert_eq!(web["ID"].as_str().map(str::len), Some(12));
    assert_eq!(web["Image"], BASE_IMAGE);
    assert!(
        web["Publishers"]
            .as_array()
            .expect("Publishers")
            .iter()
            .any(|p| p["PublishedPort"] == 18080 && p["TargetPort"] == 80),
        "{json}"
    );
    let keys: Vec<&String> = web.as_object().expect("object").keys().collect();
    let mut sorted = keys.clone();
    sorted.sort();
    assert_eq!(keys, sorted, "fields in Go's marshalling order");

    let exited = compose_ok(&d, "p", &["ps", "--filter", "status=exited", "-q"]);
    assert_eq!(exited.trim(), web2);
    let exited = compose_ok(
        &d,
        "p",
        &[
            "ps",
            "--status",
            "exited",
            "--format",
            "{{.Name}} {{.ExitCode}}",
        ],
    );
    assert_eq!(exited, "p-web-2 2\n");
    let bad = compose(&d, "p", &["ps", "--filter", "colour=red"]);
    assert!(!bad.status.success());

    // top: one table, service and number first, CMD last.
    let top = compose_ok(&d, "p", &["top"]);
    let first = top.lines().next().unwrap_or("");
    assert!(first.starts_with("SERVICE  #   UID"), "{top}");
    assert!(first.trim_end().ends_with("CMD"), "{top}");
    assert!(
        top.lines()
            .any(|l| l.starts_with("db       1   root") && l.ends_with("sleep 301")),
        "{top}"
    );
    assert!(top.lines().any(|l| l.ends_with("sleep 300")), "{top}");
    let top_db = compose_ok(&d, "p", &["top", "db"]);
    assert!(!top_db.contains("sleep 300"), "{top_db}");

    // port
    let port = compose_ok(&d, "p", &["port", "web", "80"]);
    assert!(port.trim().ends_with(":18080"), "{port}");
    let none = compose(&d, "p", &["port", "web", "81"]);
    assert!(!none.status.success());
    assert!(err(&none).contains("no port 81/tcp"), "{}", err(&none));

    // images
    let images = compose_ok(&d, "p", &["images"]);
    let lines: Vec<&str> = images.lines().collect();
    assert_eq!(
        lines[0].split_whitespace().collect::<Vec<_>>(),
        ["CONTAINER", "REPOSITORY", "TAG", "IMAGE", "ID", "SIZE"],
        "{images}"
    );
    assert_eq!(lines.len(), 4, "stopped containers too: {images}");
    assert!(
        lines[1].starts_with("p-db-1") && lines[1].contains("berth-examples/busybox   latest"),
        "{images}"
    );
    let q = compose_ok(&d, "p", &["images", "-q"]);
    assert_eq!(q.lines().count(), 1, "{q}");
    assert_eq!(q.trim().len(), 64, "{q}");

    // ls needs no project at all.
    let ls = d.ok(&["compose", "ls"]);
    assert_eq!(
        ls,
        "NAME                STATUS              CONFIG FILES\n\
         other               running(1)          /srv/app/compose.yaml\n\
         p                   running(2)          /srv/app/compose.yaml\n"
    );
    let ls = d.ok(&["compose", "ls", "-a", "--filter", "name=p"]);
    assert!(
        ls.contains("p                   exited(1), running(2)"),
        "{ls}"
    );
    assert!(!ls.contains("other"), "{ls}");
    assert_eq!(d.ok(&["compose", "ls", "-q"]), "other\np\n");
    let json = d.ok(&["compose", "ls", "--format", "json"]);
    assert_eq!(
        json.lines().next().unwrap_or(""),
        r#"[{"Name":"other","Status":"running(1)","ConfigFiles":"/srv/app/compose.yaml"},{"Name":"p","Status":"running(2)","ConfigFiles":"/srv/app/compose.yaml"}]"#
    );

    // wait: reports each exit; the status is the command's.
    let job = service(&d, "p", "job", 1, &[], &["sh", "-c", "sleep 1; exit 4"]);
    let w = compose(&d, "p", &["wait", "job"]);
    assert_eq!(w.status.code(), Some(4), "{}", err(&w));
    assert_eq!(
        out(&w),
        format!("container \"{job}\" exited with status code 4\n")
    );
}

/// Runs a command with a deadline, so a follow that never ends fails the test instead of
/// hanging it.
fn output_within(mut cmd: Command, limit: Duration) -> Output {
    let child = cmd
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn");
    finish_within(child, limit)
}

/// Waits for a spawned command with a deadline; killed and failing the test past it.
fn finish_within(mut child: std::process::Child, limit: Duration) -> Output {
    let deadline = Instant::now() + limit;
    while child.try_wait().expect("try_wait").is_none() {
        if Instant::now() > deadline {
            let _ = child.kill();
            let o = child.wait_with_output().expect("wait");
            panic!("did not end in {limit:?}: {}{}", out(&o), err(&o));
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    child.wait_with_output().expect("output")
}

#[test]
fn logs_prefix_tail_and_follow() {
    let d = Daemon::start();
    let web = service(
        &d,
        "p",
        "web",
        1,
        &[],
        &["sh", "-c", "echo one; echo two; echo three >&2"],
    );
    let worker = service(&d, "p", "worker", 1, &[], &["sh", "-c", "echo hello"]);
    wait_exit(&d, &web);
    wait_exit(&d, &worker);

    // Prefixes padded to the longest name plus one, no colour off a terminal; stderr lines
    // come through the same way.
    let logs = compose_ok(&d, "p", &["logs"]);
    let mut lines: Vec<&str> = logs.lines().collect();
    lines.sort();
    assert_eq!(
        lines,
        [
            "web-1     | one",
            "web-1     | three",
            "web-1     | two",
            "worker-1  | hello"
        ],
        "{logs:?}"
    );
    // One container's lines keep their order.
    let web_lines: Vec<&str> = logs.lines().filter(|l| l.starts_with("web-1")).collect();
    assert_eq!(web_lines.len(), 3);
    assert!(!logs.contains('\x1b'), "{logs:?}");

    assert_eq!(
        compose_ok(&d, "p", &["logs", "--no-log-prefix", "worker"]),
        "hello\n"
    );
    let tail = compose_ok(&d, "p", &["logs", "--tail", "1", "worker"]);
    assert_eq!(tail, "worker-1  | hello\n");
    let tail = compose_ok(&d, "p", &["logs", "--tail", "0"]);
    assert_eq!(tail, "");
    let ts = compose_ok(&d, "p", &["logs", "-t", "worker"]);
    assert!(ts.starts_with("worker-1  | 20"), "{ts}");
    assert!(ts.trim_end().ends_with("Z hello"), "{ts}");
    let missing = compose(&d, "p", &["logs", "--index", "2", "web"]);
    assert_eq!(out(&missing), "");

    // -f returns once the followed container exits, with everything it wrote.
    service(
        &d,
        "q",
        "slow",
        1,
        &[],
        &["sh", "-c", "echo start; sleep 2; echo end"],
    );
    let dir = empty_dir(&d, "q");
    let mut cmd = d.cmd();
    cmd.arg("compose")
        .arg("--project-directory")
        .arg(&dir)
        .args(["-p", "q", "logs", "-f"]);
    let started = Instant::now();
    let o = output_within(cmd, Duration::from_secs(30));
    assert!(o.status.success(), "{}", err(&o));
    assert_eq!(out(&o), "slow-1  | start\nslow-1  | end\n");
    assert!(started.elapsed() >= Duration::from_millis(500));

    // Containers that start while following are followed too; the follow ends when all
    // have stopped.
    service(
        &d,
        "n",
        "first",
        1,
        &[],
        &["sh", "-c", "echo first; sleep 3"],
    );
    let dir = empty_dir(&d, "n");
    let mut cmd = d.cmd();
    cmd.arg("compose")
        .arg("--project-directory")
        .arg(&dir)
        .args(["-p", "n", "logs", "-f"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let child = cmd.spawn().expect("logs -f");
    std::thread::sleep(Duration::from_millis(1000));
    service(
        &d,
        "n",
        "second",
        1,
        &[],
        &["sh", "-c", "echo second; sleep 4; echo later"],
    );
    let o = finish_within(child, Duration::from_secs(30));
    let mut lines: Vec<String> = out(&o).lines().map(str::to_string).collect();
    lines.sort();
    assert_eq!(
        lines,
        // The padding grows when a longer name joins, as compose's does.
        [
            "first-1  | first",
            "second-1  | later",
            "second-1  | second"
        ],
        "{}",
        err(&o)
    );

    // A reader that goes away (`| head -n 1`) ends a follow that would otherwise never end.
    service(
        &d,
        "r",
        "ticker",
        1,
        &[],
        &["sh", "-c", "while true; do echo tick; sleep 0.2; done"],
    );
    let line = format!(
        "{} -H {} compose --project-directory {} -p r logs -f | head -n 1",
        env!("CARGO_BIN_EXE_berth"),
        d.host,
        empty_dir(&d, "r").display()
    );
    let mut cmd = Command::new("sh");
    cmd.args(["-c", &line]).env("HOME", d.dir.path());
    let o = output_within(cmd, Duration::from_secs(30));
    assert_eq!(out(&o), "ticker-1  | tick\n");
}

#[test]
fn exec_cp_and_events() {
    let d = Daemon::start();
    let since = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock")
        .as_secs()
        - 1;
    let id = service(&d, "p", "web", 1, &[], &["sleep", "300"]);

    // exec: output, exit code, env and workdir.
    assert_eq!(compose_ok(&d, "p", &["exec", "web", "echo", "hi"]), "hi\n");
    let o = compose(&d, "p", &["exec", "-T", "web", "sh", "-c", "exit 3"]);
    assert_eq!(o.status.code(), Some(3), "{}", err(&o));
    let o = compose_ok(
        &d,
        "p",
        &[
            "exec",
            "-e",
            "GREETING=hey",
            "-w",
            "/tmp",
            "web",
            "sh",
            "-c",
            "echo $GREETING $PWD",
        ],
    );
    assert_eq!(o, "hey /tmp\n");
    let o = compose(&d, "p", &["exec", "nope", "true"]);
    assert!(!o.status.success());
    assert!(
        err(&o).contains("service \"nope\" is not running"),
        "{}",
        err(&o)
    );
    let o = compose(&d, "p", &["exec", "--index", "2", "web", "true"]);
    assert!(
        err(&o).contains("is not running container #2"),
        "{}",
        err(&o)
    );

    // cp into the service's container and back out.
    let local = d.dir.path().join("note.txt");
    std::fs::write(&local, "carried across\n").expect("write");
    compose_ok(
        &d,
        "p",
        &["cp", &local.to_string_lossy(), "web:/tmp/note.txt"],
    );
    assert_eq!(
        compose_ok(&d, "p", &["exec", "web", "cat", "/tmp/note.txt"]),
        "carried across\n"
    );
    compose_ok(
        &d,
        "p",
        &["exec", "web", "sh", "-c", "echo from inside > /tmp/out.txt"],
    );
    let back = d.dir.path().join("back.txt");
    compose_ok(
        &d,
        "p",
        &["cp", "web:/tmp/out.txt", &back.to_string_lossy()],
    );
    assert_eq!(
        std::fs::read_to_string(&back).expect("copied"),
        "from inside\n"
    );

    // events: the project's container events up to now, as lines and as JSON.
    let until = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock")
        .as_secs()
        + 1;
    std::thread::sleep(Duration::from_millis(1100));
    let (s, u) = (since.to_string(), until.to_string());
    let mut cmd = d.cmd();
    cmd.arg("compose")
        .arg("--project-directory")
        .arg(empty_dir(&d, "p"))
        .args(["-p", "p", "events", "--json", "--since", &s, "--until", &u]);
    let o = output_within(cmd, Duration::from_secs(20));
    assert!(o.status.success(), "{}", err(&o));
    let evs: Vec<serde_json::Value> = out(&o)
        .lines()
        .map(|l| serde_json::from_str(l).expect("json event"))
        .collect();
    let start = evs
        .iter()
        .find(|e| e["action"] == "start")
        .unwrap_or_else(|| panic!("no start event: {}", out(&o)));
    assert_eq!(start["id"], id.as_str());
    assert_eq!(start["service"], "web");
    assert_eq!(start["type"], "container");
    assert!(start["attributes"]["name"] == "p-web-1", "{start}");
    assert!(
        start["attributes"]
            .as_object()
            .is_some_and(|a| !a.keys().any(|k| k.starts_with("com.docker.compose."))),
        "{start}"
    );
    let mut cmd = d.cmd();
    cmd.arg("compose")
        .arg("--project-directory")
        .arg(empty_dir(&d, "p"))
        .args(["-p", "p", "events", "--since", &s, "--until", &u]);
    let o = output_within(cmd, Duration::from_secs(20));
    let text = out(&o);
    let line = text
        .lines()
        .find(|l| l.contains(" container start "))
        .unwrap_or_else(|| panic!("{text}"));
    assert!(line.contains(&format!("container start {id} (")), "{line}");
    assert!(line.contains("name=p-web-1"), "{line}");
}

/// Runs `berth compose -p PROJECT ARGS` on a pseudo-terminal (through `script`), so standard
/// input and output are TTYs; returns the terminal's output with `\r\n` folded.
fn on_terminal(d: &Daemon, project: &str, args: &str) -> String {
    let line = format!(
        "{} -H {} compose --project-directory {} -p {project} {args}",
        env!("CARGO_BIN_EXE_berth"),
        d.host,
        empty_dir(d, project).display()
    );
    let mut cmd = Command::new("script");
    cmd.args(["-qec", &line, "/dev/null"])
        .env("HOME", d.dir.path())
        .stdin(Stdio::null());
    let o = output_within(cmd, Duration::from_secs(30));
    assert!(o.status.success(), "{line}: {}{}", out(&o), err(&o));
    out(&o).replace("\r\n", "\n")
}

#[test]
fn terminal_colours_and_exec_tty() {
    let d = Daemon::start();
    service(&d, "p", "web", 1, &[], &["sh", "-c", "echo a; sleep 300"]);
    let worker = service(&d, "p", "worker", 1, &[], &["echo", "b"]);
    wait_exit(&d, &worker);
    // Let web's first line reach its log.
    std::thread::sleep(Duration::from_millis(300));

    // On a terminal each container's prefix gets the next colour of compose's cycle.
    let logs = on_terminal(&d, "p", "logs");
    let mut lines: Vec<&str> = logs.lines().collect();
    lines.sort();
    assert_eq!(
        lines,
        [
            "\x1b[33mworker-1  | \x1b[0mb",
            "\x1b[36mweb-1     | \x1b[0ma",
        ],
        "{logs:?}"
    );
    let plain = on_terminal(&d, "p", "logs --no-color worker");
    assert_eq!(plain, "worker-1  | b\n");

    // A TTY container's log is raw, not framed; its `\r\n` endings become plain lines.
    let tty = service(
        &d,
        "tt",
        "console",
        1,
        &["-t"],
        &["sh", "-c", "echo typed; echo out"],
    );
    wait_exit(&d, &tty);
    assert_eq!(
        compose_ok(&d, "tt", &["logs"]),
        "console-1  | typed\nconsole-1  | out\n"
    );

    // exec allocates a TTY when standard input is one, unless -T.
    let tty = on_terminal(&d, "p", "exec web tty");
    assert!(tty.starts_with("/dev/pts/"), "{tty:?}");
    let no_tty = on_terminal(&d, "p", "exec -T web sh -c 'tty || true'");
    assert_eq!(no_tty.trim(), "not a tty");
}

#[test]
fn project_from_the_compose_file() {
    let d = Daemon::start();
    let dir = d.project(
        "demo",
        &format!("services:\n  web:\n    image: {BASE_IMAGE}\n  db:\n    image: {BASE_IMAGE}\n"),
    );
    service(&d, "demo", "web", 1, &[], &["sleep", "300"]);
    // A container of a service the file no longer declares: an orphan.
    service(&d, "demo", "old", 1, &[], &["sleep", "301"]);

    let ps = d.compose_ok(&dir, &["ps", "--format", "{{.Name}}"]);
    assert_eq!(ps, "demo-old-1\ndemo-web-1\n");
    let ps = d.compose_ok(&dir, &["ps", "--orphans=false", "--format", "{{.Name}}"]);
    assert_eq!(ps, "demo-web-1\n");
    let bad = d.compose(&dir, &["ps", "nope"]);
    assert!(!bad.status.success());
    assert!(err(&bad).contains("no such service: nope"), "{}", err(&bad));
    assert_eq!(
        d.compose_ok(&dir, &["exec", "web", "echo", "from the file"]),
        "from the file\n"
    );
    // No file and no -p: nothing to go by.
    let none = d.compose(&empty_dir(&d, "none"), &["ps"]);
    assert!(!none.status.success());
}
