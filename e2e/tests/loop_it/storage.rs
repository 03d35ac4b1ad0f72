//! `storage: dvc` (issue 18) against a real S3 endpoint (moto_server on 127.0.0.1) and the real
//! DVC: a repo made with `pipeline init --storage dvc` keeps its weights as `.dvc` pointers in
//! git and their bytes in the bucket; the loop promotes a model and pushes its bytes before its
//! pointer; a fresh clone's model-server fetches it by hash, verifies and serves it; `dvc pull`
//! reads the same bytes; wrong credentials are named; nothing is deleted from the remote. The
//! feedback that triggered the loop is in git as journals and pointers only, its samples in
//! the bucket, where `dvc pull` finds them too.

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use super::support::{bins, get_json, give_ten_feedback, push_to_new_origin, start_server, wait_for_new_serving};
use testkit::moto::Moto;

/// A command with the moto user's keys and no AWS or DVC settings from outside.
fn clean(mut cmd: Command, moto: &Moto, key_id: &str, home: &Path) -> Command {
    testkit::moto::isolate_aws(&mut cmd, home);
    cmd.env("AWS_ACCESS_KEY_ID", key_id).env("AWS_SECRET_ACCESS_KEY", &moto.secret);
    cmd
}

fn git(dir: &Path, args: &[&str]) -> String {
    testkit::run(Command::new("git").args(args).current_dir(dir), &format!("git {}", args.join(" ")))
}

/// A `git clone` of `origin` into `work/name`.
fn clone(origin: &Path, work: &Path, name: &str) -> std::path::PathBuf {
    let to = work.join(name);
    testkit::run(Command::new("git").args(["clone", "-q"]).arg(origin).arg(&to), "git clone");
    to
}

/// The md5s a `.dvc` pointer's outs record.
fn pointer_md5s(pointer: &Path) -> Vec<String> {
    let text = std::fs::read_to_string(pointer).unwrap_or_else(|e| panic!("{}: {e}", pointer.display()));
    let md5s: Vec<String> = text
        .lines()
        .filter_map(|l| l.trim().trim_start_matches("- ").strip_prefix("md5: ").map(str::to_string))
        .collect();
    assert!(!md5s.is_empty(), "{}: no md5: {text}", pointer.display());
    md5s
}

/// The md5 of a pointer with one out.
fn pointer_md5(pointer: &Path) -> String {
    pointer_md5s(pointer).remove(0)
}

