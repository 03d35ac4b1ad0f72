//! AWS credentials and region for an S3 remote, looked up in the order DVC's botocore uses:
//! the remote's `access_key_id`/`secret_access_key`/`session_token`; the remote's `profile`;
//! `AWS_ACCESS_KEY_ID`/`AWS_SECRET_ACCESS_KEY`/`AWS_SESSION_TOKEN`; the profile named by
//! `AWS_PROFILE` (else `default`) in the shared credentials and config files
//! (`AWS_SHARED_CREDENTIALS_FILE`/`AWS_CONFIG_FILE`, else the remote's
//! `credentialpath`/`configpath`, else `~/.aws/credentials` and `~/.aws/config`).

use std::path::PathBuf;

use super::RemoteError;
use super::config::RemoteConfig;
use super::ini::Ini;

/// Static credentials and where they came from (for error messages, never the secret).
#[derive(Clone, Debug)]
pub struct Credentials {
    pub key_id: String,
    pub secret: String,
    pub token: Option<String>,
    pub from: String,
}

/// What was found: credentials (none means the platform's own: web identity, container or
/// instance metadata) and a region.
#[derive(Clone, Debug)]
pub struct Aws {
    pub credentials: Option<Credentials>,
    pub region: Option<String>,
}

fn env(key: &str) -> Option<String> {
    std::env::var(key).ok().filter(|v| !v.is_empty())
}

/// The shared credentials and config files, loaded.
struct SharedFiles {
    credentials: (PathBuf, Ini),
    config: (PathBuf, Ini),
}

impl SharedFiles {
    fn load(remote: &RemoteConfig) -> Result<SharedFiles, RemoteError> {
        let home = || env("HOME").map(PathBuf::from).unwrap_or_default().join(".aws");
        // The variable first: dvc-s3 only sets it from the option when it is unset.
        let pick = |option: &str, var: &str, name: &str| {
            env(var).map(PathBuf::from).or_else(|| remote.path(option)).unwrap_or_else(|| home().join(name))
        };
        let credentials = pick("credentialpath", "AWS_SHARED_CREDENTIALS_FILE", "credentials");
        let config = pick("configpath", "AWS_CONFIG_FILE", "config");
        Ok(SharedFiles {
            credentials: (credentials.clone(), Ini::load(&credentials)?),
            config: (config.clone(), Ini::load(&config)?),
        })
    }

    /// The section of `profile` in the credentials file, then in the config file.
    fn value(&self, profile: &str, key: &str) -> Option<String> {
        let in_config = if profile == "default" { profile.to_owned() } else { format!("profile {profile}") };
        self.credentials.1.get(profile, key).or_else(|| self.config.1.get(&in_config, key)).map(str::to_owned)
    }

    fn credentials(&self, profile: &str) -> Option<Credentials> {
        let files = [&self.credentials.0, &self.config.0];
        Some(Credentials {
            key_id: self.value(profile, "aws_access_key_id")?,
            secret: self.value(profile, "aws_secret_access_key")?,
            token: self.value(profile, "aws_session_token"),
            from: format!("profile '{profile}' in {} or {}", files[0].display(), files[1].display()),
        })
    }

    fn missing(&self, profile: &str) -> RemoteError {
        RemoteError::NoProfile {
            profile: profile.to_owned(),
            files: format!("{} and {}", self.credentials.0.display(), self.config.0.display()),
        }
    }
}

/// Resolves credentials and region for `remote`.
pub fn resolve(remote: &RemoteConfig) -> Result<Aws, RemoteError> {
    let files = SharedFiles::load(remote)?;
    let name = &remote.name;
    let credentials = match (remote.get("access_key_id"), remote.get("secret_access_key")) {
        (Some(key_id), Some(secret)) => Some(Credentials {
            key_id: key_id.to_owned(),
            secret: secret.to_owned(),
            token: remote.get("session_token").map(str::to_owned),
            from: format!("access_key_id of remote '{name}' in the DVC config"),
        }),
        (Some(_), None) | (None, Some(_)) => {
            return Err(RemoteError::BadOption {
                remote: name.clone(),
                msg: "access_key_id and secret_access_key must be set together".into(),
            });
        }
        (None, None) => None,
    };
    let profile_option = remote.get("profile");
    let credentials = match (credentials, profile_option) {
        (Some(c), _) => Some(c),
        (None, Some(profile)) => Some(files.credentials(profile).ok_or_else(|| files.missing(profile))?),
        (None, None) => match (env("AWS_ACCESS_KEY_ID"), env("AWS_SECRET_ACCESS_KEY")) {
            (Some(key_id), Some(secret)) => Some(Credentials {
                key_id,
                secret,
                token: env("AWS_SESSION_TOKEN"),
                from: "AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY".into(),
            }),
            _ => match env("AWS_PROFILE").or_else(|| env("AWS_DEFAULT_PROFILE")) {
                Some(profile) => Some(files.credentials(&profile).ok_or_else(|| files.missing(&profile))?),
                None => files.credentials("default"),
            },
        },
    };
    let profile = profile_option.map(str::to_owned).or_else(|| env("AWS_PROFILE")).unwrap_or_else(|| "default".into());
    let region = remote
        .get("region")
        .map(str::to_owned)
        .or_else(|| env("AWS_REGION"))
        .or_else(|| env("AWS_DEFAULT_REGION"))
        .or_else(|| files.value(&profile, "region"));
    Ok(Aws { credentials, region })
}
