//! Threads and processes adding at once, and a writer killed mid-add.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use gitops::feedback::{FeedbackStore, IssueKind};

use crate::support::{png, sample, store, stored_pngs, write_params};

fn assert_exact(root: &Path, threshold: u32, n: u64) {
    assert_eq!(stored_pngs(root).len() as u64, n);
    let report = FeedbackStore::open(root).unwrap().fsck(false).unwrap();
    assert!(report.is_consistent(), "{:#?}", report.found);
    let c = report.count;
    assert_eq!(c.totals.counted, n);
    assert_eq!(u64::from(c.sub_set_count), n / u64::from(threshold));
    assert_eq!(u64::from(c.current_count), n % u64::from(threshold));
}

#[test]
fn eight_threads_times_a_hundred_adds_are_exact() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    write_params(root, 10);
    let shared = store(root, 10);
    let shas: Vec<String> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..8u32)
            .map(|t| {
                // Half share one handle (group commit), half open their own (OS lock).
                let store = if t % 2 == 0 { shared.clone() } else { store(root, 10) };
                s.spawn(move || {
                    (0..100u32).map(|i| store.add(sample(t * 1000 + i, (i % 10) as u8)).unwrap()).collect::<Vec<_>>()
                })
            })
            .collect();
        handles
            .into_iter()
            .flat_map(|h| h.join().unwrap())
            .map(|o| {
                assert!(!o.duplicate);
                o.sha256
            })
            .collect()
    });
    assert_eq!(shas.iter().collect::<BTreeSet<_>>().len(), 800);
    assert_exact(root, 10, 800);
    let sealed: Vec<_> = (0..80).filter(|n| root.join(format!("new_data/sub_set_{n}/sealed.json")).is_file()).collect();
    assert_eq!(sealed.len(), 80);
}

fn write_images(root: &Path, first: u32, n: u32) -> Vec<PathBuf> {
    let dir = root.join(format!("images_{first}"));
    std::fs::create_dir_all(&dir).unwrap();
    (first..first + n)
        .map(|i| {
            let path = dir.join(format!("{i}.png"));
            std::fs::write(&path, png(i)).unwrap();
            path
        })
        .collect()
}

fn add_command(root: &Path, label: u8, files: &[PathBuf]) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_gitops-feedback"));
    cmd.arg("--repo").arg(root).args(["feedback", "add", "--no-git", "--label", &label.to_string()]).args(files);
    cmd.stdout(Stdio::null()).stderr(Stdio::piped());
    cmd
}

#[test]
fn four_processes_at_once_are_exact() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    write_params(root, 7);
    let children: Vec<_> =
        (0..4u32).map(|p| add_command(root, p as u8, &write_images(root, p * 1000, 50)).spawn().unwrap()).collect();
    for child in children {
        let out = child.wait_with_output().unwrap();
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    }
    assert_exact(root, 7, 200);
}

#[test]
fn a_writer_killed_mid_add_leaves_no_partial_file_and_fsck_repairs() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    write_params(root, 10);
    let files = write_images(root, 0, 400);
    for (round, after) in [3usize, 17, 40].into_iter().enumerate() {
        let before = stored_pngs(root).len();
        let mut child = add_command(root, round as u8, &files).spawn().unwrap();
        // Kill while it is writing: once `after` new samples are visible, at no chosen step.
        let deadline = std::time::Instant::now() + Duration::from_secs(120);
        while stored_pngs(root).len() < before + after && std::time::Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(2));
        }
        child.kill().unwrap(); // SIGKILL
        child.wait().unwrap();
        let report = FeedbackStore::open(root).unwrap().fsck(false).unwrap();
        let allowed = [IssueKind::TempFile, IssueKind::OrphanJournalLine, IssueKind::StaleCount, IssueKind::NotSealed];
        for issue in &report.found {
            assert!(allowed.contains(&issue.kind), "round {round}: a kill left {issue:?}");
        }
        eprintln!(
            "round {round}: after the kill fsck found {:?}",
            report.found.iter().map(|i| i.kind).collect::<Vec<_>>()
        );
        let repaired = FeedbackStore::open(root).unwrap().fsck(true).unwrap();
        assert!(repaired.is_consistent(), "{:#?}", repaired.remaining);
        let n = stored_pngs(root).len() as u64;
        assert!(n >= (before + after) as u64, "round {round}: the writer was killed before it wrote");
        assert!(n < (before + files.len()) as u64, "round {round}: the writer finished before the kill");
        assert_eq!(repaired.count.totals.counted, n);
        assert!(FeedbackStore::open(root).unwrap().fsck(false).unwrap().found.is_empty());
    }
}
