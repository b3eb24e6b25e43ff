//! What can go wrong when talking to the Hub, as one error type for the layers above.
//!
//! Every failure the client reports is a [`HubError`]: the Hub's classification (`X-Error-Code`,
//! status, message, hub-api.md §7) mapped to a variant the filesystem can turn into an errno,
//! plus transport failures (network, timeouts, unexpected answers). Messages are one line,
//! meant for users, and never contain the token or the query string of a signed URL.

use std::time::Duration;

use reqwest::header::HeaderMap;
use reqwest::StatusCode;
use url::Url;

use super::auth::Token;

/// A failed Hub operation.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum HubError {
    /// The repo does not exist, or is private and the token cannot see it (the Hub answers the
    /// same for both on purpose).
    #[error("repository {repo} not found (or private and not visible with this token)")]
    RepoNotFound { repo: String },
    #[error("revision {revision:?} not found in {repo}")]
    RevisionNotFound { repo: String, revision: String },
    #[error("{path:?} not found in {repo}@{revision}")]
    EntryNotFound {
        repo: String,
        revision: String,
        path: String,
    },
    /// 401 to an anonymous request: the repo is private, gated or missing.
    #[error("{target}: authentication required (private, gated or missing repo); set HF_TOKEN or pass --token-file")]
    AuthRequired { target: String },
    /// 401 to a request that carried a token.
    #[error("the Hub refused the token (invalid or expired); check HF_TOKEN or the token file")]
    InvalidToken,
    #[error("{target}: access forbidden: {message}")]
    Forbidden { target: String, message: String },
    #[error("{repo} is gated: request access on the Hub and use a token that has been granted it")]
    Gated { repo: String },
    /// 412 on a commit: the branch head is no longer the commit's `parentCommit`.
    #[error("the branch moved since the parent commit: {message}")]
    Conflict { message: String },
    /// 409: a repo, branch or tag with this name already exists.
    #[error("{target} already exists: {message}")]
    AlreadyExists { target: String, message: String },
    #[error("rate limited by the Hub{}", retry_after.map(|d| format!(" (retry after {} s)", d.as_secs())).unwrap_or_default())]
    RateLimited { retry_after: Option<Duration> },
    #[error("Hub server error {status} on {target}: {message}")]
    Server {
        status: u16,
        target: String,
        message: String,
    },
    #[error("network error on {target}: {message}")]
    Network { target: String, message: String },
    #[error("{target}: no progress within {} ms", after.as_millis())]
    Timeout { target: String, after: Duration },
    /// The Hub answered something this client cannot use (bad JSON, missing header, wrong range).
    #[error("unexpected answer on {target}: {message}")]
    Protocol { target: String, message: String },
    #[error("invalid input: {message}")]
    InvalidInput { message: String },
    /// A commit POST failed after the request may have reached the Hub: it may or may not
    /// have landed. Resolve it by reading the branch head (the commit's `parentCommit` makes a
    /// retry safe: a landed commit turns the retry into a 412).
    #[error("commit outcome unknown ({cause}); check the branch head before retrying")]
    CommitUnknown { cause: String },
}

impl HubError {
    /// Transient failures worth another attempt: rate limits, 408 and 5xx gateway/server
    /// errors, network failures and timeouts.
    pub fn is_retryable(&self) -> bool {
        match self {
            HubError::RateLimited { .. } | HubError::Network { .. } | HubError::Timeout { .. } => {
                true
            }
            HubError::Server { status, .. } => is_retryable_status(*status),
            _ => false,
        }
    }

    /// The repo, revision or path does not exist (or is not visible).
    pub fn is_not_found(&self) -> bool {
        matches!(
            self,
            HubError::RepoNotFound { .. }
                | HubError::RevisionNotFound { .. }
                | HubError::EntryNotFound { .. }
        )
    }

    pub(crate) fn protocol(target: &str, message: impl Into<String>) -> HubError {
        HubError::Protocol {
            target: target.to_string(),
            message: message.into(),
        }
    }

    pub(crate) fn invalid(message: impl Into<String>) -> HubError {
        HubError::InvalidInput {
            message: message.into(),
        }
    }
}

/// Statuses a client retries (hub-api.md §7.4): 408, 429, 500, 502, 503, 504.
pub fn is_retryable_status(status: u16) -> bool {
    matches!(status, 408 | 429 | 500 | 502 | 503 | 504)
}

