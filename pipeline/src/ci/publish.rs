//! `pipeline ci publish`: after the DAG, commits what it changed (dvc.lock, and models/ and
//! new_data/ if promote left anything uncommitted) with `[skip ci]`, then pushes with git2,
//! fetching and replaying our commits when the branch moved meanwhile.

use std::path::Path;

use super::CiError;
use crate::release::Decision;
use gitops::git::{self, Credentials, PushOutcome, Rebase};

pub fn publish(repo: &Path) -> Result<Option<PushOutcome>, CiError> {
    let decision: Option<Decision> =
        std::fs::read(repo.join(crate::paths::DECISION)).ok().and_then(|b| serde_json::from_slice(&b).ok());
    let title = match &decision {
        Some(d) if d.promoted => format!("Retrain: {} promoted", d.candidate.as_deref().unwrap_or("candidate")),
        Some(d) => format!("Retrain: rejected, {} keeps serving", d.serving_before),
        None => "Retrain: pipeline state".to_string(),
    };
    let paths: Vec<&Path> =
        ["dvc.lock", "models", "new_data"].iter().map(Path::new).filter(|p| repo.join(p).exists()).collect();
    git::commit_paths(repo, &paths, &format!("{title} [skip ci]"))?;
    let params = gitops::params::Params::load(repo).map_err(crate::release::ReleaseError::from)?.git;
    let has_remote = git2::Repository::open(repo).is_ok_and(|r| r.find_remote(&params.remote).is_ok());
    if !has_remote || !params.push {
        return Ok(None);
    }
    Ok(Some(git::push_with_retry(repo, &params, &Credentials::from_env(), &mut Rebase)?))
}
