//! The `github` trigger against a fake GitHub API (wiremock): exact requests, each error path.

use std::time::{Duration, Instant};

use gitops::params::{GithubEvent, GithubParams};
use gitops::trigger::{GithubTrigger, RetrainRequest, TriggerError};
use serde_json::json;
use wiremock::matchers::{body_json, header, method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

const WORKFLOW_PATH: &str = "/repos/acme/mnist/actions/workflows/retrain.yml/dispatches";

fn trigger(server: &MockServer, event: GithubEvent) -> GithubTrigger {
    let params = GithubParams {
        owner: "acme".into(),
        repo: "mnist".into(),
        event,
        base_uri: Some(server.uri()),
        attempts: 3,
        backoff_ms: 10,
        ..GithubParams::default()
    };
    GithubTrigger::new(params, Some("tok123".into())).unwrap()
}

fn request() -> RetrainRequest {
    RetrainRequest::sealed(4, 10, Some("abc123".into()))
}

fn workflow_mock() -> wiremock::MockBuilder {
    Mock::given(method("POST")).and(path(WORKFLOW_PATH)).and(header("authorization", "Bearer tok123"))
}

#[tokio::test]
async fn workflow_dispatch_sends_the_exact_request() {
    let server = MockServer::start().await;
    workflow_mock()
        .and(body_json(json!({"ref": "main", "inputs": {"sub_set": "4", "count": "10", "commit": "abc123"}})))
        .respond_with(ResponseTemplate::new(204))
        .expect(1)
        .mount(&server)
        .await;
    trigger(&server, GithubEvent::WorkflowDispatch).dispatch(&request()).await.unwrap();
}

#[tokio::test]
async fn repository_dispatch_sends_event_retrain() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/repos/acme/mnist/dispatches"))
        .and(header("authorization", "Bearer tok123"))
        .and(body_json(
            json!({"event_type": "retrain", "client_payload": {"sub_set": 4, "count": 10, "commit": "abc123"}}),
        ))
        .respond_with(ResponseTemplate::new(204))
        .expect(1)
        .mount(&server)
        .await;
    trigger(&server, GithubEvent::RepositoryDispatch).dispatch(&request()).await.unwrap();
}

async fn fails_with(status: u16) -> TriggerError {
    let server = MockServer::start().await;
    workflow_mock()
        .respond_with(ResponseTemplate::new(status).set_body_json(json!({"message": "nope"})))
        .expect(1)
        .mount(&server)
        .await;
    trigger(&server, GithubEvent::WorkflowDispatch).dispatch(&request()).await.unwrap_err()
}

#[tokio::test]
async fn client_errors_fail_at_once_with_clear_messages() {
    let e = fails_with(401).await;
    assert!(matches!(e, TriggerError::Unauthorized) && e.to_string().contains("GITHUB_TOKEN"), "{e}");
    let e = fails_with(403).await;
    assert!(matches!(e, TriggerError::Forbidden { .. }) && e.to_string().contains("acme/mnist"), "{e}");
    let e = fails_with(404).await;
    assert!(matches!(e, TriggerError::NotFound { .. }) && e.to_string().contains(WORKFLOW_PATH), "{e}");
}

#[tokio::test]
async fn server_errors_are_retried_then_succeed() {
    let server = MockServer::start().await;
    workflow_mock().respond_with(ResponseTemplate::new(502)).up_to_n_times(2).expect(2).mount(&server).await;
    workflow_mock().respond_with(ResponseTemplate::new(204)).expect(1).mount(&server).await;
    trigger(&server, GithubEvent::WorkflowDispatch).dispatch(&request()).await.unwrap();
}

#[tokio::test]
async fn persistent_server_errors_give_up_after_the_attempts() {
    let server = MockServer::start().await;
    workflow_mock().respond_with(ResponseTemplate::new(503)).expect(3).mount(&server).await;
    let e = trigger(&server, GithubEvent::WorkflowDispatch).dispatch(&request()).await.unwrap_err();
    assert!(matches!(e, TriggerError::GaveUp { attempts: 3, .. }), "{e}");
}

#[tokio::test]
async fn rate_limits_honour_retry_after() {
    let server = MockServer::start().await;
    workflow_mock()
        .respond_with(ResponseTemplate::new(429).insert_header("retry-after", "1"))
        .up_to_n_times(1)
        .expect(1)
        .mount(&server)
        .await;
    workflow_mock()
        .respond_with(
            ResponseTemplate::new(403).insert_header("x-ratelimit-remaining", "0").insert_header("retry-after", "1"),
        )
        .up_to_n_times(1)
        .expect(1)
        .mount(&server)
        .await;
    workflow_mock().respond_with(ResponseTemplate::new(204)).expect(1).mount(&server).await;
    let start = Instant::now();
    trigger(&server, GithubEvent::WorkflowDispatch).dispatch(&request()).await.unwrap();
    assert!(start.elapsed() >= Duration::from_secs(2), "waited {:?}", start.elapsed());
}

#[test]
fn missing_configuration_and_token_are_clear_errors() {
    let e = GithubTrigger::new(GithubParams::default(), Some("t".into())).unwrap_err();
    assert!(e.to_string().contains("trigger.github.owner"), "{e}");
    let params = GithubParams { owner: "a".into(), repo: "b".into(), ..GithubParams::default() };
    let e = GithubTrigger::new(params, None).unwrap_err();
    assert!(matches!(e, TriggerError::NoToken) && e.to_string().contains("GITHUB_TOKEN"), "{e}");
}

#[test]
fn one_token_list_serves_git_and_the_github_trigger() {
    use gitops::token::{TOKEN_VARS, from_lookup};
    for var in TOKEN_VARS {
        let found = from_lookup(|k| (k == var).then(|| format!("from-{k}")));
        assert_eq!(found, Some(format!("from-{var}")), "a token in {var} alone is found");
    }
    let env = |k: &str| match k {
        "GITHUB_TOKEN" => Some(String::new()),
        "GH_TOKEN" => Some("second".into()),
        _ => Some("third".into()),
    };
    assert_eq!(from_lookup(env).as_deref(), Some("second"), "empty values are skipped, the list's order wins");
    assert_eq!(from_lookup(|_| None), None);
    // Both users of the list name every variable when the token is missing or refused.
    let messages = [TriggerError::NoToken.to_string(), TriggerError::Unauthorized.to_string()];
    for message in messages {
        assert!(TOKEN_VARS.iter().all(|v| message.contains(v)), "{message}");
    }
}

#[test]
fn dispatch_blocking_works_from_plain_threads() {
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let server = runtime.block_on(MockServer::start());
    runtime.block_on(workflow_mock().respond_with(ResponseTemplate::new(204)).expect(1).mount(&server));
    trigger(&server, GithubEvent::WorkflowDispatch).dispatch_blocking(&request()).unwrap();
}
