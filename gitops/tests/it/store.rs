//! Layout, counting, dedup, sealing, unsure samples, fsck.

use gitops::feedback::{IssueKind, Kind};

use crate::support::{sample, store, stored_pngs};

#[test]
fn adds_count_and_seal_at_the_threshold() {
    let dir = tempfile::tempdir().unwrap();
    let store = store(dir.path(), 3);
    let outcomes: Vec<_> = (0..7).map(|i| store.add(sample(i, (i % 10) as u8)).unwrap()).collect();
    let summary: Vec<_> = outcomes.iter().map(|o| (o.sub_set, o.current_count, o.sealed)).collect();
    assert_eq!(
        summary,
        [(0, 1, None), (0, 2, None), (0, 3, Some(0)), (1, 1, None), (1, 2, None), (1, 3, Some(1)), (2, 1, None)]
    );
    let o = &outcomes[0];
    assert_eq!(o.path.to_str().unwrap(), format!("new_data/sub_set_0/0/{}.png", o.sha256));
    assert!(dir.path().join(&o.path).is_file());
    let count: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.path().join("new_data/count.json")).unwrap()).unwrap();
    assert_eq!(count["current_count"], 1);
    assert_eq!(count["sub_set_count"], 2);
    assert_eq!(count["threshold"], 3);
    assert_eq!(count["totals"]["counted"], 7);
    assert_eq!(count["pending_retrain"], serde_json::json!([0, 1]));
    assert!(dir.path().join("new_data/sub_set_0/sealed.json").is_file());
    assert!(!dir.path().join("new_data/sub_set_2/sealed.json").exists());
    let journal = std::fs::read_to_string(dir.path().join("new_data/sub_set_1/feedback.jsonl")).unwrap();
    assert_eq!(journal.lines().count(), 3);
    let line: serde_json::Value = serde_json::from_str(journal.lines().next().unwrap()).unwrap();
    assert_eq!(line["kind"], "correct");
    assert_eq!(line["model_version"], "v1");
    assert_eq!(line["label"], "3");
    assert!(store.fsck(false).unwrap().is_consistent());
}

/// A store written before classes had names: journal labels are numbers and `count.json`
/// counts by label in an array of ten. It reads as it is, and the next write keeps it whole.
#[test]
fn a_store_from_before_class_names_keeps_working() {
    let dir = tempfile::tempdir().unwrap();
    let store = store(dir.path(), 3);
    for seed in 0..2 {
        store.add(sample(seed, 4)).unwrap();
    }
    // Rewrite the files as the previous version wrote them.
    let journal = dir.path().join("new_data/sub_set_0/feedback.jsonl");
    let old = std::fs::read_to_string(&journal)
        .unwrap()
        .replace("\"label\":\"4\"", "\"label\":4")
        .replace("\"predicted\":\"4\"", "\"predicted\":4");
    assert!(old.contains("\"label\":4,"), "{old}");
    std::fs::write(&journal, old).unwrap();
    let count_path = dir.path().join("new_data/count.json");
    let mut count: serde_json::Value = serde_json::from_slice(&std::fs::read(&count_path).unwrap()).unwrap();
    count["totals"]["by_label"] = serde_json::json!([0, 0, 0, 0, 2, 0, 0, 0, 0, 0]);
    std::fs::write(&count_path, serde_json::to_vec(&count).unwrap()).unwrap();

    let reopened = crate::support::store(dir.path(), 3);
    assert!(reopened.fsck(false).unwrap().is_consistent(), "{:?}", reopened.fsck(false).unwrap());
    let (count, _) = reopened.status().unwrap();
    assert_eq!(count.totals.by_label, [("4".to_string(), 2)].into());
    let outcome = reopened.add(sample(7, 4)).unwrap();
    assert_eq!(outcome.sealed, Some(0));
    let records: Vec<gitops::feedback::FeedbackRecord> =
        std::fs::read_to_string(&journal).unwrap().lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    assert!(records.iter().all(|r| r.label == "4" && r.predicted.as_deref() == Some("4")), "{records:?}");
}

#[test]
fn the_same_image_and_label_is_stored_once() {
    let dir = tempfile::tempdir().unwrap();
    let store = store(dir.path(), 2);
    let first = store.add(sample(1, 4)).unwrap();
    store.add(sample(2, 4)).unwrap(); // seals sub_set 0
    let again = store.add(sample(1, 4)).unwrap();
    assert!(again.duplicate && !first.duplicate);
    assert_eq!((again.sub_set, &again.path), (0, &first.path));
    let other_label = store.add(sample(1, 5)).unwrap();
    assert!(!other_label.duplicate);
    assert_eq!(stored_pngs(dir.path()).len(), 3);
    assert_eq!(store.status().unwrap().0.totals.counted, 3);
}

#[test]
fn unsure_samples_are_kept_apart_and_not_counted() {
    let dir = tempfile::tempdir().unwrap();
    let store = store(dir.path(), 2);
    let mut s = sample(1, 7);
    s.kind = Kind::Unsure;
    s.predicted = None;
    let o = store.add(s).unwrap();
    assert_eq!(o.path.to_str().unwrap(), format!("new_data/sub_set_0/unsure/7/{}.png", o.sha256));
    assert_eq!((o.current_count, o.sealed), (0, None));
    let (count, _) = store.status().unwrap();
    assert_eq!((count.totals.counted, count.totals.unsure, count.current_count), (0, 1, 0));
}

#[test]
fn mark_trained_clears_should_retrain() {
    let dir = tempfile::tempdir().unwrap();
    let store = store(dir.path(), 1);
    assert_eq!(store.should_retrain().unwrap(), None);
    store.add(sample(1, 1)).unwrap();
    store.add(sample(2, 2)).unwrap();
    assert_eq!(store.should_retrain().unwrap(), Some(0));
    assert!(store.mark_trained(2, "m").is_err(), "sub_set 2 is open");
    store.mark_trained(0, "m1").unwrap();
    assert_eq!(store.should_retrain().unwrap(), Some(1));
    store.mark_trained(1, "m2").unwrap();
    assert_eq!(store.should_retrain().unwrap(), None);
}

#[test]
fn fsck_finds_and_repairs_tampering() {
    let dir = tempfile::tempdir().unwrap();
    let store = store(dir.path(), 3);
    for i in 0..4 {
        store.add(sample(i, 1)).unwrap();
    }
    let data = dir.path().join("new_data");
    std::fs::write(data.join("count.json"), "{}").unwrap();
    std::fs::write(data.join(".tmp/leftover.png"), "x").unwrap();
    let victim = &stored_pngs(dir.path())[0];
    std::fs::write(dir.path().join(victim), b"garbage").unwrap();
    let journal = data.join("sub_set_1/feedback.jsonl");
    let mut text = std::fs::read_to_string(&journal).unwrap();
    text.push_str("{\"torn\":");
    std::fs::write(&journal, text).unwrap();

    let report = store.fsck(false).unwrap();
    let kinds: Vec<_> = report.found.iter().map(|i| i.kind).collect();
    for kind in [IssueKind::TempFile, IssueKind::CorruptSample, IssueKind::BadJournalLine, IssueKind::StaleCount] {
        assert!(kinds.contains(&kind), "{kind:?} not in {kinds:?}");
    }
    assert!(!report.is_consistent());
    let repaired = store.fsck(true).unwrap();
    assert!(repaired.is_consistent(), "{:?}", repaired.remaining);
    assert_eq!(repaired.count.totals.counted, 3);
    assert_eq!(stored_pngs(dir.path()).len(), 3);
    assert!(store.fsck(false).unwrap().found.is_empty());
}