/// What a request was about, so an error can name the repo, revision and path.
#[derive(Debug, Clone, Default)]
pub(crate) struct ErrorContext {
    pub repo: Option<String>,
    pub revision: Option<String>,
    pub path: Option<String>,
    /// Whether the request carried a token (401 then means "bad token", not "log in").
    pub authenticated: bool,
    /// Short description used when no repo is involved, e.g. `whoami`.
    pub label: Option<String>,
}

impl ErrorContext {
    pub fn label(label: &str) -> ErrorContext {
        ErrorContext {
            label: Some(label.to_string()),
            ..ErrorContext::default()
        }
    }

    /// `repo@rev:path`, or the label: names the target in messages.
    pub fn target(&self) -> String {
        let mut s = match (&self.repo, &self.label) {
            (Some(r), _) => r.clone(),
            (None, Some(l)) => l.clone(),
            (None, None) => "Hub request".to_string(),
        };
        if let Some(rev) = &self.revision {
            s.push('@');
            s.push_str(rev);
        }
        if let Some(p) = self.path.as_deref().filter(|p| !p.is_empty()) {
            s.push(':');
            s.push_str(p);
        }
        s
    }

    fn repo_name(&self) -> String {
        self.repo.clone().unwrap_or_else(|| self.target())
    }
}

/// Maps an error answer (status ≥ 400) of the Hub to a [`HubError`], following
/// huggingface_hub's classification order (hub-api.md §7.1–7.3).
pub(crate) fn from_response(
    status: StatusCode,
    headers: &HeaderMap,
    body: &[u8],
    ctx: &ErrorContext,
    token: Option<&Token>,
    retry_after: Option<Duration>,
) -> HubError {
    let code = headers
        .get("x-error-code")
        .and_then(|v| v.to_str().ok())
        .map(str::trim);
    let message = server_message(headers, body, token).unwrap_or_else(|| {
        status
            .canonical_reason()
            .unwrap_or("no message")
            .to_string()
    });
    let target = ctx.target();
    let revision = || ctx.revision.clone().unwrap_or_else(|| "main".to_string());
    match (status.as_u16(), code) {
        (_, Some("RevisionNotFound")) => HubError::RevisionNotFound {
            repo: ctx.repo_name(),
            revision: revision(),
        },
        (_, Some("EntryNotFound")) => HubError::EntryNotFound {
            repo: ctx.repo_name(),
            revision: revision(),
            path: ctx.path.clone().unwrap_or_default(),
        },
        (_, Some("GatedRepo")) => HubError::Gated {
            repo: ctx.repo_name(),
        },
        // A 401 is about credentials whatever code it carries (the Hub and the emulator may
        // tag an anonymous 401 `RepoNotFound`): the user's fix is a (valid) token.
        (401, _) if ctx.authenticated || message.contains("Invalid credentials") => {
            HubError::InvalidToken
        }
        (401, _) => HubError::AuthRequired { target },
        (_, Some("RepoNotFound")) => HubError::RepoNotFound {
            repo: ctx.repo_name(),
        },
        (403, _) => HubError::Forbidden { target, message },
        (404, _) => match &ctx.path {
            Some(path) if !path.is_empty() => HubError::EntryNotFound {
                repo: ctx.repo_name(),
                revision: revision(),
                path: path.clone(),
            },
            _ => HubError::RepoNotFound {
                repo: ctx.repo_name(),
            },
        },
        (409, _) => HubError::AlreadyExists { target, message },
        (412, _) => HubError::Conflict { message },
        (429, _) => HubError::RateLimited { retry_after },
        (s, _) if s == 408 || s >= 500 => HubError::Server {
            status: s,
            target,
            message,
        },
        (400 | 413 | 422, _) => HubError::InvalidInput {
            message: format!("the Hub refused {target}: {message}"),
        },
        (s, _) => HubError::Protocol {
            target,
            message: format!("HTTP {s}: {message}"),
        },
    }
}

/// The Hub's human message: `X-Error-Message`, else the JSON body's `error` /
/// `error_description` / `errors[].message`, else the first line of a text body. Cut to one
/// short line; the token (should a server ever echo it) is masked.
pub(crate) fn server_message(
    headers: &HeaderMap,
    body: &[u8],
    token: Option<&Token>,
) -> Option<String> {
    let from_header = headers
        .get("x-error-message")
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    let raw = from_header.or_else(|| json_message(body)).or_else(|| {
        let text = String::from_utf8_lossy(body);
        let line = text.lines().map(str::trim).find(|l| !l.is_empty())?;
        Some(line.to_string())
    })?;
    let mut one_line: String = raw.split_whitespace().collect::<Vec<_>>().join(" ");
    if let Some(t) = token {
        if !t.secret().is_empty() {
            one_line = one_line.replace(t.secret(), "hf_***");
        }
    }
    const MAX: usize = 300;
    if one_line.len() > MAX {
        let mut cut = MAX;
        while !one_line.is_char_boundary(cut) {
            cut -= 1;
        }
        one_line.truncate(cut);
        one_line.push('…');
    }
    (!one_line.is_empty()).then_some(one_line)
}

