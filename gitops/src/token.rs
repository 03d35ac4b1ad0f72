//! The one list of environment variables a GitHub token is read from, in order, shared by
//! git's HTTPS credentials (fetch and push) and the `github` trigger (the API), so one token
//! set under any of these names serves both.

/// Environment variables read for the token, in order; the first non-empty one wins.
pub const TOKEN_VARS: [&str; 3] = ["GITHUB_TOKEN", "GH_TOKEN", "GIT_TOKEN"];

/// The token from the environment.
pub fn from_env() -> Option<String> {
    from_lookup(|var| std::env::var(var).ok())
}

/// The token from `lookup` (the environment, in [`from_env`]): the first non-empty value of
/// [`TOKEN_VARS`].
pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Option<String> {
    TOKEN_VARS.iter().find_map(|var| lookup(var).filter(|v| !v.is_empty()))
}

/// The variables as a message lists them: `GITHUB_TOKEN, GH_TOKEN or GIT_TOKEN`.
pub fn var_list() -> String {
    let (last, rest) = TOKEN_VARS.split_last().expect("a non-empty list");
    format!("{} or {last}", rest.join(", "))
}
