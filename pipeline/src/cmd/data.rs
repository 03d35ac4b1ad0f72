//! `pipeline data fetch`.

use anyhow::{Context, Result};
use clap::Subcommand;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use pipeline::data::fetch::{self, Source};
use pipeline::data::{Mnist, Split};
use pipeline::preprocess;
use pipeline::repo::RepoPaths;

#[derive(Subcommand)]
pub enum DataCommand {
    /// Copy MNIST from a local folder (checked against its SHA256SUMS) or download it from the
    /// canonical mirrors (checked against the official checksums) into params `data.mnist_dir`.
    Fetch {
        /// A folder holding the four MNIST .gz files.
        #[arg(long, env = "MNIST_DIR")]
        from: Option<PathBuf>,
        /// Where to put the files (default: params.yaml `data.mnist_dir`, i.e. data/mnist).
        #[arg(long)]
        to: Option<PathBuf>,
    },
    /// Write digits of a split as PNG files named `<index>_<label>.png`, to try `predict` on.
    Export {
        #[arg(long, default_value_t = 10)]
        count: usize,
        #[arg(long, value_enum, default_value_t = SplitArg::Test)]
        split: SplitArg,
        #[arg(long)]
        out: PathBuf,
        /// MNIST folder (default: params.yaml `data.mnist_dir`).
        #[arg(long)]
        data: Option<PathBuf>,
    },
}

#[derive(Clone, Copy, clap::ValueEnum)]
pub enum SplitArg {
    Train,
    Test,
}

pub fn run(repo: &RepoPaths, command: DataCommand) -> Result<ExitCode> {
    match command {
        DataCommand::Fetch { from, to } => fetch(repo, from, to),
        DataCommand::Export { count, split, out, data } => export(repo, count, split, &out, data),
    }
}

fn export(repo: &RepoPaths, count: usize, split: SplitArg, out: &Path, data: Option<PathBuf>) -> Result<ExitCode> {
    let dir = match data {
        Some(dir) => dir,
        None => pipeline::base::data_dir(repo)?,
    };
    let split = match split {
        SplitArg::Train => Split::Train,
        SplitArg::Test => Split::Test,
    };
    let set = Mnist::load(&dir, split)?;
    std::fs::create_dir_all(out).with_context(|| format!("creating {}", out.display()))?;
    for i in 0..count.min(set.len()) {
        let path = out.join(format!("{i:04}_{}.png", set.labels[i]));
        preprocess::mnist_image(set.image(i)).save(&path).with_context(|| format!("writing {}", path.display()))?;
    }
    println!("wrote {} digits to {}", count.min(set.len()), out.display());
    Ok(ExitCode::SUCCESS)
}

fn fetch(repo: &RepoPaths, from: Option<PathBuf>, to: Option<PathBuf>) -> Result<ExitCode> {
    let dest = match to {
        Some(dir) => dir,
        None => pipeline::base::data_dir(repo)?,
    };
    let source = from.map_or(Source::Mirrors, Source::Dir);
    let files = fetch::fetch(&source, &dest).with_context(|| format!("fetching MNIST into {}", dest.display()))?;
    for file in files {
        println!("ok {}", file.display());
    }
    Ok(ExitCode::SUCCESS)
}
