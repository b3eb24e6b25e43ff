//! Request bodies that a handler leaves unread are drained, not dropped.
//!
//! Many routes refuse from the headers alone (a read token asking to write, a missing repo) and
//! never read the body. hyper, finding the body dropped, closes the connection after the
//! answer, but without saying so: the client returns the socket to its pool, sends its next
//! request into a connection the server has closed, and gets "Server disconnected without
//! sending a response" (the official client did, in CI). Front ends such as nginx read and
//! discard what is left instead, so the connection stays usable. So does the emulator, within a
//! bound: a body larger than `DRAIN_MAX_BYTES`, or slower than `DRAIN_MAX_TIME`, is dropped and
//! the connection closes, as a real server gives up on an upload it refused.

use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use http_body::{Body, Frame, SizeHint};
use http_body_util::BodyExt;
use hyper::body::Incoming;

/// Enough for any API request (JSON, an ndjson commit); uploads are read by their handlers.
const DRAIN_MAX_BYTES: u64 = 64 << 20;
/// nginx's `lingering_time` is 30 s; a client still sending after 10 s is not worth waiting for.
const DRAIN_MAX_TIME: Duration = Duration::from_secs(10);

/// Wraps a request body; if dropped before its end, the rest is read in the background. The
/// body is let go once it has ended (or failed): nothing is then left to drain.
pub struct DrainOnDrop {
    inner: Option<Incoming>,
}

impl DrainOnDrop {
    pub fn new(inner: Incoming) -> Self {
        Self { inner: Some(inner) }
    }
}

impl Body for DrainOnDrop {
    type Data = Bytes;
    type Error = hyper::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, hyper::Error>>> {
        let Some(inner) = self.inner.as_mut() else {
            return Poll::Ready(None);
        };
        let polled = Pin::new(inner).poll_frame(cx);
        if matches!(polled, Poll::Ready(None) | Poll::Ready(Some(Err(_)))) {
            self.inner = None;
        }
        polled
    }

    fn is_end_stream(&self) -> bool {
        self.inner.as_ref().is_none_or(|b| b.is_end_stream())
    }

    fn size_hint(&self) -> SizeHint {
        self.inner
            .as_ref()
            .map_or_else(|| SizeHint::with_exact(0), |b| b.size_hint())
    }
}

impl Drop for DrainOnDrop {
    fn drop(&mut self) {
        let Some(mut body) = self.inner.take() else {
            return;
        };
        if body.is_end_stream() || body.size_hint().lower() > DRAIN_MAX_BYTES {
            return;
        }
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            return;
        };
        runtime.spawn(async move {
            let drain = async {
                let mut seen = 0u64;
                while let Some(Ok(frame)) = body.frame().await {
                    seen += frame.data_ref().map_or(0, |d| d.len() as u64);
                    if seen > DRAIN_MAX_BYTES {
                        break;
                    }
                }
            };
            // Dropping the body on either bound makes hyper close the connection.
            let _ = tokio::time::timeout(DRAIN_MAX_TIME, drain).await;
        });
    }
}
