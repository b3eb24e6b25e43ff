//! Multi-block reads answered without a copy.
//!
//! A FUSE read reply is one slice (fuser's `ReplyData`), and the kernel asks up to 1 MiB at a
//! time: a read over several cache blocks would copy them into one new buffer. Blocks that a
//! fetch delivered are consecutive pieces of a run buffer (`run_buf.rs`: a CAS run's buffer,
//! or a stretch of a bridge or LFS fetch), so such a read can be answered with a piece of that
//! buffer instead. The buffers of recent runs are known here by weak reference: a read whose
//! parts lie back to back inside the handed-out part of one that is still alive takes a piece
//! of it. Safe by construction: the buffer is alive (upgraded), live allocations never
//! overlap, so parts whose memory lies inside its handed-out range are views of it, and
//! handed-out bytes never change. Nothing is kept alive by this: a buffer goes when the last
//! of its pieces does.

use std::collections::VecDeque;
use std::sync::Weak;

use bytes::Bytes;
use parking_lot::Mutex;

use super::run_buf::RunBuf;

/// Run buffers known at once (weak references: a few bytes each). Parallel read-ahead keeps
/// tens of runs in flight, each with one buffer alive per stretch.
const SPANS_KEPT: usize = 256;

#[derive(Default)]
pub(super) struct Spans {
    kept: Mutex<VecDeque<Weak<RunBuf>>>,
}

impl Spans {
    /// Knows a run buffer whose pieces are about to be handed out.
    pub(super) fn keep(&self, run: Weak<RunBuf>) {
        let mut kept = self.kept.lock();
        if kept.len() >= SPANS_KEPT {
            kept.retain(|w| w.strong_count() > 0);
        }
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
        let (buf, s0) = self.kept.lock().iter().rev().find_map(|w| {
            let buf = w.upgrade()?;
            let (s0, len) = buf.handed_out_span();
            (start >= s0 && end <= s0 + len).then_some((buf, s0))
        })?;
        buf.piece(start - s0, end - start)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    use crate::read::run_buf::RunWriter;

    /// A run buffer of `n` bytes, filled and handed out whole.
    fn share(n: usize, seed: u8) -> (Bytes, Weak<RunBuf>) {
        let mut w = RunWriter::with_capacity(n);
        let data: Vec<u8> = (0..n).map(|i| (i as u8).wrapping_add(seed)).collect();
        w.extend_from_slice(&data);
        (w.cut(), w.weak())
    }

    #[test]
    fn back_to_back_parts_of_a_live_buffer_join_without_copy() {
        let spans = Spans::default();
        let (run, weak) = share(4096, 3);
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
    fn only_handed_out_bytes_join() {
        let spans = Spans::default();
        let mut w = RunWriter::with_capacity(8192);
        spans.keep(w.weak());
        w.extend_from_slice(&[7u8; 4096]);
        let a = w.cut();
        w.extend_from_slice(&[8u8; 100]);
        assert!(spans.join(&[a.slice(0..10), a.slice(10..4096)]).is_some());
        let buf = w.weak().upgrade().expect("alive");
        assert!(buf.piece(4000, 100).is_none(), "filled, not handed out yet");
        let c = w.cut();
        let joined = spans
            .join(&[a.slice(4000..4096), c.clone()])
            .expect("back to back");
        assert_eq!(joined.len(), 196);
        assert_eq!(&joined[96..], &c[..]);
    }

    #[test]
    fn nothing_is_kept_alive_and_the_list_is_bounded() {
        let spans = Spans::default();
        let (run, weak) = share(128, 0);
        spans.keep(weak.clone());
        drop(run);
        assert_eq!(
            weak.strong_count(),
            0,
            "the buffer went with its last holder"
        );
        let runs: Vec<Bytes> = (0..SPANS_KEPT + 2)
            .map(|i| {
                let (b, w) = share(128, i as u8);
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
