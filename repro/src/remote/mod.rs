//! DVC remotes: `push` uploads the cache objects of every out in dvc.lock and the `.dvc`
//! files (each `.dir` listing and the files it names) to the remote in `.dvc/config`, in the
//! `files/md5/xx/...` layout DVC 3 uses there, skipping what the remote has; `pull` downloads
//! what the cache lacks, verifies each md5, and checks the outs out. Nothing is ever deleted
//! from a remote. A backend (one file each, `s3.rs`) only sets up an `object_store` client and
//! explains its errors; the transfers are shared.

mod aws;
mod checkout;
mod config;
mod error;
mod ini;
mod s3;
mod transfer;
mod used;

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::Path;

use indicatif::{ProgressBar, ProgressStyle};
use object_store::ObjectStore;

use crate::cache::Cache;
use crate::error::Error;
use crate::repolock::RepoLock;

pub use checkout::Changes;
pub use error::RemoteError;
pub use used::pointer_md5s;

/// What a store must offer the transfers.
pub trait Backend: Send + Sync {
    /// The client.
    fn store(&self) -> &dyn ObjectStore;
    /// The key prefix DVC's `files/md5/...` lives under (`""` for the bucket's root).
    fn prefix(&self) -> &str;
    /// The remote's url, for messages.
    fn url(&self) -> &str;
    /// A store error while `what` (`"uploading to"`) `key`, said in terms of what to fix.
    fn explain(&self, err: object_store::Error, what: &'static str, key: &str) -> RemoteError;
}

/// Which remote, and how many transfers at once.
#[derive(Clone, Debug, Default)]
pub struct TransferOptions {
    /// A remote's name; the default remote (`core.remote`) when `None`.
    pub remote: Option<String>,
    /// Parallel transfers; the remote's `jobs` option, else [`DEFAULT_JOBS`], when `None`.
    pub jobs: Option<usize>,
}

/// Parallel transfers when neither `--jobs` nor the remote's `jobs` says otherwise.
pub const DEFAULT_JOBS: usize = 32;

/// What a push did.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PushReport {
    /// Objects uploaded (the rest were on the remote already).
    pub pushed: usize,
    /// Objects that were needed but are not in the local cache, so were not pushed.
    pub missing: Vec<String>,
}

/// What a pull did.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PullReport {
    /// Objects downloaded into the cache.
    pub fetched: usize,
    /// Objects neither in the cache nor on the remote.
    pub missing: Vec<String>,
    /// The remote's name and url, for messages.
    pub remote: (String, String),
    pub changes: Changes,
}

fn runtime() -> Result<tokio::runtime::Runtime, RemoteError> {
    tokio::runtime::Builder::new_multi_thread().enable_all().build().map_err(RemoteError::Runtime)
}

/// Sets up the backend for the remote's url scheme.
async fn open(cfg: &config::RemoteConfig) -> Result<Box<dyn Backend>, RemoteError> {
    match cfg.url.split_once("://").map(|(scheme, _)| scheme) {
        Some("s3") => Ok(Box::new(s3::S3::open(cfg).await?)),
        _ => Err(RemoteError::UnsupportedScheme { remote: cfg.name.clone(), url: cfg.url.clone() }),
    }
}

fn jobs(opts: &TransferOptions, cfg: &config::RemoteConfig) -> Result<usize, RemoteError> {
    let configured = cfg.get("jobs").map(|j| {
        j.parse::<usize>().map_err(|_| RemoteError::BadOption {
            remote: cfg.name.clone(),
            msg: format!("jobs must be a number, not '{j}'"),
        })
    });
    Ok(opts.jobs.or(configured.transpose()?).unwrap_or(DEFAULT_JOBS).max(1))
}

fn progress(len: usize, what: &str) -> ProgressBar {
    let bar = ProgressBar::new(len as u64);
    let style = ProgressStyle::with_template(&format!("{what} {{bar:30}} {{pos}}/{{len}} files ({{per_sec}})"))
        .expect("a valid template");
    bar.set_style(style);
    bar
}

/// The local objects a push sends: files (plain outs, and the files of directories whose
/// listing cannot be sent because some of them are missing) and complete directories with
/// their files, each with its size; and what the cache lacks.
#[derive(Default)]
struct Local {
    files: BTreeMap<String, u64>,
    dirs: BTreeMap<String, (u64, Vec<(String, u64)>)>,
    missing: BTreeSet<String>,
}

