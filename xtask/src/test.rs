//! `cargo xtask test`, the README's test command: set up libtorch and MNIST, check formatting
//! and clippy, then run every test of the workspace with skipping forbidden (a test whose data
//! or tool is missing fails, naming it), and end with one line `N passed, N failed, N skipped`.
//! Tests that need outside tools (DVC, actionlint, chromium, promtool) install or locate them.

use anyhow::{Context, Result, bail};
use std::ffi::OsString;
use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Command, Stdio};

use crate::{demo, setup};
use testkit::require::{SKIP_LOG_VAR, STRICT_VAR};

pub fn run(extra: &[String]) -> Result<()> {
    setup::run()?;
    let root = setup::repo_root();
    let mnist = match demo::local_mnist(&root) {
        Some(dir) => dir,
        None => demo::fetch_mnist(&root)?,
    };
    tidy(&root)?;
    let skip_log = tempfile::NamedTempFile::new().context("creating the skip log")?;
    let env: Vec<(&str, OsString)> = vec![
        ("MNIST_DIR", mnist.into_os_string()),
        (STRICT_VAR, "1".into()),
        (SKIP_LOG_VAR, skip_log.path().as_os_str().to_owned()),
    ];
    let mut args = vec!["test", "--workspace", "--no-fail-fast"];
    args.extend(extra.iter().map(String::as_str));
    let (counts, status) = run_counting(&root, &args, &env)?;
    let logged = std::fs::read_to_string(skip_log.path()).context("reading the skip log")?;
    let skipped = counts.ignored + logged.lines().count();
    println!("{} passed, {} failed, {skipped} skipped", counts.passed, counts.failed);
    if !status.success() || counts.failed > 0 {
        bail!("cargo {} failed ({status})", args.join(" "));
    }
    if skipped > 0 {
        bail!("{skipped} tests were skipped; every test must run here:\n{logged}");
    }
    Ok(())
}

/// The tidy gate: `cargo fmt --check` against the committed rustfmt.toml, then clippy on every
/// target with warnings as errors. (The tidy *test*, `xtask/tests/tidy.rs`, runs with the tests.)
fn tidy(root: &Path) -> Result<()> {
    demo::cargo(root, &["fmt", "--all", "--check"], &[]).context("formatting differs: run `cargo fmt --all`")?;
    demo::cargo(root, &["clippy", "--workspace", "--all-targets", "--quiet", "--", "-D", "warnings"], &[])
}

/// Sums of libtest's `test result:` lines.
#[derive(Default)]
struct Counts {
    passed: usize,
    failed: usize,
    ignored: usize,
}

/// Runs cargo, passing its output through, and sums every test binary's result line.
fn run_counting(root: &Path, args: &[&str], env: &[(&str, OsString)]) -> Result<(Counts, std::process::ExitStatus)> {
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let mut child = Command::new(cargo)
        .args(args)
        .envs(env.iter().map(|(k, v)| (k, v)))
        .current_dir(root)
        .stdout(Stdio::piped())
        .spawn()
        .context("running cargo")?;
    let mut counts = Counts::default();
    for line in BufReader::new(child.stdout.take().context("cargo's stdout")?).lines() {
        let line = line.context("reading cargo's output")?;
        println!("{line}");
        if let Some(result) = line.strip_prefix("test result: ") {
            for part in result.split([';', '.']) {
                let mut words = part.split_whitespace();
                let (Some(n), Some(what)) = (words.next().and_then(|n| n.parse::<usize>().ok()), words.next()) else {
                    continue;
                };
                match what {
                    "passed" => counts.passed += n,
                    "failed" => counts.failed += n,
                    "ignored" => counts.ignored += n,
                    _ => {}
                }
            }
        }
    }
    Ok((counts, child.wait().context("waiting for cargo")?))
}
