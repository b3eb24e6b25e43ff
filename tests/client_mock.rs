//! Client behaviour against scripted HTTP servers: answers the emulator never gives (ranges
//! ignored, wrong `Content-Range`, stalls at exact points) and what must never be sent (the
//! token to a CDN, a retried commit).

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::body::Body;
use axum::http::{HeaderMap, Response};
use bytes::Bytes;
use futures_util::future::BoxFuture;
use futures_util::{FutureExt, StreamExt};
use hubfs::hub::{
    CommitHeader, CommitOp, HubClient, HubConfig, HubError, LfsBatchObject, RetryPolicy, Token,
};
use hubfs::repo::{RepoId, RepoRef, RepoType};
use parking_lot::Mutex;
use url::Url;

const COMMIT: &str = "0123456789abcdef0123456789abcdef01234567";

/// One request as a scripted server saw it.
#[derive(Clone, Debug)]
struct Seen {
    method: String,
    /// Path and query.
    uri: String,
    headers: HeaderMap,
    body: Bytes,
}

impl Seen {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }
}

type Handler = Arc<dyn Fn(Seen) -> BoxFuture<'static, Response<Body>> + Send + Sync>;

/// A server on 127.0.0.1 answering with a test's script and recording requests.
struct Server {
    url: Url,
    seen: Arc<Mutex<Vec<Seen>>>,
    task: tokio::task::JoinHandle<()>,
}

impl Server {
    async fn start(handler: Handler) -> Server {
        let seen: Arc<Mutex<Vec<Seen>>> = Arc::default();
        let log = Arc::clone(&seen);
        let app = axum::Router::new().fallback(move |req: axum::extract::Request| {
            let handler = Arc::clone(&handler);
            let log = Arc::clone(&log);
            async move {
                let (parts, body) = req.into_parts();
                let body = axum::body::to_bytes(body, 64 << 20)
                    .await
                    .unwrap_or_default();
                let s = Seen {
                    method: parts.method.to_string(),
                    uri: parts
                        .uri
                        .path_and_query()
                        .map(|p| p.to_string())
                        .unwrap_or_default(),
                    headers: parts.headers,
                    body,
                };
                log.lock().push(s.clone());
                handler(s).await
            }
        });
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let task = tokio::spawn(async move {
            axum::serve(listener, app).await.unwrap();
        });
        Server {
            url: Url::parse(&format!("http://{addr}")).unwrap(),
            seen,
            task,
        }
    }

    fn seen(&self) -> Vec<Seen> {
        self.seen.lock().clone()
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.task.abort();
    }
}

fn handler<F, Fut>(f: F) -> Handler
where
    F: Fn(Seen) -> Fut + Send + Sync + 'static,
    Fut: std::future::Future<Output = Response<Body>> + Send + 'static,
{
    Arc::new(move |s| f(s).boxed())
}

fn reply(status: u16, headers: &[(&str, String)], body: impl Into<Body>) -> Response<Body> {
    let mut r = Response::builder().status(status);
    for (k, v) in headers {
        r = r.header(*k, v.as_str());
    }
    r.body(body.into()).unwrap()
}

/// `Range: bytes=a-b` → (a, b).
fn range_of(s: &Seen) -> (u64, u64) {
    let r = s.header("range").expect("a Range header");
    let (a, b) = r.strip_prefix("bytes=").unwrap().split_once('-').unwrap();
    (a.parse().unwrap(), b.parse().unwrap())
}

/// A 206 for the requested range of `data`, or 416 past its end.
fn partial(s: &Seen, data: &[u8]) -> Response<Body> {
    let (a, b) = range_of(s);
    let n = data.len() as u64;
    if a >= n {
        return reply(416, &[("content-range", format!("bytes */{n}"))], "");
    }
    let b = b.min(n - 1);
    reply(
        206,
        &[("content-range", format!("bytes {a}-{b}/{n}"))],
        data[a as usize..=b as usize].to_vec(),
    )
}

fn content(n: usize) -> Vec<u8> {
    (0..n).map(|i| (i * 7 % 251) as u8).collect()
}

fn repo() -> RepoRef {
    RepoRef::new(RepoType::Model, RepoId::parse("ns/repo").unwrap())
}

fn client(hub: &Server, token: Option<&str>) -> HubClient {
    let mut config = HubConfig::new(hub.url.clone(), token.and_then(Token::new));
    config.read_idle_timeout = Duration::from_millis(500);
    config.api_timeout = Duration::from_secs(5);
    config.connect_timeout = Duration::from_secs(2);
    config.retry = RetryPolicy {
        max_attempts: 4,
        base_delay: Duration::from_millis(20),
        max_delay: Duration::from_millis(100),
        max_retry_after: Duration::from_secs(2),
    };
    HubClient::new(config).unwrap()
}

/// A CDN serving `data` only for `?sig=good`, refusing anything else with 403.
async fn cdn(data: Arc<Vec<u8>>) -> Server {
    Server::start(handler(move |s| {
        let data = Arc::clone(&data);
        async move {
            if s.uri.contains("sig=good") {
                partial(&s, &data)
            } else {
                reply(403, &[], "Request has expired")
            }
        }
    }))
    .await
}

