//! The `model-server` binary: parse the command line, set up logging, serve.

use std::process::ExitCode;

use anyhow::Context;
use clap::Parser;

fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()))
        .with_writer(std::io::stderr)
        .init();
    model::alloc::keep_freed_memory_for_serving();
    let config = model_server::Config::parse();
    match run(config) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("model-server: error: {}", gitops::cli::error_chain(&*e));
            ExitCode::FAILURE
        }
    }
}

fn run(config: model_server::Config) -> anyhow::Result<()> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")?
        .block_on(model_server::server::run(config))?;
    Ok(())
}
