//! The HTTP handlers, one module per group of routes.

pub mod admin;
pub mod assets;
mod auth;
pub mod feedback;
pub mod health;
pub mod kserve;
pub mod models;
pub mod predict;
pub mod review;
pub mod status;
