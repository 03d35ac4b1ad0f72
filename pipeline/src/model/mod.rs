//! The networks, a model's saved form (safetensors + JSON sidecar), training, evaluation and
//! inference, all sized from the task.

pub mod arch;
pub mod artifact;
pub mod eval;
pub mod predict;
pub mod train;

pub use arch::{Architecture, CnnParams, Network, ResnetParams};
pub use artifact::{ModelError, ModelFile, Sidecar};
pub use eval::Evaluation;
pub use predict::{Classifier, Prediction};
