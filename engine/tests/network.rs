//! Networks with real containers: bridges, veths in pinned namespaces, IPAM, isolation,
//! published TCP/UDP ports through nftables, and bad input. Needs root and `berth-shim`.
//! Every test checks at the end that its bridges, namespaces and table are gone.

mod common;

use berth_engine::container::{ContainerOptions, ContainerService, WaitCondition};
use berth_engine::image::ImageService;
use berth_engine::image::registry::RegistryOptions;
use berth_engine::network::NetworkOptions;
use berth_engine::state::StateStore;
use bollard_stubs::models::{
    ContainerCreateBody, EndpointIpamConfig, EndpointSettings, HostConfig, Ipam, IpamConfig,
    NetworkCreateRequest, NetworkingConfig, PortBinding,
};
use std::collections::HashMap;
use std::io::Read;
use std::net::{Ipv4Addr, TcpStream, UdpSocket};
use std::path::{Path, PathBuf};
use std::time::Duration;

fn can_run() -> bool {
    // SAFETY: geteuid has no preconditions.
    unsafe { libc::geteuid() == 0 }
}

fn shim_binary() -> PathBuf {
    let exe = std::env::current_exe().unwrap();
    let p = exe.parent().unwrap().parent().unwrap().join("berth-shim");
    if !p.exists() {
        let st = std::process::Command::new(env!("CARGO"))
            .args([
                "build",
                "--release",
                "-p",
                "berth-shim",
                "--bin",
                "berth-shim",
            ])
            .status()
            .unwrap();
        assert!(st.success());
    }
    p
}

/// busybox-static with every applet linked, as a `docker save` archive tagged busybox:net.
fn busybox_archive() -> Vec<u8> {
    let list = std::process::Command::new("/bin/busybox")
        .arg("--list")
        .output()
        .unwrap();
    let mut l = common::TarBuilder::new();
    for d in ["bin", "etc", "tmp", "proc", "sys", "dev"] {
        l = l.dir(d);
    }
    l = l.file(
        "bin/busybox",
        &std::fs::read("/bin/busybox").unwrap(),
        0o755,
    );
    for a in String::from_utf8_lossy(&list.stdout).lines() {
        if !a.is_empty() && a != "busybox" {
            l = l.symlink(&format!("bin/{a}"), "busybox");
        }
    }
    l = l.file("etc/passwd", b"root:x:0:0:root:/root:/bin/sh\n", 0o644);
    let layer = l.finish();
    use sha2::Digest;
    let hex: String = sha2::Sha256::digest(&layer)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    let cfg = serde_json::to_vec(&serde_json::json!({
        "architecture": "amd64", "os": "linux",
        "config": {"Cmd": ["sh"], "Env": ["PATH=/bin"]},
        "rootfs": {"type": "layers", "diff_ids": [format!("sha256:{hex}")]},
    }))
    .unwrap();
    let manifest = serde_json::to_vec(&serde_json::json!([
        {"Config": "config.json", "RepoTags": ["busybox:net"], "Layers": ["layer.tar"]}
    ]))
    .unwrap();
    common::TarBuilder::new()
        .file("layer.tar", &layer, 0o644)
        .file("config.json", &cfg, 0o644)
        .file("manifest.json", &manifest, 0o644)
        .finish()
}

/// One engine under temp dirs; on drop kills its processes and removes its namespaces,
/// bridges and nftables table even when the test failed.
struct Env {
    svc: ContainerService,
    images: ImageService,
    state: StateStore,
    root: tempfile::TempDir,
    exec_root: tempfile::TempDir,
    shim: PathBuf,
    bridges: std::sync::Mutex<Vec<String>>,
}

impl Env {
    async fn new() -> Env {
        let shim = shim_binary();
        let root = tempfile::Builder::new().prefix("bnt").tempdir().unwrap();
        let exec_root = tempfile::Builder::new()
            .prefix("bnx")
            .tempdir_in("/tmp")
            .unwrap();
        let state = StateStore::open(&root.path().join("state.redb")).unwrap();
        let images =
            ImageService::open(root.path(), state.clone(), RegistryOptions::default()).unwrap();
        let im = images.clone();
        tokio::task::spawn_blocking(move || im.load(&busybox_archive()[..]).unwrap())
            .await
            .unwrap();
        let svc = open_svc(root.path(), exec_root.path(), &shim, &state, &images).await;
        let env = Env {
            svc,
            images,
            state,
            root,
            exec_root,
            shim,
            bridges: Default::default(),
        };
        env.bridges
            .lock()
            .unwrap()
            .push(env.opts().default_bridge());
        env
    }

