//! Integration tests: this runner against real DVC 3 on fixture pipelines.

mod behaviour;
mod confinement;
mod errors;
mod fixtures;
mod remote;
mod snapshots_dag;
mod status_vs_dvc;
mod support;
mod vs_dvc;
