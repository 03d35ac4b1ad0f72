//! Shadow promotion end to end, on Iris (fast to train): a second model trained with
//! `pipeline train-base --no-serve` goes into shadow with `pipeline models shadow`; the model
//! server follows git and runs it beside the serving model on live `/predict` rows;
//! `pipeline models promote-shadow` refuses while the server's figures are short of its gate
//! and serves the shadow once they pass, and the server hot-swaps to it.

use std::process::Command;
use std::time::Duration;

use serde_json::json;

use crate::support::{bins, get_json, post_json, push_to_new_origin, spawn_server, wait_for_new_serving};

#[test]
fn a_shadow_is_promoted_only_when_the_servers_figures_pass_the_gate() {
    let work = tempfile::tempdir().unwrap();
    let repo = work.path().join("iris");
    let pipeline =
        |args: &[&str]| Command::new(bins().join("pipeline")).args(args).current_dir(&repo).output().unwrap();
    testkit::run(
        Command::new(bins().join("pipeline")).arg("init").arg(&repo).args(["--example", "iris"]),
        "pipeline init --example iris",
    );
    push_to_new_origin(work.path(), &repo);
    let trained = pipeline(&["train-base", "--no-serve"]);
    assert!(trained.status.success(), "{}", String::from_utf8_lossy(&trained.stderr));
    let models = get_models(&repo);
    let (base, second) = (models[0].clone(), models[1].clone());
    let shadowed = pipeline(&["models", "shadow", &second]);
    assert!(shadowed.status.success(), "{}", String::from_utf8_lossy(&shadowed.stderr));
    assert!(String::from_utf8_lossy(&shadowed.stdout).contains(&format!("{second} runs in shadow beside {base}")));

    let log = work.path().join("model-server.log");
    let (mut server, url) = spawn_server(&repo, "none", &log);
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    while get_json(&format!("{url}/models"))["shadow"]["version"] != second {
        assert!(std::time::Instant::now() < deadline, "the server never loaded the shadow");
        std::thread::sleep(Duration::from_millis(200));
    }
    let rows = [[5.1, 3.5, 1.4, 0.2], [6.7, 3.0, 5.2, 2.3], [5.9, 3.0, 4.2, 1.5]];
    for i in 0..30 {
        let [a, b, c, d] = rows[i % 3];
        let features = json!({ "sepal_length": a, "sepal_width": b, "petal_length": c, "petal_width": d });
        let answer = post_json(&format!("{url}/predict"), &json!({ "features": features }));
        assert_eq!(answer["model_version"], base, "the shadow never answers: {answer}");
    }
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    while get_json(&format!("{url}/models"))["shadow"]["predictions"].as_u64() != Some(30) {
        assert!(std::time::Instant::now() < deadline, "{}", get_json(&format!("{url}/models"))["shadow"]);
        std::thread::sleep(Duration::from_millis(100));
    }

    let short = pipeline(&["models", "promote-shadow", "--server", &url, "--min-predictions", "100"]);
    let said = String::from_utf8_lossy(&short.stdout).to_string();
    assert_eq!(short.status.code(), Some(1), "{said}");
    assert!(
        said.contains("30 shadow predictions; 100 required") && said.contains(&format!("{second} stays in shadow")),
        "{said}"
    );
    let promoted =
        pipeline(&["models", "promote-shadow", "--server", &url, "--min-predictions", "30", "--min-agreement", "0.5"]);
    let said = String::from_utf8_lossy(&promoted.stdout).to_string();
    assert!(promoted.status.success(), "{said}{}", String::from_utf8_lossy(&promoted.stderr));
    assert!(said.contains(&format!("now serving {second}")), "{said}");
    let log_line = testkit::run(Command::new("git").args(["log", "-1", "--format=%s"]).current_dir(&repo), "git log");
    assert_eq!(log_line.trim(), format!("Promote {second} from shadow"));
    testkit::run(Command::new("git").args(["push", "-q", "origin", "main"]).current_dir(&repo), "git push");
    assert_eq!(wait_for_new_serving(&url, &base, Duration::from_secs(60), &log), second);
    assert!(get_json(&format!("{url}/models"))["shadow"].is_null(), "the promoted shadow is no longer one");
    let _ = server.kill();
}

/// The versions in the repo's models/, oldest first (their sidecars' names sort by time).
fn get_models(repo: &std::path::Path) -> Vec<String> {
    let mut versions: Vec<String> = std::fs::read_dir(repo.join("models"))
        .unwrap()
        .filter_map(|e| e.unwrap().file_name().into_string().ok()?.strip_suffix(".json").map(str::to_string))
        .filter(|name| name.starts_with("model_"))
        .collect();
    versions.sort();
    versions
}
