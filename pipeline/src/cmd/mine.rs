//! `pipeline mine`: predictions from the model server's log worth a person's review (for a
//! tabular task, with the rows themselves).

use anyhow::{Context, Result};
use clap::Args;
use std::path::PathBuf;
use std::process::ExitCode;

use pipeline::predlog;
use pipeline::repo::RepoPaths;

#[derive(Args)]
pub struct MineArgs {
    /// List predictions with a confidence below this (0-1).
    #[arg(long, default_value_t = 0.6)]
    below: f32,
    /// The prediction log folder (default: .pipeline/predictions in the repo, where
    /// `model-server` writes it).
    #[arg(long)]
    log: Option<PathBuf>,
    /// Show at most this many rows, newest first.
    #[arg(long, default_value_t = 50)]
    limit: usize,
    /// One JSON object per row instead of a table.
    #[arg(long)]
    json: bool,
}

pub fn run(repo: &RepoPaths, args: MineArgs) -> Result<ExitCode> {
    let dir = args.log.unwrap_or_else(|| repo.root.join(predlog::DIR));
    let log = predlog::read(&dir).with_context(|| format!("reading the prediction log in {}", dir.display()))?;
    let found = predlog::mine(log, args.below)?;
    let shown = found.head(Some(args.limit));
    if args.json {
        for row in 0..shown.height() {
            let mut line = serde_json::Map::new();
            for column in shown.columns() {
                let value = column.get(row)?;
                line.insert(column.name().to_string(), any_to_json(&value));
            }
            println!("{}", serde_json::Value::Object(line));
        }
    } else {
        println!(
            "{} of {} predictions to review (confidence below {}, or marked wrong)",
            shown.height(),
            found.height(),
            args.below
        );
        if shown.height() > 0 {
            println!("{shown}");
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn any_to_json(value: &polars::prelude::AnyValue<'_>) -> serde_json::Value {
    use polars::prelude::AnyValue;
    match value {
        AnyValue::Null => serde_json::Value::Null,
        AnyValue::UInt32(v) => (*v).into(),
        AnyValue::Float32(v) => serde_json::Number::from_f64(f64::from(*v)).map_or(serde_json::Value::Null, Into::into),
        AnyValue::String(s) => (*s).into(),
        AnyValue::StringOwned(s) => s.as_str().into(),
        other => other.to_string().into(),
    }
}
