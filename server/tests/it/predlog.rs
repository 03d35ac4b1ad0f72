//! The prediction log rotates by size, keeps a bounded number of files, and its reader skips a
//! torn last line.

use chrono::Utc;
use pipeline::predlog::{Event, Record, Writer, read, records};

fn record(i: usize) -> Record {
    Record {
        event: Event::Prediction,
        request_id: format!("r{i}"),
        at: Utc::now(),
        input_sha256: format!("{i:064}"),
        predicted: Some((i % 10).to_string()),
        confidence: Some(0.5),
        model_version: Some("model_20260101T000000Z".into()),
        feedback_kind: None,
        label: None,
        features: None,
    }
}

#[test]
fn the_log_rotates_keeps_a_bounded_history_and_skips_torn_lines() {
    let dir = tempfile::tempdir().unwrap();
    let mut writer = Writer::open(dir.path(), 2_000, 2).unwrap();
    for i in 0..100 {
        writer.append(&record(i)).unwrap();
        // Rotated names carry milliseconds; keep them distinct.
        if i % 10 == 0 {
            std::thread::sleep(std::time::Duration::from_millis(2));
        }
    }
    writer.flush().unwrap();
    let files: Vec<_> =
        std::fs::read_dir(dir.path()).unwrap().map(|e| e.unwrap().file_name().into_string().unwrap()).collect();
    assert_eq!(files.len(), 3, "the active file and two rotated ones: {files:?}");
    let kept = records(dir.path()).unwrap();
    assert!(kept.len() < 100 && kept.len() > 10, "{}", kept.len());
    assert_eq!(kept.last().unwrap().request_id, "r99");
    let ids: Vec<usize> = kept.iter().map(|r| r.request_id[1..].parse().unwrap()).collect();
    assert!(ids.windows(2).all(|w| w[1] == w[0] + 1), "oldest file first, in order: {ids:?}");

    drop(writer);
    let active = dir.path().join("predictions.ndjson");
    let mut text = std::fs::read(&active).unwrap();
    text.extend_from_slice(b"{\"event\":\"prediction\",\"request_id\":\"torn");
    std::fs::write(&active, text).unwrap();
    let mut reopened = Writer::open(dir.path(), 1 << 20, 2).unwrap();
    reopened.append(&record(100)).unwrap();
    reopened.flush().unwrap();
    let table = read(dir.path()).unwrap();
    assert_eq!(table.height(), kept.len() + 1, "the torn line is skipped, the next record is whole");
    assert_eq!(records(dir.path()).unwrap().last().unwrap().request_id, "r100");
    assert_eq!(
        table.get_column_names().iter().map(|n| n.as_str()).collect::<Vec<_>>(),
        [
            "event",
            "request_id",
            "at",
            "input_sha256",
            "predicted",
            "confidence",
            "model_version",
            "feedback_kind",
            "label",
            "features"
        ]
    );
}
