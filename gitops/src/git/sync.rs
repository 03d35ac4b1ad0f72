//! Feedback in git: commit `new_data/` under the store lock, push, and on a rejected push
//! replay our samples through the store on top of the remote head.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::sync::mpsc::{self, RecvTimeoutError};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use git2::{ObjectType, Oid, Repository, Tree, TreeWalkMode, TreeWalkResult};

use super::GitError;
use super::commit::commit_in;
use super::credentials::Credentials;
use super::fetch::move_branch;
use super::push::{PushOutcome, push_with_retry};
use super::replay::{Replay, rebase_excluding};
use crate::feedback::{FeedbackRecord, FeedbackStore, parse_key};
use crate::params::GitParams;

const NEW_DATA: &str = "new_data";
/// How long an offline [`Committer`] waits before trying to push again.
const OFFLINE_RETRY: Duration = Duration::from_secs(5);

/// What one [`FeedbackSync::sync`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SyncOutcome {
    /// The commit made, if `new_data/` had changed.
    pub commit: Option<Oid>,
    /// `None` when `git.push` is off.
    pub push: Option<PushOutcome>,
    /// Sub_sets sealed while our samples were replayed on the remote's (fire the trigger).
    pub sealed: Vec<u32>,
}

/// Commits and pushes a repository's feedback.
#[derive(Debug, Clone)]
pub struct FeedbackSync {
    store: FeedbackStore,
    params: GitParams,
    creds: Credentials,
}

impl FeedbackSync {
    pub fn new(store: FeedbackStore, params: GitParams, creds: Credentials) -> Self {
        Self { store, params, creds }
    }

    /// Commits `new_data/` as it is now (a consistent snapshot: the store lock is held).
    pub fn commit(&self, message: &str) -> Result<Option<Oid>, GitError> {
        let _lock = self.store.lock()?;
        let repo = Repository::open(self.store.repo_root())?;
        commit_in(&repo, &[Path::new(NEW_DATA)], message)
    }

    /// Commits, then pushes when `git.push` is on.
    pub fn sync(&self, message: &str) -> Result<SyncOutcome, GitError> {
        let commit = self.commit(message)?;
        if !self.params.push {
            return Ok(SyncOutcome { commit, push: None, sealed: Vec::new() });
        }
        let mut replay = FeedbackReplay { sync: self, sealed: Vec::new() };
        let push = push_with_retry(self.store.repo_root(), &self.params, &self.creds, &mut replay)?;
        Ok(SyncOutcome { commit, push: Some(push), sealed: replay.sealed })
    }
}

/// Replays other paths by cherry-pick, and our samples through the store.
struct FeedbackReplay<'a> {
    sync: &'a FeedbackSync,
    sealed: Vec<u32>,
}

impl Replay for FeedbackReplay<'_> {
    fn replay(&mut self, repo: &Repository, base: Oid, ours: Oid, upstream: Oid) -> Result<Oid, GitError> {
        let mut locked = self.sync.store.lock()?;
        // Samples added since the last commit go along.
        let ours = commit_in(repo, &[Path::new(NEW_DATA)], "feedback: pending samples")?.unwrap_or(ours);
        let onto = rebase_excluding(repo, base, ours, upstream, Some(NEW_DATA))?;
        let samples = our_samples(repo, &repo.find_commit(ours)?.tree()?, &repo.find_commit(upstream)?.tree()?)?;
        move_branch(repo, &self.sync.params.branch, onto, "replay onto remote")?;
        let n = samples.len();
        let outcomes = locked.adopt(samples)?;
        self.sealed.extend(outcomes.iter().filter_map(|o| o.sealed));
        locked.recompute()?;
        let message = format!("feedback: replay {n} samples on {}", &upstream.to_string()[..10]);
        Ok(commit_in(repo, &[Path::new(NEW_DATA)], &message)?.unwrap_or(onto))
    }
}

/// Samples in `ours` (by label, kind and sha256, whatever the sub_set) that `upstream` lacks,
/// with their PNG bytes and journal records.
fn our_samples(
    repo: &Repository,
    ours: &Tree<'_>,
    upstream: &Tree<'_>,
) -> Result<Vec<(Vec<u8>, FeedbackRecord)>, GitError> {
    let theirs: BTreeSet<String> = samples_in(repo, upstream)?.0.into_keys().collect();
    let (mine, journals) = samples_in(repo, ours)?;
    let mut out = Vec::new();
    for (key, (sub_set, blob)) in mine {
        if theirs.contains(&key) {
            continue;
        }
        let record = journals
            .get(&(sub_set, key.clone()))
            .cloned()
            .unwrap_or_else(|| FeedbackRecord::recovered(&key, "git replay").expect("keys come from parse_key"));
        out.push((repo.find_blob(blob)?.content().to_vec(), record));
    }
    out.sort_by_key(|s| s.1.time);
    Ok(out)
}

type Samples = BTreeMap<String, (u32, Oid)>;
type Journals = BTreeMap<(u32, String), FeedbackRecord>;

