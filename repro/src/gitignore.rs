//! `.gitignore` entries for cached outputs, written as DVC (scmrepo) writes them:
//! `/name` appended to the `.gitignore` next to the output, unless git already ignores it.

use std::io::Write;
use std::path::Path;
use std::process::{Command, Stdio};

use crate::error::{Error, Result};

/// Makes git ignore the root-relative output `rel` (no-op outside a git repo).
pub fn ignore(root: &Path, rel: &str) -> Result<()> {
    if !root.join(".git").exists() {
        return Ok(());
    }
    let (dir, name) = rel.rsplit_once('/').unwrap_or(("", rel));
    let entry = format!("/{}", escape(name));
    let gitignore = if dir.is_empty() { root.join(".gitignore") } else { root.join(dir).join(".gitignore") };
    let existing = std::fs::read_to_string(&gitignore).unwrap_or_default();
    if existing.lines().any(|l| l == entry) || git_ignores(root, rel) {
        return Ok(());
    }
    let prefix = if existing.is_empty() || existing.ends_with('\n') { "" } else { "\n" };
    let mut f =
        std::fs::OpenOptions::new().create(true).append(true).open(&gitignore).map_err(Error::io(&gitignore))?;
    f.write_all(format!("{prefix}{entry}\n").as_bytes()).map_err(Error::io(&gitignore))
}

fn git_ignores(root: &Path, rel: &str) -> bool {
    Command::new("git")
        .args(["check-ignore", "-q", "--", rel])
        .current_dir(root)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// pathspec's `GitWildMatchPattern.escape`.
fn escape(s: &str) -> String {
    s.chars().fold(String::new(), |mut out, c| {
        if "[]!*#?".contains(c) {
            out.push('\\');
        }
        out.push(c);
        out
    })
}
