//! `storage: dvc` for feedback: git holds the journals, the seal markers and, for each sealed
//! sub_set, a DVC pointer to its sample folders (`samples.dvc`, one out per `<class>/` and
//! `unsure/`); the sample files live in the working tree (ignored by git), the DVC cache and
//! the default remote of `.dvc/config`, each named by the md5 its journal line records. What
//! `pipeline push` or a real `dvc pull` moves is what those pointers name.
//!
//! The git layer calls this at four points, so no clone ever sees a journal line whose bytes
//! it cannot get:
//! - before it commits `new_data/` ([`DvcSamples::stage`]): the sample folders are ignored,
//!   every sample a journal names is saved into the cache, and each sealed sub_set gets its
//!   pointer (its folders' `.dir` listings made from the journal's md5s, `repro::add_listed`);
//! - before every push (`push_with_retry`, whoever pushes: the committer, promote, publish)
//!   ([`DvcSamples::upload`]): the objects the pushed commits add (samples of new journal
//!   lines, new pointers' listings) go to the remote first, saved into the cache from the
//!   working tree when a commit took them in without [`DvcSamples::stage`];
//! - before the branch moves to a commit made elsewhere, a fast-forward or a replay
//!   ([`DvcSamples::prefetch`]): the samples of that commit's untracked sub_sets (the open one)
//!   that this clone lacks come into the cache, and [`Prefetched::link`] copies them into place
//!   after the checkout, so the store's files agree with its journals again. A sealed sub_set
//!   is read from its journal (`feedback::layout`), so a replica never downloads the history;
//!   `pipeline data fetch` brings it for a retrain;
//! - a replay takes its own samples' bytes from the working tree or the cache
//!   ([`DvcSamples::bytes`]) and deletes the files it re-adds elsewhere.
//!
//! Nothing here takes DVC's repo lock: cache objects are content-addressed and written
//! atomically, so feedback keeps flowing while a retrain's repro holds it.

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::path::{Path, PathBuf};

use git2::{ObjectType, Oid, Repository, Tree};
use repro::remote::{self, TransferOptions};
use repro::{Cache, DirEntry};

use super::GitError;
use crate::feedback::{
    DVC_IGNORE_LINE, FeedbackRecord, JOURNAL, NEW_DATA, SAMPLES_POINTER, SEALED, md5_hex, parse_sub_set_name,
    parsed_lines, sub_set_name,
};
use crate::params::Storage;

/// The DVC side of one repository's feedback.
#[derive(Debug)]
pub(crate) struct DvcSamples {
    root: PathBuf,
    cache: Cache,
}

/// One sub_set as a commit or the working tree has it.
#[derive(Debug, Default)]
struct SubSet {
    /// Its journal's lines; read only for a sub_set without a pointer (a tracked one's samples
    /// are what its pointer names).
    records: Vec<FeedbackRecord>,
    /// Its tree, in a commit.
    tree: Option<Oid>,
    sealed: bool,
    /// Its `samples.dvc` is there (with its blob, in a commit).
    pointer: Option<Option<Oid>>,
}

impl DvcSamples {
    /// The repo's feedback storage when its params say `storage: dvc`; `None` under `git`.
    pub(crate) fn of(root: &Path) -> Result<Option<DvcSamples>, GitError> {
        let storage = Storage::of(root).map_err(crate::feedback::FeedbackError::from)?;
        Ok((storage == Storage::Dvc).then(|| DvcSamples { root: root.to_path_buf(), cache: Cache::new(root) }))
    }

    fn data(&self) -> PathBuf {
        self.root.join(NEW_DATA)
    }

