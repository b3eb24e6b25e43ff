//! One HTTP exchange with the Hub or a CDN, done right once for every caller.
//!
//! A [`Request`] says what to send and how careful to be; [`Transport::send`] adds the
//! `Authorization` header only when the URL is on the endpoint's own origin (a CDN or S3 host
//! never sees the token), bounds the wait ([`Deadline`]), retries transient failures per
//! [`RetryMode`] with the configured backoff, caps requests in flight, counts everything in the
//! stats, and logs one debug line per attempt (signed URLs without their query string). Redirects
//! are never followed by reqwest: [`Transport::send_following`] follows same-origin hops by
//! hand and hands foreign ones back to the caller.

use std::io::SeekFrom;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use bytes::Bytes;
use futures_util::StreamExt;
use reqwest::header::{HeaderMap, HeaderValue, ACCEPT_ENCODING, AUTHORIZATION, CONTENT_LENGTH};
use reqwest::{Method, StatusCode};
use tokio::io::{AsyncReadExt, AsyncSeekExt};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use url::Url;

use super::auth::Token;
use super::config::HubConfig;
use super::error::{self, redact_url, ErrorContext, HubError};
use super::retry::{server_wait, RetryPolicy};
use super::stats::Counters;

/// Most redirect hops followed for one request (hf-hub and huggingface_hub use about 10).
pub(crate) const MAX_REDIRECTS: usize = 10;

/// Largest error body read to extract the Hub's message.
const MAX_ERROR_BODY: usize = 64 * 1024;

/// Whether the token may be attached.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Auth {
    /// Only if the URL is on the endpoint's origin (scheme, host and port).
    IfSameOrigin,
    /// Never: presigned upload URLs carry their own credentials.
    Never,
}

/// Which failures are retried.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum RetryMode {
    /// Idempotent requests: 408/429/5xx answers, network errors and timeouts.
    Transient,
    /// Non-idempotent requests (commit, create): only failures where the server surely did
    /// nothing — the connection was never made, or a 429 quota refusal.
    Safe,
}

/// How long a request may take.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Deadline {
    /// The whole exchange, body included (JSON calls).
    Total(Duration),
    /// Until the response headers; the caller bounds each body chunk itself (content streams).
    Headers(Duration),
    /// Uploads: no progress sending the body for `idle`, or no answer `after_body` after it
    /// was sent, fails the attempt. Size-independent, so multi-GiB parts are fine.
    Upload {
        idle: Duration,
        after_body: Duration,
    },
}

/// Counts upload bytes for a caller's progress callback; rewinds when an attempt fails so
/// the total never counts a byte twice.
pub(crate) struct ByteProgress {
    done: AtomicU64,
    callback: Arc<dyn Fn(u64) + Send + Sync>,
}

impl ByteProgress {
    pub fn new(callback: Arc<dyn Fn(u64) + Send + Sync>) -> ByteProgress {
        ByteProgress {
            done: AtomicU64::new(0),
            callback,
        }
    }
    fn add(&self, n: u64) {
        let total = self.done.fetch_add(n, Ordering::Relaxed) + n;
        (self.callback)(total);
    }
    fn rewind(&self, n: u64) {
        let total = self.done.fetch_sub(n, Ordering::Relaxed).saturating_sub(n);
        (self.callback)(total);
    }
}

/// A request body that can be rebuilt for every attempt.
#[derive(Clone)]
pub(crate) enum Body {
    Empty,
    Bytes {
        data: Bytes,
        content_type: &'static str,
    },
    /// `len` bytes of a file from `offset`, streamed (never loaded whole).
    File {
        path: PathBuf,
        offset: u64,
        len: u64,
        progress: Option<Arc<ByteProgress>>,
    },
}

/// Everything needed to send (and re-send) one request.
#[derive(Clone)]
pub(crate) struct Request {
    pub method: Method,
    pub url: Url,
    pub headers: HeaderMap,
    pub body: Body,
    pub auth: Auth,
    pub retry: RetryMode,
    pub deadline: Deadline,
    pub ctx: ErrorContext,
    /// Largest body [`Transport::read_body`] reads into memory; `None` = the client's
    /// default for JSON answers ([`BodyLimits::json`](super::config::BodyLimits)).
    pub max_body: Option<usize>,
}

