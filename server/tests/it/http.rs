//! Building requests and reading responses for `oneshot` handler tests.

use axum::Router;
use axum::body::Body;
use axum::http::{HeaderMap, Request, StatusCode};
use http_body_util::BodyExt;
use tower::ServiceExt;

pub struct Reply {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: Vec<u8>,
}

impl Reply {
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {}", String::from_utf8_lossy(&self.body)))
    }

    /// Asserts the status and that the body is `{"error": "..."}`; returns the message.
    pub fn error(&self, status: StatusCode) -> String {
        assert_eq!(self.status, status, "{}", String::from_utf8_lossy(&self.body));
        let json = self.json();
        assert_eq!(json.as_object().map(|o| o.len()), Some(1), "{json}");
        json["error"].as_str().unwrap().to_string()
    }
}

pub async fn send(app: &Router, req: Request<Body>) -> Reply {
    let response = app.clone().oneshot(req).await.unwrap();
    let status = response.status();
    let headers = response.headers().clone();
    let body = response.into_body().collect().await.unwrap().to_bytes().to_vec();
    Reply { status, headers, body }
}

pub fn get(path: &str) -> Request<Body> {
    Request::get(path).body(Body::empty()).unwrap()
}

pub fn post(path: &str, content_type: &str, body: impl Into<Body>) -> Request<Body> {
    Request::post(path).header("content-type", content_type).body(body.into()).unwrap()
}

pub fn post_json(path: &str, value: &serde_json::Value) -> Request<Body> {
    post(path, "application/json", serde_json::to_vec(value).unwrap())
}

pub fn with_token(mut req: Request<Body>, token: &str) -> Request<Body> {
    req.headers_mut().insert("authorization", format!("Bearer {token}").parse().unwrap());
    req
}

/// A multipart/form-data body with a `file` part and text fields.
pub fn multipart(file: Option<&[u8]>, fields: &[(&str, &str)]) -> (String, Vec<u8>) {
    let boundary = "XtestBoundaryX";
    let mut body = Vec::new();
    for (name, value) in fields {
        body.extend(
            format!("--{boundary}\r\ncontent-disposition: form-data; name=\"{name}\"\r\n\r\n{value}\r\n").as_bytes(),
        );
    }
    if let Some(file) = file {
        body.extend(format!("--{boundary}\r\ncontent-disposition: form-data; name=\"file\"; filename=\"d.png\"\r\ncontent-type: image/png\r\n\r\n").as_bytes());
        body.extend(file);
        body.extend(b"\r\n");
    }
    body.extend(format!("--{boundary}--\r\n").as_bytes());
    (format!("multipart/form-data; boundary={boundary}"), body)
}
