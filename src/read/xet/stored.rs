//! Xorb ranges through the chunk store (`cache::ChunkStore`): what is kept is not fetched.
//!
//! For one range of a plan (xorb `X`, chunks `a..b`), with `X`'s footer (from memory, the
//! store, or the CAS):
//! 1. read the store's blocks under chunks `a..b`; a chunk whose blocks are all there is
//!    checked against its hash in the footer and taken (a failure drops its blocks);
//! 2. the chunks still missing, grouped into runs of neighbours cut into pieces of about
//!    [`FETCH_PIECE`], are fetched by their stored byte range (from the footer), in parallel;
//!    every fetched chunk is checked like any CAS read;
//! 3. the blocks a fetched run covers whole are written to the store; a block it covers in part
//!    (a run rarely ends on a block edge) is kept in memory as a piece until the fetch of the
//!    neighbouring run (the next read-ahead window, usually) brings the rest, then written
//!    (`ChunkStore::write_piece`); the missing chunks are taken from the fetched bytes.
//!
//! So a range fully kept costs no request, and a range partly kept fetches exactly its missing
//! chunks: no more than a read without the store would.

use std::sync::atomic::Ordering;
use std::sync::Arc;

use bytes::{Bytes, BytesMut};
use xet_client::cas_types::HttpRange;
use xet_core_structures::merklehash::{compute_data_hash, MerkleHash};

use super::{Fetch, Footer, VerifyError, XetError, XetReader};
use crate::cache::{blocks_touching, chunk_bytes, ChunkStore};

/// Whole chunk-store blocks written with one request: 1 MiB of 64 KiB blocks. Most of the
/// saving of one request per run, and the aligned copy a group needs stays small (a run may be
/// several MiB, and many runs are in flight).
const WRITE_GROUP: usize = 16;

/// Missing chunks are fetched in pieces of about this many decompressed bytes, in parallel: a
/// link that gives each connection its share (the benchmark's shaped emulator, most CDNs)
/// serves a run over four connections in a quarter of the time. Measured on the shaped link,
/// 1 GiB cold: 6.7 MiB runs in one GET each gave 366-387 MiB/s and 450-490 MiB peak RSS; in
/// 2 MiB pieces 404-406 MiB/s and 237-280 MiB (the decompressed pieces are shorter-lived).
const FETCH_PIECE: u64 = 2 << 20;

type Chunks = Vec<((MerkleHash, u32), super::Chunk)>;

impl XetReader {
    /// Chunks `chunk_start..chunk_end` of the job's xorb, verified: from the store where it has
    /// them, fetched (and stored) where not.
    pub(super) async fn range_via_store(
        self: &Arc<Self>,
        store: &Arc<ChunkStore>,
        job: &Fetch<'_>,
        chunk_start: u32,
        chunk_end: u32,
    ) -> Result<Chunks, XetError> {
        let footer = self.footer(&job.xorb, &job.url, true).await?;
        let n = footer.chunk_hashes.len();
        if chunk_start >= chunk_end || chunk_end as usize > n {
            return Err(VerifyError::ChunkOutOfRange {
                xorb: job.xorb.hex(),
                index: chunk_end.saturating_sub(1),
                chunks: n,
            }
            .into());
        }
        let name: [u8; 32] = job
            .xorb
            .as_bytes()
            .try_into()
            .map_err(|_| XetError::Cas("a xorb hash is not 32 bytes".into()))?;
        let ends = &footer.unpacked_ends;
        let total = ends.last().copied().unwrap_or(0);
        let bs = store.block_size();
        let span = blocks_touching(chunk_bytes(ends, chunk_start..chunk_end), bs);
        // Disk reads and hashing off the async workers (they drive the network fetches).
        let kept = {
            let (store, footer, span) = (Arc::clone(store), Arc::clone(&footer), span.clone());
            let xorb = job.xorb;
            tokio::task::spawn_blocking(move || {
                kept_chunks(&store, &footer, xorb, name, span, chunk_start..chunk_end)
            })
            .await
            .map_err(|e| XetError::Cas(format!("reading the chunk store: {e}")))?
        };
        let Kept {
            blocks,
            mut out,
            missing,
        } = kept;
        let block = |idx: u64| (idx - span.start) as usize;
        if missing.is_empty() {
            store.release_pages(&name, total, span.clone());
            return Ok(out);
        }
        store
            .stats
            .misses
            .fetch_add(missing.len() as u64, Ordering::Relaxed);

        // 2. The missing chunks, as runs of neighbours, each fetched by its stored byte range.
        let runs = split_runs(
            runs_of(missing.iter().map(|&i| u64::from(i))),
            ends,
            FETCH_PIECE,
        );
        let fetches = runs
            .iter()
            .map(|run| self.fetch_run(job, &footer, run.start as u32, run.end as u32));
        let fetched = futures_util::future::try_join_all(fetches).await?;

        // 3. Store the blocks the runs cover (whole, or as pieces until another run brings the
        //    rest), take the missing chunks from the fetched bytes.
        for (chunks, data) in &fetched {
            let base = chunk_bytes(ends, chunks.clone()).start;
            let end = base + data.len() as u64;
            store
                .stats
                .fetched_bytes
                .fetch_add(data.len() as u64, Ordering::Relaxed);
            // Whole blocks go in groups of neighbours, one write each.
            let mut whole: Vec<Bytes> = Vec::new();
            let mut whole_from = 0u64;
            let flush = |whole: &mut Vec<Bytes>, first: u64| {
                if !whole.is_empty() {
                    let refs: Vec<&[u8]> = whole.iter().map(|b| &b[..]).collect();
                    store.write_blocks(&name, total, first, &refs);
                    whole.clear();
                }
            };
            for idx in blocks_touching(base..end, bs) {
                if blocks.get(block(idx)).is_some_and(Option::is_some) {
                    flush(&mut whole, whole_from);
                    continue;
                }
                let (b0, b1) = (idx * bs, ((idx + 1) * bs).min(total));
                let (from, to) = (b0.max(base), b1.min(end));
                let piece = cut(data, base, from..to)?;
                if (from, to) == (b0, b1) && b1 - b0 < bs {
                    // The xorb's short last block: alone (a length O_DIRECT refuses would send
                    // the whole group through the page cache).
                    flush(&mut whole, whole_from);
                    store.write_block(&name, total, idx, &piece);
                } else if (from, to) == (b0, b1) {
                    if whole.len() >= WRITE_GROUP {
                        flush(&mut whole, whole_from);
                    }
                    if whole.is_empty() {
                        whole_from = idx;
                    }
                    whole.push(piece);
                } else {
                    flush(&mut whole, whole_from);
                    store.write_piece(&name, total, idx, from - b0, &piece);
                }
            }
            flush(&mut whole, whole_from);
            for i in chunks.clone() {
                let bytes = cut(data, base, chunk_bytes(ends, i..i + 1))?;
                out.push(((job.xorb, i), (bytes, footer.chunk_hashes[i as usize])));
            }
        }
        store.release_pages(&name, total, span.clone());
        if out.len() != (chunk_end - chunk_start) as usize {
            return Err(XetError::Cas(format!(
                "xorb {}: {} of chunks {chunk_start}..{chunk_end} assembled",
                job.xorb.hex(),
                out.len()
            )));
        }
        Ok(out)
    }

