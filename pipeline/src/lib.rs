//! The orchestration of a GitOps retraining repo that needs no libtorch: the model registry
//! and releases (install, prune, rollback, pin: each a git commit), where the stages' outputs
//! live, the local executor of the repo's GitHub Actions workflows, `pipeline init`'s
//! scaffold, the server's prediction log, the shadow model's figures and gate, and the `pipeline` command over them (and over
//! `gitops` and `repro`). The commands that run a model are `pipeline-model`'s (`stages`
//! crate), which `pipeline` runs for them.

pub mod ci;
pub mod cli;
pub mod paths;
pub mod predlog;
pub mod registry;
pub mod release;
pub mod repo;
pub mod scaffold;
pub mod shadow;
pub mod storage;
