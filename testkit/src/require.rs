//! What a test needs from outside the workspace (MNIST, python3, a tool), and what happens when
//! it is missing: under `CI` or `cargo xtask test` the test fails naming the missing thing and
//! the command that provides it; run bare it skips, printed on the terminal (past libtest's
//! capture) and counted in `$GITOPS_TEST_SKIP_LOG` when that is set.

use std::io::Write;

/// Set by `cargo xtask test`, which provides everything a test needs, so nothing may skip.
pub const STRICT_VAR: &str = "GITOPS_TEST_STRICT";
/// A file that `missing` appends one line to per skipped test (`cargo xtask test` counts them).
pub const SKIP_LOG_VAR: &str = "GITOPS_TEST_SKIP_LOG";

/// Whether a missing requirement must fail the test: `CI` is set (and not `false`/`0`), or
/// `cargo xtask test` runs it.
pub fn strict() -> bool {
    let set = |var: &str| std::env::var(var).is_ok_and(|v| !v.is_empty() && v != "0" && v != "false");
    set("CI") || set(STRICT_VAR)
}

/// Reports that `what` is missing and `provide` is the command or setting that provides it.
/// Panics (fails the test) when [`strict`]; otherwise prints `SKIP` and returns, and the caller
/// returns from the test.
#[track_caller]
pub fn missing(what: &str, provide: &str) {
    let test = std::thread::current().name().unwrap_or("a test").to_string();
    if strict() {
        panic!("{what} is missing: {provide} (this run does not allow skipping: CI or cargo xtask test)");
    }
    let line = format!("SKIP {test}: {what} is missing; {provide}");
    // Straight to the terminal's stderr: libtest hides what `eprintln!` prints in a passing test.
    let _ = writeln!(std::io::stderr(), "{line}");
    if let Some(log) = std::env::var_os(SKIP_LOG_VAR) {
        let appended = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&log)
            .and_then(|mut f| f.write_all(format!("{line}\n").as_bytes()));
        if let Err(e) = appended {
            panic!("cannot record the skip in {}: {e}", std::path::Path::new(&log).display());
        }
    }
}

/// `Some(value)` when present, else [`missing`] and `None`.
#[track_caller]
pub fn present<T>(value: Option<T>, what: &str, provide: &str) -> Option<T> {
    if value.is_none() {
        missing(what, provide);
    }
    value
}
