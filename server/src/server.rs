//! Running the server: bind, serve, and on SIGTERM or Ctrl-C stop accepting, let requests in
//! flight finish (up to the shutdown timeout), then return. Connections keep a header-read and
//! an idle deadline, and hyper's own error answers get JSON bodies ([`conn`]).

mod conn;

use std::future::Future;
use std::net::SocketAddr;
use std::time::Duration;

use axum::middleware;
use tokio::net::TcpListener;

use crate::app::app;
use crate::config::Config;
use crate::state::{AppState, StartError};

#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    #[error(transparent)]
    Start(#[from] StartError),
    #[error("listening on {addr}: {source}")]
    Bind { addr: SocketAddr, source: std::io::Error },
    #[error("serving: {0}")]
    Serve(std::io::Error),
}

/// Starts everything from `config` and serves until SIGTERM or Ctrl-C.
pub async fn run(config: Config) -> Result<(), ServeError> {
    let state = AppState::start(&config)?;
    let addr = SocketAddr::new(config.host, config.port);
    let listener = TcpListener::bind(addr).await.map_err(|source| ServeError::Bind { addr, source })?;
    let local = listener.local_addr().map_err(|source| ServeError::Bind { addr, source })?;
    tracing::info!("listening on http://{local}");
    println!("model-server listening on http://{local}");
    serve(listener, state, config.request_timeout, config.shutdown_timeout, shutdown_signal())
        .await
        .map_err(ServeError::Serve)
}

/// Serves `state` on `listener` until `shutdown` completes, then waits up to `grace` for
/// requests in flight. The connection deadlines are the state's settings.
pub async fn serve(
    listener: TcpListener,
    state: AppState,
    request_timeout: Duration,
    grace: Duration,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let deadlines =
        conn::Deadlines { header_read: state.settings.header_read_timeout, idle: state.settings.idle_timeout };
    let listener = conn::TimedListener::new(listener, deadlines, state.metrics.clone());
    let service = app(state, request_timeout)
        .layer(middleware::from_fn(conn::track))
        .into_make_service_with_connect_info::<conn::Activity>();
    let (stopping, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = axum::serve(listener, service).with_graceful_shutdown(async move {
        shutdown.await;
        tracing::info!("shutting down: finishing requests in flight");
        let _ = stopping.send(());
    });
    tokio::select! {
        result = server => result,
        () = async {
            let _ = stopped.await;
            tokio::time::sleep(grace).await;
        } => {
            tracing::warn!("requests still in flight after {grace:?}; stopping anyway");
            Ok(())
        }
    }
}

/// Completes on Ctrl-C or SIGTERM.
pub async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(e) => {
                tracing::warn!("cannot listen for SIGTERM: {e}");
                std::future::pending::<()>().await;
            }
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {}
        () = term => {}
    }
}
