//! One retrain trigger per seal, whatever the number of writers: the writer whose push made a
//! seal land on the origin fires it, once.
//!
//! A seal *lands* when a commit holding `new_data/sub_set_N/sealed.json` reaches the origin:
//! the remote branch, or the local branch when nothing is pushed. Writers on several clones
//! each seal locally, but a rejected push replays its samples on top of the winner's (and may
//! seal other sub_sets there), so only the push that succeeds can tell who landed what. Before
//! pushing a head, a writer records an *intent* for each seal the head adds to the remote head
//! it builds on (a replay records its own for the head it makes); after a push, or on finding
//! the remote already has the head, every intent whose commit the origin now contains landed
//! through this writer and fires unless it did already, and intents whose commit a replay
//! replaced are dropped. A seal already trained never fires.
//!
//! The record lives in `.git/gitops-seals.json` (per clone, never committed), written under
//! the feedback store's lock; firing holds the OS lock `.git/gitops-fire.flock`, so the CLI and
//! a server on one clone never fire the same seal twice. It survives a kill: a writer killed
//! between its push and the trigger fires at its next sync (the server's start, the next CLI
//! add). A kill after the trigger fired and before the record says so fires that seal once
//! more at the next sync: at least once, never zero.

use std::collections::{BTreeMap, BTreeSet};
use std::fs::OpenOptions;
use std::path::{Path, PathBuf};

use fs4::fs_std::FileExt;
use git2::{ObjectType, Oid, Repository};
use serde::{Deserialize, Serialize};

use super::GitError;
use crate::feedback::{FeedbackStore, NEW_DATA, SEALED, SealMarker, TRAINED, parse_sub_set_name};
use crate::fsutil;
use crate::trigger::{Fired, RetrainRequest, Trigger};

const LEDGER: &str = "gitops-seals.json";
const FIRE_LOCK: &str = "gitops-fire.flock";

/// A seal that landed through this writer, and what firing its trigger did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FiredSeal {
    pub sub_set: u32,
    /// The trigger's answer, or why it failed (the seal is not fired again).
    pub result: Result<Fired, String>,
}

/// A sealed sub_set in a commit's tree.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Seal {
    pub counted: u32,
    pub trained: bool,
}

#[derive(Debug, Default, Serialize, Deserialize)]
struct Ledger {
    #[serde(default)]
    intents: Vec<Intent>,
    /// Sub_sets fired and not yet trained.
    #[serde(default)]
    fired: BTreeSet<u32>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct Intent {
    sub_set: u32,
    commit: String,
}

fn ledger_path(repo: &Repository) -> PathBuf {
    repo.path().join(LEDGER)
}

fn read(repo: &Repository) -> Result<Ledger, GitError> {
    let path = ledger_path(repo);
    match std::fs::read(&path) {
        Ok(bytes) => Ok(serde_json::from_slice(&bytes).unwrap_or_else(|e| {
            tracing::error!(path = %path.display(), "unreadable record of seals to fire, starting afresh: {e}");
            Ledger::default()
        })),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Ledger::default()),
        Err(source) => Err(GitError::Io { path, source }),
    }
}

fn write(repo: &Repository, ledger: &Ledger) -> Result<(), GitError> {
    let path = ledger_path(repo);
    let text = serde_json::to_vec_pretty(ledger).expect("the ledger serializes");
    fsutil::replace_durable(&path, &text, repo.path()).map_err(|source| GitError::Io { path, source })
}

/// The sealed sub_sets in `commit`'s `new_data/`.
pub(crate) fn seals(repo: &Repository, commit: Oid) -> Result<BTreeMap<u32, Seal>, GitError> {
    let tree = repo.find_commit(commit)?.tree()?;
    let mut out = BTreeMap::new();
    let Some(entry) = tree.get_name(NEW_DATA) else { return Ok(out) };
    let data = repo.find_tree(entry.id())?;
    for entry in data.iter() {
        let Some(n) = entry.name().ok().and_then(parse_sub_set_name) else {
            continue;
        };
        if entry.kind() != Some(ObjectType::Tree) {
            continue;
        }
        let dir = repo.find_tree(entry.id())?;
        let Some(sealed) = dir.get_name(SEALED) else { continue };
        let marker: Option<SealMarker> = serde_json::from_slice(repo.find_blob(sealed.id())?.content()).ok();
        let trained = dir.get_name(TRAINED).is_some();
        out.insert(n, Seal { counted: marker.map_or(0, |m| m.counted), trained });
    }
    Ok(out)
}

