//! `pipeline fsck`: check that files, journals, seal markers and `count.json` agree, and repair.

use std::collections::{HashMap, HashSet};
use std::fs;
use std::path::PathBuf;

use serde::Serialize;
use sha2::{Digest, Sha256};

use super::count::CountFile;
use super::layout::{JOURNAL, SEALED, SealMarker, SubSetScan, parse_key};
use super::locked::Locked;
use super::{FeedbackError, FeedbackRecord, io_err, owner};
use crate::fsutil;
use crate::git::{GitError, RepoLock, lock_files};
use crate::image_input::{ImageLimits, decode_limited};

/// What kind of inconsistency was found.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum IssueKind {
    /// A temp file of a writer that died (never visible as a sample).
    TempFile,
    /// A file or folder that does not belong in the layout.
    Stray,
    /// A PNG whose content does not hash to its name or does not decode.
    CorruptSample,
    /// A `feedback.jsonl` line that does not parse (a torn write).
    BadJournalLine,
    /// A journal line whose PNG does not exist (an add that never returned).
    OrphanJournalLine,
    /// A stored PNG with no journal line.
    MissingJournalLine,
    /// The same sample stored in two sub_sets.
    DuplicateSample,
    /// A sub_set holding the threshold that is not sealed.
    NotSealed,
    /// `sealed.json` disagrees with the files.
    SealMismatch,
    /// A sealed sub_set after an unsealed one, or samples after the open sub_set.
    SealOrder,
    /// `count.json` is missing or disagrees with the files.
    StaleCount,
    /// A git lock file (`index.lock`, `refs/heads/main.lock`, ...) that no live writer of ours
    /// holds: every commit fails while it is there.
    GitLock,
}

/// One inconsistency.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct FsckIssue {
    pub kind: IssueKind,
    pub path: PathBuf,
    pub message: String,
}

impl FsckIssue {
    /// Whether `fsck --repair` fixes it (stray files and a broken seal order need a person).
    pub fn repairable(&self) -> bool {
        !matches!(self.kind, IssueKind::Stray | IssueKind::SealOrder)
    }
}

/// The result of [`FeedbackStore::fsck`](super::FeedbackStore::fsck).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct FsckReport {
    /// Issues found before any repair.
    pub found: Vec<FsckIssue>,
    /// Issues still there at the end (equal to `found` without `--repair`).
    pub remaining: Vec<FsckIssue>,
    pub repaired: bool,
    /// `count.json` as derived from the files at the end.
    pub count: CountFile,
}

impl FsckReport {
    pub fn is_consistent(&self) -> bool {
        self.remaining.is_empty()
    }
}

/// Everything a check learns, kept for the repair.
#[derive(Debug, Default)]
struct Findings {
    issues: Vec<FsckIssue>,
    temp_files: Vec<PathBuf>,
    delete: Vec<PathBuf>,
    /// sub_set -> journal to write (valid lines for existing samples, then recovered ones).
    journals: HashMap<u32, Vec<FeedbackRecord>>,
    reseal: Vec<SealMarker>,
    git_locks: Vec<PathBuf>,
}

impl Findings {
    fn issue(&mut self, kind: IssueKind, path: PathBuf, message: String) {
        self.issues.push(FsckIssue { kind, path, message });
    }
}

