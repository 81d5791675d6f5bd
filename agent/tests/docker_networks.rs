//! Networks end to end with the real docker CLI against berthd: user bridges, DNS by name and
//! alias, isolation between networks, internal networks, published TCP and UDP ports, and
//! Docker's answers to bad input. Each test runs in a network namespace of its own (see
//! tests/support/netns.rs), where a veth interface stands for the host's own address.

mod common;

use common::Berthd;
use common::registry::Registry;
use std::net::UdpSocket;
use std::path::PathBuf;
use std::process::Command;
use std::time::{Duration, Instant};

/// The stand-in for the host's own (non-loopback) address inside the test's namespace.
const HOST_ADDR: &str = "10.250.0.1";

fn daemon() -> (Registry, Berthd) {
    let (reg, d) = common::daemon_with_busybox();
    // No dummy driver in this kernel: one end of a veth pair carries the address.
    ip(&[
        "link", "add", "bt-host0", "type", "veth", "peer", "name", "bt-host1",
    ]);
    ip(&["addr", "add", &format!("{HOST_ADDR}/24"), "dev", "bt-host0"]);
    ip(&["link", "set", "bt-host1", "up"]);
    ip(&["link", "set", "bt-host0", "up"]);
    (reg, d)
}

fn ip(args: &[&str]) {
    let st = Command::new("ip").args(args).status().expect("ip");
    assert!(st.success(), "ip {args:?}");
}

/// A tiny web server container: `httpd` serving a file that names the container.
fn web(d: &Berthd, name: &str, extra: &[&str]) {
    let mut args = vec!["run", "-d", "--name", name];
    args.extend_from_slice(extra);
    let script =
        format!("mkdir -p /www && echo hello-from-{name} > /www/f && exec httpd -f -p 80 -h /www");
    args.extend_from_slice(&["busybox", "sh", "-c", &script]);
    d.docker_ok(&args);
}

/// `wget` from inside container `from`; the body or `None` when it fails.
fn fetch(d: &Berthd, from: &str, url: &str) -> Option<String> {
    // busybox-static 1.35 wget crashes on -T: bound it with timeout instead.
    let out = d.docker(&["exec", from, "timeout", "3", "wget", "-q", "-O", "-", url]);
    out.status
        .success()
        .then(|| String::from_utf8_lossy(&out.stdout).trim().to_string())
}

/// `curl` from the test's namespace (the "host").
fn host_fetch(url: &str) -> Option<String> {
    let out = Command::new("curl")
        .args(["-s", "-m", "3", url])
        .output()
        .expect("curl");
    out.status
        .success()
        .then(|| String::from_utf8_lossy(&out.stdout).trim().to_string())
}

fn ip_of(d: &Berthd, container: &str, network: &str) -> String {
    let f = format!("{{{{(index .NetworkSettings.Networks \"{network}\").IPAddress}}}}");
    d.docker_ok(&["inspect", "-f", &f, container])
        .trim()
        .to_string()
}

fn retry<T>(mut f: impl FnMut() -> Option<T>) -> Option<T> {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        if let Some(v) = f() {
            return Some(v);
        }
        if Instant::now() > deadline {
            return None;
        }
        std::thread::sleep(Duration::from_millis(200));
    }
}

