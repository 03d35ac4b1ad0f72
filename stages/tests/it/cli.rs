//! Each stage says what it reads and writes, and names the file when an input is missing or
//! malformed.

use std::process::Command;

const STAGES: [(&str, &str); 6] = [
    ("ingest", env!("CARGO_BIN_EXE_ingest")),
    ("validate", env!("CARGO_BIN_EXE_validate")),
    ("augment", env!("CARGO_BIN_EXE_augment")),
    ("finetune", env!("CARGO_BIN_EXE_finetune")),
    ("evaluate", env!("CARGO_BIN_EXE_evaluate")),
    ("promote", env!("CARGO_BIN_EXE_promote")),
];

#[test]
fn help_says_what_each_stage_reads_and_writes() {
    for (name, bin) in STAGES {
        let out = Command::new(bin).env_remove("LD_LIBRARY_PATH").arg("--help").output().unwrap();
        assert!(out.status.success(), "{name} --help");
        let help = String::from_utf8(out.stdout).unwrap();
        assert!(
            help.contains("Reads") && help.contains("writes"),
            "{name} --help does not say what it reads and writes:\n{help}"
        );
        assert!(help.contains("--params"), "{name}");
    }
}

#[test]
fn a_missing_input_is_named() {
    let dir = tempfile::tempdir().unwrap();
    for (name, bin) in STAGES {
        let out = Command::new(bin).current_dir(dir.path()).output().unwrap();
        assert!(!out.status.success(), "{name} succeeded without inputs");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(
            err.contains(name) && (err.contains("data/mnist") || err.contains("artifacts/") || err.contains("models")),
            "{name}: {err}"
        );
    }
}

#[test]
fn a_malformed_manifest_is_named() {
    let dir = tempfile::tempdir().unwrap();
    let manifest = dir.path().join("artifacts/ingest/manifest.parquet");
    std::fs::create_dir_all(manifest.parent().unwrap()).unwrap();
    std::fs::write(&manifest, b"not parquet").unwrap();
    let out = Command::new(STAGES[1].1).current_dir(dir.path()).output().unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("artifacts/ingest/manifest.parquet"), "{err}");
}

#[test]
fn a_malformed_params_file_is_named() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("params.yaml"), "ingest:\n  holdout_share: lots\n").unwrap();
    let out = Command::new(STAGES[0].1).current_dir(dir.path()).output().unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("params.yaml") && err.contains("ingest"), "{err}");
}
