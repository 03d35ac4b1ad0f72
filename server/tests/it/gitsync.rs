//! The server's feedback and git (#14): a failing commit is retried with backoff, counted in
//! /metrics and shown in /api/status; what a killed server left is committed and pushed at
//! start and its seal fires; two servers on one origin fire one trigger per seal and answer
//! sub_sets that a replay does not change.

use std::collections::BTreeMap;
use std::io::Cursor;
use std::path::Path;
use std::time::Duration;

use base64::Engine;
use gitops::feedback::{FeedbackStore, Kind, Sample};
use serde_json::{Value, json};

use crate::http::{get, post_json, send};
use crate::support::{TestRepo, git, metric, start, wait_for};

fn app(state: &model_server::AppState) -> axum::Router {
    model_server::app(state.clone(), Duration::from_secs(30))
}

/// A distinct 28x28 grayscale PNG with ink for each `seed` (no MNIST needed).
pub fn noise_png(seed: u32) -> Vec<u8> {
    let img = image::GrayImage::from_fn(28, 28, |x, y| {
        let v = (x + 28 * y + 1).wrapping_mul(2_654_435_761u32 ^ seed.wrapping_mul(40_503));
        image::Luma([(v >> 24) as u8])
    });
    let mut out = Vec::new();
    img.write_to(&mut Cursor::new(&mut out), image::ImageFormat::Png).unwrap();
    out
}

pub fn feedback_json(seed: u32, label: u8) -> Value {
    let image = base64::engine::general_purpose::STANDARD.encode(noise_png(seed));
    json!({ "image": image, "label": label, "kind": "correct" })
}

/// A local trigger that appends each sub_set it is fired for to `fired` (set_param writes the
/// value verbatim).
pub fn recording_trigger(fired: &Path) -> String {
    format!("local\n  local_command: [\"sh\", \"-c\", \"echo $PIPELINE_SUB_SET >> {}\"]", fired.display())
}

pub fn fired_sub_sets(fired: &Path) -> Vec<u32> {
    let text = std::fs::read_to_string(fired).unwrap_or_default();
    let mut out: Vec<u32> = text.lines().map(|l| l.trim().parse().unwrap()).collect();
    out.sort_unstable();
    out
}

/// `label/sha256` -> the sub_sets holding it, on the origin's main.
pub fn samples_on(origin: &Path) -> BTreeMap<String, Vec<u32>> {
    let mut out: BTreeMap<String, Vec<u32>> = BTreeMap::new();
    for file in git(origin, &["ls-tree", "-r", "--name-only", "main"]).lines().filter(|f| f.ends_with(".png")) {
        let parts: Vec<&str> = file.split('/').collect();
        let sub_set = parts[1].strip_prefix("sub_set_").unwrap().parse().unwrap();
        out.entry(parts[2..].join("/").trim_end_matches(".png").to_string()).or_default().push(sub_set);
    }
    out
}

