//! No library: this crate holds the end-to-end test of the GitOps loop (`tests/loop_it`), which
//! drives the real `pipeline`, stage and `model-server` binaries of the workspace.
