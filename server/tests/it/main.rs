//! Integration tests of `model-server`, one binary sharing the helpers in `support` and `http`.

mod browser;
mod handlers;
mod http;
mod kserve;
mod predlog;
mod support;
mod swap;
mod tools;
