//! `cargo bench -p repro --bench vs_dvc`: this runner against DVC 3 in the same run, on the
//! tiny 3-stage chain and on one stage over a directory of 60,000 files of 800 bytes.
//! Prints a table of wall-clock times (median of repeated runs for no-ops) and ratios.

#[allow(dead_code)]
#[path = "../tests/it/fixtures.rs"]
mod fixtures;
#[allow(dead_code)]
#[path = "../tests/it/support.rs"]
mod support;

use std::process::Command;
use std::time::Instant;

use support::Repo;

const FILES: usize = 60_000;
const FILE_SIZE: usize = 800;

fn time(mut f: impl FnMut()) -> f64 {
    let t = Instant::now();
    f();
    t.elapsed().as_secs_f64()
}

fn median(mut f: impl FnMut() -> f64, n: usize) -> f64 {
    let mut v: Vec<f64> = (0..n).map(|_| f()).collect();
    v.sort_by(f64::total_cmp);
    v[n / 2]
}

fn run(repo: &Repo, dvc: bool, args: &[&str]) {
    let out = if dvc {
        Command::new(support::dvc()).args(args).current_dir(repo.path()).env("DVC_NO_ANALYTICS", "1").output()
    } else {
        Command::new(support::ours_bin()).args(args).current_dir(repo.path()).output()
    }
    .expect("spawn");
    assert!(
        out.status.success(),
        "{} {args:?} failed: {}",
        if dvc { "dvc" } else { "repro" },
        String::from_utf8_lossy(&out.stderr)
    );
}

fn big_repo() -> Repo {
    let repo = Repo::new(&[(
        "dvc.yaml",
        "stages:\n  count:\n    cmd: ls data/images | wc -l > count.txt\n    deps:\n      - data/images\n    outs:\n      - count.txt\n",
    )]);
    let dir = repo.path().join("data/images");
    std::fs::create_dir_all(&dir).unwrap();
    for i in 0..FILES {
        let mut content = format!("{i:08}").into_bytes();
        content.resize(FILE_SIZE, b'x');
        std::fs::write(dir.join(format!("{i:06}.png")), content).unwrap();
    }
    repo
}

struct Row {
    name: &'static str,
    dvc: f64,
    ours: f64,
    target: f64,
}

fn main() {
    let reps = 3;
    let mut rows = Vec::new();

    let tiny = |dvc: bool| {
        let repo = Repo::new(&fixtures::chain());
        run(&repo, dvc, &["repro"]);
        let status = median(|| time(|| run(&repo, dvc, &["status"])), reps);
        let repro = median(|| time(|| run(&repo, dvc, &["repro"])), reps);
        (status, repro)
    };
    let (ds, dr) = tiny(true);
    let (os, or) = tiny(false);
    rows.push(Row { name: "tiny 3-stage: no-op status", dvc: ds, ours: os, target: 20.0 });
    rows.push(Row { name: "tiny 3-stage: no-op repro", dvc: dr, ours: or, target: 20.0 });

    let big = |dvc: bool| {
        let repo = big_repo();
        let first = time(|| run(&repo, dvc, &["repro"]));
        let status = median(|| time(|| run(&repo, dvc, &["status"])), reps);
        let noop = median(|| time(|| run(&repo, dvc, &["repro"])), reps);
        std::fs::write(repo.path().join("data/images/000123.png"), vec![b'y'; FILE_SIZE]).unwrap();
        let changed = time(|| run(&repo, dvc, &["repro"]));
        (first, status, noop, changed)
    };
    let (d1, d2, d3, d4) = big(true);
    let (o1, o2, o3, o4) = big(false);
    rows.push(Row { name: "60k files: first repro", dvc: d1, ours: o1, target: 10.0 });
    rows.push(Row { name: "60k files: no-op status", dvc: d2, ours: o2, target: 20.0 });
    rows.push(Row { name: "60k files: no-op repro", dvc: d3, ours: o3, target: 20.0 });
    rows.push(Row { name: "60k files: one file changed", dvc: d4, ours: o4, target: 10.0 });

    let version = Command::new(support::dvc()).arg("--version").output().expect("dvc --version");
    println!("DVC {} vs repro (release), {} cores", String::from_utf8_lossy(&version.stdout).trim(), num_cpus());
    println!("| scenario | DVC (s) | repro (s) | speedup | target |");
    println!("|---|---:|---:|---:|---:|");
    let mut ok = true;
    for r in &rows {
        let ratio = r.dvc / r.ours;
        ok &= ratio >= r.target;
        println!(
            "| {} | {:.3} | {:.3} | {:.1}x | {:.0}x{} |",
            r.name,
            r.dvc,
            r.ours,
            ratio,
            r.target,
            if ratio >= r.target { "" } else { " MISSED" }
        );
    }
    println!("{}", if ok { "all targets met" } else { "some targets missed" });
}

fn num_cpus() -> usize {
    std::thread::available_parallelism().map_or(1, usize::from)
}
