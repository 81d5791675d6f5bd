//! `version`, `info`, `login`, `logout`, `tls init`, and credentials from
//! `~/.docker/config.json`.

use super::format::render_value;
use anyhow::{Context, Result, bail};
use base64::Engine as _;
use berth_client::Client;
use bollard_stubs::models::AuthConfig;
use clap::{Args, Subcommand};
use serde_json::{Value, json};
use std::io::{IsTerminal, Read};
use std::path::PathBuf;

const DEFAULT_REGISTRY: &str = "https://index.docker.io/v1/";

fn config_path() -> PathBuf {
    std::env::var_os("DOCKER_CONFIG")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".docker")))
        .unwrap_or_else(|| PathBuf::from(".docker"))
        .join("config.json")
}

fn read_config() -> Value {
    std::fs::read(config_path())
        .ok()
        .and_then(|b| serde_json::from_slice(&b).ok())
        .unwrap_or_else(|| json!({}))
}

fn write_config(v: &Value) -> Result<()> {
    let p = config_path();
    if let Some(d) = p.parent() {
        std::fs::create_dir_all(d)?;
    }
    let tmp = p.with_extension("json.tmp");
    std::fs::write(&tmp, serde_json::to_vec_pretty(v)?)?;
    std::fs::rename(&tmp, &p).with_context(|| format!("write {}", p.display()))?;
    Ok(())
}

/// The registry part of an image name, as docker finds it (`docker.io` when none).
fn registry_of(image: &str) -> String {
    match image.split_once('/') {
        Some((first, _)) if first.contains(['.', ':']) || first == "localhost" => first.into(),
        _ => DEFAULT_REGISTRY.into(),
    }
}

/// Stored credentials for the registry of `image`.
pub fn auth_for(image: &str) -> Option<AuthConfig> {
    let reg = registry_of(image);
    let cfg = read_config();
    let entry = cfg.get("auths")?.get(&reg)?;
    let raw = entry.get("auth")?.as_str()?;
    let decoded = base64::engine::general_purpose::STANDARD.decode(raw).ok()?;
    let s = String::from_utf8(decoded).ok()?;
    let (u, p) = s.split_once(':')?;
    Some(AuthConfig {
        username: Some(u.into()),
        password: Some(p.into()),
        serveraddress: Some(reg),
    })
}

/// `login` flags.
#[derive(Debug, Args)]
pub struct LoginArgs {
    /// Username.
    #[arg(short, long)]
    username: Option<String>,
    /// Password.
    #[arg(short, long)]
    password: Option<String>,
    /// Take the password from stdin.
    #[arg(long)]
    password_stdin: bool,
    /// SERVER
    server: Option<String>,
}

pub async fn login(c: &Client, a: LoginArgs) -> Result<()> {
    let server = a.server.unwrap_or_else(|| DEFAULT_REGISTRY.into());
    let username = match a.username {
        Some(u) => u,
        None => bail!("Username is required (-u)"),
    };
    let password = if a.password_stdin {
        let mut s = String::new();
        std::io::stdin().read_to_string(&mut s)?;
        s.trim_end_matches(['\n', '\r']).to_string()
    } else {
        match a.password {
            Some(p) => {
                eprintln!(
                    "WARNING! Using --password via the CLI is insecure. Use --password-stdin."
                );
                p
            }
            None => bail!("Password is required (-p or --password-stdin)"),
        }
    };
    let auth = AuthConfig {
        username: Some(username.clone()),
        password: Some(password.clone()),
        serveraddress: Some(server.clone()),
    };
    c.auth(&auth).await?;
    let mut cfg = read_config();
    let encoded =
        base64::engine::general_purpose::STANDARD.encode(format!("{username}:{password}"));
    if let Some(o) = cfg.as_object_mut() {
        let auths = o.entry("auths").or_insert_with(|| json!({}));
        if let Some(m) = auths.as_object_mut() {
            m.insert(server, json!({ "auth": encoded }));
        }
    }
    write_config(&cfg)?;
    println!("Login Succeeded");
    Ok(())
}

/// `logout` arguments.
#[derive(Debug, Args)]
pub struct LogoutArgs {
    /// SERVER
    server: Option<String>,
}

pub fn logout(a: LogoutArgs) -> Result<()> {
    let server = a.server.unwrap_or_else(|| DEFAULT_REGISTRY.into());
    let mut cfg = read_config();
    let removed = cfg
        .get_mut("auths")
        .and_then(Value::as_object_mut)
        .and_then(|m| m.remove(&server))
        .is_some();
    if removed {
        write_config(&cfg)?;
        println!("Removing login credentials for {server}");
    } else {
        println!("Not logged in to {server}");
    }
    Ok(())
}

