//! The `s3://bucket/path` backend: an `object_store` S3 client set up from the remote's DVC
//! options (`endpointurl`, `region`, credentials through [`super::aws`]) with retries and
//! backoff, and S3's error codes turned into messages that say what to fix.

use std::error::Error as _;
use std::time::Duration;

use object_store::aws::{AmazonS3, AmazonS3Builder};
use object_store::client::{HttpError, HttpErrorKind};
use object_store::{BackoffConfig, ClientOptions, ObjectStore, RetryConfig};

use super::config::RemoteConfig;
use super::{Backend, RemoteError, aws};

/// Options of a DVC S3 remote this backend applies. `jobs` and `verify` are read by the
/// transfers, which always verify what they download.
const OPTIONS: &[&str] = &[
    "endpointurl",
    "region",
    "profile",
    "credentialpath",
    "configpath",
    "access_key_id",
    "secret_access_key",
    "session_token",
    "allow_anonymous_login",
    "jobs",
    "verify",
];

/// S3 error codes that mean the credentials were refused.
const CREDENTIAL_CODES: &[&str] = &[
    "InvalidAccessKeyId",
    "SignatureDoesNotMatch",
    "InvalidToken",
    "ExpiredToken",
    "TokenRefreshRequired",
    "AccessDenied",
    "InvalidClientTokenId",
];

/// An S3 remote.
pub struct S3 {
    store: AmazonS3,
    prefix: String,
    url: String,
    bucket: String,
    endpoint: String,
    remote: String,
    from: String,
}

impl S3 {
    /// Sets up the client for `cfg` (whose url starts with `s3://`); makes no request unless
    /// the bucket's region has to be looked up.
    pub async fn open(cfg: &RemoteConfig) -> Result<S3, RemoteError> {
        if let Some(option) = cfg.options.keys().find(|k| !OPTIONS.contains(&k.as_str())) {
            return Err(RemoteError::UnsupportedOption { remote: cfg.name.clone(), option: option.clone() });
        }
        let rest = cfg.url.strip_prefix("s3://").expect("chosen for its scheme");
        let (bucket, prefix) = rest.split_once('/').unwrap_or((rest, ""));
        if bucket.is_empty() {
            return Err(RemoteError::BadOption {
                remote: cfg.name.clone(),
                msg: format!("no bucket in url '{}'", cfg.url),
            });
        }
        let resolved = aws::resolve(cfg)?;
        let anonymous = cfg.get("allow_anonymous_login").is_some_and(|v| v.eq_ignore_ascii_case("true"));
        let mut builder = match &resolved.credentials {
            Some(c) => {
                let b = AmazonS3Builder::new().with_access_key_id(&c.key_id).with_secret_access_key(&c.secret);
                match &c.token {
                    Some(t) => b.with_token(t),
                    None => b,
                }
            }
            None if anonymous => AmazonS3Builder::new().with_skip_signature(true),
            None if platform_credentials() => AmazonS3Builder::from_env(),
            None => return Err(RemoteError::NoCredentials { url: cfg.url.clone() }),
        };
        let endpoint = cfg.get("endpointurl").map(|e| e.trim_end_matches('/').to_owned());
        let region = match (&resolved.region, &endpoint) {
            (Some(r), _) => r.clone(),
            (None, Some(_)) => "us-east-1".into(),
            // As boto does, ask S3 where the bucket is; a failure shows up at the first request.
            (None, None) => object_store::aws::resolve_bucket_region(bucket, &ClientOptions::default())
                .await
                .unwrap_or_else(|_| "us-east-1".into()),
        };
        if let Some(e) = &endpoint {
            builder = builder.with_endpoint(e).with_allow_http(e.starts_with("http://"));
        }
        let store = builder
            .with_bucket_name(bucket)
            .with_region(&region)
            .with_retry(RetryConfig {
                backoff: BackoffConfig {
                    init_backoff: Duration::from_millis(100),
                    max_backoff: Duration::from_secs(8),
                    base: 2.0,
                },
                max_retries: 6,
                retry_timeout: Duration::from_secs(120),
            })
            .build()
            .map_err(|e| RemoteError::BadOption { remote: cfg.name.clone(), msg: e.to_string() })?;
        Ok(S3 {
            store,
            prefix: prefix.trim_matches('/').to_owned(),
            url: cfg.url.clone(),
            bucket: bucket.to_owned(),
            endpoint: endpoint.unwrap_or_else(|| format!("S3 ({region})")),
            remote: cfg.name.clone(),
            from: resolved.credentials.map_or_else(
                || "the platform's credentials: web identity, container or instance metadata".into(),
                |c| format!("key id {} from {}", c.key_id, c.from),
            ),
        })
    }
}

/// Whether the environment offers credentials of its own (web identity, a container's, or
/// EC2's instance metadata unless `AWS_EC2_METADATA_DISABLED` says not to ask).
fn platform_credentials() -> bool {
    let set = |k: &str| std::env::var_os(k).is_some_and(|v| !v.is_empty());
    set("AWS_WEB_IDENTITY_TOKEN_FILE")
        || set("AWS_CONTAINER_CREDENTIALS_RELATIVE_URI")
        || set("AWS_CONTAINER_CREDENTIALS_FULL_URI")
        || !std::env::var("AWS_EC2_METADATA_DISABLED").is_ok_and(|v| v.eq_ignore_ascii_case("true"))
}

impl Backend for S3 {
    fn store(&self) -> &dyn ObjectStore {
        &self.store
    }

    fn prefix(&self) -> &str {
        &self.prefix
    }

    fn url(&self) -> &str {
        &self.url
    }

    fn explain(&self, err: object_store::Error, what: &'static str, key: &str) -> RemoteError {
        let mut detail = err.to_string();
        let mut source = err.source();
        let mut connect = false;
        while let Some(s) = source {
            connect |= s.downcast_ref::<HttpError>().is_some_and(|h| h.kind() == HttpErrorKind::Connect);
            let text = s.to_string();
            if !detail.contains(&text) {
                detail = format!("{detail}: {text}");
            }
            source = s.source();
        }
        let code = |c: &str| detail.contains(&format!("<Code>{c}</Code>"));
        if code("NoSuchBucket") {
            return RemoteError::NoBucket {
                endpoint: self.endpoint.clone(),
                bucket: self.bucket.clone(),
                remote: self.remote.clone(),
            };
        }
        let refused = CREDENTIAL_CODES.iter().find(|c| code(c)).map(|c| (*c).to_owned()).or_else(|| {
            matches!(err, object_store::Error::PermissionDenied { .. } | object_store::Error::Unauthenticated { .. })
                .then(|| "access denied".to_owned())
        });
        if let Some(code) = refused {
            return RemoteError::Credentials {
                endpoint: self.endpoint.clone(),
                bucket: self.bucket.clone(),
                from: self.from.clone(),
                code,
            };
        }
        if connect {
            return RemoteError::Unreachable { endpoint: self.endpoint.clone(), remote: self.remote.clone(), detail };
        }
        RemoteError::Transfer { what, url: format!("s3://{}/{key}", self.bucket), detail }
    }
}
