//! Response body wrapper applying, per response: the connection's bandwidth cap, an injected
//! connection cut after N bytes, and the `bytes_served` count for file content. Bytes are
//! counted when handed to hyper, which writes a piece before asking for the next; the count
//! can only run ahead of the socket by what is in flight when a client drops the connection.

use std::io;
use std::sync::Arc;
use std::time::Duration;

use axum::body::{Body, Bytes};
use futures_util::StreamExt;

use super::shaping::{shaping_piece, Bucket, Shaping};
use super::stats::Stats;

/// Pause before dropping a cut connection.
const CUT_FLUSH_DELAY: Duration = Duration::from_millis(50);

/// Which byte counter a body feeds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Counter {
    /// `bytes_served`: file content (resolve, LFS CDN, Xet bridge).
    Content,
    /// `cas_bytes_served`: xorb bytes fetched from the CAS.
    Cas,
}

#[derive(Default)]
pub struct BodyPlan {
    pub shape: Option<(Arc<Bucket>, Arc<Shaping>)>,
    pub cut_after: Option<u64>,
    pub count: Option<(Arc<Stats>, Counter)>,
    /// Offset of a byte to invert (the `corrupt` fault).
    pub flip_at: Option<u64>,
}

impl BodyPlan {
    pub fn is_noop(&self) -> bool {
        self.shape.is_none()
            && self.cut_after.is_none()
            && self.count.is_none()
            && self.flip_at.is_none()
    }
}

struct State {
    inner: axum::body::BodyDataStream,
    pending: Bytes,
    sent: u64,
    plan: BodyPlan,
    done: bool,
}

pub fn wrap(body: Body, plan: BodyPlan) -> Body {
    let st = State {
        inner: body.into_data_stream(),
        pending: Bytes::new(),
        sent: 0,
        plan,
        done: false,
    };
    let stream = futures_util::stream::unfold(st, |mut st| async move {
        if st.done {
            return None;
        }
        while st.pending.is_empty() {
            match st.inner.next().await {
                None => return None,
                Some(Err(e)) => {
                    st.done = true;
                    return Some((Err(io::Error::other(e)), st));
                }
                Some(Ok(b)) => st.pending = b,
            }
        }
        let mut take = st.pending.len();
        if let Some(rate) = st.plan.shape.as_ref().and_then(|(_, s)| s.bandwidth()) {
            take = take.min(shaping_piece(rate));
        }
        if let Some(limit) = st.plan.cut_after {
            let left = limit.saturating_sub(st.sent);
            if left == 0 {
                // Let hyper flush the headers and the bytes allowed so far (it writes when the
                // body is pending), so the client really sees a truncated body, not no answer.
                tokio::time::sleep(CUT_FLUSH_DELAY).await;
                st.done = true;
                return Some((Err(io::Error::other("injected fault: connection cut")), st));
            }
            take = take.min(left as usize);
        }
        if let Some((bucket, shaping)) = &st.plan.shape {
            if let Some(rate) = shaping.bandwidth() {
                if let Some(at) = bucket.reserve(take, rate) {
                    tokio::time::sleep_until(at.into()).await;
                }
            }
        }
        let mut piece = st.pending.split_to(take);
        if let Some(at) = st.plan.flip_at {
            if (st.sent..st.sent + take as u64).contains(&at) {
                let mut v = piece.to_vec();
                v[(at - st.sent) as usize] ^= 0xff;
                piece = Bytes::from(v);
            }
        }
        st.sent += take as u64;
        match &st.plan.count {
            Some((stats, Counter::Content)) => stats.served(take as u64),
            Some((stats, Counter::Cas)) => stats.cas_served(take as u64),
            None => {}
        }
        Some((Ok::<_, io::Error>(piece), st))
    });
    Body::from_stream(stream)
}
