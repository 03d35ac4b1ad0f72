//! Snapshots of `pipeline --help` and of every subcommand's `--help`, found by walking the
//! `Commands:` lists, so a new subcommand fails here until its help is reviewed.

use std::process::Command;

/// `pipeline <path> --help`, as a person reads it: a clean environment (no `[env: NAME=value]`
/// from this machine's variables), 100 columns, the workspace path and version redacted.
fn help(path: &[&str]) -> String {
    let out = Command::new(env!("CARGO_BIN_EXE_pipeline"))
        .env_clear()
        .env("COLUMNS", "100")
        .args(path)
        .arg("--help")
        .output()
        .unwrap();
    let stdout = String::from_utf8(out.stdout).unwrap();
    assert!(
        out.status.success(),
        "pipeline {} --help: {}{stdout}",
        path.join(" "),
        String::from_utf8_lossy(&out.stderr)
    );
    stdout
        .replace(&testkit::workspace_root().display().to_string(), "[workspace]")
        .replace(concat!(" ", env!("CARGO_PKG_VERSION")), " [version]")
}

/// The subcommands a help text lists under `Commands:`, but `help`.
fn subcommands(help: &str) -> Vec<String> {
    help.lines()
        .skip_while(|line| *line != "Commands:")
        .skip(1)
        .take_while(|line| !line.is_empty())
        .filter(|line| line.starts_with("  ") && !line.starts_with("   "))
        .filter_map(|line| line.split_whitespace().next())
        .filter(|name| *name != "help")
        .map(str::to_string)
        .collect()
}

#[test]
fn help_of_every_command() {
    let mut pending = vec![Vec::<String>::new()];
    let mut seen = Vec::new();
    while let Some(path) = pending.pop() {
        let args: Vec<&str> = path.iter().map(String::as_str).collect();
        let text = help(&args);
        for sub in subcommands(&text) {
            pending.push(path.iter().cloned().chain([sub]).collect());
        }
        let name = std::iter::once("pipeline").chain(args.iter().copied()).collect::<Vec<_>>().join("_");
        let mut settings = insta::Settings::clone_current();
        settings.set_description(
            ["pipeline"].iter().chain(&args).chain(&["--help"]).copied().collect::<Vec<_>>().join(" "),
        );
        settings.set_omit_expression(true);
        settings.bind(|| insta::assert_snapshot!(name.clone(), text));
        seen.push(name);
    }
    for must in
        ["pipeline", "pipeline_feedback_add", "pipeline_repro", "pipeline_models", "pipeline_init", "pipeline_predict"]
    {
        assert!(seen.iter().any(|s| s == must), "{must} not found in the Commands: lists; found {seen:?}");
    }
}
