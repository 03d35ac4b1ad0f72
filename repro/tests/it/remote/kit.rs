//! What the remote tests stand on: a real S3 endpoint (moto_server on a free 127.0.0.1 port,
//! with IAM auth on, so wrong credentials are refused as S3 refuses them), DVC with `dvc-s3`,
//! both from PyPI in cached venvs, git + DVC repos run with a clean AWS environment, and a
//! look at what the bucket holds.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use futures_util::TryStreamExt;
use object_store::aws::{AmazonS3, AmazonS3Builder};
use object_store::{ObjectStore, ObjectStoreExt};

/// moto 5.2.1 (and older) checks SigV4 signatures against the decoded query string, so any
/// authenticated `ListObjects` with a `/` in its prefix fails; 5.2.5 does not.
const MOTO: &str = "moto[server]==5.2.5";
/// The DVC the other DVC tests run, with its S3 plugin.
const DVC: &str = "dvc[s3]==3.67.1";

/// The DVC executable, or `None` when python3 is missing and skipping is allowed.
pub fn dvc() -> Option<PathBuf> {
    python3()?;
    Some(testkit::venv_tool("dvc-s3-venv", &[DVC], "dvc"))
}

fn python3() -> Option<PathBuf> {
    let found = std::env::split_paths(&std::env::var_os("PATH")?).map(|d| d.join("python3")).find(|p| p.is_file());
    testkit::require::present(
        found,
        "python3 on PATH (for moto_server and DVC from PyPI)",
        "install Python 3.9+ with pip",
    )
}

/// A moto S3 server with one IAM user allowed everything; killed when dropped or when the
/// test's thread ends.
pub struct Moto {
    child: Child,
    pub endpoint: String,
    pub key_id: String,
    pub secret: String,
    python: PathBuf,
}

impl Moto {
    /// Starts moto and creates the user (the first three requests need no signature).
    pub fn start() -> Option<Moto> {
        python3()?;
        let server = testkit::venv_tool("moto-venv", &[MOTO], "moto_server");
        let python = server.with_file_name("python");
        let port = std::net::TcpListener::bind("127.0.0.1:0").expect("a free port").local_addr().expect("addr").port();
        let mut cmd = Command::new(&server);
        cmd.args(["-H", "127.0.0.1", "-p", &port.to_string()])
            .env("INITIAL_NO_AUTH_ACTION_COUNT", "3")
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        let child = testkit::child::die_with_parent(&mut cmd).spawn().expect("start moto_server");
        let endpoint = format!("http://127.0.0.1:{port}");
        let deadline = Instant::now() + Duration::from_secs(60);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(Instant::now() < deadline, "moto_server did not listen on {endpoint} within 60 s");
            std::thread::sleep(Duration::from_millis(100));
        }
        let mut moto = Moto { child, endpoint, key_id: String::new(), secret: String::new(), python };
        let keys = moto.python(
            "iam = client('iam')\n\
             iam.create_user(UserName='dvc')\n\
             iam.put_user_policy(UserName='dvc', PolicyName='all', PolicyDocument='{\"Version\": \"2012-10-17\", \"Statement\": [{\"Effect\": \"Allow\", \"Action\": \"*\", \"Resource\": \"*\"}]}')\n\
             k = iam.create_access_key(UserName='dvc')['AccessKey']\n\
             print(k['AccessKeyId'], k['SecretAccessKey'])",
        );
        let (key_id, secret) = keys.trim().split_once(' ').expect("a key id and a secret");
        (moto.key_id, moto.secret) = (key_id.to_owned(), secret.to_owned());
        Some(moto)
    }

    /// CPU seconds (user + system, all threads) moto has used so far.
    #[allow(dead_code, reason = "benches/remote.rs reads it to show when moto is the bottleneck")]
    pub fn cpu_seconds(&self) -> f64 {
        let stat = std::fs::read_to_string(format!("/proc/{}/stat", self.child.id())).expect("moto's /proc stat");
        // Fields after the parenthesised name: state is 3rd, utime 14th, stime 15th.
        let fields: Vec<&str> = stat.rsplit_once(')').expect("a stat line").1.split_whitespace().collect();
        let ticks: f64 = fields[11].parse::<f64>().unwrap() + fields[12].parse::<f64>().unwrap();
        ticks / 100.0
    }

    /// Runs Python (botocore, `client(service)` at this endpoint with the user's keys).
    fn python(&self, body: &str) -> String {
        let script = format!(
            "import botocore.session\n\
             def client(service):\n    \
                 return botocore.session.get_session().create_client(service, endpoint_url='{}', region_name='us-east-1', aws_access_key_id='{}' or 'setup', aws_secret_access_key='{}' or 'setup')\n\
             {body}\n",
            self.endpoint, self.key_id, self.secret
        );
        testkit::run(Command::new(&self.python).arg("-c").arg(script), "botocore against moto")
    }

    pub fn create_bucket(&self, bucket: &str) {
        self.python(&format!("client('s3').create_bucket(Bucket='{bucket}')"));
    }

    fn store(&self, bucket: &str) -> AmazonS3 {
        AmazonS3Builder::new()
            .with_endpoint(&self.endpoint)
            .with_allow_http(true)
            .with_region("us-east-1")
            .with_bucket_name(bucket)
            .with_access_key_id(&self.key_id)
            .with_secret_access_key(&self.secret)
            .build()
            .expect("an S3 client")
    }

    /// Every object under `prefix`: key → (size, etag, last modified).
    pub fn objects(&self, bucket: &str, prefix: &str) -> BTreeMap<String, (u64, String, String)> {
        let store = self.store(bucket);
        let prefix = object_store::path::Path::from(prefix);
        let metas: Vec<_> = runtime().block_on(store.list(Some(&prefix)).try_collect()).expect("list the bucket");
        metas
            .into_iter()
            .map(|m| (m.location.to_string(), (m.size, m.e_tag.unwrap_or_default(), m.last_modified.to_rfc3339())))
            .collect()
    }

    /// The bytes of one object.
    pub fn get(&self, bucket: &str, key: &str) -> Vec<u8> {
        let store = self.store(bucket);
        runtime()
            .block_on(async { store.get(&key.into()).await?.bytes().await })
            .unwrap_or_else(|e| panic!("get {key}: {e}"))
            .to_vec()
    }

    /// Writes one object.
    pub fn put(&self, bucket: &str, key: &str, bytes: &[u8]) {
        let store = self.store(bucket);
        runtime().block_on(store.put(&key.into(), bytes.to_vec().into())).unwrap_or_else(|e| panic!("put {key}: {e}"));
    }
}

impl Drop for Moto {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
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
        for (key, _) in std::env::vars_os() {
            if key.to_str().is_some_and(|k| k.starts_with("AWS_")) {
                cmd.env_remove(key);
            }
        }
        let none = self.dir.path().join("none");
        cmd.env("AWS_EC2_METADATA_DISABLED", "true")
            .env("AWS_SHARED_CREDENTIALS_FILE", none.join("credentials"))
            .env("AWS_CONFIG_FILE", none.join("config"))
            .env("DVC_GLOBAL_CONFIG_DIR", &none)
            .env("DVC_SYSTEM_CONFIG_DIR", &none)
            .env("DVC_NO_ANALYTICS", "1");
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
