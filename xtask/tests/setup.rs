//! `cargo xtask setup` fails with a clear message, and leaves nothing half-installed, when
//! python3 is missing, when pip fails, and when a torch of another version is offered.
//! Each case runs the real xtask binary against a throwaway cache folder.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// Runs `xtask setup` with the cache in `cache` and the given extra environment.
fn setup(cache: &Path, env: &[(&str, &str)]) -> Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_xtask"));
    cmd.arg("setup").env("MNIST_GITOPS_CACHE", cache).env_remove("LIBTORCH_OVERRIDE");
    for (key, value) in env {
        cmd.env(key, value);
    }
    cmd.output().expect("xtask runs")
}

fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

fn python3() -> Option<PathBuf> {
    std::env::split_paths(&std::env::var_os("PATH")?).map(|d| d.join("python3")).find(|p| p.is_file())
}

#[test]
fn no_python3_is_a_clear_error() {
    let tmp = tempfile::tempdir().unwrap();
    let empty_path = tmp.path().join("bin");
    std::fs::create_dir(&empty_path).unwrap();
    let out = setup(&tmp.path().join("cache"), &[("PATH", empty_path.to_str().unwrap())]);
    assert!(!out.status.success());
    assert!(stderr(&out).contains("python3 was not found on PATH"), "{}", stderr(&out));
    assert!(!tmp.path().join("cache/torch-2.13.0").exists());
}

#[test]
fn a_pip_failure_is_a_clear_error_and_leaves_no_install_behind() {
    let found = testkit::require::present(python3(), "python3 on PATH", "install Python 3.9+ with pip");
    let Some(python) = found else { return };
    let tmp = tempfile::tempdir().unwrap();
    let cache = tmp.path().join("cache");
    // A real pip run against an index that refuses connections.
    let out = setup(
        &cache,
        &[
            ("PIP_INDEX_URL", "http://127.0.0.1:9/simple"),
            ("PIP_CONFIG_FILE", "/dev/null"),
            ("PIP_RETRIES", "0"),
            ("PIP_TIMEOUT", "2"),
            ("PIP_NO_CACHE_DIR", "1"),
        ],
    );
    assert!(!out.status.success(), "pip unexpectedly succeeded with {}", python.display());
    let err = stderr(&out);
    assert!(err.contains("pip could not install torch==2.13.0"), "{err}");
    assert!(err.contains("network access to PyPI"), "{err}");
    assert!(!cache.join("torch-2.13.0").exists(), "a failed install must not look installed");
}

#[test]
fn a_torch_of_another_version_is_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let torch = tmp.path().join("site/torch");
    std::fs::create_dir_all(torch.join("lib")).unwrap();
    std::fs::write(torch.join("version.py"), "__version__ = '2.12.1+cpu'\ngit_version = 'x'\n").unwrap();
    let out = setup(&tmp.path().join("cache"), &[("LIBTORCH_OVERRIDE", torch.to_str().unwrap())]);
    assert!(!out.status.success());
    let err = stderr(&out);
    assert!(err.contains("found torch 2.12.1+cpu") && err.contains("needs torch 2.13.0"), "{err}");
}

#[test]
fn a_half_installed_cache_is_named_not_reused() {
    let tmp = tempfile::tempdir().unwrap();
    let cache = tmp.path().join("cache");
    std::fs::create_dir_all(cache.join("torch-2.13.0/torch")).unwrap();
    let out = setup(&cache, &[]);
    assert!(!out.status.success());
    let err = stderr(&out);
    assert!(err.contains("holds no usable libtorch") && err.contains("torch-2.13.0"), "{err}");
}
