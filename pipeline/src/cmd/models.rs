//! `pipeline models list | rollback VERSION | pin VERSION | unpin VERSION`.

use anyhow::Result;
use clap::Subcommand;
use std::process::ExitCode;

use gitops::model_file::ModelFile;
use pipeline::registry::Registry;
use pipeline::release;
use pipeline::repo::RepoPaths;

#[derive(Subcommand)]
pub enum ModelsCommand {
    /// The versions in models/, newest last, with accuracy, parent and which one serves.
    List {
        #[arg(long)]
        json: bool,
    },
    /// Serve an earlier version: a commit moving models/registry.json, which every server
    /// following git picks up.
    Rollback {
        version: String,
        #[arg(long, default_value = "rolled back with `pipeline models rollback`")]
        reason: String,
    },
    /// Keep a version through pruning.
    Pin { version: String },
    /// Let pruning remove a version again.
    Unpin { version: String },
}

pub fn run(repo: &RepoPaths, command: ModelsCommand) -> Result<ExitCode> {
    match command {
        ModelsCommand::List { json } => list(repo, json),
        ModelsCommand::Rollback { version, reason } => {
            release::rollback(&repo.root, &version, &reason)?;
            println!("now serving {version}");
            Ok(ExitCode::SUCCESS)
        }
        ModelsCommand::Pin { version } => pinned(repo, &version, true),
        ModelsCommand::Unpin { version } => pinned(repo, &version, false),
    }
}

fn pinned(repo: &RepoPaths, version: &str, pin: bool) -> Result<ExitCode> {
    let registry = release::pin(&repo.root, version, pin)?;
    println!("pinned: {:?}", registry.pinned);
    Ok(ExitCode::SUCCESS)
}

fn list(repo: &RepoPaths, json: bool) -> Result<ExitCode> {
    let models = repo.models();
    let registry = Registry::load(&models)?;
    let mut rows = Vec::new();
    for file in ModelFile::list(&models)? {
        let sidecar = file.read_sidecar()?;
        rows.push(serde_json::json!({
            "version": file.version,
            "created_at": sidecar.created_at,
            "parent": sidecar.parent,
            "base_test_accuracy": sidecar.metrics.get("base_test_accuracy"),
            "feedback_accuracy": sidecar.metrics.get("feedback_accuracy"),
            "serving": registry.serving == file.version,
            "pinned": registry.pinned.contains(&file.version),
        }));
    }
    if json {
        println!("{}", serde_json::to_string_pretty(&rows)?);
        return Ok(ExitCode::SUCCESS);
    }
    println!("{:<2} {:<24} {:>9} {:>9}  parent", "", "version", "base acc", "feedback");
    for r in &rows {
        let pct = |v: &serde_json::Value| v.as_f64().map_or("-".to_string(), |a| format!("{:.2}%", 100.0 * a));
        let mark = match (r["serving"].as_bool(), r["pinned"].as_bool()) {
            (Some(true), _) => "*",
            (_, Some(true)) => "p",
            _ => "",
        };
        println!(
            "{mark:<2} {:<24} {:>9} {:>9}  {}",
            r["version"].as_str().unwrap_or_default(),
            pct(&r["base_test_accuracy"]),
            pct(&r["feedback_accuracy"]),
            r["parent"].as_str().unwrap_or("-")
        );
    }
    println!("(* serving, p pinned)");
    Ok(ExitCode::SUCCESS)
}