impl Request {
    pub fn new(method: Method, url: Url, deadline: Deadline, ctx: ErrorContext) -> Request {
        Request {
            method,
            url,
            headers: HeaderMap::new(),
            body: Body::Empty,
            auth: Auth::IfSameOrigin,
            retry: RetryMode::Transient,
            deadline,
            ctx,
            max_body: None,
        }
    }

    /// Caps the body read into memory (see [`Request::max_body`]).
    pub fn max_body(mut self, limit: usize) -> Request {
        self.max_body = Some(limit);
        self
    }

    pub fn header(mut self, name: &'static str, value: HeaderValue) -> Request {
        self.headers.insert(name, value);
        self
    }

    pub fn body(mut self, data: impl Into<Bytes>, content_type: &'static str) -> Request {
        self.body = Body::Bytes {
            data: data.into(),
            content_type,
        };
        self
    }

    pub fn auth(mut self, auth: Auth) -> Request {
        self.auth = auth;
        self
    }

    pub fn retry(mut self, retry: RetryMode) -> Request {
        self.retry = retry;
        self
    }
}

/// A response, holding its in-flight slot until dropped.
pub(crate) struct Sent {
    pub response: reqwest::Response,
    /// The URL that answered (after same-origin redirects).
    pub url: Url,
    pub permit: OwnedSemaphorePermit,
    /// Largest body [`Transport::read_body`] accepts for this answer.
    pub max_body: usize,
}

impl Sent {
    pub fn status(&self) -> StatusCode {
        self.response.status()
    }
    pub fn headers(&self) -> &HeaderMap {
        self.response.headers()
    }
}

/// The shared HTTP machinery of a client.
pub(crate) struct Transport {
    http: reqwest::Client,
    endpoint: Url,
    token: Option<Token>,
    retry: RetryPolicy,
    permits: Arc<Semaphore>,
    pub counters: Arc<Counters>,
    /// Default cap of a body read whole ([`BodyLimits::json`](super::config::BodyLimits)).
    max_json_body: usize,
}

/// One failed attempt and whether the server can have seen it.
struct Failure {
    error: HubError,
    /// The request never reached the server (connection refused, DNS, TLS): safe to resend
    /// even when not idempotent.
    unsent: bool,
}

/// Watches an upload's progress for [`Deadline::Upload`].
#[derive(Default)]
struct UploadWatch {
    /// Milliseconds since `start` of the last body progress.
    last_ms: AtomicU64,
    body_done: AtomicBool,
}

/// Largest CA bundle read: Mozilla's whole root store is ~0.2 MiB in PEM.
const MAX_CA_BUNDLE: u64 = 16 << 20;

/// Reads a CA bundle: a regular file (not a FIFO or a device like `/dev/zero`, which would hang
/// the mount or fill its memory) of at most [`MAX_CA_BUNDLE`] bytes.
fn read_ca_bundle(path: &std::path::Path) -> std::io::Result<Vec<u8>> {
    use std::io::{Error, ErrorKind, Read};
    let meta = std::fs::metadata(path)?;
    if !meta.is_file() {
        return Err(Error::new(ErrorKind::InvalidInput, "not a regular file"));
    }
    let mut pem = Vec::new();
    std::fs::File::open(path)?
        .take(MAX_CA_BUNDLE + 1)
        .read_to_end(&mut pem)?;
    if pem.len() as u64 > MAX_CA_BUNDLE {
        return Err(Error::new(
            ErrorKind::InvalidData,
            format!("larger than {} MiB", MAX_CA_BUNDLE >> 20),
        ));
    }
    Ok(pem)
}

