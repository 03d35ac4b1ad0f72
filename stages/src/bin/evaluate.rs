//! `evaluate`: see `stages::evaluate`.
use clap::Parser;
use stages::evaluate;

#[derive(Parser)]
struct Cli {
    #[command(flatten)]
    args: evaluate::Args,
}

fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    stages::main(
        "evaluate",
        || evaluate::run(&cli.args),
        |c| {
            let fb = |s: &evaluate::Scores| {
                s.feedback.as_ref().map_or("n/a".to_string(), |f| format!("{:.2}%", 100.0 * f.accuracy))
            };
            format!(
                "base test {:.2}% (serving {:.2}%), held-back feedback {} (serving {}) -> {}",
                100.0 * c.candidate.base_test.accuracy,
                100.0 * c.serving.base_test.accuracy,
                fb(&c.candidate),
                fb(&c.serving),
                cli.args.metrics.display()
            )
        },
    )
}
