//! Runs `pipeline-model` for the commands that touch a model, as git runs `git-<cmd>`: the
//! arguments were already checked against the same definitions (`pipeline::cli`), and the
//! process is replaced, so exit codes, signals and output are the helper's own.

use anyhow::{Result, anyhow};
use std::os::unix::process::CommandExt;
use std::path::PathBuf;

/// The helper's file name.
pub const HELPER: &str = "pipeline-model";

/// Replaces this process with `pipeline-model` and this process's arguments; returns only on
/// failure.
pub fn exec() -> Result<std::process::ExitCode> {
    let helper = locate().ok_or_else(|| {
        anyhow!(
            "{HELPER} is not next to {} nor on PATH: it runs the commands that load a model \
             (data, train-base, predict, init --dataset); build it with `cargo build --bins`",
            std::env::current_exe().map_or_else(|_| "pipeline".into(), |p| p.display().to_string())
        )
    })?;
    let err = std::process::Command::new(&helper).args(std::env::args_os().skip(1)).exec();
    Err(anyhow!("running {}: {err}", helper.display()))
}

/// `pipeline-model` next to this executable (where cargo and the container image put it),
/// else the first on PATH.
fn locate() -> Option<PathBuf> {
    let beside = super::stage_bin_dirs().into_iter().map(|dir| dir.join(HELPER));
    let on_path = std::env::var_os("PATH")
        .into_iter()
        .flat_map(|path| std::env::split_paths(&path).map(|dir| dir.join(HELPER)).collect::<Vec<_>>());
    beside.chain(on_path).find(|p| p.is_file())
}