#[test]
fn promoted_weights_live_in_the_s3_remote_and_a_fresh_clone_serves_them() {
    let Some(mnist) = testkit::shared_mnist() else { return };
    let Some(dvc) = testkit::moto::dvc() else { return };
    let Some(moto) = Moto::start() else { return };
    moto.create_bucket("weights");
    let work = tempfile::tempdir().unwrap();
    let home = work.path().join("no-config");
    std::fs::create_dir_all(&home).unwrap();
    let keys = moto.key_id.clone();
    let pipeline = |dir: &Path, args: &[&str]| {
        let mut cmd = clean(Command::new(bins().join("pipeline")), &moto, &keys, &home);
        testkit::run(cmd.args(args).current_dir(dir), &format!("pipeline {}", args.join(" ")))
    };
    let real_dvc = |dir: &Path, args: &[&str]| {
        let mut cmd = clean(Command::new(&dvc), &moto, &keys, &home);
        testkit::run(cmd.args(args).current_dir(dir), &format!("dvc {}", args.join(" ")))
    };

    // The repo: weights as pointers, the remote set with the real DVC, the base model pushed.
    let repo = work.path().join("repo");
    pipeline(work.path(), &["init", repo.to_str().unwrap(), "--storage", "dvc"]);
    std::fs::create_dir_all(repo.join("data")).unwrap();
    std::os::unix::fs::symlink(&mnist, repo.join("data/mnist")).unwrap();
    real_dvc(&repo, &["remote", "add", "-d", "store", "s3://weights/store"]);
    real_dvc(&repo, &["remote", "modify", "store", "endpointurl", &moto.endpoint]);
    git(&repo, &["config", "user.name", "test"]);
    git(&repo, &["config", "user.email", "test@localhost"]);
    git(&repo, &["add", "-A"]);
    git(&repo, &["commit", "-qm", "pipeline repo with storage: dvc"]);
    push_to_new_origin(work.path(), &repo);
    let origin = work.path().join("origin.git");
    let base = get_serving(&repo);
    assert!(pipeline(&repo, &["push"]).contains("1 file pushed"), "the base weights go to the bucket");
    let tracked = git(&repo, &["ls-files", "models"]);
    assert!(tracked.contains(&format!("models/{base}.safetensors.dvc")), "{tracked}");
    assert!(!tracked.contains(&format!("models/{base}.safetensors\n")), "the weights are not in git: {tracked}");

    // The loop: ten feedback samples, the local retrain promotes, promote pushes the bytes.
    let server_env = [("AWS_ACCESS_KEY_ID", keys.as_str()), ("AWS_SECRET_ACCESS_KEY", moto.secret.as_str())];
    let log = work.path().join("server.log");
    let (mut server, url) = start_server(&repo, "local", &log, &server_env);
    wait_ready(&url, &log);
    give_ten_feedback(&url, &repo, &mnist);
    let promoted = wait_for_new_serving(&url, &base, Duration::from_secs(900), &log);
    let _ = server.kill();
    let in_git = git(&repo, &["ls-tree", "-r", "--name-only", "origin/main", "models"]);
    assert!(in_git.contains(&format!("models/{promoted}.safetensors.dvc")), "{in_git}");
    assert!(!in_git.contains(&format!("models/{promoted}.safetensors\n")), "promote kept the bytes out of git");
    let md5 = pointer_md5(&repo.join(format!("models/{promoted}.safetensors.dvc")));
    let objects = moto_keys(&moto);
    assert!(objects.contains(&format!("store/files/md5/{}/{}", &md5[..2], &md5[2..])), "{objects}");
    let weights = std::fs::read(repo.join(format!("models/{promoted}.safetensors"))).unwrap();

    // The feedback that sealed sub_set_0: its journal, seal and pointer in git, its samples
    // in the bucket.
    let feedback = git(&repo, &["ls-tree", "-r", "--name-only", "origin/main", "new_data"]);
    assert!(!feedback.contains(".png"), "a feedback sample went to git: {feedback}");
    assert!(feedback.contains("new_data/sub_set_0/sealed.json"), "{feedback}");
    assert!(feedback.contains("new_data/sub_set_0/samples.dvc"), "sealed sub_set_0 has no DVC pointer: {feedback}");
    for md5 in pointer_md5s(&repo.join("new_data/sub_set_0/samples.dvc")) {
        assert!(
            objects.contains(&format!("{}/{}", &md5[..2], &md5[2..])),
            "{md5} (a folder of sub_set_0) is not in the bucket"
        );
    }

    // A fresh clone has pointers only; its server fetches the promoted weights by hash and serves.
    let replica = clone(&origin, work.path(), "replica");
    assert!(!replica.join(format!("models/{promoted}.safetensors")).exists());
    let log = work.path().join("replica.log");
    let (mut server, url) = start_server(&replica, "none", &log, &server_env);
    wait_ready(&url, &log);
    assert_eq!(get_json(&format!("{url}/models"))["serving"], promoted.as_str());
    assert_eq!(std::fs::read(replica.join(format!("models/{promoted}.safetensors"))).unwrap(), weights);
    // Its review queue reads the sealed samples, which it fetches from the bucket first.
    assert!(!replica.join("new_data/sub_set_0").read_dir().unwrap().any(|e| e.unwrap().path().is_dir()));
    get_json(&format!("{url}/api/review"));
    assert_eq!(files_under(&replica.join("new_data/sub_set_0"), "png").len(), 10, "the review fetched sub_set_0");
    let _ = server.kill();

    // The real DVC reads the same bytes from the same remote.
    let checkout = clone(&origin, work.path(), "dvc-checkout");
    real_dvc(&checkout, &["pull"]);
    assert_eq!(std::fs::read(checkout.join(format!("models/{promoted}.safetensors"))).unwrap(), weights);
    let samples = files_under(&checkout.join("new_data/sub_set_0"), "png");
    assert_eq!(samples.len(), 10, "dvc pull checks out the ten samples of sub_set_0");
    for sample in samples {
        assert_eq!(
            std::fs::read(&sample).unwrap(),
            std::fs::read(repo.join(sample.strip_prefix(&checkout).unwrap())).unwrap()
        );
    }

    // Wrong credentials: the server names them and serves nothing it could not verify.
    let denied = clone(&origin, work.path(), "denied");
    let log = work.path().join("denied.log");
    let wrong = [("AWS_ACCESS_KEY_ID", "AKIAWRONGWRONGWRONG0"), ("AWS_SECRET_ACCESS_KEY", "wrong")];
    let (mut server, url) = start_server(&denied, "none", &log, &wrong);
    let started = Instant::now();
    while !std::fs::read_to_string(&log).unwrap_or_default().contains("refused the credentials") {
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "no credentials error: {}",
            std::fs::read_to_string(&log).unwrap_or_default()
        );
        std::thread::sleep(Duration::from_millis(300));
    }
    assert!(ureq::get(&format!("{url}/readyz")).call().is_err(), "not ready without its model");
    let _ = server.kill();

    // Nothing was deleted: the base weights are still in the bucket.
    let base_md5 = pointer_md5(&repo.join(format!("models/{base}.safetensors.dvc")));
    assert!(moto_keys(&moto).contains(&format!("{}/{}", &base_md5[..2], &base_md5[2..])));
}

