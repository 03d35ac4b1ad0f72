//! The router: every route, the request timeout, the body limit, per-route metrics, a layer
//! that answers a panicking handler with a JSON 500 (still counted), and a last layer that turns
//! any error without a JSON body (unknown route, wrong method, body too large, timeout) into
//! `{"error": "..."}`.

use std::any::Any;
use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use axum::Router;
use axum::extract::{DefaultBodyLimit, MatchedPath, Request, State};
use axum::http::{StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use tower_http::timeout::TimeoutLayer;

use crate::error::AppError;
use crate::routes::{admin, assets, feedback, health, kserve, models, predict, review, status};
use crate::state::AppState;

/// Error bodies longer than this are not copied into the JSON message.
const MAX_ERROR_TEXT: usize = 1024;

pub fn app(state: AppState, request_timeout: Duration) -> Router {
    with_middleware(routes(), state, request_timeout)
}

fn routes() -> Router<AppState> {
    Router::new()
        .route("/", get(assets::index))
        .route("/assets/{*file}", get(assets::asset))
        .route("/predict", post(predict::predict))
        .route("/feedback", post(feedback::feedback))
        .route("/api/status", get(status::status))
        .route("/api/task", get(status::task))
        .route("/api/history", get(status::history))
        .route("/api/review", get(review::queue).post(review::decide))
        .route("/models", get(models::models))
        .route("/admin/reload", post(admin::reload))
        .route("/admin/rollback", post(admin::rollback))
        .route("/healthz", get(health::healthz))
        .route("/readyz", get(health::readyz))
        .route("/metrics", get(health::metrics))
        .route("/v2", get(kserve::server_metadata))
        .route("/v2/health/live", get(kserve::live))
        .route("/v2/health/ready", get(kserve::ready))
        .route("/v2/models/{name}", get(kserve::model_metadata))
        .route("/v2/models/{name}/ready", get(kserve::model_ready))
        .route("/v2/models/{name}/infer", post(kserve::infer))
        .route("/v2/models/{name}/versions/{version}", get(kserve::version_metadata))
        .route("/v2/models/{name}/versions/{version}/ready", get(kserve::version_ready))
        .route("/v2/models/{name}/versions/{version}/infer", post(kserve::version_infer))
        .fallback(|| async { StatusCode::NOT_FOUND })
}

/// The layers every route runs under, innermost first: the body limit, the request timeout,
/// panics answered as 500, JSON error bodies, and the metrics, which so count every request.
pub fn with_middleware(routes: Router<AppState>, state: AppState, request_timeout: Duration) -> Router {
    let body_limit = state.settings.body_limit;
    routes
        .layer(DefaultBodyLimit::max(body_limit))
        .layer(TimeoutLayer::with_status_code(StatusCode::REQUEST_TIMEOUT, request_timeout))
        .layer(middleware::from_fn(catch_panic))
        .layer(middleware::from_fn(json_errors))
        .layer(middleware::from_fn_with_state(state.clone(), record))
        .with_state(state)
}

/// Counts the request and its latency by matched route, method and status.
async fn record(State(state): State<AppState>, req: Request, next: Next) -> Response {
    let started = Instant::now();
    let route = req.extensions().get::<MatchedPath>().map_or("unmatched", |p| p.as_str()).to_string();
    let method = req.method().as_str().to_string();
    let response = next.run(req).await;
    let status = response.status().as_u16().to_string();
    let labels = [route.as_str(), method.as_str(), status.as_str()];
    state.metrics.http_requests.with_label_values(&labels).inc();
    state.metrics.http_duration.with_label_values(&labels).observe(started.elapsed().as_secs_f64());
    response
}

/// A handler that panics is answered 500 `{"error": "handling the request failed"}`, the panic
/// logged; without this the connection would just close and the request go uncounted.
async fn catch_panic(req: Request, next: Next) -> Response {
    let route = req.extensions().get::<MatchedPath>().map_or("unmatched", |p| p.as_str()).to_string();
    match (CatchUnwind { inner: Box::pin(next.run(req)) }).await {
        Ok(response) => response,
        Err(panic) => AppError::internal("handling the request", format!("{route}: panicked: {}", panic_text(&*panic)))
            .into_response(),
    }
}

fn panic_text(panic: &(dyn Any + Send)) -> &str {
    panic.downcast_ref::<&str>().copied().or_else(|| panic.downcast_ref::<String>().map(String::as_str)).unwrap_or("")
}

/// A future that turns a panic while it is polled into `Err`.
struct CatchUnwind<F> {
    inner: Pin<Box<F>>,
}

impl<F: Future> Future for CatchUnwind<F> {
    type Output = std::thread::Result<F::Output>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let inner = self.inner.as_mut();
        match std::panic::catch_unwind(AssertUnwindSafe(|| inner.poll(cx))) {
            Ok(Poll::Pending) => Poll::Pending,
            Ok(Poll::Ready(output)) => Poll::Ready(Ok(output)),
            Err(panic) => Poll::Ready(Err(panic)),
        }
    }
}

/// Gives every 4xx/5xx response without a JSON body one: `{"error": <its text or reason>}`.
async fn json_errors(req: Request, next: Next) -> Response {
    let response = next.run(req).await;
    let status = response.status();
    let is_json =
        response.headers().get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).is_some_and(|v| v.contains("json"));
    if !(status.is_client_error() || status.is_server_error()) || is_json {
        return response;
    }
    let (parts, body) = response.into_parts();
    let text = axum::body::to_bytes(body, MAX_ERROR_TEXT)
        .await
        .map(|b| String::from_utf8_lossy(&b).trim().to_string())
        .unwrap_or_default();
    let message = match (text.is_empty(), status) {
        (false, _) => text,
        (true, StatusCode::NOT_FOUND) => "no such route".to_string(),
        (true, StatusCode::METHOD_NOT_ALLOWED) => "method not allowed on this route".to_string(),
        (true, StatusCode::REQUEST_TIMEOUT) => "the request took too long".to_string(),
        (true, s) => s.canonical_reason().unwrap_or("error").to_lowercase(),
    };
    let mut fixed = (status, axum::Json(serde_json::json!({ "error": message }))).into_response();
    for (name, value) in
        parts.headers.iter().filter(|(n, _)| *n != header::CONTENT_TYPE && *n != header::CONTENT_LENGTH)
    {
        fixed.headers_mut().insert(name, value.clone());
    }
    fixed
}
