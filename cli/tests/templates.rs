//! `berth inspect -f` and `--format` with Go templates against a private berthd.

mod common;

use common::{BASE_IMAGE, Daemon, err};

#[test]
fn inspect_and_ps_templates() {
    let d = Daemon::start();
    let id = d.ok(&[
        "create", "--name", "tpl", "-l", "b=2", "-l", "a=1", BASE_IMAGE, "true",
    ]);
    let id = id.trim();
    let f = |t: &str| d.ok(&["inspect", "-f", t, "tpl"]);
    assert_eq!(
        f(r#"{{range $k, $v := .Config.Labels}}{{$k}}={{$v}}{{"\n"}}{{end}}"#),
        "a=1\nb=2\n\n"
    );
    assert_eq!(f("{{if .State.Running}}up{{else}}down{{end}}"), "down\n");
    assert_eq!(
        f(r#"{{index .Config.Labels "b"}} {{.Name | upper}}"#),
        "2 /TPL\n"
    );
    assert_eq!(
        f("{{len .Config.Cmd}} {{join .Config.Cmd \",\"}}"),
        "1 true\n"
    );
    let rows = d.ok(&["ps", "-a", "--format", r#"{{.Names}} {{.Label "a"}}"#]);
    assert_eq!(rows, "tpl 1\n");
    let bad = d.berth(&["inspect", "-f", "{{.Name}", "tpl"]);
    assert_eq!(bad.status.code(), Some(64));
    assert!(
        err(&bad).contains(r#"template parsing error: template: :1: unexpected "}" in operand"#),
        "{}",
        err(&bad)
    );
    d.ok(&["rm", id]);
}
