//! The `webhook` trigger against a local HTTP receiver (wiremock): the exact request (GitHub's
//! repository_dispatch body, the bearer token), retries, clear errors, and the params and
//! environment that select it.

use std::time::{Duration, Instant};

use gitops::params::{GithubEvent, GithubParams, Params, TriggerKind, WebhookParams};
use gitops::trigger::{Fired, GithubTrigger, RetrainRequest, Trigger, TriggerError, WebhookError, WebhookTrigger};
use serde_json::json;
use wiremock::matchers::{body_json, header, method, path, query_param};
use wiremock::{Mock, MockServer, ResponseTemplate};

const HOOK: &str = "/hooks/retrain";

fn params(url: String) -> WebhookParams {
    WebhookParams { url, token_env: "RETRAIN_HOOK_TOKEN".into(), attempts: 3, backoff_ms: 10 }
}

fn trigger(server: &MockServer) -> WebhookTrigger {
    WebhookTrigger::new(params(format!("{}{HOOK}", server.uri())), Some("s3cret".into())).unwrap()
}

fn request() -> RetrainRequest {
    RetrainRequest::sealed(4, 10, Some("abc123".into()))
}

fn hook() -> wiremock::MockBuilder {
    Mock::given(method("POST")).and(path(HOOK)).and(header("authorization", "Bearer s3cret"))
}

#[tokio::test]
async fn posts_githubs_repository_dispatch_body_with_the_bearer_token() {
    let server = MockServer::start().await;
    hook()
        .and(query_param("source", "model-server"))
        .and(header("content-type", "application/json"))
        .and(body_json(
            json!({"event_type": "retrain", "client_payload": {"sub_set": 4, "count": 10, "commit": "abc123"}}),
        ))
        .respond_with(ResponseTemplate::new(202))
        .expect(1)
        .mount(&server)
        .await;
    let url = format!("{}{HOOK}?source=model-server#ignored", server.uri());
    WebhookTrigger::new(params(url), Some("s3cret".into())).unwrap().dispatch(&request()).await.unwrap();

    // The very body the `github` trigger sends as a repository_dispatch, so one receiver reads both.
    let github = GithubParams {
        owner: "a".into(),
        repo: "b".into(),
        event: GithubEvent::RepositoryDispatch,
        ..GithubParams::default()
    };
    let (_, github_body) = GithubTrigger::new(github, Some("t".into())).unwrap().request(&request());
    assert_eq!(WebhookTrigger::body(&request()), github_body);
}

#[tokio::test]
async fn server_errors_and_timeouts_are_retried_then_succeed() {
    let server = MockServer::start().await;
    hook().respond_with(ResponseTemplate::new(503)).up_to_n_times(1).expect(1).mount(&server).await;
    hook().respond_with(ResponseTemplate::new(408)).up_to_n_times(1).expect(1).mount(&server).await;
    hook().respond_with(ResponseTemplate::new(200)).expect(1).mount(&server).await;
    trigger(&server).dispatch(&request()).await.unwrap();
}

#[tokio::test]
async fn persistent_errors_give_up_after_the_attempts_naming_the_url() {
    let server = MockServer::start().await;
    hook().respond_with(ResponseTemplate::new(502).set_body_string("bad gateway")).expect(3).mount(&server).await;
    let e = trigger(&server).dispatch(&request()).await.unwrap_err();
    assert!(matches!(e, WebhookError::GaveUp { attempts: 3, .. }), "{e}");
    assert!(e.to_string().contains(HOOK) && e.to_string().contains("502: bad gateway"), "{e}");
}

#[tokio::test]
async fn a_dead_receiver_is_retried_then_given_up() {
    // Bind a port, then free it: nothing listens there.
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let url = format!("http://127.0.0.1:{port}{HOOK}");
    let e = WebhookTrigger::new(params(url), Some("s3cret".into())).unwrap().dispatch(&request()).await.unwrap_err();
    assert!(matches!(e, WebhookError::GaveUp { attempts: 3, .. }), "{e}");
    assert!(e.to_string().contains("transport error"), "{e}");
}

#[tokio::test]
async fn rate_limits_honour_retry_after() {
    let server = MockServer::start().await;
    hook()
        .respond_with(ResponseTemplate::new(429).insert_header("retry-after", "1"))
        .up_to_n_times(1)
        .expect(1)
        .mount(&server)
        .await;
    hook().respond_with(ResponseTemplate::new(204)).expect(1).mount(&server).await;
    let start = Instant::now();
    trigger(&server).dispatch(&request()).await.unwrap();
    assert!(start.elapsed() >= Duration::from_secs(1), "waited {:?}", start.elapsed());
}

