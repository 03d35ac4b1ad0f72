//! `repro`: a `dvc.yaml` runner whose `dvc.lock`, cache and run cache DVC 3 accepts.
//!
//! [`Project::open`] reads `dvc.yaml` (with `vars` and `${...}` from params.yaml) and builds
//! the DAG; [`Project::status`] and [`Project::repro`] compare hashes with dvc.lock and rerun
//! what changed. [`cli`] holds the clap structs the `pipeline` binary mounts.

pub mod cli;

mod add;
mod cache;
mod confine;
mod dag;
mod dirstate;
mod dvcyaml;
mod error;
mod fsutil;
mod gitignore;
mod graph;
mod hash;
mod ignore;
mod interp;
mod lockfile;
mod params;
mod project;
mod pyjson;
pub mod remote;
mod repolock;
mod runcache;
mod runner;
mod state;
mod status;
mod workspace;
mod yaml;

pub use add::{Added, add, add_listed};
pub use cache::Cache;
pub use dvcyaml::{Cmd, Dep, Out, OutKind, ParamsDep, Stage};
pub use error::{Error, Result};
pub use graph::Graph;
pub use hash::DirEntry;
pub use project::{Project, ReproOptions, ReproReport};
pub use status::{Change, StageStatus, Status};