    /// Readies the working tree's `new_data/` for a commit (see the module docs); run under the
    /// store's lock. A sealed sub_set whose samples are in neither the tree nor the cache is an
    /// error: its pointer could not name them.
    pub(crate) fn stage(&self) -> Result<(), GitError> {
        let data = self.data();
        self.ignore_sample_folders(&data)?;
        for (n, sub_set) in working_sub_sets(&data)? {
            let dir = data.join(sub_set_name(n));
            if sub_set.pointer.is_some() {
                continue; // tracked already: its samples are in the cache or the remote
            }
            let mut folders: BTreeMap<String, Vec<DirEntry>> = BTreeMap::new();
            let mut missing = Vec::new();
            for record in &sub_set.records {
                let file = dir.join(&record.path);
                let md5 = match &record.md5 {
                    Some(md5) => md5.clone(),
                    None => match fs::read(&file) {
                        Ok(bytes) => md5_hex(&bytes),
                        Err(_) => {
                            missing.push(record.path.clone());
                            continue;
                        }
                    },
                };
                if !self.cache_from(&file, &md5)? {
                    missing.push(record.path.clone());
                    continue;
                }
                let (folder, relpath) = record.path.split_once('/').unwrap_or(("", &record.path));
                let size = fs::metadata(self.cache.object_path(&md5)).map(|m| m.len()).unwrap_or(0);
                let mut bytes = [0u8; 16];
                hex::decode_to_slice(&md5, &mut bytes).map_err(|_| bad_md5(&dir, record))?;
                folders.entry(folder.to_string()).or_default().push(DirEntry {
                    relpath: relpath.to_string(),
                    md5: bytes,
                    size,
                });
            }
            if !sub_set.sealed {
                if !missing.is_empty() {
                    tracing::warn!(sub_set = n, samples = missing.len(), "journal lines whose sample this clone lacks");
                }
                continue;
            }
            if !missing.is_empty() {
                return Err(GitError::SamplesMissing { what: format!("sealed {}", dir.display()), missing });
            }
            let pointer = format!("{NEW_DATA}/{}/{SAMPLES_POINTER}", sub_set_name(n));
            repro::add_listed(&self.root, &pointer, folders.into_iter().collect()).map_err(dvc_err)?;
        }
        Ok(())
    }

    /// Whether the cache holds the object `md5`, after saving the working-tree file `file` into
    /// it when it did not and the file is there.
    fn cache_from(&self, file: &Path, md5: &str) -> Result<bool, GitError> {
        if self.cache.contains(md5) {
            return Ok(true);
        }
        if !file.is_file() {
            return Ok(false);
        }
        self.cache.save_file(file, md5).map_err(dvc_err)?;
        Ok(true)
    }

    /// Adds [`DVC_IGNORE_LINE`] to `new_data/.gitignore` unless it is there.
    fn ignore_sample_folders(&self, data: &Path) -> Result<(), GitError> {
        let path = data.join(".gitignore");
        let text = match fs::read_to_string(&path) {
            Ok(text) => text,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => String::new(),
            Err(source) => return Err(GitError::Io { path, source }),
        };
        if text.lines().any(|l| l.trim() == DVC_IGNORE_LINE) {
            return Ok(());
        }
        let mut text = text;
        if !text.is_empty() && !text.ends_with('\n') {
            text.push('\n');
        }
        text.push_str(DVC_IGNORE_LINE);
        text.push('\n');
        crate::fsutil::replace_durable(&path, text.as_bytes(), &data.join(".tmp"))
            .map_err(|source| GitError::Io { path, source })
    }

    /// Uploads what `head`'s `new_data/` names and `base`'s (the remote head it builds on)
    /// does not: the samples of new journal lines and the listings of new pointers (with the
    /// files they list); returns how many objects went. A push must not go out before this
    /// returns. Sub_sets whose tree is the same in both are not read.
    pub(crate) fn upload(&self, repo: &Repository, base: Option<Oid>, head: Oid) -> Result<usize, GitError> {
        let ours = tree_sub_sets(repo, &repo.find_commit(head)?.tree()?)?;
        let theirs = match base {
            Some(base) => tree_sub_sets(repo, &repo.find_commit(base)?.tree()?)?,
            None => BTreeMap::new(),
        };
        let known: BTreeSet<&str> = theirs.values().flat_map(|s| &s.records).filter_map(|r| r.md5.as_deref()).collect();
        let known_pointers: BTreeSet<Oid> = theirs.values().filter_map(|s| s.pointer.flatten()).collect();
        let mut oids = BTreeSet::new();
        for (n, sub_set) in &ours {
            if theirs.get(n).is_some_and(|t| t.tree == sub_set.tree) {
                continue;
            }
            for record in &sub_set.records {
                let Some(md5) = record.md5.as_deref().filter(|m| !known.contains(m)) else { continue };
                // A commit made without `stage` (promote's, publish's) took it from the tree.
                self.cache_from(&self.data().join(sub_set_name(*n)).join(&record.path), md5)?;
                oids.insert(md5.to_string());
            }
            if let Some(blob) = sub_set.pointer.flatten().filter(|b| !known_pointers.contains(b)) {
                let text = String::from_utf8_lossy(repo.find_blob(blob)?.content()).into_owned();
                let file = Path::new(NEW_DATA).join(sub_set_name(*n)).join(SAMPLES_POINTER);
                oids.extend(remote::pointer_md5s(&text, &file).map_err(remote_err)?);
            }
        }
        if oids.is_empty() {
            return Ok(0);
        }
        let oids: Vec<String> = oids.into_iter().collect();
        let report = remote::push_objects(&self.root, &TransferOptions::default(), &oids).map_err(remote_err)?;
        if !report.missing.is_empty() {
            return Err(GitError::SamplesMissing { what: "the commits to push".into(), missing: report.missing });
        }
        Ok(report.pushed)
    }

