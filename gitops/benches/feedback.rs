//! Durable feedback adds per second from 8 concurrent writers, verifying nothing was lost.
//!
//! `cargo bench -p gitops --bench feedback`; `BENCH_ADDS` sets adds per writer (default 250).
//! Three shapes: 8 threads calling `add` on one shared `FeedbackStore` (what a server does:
//! group commit), 8 threads each with its own handle (serialized by the OS file lock alone),
//! and 8 threads calling `add_many` with 10 samples each time (CLI invocations).

use std::io::Cursor;
use std::time::Instant;

use gitops::feedback::{FeedbackStore, Kind, Sample};
use gitops::params::FeedbackParams;
use gitops::task::Task;
use image::{GrayImage, ImageFormat, Luma};

const WRITERS: u32 = 8;

fn png(seed: u32) -> Vec<u8> {
    let img = GrayImage::from_fn(28, 28, |x, y| {
        Luma([((x * 7 + y * 13) as u8).wrapping_mul(seed as u8 | 1) ^ (seed >> 8) as u8])
    });
    let mut out = Vec::new();
    img.write_to(&mut Cursor::new(&mut out), ImageFormat::Png).expect("encode");
    out
}

/// How each writer hands its samples to the store.
#[derive(Clone, Copy)]
enum Shape {
    /// One `add` per sample on one shared handle (a server's request threads).
    Shared,
    /// One `add` per sample, each writer with its own handle (the OS lock alone).
    PerWriter,
    /// `add_many` of 10 samples at a time (CLI invocations with several images).
    Many,
}

fn sample(w: usize, i: usize, image: Vec<u8>) -> Sample {
    Sample {
        image,
        label: (i % 10).to_string(),
        kind: Kind::Correct,
        predicted: Some((i % 10).to_string()),
        confidence: Some(0.5),
        model_version: Some("bench".into()),
        source: format!("bench:{w}"),
    }
}

/// One run in a fresh store under `root`. Stores are only deleted when the bench ends: ext4
/// skips inodes freed in the last ~30 s when it allocates new ones, so deleting a 2,000-file
/// store between runs would make the next run pay for that scan, which no real store does.
fn run(root: &std::path::Path, shape: Shape, per_writer: u32) -> f64 {
    let dir = tempfile::tempdir_in(root).expect("temp dir");
    let dir = dir.keep();
    let params = FeedbackParams { threshold: 10, ..FeedbackParams::default() };
    let one = FeedbackStore::open_with(dir.as_path(), params.clone(), Task::default());
    let images: Vec<Vec<Vec<u8>>> =
        (0..WRITERS).map(|w| (0..per_writer).map(|i| png(w * per_writer + i)).collect()).collect();
    let start = Instant::now();
    std::thread::scope(|s| {
        for (w, batch) in images.into_iter().enumerate() {
            let store = match shape {
                Shape::PerWriter => FeedbackStore::open_with(dir.as_path(), params.clone(), Task::default()),
                Shape::Shared | Shape::Many => one.clone(),
            };
            s.spawn(move || {
                let samples: Vec<Sample> = batch.into_iter().enumerate().map(|(i, img)| sample(w, i, img)).collect();
                let outcomes: Vec<_> = match shape {
                    Shape::Many => {
                        samples.chunks(10).flat_map(|c| store.add_many(c.to_vec()).expect("add_many")).collect()
                    }
                    Shape::Shared | Shape::PerWriter => {
                        samples.into_iter().map(|s| store.add(s).expect("add")).collect()
                    }
                };
                assert!(outcomes.iter().all(|o| !o.duplicate), "images are distinct");
            });
        }
    });
    let secs = start.elapsed().as_secs_f64();
    let total = u64::from(WRITERS * per_writer);
    let report = one.fsck(false).expect("fsck");
    assert!(report.is_consistent(), "lost or doubled samples: {:#?}", report.found);
    assert_eq!(report.count.totals.counted, total, "every add is stored once");
    assert_eq!(u64::from(report.count.sub_set_count), total / 10);
    total as f64 / secs
}

fn main() {
    let per_writer: u32 = std::env::var("BENCH_ADDS").ok().and_then(|v| v.parse().ok()).unwrap_or(250);
    println!("feedback store: {WRITERS} writers x {per_writer} durable adds (threshold 10), verified by fsck");
    let shapes = [
        ("add, one shared store (group commit)", Shape::Shared),
        ("add, a store handle per writer (OS lock only)", Shape::PerWriter),
        ("add_many of 10, one shared store", Shape::Many),
    ];
    let root =
        tempfile::tempdir_in(std::env::var_os("BENCH_DIR").unwrap_or_else(|| std::env::temp_dir().into_os_string()))
            .expect("temp dir");
    for (name, shape) in shapes {
        let runs: Vec<f64> = (0..3).map(|_| run(root.path(), shape, per_writer)).collect();
        let mut sorted = runs.clone();
        sorted.sort_by(f64::total_cmp);
        println!(
            "{name}: median {:.0} adds/s (runs: {})",
            sorted[1],
            runs.iter().map(|r| format!("{r:.0}")).collect::<Vec<_>>().join(", ")
        );
    }
}
