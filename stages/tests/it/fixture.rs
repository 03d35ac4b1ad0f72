//! Inputs the stage tests build in temp dirs: distinct synthetic digits and their PNGs, a tiny
//! MNIST in IDX files, a params.yaml and manifest rows.

use model::data::{PIXELS, SIDE, TEST_FILES, TRAIN_FILES, idx};
use stages::manifest::{Role, Row};
use std::io::Cursor;
use std::path::{Path, PathBuf};

/// A digit-like ring, white ink on black as MNIST stores it; its radii and ink level depend on
/// `n`, so every `n` below 1,200 gives different pixels.
pub fn digit(n: usize) -> [u8; PIXELS] {
    let (rx, ry) = (4.0 + (n % 4) as f64, 6.0 + (n / 4 % 3) as f64);
    let ink = 255 - (n / 12 % 100) as u8;
    let mut pixels = [0u8; PIXELS];
    for y in 0..SIDE {
        for x in 0..SIDE {
            let (dx, dy) = ((x as f64 - 14.0) / rx, (y as f64 - 14.0) / ry);
            if (0.65..=1.0).contains(&(dx * dx + dy * dy).sqrt()) {
                pixels[y * SIDE + x] = ink;
            }
        }
    }
    pixels
}

/// A grey image as PNG bytes.
pub fn png_of(image: &image::GrayImage) -> Vec<u8> {
    let mut out = Vec::new();
    image.write_to(&mut Cursor::new(&mut out), image::ImageFormat::Png).unwrap();
    out
}

/// 28x28 pixels as PNG bytes.
pub fn png(pixels: &[u8; PIXELS]) -> Vec<u8> {
    png_of(&model::preprocess::mnist_image(pixels))
}

/// The hex sha256 of `bytes`.
pub fn sha256(bytes: &[u8]) -> String {
    let file = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(file.path(), bytes).unwrap();
    model::data::fetch::sha256_file(file.path()).unwrap()
}

/// The digit as the model sees it: what validate puts in the clean manifest.
pub fn as_model_sees(image: &image::DynamicImage) -> [u8; PIXELS] {
    model::preprocess::to_mnist(image).unwrap()
}

/// Writes a tiny MNIST into `dir` (raw IDX files): `train` and `test` digits, `digit(1000 + i)`
/// labelled `i % 10`. Returns the train and test images file.
pub fn tiny_mnist(dir: &Path, train: usize, test: usize) -> (PathBuf, PathBuf) {
    std::fs::create_dir_all(dir).unwrap();
    let mut written = Vec::new();
    for ((images, labels), count) in [(TRAIN_FILES, train), (TEST_FILES, test)] {
        let pixels: Vec<u8> = (0..count).flat_map(|i| digit(1000 + i)).collect();
        let digits: Vec<u8> = (0..count).map(|i| (i % 10) as u8).collect();
        std::fs::write(dir.join(images), idx::encode_images(&pixels, count)).unwrap();
        std::fs::write(dir.join(labels), idx::encode_labels(&digits)).unwrap();
        written.push(dir.join(images));
    }
    (written[0].clone(), written[1].clone())
}

/// Writes `dir/params.yaml` holding `text`: the sections a stage reads (keys left out take
/// their defaults).
pub fn params(dir: &Path, text: &str) -> PathBuf {
    let path = dir.join("params.yaml");
    std::fs::write(&path, text).unwrap();
    path
}

/// A manifest row for an image file at `path`; feedback roles get sub_set 0.
pub fn row(path: &Path, sha256: &str, label: usize, role: Role) -> Row {
    let feedback = matches!(role, Role::FeedbackTrain | Role::Holdout);
    Row {
        path: path.display().to_string(),
        index: None,
        sha256: sha256.to_string(),
        label,
        source: "test".into(),
        sub_set: feedback.then_some(0),
        kind: if feedback { "wrong" } else { "base" }.into(),
        time: None,
        weight: 1.0,
        role,
        trained: false,
        pixels: None,
        review: None,
    }
}
