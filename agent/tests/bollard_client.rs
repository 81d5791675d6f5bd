//! bollard 0.21, the Rust Docker client, creating, starting, reading the logs of and removing a
//! container on a real berthd.

mod common;

use bollard::Docker;
use bollard::models::ContainerCreateBody;
use bollard::query_parameters::{
    CreateContainerOptionsBuilder, LogsOptionsBuilder, RemoveContainerOptionsBuilder,
    WaitContainerOptionsBuilder,
};
use common::Berthd;
use common::registry::{Auth, Registry};
use futures_util::StreamExt;

#[test]
fn bollard_runs_a_container() {
    let reg = Registry::start(Auth::None);
    reg.seed_busybox();
    let d = Berthd::start(&[]);
    let src = format!("{}/busybox:latest", reg.host());
    d.docker_ok(&["pull", "-q", &src]);
    d.docker_ok(&["tag", &src, "busybox:latest"]);
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    rt.block_on(async {
        let docker =
            Docker::connect_with_unix(&d.sock.to_string_lossy(), 30, bollard::API_DEFAULT_VERSION)
                .expect("connect");
        let body = ContainerCreateBody {
            image: Some("busybox".into()),
            cmd: Some(vec![
                "sh".into(),
                "-c".into(),
                "echo out; echo err >&2".into(),
            ]),
            ..Default::default()
        };
        let opts = CreateContainerOptionsBuilder::default()
            .name("from-bollard")
            .build();
        let created = docker
            .create_container(Some(opts), body)
            .await
            .expect("create");
        assert_eq!(created.id.len(), 64);
        docker
            .start_container(
                &created.id,
                None::<bollard::query_parameters::StartContainerOptions>,
            )
            .await
            .expect("start");
        let mut wait = docker.wait_container(
            &created.id,
            Some(
                WaitContainerOptionsBuilder::default()
                    .condition("not-running")
                    .build(),
            ),
        );
        while let Some(r) = wait.next().await {
            assert_eq!(r.expect("wait").status_code, 0);
        }
        let mut logs = docker.logs(
            &created.id,
            Some(
                LogsOptionsBuilder::default()
                    .stdout(true)
                    .stderr(true)
                    .build(),
            ),
        );
        let mut out = String::new();
        let mut err = String::new();
        while let Some(l) = logs.next().await {
            match l.expect("log") {
                bollard::container::LogOutput::StdOut { message } => {
                    out.push_str(&String::from_utf8_lossy(&message))
                }
                bollard::container::LogOutput::StdErr { message } => {
                    err.push_str(&String::from_utf8_lossy(&message))
                }
                _ => {}
            }
        }
        assert_eq!(out, "out\n");
        assert_eq!(err, "err\n");
        let info = docker
            .inspect_container(
                "from-bollard",
                None::<bollard::query_parameters::InspectContainerOptions>,
            )
            .await
            .expect("inspect");
        assert_eq!(info.state.and_then(|s| s.exit_code), Some(0));
        docker
            .remove_container(
                &created.id,
                Some(RemoveContainerOptionsBuilder::default().force(true).build()),
            )
            .await
            .expect("remove");
        let gone = docker
            .inspect_container(
                &created.id,
                None::<bollard::query_parameters::InspectContainerOptions>,
            )
            .await;
        assert!(gone.is_err());
    });
}
