//! Integration tests of the `gitops` crate, in temp dirs and temp git repos only.

mod bad_input;
mod cli;
mod concurrency;
mod dvc;
mod git;
mod github;
mod recovery;
mod repos;
mod store;
mod support;
mod triggers;
mod webhook;
mod writers;
