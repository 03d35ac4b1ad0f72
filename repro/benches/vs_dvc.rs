//! `cargo bench -p repro --bench vs_dvc`: this runner against DVC 3 in the same run, on the
//! tiny 3-stage chain and on one stage over a directory of 60,000 files of 800 bytes.
//! Prints a table of wall-clock times (median of repeated runs for no-ops) and ratios. With
//! `PIPELINE_BIN` set (`cargo xtask bench dag` builds and sets it), the `pipeline` command as
//! users run it (`pipeline status`, `pipeline repro`) is timed in the same run too.

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

/// The programs timed: DVC, the stand-alone runner, and `pipeline` (the same runner behind the
/// command users type).
#[derive(Clone, Copy)]
enum Tool {
    Dvc,
    Repro,
    Pipeline,
}

fn pipeline_bin() -> Option<std::path::PathBuf> {
    std::env::var_os("PIPELINE_BIN").map(Into::into)
}

fn run(repo: &Repo, tool: Tool, args: &[&str]) {
    let mut command = match tool {
        Tool::Dvc => {
            let mut c = Command::new(support::dvc());
            c.env("DVC_NO_ANALYTICS", "1");
            c
        }
        Tool::Repro => Command::new(support::ours_bin()),
        Tool::Pipeline => Command::new(pipeline_bin().expect("PIPELINE_BIN is set")),
    };
    let out = command.args(args).current_dir(repo.path()).output().expect("spawn");
    let name = match tool {
        Tool::Dvc => "dvc",
        Tool::Repro => "repro",
        Tool::Pipeline => "pipeline",
    };
    assert!(out.status.success(), "{name} {args:?} failed: {}", String::from_utf8_lossy(&out.stderr));
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
    /// `pipeline`'s time and its target against DVC, when `PIPELINE_BIN` is set.
    pipeline: Option<(f64, f64)>,
}

fn main() {
    let reps = 3;
    let mut rows = Vec::new();
    let with_pipeline = pipeline_bin().is_some();

    let tiny = |tool: Tool| {
        let repo = Repo::new(&fixtures::chain());
        run(&repo, tool, &["repro"]);
        let status = median(|| time(|| run(&repo, tool, &["status"])), reps);
        let repro = median(|| time(|| run(&repo, tool, &["repro"])), reps);
        (status, repro)
    };
    let (ds, dr) = tiny(Tool::Dvc);
    let (os, or) = tiny(Tool::Repro);
    let (ps, pr) = if with_pipeline { tiny(Tool::Pipeline) } else { (f64::NAN, f64::NAN) };
    let p = |t: f64, target: f64| with_pipeline.then_some((t, target));
    rows.push(Row { name: "tiny 3-stage: no-op status", dvc: ds, ours: os, target: 20.0, pipeline: p(ps, 50.0) });
    rows.push(Row { name: "tiny 3-stage: no-op repro", dvc: dr, ours: or, target: 20.0, pipeline: p(pr, 50.0) });

    let big = |tool: Tool| {
        let repo = big_repo();
        let first = time(|| run(&repo, tool, &["repro"]));
        let status = median(|| time(|| run(&repo, tool, &["status"])), reps);
        let noop = median(|| time(|| run(&repo, tool, &["repro"])), reps);
        std::fs::write(repo.path().join("data/images/000123.png"), vec![b'y'; FILE_SIZE]).unwrap();
        let changed = time(|| run(&repo, tool, &["repro"]));
        (first, status, noop, changed)
    };
    let (d1, d2, d3, d4) = big(Tool::Dvc);
    let (o1, o2, o3, o4) = big(Tool::Repro);
    let (p1, p2, p3, p4) = if with_pipeline { big(Tool::Pipeline) } else { (f64::NAN, f64::NAN, f64::NAN, f64::NAN) };
    rows.push(Row { name: "60k files: first repro", dvc: d1, ours: o1, target: 10.0, pipeline: p(p1, 10.0) });
    rows.push(Row { name: "60k files: no-op status", dvc: d2, ours: o2, target: 20.0, pipeline: p(p2, 30.0) });
    rows.push(Row { name: "60k files: no-op repro", dvc: d3, ours: o3, target: 20.0, pipeline: p(p3, 30.0) });
    rows.push(Row { name: "60k files: one file changed", dvc: d4, ours: o4, target: 10.0, pipeline: p(p4, 10.0) });

    let version = Command::new(support::dvc()).arg("--version").output().expect("dvc --version");
    println!(
        "DVC {} vs repro{} (release), {} cores, load average {}",
        String::from_utf8_lossy(&version.stdout).trim(),
        if with_pipeline { " and pipeline" } else { "" },
        num_cpus(),
        support::load_average()
    );
    if with_pipeline {
        println!("| scenario | DVC (s) | repro (s) | speedup | target | pipeline (s) | speedup | target |");
        println!("|---|---:|---:|---:|---:|---:|---:|---:|");
    } else {
        println!("| scenario | DVC (s) | repro (s) | speedup | target |");
        println!("|---|---:|---:|---:|---:|");
    }
    let mut ok = true;
    let verdict = |ratio: f64, target: f64| if ratio >= target { "" } else { " MISSED" };
    for r in &rows {
        let ratio = r.dvc / r.ours;
        ok &= ratio >= r.target;
        let mut line = format!(
            "| {} | {:.3} | {:.3} | {:.1}x | {:.0}x{} |",
            r.name,
            r.dvc,
            r.ours,
            ratio,
            r.target,
            verdict(ratio, r.target)
        );
        if let Some((t, target)) = r.pipeline {
            let ratio = r.dvc / t;
            ok &= ratio >= target;
            line += &format!(" {t:.3} | {ratio:.1}x | {target:.0}x{} |", verdict(ratio, target));
        }
        println!("{line}");
    }
    println!("{}", if ok { "all targets met" } else { "some targets missed" });
}

fn num_cpus() -> usize {
    std::thread::available_parallelism().map_or(1, usize::from)
}
