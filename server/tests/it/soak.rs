//! Soak (#14): SIGKILLs at random points of `pipeline feedback add` and of `model-server` under
//! feedback load, both writing to clones of one origin that `git daemon` serves on loopback
//! (a real receive-pack, as on any git server), while each kill lands wherever it lands: in a
//! store batch, a commit, a push, a replay, a fetch. Afterwards, with nobody's help but a last
//! server start and a last add: `pipeline fsck` is clean without `--repair` in both clones,
//! every acknowledged sample is on the origin exactly once, and every seal fired.

use std::collections::BTreeMap;
use std::fs::{File, OpenOptions};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use gitops::feedback::FeedbackStore;
use serde_json::Value;

use crate::gitsync::{feedback_json, fired_sub_sets, noise_png, recording_trigger, samples_on, sealed_on};
use crate::support::{TestRepo, git, wait_for};

const CLI_KILLS: usize = 150;
const SERVER_KILLS: usize = 50;
const SEED: u64 = 0x14_50a6;
/// A CLI run is killed after the process start (timed with `pipeline --help`: mostly libtorch
/// loading, where a kill tests nothing) plus a random share of a window, first this many times
/// the rest of a whole run, so that kills land in its store batch, commit, push or replay.
const CLI_KILL_SPAN: f64 = 1.5;
/// A server serves feedback this long (at random) before its kill.
const SERVER_LIFE_MS: (u64, u64) = (200, 1500);

/// splitmix64: a seeded, dependency-free source of kill points.
struct Rng(u64);

impl Rng {
    fn below(&mut self, n: u64) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        (z ^ (z >> 31)) % n
    }
}

/// A child killed (SIGKILL) when dropped.
struct Killed(Child);

impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

fn newest_source(dir: &Path) -> SystemTime {
    let mut newest = SystemTime::UNIX_EPOCH;
    for entry in std::fs::read_dir(dir).unwrap().flatten() {
        let path = entry.path();
        let modified = if path.is_dir() { newest_source(&path) } else { entry.metadata().unwrap().modified().unwrap() };
        newest = newest.max(modified);
    }
    newest
}

/// `target/<profile>/pipeline`, when it was built after the last change to the code it runs.
fn pipeline_binary() -> Option<PathBuf> {
    let exe = Path::new(env!("CARGO_BIN_EXE_model-server")).with_file_name("pipeline");
    let root = testkit::workspace_root();
    let sources =
        ["gitops/src", "pipeline/src", "repro/src"].iter().map(|d| newest_source(&root.join(d))).max().unwrap();
    let fresh = exe.metadata().and_then(|m| m.modified()).is_ok_and(|built| built >= sources);
    testkit::require::present(
        fresh.then_some(exe),
        "a target/debug/pipeline built from the current gitops, pipeline and repro sources",
        "cargo build -p pipeline --bin pipeline (cargo test --workspace builds it)",
    )
}

/// `git daemon` serving `origin` (read and push) on a loopback port; its URL. The daemon
/// itself is started (not `git daemon`, which would leave it behind when killed).
fn git_daemon(origin: &Path) -> (Killed, String) {
    let exec_path = testkit::run(Command::new("git").arg("--exec-path"), "git --exec-path");
    let port = free_port();
    let base = origin.parent().unwrap();
    let mut command = Command::new(Path::new(exec_path.trim()).join("git-daemon"));
    testkit::child::die_with_parent(&mut command)
        .args(["--reuseaddr", "--listen=127.0.0.1", "--export-all", "--enable=receive-pack"])
        .arg(format!("--port={port}"))
        .arg(format!("--base-path={}", base.display()))
        .arg(origin)
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    let daemon = Killed(command.spawn().expect("git-daemon (part of git)"));
    wait_for(Duration::from_secs(20), "git daemon to listen", || TcpStream::connect(("127.0.0.1", port)).is_ok());
    (daemon, format!("git://127.0.0.1:{port}/{}", origin.file_name().unwrap().to_string_lossy()))
}