    /// Fetches and checks chunks `start..end` of the job's xorb by their stored byte range.
    async fn fetch_run(
        self: &Arc<Self>,
        job: &Fetch<'_>,
        footer: &Footer,
        start: u32,
        end: u32,
    ) -> Result<(std::ops::Range<u32>, Bytes), XetError> {
        let (from, to) = footer.stored_range(start, end).ok_or_else(|| {
            XetError::Cas(format!(
                "xorb {}: no stored range for chunks {start}..{end}",
                job.xorb.hex()
            ))
        })?;
        let unpacked = chunk_bytes(&footer.unpacked_ends, start..end);
        let unpacked_len = usize::try_from(unpacked.end - unpacked.start).ok();
        let (data, offsets) = self
            .get_run(job, start, HttpRange::new(from, to), true, unpacked_len)
            .await?;
        self.check_run(footer, &job.xorb, start, end, &data, &offsets)?;
        Ok((start..end, data))
    }
}

/// What the store holds of chunks `chunks`: its blocks under them (`blocks[k]` = block
/// `span.start + k`), the chunks that passed their hash, and the chunks to fetch (in order).
struct Kept {
    blocks: Vec<Option<Bytes>>,
    out: Chunks,
    missing: Vec<u32>,
}

/// Reads the store's blocks under `chunks` and takes every chunk whose blocks are all there
/// and whose hash matches the footer's; a chunk that fails is dropped from the store.
fn kept_chunks(
    store: &ChunkStore,
    footer: &Footer,
    xorb: MerkleHash,
    name: [u8; 32],
    span: std::ops::Range<u64>,
    chunks: std::ops::Range<u32>,
) -> Kept {
    let ends = &footer.unpacked_ends;
    let total = ends.last().copied().unwrap_or(0);
    let bs = store.block_size();
    let mut blocks = store.read_blocks(&name, total, span.clone());
    let mut out = Chunks::with_capacity(chunks.len());
    let mut missing: Vec<u32> = Vec::new();
    for i in chunks {
        let bytes = chunk_bytes(ends, i..i + 1);
        let Some(data) = gather(&blocks, span.start, bs, bytes.clone()) else {
            missing.push(i);
            continue;
        };
        let hash = footer.chunk_hashes[i as usize];
        if compute_data_hash(&data) == hash {
            store.stats.hits.fetch_add(1, Ordering::Relaxed);
            store
                .stats
                .hit_bytes
                .fetch_add(data.len() as u64, Ordering::Relaxed);
            out.push(((xorb, i), (data, hash)));
        } else {
            tracing::warn!(
                "chunk store: xorb {} chunk {i} failed its hash; fetching it again",
                xorb.hex()
            );
            store.stats.corrupt.fetch_add(1, Ordering::Relaxed);
            for idx in blocks_touching(bytes, bs) {
                store.drop_block(&name, total, idx);
                if let Some(b) = blocks.get_mut((idx - span.start) as usize) {
                    *b = None;
                }
            }
            missing.push(i);
        }
    }
    Kept {
        blocks,
        out,
        missing,
    }
}

