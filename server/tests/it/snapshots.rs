//! Snapshots of what people read from `model-server`: its `--help`, and the JSON answers of
//! /predict, /feedback, /api/status, /models and /v2/models/<name>, errors included, with the
//! values that change between runs, machines or retrained models redacted.

use std::process::Command;
use std::time::Duration;

use axum::body::Body;
use axum::http::Request;
use gitops::model_file::ModelFile;
use serde_json::{Value, json};

use crate::http::{get, multipart, post, post_json, send};
use crate::support::{TestRepo, start};

/// `model-server --help` as a person reads it: a clean environment (no `[env: NAME=value]`
/// from this machine's variables), 100 columns, the workspace path and version redacted.
#[test]
fn model_server_help() {
    let out = Command::new(env!("CARGO_BIN_EXE_model-server"))
        .env_clear()
        .env("COLUMNS", "100")
        .arg("--help")
        .output()
        .unwrap();
    let stdout = String::from_utf8(out.stdout).unwrap();
    assert!(out.status.success(), "model-server --help: {}{stdout}", String::from_utf8_lossy(&out.stderr));
    let help = stdout
        .replace(&testkit::workspace_root().display().to_string(), "[workspace]")
        .replace(concat!(" ", env!("CARGO_PKG_VERSION")), " [version]");
    let mut settings = insta::Settings::clone_current();
    settings.set_description("model-server --help");
    settings.set_omit_expression(true);
    settings.bind(|| insta::assert_snapshot!("model_server_help", help));
}

/// Fields whose every value differs between runs: random ids, clocks, hashes of encoded bytes.
const VOLATILE: [&str; 8] =
    ["request_id", "sha256", "at", "created_at", "started_at", "finished_at", "last_success", "last_failure"];

/// Fields whose numbers come out of a model: float noise differs across CPUs, and a retrained
/// base model changes them all.
const MODEL_NUMBERS: [&str; 4] = ["probabilities", "confidence", "metrics", "confusion"];

/// Replaces volatile values with `"[redacted]"` (nulls stay: that a time is unset is stable),
/// and the model versions on disk, which carry their training time, with `[version N]`
/// (oldest first) wherever they occur, in messages too.
struct Redact {
    versions: Vec<String>,
}

impl Redact {
    fn new(repo: &TestRepo) -> Self {
        let files = ModelFile::list(&repo.server().join("models")).unwrap();
        Self { versions: files.into_iter().map(|f| f.version).collect() }
    }

    fn value(&self, value: Value) -> Value {
        match value {
            Value::Object(map) => Value::Object(
                map.into_iter()
                    .map(|(key, v)| {
                        let v = if VOLATILE.contains(&key.as_str()) && !v.is_null() {
                            json!("[redacted]")
                        } else if MODEL_NUMBERS.contains(&key.as_str()) {
                            numbers_redacted(v)
                        } else {
                            self.value(v)
                        };
                        (key, v)
                    })
                    .collect(),
            ),
            Value::Array(items) => Value::Array(items.into_iter().map(|v| self.value(v)).collect()),
            Value::String(text) => Value::String(self.text(text)),
            other => other,
        }
    }

    fn text(&self, text: String) -> String {
        self.versions.iter().enumerate().fold(text, |text, (i, v)| text.replace(v, &format!("[version {}]", i + 1)))
    }
}

/// Every number inside `value` replaced, the arrays and keys around them kept.
fn numbers_redacted(value: Value) -> Value {
    match value {
        Value::Number(_) => json!("[redacted]"),
        Value::Array(items) => Value::Array(items.into_iter().map(numbers_redacted).collect()),
        Value::Object(map) => Value::Object(map.into_iter().map(|(k, v)| (k, numbers_redacted(v))).collect()),
        other => other,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn json_answers() {
    let (png, _) = need_digits!(1).remove(0);
    // The threshold pinned, so the answers do not follow the workspace's params.yaml.
    let repo = TestRepo::new(&[("feedback", "threshold", "10")]);
    let state = start(&repo.server(), &[]);
    let app = model_server::app(state.clone(), Duration::from_secs(30));
    let redact = &Redact::new(&repo);
    // Sends `req`, snapshots its status and redacted body under `name`, and returns the body.
    let answer = move |name: &'static str, req: Request<Body>| {
        let app = app.clone();
        let mut settings = insta::Settings::clone_current();
        let content_type = req.headers().get("content-type").map(|v| format!(" ({})", v.to_str().unwrap()));
        settings.set_description(format!("{} {}{}", req.method(), req.uri(), content_type.unwrap_or_default()));
        settings.set_omit_expression(true);
        async move {
            let reply = send(&app, req).await;
            let body = redact.value(reply.json());
            settings
                .bind(|| insta::assert_json_snapshot!(name, json!({ "status": reply.status.as_u16(), "body": body })));
            reply.json()
        }
    };

    let predicted = answer("predict", post("/predict", "image/png", png)).await;
    answer("predict_not_an_image", post("/predict", "image/png", "hello, not an image")).await;
    answer("predict_json_without_image", post_json("/predict", &json!({ "picture": "" }))).await;
    let (content_type, form) = multipart(None, &[("label", "3")]);
    answer("predict_form_without_file", post("/predict", &content_type, form)).await;

    let good = json!({ "request_id": predicted["request_id"], "label": predicted["digit"], "kind": "correct" });
    answer("feedback", post_json("/feedback", &good)).await;
    answer("feedback_duplicate", post_json("/feedback", &good)).await;
    let bad_label = json!({ "request_id": predicted["request_id"], "label": 12, "kind": "wrong" });
    answer("feedback_bad_label", post_json("/feedback", &bad_label)).await;
    let unknown = json!({ "request_id": "unknown", "label": 1, "kind": "wrong" });
    answer("feedback_unknown_request", post_json("/feedback", &unknown)).await;

    answer("api_status", get("/api/status")).await;
    answer("models", get("/models")).await;
    answer("v2_model", get("/v2/models/mnist")).await;
    answer("v2_model_unknown", get("/v2/models/fashion")).await;
    answer("unknown_route", get("/nope")).await;
}
