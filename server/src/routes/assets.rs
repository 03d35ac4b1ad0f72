//! The web UI, embedded in the binary: `GET /` is `assets/index.html`, `GET /assets/{file}`
//! the rest, each with the content type of its extension.

use axum::extract::Path;
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};

use crate::error::AppError;

#[derive(rust_embed::Embed)]
#[folder = "assets/"]
struct Assets;

pub async fn index() -> Result<Response, AppError> {
    serve("index.html")
}

pub async fn asset(Path(file): Path<String>) -> Result<Response, AppError> {
    serve(&file)
}

fn serve(name: &str) -> Result<Response, AppError> {
    let file = Assets::get(name).ok_or_else(|| AppError::NotFound(format!("no asset named {name}")))?;
    let mime = file.metadata.mimetype();
    let mime = if mime.starts_with("text/") || mime == "application/javascript" {
        format!("{mime}; charset=utf-8")
    } else {
        mime.to_string()
    };
    let mut response = file.data.into_owned().into_response();
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_str(&mime).unwrap_or(HeaderValue::from_static("application/octet-stream")),
    );
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    Ok(response)
}