/// A Hub whose resolve route redirects to `cdn` with the query `query(request)` returns (the
/// location's signature).
async fn hub_redirecting(cdn: Url, query: Arc<dyn Fn(&Seen) -> String + Send + Sync>) -> Server {
    Server::start(handler(move |s| {
        let loc = format!("{}blob/abc?{}", cdn, query(&s));
        async move {
            reply(
                302,
                &[
                    ("location", loc),
                    ("x-repo-commit", COMMIT.into()),
                    ("x-linked-size", "1000".into()),
                    ("x-linked-etag", format!("\"{}\"", "a".repeat(64))),
                ],
                "",
            )
        }
    }))
    .await
}

#[tokio::test]
async fn range_reads_go_to_the_cdn_without_the_token_and_remember_it() {
    let data = Arc::new(content(1000));
    let cdn = cdn(Arc::clone(&data)).await;
    let hub = hub_redirecting(cdn.url.clone(), Arc::new(|_| "sig=good".to_string())).await;
    let c = client(&hub, Some("hf_secret"));

    let got = c
        .read_range(&repo(), COMMIT, "w.bin", 10, 110)
        .await
        .unwrap();
    assert_eq!(&got[..], &data[10..110]);
    let got = c
        .read_range(&repo(), COMMIT, "w.bin", 500, 600)
        .await
        .unwrap();
    assert_eq!(&got[..], &data[500..600]);

    let hub_seen = hub.seen();
    assert_eq!(hub_seen.len(), 1, "the second read must skip the Hub");
    assert_eq!(
        hub_seen[0].header("authorization"),
        Some("Bearer hf_secret")
    );
    assert_eq!(hub_seen[0].uri, format!("/ns/repo/resolve/{COMMIT}/w.bin"));
    let cdn_seen = cdn.seen();
    assert_eq!(cdn_seen.len(), 2);
    for s in &cdn_seen {
        assert_eq!(s.header("authorization"), None, "token leaked to the CDN");
        assert_eq!(s.header("accept-encoding"), Some("identity"));
    }
    assert_eq!(cdn_seen[1].header("range"), Some("bytes=500-599"));
    assert_eq!(c.stats().location_hits, 1);
}

#[tokio::test]
async fn a_refused_cdn_location_is_resolved_again() {
    let data = Arc::new(content(1000));
    let cdn = cdn(Arc::clone(&data)).await;
    let calls = Arc::new(AtomicUsize::new(0));
    let n = Arc::clone(&calls);
    // First resolution hands out an expired signature, the next ones a good one.
    let sig = Arc::new(move |_: &Seen| {
        if n.fetch_add(1, Ordering::SeqCst) == 0 {
            "sig=expired".to_string()
        } else {
            "sig=good".to_string()
        }
    });
    let hub = hub_redirecting(cdn.url.clone(), sig).await;
    let c = client(&hub, None);
    let got = c
        .read_range(&repo(), COMMIT, "w.bin", 0, 1000)
        .await
        .unwrap();
    assert_eq!(&got[..], &data[..]);
    assert_eq!(calls.load(Ordering::SeqCst), 2);
    assert_eq!(c.stats().location_refreshes, 1);
}

/// A CDN whose locations serve only the `Range` they were minted for (a byte-range condition
/// in the signed policy), and a Hub minting one per resolve: a remembered location is refused
/// once, then no longer remembered, so each later range costs a resolve and a CDN request, not
/// also a refusal.
#[tokio::test]
async fn a_cdn_whose_locations_serve_one_range_is_not_remembered_after_its_first_refusal() {
    let data = Arc::new(content(1000));
    let served = Arc::clone(&data);
    let cdn = Server::start(handler(move |s| {
        let data = Arc::clone(&served);
        async move {
            let minted = s
                .uri
                .split("range=")
                .nth(1)
                .unwrap_or("")
                .replace("%3D", "=");
            if s.header("range") == Some(minted.as_str()) {
                partial(&s, &data)
            } else {
                reply(403, &[], "range not signed")
            }
        }
    }))
    .await;
    let minting = |s: &Seen| {
        format!(
            "range={}",
            s.header("range").unwrap_or("").replace('=', "%3D")
        )
    };
    let hub = hub_redirecting(cdn.url.clone(), Arc::new(minting)).await;
    let c = client(&hub, None);
    for (start, end) in [(0, 100), (100, 200), (200, 300), (300, 400)] {
        let got = c
            .read_range(&repo(), COMMIT, "w.bin", start, end)
            .await
            .unwrap();
        assert_eq!(&got[..], &data[start as usize..end as usize]);
    }
    // Read 1: resolve + CDN. Read 2: the remembered location refused, resolve + CDN. Reads 3
    // and 4: resolve + CDN each (remembering again would add a refusal to each).
    assert_eq!(hub.seen().len(), 4);
    assert_eq!(cdn.seen().len(), 5);
    assert_eq!(c.stats().location_refreshes, 1);
    assert_eq!(c.stats().location_hits, 1);
}