/// Bytes `bytes` of the xorb out of `blocks` (block `first + k` at `blocks[k]`), None if one
/// of the blocks they need is missing. One block: a slice, no copy.
fn gather(
    blocks: &[Option<Bytes>],
    first: u64,
    bs: u64,
    bytes: std::ops::Range<u64>,
) -> Option<Bytes> {
    let under = blocks_touching(bytes.clone(), bs);
    let at = |idx: u64| blocks.get((idx - first) as usize).and_then(Option::as_ref);
    if under.end - under.start == 1 {
        let b = at(under.start)?;
        let off = under.start * bs;
        let (from, to) = ((bytes.start - off) as usize, (bytes.end - off) as usize);
        return (to <= b.len()).then(|| b.slice(from..to));
    }
    let mut out = BytesMut::with_capacity((bytes.end - bytes.start) as usize);
    for idx in under {
        let b = at(idx)?;
        let off = idx * bs;
        let from = bytes.start.max(off) - off;
        let to = bytes.end.min(off + b.len() as u64) - off;
        out.extend_from_slice(b.get(from as usize..to as usize)?);
    }
    Some(out.freeze())
}

/// Xorb bytes `bytes` out of `data`, a fetched run starting at xorb byte `base`.
fn cut(data: &Bytes, base: u64, bytes: std::ops::Range<u64>) -> Result<Bytes, XetError> {
    let (from, to) = (bytes.start - base, bytes.end - base);
    if to > data.len() as u64 || from > to {
        return Err(XetError::Cas(format!(
            "a fetched run of {} bytes lacks bytes {from}..{to}",
            data.len()
        )));
    }
    Ok(data.slice(from as usize..to as usize))
}

/// Runs cut where they pass `piece` decompressed bytes (at least one chunk each), so one
/// run is fetched over several connections at once.
fn split_runs(
    runs: Vec<std::ops::Range<u64>>,
    ends: &[u64],
    piece: u64,
) -> Vec<std::ops::Range<u64>> {
    let unpacked = |from: u64, to: u64| {
        let bytes = chunk_bytes(ends, from as u32..to as u32);
        bytes.end - bytes.start
    };
    let mut out = Vec::new();
    for run in runs {
        let mut from = run.start;
        for i in run.clone() {
            if i > from && unpacked(from, i + 1) > piece {
                out.push(from..i);
                from = i;
            }
        }
        out.push(from..run.end);
    }
    out
}

/// Consecutive indices grouped into ranges: 1,2,3,7,8 -> 1..4, 7..9.
fn runs_of(indices: impl Iterator<Item = u64>) -> Vec<std::ops::Range<u64>> {
    let mut runs: Vec<std::ops::Range<u64>> = Vec::new();
    for i in indices {
        match runs.last_mut() {
            Some(r) if r.end == i => r.end = i + 1,
            _ => runs.push(i..i + 1),
        }
    }
    runs
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn runs_group_neighbours() {
        assert_eq!(
            runs_of([1, 2, 3, 7, 8, 10].into_iter()),
            vec![1..4, 7..9, 10..11]
        );
        assert!(runs_of(std::iter::empty()).is_empty());
    }

    #[test]
    fn long_runs_are_cut_into_pieces_of_whole_chunks() {
        // Chunks of 40, 40, 40, 100, 10 bytes: 0..5 in pieces of at most 80 (a chunk longer
        // than a piece is a piece of its own).
        let ends = [40, 80, 120, 220, 230];
        assert_eq!(
            split_runs(runs_of(0..5), &ends, 80),
            vec![0..2, 2..3, 3..4, 4..5]
        );
        assert_eq!(split_runs(vec![0..2, 4..5], &ends, 1000), vec![0..2, 4..5]);
        assert_eq!(split_runs(runs_of(1..3), &ends, 80), vec![1..3]);
    }

    #[test]
    fn gather_joins_blocks_and_refuses_holes() {
        let blocks = vec![
            Some(Bytes::from_static(b"abcd")),
            Some(Bytes::from_static(b"efgh")),
            None,
            Some(Bytes::from_static(b"mn")),
        ];
        assert_eq!(gather(&blocks, 10, 4, 41..43).as_deref(), Some(&b"bc"[..]));
        assert_eq!(
            gather(&blocks, 10, 4, 42..46).as_deref(),
            Some(&b"cdef"[..])
        );
        assert_eq!(gather(&blocks, 10, 4, 46..49), None);
        assert_eq!(gather(&blocks, 10, 4, 52..54).as_deref(), Some(&b"mn"[..]));
        // A block shorter than the bytes asked (a truncated tail): refused, not cut short.
        assert_eq!(gather(&blocks, 10, 4, 52..55), None);
    }
}
