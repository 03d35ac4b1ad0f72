//! Snapshots of each stage's `--help`: what it reads, writes and takes, as `dvc.yaml` runs it.

use std::process::Command;

const STAGES: [(&str, &str); 6] = [
    ("ingest", env!("CARGO_BIN_EXE_ingest")),
    ("validate", env!("CARGO_BIN_EXE_validate")),
    ("augment", env!("CARGO_BIN_EXE_augment")),
    ("finetune", env!("CARGO_BIN_EXE_finetune")),
    ("evaluate", env!("CARGO_BIN_EXE_evaluate")),
    ("promote", env!("CARGO_BIN_EXE_promote")),
];

/// `<stage> --help`, as a person reads it: a clean environment (no `[env: NAME=value]` from
/// this machine's variables), 100 columns, the workspace path and version redacted.
fn help(name: &str, bin: &str) -> String {
    let out = Command::new(bin).env_clear().env("COLUMNS", "100").arg("--help").output().unwrap();
    let stdout = String::from_utf8(out.stdout).unwrap();
    assert!(out.status.success(), "{name} --help: {}{stdout}", String::from_utf8_lossy(&out.stderr));
    stdout
        .replace(&testkit::workspace_root().display().to_string(), "[workspace]")
        .replace(concat!(" ", env!("CARGO_PKG_VERSION")), " [version]")
}

#[test]
fn help_of_every_stage() {
    for (name, bin) in STAGES {
        let mut settings = insta::Settings::clone_current();
        settings.set_description(format!("{name} --help"));
        settings.set_omit_expression(true);
        settings.bind(|| insta::assert_snapshot!(name, help(name, bin)));
    }
}
