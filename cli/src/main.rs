//! `berth`: the command-line client.

mod compose;
mod engine;
mod swarm;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

// Loading a Compose project allocates many small nodes; mimalloc makes that markedly cheaper
// than glibc's malloc (measured on `compose config` of 5,000 services).
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// Berth: a container engine and Compose implementation.
#[derive(Parser)]
#[command(name = "berth", version, about)]
struct Cli {
    #[command(flatten)]
    conn: engine::ConnArgs,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Define and run multi-container applications.
    Compose(compose::ComposeArgs),
    #[command(flatten)]
    Engine(engine::EngineCommand),
    #[command(flatten)]
    Swarm(swarm::SwarmTop),
}

fn main() -> ExitCode {
    // Die quietly on a closed pipe (`berth ps | head`) as docker does, instead of panicking.
    // SAFETY: setting a signal disposition to SIG_DFL before any thread starts.
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
    }
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Compose(args) => compose::run(args, &cli.conn),
        Command::Engine(cmd) => engine::run(cmd, &cli.conn),
        Command::Swarm(cmd) => swarm::run(cmd, &cli.conn),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            // Container commands exit with docker's codes (125, 126, 127, the container's).
            if let Some(s) = e.downcast_ref::<engine::StatusError>() {
                if !s.message.is_empty() {
                    eprintln!("{}", s.message);
                }
                return ExitCode::from(s.code);
            }
            eprintln!("{}", message(&e));
            ExitCode::FAILURE
        }
    }
}

/// The error and its causes on one line, skipping causes the message already quotes (library
/// errors often include their source's text).
fn message(e: &anyhow::Error) -> String {
    let mut out = e.to_string();
    for cause in e.chain().skip(1) {
        let text = cause.to_string();
        if !out.contains(&text) {
            out.push_str(": ");
            out.push_str(&text);
        }
    }
    out
}
