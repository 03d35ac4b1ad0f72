//! The `github` trigger: a `workflow_dispatch` of the retrain workflow, or a
//! `repository_dispatch` of event type `retrain`, through octocrab.
//!
//! 5xx answers, transport errors and rate limits (429, or 403 with `x-ratelimit-remaining: 0`)
//! are retried with a doubling backoff, honouring `retry-after` (and `x-ratelimit-reset`);
//! 401, other 403s and 404 fail at once with a message that says what to fix.

use std::time::Duration;

use octocrab::Octocrab;
use octocrab::service::middleware::retry::RetryConfig;
use serde_json::{Value, json};

use super::{RetrainRequest, TriggerError};
use crate::params::{GithubEvent, GithubParams};

/// Longest wait honoured from a `retry-after` or rate-limit reset.
const MAX_WAIT: Duration = Duration::from_secs(120);

/// Dispatches retrain runs on GitHub.
#[derive(Debug, Clone)]
pub struct GithubTrigger {
    params: GithubParams,
    token: String,
}

enum Attempt {
    Done,
    Retry { wait: Option<Duration>, why: String },
}

impl GithubTrigger {
    pub fn new(params: GithubParams, token: Option<String>) -> Result<Self, TriggerError> {
        for (key, value) in [("owner", &params.owner), ("repo", &params.repo), ("workflow", &params.workflow)] {
            if value.trim().is_empty() {
                return Err(TriggerError::Unconfigured(key));
            }
        }
        let token = token.filter(|t| !t.is_empty()).ok_or(TriggerError::NoToken)?;
        Ok(Self { params, token })
    }

    /// The API path and JSON body of the dispatch for `request`.
    pub fn request(&self, request: &RetrainRequest) -> (String, Value) {
        let p = &self.params;
        let commit = request.commit.clone().unwrap_or_default();
        match p.event {
            GithubEvent::WorkflowDispatch => {
                let mut inputs = json!({
                    "sub_set": request.sub_set.to_string(),
                    "count": request.count.to_string(),
                    "commit": commit,
                });
                // Only when there is one, so a workflow that does not declare `reason` still
                // takes the seals' dispatches.
                if let Some(reason) = &request.reason {
                    inputs["reason"] = json!(reason);
                }
                (
                    format!("/repos/{}/{}/actions/workflows/{}/dispatches", p.owner, p.repo, p.workflow),
                    json!({ "ref": p.git_ref, "inputs": inputs }),
                )
            }
            GithubEvent::RepositoryDispatch => {
                (format!("/repos/{}/{}/dispatches", p.owner, p.repo), super::webhook::WebhookTrigger::body(request))
            }
        }
    }

    /// Sends the dispatch, retrying as the module docs say.
    pub async fn dispatch(&self, request: &RetrainRequest) -> Result<(), TriggerError> {
        let client = self.client()?;
        let (path, body) = self.request(request);
        let mut backoff = Duration::from_millis(self.params.backoff_ms);
        let mut last = String::new();
        for attempt in 1..=self.params.attempts.max(1) {
            match self.attempt(&client, &path, &body).await? {
                Attempt::Done => return Ok(()),
                Attempt::Retry { wait, why } => {
                    tracing::warn!(attempt, %why, "GitHub dispatch will be retried");
                    last = why;
                    if attempt < self.params.attempts {
                        tokio::time::sleep(wait.unwrap_or(backoff).min(MAX_WAIT)).await;
                        backoff *= 2;
                    }
                }
            }
        }
        Err(TriggerError::GaveUp { attempts: self.params.attempts.max(1), last })
    }

    /// [`GithubTrigger::dispatch`] from blocking code, on a private runtime in its own thread
    /// (so it also works when called inside another runtime).
    pub fn dispatch_blocking(&self, request: &RetrainRequest) -> Result<(), TriggerError> {
        std::thread::scope(|s| {
            s.spawn(|| {
                let runtime = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .map_err(|source| TriggerError::Io { path: "tokio runtime".into(), source })?;
                runtime.block_on(self.dispatch(request))
            })
            .join()
            .expect("the dispatch thread does not panic")
        })
    }

    fn client(&self) -> Result<Octocrab, TriggerError> {
        let mut builder = Octocrab::builder().add_retry_config(RetryConfig::None);
        if let Some(uri) = &self.params.base_uri {
            builder = builder
                .base_uri(uri.as_str())
                .map_err(|e| TriggerError::BaseUri { uri: uri.clone(), reason: e.to_string() })?;
        }
        Ok(builder.personal_token(self.token.clone()).build()?)
    }

    async fn attempt(&self, client: &Octocrab, path: &str, body: &Value) -> Result<Attempt, TriggerError> {
        let response = match client._post(path, Some(body)).await {
            Ok(r) => r,
            Err(e) => return Ok(Attempt::Retry { wait: None, why: format!("transport error: {e}") }),
        };
        let status = response.status().as_u16();
        let header = |name: &str| response.headers().get(name).and_then(|v| v.to_str().ok()).map(str::to_string);
        let retry_after = header("retry-after").and_then(|v| v.trim().parse::<u64>().ok()).map(Duration::from_secs);
        let rate_limited = header("x-ratelimit-remaining").as_deref() == Some("0");
        let reset_wait = header("x-ratelimit-reset")
            .and_then(|v| v.parse::<i64>().ok())
            .map(|reset| Duration::from_secs(u64::try_from(reset - chrono::Utc::now().timestamp()).unwrap_or(0)));
        let message = client.body_to_string(response).await.unwrap_or_default();
        let message = serde_json::from_str::<Value>(&message)
            .ok()
            .and_then(|v| v.get("message").and_then(Value::as_str).map(str::to_string))
            .unwrap_or(message);
        match status {
            200..=299 => Ok(Attempt::Done),
            429 => Ok(Attempt::Retry { wait: retry_after.or(reset_wait), why: format!("429 rate limited: {message}") }),
            403 if rate_limited || retry_after.is_some() => {
                Ok(Attempt::Retry { wait: retry_after.or(reset_wait), why: format!("403 rate limited: {message}") })
            }
            500..=599 => Ok(Attempt::Retry { wait: retry_after, why: format!("{status}: {message}") }),
            401 => Err(TriggerError::Unauthorized),
            403 => {
                Err(TriggerError::Forbidden { repo: format!("{}/{}", self.params.owner, self.params.repo), message })
            }
            404 => Err(TriggerError::NotFound { path: path.to_string() }),
            _ => Err(TriggerError::Status { status, path: path.to_string(), message }),
        }
    }
}
