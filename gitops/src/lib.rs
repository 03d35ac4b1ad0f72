//! The torch-free core of a pipeline repository: its settings, its task, its feedback store and
//! model files, git sync and retrain triggers. Nothing here loads libtorch, so the `pipeline`
//! command (status, repro, feedback, models, ci, init) starts in milliseconds; the `model`
//! crate builds networks from what these modules describe.
//!
//! - [`params`]: the one reader of `params.yaml` (shared sections typed, stages' own by name).
//! - [`architecture`]: `model:`, which network and its parameters.
//! - [`model_file`]: `models/model_<ts>.safetensors` + sidecar, verified by hash and task.
//! - [`device`]: `--device auto|cpu|cuda`, the choice (resolved by `model::device`).
//! - [`drift`]: a model's reference signals and how far a window of live predictions moved.
//! - [`image_input`]: bounded decoding of untrusted uploads.
//! - [`feedback`]: `new_data/sub_set_N/...`, `count.json`, dedup, sealing, `fsck`.
//! - [`git`]: commit, push (with replay on rejection), fetch and fast-forward.
//! - [`trigger`]: what happens when a sub_set is sealed (`github`, `local`, `none`).
//! - [`task`]: what the classifier tells apart and reads (`task:`), MNIST digits by default.
//! - [`table`]: the feature schema of a tabular task; rows checked, encoded, written canonically.
//! - [`token`]: the environment variables a GitHub token is read from, for git and the API.
//! - [`cli`]: `pipeline feedback ...` and `pipeline fsck`.

pub mod architecture;
pub mod cli;
pub mod device;
pub mod drift;
pub mod feedback;
mod fsutil;
pub mod git;
pub mod image_input;
pub mod model_file;
pub mod params;
pub mod table;
pub mod task;
pub mod token;
pub mod trigger;
