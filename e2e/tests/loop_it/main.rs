//! The product's acceptance test: feedback in, a better model out and served, through git alone.
//! A bare "origin", a server clone running `model-server`, ten feedback samples over HTTP on
//! digits turned 50 degrees (which the base model gets wrong), the retrain (the `local`
//! trigger, or the `github` trigger through a fake GitHub API that runs the workflow's steps in
//! a separate runner clone), the promoted model pushed, pulled and hot-swapped — with zero
//! failed requests from a client predicting all along.

mod fake_github;
mod orphans;
mod shadow;
mod shapes;
mod storage;
mod support;
mod tabular;

use std::time::Duration;
use support::{Loop, Trigger};

fn full_loop(trigger: Trigger) {
    let Some(mnist) = testkit::shared_mnist() else { return };
    let lp = Loop::start(&mnist, trigger);
    let before = lp.serving();
    let load = lp.background_load();
    let tenth = lp.give_ten_feedback();
    let after = lp.wait_for_new_model(&before, Duration::from_secs(900));
    let seconds = tenth.elapsed().as_secs_f64();
    let (ok, failed) = load.stop();
    println!(
        "FIGURES {trigger:?} trigger: {before} -> {after} in {seconds:.1} s after the tenth feedback; {ok} predictions, {failed} failed"
    );
    assert_ne!(after, before);
    assert_eq!(failed, 0, "requests failed during the loop");
    assert!(ok > 0);
    let origin_log = lp.origin_log();
    assert!(origin_log.contains(&format!("Promote {after}")), "the promotion reached origin:\n{origin_log}");
}

#[test]
fn the_loop_with_the_local_trigger() {
    full_loop(Trigger::Local);
}

#[test]
fn the_loop_with_the_github_trigger_and_a_runner_clone() {
    full_loop(Trigger::Github);
}
