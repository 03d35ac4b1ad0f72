//! The `local` trigger's worker and status file, `none`, params and the env override.

use gitops::params::{Params, TriggerKind};
use gitops::trigger::{Fired, LocalTrigger, RetrainRequest, RetrainState, RetrainStatus, Trigger};

fn request(sub_set: u32) -> RetrainRequest {
    RetrainRequest::sealed(sub_set, 10, None)
}

fn sh(script: &str) -> Option<Vec<String>> {
    Some(vec!["sh".into(), "-c".into(), script.into()])
}

#[test]
fn local_runs_one_at_a_time_in_order_and_records_status() {
    let dir = tempfile::tempdir().unwrap();
    let script = "echo start $PIPELINE_SUB_SET >> runs.txt; sleep 0.2; echo end $PIPELINE_SUB_SET >> runs.txt; echo log of $PIPELINE_SUB_SET";
    let local = LocalTrigger::new(dir.path(), sh(script)).unwrap();
    let ahead: Vec<usize> = (0..3).map(|n| local.enqueue(request(n)).unwrap()).collect();
    assert_eq!(ahead, [0, 1, 2]);
    let status = local.wait_idle();
    assert_eq!(status.state, RetrainState::Succeeded);
    assert_eq!(status.request.unwrap().sub_set, 2);
    assert_eq!(status.log_tail.trim(), "log of 2");
    assert!(status.queued.is_empty() && status.started_at <= status.finished_at);
    let runs = std::fs::read_to_string(dir.path().join("runs.txt")).unwrap();
    assert_eq!(runs, "start 0\nend 0\nstart 1\nend 1\nstart 2\nend 2\n");
    let on_disk = RetrainStatus::read(dir.path()).unwrap();
    assert_eq!((on_disk.state, on_disk.exit_code), (RetrainState::Succeeded, Some(0)));
}

#[test]
fn a_failing_run_is_recorded_as_failed_with_its_log() {
    let dir = tempfile::tempdir().unwrap();
    let local = LocalTrigger::new(dir.path(), sh("echo broken >&2; exit 3")).unwrap();
    local.enqueue(request(7)).unwrap();
    let status = local.wait_idle();
    assert_eq!((status.state, status.exit_code), (RetrainState::Failed, Some(3)));
    assert!(status.log_tail.contains("broken"));
    assert_eq!(RetrainStatus::read(dir.path()).unwrap().state, RetrainState::Failed);
}

#[test]
fn status_is_idle_before_any_run_and_none_does_nothing() {
    let dir = tempfile::tempdir().unwrap();
    assert_eq!(RetrainStatus::read(dir.path()).unwrap().state, RetrainState::Idle);
    let params = Params::from_yaml("trigger:\n  kind: none\n").unwrap();
    let trigger = Trigger::from_params(dir.path(), &params.trigger).unwrap();
    assert_eq!(trigger.fire(&request(0)).unwrap(), Fired::Disabled);
    assert!(!dir.path().join(".pipeline").exists());
}

#[test]
fn params_default_parse_and_env_override() {
    let dir = tempfile::tempdir().unwrap();
    let defaults = Params::load_with_env(dir.path(), |_| None).unwrap();
    assert_eq!(defaults, Params::default());
    assert_eq!((defaults.feedback.threshold, defaults.git.coalesce_ms), (10, 300));
    let repo_params = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../params.yaml")).unwrap();
    std::fs::write(dir.path().join("params.yaml"), repo_params).unwrap();
    let loaded = Params::load_with_env(dir.path(), |_| None).unwrap();
    assert_eq!(loaded.trigger.kind, TriggerKind::Local);
    assert_eq!(loaded.trigger.github.workflow, "retrain.yml");
    assert_eq!(loaded.feedback.max_pixels, 16_777_216);
    let env = |k: &str| (k == "PIPELINE_TRIGGER").then(|| "github".to_string());
    assert_eq!(Params::load_with_env(dir.path(), env).unwrap().trigger.kind, TriggerKind::Github);
    let bad = |_: &str| Some("gitlab".to_string());
    let e = Params::load_with_env(dir.path(), bad).unwrap_err();
    assert!(e.to_string().contains("PIPELINE_TRIGGER=\"gitlab\""), "{e}");
    std::fs::write(dir.path().join("params.yaml"), "feedback:\n  threshold: 0\n").unwrap();
    assert!(Params::load_with_env(dir.path(), |_| None).unwrap_err().to_string().contains("feedback.threshold"));
}
