//! `pipeline init DIR`: the MNIST repo with the embedded base model. With `--dataset` the
//! base model has to be trained, so `pipeline-model` does it (see `super::helper`).

use anyhow::{Context, Result};
use std::process::ExitCode;

use pipeline::cli::InitArgs;
use pipeline::storage::{self, Storage};

pub fn run(args: &InitArgs) -> Result<ExitCode> {
    let files = pipeline::scaffold::init(&args.dir, args.force)
        .with_context(|| format!("scaffolding {}", args.dir.display()))?;
    for f in &files {
        println!("wrote {}", args.dir.join(f).display());
    }
    if args.storage == Storage::Dvc {
        for f in storage::adopt(&args.dir).context("tracking the weights with DVC")? {
            println!("wrote {}", args.dir.join(f).display());
        }
        println!("{}", storage::REMOTE_HINT);
    }
    println!("next: read {}/README.md for the remote, token and trigger to set", args.dir.display());
    Ok(ExitCode::SUCCESS)
}
