//! `storage: dvc` for feedback against a real S3 endpoint (moto_server on 127.0.0.1) and the
//! real DVC: git holds the journals, seals and pointers, never a sample; every sample reaches
//! the bucket before the commit naming it reaches the origin; replays between writers lose
//! nothing; a fresh clone counts from the journals and fetches its open sub_set; `dvc pull`
//! checks the sealed sub_sets out byte for byte. A refused upload keeps the commit from the
//! origin, names the credentials and keeps the sample.

use std::path::Path;
use std::process::Command;
use std::sync::Arc;

use gitops::feedback::FeedbackStore;
use gitops::git::{Credentials, FeedbackSync, PushOutcome, Rebase, commit_paths, fetch_fast_forward, push_with_retry};
use gitops::trigger::Trigger;
use sha2::{Digest, Sha256};
use testkit::moto::Moto;

use crate::repos::{Remote, count_at, git_params, tree_files};
use crate::support::sample;

const BUCKET: &str = "feedback";

/// Switches the remote's repo to `storage: dvc` with a DVC remote at moto (one commit, pushed).
fn use_dvc(remote: &Remote, moto: &Moto) {
    let seed = remote.clone("dvc-seed");
    let params = std::fs::read_to_string(seed.join("params.yaml")).unwrap();
    std::fs::write(seed.join("params.yaml"), format!("{params}storage: dvc\n")).unwrap();
    std::fs::create_dir_all(seed.join(".dvc")).unwrap();
    let config = format!(
        "[core]\n    remote = store\n['remote \"store\"']\n    url = s3://{BUCKET}/store\n    endpointurl = {}\n",
        moto.endpoint
    );
    std::fs::write(seed.join(".dvc/config"), config).unwrap();
    std::fs::write(seed.join(".dvc/.gitignore"), "/config.local\n/tmp\n/cache\n").unwrap();
    let paths = [Path::new("params.yaml"), Path::new(".dvc/config"), Path::new(".dvc/.gitignore")];
    commit_paths(&seed, &paths, "storage: dvc").unwrap().expect("a commit");
    let pushed = push_with_retry(&seed, &git_params(), &Credentials::default(), &mut Rebase).unwrap();
    assert!(matches!(pushed, PushOutcome::Pushed { .. }), "{pushed:?}");
}

/// moto with the bucket, and a remote repo (threshold 4) under `storage: dvc` using it.
fn dvc_remote() -> Option<(Moto, Remote)> {
    let moto = Moto::start()?;
    moto.create_bucket(BUCKET);
    let remote = Remote::new(4);
    use_dvc(&remote, &moto);
    Some((moto, remote))
}

/// The bucket's keys, one per line.
fn bucket_keys(moto: &Moto) -> String {
    moto.python(&format!(
        "for o in client('s3').list_objects_v2(Bucket='{BUCKET}').get('Contents', []):\n    print(o['Key'])"
    ))
}

/// A clone with the moto user's keys in its own `.dvc/config.local` (never committed).
fn dvc_clone(remote: &Remote, moto: &Moto, name: &str) -> std::path::PathBuf {
    let root = remote.clone(name);
    let local =
        format!("['remote \"store\"']\n    access_key_id = {}\n    secret_access_key = {}\n", moto.key_id, moto.secret);
    std::fs::write(root.join(".dvc/config.local"), local).unwrap();
    root
}

fn sync_for(root: &Path) -> (FeedbackStore, FeedbackSync) {
    let store = FeedbackStore::open(root).unwrap();
    let sync =
        FeedbackSync::new(store.clone(), git_params(), Credentials::default()).with_trigger(Arc::new(Trigger::None));
    (store, sync)
}

/// The md5s every journal line in the origin's tree records.
fn journal_md5s(remote: &Remote, files: &[String]) -> Vec<String> {
    let repo = git2::Repository::open(remote.path()).unwrap();
    let mut md5s = Vec::new();
    for journal in files.iter().filter(|f| f.ends_with("feedback.jsonl")) {
        let blob = repo.revparse_single(&format!("main:{journal}")).unwrap().peel_to_blob().unwrap();
        for line in String::from_utf8_lossy(blob.content()).lines() {
            let record: serde_json::Value = serde_json::from_str(line).unwrap();
            md5s.push(record["md5"].as_str().expect("every line records its md5").to_string());
        }
    }
    md5s
}

