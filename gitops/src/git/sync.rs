//! Feedback in git: commit `new_data/` under the store lock, push, on a rejected push replay
//! our samples through the store on top of the remote head, and fire the retrain trigger for
//! the seals that landed through us (`seals`).
//!
//! A replay takes our samples out of the working tree (it checks out the remote's `new_data/`)
//! before it adds them back through the store. From before the checkout until the replayed
//! commit exists, `refs/gitops/replaying` names the commit that holds them, so a writer killed
//! in between loses nothing: the next sync adds back whatever that commit holds and the store
//! lacks, then commits.
//!
//! Under `storage: dvc` (`dvc`), git holds no sample: each commit is staged first (samples into
//! the DVC cache, pointers for new seals), a replay reads our samples' bytes from the working
//! tree or the cache, deletes the files it re-adds, and fetches the other writers' open samples
//! before it moves the branch; `push_with_retry` uploads before it pushes.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::sync::Arc;
use std::sync::mpsc::{self, RecvTimeoutError};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use git2::{ObjectType, Oid, Repository, Tree, TreeWalkMode, TreeWalkResult};

use super::GitError;
use super::commit::commit_in;
use super::credentials::Credentials;
use super::dvc::DvcSamples;
use super::fetch::move_branch;
use super::push::{PushOutcome, push_with_retry};
use super::replay::{Replay, rebase_excluding};
use super::repolock;
use super::seals::{self, FiredSeal};
use crate::feedback::{
    FeedbackRecord, FeedbackStore, JOURNAL, Locked, NEW_DATA, parse_key, parse_sub_set_name, parsed_lines,
};
use crate::params::GitParams;
use crate::trigger::Trigger;

/// Names our pre-replay commit while a replay has our samples out of the working tree.
const REPLAYING: &str = "refs/gitops/replaying";
/// First wait before a [`Committer`] retries a sync that failed or found the remote
/// unreachable; it doubles up to [`RETRY_MAX`] and starts again after a success.
const RETRY_MIN: Duration = Duration::from_secs(1);
const RETRY_MAX: Duration = Duration::from_secs(60);

/// What one [`FeedbackSync::sync`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SyncOutcome {
    /// The commit made, if `new_data/` had changed.
    pub commit: Option<Oid>,
    /// `None` when nothing is pushed (`git.push` off, or no such remote).
    pub push: Option<PushOutcome>,
    /// The head the origin holds now as far as this sync knows (pushed, found there, or
    /// committed when nothing is pushed); `None` when the remote could not be reached. The
    /// samples in it are where they will stay.
    pub landed: Option<Oid>,
    /// Seals that landed through this writer, each fired once (with a trigger configured).
    pub fired: Vec<FiredSeal>,
}

impl SyncOutcome {
    /// Whether the remote could not be reached: commits wait for a later push.
    pub fn offline(&self) -> bool {
        matches!(self.push, Some(PushOutcome::Offline { .. }))
    }
}

/// Commits and pushes a repository's feedback.
#[derive(Debug, Clone)]
pub struct FeedbackSync {
    store: FeedbackStore,
    params: GitParams,
    creds: Credentials,
    trigger: Option<Arc<Trigger>>,
}

impl FeedbackSync {
    pub fn new(store: FeedbackStore, params: GitParams, creds: Credentials) -> Self {
        Self { store, params, creds, trigger: None }
    }

    /// Fires `trigger` for each seal that lands through this writer (see `seals`). Without one,
    /// the seals are still recorded, for a later sync that has one.
    pub fn with_trigger(self, trigger: Arc<Trigger>) -> Self {
        Self { trigger: Some(trigger), ..self }
    }

    /// Whether commits go to a remote: `git.push` is on and the remote exists.
    fn pushes(&self, repo: &Repository) -> bool {
        self.params.push && repo.find_remote(&self.params.remote).is_ok()
    }

