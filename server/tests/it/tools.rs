//! `/metrics` passes `promtool check metrics`; the prediction log is readable and `pipeline
//! mine`'s query finds low-confidence and wrong predictions.

use std::process::{Command, Stdio};
use std::time::Duration;

use serde_json::json;

use crate::support::{TestRepo, serve, start, wait_for};

/// promtool, installed from Debian's `prometheus` package when missing.
fn promtool() -> &'static str {
    let found = || {
        Command::new("promtool")
            .arg("--version")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success())
    };
    if !found() {
        eprintln!("promtool is missing: apt-get install -y prometheus");
        let installed = Command::new("apt-get").args(["install", "-y", "-qq", "prometheus"]).status();
        assert!(
            installed.is_ok_and(|s| s.success()) && found(),
            "promtool is missing and `apt-get install -y prometheus` failed: install Debian's prometheus package to run this check"
        );
    }
    "promtool"
}

#[test]
fn metrics_pass_promtool_check_metrics() {
    let promtool = promtool();
    let repo = TestRepo::new(&[]);
    let server = serve(start(&repo.server(), &[]), Duration::from_secs(30));
    let client = reqwest::blocking::Client::new();
    for (png, _) in need_digits!(5) {
        let v: serde_json::Value = client
            .post(server.url("/predict"))
            .header("content-type", "image/png")
            .body(png)
            .send()
            .unwrap()
            .json()
            .unwrap();
        client
            .post(server.url("/feedback"))
            .json(&json!({ "request_id": v["request_id"], "kind": "unsure" }))
            .send()
            .unwrap();
    }
    client.get(server.url("/nope")).send().unwrap();
    let text = client.get(server.url("/metrics")).send().unwrap().text().unwrap();
    for name in [
        "model_server_http_requests_total",
        "model_server_http_request_duration_seconds_bucket",
        "model_server_predictions_total",
        "model_server_prediction_confidence_bucket",
        "model_server_feedback_total{kind=\"unsure\"}",
        "model_server_model_info{version=",
        "model_server_model_reloads_total{result=\"success\"}",
        "model_server_model_load_duration_seconds_count",
    ] {
        assert!(text.contains(name), "{name} missing from\n{text}");
    }
    let mut child = Command::new(promtool)
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    std::io::Write::write_all(child.stdin.as_mut().unwrap(), text.as_bytes()).unwrap();
    let out = child.wait_with_output().unwrap();
    let report = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(out.status.success() && report.trim().is_empty(), "promtool check metrics:\n{report}\n---\n{text}");
}

#[test]
fn predictions_are_logged_and_mine_lists_low_confidence_and_wrong_ones() {
    let repo = TestRepo::new(&[]);
    let server = serve(start(&repo.server(), &[]), Duration::from_secs(30));
    let client = reqwest::blocking::Client::new();
    let mut answers = Vec::new();
    for (png, _) in need_digits!(6) {
        answers.push(
            client
                .post(server.url("/predict"))
                .header("content-type", "image/png")
                .body(png)
                .send()
                .unwrap()
                .json::<serde_json::Value>()
                .unwrap(),
        );
    }
    let wrong = &answers[2];
    let true_label = (wrong["digit"].as_u64().unwrap() + 1) % 10;
    let fb = client
        .post(server.url("/feedback"))
        .json(&json!({ "request_id": wrong["request_id"], "label": true_label, "kind": "wrong" }))
        .send()
        .unwrap();
    assert_eq!(fb.status(), 200);
    let dir = repo.server().join(pipeline::predlog::DIR);
    wait_for(Duration::from_secs(10), "the log to be written", || {
        pipeline::predlog::records(&dir).map_or(0, |r| r.len()) >= 7
    });
    let log = pipeline::predlog::read(&dir).unwrap();
    assert_eq!(log.height(), 7);
    let records = pipeline::predlog::records(&dir).unwrap();
    assert_eq!(records[0].request_id, answers[0]["request_id"].as_str().unwrap());
    assert_eq!(records[0].input_sha256.len(), 64);
    assert_eq!(records[0].model_version.as_deref(), answers[0]["model_version"].as_str());

    // Below a confidence above every prediction: all six, the wrong one marked as such.
    let all = pipeline::predlog::mine(log.clone(), 1.01).unwrap();
    assert_eq!(all.height(), 6);
    let found = pipeline::predlog::mine(log, 0.0).unwrap();
    assert_eq!(found.height(), 1, "{found}");
    let reason = found.column("reason").unwrap().str().unwrap().get(0).unwrap().to_string();
    let id = found.column("request_id").unwrap().str().unwrap().get(0).unwrap().to_string();
    assert_eq!((reason.as_str(), id.as_str()), ("wrong", wrong["request_id"].as_str().unwrap()));
    let label = found.column("true_label").unwrap().str().unwrap().get(0).map(str::to_string);
    assert_eq!(label, Some(true_label.to_string()));
}
