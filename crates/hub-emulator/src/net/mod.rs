//! The network layer between sockets and the API: request classes, counters, latency and
//! bandwidth shaping, fault injection. Control routes (`/_emulator/…`) bypass all of it.

pub mod body;
pub mod faults;
pub mod shaping;
pub mod stats;

use std::sync::Arc;

use axum::body::HttpBody;
use axum::extract::{Request, State};
use axum::http::{header, HeaderValue, Method, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use body::{wrap, BodyPlan};
use faults::{Faults, Injection};
use shaping::{Bucket, Shaping};
use stats::Stats;

/// Which listener a connection came in on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Listener {
    Hub,
    Cdn,
}

/// Per-connection context, put into every request's extensions by the accept loop.
#[derive(Clone)]
pub struct ConnCtx {
    pub listener: Listener,
    pub bucket: Arc<Bucket>,
}

/// Marker a handler puts on a response whose body is file content (counted in `bytes_served`).
#[derive(Debug, Clone, Copy)]
pub struct ContentBody;

/// Marker of a response whose body is xorb bytes from the CAS (counted in `cas_bytes_served`).
#[derive(Debug, Clone, Copy)]
pub struct CasBody;

/// The route classes a request belongs to (for counters and fault selection).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Class {
    /// Resolve HEAD/GET and CDN GET: file bytes and their metadata.
    pub content: bool,
    pub resolve: bool,
    pub cdn: bool,
    /// Everything on the Hub listener that is not resolve (incl. commits, LFS batch/verify).
    pub api: bool,
    pub commit: bool,
    /// LFS PUTs, multipart parts and completion.
    pub upload: bool,
    /// Xet CAS API routes and grant uploads (`/cas/…` on the CDN listener, not xorb fetches
    /// or the bridge).
    pub cas: bool,
    /// Signed xorb fetches (`GET /cas/xorb/…`).
    pub xorb: bool,
}

pub fn classify(listener: Listener, method: &Method, path: &str) -> Class {
    let mut c = Class::default();
    match listener {
        // The bridge serves file bytes like the LFS CDN does.
        Listener::Cdn if path.starts_with("/cas/bridge/") => {
            c.cdn = true;
            c.content = true;
        }
        Listener::Cdn if path.starts_with("/cas/xorb/") => c.xorb = true,
        Listener::Cdn if path.starts_with("/cas/") => c.cas = true,
        Listener::Cdn if method == Method::PUT => c.upload = true,
        Listener::Cdn => {
            c.cdn = true;
            c.content = true;
        }
        Listener::Hub if !path.starts_with("/api/") && path.contains("/resolve/") => {
            c.resolve = true;
            c.content = true;
        }
        Listener::Hub => {
            c.api = true;
            c.upload = path.contains(".git/info/lfs/objects/complete/");
            c.commit =
                method == Method::POST && path.starts_with("/api/") && path.contains("/commit/");
        }
    }
    c
}

pub struct NetState {
    pub stats: Arc<Stats>,
    pub shaping: Arc<Shaping>,
    pub faults: Faults,
}

pub fn is_control(path: &str) -> bool {
    path.starts_with("/_emulator/")
}

fn fault_response(status: u16, inj: &Injection) -> Response {
    let code = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let msg = format!("Injected fault: {status}");
    let mut resp = (code, axum::Json(serde_json::json!({ "error": msg }))).into_response();
    let h = resp.headers_mut();
    if let Ok(v) = HeaderValue::from_str(&msg) {
        h.insert("x-error-message", v);
    }
    if let Some(s) = inj.retry_after {
        h.insert(header::RETRY_AFTER, HeaderValue::from(s));
        if status == 429 {
            if let Ok(v) = HeaderValue::from_str(&format!("\"api\";r=0;t={s}")) {
                h.insert("ratelimit", v);
            }
            h.insert(
                "ratelimit-policy",
                HeaderValue::from_static("\"fixed window\";\"api\";q=500;w=300"),
            );
        }
    }
    resp
}

/// Axum middleware for both listeners.
pub async fn layer(State(net): State<Arc<NetState>>, mut req: Request, next: Next) -> Response {
    let path = req.uri().path().to_string();
    if is_control(&path) {
        return next.run(req).await;
    }
    let conn = req.extensions().get::<ConnCtx>().cloned();
    let listener = conn.as_ref().map_or(Listener::Hub, |c| c.listener);
    let method = req.method().clone();
    let class = classify(listener, &method, &path);
    net.stats.request(&class);

    let inj = net
        .faults
        .decide(&class, method.as_str(), &path)
        .unwrap_or_default();
    if inj != Injection::default() {
        net.stats.fault();
    }
    if let Some(stall) = inj.stall {
        tokio::time::sleep(stall).await;
    }
    let latency = net.shaping.latency();
    if !latency.is_zero() {
        tokio::time::sleep(latency).await;
    }
    if let Some(status) = inj.status {
        return fault_response(status, &inj);
    }
    if let Some((from, to)) = &inj.rewrite {
        let rewritten = req.uri().to_string().replace(from.as_str(), to);
        if let Ok(uri) = rewritten.parse() {
            *req.uri_mut() = uri;
        }
    }

    let resp = next.run(req).await;
    if method == Method::HEAD {
        return resp;
    }
    let count = if resp.extensions().get::<ContentBody>().is_some() {
        Some((net.stats.clone(), body::Counter::Content))
    } else if resp.extensions().get::<CasBody>().is_some() {
        Some((net.stats.clone(), body::Counter::Cas))
    } else {
        None
    };
    // `corrupt`: flip the byte in the middle of the body (a chunk's data, not its header);
    // `corrupt-at`: the byte at that offset, when the body has one.
    let body_len = resp
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok())
        .filter(|&n| n > 0);
    let flip_at = match (inj.corrupt_at, inj.corrupt) {
        (Some(at), _) => body_len.filter(|&n| at < n).map(|_| at),
        (None, true) => body_len.map(|n| n / 2),
        (None, false) => None,
    };
    let plan = BodyPlan {
        shape: match (&conn, net.shaping.bandwidth()) {
            (Some(c), Some(_)) => Some((c.bucket.clone(), net.shaping.clone())),
            _ => None,
        },
        cut_after: inj.cut_after,
        count,
        flip_at,
    };
    if plan.is_noop() {
        return resp;
    }
    let (mut parts, body) = resp.into_parts();
    // A wrapped body has no size hint: keep the length explicit so hyper does not switch to
    // chunked encoding (clients read Content-Length).
    if !parts.headers.contains_key(header::CONTENT_LENGTH) {
        if let Some(n) = body.size_hint().exact() {
            parts
                .headers
                .insert(header::CONTENT_LENGTH, HeaderValue::from(n));
        }
    }
    Response::from_parts(parts, wrap(body, plan))
}
