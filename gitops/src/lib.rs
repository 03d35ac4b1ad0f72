//! Feedback store, git sync and retrain triggers for the MNIST retraining pipeline.
//!
//! This crate has no libtorch dependency: the `pipeline` crate re-exports its modules
//! (`pipeline::feedback`, `pipeline::git`, ...) and wires [`cli`] into its binary.
//!
//! - [`params`]: the `feedback`, `git` and `trigger` sections of `params.yaml`.
//! - [`image_input`]: bounded decoding of untrusted uploads.
//! - [`feedback`]: `new_data/sub_set_N/...`, `count.json`, dedup, sealing, `fsck`.
//! - [`git`]: commit, push (with replay on rejection), fetch and fast-forward.
//! - [`trigger`]: what happens when a sub_set is sealed (`github`, `local`, `none`).
//! - [`task`]: what the classifier tells apart and reads (`task:`), MNIST digits by default.
//! - [`token`]: the environment variables a GitHub token is read from, for git and the API.
//! - [`cli`]: `pipeline feedback ...` and `pipeline fsck`.

pub mod cli;
pub mod feedback;
mod fsutil;
pub mod git;
pub mod image_input;
pub mod params;
pub mod task;
pub mod token;
pub mod trigger;