/// Records that `head` would land the seals it holds and `base` (the origin's head it builds
/// on) lacks. The caller holds the feedback store's lock.
pub(crate) fn record(repo: &Repository, head: Oid, base: Option<Oid>) -> Result<(), GitError> {
    let before = match base {
        Some(base) => seals(repo, base)?,
        None => BTreeMap::new(),
    };
    let new: Vec<u32> = seals(repo, head)?.into_keys().filter(|n| !before.contains_key(n)).collect();
    if new.is_empty() {
        return Ok(());
    }
    let mut ledger = read(repo)?;
    let commit = head.to_string();
    let mut changed = false;
    for sub_set in new {
        let intent = Intent { sub_set, commit: commit.clone() };
        if !ledger.fired.contains(&sub_set) && !ledger.intents.contains(&intent) {
            ledger.intents.push(intent);
            changed = true;
        }
    }
    if changed { write(repo, &ledger) } else { Ok(()) }
}

/// Fires `trigger` once for each recorded seal that `landed` (the origin's head, as this
/// writer just saw it) holds through a commit of ours; forgets intents a replay replaced.
pub(crate) fn fire_landed(
    repo: &Repository,
    store: &FeedbackStore,
    landed: Oid,
    trigger: &Trigger,
) -> Result<Vec<FiredSeal>, GitError> {
    let lock_path = repo.path().join(FIRE_LOCK);
    let io = |path: &Path| {
        let path = path.to_path_buf();
        move |source| GitError::Io { path, source }
    };
    let lock = OpenOptions::new().create(true).truncate(false).write(true).open(&lock_path).map_err(io(&lock_path))?;
    FileExt::lock_exclusive(&lock).map_err(io(&lock_path))?;
    let ledger = {
        let _store = store.lock()?;
        read(repo)?
    };
    if ledger.intents.is_empty() {
        return Ok(Vec::new());
    }
    let on_origin = seals(repo, landed)?;
    let mut resolved = Vec::new();
    let mut due = BTreeSet::new();
    for intent in &ledger.intents {
        let commit = Oid::from_str(&intent.commit).ok().filter(|c| repo.find_commit(*c).is_ok());
        match commit {
            Some(c) if c == landed || repo.graph_descendant_of(landed, c)? => {
                let seal = on_origin.get(&intent.sub_set);
                if !ledger.fired.contains(&intent.sub_set) && seal.is_some_and(|s| !s.trained) {
                    due.insert(intent.sub_set);
                }
                resolved.push(intent.clone());
            }
            // Not pushed yet: it lands with a later push.
            Some(c) if repo.graph_descendant_of(c, landed)? => {}
            // Replaced by a replay (which recorded its own), or gone.
            _ => resolved.push(intent.clone()),
        }
    }
    let mut fired = Vec::new();
    for sub_set in due {
        let count = on_origin.get(&sub_set).map_or(0, |s| s.counted);
        let request = RetrainRequest::sealed(sub_set, count, Some(landed.to_string()));
        let result = trigger.fire(&request).map_err(|e| e.to_string());
        match &result {
            Ok(how) => tracing::info!(sub_set, ?how, "sub_set landed on the origin: retrain triggered"),
            Err(e) => tracing::error!(sub_set, "sub_set landed on the origin but the retrain trigger failed: {e}"),
        }
        fired.push(FiredSeal { sub_set, result });
    }
    let _store = store.lock()?;
    let mut ledger = read(repo)?;
    ledger.intents.retain(|i| !resolved.contains(i));
    ledger.fired.extend(fired.iter().map(|f| f.sub_set));
    ledger.fired.retain(|n| on_origin.get(n).is_none_or(|s| !s.trained));
    write(repo, &ledger)?;
    Ok(fired)
}