impl Transport {
    pub fn new(config: &HubConfig) -> Result<Transport, HubError> {
        let mut default_headers = HeaderMap::new();
        // Compressed bodies break Content-Length and ranges (hub-api.md §3.4): ask for none.
        default_headers.insert(ACCEPT_ENCODING, HeaderValue::from_static("identity"));
        let mut builder = reqwest::Client::builder()
            .use_rustls_tls()
            // Built-in Mozilla roots only (see `HubConfig::ca_bundle_from_env`); the shared
            // tier's S3 client enables the native ones in this crate graph.
            .tls_built_in_native_certs(false)
            .tls_built_in_webpki_certs(true);
        if let Some(path) = &config.ca_bundle {
            let pem = read_ca_bundle(path).map_err(|e| {
                HubError::invalid(format!("CA bundle {}: cannot read it: {e}", path.display()))
            })?;
            let certs = reqwest::Certificate::from_pem_bundle(&pem).map_err(|e| {
                HubError::invalid(format!(
                    "CA bundle {}: not a PEM bundle: {e}",
                    path.display()
                ))
            })?;
            if certs.is_empty() {
                return Err(HubError::invalid(format!(
                    "CA bundle {}: no certificate in it",
                    path.display()
                )));
            }
            for cert in certs {
                builder = builder.add_root_certificate(cert);
            }
        }
        let http = builder
            .redirect(reqwest::redirect::Policy::none())
            .user_agent(config.user_agent.clone())
            .default_headers(default_headers)
            .connect_timeout(config.connect_timeout)
            .pool_max_idle_per_host(config.max_connections)
            .pool_idle_timeout(Duration::from_secs(90))
            .tcp_nodelay(true)
            // Over HTTP/2 many range streams share one connection: let its flow-control
            // window grow with the measured bandwidth-delay product instead of capping
            // throughput at a fixed window per round trip.
            .http2_adaptive_window(true)
            .build()
            .map_err(|e| HubError::invalid(format!("cannot build the HTTP client: {e}")))?;
        Ok(Transport {
            http,
            endpoint: config.endpoint.clone(),
            token: config.token.clone(),
            retry: config.retry.clone(),
            permits: Arc::new(Semaphore::new(config.max_connections.max(1))),
            counters: Arc::new(Counters::default()),
            max_json_body: config.bodies.json,
        })
    }

    pub fn retry_policy(&self) -> &RetryPolicy {
        &self.retry
    }

    /// Same scheme, host and port as the endpoint: the only place the token may go.
    pub fn is_same_origin(&self, url: &Url) -> bool {
        same_origin(url, &self.endpoint)
    }

    /// Context of a request for error mapping, knowing whether a token is sent.
    pub fn ctx(&self, mut ctx: ErrorContext) -> ErrorContext {
        ctx.authenticated = self.token.is_some();
        ctx
    }

    /// Sends `req`, retrying per its [`RetryMode`]. Returns the first answer that is not
    /// retried, whatever its status (the caller decides what a status means).
    pub async fn send(&self, req: &Request) -> Result<Sent, HubError> {
        let mut attempt: u32 = 0;
        loop {
            attempt += 1;
            let permit = Arc::clone(&self.permits)
                .acquire_owned()
                .await
                .map_err(|_| HubError::protocol(&req.ctx.target(), "client is shut down"))?;
            self.counters.request();
            if attempt > 1 {
                self.counters.retry();
            }
            let started = Instant::now();
            let attempt_sent = Arc::new(AtomicU64::new(0));
            let outcome = self.send_once(req, &attempt_sent).await;
            // Bytes of an attempt that will be resent (or that failed) no longer count.
            let rewind = || {
                if let Body::File {
                    progress: Some(p), ..
                } = &req.body
                {
                    p.rewind(attempt_sent.load(Ordering::Relaxed));
                }
            };
            let last = attempt >= self.retry.max_attempts.max(1);
            match outcome {
                Ok(response) => {
                    let status = response.status();
                    self.log(req, Some(status), started, attempt);
                    self.observe(req, Some(status), started);
                    let retryable = match req.retry {
                        RetryMode::Transient => error::is_retryable_status(status.as_u16()),
                        RetryMode::Safe => status == StatusCode::TOO_MANY_REQUESTS,
                    };
                    if retryable && !last {
                        let hint = server_wait(response.headers(), SystemTime::now());
                        rewind();
                        drop(response);
                        drop(permit);
                        tokio::time::sleep(self.retry.delay(attempt, hint)).await;
                        continue;
                    }
                    return Ok(Sent {
                        response,
                        url: req.url.clone(),
                        permit,
                        max_body: req.max_body.unwrap_or(self.max_json_body),
                    });
                }
                Err(failure) => {
                    self.log(req, None, started, attempt);
                    self.observe(req, None, started);
                    tracing::debug!(target: "hubfs::hub", error = %failure.error, "request failed");
                    let retryable = match req.retry {
                        RetryMode::Transient => failure.error.is_retryable(),
                        RetryMode::Safe => failure.unsent,
                    };
                    drop(permit);
                    rewind();
                    if retryable && !last {
                        tokio::time::sleep(self.retry.backoff(attempt)).await;
                        continue;
                    }
                    return Err(failure.error);
                }
            }
        }
    }