    fn opts(&self) -> NetworkOptions {
        NetworkOptions {
            root: self.root.path().to_path_buf(),
            exec_root: self.exec_root.path().to_path_buf(),
        }
    }

    async fn reopen(&mut self) {
        self.svc.shutdown().await;
        self.svc = open_svc(
            self.root.path(),
            self.exec_root.path(),
            &self.shim,
            &self.state,
            &self.images,
        )
        .await;
    }

    async fn network(&self, name: &str, subnet: Option<&str>, internal: bool) -> String {
        let id = self
            .svc
            .networks()
            .create(NetworkCreateRequest {
                name: name.into(),
                internal: Some(internal),
                ipam: subnet.map(|s| Ipam {
                    config: Some(vec![IpamConfig {
                        subnet: Some(s.into()),
                        ..Default::default()
                    }]),
                    ..Default::default()
                }),
                ..Default::default()
            })
            .await
            .unwrap()
            .id;
        self.bridges
            .lock()
            .unwrap()
            .push(self.svc.networks().get(&id).unwrap().bridge);
        id
    }

    async fn run(&self, net: &str, ip: Option<&str>, cmd: &str) -> String {
        let mut b = body(cmd);
        b.host_config = Some(HostConfig {
            network_mode: Some(net.into()),
            ..Default::default()
        });
        if let Some(ip) = ip {
            b.networking_config = Some(NetworkingConfig {
                endpoints_config: Some(HashMap::from([(
                    net.to_string(),
                    EndpointSettings {
                        ipam_config: Some(EndpointIpamConfig {
                            ipv4_address: Some(ip.into()),
                            ..Default::default()
                        }),
                        ..Default::default()
                    },
                )])),
            });
        }
        let id = self.svc.create(None, b).await.unwrap().0;
        self.svc.start(&id).await.unwrap();
        id
    }

    fn ip(&self, id: &str, net: &str) -> String {
        let i = self.svc.inspect(id).unwrap();
        let n = i.network_settings.unwrap().networks.unwrap();
        n[net].ip_address.clone().unwrap()
    }

    /// Runs `cmd` in a new container on `net` and returns its exit code.
    async fn probe(&self, net: &str, cmd: &str) -> i64 {
        let id = self.run(net, None, cmd).await;
        let code = wait(self, &id).await;
        self.svc.remove(&id, true, false).await.unwrap();
        code
    }

    /// Removes containers and networks through the engine, then checks nothing is left.
    async fn finish(&self) {
        for c in self.svc.list().unwrap() {
            self.svc
                .remove(c.id.as_deref().unwrap(), true, false)
                .await
                .unwrap();
        }
        for n in self.svc.networks().list().unwrap() {
            let name = n.name.unwrap();
            if !["bridge", "host", "none"].contains(&name.as_str()) {
                self.svc.networks().remove(&name).await.unwrap();
            }
        }
        let ns = self.exec_root.path().join("netns");
        let left: Vec<_> = std::fs::read_dir(&ns)
            .map(|rd| rd.flatten().map(|e| e.path()).collect())
            .unwrap_or_default();
        assert!(left.is_empty(), "namespaces left: {left:?}");
        let bridges = self.bridges.lock().unwrap().clone();
        for b in &bridges[1..] {
            assert!(
                !Path::new("/sys/class/net").join(b).exists(),
                "bridge {b} left"
            );
        }
        let out = std::process::Command::new("nft")
            .args(["list", "table", "ip", &self.opts().table()])
            .output()
            .unwrap();
        let rules = String::from_utf8_lossy(&out.stdout);
        assert!(!rules.contains("dnat to"), "port rules left: {rules}");
    }
}

async fn open_svc(
    root: &Path,
    exec_root: &Path,
    shim: &Path,
    state: &StateStore,
    images: &ImageService,
) -> ContainerService {
    let opts = ContainerOptions {
        root: root.to_path_buf(),
        exec_root: exec_root.to_path_buf(),
        shim: Some(shim.to_path_buf()),
    };
    ContainerService::open(opts, state.clone(), images.clone())
        .await
        .unwrap()
}