fn get_serving(repo: &Path) -> String {
    let registry: serde_json::Value =
        serde_json::from_slice(&std::fs::read(repo.join("models/registry.json")).unwrap()).unwrap();
    registry["serving"].as_str().unwrap().to_string()
}

fn wait_ready(url: &str, log: &Path) {
    let started = Instant::now();
    while ureq::get(&format!("{url}/readyz")).call().is_err() {
        assert!(
            started.elapsed() < Duration::from_secs(120),
            "model-server did not become ready: {}",
            std::fs::read_to_string(log).unwrap_or_default()
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// The bucket's keys, as moto lists them (botocore in moto's venv).
fn moto_keys(moto: &Moto) -> String {
    moto.python("for o in client('s3').list_objects_v2(Bucket='weights').get('Contents', []):\n    print(o['Key'])")
}

/// `pipeline init --example iris --storage dvc`: the base model trained at init is DVC-tracked
/// from its first commit (no remote needed until the first push).
#[test]
fn a_dataset_init_with_dvc_storage_commits_a_pointer_not_the_weights() {
    let work = tempfile::tempdir().unwrap();
    let repo = work.path().join("iris");
    testkit::run(
        Command::new(bins().join("pipeline")).arg("init").arg(&repo).args(["--example", "iris", "--storage", "dvc"]),
        "pipeline init --example iris --storage dvc",
    );
    let params = std::fs::read_to_string(repo.join("params.yaml")).unwrap();
    assert!(params.lines().any(|l| l == "storage: dvc"), "{params}");
    let committed = git(&repo, &["ls-files", "models"]);
    let pointers: Vec<&str> = committed.lines().filter(|f| f.ends_with(".safetensors.dvc")).collect();
    assert_eq!(pointers.len(), 1, "one base model, tracked: {committed}");
    assert!(!committed.lines().any(|f| f.ends_with(".safetensors")), "no weights in git: {committed}");
    let md5 = pointer_md5(&repo.join(pointers[0]));
    assert!(repo.join(".dvc/cache/files/md5").join(&md5[..2]).join(&md5[2..]).is_file(), "the bytes are in the cache");
    assert_eq!(git(&repo, &["status", "--porcelain", "models", "params.yaml"]), "", "everything is committed");
}

/// The files with extension `ext` under `dir`, at any depth.
fn files_under(dir: &Path, ext: &str) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display())) {
        let path = entry.unwrap().path();
        if path.is_dir() {
            out.extend(files_under(&path, ext));
        } else if path.extension().is_some_and(|e| e == ext) {
            out.push(path);
        }
    }
    out
}
