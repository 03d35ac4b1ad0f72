//! `pipeline-model`: the commands of `pipeline` that run a model (`data`, `train-base`,
//! `predict`, `init --dataset`, `reference`, `review`), linked with libtorch. `pipeline` checks their arguments and
//! runs this binary with the same ones, as git runs `git-<cmd>`, so the rest of `pipeline`
//! starts without loading libtorch. Their arguments are `pipeline::cli`'s.

mod data;
mod init;
mod predict;
mod reference;
mod review;
mod train;

use clap::Parser;
use std::path::PathBuf;
use std::process::ExitCode;

use pipeline::cli::ModelCommand;
use pipeline::repo::RepoPaths;

#[derive(Parser)]
#[command(name = "pipeline", version, about = "The model commands of `pipeline`, linked with libtorch")]
struct Cli {
    /// The pipeline repository (default: the nearest folder upwards holding params.yaml or dvc.yaml).
    #[arg(long, global = true, env = "PIPELINE_REPO")]
    repo: Option<PathBuf>,
    #[command(subcommand)]
    command: ModelCommand,
}

fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "warn".into()))
        .with_writer(std::io::stderr)
        .init();
    // After the subscriber, so a refused setting is reported.
    model::alloc::keep_freed_memory();
    run(Cli::parse()).unwrap_or_else(|e| {
        eprintln!("error: {}", gitops::cli::error_chain(&*e));
        ExitCode::FAILURE
    })
}

fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    let repo = RepoPaths::new(pipeline::repo::find(cli.repo)?);
    match cli.command {
        ModelCommand::Data(c) => data::run(&repo, c),
        ModelCommand::TrainBase(a) => train::run(&repo, a),
        ModelCommand::Predict(a) => predict::run(&repo, a),
        ModelCommand::Init(a) => init::run(a),
        ModelCommand::Reference(a) => reference::run(&repo, a),
        ModelCommand::Review(a) => review::run(&repo, a),
    }
}
