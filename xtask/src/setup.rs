//! Installs PyTorch 2.13.0 from PyPI once into a versioned cache outside the clone and points
//! the repo's `.libtorch` link at it, so a fresh clone on the same machine reuses it. Also makes
//! sure the one system library the build links is there: OpenSSL's headers, for git's https.

use anyhow::{Context, Result, bail};
use std::path::{Path, PathBuf};
use std::process::Command;

/// The PyTorch release `tch` 0.26 is built against.
pub const TORCH_VERSION: &str = "2.13.0";

/// The cache root: `$MNIST_GITOPS_CACHE`, else `$XDG_CACHE_HOME/mnist-gitops`, else `~/.cache/mnist-gitops`.
pub fn cache_root() -> Result<PathBuf> {
    if let Some(dir) = std::env::var_os("MNIST_GITOPS_CACHE") {
        return Ok(PathBuf::from(dir));
    }
    if let Some(dir) = std::env::var_os("XDG_CACHE_HOME") {
        return Ok(PathBuf::from(dir).join("mnist-gitops"));
    }
    let home = std::env::var_os("HOME").context("neither MNIST_GITOPS_CACHE nor HOME is set")?;
    Ok(PathBuf::from(home).join(".cache/mnist-gitops"))
}

/// The workspace root (the parent of `xtask/`).
pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().expect("xtask lives in the workspace").to_path_buf()
}

/// Makes sure libtorch is installed and linked, and OpenSSL's headers are there; returns the
/// libtorch directory.
pub fn run() -> Result<PathBuf> {
    let libtorch = match std::env::var_os("LIBTORCH_OVERRIDE") {
        Some(dir) => PathBuf::from(dir),
        None => ensure_cached_torch(&cache_root()?)?,
    };
    check_version(&libtorch)?;
    link(&libtorch, &repo_root().join(".libtorch"))?;
    ensure_openssl()?;
    Ok(libtorch)
}

fn ensure_cached_torch(cache: &Path) -> Result<PathBuf> {
    let site = cache.join(format!("torch-{TORCH_VERSION}"));
    let libtorch = site.join("torch");
    if libtorch.join("lib/libtorch_cpu.so").exists() {
        return Ok(libtorch);
    }
    if site.exists() {
        bail!(
            "{} exists but holds no usable libtorch (lib/libtorch_cpu.so is missing); remove it and rerun `cargo xtask setup`",
            site.display()
        );
    }
    let python = which("python3").context(
        "python3 was not found on PATH; it is needed once to install PyTorch from PyPI (install Python 3.9+ with pip)",
    )?;
    std::fs::create_dir_all(cache).with_context(|| format!("creating the cache {}", cache.display()))?;
    let partial = cache.join(format!("torch-{TORCH_VERSION}.partial"));
    if partial.exists() {
        std::fs::remove_dir_all(&partial).with_context(|| format!("removing {}", partial.display()))?;
    }
    eprintln!("installing torch=={TORCH_VERSION} from PyPI into {} (once, about 5 GB)", site.display());
    let status = Command::new(&python)
        .args([
            "-m",
            "pip",
            "install",
            "--quiet",
            "--disable-pip-version-check",
            "--no-warn-script-location",
            "--target",
        ])
        .arg(&partial)
        .arg(format!("torch=={TORCH_VERSION}"))
        .status()
        .with_context(|| format!("running {} -m pip", python.display()))?;
    if !status.success() {
        bail!(
            "pip could not install torch=={TORCH_VERSION} ({status}); check the network access to PyPI and the free disk space under {}",
            cache.display()
        );
    }
    std::fs::rename(&partial, &site).with_context(|| format!("moving {} into place", partial.display()))?;
    Ok(libtorch)
}

/// Refuses a libtorch of another version: tch 0.26 would fail to build or crash at run time.
fn check_version(libtorch: &Path) -> Result<()> {
    let version_py = libtorch.join("version.py");
    let text = std::fs::read_to_string(&version_py)
        .with_context(|| format!("{} is not a PyTorch install (no version.py)", libtorch.display()))?;
    let found = text
        .lines()
        .find_map(|l| l.strip_prefix("__version__ = "))
        .map(|v| v.trim().trim_matches('\'').trim_matches('"').to_string())
        .with_context(|| format!("{} names no __version__", version_py.display()))?;
    let release = found.split('+').next().unwrap_or_default();
    if release != TORCH_VERSION {
        bail!(
            "found torch {found} at {} but tch 0.26 needs torch {TORCH_VERSION}; remove it or unset LIBTORCH_OVERRIDE",
            libtorch.display()
        );
    }
    Ok(())
}

fn link(target: &Path, link: &Path) -> Result<()> {
    if std::fs::read_link(link).is_ok_and(|current| current == target) {
        return Ok(());
    }
    if link.symlink_metadata().is_ok() {
        std::fs::remove_file(link).with_context(|| format!("replacing {}", link.display()))?;
    }
    std::os::unix::fs::symlink(target, link)
        .with_context(|| format!("linking {} -> {}", link.display(), target.display()))
}

/// libgit2 speaks https through the system's OpenSSL (`git2`'s `https` feature), so the build
/// needs its headers: installs Debian's `libssl-dev` when `pkg-config` cannot find them.
fn ensure_openssl() -> Result<()> {
    let found = || Command::new("pkg-config").args(["--exists", "openssl"]).status().is_ok_and(|s| s.success());
    if found() {
        return Ok(());
    }
    eprintln!("OpenSSL's headers are missing (git's https needs them): apt-get install -y libssl-dev pkg-config");
    let installed = Command::new("apt-get")
        .args(["install", "-y", "-qq", "libssl-dev", "pkg-config"])
        .env("DEBIAN_FRONTEND", "noninteractive")
        .status()
        .is_ok_and(|s| s.success());
    if !installed || !found() {
        bail!(
            "OpenSSL's development files are missing: install libssl-dev and pkg-config (Debian/Ubuntu) or openssl-devel"
        );
    }
    Ok(())
}

/// The first executable called `name` on PATH.
pub fn which(name: &str) -> Option<PathBuf> {
    std::env::split_paths(&std::env::var_os("PATH")?).map(|dir| dir.join(name)).find(|p| p.is_file())
}
