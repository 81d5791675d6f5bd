use super::*;
use crate::swarm::state::{Command, Outcome, Request};
use bollard_stubs::models::{
    EndpointSpec, NetworkAttachmentConfig, Node, NodeStatus, Service, ServiceSpec, TaskSpec,
    TaskStatus,
};

fn req(command: Command) -> Request {
    Request {
        at: "2026-01-01T00:00:00Z".into(),
        command,
    }
}

fn network(id: &str, subnet: Option<&str>) -> Command {
    Command::CreateNetwork(Box::new(Network {
        id: Some(id.into()),
        name: Some(format!("n{id}")),
        driver: Some("overlay".into()),
        ipam: subnet.map(|s| Ipam {
            config: Some(vec![IpamConfig {
                subnet: Some(s.into()),
                ..Default::default()
            }]),
            ..Default::default()
        }),
        ..Default::default()
    }))
}

fn attach(net: &str) -> Option<Vec<NetworkAttachmentConfig>> {
    Some(vec![NetworkAttachmentConfig {
        target: Some(net.into()),
        ..Default::default()
    }])
}

fn service(id: &str, net: &str, dnsrr: bool) -> Command {
    Command::CreateService(Box::new(Service {
        id: Some(id.into()),
        spec: Some(ServiceSpec {
            name: Some(format!("s{id}")),
            task_template: Some(TaskSpec {
                networks: attach(net),
                ..Default::default()
            }),
            endpoint_spec: dnsrr.then(|| EndpointSpec {
                mode: Some(EndpointSpecModeEnum::DNSRR),
                ..Default::default()
            }),
            ..Default::default()
        }),
        ..Default::default()
    }))
}

fn task(id: &str, service: &str, net: &str, node: &str, state: TaskState) -> Task {
    Task {
        id: Some(id.into()),
        service_id: Some(service.into()),
        node_id: Some(node.into()),
        desired_state: Some(TaskState::RUNNING),
        spec: Some(TaskSpec {
            networks: attach(net),
            ..Default::default()
        }),
        status: Some(TaskStatus {
            state: Some(state),
            ..Default::default()
        }),
        ..Default::default()
    }
}

fn node(id: &str, addr: &str) -> Command {
    Command::AddNode(Box::new(Node {
        id: Some(id.into()),
        status: Some(NodeStatus {
            state: Some(NodeState::READY),
            addr: Some(addr.into()),
            message: None,
        }),
        ..Default::default()
    }))
}

#[test]
fn networks_get_distinct_subnets_and_vnis_and_overlaps_are_refused() {
    let mut s = ClusterState::default();
    assert_eq!(s.apply(1, req(network("a", None))), Outcome::Done);
    assert_eq!(
        s.apply(2, req(network("b", Some("10.0.1.0/24")))),
        Outcome::Invalid(
            "invalid pool request: Pool overlaps with other one on this address space".into()
        )
    );
    assert_eq!(
        s.apply(3, req(network("c", Some("192.168.50.0/24")))),
        Outcome::Done
    );
    assert_eq!(s.apply(4, req(network("d", None))), Outcome::Done);
    let p = |id: &str| OverlayParams::of(&s.networks[id]).unwrap();
    assert_eq!(p("a").subnet.to_string(), "10.0.1.0/24");
    assert_eq!(p("a").gateway, Ipv4Addr::new(10, 0, 1, 1));
    assert_eq!(p("d").subnet.to_string(), "10.0.2.0/24");
    assert_eq!(p("c").gateway, Ipv4Addr::new(192, 168, 50, 1));
    let vnis: BTreeSet<u32> = ["a", "c", "d"].iter().map(|n| p(n).vni).collect();
    assert_eq!(vnis.len(), 3);
    assert!(!s.networks.contains_key("b"));
}