pub fn sealed_on(origin: &Path) -> Vec<u32> {
    let files = git(origin, &["ls-tree", "-r", "--name-only", "main"]);
    let mut out: Vec<u32> = files
        .lines()
        .filter_map(|f| f.strip_prefix("new_data/sub_set_")?.strip_suffix("/sealed.json")?.parse().ok())
        .collect();
    out.sort_unstable();
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failing_feedback_commit_is_retried_with_backoff_counted_and_shown() {
    let repo = TestRepo::new(&[]);
    // Another git process holds the index: every commit fails until it is gone.
    let lock = repo.server().join(".git/index.lock");
    std::fs::write(&lock, "").unwrap();
    let state = start(&repo.server(), &[]);
    let app = app(&state);
    let answer = send(&app, post_json("/feedback", &feedback_json(1, 4))).await.json();
    assert_eq!((answer["stored"].as_bool(), answer["settled"].as_bool()), (Some(true), Some(false)), "{answer}");

    let status = send(&app, get("/api/status")).await.json();
    assert!(status["git"]["failures_in_a_row"].as_u64() >= Some(1), "{status}");
    assert!(status["git"]["last_error"].as_str().is_some_and(|e| e.contains("index.lock")), "{status}");
    let text = state.metrics.render();
    assert!(metric(&text, "model_server_feedback_syncs_total{result=\"failure\"}") >= 1.0, "{text}");
    assert!(metric(&text, "model_server_feedback_sync_failures_in_a_row") >= 1.0, "{text}");

    // What `pipeline fsck --repair` (or the other git, finishing) does; no new feedback comes.
    std::fs::remove_file(&lock).unwrap();
    wait_for(Duration::from_secs(60), "the committer's retry to push the sample", || {
        samples_on(&repo.origin()).len() == 1
    });
    wait_for(Duration::from_secs(10), "the status to say the sync recovered", || {
        state.feedback.health().failures_in_a_row == 0
    });
    let text = state.metrics.render();
    assert!(metric(&text, "model_server_feedback_syncs_total{result=\"success\"}") >= 1.0, "{text}");
    assert_eq!(metric(&text, "model_server_feedback_sync_failures_in_a_row"), 0.0, "{text}");
}

#[test]
fn what_a_killed_server_left_is_pushed_at_start_and_its_seal_fires() {
    let dir = tempfile::tempdir().unwrap();
    let fired = dir.path().join("fired.txt");
    let trigger = recording_trigger(&fired);
    let repo = TestRepo::new(&[("feedback", "threshold", "3"), ("trigger", "kind", &trigger)]);
    // What a server acknowledged before kill -9: stored durably (sub_set 0 sealed), never
    // committed.
    let store = FeedbackStore::open(&repo.server()).unwrap();
    for seed in 0..4 {
        let sample = Sample::new(noise_png(seed), "7", Kind::Correct, "model-server");
        store.add(sample).unwrap();
    }
    assert!(samples_on(&repo.origin()).is_empty());

    let state = start(&repo.server(), &[]);
    wait_for(Duration::from_secs(30), "the samples to be pushed at start", || samples_on(&repo.origin()).len() == 4);
    assert_eq!(sealed_on(&repo.origin()), vec![0]);
    wait_for(Duration::from_secs(30), "the trigger for sub_set 0", || fired_sub_sets(&fired) == vec![0]);
    std::thread::sleep(Duration::from_millis(500));
    assert_eq!(fired_sub_sets(&fired), vec![0], "fired once");
    drop(state);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_servers_on_one_origin_fire_one_trigger_per_seal_and_keep_their_answers() {
    let dir = tempfile::tempdir().unwrap();
    let fired = dir.path().join("fired.txt");
    let trigger = recording_trigger(&fired);
    // Room for many rejected pushes (set_param writes the value verbatim).
    let git = "20\n  push_attempts: 40\n  backoff_ms: 5";
    let repo =
        TestRepo::new(&[("feedback", "threshold", "10"), ("trigger", "kind", &trigger), ("git", "coalesce_ms", git)]);
    let replica = repo.clone_origin("replica");
    let servers = [app(&start(&repo.server(), &[])), app(&start(&replica, &[]))];
    let thirty = |w: u32| {
        let app = &servers[w as usize];
        async move {
            let mut answers = Vec::new();
            for i in 0..30u32 {
                let answer = send(app, post_json("/feedback", &feedback_json(1000 * w + i, (i % 10) as u8))).await;
                answers.push(answer.json());
            }
            answers
        }
    };
    let (first, second) = tokio::join!(thirty(0), thirty(1));
    let answers: Vec<Value> = first.into_iter().chain(second).collect();

    let on_origin = samples_on(&repo.origin());
    assert_eq!(on_origin.len(), 60);
    for answer in &answers {
        assert_eq!(answer["settled"], true, "{answer}");
        let sha = answer["sha256"].as_str().unwrap();
        let (_, subs) = on_origin.iter().find(|(key, _)| key.ends_with(sha)).expect("on the origin");
        assert_eq!(subs, &vec![answer["sub_set"].as_u64().unwrap() as u32], "the answer stands: {answer}");
    }
    let sealed = sealed_on(&repo.origin());
    assert_eq!(sealed, (0..6).collect::<Vec<_>>());
    wait_for(Duration::from_secs(30), "a trigger for each seal", || fired_sub_sets(&fired).len() >= 6);
    std::thread::sleep(Duration::from_millis(500));
    assert_eq!(fired_sub_sets(&fired), sealed, "one trigger per seal");
}
