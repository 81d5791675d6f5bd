//! compose-go's per-attribute loader inputs (`compose-go-extracted/loader-tests`): every input
//! must load (as the Go tests do: no normalization, no consistency check), print, and read
//! back to the same model from its YAML and JSON output; a hand-ported selection of the Go
//! tests' value assertions is checked on the printed model.

use std::path::{Path, PathBuf};

use compose_spec::loader::{LoadOptions, load};
use compose_spec::model::Project;
use compose_spec::output;
use serde_json::{Value, json};

fn data_dir() -> Option<PathBuf> {
    let p = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../shared/conformance/compose/compose-go-extracted/loader-tests");
    if p.is_dir() {
        Some(p)
    } else {
        println!("conformance data not found at {}; skipping", p.display());
        None
    }
}

fn load_opts(files: Vec<PathBuf>, stdin: Option<String>, cwd: &Path) -> LoadOptions {
    LoadOptions {
        config_files: files,
        stdin,
        cwd: Some(cwd.to_path_buf()),
        normalize: false,
        consistency: false,
        ..LoadOptions::default()
    }
}

fn decode(opts: &LoadOptions) -> Result<Project, String> {
    load(opts).map_err(|e| e.to_string())
}

/// Load the printed form of a project back.
fn reload(text: String, cwd: &Path) -> Result<Project, String> {
    decode(&load_opts(vec![PathBuf::from("-")], Some(text), cwd))
}

/// Every `(file, JSON pointer into the printed model, expected value)` ported from the Go
/// tests' assertions.
fn assertions() -> Vec<(&'static str, &'static str, Value)> {
    vec![
        (
            "ports/TestPortsShortSyntax.yaml",
            "/services/foo/ports/0/target",
            json!(8080),
        ),
        (
            "ports/TestPortsShortSyntax.yaml",
            "/services/foo/ports/0/published",
            json!("80"),
        ),
        (
            "ports/TestPortsShortSyntax.yaml",
            "/services/foo/ports/1/target",
            json!(8090),
        ),
        (
            "ports/TestPortsShortSyntax.yaml",
            "/services/foo/ports/1/protocol",
            json!("udp"),
        ),
        (
            "ports/TestPortsShortSyntax.yaml",
            "/services/foo/ports/2/target",
            json!(8600),
        ),
        (
            "ports/TestPortsLongSyntax.yaml",
            "/services/foo/ports/0/published",
            json!("8080"),
        ),
        (
            "ports/TestPortsLongSyntax.yaml",
            "/services/foo/ports/0/mode",
            json!("host"),
        ),
        (
            "volumes/TestTopLevelVolumes.yaml",
            "/volumes/other-volume/driver_opts",
            json!({"baz": "1", "foo": "bar"}),
        ),
        (
            "volumes/TestTopLevelVolumes.yaml",
            "/volumes/other-external-volume/name",
            json!("my-cool-volume"),
        ),
        (
            "volumes/TestTopLevelVolumes.yaml",
            "/volumes/other-external-volume/external",
            json!(true),
        ),
        (
            "volumes/TestTopLevelVolumes.yaml",
            "/volumes/external-volume3/x-foo",
            json!("bar"),
        ),
        (
            "volumes/TestImageVolume.yaml",
            "/services/foo/volumes/0/type",
            json!("image"),
        ),
        (
            "volumes/TestImageVolume.yaml",
            "/services/foo/volumes/0/source",
            json!("app/image"),
        ),
        (
            "build/TestBuildConfig.yaml",
            "/services/foo/build/args",
            json!({"foo": "bar"}),
        ),
        (
            "build/TestBuildConfig.yaml",
            "/services/foo/build/cache_from",
            json!(["foo", "bar"]),
        ),
        (
            "build/TestBuildSecrets.yaml",
            "/services/foo/build/secrets/1/mode",
            json!("0440"),
        ),
        (
            "depends_on/TestDependsOnObject.yaml",
            "/services/web/depends_on/db",
            json!({"condition": "service_healthy", "restart": true, "required": true}),
        ),
        (
            "depends_on/TestDependsOnList.yaml",
            "/services/web/depends_on/db",
            json!({"condition": "service_started", "required": true}),
        ),
        (
            "environment/TestEnvironmentMap.yaml",
            "/services/foo/environment",
            json!({"BAR": "2", "BU": "", "FOO": "1", "GA": "2.5", "MEU": null, "ZO": null}),
        ),
        (
            "environment/TestEnvironmentBoolean.yaml",
            "/services/foo/environment/FOO",
            json!("true"),
        ),
        (
            "extra_hosts/TestExtraHostsList.yaml",
            "/services/foo/extra_hosts",
            json!(["alpha=50.31.209.229", "zulu=127.0.0.2", "zulu=ff02::1"]),
        ),
        (
            "ulimits/TestUlimits.yaml",
            "/services/foo/ulimits",
            json!({"nofile": {"soft": 20000, "hard": 40000}, "nproc": 65535}),
        ),
        (
            "healthcheck/TestHealthcheck.yaml",
            "/services/foo/healthcheck",
            json!({"test": ["CMD-SHELL", "echo \"hello world\""], "timeout": "1s", "interval": "10s", "retries": 5, "start_period": "15s", "start_interval": "5s"}),
        ),
        (
            "deploy/TestDeployUpdateRollbackConfig.yaml",
            "/services/foo/deploy/update_config/monitor",
            json!("1m0s"),
        ),
        (
            "deploy/TestDeployUpdateRollbackConfig.yaml",
            "/services/foo/deploy/update_config/max_failure_ratio",
            json!(0.3),
        ),
        (
            "deploy/TestDeployResources.yaml",
            "/services/foo/deploy/resources/limits/memory",
            json!("52428800"),
        ),
        (
            "deploy/TestDeployResources.yaml",
            "/services/foo/deploy/resources/limits/cpus",
            json!(0.001),
        ),
        (
            "command/TestCommandString.yaml",
            "/services/foo/command",
            json!(["bundle", "exec", "thin", "-p", "3000"]),
        ),
        (
            "env_file/TestEnvFileLongSyntax.yaml",
            "/services/foo/env_file/0/required",
            json!(false),
        ),
        (
            "secrets/TestServiceSecrets.yaml",
            "/services/foo/secrets/1/uid",
            json!("103"),
        ),
        (
            "secrets/TestServiceSecrets.yaml",
            "/services/foo/secrets/1/mode",
            json!("0440"),
        ),
        (
            "secrets/TestTopLevelSecrets.yaml",
            "/secrets/secret2/name",
            json!("my_secret"),
        ),
        (
            "secrets/TestTopLevelSecrets.yaml",
            "/secrets/secret4/environment",
            json!("BAR"),
        ),
        ("cpu/TestCPUFields.yaml", "/services/foo/cpus", json!(1.5)),
        (
            "cpu/TestCPUFields.yaml",
            "/services/foo/cpu_rt_runtime",
            json!(950000),
        ),
        (
            "cpu/TestMemoryFields.yaml",
            "/services/foo/mem_limit",
            json!("536870912"),
        ),
        (
            "cpu/TestMemoryFields.yaml",
            "/services/foo/shm_size",
            json!("67108864"),
        ),
        (
            "gpus/TestGpusAll.yaml",
            "/services/test/gpus/0/count",
            json!(-1),
        ),
        (
            "stop/TestStopGracePeriod.yaml",
            "/services/foo/stop_grace_period",
            json!("20s"),
        ),
    ]
}

