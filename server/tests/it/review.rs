//! The label review over HTTP: feedback with planted wrong labels seals a sub_set; `GET
//! /api/review` lists exactly those, with thumbnails; `POST /api/review` stores a decision in
//! `new_data/review.json`, commits and pushes it, and the queue and `/metrics` follow; what a
//! retrain's validate held (`new_data/held.json`) is listed beside the model's doubts. Both
//! routes are behind the feedback token; bad decisions are refused and write nothing.

use std::time::Duration;

use axum::http::StatusCode;
use serde_json::json;

use crate::http::{get, multipart, post, post_json, send, with_token};
use crate::support::{TestRepo, git, metric, start};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_review_queue_lists_planted_labels_and_takes_decisions_into_git() {
    let repo = TestRepo::new(&[]);
    let state = start(&repo.server(), &["--feedback-token", "fb"]);
    let app = model_server::app(state.clone(), Duration::from_secs(30));
    let digits = need_digits!(10);
    // Ten digits seal sub_set 0: seven with their own label, three called the next digit.
    let mut planted = Vec::new();
    for (i, (png, label)) in digits.iter().enumerate() {
        let (label, kind) = if i % 3 == 1 { ((label + 1) % 10, "wrong") } else { (*label, "correct") };
        let (ct, body) = multipart(Some(png), &[("label", &label.to_string()), ("kind", kind)]);
        let reply = send(&app, with_token(post("/feedback", &ct, body), "fb")).await;
        assert_eq!(reply.status, StatusCode::OK, "{}", String::from_utf8_lossy(&reply.body));
        if kind == "wrong" {
            planted.push(reply.json()["sha256"].as_str().unwrap().to_string());
        }
    }
    planted.sort();

    send(&app, get("/api/review")).await.error(StatusCode::UNAUTHORIZED);
    let queue = send(&app, with_token(get("/api/review"), "fb")).await.json();
    assert_eq!(queue["pending"], 10, "{queue}");
    assert_eq!(queue["label_noise"], true);
    assert_eq!(queue["serving"], repo.serving_in_registry());
    let suspects = queue["suspects"].as_array().unwrap();
    let mut listed: Vec<String> = suspects.iter().map(|s| s["sha256"].as_str().unwrap().to_string()).collect();
    listed.sort();
    assert_eq!(listed, planted, "exactly the planted labels: {queue}");
    let first = &suspects[0];
    assert!(first["thumbnail"].as_str().unwrap().starts_with("data:image/png;base64,"));
    assert!(first["p_given"].as_f64().unwrap() < 0.02 && first["confidence"].as_f64().unwrap() > 0.8, "{first}");
    assert_ne!(first["label"], first["predicted"]);
    assert_eq!(metric(&state.metrics.render(), "model_server_review_queue"), 3.0);

    // Bad decisions: refused, nothing written.
    let decide = |v: serde_json::Value| with_token(post_json("/api/review", &v), "fb");
    let sha = first["sha256"].as_str().unwrap();
    send(&app, post_json("/api/review", &json!({ "sha256": sha, "action": "accept" })))
        .await
        .error(StatusCode::UNAUTHORIZED);
    send(&app, decide(json!({ "sha256": sha, "action": "relabel", "label": "eleven" })))
        .await
        .error(StatusCode::UNPROCESSABLE_ENTITY);
    send(&app, decide(json!({ "sha256": sha, "action": "relabel" }))).await.error(StatusCode::UNPROCESSABLE_ENTITY);
    send(&app, decide(json!({ "sha256": "ab".repeat(32), "action": "accept" })))
        .await
        .error(StatusCode::UNPROCESSABLE_ENTITY);
    send(&app, decide(json!({ "sha256": sha, "action": "maybe" }))).await.error(StatusCode::BAD_REQUEST);
    assert!(!repo.server().join("new_data/review.json").exists());

    // A relabel to the model's answer: stored, committed and pushed, and out of the queue.
    let predicted = first["predicted"].as_str().unwrap();
    let reply = send(&app, decide(json!({ "sha256": sha, "action": "relabel", "label": predicted }))).await.json();
    assert_eq!((reply["action"].as_str(), reply["settled"].as_bool()), (Some("relabel"), Some(true)), "{reply}");
    let pushed = git(&repo.origin(), &["show", "main:new_data/review.json"]);
    let decisions: serde_json::Value = serde_json::from_str(&pushed).unwrap();
    assert_eq!(decisions["decisions"][sha]["action"], "relabel");
    assert_eq!(decisions["decisions"][sha]["label"], predicted);
    assert_eq!(decisions["decisions"][sha]["by"], "page");
    let queue = send(&app, with_token(get("/api/review"), "fb")).await.json();
    assert_eq!((queue["pending"].as_u64(), queue["suspects"].as_array().unwrap().len()), (Some(9), 2));
    let text = state.metrics.render();
    assert_eq!(metric(&text, "model_server_review_queue"), 2.0);
    assert_eq!(metric(&text, "model_server_review_decisions_total{action=\"relabel\"}"), 1.0);

    // What a retrain's validate held (its out-of-fold copies doubt a label the serving model
    // does not), as promote commits it in new_data/held.json: listed too.
    let doubted = suspects.iter().map(|s| s["sha256"].as_str().unwrap()).collect::<Vec<_>>();
    let feedback: Vec<String> = std::fs::read_to_string(repo.server().join("new_data/sub_set_0/feedback.jsonl"))
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap()["sha256"].as_str().unwrap().to_string())
        .collect();
    let right = feedback.iter().find(|sha| !doubted.contains(&sha.as_str())).unwrap();
    let store = gitops::feedback::FeedbackStore::open(&repo.server()).unwrap();
    let held =
        gitops::feedback::review::HeldSample { sha256: right.clone(), reason: "label noise: a copy's doubt".into() };
    store.record_held(vec![held]).unwrap();
    let queue = send(&app, with_token(get("/api/review"), "fb")).await.json();
    let listed: Vec<&str> =
        queue["suspects"].as_array().unwrap().iter().map(|s| s["sha256"].as_str().unwrap()).collect();
    assert_eq!(listed.len(), 3, "{queue}");
    assert!(listed.contains(&right.as_str()), "{queue}");
}
