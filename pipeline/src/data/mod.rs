//! MNIST on disk: the IDX reader, the in-memory dataset, and `pipeline data fetch`.

pub mod fetch;
pub mod idx;

pub use idx::IdxError;

use std::path::Path;

/// Images as rows of 28x28 `u8` pixels (white ink on black, as MNIST stores them) with labels.
#[derive(Debug, Clone, PartialEq)]
pub struct Mnist {
    pub pixels: Vec<u8>,
    pub labels: Vec<u8>,
}

pub const SIDE: usize = 28;
pub const PIXELS: usize = SIDE * SIDE;

/// The standard file names, gzip-compressed or raw.
pub const TRAIN_FILES: (&str, &str) = ("train-images-idx3-ubyte", "train-labels-idx1-ubyte");
pub const TEST_FILES: (&str, &str) = ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte");

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Split {
    Train,
    Test,
}

impl Mnist {
    pub fn len(&self) -> usize {
        self.labels.len()
    }

    pub fn is_empty(&self) -> bool {
        self.labels.is_empty()
    }

    pub fn image(&self, i: usize) -> &[u8] {
        &self.pixels[i * PIXELS..(i + 1) * PIXELS]
    }

    /// Loads one split from `dir`, accepting `<name>.gz` or the raw `<name>`.
    pub fn load(dir: &Path, split: Split) -> Result<Self, IdxError> {
        let (images, labels) = match split {
            Split::Train => TRAIN_FILES,
            Split::Test => TEST_FILES,
        };
        let images = idx::read_images(&idx::locate(dir, images)?)?;
        let labels_path = idx::locate(dir, labels)?;
        let labels = idx::read_labels(&labels_path)?;
        if images.count != labels.len() {
            return Err(IdxError::CountMismatch { images: images.count, labels: labels.len(), path: labels_path });
        }
        Ok(Self { pixels: images.pixels, labels })
    }
}
