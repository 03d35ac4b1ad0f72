//! Real git: a bare remote, clones pushing at once, replay, offline queueing, credentials.

use std::collections::BTreeSet;
use std::io::{Read, Write};
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use gitops::feedback::FeedbackStore;
use gitops::git::{
    Committer, Credentials, FeedbackSync, GitError, PushOutcome, Rebase, commit_paths, fetch_fast_forward,
    push_with_retry,
};

use gitops::trigger::{Fired, Trigger};

use crate::repos::{Remote, commit_count, count_at, git_params, tree_files};
use crate::support::{sample, stored_pngs};

fn sync_for(root: &Path) -> (FeedbackStore, FeedbackSync) {
    let store = FeedbackStore::open(root).unwrap();
    let sync =
        FeedbackSync::new(store.clone(), git_params(), Credentials::default()).with_trigger(Arc::new(Trigger::None));
    (store, sync)
}

fn sample_keys(files: &[String]) -> BTreeSet<String> {
    // "new_data/sub_set_N/<label>/<sha>.png" -> "<label>/<sha>"
    files.iter().filter(|f| f.ends_with(".png")).map(|f| f.splitn(3, '/').nth(2).unwrap().to_string()).collect()
}

#[test]
fn two_clones_pushing_at_once_land_every_sample_once() {
    let remote = Remote::new(3);
    let clones = [remote.clone("a"), remote.clone("b")];
    std::thread::scope(|s| {
        for (c, root) in clones.iter().enumerate() {
            s.spawn(move || {
                let (store, sync) = sync_for(root);
                for i in 0..15u32 {
                    store.add(sample(1000 * c as u32 + i, (i % 10) as u8)).unwrap();
                    if i % 5 == 4 {
                        sync.sync("feedback").unwrap();
                    }
                }
            });
        }
    });
    let files = tree_files(&remote.path(), "main");
    let keys = sample_keys(&files);
    assert_eq!(files.iter().filter(|f| f.ends_with(".png")).count(), 30, "{files:#?}");
    assert_eq!(keys.len(), 30);
    let count = count_at(&remote.path(), "main");
    assert_eq!(count["totals"]["counted"], 30);
    assert_eq!(count["sub_set_count"], 10);
    assert_eq!(count["current_count"], 0);
    let check = remote.clone("check");
    let report = FeedbackStore::open(&check).unwrap().fsck(false).unwrap();
    assert!(report.is_consistent(), "{:#?}", report.found);
}

#[test]
fn a_rejected_push_replays_our_samples_on_top() {
    let remote = Remote::new(4);
    let (a, b) = (remote.clone("a"), remote.clone("b"));
    let (store_a, sync_a) = sync_for(&a);
    let (store_b, sync_b) = sync_for(&b);
    for i in 0..3 {
        store_a.add(sample(i, 1)).unwrap();
        store_b.add(sample(100 + i, 2)).unwrap();
    }
    store_b.add(sample(0, 1)).unwrap(); // the same sample as a's first: stored once in the end
    assert!(matches!(sync_a.sync("a").unwrap().push, Some(PushOutcome::Pushed { replays: 0, .. })));
    let outcome = sync_b.sync("b").unwrap();
    assert!(matches!(outcome.push, Some(PushOutcome::Pushed { replays: 1, .. })), "{outcome:?}");
    let fired: Vec<_> = outcome.fired.iter().map(|f| (f.sub_set, f.result.clone())).collect();
    assert_eq!(fired, vec![(0, Ok(Fired::Disabled))], "a's 3 + b's first replayed sample fill sub_set 0, landed by b");
    let files = tree_files(&remote.path(), "main");
    assert_eq!(sample_keys(&files).len(), 6);
    let count = count_at(&remote.path(), "main");
    assert_eq!((count["totals"]["counted"].as_u64(), count["sub_set_count"].as_u64()), (Some(6), Some(1)));
    assert_eq!(count["current_count"], 2);
    assert!(store_b.fsck(false).unwrap().is_consistent());
    assert_eq!(stored_pngs(&b).len(), 6);
}

#[test]
fn offline_commits_queue_and_push_later() {
    let remote = Remote::new(10);
    let a = remote.clone("a");
    let (store, sync) = sync_for(&a);
    store.add(sample(1, 1)).unwrap();
    let moved = remote.dir.path().join("moved.git");
    std::fs::rename(remote.path(), &moved).unwrap();
    let outcome = sync.sync("while offline").unwrap();
    assert!(outcome.commit.is_some());
    assert!(matches!(outcome.push, Some(PushOutcome::Offline { .. })), "{outcome:?}");
    store.add(sample(2, 2)).unwrap();
    assert!(matches!(sync.sync("still offline").unwrap().push, Some(PushOutcome::Offline { .. })));
    std::fs::rename(&moved, remote.path()).unwrap();
    let outcome = sync.sync("back").unwrap();
    assert_eq!(outcome.commit, None, "nothing new to commit");
    assert!(matches!(outcome.push, Some(PushOutcome::Pushed { .. })));
    assert_eq!(sample_keys(&tree_files(&remote.path(), "main")).len(), 2);
}

