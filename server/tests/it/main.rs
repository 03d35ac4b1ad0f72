//! Integration tests of `model-server`, one binary sharing the helpers in `support` and `http`.

#[macro_use]
mod support;
mod browser;
mod drift;
mod gitsync;
mod handlers;
mod hardening;
mod http;
mod kserve;
mod predlog;
mod review;
mod shadow;
mod sigterm;
mod snapshots;
mod soak;
mod swap;
mod tools;
