//! Bounded work and closed doors (issue 14): KServe tensors run in pieces of --max-batch under
//! an image cap with checked arithmetic, non-finite inputs refused, panics answered and counted,
//! empty tokens refused at start, /api/history behind the feedback token, slow and idle
//! connections closed, hyper's own errors with JSON bodies, blank feedback refused like blank
//! predictions, an unreadable registry counted, and error chains printed once.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::process::Command;
use std::time::{Duration, Instant};

use axum::http::StatusCode;
use axum::routing::get as route_get;
use base64::Engine;
use serde_json::json;

use crate::http::{get, post, post_json, send, with_token};
use crate::support::{TestRepo, metric, serve, start, wait_for};

const INFER: &str = "/v2/models/mnist/infer";

fn app(state: &model_server::AppState) -> axum::Router {
    model_server::app(state.clone(), Duration::from_secs(30))
}

/// A KServe request with `n` UINT8 images of `pixels` in the binary extension.
fn binary_uint8(n: usize, pixels: &[u8]) -> axum::http::Request<axum::body::Body> {
    let header = json!({ "inputs": [{ "name": "input", "shape": [n, 1, 28, 28], "datatype": "UINT8",
        "parameters": { "binary_data_size": pixels.len() } }] });
    let mut body = serde_json::to_vec(&header).unwrap();
    let header_len = body.len();
    body.extend_from_slice(pixels);
    let mut req = post(INFER, "application/octet-stream", body);
    req.headers_mut().insert("inference-header-content-length", header_len.into());
    req
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kserve_runs_a_large_tensor_in_pieces_of_max_batch() {
    let repo = TestRepo::new(&[]);
    let state = start(&repo.server(), &["--max-batch", "8"]);
    let app = app(&state);
    let (pixels, labels) = need_pixels!(100);
    let request =
        json!({ "inputs": [{ "name": "input", "shape": [100, 1, 28, 28], "datatype": "UINT8", "data": pixels }] });
    let reply = send(&app, post_json(INFER, &request)).await;
    assert_eq!(reply.status, StatusCode::OK, "{}", String::from_utf8_lossy(&reply.body));
    let answer = reply.json();
    let digits: Vec<u64> =
        answer["outputs"][1]["data"].as_array().unwrap().iter().map(|d| d.as_u64().unwrap()).collect();
    let right = digits.iter().zip(&labels).filter(|(d, l)| **d == u64::from(**l)).count();
    assert!(right >= 93, "{right}/100 right");
    let text = state.metrics.render();
    let batches = metric(&text, "model_server_inference_batch_size_count");
    assert!(batches >= 13.0, "100 images in pieces of 8 take 13 batches, not {batches}");
    assert_eq!(metric(&text, "model_server_inference_batch_size_bucket{le=\"8\"}"), batches, "{text}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_large_tensor_takes_turns_with_a_concurrent_predict() {
    let repo = TestRepo::new(&[]);
    let state = start(&repo.server(), &["--max-batch", "8", "--workers", "1"]);
    let app = app(&state);
    let png = need_digits!(1).remove(0).0;
    let n = 4000;
    let big = tokio::spawn({
        let app = app.clone();
        async move { send(&app, binary_uint8(n, &vec![0u8; n * 784])).await }
    });
    wait_for(Duration::from_secs(20), "the first piece of the large tensor", || {
        metric(&state.metrics.render(), "model_server_inference_batch_size_count") >= 1.0
    });
    let reply = send(&app, post("/predict", "image/png", png)).await;
    assert_eq!(reply.status, StatusCode::OK, "{}", String::from_utf8_lossy(&reply.body));
    // Images run by the time /predict was answered: the pieces so far and the one digit.
    let run = metric(&state.metrics.render(), "model_server_inference_batch_size_sum");
    assert!(run < n as f64, "/predict waited until all {n} images of the tensor had run ({run} images)");
    let big = big.await.unwrap();
    assert_eq!(big.status, StatusCode::OK, "{}", String::from_utf8_lossy(&big.body));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kserve_caps_the_images_of_a_request_and_counts_refusals() {
    let repo = TestRepo::new(&[]);
    let state = start(&repo.server(), &["--kserve-max-images", "64"]);
    let app = app(&state);
    assert_eq!(send(&app, binary_uint8(64, &[0u8; 64 * 784])).await.status, StatusCode::OK);
    let over = send(&app, binary_uint8(65, &[0u8; 65 * 784])).await.error(StatusCode::PAYLOAD_TOO_LARGE);
    assert!(over.contains("at most 64 images"), "{over}");
    // Shapes whose product overflows: refused before anything is allocated, not a panic.
    for n in [4_611_686_018_427_387_904u64, u64::MAX / 784 + 1, i64::MAX as u64] {
        let huge =
            json!({ "inputs": [{ "name": "input", "shape": [n, 1, 28, 28], "datatype": "UINT8", "data": [0] }] });
        send(&app, post_json(INFER, &huge)).await.error(StatusCode::PAYLOAD_TOO_LARGE);
    }
    let text = state.metrics.render();
    let series = "model_server_http_requests_total{method=\"POST\",route=\"/v2/models/{name}/infer\",status=\"413\"}";
    assert_eq!(metric(&text, series), 4.0, "{text}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kserve_refuses_fp32_inputs_that_are_not_finite() {
    let repo = TestRepo::new(&[]);
    let state = start(&repo.server(), &[]);
    let app = app(&state);
    let mut values = vec![0.0f64; 784];
    values[100] = 1e308;
    let json_overflow =
        json!({ "inputs": [{ "name": "input", "shape": [1, 1, 28, 28], "datatype": "FP32", "data": values }] });
    let message = send(&app, post_json(INFER, &json_overflow)).await.error(StatusCode::BAD_REQUEST);
    assert!(message.contains("value 100 is not a finite"), "{message}");
    for bad in [f32::NAN, f32::INFINITY, f32::NEG_INFINITY] {
        let mut floats = vec![0.0f32; 784];
        floats[7] = bad;
        let header = json!({ "inputs": [{ "name": "input", "shape": [1, 1, 28, 28], "datatype": "FP32",
            "parameters": { "binary_data_size": 784 * 4 } }] });
        let mut body = serde_json::to_vec(&header).unwrap();
        let header_len = body.len();
        body.extend(floats.iter().flat_map(|f| f.to_le_bytes()));
        let mut req = post(INFER, "application/octet-stream", body);
        req.headers_mut().insert("inference-header-content-length", header_len.into());
        send(&app, req).await.error(StatusCode::BAD_REQUEST);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_panicking_handler_is_answered_json_500_and_counted() {
    let repo = TestRepo::new(&[]);
    let state = start(&repo.server(), &[]);
    async fn boom() -> &'static str {
        panic!("a handler that panics")
    }
    let routes = axum::Router::new().route("/boom", route_get(boom));
    let app = model_server::app::with_middleware(routes, state.clone(), Duration::from_secs(30));
    let message = send(&app, get("/boom")).await.error(StatusCode::INTERNAL_SERVER_ERROR);
    assert_eq!(message, "handling the request failed");
    let text = state.metrics.render();
    assert_eq!(metric(&text, "model_server_http_requests_total{method=\"GET\",route=\"/boom\",status=\"500\"}"), 1.0);
}

/// Runs the `model-server` binary in an empty folder with `args` and `env`, expecting it to
/// exit on its own: killed after 60 s (a failure), and with the test.
fn server_binary(args: &[&str], env: &[(&str, &str)]) -> std::process::Output {
    let dir = tempfile::tempdir().unwrap();
    let mut command = Command::new(env!("CARGO_BIN_EXE_model-server"));
    command.args(args).envs(env.iter().copied()).current_dir(dir.path());
    command.stdout(std::process::Stdio::piped()).stderr(std::process::Stdio::piped());
    let mut child = testkit::child::die_with_parent(&mut command).spawn().unwrap();
    let started = Instant::now();
    while child.try_wait().unwrap().is_none() {
        if started.elapsed() > Duration::from_secs(60) {
            child.kill().unwrap();
            panic!("model-server {args:?} was still running after 60 s: {:?}", child.wait_with_output().unwrap());
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    child.wait_with_output().unwrap()
}

#[test]
fn an_empty_token_is_an_error_at_start_naming_its_variable() {
    for (flag, variable) in
        [("--admin-token", "MODEL_SERVER_ADMIN_TOKEN"), ("--feedback-token", "MODEL_SERVER_FEEDBACK_TOKEN")]
    {
        let error = <model_server::Config as clap::Parser>::try_parse_from(["model-server", flag, ""]).unwrap_err();
        assert!(error.to_string().contains(variable), "{error}");
        let out = server_binary(&["--port", "0"], &[(variable, "")]);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success() && stderr.contains(variable), "{:?}: {stderr}", out.status);
    }
}

#[test]
fn the_server_prints_each_cause_of_a_start_error_once() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = taken.local_addr().unwrap().port().to_string();
    let out = server_binary(&["--port", &port, "--no-fetch"], &[]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success() && stderr.contains(&format!("127.0.0.1:{port}")), "{stderr}");
    assert_eq!(stderr.matches("Address already in use").count(), 1, "the cause is printed once: {stderr}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn history_needs_the_feedback_token_when_one_is_set() {
    let repo = TestRepo::new(&[]);
    let state = start(&repo.server(), &["--feedback-token", "fb-secret"]);
    let app = app(&state);
    let png = need_digits!(1).remove(0).0;
    assert_eq!(send(&app, post("/predict", "image/png", png)).await.status, StatusCode::OK);
    send(&app, get("/api/history")).await.error(StatusCode::UNAUTHORIZED);
    for wrong in ["fb-secreT", "fb", "fb-secret-and-more", ""] {
        send(&app, with_token(get("/api/history"), wrong)).await.error(StatusCode::UNAUTHORIZED);
    }
    let history = send(&app, with_token(get("/api/history"), "fb-secret")).await;
    assert_eq!(history.status, StatusCode::OK);
    assert_eq!(history.json().as_array().map(Vec::len), Some(1));
}

/// Writes `request` and reads until the server closes the connection.
fn exchange(addr: SocketAddr, request: &[u8]) -> (String, String) {
    let mut stream = TcpStream::connect(addr).unwrap();
    stream.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    stream.write_all(request).unwrap();
    let mut answer = Vec::new();
    stream.read_to_end(&mut answer).unwrap();
    let text = String::from_utf8_lossy(&answer).into_owned();
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    (head.to_string(), body.to_string())
}

#[test]
fn requests_hyper_refuses_are_answered_with_json_and_counted() {
    let repo = TestRepo::new(&[]);
    let server = serve(start(&repo.server(), &[]), Duration::from_secs(30));
    let long_uri = format!("GET /healthz?q={} HTTP/1.1\r\nhost: x\r\n\r\n", "a".repeat(70_000));
    let headers: String = (0..150).map(|i| format!("x-h{i}: v\r\n")).collect();
    let many_headers = format!("GET /healthz HTTP/1.1\r\nhost: x\r\n{headers}\r\n");
    for (request, status) in [(long_uri, "414"), (many_headers, "431"), ("NOT HTTP\r\n\r\n".to_string(), "400")] {
        let (head, body) = exchange(server.addr, request.as_bytes());
        assert!(head.starts_with(&format!("HTTP/1.1 {status} ")), "{head}");
        assert!(head.to_ascii_lowercase().contains("content-type: application/json"), "{head}");
        let error: serde_json::Value = serde_json::from_str(&body).unwrap_or_else(|e| panic!("{e}: {body:?}"));
        assert!(error["error"].is_string(), "{body}");
        let series = format!("model_server_http_requests_total{{method=\"\",route=\"unparsed\",status=\"{status}\"}}");
        assert_eq!(metric(&server.state.metrics.render(), &series), 1.0);
    }
    // Ordinary answers pass untouched on the same kind of connection, and an answer to HEAD
    // keeps no body.
    let (head, body) = exchange(server.addr, b"GET /healthz HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n");
    assert!(head.starts_with("HTTP/1.1 200 "), "{head}");
    assert_eq!(body, r#"{"status":"ok"}"#);
    let (head, body) = exchange(server.addr, b"HEAD /nope HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n");
    assert!(head.starts_with("HTTP/1.1 404 "), "{head}");
    assert_eq!(body, "", "{head}");
}

/// Seconds until the server closes `stream`, calling `tick` every 100 ms meanwhile.
fn seconds_until_closed(stream: &mut TcpStream, mut tick: impl FnMut(&mut TcpStream)) -> f64 {
    let started = Instant::now();
    stream.set_read_timeout(Some(Duration::from_millis(100))).unwrap();
    let mut scratch = [0u8; 1024];
    loop {
        assert!(started.elapsed() < Duration::from_secs(10), "the connection is still open after 10 s");
        match stream.read(&mut scratch) {
            Ok(0) => return started.elapsed().as_secs_f64(),
            Ok(_) => {}
            Err(e) if matches!(e.kind(), std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut) => {}
            Err(_) => return started.elapsed().as_secs_f64(),
        }
        tick(stream);
    }
}

#[test]
fn slow_headers_and_idle_connections_are_closed() {
    let repo = TestRepo::new(&[]);
    let args = ["--header-read-timeout", "300ms", "--idle-timeout", "1500ms"];
    let server = serve(start(&repo.server(), &args), Duration::from_secs(30));

    // A header line every 100 ms, never the blank line that ends them.
    let mut slow = TcpStream::connect(server.addr).unwrap();
    slow.write_all(b"GET /healthz HTTP/1.1\r\nhost: x\r\n").unwrap();
    let slow_closed = seconds_until_closed(&mut slow, |s| drop(s.write_all(b"x-slow: 1\r\n")));
    assert!((0.25..1.2).contains(&slow_closed), "slow headers closed after {slow_closed:.2} s");

    // One request answered, then nothing: kept for the idle timeout (longer than the header one).
    let mut idle = TcpStream::connect(server.addr).unwrap();
    idle.write_all(b"GET /healthz HTTP/1.1\r\nhost: x\r\n\r\n").unwrap();
    let mut answer = [0u8; 512];
    let n = idle.read(&mut answer).unwrap();
    assert!(String::from_utf8_lossy(&answer[..n]).starts_with("HTTP/1.1 200 "));
    let idle_closed = seconds_until_closed(&mut idle, |_| {});
    assert!((1.3..5.0).contains(&idle_closed), "idle connection closed after {idle_closed:.2} s");

    // A connection that never sends a byte is idle too.
    let mut silent = TcpStream::connect(server.addr).unwrap();
    let silent_closed = seconds_until_closed(&mut silent, |_| {});
    assert!((1.3..5.0).contains(&silent_closed), "silent connection closed after {silent_closed:.2} s");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn feedback_refuses_a_blank_image_as_predict_does() {
    let repo = TestRepo::new(&[]);
    let state = start(&repo.server(), &[]);
    let app = app(&state);
    let mut blank = Vec::new();
    image::GrayImage::from_pixel(28, 28, image::Luma([255]))
        .write_to(&mut std::io::Cursor::new(&mut blank), image::ImageFormat::Png)
        .unwrap();
    let predicted =
        send(&app, post("/predict", "image/png", blank.clone())).await.error(StatusCode::UNPROCESSABLE_ENTITY);
    let b64 = base64::engine::general_purpose::STANDARD.encode(&blank);
    let feedback = json!({ "image": b64, "label": 3, "kind": "wrong" });
    let stored = send(&app, post_json("/feedback", &feedback)).await.error(StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(stored, predicted);
    assert_eq!(send(&app, get("/api/status")).await.json()["current_count"], 0);
    assert_eq!(metric(&state.metrics.render(), "model_server_feedback_total{kind=\"wrong\"}"), 0.0);
}

#[test]
fn an_unreadable_registry_is_counted() {
    let repo = TestRepo::new(&[]);
    let state = start(&repo.server(), &["--no-fetch"]);
    let serving = state.models.current_version();
    std::fs::write(repo.server().join("models/registry.json"), "{ not json").unwrap();
    wait_for(Duration::from_secs(10), "the bad registry to be counted", || {
        metric(&state.metrics.render(), "model_server_registry_errors_total") >= 1.0
    });
    assert_eq!(state.models.current_version(), serving, "the model serving stays");
}
