//! Handler tests through `oneshot`: every input form of /predict, the error contract, feedback
//! with its validation and counting, history, models, status, assets, auth and back-pressure.

use std::time::Duration;

use axum::http::StatusCode;
use base64::Engine;
use serde_json::json;

use crate::http::{get, multipart, post, post_json, send, with_token};
use crate::support::{TestRepo, metric, start, wait_for};

fn app(state: &model_server::AppState) -> axum::Router {
    model_server::app(state.clone(), Duration::from_secs(30))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn predict_accepts_multipart_raw_and_json_and_they_agree() {
    let repo = TestRepo::new(&[]);
    let state = start(&repo.server(), &[]);
    let app = app(&state);
    let (png, label) = need_digits!(1).remove(0);
    let (ct, body) = multipart(Some(&png), &[]);
    let b64 = base64::engine::general_purpose::STANDARD.encode(&png);
    let replies = [
        send(&app, post("/predict", &ct, body)).await,
        send(&app, post("/predict", "image/png", png.clone())).await,
        send(&app, post_json("/predict", &json!({ "image": b64 }))).await,
        send(&app, post_json("/predict", &json!({ "image": format!("data:image/png;base64,{b64}") }))).await,
    ];
    let first = replies[0].json();
    let mut ids = std::collections::HashSet::new();
    for reply in &replies {
        assert_eq!(reply.status, StatusCode::OK, "{}", String::from_utf8_lossy(&reply.body));
        let v = reply.json();
        assert_eq!(v["digit"], label, "{v}");
        assert_eq!(
            (v["index"].as_u64(), v["label"].as_str()),
            (Some(u64::from(label)), Some(&*label.to_string())),
            "{v}"
        );
        assert_eq!(v["probabilities"], first["probabilities"]);
        let by_class = v["probabilities"].as_object().unwrap();
        let names: Vec<&str> = by_class.keys().map(String::as_str).collect();
        assert_eq!(names, ["0", "1", "2", "3", "4", "5", "6", "7", "8", "9"]);
        let probs: Vec<f64> = by_class.values().map(|p| p.as_f64().unwrap()).collect();
        assert!((probs.iter().sum::<f64>() - 1.0).abs() < 1e-4);
        assert_eq!(v["confidence"].as_f64().unwrap(), probs.iter().cloned().fold(0.0, f64::max));
        assert_eq!(v["model_version"], repo.serving_in_registry());
        ids.insert(v["request_id"].as_str().unwrap().to_string());
    }
    assert_eq!(ids.len(), 4, "request ids are unique");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_input_answers_json_errors_with_the_right_status() {
    let repo = TestRepo::new(&[("feedback", "max_image_bytes", "4096"), ("feedback", "max_pixels", "10000")]);
    let state = start(&repo.server(), &[]);
    let app = app(&state);
    let check = |status: StatusCode| move |r: crate::http::Reply| r.error(status);
    check(StatusCode::UNSUPPORTED_MEDIA_TYPE)(send(&app, post("/predict", "text/plain", "7")).await);
    check(StatusCode::BAD_REQUEST)(send(&app, post("/predict", "application/json", "{\"image\": ")).await);
    check(StatusCode::BAD_REQUEST)(send(&app, post_json("/predict", &json!({ "image": "***" }))).await);
    check(StatusCode::BAD_REQUEST)(send(&app, post_json("/predict", &json!({ "picture": "" }))).await);
    let not_image = check(StatusCode::UNSUPPORTED_MEDIA_TYPE)(
        send(&app, post("/predict", "image/png", "hello, not an image")).await,
    );
    assert!(not_image.contains("not an image"), "{not_image}");
    // 5000 bytes of noise: over max_image_bytes (4096) but under the body limit.
    let noisy = image::GrayImage::from_fn(64, 64, |x, y| image::Luma([((x * 7919 + y * 104_729) % 251) as u8]));
    let mut big = Vec::new();
    noisy.write_to(&mut std::io::Cursor::new(&mut big), image::ImageFormat::Png).unwrap();
    assert!(big.len() > 4096, "{}", big.len());
    check(StatusCode::PAYLOAD_TOO_LARGE)(send(&app, post("/predict", "image/png", big)).await);
    // Far over the body limit.
    check(StatusCode::PAYLOAD_TOO_LARGE)(send(&app, post("/predict", "image/png", vec![0u8; 1 << 20])).await);
    // 200x200 = 40,000 pixels > max_pixels 10,000, refused from the header.
    let mut wide = Vec::new();
    image::GrayImage::new(200, 200).write_to(&mut std::io::Cursor::new(&mut wide), image::ImageFormat::Png).unwrap();
    let bomb = check(StatusCode::PAYLOAD_TOO_LARGE)(send(&app, post("/predict", "image/png", wide)).await);
    assert!(bomb.contains("pixels"), "{bomb}");
    let mut blank = Vec::new();
    image::GrayImage::new(28, 28).write_to(&mut std::io::Cursor::new(&mut blank), image::ImageFormat::Png).unwrap();
    check(StatusCode::UNPROCESSABLE_ENTITY)(send(&app, post("/predict", "image/png", blank)).await);
    let (ct, body) = multipart(None, &[("label", "3")]);
    check(StatusCode::BAD_REQUEST)(send(&app, post("/predict", &ct, body)).await);
    check(StatusCode::NOT_FOUND)(send(&app, get("/nope")).await);
    check(StatusCode::METHOD_NOT_ALLOWED)(send(&app, get("/predict")).await);
    check(StatusCode::NOT_FOUND)(send(&app, get("/assets/missing.css")).await);
    let text = state.metrics.render();
    assert!(
        metric(&text, "model_server_http_requests_total{method=\"POST\",route=\"/predict\",status=\"415\"}") >= 2.0,
        "{text}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn feedback_is_validated_stored_committed_pushed_and_seals_with_a_trigger() {
    // The local trigger runs a stand-in for `pipeline repro` (set_param writes the value verbatim).
    let kind = "local\n  local_command: [\"sh\", \"-c\", \"echo retraining $PIPELINE_SUB_SET\"]";
    let repo = TestRepo::new(&[("feedback", "threshold", "3"), ("trigger", "kind", kind)]);
    let state = start(&repo.server(), &["--feedback-token", "fb-secret"]);
    let app = app(&state);
    let digits = need_digits!(8);
    let predict = |png: Vec<u8>| {
        let app = app.clone();
        async move { send(&app, post("/predict", "image/png", png)).await.json() }
    };
    let p0 = predict(digits[0].0.clone()).await;
    let id0 = p0["request_id"].as_str().unwrap().to_string();
    let predicted = p0["digit"].as_u64().unwrap();
    let good = json!({ "request_id": id0, "label": predicted, "kind": "correct" });

    send(&app, post_json("/feedback", &good)).await.error(StatusCode::UNAUTHORIZED);
    send(&app, with_token(post_json("/feedback", &good), "wrong")).await.error(StatusCode::UNAUTHORIZED);
    let fb = |v: serde_json::Value| with_token(post_json("/feedback", &v), "fb-secret");
    for bad in [
        json!({ "request_id": id0, "label": 12, "kind": "wrong" }),
        json!({ "request_id": id0, "label": "x", "kind": "wrong" }),
        json!({ "request_id": id0, "kind": "correct" }),
        json!({ "request_id": id0, "label": 1, "kind": "maybe" }),
        json!({ "request_id": id0, "label": (predicted + 1) % 10, "kind": "correct" }),
    ] {
        send(&app, fb(bad)).await.error(StatusCode::UNPROCESSABLE_ENTITY);
    }
    let said = send(&app, fb(json!({ "request_id": id0, "label": 1, "kind": "maybe" })))
        .await
        .error(StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(said, "kind `maybe` is not one of correct, wrong, unsure");
    send(&app, fb(json!({ "request_id": "unknown", "label": 1, "kind": "wrong" }))).await.error(StatusCode::NOT_FOUND);
    send(&app, with_token(post("/feedback", "application/json", "{"), "fb-secret"))
        .await
        .error(StatusCode::BAD_REQUEST);

    let first = send(&app, fb(good.clone())).await.json();
    assert_eq!(first["stored"], true, "{first}");
    assert_eq!(
        (first["current_count"].as_u64(), first["threshold"].as_u64(), first["sub_set"].as_u64()),
        (Some(1), Some(3), Some(0))
    );
    assert_eq!(first["retrain_triggered"], false);
    assert_eq!(first["sha256"].as_str().unwrap().len(), 64);
    let again = send(&app, fb(good)).await.json();
    assert_eq!(
        (again["stored"].as_bool(), again["duplicate"].as_bool(), again["current_count"].as_u64()),
        (Some(false), Some(true), Some(1))
    );

    // An unsure sample is kept, not counted; its label defaults to the prediction.
    let p1 = predict(digits[1].0.clone()).await;
    let unsure = send(&app, fb(json!({ "request_id": p1["request_id"], "kind": "unsure" }))).await.json();
    assert_eq!((unsure["stored"].as_bool(), unsure["current_count"].as_u64()), (Some(true), Some(1)), "{unsure}");

    // By image, as multipart, then by image as JSON: the third counted sample seals sub_set 0.
    let (ct, body) = multipart(Some(&digits[2].0), &[("label", &digits[2].1.to_string()), ("kind", "wrong")]);
    let by_form = send(&app, with_token(post("/feedback", &ct, body), "fb-secret")).await.json();
    assert_eq!(by_form["current_count"], 2, "{by_form}");
    let b64 = base64::engine::general_purpose::STANDARD.encode(&digits[3].0);
    let sealing = send(&app, fb(json!({ "image": b64, "label": digits[3].1, "kind": "wrong" }))).await.json();
    assert_eq!((sealing["current_count"].as_u64(), sealing["sub_set"].as_u64()), (Some(3), Some(0)), "{sealing}");
    assert_eq!(sealing["retrain_triggered"], true, "{sealing}");

    wait_for(Duration::from_secs(20), "the local retrain to finish", || {
        let status = gitops::trigger::RetrainStatus::read(&repo.server()).unwrap();
        status.state == gitops::trigger::RetrainState::Succeeded
    });
    let status = send(&app, get("/api/status")).await.json();
    assert_eq!(status["retrain"]["state"], "succeeded", "{status}");
    assert_eq!(status["retrain"]["sub_set"], 0);
    assert!(status["retrain"]["log_tail"].as_str().unwrap().contains("retraining 0"), "{status}");
    assert_eq!(
        (status["current_count"].as_u64(), status["sub_set"].as_u64(), status["threshold"].as_u64()),
        (Some(0), Some(1), Some(3))
    );
    assert_eq!(status["serving"], repo.serving_in_registry());
    assert_eq!(status["decision"], serde_json::Value::Null);

    // The sealed sub_set reached the remote.
    wait_for(Duration::from_secs(20), "the feedback to be pushed", || {
        let files = crate::support::git(&repo.origin(), &["ls-tree", "-r", "--name-only", "main"]);
        files.contains("new_data/sub_set_0/sealed.json")
    });
    let text = state.metrics.render();
    assert_eq!(metric(&text, "model_server_feedback_total{kind=\"correct\"}"), 2.0);
    assert_eq!(metric(&text, "model_server_feedback_total{kind=\"wrong\"}"), 2.0);
    assert_eq!(metric(&text, "model_server_feedback_total{kind=\"unsure\"}"), 1.0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn history_models_status_and_assets() {
    let repo = TestRepo::new(&[]);
    let decision = json!({ "promoted": false, "candidate": null, "serving_before": "model_x", "reasons": ["worse"], "metrics": {}, "at": "2026-01-01T00:00:00Z" });
    std::fs::create_dir_all(repo.server().join("artifacts/promote")).unwrap();
    std::fs::write(repo.server().join("artifacts/promote/decision.json"), decision.to_string()).unwrap();
    let state = start(&repo.server(), &[]);
    let app = app(&state);
    let mut ids = Vec::new();
    for (png, _) in need_digits!(3) {
        ids.push(
            send(&app, post("/predict", "image/png", png)).await.json()["request_id"].as_str().unwrap().to_string(),
        );
    }
    let label = send(&app, get("/api/history?limit=1")).await.json()[0]["digit"].as_u64().unwrap();
    send(&app, post_json("/feedback", &json!({ "request_id": ids[2], "label": label, "kind": "correct" }))).await;
    let history = send(&app, get("/api/history?limit=2")).await.json();
    let items = history.as_array().unwrap();
    assert_eq!(items.len(), 2);
    assert_eq!(items[0]["request_id"], ids[2].as_str(), "newest first");
    assert_eq!(items[1]["request_id"], ids[1].as_str());
    assert_eq!(items[0]["feedback"], json!({ "kind": "correct", "label": label.to_string() }));
    assert_eq!((items[0]["label"].as_str(), items[0]["index"].as_u64()), (Some(&*label.to_string()), Some(label)));
    let task = send(&app, get("/api/task")).await.json();
    assert_eq!((task["name"].as_str(), task["preprocess"].as_str()), (Some("mnist"), Some("digit")), "{task}");
    assert_eq!(task["classes"].as_array().unwrap().len(), 10);
    assert_eq!(items[1]["feedback"], serde_json::Value::Null);
    let thumb = items[0]["thumbnail"].as_str().unwrap().strip_prefix("data:image/png;base64,").unwrap();
    let png = base64::engine::general_purpose::STANDARD.decode(thumb).unwrap();
    let img = image::load_from_memory(&png).unwrap();
    assert_eq!((img.width(), img.height()), (28, 28));

    let models = send(&app, get("/models")).await.json();
    let serving = repo.serving_in_registry();
    assert_eq!(models["serving"], serving.as_str());
    let v = &models["versions"][0];
    assert_eq!(
        (v["version"].as_str(), v["serving"].as_bool(), v["loaded"].as_bool(), v["pinned"].as_bool()),
        (Some(serving.as_str()), Some(true), Some(true), Some(false))
    );
    assert!(v["metrics"].as_object().unwrap().contains_key("base_test_accuracy"), "{v}");
    assert_eq!(v["confusion"].as_array().map(Vec::len), Some(10));
    assert_eq!(models["history"][0]["action"], "base");

    let status = send(&app, get("/api/status")).await.json();
    assert_eq!(status["decision"], decision);
    assert_eq!(status["retrain"]["state"], "idle");

    for (path, ready) in [
        ("/healthz", StatusCode::OK),
        ("/readyz", StatusCode::OK),
        ("/v2/health/live", StatusCode::OK),
        ("/v2/health/ready", StatusCode::OK),
    ] {
        assert_eq!(send(&app, get(path)).await.status, ready, "{path}");
    }
    let index = send(&app, get("/")).await;
    assert_eq!(index.status, StatusCode::OK);
    assert!(index.headers["content-type"].to_str().unwrap().starts_with("text/html"));
    assert!(String::from_utf8_lossy(&index.body).contains("<html"), "GET / serves assets/index.html");
    let same = send(&app, get("/assets/index.html")).await;
    assert_eq!(same.body, index.body);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn admin_routes_need_the_token() {
    let repo = TestRepo::new(&[]);
    let state = start(&repo.server(), &["--admin-token", "s3cret"]);
    let app = app(&state);
    send(&app, post("/admin/reload", "application/json", "")).await.error(StatusCode::UNAUTHORIZED);
    let body = json!({ "version": repo.serving_in_registry() });
    send(&app, with_token(post_json("/admin/rollback", &body), "nope")).await.error(StatusCode::UNAUTHORIZED);
    let reload = send(&app, with_token(post("/admin/reload", "application/json", ""), "s3cret")).await;
    assert_eq!(reload.status, StatusCode::OK);
    assert_eq!(reload.json()["changed"], false);
    send(&app, with_token(post_json("/admin/rollback", &json!({ "version": "v1" })), "s3cret"))
        .await
        .error(StatusCode::UNPROCESSABLE_ENTITY);
    send(&app, with_token(post_json("/admin/rollback", &json!({ "version": "model_20000101T000000Z" })), "s3cret"))
        .await
        .error(StatusCode::NOT_FOUND);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_queue_answers_503_with_retry_after() {
    let repo = TestRepo::new(&[]);
    let state = start(&repo.server(), &["--queue-capacity", "1", "--workers", "1", "--max-batch", "4096"]);
    let app = app(&state);
    // A large KServe batch (one piece: --max-batch is larger) keeps the one worker busy while
    // single predictions pile up.
    let n = 3000usize;
    let big = json!({ "inputs": [{ "name": "input", "shape": [n, 1, 28, 28], "datatype": "UINT8", "data": vec![0u8; n * 784] }] });
    let busy = tokio::spawn({
        let app = app.clone();
        async move { send(&app, post_json("/v2/models/mnist/infer", &big)).await }
    });
    wait_for(Duration::from_secs(10), "the worker to take the big batch", || {
        metric(&state.metrics.render(), "model_server_inference_batch_size_count") >= 1.0
    });
    let png = need_digits!(1).remove(0).0;
    let replies = futures_join(&app, &png, 6).await;
    let refused: Vec<_> = replies.iter().filter(|r| r.status == StatusCode::SERVICE_UNAVAILABLE).collect();
    assert!(!refused.is_empty(), "statuses {:?}", replies.iter().map(|r| r.status).collect::<Vec<_>>());
    for r in &refused {
        assert_eq!(r.headers["retry-after"], "1");
        assert!(r.error(StatusCode::SERVICE_UNAVAILABLE).contains("queue is full"));
    }
    assert_eq!(busy.await.unwrap().status, StatusCode::OK);
    assert!(metric(&state.metrics.render(), "model_server_inference_queue_rejections_total") >= 1.0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lone_request_skips_the_queue_and_one_beside_another_waits_in_it() {
    let repo = TestRepo::new(&[]);
    let state = start(&repo.server(), &["--workers", "1", "--max-batch", "4096"]);
    let app = app(&state);
    let (png, label) = need_digits!(1).remove(0);
    let count = |series: &str| metric(&state.metrics.render(), series);
    let (lone, batches) = ("model_server_inference_lone_runs_total", "model_server_inference_batch_size_count");
    // Nothing else in flight: the request's own thread runs it, a batch of one.
    let reply = send(&app, post("/predict", "image/png", png.clone())).await;
    assert_eq!(reply.status, StatusCode::OK, "{}", String::from_utf8_lossy(&reply.body));
    assert_eq!(reply.json()["index"], u64::from(label));
    assert_eq!((count(lone), count(batches)), (1.0, 1.0));
    // With a large KServe batch in flight on the one worker, the next /predict waits in the
    // queue for it instead of taking a thread of its own.
    let n = 3000usize;
    let big = json!({ "inputs": [{ "name": "input", "shape": [n, 1, 28, 28], "datatype": "UINT8", "data": vec![0u8; n * 784] }] });
    let busy = tokio::spawn({
        let app = app.clone();
        async move { send(&app, post_json("/v2/models/mnist/infer", &big)).await }
    });
    wait_for(Duration::from_secs(10), "the worker to take the big batch", || count(batches) >= 2.0);
    let reply = send(&app, post("/predict", "image/png", png)).await;
    assert_eq!(reply.status, StatusCode::OK, "{}", String::from_utf8_lossy(&reply.body));
    assert_eq!(reply.json()["index"], u64::from(label));
    assert_eq!(count(lone), 1.0, "a request beside another skipped the queue");
    assert_eq!(busy.await.unwrap().status, StatusCode::OK);
    assert_eq!(count(batches), 3.0);
}

async fn futures_join(app: &axum::Router, png: &[u8], n: usize) -> Vec<crate::http::Reply> {
    let tasks: Vec<_> = (0..n)
        .map(|_| {
            let (app, png) = (app.clone(), png.to_vec());
            tokio::spawn(async move { send(&app, post("/predict", "image/png", png)).await })
        })
        .collect();
    let mut out = Vec::new();
    for t in tasks {
        out.push(t.await.unwrap());
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn base_model_is_accurate_over_http() {
    let repo = TestRepo::new(&[]);
    let state = start(&repo.server(), &[]);
    let app = app(&state);
    let digits = need_digits!(300);
    let mut right = 0;
    for (png, label) in &digits {
        let v = send(&app, post("/predict", "image/png", png.clone())).await.json();
        right += usize::from(v["digit"].as_u64() == Some(u64::from(*label)));
    }
    let accuracy = right as f64 / digits.len() as f64;
    assert!(accuracy >= 0.93, "accuracy over /predict {accuracy:.3}");
}
