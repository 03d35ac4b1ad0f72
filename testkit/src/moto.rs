//! A real S3 endpoint for tests: moto_server (from PyPI, in a cached venv) on a free 127.0.0.1
//! port with IAM auth on, so wrong credentials are refused as S3 refuses them, and DVC with
//! `dvc-s3` (PyPI) to check that what this workspace writes is what DVC reads.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// moto 5.2.1 (and older) checks SigV4 signatures against the decoded query string, so any
/// authenticated `ListObjects` with a `/` in its prefix fails; 5.2.5 does not.
const MOTO: &str = "moto[server]==5.2.5";
/// The DVC the other DVC tests run, with its S3 plugin.
const DVC: &str = "dvc[s3]==3.67.1";

/// The DVC executable, or `None` when python3 is missing and skipping is allowed.
pub fn dvc() -> Option<PathBuf> {
    python3()?;
    Some(crate::venv_tool("dvc-s3-venv", &[DVC], "dvc"))
}

fn python3() -> Option<PathBuf> {
    let found = std::env::split_paths(&std::env::var_os("PATH")?).map(|d| d.join("python3")).find(|p| p.is_file());
    crate::require::present(
        found,
        "python3 on PATH (for moto_server and DVC from PyPI)",
        "install Python 3.9+ with pip",
    )
}

/// Scrubs `cmd` of the AWS settings of the machine running the tests: no `AWS_*` variable
/// from outside, shared credentials and config files looked for in `empty` (a folder without
/// them unless the test writes them), no instance metadata, no global or system DVC config.
pub fn isolate_aws(cmd: &mut Command, empty: &Path) {
    for (key, _) in std::env::vars_os() {
        if key.to_str().is_some_and(|k| k.starts_with("AWS_")) {
            cmd.env_remove(key);
        }
    }
    cmd.env("AWS_EC2_METADATA_DISABLED", "true")
        .env("AWS_SHARED_CREDENTIALS_FILE", empty.join("credentials"))
        .env("AWS_CONFIG_FILE", empty.join("config"))
        .env("DVC_GLOBAL_CONFIG_DIR", empty)
        .env("DVC_SYSTEM_CONFIG_DIR", empty)
        .env("DVC_NO_ANALYTICS", "1");
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
        let server = crate::venv_tool("moto-venv", &[MOTO], "moto_server");
        let python = server.with_file_name("python");
        let port = std::net::TcpListener::bind("127.0.0.1:0").expect("a free port").local_addr().expect("addr").port();
        let mut cmd = Command::new(&server);
        cmd.args(["-H", "127.0.0.1", "-p", &port.to_string()])
            .env("INITIAL_NO_AUTH_ACTION_COUNT", "3")
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        let child = crate::child::die_with_parent(&mut cmd).spawn().expect("start moto_server");
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
    pub fn cpu_seconds(&self) -> f64 {
        let stat = std::fs::read_to_string(format!("/proc/{}/stat", self.child.id())).expect("moto's /proc stat");
        // Fields after the parenthesised name: state is 3rd, utime 14th, stime 15th.
        let fields: Vec<&str> = stat.rsplit_once(')').expect("a stat line").1.split_whitespace().collect();
        let ticks: f64 = fields[11].parse::<f64>().unwrap() + fields[12].parse::<f64>().unwrap();
        ticks / 100.0
    }

    /// Runs Python (botocore, `client(service)` at this endpoint with the user's keys).
    pub fn python(&self, body: &str) -> String {
        let script = format!(
            "import botocore.session\n\
             def client(service):\n    \
                 return botocore.session.get_session().create_client(service, endpoint_url='{}', region_name='us-east-1', aws_access_key_id='{}' or 'setup', aws_secret_access_key='{}' or 'setup')\n\
             {body}\n",
            self.endpoint, self.key_id, self.secret
        );
        crate::run(Command::new(&self.python).arg("-c").arg(script), "botocore against moto")
    }

    pub fn create_bucket(&self, bucket: &str) {
        self.python(&format!("client('s3').create_bucket(Bucket='{bucket}')"));
    }
}

impl Drop for Moto {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
