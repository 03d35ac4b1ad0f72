//! Datasets on disk behind one reader trait, [`Dataset`]: MNIST's IDX files (`idx.rs`, and
//! `pipeline data fetch` in `fetch.rs`) and image folders in torchvision's and Hugging Face's
//! layouts (`folder.rs`), and, for tabular tasks, CSV or Parquet tables (`table.rs`). A dataset
//! lists labelled items per split; [`Loader`] decodes an item's image (or encodes a table's row),
//! so a bad file is an error naming it that validate's rules handle, never a panic.

pub mod fetch;
pub mod folder;
pub mod idx;
pub mod table;

pub use folder::ImageFolder;
pub use idx::IdxError;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, PoisonError};

use gitops::image_input::{ImageLimits, decode_limited};
use image::DynamicImage;
use sha2::{Digest, Sha256};

/// Images as rows of 28x28 `u8` pixels (white ink on black, as MNIST stores them) with labels.
#[derive(Debug, Clone, PartialEq)]
pub struct Mnist {
    pub pixels: Vec<u8>,
    pub labels: Vec<u8>,
}

/// MNIST's side and pixels per image (the IDX files this project reads are MNIST's).
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

/// One labelled image of a dataset.
#[derive(Debug, Clone, PartialEq)]
pub struct Item {
    pub path: PathBuf,
    /// The image's index inside an IDX file; `None` for an image file of its own.
    pub index: Option<u64>,
    pub label: usize,
    pub sha256: String,
}

#[derive(Debug, thiserror::Error)]
pub enum DataError {
    #[error("{}: {what}", path.display())]
    Bad { path: PathBuf, what: String },
    #[error("{}: {source}", path.display())]
    Io { path: PathBuf, source: std::io::Error },
    #[error(transparent)]
    Idx(#[from] IdxError),
    #[error("{dataset} has classes {found:?}, but the task lists {expected:?} (params.yaml `task.classes`)")]
    Classes { dataset: String, found: Vec<String>, expected: Vec<String> },
}

/// A labelled image dataset with a train and a test split.
pub trait Dataset {
    /// Class names in label order.
    fn classes(&self) -> Vec<String>;
    /// The items of one split, in a stable order.
    fn items(&self, split: Split) -> Result<Vec<Item>, DataError>;
    /// What was read, for messages (`MNIST IDX files in data/mnist`).
    fn describe(&self) -> String;
}

/// Opens the dataset at `path`: MNIST's IDX files when the folder holds them, an image folder
/// otherwise (`test_share`: the share held out by hash when the folder has no test split).
pub fn open(path: &Path, test_share: f64) -> Result<Box<dyn Dataset>, DataError> {
    if idx::locate(path, TRAIN_FILES.0).is_ok() {
        return Ok(Box::new(IdxDataset { dir: path.to_path_buf() }));
    }
    if !path.is_dir() {
        return Err(DataError::Bad {
            path: path.to_path_buf(),
            what: "no dataset here: expected MNIST's IDX files or an image folder (`pipeline data fetch` gets MNIST)"
                .into(),
        });
    }
    Ok(Box::new(ImageFolder::open(path, test_share)?))
}

/// [`open`] (a [`table::Table`] for a tabular task), refusing a dataset whose classes are not
/// the task's, in its order.
pub fn open_for(path: &Path, test_share: f64, task: &gitops::task::Task) -> Result<Box<dyn Dataset>, DataError> {
    let dataset: Box<dyn Dataset> = match task.schema() {
        Some(_) => Box::new(table::Table::open(path, test_share, task)?),
        None => open(path, test_share)?,
    };
    if dataset.classes() != task.classes {
        return Err(DataError::Classes {
            dataset: dataset.describe(),
            found: dataset.classes(),
            expected: task.classes.clone(),
        });
    }
    Ok(dataset)
}

/// MNIST's four IDX files in a folder.
#[derive(Debug)]
pub struct IdxDataset {
    pub dir: PathBuf,
}

impl Dataset for IdxDataset {
    fn classes(&self) -> Vec<String> {
        (0..10).map(|d| d.to_string()).collect()
    }

    fn items(&self, split: Split) -> Result<Vec<Item>, DataError> {
        let set = Mnist::load(&self.dir, split)?;
        let images = idx::locate(&self.dir, split_files(split).0)?;
        Ok((0..set.len())
            .map(|i| Item {
                path: images.clone(),
                index: Some(i as u64),
                label: usize::from(set.labels[i]),
                sha256: hex::encode(Sha256::digest(set.image(i))),
            })
            .collect())
    }

    fn describe(&self) -> String {
        format!("MNIST IDX files in {}", self.dir.display())
    }
}

impl Dataset for ImageFolder {
    fn classes(&self) -> Vec<String> {
        ImageFolder::classes(self).to_vec()
    }

