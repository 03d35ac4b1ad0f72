//! Integration tests of the `pipeline` crate, in one binary (repos from `testkit::temp_repo`).

mod ci;
mod cli;
mod help;
mod init;
mod models;
mod workflows;