    /// [`Transport::send`], following redirects that stay on the endpoint's origin (a
    /// relative `Location`, or an absolute one with the same scheme, host and port). A
    /// redirect elsewhere is returned to the caller.
    pub async fn send_following(&self, req: &Request) -> Result<Sent, HubError> {
        let mut req = req.clone();
        for _ in 0..=MAX_REDIRECTS {
            let sent = self.send(&req).await?;
            if !sent.status().is_redirection() {
                return Ok(sent);
            }
            let next = location(&sent, &req.ctx)?;
            if !self.is_same_origin(&next) {
                return Ok(sent);
            }
            if sent.status() == StatusCode::SEE_OTHER {
                req.method = Method::GET;
                req.body = Body::Empty;
            }
            req.url = next;
        }
        Err(HubError::protocol(&req.ctx.target(), "too many redirects"))
    }

    /// Passes a 2xx answer through; turns anything else into the matching [`HubError`].
    pub async fn ensure_success(&self, sent: Sent, ctx: &ErrorContext) -> Result<Sent, HubError> {
        let status = sent.status();
        if status.is_success() {
            return Ok(sent);
        }
        if status.is_redirection() {
            let to = location(&sent, ctx)
                .map(|u| redact_url(&u))
                .unwrap_or_default();
            return Err(HubError::protocol(
                &ctx.target(),
                format!("unexpected redirect ({status}) to {to}"),
            ));
        }
        Err(self.error_from(sent, ctx).await)
    }

    /// Maps an error answer to a [`HubError`], reading (a bounded part of) its body for the
    /// Hub's message.
    pub async fn error_from(&self, sent: Sent, ctx: &ErrorContext) -> HubError {
        let status = sent.status();
        let headers = sent.headers().clone();
        let hint = server_wait(&headers, SystemTime::now());
        let mut response = sent.response;
        let mut body = Vec::new();
        // The body only improves the message: give it a short, fixed time.
        let read = async {
            while body.len() < MAX_ERROR_BODY {
                match response.chunk().await {
                    Ok(Some(chunk)) => body.extend_from_slice(&chunk),
                    _ => break,
                }
            }
        };
        let _ = tokio::time::timeout(Duration::from_secs(5), read).await;
        self.counters.received(body.len() as u64);
        error::from_response(status, &headers, &body, ctx, self.token.as_ref(), hint)
    }

    /// Reads a whole (JSON) body; the request's [`Deadline::Total`] bounds its time and
    /// [`Sent::max_body`] its size: a bigger body fails the request as soon as it is known to
    /// be bigger (from `Content-Length`, or once that many bytes arrived), so a hostile or
    /// broken server cannot make the daemon buffer without bound.
    pub async fn read_body(&self, sent: Sent, ctx: &ErrorContext) -> Result<Bytes, HubError> {
        let limit = sent.max_body;
        let too_big = |what: &str| {
            let message = format!(
                "answer {what} the {} bytes allowed for this request: refused",
                limit
            );
            tracing::warn!(target: "hubfs::hub", "{}: {message}", ctx.target());
            HubError::protocol(&ctx.target(), message)
        };
        if sent
            .response
            .content_length()
            .is_some_and(|n| n > limit as u64)
        {
            return Err(too_big("announces more than"));
        }
        let mut response = sent.response;
        let mut body = bytes::BytesMut::new();
        loop {
            match response.chunk().await {
                Ok(Some(chunk)) => {
                    self.counters.received(chunk.len() as u64);
                    if body.len() + chunk.len() > limit {
                        return Err(too_big("exceeds"));
                    }
                    body.extend_from_slice(&chunk);
                }
                Ok(None) => return Ok(body.freeze()),
                Err(e) => return Err(error::from_transport(e, &ctx.target(), Duration::ZERO)),
            }
        }
    }

    /// Reads and parses a JSON body.
    pub async fn read_json<T: serde::de::DeserializeOwned>(
        &self,
        sent: Sent,
        ctx: &ErrorContext,
    ) -> Result<T, HubError> {
        let bytes = self.read_body(sent, ctx).await?;
        serde_json::from_slice(&bytes).map_err(|e| {
            HubError::protocol(&ctx.target(), format!("cannot parse the JSON answer: {e}"))
        })
    }

