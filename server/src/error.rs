//! `AppError`: every failure a handler can answer with, as JSON `{"error": "..."}` and the
//! right status. Messages say what was wrong with the request; internal details go to the log.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use gitops::feedback::FeedbackError;
use gitops::image_input::ImageInputError;

#[derive(Debug, thiserror::Error)]
pub enum AppError {
    #[error("{0}")]
    BadRequest(String),
    #[error("malformed JSON: {0}")]
    BadJson(String),
    #[error("{0}")]
    Unauthorized(&'static str),
    #[error("{0}")]
    NotFound(String),
    #[error("{0}")]
    TooLarge(String),
    #[error("{0}")]
    Unsupported(String),
    #[error("{0}")]
    Unprocessable(String),
    #[error("{0}")]
    Conflict(String),
    #[error("the inference queue is full; retry shortly")]
    Busy,
    #[error("{0}")]
    Unavailable(String),
    /// Logged in full; the client sees only `what` failed.
    #[error("{what} failed")]
    Internal { what: &'static str, detail: String },
}

impl AppError {
    pub fn internal(what: &'static str, detail: impl std::fmt::Display) -> Self {
        Self::Internal { what, detail: detail.to_string() }
    }

    pub fn status(&self) -> StatusCode {
        match self {
            Self::BadRequest(_) | Self::BadJson(_) => StatusCode::BAD_REQUEST,
            Self::Unauthorized(_) => StatusCode::UNAUTHORIZED,
            Self::NotFound(_) => StatusCode::NOT_FOUND,
            Self::TooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
            Self::Unsupported(_) => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            Self::Unprocessable(_) => StatusCode::UNPROCESSABLE_ENTITY,
            Self::Conflict(_) => StatusCode::CONFLICT,
            Self::Busy | Self::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
            Self::Internal { .. } => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }
}

impl From<ImageInputError> for AppError {
    fn from(e: ImageInputError) -> Self {
        match e {
            ImageInputError::TooLarge { .. } | ImageInputError::TooManyPixels { .. } => Self::TooLarge(e.to_string()),
            ImageInputError::NotAnImage => Self::Unsupported(e.to_string()),
            ImageInputError::Empty
            | ImageInputError::NoPixels { .. }
            | ImageInputError::Header { .. }
            | ImageInputError::Decode { .. } => Self::BadRequest(e.to_string()),
        }
    }
}

impl From<FeedbackError> for AppError {
    fn from(e: FeedbackError) -> Self {
        match e {
            FeedbackError::InvalidSample { .. } => Self::Unprocessable(e.to_string()),
            FeedbackError::Image(image) => image.into(),
            other => Self::internal("storing the feedback", other),
        }
    }
}

impl IntoResponse for AppError {
    fn into_response(self) -> Response {
        let status = self.status();
        if let Self::Internal { what, detail } = &self {
            tracing::error!(%detail, "{what} failed");
        }
        let mut response = (status, axum::Json(serde_json::json!({ "error": self.to_string() }))).into_response();
        if matches!(self, Self::Busy | Self::Unavailable(_)) {
            response.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
        }
        response
    }
}