/// What was acknowledged: `label/sha256` keys.
type Acked = Arc<Mutex<Vec<String>>>;

/// Parses `feedback add` output: the keys it says it stored.
fn stored_keys(stdout: &str) -> Vec<String> {
    stdout
        .lines()
        .filter_map(|l| l.split(": stored new_data/").nth(1))
        .map(|rest| {
            let path = rest.split(' ').next().unwrap();
            path.split_once('/').unwrap().1.trim_end_matches(".png").to_string()
        })
        .collect()
}

fn write_images(dir: &Path, seeds: &[u32]) -> Vec<PathBuf> {
    seeds
        .iter()
        .map(|s| {
            let path = dir.join(format!("cli-{s}.png"));
            std::fs::write(&path, noise_png(*s)).unwrap();
            path
        })
        .collect()
}

fn cli_add(pipeline: &Path, clone: &Path, label: u8, images: &[PathBuf]) -> Command {
    let mut command = Command::new(pipeline);
    testkit::child::die_with_parent(&mut command)
        .arg("--repo")
        .arg(clone)
        .args(["feedback", "add", "--label", &label.to_string()])
        .args(images);
    command
}

fn timed(command: &mut Command) -> (Duration, std::process::Output) {
    let started = Instant::now();
    let out = command.output().unwrap();
    (started.elapsed(), out)
}

/// Runs `feedback add` runs in `clone`, each SIGKILLed at a random point, until `kills` of
/// them were killed while running; returns (kills, completed runs).
fn kill_clis(
    pipeline: &Path,
    clone: &Path,
    scratch: &Path,
    rng: &mut Rng,
    kills: usize,
    acked: &Acked,
) -> (usize, usize) {
    let (mut killed, mut completed) = (0, 0);
    let mut seed = 1_000_000;
    let start = timed(Command::new(pipeline).arg("--help").stdout(Stdio::null())).0;
    let first = write_images(scratch, &[seed, seed + 1]);
    seed += 2;
    let (run, out) = timed(cli_add(pipeline, clone, 0, &first).stderr(Stdio::null()));
    let mut span = run.saturating_sub(start).mul_f64(CLI_KILL_SPAN);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stdout));
    acked.lock().unwrap().extend(stored_keys(&String::from_utf8_lossy(&out.stdout)));
    while killed < kills {
        let images = write_images(scratch, &[seed, seed + 1]);
        let label = (seed % 10) as u8;
        seed += 2;
        let mut child =
            cli_add(pipeline, clone, label, &images).stdout(Stdio::piped()).stderr(Stdio::null()).spawn().unwrap();
        std::thread::sleep(start + Duration::from_millis(rng.below(span.as_millis().max(1) as u64)));
        // The window follows how fast runs go now (other work shares the cores): it narrows
        // after a run that completed and widens after a kill, which settles at about one run
        // in six completing.
        if child.try_wait().unwrap().is_none() {
            child.kill().unwrap(); // SIGKILL
            killed += 1;
            span = span.mul_f64(1.02).min(Duration::from_millis(1200));
        } else {
            span = span.mul_f64(0.9).max(Duration::from_millis(50));
        }
        let out = child.wait_with_output().unwrap();
        if out.status.success() {
            completed += 1;
            acked.lock().unwrap().extend(stored_keys(&String::from_utf8_lossy(&out.stdout)));
        }
    }
    (killed, completed)
}

fn start_server(clone: &Path, log: &File) -> (Killed, String) {
    let port = free_port();
    let mut command = Command::new(env!("CARGO_BIN_EXE_model-server"));
    testkit::child::die_with_parent(&mut command)
        .args(["--port", &port.to_string(), "--repo"])
        .arg(clone)
        .env("MODEL_SERVER_DEVICE", "cpu")
        .env("MODEL_SERVER_POLL_INTERVAL", "1s")
        .env("RUST_LOG", "warn")
        .stdout(log.try_clone().unwrap())
        .stderr(log.try_clone().unwrap());
    let server = Killed(command.spawn().unwrap());
    let url = format!("http://127.0.0.1:{port}");
    let client = reqwest::blocking::Client::new();
    wait_for(Duration::from_secs(60), "model-server to answer", || {
        client.get(format!("{url}/healthz")).send().is_ok_and(|r| r.status().is_success())
    });
    (server, url)
}

