//! The container endpoints at the HTTP level: Docker's statuses and messages for bad input, and
//! nothing changed by a rejected request.

mod common;

use common::Berthd;
use common::registry::{Auth, Registry};

#[test]
fn bad_requests_get_docker_statuses_and_change_nothing() {
    let reg = Registry::start(Auth::None);
    reg.seed_busybox();
    let d = Berthd::start(&[]);
    let src = format!("{}/busybox:latest", reg.host());
    d.docker_ok(&["pull", "-q", &src]);
    d.docker_ok(&["tag", &src, "busybox:latest"]);

    let (s, b) = d.curl(
        "POST",
        "/v1.50/containers/create",
        Some(b"{\"Image\": \"busybox\""),
    );
    assert_eq!(s, 400, "{b}");
    assert!(b.starts_with("{\"message\":"), "{b}");
    let (s, _) = d.curl("POST", "/v1.50/containers/create", Some(b"[1,2]"));
    assert_eq!(s, 400);
    let (s, b) = d.curl(
        "POST",
        "/v1.50/containers/create?name=a%2Fb",
        Some(b"{\"Image\":\"busybox\"}"),
    );
    assert_eq!(s, 400, "{b}");
    assert!(b.contains("Invalid container name"), "{b}");
    let (s, b) = d.curl(
        "POST",
        "/v1.50/containers/create",
        Some(b"{\"Image\":\"nope:1\"}"),
    );
    assert_eq!(s, 404, "{b}");
    assert!(b.contains("No such image: nope:1"), "{b}");
    // A body far over any sane size is refused without being read into memory.
    let huge = vec![b' '; 64 * 1024 * 1024];
    let (s, _) = d.curl("POST", "/v1.50/containers/create", Some(&huge));
    assert!(s == 413 || s == 400, "{s}");
    // Unknown fields are ignored, as dockerd does (newer clients send fields older daemons lack).
    let (s, b) = d.curl(
        "POST",
        "/v1.50/containers/create?name=ok",
        Some(b"{\"Image\":\"busybox\",\"FutureField\":{\"x\":1},\"Cmd\":[\"true\"]}"),
    );
    assert_eq!(s, 201, "{b}");
    let (s, b) = d.curl(
        "POST",
        "/v1.50/containers/create?name=ok",
        Some(b"{\"Image\":\"busybox\"}"),
    );
    assert_eq!(s, 409, "{b}");
    let (s, b) = d.curl("GET", "/v1.50/containers/nothere/json", None);
    assert_eq!(s, 404);
    assert_eq!(b.trim(), "{\"message\":\"No such container: nothere\"}");
    let (s, _) = d.curl("POST", "/v1.50/containers/ok/kill", None);
    assert_eq!(s, 409, "killing a container that is not running");
    let (s, _) = d.curl("POST", "/v1.50/containers/ok/stop", None);
    assert_eq!(s, 304);
    let (s, b) = d.curl("GET", "/v1.50/containers/ok/logs", None);
    assert_eq!(s, 400, "{b}");
    let (s, b) = d.curl("GET", "/v1.50/containers/json?filters=%7Bbad", None);
    assert_eq!(s, 400, "{b}");
    let (s, b) = d.curl(
        "GET",
        "/v1.50/containers/json?all=1&filters=%7B%22nope%22%3A%5B%22x%22%5D%7D",
        None,
    );
    assert_eq!(s, 400, "{b}");
    let (s, b) = d.curl(
        "GET",
        "/v1.50/containers/ok/archive?path=/../../../../etc/shadow",
        None,
    );
    assert!(s == 404 || s == 200, "{s} {b}");
    if s == 200 {
        // Resolved inside the container's root, where there is no shadow file to leak.
        panic!("archive outside the rootfs must not be served: {b}");
    }
    // Exactly one container exists after all that.
    let ids = d.docker_ok(&["ps", "-aq"]);
    assert_eq!(ids.lines().count(), 1, "{ids}");
}
