//! Standalone `repro` binary (the same subcommands `pipeline` mounts), used by the
//! integration tests and the benchmark to run the runner as its own process.

use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// Run dvc.yaml pipelines with a dvc.lock and cache that DVC accepts.
#[derive(Parser)]
#[command(version)]
struct Cli {
    /// The repo root, where dvc.yaml lives.
    #[arg(short = 'C', long, default_value = ".")]
    root: std::path::PathBuf,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    Repro(repro::cli::ReproArgs),
    Status(repro::cli::StatusArgs),
    Dag(repro::cli::DagArgs),
    Push(repro::cli::PushArgs),
    Pull(repro::cli::PullArgs),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match &cli.command {
        Command::Repro(a) => repro::cli::repro(&cli.root, a, &[]),
        Command::Status(a) => repro::cli::status(&cli.root, a),
        Command::Dag(a) => repro::cli::dag(&cli.root, a),
        Command::Push(a) => return failed(repro::cli::push(&cli.root, a)),
        Command::Pull(a) => return failed(repro::cli::pull(&cli.root, a)),
    };
    result.unwrap_or_else(|e| {
        eprintln!("ERROR: {e}");
        ExitCode::from(if matches!(e, repro::Error::Interrupted(_)) { 130 } else { 1 })
    })
}

/// The exit code of a push or pull, printing its error.
fn failed(result: Result<ExitCode, repro::remote::RemoteError>) -> ExitCode {
    result.unwrap_or_else(|e| {
        eprintln!("ERROR: {e}");
        ExitCode::FAILURE
    })
}
