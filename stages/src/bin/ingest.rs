//! `ingest`: see `stages::ingest`.
use clap::Parser;
use stages::{ingest, manifest::Role};

#[derive(Parser)]
struct Cli {
    #[command(flatten)]
    args: ingest::Args,
}

fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    stages::main(
        "ingest",
        || ingest::run(&cli.args),
        |rows| {
            let count = |role| rows.iter().filter(|r| r.role == role).count();
            format!(
                "{} rows: {} base train, {} base test, {} feedback for training, {} held back -> {}",
                rows.len(),
                count(Role::Train),
                count(Role::Test),
                count(Role::FeedbackTrain),
                count(Role::Holdout),
                cli.args.out.display()
            )
        },
    )
}
