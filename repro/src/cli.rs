//! The `repro`, `status` and `dag` subcommands: clap argument structs and entry points
//! that the `pipeline` binary calls with the repo root.

use std::path::Path;
use std::process::ExitCode;

use crate::error::Result;
use crate::project::{Project, ReproOptions};
use crate::{dag, status};

/// Reproduce the pipeline in dvc.yaml like `dvc repro`, writing a dvc.lock DVC accepts.
#[derive(Clone, Debug, Default, clap::Args)]
pub struct ReproArgs {
    /// Stages to reproduce (with their upstream stages); all stages when none are given.
    pub targets: Vec<String>,
    /// Rerun the stages even if nothing changed.
    #[arg(short, long)]
    pub force: bool,
    /// Reproduce only the named stages, not the stages they depend on.
    #[arg(short, long)]
    pub single_item: bool,
    /// Reproduce the named stages and every stage downstream of them.
    #[arg(long)]
    pub downstream: bool,
    /// Print the commands that would run, without running anything.
    #[arg(long)]
    pub dry: bool,
}

/// Show which stages changed since dvc.lock was written, like `dvc status`.
#[derive(Clone, Debug, Default, clap::Args)]
pub struct StatusArgs {
    /// Print the changes as JSON (the shape of `dvc status --json`).
    #[arg(long)]
    pub json: bool,
    /// Print nothing; exit with 1 when something changed.
    #[arg(short, long)]
    pub quiet: bool,
}

/// Draw the stage graph (ASCII boxes by default).
#[derive(Clone, Debug, Default, clap::Args)]
pub struct DagArgs {
    /// Graphviz dot output.
    #[arg(long, conflicts_with = "mermaid")]
    pub dot: bool,
    /// Mermaid flowchart output.
    #[arg(long)]
    pub mermaid: bool,
}

/// `pipeline repro`.
/// `path` lists folders searched before `PATH` for stage commands.
pub fn repro(root: &Path, args: &ReproArgs, path: &[std::path::PathBuf]) -> Result<ExitCode> {
    let project = Project::open(root)?;
    let opts = ReproOptions {
        targets: args.targets.clone(),
        force: args.force,
        single_item: args.single_item,
        downstream: args.downstream,
        dry: args.dry,
        path: path.to_vec(),
    };
    let report = project.repro(&opts)?;
    if report.ran.is_empty() && report.restored.is_empty() {
        println!("Data and pipelines are up to date.");
    }
    Ok(ExitCode::SUCCESS)
}

/// `pipeline status`.
pub fn status(root: &Path, args: &StatusArgs) -> Result<ExitCode> {
    let st: status::Status = Project::open(root)?.status()?;
    let changed = st.changed().next().is_some();
    if !args.quiet {
        if args.json {
            println!("{}", st.to_json());
        } else {
            print!("{}", st.to_text());
        }
    }
    Ok(if args.quiet && changed { ExitCode::FAILURE } else { ExitCode::SUCCESS })
}

/// `pipeline dag`.
pub fn dag(root: &Path, args: &DagArgs) -> Result<ExitCode> {
    let project = Project::open(root)?;
    let g = project.graph();
    let text = if args.dot {
        dag::dot(g)
    } else if args.mermaid {
        dag::mermaid(g)
    } else {
        dag::ascii(g)
    };
    print!("{text}");
    Ok(ExitCode::SUCCESS)
}
