//! Shadow evaluation: a version the registry names as `shadow` classifies live requests beside
//! the serving model and never answers. A slow shadow (a wide residual network, many times the
//! serving CNN's work) and one that fails to load leave every answer as it was and never make a
//! request wait for it; agreement and feedback on shadowed requests are counted on `/metrics`
//! and `/models`.

use std::path::Path;
use std::time::{Duration, Instant};

use axum::Router;
use gitops::architecture::{Architecture, ResnetParams};
use gitops::model_file::{ModelFile, Sidecar};
use model::Weights;
use pipeline::release;
use serde_json::{Value, json};

use crate::http::{get, post, post_json, send};
use crate::support::{TestRepo, metric, start, wait_for};

/// Installs an untrained network `arch` for the task in the publisher's models/ (not serving)
/// and returns its version; `corrupt` flips a byte of its weights after the sidecar is written.
fn install(repo: &TestRepo, arch: Architecture, corrupt: bool) -> String {
    let models = repo.publisher.path().join("models");
    let base = ModelFile::list(&models).unwrap().pop().unwrap().read_sidecar().unwrap();
    let vs = model::train::seeded_store(tch::Device::Cpu, 7);
    let _net = model::arch::build(&arch, &vs.root(), &base.task);
    let scratch = tempfile::tempdir().unwrap();
    let file = ModelFile::fresh(scratch.path(), chrono::Utc::now());
    let sidecar = file.save(&vs, Sidecar { architecture: arch, parent: None, reference: None, ..base }).unwrap();
    let installed = release::install(&models, &file, sidecar).unwrap();
    if corrupt {
        let path = ModelFile::new(&models, &installed.version).unwrap().weights_path();
        let mut bytes = std::fs::read(&path).unwrap();
        let last = bytes.len() - 1;
        bytes[last] ^= 0x55;
        std::fs::write(&path, bytes).unwrap();
    }
    installed.version
}

/// Marks `version` as the shadow in a pushed commit (`pipeline models shadow`'s own function).
fn shadow(repo: &TestRepo, version: &str) {
    let root = repo.publisher.path();
    // The corrupt model is refused by `release::shadow`'s check; the registry is written as a
    // hand edit would, to see the server refuse it too.
    if release::shadow(root, Some(version), "test").is_err() {
        let models = root.join("models");
        let mut registry = pipeline::registry::Registry::load(&models).unwrap();
        registry.shadow = Some(version.to_string());
        registry.save(&models).unwrap();
    }
    release::commit_and_push(root, &[Path::new("models")], &format!("Shadow {version}")).unwrap();
}

/// Each digit's answer (class and probabilities) and the time all of them took, one at a time.
async fn answers(app: &Router, digits: &[(Vec<u8>, u8)]) -> (Vec<(Value, Value, String)>, Duration) {
    let started = Instant::now();
    let mut out = Vec::new();
    for (png, _) in digits {
        let reply = send(app, post("/predict", "image/png", png.clone())).await;
        assert_eq!(reply.status, 200, "{}", String::from_utf8_lossy(&reply.body));
        let v = reply.json();
        out.push((v["index"].clone(), v["probabilities"].clone(), v["request_id"].as_str().unwrap().to_string()));
    }
    (out, started.elapsed())
}

fn same_answers(a: &[(Value, Value, String)], b: &[(Value, Value, String)]) -> bool {
    a.len() == b.len() && a.iter().zip(b).all(|(x, y)| x.0 == y.0 && x.1 == y.1)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slow_or_broken_shadow_changes_no_answer_and_keeps_no_request_waiting() {
    let repo = TestRepo::new(&[]);
    let state = start(&repo.server(), &["--shadow-share", "1"]);
    let app = model_server::app(state.clone(), Duration::from_secs(30));
    let digits = need_digits!(60);
    let (before, plain_time) = answers(&app, &digits).await;

    // A shadow that fails to load: refused, counted, and nothing else changes.
    let broken = install(&repo, Architecture::default(), true);
    shadow(&repo, &broken);
    wait_for(Duration::from_secs(30), "the broken shadow to be refused", || {
        metric(&state.metrics.render(), "model_server_shadow_load_failures_total") == 1.0
    });
    assert!(state.models.shadow().is_none());
    let (with_broken, _) = answers(&app, &digits).await;
    assert!(same_answers(&before, &with_broken), "a broken shadow changed an answer");
    assert!(send(&app, get("/models")).await.json()["shadow"].is_null());

    // A slow shadow: a residual network of far more work than the serving CNN.
    let wide = Architecture::Resnet(ResnetParams { widths: vec![128, 256, 256], blocks: 2, dropout: 0.0 });
    let slow = install(&repo, wide, false);
    shadow(&repo, &slow);
    wait_for(Duration::from_secs(60), "the slow shadow to load", || {
        state.models.shadow().is_some_and(|s| s.version() == slow)
    });
    let one = Instant::now();
    state.models.shadow().unwrap().predict(0, &vec![0.0; 784]);
    let shadow_time = one.elapsed();
    let (with_slow, slow_time) = answers(&app, &digits).await;
    assert!(same_answers(&before, &with_slow), "a slow shadow changed an answer");
    println!(
        "FIGURES 60 requests: {plain_time:?} without a shadow, {slow_time:?} with one taking {shadow_time:?} a prediction"
    );
    // Had any request waited for the shadow, the 60 would have taken 60 of its predictions.
    assert!(slow_time < shadow_time * 20, "{slow_time:?} for 60 requests; the shadow takes {shadow_time:?} each");
    let text = state.metrics.render();
    let (predicted, dropped) =
        (metric(&text, "model_server_shadow_predictions_total"), metric(&text, "model_server_shadow_dropped_total"));
    assert!(dropped > 0.0, "the slow shadow's queue filled and requests went unshadowed: {predicted} {dropped}");
    wait_for(Duration::from_secs(120), "the shadow to work through its queue", || {
        state.models.shadow().is_some()
            && metric(&state.metrics.render(), "model_server_shadow_predictions_total") + dropped >= 60.0
    });

    // Agreement and feedback on shadowed requests, on /models.
    let shadowed = &with_slow[0].2;
    let label = digits[0].1;
    let fb =
        send(&app, post_json("/feedback", &json!({ "request_id": shadowed, "label": label, "kind": "correct" }))).await;
    assert_eq!(fb.status, 200, "{}", String::from_utf8_lossy(&fb.body));
    let models = send(&app, get("/models")).await.json();
    let stats = &models["shadow"];
    assert_eq!(stats["version"], slow);
    assert_eq!(stats["predictions"].as_f64().unwrap() + stats["dropped"].as_f64().unwrap(), 60.0, "{stats}");
    assert_eq!(stats["errors"], 0);
    assert!(stats["agreement"].as_f64().unwrap() <= 1.0);
    let feedback = &stats["feedback"];
    let counted: u64 =
        ["both", "serving_only", "shadow_only", "neither"].iter().map(|k| feedback[k].as_u64().unwrap()).sum();
    assert_eq!(counted, 1, "the feedback on the shadowed request counts: {stats}");
    assert!(models["versions"].as_array().unwrap().iter().any(|v| v["version"] == slow && v["shadow"] == true));
    let text = state.metrics.render();
    assert_eq!(metric(&text, &format!("model_server_shadow_info{{version=\"{slow}\"}}")), 1.0);
}
