//! The CNN, its saved form (safetensors + JSON sidecar), training, evaluation and inference.

pub mod artifact;
pub mod eval;
pub mod net;
pub mod predict;
pub mod train;

pub use artifact::{ModelError, ModelFile, Sidecar};
pub use eval::Evaluation;
pub use net::{Architecture, Net};
pub use predict::{Classifier, Prediction};
