//! `pipeline ci run | publish | summary`.

use anyhow::{Context, Result, bail};
use clap::Subcommand;
use std::collections::BTreeMap;
use std::process::ExitCode;

use pipeline::ci::{publish, run, summary};
use pipeline::repo::RepoPaths;

#[derive(Subcommand)]
pub enum CiCommand {
    /// Run a workflow of .github/workflows/ on this machine: its `run:` steps in order, with
    /// `if:` and `${{ }}` evaluated; `uses:` steps are skipped.
    Run {
        /// The workflow's file name without extension, e.g. `retrain`.
        workflow: String,
        /// The job to run; needed only when the workflow has more than one.
        #[arg(long)]
        job: Option<String>,
        /// A workflow_dispatch input, as NAME=VALUE (repeatable).
        #[arg(long = "input", value_name = "NAME=VALUE")]
        inputs: Vec<String>,
        /// The event to pretend triggered the run.
        #[arg(long, default_value = "workflow_dispatch")]
        event: String,
        /// List the steps that would run, with their scripts, and run nothing.
        #[arg(long)]
        dry: bool,
    },
    /// Commit what the retrain changed with `[skip ci]` and push, replaying when the branch moved.
    Publish,
    /// Print the retrain's metrics table and decision as Markdown (for $GITHUB_STEP_SUMMARY).
    Summary,
}

pub fn run(repo: &RepoPaths, command: CiCommand) -> Result<ExitCode> {
    match command {
        CiCommand::Run { workflow, job, inputs, event, dry } => {
            let mut parsed = BTreeMap::new();
            for pair in inputs {
                let Some((k, v)) = pair.split_once('=') else { bail!("--input {pair}: expected NAME=VALUE") };
                parsed.insert(k.to_string(), v.to_string());
            }
            let path = super::stage_bin_dirs();
            let opts = run::RunOptions { workflow: workflow.clone(), job, inputs: parsed, event, dry, path };
            let steps = run::run(&repo.root, &opts).with_context(|| format!("workflow {workflow}"))?;
            for step in steps {
                println!("{:<40} {}", step.label, step.note);
                if dry && let Some(script) = step.script {
                    println!("    {}", script.trim_end().replace('\n', "\n    "));
                }
            }
        }
        CiCommand::Publish => match publish::publish(&repo.root)? {
            Some(outcome) => println!("published: {outcome:?}"),
            None => println!("committed locally (no remote to push to)"),
        },
        CiCommand::Summary => print!("{}", summary::summary(&repo.root)?),
    }
    Ok(ExitCode::SUCCESS)
}