    async fn send_once(
        &self,
        req: &Request,
        attempt_sent: &Arc<AtomicU64>,
    ) -> Result<reqwest::Response, Failure> {
        let target = req.ctx.target();
        let mut builder = self
            .http
            .request(req.method.clone(), req.url.clone())
            .headers(req.headers.clone());
        if req.auth == Auth::IfSameOrigin && self.is_same_origin(&req.url) {
            if let Some(token) = &self.token {
                let mut value = HeaderValue::from_str(&format!("Bearer {}", token.secret()))
                    .map_err(|_| Failure {
                        error: HubError::invalid(
                            "the token contains characters not allowed in an HTTP header",
                        ),
                        unsent: true,
                    })?;
                value.set_sensitive(true);
                builder = builder.header(AUTHORIZATION, value);
            }
        }
        let watch = Arc::new(UploadWatch::default());
        let started = Instant::now();
        match &req.body {
            Body::Empty => {}
            Body::Bytes { data, content_type } => {
                self.counters.sent(data.len() as u64);
                builder = builder
                    .header(reqwest::header::CONTENT_TYPE, *content_type)
                    .body(data.clone());
            }
            Body::File {
                path,
                offset,
                len,
                progress,
            } => {
                let body = self
                    .file_body(
                        path,
                        *offset,
                        *len,
                        progress.clone(),
                        Arc::clone(&watch),
                        started,
                        Arc::clone(attempt_sent),
                    )
                    .await
                    .map_err(|error| Failure {
                        error,
                        unsent: true,
                    })?;
                // An explicit length: S3 and the Hub refuse chunked uploads.
                builder = builder.header(CONTENT_LENGTH, *len).body(body);
            }
        }
        match req.deadline {
            Deadline::Total(d) => builder
                .timeout(d)
                .send()
                .await
                .map_err(|e| transport_failure(e, &target, d)),
            Deadline::Headers(d) => match tokio::time::timeout(d, builder.send()).await {
                Ok(r) => r.map_err(|e| transport_failure(e, &target, d)),
                Err(_) => Err(Failure {
                    error: HubError::Timeout { target, after: d },
                    unsent: false,
                }),
            },
            Deadline::Upload { idle, after_body } => {
                tokio::select! {
                    r = builder.send() => r.map_err(|e| transport_failure(e, &target, idle)),
                    after = watchdog(&watch, started, idle, after_body) => Err(Failure {
                        error: HubError::Timeout { target, after },
                        unsent: false,
                    }),
                }
            }
        }
    }

    #[allow(clippy::too_many_arguments)]
    async fn file_body(
        &self,
        path: &std::path::Path,
        offset: u64,
        len: u64,
        progress: Option<Arc<ByteProgress>>,
        watch: Arc<UploadWatch>,
        started: Instant,
        attempt_sent: Arc<AtomicU64>,
    ) -> Result<reqwest::Body, HubError> {
        let io_err =
            |e: std::io::Error| HubError::invalid(format!("cannot read {}: {e}", path.display()));
        let mut file = tokio::fs::File::open(path).await.map_err(io_err)?;
        file.seek(SeekFrom::Start(offset)).await.map_err(io_err)?;
        if len == 0 {
            watch.body_done.store(true, Ordering::Relaxed);
        }
        let counters = Arc::clone(&self.counters);
        let stream = tokio_util::io::ReaderStream::with_capacity(file.take(len), 256 * 1024).map(
            move |chunk| {
                if let Ok(bytes) = &chunk {
                    let n = bytes.len() as u64;
                    counters.sent(n);
                    if let Some(p) = &progress {
                        p.add(n);
                    }
                    let total = attempt_sent.fetch_add(n, Ordering::Relaxed) + n;
                    watch
                        .last_ms
                        .store(started.elapsed().as_millis() as u64, Ordering::Relaxed);
                    if total >= len {
                        watch.body_done.store(true, Ordering::Relaxed);
                    }
                }
                chunk
            },
        );
        Ok(reqwest::Body::wrap_stream(stream))
    }

    /// Counts the attempt by kind and status, with its latency (`--metrics-addr`).
    fn observe(&self, req: &Request, status: Option<StatusCode>, started: Instant) {
        let same_origin = self.is_same_origin(&req.url);
        let status = status.map(|s| s.as_u16());
        (self.counters.by_kind).observe(&req.url, same_origin, status, started.elapsed());
    }

    fn log(&self, req: &Request, status: Option<StatusCode>, started: Instant, attempt: u32) {
        let url = if self.is_same_origin(&req.url) {
            req.url.to_string()
        } else {
            redact_url(&req.url)
        };
        tracing::debug!(
            target: "hubfs::hub",
            method = %req.method,
            url = %url,
            status = status.map(|s| s.as_u16()).unwrap_or(0),
            latency_ms = started.elapsed().as_millis() as u64,
            attempt,
            "hub request"
        );
    }
}