/// Posts feedback until `stop`; records each acknowledged sample (answered 200).
fn load(url: &str, first_seed: u32, stop: &AtomicBool, acked: &Acked) -> usize {
    let client = reqwest::blocking::Client::builder().timeout(Duration::from_secs(30)).build().unwrap();
    let mut n = 0;
    while !stop.load(Ordering::SeqCst) {
        let seed = first_seed + n;
        let label = (seed % 10) as u8;
        n += 1;
        let Ok(reply) = client.post(format!("{url}/feedback")).json(&feedback_json(seed, label)).send() else {
            continue;
        };
        if reply.status().is_success()
            && let Ok(answer) = reply.json::<Value>()
        {
            acked.lock().unwrap().push(format!("{label}/{}", answer["sha256"].as_str().unwrap()));
        }
    }
    n as usize
}

/// Starts model-server `kills` times, loads it with feedback from two clients and SIGKILLs it
/// at a random point; returns the requests sent.
fn kill_servers(clone: &Path, log: &File, rng: &mut Rng, kills: usize, acked: &Acked) -> usize {
    let mut sent = 0;
    for round in 0..kills as u32 {
        let (server, url) = start_server(clone, log);
        let stop = AtomicBool::new(false);
        sent += std::thread::scope(|s| {
            let clients: Vec<_> = (0..2u32)
                .map(|c| {
                    s.spawn({
                        let (url, stop) = (&url, &stop);
                        move || load(url, 2_000_000 + 100_000 * c + 1000 * round, stop, acked)
                    })
                })
                .collect();
            std::thread::sleep(Duration::from_millis(
                SERVER_LIFE_MS.0 + rng.below(SERVER_LIFE_MS.1 - SERVER_LIFE_MS.0),
            ));
            drop(server); // SIGKILL
            stop.store(true, Ordering::SeqCst);
            clients.into_iter().map(|c| c.join().unwrap()).sum::<usize>()
        });
    }
    sent
}

