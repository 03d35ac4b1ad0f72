//! What every stage binary shares: logging set-up and turning a stage's result into an exit
//! code with a message that names the file involved.

use std::process::ExitCode;

/// Runs a stage's `run`, printing `summary` on success and the error chain on failure.
pub fn main<T, E: std::error::Error>(
    name: &str,
    run: impl FnOnce() -> Result<T, E>,
    summary: impl FnOnce(&T) -> String,
) -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "warn".into()))
        .with_writer(std::io::stderr)
        .init();
    // After the subscriber, so a refused setting is reported.
    pipeline::alloc::keep_freed_memory();
    match run() {
        Ok(out) => {
            println!("{name}: {}", summary(&out));
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("{name}: error: {}", gitops::cli::error_chain(&e));
            ExitCode::FAILURE
        }
    }
}
