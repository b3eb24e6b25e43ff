//! Multi-block reads answered without a copy.
//!
//! A FUSE read reply is one slice (fuser's `ReplyData`), and the kernel asks up to 1 MiB at a
//! time: a read over several cache blocks would copy them into one new buffer. Blocks that a
//! CAS run delivered are consecutive slices of the run's one buffer (`xet::assemble`), so such
//! a read can be answered with a slice of that buffer instead. The run buffers of recent CAS
//! runs are known here by weak reference: a read whose parts lie back to back inside one that
//! is still alive takes a slice of it. Safe by construction: the buffer is alive (upgraded),
//! live allocations never overlap, so parts whose memory lies inside its range are views of
//! it, and shared buffers never change. Nothing is kept alive by this: a buffer goes when the
//! last of its blocks does.

use std::collections::VecDeque;
use std::sync::{Arc, Weak};

use bytes::Bytes;
use parking_lot::Mutex;

use crate::cache::direct::AlignedBuf;

/// Run buffers known at once (weak references: a few bytes each).
const SPANS_KEPT: usize = 64;

/// A run buffer shared by its blocks and known to [`Spans`].
struct SharedBuf(Arc<AlignedBuf>);

impl AsRef<[u8]> for SharedBuf {
    fn as_ref(&self) -> &[u8] {
        (*self.0).as_ref()
    }
}

/// A filled buffer as shared bytes, and the handle [`Spans::keep`] takes.
pub fn share(buf: AlignedBuf) -> (Bytes, Weak<AlignedBuf>) {
    let arc = Arc::new(buf);
    let weak = Arc::downgrade(&arc);
    (Bytes::from_owner(SharedBuf(arc)), weak)
}

#[derive(Default)]
pub(super) struct Spans {
    kept: Mutex<VecDeque<Weak<AlignedBuf>>>,
}

impl Spans {
    /// Knows a run buffer whose blocks are about to be handed out.
    pub(super) fn keep(&self, run: Weak<AlignedBuf>) {
        let mut kept = self.kept.lock();
        kept.retain(|w| w.strong_count() > 0);
        kept.push_back(run);
        while kept.len() > SPANS_KEPT {
            kept.pop_front();
        }
    }

    /// `parts` as one buffer without a copy, if they lie back to back inside one live run
    /// buffer.
    pub(super) fn join(&self, parts: &[Bytes]) -> Option<Bytes> {
        let start = parts.first()?.as_ptr() as usize;
        let mut end = start;
        for p in parts {
            if p.as_ptr() as usize != end {
                return None;
            }
            end += p.len();
        }
        let buf = self.kept.lock().iter().rev().find_map(|w| {
            let buf = w.upgrade()?;
            let (s0, len) = span_of(&buf);
            (start >= s0 && end <= s0 + len).then_some(buf)
        })?;
        let (s0, _) = span_of(&buf);
        Some(Bytes::from_owner(SharedBuf(buf)).slice(start - s0..end - s0))
    }
}

/// Where a buffer's bytes lie in memory: (address, length).
fn span_of(buf: &AlignedBuf) -> (usize, usize) {
    let bytes: &[u8] = buf.as_ref();
    (bytes.as_ptr() as usize, bytes.len())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn filled(n: usize, seed: u8) -> AlignedBuf {
        let mut b = AlignedBuf::with_capacity(n);
        let data: Vec<u8> = (0..n).map(|i| (i as u8).wrapping_add(seed)).collect();
        b.extend_from_slice(&data);
        b
    }

    #[test]
    fn back_to_back_parts_of_a_live_buffer_join_without_copy() {
        let spans = Spans::default();
        let (run, weak) = share(filled(4096, 3));
        spans.keep(weak);
        let parts = [run.slice(100..1000), run.slice(1000..3000)];
        let joined = spans.join(&parts).expect("one slice");
        assert_eq!(&joined[..], &run[100..3000]);
        assert_eq!(joined.as_ptr(), run[100..].as_ptr(), "no copy");
        // Not back to back, or from another buffer: no.
        assert!(spans.join(&[run.slice(0..10), run.slice(20..30)]).is_none());
        let other = Bytes::from(vec![1u8; 64]);
        assert!(spans
            .join(&[other.slice(0..10), other.slice(10..20)])
            .is_none());
    }

    #[test]
    fn nothing_is_kept_alive_and_the_list_is_bounded() {
        let spans = Spans::default();
        let (run, weak) = share(filled(128, 0));
        spans.keep(weak.clone());
        drop(run);
        assert_eq!(
            weak.strong_count(),
            0,
            "the buffer went with its last holder"
        );
        let runs: Vec<Bytes> = (0..SPANS_KEPT + 2)
            .map(|i| {
                let (b, w) = share(filled(128, i as u8));
                spans.keep(w);
                b
            })
            .collect();
        assert_eq!(spans.kept.lock().len(), SPANS_KEPT);
        assert!(spans
            .join(&[runs[0].slice(0..1), runs[0].slice(1..2)])
            .is_none());
        let last = &runs[SPANS_KEPT + 1];
        assert!(spans.join(&[last.slice(0..1), last.slice(1..2)]).is_some());
    }
}