    /// Commits `new_data/` as it is now (a consistent snapshot: the store lock is held), after
    /// adding back what an interrupted replay had taken out; records the seals it would land.
    pub fn commit(&self, message: &str) -> Result<Option<Oid>, GitError> {
        let mut locked = self.store.lock()?;
        let repo = Repository::open(self.store.repo_root())?;
        let dvc = DvcSamples::of(self.store.repo_root())?;
        if let Some(dvc) = &dvc {
            dvc.restore()?;
        }
        recover_replay(&repo, &mut locked, dvc.as_ref())?;
        if let Some(dvc) = &dvc {
            dvc.stage()?;
        }
        let before = head(&repo);
        let commit = commit_in(&repo, &[Path::new(NEW_DATA)], message)?;
        if let Some(now) = head(&repo) {
            let base = if self.pushes(&repo) { repo.refname_to_id(&self.tracking()).ok() } else { before };
            seals::record(&repo, now, base)?;
        }
        Ok(commit)
    }

    fn tracking(&self) -> String {
        format!("refs/remotes/{}/{}", self.params.remote, self.params.branch)
    }

    /// Commits, pushes when there is a remote to push to, and fires the trigger for the seals
    /// that landed through this writer.
    pub fn sync(&self, message: &str) -> Result<SyncOutcome, GitError> {
        let commit = self.commit(message)?;
        let repo = Repository::open(self.store.repo_root())?;
        let (push, landed) = if self.pushes(&repo) {
            let mut replay = FeedbackReplay { sync: self };
            let push = push_with_retry(self.store.repo_root(), &self.params, &self.creds, &mut replay)?;
            let landed = match &push {
                PushOutcome::Pushed { head, .. } => Some(*head),
                PushOutcome::UpToDate => head(&repo),
                PushOutcome::Offline { .. } => None,
            };
            (Some(push), landed)
        } else {
            (None, head(&repo))
        };
        let fired = match (landed, &self.trigger) {
            (Some(landed), Some(trigger)) => seals::fire_landed(&repo, &self.store, landed, trigger)?,
            _ => Vec::new(),
        };
        Ok(SyncOutcome { commit, push, landed, fired })
    }
}

fn head(repo: &Repository) -> Option<Oid> {
    repo.head().ok().and_then(|h| h.target())
}

/// Adds back the samples of an interrupted replay's commit (see the module docs) that the
/// store lacks, then forgets that commit.
fn recover_replay(repo: &Repository, locked: &mut Locked<'_>, dvc: Option<&DvcSamples>) -> Result<(), GitError> {
    let Ok(saved) = repo.refname_to_id(REPLAYING) else { return Ok(()) };
    // The checkout may have stopped halfway: what is stored is what the files say now.
    locked.recompute()?;
    let tree = repo.find_commit(saved)?.tree()?;
    let (samples, journals) = samples_in(repo, &tree, dvc.is_some())?;
    let mut missing = Vec::new();
    for (key, (sub_set, blob)) in samples {
        if locked.contains(&key)? {
            continue;
        }
        let record = record_of(&journals, sub_set, &key);
        missing.push((sample_bytes(repo, dvc, blob, sub_set, &record)?, record));
    }
    if !missing.is_empty() {
        tracing::warn!(samples = missing.len(), "a replay was interrupted: adding its samples back");
        missing.sort_by_key(|s| s.1.time);
        locked.adopt(missing)?;
    }
    repolock::write(repo, || Ok(repo.find_reference(REPLAYING)?.delete()?))
}

/// Replays other paths by cherry-pick, and our samples through the store.
struct FeedbackReplay<'a> {
    sync: &'a FeedbackSync,
}

