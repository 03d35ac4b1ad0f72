//! `pipeline ci run WORKFLOW`: runs a workflow job's `run:` steps on this machine, in order,
//! with `bash -e` like GitHub's runners, evaluating `if:` and `${{ }}` with the expression
//! subset of [`super::expr`]. `uses:` steps (checkout, cache, artifact upload) are GitHub's own
//! actions and are skipped with a note. `PIPELINE_LOCAL_RUNNER=true` is set, so steps that
//! only CI needs (installing the toolchain) can opt out; `GITHUB_OUTPUT`, `GITHUB_PATH` and
//! `GITHUB_STEP_SUMMARY` work as on GitHub.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

use super::CiError;
use super::expr::Context;
use super::workflow::Workflow;

#[derive(Debug, Clone, Default)]
pub struct RunOptions {
    pub workflow: String,
    /// The job to run; default: the workflow's only job.
    pub job: Option<String>,
    pub inputs: BTreeMap<String, String>,
    pub event: String,
    /// List the steps and whether they would run, without running them.
    pub dry: bool,
    /// Folders put first on PATH (where this `pipeline` binary and the stages live).
    pub path: Vec<PathBuf>,
}

/// What happened to one step.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StepReport {
    pub label: String,
    /// The script that ran (after substitution), `None` when the step was skipped.
    pub script: Option<String>,
    pub note: String,
}

pub fn run(repo: &Path, opts: &RunOptions) -> Result<Vec<StepReport>, CiError> {
    let (path, workflow) = Workflow::load(repo, &opts.workflow)?;
    let bad = |what: String| CiError::Workflow { path: path.clone(), what };
    let (job_name, job) = match &opts.job {
        Some(name) => (name.clone(), workflow.jobs.get(name).ok_or_else(|| bad(format!("no job `{name}`")))?.clone()),
        None if workflow.jobs.len() == 1 => {
            workflow.jobs.iter().next().map(|(k, v)| (k.clone(), v.clone())).expect("one job")
        }
        None => return Err(bad(format!("{} jobs; choose one with --job", workflow.jobs.len()))),
    };
    let state = repo.join(".pipeline/ci");
    std::fs::create_dir_all(&state).map_err(|source| CiError::Io { path: state.clone(), source })?;
    let files = ["output", "path", "summary.md"].map(|f| state.join(format!("{}-{job_name}-{f}", opts.workflow)));
    for f in &files {
        std::fs::write(f, "").map_err(|source| CiError::Io { path: f.clone(), source })?;
    }
    let [output_file, path_file, summary_file] = files;
    let mut inputs = workflow.input_defaults();
    inputs.extend(opts.inputs.clone());
    let mut ctx =
        Context { inputs, event_name: opts.event.clone(), workspace: repo.display().to_string(), ..Default::default() };
    ctx.env.insert("PIPELINE_LOCAL_RUNNER".into(), "true".into());
    for (k, v) in workflow.env.iter().chain(&job.env) {
        let value = ctx.substitute(v)?;
        ctx.env.insert(k.clone(), value);
    }

    let mut reports = Vec::new();
    for step in &job.steps {
        let label = step.label();
        let mut note = if opts.dry { "would run".to_string() } else { "ran".to_string() };
        if let Some(cond) = &step.condition
            && !ctx.condition(cond)?
        {
            // A dry run has no step outputs: a step gated on them would run if they were set.
            if !(opts.dry && cond.contains("steps.")) {
                reports.push(StepReport { label, script: None, note: format!("skipped: `{cond}` is false") });
                continue;
            }
            note = format!("would run if `{cond}`");
        }
        let Some(run) = &step.run else {
            let uses = step.uses.clone().unwrap_or_default();
            reports.push(StepReport {
                label,
                script: None,
                note: format!("skipped: `uses: {uses}` is a GitHub-hosted action"),
            });
            continue;
        };
        let script = ctx.substitute(run)?;
        let mut env = ctx.env.clone();
        for (k, v) in &step.env {
            env.insert(k.clone(), ctx.substitute(v)?);
        }
        if !opts.dry {
            eprintln!("::group::{label}");
            std::fs::write(&output_file, "").map_err(|source| CiError::Io { path: output_file.clone(), source })?;
            let extra = std::fs::read_to_string(&path_file).unwrap_or_default();
            let dirs = opts.path.iter().cloned().chain(extra.lines().map(PathBuf::from));
            let search =
                std::env::join_paths(dirs.chain(std::env::split_paths(&std::env::var_os("PATH").unwrap_or_default())))
                    .map_err(|e| bad(e.to_string()))?;
            let status = Command::new("bash")
                .args(["--noprofile", "--norc", "-eo", "pipefail", "-c", &script])
                .current_dir(repo)
                .envs(&env)
                .env("PATH", search)
                .env("GITHUB_OUTPUT", &output_file)
                .env("GITHUB_PATH", &path_file)
                .env("GITHUB_STEP_SUMMARY", &summary_file)
                .env("GITHUB_WORKSPACE", repo)
                .env("GITHUB_EVENT_NAME", &opts.event)
                .status()
                .map_err(|source| CiError::Io { path: repo.to_path_buf(), source })?;
            eprintln!("::endgroup::");
            if !status.success() {
                return Err(CiError::StepFailed { step: label, status: status.to_string() });
            }
            if let Some(id) = &step.id {
                let text = std::fs::read_to_string(&output_file).unwrap_or_default();
                let outputs = text
                    .lines()
                    .filter_map(|l| l.split_once('='))
                    .map(|(k, v)| (k.to_string(), v.to_string()))
                    .collect();
                ctx.outputs.insert(id.clone(), outputs);
            }
        }
        reports.push(StepReport { label, script: Some(script), note });
    }
    Ok(reports)
}
