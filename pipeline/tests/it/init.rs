//! `pipeline init` scaffolds a repo that serves at once, and never overwrites unless told to.

use gitops::model_file::ModelFile;
use pipeline::registry::Registry;

#[test]
fn scaffolds_a_servable_repo_and_refuses_to_overwrite() {
    let dir = tempfile::tempdir().unwrap();
    let files = pipeline::scaffold::init(dir.path(), false).unwrap();
    for f in [
        "dvc.yaml",
        "params.yaml",
        ".github/workflows/retrain.yml",
        ".github/workflows/ci.yml",
        "new_data/count.json",
        ".gitignore",
        "README.md",
        "models/registry.json",
    ] {
        assert!(dir.path().join(f).is_file(), "{f} missing");
        assert!(files.iter().any(|p| p.ends_with(f)), "{f} not reported");
    }
    let readme = std::fs::read_to_string(dir.path().join("README.md")).unwrap();
    assert!(readme.contains("Remote") && readme.contains("Token") && readme.contains("Trigger"));
    let registry = Registry::load(&dir.path().join("models")).unwrap();
    ModelFile::new(&dir.path().join("models"), &registry.serving)
        .unwrap()
        .verify(&gitops::task::Task::default(), Some(&Default::default()))
        .unwrap();
    assert!(git2::Repository::open(dir.path()).is_ok());

    std::fs::write(dir.path().join("params.yaml"), "# ours\n").unwrap();
    let err = pipeline::scaffold::init(dir.path(), false).unwrap_err().to_string();
    assert!(err.contains("params.yaml") && err.contains("--force"), "{err}");
    assert_eq!(std::fs::read_to_string(dir.path().join("params.yaml")).unwrap(), "# ours\n", "nothing was overwritten");
    pipeline::scaffold::init(dir.path(), true).unwrap();
    assert_ne!(std::fs::read_to_string(dir.path().join("params.yaml")).unwrap(), "# ours\n");
}
