//! `finetune`: see `stages::finetune`.
use clap::Parser;
use stages::finetune;

#[derive(Parser)]
struct Cli {
    #[command(flatten)]
    args: finetune::Args,
}

fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    stages::main(
        "finetune",
        || finetune::run(&cli.args),
        |m| format!("candidate {} -> {}", m.version, cli.args.out.display()),
    )
}