#[test]
fn user_network_names_aliases_and_isolation() {
    let (_reg, d) = daemon();
    d.docker_ok(&["network", "create", "front"]);
    d.docker_ok(&["network", "create", "back"]);
    web(&d, "srv", &["--network", "front", "--network-alias", "web"]);
    d.docker_ok(&[
        "run",
        "-d",
        "--name",
        "cli",
        "--network",
        "front",
        "busybox",
        "sleep",
        "1000",
    ]);
    d.docker_ok(&[
        "run",
        "-d",
        "--name",
        "other",
        "--network",
        "back",
        "busybox",
        "sleep",
        "1000",
    ]);
    // By name and by alias, through the embedded DNS.
    assert_eq!(
        retry(|| fetch(&d, "cli", "http://srv/f")).as_deref(),
        Some("hello-from-srv")
    );
    assert_eq!(
        fetch(&d, "cli", "http://web/f").as_deref(),
        Some("hello-from-srv")
    );
    // Another network can neither resolve the name nor reach the address.
    let srv_ip = ip_of(&d, "srv", "front");
    assert!(srv_ip.starts_with(|c: char| c.is_ascii_digit()), "{srv_ip}");
    assert_eq!(fetch(&d, "other", "http://srv/f"), None);
    assert_eq!(fetch(&d, "other", &format!("http://{srv_ip}/f")), None);
    // Connected to both, it can.
    d.docker_ok(&["network", "connect", "front", "other"]);
    assert_eq!(
        retry(|| fetch(&d, "other", "http://srv/f")).as_deref(),
        Some("hello-from-srv")
    );
    let inspect = d.docker_ok(&["network", "inspect", "front"]);
    assert!(inspect.contains("\"other\""), "{inspect}");
    d.docker_ok(&["network", "disconnect", "front", "other"]);
    assert_eq!(fetch(&d, "other", &format!("http://{srv_ip}/f")), None);
    // The container's own files, as Docker writes them.
    let hosts = d.docker_ok(&["exec", "srv", "cat", "/etc/hosts"]);
    assert!(hosts.contains(&srv_ip), "{hosts}");
    let resolv = d.docker_ok(&["exec", "cli", "cat", "/etc/resolv.conf"]);
    assert!(resolv.contains("nameserver"), "{resolv}");
    // Removing a network with endpoints is refused; without them it goes.
    let busy = d.docker(&["network", "rm", "front"]);
    assert!(!busy.status.success());
    assert!(
        String::from_utf8_lossy(&busy.stderr).contains("has active endpoints"),
        "{}",
        String::from_utf8_lossy(&busy.stderr)
    );
    d.docker_ok(&["rm", "-f", "srv", "cli", "other"]);
    d.docker_ok(&["network", "rm", "front", "back"]);
    let ls = d.docker_ok(&["network", "ls", "--format", "{{.Name}}"]);
    assert_eq!(
        ls.split_whitespace().collect::<Vec<_>>(),
        ["bridge", "host", "none"]
    );
}

#[test]
fn internal_network_has_no_way_out() {
    let (_reg, d) = daemon();
    // Something to reach on the host's own address.
    let www = tempfile::tempdir().expect("tmp");
    std::fs::write(www.path().join("f"), "host\n").expect("write");
    let mut httpd = Command::new("busybox")
        .args(["httpd", "-f", "-p", &format!("{HOST_ADDR}:8081"), "-h"])
        .arg(www.path())
        .spawn()
        .expect("host httpd");
    d.docker_ok(&["network", "create", "--internal", "sealed"]);
    d.docker_ok(&["network", "create", "open"]);
    d.docker_ok(&[
        "run",
        "-d",
        "--name",
        "in",
        "--network",
        "sealed",
        "busybox",
        "sleep",
        "1000",
    ]);
    d.docker_ok(&[
        "run",
        "-d",
        "--name",
        "out",
        "--network",
        "open",
        "busybox",
        "sleep",
        "1000",
    ]);
    let url = format!("http://{HOST_ADDR}:8081/f");
    let open = retry(|| fetch(&d, "out", &url));
    let sealed = fetch(&d, "in", &url);
    let _ = httpd.kill();
    let _ = httpd.wait();
    assert_eq!(open.as_deref(), Some("host"));
    assert_eq!(sealed, None);
    let internal = d.docker_ok(&["network", "inspect", "-f", "{{.Internal}}", "sealed"]);
    assert_eq!(internal.trim(), "true");
}

