//! Integration tests of the `pipeline` crate, one binary sharing the helpers below.

mod ci;
mod cli;
mod fetch;
mod idx;
mod init;
mod model;
mod models;
mod preprocess;
mod workflows;

use std::path::{Path, PathBuf};

/// libtorch's random generator is process-wide: tests that seed it take this lock so tests
/// running on other threads do not draw from it in between.
pub static TORCH_RNG: std::sync::Mutex<()> = std::sync::Mutex::new(());

/// The workspace root.
pub fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap().to_path_buf()
}

/// The real MNIST subset shared with the team (`MNIST_DIR`, else `../shared/data/mnist`).
/// Returns `None`, after printing why, only when the data is truly absent.
pub fn shared_mnist() -> Option<PathBuf> {
    let dir = std::env::var_os("MNIST_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| root().parent().unwrap().join("shared/data/mnist"));
    if dir.join("train-images-idx3-ubyte.gz").is_file() {
        Some(dir)
    } else {
        eprintln!("SKIP: no MNIST at {} (set MNIST_DIR to a folder with the four .gz files)", dir.display());
        None
    }
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