fn json_message(body: &[u8]) -> Option<String> {
    let v: serde_json::Value = serde_json::from_slice(body).ok()?;
    let as_text = |v: &serde_json::Value| -> Option<String> {
        match v {
            serde_json::Value::String(s) => Some(s.clone()),
            serde_json::Value::Array(items) => Some(
                items
                    .iter()
                    .filter_map(|i| i.as_str().map(str::to_string))
                    .collect::<Vec<_>>()
                    .join("; "),
            ),
            _ => None,
        }
    };
    if let Some(msg) = v.get("error").and_then(as_text) {
        return match v.get("error_description").and_then(|d| d.as_str()) {
            Some(d) => Some(format!("{msg}: {d}")),
            None => Some(msg),
        };
    }
    let errors = v.get("errors")?.as_array()?;
    let msgs: Vec<&str> = errors
        .iter()
        .filter_map(|e| e.get("message").and_then(|m| m.as_str()))
        .collect();
    (!msgs.is_empty()).then(|| msgs.join("; "))
}

/// A URL fit for logs and messages: signed CDN URLs carry credentials in their query string,
/// so only scheme, host, port and path are kept.
pub(crate) fn redact_url(url: &Url) -> String {
    let mut u = url.clone();
    u.set_query(None);
    u.set_fragment(None);
    // Credentials in the authority are not expected, but never print them either.
    let _ = u.set_password(None);
    let _ = u.set_username("");
    u.to_string()
}

