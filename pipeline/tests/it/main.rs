//! Integration tests of the `pipeline` crate, one binary sharing the helpers below.

mod ci;
mod cli;
mod help;
mod init;
mod models;
mod workflows;

use std::path::PathBuf;

/// The workspace root.
pub fn root() -> PathBuf {
    testkit::workspace_root()
}

/// The real MNIST subset shared with the team; `None`, after printing why, when truly absent.
pub fn shared_mnist() -> Option<PathBuf> {
    testkit::shared_mnist()
}

/// A copy of the repo's params.yaml and committed models in a temp dir, so tests never write
/// into the checkout.
pub fn temp_repo() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    std::fs::copy(root().join("params.yaml"), dir.path().join("params.yaml")).unwrap();
    let models = dir.path().join("models");
    std::fs::create_dir_all(&models).unwrap();
    for entry in std::fs::read_dir(root().join("models")).unwrap() {
        let entry = entry.unwrap();
        std::fs::copy(entry.path(), models.join(entry.file_name())).unwrap();
    }
    dir
}