#[test]
fn loader_inputs_load_and_round_trip() {
    let Some(dir) = data_dir() else { return };
    let mut files = Vec::new();
    for attr in std::fs::read_dir(&dir).expect("read dir").flatten() {
        for f in std::fs::read_dir(attr.path()).expect("read dir").flatten() {
            files.push(f.path());
        }
    }
    files.sort();
    let (mut loaded, mut yaml_rt, mut json_rt) = (0, 0, 0);
    let mut failures = Vec::new();
    let mut printed = std::collections::HashMap::new();
    for f in &files {
        let rel = f.strip_prefix(&dir).unwrap_or(f).display().to_string();
        let p = match decode(&load_opts(vec![f.clone()], None, &dir)) {
            Ok(p) => p,
            Err(e) => {
                failures.push(format!("{rel}: {e}"));
                continue;
            }
        };
        loaded += 1;
        let yaml = output::to_yaml(&p).expect("yaml");
        match reload(yaml.clone(), &dir) {
            Ok(back) if back.services == p.services && back.volumes == p.volumes => yaml_rt += 1,
            Ok(_) => failures.push(format!(
                "{rel}: YAML output reads back differently:\n{yaml}"
            )),
            Err(e) => failures.push(format!("{rel}: YAML output does not load: {e}\n{yaml}")),
        }
        let json = output::to_json(&p).expect("json");
        // JSON drops service-level `x-*` keys (as compose-go's does), so compare the JSON.
        match reload(json.clone(), &dir) {
            Ok(back) if output::to_json(&back).ok().as_ref() == Some(&json) => json_rt += 1,
            Ok(_) => failures.push(format!(
                "{rel}: JSON output reads back differently:\n{json}"
            )),
            Err(e) => failures.push(format!("{rel}: JSON output does not load: {e}")),
        }
        printed.insert(rel, output::to_plain_value(&p).expect("value"));
    }
    let checks = assertions();
    let mut asserted = 0;
    for (file, pointer, want) in &checks {
        match printed.get(*file).and_then(|v| v.pointer(pointer)) {
            Some(got) if got == want => asserted += 1,
            Some(got) => failures.push(format!("{file} {pointer}: got {got}, want {want}")),
            None => failures.push(format!("{file} {pointer}: missing, want {want}")),
        }
    }
    for f in &failures {
        println!("FAIL {f}");
    }
    println!(
        "loader-tests: {loaded}/{n} load, {yaml_rt}/{n} YAML round trips, {json_rt}/{n} JSON round trips, {asserted}/{} ported assertions",
        checks.len(),
        n = files.len()
    );
    assert!(failures.is_empty());
}
