//! Helpers shared by the integration tests of every crate: where the team's MNIST subset is,
//! Python tools installed once into cached venvs, and throwaway pipeline repositories (a git
//! checkout with the repo's params.yaml, dvc.yaml and committed models, and a bare origin).
//! [`shapes`] renders a second dataset, colour images of four shapes, for tests beyond MNIST.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Mutex;

pub mod child;
pub mod moto;
pub mod require;
pub mod shapes;
pub mod sklearn;

/// The workspace root.
pub fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().expect("testkit lives in the workspace").to_path_buf()
}

/// The real MNIST subset (`MNIST_DIR`, else `../shared/data/mnist`). `None` only when the data
/// is truly absent and skipping is allowed ([`require::missing`]: under `CI` the test fails).
#[track_caller]
pub fn shared_mnist() -> Option<PathBuf> {
    let dir = std::env::var_os("MNIST_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| workspace_root().parent().expect("a parent").join("shared/data/mnist"));
    let found = dir.join("train-images-idx3-ubyte.gz").is_file() && dir.join("t10k-labels-idx1-ubyte.gz").is_file();
    require::present(
        found.then_some(dir.clone()),
        &format!("MNIST (the four .gz IDX files) at {}", dir.display()),
        "run `cargo xtask test`, which fetches it, or `pipeline data fetch` and set MNIST_DIR to its folder",
    )
}

/// A copy of the workspace's params.yaml and committed models in a temp dir, so tests never
/// write into the checkout.
pub fn temp_repo() -> tempfile::TempDir {
    let root = workspace_root();
    let dir = tempfile::tempdir().expect("a temp dir");
    std::fs::copy(root.join("params.yaml"), dir.path().join("params.yaml")).expect("params.yaml copied");
    let models = dir.path().join("models");
    std::fs::create_dir_all(&models).expect("models/ made");
    for entry in std::fs::read_dir(root.join("models")).expect("the workspace's models/") {
        let entry = entry.expect("a models/ entry");
        std::fs::copy(entry.path(), models.join(entry.file_name())).expect("a model file copied");
    }
    dir
}

/// The cache shared with `cargo xtask setup`.
pub fn cache_root() -> PathBuf {
    std::env::var_os("MNIST_GITOPS_CACHE")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(std::env::var_os("HOME").expect("HOME is set")).join(".cache/mnist-gitops"))
}

/// `bin/<exe>` of a venv named `name` in the cache, created with `pip install packages` on
/// first use. Panics with a clear message when the install fails.
pub fn venv_tool(name: &str, packages: &[&str], exe: &str) -> PathBuf {
    static INSTALLING: Mutex<()> = Mutex::new(());
    let _guard = INSTALLING.lock().unwrap_or_else(|p| p.into_inner());
    let venv = cache_root().join(name);
    let bin = venv.join("bin").join(exe);
    if bin.is_file() {
        return bin;
    }
    eprintln!("installing {packages:?} from PyPI into {} (once)", venv.display());
    std::fs::create_dir_all(cache_root()).expect("create the cache dir");
    run(Command::new("python3").args(["-m", "venv"]).arg(&venv), "python3 -m venv");
    run(Command::new(venv.join("bin/pip")).args(["install", "--quiet"]).args(packages), "pip install");
    assert!(bin.is_file(), "pip install {packages:?} did not create {}", bin.display());
    bin
}

/// Runs a command, panicking with its output when it fails; returns stdout.
pub fn run(cmd: &mut Command, what: &str) -> String {
    let out = cmd.output().unwrap_or_else(|e| panic!("{what}: could not start: {e}"));
    assert!(
        out.status.success(),
        "{what} failed ({}):\n{}{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// A throwaway pipeline repository with a bare `origin`.
pub struct PipelineRepo {
    pub dir: tempfile::TempDir,
    pub origin: tempfile::TempDir,
}

impl PipelineRepo {
    /// Copies the workspace's params.yaml, dvc.yaml, .dvcignore, .dvc/config and models/,
    /// links data/mnist to the shared MNIST (when given), commits, and pushes to a bare origin.
    pub fn new(mnist: Option<&Path>) -> Self {
        let dir = tempfile::tempdir().expect("tempdir");
        let origin = tempfile::tempdir().expect("tempdir");
        let root = workspace_root();
        let path = dir.path();
        for file in [
            "params.yaml",
            "dvc.yaml",
            ".dvcignore",
            ".dvc/config",
            ".dvc/.gitignore",
            "new_data/count.json",
            "new_data/.gitignore",
            ".github/workflows/retrain.yml",
            ".github/workflows/ci.yml",
        ] {
            let to = path.join(file);
            std::fs::create_dir_all(to.parent().expect("a parent")).expect("mkdir");
            std::fs::copy(root.join(file), &to).unwrap_or_else(|e| panic!("copy {file}: {e}"));
        }
        copy_dir(&root.join("models"), &path.join("models"));
        std::fs::write(path.join(".gitignore"), "/data/\n/artifacts/\n/.pipeline/\n").expect("write .gitignore");
        if let Some(mnist) = mnist {
            std::fs::create_dir_all(path.join("data")).expect("mkdir data");
            std::os::unix::fs::symlink(mnist, path.join("data/mnist")).expect("link data/mnist");
        }
        run(Command::new("git").args(["init", "-q", "--bare", "-b", "main"]).arg(origin.path()), "git init --bare");
        let repo = Self { dir, origin };
        repo.git(&["init", "-q", "-b", "main"]);
        repo.git(&["config", "user.name", "Test"]);
        repo.git(&["config", "user.email", "test@example.com"]);
        repo.git(&["add", "-A"]);
        repo.git(&["commit", "-q", "-m", "pipeline repo"]);
        repo.git(&["remote", "add", "origin", repo.origin.path().to_str().expect("utf-8 path")]);
        repo.git(&["push", "-q", "-u", "origin", "main"]);
        repo
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    /// Runs git in the repo; returns stdout.
    pub fn git(&self, args: &[&str]) -> String {
        run(Command::new("git").args(args).current_dir(self.path()), &format!("git {}", args.join(" ")))
    }

    /// Sets `key: value` under `section:` in the repo's params.yaml (a top-level section
    /// with two-space indented keys, as the workspace's file has).
    pub fn set_param(&self, section: &str, key: &str, value: &str) {
        let file = self.path().join("params.yaml");
        let text = std::fs::read_to_string(&file).expect("read params.yaml");
        let mut in_section = false;
        let mut done = false;
        let lines: Vec<String> = text
            .lines()
            .map(|line| {
                if !line.starts_with(' ') && !line.is_empty() {
                    in_section = line.starts_with(&format!("{section}:"));
                }
                if in_section
                    && !done
                    && line.trim_start().starts_with(&format!("{key}:"))
                    && line.starts_with("  ")
                    && !line.starts_with("   ")
                {
                    done = true;
                    return format!("  {key}: {value}");
                }
                line.to_string()
            })
            .collect();
        assert!(done, "params.yaml has no {section}.{key}");
        std::fs::write(&file, lines.join("\n") + "\n").expect("write params.yaml");
    }
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).expect("mkdir");
    for entry in std::fs::read_dir(from).expect("read dir") {
        let entry = entry.expect("entry");
        if entry.file_type().expect("type").is_file() {
            std::fs::copy(entry.path(), to.join(entry.file_name())).expect("copy");
        }
    }
}
