//! `cargo xtask test`, the README's test command: set up libtorch, then run every test of the
//! workspace. Tests that need external tools (DVC, actionlint, chromium, promtool) install or
//! locate them themselves and say clearly when one is missing.

use anyhow::Result;
use std::ffi::OsString;

use crate::{demo, setup};

pub fn test(extra: &[String]) -> Result<()> {
    setup::run()?;
    let root = setup::repo_root();
    let mut env: Vec<(&str, OsString)> = Vec::new();
    if let Some(dir) = demo::local_mnist(&root) {
        env.push(("MNIST_DIR", dir.into_os_string()));
    }
    let mut args = vec!["test", "--workspace"];
    args.extend(extra.iter().map(String::as_str));
    demo::cargo(&root, &args, &env)
}
