//! Credentials for fetch and push: an HTTPS token from the environment, the SSH agent, or
//! git's default helper, each offered once so that a bad credential fails with a clear
//! message instead of git2 asking again forever.

use std::cell::Cell;

use git2::{Cred, CredentialType, RemoteCallbacks};

/// Where credentials come from.
#[derive(Debug, Clone, Default)]
pub struct Credentials {
    /// Token for HTTPS remotes (sent as user `x-access-token`).
    pub token: Option<String>,
}

impl Credentials {
    /// The token from the environment ([`crate::token::TOKEN_VARS`]).
    pub fn from_env() -> Self {
        Self { token: crate::token::from_env() }
    }

    /// Callbacks that offer each kind of credential once; `failure` records why they ran out.
    pub(crate) fn callbacks<'a>(&'a self, failure: &'a Cell<Option<String>>) -> RemoteCallbacks<'a> {
        let mut callbacks = RemoteCallbacks::new();
        let tried = Cell::new(CredentialType::empty());
        callbacks.credentials(move |url, username, allowed| {
            let offer = |kind: CredentialType| allowed.contains(kind) && !tried.get().contains(kind);
            if offer(CredentialType::USER_PASS_PLAINTEXT) && self.token.is_some() {
                tried.set(tried.get() | CredentialType::USER_PASS_PLAINTEXT);
                Cred::userpass_plaintext("x-access-token", self.token.as_deref().unwrap_or_default())
            } else if offer(CredentialType::SSH_KEY) {
                tried.set(tried.get() | CredentialType::SSH_KEY);
                Cred::ssh_key_from_agent(username.unwrap_or("git"))
            } else if offer(CredentialType::DEFAULT) {
                tried.set(tried.get() | CredentialType::DEFAULT);
                Cred::default()
            } else {
                let reason = if tried.get().is_empty() {
                    format!("no credentials for {url}: set {} or start an SSH agent", crate::token::var_list())
                } else {
                    format!(
                        "the credentials for {url} were rejected (token from {} or the SSH agent)",
                        crate::token::var_list()
                    )
                };
                failure.set(Some(reason.clone()));
                Err(git2::Error::from_str(&reason))
            }
        });
        callbacks
    }
}
