//! `pipeline init DIR`.

use anyhow::{Context, Result};
use clap::Args;
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(Args)]
pub struct InitArgs {
    /// The folder to scaffold (created when missing; made a git repository when it is not one).
    dir: PathBuf,
    /// Overwrite files that already exist.
    #[arg(long)]
    force: bool,
}

pub fn run(args: InitArgs) -> Result<ExitCode> {
    let files = pipeline::scaffold::init(&args.dir, args.force)
        .with_context(|| format!("scaffolding {}", args.dir.display()))?;
    for f in &files {
        println!("wrote {}", args.dir.join(f).display());
    }
    println!("next: read {}/README.md for the remote, token and trigger to set", args.dir.display());
    Ok(ExitCode::SUCCESS)
}
