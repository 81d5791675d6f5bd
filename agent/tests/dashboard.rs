//! The web dashboard end to end: Debian's headless Chromium, driven through chromedriver,
//! loads `/dashboard/` from the manager of a 2-node cluster of network namespaces, sees a
//! service deployed with the docker CLI appear without a reload, scales it, drains a node,
//! activates it again and rolls the service back by clicking the page's controls, and follows
//! a manager restart. Screenshots go to target/test-artefacts/dashboard/. Also: the page and
//! the action routes on a single berthd's UNIX and TCP listeners, before and after
//! `swarm init`, with their errors.

mod common;

use common::Berthd;
use common::browser::{Browser, Relay, artefacts, require};
use common::cluster::{Cluster, IMAGE};
use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::process::Command;

/// The board as the page shows it: column (hostname) -> `service:state` of each task card.
const BOARD_JS: &str = r#"
const out = {};
for (const col of document.querySelectorAll('#board .column')) {
  out[col.dataset.column] = [...col.querySelectorAll('.task')]
    .map((t) => `${t.dataset.service}:${t.dataset.state}`);
}
return out;
"#;

type Board = BTreeMap<String, Vec<String>>;

const STACK: &str = "services:
  api:
    image: berth-examples/busybox:latest
    command: [\"sleep\", \"1000\"]
";

fn board(b: &Browser) -> Board {
    serde_json::from_value(b.js(BOARD_JS)).expect("board")
}

/// Running cards of `service` per column.
fn running(board: &Board, service: &str) -> BTreeMap<String, usize> {
    let card = format!("{service}:running");
    board
        .iter()
        .map(|(col, cards)| (col.clone(), cards.iter().filter(|c| **c == card).count()))
        .collect()
}

/// Waits until the board shows `n` running tasks of `service` (and nothing else of it) and
/// `ok` holds for their spread; returns it.
fn wait_board(
    b: &Browser,
    service: &str,
    n: usize,
    what: &str,
    ok: impl Fn(&BTreeMap<String, usize>) -> bool,
) -> BTreeMap<String, usize> {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(90);
    loop {
        let last = board(b);
        let per = running(&last, service);
        let cards: usize = last
            .values()
            .flatten()
            .filter(|c| c.starts_with(&format!("{service}:")))
            .count();
        if per.values().sum::<usize>() == n && cards == n && ok(&per) {
            return per;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "timed out waiting for {what}: the board shows {last:?}"
        );
        std::thread::sleep(std::time::Duration::from_millis(200));
    }
}

fn click(b: &Browser, css: &str) {
    let e = b.element(css, 10);
    b.click(&e);
}

/// The notice line reports the action that starts with `what` as done (not an error, and not
/// an earlier action's notice still showing).
fn assert_done(b: &Browser, what: &str) {
    let script = format!(
        "const n = document.getElementById('notice');
         return !n.hidden && n.textContent.startsWith({})
             ? [n.dataset.kind, n.textContent] : null;",
        json!(format!("{what}: "))
    );
    let v = b.wait_js(30, &format!("the notice for {what}"), &script);
    assert_eq!(v[0], "info", "{what}: {}", v[1]);
}

#[test]
fn the_dashboard_follows_the_cluster_and_drives_it() {
    // Before any cluster is built, so a machine without the packages fails at once, by name.
    require();
    let mut c = Cluster::swarm(2, 1);
    let relay = Relay::start(&c.hosts[0].sock);
    let shots = artefacts("dashboard");
    let b = Browser::start(shots.clone());
    b.goto(&format!("http://{}/dashboard/", relay.addr()));
    b.wait_js(
        30,
        "the page with both nodes and a live event stream",
        "return document.body.dataset.loaded === 'true'
            && document.querySelectorAll('#nodes tr[data-node]').length === 2
            && document.getElementById('conn').dataset.state === 'live'",
    );
    let leader = b.text(&b.element("#nodes tr[data-node='h0'] td", 5));
    assert!(leader.contains("leader"), "h0 is marked leader: {leader}");
    // A mark that a reload would wipe: every later change must arrive through the stream.
    b.js("window.berthTestMark = 1; return null;");
    b.screenshot("01-loaded");

    // Deployed with the docker CLI; a label with markup shows as text, never as HTML.
    let markup = "<img src=x onerror=\"window.berthXss=1\">";
    c.hosts[0].docker_ok(&[
        "service",
        "create",
        "-d",
        "--name",
        "web",
        "--replicas",
        "1",
        "--label",
        &format!("note={markup}"),
        IMAGE,
        "sleep",
        "1000",
    ]);
    wait_board(&b, "web", 1, "the new service's task", |_| true);
    let row = b.element("#services tr[data-service='web']", 10);
    let text = b.text(&row);
    assert!(
        text.contains(&format!("note={markup}")),
        "label as text: {text}"
    );
    let safe = b.js(
        "return window.berthTestMark === 1 && window.berthXss === undefined
            && document.querySelector('#services img') === null",
    );
    assert_eq!(safe, json!(true), "no reload, no markup from the label");
    b.screenshot("02-service-appeared");

    // Scale from the page: type the count, click Scale.
    let input = b.element("input[data-scale-input='web']", 10);
    b.type_into(&input, "4");
    click(&b, "button[data-scale='web']");
    assert_done(&b, "Scaling web to 4");
    let per = wait_board(&b, "web", 4, "4 running tasks after scaling", |p| {
        p.get("h0").copied().unwrap_or(0) > 0 && p.get("h1").copied().unwrap_or(0) > 0
    });
    assert_eq!(per.values().sum::<usize>(), 4, "{per:?}");
    let desired = c.hosts[0].docker_ok(&[
        "service",
        "inspect",
        "web",
        "--format",
        "{{.Spec.Mode.Replicated.Replicas}}",
    ]);
    assert_eq!(desired.trim(), "4");
    b.screenshot("03-scaled-to-4");

    // Drain h1 from the page: its tasks move to h0.
    let drain = b.element("button[data-node-action='h1']", 10);
    assert_eq!(b.text(&drain), "Drain");
    b.click(&drain);
    assert_done(&b, "Draining h1");
    wait_board(&b, "web", 4, "every task on h0 after draining h1", |p| {
        p.get("h0") == Some(&4)
    });
    let availability = c.hosts[0].docker_ok(&[
        "node",
        "inspect",
        "h1",
        "--format",
        "{{.Spec.Availability}}",
    ]);
    assert_eq!(availability.trim(), "drain");
    b.screenshot("04-h1-drained");

    // Activate it again (the same button, relabelled by the node's update event).
    b.wait_js(
        15,
        "the Activate button",
        "return document.querySelector(\"button[data-node-action='h1']\").textContent === 'Activate'",
    );
    click(&b, "button[data-node-action='h1']");
    assert_done(&b, "Activating h1");
    b.wait_js(
        15,
        "h1 active",
        "return document.querySelector(\"#nodes tr[data-node='h1']\").dataset.availability === 'active'",
    );

    // Roll back: the previous spec is the one before the scale, with 1 replica.
    click(&b, "button[data-rollback='web']");
    assert_done(&b, "Rolling web back");
    wait_board(&b, "web", 1, "1 running task after the rollback", |_| true);
    b.screenshot("05-rolled-back");

    // The manager restarts: the page reconnects by itself and keeps following.
    c.stop(0);
    b.wait_js(
        30,
        "the page to notice the stream went away",
        "return document.getElementById('conn').dataset.state !== 'live'",
    );
    c.start(0);
    b.wait_js(
        60,
        "the event stream live again",
        "return document.getElementById('conn').dataset.state === 'live'",
    );
    c.hosts[0].docker_ok(&["service", "scale", "-d", "web=2"]);
    wait_board(
        &b,
        "web",
        2,
        "2 tasks after a scale made with the CLI",
        |_| true,
    );
    assert_eq!(b.js("return window.berthTestMark === 1"), json!(true));
    b.screenshot("06-after-manager-restart");

    // A stack deployed with the docker CLI shows as one, with its service.
    let file = c.hosts[0].dir.join("stack.yml");
    std::fs::write(&file, STACK).expect("stack file");
    c.hosts[0].docker_ok(&[
        "stack",
        "deploy",
        "--resolve-image",
        "never",
        "-c",
        &file.to_string_lossy(),
        "shop",
    ]);
    wait_board(&b, "shop_api", 1, "the stack's task", |_| true);
    let row = b.element("#stacks tr[data-stack='shop']", 10);
    let text = b.text(&row);
    assert!(text.contains("shop_api") && text.contains("1/1"), "{text}");
    b.screenshot("07-stack");

    // A worker answers the page with 503 and says why.
    let (code, body) = curl_unix(&c.hosts[1].sock, "GET", "/dashboard/", None);
    assert_eq!(code, 503, "{body}");
    assert!(body.contains("swarm worker"), "{body}");
    drop(b);
    drop(relay);
}

/// A request body: (content type, data).
type Body<'a> = Option<(&'a str, &'a str)>;

/// `curl` on a UNIX socket: (status, body).
fn curl_unix(sock: &std::path::Path, method: &str, path: &str, body: Body) -> (u16, String) {
    let mut cmd = Command::new("curl");
    cmd.arg("--unix-socket").arg(sock);
    curl(cmd, method, &format!("http://localhost{path}"), body)
}

/// `curl` with `method` and an optional (content type, body); (status, body).
fn curl(mut cmd: Command, method: &str, url: &str, body: Body) -> (u16, String) {
    cmd.args(["-s", "-X", method, "-w", "\n%{http_code}"]);
    if let Some((ct, data)) = body {
        cmd.args(["-H", &format!("Content-Type: {ct}"), "--data-binary", data]);
    }
    let out = cmd.arg(url).output().expect("curl");
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let (body, code) = text.rsplit_once('\n').unwrap_or(("", &text));
    (code.trim().parse().unwrap_or(0), body.to_string())
}

fn message(body: &str) -> String {
    serde_json::from_str::<Value>(body)
        .ok()
        .and_then(|v| v["message"].as_str().map(str::to_string))
        .unwrap_or_else(|| format!("(no message) {body}"))
}

#[test]
fn the_page_and_actions_on_both_listeners_with_docker_like_errors() {
    let tcp = "127.0.0.1:23790";
    let d = Berthd::start(&["-H".into(), format!("tcp://{tcp}")]);
    let over_tcp = |method: &str, path: &str, body: Body| {
        curl(
            Command::new("curl"),
            method,
            &format!("http://{tcp}{path}"),
            body,
        )
    };

    // Outside a swarm: a page saying so, on both listeners.
    for (code, body) in [
        over_tcp("GET", "/dashboard/", None),
        curl_unix(&d.sock, "GET", "/dashboard/", None),
    ] {
        assert_eq!(code, 503, "{body}");
        assert!(
            body.contains("not in a swarm") && body.contains("<html"),
            "{body}"
        );
    }
    let (code, _) = over_tcp("GET", "/dashboard/app.js", None);
    assert_eq!(code, 200);
    let headers = Command::new("curl")
        .args(["-s", "-D", "-", "-o", "/dev/null"])
        .arg(format!("http://{tcp}/dashboard"))
        .output()
        .expect("curl");
    let headers = String::from_utf8_lossy(&headers.stdout).to_lowercase();
    assert!(headers.starts_with("http/1.1 308"), "{headers}");
    assert!(headers.contains("location: /dashboard/"), "{headers}");

    d.docker_ok(&["swarm", "init", "--advertise-addr", "127.0.0.1"]);
    for (code, body) in [
        over_tcp("GET", "/dashboard/", None),
        curl_unix(&d.sock, "GET", "/dashboard/", None),
    ] {
        assert_eq!(code, 200, "{body}");
        assert!(body.contains("<script src=\"app.js\""), "{body}");
    }
    let headers = Command::new("curl")
        .args(["-s", "-D", "-", "-o", "/dev/null"])
        .arg(format!("http://{tcp}/dashboard/"))
        .output()
        .expect("curl");
    let headers = String::from_utf8_lossy(&headers.stdout).to_lowercase();
    assert!(
        headers.contains("content-security-policy: default-src 'self'"),
        "{headers}"
    );
    assert!(headers.contains("content-type: text/html"), "{headers}");

    // No task of these services ever starts (0 replicas, an unsatisfiable constraint), so
    // nothing is pulled.
    d.docker_ok(&[
        "service",
        "create",
        "-d",
        "--no-resolve-image",
        "--name",
        "web",
        "--replicas",
        "0",
        "busybox",
    ]);
    d.docker_ok(&[
        "service",
        "create",
        "-d",
        "--name",
        "everywhere",
        "--no-resolve-image",
        "--mode",
        "global",
        "--constraint",
        "node.labels.nowhere==1",
        "busybox",
    ]);
    let json = Some(("application/json", r#"{"replicas":0}"#));
    let cases: &[(&str, Body, u16, &str)] = &[
        ("/berth/v1/services/nope/scale", json, 404, "not found"),
        (
            "/berth/v1/services/web/scale",
            Some(("application/json", r#"{"replicas":-1}"#)),
            400,
            "scale",
        ),
        (
            "/berth/v1/services/web/scale",
            Some(("text/plain", r#"{"replicas":1}"#)),
            400,
            "Content-Type",
        ),
        ("/berth/v1/services/everywhere/scale", json, 400, "global"),
        (
            "/berth/v1/services/web/rollback",
            Some(("application/json", "{}")),
            400,
            "previous spec",
        ),
        (
            "/berth/v1/nodes/nope/availability",
            Some(("application/json", r#"{"availability":"drain"}"#)),
            404,
            "not found",
        ),
        (
            "/berth/v1/services/web/scale?force=1",
            json,
            400,
            "unknown query parameter",
        ),
    ];
    for (path, body, want, words) in cases {
        let (code, text) = curl_unix(&d.sock, "POST", path, *body);
        assert_eq!(code, *want, "POST {path}: {text}");
        assert!(message(&text).contains(words), "POST {path}: {text}");
    }
    let node = d.docker_ok(&["node", "ls", "-q"]);
    let node_path = format!("/berth/v1/nodes/{}/availability", node.trim());
    let (code, text) = curl_unix(
        &d.sock,
        "POST",
        &node_path,
        Some(("application/json", r#"{"availability":"sideways"}"#)),
    );
    assert_eq!(code, 400, "{text}");
    assert!(message(&text).contains("active, pause, drain"), "{text}");

    // The successful forms answer with the object after the change.
    let (code, text) = over_tcp("POST", "/berth/v1/services/web/scale", json);
    assert_eq!(code, 200, "{text}");
    let v: Value = serde_json::from_str(&text).expect("service");
    assert_eq!(v["name"], "web");
    let (code, text) = curl_unix(
        &d.sock,
        "POST",
        "/berth/v1/services/web/rollback",
        Some(("application/json", "{}")),
    );
    assert_eq!(code, 200, "{text}");
    for availability in ["pause", "active"] {
        let (code, text) = curl_unix(
            &d.sock,
            "POST",
            &node_path,
            Some((
                "application/json",
                &format!(r#"{{"availability":"{availability}"}}"#),
            )),
        );
        assert_eq!(code, 200, "{text}");
        let v: Value = serde_json::from_str(&text).expect("node");
        assert_eq!(v["availability"], availability, "{text}");
    }
    for s in ["web", "everywhere"] {
        d.docker_ok(&["service", "rm", s]);
    }
    d.docker_ok(&["swarm", "leave", "--force"]);
}