/// Turns a transport error into a [`HubError`]. reqwest's own message embeds the full URL
/// (signed query included), so the URL is stripped and the cause chain kept instead.
pub(crate) fn from_transport(err: reqwest::Error, target: &str, timeout: Duration) -> HubError {
    if err.is_timeout() {
        return HubError::Timeout {
            target: target.to_string(),
            after: timeout,
        };
    }
    let kind = if err.is_connect() {
        "cannot connect"
    } else if err.is_body() || err.is_decode() {
        "connection failed while reading the body"
    } else if err.is_request() {
        "request failed"
    } else {
        "transport error"
    };
    let err = err.without_url();
    let mut message = kind.to_string();
    let mut cause: Option<&dyn std::error::Error> = Some(&err);
    while let Some(c) = cause {
        let text = c.to_string();
        if !message.contains(&text) {
            message.push_str(": ");
            message.push_str(&text);
        }
        cause = c.source();
    }
    HubError::Network {
        target: target.to_string(),
        message,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use reqwest::header::HeaderValue;

    fn ctx() -> ErrorContext {
        ErrorContext {
            repo: Some("ns/repo".into()),
            revision: Some("main".into()),
            path: Some("a/b.txt".into()),
            authenticated: false,
            label: None,
        }
    }

    fn map(status: u16, code: Option<&str>, body: &str, ctx: &ErrorContext) -> HubError {
        let mut h = HeaderMap::new();
        if let Some(c) = code {
            h.insert("x-error-code", HeaderValue::from_str(c).unwrap());
        }
        from_response(
            StatusCode::from_u16(status).unwrap(),
            &h,
            body.as_bytes(),
            ctx,
            None,
            None,
        )
    }

    #[test]
    fn error_codes_win_over_status() {
        assert!(matches!(
            map(404, Some("RevisionNotFound"), "", &ctx()),
            HubError::RevisionNotFound { .. }
        ));
        assert!(matches!(
            map(404, Some("EntryNotFound"), "", &ctx()),
            HubError::EntryNotFound { .. }
        ));
        assert!(matches!(
            map(401, Some("GatedRepo"), "", &ctx()),
            HubError::Gated { .. }
        ));
        assert!(matches!(
            map(403, Some("GatedRepo"), "", &ctx()),
            HubError::Gated { .. }
        ));
        assert!(matches!(
            map(404, Some("RepoNotFound"), "", &ctx()),
            HubError::RepoNotFound { .. }
        ));
    }

    #[test]
    fn unauthorized_depends_on_token() {
        let body = r#"{"error":"Invalid username or password."}"#;
        assert!(matches!(
            map(401, None, body, &ctx()),
            HubError::AuthRequired { .. }
        ));
        let authed = ErrorContext {
            authenticated: true,
            ..ctx()
        };
        assert_eq!(map(401, None, body, &authed), HubError::InvalidToken);
        let bad = r#"{"error":"Invalid credentials in Authorization header"}"#;
        assert_eq!(map(401, None, bad, &ctx()), HubError::InvalidToken);
        // An anonymous 401 tagged RepoNotFound still asks for a token.
        assert!(matches!(
            map(401, Some("RepoNotFound"), body, &ctx()),
            HubError::AuthRequired { .. }
        ));
    }

    #[test]
    fn statuses_without_code() {
        assert!(matches!(
            map(404, None, "Entry not found", &ctx()),
            HubError::EntryNotFound { .. }
        ));
        let no_path = ErrorContext {
            path: None,
            ..ctx()
        };
        assert!(matches!(
            map(404, None, "", &no_path),
            HubError::RepoNotFound { .. }
        ));
        assert!(matches!(
            map(403, None, "", &ctx()),
            HubError::Forbidden { .. }
        ));
        assert!(matches!(
            map(412, None, "", &ctx()),
            HubError::Conflict { .. }
        ));
        assert!(matches!(
            map(409, None, "", &ctx()),
            HubError::AlreadyExists { .. }
        ));
        assert!(matches!(
            map(429, None, "", &ctx()),
            HubError::RateLimited { .. }
        ));
        assert!(matches!(
            map(422, None, "", &ctx()),
            HubError::InvalidInput { .. }
        ));
        let e = map(503, None, "", &ctx());
        assert!(matches!(e, HubError::Server { status: 503, .. }));
        assert!(e.is_retryable());
        assert!(!map(501, None, "", &ctx()).is_retryable());
        assert!(map(408, None, "", &ctx()).is_retryable());
        assert!(!map(404, None, "", &ctx()).is_retryable());
        assert!(map(404, None, "", &ctx()).is_not_found());
    }

    #[test]
    fn messages_from_every_body_shape() {
        let h = HeaderMap::new();
        let m = |b: &str| server_message(&h, b.as_bytes(), None);
        assert_eq!(m(r#"{"error":"boom"}"#).as_deref(), Some("boom"));
        assert_eq!(m(r#"{"error":["a","b"]}"#).as_deref(), Some("a; b"));
        assert_eq!(
            m(r#"{"error":"invalid_grant","error_description":"expired"}"#).as_deref(),
            Some("invalid_grant: expired")
        );
        assert_eq!(
            m(r#"{"errors":[{"message":"x"},{"message":"y"}]}"#).as_deref(),
            Some("x; y")
        );
        assert_eq!(
            m("\n  Entry not found\nmore").as_deref(),
            Some("Entry not found")
        );
        assert_eq!(m(""), None);
        let mut h2 = HeaderMap::new();
        h2.insert("x-error-message", HeaderValue::from_static("from header"));
        assert_eq!(
            server_message(&h2, b"{\"error\":\"body\"}", None).as_deref(),
            Some("from header")
        );
        let long = "x".repeat(1000);
        assert!(m(&long).unwrap().chars().count() <= 301);
    }

    #[test]
    fn messages_never_carry_the_token() {
        let token = Token::new("hf_supersecret").unwrap();
        let h = HeaderMap::new();
        let msg = server_message(
            &h,
            b"{\"error\":\"bad token hf_supersecret\"}",
            Some(&token),
        );
        assert_eq!(msg.as_deref(), Some("bad token hf_***"));
    }

    #[test]
    fn urls_lose_their_query() {
        let u = Url::parse("http://user:pw@cdn.example:8080/blob/abc?Expires=1&Signature=zz#f")
            .unwrap();
        assert_eq!(redact_url(&u), "http://cdn.example:8080/blob/abc");
    }

    #[test]
    fn messages_are_one_line() {
        let e = HubError::RateLimited {
            retry_after: Some(Duration::from_secs(7)),
        };
        assert_eq!(e.to_string(), "rate limited by the Hub (retry after 7 s)");
        let e = HubError::EntryNotFound {
            repo: "ns/r".into(),
            revision: "main".into(),
            path: "x y".into(),
        };
        assert_eq!(e.to_string(), "\"x y\" not found in ns/r@main");
        assert!(!HubError::InvalidToken.to_string().contains('\n'));
    }
}
