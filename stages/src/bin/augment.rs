//! `augment`: see `stages::augment`.
use clap::Parser;
use stages::augment;

#[derive(Parser)]
struct Cli {
    #[command(flatten)]
    args: augment::Args,
}

fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    stages::main(
        "augment",
        || augment::run(&cli.args),
        |rows| format!("{} augmented copies -> {}", rows.len(), cli.args.out.display()),
    )
}