#[test]
fn tasks_and_vips_get_addresses_freed_when_done_and_nodes_see_backends() {
    let mut s = ClusterState::default();
    s.apply(1, req(network("n", None)));
    s.apply(2, req(node("x", "192.0.2.10")));
    s.apply(3, req(service("web", "n", false)));
    s.apply(4, req(service("db", "n", true)));
    let vip = s.overlay.vips["web"]["n"];
    assert!(!s.overlay.vips.contains_key("db"), "dnsrr has no VIP");
    assert_eq!(
        s.services["web"]
            .service
            .endpoint
            .as_ref()
            .unwrap()
            .virtual_ips
            .as_ref()
            .unwrap()[0]
            .addr
            .as_deref(),
        Some(format!("{vip}/24").as_str())
    );
    let put = vec![
        task("t1", "web", "n", "x", TaskState::RUNNING),
        task("t2", "web", "n", "x", TaskState::STARTING),
        task("t3", "db", "n", "x", TaskState::RUNNING),
    ];
    s.apply(
        5,
        req(Command::Tasks {
            put,
            remove: vec![],
        }),
    );
    let ips: BTreeSet<Ipv4Addr> = ["t1", "t2", "t3"]
        .iter()
        .map(|t| s.overlay.tasks[*t]["n"])
        .chain([vip, Ipv4Addr::new(10, 0, 1, 1)])
        .collect();
    assert_eq!(ips.len(), 5, "all distinct: {ips:?}");
    let view = &s.overlay_views()["n"];
    assert_eq!(view.peers.len(), 3);
    let web = view.services.iter().find(|r| r.name == "sweb").unwrap();
    assert_eq!(web.vip, Some(vip));
    assert_eq!(
        web.tasks,
        vec![s.overlay.tasks["t1"]["n"]],
        "only running tasks serve"
    );
    let db = view.services.iter().find(|r| r.name == "sdb").unwrap();
    assert_eq!(db.vip, None);
    // A finished task gives its address back; a removed service its VIP.
    let t1 = s.overlay.tasks["t1"]["n"];
    s.apply(
        6,
        req(Command::Tasks {
            put: vec![task("t1", "web", "n", "x", TaskState::FAILED)],
            remove: vec![],
        }),
    );
    assert!(!s.overlay.tasks.contains_key("t1"));
    s.apply(
        7,
        req(Command::Tasks {
            put: vec![task("t4", "web", "n", "x", TaskState::NEW)],
            remove: vec![],
        }),
    );
    assert_eq!(
        s.overlay.tasks["t4"]["n"], t1,
        "the lowest free address is reused"
    );
    s.apply(8, req(Command::RemoveService { id: "web".into() }));
    assert!(!s.overlay.vips.contains_key("web"));
}

#[test]
fn a_published_port_makes_the_ingress_network_with_node_and_task_addresses() {
    use bollard_stubs::models::EndpointPortConfig;
    let mut s = ClusterState {
        cluster: Some(crate::swarm::state::ClusterRecord {
            id: "c1".into(),
            ..Default::default()
        }),
        ..Default::default()
    };
    s.apply(1, req(node("x", "192.0.2.10")));
    assert!(
        s.ingress_id().is_none(),
        "no ingress until a port is published"
    );
    let Command::CreateService(mut svc) = service("web", "none", false) else {
        unreachable!()
    };
    let spec = svc.spec.as_mut().unwrap();
    spec.task_template = Some(TaskSpec::default());
    spec.endpoint_spec = Some(EndpointSpec {
        ports: Some(vec![EndpointPortConfig {
            target_port: Some(80),
            published_port: Some(8080),
            ..Default::default()
        }]),
        ..Default::default()
    });
    s.apply(2, req(Command::CreateService(svc)));
    let ingress = s.ingress_id().unwrap().to_string();
    let p = OverlayParams::of(&s.networks[&ingress]).unwrap();
    assert_eq!((p.subnet.to_string(), p.vni), ("10.0.0.0/24".into(), 4096));
    let node_ip = s.overlay.nodes["x"];
    let mut t = task("t1", "web", "none", "x", TaskState::RUNNING);
    t.spec = Some(TaskSpec::default());
    s.apply(
        3,
        req(Command::Tasks {
            put: vec![t],
            remove: vec![],
        }),
    );
    let task_ip = s.overlay.tasks["t1"][&ingress];
    assert_ne!(task_ip, node_ip);
    let view = &s.overlay_views()[&ingress];
    assert!(view.ingress);
    assert!(
        view.peers.iter().any(|p| p.ip == node_ip),
        "the node is a peer"
    );
    let web = &view.services[0];
    assert_eq!((web.ports[0].published, web.ports[0].target), (8080, 80));
    assert_eq!(web.tasks, vec![task_ip]);
}
