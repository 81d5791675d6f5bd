//! Projects large enough to take the parallel paths (scanning on a second thread, per-service
//! interpolation, transform and decoding in chunks) load exactly as small ones do: same order,
//! same warnings, and the error of the first failing service.

use std::path::Path;

use compose_spec::{LoadOptions, load_project};

const N: usize = 1200;

fn services(extra: impl Fn(usize) -> String) -> String {
    let mut text = String::from("services:\n");
    for i in 0..N {
        text.push_str(&format!(
            "  s{i}:\n    image: img${{V{i}}}\n    cpus: \"0.5\"\n    ports:\n      - \"{}:80\"\n    environment:\n      INDEX: \"{i}\"\n{}",
            20000 + i,
            extra(i)
        ));
    }
    text
}

fn load(dir: &Path, text: &str) -> compose_spec::Result<compose_spec::LoadedProject> {
    std::fs::write(dir.join("compose.yaml"), text).unwrap();
    load_project(&LoadOptions {
        cwd: Some(dir.to_path_buf()),
        project_name: Some("big".into()),
        ..LoadOptions::default()
    })
}

#[test]
fn large_projects_keep_order_and_warnings() {
    let d = tempfile::tempdir().unwrap();
    let l = load(d.path(), &services(|_| String::new())).unwrap();
    let names: Vec<&str> = l.project.services.keys().map(String::as_str).collect();
    let want: Vec<String> = (0..N).map(|i| format!("s{i}")).collect();
    assert_eq!(names, want);
    let unset: Vec<&String> = l
        .warnings
        .iter()
        .filter(|w| w.contains("not set"))
        .collect();
    assert_eq!(unset.len(), N);
    for (i, w) in unset.iter().enumerate() {
        assert!(w.contains(&format!("\"V{i}\"")), "{i}: {w}");
    }
    let s = &l.project.services["s1100"];
    assert_eq!(s.name, "s1100");
    assert_eq!(s.image.as_deref(), Some("img"));
    assert_eq!(s.ports[0].published.as_deref(), Some("21100"));
}

#[test]
fn large_projects_report_the_first_failing_service() {
    let d = tempfile::tempdir().unwrap();
    let interp = services(|i| match i {
        700 | 1100 => "    labels:\n      a: ${A:?need A}\n".into(),
        _ => String::new(),
    });
    let err = load(d.path(), &interp).unwrap_err().to_string();
    assert!(err.contains("services.s700.labels.a"), "{err}");
    let decode = services(|i| match i {
        600 | 1000 => "    restart: [no]\n".into(),
        _ => String::new(),
    });
    let err = load(d.path(), &decode).unwrap_err().to_string();
    assert!(err.contains("s600"), "{err}");
    let syntax = format!("{}  bad: [\n", services(|_| String::new()));
    let err = load(d.path(), &syntax).unwrap_err().to_string();
    assert!(err.contains("compose.yaml:"), "{err}");
}
