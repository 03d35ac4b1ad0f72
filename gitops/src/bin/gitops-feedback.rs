//! Stand-alone `feedback` / `fsck` commands (the `pipeline` binary embeds the same ones).

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use gitops::cli::{FeedbackCommand, FsckArgs};

#[derive(Debug, Parser)]
#[command(about = "Feedback store commands of the MNIST pipeline")]
struct Cli {
    /// Repository root (holds params.yaml and new_data/).
    #[arg(long, default_value = ".")]
    repo: PathBuf,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    #[command(subcommand)]
    Feedback(FeedbackCommand),
    Fsck(FsckArgs),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Feedback(command) => command.run(&cli.repo),
        Command::Fsck(args) => args.run(&cli.repo),
    };
    result.unwrap_or_else(|e| {
        eprintln!("error: {}", gitops::cli::error_chain(&e));
        ExitCode::FAILURE
    })
}