    /// Fetches into the cache the samples of `target`'s untracked sub_sets that the working
    /// tree lacks, before the branch moves there; [`Prefetched::link`] puts them in place after.
    pub(crate) fn prefetch(&self, repo: &Repository, target: Oid) -> Result<Prefetched<'_>, GitError> {
        let sub_sets = tree_sub_sets(repo, &repo.find_commit(target)?.tree()?)?;
        self.fetch(self.lacking(&sub_sets), &format!("commit {}", &target.to_string()[..10]))
    }

    /// Puts in place the samples the working tree's untracked sub_sets name and lack, from the
    /// cache or the remote: a fresh clone's open sub_set, or a fast-forward or replay that
    /// stopped between its checkout and its link. Nothing goes over the network when nothing
    /// is missing.
    pub(crate) fn restore(&self) -> Result<(), GitError> {
        let sub_sets = working_sub_sets(&self.data())?;
        self.fetch(self.lacking(&sub_sets), "the working tree")?.link()
    }

    /// Fetches the objects of `items` the cache lacks.
    fn fetch(&self, items: Vec<(PathBuf, String)>, what: &str) -> Result<Prefetched<'_>, GitError> {
        let oids: BTreeSet<String> =
            items.iter().map(|(_, md5)| md5.clone()).filter(|m| !self.cache.contains(m)).collect();
        if !oids.is_empty() {
            let oids: Vec<String> = oids.into_iter().collect();
            let report = remote::fetch_objects(&self.root, &TransferOptions::default(), &oids).map_err(remote_err)?;
            if !report.missing.is_empty() {
                return Err(GitError::SamplesMissing {
                    what: format!("{what} (not on remote '{}' either)", report.remote.0),
                    missing: report.missing,
                });
            }
        }
        Ok(Prefetched { cache: &self.cache, items })
    }

    /// Samples of untracked sub_sets whose file is missing, with their md5.
    fn lacking(&self, sub_sets: &BTreeMap<u32, SubSet>) -> Vec<(PathBuf, String)> {
        let data = self.data();
        let mut items = Vec::new();
        for (n, sub_set) in sub_sets.iter().filter(|(_, s)| s.pointer.is_none()) {
            let dir = data.join(sub_set_name(*n));
            for record in &sub_set.records {
                let dst = dir.join(&record.path);
                if dst.exists() {
                    continue;
                }
                match &record.md5 {
                    Some(md5) => items.push((dst, md5.clone())),
                    None => {
                        tracing::warn!(path = %dst.display(), "a journal line without an md5: its sample cannot be fetched")
                    }
                }
            }
        }
        items
    }

    /// A sample's bytes: its file in sub_set `n` of the working tree, else the cache's copy.
    pub(crate) fn bytes(&self, n: u32, record: &FeedbackRecord) -> Result<Vec<u8>, GitError> {
        let file = self.data().join(sub_set_name(n)).join(&record.path);
        match fs::read(&file) {
            Ok(bytes) => return Ok(bytes),
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => return Err(GitError::Io { path: file, source: e }),
            Err(_) => {}
        }
        let object = record.md5.as_deref().map(|m| self.cache.object_path(m));
        match object.map(|o| fs::read(&o).map_err(|source| (o, source))) {
            Some(Ok(bytes)) => Ok(bytes),
            Some(Err((path, source))) if source.kind() != std::io::ErrorKind::NotFound => {
                Err(GitError::Io { path, source })
            }
            _ => Err(GitError::SamplesMissing { what: format!("sub_set_{n}"), missing: vec![record.path.clone()] }),
        }
    }

    /// Deletes the working-tree file of a sample of sub_set `n` (a replay re-adds it elsewhere;
    /// its bytes are in the cache and in memory).
    pub(crate) fn remove(&self, n: u32, record: &FeedbackRecord) -> Result<(), GitError> {
        let file = self.data().join(sub_set_name(n)).join(&record.path);
        match fs::remove_file(&file) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(GitError::Io { path: file, source: e }),
            _ => Ok(()),
        }
    }
}

