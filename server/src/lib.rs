//! `model-server`: the serving half of the MNIST GitOps loop, on axum.
//!
//! - [`config`]: the command line (`--help` documents the whole HTTP API).
//! - [`state`]: [`AppState`], built from the config and params.yaml.
//! - [`app`]: the router ([`app::app`]) and its middleware (metrics, JSON errors, limits).
//! - [`routes`]: the handlers; [`input`] reads bodies; [`error`] is the one [`AppError`].
//! - [`models`]: the serving model and the loaded cache; [`batcher`]: dynamic batching behind a
//!   bounded queue; [`puller`]: git polling, verification, warm-up, hot swap, rollback.
//! - [`feedback`]: the feedback store, committer and retrain trigger; [`history`]: recent
//!   inputs; [`predlog`]: the prediction log writer; [`metrics`]: Prometheus; [`drift`]: live
//!   predictions against the serving model's reference; [`shadow`]: the shadow model beside it.
//! - [`server`]: binding, serving and graceful shutdown.

pub mod app;
pub mod batcher;
pub mod config;
pub mod drift;
pub mod error;
pub mod feedback;
pub mod history;
pub mod input;
pub mod metrics;
pub mod models;
pub mod predlog;
pub mod puller;
pub mod routes;
pub mod server;
pub mod shadow;
pub mod state;

pub use app::app;
pub use config::Config;
pub use error::AppError;
pub use state::AppState;