#[tokio::test]
async fn refusals_fail_at_once_without_leaking_the_token() {
    for (status, what) in [(401, "refused the token (401): check RETRAIN_HOOK_TOKEN"), (404, "answered 404: no hook")] {
        let server = MockServer::start().await;
        hook().respond_with(ResponseTemplate::new(status).set_body_string("no hook")).expect(1).mount(&server).await;
        let e = trigger(&server).dispatch(&request()).await.unwrap_err().to_string();
        assert!(e.contains(what) && e.contains(&server.uri()), "{e}");
        assert!(!e.contains("s3cret"), "{e}");
    }
    let debug = format!("{:?}", WebhookTrigger::new(params("http://h/x".into()), Some("s3cret".into())).unwrap());
    assert!(!debug.contains("s3cret"), "{debug}");
}

#[test]
fn missing_or_bad_settings_are_clear_errors() {
    let e = |url: &str, token: Option<&str>| {
        WebhookTrigger::new(params(url.into()), token.map(str::to_string)).unwrap_err().to_string()
    };
    assert!(e("", Some("t")).contains("PIPELINE_WEBHOOK_URL"));
    for bad in ["ftp://host/x", "http:///x", "host/x", "https://user:pw@host/x"] {
        assert!(e(bad, Some("t")).contains("is not an http:// or https:// URL"), "{bad}");
    }
    assert!(e("https://host/x", None).contains("set RETRAIN_HOOK_TOKEN"));
    assert!(e("https://host/x", Some(" ")).contains("set RETRAIN_HOOK_TOKEN"));
    assert!(WebhookTrigger::new(params("https://host".into()), Some("t".into())).is_ok());
}

/// `PIPELINE_TRIGGER=webhook` and `PIPELINE_WEBHOOK_URL` select and aim it over params.yaml, as
/// the Kubernetes Deployment sets them, and the trigger fires from blocking code.
#[tokio::test(flavor = "multi_thread")]
async fn the_environment_selects_the_webhook_and_fire_sends_it() {
    let server = MockServer::start().await;
    // Tests cannot set a variable safely, so the token comes from one every process has.
    let token = std::env::var("PATH").unwrap();
    Mock::given(method("POST"))
        .and(path(HOOK))
        .and(header("authorization", format!("Bearer {token}").as_str()))
        .respond_with(ResponseTemplate::new(204))
        .expect(1)
        .mount(&server)
        .await;
    let dir = tempfile::tempdir().unwrap();
    let yaml = "trigger:\n  kind: local\n  webhook:\n    url: http://elsewhere.invalid/x\n    token_env: PATH\n";
    std::fs::write(dir.path().join("params.yaml"), yaml).unwrap();
    let url = format!("{}{HOOK}", server.uri());
    let env = |k: &str| match k {
        "PIPELINE_TRIGGER" => Some("webhook".to_string()),
        "PIPELINE_WEBHOOK_URL" => Some(url.clone()),
        _ => None,
    };
    let loaded = Params::load_with_env(dir.path(), env).unwrap();
    assert_eq!((loaded.trigger.kind, loaded.trigger.webhook.url.as_str()), (TriggerKind::Webhook, url.as_str()));
    let trigger = Trigger::from_params(dir.path(), &loaded.trigger).unwrap();
    let fired = tokio::task::spawn_blocking(move || trigger.fire(&request())).await.unwrap().unwrap();
    assert_eq!(fired, Fired::Dispatched);

    // Defaults: params.yaml documents the code's, and an empty URL from_params refuses by name.
    let repo_params = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../params.yaml")).unwrap();
    assert_eq!(Params::from_yaml(&repo_params).unwrap().trigger.webhook, WebhookParams::default());
    let defaults = Params::from_yaml("trigger:\n  kind: webhook\n").unwrap();
    assert_eq!(defaults.trigger.webhook.token_env, "PIPELINE_WEBHOOK_TOKEN");
    let e = Trigger::from_params(dir.path(), &defaults.trigger).unwrap_err();
    assert!(matches!(e, TriggerError::Webhook(WebhookError::NoUrl)), "{e}");
}
