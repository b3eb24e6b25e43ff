//! What every API handler needs to know about the request: who calls, the origin to build
//! absolute URLs with (hub-api.md §11.10), the method, headers and query parameters.

use axum::http::request::Parts;
use axum::http::{header, HeaderMap, Method};

use crate::auth::Caller;

pub struct Ctx {
    pub caller: Caller,
    /// `http://host:port` as the client addressed us.
    pub origin: String,
    /// Host name (without port) the client used.
    pub hostname: String,
    pub method: Method,
    pub headers: HeaderMap,
    /// Raw (encoded) path and query.
    pub path: String,
    pub raw_query: Option<String>,
    pub query: Vec<(String, String)>,
}

impl Ctx {
    pub fn new(parts: &Parts, caller: Caller, fallback_host: &str) -> Ctx {
        let host = parts
            .headers
            .get(header::HOST)
            .and_then(|h| h.to_str().ok())
            .unwrap_or(fallback_host)
            .to_string();
        let hostname = match host.rsplit_once(':') {
            Some((h, port)) if port.bytes().all(|b| b.is_ascii_digit()) => h.to_string(),
            _ => host.clone(),
        };
        let raw_query = parts.uri.query().map(str::to_string);
        let query = raw_query
            .as_deref()
            .map(|q| form_urlencoded::parse(q.as_bytes()).into_owned().collect())
            .unwrap_or_default();
        Ctx {
            caller,
            origin: format!("http://{host}"),
            hostname,
            method: parts.method.clone(),
            headers: parts.headers.clone(),
            path: parts.uri.path().to_string(),
            raw_query,
            query,
        }
    }

    /// Last value of a query parameter.
    pub fn q(&self, key: &str) -> Option<&str> {
        self.query
            .iter()
            .rev()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }

    pub fn q_all(&self, key: &str) -> Vec<&str> {
        self.query
            .iter()
            .filter(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
            .collect()
    }

    /// A boolean query flag: `true`, `1`, `yes` in any case.
    pub fn flag(&self, key: &str) -> bool {
        self.q(key)
            .is_some_and(|v| matches!(v.to_ascii_lowercase().as_str(), "true" | "1" | "yes"))
    }

    pub fn is_read(&self) -> bool {
        self.method == Method::GET || self.method == Method::HEAD
    }

    /// The absolute URL of this request's path with `query` (for `Link: rel="next"`).
    pub fn url_with_query(&self, query: &[(String, String)]) -> String {
        let q = form_urlencoded::Serializer::new(String::new())
            .extend_pairs(query.iter().map(|(k, v)| (k.as_str(), v.as_str())))
            .finish();
        format!("{}{}?{q}", self.origin, self.path)
    }

    /// `Link` header value pointing at the same request with `key` set to `value`.
    pub fn next_link(&self, key: &str, value: &str) -> String {
        let mut q: Vec<(String, String)> = self
            .query
            .iter()
            .filter(|(k, _)| k != key)
            .cloned()
            .collect();
        q.push((key.to_string(), value.to_string()));
        format!("<{}>; rel=\"next\"", self.url_with_query(&q))
    }
}