#[test]
fn commit_paths_rebase_and_fast_forward_for_models() {
    let remote = Remote::new(10);
    let (a, b) = (remote.clone("a"), remote.clone("b"));
    std::fs::create_dir_all(a.join("models")).unwrap();
    std::fs::write(a.join("models/a.json"), "{}").unwrap();
    std::fs::write(a.join("unrelated.txt"), "not committed").unwrap();
    let oid = commit_paths(&a, &[Path::new("models")], "promote a").unwrap();
    assert!(oid.is_some());
    assert_eq!(commit_paths(&a, &[Path::new("models")], "again").unwrap(), None);
    assert!(!tree_files(&a, "HEAD").contains(&"unrelated.txt".to_string()));
    let params = git_params();
    let creds = Credentials::default();
    push_with_retry(&a, &params, &creds, &mut Rebase).unwrap();

    std::fs::create_dir_all(b.join("models")).unwrap();
    std::fs::write(b.join("models/b.json"), "{}").unwrap();
    commit_paths(&b, &[Path::new("models/b.json")], "promote b").unwrap();
    let outcome = push_with_retry(&b, &params, &creds, &mut Rebase).unwrap();
    assert!(matches!(outcome, PushOutcome::Pushed { replays: 1, .. }), "{outcome:?}");
    let files = tree_files(&remote.path(), "main");
    assert!(files.contains(&"models/a.json".into()) && files.contains(&"models/b.json".into()));

    let ff = fetch_fast_forward(&a, &params, &creds).unwrap();
    assert!(ff.changed());
    assert!(a.join("models/b.json").is_file(), "working tree fast-forwarded");
    assert!(!fetch_fast_forward(&a, &params, &creds).unwrap().changed());
}

#[test]
fn the_committer_coalesces_a_burst_into_one_commit() {
    let remote = Remote::new(10);
    let a = remote.clone("a");
    let store = FeedbackStore::open(&a).unwrap();
    let params = gitops::params::GitParams { coalesce_ms: 300, ..git_params() };
    let committer = Committer::spawn(FeedbackSync::new(store.clone(), params, Credentials::default()), |_| {});
    committer.settle(Duration::from_secs(30)).unwrap().unwrap(); // the sync it makes as it starts
    let before = commit_count(&a);
    for i in 0..5 {
        store.add(sample(i, 3)).unwrap();
        committer.notify();
    }
    std::thread::sleep(Duration::from_millis(1200));
    assert_eq!(commit_count(&a), before + 1);
    assert_eq!(sample_keys(&tree_files(&remote.path(), "main")).len(), 5, "pushed");
    store.add(sample(9, 3)).unwrap();
    committer.notify();
    drop(committer); // commits what is pending
    assert_eq!(commit_count(&a), before + 2);
}

/// An HTTP "git server" that answers 401 to everything; counts requests.
fn unauthorized_server() -> (String, std::sync::Arc<std::sync::atomic::AtomicUsize>) {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}/repo.git", listener.local_addr().unwrap());
    let hits = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let counter = hits.clone();
    std::thread::spawn(move || {
        for stream in listener.incoming().take(50) {
            let Ok(mut stream) = stream else { continue };
            counter.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            let mut buf = [0u8; 4096];
            let _ = stream.read(&mut buf);
            let _ = stream.write_all(
                b"HTTP/1.1 401 Unauthorized\r\nWWW-Authenticate: Basic realm=\"git\"\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
            );
        }
    });
    (url, hits)
}

#[test]
fn libgit2_is_built_with_https_and_ssh() {
    // Without them, every push to a real remote (GitHub over https or ssh) fails at run time
    // with "there is no TLS stream available".
    let version = git2::Version::get();
    assert!(version.https(), "libgit2 without https support");
    assert!(version.ssh(), "libgit2 without ssh support");
}

#[test]
fn a_bad_credential_fails_once_with_a_clear_message() {
    let remote = Remote::new(10);
    let a = remote.clone("a");
    let (url, hits) = unauthorized_server();
    git2::Repository::open(&a).unwrap().remote_set_url("origin", &url).unwrap();
    std::fs::write(a.join("x.txt"), "x").unwrap();
    commit_paths(&a, &[Path::new("x.txt")], "x").unwrap();
    let creds = Credentials { token: Some("bad-token".into()) };
    let err = push_with_retry(&a, &git_params(), &creds, &mut Rebase).unwrap_err();
    assert!(matches!(err, GitError::Auth { .. }), "{err:?}");
    let message = err.to_string();
    assert!(message.contains("rejected"), "{message}");
    assert!(gitops::token::TOKEN_VARS.iter().all(|v| message.contains(v)), "{message}");
    assert!(hits.load(std::sync::atomic::Ordering::SeqCst) <= 4, "no credential loop");
}