/// `--format` for `version` and `info`.
#[derive(Debug, Args)]
pub struct FormatArgs {
    /// Format output using a custom template.
    #[arg(short, long)]
    format: Option<String>,
}

pub async fn version(c: &Client, a: FormatArgs) -> Result<()> {
    let client = json!({
        "Version": env!("CARGO_PKG_VERSION"),
        "ApiVersion": "1.50",
        "Os": "linux",
        "Arch": std::env::consts::ARCH,
    });
    let server = c.version().await;
    if let Some(f) = &a.format {
        let server = serde_json::to_value(server?)?;
        println!(
            "{}",
            render_value(f, &json!({"Client": client, "Server": server}))
        );
        return Ok(());
    }
    println!("Client:");
    println!(" Version:           {}", env!("CARGO_PKG_VERSION"));
    println!(
        " API version:       {}",
        c.api_version().await.unwrap_or_else(|_| "1.50".into())
    );
    println!(" OS/Arch:           linux/{}", std::env::consts::ARCH);
    println!();
    let v = server?;
    println!("Server: {}", v.platform.map(|p| p.name).unwrap_or_default());
    println!(" Engine:");
    println!("  Version:          {}", v.version.unwrap_or_default());
    println!(
        "  API version:      {} (minimum version {})",
        v.api_version.unwrap_or_default(),
        v.min_api_version.unwrap_or_default()
    );
    println!(
        "  OS/Arch:          {}/{}",
        v.os.unwrap_or_default(),
        v.arch.unwrap_or_default()
    );
    println!("  Experimental:     {}", v.experimental.unwrap_or(false));
    Ok(())
}

pub async fn info(c: &Client, a: FormatArgs) -> Result<()> {
    let i = c.info().await?;
    if let Some(f) = &a.format {
        println!("{}", render_value(f, &i));
        return Ok(());
    }
    let s = |k: &str| match i.get(k) {
        Some(Value::String(s)) => s.clone(),
        Some(v) => v.to_string(),
        None => String::new(),
    };
    println!("Server:");
    println!(" Containers: {}", s("Containers"));
    println!("  Running: {}", s("ContainersRunning"));
    println!("  Paused: {}", s("ContainersPaused"));
    println!("  Stopped: {}", s("ContainersStopped"));
    println!(" Images: {}", s("Images"));
    println!(" Server Version: {}", s("ServerVersion"));
    println!(" Storage Driver: {}", s("Driver"));
    println!(" Logging Driver: {}", s("LoggingDriver"));
    println!(" Cgroup Driver: {}", s("CgroupDriver"));
    println!(" Cgroup Version: {}", s("CgroupVersion"));
    println!(" Kernel Version: {}", s("KernelVersion"));
    println!(" Operating System: {}", s("OperatingSystem"));
    println!(" OSType: {}", s("OSType"));
    println!(" Architecture: {}", s("Architecture"));
    println!(" CPUs: {}", s("NCPU"));
    println!(
        " Total Memory: {}",
        super::format::human_size(i.get("MemTotal").and_then(Value::as_f64).unwrap_or(0.0))
    );
    println!(" Name: {}", s("Name"));
    println!(" ID: {}", s("ID"));
    println!(" Docker Root Dir: {}", s("DockerRootDir"));
    println!(" Live Restore Enabled: {}", s("LiveRestoreEnabled"));
    Ok(())
}

/// `tls` subcommands.
#[derive(Debug, Subcommand)]
pub enum TlsCommand {
    /// Make a CA, a server certificate and a client certificate in DIR.
    Init(TlsInitArgs),
}

/// `tls init` arguments.
#[derive(Debug, Args)]
pub struct TlsInitArgs {
    /// Host name the daemon is reached by (repeatable).
    #[arg(long)]
    hostname: Vec<String>,
    /// IP address the daemon is reached by (repeatable).
    #[arg(long)]
    ip: Vec<std::net::IpAddr>,
    /// Directory to write ca.pem, ca-key.pem, server-cert.pem, server-key.pem, cert.pem, key.pem.
    dir: PathBuf,
}

pub fn tls(c: TlsCommand) -> Result<()> {
    match c {
        TlsCommand::Init(a) => {
            let f = berth_client::certs::generate(&a.dir, &a.hostname, &a.ip)?;
            println!("CA:     {}", f.ca.display());
            println!(
                "Server: {} {}",
                f.server_cert.display(),
                f.server_key.display()
            );
            println!("Client: {} {}", f.cert.display(), f.key.display());
            if std::io::stdout().is_terminal() {
                println!(
                    "berthd --tlsverify --tlscacert {0}/ca.pem --tlscert {0}/server-cert.pem --tlskey {0}/server-key.pem -H tcp://0.0.0.0:2376",
                    a.dir.display()
                );
            }
            Ok(())
        }
    }
}
