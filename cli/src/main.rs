//! `berth`: the command-line client.

mod compose;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// Berth: a container engine and Compose implementation.
#[derive(Parser)]
#[command(name = "berth", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Define and run multi-container applications.
    Compose(compose::ComposeArgs),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Compose(args) => compose::run(args),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("{e:#}");
            ExitCode::FAILURE
        }
    }
}