#[test]
fn published_ports_tcp_and_udp() {
    let (_reg, d) = daemon();
    web(&d, "pub", &["-p", "127.0.0.1:18080:80", "-p", "18081:80"]);
    assert_eq!(
        retry(|| host_fetch("http://127.0.0.1:18080/f")).as_deref(),
        Some("hello-from-pub")
    );
    assert_eq!(
        host_fetch(&format!("http://{HOST_ADDR}:18081/f")).as_deref(),
        Some("hello-from-pub")
    );
    assert_eq!(
        host_fetch("http://127.0.0.1:18081/f").as_deref(),
        Some("hello-from-pub")
    );
    // Bound to 127.0.0.1 only: not on the host's other addresses.
    assert_eq!(host_fetch(&format!("http://{HOST_ADDR}:18080/f")), None);
    let port = d.docker_ok(&["port", "pub", "80"]);
    assert!(port.contains("127.0.0.1:18080"), "{port}");
    // A port already taken is refused, and nothing of that container is left running.
    let taken = d.docker(&[
        "run", "-d", "--name", "dup", "-p", "18081:80", "busybox", "true",
    ]);
    assert!(!taken.status.success());
    let err = String::from_utf8_lossy(&taken.stderr).to_string();
    assert!(
        err.contains("already allocated") || err.contains("address already in use"),
        "{err}"
    );
    // Random host ports (-P and -p 80).
    web(&d, "rnd", &["-P", "--expose", "80"]);
    let p = d.docker_ok(&["port", "rnd", "80/tcp"]);
    let host_port = p
        .lines()
        .next()
        .and_then(|l| l.rsplit(':').next())
        .expect("port")
        .trim()
        .to_string();
    assert_eq!(
        retry(|| host_fetch(&format!("http://127.0.0.1:{host_port}/f"))).as_deref(),
        Some("hello-from-rnd")
    );
    // Stopped, the port stops answering.
    d.docker_ok(&["stop", "-t", "1", "pub"]);
    assert_eq!(host_fetch("http://127.0.0.1:18080/f"), None);
    assert_eq!(host_fetch(&format!("http://{HOST_ADDR}:18081/f")), None);
    // And it comes back with the container.
    d.docker_ok(&["start", "pub"]);
    assert_eq!(
        retry(|| host_fetch("http://127.0.0.1:18080/f")).as_deref(),
        Some("hello-from-pub")
    );

    // UDP: an echo server in the container, reached through the published port.
    let nb = netbench();
    d.docker_ok(&[
        "create",
        "--name",
        "udp",
        "-p",
        "15353:5353/udp",
        "busybox",
        "/netbench",
        "udp-echo",
        "5353",
    ]);
    d.docker_ok(&["cp", &nb.to_string_lossy(), "udp:/netbench"]);
    d.docker_ok(&["start", "udp"]);
    let sock = UdpSocket::bind("127.0.0.1:0").expect("udp");
    sock.set_read_timeout(Some(Duration::from_millis(300)))
        .expect("timeout");
    let echoed = retry(|| {
        sock.send_to(b"ping", "127.0.0.1:15353").ok()?;
        let mut buf = [0u8; 16];
        let (n, _) = sock.recv_from(&mut buf).ok()?;
        Some(buf[..n].to_vec())
    });
    assert_eq!(echoed.as_deref(), Some(&b"ping"[..]));
}