#[tokio::test]
async fn metadata_stops_at_the_foreign_host_and_follows_same_origin_hops() {
    let cdn = cdn(Arc::new(content(10))).await;
    let cdn_url = cdn.url.clone();
    let hub = Server::start(handler(move |s| {
        let cdn_url = cdn_url.clone();
        async move {
            let linked = [
                ("x-repo-commit", COMMIT.to_string()),
                ("x-linked-size", "1000".to_string()),
                ("x-linked-etag", format!("\"{}\"", "b".repeat(64))),
            ];
            if s.uri.starts_with("/ns/repo/resolve/main/w.bin") {
                // Relative same-origin hop first, as the Hub's resolve-cache does.
                let mut h = linked.to_vec();
                h.push((
                    "location",
                    "/api/resolve-cache/models/ns/repo/x/w.bin?e=1".into(),
                ));
                return reply(307, &h, "");
            }
            if s.uri.starts_with("/api/resolve-cache/") {
                let mut h = linked.to_vec();
                h.push(("location", format!("{cdn_url}blob?sig=good")));
                return reply(302, &h, "redirect body");
            }
            if s.uri == "/ns/repo/resolve/main/config.json" {
                return reply(
                    200,
                    &[
                        ("x-repo-commit", COMMIT.into()),
                        (
                            "etag",
                            "\"1a42034850e2f5213e1a89a887747b667dc9d125\"".into(),
                        ),
                        ("content-length", "665".into()),
                    ],
                    "",
                );
            }
            reply(
                404,
                &[
                    ("x-error-code", "EntryNotFound".into()),
                    ("x-repo-commit", COMMIT.into()),
                ],
                "Entry not found",
            )
        }
    }))
    .await;
    let c = client(&hub, Some("hf_tok"));
    let m = c.file_metadata(&repo(), "main", "w.bin").await.unwrap();
    assert_eq!(m.commit, COMMIT);
    assert_eq!(m.size, 1000);
    assert_eq!(m.etag, "b".repeat(64));
    assert!(m.is_lfs);
    assert_eq!(m.location.host_str(), cdn.url.host_str());
    assert_eq!(m.location.port(), cdn.url.port());
    assert!(
        cdn.seen().is_empty(),
        "a metadata probe must not touch the CDN"
    );
    let hops = hub.seen();
    assert_eq!(hops.len(), 2);
    assert!(hops.iter().all(|s| s.method == "HEAD"));
    assert!(hops
        .iter()
        .all(|s| s.header("authorization") == Some("Bearer hf_tok")));

    let m = c
        .file_metadata(&repo(), "main", "config.json")
        .await
        .unwrap();
    assert_eq!(m.size, 665);
    assert!(!m.is_lfs);
    assert_eq!(m.etag, "1a42034850e2f5213e1a89a887747b667dc9d125");

    let e = c
        .file_metadata(&repo(), "main", "nope.txt")
        .await
        .unwrap_err();
    assert!(
        matches!(e, HubError::EntryNotFound { ref path, .. } if path == "nope.txt"),
        "{e}"
    );

    // The CDN location learned by the probe serves the first range read directly.
    let before = hub.seen().len();
    c.read_range(&repo(), COMMIT, "w.bin", 0, 5).await.unwrap();
    assert_eq!(hub.seen().len(), before);
}

#[tokio::test]
async fn an_ignored_range_is_skipped_and_truncated() {
    let data = Arc::new(content(300));
    let d = Arc::clone(&data);
    let hub = Server::start(handler(move |_s| {
        let d = Arc::clone(&d);
        async move { reply(200, &[], d.to_vec()) }
    }))
    .await;
    let c = client(&hub, None);
    let got = c.read_range(&repo(), COMMIT, "f", 100, 150).await.unwrap();
    assert_eq!(&got[..], &data[100..150]);
    let got = c.read_range(&repo(), COMMIT, "f", 250, 400).await.unwrap();
    assert_eq!(&got[..], &data[250..]);
    let got = c.read_range(&repo(), COMMIT, "f", 300, 400).await.unwrap();
    assert!(got.is_empty());
}

#[tokio::test]
async fn reads_at_and_past_eof() {
    let data = Arc::new(content(100));
    let d = Arc::clone(&data);
    let hub = Server::start(handler(move |s| {
        let d = Arc::clone(&d);
        async move { partial(&s, &d) }
    }))
    .await;
    let c = client(&hub, None);
    let body = c.get_range(&repo(), COMMIT, "f", 90, 200).await.unwrap();
    assert_eq!(body.remaining(), 10);
    assert_eq!(body.total_size(), Some(100));
    let got = body.collect().await.unwrap();
    assert_eq!(&got[..], &data[90..]);
    let body = c.get_range(&repo(), COMMIT, "f", 100, 200).await.unwrap();
    assert_eq!(body.remaining(), 0);
    assert!(c
        .read_range(&repo(), COMMIT, "f", 500, 600)
        .await
        .unwrap()
        .is_empty());
    // An empty range makes no request at all.
    let before = hub.seen().len();
    assert!(c
        .read_range(&repo(), COMMIT, "f", 5, 5)
        .await
        .unwrap()
        .is_empty());
    assert_eq!(hub.seen().len(), before);
}

