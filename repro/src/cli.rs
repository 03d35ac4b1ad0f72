//! The `repro`, `status`, `dag`, `push` and `pull` subcommands: clap argument structs and
//! entry points that the `pipeline` binary calls with the repo root.

use std::path::Path;
use std::process::ExitCode;

use crate::error::Result;
use crate::project::{Project, ReproOptions};
use crate::remote::{self, RemoteError, TransferOptions};
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

/// Which remote, and how many transfers at once.
#[derive(Clone, Debug, Default, clap::Args)]
pub struct RemoteArgs {
    /// The remote to use (a name from .dvc/config); the default remote (core.remote) otherwise.
    #[arg(short, long)]
    pub remote: Option<String>,
    /// Parallel transfers (default: the remote's `jobs` option, else 32).
    #[arg(short, long)]
    pub jobs: Option<usize>,
}

/// Upload the cache of every output in dvc.lock and .dvc files to the DVC remote, like `dvc push`.
#[derive(Clone, Debug, Default, clap::Args)]
pub struct PushArgs {
    #[command(flatten)]
    pub remote: RemoteArgs,
}

/// Download the outputs of dvc.lock and .dvc files from the DVC remote and check them out, like `dvc pull`.
#[derive(Clone, Debug, Default, clap::Args)]
pub struct PullArgs {
    #[command(flatten)]
    pub remote: RemoteArgs,
    /// Overwrite workspace files that are not in the cache instead of refusing.
    #[arg(short, long)]
    pub force: bool,
}

impl RemoteArgs {
    fn options(&self) -> TransferOptions {
        TransferOptions { remote: self.remote.clone(), jobs: self.jobs }
    }
}

/// `dvc`'s summary: "3 files pushed", "1 file added and 2 files fetched".
fn summary(counts: &[(usize, &str)]) -> String {
    let parts: Vec<String> = counts
        .iter()
        .filter(|(n, _)| *n > 0)
        .map(|(n, what)| format!("{n} file{} {what}", if *n > 1 { "s" } else { "" }))
        .collect();
    match parts.split_last() {
        None => "Everything is up to date.".into(),
        Some((last, [])) => last.clone(),
        Some((last, rest)) => format!("{} and {last}", rest.join(", ")),
    }
}

/// `pipeline push`.
pub fn push(root: &Path, args: &PushArgs) -> Result<ExitCode, RemoteError> {
    let report = remote::push(root, &args.remote.options())?;
    println!("{}", summary(&[(report.pushed, "pushed")]));
    if !report.missing.is_empty() {
        return Err(RemoteError::MissingLocal { oids: report.missing });
    }
    Ok(ExitCode::SUCCESS)
}

/// `pipeline pull`.
pub fn pull(root: &Path, args: &PullArgs) -> Result<ExitCode, RemoteError> {
    let report = remote::pull(root, &args.remote.options(), args.force)?;
    let c = &report.changes;
    for line in &c.lines {
        println!("{line}");
    }
    println!(
        "{}",
        summary(&[(c.added, "added"), (c.deleted, "deleted"), (c.modified, "modified"), (report.fetched, "fetched")])
    );
    if !report.missing.is_empty() {
        let (remote, url) = report.remote;
        return Err(RemoteError::MissingRemote { remote, url, oids: report.missing });
    }
    if !c.failed.is_empty() {
        return Err(RemoteError::CheckoutFailed { paths: c.failed.clone() });
    }
    Ok(ExitCode::SUCCESS)
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
