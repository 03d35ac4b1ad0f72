//! What the `/predict` benchmarks share: starting model-server, and `wrk` at concurrency 1, 8
//! and 32 with medians of several runs.

use std::ffi::OsStr;
use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A number from the environment, or `default`.
pub fn env_or(name: &str, default: u64) -> u64 {
    std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

pub fn cpus() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}

/// Starts the release model-server on `repo` on a free port; returns it and its address.
pub fn spawn_server(repo: &Path) -> (Child, String) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_model-server"))
        .args(["--repo", repo.to_str().unwrap(), "--port", "0", "--device", "cpu", "--poll-interval", "200ms"])
        .env("RUST_LOG", "warn")
        .stdout(Stdio::piped())
        .spawn()
        .expect("model-server starts");
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap()).read_line(&mut line).unwrap();
    let addr = line.trim().rsplit("http://").next().unwrap().to_string();
    wait_http(&format!("http://{addr}/readyz"));
    (child, addr)
}

/// Waits up to a minute for `url` to answer 2xx.
pub fn wait_http(url: &str) {
    let client = reqwest::blocking::Client::new();
    let started = Instant::now();
    while !client.get(url).send().is_ok_and(|r| r.status().is_success()) {
        assert!(started.elapsed() < Duration::from_secs(60), "{url} did not answer within a minute");
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// A FastAPI peer: `python -m uvicorn APP` in `dir` with 2 workers (the peers' best setup) on
/// a port of its own, `dir` and `PEER_PYTHONPATH` on its `PYTHONPATH`, `env` set; waits for its
/// `/healthz` and two more seconds of worker start-up.
pub fn spawn_uvicorn(
    python: &Path,
    dir: &Path,
    app: &str,
    port: u16,
    env: &[(&str, &OsStr)],
) -> Option<(Child, String)> {
    let pythonpath = std::env::var("PEER_PYTHONPATH").unwrap_or_default();
    let mut command = Command::new(python);
    command
        .args(["-m", "uvicorn", app, "--host", "127.0.0.1", "--port", &port.to_string()])
        .args(["--workers", "2", "--no-access-log", "--log-level", "warning"])
        .current_dir(dir)
        .env("PYTHONPATH", format!("{}:{pythonpath}", dir.display()));
    for (key, value) in env {
        command.env(key, value);
    }
    let child = command.spawn().ok()?;
    let addr = format!("127.0.0.1:{port}");
    wait_http(&format!("http://{addr}/healthz"));
    std::thread::sleep(Duration::from_secs(2));
    Some((child, addr))
}

/// Stops a server with SIGTERM and waits for it.
pub fn stop(mut child: Child) {
    let _ = Command::new("kill").arg(child.id().to_string()).status();
    let _ = child.wait();
}

/// One server's medians at one concurrency, and each run's p50 in the order run.
#[derive(Debug, Clone)]
pub struct Level {
    pub concurrency: u32,
    pub rps: f64,
    pub p50_ms: f64,
    pub p99_ms: f64,
    pub p50_runs: Vec<f64>,
}

/// The concurrency levels every `/predict` bench loads.
pub const LEVELS: [u32; 3] = [1, 8, 32];

/// Loads every server of `servers` (name, url) at each of [`LEVELS`], `runs` times, the
/// servers taking turns run by run (ours, the peer, ours, ...) so a slow minute of the machine
/// falls on both; calls `before_round` with the concurrency before each round of turns (to
/// measure something beside it); prints a table row per server and level (the medians, with
/// every run's req/s) and returns the medians, per server in the order given.
pub fn load_levels(
    servers: &[(&str, &str)],
    lua: &Path,
    seconds: u64,
    runs: usize,
    mut before_round: impl FnMut(u32),
) -> Vec<Vec<Level>> {
    for (_, url) in servers {
        wrk(url, lua, 2, 3);
    }
    let mut results: Vec<Vec<(u32, Vec<Wrk>)>> = servers.iter().map(|_| Vec::new()).collect();
    for c in LEVELS {
        let mut per_server: Vec<Vec<Wrk>> = servers.iter().map(|_| Vec::new()).collect();
        for _ in 0..runs {
            before_round(c);
            for (i, (_, url)) in servers.iter().enumerate() {
                per_server[i].push(wrk(url, lua, c, seconds));
            }
        }
        for (i, runs) in per_server.into_iter().enumerate() {
            results[i].push((c, runs));
        }
    }
    println!("| server | concurrency | req/s | p50 ms | p99 ms | errors |\n|---|---:|---:|---:|---:|---:|");
    let mut out = Vec::new();
    for ((name, _), levels) in servers.iter().zip(results) {
        let mut medians = Vec::new();
        for (c, runs) in levels {
            let errors: u64 = runs.iter().map(|r| r.errors).sum();
            let median = |f: fn(&Wrk) -> f64| {
                let mut v: Vec<f64> = runs.iter().map(f).collect();
                v.sort_by(f64::total_cmp);
                v[v.len() / 2]
            };
            let level = Level {
                concurrency: c,
                rps: median(|r| r.rps),
                p50_ms: median(|r| r.p50_ms),
                p99_ms: median(|r| r.p99_ms),
                p50_runs: runs.iter().map(|r| r.p50_ms).collect(),
            };
            let spread: Vec<String> = runs.iter().map(|r| format!("{:.0}", r.rps)).collect();
            println!(
                "| {name} | {c} | {:.0} ({}) | {:.2} | {:.2} | {errors} |",
                level.rps,
                spread.join("/"),
                level.p50_ms,
                level.p99_ms
            );
            medians.push(level);
        }
        out.push(medians);
    }
    out
}

pub struct Wrk {
    pub rps: f64,
    pub p50_ms: f64,
    pub p99_ms: f64,
    pub errors: u64,
}

pub fn wrk(url: &str, lua: &Path, connections: u32, seconds: u64) -> Wrk {
    let threads = connections.min(2).to_string();
    let out = Command::new("wrk")
        .args([
            "-t",
            &threads,
            "-c",
            &connections.to_string(),
            "-d",
            &format!("{seconds}s"),
            "--latency",
            "-s",
            lua.to_str().unwrap(),
            url,
        ])
        .output()
        .expect("wrk runs (apt-get install wrk)");
    let text = String::from_utf8_lossy(&out.stdout).to_string();
    let field = |prefix: &str| text.lines().find_map(|l| l.trim().strip_prefix(prefix).map(|v| v.trim().to_string()));
    let ms = |v: String| {
        let (num, unit) = v.split_at(v.find(|c: char| c.is_ascii_alphabetic()).unwrap_or(v.len()));
        let n: f64 = num.parse().unwrap_or(f64::NAN);
        match unit {
            "us" => n / 1000.0,
            "ms" => n,
            "s" => n * 1000.0,
            _ => f64::NAN,
        }
    };
    let non_2xx = field("Non-2xx or 3xx responses:").and_then(|v| v.parse().ok()).unwrap_or(0);
    let socket: u64 = field("Socket errors:")
        .map(|v| v.split(',').filter_map(|p| p.split_whitespace().last()?.parse::<u64>().ok()).sum())
        .unwrap_or(0);
    Wrk {
        rps: field("Requests/sec:").and_then(|v| v.parse().ok()).unwrap_or(f64::NAN),
        p50_ms: field("50%").map(ms).unwrap_or(f64::NAN),
        p99_ms: field("99%").map(ms).unwrap_or(f64::NAN),
        errors: non_2xx + socket,
    }
}
