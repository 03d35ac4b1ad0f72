//! The `webhook` trigger: POSTs GitHub's `repository_dispatch` body (`{"event_type": "retrain",
//! "client_payload": {"sub_set", "count", "commit"[, "reason"]}}`) to `trigger.webhook.url`, with
//! `Authorization: Bearer <token>` read from the variable `trigger.webhook.token_env` names.
//! A cluster cannot receive GitHub's dispatches; this reaches a receiver in it that starts the
//! retrain Job (deploy/k8s/README.md), and a receiver written for GitHub's body reads it as is.
//!
//! It goes out through octocrab's client (hyper + rustls, the `github` trigger's HTTP stack),
//! so the crate links one HTTP client. 5xx, 408, 429 and transport errors are retried with a
//! doubling backoff, honouring `retry-after`; any other answer fails at once, naming the URL.

use std::time::Duration;

use octocrab::Octocrab;
use octocrab::service::middleware::retry::RetryConfig;
use serde_json::{Value, json};

use super::RetrainRequest;
use crate::params::{WEBHOOK_URL_ENV, WebhookParams};

/// Longest wait honoured from a `retry-after`.
const MAX_WAIT: Duration = Duration::from_secs(120);
/// Longest time to connect, and to wait for the answer, per attempt.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
const READ_TIMEOUT: Duration = Duration::from_secs(30);

/// Errors of the `webhook` trigger. None of them carries the token.
#[derive(Debug, thiserror::Error)]
pub enum WebhookError {
    #[error("trigger.kind is webhook but trigger.webhook.url is empty: set it in params.yaml or set {WEBHOOK_URL_ENV}")]
    NoUrl,
    #[error("trigger.webhook.url {url:?} is not an http:// or https:// URL with a host (and no user:password@)")]
    BadUrl { url: String },
    #[error("no webhook token: set {var} (the variable trigger.webhook.token_env names)")]
    NoToken { var: String },
    #[error("the webhook receiver at {url} refused the token ({status}): check {var}")]
    Unauthorized { url: String, status: u16, var: String },
    #[error("the webhook receiver at {url} answered {status}: {message}")]
    Status { url: String, status: u16, message: String },
    #[error("the webhook to {url} failed after {attempts} attempts, last: {last}")]
    GaveUp { url: String, attempts: u32, last: String },
    #[error("webhook client: {0}")]
    Client(#[from] octocrab::Error),
    #[error("cannot start a runtime for the webhook: {0}")]
    Runtime(std::io::Error),
}

/// Sends retrain requests to a webhook receiver.
#[derive(Clone)]
pub struct WebhookTrigger {
    params: WebhookParams,
    /// `scheme://host[:port]` of the URL, and its path and query.
    origin: String,
    path: String,
    token: String,
}

impl std::fmt::Debug for WebhookTrigger {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WebhookTrigger").field("params", &self.params).field("token", &"<redacted>").finish()
    }
}

enum Attempt {
    Done,
    Retry { wait: Option<Duration>, why: String },
}

impl WebhookTrigger {
    /// Checks the URL and the token (the value of `params.token_env`, which the caller reads).
    pub fn new(params: WebhookParams, token: Option<String>) -> Result<Self, WebhookError> {
        let url = params.url.trim();
        if url.is_empty() {
            return Err(WebhookError::NoUrl);
        }
        let (origin, path) = split_url(url).ok_or_else(|| WebhookError::BadUrl { url: url.to_string() })?;
        let token = token
            .filter(|t| !t.trim().is_empty())
            .ok_or_else(|| WebhookError::NoToken { var: params.token_env.clone() })?;
        Ok(Self { params, origin, path, token })
    }

    /// The JSON body sent for `request`: the body of GitHub's `repository_dispatch`.
    pub fn body(request: &RetrainRequest) -> Value {
        let mut body = json!({
            "event_type": "retrain",
            "client_payload": {
                "sub_set": request.sub_set,
                "count": request.count,
                "commit": request.commit.clone().unwrap_or_default(),
            }
        });
        if let Some(reason) = &request.reason {
            body["client_payload"]["reason"] = json!(reason);
        }
        body
    }

    /// Sends the request, retrying as the module docs say.
    pub async fn dispatch(&self, request: &RetrainRequest) -> Result<(), WebhookError> {
        let client = Octocrab::builder()
            .add_retry_config(RetryConfig::None)
            .set_connect_timeout(Some(CONNECT_TIMEOUT))
            .set_read_timeout(Some(READ_TIMEOUT))
            .base_uri(self.origin.as_str())?
            .personal_token(self.token.clone())
            .build()?;
        let body = Self::body(request);
        let attempts = self.params.attempts.max(1);
        let mut backoff = Duration::from_millis(self.params.backoff_ms);
        let mut last = String::new();
        for attempt in 1..=attempts {
            match self.attempt(&client, &body).await? {
                Attempt::Done => return Ok(()),
                Attempt::Retry { wait, why } => {
                    tracing::warn!(attempt, url = %self.params.url, %why, "webhook will be retried");
                    last = why;
                    if attempt < attempts {
                        tokio::time::sleep(wait.unwrap_or(backoff).min(MAX_WAIT)).await;
                        backoff *= 2;
                    }
                }
            }
        }
        Err(WebhookError::GaveUp { url: self.params.url.clone(), attempts, last })
    }

    /// [`WebhookTrigger::dispatch`] from blocking code, on a private runtime in its own thread
    /// (so it also works when called inside another runtime).
    pub fn dispatch_blocking(&self, request: &RetrainRequest) -> Result<(), WebhookError> {
        std::thread::scope(|s| {
            s.spawn(|| {
                let runtime = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .map_err(WebhookError::Runtime)?;
                runtime.block_on(self.dispatch(request))
            })
            .join()
            .expect("the webhook thread does not panic")
        })
    }

    async fn attempt(&self, client: &Octocrab, body: &Value) -> Result<Attempt, WebhookError> {
        // A path without a host: octocrab adds the bearer token only to requests for its base URI.
        let response = match client._post(self.path.as_str(), Some(body)).await {
            Ok(r) => r,
            Err(e) => return Ok(Attempt::Retry { wait: None, why: format!("transport error: {e}") }),
        };
        let status = response.status().as_u16();
        let retry_after = response
            .headers()
            .get("retry-after")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.trim().parse::<u64>().ok())
            .map(Duration::from_secs);
        let text = client.body_to_string(response).await.unwrap_or_default();
        let message: String = text.trim().chars().take(300).collect();
        let url = self.params.url.clone();
        match status {
            200..=299 => Ok(Attempt::Done),
            408 | 429 | 500..=599 => Ok(Attempt::Retry { wait: retry_after, why: format!("{status}: {message}") }),
            401 | 403 => Err(WebhookError::Unauthorized { url, status, var: self.params.token_env.clone() }),
            _ => Err(WebhookError::Status { url, status, message }),
        }
    }
}

/// `scheme://authority` and the path and query (`/` when empty) of an http(s) URL, or `None`.
fn split_url(url: &str) -> Option<(String, String)> {
    let (scheme, rest) = url.split_once("://")?;
    if !matches!(scheme, "http" | "https") {
        return None;
    }
    let rest = rest.split('#').next().unwrap_or_default();
    let (authority, path) = rest.find(['/', '?']).map_or((rest, ""), |i| rest.split_at(i));
    if authority.is_empty() || authority.contains('@') {
        return None;
    }
    let path = if path.starts_with('/') { path.to_string() } else { format!("/{path}") };
    Some((format!("{scheme}://{authority}"), path))
}