impl Drop for Env {
    fn drop(&mut self) {
        let roots = [self.root.path(), self.exec_root.path()];
        if let Ok(rd) = std::fs::read_dir("/proc") {
            for e in rd.flatten() {
                let cmd = std::fs::read(e.path().join("cmdline")).unwrap_or_default();
                let cmd = String::from_utf8_lossy(&cmd);
                if roots.iter().any(|r| cmd.contains(&*r.to_string_lossy()))
                    && let Ok(pid) = e.file_name().to_string_lossy().parse::<i32>()
                {
                    // SAFETY: signalling a process this test started.
                    unsafe { libc::kill(pid, libc::SIGKILL) };
                }
            }
        }
        let ids: Vec<String> = std::fs::read_dir(self.root.path().join("containers"))
            .map(|rd| {
                rd.flatten()
                    .map(|e| e.file_name().to_string_lossy().to_string())
                    .collect()
            })
            .unwrap_or_default();
        for id in &ids {
            for ctrl in ["pids", "memory", "freezer", "cpu,cpuacct"] {
                let p = format!("/sys/fs/cgroup/{ctrl}/berth/{id}/cgroup.procs");
                for pid in std::fs::read_to_string(&p).unwrap_or_default().lines() {
                    if let Ok(pid) = pid.trim().parse::<i32>() {
                        // SAFETY: the container's own processes.
                        unsafe { libc::kill(pid, libc::SIGKILL) };
                    }
                }
            }
        }
        std::thread::sleep(Duration::from_millis(100));
        for id in &ids {
            let rootfs = self.root.path().join("containers").join(id).join("rootfs");
            let _ = rustix::mount::unmount(&rootfs, rustix::mount::UnmountFlags::DETACH);
            if let Ok(rd) = std::fs::read_dir("/sys/fs/cgroup") {
                for c in rd.flatten() {
                    let _ = std::fs::remove_dir(c.path().join("berth").join(id));
                }
            }
        }
        if let Ok(rd) = std::fs::read_dir(self.exec_root.path().join("netns")) {
            for e in rd.flatten() {
                let _ = rustix::mount::unmount(e.path(), rustix::mount::UnmountFlags::DETACH);
            }
        }
        for b in self.bridges.lock().unwrap().iter() {
            let _ = std::process::Command::new("ip")
                .args(["link", "del", b])
                .stderr(std::process::Stdio::null())
                .status();
        }
        berth_engine::network::nft::delete_table(&self.opts().table());
    }
}

fn body(cmd: &str) -> ContainerCreateBody {
    ContainerCreateBody {
        image: Some("busybox:net".into()),
        cmd: Some(vec!["sh".into(), "-c".into(), cmd.into()]),
        ..Default::default()
    }
}

async fn wait(env: &Env, id: &str) -> i64 {
    tokio::time::timeout(
        Duration::from_secs(30),
        env.svc.wait(id, WaitCondition::NotRunning),
    )
    .await
    .unwrap()
    .unwrap()
    .status_code
}

fn host_addr() -> Option<Ipv4Addr> {
    // The source address the host would use towards a public address: its "eth0" address.
    let s = UdpSocket::bind("0.0.0.0:0").ok()?;
    s.connect("192.0.2.1:9").ok()?;
    match s.local_addr().ok()?.ip() {
        std::net::IpAddr::V4(a) if !a.is_loopback() => Some(a),
        _ => None,
    }
}

fn tcp_read(addr: &str) -> std::io::Result<String> {
    let mut s = TcpStream::connect_timeout(&addr.parse().unwrap(), Duration::from_secs(2))?;
    s.set_read_timeout(Some(Duration::from_secs(3)))?;
    let mut out = String::new();
    s.read_to_string(&mut out)?;
    Ok(out)
}

