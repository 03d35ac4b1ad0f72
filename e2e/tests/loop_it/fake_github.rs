//! A local stand-in for the GitHub API: it answers a `workflow_dispatch` with 204 and then does
//! what GitHub would — runs the retrain workflow's `run:` steps (through `pipeline ci run
//! retrain`) in a separate runner clone of origin, which promotes and pushes.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

pub struct FakeGithub {
    pub url: String,
    _runner: tempfile::TempDir,
}

impl FakeGithub {
    pub fn start(origin: &Path, mnist: &Path) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let runner = tempfile::tempdir().unwrap();
        let (origin, mnist, work) = (origin.to_path_buf(), mnist.to_path_buf(), runner.path().to_path_buf());
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(mut stream) = stream else { continue };
                let (request_line, headers, body) = read_request(&mut stream);
                let dispatch =
                    request_line.starts_with("POST /repos/acme/digits/actions/workflows/retrain.yml/dispatches");
                let authorized = headers.iter().any(|h| h.eq_ignore_ascii_case("authorization: Bearer test-token"));
                let reply = if dispatch && authorized {
                    "HTTP/1.1 204 No Content\r\n\r\n"
                } else {
                    "HTTP/1.1 404 Not Found\r\ncontent-length: 2\r\n\r\n{}"
                };
                let _ = stream.write_all(reply.as_bytes());
                drop(stream);
                if dispatch && authorized {
                    let inputs: serde_json::Value = serde_json::from_slice(&body).unwrap_or_default();
                    run_workflow(&origin, &mnist, &work, &inputs["inputs"]);
                }
            }
        });
        Self { url, _runner: runner }
    }
}

fn read_request(stream: &mut std::net::TcpStream) -> (String, Vec<String>, Vec<u8>) {
    let mut reader = BufReader::new(stream.try_clone().unwrap());
    let mut line = String::new();
    reader.read_line(&mut line).unwrap();
    let mut headers = Vec::new();
    loop {
        let mut h = String::new();
        reader.read_line(&mut h).unwrap();
        let h = h.trim_end().to_string();
        if h.is_empty() {
            break;
        }
        headers.push(h);
    }
    let len = headers
        .iter()
        .find_map(|h| h.to_ascii_lowercase().strip_prefix("content-length:").map(|v| v.trim().parse().unwrap_or(0)))
        .unwrap_or(0);
    let mut body = vec![0; len];
    reader.read_exact(&mut body).unwrap();
    (line, headers, body)
}

/// What a GitHub runner does for the dispatch: check out origin (once the sealing push is
/// there), then run the workflow.
fn run_workflow(origin: &Path, mnist: &Path, work: &Path, inputs: &serde_json::Value) {
    let clone: PathBuf = work.join("runner");
    let _ = std::fs::remove_dir_all(&clone);
    let git = |args: &[&str], dir: &Path| {
        testkit::run(Command::new("git").args(args).current_dir(dir), &format!("git {}", args.join(" ")))
    };
    git(&["clone", "-q", origin.to_str().unwrap(), clone.to_str().unwrap()], work);
    git(&["config", "user.name", "runner"], &clone);
    git(&["config", "user.email", "runner@example.com"], &clone);
    let start = Instant::now();
    while !clone.join(format!("new_data/sub_set_{}/sealed.json", inputs["sub_set"].as_str().unwrap_or("0"))).is_file() {
        assert!(start.elapsed() < Duration::from_secs(120), "the sealing commit never reached origin");
        std::thread::sleep(Duration::from_millis(300));
        git(&["pull", "-q", "--ff-only"], &clone);
    }
    std::fs::create_dir_all(clone.join("data")).unwrap();
    std::os::unix::fs::symlink(mnist, clone.join("data/mnist")).unwrap();
    let sub_set = format!("sub_set={}", inputs["sub_set"].as_str().unwrap_or_default());
    testkit::run(
        Command::new(super::support::bins().join("pipeline"))
            .args(["ci", "run", "retrain", "--input", &sub_set])
            .current_dir(&clone)
            .env("PATH", super::support::path_with_bins())
            .env("PIPELINE_TRIGGER", "none"),
        "pipeline ci run retrain (runner clone)",
    );
}
