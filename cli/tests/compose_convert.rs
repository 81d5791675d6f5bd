//! The create request `berth compose up` sends, end to end against a private berthd: the
//! service's keys are seen from inside the running container and through inspect.

mod common;

use common::{Daemon, err};

const APP: &str = r#"
name: cvt
services:
  app:
    image: berth-examples/busybox:latest
    command: ["sleep", "3600"]
    working_dir: /srv
    hostname: apphost
    environment:
      GREETING: hello
      FROM_FILE:
    env_file: app.env
    labels:
      com.example.role: app
    extra_hosts: ["db.local=10.0.0.5"]
    volumes:
      - ./site:/site:ro
      - data:/data
      - type: tmpfs
        target: /scratch
    tmpfs: [/run/t]
    secrets: [token]
    healthcheck:
      test: ["CMD", "true"]
      interval: 2s
      retries: 3
    restart: on-failure:2
    stop_grace_period: 3s
    cap_add: [NET_ADMIN]
    mem_limit: 64m
    pids_limit: 50
    ports: ["127.0.0.1::8080"]
    expose: ["9000"]
    networks:
      back:
        aliases: [api]
secrets:
  token:
    file: ./token.txt
volumes:
  data: {}
networks:
  back: {}
"#;

fn inspect(d: &Daemon, name: &str, fmt: &str) -> String {
    d.ok(&["inspect", "-f", fmt, name]).trim().to_string()
}

fn exec(d: &Daemon, name: &str, script: &str) -> String {
    d.ok(&["exec", name, "sh", "-c", script]).trim().to_string()
}

#[test]
fn service_keys_reach_the_container() {
    let d = Daemon::start();
    let p = d.project("cvt", APP);
    std::fs::create_dir_all(p.join("site")).unwrap();
    std::fs::write(p.join("site/index.html"), "site-content").unwrap();
    std::fs::write(p.join("token.txt"), "s3cret").unwrap();
    std::fs::write(p.join("app.env"), "FROM_FILE=file-value\n").unwrap();
    let o = d.compose(&p, &["up", "-d"]);
    assert!(o.status.success(), "{}\n{}", err(&o), d.log());
    let c = "cvt-app-1";

    assert_eq!(exec(&d, c, "pwd"), "/srv");
    assert_eq!(exec(&d, c, "hostname"), "apphost");
    assert_eq!(exec(&d, c, "echo $GREETING $FROM_FILE"), "hello file-value");
    assert_eq!(exec(&d, c, "cat /site/index.html"), "site-content");
    assert_eq!(exec(&d, c, "cat /run/secrets/token"), "s3cret");
    let ro = exec(&d, c, "touch /site/x 2>&1 || echo refused");
    assert!(ro.contains("refused"), "{ro}");
    let hosts = exec(&d, c, "cat /etc/hosts");
    assert!(
        hosts.contains("10.0.0.5") && hosts.contains("db.local"),
        "{hosts}"
    );
    let mounts = exec(&d, c, "cat /proc/mounts");
    assert!(mounts.contains("/scratch tmpfs"), "{mounts}");
    assert!(mounts.contains("/run/t tmpfs"), "{mounts}");
    exec(&d, c, "echo kept > /data/f");

    let labels = inspect(&d, c, "{{json .Config.Labels}}");
    assert!(labels.contains(r#""com.example.role":"app""#), "{labels}");
    assert_eq!(
        inspect(
            &d,
            c,
            "{{.HostConfig.RestartPolicy.Name}}:{{.HostConfig.RestartPolicy.MaximumRetryCount}}"
        ),
        "on-failure:2"
    );
    assert_eq!(
        inspect(&d, c, "{{json .Config.Healthcheck.Test}}"),
        r#"["CMD","true"]"#
    );
    assert_eq!(inspect(&d, c, "{{.Config.StopTimeout}}"), "3");
    assert_eq!(
        inspect(&d, c, "{{json .HostConfig.CapAdd}}"),
        r#"["NET_ADMIN"]"#
    );
    assert_eq!(inspect(&d, c, "{{.HostConfig.Memory}}"), "67108864");
    assert_eq!(inspect(&d, c, "{{.HostConfig.PidsLimit}}"), "50");
    let ports = inspect(&d, c, "{{json .HostConfig.PortBindings}}");
    assert!(
        ports.contains(r#""8080/tcp":[{"HostIp":"127.0.0.1","HostPort":""}]"#),
        "{ports}"
    );
    let exposed = inspect(&d, c, "{{json .Config.ExposedPorts}}");
    assert!(
        exposed.contains("9000/tcp") && exposed.contains("8080/tcp"),
        "{exposed}"
    );
    let aliases = inspect(&d, c, "{{json .NetworkSettings.Networks.cvt_back.Aliases}}");
    assert!(
        aliases.contains("\"api\"") && aliases.contains("\"app\""),
        "{aliases}"
    );
    let binds = inspect(&d, c, "{{json .HostConfig.Binds}}");
    assert!(
        binds.contains("cvt_data:/data:rw") && binds.contains("/site:/site:ro"),
        "{binds}"
    );

    d.compose_ok(&p, &["down", "-v"]);
}
