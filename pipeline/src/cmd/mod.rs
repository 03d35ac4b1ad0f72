//! Subcommands of `pipeline`; each module parses its arguments and calls the library.

mod data;
mod predict;
mod train;

use anyhow::Result;
use clap::{Parser, Subcommand};
use std::path::PathBuf;
use std::process::ExitCode;

use pipeline::repo::RepoPaths;

#[derive(Parser)]
#[command(name = "pipeline", version, about = "GitOps batch retraining for digit classifiers: data, training, feedback, the retrain DAG and the model registry")]
struct Cli {
    /// The pipeline repository (default: the nearest folder upwards holding params.yaml or dvc.yaml).
    #[arg(long, global = true, env = "PIPELINE_REPO")]
    repo: Option<PathBuf>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Get the MNIST dataset into data/mnist/.
    #[command(subcommand)]
    Data(data::DataCommand),
    /// Train the CNN from scratch on MNIST and register it for serving.
    TrainBase(train::TrainBaseArgs),
    /// Classify image files with the serving model.
    Predict(predict::PredictArgs),
}

pub fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "warn".into()))
        .with_writer(std::io::stderr)
        .init();
    let cli = Cli::parse();
    match run(cli) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn run(cli: Cli) -> Result<ExitCode> {
    let repo = RepoPaths::new(cli.repo.map_or_else(find_repo, Ok)?);
    match cli.command {
        Command::Data(c) => data::run(&repo, c),
        Command::TrainBase(a) => train::run(&repo, a),
        Command::Predict(a) => predict::run(&repo, a),
    }
}

/// The nearest folder from the current one upwards that holds params.yaml or dvc.yaml.
fn find_repo() -> Result<PathBuf> {
    let cwd = std::env::current_dir()?;
    Ok(cwd
        .ancestors()
        .find(|d| d.join("params.yaml").is_file() || d.join("dvc.yaml").is_file())
        .unwrap_or(&cwd)
        .to_path_buf())
}
