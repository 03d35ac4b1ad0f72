//! `RemoteError`: what can go wrong while pushing to or pulling from a DVC remote. Each
//! message names the remote, bucket, endpoint, object or file involved and what to fix.

use std::path::PathBuf;

/// A failed push or pull.
#[derive(Debug, thiserror::Error)]
pub enum RemoteError {
    #[error(transparent)]
    Repo(#[from] crate::Error),
    #[error("{path}:{line}: {msg}")]
    Config { path: PathBuf, line: usize, msg: String },
    #[error(
        "no default DVC remote: set one with `dvc remote add -d NAME s3://BUCKET/PATH` (core.remote in {}), or name one with --remote",
        config.display()
    )]
    NoRemote { config: PathBuf },
    #[error("remote '{name}' is not defined in {}: add it with `dvc remote add {name} s3://BUCKET/PATH`", config.display())]
    UnknownRemote { name: String, config: PathBuf },
    #[error("remote '{remote}' has no url: set it with `dvc remote modify {remote} url s3://BUCKET/PATH`")]
    NoUrl { remote: String },
    #[error(
        "remote '{remote}' is '{url}': only s3:// remotes are supported (S3 or any S3-compatible store via endpointurl)"
    )]
    UnsupportedScheme { remote: String, url: String },
    #[error("remote '{remote}': option '{option}' is not supported here; remove it or use `dvc push`/`dvc pull`")]
    UnsupportedOption { remote: String, option: String },
    #[error("remote '{remote}': {msg}")]
    BadOption { remote: String, msg: String },
    #[error("AWS profile '{profile}' not found (or it holds no aws_access_key_id/aws_secret_access_key) in {files}")]
    NoProfile { profile: String, files: String },
    #[error(
        "no AWS credentials for {url}: set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, AWS_PROFILE with ~/.aws/credentials, or the remote's access_key_id/secret_access_key (`dvc remote modify --local`)"
    )]
    NoCredentials { url: String },
    #[error(
        "{endpoint} refused the credentials ({from}) for bucket '{bucket}': {code}. Fix AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY/AWS_SESSION_TOKEN, the profile in AWS_PROFILE or the remote's `profile`, or the remote's access_key_id/secret_access_key in .dvc/config.local"
    )]
    Credentials { endpoint: String, bucket: String, from: String, code: String },
    #[error(
        "bucket '{bucket}' does not exist at {endpoint}: create it, or fix the url of remote '{remote}' (`dvc remote modify {remote} url s3://BUCKET/PATH`) or its endpointurl"
    )]
    NoBucket { endpoint: String, bucket: String, remote: String },
    #[error("cannot reach {endpoint} for remote '{remote}': {detail}. Check the remote's endpointurl and the network")]
    Unreachable { endpoint: String, remote: String, detail: String },
    #[error("{what} {url}: {detail}")]
    Transfer { what: &'static str, url: String, detail: String },
    #[error("{url} has md5 {actual}, not {expected}: the remote object is corrupt, so it was not put in the cache")]
    Corrupt { url: String, expected: String, actual: String },
    #[error(
        "{} object(s) are not in the local cache, so they were not pushed (everything else was): {}. Rebuild them with `pipeline repro` or fetch them where they exist",
        oids.len(), oids.join(", ")
    )]
    MissingLocal { oids: Vec<String> },
    #[error("{} object(s) are missing from remote '{remote}' ({url}): {}. Push them from a clone that has them", oids.len(), oids.join(", "))]
    MissingRemote { remote: String, url: String, oids: Vec<String> },
    #[error("'{path}' is not an out of dvc.lock or of a .dvc file, so there is nothing to pull for it")]
    NotTracked { path: String },
    #[error("checkout failed for {}: their objects are missing", paths.join(", "))]
    CheckoutFailed { paths: Vec<String> },
    #[error("Can't remove the following unsaved files without confirmation. Use `--force` to force.\n{}", paths.join("\n"))]
    Unsaved { paths: Vec<String> },
    #[error("{}: {msg}", file.display())]
    DvcFile { file: PathBuf, msg: String },
    #[error("cannot start the transfer runtime: {0}")]
    Runtime(#[source] std::io::Error),
}
