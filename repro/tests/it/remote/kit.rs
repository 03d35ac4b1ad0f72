//! What the remote tests stand on: a real S3 endpoint and DVC (`testkit::moto`), git + DVC
//! repos run with a clean AWS environment, and a look at what the bucket holds.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use futures_util::TryStreamExt;
use object_store::aws::{AmazonS3, AmazonS3Builder};
use object_store::{ObjectStore, ObjectStoreExt};

pub use testkit::moto::{Moto, dvc};

/// The bucket's objects, read with object_store.
pub trait Bucket {
    /// Every object under `prefix`: key → (size, etag, last modified).
    fn objects(&self, bucket: &str, prefix: &str) -> BTreeMap<String, (u64, String, String)>;
    /// The bytes of one object.
    fn get(&self, bucket: &str, key: &str) -> Vec<u8>;
    /// Writes one object.
    fn put(&self, bucket: &str, key: &str, bytes: &[u8]);
}

/// A client of `bucket` with the moto user's keys.
fn store(moto: &Moto, bucket: &str) -> AmazonS3 {
    AmazonS3Builder::new()
        .with_endpoint(&moto.endpoint)
        .with_allow_http(true)
        .with_region("us-east-1")
        .with_bucket_name(bucket)
        .with_access_key_id(&moto.key_id)
        .with_secret_access_key(&moto.secret)
        .build()
        .expect("an S3 client")
}

impl Bucket for Moto {
    /// Every object under `prefix`: key → (size, etag, last modified).
    fn objects(&self, bucket: &str, prefix: &str) -> BTreeMap<String, (u64, String, String)> {
        let store = store(self, bucket);
        let prefix = object_store::path::Path::from(prefix);
        let metas: Vec<_> = runtime().block_on(store.list(Some(&prefix)).try_collect()).expect("list the bucket");
        metas
            .into_iter()
            .map(|m| (m.location.to_string(), (m.size, m.e_tag.unwrap_or_default(), m.last_modified.to_rfc3339())))
            .collect()
    }

    /// The bytes of one object.
    fn get(&self, bucket: &str, key: &str) -> Vec<u8> {
        let store = store(self, bucket);
        runtime()
            .block_on(async { store.get(&key.into()).await?.bytes().await })
            .unwrap_or_else(|e| panic!("get {key}: {e}"))
            .to_vec()
    }

    /// Writes one object.
    fn put(&self, bucket: &str, key: &str, bytes: &[u8]) {
        let store = store(self, bucket);
        runtime().block_on(store.put(&key.into(), bytes.to_vec().into())).unwrap_or_else(|e| panic!("put {key}: {e}"));
    }
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread().enable_all().build().expect("a runtime")
}

/// A git + DVC repo whose commands see only the AWS settings a test gives them.
pub struct Repo {
    dir: tempfile::TempDir,
    dvc: PathBuf,
    /// Extra environment for every command (credentials); an empty value unsets the variable.
    pub env: Vec<(String, String)>,
}

impl Repo {
    /// `git init` + `dvc init` (the real one) in a fresh folder.
    pub fn init(dvc: &Path) -> Repo {
        let repo = Repo { dir: tempfile::tempdir().expect("tempdir"), dvc: dvc.to_path_buf(), env: Vec::new() };
        std::fs::create_dir(repo.path()).expect("mkdir repo");
        repo.git(&["init", "-q"]);
        repo.git(&["config", "user.email", "test@example.com"]);
        repo.git(&["config", "user.name", "Test"]);
        repo.dvc(&["init", "-q"]);
        repo
    }

    /// A `git clone` of `from` beside nothing else.
    pub fn clone_of(from: &Repo) -> Repo {
        let repo = Repo { dir: tempfile::tempdir().expect("tempdir"), dvc: from.dvc.clone(), env: from.env.clone() };
        let to = repo.path();
        testkit::run(Command::new("git").args(["clone", "-q"]).arg(from.path()).arg(&to), "git clone");
        repo
    }

    pub fn path(&self) -> PathBuf {
        self.dir.path().join("repo")
    }