/// Resolves after the upload made no progress for `idle`, or got no answer `after_body`
/// after its body was sent; returns the bound that was exceeded.
async fn watchdog(
    watch: &UploadWatch,
    started: Instant,
    idle: Duration,
    after_body: Duration,
) -> Duration {
    let tick = (idle / 4).clamp(Duration::from_millis(10), Duration::from_secs(1));
    let mut body_done_at: Option<Instant> = None;
    loop {
        tokio::time::sleep(tick).await;
        if watch.body_done.load(Ordering::Relaxed) {
            let since = *body_done_at.get_or_insert_with(Instant::now);
            if since.elapsed() > after_body {
                return after_body;
            }
        } else {
            let last = Duration::from_millis(watch.last_ms.load(Ordering::Relaxed));
            if started.elapsed().saturating_sub(last) > idle {
                return idle;
            }
        }
    }
}

fn transport_failure(e: reqwest::Error, target: &str, timeout: Duration) -> Failure {
    let unsent = e.is_connect();
    Failure {
        error: error::from_transport(e, target, timeout),
        unsent,
    }
}

/// The absolute target of a 3xx answer (a relative `Location` resolved against the URL that
/// answered).
pub(crate) fn location(sent: &Sent, ctx: &ErrorContext) -> Result<Url, HubError> {
    let raw = sent
        .headers()
        .get(reqwest::header::LOCATION)
        .and_then(|v| v.to_str().ok())
        .ok_or_else(|| HubError::protocol(&ctx.target(), "redirect without a Location header"))?;
    let url = sent
        .url
        .join(raw)
        .map_err(|_| HubError::protocol(&ctx.target(), "redirect to an invalid Location"))?;
    // Only the web's schemes: reqwest refuses the others with an error that looks like a
    // network failure and would be retried until the I/O timeout. A Hub (or CDN) sending a
    // reader to `file://` or `ftp://` is broken or hostile: fail now, and say so.
    if !matches!(url.scheme(), "http" | "https") {
        return Err(HubError::protocol(
            &ctx.target(),
            format!(
                "redirect to a {}:// URL refused (only http and https are followed)",
                url.scheme()
            ),
        ));
    }
    Ok(url)
}

/// Origins compare scheme, host and (effective) port, as browsers and reqwest do.
pub(crate) fn same_origin(a: &Url, b: &Url) -> bool {
    a.scheme() == b.scheme()
        && a.host_str() == b.host_str()
        && a.port_or_known_default() == b.port_or_known_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn origins() {
        let e = Url::parse("http://127.0.0.1:8080").unwrap();
        assert!(same_origin(
            &Url::parse("http://127.0.0.1:8080/a?b").unwrap(),
            &e
        ));
        assert!(!same_origin(
            &Url::parse("http://127.0.0.1:8081/a").unwrap(),
            &e
        ));
        assert!(!same_origin(
            &Url::parse("https://127.0.0.1:8080/a").unwrap(),
            &e
        ));
        let h = Url::parse("https://huggingface.co").unwrap();
        assert!(same_origin(
            &Url::parse("https://HuggingFace.co:443/x").unwrap(),
            &h
        ));
        assert!(!same_origin(
            &Url::parse("https://cdn-lfs.hf.co/x").unwrap(),
            &h
        ));
    }

    #[test]
    fn progress_rewinds_failed_attempts() {
        let seen = Arc::new(AtomicU64::new(0));
        let s = Arc::clone(&seen);
        let p = ByteProgress::new(Arc::new(move |n| s.store(n, Ordering::Relaxed)));
        p.add(10);
        p.add(5);
        assert_eq!(seen.load(Ordering::Relaxed), 15);
        p.rewind(5);
        assert_eq!(seen.load(Ordering::Relaxed), 10);
    }

    #[tokio::test]
    async fn watchdog_fires_on_stalls() {
        let watch = UploadWatch::default();
        let started = Instant::now();
        let fired = watchdog(
            &watch,
            started,
            Duration::from_millis(50),
            Duration::from_secs(5),
        )
        .await;
        assert_eq!(fired, Duration::from_millis(50));
        watch.body_done.store(true, Ordering::Relaxed);
        let fired = watchdog(
            &watch,
            started,
            Duration::from_millis(50),
            Duration::from_millis(80),
        )
        .await;
        assert_eq!(fired, Duration::from_millis(80));
    }
}
