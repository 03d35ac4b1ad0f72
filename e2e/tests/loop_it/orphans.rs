//! A killed e2e run leaves no `model-server` behind: this test runs itself again as a child
//! (a second process of this test binary, filtered to this test) that starts a loop's server
//! and waits; the parent kills that child with SIGKILL, so no destructor runs, and then
//! requires the server to be gone.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::support::{Loop, Trigger};

/// Set in the child's environment: start a loop, print its server's pid, and wait to be killed.
const CHILD_VAR: &str = "E2E_ORPHAN_PROBE";

#[test]
fn a_killed_e2e_run_leaves_no_model_server_behind() {
    let Some(mnist) = testkit::shared_mnist() else { return };
    if std::env::var_os(CHILD_VAR).is_some() {
        let lp = Loop::start(&mnist, Trigger::Local);
        println!("SERVER_PID={}", lp.server_pid());
        std::thread::sleep(Duration::from_secs(600));
        panic!("the parent test should have killed this process");
    }
    let mut child = Command::new(std::env::current_exe().unwrap())
        .args(["--exact", "orphans::a_killed_e2e_run_leaves_no_model_server_behind", "--nocapture", "--test-threads=1"])
        .env(CHILD_VAR, "1")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let pid: i32 = lines
        .by_ref()
        .map_while(Result::ok)
        // libtest writes `test <name> ... ` before the test's own output, on the same line.
        .find_map(|l| l.split_once("SERVER_PID=").map(|(_, p)| p.trim().parse().unwrap()))
        .expect("the child test printed its server's pid");
    assert!(alive(pid), "the server {pid} runs while its test runs");
    child.kill().unwrap();
    child.wait().unwrap();
    let start = Instant::now();
    while alive(pid) {
        assert!(start.elapsed() < Duration::from_secs(10), "model-server {pid} outlived its killed test by 10 s");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Whether `pid` is a running process (a zombie waiting for init to reap it counts as gone).
fn alive(pid: i32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .is_ok_and(|stat| stat.rsplit_once(')').is_some_and(|(_, rest)| !rest.trim_start().starts_with('Z')))
}
