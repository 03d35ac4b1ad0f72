//! `cargo bench -p gitops --bench storage`: a repo holding 10,000 feedback images under
//! `storage: git` and under `storage: dvc` (a moto_server S3 endpoint on 127.0.0.1 as the DVC
//! remote), in the same run. For each: the writer's adds and its one sync (commit, upload,
//! push), the origin's size, and what a new replica pays: `git clone --no-local` (a real pack
//! transfer) and the first sync of a store on it. Checks that the dvc origin holds no sample
//! and that the bucket holds every one. `BENCH_IMAGES` sets the count (default 10,000).

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::time::Instant;

use gitops::feedback::{FeedbackStore, Kind, Sample};
use gitops::git::{Credentials, FeedbackSync, Rebase, commit_paths, push_with_retry};
use gitops::params::GitParams;
use gitops::trigger::Trigger;
use image::{GrayImage, ImageFormat, Luma};
use testkit::moto::Moto;

const BUCKET: &str = "feedback";

/// A 28x28 grey image unlike any other seed's, about the size of an MNIST digit's PNG.
fn png(seed: u32) -> Vec<u8> {
    let mut state = seed.wrapping_mul(2_654_435_761) | 1;
    let img = GrayImage::from_fn(28, 28, |x, y| {
        state ^= state << 13;
        state ^= state >> 17;
        state ^= state << 5;
        let stroke = (x as i32 - 14).abs() + (y as i32 - 14).abs() < 9;
        Luma([if stroke { 200 + (state % 56) as u8 } else { (state % 8) as u8 }])
    });
    let mut out = Vec::new();
    img.write_to(&mut std::io::Cursor::new(&mut out), ImageFormat::Png).expect("encode");
    out
}

fn git(dir: &Path, args: &[&str]) -> String {
    testkit::run(Command::new("git").args(args).current_dir(dir), &format!("git {}", args.join(" ")))
}

/// Bytes under `path` (`du -sb`).
fn size(path: &Path) -> u64 {
    let out = testkit::run(Command::new("du").arg("-sb").arg(path), "du");
    out.split_whitespace().next().and_then(|n| n.parse().ok()).expect("du prints a size")
}

fn mib(bytes: u64) -> f64 {
    bytes as f64 / (1 << 20) as f64
}

struct Figures {
    add_s: f64,
    sync_s: f64,
    origin_bytes: u64,
    clone_s: f64,
    clone_bytes: u64,
    replica_sync_s: f64,
}

/// An origin whose params say `storage` (threshold 10), and a writer clone of it.
fn repo(work: &Path, storage: &str, moto: &Moto) -> (PathBuf, PathBuf) {
    let origin = work.join(format!("{storage}.git"));
    git(work, &["init", "-q", "--bare", "-b", "main", origin.to_str().unwrap()]);
    let writer = work.join(format!("{storage}-writer"));
    git(work, &["clone", "-q", origin.to_str().unwrap(), writer.to_str().unwrap()]);
    git(&writer, &["config", "user.name", "bench"]);
    git(&writer, &["config", "user.email", "bench@localhost"]);
    git(&writer, &["checkout", "-q", "-b", "main"]);
    std::fs::write(
        writer.join("params.yaml"),
        format!("feedback:\n  threshold: 10\ntrigger:\n  kind: none\nstorage: {storage}\n"),
    )
    .unwrap();
    let mut paths = vec![PathBuf::from("params.yaml")];
    if storage == "dvc" {
        std::fs::create_dir_all(writer.join(".dvc")).unwrap();
        let config = format!(
            "[core]\n    remote = store\n['remote \"store\"']\n    url = s3://{BUCKET}/{}\n    endpointurl = {}\n",
            work.file_name().unwrap().to_string_lossy(),
            moto.endpoint
        );
        std::fs::write(writer.join(".dvc/config"), config).unwrap();
        std::fs::write(writer.join(".dvc/.gitignore"), "/config.local\n/tmp\n/cache\n").unwrap();
        paths.extend([PathBuf::from(".dvc/config"), PathBuf::from(".dvc/.gitignore")]);
    }
    let paths: Vec<&Path> = paths.iter().map(PathBuf::as_path).collect();
    commit_paths(&writer, &paths, "init").unwrap();
    push_with_retry(&writer, &git_params(), &Credentials::default(), &mut Rebase).unwrap();
    keys(&writer, moto);
    (origin, writer)
}

/// The moto user's keys in the clone's own `.dvc/config.local`.
fn keys(clone: &Path, moto: &Moto) {
    if clone.join(".dvc").is_dir() {
        let local = format!(
            "['remote \"store\"']\n    access_key_id = {}\n    secret_access_key = {}\n",
            moto.key_id, moto.secret
        );
        std::fs::write(clone.join(".dvc/config.local"), local).unwrap();
    }
}