#[tokio::test]
async fn a_wrong_content_range_is_refused() {
    let hub = Server::start(handler(|_s| async {
        reply(
            206,
            &[("content-range", "bytes 0-9/100".into())],
            vec![0u8; 10],
        )
    }))
    .await;
    let c = client(&hub, None);
    let e = c.get_range(&repo(), COMMIT, "f", 5, 15).await.unwrap_err();
    assert!(matches!(e, HubError::Protocol { .. }), "{e}");
}

#[tokio::test]
async fn transient_errors_are_retried_and_retry_after_honoured() {
    let data = Arc::new(content(64));
    let d = Arc::clone(&data);
    let calls = Arc::new(AtomicUsize::new(0));
    let n = Arc::clone(&calls);
    let hub = Server::start(handler(move |s| {
        let d = Arc::clone(&d);
        let i = n.fetch_add(1, Ordering::SeqCst);
        async move {
            match i {
                0 => reply(503, &[], "busy"),
                1 => reply(429, &[("retry-after", "1".into())], "slow down"),
                _ => partial(&s, &d),
            }
        }
    }))
    .await;
    let c = client(&hub, None);
    let started = Instant::now();
    let got = c.read_range(&repo(), COMMIT, "f", 0, 64).await.unwrap();
    assert_eq!(&got[..], &data[..]);
    assert!(
        started.elapsed() >= Duration::from_secs(1),
        "Retry-After ignored"
    );
    assert_eq!(c.stats().retries, 2);
    assert_eq!(c.stats().errors, 0);
}

#[tokio::test]
async fn persistent_failures_end_in_an_error() {
    let hub = Server::start(handler(|_s| async {
        reply(
            429,
            &[("ratelimit", "\"resolvers\";r=0;t=3600".into())],
            r#"{"error":"quota"}"#,
        )
    }))
    .await;
    let c = client(&hub, None);
    let started = Instant::now();
    let e = c.get_range(&repo(), COMMIT, "f", 0, 10).await.unwrap_err();
    assert!(
        matches!(e, HubError::RateLimited { retry_after: Some(d) } if d.as_secs() == 3601),
        "{e}"
    );
    // 3 waits capped at max_retry_after (2 s) each, not the hour asked for (generous bound:
    // a loaded CI machine).
    assert!(started.elapsed() < Duration::from_secs(60));
    assert_eq!(hub.seen().len(), 4);
    assert_eq!(c.stats().errors, 1);
}

#[tokio::test]
async fn a_stall_before_headers_times_out_and_is_retried() {
    let calls = Arc::new(AtomicUsize::new(0));
    let n = Arc::clone(&calls);
    let data = Arc::new(content(10));
    let d = Arc::clone(&data);
    let hub = Server::start(handler(move |s| {
        let i = n.fetch_add(1, Ordering::SeqCst);
        let d = Arc::clone(&d);
        async move {
            if i == 0 {
                tokio::time::sleep(Duration::from_secs(30)).await;
            }
            partial(&s, &d)
        }
    }))
    .await;
    let c = client(&hub, None);
    let started = Instant::now();
    let got = c.read_range(&repo(), COMMIT, "f", 0, 10).await.unwrap();
    assert_eq!(&got[..], &data[..]);
    // Two calls: the first was abandoned (had it been waited out, it would have answered and
    // been the only one). The time bound stays under the 30 s stall, with room for a loaded machine.
    assert!(started.elapsed() < Duration::from_secs(25));
    assert_eq!(calls.load(Ordering::SeqCst), 2);
}

/// A 206 whose body sends `first` bytes and then stalls forever (`cut` = false) or ends
/// early (`cut` = true).
fn broken_body(s: &Seen, data: &[u8], first: usize, cut: bool) -> Response<Body> {
    let (a, b) = range_of(s);
    let n = data.len() as u64;
    let b = b.min(n - 1);
    let head = Bytes::copy_from_slice(&data[a as usize..a as usize + first]);
    let stream = futures_util::stream::once(async move { Ok::<_, std::io::Error>(head) }).chain(
        futures_util::stream::once(async move {
            // Let the head reach the client before the connection goes.
            tokio::time::sleep(Duration::from_millis(100)).await;
            if cut {
                Err(std::io::Error::other("cut"))
            } else {
                tokio::time::sleep(Duration::from_secs(3600)).await;
                Ok(Bytes::new())
            }
        }),
    );
    reply(
        206,
        &[
            ("content-range", format!("bytes {a}-{b}/{n}")),
            ("content-length", (b - a + 1).to_string()),
        ],
        Body::from_stream(stream),
    )
}