impl Local {
    fn collect(cache: &Cache, outs: &[used::UsedOut]) -> Result<Local, RemoteError> {
        let size = |oid: &str| std::fs::metadata(cache.object_path(oid)).ok().filter(|m| m.is_file()).map(|m| m.len());
        let mut local = Local::default();
        for out in outs {
            let Some(out_size) = size(&out.md5) else {
                local.missing.insert(out.md5.clone());
                continue;
            };
            if !out.md5.ends_with(".dir") {
                local.files.insert(out.md5.clone(), out_size);
                continue;
            }
            let listing = cache.read_listing(&out.md5)?;
            let mut entries = Vec::new();
            for entry in &listing {
                let oid = entry.md5_hex();
                match size(&oid) {
                    Some(s) => entries.push((oid, s)),
                    None => _ = local.missing.insert(oid),
                }
            }
            if entries.len() == listing.len() {
                local.dirs.insert(out.md5.clone(), (out_size, entries));
            } else {
                local.files.extend(entries);
            }
        }
        Ok(local)
    }
}

/// Uploads to the remote every cache object the outs of dvc.lock and the `.dvc` files need
/// and it lacks: files first, then the `.dir` listings naming them, so a listing on the
/// remote means its files are there too, and a directory whose listing the remote has is
/// not checked file by file (as DVC trusts its remote index). A directory with files missing
/// from the local cache keeps its listing back.
pub fn push(root: &Path, opts: &TransferOptions) -> Result<PushReport, RemoteError> {
    let root = root.canonicalize().map_err(Error::io(root))?;
    let _lock = RepoLock::acquire(&root)?;
    let outs = used::collect(&root)?;
    push_outs(&root, opts, &outs)
}

/// [`push`] of the cache objects `oids` (files, or `.dir` listings with their files) rather
/// than of what dvc.lock and the `.dvc` files name. It takes no repo lock: objects are
/// content-addressed and the cache writes each one atomically, so the feedback committer
/// sends samples while a repro holds the lock.
pub fn push_objects(root: &Path, opts: &TransferOptions, oids: &[String]) -> Result<PushReport, RemoteError> {
    let root = root.canonicalize().map_err(Error::io(root))?;
    let outs: Vec<used::UsedOut> =
        oids.iter().map(|oid| used::UsedOut { rel: String::new(), md5: oid.clone(), isexec: false }).collect();
    push_outs(&root, opts, &outs)
}

fn push_outs(root: &Path, opts: &TransferOptions, outs: &[used::UsedOut]) -> Result<PushReport, RemoteError> {
    let cfg = config::remote(root, opts.remote.as_deref())?;
    let jobs = jobs(opts, &cfg)?;
    let cache = Cache::new(root);
    let local = Local::collect(&cache, outs)?;
    let pushed = runtime()?.block_on(async {
        let backend = open(&cfg).await?;
        let backend = backend.as_ref();
        transfer::check(backend).await?;
        let dir_oids: Vec<&str> = local.dirs.keys().map(String::as_str).collect();
        let dirs_there = transfer::remote_sizes(backend, &dir_oids, jobs).await?;
        let mut files = local.files.clone();
        let mut dirs = BTreeMap::new();
        for (oid, (size, entries)) in &local.dirs {
            if dirs_there.get(oid) != Some(size) {
                files.extend(entries.iter().cloned());
                dirs.insert(oid.clone(), *size);
            }
        }
        let file_oids: Vec<&str> = files.keys().map(String::as_str).collect();
        let files_there = transfer::remote_sizes(backend, &file_oids, jobs).await?;
        let (todo_files, todo_dirs) = (todo(&files, &files_there), todo(&dirs, &dirs_there));
        let bar = progress(todo_files.len() + todo_dirs.len(), "Pushing");
        transfer::upload(backend, &cache, &todo_files, jobs, &bar).await?;
        transfer::upload(backend, &cache, &todo_dirs, jobs, &bar).await?;
        bar.finish_and_clear();
        Ok::<_, RemoteError>(todo_files.len() + todo_dirs.len())
    })?;
    Ok(PushReport { pushed, missing: local.missing.into_iter().collect() })
}

/// Downloads into the cache those of the objects `oids` (files, or `.dir` listings with their
/// files) it lacks, checking nothing out; returns how many it fetched and those the remote
/// lacks. Like [`push_objects`], it takes no repo lock.
pub fn fetch_objects(root: &Path, opts: &TransferOptions, oids: &[String]) -> Result<PullReport, RemoteError> {
    let root = root.canonicalize().map_err(Error::io(root))?;
    let outs: Vec<used::UsedOut> =
        oids.iter().map(|oid| used::UsedOut { rel: String::new(), md5: oid.clone(), isexec: false }).collect();
    let cfg = config::remote(&root, opts.remote.as_deref())?;
    let (fetched, missing) = fetch_into_cache(&root, &cfg, jobs(opts, &cfg)?, &outs)?;
    Ok(PullReport { fetched, missing, remote: (cfg.name, cfg.url), changes: Changes::default() })
}