/// Sample key -> (sub_set, blob) and the parsed journals of `tree`'s `new_data/`.
fn samples_in(repo: &Repository, tree: &Tree<'_>) -> Result<(Samples, Journals), GitError> {
    let mut samples = Samples::new();
    let mut journal_blobs = Vec::new();
    let Some(entry) = tree.get_name(NEW_DATA) else { return Ok((samples, Journals::new())) };
    let data = repo.find_tree(entry.id())?;
    data.walk(TreeWalkMode::PreOrder, |dir, entry| {
        if entry.kind() != Some(ObjectType::Blob) {
            return TreeWalkResult::Ok;
        }
        let name = entry.name().unwrap_or_default();
        let path = format!("{dir}{name}");
        let Some((sub_set, rest)) = path.strip_prefix("sub_set_").and_then(|p| p.split_once('/')) else {
            return TreeWalkResult::Ok;
        };
        let Ok(sub_set) = sub_set.parse::<u32>() else { return TreeWalkResult::Ok };
        if rest == "feedback.jsonl" {
            journal_blobs.push((sub_set, entry.id()));
        } else if parse_key(rest).is_some() {
            samples.insert(rest.to_string(), (sub_set, entry.id()));
        }
        TreeWalkResult::Ok
    })?;
    let mut journals = Journals::new();
    for (sub_set, blob) in journal_blobs {
        let blob = repo.find_blob(blob)?;
        for line in String::from_utf8_lossy(blob.content()).lines() {
            if let Ok(record) = serde_json::from_str::<FeedbackRecord>(line) {
                journals.insert((sub_set, record.path.clone()), record);
            }
        }
    }
    Ok((samples, journals))
}

enum Msg {
    Changed,
    Flush(mpsc::Sender<Result<SyncOutcome, GitError>>),
}

/// A background thread that coalesces feedback commits: the first [`Committer::notify`]
/// opens a `git.coalesce_ms` window, and everything added in it becomes one commit, then a
/// push. While the remote is unreachable, it retries the push every few seconds.
#[derive(Debug)]
pub struct Committer {
    tx: Option<mpsc::Sender<Msg>>,
    handle: Option<JoinHandle<()>>,
}

impl Committer {
    /// Starts the thread; `on_sync` sees every outcome (log it, fire triggers for `sealed`).
    pub fn spawn(sync: FeedbackSync, on_sync: impl Fn(Result<SyncOutcome, &GitError>) + Send + 'static) -> Self {
        let (tx, rx) = mpsc::channel();
        let handle = std::thread::spawn(move || run(&sync, &rx, &on_sync));
        Self { tx: Some(tx), handle: Some(handle) }
    }

    /// A sample was added.
    pub fn notify(&self) {
        if let Some(tx) = &self.tx {
            let _ = tx.send(Msg::Changed);
        }
    }

    /// Commits and pushes now, and waits for the outcome.
    pub fn flush(&self) -> Result<SyncOutcome, GitError> {
        let (reply, rx) = mpsc::channel();
        let gone = || GitError::Git(git2::Error::from_str("the committer thread has stopped"));
        self.tx.as_ref().ok_or_else(gone)?.send(Msg::Flush(reply)).map_err(|_| gone())?;
        rx.recv().map_err(|_| gone())?
    }
}

impl Drop for Committer {
    /// Commits what is pending, then stops the thread.
    fn drop(&mut self) {
        drop(self.tx.take());
        if let Some(handle) = self.handle.take() {
            let _ = handle.join();
        }
    }
}

fn run(sync: &FeedbackSync, rx: &mpsc::Receiver<Msg>, on_sync: &dyn Fn(Result<SyncOutcome, &GitError>)) {
    let window = Duration::from_millis(sync.params.coalesce_ms);
    let mut pending = 0usize;
    let mut deadline: Option<Instant> = None;
    loop {
        let msg = match deadline {
            None => rx.recv().map_err(|_| RecvTimeoutError::Disconnected),
            Some(at) => rx.recv_timeout(at.saturating_duration_since(Instant::now())),
        };
        let flush_reply = match msg {
            Ok(Msg::Changed) => {
                pending += 1;
                deadline.get_or_insert_with(|| Instant::now() + window);
                continue;
            }
            Ok(Msg::Flush(reply)) => Some(reply),
            Err(RecvTimeoutError::Timeout) => None,
            Err(RecvTimeoutError::Disconnected) => {
                if pending > 0 || deadline.is_some() {
                    report(on_sync, sync.sync(&message(pending)));
                }
                return;
            }
        };
        let result = sync.sync(&message(pending));
        pending = 0;
        let offline = matches!(&result, Ok(SyncOutcome { push: Some(PushOutcome::Offline { .. }), .. }));
        deadline = offline.then(|| Instant::now() + OFFLINE_RETRY);
        match flush_reply {
            Some(reply) => {
                let copy =
                    result.as_ref().map(Clone::clone).map_err(|e| GitError::Git(git2::Error::from_str(&e.to_string())));
                report(on_sync, copy);
                let _ = reply.send(result);
            }
            None => report(on_sync, result),
        }
    }
}

fn report(on_sync: &dyn Fn(Result<SyncOutcome, &GitError>), result: Result<SyncOutcome, GitError>) {
    match &result {
        Ok(outcome) => on_sync(Ok(outcome.clone())),
        Err(e) => on_sync(Err(e)),
    }
}

fn message(samples: usize) -> String {
    match samples {
        0 => "feedback: sync".to_string(),
        1 => "feedback: 1 sample".to_string(),
        n => format!("feedback: {n} samples"),
    }
}
