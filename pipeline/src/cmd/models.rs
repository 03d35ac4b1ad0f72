//! `pipeline models list | rollback VERSION | pin VERSION | unpin VERSION | shadow VERSION |
//! promote-shadow --server URL`.

use anyhow::{Context, Result, bail};
use clap::Subcommand;
use std::process::ExitCode;

use gitops::model_file::ModelFile;
use pipeline::registry::Registry;
use pipeline::release;
use pipeline::repo::RepoPaths;
use pipeline::shadow::{ShadowGate, ShadowStats};

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
    /// Run a version in shadow beside the serving one (servers classify a share of live
    /// requests with it, never answering), or end the shadow with --end: a commit servers follow.
    Shadow {
        /// The version (model_<ts>) in models/.
        #[arg(required_unless_present = "end", conflicts_with = "end")]
        version: Option<String>,
        /// End the shadow instead.
        #[arg(long)]
        end: bool,
        /// Why, for the registry's history and the commit.
        #[arg(long, default_value = "set with `pipeline models shadow`")]
        reason: String,
    },
    /// Serve the shadow version when a model server's figures for it pass the gate (its `GET
    /// /models`); otherwise say why and change nothing (exit code 1).
    PromoteShadow {
        /// The model server to read the figures from, e.g. http://127.0.0.1:8000.
        #[arg(long)]
        server: String,
        #[command(flatten)]
        gate: ShadowGate,
    },
}

pub fn run(repo: &RepoPaths, command: ModelsCommand) -> Result<ExitCode> {
    match command {
        ModelsCommand::List { json } => list(repo, json),
        ModelsCommand::Rollback { version, reason } => {
            release::rollback(&repo.root, &version, &reason)?;
            println!("now serving {version}");
            Ok(ExitCode::SUCCESS)
        }
        ModelsCommand::Shadow { version, reason, .. } => {
            let registry = release::shadow(&repo.root, version.as_deref(), &reason)?;
            match registry.shadow {
                Some(v) => println!("{v} runs in shadow beside {}", registry.serving),
                None => println!("no shadow; {} serves", registry.serving),
            }
            Ok(ExitCode::SUCCESS)
        }
        ModelsCommand::PromoteShadow { server, gate } => promote_shadow(repo, &server, &gate),
        ModelsCommand::Pin { version } => pinned(repo, &version, true),
        ModelsCommand::Unpin { version } => pinned(repo, &version, false),
    }
}

fn promote_shadow(repo: &RepoPaths, server: &str, gate: &ShadowGate) -> Result<ExitCode> {
    let shadow =
        Registry::load(&repo.models())?.shadow.context("no version runs in shadow (pipeline models shadow VERSION)")?;
    let url = format!("{}/models", server.trim_end_matches('/'));
    let body = ureq::get(&url)
        .call()
        .and_then(|mut r| r.body_mut().read_to_string())
        .with_context(|| format!("reading the shadow's figures from {url}"))?;
    let models: serde_json::Value = serde_json::from_str(&body).with_context(|| format!("{url}: not JSON"))?;
    let stats: Option<ShadowStats> = serde_json::from_value(models["shadow"].clone())
        .with_context(|| format!("{url}: `shadow` is not a shadow's figures"))?;
    let stats = stats.with_context(|| format!("{url}: the server runs no shadow model yet"))?;
    if stats.version != shadow {
        bail!(
            "{url} shadows {}, but the registry's shadow is {shadow}: wait for the server to follow git",
            stats.version
        );
    }
    let (passed, reasons) = gate.judge(&stats);
    for reason in &reasons {
        println!("  {reason}");
    }
    if !passed {
        println!("{shadow} stays in shadow");
        return Ok(ExitCode::FAILURE);
    }
    let registry =
        release::promote_shadow(&repo.root, &format!("shadow evidence from {server}: {}", reasons.join("; ")))?;
    println!("now serving {}", registry.serving);
    Ok(ExitCode::SUCCESS)
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
            "shadow": registry.shadow.as_deref() == Some(file.version.as_str()),
        }));
    }
    if json {
        println!("{}", serde_json::to_string_pretty(&rows)?);
        return Ok(ExitCode::SUCCESS);
    }
    println!("{:<2} {:<24} {:>9} {:>9}  parent", "", "version", "base acc", "feedback");
    for r in &rows {
        let pct = |v: &serde_json::Value| v.as_f64().map_or("-".to_string(), |a| format!("{:.2}%", 100.0 * a));
        let mark = match (r["serving"].as_bool(), r["shadow"].as_bool(), r["pinned"].as_bool()) {
            (Some(true), _, _) => "*",
            (_, Some(true), _) => "s",
            (_, _, Some(true)) => "p",
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
    println!("(* serving, s in shadow, p pinned)");
    Ok(ExitCode::SUCCESS)
}
