//! `cargo bench -p repro --bench remote`: `repro push` / `repro pull` against `dvc push` /
//! `dvc pull` (DVC 3.67.1 with dvc-s3) in the same run, to the same moto_server S3 endpoint, on
//! 10,000 small files tracked by `dvc add` (each tool with its default parallelism). Checks that
//! both leave the same objects on the remote and the same files in a clone; prints wall-clock
//! and CPU times, the CPU moto spent serving each, the ratios and the machine's load.

#[allow(dead_code)]
#[path = "../tests/it/support.rs"]
mod support;

#[allow(dead_code)]
#[path = "../tests/it/remote/kit.rs"]
mod kit;

use std::process::Command;
use std::time::Instant;

use kit::{Bucket, Moto, Repo};

const FILES: usize = 10_000;
const FILE_SIZE: usize = 800;

/// Wall-clock and CPU seconds (user + system, the command and its children, through the
/// shell's `times`) of one command, which must succeed.
fn measure(what: &str, moto: &Moto, cmd: Command) -> (f64, f64, f64) {
    let server_before = moto.cpu_seconds();
    let log = std::env::temp_dir().join(format!("remote-bench-{}.log", std::process::id()));
    let mut sh = Command::new("sh");
    sh.arg("-c").arg("\"$@\" > \"$LOG\" 2>&1; s=$?; times; exit $s").arg("sh").arg(cmd.get_program());
    sh.args(cmd.get_args()).env("LOG", &log);
    if let Some(dir) = cmd.get_current_dir() {
        sh.current_dir(dir);
    }
    for (key, value) in cmd.get_envs() {
        match value {
            Some(v) => sh.env(key, v),
            None => sh.env_remove(key),
        };
    }
    let t = Instant::now();
    let out = sh.output().expect("run sh");
    let wall = t.elapsed().as_secs_f64();
    let text = std::fs::read_to_string(&log).unwrap_or_default();
    assert!(out.status.success(), "{what} failed:\n{text}");
    // `times` prints the shell's own times, then its children's: `0m1.910s 0m2.040s`.
    let stdout = String::from_utf8_lossy(&out.stdout);
    let children = stdout.lines().last().unwrap_or_default();
    let cpu: f64 = children
        .split_whitespace()
        .map(|t| {
            let (m, s) = t.trim_end_matches('s').split_once('m').expect("XmY.YYYs");
            m.parse::<f64>().unwrap() * 60.0 + s.parse::<f64>().unwrap()
        })
        .sum();
    let server = moto.cpu_seconds() - server_before;
    eprintln!(
        "{what}: {wall:.2} s, {cpu:.2} s CPU, moto {server:.2} s CPU ({})",
        text.lines().last().unwrap_or_default()
    );
    (wall, cpu, server)
}

fn main() {
    let load_before = support::load_average();
    let dvc = kit::dvc().expect("python3 is needed for DVC and moto");
    let moto = Moto::start().expect("python3 is needed for moto");
    moto.create_bucket("bench");
    let mut repo = Repo::init(&dvc);
    repo.use_env_keys(&moto);
    let dir = repo.path().join("images");
    std::fs::create_dir(&dir).unwrap();
    for i in 0..FILES {
        let mut content = format!("{i:08}").into_bytes();
        content.resize(FILE_SIZE, b'x');
        std::fs::write(dir.join(format!("{i:05}.png")), content).unwrap();
    }
    repo.dvc(&["add", "-q", "images"]);
    repo.add_remote("ours", "s3://bench/ours", &moto, false);
    repo.add_remote("theirs", "s3://bench/theirs", &moto, false);
    repo.commit("10,000 images");

    let dvc_push = measure("dvc push", &moto, repo.dvc_command(&["push", "-r", "theirs"]));
    let our_push = measure("repro push", &moto, repo.ours_command(&["push", "-r", "ours"]));
    let strip = |prefix: &str| -> Vec<(String, u64, String)> {
        let p = format!("{prefix}/");
        moto.objects("bench", prefix).into_iter().map(|(k, (s, e, _))| (k.replacen(&p, "", 1), s, e)).collect()
    };
    let ours = strip("ours");
    assert_eq!(ours.len(), FILES + 1, "objects pushed by repro");
    assert_eq!(ours, strip("theirs"), "repro and dvc pushed different objects");

    let dvc_clone = Repo::clone_of(&repo);
    let our_clone = Repo::clone_of(&repo);
    let dvc_pull = measure("dvc pull", &moto, dvc_clone.dvc_command(&["pull", "-r", "theirs"]));
    let our_pull = measure("repro pull", &moto, our_clone.ours_command(&["pull", "-r", "theirs"]));
    assert_eq!(our_clone.files("images"), repo.files("images"), "repro pull");
    assert_eq!(dvc_clone.files("images"), repo.files("images"), "dvc pull");

    let noop_dvc = measure("dvc push (all there)", &moto, repo.dvc_command(&["push", "-r", "ours"]));
    let noop_ours = measure("repro push (all there)", &moto, repo.ours_command(&["push", "-r", "theirs"]));

    println!(
        "{FILES} files of {FILE_SIZE} bytes, moto_server on 127.0.0.1, load before {load_before}, after {}",
        support::load_average()
    );
    println!(
        "| operation | dvc (s) | repro (s) | speedup | dvc CPU (s) | repro CPU (s) | CPU ratio | moto CPU (s): dvc / repro |"
    );
    println!("|---|---:|---:|---:|---:|---:|---:|---:|");
    for (name, (d, dc, ds), (o, oc, os)) in [
        ("push", dvc_push, our_push),
        ("pull (fresh clone)", dvc_pull, our_pull),
        ("push, all on the remote", noop_dvc, noop_ours),
    ] {
        println!(
            "| {name} | {d:.2} | {o:.2} | {:.1}x | {dc:.2} | {oc:.2} | {:.1}x | {ds:.1} / {os:.1} |",
            d / o,
            dc / oc
        );
    }
}