async fn tcp_eventually(addr: &str) -> String {
    for _ in 0..50 {
        if let Ok(s) = tcp_read(addr)
            && !s.is_empty()
        {
            return s;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("{addr} never answered");
}

#[tokio::test(flavor = "multi_thread")]
async fn user_networks_connect_and_isolate() {
    if !can_run() {
        return;
    }
    let env = Env::new().await;
    env.network("bn-a", None, false).await;
    env.network("bn-b", None, false).await;
    let server = env.run("bn-a", None, "sleep 60").await;
    let ip = env.ip(&server, "bn-a");
    assert!(!ip.is_empty());
    // Same network: reachable; its own hosts file names it.
    assert_eq!(env.probe("bn-a", &format!("ping -c1 -W2 {ip}")).await, 0);
    // Another network: dropped between bridges.
    assert_ne!(env.probe("bn-b", &format!("ping -c1 -W1 {ip}")).await, 0);
    // A container on both reaches it, connected while running.
    let both = env.run("bn-b", None, "sleep 60").await;
    env.svc
        .network_connect(&both, "bn-a", EndpointSettings::default())
        .await
        .unwrap();
    let net_a = env.svc.networks().inspect("bn-a").unwrap();
    assert!(net_a.containers.unwrap().contains_key(&both));
    let both_ip = env.ip(&both, "bn-a");
    assert!(!both_ip.is_empty());
    // The server reaches the newly connected address.
    let pinger = env.svc.networks().resolve("bn-a").unwrap();
    assert_eq!(
        env.probe(&pinger, &format!("ping -c1 -W2 {both_ip}")).await,
        0
    );
    env.svc
        .network_disconnect(&both, "bn-a", false)
        .await
        .unwrap();
    let net_a = env.svc.networks().inspect("bn-a").unwrap();
    assert!(!net_a.containers.unwrap().contains_key(&both));
    // Hosts file: own address and hostname.
    let hosts = std::fs::read_to_string(
        env.root
            .path()
            .join("containers")
            .join(&server)
            .join("hosts"),
    )
    .unwrap();
    assert!(
        hosts.contains(&format!("{ip}\t{}", &server[..12])),
        "{hosts}"
    );
    // Internal: no default route, nothing outside the bridge.
    env.network("bn-int", None, true).await;
    let out_ip = host_addr()
        .map(|a| a.to_string())
        .unwrap_or("1.1.1.1".into());
    assert_ne!(
        env.probe("bn-int", &format!("ping -c1 -W1 {out_ip}")).await,
        0
    );
    assert_eq!(
        env.probe("bn-int", "ip route | grep -q default && exit 1 || exit 0")
            .await,
        0
    );
    // Removing a network with a running endpoint is refused and changes nothing.
    let e = env.svc.networks().remove("bn-a").await.unwrap_err();
    assert!(e.to_string().contains("has active endpoints"), "{e}");
    assert!(env.svc.networks().inspect("bn-a").is_ok());
    env.finish().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn published_ports_tcp_and_udp() {
    if !can_run() {
        return;
    }
    let env = Env::new().await;
    let mut b = body("nc -ll -p 8080 -e echo hello");
    b.exposed_ports = Some(vec!["8080/tcp".into(), "9090/udp".into()]);
    b.host_config = Some(HostConfig {
        publish_all_ports: Some(true),
        port_bindings: Some(HashMap::from([(
            "9090/udp".to_string(),
            Some(vec![PortBinding {
                host_ip: Some("127.0.0.1".into()),
                host_port: Some(String::new()),
            }]),
        )])),
        ..Default::default()
    });
    let id = env.svc.create(Some("web"), b).await.unwrap().0;
    env.svc.start(&id).await.unwrap();
    let ports = env
        .svc
        .inspect(&id)
        .unwrap()
        .network_settings
        .unwrap()
        .ports
        .unwrap();
    let hp = |k: &str| -> u16 {
        ports[k].as_ref().unwrap()[0]
            .host_port
            .as_deref()
            .unwrap()
            .parse()
            .unwrap()
    };
    let (tcp, udp) = (hp("8080/tcp"), hp("9090/udp"));
    assert_eq!(
        tcp_eventually(&format!("127.0.0.1:{tcp}")).await.trim(),
        "hello"
    );
    if let Some(a) = host_addr() {
        assert_eq!(tcp_eventually(&format!("{a}:{tcp}")).await.trim(), "hello");
    }
    let list = env.svc.list().unwrap();
    assert_eq!(list[0].ports.as_ref().unwrap().len(), 2);
    // busybox-static has no UDP server applet: the UDP path is checked by its rule only.
    let out = std::process::Command::new("nft")
        .args(["list", "table", "ip", &env.opts().table()])
        .output()
        .unwrap();
    let rules = String::from_utf8_lossy(&out.stdout);
    assert!(
        rules.contains(&format!("ip daddr 127.0.0.1 udp dport {udp} dnat to")),
        "{rules}"
    );
    // A taken host port: the start fails and leaves nothing behind.
    let mut b = body("sleep 30");
    b.host_config = Some(HostConfig {
        port_bindings: Some(HashMap::from([(
            "80/tcp".to_string(),
            Some(vec![PortBinding {
                host_ip: None,
                host_port: Some(tcp.to_string()),
            }]),
        )])),
        ..Default::default()
    });
    let taken = env.svc.create(None, b).await.unwrap().0;
    let e = env.svc.start(&taken).await.unwrap_err();
    assert!(e.to_string().contains("port is already allocated"), "{e}");
    assert!(env.svc.networks().sandbox_of(&taken).unwrap().is_none());
    assert!(env.svc.networks().endpoints_of(&taken).unwrap().is_empty());
    // Stopped: the port no longer answers.
    env.svc.stop(&id, None, Some(1)).await.unwrap();
    assert!(
        tcp_read(&format!("127.0.0.1:{tcp}"))
            .map(|s| s.is_empty())
            .unwrap_or(true)
    );
    env.finish().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn static_ip_and_ipam_across_reopen() {
    if !can_run() {
        return;
    }
    let mut env = Env::new().await;
    env.network("bn-ipam", Some("10.197.0.0/24"), false).await;
    let a = env.run("bn-ipam", Some("10.197.0.50"), "sleep 60").await;
    assert_eq!(env.ip(&a, "bn-ipam"), "10.197.0.50");
    let b = env.run("bn-ipam", None, "sleep 60").await;
    assert_eq!(env.ip(&b, "bn-ipam"), "10.197.0.2");
    // Taken and outside: refused at start, nothing half-made.
    let mut body_taken = body("true");
    body_taken.host_config = Some(HostConfig {
        network_mode: Some("bn-ipam".into()),
        ..Default::default()
    });
    body_taken.networking_config = Some(NetworkingConfig {
        endpoints_config: Some(HashMap::from([(
            "bn-ipam".into(),
            EndpointSettings {
                ipam_config: Some(EndpointIpamConfig {
                    ipv4_address: Some("10.197.0.50".into()),
                    ..Default::default()
                }),
                ..Default::default()
            },
        )])),
    });
    let t = env.svc.create(None, body_taken.clone()).await.unwrap().0;
    let e = env.svc.start(&t).await.unwrap_err();
    assert!(e.to_string().contains("Address already in use"), "{e}");
    if let Some(ep) = body_taken
        .networking_config
        .as_mut()
        .and_then(|n| n.endpoints_config.as_mut())
        .and_then(|m| m.get_mut("bn-ipam"))
    {
        ep.ipam_config.as_mut().unwrap().ipv4_address = Some("10.9.0.5".into());
    }
    let o = env.svc.create(None, body_taken).await.unwrap().0;
    let e = env.svc.start(&o).await.unwrap_err();
    assert!(e.to_string().contains("no configured subnet"), "{e}");
    env.reopen().await;
    let c = env.run("bn-ipam", None, "sleep 60").await;
    assert_eq!(env.ip(&c, "bn-ipam"), "10.197.0.3");
    assert_eq!(env.ip(&b, "bn-ipam"), "10.197.0.2");
    // Stop releases; the next start gets the lowest free address again.
    env.svc.stop(&b, None, Some(1)).await.unwrap();
    assert_eq!(env.ip(&b, "bn-ipam"), "");
    let d = env.run("bn-ipam", None, "sleep 60").await;
    assert_eq!(env.ip(&d, "bn-ipam"), "10.197.0.2");
    env.finish().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn bad_network_input() {
    if !can_run() {
        return;
    }
    let env = Env::new().await;
    let nets = env.svc.networks();
    env.network("bn-bad", Some("10.198.0.0/16"), false).await;
    let before = nets.list().unwrap().len();
    let e = |r: Result<_, berth_engine::Error>| r.map(drop).unwrap_err().to_string();
    let create = |name: &str, subnet: &str| NetworkCreateRequest {
        name: name.into(),
        ipam: Some(Ipam {
            config: Some(vec![IpamConfig {
                subnet: Some(subnet.into()),
                ..Default::default()
            }]),
            ..Default::default()
        }),
        ..Default::default()
    };
    assert!(e(nets.create(create("bn-bad", "10.199.0.0/16")).await).contains("already exists"));
    assert!(e(nets.create(create("bn-other", "10.198.4.0/24")).await).contains("overlaps"));
    assert!(e(nets.create(create("bn-other", "10.198.4.0/99")).await).contains("invalid CIDR"));
    let mut gw = create("bn-other", "10.200.0.0/24");
    gw.ipam.as_mut().unwrap().config.as_mut().unwrap()[0].gateway = Some("10.201.0.1".into());
    assert!(e(nets.create(gw).await).contains("gateway"));
    let e2 = |r: Result<(), berth_engine::Error>| r.unwrap_err().to_string();
    assert!(e2(nets.remove("bridge").await).contains("pre-defined"));
    assert!(e2(nets.remove("nope").await).contains("network nope not found"));
    assert_eq!(nets.list().unwrap().len(), before);
    // Unknown network at container create: refused (400, see check_networks), no container.
    let mut b = body("true");
    b.host_config = Some(HostConfig {
        network_mode: Some("nope".into()),
        ..Default::default()
    });
    let err = env.svc.create(None, b).await.unwrap_err();
    assert!(err.to_string().contains("network nope not found"), "{err}");
    assert!(env.svc.list().unwrap().is_empty());
    env.finish().await;
}
