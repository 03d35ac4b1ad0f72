//! Subcommands of `pipeline`; each module parses its arguments and calls the library. The
//! commands that run a model are `pipeline-model`'s ([`helper`]); their arguments are parsed
//! here too (`pipeline::cli`), so `--help` and argument errors come without libtorch.

mod ci;
mod helper;
mod init;
mod mine;
mod models;

use anyhow::Result;
use clap::{Parser, Subcommand};
use std::path::PathBuf;
use std::process::ExitCode;

use pipeline::cli;
use pipeline::repo::RepoPaths;

#[derive(Parser)]
#[command(
    name = "pipeline",
    version,
    about = "GitOps batch retraining for image classifiers: data, training, feedback, the retrain DAG and the model registry"
)]
struct Cli {
    /// The pipeline repository (default: the nearest folder upwards holding params.yaml or dvc.yaml).
    #[arg(long, global = true, env = "PIPELINE_REPO")]
    repo: Option<PathBuf>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// `data`, `train-base`, `predict`, `init`: `pipeline-model`'s, but for plain `init`.
    #[command(flatten)]
    Model(cli::ModelCommand),
    /// List predictions worth a review: low confidence, or later marked wrong by feedback.
    Mine(mine::MineArgs),
    /// Run the repo's GitHub Actions workflows on this machine, and the retrain's last steps.
    #[command(subcommand)]
    Ci(ci::CiCommand),
    /// List, roll back and pin model versions.
    #[command(subcommand)]
    Models(models::ModelsCommand),
    /// Store user feedback in new_data/ (committed and pushed), and see where it stands.
    #[command(subcommand)]
    Feedback(gitops::cli::FeedbackCommand),
    /// Check new_data/count.json against the files, and repair it.
    Fsck(gitops::cli::FsckArgs),
    /// Run the stages of dvc.yaml whose inputs changed, like `dvc repro`.
    Repro(repro::cli::ReproArgs),
    /// Show which stages of dvc.yaml are out of date, like `dvc status`.
    Status(repro::cli::StatusArgs),
    /// Draw the stage graph of dvc.yaml, like `dvc dag`.
    Dag(repro::cli::DagArgs),
    /// Upload the cached outputs of dvc.lock and .dvc files to the DVC remote, like `dvc push`.
    Push(repro::cli::PushArgs),
    /// Download the outputs of dvc.lock and .dvc files from the DVC remote and check them out, like `dvc pull`.
    Pull(repro::cli::PullArgs),
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
            eprintln!("error: {}", gitops::cli::error_chain(&*e));
            ExitCode::FAILURE
        }
    }
}

fn run(cli: Cli) -> Result<ExitCode> {
    let repo = RepoPaths::new(pipeline::repo::find(cli.repo)?);
    match cli.command {
        Command::Model(cli::ModelCommand::Init(a)) if a.dataset.is_none() && a.example.is_none() => init::run(&a),
        Command::Model(_) => helper::exec(),
        Command::Mine(a) => mine::run(&repo, a),
        Command::Models(c) => models::run(&repo, c),
        Command::Ci(c) => ci::run(&repo, c),
        Command::Feedback(c) => Ok(c.run(&repo.root)?),
        Command::Fsck(a) => Ok(a.run(&repo.root)?),
        Command::Repro(a) => Ok(repro::cli::repro(&repo.root, &a, &stage_bin_dirs())?),
        Command::Status(a) => Ok(repro::cli::status(&repo.root, &a)?),
        Command::Dag(a) => Ok(repro::cli::dag(&repo.root, &a)?),
        Command::Push(a) => Ok(repro::cli::push(&repo.root, &a)?),
        Command::Pull(a) => Ok(repro::cli::pull(&repo.root, &a)?),
    }
}

/// The folder of this executable: the stage binaries are built next to it, so `pipeline
/// repro` finds them without PATH set by hand.
pub(crate) fn stage_bin_dirs() -> Vec<PathBuf> {
    std::env::current_exe().ok().and_then(|exe| exe.parent().map(PathBuf::from)).into_iter().collect()
}
