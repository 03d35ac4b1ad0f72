//! The GitOps retraining pipeline for MNIST-style digit classifiers: data, preprocessing, the
//! CNN and its saved form, the model registry, and the `pipeline` command line over them.

pub mod alloc;
pub mod base;
pub mod ci;
pub mod data;
pub mod device;
pub mod model;
pub mod params;
pub mod predlog;
pub mod preprocess;
pub mod registry;
pub mod release;
pub mod repo;
pub mod rng;
pub mod scaffold;
pub mod stages;