#[test]
fn two_writers_under_storage_dvc_keep_samples_out_of_git_and_in_the_bucket() {
    let Some((moto, remote)) = dvc_remote() else { return };
    let clones = [dvc_clone(&remote, &moto, "a"), dvc_clone(&remote, &moto, "b")];

    // Two writers taking turns: each push after the other's is rejected and replays its
    // samples on top of the other's, whose samples it must fetch from the bucket.
    let writers = clones.iter().map(|root| sync_for(root)).collect::<Vec<_>>();
    for i in 0..7u32 {
        for (c, (store, _)) in writers.iter().enumerate() {
            store.add(sample(1000 * c as u32 + i, (i % 3) as u8)).unwrap();
        }
        if i % 2 == 1 || i == 6 {
            for (_, sync) in &writers {
                let outcome = sync.sync("feedback").unwrap();
                assert!(!outcome.offline(), "{outcome:?}");
            }
        }
    }
    let log =
        testkit::run(Command::new("git").args(["log", "--format=%s", "main"]).current_dir(remote.path()), "git log");
    assert!(log.matches("feedback: replay").count() >= 3, "the writers replayed on each other: {log}");

    // Git: journals, seals and pointers, no sample.
    let files = tree_files(&remote.path(), "main");
    assert!(!files.iter().any(|f| f.ends_with(".png")), "a sample went to git: {files:#?}");
    let count = count_at(&remote.path(), "main");
    assert_eq!(count["totals"]["counted"], 14, "{count}");
    assert_eq!(count["sub_set_count"], 3, "{count}");
    assert_eq!(count["current_count"], 2, "{count}");
    for n in 0..3 {
        assert!(files.contains(&format!("new_data/sub_set_{n}/samples.dvc")), "sealed sub_set_{n} has no pointer");
    }
    assert!(!files.contains(&"new_data/sub_set_3/samples.dvc".to_string()), "sub_set_3 is open");
    assert_eq!(files.iter().filter(|f| f.ends_with(".dvc")).count(), 3, "one pointer per sealed sub_set");

    // The bucket: every journal line's sample, by its md5.
    let md5s = journal_md5s(&remote, &files);
    assert_eq!(md5s.len(), 14);
    let keys = bucket_keys(&moto);
    for md5 in &md5s {
        assert!(keys.contains(&format!("store/files/md5/{}/{}", &md5[..2], &md5[2..])), "{md5} is not in the bucket");
    }

    // A fresh clone counts from the journals and fetches its open sub_set's two samples.
    let replica = dvc_clone(&remote, &moto, "replica");
    let sample_files =
        |dir: &Path| walk_files(dir).into_iter().filter(|f| f.extension().is_some_and(|e| e == "png")).count();
    assert_eq!(sample_files(&replica.join("new_data")), 0, "a fresh clone has no sample");
    let (store, sync) = sync_for(&replica);
    // What `pipeline fsck` does first, so the open sub_set's lines do not read as lost samples.
    gitops::git::restore_samples(&store).unwrap();
    assert_eq!(sample_files(&replica.join("new_data")), 2, "the open sub_set's, not the sealed ones'");
    assert!(store.fsck(false).unwrap().is_consistent());
    let (status, _) = store.status().unwrap();
    assert_eq!((status.totals.counted, status.sub_set_count, status.current_count), (14, 3, 2));
    let outcome = sync.sync("feedback: sync").unwrap();
    assert_eq!(outcome.commit, None, "a replica's first sync has nothing to commit");

    // A fast-forward brings another writer's new sample from the bucket along with its line.
    writers[1].0.add(sample(5000, 1)).unwrap();
    writers[1].1.sync("feedback").unwrap();
    assert!(fetch_fast_forward(&replica, &git_params(), &Credentials::default()).unwrap().changed());
    assert_eq!(sample_files(&replica.join("new_data/sub_set_3")), 3);
    assert_eq!(store.status().unwrap().0.current_count, 3);
    assert!(store.fsck(false).unwrap().is_consistent());

    // The real DVC checks the sealed sub_sets out of the bucket, each file the bytes its name says.
    let Some(dvc) = testkit::moto::dvc() else { return };
    let checkout = dvc_clone(&remote, &moto, "dvc-checkout");
    let home = remote.dir.path().join("no-aws-config");
    std::fs::create_dir_all(&home).unwrap();
    let mut pull = Command::new(dvc);
    testkit::moto::isolate_aws(&mut pull, &home);
    testkit::run(pull.arg("pull").current_dir(&checkout), "dvc pull");
    let mut pulled = 0;
    for n in 0..3 {
        for class in std::fs::read_dir(checkout.join(format!("new_data/sub_set_{n}"))).unwrap() {
            let class = class.unwrap().path();
            if !class.is_dir() {
                continue;
            }
            for file in std::fs::read_dir(&class).unwrap() {
                let file = file.unwrap().path();
                let sha = hex::encode(Sha256::digest(std::fs::read(&file).unwrap()));
                assert_eq!(file.file_stem().unwrap().to_str().unwrap(), sha);
                pulled += 1;
            }
        }
    }
    assert_eq!(pulled, 12, "the three sealed sub_sets hold 12 samples");
}

fn walk_files(dir: &Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() { out.extend(walk_files(&path)) } else { out.push(path) }
    }
    out
}

#[test]
fn a_refused_upload_keeps_the_commit_from_the_origin_until_the_bytes_can_go() {
    let Some((moto, remote)) = dvc_remote() else { return };
    let writer = dvc_clone(&remote, &moto, "writer");
    let keys = std::fs::read_to_string(writer.join(".dvc/config.local")).unwrap();
    let wrong = keys.replace(&moto.secret, "not-the-secret");
    std::fs::write(writer.join(".dvc/config.local"), &wrong).unwrap();
    let before = tree_files(&remote.path(), "main");

    let (store, sync) = sync_for(&writer);
    store.add(sample(1, 1)).unwrap();
    let err = sync.sync("feedback").unwrap_err().to_string();
    assert!(err.contains("credentials"), "the error names the credentials: {err}");
    assert_eq!(tree_files(&remote.path(), "main"), before, "nothing reached the origin");
    assert_eq!(store.status().unwrap().0.current_count, 1, "the sample is kept");

    // Right keys again: the next sync sends the bytes, then the commit.
    std::fs::write(writer.join(".dvc/config.local"), keys).unwrap();
    let outcome = sync.sync("feedback").unwrap();
    assert!(matches!(outcome.push, Some(PushOutcome::Pushed { .. })), "{outcome:?}");
    let files = tree_files(&remote.path(), "main");
    let md5s = journal_md5s(&remote, &files);
    assert_eq!(md5s.len(), 1);
    let keys = bucket_keys(&moto);
    assert!(keys.contains(&md5s[0][2..]), "the sample is in the bucket: {keys}");
}