#[test]
fn two_hundred_kills_of_the_cli_and_the_server_lose_nothing_and_wedge_nothing() {
    let Some(pipeline) = pipeline_binary() else { return };
    let started = Instant::now();
    let scratch = tempfile::tempdir().unwrap();
    let fired = scratch.path().join("fired.txt");
    let trigger = recording_trigger(&fired);
    let git_settings = "300\n  push_attempts: 50\n  backoff_ms: 5";
    let repo = TestRepo::new(&[
        ("feedback", "threshold", "5"),
        ("trigger", "kind", &trigger),
        ("git", "coalesce_ms", git_settings),
    ]);
    let (_daemon, url) = git_daemon(&repo.origin());
    let server_clone = repo.server();
    let cli_clone = repo.clone_origin("cli");
    for clone in [&server_clone, &cli_clone] {
        git(clone, &["remote", "set-url", "origin", &url]);
    }
    let log = OpenOptions::new().create(true).append(true).open(scratch.path().join("servers.log")).unwrap();
    let acked: Acked = Arc::default();

    let ((cli_kills, cli_completed), server_requests) = std::thread::scope(|s| {
        let cli = s.spawn(|| kill_clis(&pipeline, &cli_clone, scratch.path(), &mut Rng(SEED), CLI_KILLS, &acked));
        let servers = s.spawn(|| kill_servers(&server_clone, &log, &mut Rng(SEED ^ 0xffff), SERVER_KILLS, &acked));
        (cli.join().unwrap(), servers.join().unwrap())
    });
    let killing = started.elapsed();

    // Nobody's help: one more server start and one more add, and the commits go out.
    let (server, server_url) = start_server(&server_clone, &log);
    let client = reqwest::blocking::Client::builder().timeout(Duration::from_secs(30)).build().unwrap();
    let git_status = || {
        let status = client.get(format!("{server_url}/api/status")).send().ok()?.json::<Value>().ok()?;
        Some(status["git"].clone())
    };
    let log_tail = || {
        let text = std::fs::read_to_string(scratch.path().join("servers.log")).unwrap_or_default();
        text.lines().rev().take(30).collect::<Vec<_>>().into_iter().rev().collect::<Vec<_>>().join("\n")
    };
    // Its first sync, as it starts, commits and pushes what the kills left.
    wait_for(Duration::from_secs(60), "the restarted server's first sync to succeed", || {
        git_status().is_some_and(|git| !git["last_success"].is_null())
    });
    for seed in 0..5u32 {
        let answer: Value = client
            .post(format!("{server_url}/feedback"))
            .json(&feedback_json(9_000_000 + seed, 1))
            .send()
            .unwrap()
            .json()
            .unwrap();
        assert_eq!(answer["stored"], true, "{answer}\n{}", log_tail());
        acked.lock().unwrap().push(format!("1/{}", answer["sha256"].as_str().unwrap()));
    }
    let images = write_images(scratch.path(), &[9_100_000, 9_100_001]);
    let out = cli_add(&pipeline, &cli_clone, 2, &images).output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success() && stdout.contains("pushed"),
        "an add after 150 kills commits and pushes: {stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    acked.lock().unwrap().extend(stored_keys(&stdout));
    let acked = acked.lock().unwrap().clone();
    wait_for(Duration::from_secs(60), "every acknowledged sample on the origin", || {
        let on_origin = samples_on(&repo.origin());
        acked.iter().all(|key| on_origin.contains_key(key))
    });
    let git = git_status().unwrap();
    assert_eq!(git["failures_in_a_row"], 0, "the server's commits and pushes go through: {git}\n{}", log_tail());
    drop(server);

    for clone in [&cli_clone, &server_clone] {
        let fsck = Command::new(&pipeline).arg("--repo").arg(clone).arg("fsck").output().unwrap();
        assert!(
            fsck.status.success(),
            "fsck without --repair in {}:\n{}",
            clone.display(),
            String::from_utf8_lossy(&fsck.stdout)
        );
    }
    let on_origin = samples_on(&repo.origin());
    let twice: BTreeMap<_, _> = on_origin.iter().filter(|(_, subs)| subs.len() > 1).collect();
    assert!(twice.is_empty(), "samples stored twice on the origin: {twice:?}");
    for key in &acked {
        assert!(on_origin.contains_key(key), "acknowledged {key} is not on the origin");
    }
    let fresh = repo.clone_origin("check");
    let report = FeedbackStore::open(&fresh).unwrap().fsck(false).unwrap();
    assert!(report.is_consistent(), "the origin's new_data: {:#?}", report.found);
    let sealed = sealed_on(&repo.origin());
    let fired = fired_sub_sets(&fired);
    for n in &sealed {
        assert!(fired.contains(n), "sub_set {n} sealed on the origin but its trigger never fired");
    }
    let mut distinct = fired.clone();
    distinct.dedup();
    eprintln!(
        "soak: {cli_kills} CLI kills ({cli_completed} runs completed), {SERVER_KILLS} server kills \
         ({server_requests} requests sent), {} samples acknowledged, {} on the origin, {} sealed sub_sets, \
         {} retrain runs ({} ran twice: a kill fell between a run or a trigger and its record), kills took {:.0?}, all {:.0?}",
        acked.len(),
        on_origin.len(),
        sealed.len(),
        fired.len(),
        fired.len() - distinct.len(),
        killing,
        started.elapsed()
    );
}