#[tokio::test]
async fn a_stalled_body_fails_within_the_idle_timeout() {
    let data = Arc::new(content(100));
    let d = Arc::clone(&data);
    let hub = Server::start(handler(move |s| {
        let d = Arc::clone(&d);
        async move { broken_body(&s, &d, 10, false) }
    }))
    .await;
    let c = client(&hub, None);
    let mut body = c.get_range(&repo(), COMMIT, "f", 0, 100).await.unwrap();
    let first = body.chunk().await.unwrap().unwrap();
    assert_eq!(&first[..], &data[..10]);
    let started = Instant::now();
    let e = body.chunk().await.unwrap_err();
    assert!(matches!(e, HubError::Timeout { .. }), "{e}");
    // The idle timeout (0.5 s), not the hour-long stall; generous for a loaded machine.
    assert!(started.elapsed() < Duration::from_secs(20));
    assert!(e.is_retryable());
}

#[tokio::test]
async fn a_cut_body_is_an_error_and_read_range_resumes() {
    let data = Arc::new(content(100));
    let d = Arc::clone(&data);
    let calls = Arc::new(AtomicUsize::new(0));
    let n = Arc::clone(&calls);
    let hub = Server::start(handler(move |s| {
        let d = Arc::clone(&d);
        let i = n.fetch_add(1, Ordering::SeqCst);
        async move {
            if i == 0 {
                broken_body(&s, &d, 40, true)
            } else {
                partial(&s, &d)
            }
        }
    }))
    .await;
    let c = client(&hub, None);
    let got = c.read_range(&repo(), COMMIT, "f", 0, 100).await.unwrap();
    assert_eq!(&got[..], &data[..]);
    let seen = hub.seen();
    assert_eq!(seen.len(), 2);
    assert_eq!(
        seen[1].header("range"),
        Some("bytes=40-99"),
        "resume from the cut"
    );
}

