//! Integration tests of the `model` crate: datasets, preprocessing, the networks and their
//! saved form, one binary sharing the lock below.

mod fetch;
mod idx;
mod networks;
mod preprocess;

/// libtorch's random generator is process-wide: tests that seed it take this lock so tests
/// running on other threads do not draw from it in between.
pub static TORCH_RNG: std::sync::Mutex<()> = std::sync::Mutex::new(());
