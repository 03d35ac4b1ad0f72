//! Temp git repositories: a bare remote and clones of it.

use std::path::{Path, PathBuf};

use git2::{Repository, RepositoryInitOptions, Signature};
use gitops::params::GitParams;
use tempfile::TempDir;

/// A bare remote with one commit on `main` (params.yaml, .gitignore).
pub struct Remote {
    pub dir: TempDir,
    threshold: u32,
}

impl Remote {
    pub fn new(threshold: u32) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let bare = dir.path().join("remote.git");
        let mut opts = RepositoryInitOptions::new();
        opts.bare(true).initial_head("main");
        Repository::init_opts(&bare, &opts).unwrap();
        let seed = dir.path().join("seed");
        let mut opts = RepositoryInitOptions::new();
        opts.initial_head("main");
        let repo = Repository::init_opts(&seed, &opts).unwrap();
        crate::support::write_params(&seed, threshold);
        std::fs::write(seed.join(".gitignore"), "/.pipeline/\n").unwrap();
        let mut index = repo.index().unwrap();
        index.add_all(["*"], git2::IndexAddOption::DEFAULT, None).unwrap();
        index.write().unwrap();
        let tree = repo.find_tree(index.write_tree().unwrap()).unwrap();
        let sig = Signature::now("test", "test@localhost").unwrap();
        repo.commit(Some("HEAD"), &sig, &sig, "init", &tree, &[]).unwrap();
        repo.remote("origin", bare.to_str().unwrap()).unwrap();
        repo.find_remote("origin").unwrap().push(&["refs/heads/main:refs/heads/main"], None).unwrap();
        Self { dir, threshold }
    }

    pub fn path(&self) -> PathBuf {
        self.dir.path().join("remote.git")
    }

    /// A new clone under the remote's temp dir.
    pub fn clone(&self, name: &str) -> PathBuf {
        let path = self.dir.path().join(name);
        let repo = Repository::clone(self.path().to_str().unwrap(), &path).unwrap();
        let mut config = repo.config().unwrap();
        config.set_str("user.name", name).unwrap();
        config.set_str("user.email", "test@localhost").unwrap();
        let params = std::fs::read_to_string(path.join("params.yaml")).unwrap();
        assert!(params.contains(&format!("threshold: {}", self.threshold)));
        path
    }
}

pub fn git_params() -> GitParams {
    GitParams { backoff_ms: 10, push_attempts: 20, ..GitParams::default() }
}

/// Paths of all files in the tree of `refname` in the repository at `repo`.
pub fn tree_files(repo: &Path, refname: &str) -> Vec<String> {
    let repo = Repository::open(repo).unwrap();
    let tree = repo.revparse_single(refname).unwrap().peel_to_tree().unwrap();
    let mut out = Vec::new();
    tree.walk(git2::TreeWalkMode::PreOrder, |dir, entry| {
        if entry.kind() == Some(git2::ObjectType::Blob) {
            out.push(format!("{dir}{}", entry.name().unwrap()));
        }
        git2::TreeWalkResult::Ok
    })
    .unwrap();
    out
}

/// The `count.json` in the tree of `refname`.
pub fn count_at(repo: &Path, refname: &str) -> serde_json::Value {
    let repo = Repository::open(repo).unwrap();
    let obj = repo.revparse_single(&format!("{refname}:new_data/count.json")).unwrap();
    serde_json::from_slice(obj.peel_to_blob().unwrap().content()).unwrap()
}

pub fn commit_count(repo: &Path) -> usize {
    let repo = Repository::open(repo).unwrap();
    let mut walk = repo.revwalk().unwrap();
    walk.push_head().unwrap();
    walk.count()
}
