//! `pipeline feedback status` and `pipeline fsck` output.

use std::path::Path;
use std::process::ExitCode;

use super::{CliError, FsckArgs, StatusArgs};
use crate::feedback::FeedbackStore;
use crate::trigger::{RetrainState, RetrainStatus};

pub(super) fn status(repo_root: &Path, args: &StatusArgs) -> Result<ExitCode, CliError> {
    let store = FeedbackStore::open(repo_root)?;
    let (count, sub_sets) = store.status()?;
    let retrain = RetrainStatus::read(repo_root)?;
    if args.json {
        let value = serde_json::json!({ "count": count, "sub_sets": sub_sets, "retrain": retrain });
        println!("{}", serde_json::to_string_pretty(&value)?);
        return Ok(ExitCode::SUCCESS);
    }
    let unsure_open = sub_sets.iter().find(|s| s.sub_set == count.sub_set_count).map_or(0, |s| s.unsure);
    println!(
        "open sub_set {}: {}/{} counted, {unsure_open} unsure",
        count.sub_set_count, count.current_count, count.threshold
    );
    let pending: Vec<String> = count.pending_retrain.iter().map(u32::to_string).collect();
    println!(
        "sealed sub_sets: {} (waiting for retraining: {})",
        count.sub_set_count,
        if pending.is_empty() { "none".to_string() } else { pending.join(", ") }
    );
    let by_label: Vec<String> = count.totals.by_label.iter().map(|(label, n)| format!("{label}:{n}")).collect();
    println!(
        "totals: {} counted, {} unsure; by label {}",
        count.totals.counted,
        count.totals.unsure,
        by_label.join(" ")
    );
    if retrain.state != RetrainState::Idle {
        let sub_set = retrain.request.as_ref().map_or(String::new(), |r| format!(" sub_set {}", r.sub_set));
        let when = retrain.finished_at.or(retrain.started_at).map_or(String::new(), |t| format!(" at {t}"));
        println!("local retrain: {:?}{sub_set}{when}", retrain.state);
    }
    Ok(ExitCode::SUCCESS)
}

pub(super) fn fsck(repo_root: &Path, args: &FsckArgs) -> Result<ExitCode, CliError> {
    let store = FeedbackStore::open(repo_root)?;
    // Under `storage: dvc`, journal lines of the open sub_set whose sample has not come yet
    // must not read as lost samples (which --repair would drop).
    crate::git::restore_samples(&store).map_err(CliError::Restore)?;
    let report = store.fsck(args.repair)?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        for issue in &report.found {
            let fixed = if report.repaired && !report.remaining.contains(issue) { " [repaired]" } else { "" };
            println!("{:?}: {}: {}{fixed}", issue.kind, issue.path.display(), issue.message);
        }
        let c = &report.count;
        if report.is_consistent() {
            println!(
                "consistent: sub_set {} open with {}/{}, {} counted in all",
                c.sub_set_count, c.current_count, c.threshold, c.totals.counted
            );
        } else {
            let hint = if report.repaired { "" } else { " (run with --repair)" };
            println!("{} issue(s){hint}", report.remaining.len());
        }
    }
    Ok(if report.is_consistent() { ExitCode::SUCCESS } else { ExitCode::from(1) })
}
