//! The drift watch, end to end through `/predict`: MNIST digits of the reference's population
//! leave it steady; the same digits written with a thick pen (a shifted input stream) drift,
//! fire the retrain trigger once (a webhook receiver on a socket gets the reason), and the
//! cooldown holds the next drifting window back.

use std::io::{BufRead, BufReader, Read, Write};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use model::data::{Mnist, PIXELS, Split};

use crate::http::{post, send};
use crate::support::{TestRepo, metric, png_of, start, wait_for};

const WINDOW: usize = 200;

/// What a receiver got: each request's body and `authorization` header.
type Received = Arc<Mutex<Vec<(String, String)>>>;

/// A receiver that answers 202 to every POST and keeps each body with its authorization header.
fn receiver() -> (String, Received) {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}/hooks/retrain", listener.local_addr().unwrap());
    let got = Arc::new(Mutex::new(Vec::new()));
    let kept = got.clone();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let mut stream = BufReader::new(stream.unwrap());
            let (mut length, mut auth) = (0, String::new());
            loop {
                let mut line = String::new();
                stream.read_line(&mut line).unwrap();
                let lower = line.to_ascii_lowercase();
                if let Some(v) = lower.strip_prefix("content-length:") {
                    length = v.trim().parse().unwrap();
                }
                if lower.starts_with("authorization:") {
                    auth = line["authorization:".len()..].trim().to_string();
                }
                if line == "\r\n" || line.is_empty() {
                    break;
                }
            }
            let mut body = vec![0; length];
            stream.read_exact(&mut body).unwrap();
            kept.lock().unwrap().push((String::from_utf8(body).unwrap(), auth));
            let _ =
                stream.get_mut().write_all(b"HTTP/1.1 202 Accepted\r\ncontent-length: 0\r\nconnection: close\r\n\r\n");
        }
    });
    (url, got)
}

/// Each digit's strokes widened by one pixel on every side (a 3x3 maximum): a bolder pen.
fn bold(pixels: &[u8]) -> Vec<u8> {
    let at =
        |x: i32, y: i32| if (0..28).contains(&x) && (0..28).contains(&y) { pixels[(y * 28 + x) as usize] } else { 0 };
    (0..PIXELS as i32)
        .map(|i| {
            let (x, y) = (i % 28, i / 28);
            (-1..=1).flat_map(|dy| (-1..=1).map(move |dx| (dx, dy))).map(|(dx, dy)| at(x + dx, y + dy)).max().unwrap()
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn drift_fires_on_a_shifted_stream_and_not_on_the_reference() {
    let Some(dir) = crate::support::mnist_dir() else { return };
    // The reference was built on the test split (2,000 digits); a window samples it across the
    // set. (A run of consecutive digits is a few writers' pens, and the train split another
    // population of writers: both drift on the input's mean and spread, as they should.)
    let test = Mnist::load(&dir, Split::Test).unwrap();
    let spread = |i: usize| i * test.len() / WINDOW;
    let (url, received) = receiver();
    let repo = TestRepo::new(&[("trigger", "kind", "webhook")]);
    let params = repo.server().join("params.yaml");
    let text = std::fs::read_to_string(&params).unwrap();
    // HOME: any variable the process has; the receiver sees its value as the bearer token.
    let text = text.replacen("url: \"\"", &format!("url: \"{url}\""), 1).replacen(
        "token_env: PIPELINE_WEBHOOK_TOKEN",
        "token_env: HOME",
        1,
    );
    std::fs::write(&params, text).unwrap();
    let state = start(
        &repo.server(),
        &["--drift-window", &WINDOW.to_string(), "--drift-action", "retrain", "--drift-cooldown", "10m"],
    );
    let app = model_server::app(state.clone(), Duration::from_secs(30));
    let metrics = || state.metrics.render();
    assert_eq!(metric(&metrics(), "model_server_drift_reference"), 0.0, "nothing judged before a prediction");

    let mut right = 0;
    for i in (0..WINDOW).map(spread) {
        let reply = send(&app, post("/predict", "image/png", png_of(test.image(i)))).await;
        right += usize::from(reply.json()["index"] == u64::from(test.labels[i]));
    }
    assert!(right > WINDOW * 9 / 10, "the base model reads its test digits: {right}/{WINDOW}");
    // The window is judged on the drift thread, after the last answer.
    let judged = |result: &str, windows: u32| {
        let series = format!("model_server_drift_windows_total{{result=\"{result}\"}}");
        wait_for(Duration::from_secs(10), &format!("{windows} {result} window(s)"), || {
            metric(&metrics(), &series) == f64::from(windows)
        });
    };
    judged("steady", 1);
    let text = metrics();
    assert_eq!(metric(&text, "model_server_drift_reference"), 1.0);
    assert_eq!(metric(&text, "model_server_drift_windows_total{result=\"steady\"}"), 1.0, "{text}");
    assert_eq!(metric(&text, "model_server_drift_detected"), 0.0);
    for signal in ["confidence", "input_mean", "input_std"] {
        let psi = metric(&text, &format!("model_server_drift_psi{{signal=\"{signal}\"}}"));
        assert!(psi < 0.25, "{signal}: PSI {psi} on the reference's own digits");
    }
    assert!(received.lock().unwrap().is_empty());

    for round in 1..=2 {
        for i in (0..WINDOW).map(spread) {
            let reply = send(&app, post("/predict", "image/png", png_of(&bold(test.image(i))))).await;
            assert_eq!(reply.status, 200, "drift never changes an answer");
        }
        judged("drift", round);
        let text = metrics();
        assert_eq!(metric(&text, "model_server_drift_windows_total{result=\"drift\"}"), f64::from(round), "{text}");
        assert_eq!(metric(&text, "model_server_drift_detected"), 1.0);
        let psi = metric(&text, "model_server_drift_psi{signal=\"input_mean\"}");
        assert!(psi > 0.5, "the bold pen moves the input's mean: PSI {psi}");
        assert!(metric(&text, "model_server_drift_ks{signal=\"input_mean\"}") > 0.3);
    }
    wait_for(Duration::from_secs(20), "the drift retrain to reach the receiver", || {
        metric(&metrics(), "model_server_drift_retrains_total{result=\"fired\"}") == 1.0
    });
    std::thread::sleep(Duration::from_millis(300));
    let received = received.lock().unwrap();
    assert_eq!(received.len(), 1, "one retrain: the second drifting window is inside the cooldown");
    let (body, auth) = &received[0];
    let body: serde_json::Value = serde_json::from_str(body).unwrap();
    assert_eq!(body["event_type"], "retrain");
    let reason = body["client_payload"]["reason"].as_str().unwrap();
    assert!(reason.starts_with("drift: ") && reason.contains("input_mean PSI"), "{reason}");
    assert_eq!(*auth, format!("Bearer {}", std::env::var("HOME").unwrap()));
}