impl Replay for FeedbackReplay<'_> {
    fn replay(&mut self, repo: &Repository, base: Oid, ours: Oid, upstream: Oid) -> Result<Oid, GitError> {
        let mut locked = self.sync.store.lock()?;
        let dvc = DvcSamples::of(self.sync.store.repo_root())?;
        if let Some(dvc) = &dvc {
            dvc.stage()?;
        }
        // Samples added since the last commit go along.
        let ours = commit_in(repo, &[Path::new(NEW_DATA)], "feedback: pending samples")?.unwrap_or(ours);
        let onto = rebase_excluding(repo, base, ours, upstream, Some(NEW_DATA))?;
        let samples =
            our_samples(repo, &repo.find_commit(ours)?.tree()?, &repo.find_commit(upstream)?.tree()?, dvc.as_ref())?;
        let prefetched = dvc.as_ref().map(|d| d.prefetch(repo, onto)).transpose()?;
        repolock::write(repo, || Ok(repo.reference(REPLAYING, ours, true, "replay: our samples")?.target()))?;
        if let Some(dvc) = &dvc {
            // Git leaves ignored files alone: ours go where the store puts them back.
            for (sub_set, _, record) in &samples {
                dvc.remove(*sub_set, record)?;
            }
        }
        move_branch(repo, &self.sync.params.branch, onto, "replay onto remote")?;
        if let Some(prefetched) = prefetched {
            prefetched.link()?;
        }
        let n = samples.len();
        locked.adopt(samples.into_iter().map(|(_, bytes, record)| (bytes, record)).collect())?;
        locked.recompute()?;
        if let Some(dvc) = &dvc {
            dvc.stage()?;
        }
        let message = format!("feedback: replay {n} samples on {}", &upstream.to_string()[..10]);
        let head = commit_in(repo, &[Path::new(NEW_DATA)], &message)?.unwrap_or(onto);
        repolock::write(repo, || Ok(repo.find_reference(REPLAYING)?.delete()?))?;
        seals::record(repo, head, Some(upstream))?;
        Ok(head)
    }
}

/// Samples in `ours` (by label, kind and sha256, whatever the sub_set) that `upstream` lacks,
/// with the sub_set `ours` has them in, their bytes and their journal records.
fn our_samples(
    repo: &Repository,
    ours: &Tree<'_>,
    upstream: &Tree<'_>,
    dvc: Option<&DvcSamples>,
) -> Result<Vec<(u32, Vec<u8>, FeedbackRecord)>, GitError> {
    let theirs: BTreeSet<String> = samples_in(repo, upstream, dvc.is_some())?.0.into_keys().collect();
    let (mine, journals) = samples_in(repo, ours, dvc.is_some())?;
    let mut out = Vec::new();
    for (key, (sub_set, blob)) in mine {
        if theirs.contains(&key) {
            continue;
        }
        let record = record_of(&journals, sub_set, &key);
        out.push((sub_set, sample_bytes(repo, dvc, blob, sub_set, &record)?, record));
    }
    out.sort_by_key(|s| s.2.time);
    Ok(out)
}

/// The journal record of a sample, or one rebuilt from its key when its line was lost.
fn record_of(journals: &Journals, sub_set: u32, key: &str) -> FeedbackRecord {
    journals
        .get(&(sub_set, key.to_string()))
        .cloned()
        .unwrap_or_else(|| FeedbackRecord::recovered(key, "git replay").expect("keys come from parse_key"))
}

/// A sample's bytes: its blob, or (`storage: dvc`, where git holds none) its file or cache copy.
fn sample_bytes(
    repo: &Repository,
    dvc: Option<&DvcSamples>,
    blob: Option<Oid>,
    sub_set: u32,
    record: &FeedbackRecord,
) -> Result<Vec<u8>, GitError> {
    match (blob, dvc) {
        (Some(blob), _) => Ok(repo.find_blob(blob)?.content().to_vec()),
        (None, Some(dvc)) => dvc.bytes(sub_set, record),
        (None, None) => unreachable!("samples without a blob are listed only under storage: dvc"),
    }
}

/// Sample key -> (sub_set, its blob if git holds it).
type Samples = BTreeMap<String, (u32, Option<Oid>)>;
type Journals = BTreeMap<(u32, String), FeedbackRecord>;

/// Sample key -> (sub_set, blob) and the parsed journals of `tree`'s `new_data/`. With
/// `journaled` (`storage: dvc`), a journal line whose sample git does not hold is a sample too.
fn samples_in(repo: &Repository, tree: &Tree<'_>, journaled: bool) -> Result<(Samples, Journals), GitError> {
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
        let Some((sub_set, rest)) = path.split_once('/') else {
            return TreeWalkResult::Ok;
        };
        let Some(sub_set) = parse_sub_set_name(sub_set) else { return TreeWalkResult::Ok };
        if rest == JOURNAL {
            journal_blobs.push((sub_set, entry.id()));
        } else if parse_key(rest).is_some() {
            samples.insert(rest.to_string(), (sub_set, Some(entry.id())));
        }
        TreeWalkResult::Ok
    })?;
    let mut journals = Journals::new();
    for (sub_set, blob) in journal_blobs {
        let blob = repo.find_blob(blob)?;
        for record in parsed_lines(&String::from_utf8_lossy(blob.content())) {
            if journaled && parse_key(&record.path).is_some() {
                samples.entry(record.path.clone()).or_insert((sub_set, None));
            }
            journals.insert((sub_set, record.path.clone()), record);
        }
    }
    Ok((samples, journals))
}

