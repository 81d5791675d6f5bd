//! The real docker CLI (28.x) managing volumes on a real berthd: `docker volume
//! create/ls/inspect/rm/prune`, `docker run -v/--mount/--tmpfs`, with Docker's output, exit
//! codes and errors; the raw API for both filter forms and /system/df.

mod common;

use common::Berthd;

fn stderr(o: &std::process::Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

#[test]
fn docker_volume_commands() {
    let (_reg, d) = common::daemon_with_busybox();
    assert_eq!(
        d.docker_ok(&["volume", "create", "--label", "team=a", "vol-a"]),
        "vol-a\n"
    );
    d.docker_ok(&["volume", "create", "vol-b"]);
    d.docker_ok(&[
        "volume",
        "create",
        "--driver",
        "local",
        "--opt",
        "type=tmpfs",
        "--opt",
        "device=tmpfs",
        "--opt",
        "o=size=2m",
        "vol-tmp",
    ]);
    let anon = d.docker_ok(&["volume", "create"]);
    assert_eq!(anon.trim().len(), 64, "a generated name: {anon}");

    let ls = d.docker_ok(&["volume", "ls"]);
    let rows: Vec<&str> = ls.lines().collect();
    assert_eq!(
        rows[0].split_whitespace().collect::<Vec<_>>(),
        ["DRIVER", "VOLUME", "NAME"]
    );
    assert!(rows[0].starts_with("DRIVER    VOLUME NAME"), "{ls}");
    assert_eq!(rows.len(), 5, "{ls}");
    assert!(ls.contains("local     vol-a"), "{ls}");
    let q = d.docker_ok(&["volume", "ls", "-q", "--filter", "label=team=a"]);
    assert_eq!(q, "vol-a\n");
    let q = d.docker_ok(&["volume", "ls", "-q", "--filter", "name=vol-"]);
    assert_eq!(q, "vol-a\nvol-b\nvol-tmp\n");
    let f = d.docker_ok(&[
        "volume",
        "ls",
        "--format",
        "{{.Name}} {{.Driver}} {{.Labels}}",
        "-f",
        "name=vol-a",
    ]);
    assert_eq!(f, "vol-a local team=a\n");

    let insp = d.docker_ok(&["volume", "inspect", "vol-a"]);
    let v: serde_json::Value = serde_json::from_str(&insp).unwrap();
    assert_eq!(v[0]["Name"], "vol-a");
    assert_eq!(v[0]["Driver"], "local");
    assert_eq!(v[0]["Scope"], "local");
    assert_eq!(v[0]["Labels"]["team"], "a");
    assert!(v[0]["CreatedAt"].as_str().unwrap().ends_with('Z'));
    let mp = d.docker_ok(&["volume", "inspect", "-f", "{{.Mountpoint}}", "vol-a"]);
    assert!(mp.trim().ends_with("/volumes/vol-a/_data"), "{mp}");
    assert!(std::path::Path::new(mp.trim()).is_dir());
    let opts = d.docker_ok(&["volume", "inspect", "-f", "{{.Options.type}}", "vol-tmp"]);
    assert_eq!(opts, "tmpfs\n");
    let missing = d.docker(&["volume", "inspect", "nope"]);
    assert_eq!(missing.status.code(), Some(1));
    assert!(
        stderr(&missing).contains("get nope: no such volume"),
        "{}",
        stderr(&missing)
    );

    // Bad input: Docker's errors, nothing created.
    let bad = d.docker(&["volume", "create", "--driver", "nfsplug", "plugged"]);
    assert_eq!(bad.status.code(), Some(1));
    assert!(
        stderr(&bad).contains(
            "create plugged: error looking up volume plugin nfsplug: plugin \"nfsplug\" not found"
        ),
        "{}",
        stderr(&bad)
    );
    let bad = d.docker(&["volume", "create", "bad/name"]);
    assert!(stderr(&bad).contains("includes invalid characters for a local volume name"));
    let bad = d.docker(&["volume", "create", "-o", "bogus=1", "badopt"]);
    assert!(
        stderr(&bad).contains("invalid option: \\\"bogus\\\"")
            || stderr(&bad).contains("invalid option: \"bogus\""),
        "{}",
        stderr(&bad)
    );
    assert_eq!(d.docker_ok(&["volume", "ls", "-q"]).lines().count(), 4);

    // In use (by a stopped container): 409 and Docker's message; rm -f does not override it.
    d.docker_ok(&[
        "create", "--name", "user", "-v", "vol-b:/b", "busybox", "true",
    ]);
    let busy = d.docker(&["volume", "rm", "vol-b"]);
    assert_eq!(busy.status.code(), Some(1));
    assert!(
        stderr(&busy).contains("remove vol-b: volume is in use - ["),
        "{}",
        stderr(&busy)
    );
    let dangling = d.docker_ok(&["volume", "ls", "-q", "-f", "dangling=true"]);
    assert!(
        !dangling.contains("vol-b") && dangling.contains("vol-a"),
        "{dangling}"
    );
    d.docker_ok(&["rm", "user"]);
    assert_eq!(d.docker_ok(&["volume", "rm", "vol-b"]), "vol-b\n");
    assert!(d.docker(&["volume", "rm", "-f", "vol-b"]).status.success());

    // Prune: anonymous only (none are anonymous: `volume create` names them), then -a.
    let p = d.docker_ok(&["volume", "prune", "-f"]);
    assert_eq!(p, "Total reclaimed space: 0B\n");
    let p = d.docker_ok(&["volume", "prune", "-a", "-f", "--filter", "label!=team"]);
    assert!(p.starts_with("Deleted Volumes:\n"), "{p}");
    assert!(p.contains("vol-tmp") && !p.contains("vol-a"), "{p}");
    let p = d.docker_ok(&["volume", "prune", "-af"]);
    assert!(p.contains("vol-a"), "{p}");
    assert_eq!(d.docker_ok(&["volume", "ls", "-q"]), "");
}

#[test]
fn docker_run_with_volumes_binds_and_tmpfs() {
    let (_reg, d) = common::daemon_with_busybox();
    // Data outlives the container and comes back in the next one.
    d.docker_ok(&[
        "run",
        "--rm",
        "-v",
        "data:/data",
        "busybox",
        "sh",
        "-c",
        "echo saved > /data/f",
    ]);
    let out = d.docker_ok(&[
        "run",
        "--rm",
        "-v",
        "data:/data:ro",
        "busybox",
        "sh",
        "-c",
        "cat /data/f; touch /data/g 2>/dev/null || echo read-only",
    ]);
    assert_eq!(out, "saved\nread-only\n");
    // Copy-up: an empty named volume over /etc gets the image's files.
    let out = d.docker_ok(&[
        "run",
        "--rm",
        "-v",
        "etc:/etc",
        "busybox",
        "sh",
        "-c",
        "test -s /etc/passwd && echo copied",
    ]);
    assert_eq!(out, "copied\n");
    let out = d.docker_ok(&[
        "run",
        "--rm",
        "--mount",
        "type=volume,source=empty,target=/etc,volume-nocopy",
        "busybox",
        "sh",
        "-c",
        "ls /etc | grep -c passwd || true",
    ]);
    assert_eq!(out.trim(), "0");

    // Anonymous volumes: kept without -v, removed with rm -v and with --rm.
    let id = d.docker_ok(&["create", "-v", "/anon", "busybox", "true"]);
    let id = id.trim();
    let m = d.docker_ok(&[
        "inspect",
        "-f",
        "{{range .Mounts}}{{.Type}} {{.Destination}} {{len .Name}}{{end}}",
        id,
    ]);
    assert_eq!(m, "volume /anon 64\n");
    let name = d.docker_ok(&["inspect", "-f", "{{range .Mounts}}{{.Name}}{{end}}", id]);
    let name = name.trim().to_string();
    let label = d.docker_ok(&["volume", "inspect", "-f", "{{json .Labels}}", &name]);
    assert_eq!(label.trim(), r#"{"com.docker.volume.anonymous":""}"#);
    d.docker_ok(&["rm", "-v", id]);
    assert!(!d.docker_ok(&["volume", "ls", "-q"]).contains(&name));
    d.docker_ok(&["run", "--rm", "-v", "/anon2", "busybox", "true"]);
    let left = d.docker_ok(&["volume", "ls", "-q"]);
    assert_eq!(left.lines().filter(|l| l.len() == 64).count(), 0, "{left}");

    // Binds: -v creates a missing host path; --mount refuses it.
    let host = d.dir.path().join("hostdir/made");
    let hv = format!("{}:/h", host.display());
    let out = d.docker_ok(&[
        "run",
        "--rm",
        "-v",
        &hv,
        "busybox",
        "sh",
        "-c",
        "echo hi > /h/x; cat /h/x",
    ]);
    assert_eq!(out, "hi\n");
    assert_eq!(std::fs::read_to_string(host.join("x")).unwrap(), "hi\n");
    let missing = d.dir.path().join("not-there");
    let mnt = format!("type=bind,source={},target=/m", missing.display());
    let bad = d.docker(&["run", "--rm", "--mount", &mnt, "busybox", "true"]);
    assert_eq!(bad.status.code(), Some(125));
    assert!(
        stderr(&bad).contains(&format!(
            "invalid mount config for type \"bind\": bind source path does not exist: {}",
            missing.display()
        )),
        "{}",
        stderr(&bad)
    );
    assert!(!missing.exists());
    let bad = d.docker(&[
        "run", "--rm", "-v", "data:/d", "-v", "other:/d", "busybox", "true",
    ]);
    assert_eq!(bad.status.code(), Some(125));
    assert!(
        stderr(&bad).contains("Duplicate mount point"),
        "{}",
        stderr(&bad)
    );
    assert!(
        !d.docker_ok(&["volume", "ls", "-q"]).contains("other"),
        "nothing half-created"
    );
    assert_eq!(d.docker_ok(&["ps", "-aq"]), "");

    // tmpfs: size and mode.
    let out = d.docker_ok(&[
        "run",
        "--rm",
        "--tmpfs",
        "/t:size=1m,mode=1770",
        "busybox",
        "sh",
        "-c",
        "stat -c %a /t; grep ' /t ' /proc/mounts | grep -o size=1024k",
    ]);
    assert_eq!(out, "1770\nsize=1024k\n");
    let out = d.docker_ok(&[
        "run",
        "--rm",
        "--mount",
        "type=tmpfs,target=/t,tmpfs-size=2097152,tmpfs-mode=700",
        "busybox",
        "sh",
        "-c",
        "stat -c %a /t; grep ' /t ' /proc/mounts | grep -o size=2048k",
    ]);
    assert_eq!(out, "700\nsize=2048k\n");

    // A volume with tmpfs options is mounted while a container uses it.
    d.docker_ok(&[
        "volume",
        "create",
        "-o",
        "type=tmpfs",
        "-o",
        "device=tmpfs",
        "-o",
        "o=size=3m",
        "tv",
    ]);
    let out = d.docker_ok(&[
        "run",
        "--rm",
        "-v",
        "tv:/tv",
        "busybox",
        "sh",
        "-c",
        "grep ' /tv ' /proc/mounts | grep -o size=3072k",
    ]);
    assert_eq!(out, "size=3072k\n");
    let mp = d.docker_ok(&["volume", "inspect", "-f", "{{.Mountpoint}}", "tv"]);
    let mounts = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
    assert!(
        !mounts.contains(&format!(" {} ", mp.trim())),
        "unmounted after use"
    );

    // /system/df counts volumes.
    let df = d.docker_ok(&["system", "df", "--format", "{{.Type}} {{.TotalCount}}"]);
    assert!(df.contains("Local Volumes 4"), "{df}");
    d.docker_ok(&["volume", "prune", "-af"]);
    assert_eq!(d.docker_ok(&["volume", "ls", "-q"]), "");
}

#[test]
fn volumes_api_statuses_and_filter_forms() {
    let d = Berthd::start(&[]);
    let (code, body) = d.curl(
        "POST",
        "/v1.50/volumes/create",
        Some(br#"{"Name":"api1","Labels":{"k":"v"}}"#),
    );
    assert_eq!(code, 201, "{body}");
    let v: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(v["Options"], serde_json::Value::Null);
    let (code, body) = d.curl("POST", "/v1.50/volumes/create", Some(br#"{"Name":"api1"}"#));
    assert_eq!(code, 201, "an existing name is returned: {body}");
    let (code, body) = d.curl(
        "POST",
        "/v1.50/volumes/create",
        Some(br#"{"Name":"x2","Driver":"nope"}"#),
    );
    assert_eq!(code, 404, "{body}");
    let (code, _) = d.curl("POST", "/v1.50/volumes/create", Some(b"{bad"));
    assert_eq!(code, 400);
    for f in [r#"{"label":{"k=v":true}}"#, r#"{"label":["k=v"]}"#] {
        let q = format!("/v1.50/volumes?filters={}", urlencode(f));
        let (code, body) = d.curl("GET", &q, None);
        assert_eq!(code, 200);
        let v: serde_json::Value = serde_json::from_str(&body).unwrap();
        assert_eq!(v["Volumes"].as_array().unwrap().len(), 1, "{body}");
    }
    let q = format!("/v1.50/volumes?filters={}", urlencode(r#"{"bogus":["1"]}"#));
    assert_eq!(d.curl("GET", &q, None).0, 400);
    assert_eq!(d.curl("GET", "/v1.50/volumes/none", None).0, 404);
    // Before 1.42 prune removes named volumes too.
    let (code, body) = d.curl("POST", "/v1.50/volumes/prune", None);
    assert_eq!((code, body.contains("api1")), (200, false), "{body}");
    let (code, body) = d.curl("POST", "/v1.41/volumes/prune", None);
    assert_eq!((code, body.contains("api1")), (200, true), "{body}");
    let q = format!(
        "/v1.41/volumes/prune?filters={}",
        urlencode(r#"{"all":["true"]}"#)
    );
    assert_eq!(d.curl("POST", &q, None).0, 400, "`all` is a 1.42 filter");
    assert_eq!(d.curl("DELETE", "/v1.50/volumes/api1", None).0, 404);
    assert_eq!(d.curl("DELETE", "/v1.50/volumes/api1?force=1", None).0, 204);
}

fn urlencode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}
