//! The model side of a pipeline, sized from the task (`gitops::task`): datasets behind one
//! trait, the image → input preprocessing shared by training and serving, the networks, their
//! weights in libtorch, training, evaluation and prediction, and the label review's queue. The stages, `pipeline-model` and
//! the model server use it; the `pipeline` command does not, so it starts without libtorch.

pub mod alloc;
pub mod arch;
pub mod data;
pub mod device;
pub mod eval;
pub mod folds;
pub mod idle;
pub mod predict;
pub mod preprocess;
pub mod review;
pub mod rng;
pub mod train;
pub mod weights;

pub use arch::Network;
pub use eval::Evaluation;
pub use predict::{Classifier, Prediction};
pub use weights::{LoadedModel, Weights};