#[test]
fn bad_input_gets_docker_errors() {
    let (_reg, d) = daemon();
    d.docker_ok(&["network", "create", "--subnet", "10.77.0.0/16", "a"]);
    let dup = d.docker(&["network", "create", "a"]);
    assert!(!dup.status.success());
    assert!(
        String::from_utf8_lossy(&dup.stderr).contains("already exists"),
        "{}",
        String::from_utf8_lossy(&dup.stderr)
    );
    let overlap = d.docker(&["network", "create", "--subnet", "10.77.1.0/24", "b"]);
    assert!(!overlap.status.success());
    assert!(
        String::from_utf8_lossy(&overlap.stderr).contains("overlaps"),
        "{}",
        String::from_utf8_lossy(&overlap.stderr)
    );
    let bad_gw = d.docker(&[
        "network",
        "create",
        "--subnet",
        "10.78.0.0/24",
        "--gateway",
        "10.79.0.1",
        "c",
    ]);
    assert!(!bad_gw.status.success());
    // An address outside the subnet.
    let outside = d.docker(&[
        "run",
        "-d",
        "--name",
        "xx",
        "--network",
        "a",
        "--ip",
        "10.99.0.5",
        "busybox",
        "true",
    ]);
    assert!(!outside.status.success());
    let unknown = d.docker(&["run", "--rm", "--network", "nope", "busybox", "true"]);
    assert!(!unknown.status.success());
    assert!(
        String::from_utf8_lossy(&unknown.stderr).contains("network nope not found"),
        "{}",
        String::from_utf8_lossy(&unknown.stderr)
    );
    let predefined = d.docker(&["network", "rm", "bridge"]);
    assert!(!predefined.status.success());
    // Nothing half-created: only `a` besides the predefined networks.
    let ls = d.docker_ok(&["network", "ls", "--format", "{{.Name}}"]);
    assert_eq!(
        ls.split_whitespace().collect::<Vec<_>>(),
        ["a", "bridge", "host", "none"]
    );
    // Static address inside the subnet works; the same address twice does not.
    d.docker_ok(&[
        "run",
        "-d",
        "--name",
        "s1",
        "--network",
        "a",
        "--ip",
        "10.77.0.50",
        "busybox",
        "sleep",
        "1000",
    ]);
    assert_eq!(ip_of(&d, "s1", "a"), "10.77.0.50");
    let again = d.docker(&[
        "run",
        "-d",
        "--name",
        "s2",
        "--network",
        "a",
        "--ip",
        "10.77.0.50",
        "busybox",
        "sleep",
        "1000",
    ]);
    assert!(!again.status.success());
    // Prune leaves networks in use.
    d.docker_ok(&["network", "create", "idle"]);
    let pruned = d.docker_ok(&["network", "prune", "-f"]);
    assert!(
        pruned.contains("idle") && !pruned.contains("\na\n"),
        "{pruned}"
    );
}

#[test]
fn addresses_survive_a_daemon_crash() {
    let (_reg, mut d) = daemon();
    d.docker_ok(&["network", "create", "--subnet", "10.66.0.0/24", "n"]);
    d.docker_ok(&[
        "run",
        "-d",
        "--name",
        "one",
        "--network",
        "n",
        "busybox",
        "sleep",
        "1000",
    ]);
    let first = ip_of(&d, "one", "n");
    d.kill9();
    d.restart();
    d.docker_ok(&[
        "run",
        "-d",
        "--name",
        "two",
        "--network",
        "n",
        "busybox",
        "sleep",
        "1000",
    ]);
    let second = ip_of(&d, "two", "n");
    assert_ne!(first, second, "an address was handed out twice");
    assert_eq!(
        retry(|| {
            let out = d.docker(&["exec", "two", "ping", "-c", "1", "-W", "1", &first]);
            out.status.success().then_some(())
        }),
        Some(())
    );
}

/// Static `netbench` (tests/bench/netbench.rs) for servers busybox lacks (UDP echo); built once
/// per target directory.
fn netbench() -> PathBuf {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..");
    let src = root.join("tests/bench/netbench.rs");
    let out = PathBuf::from(env!("CARGO_BIN_EXE_berthd")).with_file_name("netbench-static");
    let fresh = match (std::fs::metadata(&out), std::fs::metadata(&src)) {
        (Ok(o), Ok(s)) => o.modified().ok() >= s.modified().ok(),
        _ => false,
    };
    if !fresh {
        let tmp = out.with_extension(format!("tmp{}", std::process::id()));
        let st = Command::new("rustc")
            .args(["-O", "-C", "target-feature=+crt-static", "-o"])
            .arg(&tmp)
            .arg(&src)
            .status()
            .expect("rustc");
        assert!(st.success(), "rustc netbench");
        std::fs::rename(&tmp, &out).expect("rename");
    }
    out
}
