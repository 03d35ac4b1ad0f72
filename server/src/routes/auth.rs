//! Bearer tokens for the admin and feedback routes, compared in constant time.

use axum::http::HeaderMap;
use axum::http::header::AUTHORIZATION;

use crate::error::AppError;

/// Passes when no token is configured, or when `Authorization: Bearer <token>` matches.
pub fn check(headers: &HeaderMap, expected: Option<&str>) -> Result<(), AppError> {
    let Some(expected) = expected else { return Ok(()) };
    let given = headers
        .get(AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer ").or_else(|| v.strip_prefix("bearer ")))
        .ok_or(AppError::Unauthorized("this route needs `Authorization: Bearer <token>`"))?;
    let same = given.len() == expected.len()
        && given.bytes().zip(expected.bytes()).fold(0u8, |acc, (a, b)| acc | (a ^ b)) == 0;
    if same { Ok(()) } else { Err(AppError::Unauthorized("the bearer token is wrong")) }
}