enum Msg {
    Changed,
    Settle(mpsc::Sender<Result<SyncOutcome, GitError>>),
}

/// A background thread that coalesces feedback commits: the first [`Committer::notify`] (or
/// [`Committer::settle`]) opens a `git.coalesce_ms` window, and everything added in it becomes
/// one commit, then a push. It syncs once as it starts, so what a previous run left uncommitted
/// or unpushed goes out without waiting for new feedback. A sync that fails, or finds the
/// remote unreachable, is retried after a backoff that doubles from 1 s to a minute.
#[derive(Debug)]
pub struct Committer {
    tx: Option<mpsc::Sender<Msg>>,
    handle: Option<JoinHandle<()>>,
}

impl Committer {
    /// Starts the thread; `on_sync` sees every outcome (log it, count it).
    pub fn spawn(sync: FeedbackSync, on_sync: impl Fn(Result<&SyncOutcome, &GitError>) + Send + 'static) -> Self {
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

    /// A sample was added: waits (up to `timeout`) for the sync that carries it, within the
    /// coalescing window, and returns its outcome; `None` when it took longer.
    pub fn settle(&self, timeout: Duration) -> Option<Result<SyncOutcome, GitError>> {
        let (reply, rx) = mpsc::channel();
        let gone = || GitError::Git(git2::Error::from_str("the committer thread has stopped"));
        let Some(tx) = &self.tx else { return Some(Err(gone())) };
        if tx.send(Msg::Settle(reply)).is_err() {
            return Some(Err(gone()));
        }
        match rx.recv_timeout(timeout) {
            Ok(result) => Some(result),
            Err(RecvTimeoutError::Timeout) => None,
            Err(RecvTimeoutError::Disconnected) => Some(Err(gone())),
        }
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

fn run(sync: &FeedbackSync, rx: &mpsc::Receiver<Msg>, on_sync: &dyn Fn(Result<&SyncOutcome, &GitError>)) {
    let window = Duration::from_millis(sync.params.coalesce_ms);
    let mut pending = 0usize;
    let mut waiters = Vec::new();
    let mut deadline = Some(Instant::now());
    let mut backoff = RETRY_MIN;
    loop {
        let msg = match deadline {
            None => rx.recv().map_err(|_| RecvTimeoutError::Disconnected),
            Some(at) => rx.recv_timeout(at.saturating_duration_since(Instant::now())),
        };
        let stopping = match msg {
            Ok(msg) => {
                pending += 1;
                if let Msg::Settle(reply) = msg {
                    waiters.push(reply);
                }
                let soon = Instant::now() + window;
                deadline = Some(deadline.map_or(soon, |at| at.min(soon)));
                continue;
            }
            Err(RecvTimeoutError::Timeout) => false,
            Err(RecvTimeoutError::Disconnected) => true,
        };
        if stopping && pending == 0 && deadline.is_none() {
            return;
        }
        let result = sync.sync(&message(pending)).map_err(Arc::new);
        pending = 0;
        match &result {
            Ok(outcome) if !outcome.offline() => {
                deadline = None;
                backoff = RETRY_MIN;
            }
            _ => {
                deadline = Some(Instant::now() + backoff);
                backoff = (backoff * 2).min(RETRY_MAX);
            }
        }
        on_sync(result.as_ref().map_err(AsRef::as_ref));
        for waiter in waiters.drain(..) {
            let _ = waiter.send(result.clone().map_err(GitError::Shared));
        }
        if stopping {
            return;
        }
    }
}

fn message(samples: usize) -> String {
    match samples {
        0 => "feedback: sync".to_string(),
        1 => "feedback: 1 sample".to_string(),
        n => format!("feedback: {n} samples"),
    }
}
