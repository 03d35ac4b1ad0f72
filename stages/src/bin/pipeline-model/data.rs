//! `pipeline data fetch`.

use anyhow::{Context, Result};
use std::path::PathBuf;
use std::process::ExitCode;

use model::data::fetch::{self, Source};
use model::data::{Mnist, PIXELS, SIDE, Split};
use model::preprocess;
use pipeline::cli::{DataCommand, SplitArg};
use pipeline::repo::RepoPaths;
use stages::augment::{Transform, affine};

pub fn run(repo: &RepoPaths, command: DataCommand) -> Result<ExitCode> {
    match command {
        DataCommand::Fetch { from, to } => fetch(repo, from, to),
        DataCommand::Export { count, split, out, data, skip, rotate } => {
            export(repo, ExportArgs { count, split, out, data, skip, rotate })
        }
    }
}

struct ExportArgs {
    count: usize,
    split: SplitArg,
    out: PathBuf,
    data: Option<PathBuf>,
    skip: usize,
    rotate: f64,
}

fn export(repo: &RepoPaths, a: ExportArgs) -> Result<ExitCode> {
    let (count, out) = (a.count, a.out.as_path());
    let dir = match a.data {
        Some(dir) => dir,
        None => stages::base::data_dir(repo)?,
    };
    let split = match a.split {
        SplitArg::Train => Split::Train,
        SplitArg::Test => Split::Test,
    };
    let set = Mnist::load(&dir, split)?;
    std::fs::create_dir_all(out).with_context(|| format!("creating {}", out.display()))?;
    let range = a.skip.min(set.len())..(a.skip + count).min(set.len());
    for i in range.clone() {
        let path = out.join(format!("{i:04}_{}.png", set.labels[i]));
        let raw: [u8; PIXELS] = set.image(i).try_into().expect("28x28");
        let turn = Transform { angle: a.rotate.to_radians(), scale: 1.0, shear: 0.0, tx: 0.0, ty: 0.0 };
        let pixels = if a.rotate == 0.0 { raw.to_vec() } else { affine(&raw, (SIDE, SIDE), turn, false) };
        preprocess::mnist_image(&pixels).save(&path).with_context(|| format!("writing {}", path.display()))?;
    }
    println!("wrote {} digits to {}", range.len(), out.display());
    Ok(ExitCode::SUCCESS)
}

/// The base dataset, then (`storage: dvc`) the sealed feedback sub_sets' samples.
fn fetch(repo: &RepoPaths, from: Option<PathBuf>, to: Option<PathBuf>) -> Result<ExitCode> {
    fetch_base(repo, from, to)?;
    let folders = pipeline::storage::fetch_feedback(&repo.root).context("fetching the sealed feedback samples")?;
    if folders > 0 {
        println!("ok {folders} sealed feedback folders from the DVC cache or remote");
    }
    Ok(ExitCode::SUCCESS)
}

fn fetch_base(repo: &RepoPaths, from: Option<PathBuf>, to: Option<PathBuf>) -> Result<()> {
    let dest = match to {
        Some(dir) => dir,
        None => stages::base::data_dir(repo)?,
    };
    let task = gitops::params::task(&repo.params())?;
    if task != gitops::task::Task::default() {
        // Another task than MNIST: its base dataset is the team's own. Nothing is downloaded or
        // copied, whatever `--from` or `MNIST_DIR` say: `data/<name>` may link to their folder.
        if let Some(from) = &from {
            eprintln!("note: not copying MNIST from {}: this repo's task is {}", from.display(), task.name);
        }
        let data: gitops::params::DataParams = gitops::params::section(&repo.params(), "data")?;
        let dataset = model::data::open_for(&dest, data.test_share, &task).with_context(|| {
            format!(
                "the {} task's base dataset is not at {}: put it there (or link it), or `pipeline pull` it from the DVC remote",
                task.name,
                dest.display()
            )
        })?;
        println!("ok {}", dataset.describe());
        return Ok(());
    }
    let source = from.map_or(Source::Mirrors, Source::Dir);
    let files = fetch::fetch(&source, &dest).with_context(|| format!("fetching MNIST into {}", dest.display()))?;
    for file in files {
        println!("ok {}", file.display());
    }
    Ok(())
}