    pub fn write(&self, rel: &str, content: &str) {
        let p = self.path().join(rel);
        std::fs::create_dir_all(p.parent().expect("parent")).expect("mkdir");
        std::fs::write(p, content).expect("write");
    }

    /// Every file under `rel` (a file or folder), relative path → bytes.
    pub fn files(&self, rel: &str) -> BTreeMap<String, Vec<u8>> {
        let mut out = BTreeMap::new();
        let mut stack = vec![self.path().join(rel)];
        while let Some(p) = stack.pop() {
            if p.is_dir() {
                stack.extend(std::fs::read_dir(&p).expect("read_dir").map(|e| e.expect("entry").path()));
            } else {
                let name = p.strip_prefix(self.path()).expect("inside").display().to_string();
                out.insert(name, std::fs::read(&p).expect("read"));
            }
        }
        out
    }

    /// A command in the repo with a clean AWS environment: no `AWS_*` from outside, no shared
    /// files, no instance metadata, no global or system DVC config.
    fn command(&self, program: &Path) -> Command {
        let mut cmd = Command::new(program);
        cmd.current_dir(self.path());
        testkit::moto::isolate_aws(&mut cmd, &self.dir.path().join("none"));
        for (key, value) in &self.env {
            match value.as_str() {
                "" => cmd.env_remove(key),
                v => cmd.env(key, v),
            };
        }
        cmd
    }

    /// This runner's `repro` binary with `args`, not waited for.
    pub fn ours_command(&self, args: &[&str]) -> Command {
        let mut cmd = self.command(Path::new(env!("CARGO_BIN_EXE_repro")));
        cmd.args(args);
        cmd
    }

    /// Runs this runner with `args`; its output whatever the exit code.
    pub fn ours_output(&self, args: &[&str]) -> Output {
        self.ours_command(args).output().expect("run repro")
    }

    /// Runs this runner; its stdout, panicking with its output when it fails.
    pub fn ours(&self, args: &[&str]) -> String {
        check(self.ours_output(args), &format!("repro {}", args.join(" ")))
    }

    /// The real DVC with `args`, not yet run.
    pub fn dvc_command(&self, args: &[&str]) -> Command {
        let mut cmd = self.command(&self.dvc);
        cmd.args(args);
        cmd
    }

    /// Runs the real DVC; its stdout, panicking with its output when it fails.
    pub fn dvc(&self, args: &[&str]) -> String {
        let out = self.dvc_command(args).output().expect("run dvc");
        check(out, &format!("dvc {}", args.join(" ")))
    }

    pub fn git(&self, args: &[&str]) -> String {
        testkit::run(Command::new("git").args(args).current_dir(self.path()), &format!("git {}", args.join(" ")))
    }

    /// Adds a remote (`dvc remote add`, the default when `default`) at the moto endpoint.
    pub fn add_remote(&self, name: &str, url: &str, moto: &Moto, default: bool) {
        let mut args = vec!["remote", "add"];
        if default {
            args.push("-d");
        }
        self.dvc(&[&args[..], &[name, url]].concat());
        self.dvc(&["remote", "modify", name, "endpointurl", &moto.endpoint]);
    }

    /// Gives every later command the moto user's keys through the usual variables.
    pub fn use_env_keys(&mut self, moto: &Moto) {
        self.env.push(("AWS_ACCESS_KEY_ID".into(), moto.key_id.clone()));
        self.env.push(("AWS_SECRET_ACCESS_KEY".into(), moto.secret.clone()));
    }

    pub fn commit(&self, msg: &str) {
        self.git(&["add", "-A"]);
        self.git(&["commit", "-q", "-m", msg]);
    }
}

/// stdout of a command that must have succeeded.
pub fn check(out: Output, what: &str) -> String {
    let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(out.status.success(), "{what} failed ({}):\n{text}", out.status);
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// stderr of a command that must have failed.
pub fn failure(out: Output, what: &str) -> String {
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(!out.status.success(), "{what} succeeded:\n{}{stderr}", String::from_utf8_lossy(&out.stdout));
    stderr
}