    fn items(&self, split: Split) -> Result<Vec<Item>, DataError> {
        ImageFolder::items(self, split)
    }

    fn describe(&self) -> String {
        format!("an image folder ({}) in {}", self.layout_name(), self.root().display())
    }
}

fn split_files(split: Split) -> (&'static str, &'static str) {
    match split {
        Split::Train => TRAIN_FILES,
        Split::Test => TEST_FILES,
    }
}

/// Decodes items' images: IDX images from their file (each file read once), image files under
/// `limits`. Errors are messages naming what is wrong, for validate's quarantine.
#[derive(Debug)]
pub struct Loader {
    limits: ImageLimits,
    idx: Mutex<HashMap<PathBuf, Arc<idx::Images>>>,
    tables: Mutex<HashMap<PathBuf, Arc<table::Table>>>,
}

impl Loader {
    pub fn new(limits: ImageLimits) -> Self {
        Self { limits, idx: Mutex::default(), tables: Mutex::default() }
    }

    /// Reads the tables at `paths` for `task` ahead of [`Loader::load_row`]. Call it before a
    /// parallel loop over rows: polars runs on its own thread pool, which must not be entered
    /// from rayon's workers while they wait on this cache.
    pub fn open_tables<'a>(&self, task: &gitops::task::Task, paths: impl IntoIterator<Item = &'a Path>) {
        for path in paths {
            // An unreadable table is reported by the `load_row` of each of its rows.
            let _ = self.load_row(path, 0, task);
        }
    }

    /// Row `index` of the table at `path`, encoded for `task` (each file read once).
    pub fn load_row(&self, path: &Path, index: u64, task: &gitops::task::Task) -> Result<Vec<f32>, String> {
        let table = {
            let mut cache = self.tables.lock().unwrap_or_else(PoisonError::into_inner);
            match cache.get(path) {
                Some(table) => table.clone(),
                None => {
                    let table = Arc::new(table::Table::open(path, 0.0, task).map_err(|e| format!("unreadable: {e}"))?);
                    cache.insert(path.to_path_buf(), table.clone());
                    table
                }
            }
        };
        let row = usize::try_from(index).ok().and_then(|i| table.rows().get(i)).ok_or("row past the table's end")?;
        Ok(row.values.clone())
    }

    /// The image of the file at `path`, or of image `index` in the IDX file at `path`.
    pub fn load(&self, path: &Path, index: Option<u64>) -> Result<DynamicImage, String> {
        let Some(index) = index else {
            let bytes =
                gitops::image_input::read_limited(path, &self.limits).map_err(|e| format!("unreadable: {e}"))?;
            return decode_limited(&bytes, &self.limits).map_err(|e| format!("undecodable: {e}"));
        };
        let images = {
            let mut cache = self.idx.lock().unwrap_or_else(PoisonError::into_inner);
            match cache.get(path) {
                Some(images) => images.clone(),
                None => {
                    let images = Arc::new(idx::read_images(path).map_err(|e| format!("unreadable: {e}"))?);
                    cache.insert(path.to_path_buf(), images.clone());
                    images
                }
            }
        };
        let i = usize::try_from(index).ok().filter(|i| *i < images.count).ok_or("index past the IDX file's end")?;
        let pixels = images.pixels[i * PIXELS..(i + 1) * PIXELS].to_vec();
        Ok(DynamicImage::ImageLuma8(image::GrayImage::from_raw(SIDE as u32, SIDE as u32, pixels).expect("28x28")))
    }
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
        let (images, labels) = split_files(split);
        let images = idx::read_images(&idx::locate(dir, images)?)?;
        let labels_path = idx::locate(dir, labels)?;
        let labels = idx::read_labels(&labels_path)?;
        if images.count != labels.len() {
            return Err(IdxError::CountMismatch { images: images.count, labels: labels.len(), path: labels_path });
        }
        Ok(Self { pixels: images.pixels, labels })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use gitops::task::Task;

    #[test]
    fn a_dataset_of_other_classes_than_the_task_is_refused_naming_both() {
        let dir = tempfile::tempdir().unwrap();
        for class in ["cat", "dog"] {
            std::fs::create_dir_all(dir.path().join(class)).unwrap();
            image::GrayImage::new(8, 8).save(dir.path().join(class).join("a.png")).unwrap();
        }
        let err = open_for(dir.path(), 0.5, &Task::default()).err().expect("refused").to_string();
        assert!(err.contains(r#"has classes ["cat", "dog"], but the task lists ["0", "1""#), "{err}");
        let task = Task { classes: vec!["cat".into(), "dog".into()], ..Task::default() };
        assert_eq!(open_for(dir.path(), 0.5, &task).unwrap().classes(), task.classes);
    }
}
