//! Shared helpers: a cached DVC install, throwaway git+DVC repos, and runners for both tools.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::OnceLock;

use tempfile::TempDir;

/// The `dvc` executable from a venv cached outside the clone, installed from PyPI on first use.
pub fn dvc() -> &'static Path {
    static DVC: OnceLock<PathBuf> = OnceLock::new();
    DVC.get_or_init(|| {
        let base = std::env::var_os("MNIST_GITOPS_CACHE").map(PathBuf::from).unwrap_or_else(|| {
            PathBuf::from(std::env::var_os("HOME").expect("HOME is set")).join(".cache/mnist-gitops")
        });
        let venv = base.join("dvc-venv");
        let bin = venv.join("bin/dvc");
        if bin.is_file() {
            return bin;
        }
        eprintln!("installing DVC from PyPI into {} (once)", venv.display());
        std::fs::create_dir_all(&base).expect("create the cache dir");
        let run = |cmd: &mut Command, what: &str| {
            let out = cmd.output().unwrap_or_else(|e| panic!("could not install DVC: {what} failed to start: {e}"));
            assert!(
                out.status.success(),
                "could not install DVC from PyPI into {}: {what} failed:\n{}{}",
                venv.display(),
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            );
        };
        run(Command::new("python3").args(["-m", "venv"]).arg(&venv), "python3 -m venv");
        run(Command::new(venv.join("bin/pip")).args(["install", "--quiet", "dvc"]), "pip install dvc");
        assert!(bin.is_file(), "pip install dvc did not create {}", bin.display());
        bin
    })
}

/// The runner's own binary.
pub fn ours_bin() -> &'static str {
    env!("CARGO_BIN_EXE_repro")
}

/// A temporary git + DVC repository.
pub struct Repo {
    dir: TempDir,
}

fn check(out: Output, what: &str) -> String {
    let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(out.status.success(), "{what} failed ({}):\n{text}", out.status);
    String::from_utf8_lossy(&out.stdout).into_owned()
}

impl Repo {
    /// `git init` + `dvc init`, then the given files.
    pub fn new(files: &[(&str, &str)]) -> Repo {
        let repo = Repo { dir: tempfile::tempdir().expect("tempdir") };
        repo.git(&["init", "-q"]);
        check(repo.dvc_cmd(&["init", "-q"]).output().expect("run dvc"), "dvc init");
        for (path, content) in files {
            repo.write(path, content);
        }
        repo
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    pub fn write(&self, rel: &str, content: &str) {
        let p = self.path().join(rel);
        std::fs::create_dir_all(p.parent().expect("parent")).expect("mkdir");
        std::fs::write(p, content).expect("write");
    }

    pub fn read(&self, rel: &str) -> String {
        std::fs::read_to_string(self.path().join(rel)).unwrap_or_else(|e| panic!("read {rel}: {e}"))
    }

    pub fn exists(&self, rel: &str) -> bool {
        self.path().join(rel).exists()
    }

    pub fn git(&self, args: &[&str]) -> String {
        check(Command::new("git").args(args).current_dir(self.path()).output().expect("run git"), "git")
    }

    fn dvc_cmd(&self, args: &[&str]) -> Command {
        let mut c = Command::new(dvc());
        c.args(args).current_dir(self.path()).env("DVC_NO_ANALYTICS", "1");
        c
    }

    /// Runs DVC and returns its stdout, panicking with its output on failure.
    pub fn dvc(&self, args: &[&str]) -> String {
        check(self.dvc_cmd(args).output().expect("run dvc"), &format!("dvc {}", args.join(" ")))
    }

    /// Runs this runner's binary; returns the raw output.
    pub fn ours_output(&self, args: &[&str]) -> Output {
        Command::new(ours_bin()).args(args).current_dir(self.path()).output().expect("run repro")
    }

    /// Runs this runner's binary and returns its stdout, panicking on failure.
    pub fn ours(&self, args: &[&str]) -> String {
        check(self.ours_output(args), &format!("repro {}", args.join(" ")))
    }

    /// Every file under `.dvc/cache` (objects and run-cache entries), sorted.
    pub fn cache_listing(&self) -> Vec<String> {
        let mut out = Vec::new();
        let base = self.path().join(".dvc/cache");
        let mut stack = vec![base.clone()];
        while let Some(dir) = stack.pop() {
            let Ok(rd) = std::fs::read_dir(&dir) else { continue };
            for e in rd.flatten() {
                let p = e.path();
                if p.is_dir() {
                    stack.push(p);
                } else {
                    out.push(p.strip_prefix(&base).expect("under base").display().to_string());
                }
            }
        }
        out.sort();
        out
    }

    /// The stage names `dvc status --json` reports as changed.
    pub fn dvc_changed(&self) -> Vec<String> {
        changed_names(&self.dvc(&["status", "--json"]))
    }

    /// The stage names our `status --json` reports as changed.
    pub fn ours_changed(&self) -> Vec<String> {
        changed_names(&self.ours(&["status", "--json"]))
    }
}

fn changed_names(json: &str) -> Vec<String> {
    let v: serde_json::Value = serde_json::from_str(json.trim()).unwrap_or_else(|e| panic!("bad JSON {json:?}: {e}"));
    let mut names: Vec<String> = v.as_object().expect("object").keys().cloned().collect();
    names.sort();
    names
}

/// A repo at `<tmp>/repo` holding only the files given (no git, no DVC), in a temporary
/// folder of its own, so a test can put files beside the repo and see that they survive.
pub struct Sandbox {
    dir: TempDir,
}

impl Sandbox {
    /// The files, named relative to the folder around the repo (`repo/dvc.yaml`, `precious.txt`).
    pub fn new(files: &[(&str, &str)]) -> Sandbox {
        let sandbox = Sandbox { dir: tempfile::tempdir().expect("tempdir") };
        std::fs::create_dir(sandbox.repo()).expect("mkdir repo");
        for (rel, content) in files {
            let p = sandbox.path().join(rel);
            std::fs::create_dir_all(p.parent().expect("parent")).expect("mkdir");
            std::fs::write(p, content).expect("write");
        }
        sandbox
    }

    /// The folder around the repo.
    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    pub fn repo(&self) -> PathBuf {
        self.path().join("repo")
    }

    /// Makes `link` (relative to the folder around the repo) a symlink to `target`.
    pub fn symlink(&self, target: &str, link: &str) {
        std::os::unix::fs::symlink(target, self.path().join(link)).expect("symlink");
    }

    /// Whether `rel` (relative to the folder around the repo) exists.
    pub fn exists(&self, rel: &str) -> bool {
        self.path().join(rel).exists()
    }

    /// Runs this runner's binary in the repo; returns the raw output.
    pub fn ours_output(&self, args: &[&str]) -> Output {
        Command::new(ours_bin()).args(args).current_dir(self.repo()).output().expect("run repro")
    }
}

/// The machine's 1, 5 and 15 minute load averages, for the benches' headers (the tests do not
/// print it).
#[allow(dead_code)]
pub fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .unwrap_or_default()
        .split_whitespace()
        .take(3)
        .collect::<Vec<_>>()
        .join(" ")
}
