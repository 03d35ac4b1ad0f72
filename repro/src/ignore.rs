//! Which paths DVC skips inside tracked directories: `.git`, `.hg`, `.dvc` and the
//! patterns of `.dvcignore` files (gitignore syntax), the deepest file winning.

use std::path::{Path, PathBuf};

use ignore::gitignore::{Gitignore, GitignoreBuilder};

/// The `.dvcignore` file name.
pub const DVCIGNORE: &str = ".dvcignore";

/// A stack of `.dvcignore` matchers, outermost first.
#[derive(Clone, Default)]
pub struct Ignores {
    matchers: Vec<Gitignore>,
}

impl Ignores {
    /// The matchers of every `.dvcignore` from `root` down to `dir` (inclusive).
    pub fn for_dir(root: &Path, dir: &Path) -> Ignores {
        let mut ig = Ignores::default();
        ig.push_dir(root);
        if let Ok(rel) = dir.strip_prefix(root) {
            let mut cur = root.to_path_buf();
            for comp in rel.components() {
                cur.push(comp);
                ig.push_dir(&cur);
            }
        }
        ig
    }

    /// Adds `dir/.dvcignore` when it exists.
    pub fn push_dir(&mut self, dir: &Path) {
        let file: PathBuf = dir.join(DVCIGNORE);
        if file.is_file() {
            let mut b = GitignoreBuilder::new(dir);
            // A malformed line is skipped, as pathspec does.
            let _ = b.add(&file);
            if let Ok(gi) = b.build()
                && gi.num_ignores() + gi.num_whitelists() > 0
            {
                self.matchers.push(gi);
            }
        }
    }

    /// True when DVC would leave `dir/name` out of a directory listing.
    pub fn is_ignored(&self, dir: &Path, name: &str, is_dir: bool) -> bool {
        if name == ".git" || (is_dir && (name == ".hg" || name == ".dvc")) {
            return true;
        }
        if self.matchers.is_empty() {
            return false;
        }
        let path = dir.join(name);
        for m in self.matchers.iter().rev() {
            let matched = m.matched(&path, is_dir);
            if matched.is_ignore() {
                return true;
            }
            if matched.is_whitelist() {
                return false;
            }
        }
        false
    }
}