/// Downloads what the outs of dvc.lock and the `.dvc` files need and the cache lacks (the
/// `.dir` listings first, then the files they name), then checks the outs out.
pub fn pull(root: &Path, opts: &TransferOptions, force: bool) -> Result<PullReport, RemoteError> {
    pull_outs(root, opts, force, |_| true)
}

/// [`pull`] of the outs at the root-relative paths `only` (as `dvc pull <targets>`): a server
/// fetching one model's weights by their hash. A path no out names is an error.
pub fn pull_paths(root: &Path, opts: &TransferOptions, only: &[&str]) -> Result<PullReport, RemoteError> {
    let canonical = root.canonicalize().map_err(Error::io(root))?;
    let known = used::collect(&canonical)?;
    if let Some(unknown) = only.iter().find(|p| !known.iter().any(|o| o.rel == **p)) {
        return Err(RemoteError::NotTracked { path: (*unknown).to_owned() });
    }
    pull_outs(root, opts, false, |out| only.contains(&out.rel.as_str()))
}

fn pull_outs(
    root: &Path,
    opts: &TransferOptions,
    force: bool,
    wanted: impl Fn(&used::UsedOut) -> bool,
) -> Result<PullReport, RemoteError> {
    let root = root.canonicalize().map_err(Error::io(root))?;
    let _lock = RepoLock::acquire(&root)?;
    let mut outs = used::collect(&root)?;
    outs.retain(|o| wanted(o));
    let cfg = config::remote(&root, opts.remote.as_deref())?;
    let jobs = jobs(opts, &cfg)?;
    let cache = Cache::new(&root);
    let (fetched, missing) = fetch_into_cache(&root, &cfg, jobs, &outs)?;
    let changes = checkout::checkout(&root, &cache, &outs, force)?;
    Ok(PullReport { fetched, missing, remote: (cfg.name, cfg.url), changes })
}

/// Downloads what `outs` need and the cache lacks: the `.dir` listings first, then the files
/// they name; returns how many objects came and those the remote lacks.
fn fetch_into_cache(
    root: &Path,
    cfg: &config::RemoteConfig,
    jobs: usize,
    outs: &[used::UsedOut],
) -> Result<(usize, Vec<String>), RemoteError> {
    let cache = Cache::new(root);
    runtime()?.block_on(async {
        let backend = open(cfg).await?;
        let backend = backend.as_ref();
        transfer::check(backend).await?;
        let lacking = |oids: &mut dyn Iterator<Item = String>| -> Vec<String> {
            let set: BTreeSet<String> = oids.filter(|o| !cache.contains(o)).collect();
            set.into_iter().collect()
        };
        let dirs = lacking(&mut outs.iter().filter(|o| o.md5.ends_with(".dir")).map(|o| o.md5.clone()));
        let bar = progress(dirs.len(), "Fetching");
        let mut missing = transfer::download(backend, &cache, &as_strs(&dirs), jobs, &bar).await?;
        let mut wanted = Vec::new();
        for out in outs {
            if !out.md5.ends_with(".dir") {
                wanted.push(out.md5.clone());
            } else if cache.contains(&out.md5) {
                wanted.extend(cache.read_listing(&out.md5)?.iter().map(|e| e.md5_hex()));
            }
        }
        let files = lacking(&mut wanted.into_iter());
        bar.inc_length(files.len() as u64);
        missing.extend(transfer::download(backend, &cache, &as_strs(&files), jobs, &bar).await?);
        bar.finish_and_clear();
        Ok::<_, RemoteError>((dirs.len() + files.len() - missing.len(), missing))
    })
}

/// The objects the remote lacks, or has at another size.
fn todo<'a>(objs: &'a BTreeMap<String, u64>, present: &HashMap<String, u64>) -> Vec<(&'a str, u64)> {
    objs.iter().filter(|(oid, size)| present.get(*oid) != Some(size)).map(|(o, s)| (o.as_str(), *s)).collect()
}

fn as_strs(v: &[String]) -> Vec<&str> {
    v.iter().map(String::as_str).collect()
}
