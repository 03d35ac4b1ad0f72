//! SIGTERM through a real signal: a `model-server` process with a request in flight (its
//! body half sent) is sent SIGTERM; the request still completes with its answer, new
//! connections are refused, and the process exits 0.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::support::TestRepo;

#[test]
fn sigterm_finishes_the_request_in_flight_and_exits_zero() {
    let png = need_digits!(1).remove(0).0;
    let repo = TestRepo::new(&[]);
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let mut server = testkit::child::die_with_parent(&mut Command::new(env!("CARGO_BIN_EXE_model-server")))
        .args(["--repo", repo.server().to_str().unwrap(), "--port", &port.to_string(), "--device", "cpu"])
        .env("PIPELINE_TRIGGER", "none")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let addr = format!("127.0.0.1:{port}");
    let started = Instant::now();
    while !ready(&addr) {
        assert!(started.elapsed() < Duration::from_secs(60), "model-server did not become ready");
        assert!(server.try_wait().unwrap().is_none(), "model-server exited before it was ready");
        std::thread::sleep(Duration::from_millis(100));
    }

    // The request is in flight: its headers and half its body are on the wire.
    let mut conn = TcpStream::connect(&addr).unwrap();
    let head = format!(
        "POST /predict HTTP/1.1\r\nHost: {addr}\r\nContent-Type: image/png\r\nContent-Length: {}\r\n\r\n",
        png.len()
    );
    let half = png.len() / 2;
    conn.write_all(head.as_bytes()).unwrap();
    conn.write_all(&png[..half]).unwrap();
    conn.flush().unwrap();
    std::thread::sleep(Duration::from_millis(200));

    let killed = Command::new("kill").args(["-TERM", &server.id().to_string()]).status().unwrap();
    assert!(killed.success(), "kill -TERM");
    // Shutdown has begun once the listener stops taking new connections.
    let since = Instant::now();
    while TcpStream::connect(&addr).is_ok() {
        assert!(since.elapsed() < Duration::from_secs(10), "still accepting connections 10 s after SIGTERM");
        std::thread::sleep(Duration::from_millis(20));
    }
    assert!(server.try_wait().unwrap().is_none(), "the server exited with a request in flight");

    conn.write_all(&png[half..]).unwrap();
    conn.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
    let mut answer = String::new();
    conn.read_to_string(&mut answer).unwrap();
    assert!(answer.starts_with("HTTP/1.1 200"), "the request in flight was answered:\n{answer}");
    assert!(answer.contains("\"digit\""), "with its prediction:\n{answer}");

    let since = Instant::now();
    let status = loop {
        if let Some(status) = server.try_wait().unwrap() {
            break status;
        }
        assert!(since.elapsed() < Duration::from_secs(20), "model-server did not exit within 20 s of SIGTERM");
        std::thread::sleep(Duration::from_millis(50));
    };
    assert!(status.success(), "model-server exits 0 after SIGTERM, got {status}");
}

/// Whether `GET /readyz` answers 200.
fn ready(addr: &str) -> bool {
    let Ok(mut conn) = TcpStream::connect(addr) else { return false };
    let request = format!("GET /readyz HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n");
    let mut answer = String::new();
    conn.write_all(request.as_bytes()).is_ok()
        && conn.read_to_string(&mut answer).is_ok()
        && answer.starts_with("HTTP/1.1 200")
}