/// Samples fetched into the cache, to copy into the working tree once the checkout is done.
#[derive(Debug)]
pub(crate) struct Prefetched<'a> {
    cache: &'a Cache,
    items: Vec<(PathBuf, String)>,
}

impl Prefetched<'_> {
    pub(crate) fn link(self) -> Result<(), GitError> {
        for (dst, md5) in self.items {
            if !dst.exists() {
                self.cache.checkout(&md5, &dst, false).map_err(dvc_err)?;
            }
        }
        Ok(())
    }
}

/// The sub_sets of the working tree's `new_data/`.
fn working_sub_sets(data: &Path) -> Result<BTreeMap<u32, SubSet>, GitError> {
    let io = |path: &Path| {
        let path = path.to_path_buf();
        move |source| GitError::Io { path, source }
    };
    let mut out = BTreeMap::new();
    let entries = match fs::read_dir(data) {
        Ok(entries) => entries,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(out),
        Err(e) => return Err(io(data)(e)),
    };
    for entry in entries {
        let entry = entry.map_err(io(data))?;
        let Some(n) = entry.file_name().to_str().and_then(parse_sub_set_name) else { continue };
        let dir = entry.path();
        let mut sub_set = SubSet::default();
        let mut journal = false;
        for file in fs::read_dir(&dir).map_err(io(&dir))? {
            let name = file.map_err(io(&dir))?.file_name().to_string_lossy().into_owned();
            match name.as_str() {
                SEALED => sub_set.sealed = true,
                SAMPLES_POINTER => sub_set.pointer = Some(None),
                JOURNAL => journal = true,
                _ => {}
            }
        }
        if journal && sub_set.pointer.is_none() {
            let path = dir.join(JOURNAL);
            sub_set.records = parsed_lines(&fs::read_to_string(&path).map_err(io(&path))?).collect();
        }
        out.insert(n, sub_set);
    }
    Ok(out)
}

/// The sub_sets of a commit's `new_data/`.
fn tree_sub_sets(repo: &Repository, tree: &Tree<'_>) -> Result<BTreeMap<u32, SubSet>, GitError> {
    let mut out = BTreeMap::new();
    let Some(entry) = tree.get_name(NEW_DATA) else { return Ok(out) };
    for entry in repo.find_tree(entry.id())?.iter() {
        let Some(n) = entry.name().ok().and_then(parse_sub_set_name) else { continue };
        if entry.kind() != Some(ObjectType::Tree) {
            continue;
        }
        let mut sub_set = SubSet { tree: Some(entry.id()), ..SubSet::default() };
        let mut journal = None;
        for file in repo.find_tree(entry.id())?.iter() {
            match file.name().unwrap_or_default() {
                SEALED => sub_set.sealed = true,
                SAMPLES_POINTER => sub_set.pointer = Some(Some(file.id())),
                JOURNAL => journal = Some(file.id()),
                _ => {}
            }
        }
        if let Some(blob) = journal.filter(|_| sub_set.pointer.is_none()) {
            sub_set.records = parsed_lines(&String::from_utf8_lossy(repo.find_blob(blob)?.content())).collect();
        }
        out.insert(n, sub_set);
    }
    Ok(out)
}

fn bad_md5(dir: &Path, record: &FeedbackRecord) -> GitError {
    GitError::Io {
        path: dir.join(JOURNAL),
        source: std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            format!("{}: md5 is not 32 hex digits", record.path),
        ),
    }
}

fn dvc_err(e: repro::Error) -> GitError {
    GitError::Dvc(Box::new(e))
}

fn remote_err(e: remote::RemoteError) -> GitError {
    GitError::DvcRemote(Box::new(e))
}
