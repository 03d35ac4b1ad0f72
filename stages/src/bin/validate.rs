//! `validate`: see `stages::validate`.
use clap::Parser;
use stages::validate;

#[derive(Parser)]
struct Cli {
    #[command(flatten)]
    args: validate::Args,
}

fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    stages::main(
        "validate",
        || validate::run(&cli.args),
        |r| {
            format!(
                "{} of {} rows clean, {} of {} feedback samples quarantined -> {}",
                r.clean,
                r.rows,
                r.feedback_bad,
                r.feedback,
                cli.args.out.display()
            )
        },
    )
}
