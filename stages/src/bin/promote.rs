//! `promote`: see `stages::promote`.
use clap::Parser;
use stages::promote;

#[derive(Parser)]
struct Cli {
    #[command(flatten)]
    args: promote::Args,
}

fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    stages::main(
        "promote",
        || promote::run(&cli.args),
        |d| {
            let verdict = match (&d.candidate, d.promoted) {
                (Some(v), true) => format!("promoted {v} (was {})", d.serving_before),
                _ => format!("rejected; {} keeps serving", d.serving_before),
            };
            format!("{verdict}\n  {}", d.reasons.join("\n  "))
        },
    )
}