impl Locked<'_> {
    pub(crate) fn fsck(&mut self, repair: bool) -> Result<FsckReport, FeedbackError> {
        // Held throughout, so that no git write of ours runs meanwhile: a git lock file seen
        // then is not one of ours in use (and one a killed writer of ours left is gone).
        let repo = git2::Repository::open(self.layout.data.parent().unwrap_or(&self.layout.data)).ok();
        let _git = repo.as_ref().map(|r| RepoLock::acquire(r.path())).transpose().map_err(git_err(repo.as_ref()))?;
        let found = self.check()?;
        if !repair || found.issues.is_empty() {
            let count = self.scan_all()?.0;
            let issues = found.issues;
            return Ok(FsckReport { found: issues.clone(), remaining: issues, repaired: false, count });
        }
        self.repair(&found)?;
        let count = self.recompute()?;
        let remaining = self.check()?.issues;
        Ok(FsckReport { found: found.issues, remaining, repaired: true, count })
    }

    fn check(&mut self) -> Result<Findings, FeedbackError> {
        let mut f = Findings::default();
        let tmp = self.layout.tmp();
        for path in owner::orphans(&tmp).map_err(io_err(&tmp))?.0 {
            f.issue(IssueKind::TempFile, path.clone(), "temp file of a writer that died".into());
            f.temp_files.push(path);
        }
        let subs = self.layout.sub_sets().map_err(io_err(&self.layout.data))?;
        let limits = ImageLimits::from(self.params);
        let mut seen: HashMap<String, u32> = HashMap::new();
        let mut open: Option<u32> = None;
        for n in subs {
            let dir = self.layout.sub_set(n);
            let scan = SubSetScan::read(&dir).map_err(io_err(&dir))?;
            for stray in &scan.stray {
                f.issue(IssueKind::Stray, stray.clone(), "not part of the new_data layout".into());
            }
            let mut good = SubSetScan { sealed: scan.sealed, trained: scan.trained, ..Default::default() };
            for key in &scan.keys {
                let path = dir.join(key);
                let (label, kind, sha) = parse_key(key).expect("scan yields valid keys");
                // A DVC-tracked sub_set's files may not be checked out in this clone.
                let bytes = match fs::read(&path) {
                    Err(e) if scan.tracked && e.kind() == std::io::ErrorKind::NotFound => None,
                    read => Some(read.map_err(io_err(&path))?),
                };
                let corrupt =
                    |b: &Vec<u8>| hex::encode(Sha256::digest(b)) != sha || decode_limited(b, &limits).is_err();
                if bytes.as_ref().is_some_and(corrupt) {
                    f.issue(
                        IssueKind::CorruptSample,
                        path.clone(),
                        "content does not match its sha256 name or does not decode".into(),
                    );
                    f.delete.push(path);
                } else if let Some(first) = seen.get(key) {
                    f.issue(IssueKind::DuplicateSample, path.clone(), format!("also stored in sub_set_{first}"));
                    f.delete.push(path);
                } else {
                    seen.insert(key.clone(), n);
                    good.add(key.clone(), label, kind);
                }
            }
            let journal = self.check_journal(n, &good, &mut f)?;
            f.journals.insert(n, journal);
            self.check_seal(n, &good, &mut open, &mut f)?;
        }
        if let Ok(repo) = git2::Repository::open(self.layout.data.parent().unwrap_or(&self.layout.data)) {
            for lock in lock_files(repo.path()).map_err(git_err(Some(&repo)))? {
                let message = format!(
                    "git lock file written {}s ago: a git process outside this pipeline holds it, or one that was killed left it; commits fail while it is there",
                    lock.age().as_secs()
                );
                f.issue(IssueKind::GitLock, lock.path.clone(), message);
                f.git_locks.push(lock.path);
            }
        }
        let count = self.scan_all()?.0;
        match self.read_count() {
            Some(on_disk) if on_disk.same_state(&count) => {}
            Some(on_disk) => f.issue(
                IssueKind::StaleCount,
                self.layout.count(),
                format!(
                    "count.json says sub_set {} with {} counted, the files say sub_set {} with {}",
                    on_disk.sub_set_count, on_disk.current_count, count.sub_set_count, count.current_count
                ),
            ),
            None if count.totals.counted + count.totals.unsure > 0 => {
                f.issue(IssueKind::StaleCount, self.layout.count(), "count.json is missing or unreadable".into());
            }
            None => {}
        }
        Ok(f)
    }

    fn check_journal(&self, n: u32, good: &SubSetScan, f: &mut Findings) -> Result<Vec<FeedbackRecord>, FeedbackError> {
        let path = self.layout.sub_set(n).join(JOURNAL);
        let text = match fs::read_to_string(&path) {
            Ok(text) => text,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => String::new(),
            Err(source) => return Err(FeedbackError::Io { path, source }),
        };
        let wanted: HashSet<&str> = good.keys.iter().map(String::as_str).collect();
        let mut kept: Vec<FeedbackRecord> = Vec::new();
        let mut covered: HashSet<String> = HashSet::new();
        for (i, line) in text.lines().enumerate().filter(|(_, l)| !l.trim().is_empty()) {
            let Ok(record) = serde_json::from_str::<FeedbackRecord>(line) else {
                f.issue(IssueKind::BadJournalLine, path.clone(), format!("line {} does not parse", i + 1));
                continue;
            };
            if !wanted.contains(record.path.as_str()) {
                f.issue(
                    IssueKind::OrphanJournalLine,
                    path.clone(),
                    format!("line {} names {}, which is not stored", i + 1, record.path),
                );
            } else if covered.insert(record.path.clone()) {
                kept.push(record);
            } else {
                f.issue(IssueKind::OrphanJournalLine, path.clone(), format!("line {} repeats {}", i + 1, record.path));
            }
        }
        for key in &good.keys {
            if covered.contains(key) {
                continue;
            }
            f.issue(IssueKind::MissingJournalLine, path.clone(), format!("{key} has no line"));
            kept.push(FeedbackRecord::recovered(key, "fsck").expect("keys come from parse_key"));
        }
        Ok(kept)
    }

    fn check_seal(
        &self,
        n: u32,
        good: &SubSetScan,
        open: &mut Option<u32>,
        f: &mut Findings,
    ) -> Result<(), FeedbackError> {
        let dir = self.layout.sub_set(n);
        let threshold = self.params.threshold;
        let counted = good.counted();
        if let Some(first_open) = *open {
            if good.sealed || counted + good.unsure > 0 {
                f.issue(
                    IssueKind::SealOrder,
                    dir,
                    format!("holds samples or a seal after the open sub_set_{first_open}"),
                );
            }
            return Ok(());
        }
        if good.sealed {
            let path = dir.join(SEALED);
            let text = fs::read(&path).map_err(io_err(&path))?;
            let marker: Option<SealMarker> = serde_json::from_slice(&text).ok();
            if marker.as_ref().is_none_or(|m| m.sub_set != n || m.counted != counted) {
                f.issue(
                    IssueKind::SealMismatch,
                    path,
                    format!("sealed.json does not record sub_set {n} with {counted} counted"),
                );
                let sealed_at = marker.map_or_else(chrono::Utc::now, |m| m.sealed_at);
                f.reseal.push(SealMarker { sub_set: n, sealed_at, threshold, counted });
            }
        } else if counted >= threshold {
            f.issue(
                IssueKind::NotSealed,
                dir,
                format!("holds {counted} counted samples (threshold {threshold}) but is not sealed"),
            );
            f.reseal.push(SealMarker { sub_set: n, sealed_at: chrono::Utc::now(), threshold, counted });
        } else {
            *open = Some(n);
        }
        Ok(())
    }

    fn repair(&mut self, f: &Findings) -> Result<(), FeedbackError> {
        if f.issues.iter().any(|i| i.kind == IssueKind::SealOrder) {
            let what: Vec<_> =
                f.issues.iter().filter(|i| !i.repairable()).map(|i| i.path.display().to_string()).collect();
            return Err(FeedbackError::Unrepairable(what.join(", ")));
        }
        let tmp = self.layout.tmp();
        owner::remove_orphans(&tmp).map_err(io_err(&tmp))?;
        for path in &f.git_locks {
            crate::git::remove_lock_file(path).map_err(git_err(None))?;
        }
        for path in f.temp_files.iter().chain(&f.delete) {
            match fs::remove_file(path) {
                Err(e) if e.kind() != std::io::ErrorKind::NotFound => return Err(io_err(path)(e)),
                _ => {}
            }
        }
        let tmp = self.layout.tmp();
        for (n, records) in &f.journals {
            let path = self.layout.sub_set(*n).join(JOURNAL);
            let mut text = String::new();
            for record in records {
                text.push_str(&serde_json::to_string(record).expect("records serialize"));
                text.push('\n');
            }
            let current = fs::read_to_string(&path).unwrap_or_default();
            if current != text {
                fsutil::replace_durable(&path, text.as_bytes(), &tmp).map_err(io_err(&path))?;
            }
        }
        for seal in &f.reseal {
            let path = self.layout.sub_set(seal.sub_set).join(SEALED);
            let text = serde_json::to_vec_pretty(seal).expect("markers serialize");
            fsutil::replace_durable(&path, &text, &tmp).map_err(io_err(&path))?;
        }
        Ok(())
    }
}

/// A git failure inside fsck, as an I/O error on the git directory.
fn git_err(repo: Option<&git2::Repository>) -> impl FnOnce(GitError) -> FeedbackError {
    let path = repo.map_or_else(|| PathBuf::from(".git"), |r| r.path().to_path_buf());
    move |e| FeedbackError::Io { path, source: std::io::Error::other(e) }
}
