//! Shared helpers: test images, temp repos, stores.

use std::io::Cursor;
use std::path::Path;

use gitops::feedback::{FeedbackStore, Kind, Sample};
use gitops::params::FeedbackParams;
use gitops::task::Task;
use image::{GrayImage, ImageFormat, Luma};

/// A distinct 28x28 grayscale PNG for each `seed`.
pub fn png(seed: u32) -> Vec<u8> {
    let img = GrayImage::from_fn(28, 28, |x, y| {
        let v = (x + 28 * y).wrapping_mul(2_654_435_761u32 ^ seed.wrapping_mul(40_503));
        Luma([(v >> 24) as u8])
    });
    let mut out = Vec::new();
    img.write_to(&mut Cursor::new(&mut out), ImageFormat::Png).unwrap();
    out
}

pub fn sample(seed: u32, label: u8) -> Sample {
    Sample {
        image: png(seed),
        label: label.to_string(),
        kind: Kind::Correct,
        predicted: Some(label.to_string()),
        confidence: Some(0.9),
        model_version: Some("v1".into()),
        source: format!("test:{seed}"),
    }
}

pub fn store(root: &Path, threshold: u32) -> FeedbackStore {
    FeedbackStore::open_with(root, FeedbackParams { threshold, ..FeedbackParams::default() }, Task::default())
}

/// All stored sample PNGs under `root/new_data`, as sorted relative paths.
pub fn stored_pngs(root: &Path) -> Vec<String> {
    let mut out = Vec::new();
    walk(&root.join("new_data"), root, &mut out);
    out.retain(|p| p.ends_with(".png") && !p.contains("/.tmp/"));
    out.sort();
    out
}

fn walk(dir: &Path, root: &Path, out: &mut Vec<String>) {
    let Ok(entries) = std::fs::read_dir(dir) else { return };
    for entry in entries.flatten() {
        let path = entry.path();
        if path.is_dir() {
            walk(&path, root, out);
        } else {
            out.push(path.strip_prefix(root).unwrap().to_string_lossy().into_owned());
        }
    }
}

pub fn write_params(root: &Path, threshold: u32) {
    let text = format!("feedback:\n  threshold: {threshold}\ntrigger:\n  kind: none\n");
    std::fs::write(root.join("params.yaml"), text).unwrap();
}
