//! Error answers in the Hub's shapes (hub-api.md §7): status, `X-Error-Code`,
//! `X-Error-Message` and a JSON `{"error": …}` body, which is what clients classify errors by.

use std::io;

use axum::http::{header, HeaderName, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::{json, Map, Value};

use crate::auth::Caller;

#[derive(Debug)]
pub struct ApiError {
    pub status: StatusCode,
    pub code: Option<&'static str>,
    pub message: String,
    headers: Vec<(HeaderName, HeaderValue)>,
    /// Extra top-level fields of the JSON body (e.g. `url` on 409).
    extra: Map<String, Value>,
}

impl ApiError {
    pub fn new(status: StatusCode, message: impl Into<String>) -> ApiError {
        ApiError {
            status,
            code: None,
            message: message.into(),
            headers: Vec::new(),
            extra: Map::new(),
        }
    }

    pub fn with_code(mut self, code: &'static str) -> ApiError {
        self.code = Some(code);
        self
    }

    pub fn with_header(mut self, name: HeaderName, value: &str) -> ApiError {
        if let Ok(v) = HeaderValue::from_str(value) {
            self.headers.push((name, v));
        }
        self
    }

    pub fn with_field(mut self, key: &str, value: Value) -> ApiError {
        self.extra.insert(key.into(), value);
        self
    }

    /// No or unusable credentials for something that needs them, or a private/missing repo
    /// asked for anonymously (the Hub does not say which).
    pub fn anonymous() -> ApiError {
        ApiError::new(StatusCode::UNAUTHORIZED, "Invalid username or password.").with_header(
            header::WWW_AUTHENTICATE,
            "Bearer realm=\"Authentication required\", charset=\"UTF-8\"",
        )
    }

    /// A token the emulator does not know. Clients must not read this as "repo not found".
    pub fn invalid_credentials() -> ApiError {
        ApiError::new(
            StatusCode::UNAUTHORIZED,
            "Invalid credentials in Authorization header",
        )
    }

    /// A missing repo, or one the caller may not see. Anonymous callers get the Hub's 401;
    /// it also carries `X-Error-Code: RepoNotFound` because huggingface_hub maps a bare 401 to
    /// `RepositoryNotFoundError` only for `https://` endpoints, and the emulator speaks http.
    pub fn repo_not_found(caller: &Caller) -> ApiError {
        match caller {
            Caller::Anonymous => ApiError::anonymous().with_code("RepoNotFound"),
            Caller::User(_) => ApiError::new(StatusCode::NOT_FOUND, "Repository not found")
                .with_code("RepoNotFound"),
        }
    }

    pub fn revision_not_found(rev: &str) -> ApiError {
        ApiError::new(StatusCode::NOT_FOUND, format!("Invalid rev id: {rev}"))
            .with_code("RevisionNotFound")
    }

    pub fn entry_not_found(message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::NOT_FOUND, message).with_code("EntryNotFound")
    }

    pub fn gated(repo: &str, caller: &Caller) -> ApiError {
        let (status, msg) = match caller {
            Caller::Anonymous => (
                StatusCode::UNAUTHORIZED,
                format!("Access to model {repo} is restricted. You must have access to it and be authenticated to access it. Please log in."),
            ),
            Caller::User(_) => (
                StatusCode::FORBIDDEN,
                format!("Access to model {repo} is restricted and you are not in the authorized list."),
            ),
        };
        ApiError::new(status, msg).with_code("GatedRepo")
    }

    pub fn forbidden(message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::FORBIDDEN, message)
    }

    pub fn bad_request(message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::BAD_REQUEST, message)
    }

    pub fn not_found(message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::NOT_FOUND, message)
    }

    pub fn conflict(message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::CONFLICT, message)
    }

    pub fn unprocessable(message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, message)
    }

    /// Relative redirect (used for non-canonical repo id casing), as the Hub does.
    pub fn redirect(location: &str) -> ApiError {
        ApiError::new(
            StatusCode::TEMPORARY_REDIRECT,
            format!("Temporary Redirect. Redirecting to {location}"),
        )
        .with_header(header::LOCATION, location)
    }
}

impl From<io::Error> for ApiError {
    fn from(e: io::Error) -> ApiError {
        tracing::error!("storage error: {e}");
        ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "Internal Error")
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let mut body = self.extra;
        body.insert("error".into(), json!(self.message));
        let mut resp = (self.status, axum::Json(Value::Object(body))).into_response();
        let h = resp.headers_mut();
        if let Some(code) = self.code {
            h.insert("x-error-code", HeaderValue::from_static(code));
        }
        // Header values must be visible ASCII: replace anything else.
        let ascii: String = self
            .message
            .chars()
            .map(|c| {
                if c.is_ascii() && !c.is_ascii_control() {
                    c
                } else {
                    '?'
                }
            })
            .collect();
        if let Ok(v) = HeaderValue::from_str(&ascii) {
            h.insert("x-error-message", v);
        }
        for (k, v) in self.headers {
            h.insert(k, v);
        }
        resp
    }
}

pub type ApiResult<T> = Result<T, ApiError>;