#[tokio::test]
async fn tree_pages_follow_link_and_missing_dirs_are_not_found() {
    let hub = Server::start(handler(|s| async move {
        let entry = |p: &str| format!(r#"{{"type":"file","oid":"x","size":1,"path":"{p}"}}"#);
        if s.uri.starts_with("/api/models/ns/repo/tree/main/missing") {
            return reply(
                404,
                &[("x-error-code", "EntryNotFound".into())],
                r#"{"error":"not found"}"#,
            );
        }
        let host = s.header("host").unwrap().to_string();
        if s.uri.contains("cursor=2") {
            reply(200, &[], format!("[{}]", entry("c")))
        } else {
            reply(
                200,
                &[(
                    "link",
                    format!("<http://{host}/api/models/ns/repo/tree/main?recursive=true&cursor=2>; rel=\"next\""),
                )],
                format!("[{},{}]", entry("a"), entry("b")),
            )
        }
    }))
    .await;
    let c = client(&hub, None);
    let mut pager = c.list_tree(&repo(), "main", "", true);
    let p1 = pager.next_page().await.unwrap().unwrap();
    assert_eq!(p1.len(), 2);
    let p2 = pager.next_page().await.unwrap().unwrap();
    assert_eq!(p2[0].path, "c");
    assert!(pager.next_page().await.unwrap().is_none());
    assert_eq!(
        hub.seen()[0].uri,
        "/api/models/ns/repo/tree/main?recursive=true&expand=false"
    );
    let e = c
        .list_tree(&repo(), "main", "missing", false)
        .collect_all()
        .await
        .unwrap_err();
    assert!(matches!(e, HubError::EntryNotFound { .. }), "{e}");
}

#[tokio::test]
async fn commits_are_sent_whole_and_not_retried_when_ambiguous() {
    let status = Arc::new(AtomicUsize::new(500));
    let st = Arc::clone(&status);
    let hub = Server::start(handler(move |_s| {
        let code = st.load(Ordering::SeqCst) as u16;
        async move {
            match code {
                200 => reply(
                    200,
                    &[],
                    format!(r#"{{"success":true,"commitOid":"{COMMIT}","commitUrl":"http://h/ns/repo/commit/{COMMIT}","hookOutput":""}}"#),
                ),
                412 => reply(412, &[], r#"{"error":"The branch was updated since you opened this page."}"#),
                c => reply(c, &[], "oops"),
            }
        }
    }))
    .await;
    let c = client(&hub, Some("hf_w"));
    let header = CommitHeader {
        summary: "Add a".into(),
        description: String::new(),
        parent_commit: Some(COMMIT.into()),
    };
    let ops = vec![CommitOp::AddRegular {
        path: "a.txt".into(),
        content: b"hello".to_vec(),
    }];
    let e = c
        .commit(&repo(), "main", header.clone(), ops.clone(), false)
        .await
        .unwrap_err();
    assert!(matches!(e, HubError::CommitUnknown { .. }), "{e}");
    assert_eq!(
        hub.seen().len(),
        1,
        "an ambiguous commit must not be resent"
    );

    status.store(412, Ordering::SeqCst);
    let e = c
        .commit(&repo(), "main", header.clone(), ops.clone(), false)
        .await
        .unwrap_err();
    assert!(matches!(e, HubError::Conflict { .. }), "{e}");

    status.store(200, Ordering::SeqCst);
    let r = c
        .commit(&repo(), "feature/x", header, ops, true)
        .await
        .unwrap();
    assert_eq!(r.commit_oid, COMMIT);
    let last = hub.seen().pop().unwrap();
    assert_eq!(
        last.uri,
        "/api/models/ns/repo/commit/feature%2Fx?create_pr=1"
    );
    assert_eq!(last.header("content-type"), Some("application/x-ndjson"));
    assert_eq!(
        last.header("content-length"),
        Some(last.body.len().to_string().as_str())
    );
    assert_eq!(String::from_utf8_lossy(&last.body).lines().count(), 2);
}

#[tokio::test]
async fn lfs_uploads_stream_without_the_token_and_verify_with_it() {
    let store = Server::start(handler(|s| async move {
        let etag = format!("\"etag-{}\"", s.uri);
        reply(200, &[("etag", etag)], "")
    }))
    .await;
    let hub = Server::start(handler(|_s| async { reply(200, &[], "{}") })).await;
    let c = client(&hub, Some("hf_secret"));
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("blob");
    let data = content(2500);
    std::fs::write(&file, &data).unwrap();
    let oid = "c".repeat(64);

    // Basic: one PUT of the whole file.
    let basic: LfsBatchObject = serde_json::from_value(serde_json::json!({
        "oid": oid, "size": 2500,
        "actions": {
            "upload": {"href": format!("{}put/basic", store.url)},
            "verify": {"href": format!("{}ns/repo.git/info/lfs/objects/verify", hub.url)}
        }
    }))
    .unwrap();
    let progress = Arc::new(AtomicUsize::new(0));
    let p = Arc::clone(&progress);
    c.upload_lfs_object(
        &basic,
        "basic",
        &file,
        Some(Arc::new(move |n| p.store(n as usize, Ordering::SeqCst))),
    )
    .await
    .unwrap();
    assert_eq!(progress.load(Ordering::SeqCst), 2500);
    let puts = store.seen();
    assert_eq!(puts.len(), 1);
    assert_eq!(puts[0].method, "PUT");
    assert_eq!(&puts[0].body[..], &data[..]);
    assert_eq!(puts[0].header("authorization"), None);
    let verify = hub.seen().pop().unwrap();
    assert_eq!(verify.header("authorization"), Some("Bearer hf_secret"));
    let v: serde_json::Value = serde_json::from_slice(&verify.body).unwrap();
    assert_eq!(v["size"], 2500);

    // Multipart: 3 parts of 1000 bytes, then a completion POST without the token.
    let multi: LfsBatchObject = serde_json::from_value(serde_json::json!({
        "oid": oid, "size": 2500,
        "actions": {"upload": {
            "href": format!("{}complete", store.url),
            "header": {
                "chunk_size": "1000",
                "00003": format!("{}part/3", store.url),
                "00001": format!("{}part/1", store.url),
                "00002": format!("{}part/2", store.url),
            }
        }}
    }))
    .unwrap();
    c.upload_lfs_object(&multi, "multipart", &file, None)
        .await
        .unwrap();
    let seen = store.seen();
    let mut parts: Vec<&Seen> = seen
        .iter()
        .filter(|s| s.uri.starts_with("/part/"))
        .collect();
    parts.sort_by_key(|s| s.uri.clone());
    assert_eq!(parts.len(), 3);
    for (i, p) in parts.iter().enumerate() {
        let end = ((i + 1) * 1000).min(2500);
        assert_eq!(&p.body[..], &data[i * 1000..end], "part {}", i + 1);
        assert_eq!(p.header("authorization"), None);
    }
    let done = seen.iter().find(|s| s.uri == "/complete").unwrap();
    assert_eq!(done.header("authorization"), None);
    let body: serde_json::Value = serde_json::from_slice(&done.body).unwrap();
    assert_eq!(body["oid"], oid.as_str());
    assert_eq!(body["parts"][0]["partNumber"], 1);
    assert_eq!(body["parts"][2]["etag"], "\"etag-/part/3\"");

    // A part count that does not match the size is refused before any upload.
    let bad: LfsBatchObject = serde_json::from_value(serde_json::json!({
        "oid": oid, "size": 2500,
        "actions": {"upload": {"href": "http://127.0.0.1:1/c",
            "header": {"chunk_size": "1000", "00001": "http://127.0.0.1:1/p1"}}}
    }))
    .unwrap();
    let e = c
        .upload_lfs_object(&bad, "multipart", &file, None)
        .await
        .unwrap_err();
    assert!(matches!(e, HubError::Protocol { .. }), "{e}");
}

#[tokio::test]
async fn api_errors_are_classified() {
    let hub = Server::start(handler(|s| async move {
        let authed = s.header("authorization").is_some();
        if s.uri.contains("/private") {
            if authed {
                return reply(404, &[("x-error-code", "RepoNotFound".into())], "");
            }
            return reply(401, &[], r#"{"error":"Invalid username or password."}"#);
        }
        reply(
            404,
            &[("x-error-code", "RevisionNotFound".into())],
            r#"{"error":"Invalid rev id: nope"}"#,
        )
    }))
    .await;
    let private = RepoRef::new(RepoType::Dataset, RepoId::parse("ns/private").unwrap());
    let anon = client(&hub, None);
    let e = anon.repo_info(&private, None, false).await.unwrap_err();
    assert!(matches!(e, HubError::AuthRequired { .. }), "{e}");
    let authed = client(&hub, Some("hf_x"));
    let e = authed.repo_info(&private, None, false).await.unwrap_err();
    assert!(matches!(e, HubError::RepoNotFound { .. }), "{e}");
    assert!(e.is_not_found());
    assert!(e.to_string().contains("datasets/ns/private"), "{e}");
    let e = authed
        .repo_info(&repo(), Some("nope"), false)
        .await
        .unwrap_err();
    assert!(
        matches!(e, HubError::RevisionNotFound { ref revision, .. } if revision == "nope"),
        "{e}"
    );
    assert!(!e.to_string().contains("hf_x"));
    // No retries for definitive answers.
    assert_eq!(hub.seen().len(), 3);
}

#[tokio::test]
async fn a_failed_upload_is_resent_whole_and_progress_never_overcounts() {
    let calls = Arc::new(AtomicUsize::new(0));
    let n = Arc::clone(&calls);
    let store = Server::start(handler(move |_s| {
        let i = n.fetch_add(1, Ordering::SeqCst);
        async move {
            if i == 0 {
                reply(503, &[], "SlowDown")
            } else {
                reply(200, &[("etag", "\"e\"".into())], "")
            }
        }
    }))
    .await;
    let hub = Server::start(handler(|_s| async { reply(200, &[], "{}") })).await;
    let c = client(&hub, Some("hf_secret"));
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("blob");
    let data = content(300_000);
    std::fs::write(&file, &data).unwrap();
    let obj: LfsBatchObject = serde_json::from_value(serde_json::json!({
        "oid": "d".repeat(64), "size": 300_000,
        "actions": {"upload": {"href": format!("{}put", store.url)}}
    }))
    .unwrap();
    let max_seen = Arc::new(AtomicUsize::new(0));
    let last = Arc::new(AtomicUsize::new(0));
    let (m, l) = (Arc::clone(&max_seen), Arc::clone(&last));
    c.upload_lfs_object(
        &obj,
        "basic",
        &file,
        Some(Arc::new(move |n| {
            m.fetch_max(n as usize, Ordering::SeqCst);
            l.store(n as usize, Ordering::SeqCst);
        })),
    )
    .await
    .unwrap();
    let seen = store.seen();
    assert_eq!(seen.len(), 2);
    assert!(seen.iter().all(|s| s.body[..] == data[..]));
    assert_eq!(last.load(Ordering::SeqCst), 300_000);
    assert_eq!(
        max_seen.load(Ordering::SeqCst),
        300_000,
        "progress overcounted"
    );
    assert_eq!(c.stats().retries, 1);
    assert!(c.stats().bytes_sent >= 600_000);
}

/// A tree-page server: `page(n)` is the body of page n, every page links to page `next(n)`.
async fn pager_server(
    entries: Arc<dyn Fn(u64) -> String + Send + Sync>,
    next: Arc<dyn Fn(u64) -> Option<u64> + Send + Sync>,
) -> Server {
    Server::start(handler(move |s| {
        let (entries, next) = (Arc::clone(&entries), Arc::clone(&next));
        async move {
            let n: u64 = s
                .uri
                .split("cursor=")
                .nth(1)
                .and_then(|c| c.parse().ok())
                .unwrap_or(0);
            let host = s.header("host").unwrap().to_string();
            let mut headers = Vec::new();
            if let Some(m) = next(n) {
                headers.push((
                    "link",
                    format!(
                        "<http://{host}/api/models/ns/repo/tree/main?cursor={m}>; rel=\"next\""
                    ),
                ));
            }
            reply(200, &headers, entries(n))
        }
    }))
    .await
}

fn file_json(p: &str) -> String {
    serde_json::json!({"type": "file", "oid": "x", "size": 1, "path": p}).to_string()
}

#[tokio::test]
async fn listings_that_loop_or_never_end_are_stopped() {
    // first -> 1 -> 2 -> 1: the URL of page 1 comes back.
    let hub = pager_server(
        Arc::new(|n| format!("[{}]", file_json(&format!("f{n}")))),
        Arc::new(|n| Some(if n == 2 { 1 } else { n + 1 })),
    )
    .await;
    let e = client(&hub, None)
        .list_tree(&repo(), "main", "", true)
        .collect_all()
        .await
        .unwrap_err();
    assert!(e.to_string().contains("pagination loops"), "{e}");
    assert_eq!(hub.seen().len(), 3);

    // Never ends: the page budget, then the entry budget, then the deadline stop it.
    let hub = pager_server(
        Arc::new(|n| {
            format!(
                "[{},{}]",
                file_json(&format!("a{n}")),
                file_json(&format!("b{n}"))
            )
        }),
        Arc::new(|n| Some(n + 1)),
    )
    .await;
    let mut cfg = HubConfig::new(hub.url.clone(), None);
    cfg.listing.max_pages = 5;
    let e = HubClient::new(cfg.clone())
        .unwrap()
        .list_tree(&repo(), "main", "", true)
        .collect_all()
        .await
        .unwrap_err();
    assert!(e.to_string().contains("budget of 5 pages"), "{e}");
    cfg.listing.max_pages = 1000;
    cfg.listing.max_entries = 7;
    let e = HubClient::new(cfg.clone())
        .unwrap()
        .list_tree(&repo(), "main", "", true)
        .collect_all()
        .await
        .unwrap_err();
    assert!(e.to_string().contains("budget of 7 entries"), "{e}");
    cfg.listing.max_entries = usize::MAX;
    cfg.listing.max_pages = u32::MAX;
    cfg.listing.deadline = Duration::from_millis(300);
    let started = Instant::now();
    let e = HubClient::new(cfg)
        .unwrap()
        .list_tree(&repo(), "main", "", true)
        .collect_all()
        .await
        .unwrap_err();
    assert!(matches!(e, HubError::Timeout { .. }), "{e}");
    // Ended by the 300 ms deadline, not by a page or entry budget (both unbounded here);
    // generous for a loaded machine.
    assert!(started.elapsed() < Duration::from_secs(20));
}

#[tokio::test]
async fn listed_names_that_cannot_be_shown_are_skipped_and_counted() {
    let hub = pager_server(
        Arc::new(|_| {
            let names = [
                "d/ok",
                ".",
                "..",
                "d/.git",
                "d/a\u{0}b",
                "d//x",
                "/abs",
                "d/x/y",
                "elsewhere",
                "d/..",
                "",
            ];
            let long = format!("d/{}", "x".repeat(256));
            let mut all: Vec<String> = names.iter().map(|n| file_json(n)).collect();
            all.push(file_json(&long));
            all.push(r#"{"type":"symlink","oid":"x","size":1,"path":"d/link"}"#.into());
            format!("[{}]", all.join(","))
        }),
        Arc::new(|_| None),
    )
    .await;
    let c = client(&hub, None);
    let got = c
        .list_tree(&repo(), "main", "d", false)
        .collect_all()
        .await
        .unwrap();
    let paths: Vec<&str> = got.iter().map(|e| e.path.as_str()).collect();
    assert_eq!(paths, ["d/ok"]);
    assert_eq!(c.stats().invalid_entries, 12);
    // Recursive: a grandchild is fine.
    let got = c
        .list_tree(&repo(), "main", "d", true)
        .collect_all()
        .await
        .unwrap();
    let paths: Vec<&str> = got.iter().map(|e| e.path.as_str()).collect();
    assert_eq!(paths, ["d/ok", "d/x/y"]);
}

#[tokio::test]
async fn bodies_past_their_cap_are_refused() {
    // Announced by Content-Length, and streamed without one.
    let hub = Server::start(handler(|s| async move {
        let big = format!("[{}]", vec![file_json("f"); 2000].join(","));
        if s.uri.contains("chunked") {
            let chunks = futures_util::stream::iter(
                big.into_bytes()
                    .chunks(1000)
                    .map(|c| Ok::<_, std::io::Error>(Bytes::copy_from_slice(c)))
                    .collect::<Vec<_>>(),
            );
            reply(200, &[], Body::from_stream(chunks))
        } else {
            reply(200, &[], big)
        }
    }))
    .await;
    let mut cfg = HubConfig::new(hub.url.clone(), None);
    cfg.bodies.page = 10_000;
    let c = HubClient::new(cfg).unwrap();
    for dir in ["plain", "chunked"] {
        let e = c
            .list_tree(&repo(), "main", dir, false)
            .collect_all()
            .await
            .unwrap_err();
        assert!(e.to_string().contains("10000 bytes allowed"), "{dir}: {e}");
        assert!(!e.is_retryable());
    }
    assert_eq!(hub.seen().len(), 2, "a refused body is not asked for again");
}

#[tokio::test]
async fn redirects_to_other_schemes_fail_at_once() {
    for target in ["file:///etc/passwd", "ftp://127.0.0.1/x"] {
        let hub = Server::start(handler(move |_| async move {
            reply(302, &[("location", target.to_string())], "")
        }))
        .await;
        let started = Instant::now();
        let e = client(&hub, None)
            .read_range(&repo(), COMMIT, "f.bin", 0, 10)
            .await
            .unwrap_err();
        let scheme = target.split(':').next().unwrap();
        assert!(
            e.to_string()
                .contains(&format!("redirect to a {scheme}:// URL refused")),
            "{e}"
        );
        // Not retried: counted above; the clock only bounds the whole (loaded-machine room).
        assert_eq!(hub.seen().len(), 1, "not retried");
        assert!(started.elapsed() < Duration::from_secs(10));
    }
}