fn git_params() -> GitParams {
    GitParams { backoff_ms: 10, ..GitParams::default() }
}

fn sync_for(root: &Path) -> (FeedbackStore, FeedbackSync) {
    let store = FeedbackStore::open(root).unwrap();
    let sync =
        FeedbackSync::new(store.clone(), git_params(), Credentials::default()).with_trigger(Arc::new(Trigger::None));
    (store, sync)
}

fn measure(work: &Path, storage: &str, moto: &Moto, images: u32) -> Figures {
    let (origin, writer) = repo(work, storage, moto);
    let (store, sync) = sync_for(&writer);
    let start = Instant::now();
    for chunk in (0..images).collect::<Vec<_>>().chunks(100) {
        let samples = chunk
            .iter()
            .map(|&i| Sample::new(png(i), (i % 10).to_string(), Kind::Correct, format!("bench:{i}")))
            .collect();
        store.add_many(samples).expect("add_many");
    }
    let add_s = start.elapsed().as_secs_f64();
    let start = Instant::now();
    let outcome = sync.sync("feedback: bench").expect("sync");
    assert!(!outcome.offline() && outcome.commit.is_some(), "{outcome:?}");
    let sync_s = start.elapsed().as_secs_f64();
    let tracked = git(&writer, &["ls-tree", "-r", "--name-only", "main", "new_data"]);
    let in_git = tracked.lines().filter(|l| l.ends_with(".png")).count();
    assert_eq!(in_git, if storage == "git" { images as usize } else { 0 }, "samples in git under {storage}");
    git(&origin, &["gc", "-q"]);
    let origin_bytes = size(&origin);

    let replica = work.join(format!("{storage}-replica"));
    let url = format!("file://{}", origin.display());
    let start = Instant::now();
    git(work, &["clone", "-q", "--no-local", &url, replica.to_str().unwrap()]);
    let clone_s = start.elapsed().as_secs_f64();
    let clone_bytes = size(&replica);
    keys(&replica, moto);
    git(&replica, &["config", "user.name", "replica"]);
    git(&replica, &["config", "user.email", "replica@localhost"]);
    let (replica_store, replica_sync) = sync_for(&replica);
    let start = Instant::now();
    replica_sync.sync("feedback: replica").expect("replica sync");
    let replica_sync_s = start.elapsed().as_secs_f64();
    let (count, _) = replica_store.status().unwrap();
    assert_eq!(count.totals.counted, u64::from(images), "the replica counts every sample");
    Figures { add_s, sync_s, origin_bytes, clone_s, clone_bytes, replica_sync_s }
}

fn main() {
    let images: u32 = std::env::var("BENCH_IMAGES").ok().and_then(|v| v.parse().ok()).unwrap_or(10_000);
    let moto = Moto::start().expect("moto_server (python3 needed)");
    moto.create_bucket(BUCKET);
    let load = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
    eprintln!(
        "{images} feedback images; load before: {}",
        load.split_whitespace().take(3).collect::<Vec<_>>().join(" ")
    );
    let work = tempfile::tempdir().unwrap();
    let mut rows = Vec::new();
    for storage in ["git", "dvc"] {
        let dir = work.path().join(storage);
        std::fs::create_dir_all(&dir).unwrap();
        let f = measure(&dir, storage, &moto, images);
        eprintln!("{storage}: done");
        rows.push((storage, f));
    }
    let objects = moto.python(&format!(
        "print(sum(1 for p in client('s3').get_paginator('list_objects_v2').paginate(Bucket='{BUCKET}') for o in p.get('Contents', [])))"
    ));
    let load = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
    println!(
        "\n| storage | adds (s) | sync: commit, upload, push (s) | origin (MiB) | `git clone` (s) | clone on disk (MiB) | replica's first sync (s) |"
    );
    println!("|---|---:|---:|---:|---:|---:|---:|");
    for (storage, f) in &rows {
        println!(
            "| {storage} | {:.1} | {:.1} | {:.2} | {:.2} | {:.2} | {:.2} |",
            f.add_s,
            f.sync_s,
            mib(f.origin_bytes),
            f.clone_s,
            mib(f.clone_bytes),
            f.replica_sync_s
        );
    }
    let (git_f, dvc_f) = (&rows[0].1, &rows[1].1);
    println!(
        "\norigin {:.1}x smaller, clone {:.1}x faster with dvc; bucket objects: {}; load after: {}",
        git_f.origin_bytes as f64 / dvc_f.origin_bytes as f64,
        git_f.clone_s / dvc_f.clone_s,
        objects.trim(),
        load.split_whitespace().take(3).collect::<Vec<_>>().join(" ")
    );
}
