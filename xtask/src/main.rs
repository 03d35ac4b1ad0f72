//! Project automation (`cargo xtask <task>`): set-up, the demo, the test run, benchmarks.
//! Builds without libtorch so it can install libtorch.

mod bench;
mod demo;
mod setup;
mod test;

use anyhow::Result;
use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(about = "Project automation for the GitOps retraining pipeline")]
struct Cli {
    #[command(subcommand)]
    task: Task,
}

#[derive(Subcommand)]
enum Task {
    /// Install PyTorch 2.13.0 (libtorch) into the shared cache and link it as `.libtorch`.
    Setup,
    /// Set up, build, fetch MNIST if needed, and run the main job on the embedded defaults.
    Demo,
    /// Set up, check fmt and clippy, run every test (none may skip), print `N passed, N failed, N skipped`.
    Test {
        /// Extra arguments passed to `cargo test`.
        #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
        args: Vec<String>,
    },
    /// Run the benchmarks behind BENCHMARKS.md and print their figures.
    Bench {
        #[arg(value_enum, default_value = "all")]
        suite: bench::Suite,
    },
}

fn main() -> Result<()> {
    match Cli::parse().task {
        Task::Setup => setup::run().map(|_| ()),
        Task::Demo => demo::run(),
        Task::Test { args } => test::run(&args),
        Task::Bench { suite } => bench::run(suite),
    }
}
