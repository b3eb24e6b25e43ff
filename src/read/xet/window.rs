//! Plan windows: one reconstruction request per 256 MiB of a file, not one per read-ahead run.
//!
//! hf_xet asks the CAS for the reconstruction of at least 256 MB at a time (xet-runtime's
//! `min_reconstruction_fetch_size`). Asking for each run's own range (6-8 MiB) cost a round trip
//! per run: 30 ms of a 230 ms run on the benchmark's shaped link, measured per run.
//!
//! A window is the plan of `[k·HALF, k·HALF + 2·HALF)`, clamped to the file: a run no longer
//! than `HALF` lies whole inside the window of `start / HALF`. A run whose window is cached is
//! planned from it without asking the CAS: its terms are cut down to the chunks under the run,
//! with the xorbs' footers (chunk lengths and stored offsets, each authenticated by its xorb
//! hash), and each cut term is fetched by the stored byte range of its chunks, as the chunk
//! store already fetches its missing chunks. A run whose window is not cached yet is planned
//! exactly, as before, while the window is fetched in the background for the runs after it: the
//! first byte of a cold file waits for no more round trips than it did.
//!
//! Nothing here is trusted more than before: a cut plan only says which chunks to fetch; every
//! chunk is still checked against its footer, and a term whose length disagrees with its
//! footer refuses the run (the caller then reads it through the bridge).

use std::collections::HashMap;
use std::sync::Arc;

use xet_client::cas_types::{
    ChunkRange, FileRange, HttpRange, QueryReconstructionResponseV2, XorbMultiRangeFetch,
    XorbRangeDescriptor, XorbReconstructionTerm,
};
use xet_core_structures::merklehash::MerkleHash;

use super::{Footer, XetError};

/// Half a window. 128 MiB: windows of 256 MiB, what hf_xet asks for, and far longer than a
/// read-ahead run (8 MiB at most), so nearly every run fits the window of its start.
pub const HALF: u64 = 128 << 20;

/// The window holding `[start, end)` of a file of `size` bytes; None for a run longer than
/// `HALF` (planned exactly).
pub fn window_of(start: u64, end: u64, size: u64) -> Option<FileRange> {
    if end <= start || end - start > HALF || end > size {
        return None;
    }
    let from = start / HALF * HALF;
    Some(FileRange::new(from, (from + 2 * HALF).min(size)))
}

/// The window before `own` (the window of a run ending at `end`), if it holds the run too:
/// windows overlap by half.
pub fn window_before(own: FileRange, end: u64) -> Option<FileRange> {
    let from = own.start.checked_sub(HALF)?;
    // `own` is clamped to the file's end, and so is its neighbour.
    let to = (from + 2 * HALF).min(own.end);
    (end <= to).then(|| FileRange::new(from, to))
}

/// A term of the window with where it sits in the file.
struct Placed<'a> {
    term: &'a XorbReconstructionTerm,
    xorb: MerkleHash,
    at: u64,
}

/// The window's terms that hold bytes of `[start, end)`, with their file offsets.
fn placed<'a>(
    window: &'a QueryReconstructionResponseV2,
    window_start: u64,
    start: u64,
    end: u64,
) -> Result<Vec<Placed<'a>>, XetError> {
    let mut at = window_start
        .checked_sub(window.offset_into_first_range)
        .ok_or_else(|| XetError::Cas("a window plan starts before the file".into()))?;
    let mut out = Vec::new();
    for term in &window.terms {
        let len = u64::from(term.unpacked_length);
        if at >= end {
            break;
        }
        if at + len > start {
            out.push(Placed {
                term,
                xorb: (&term.hash).into(),
                at,
            });
        }
        at += len;
    }
    if at < end {
        return Err(XetError::Cas(format!(
            "the window plan ends at byte {at}, before {end}"
        )));
    }
    Ok(out)
}

/// The xorbs whose footers `cut` needs for `[start, end)`, each with a URL of the window.
pub fn xorbs_under(
    window: &QueryReconstructionResponseV2,
    window_start: u64,
    start: u64,
    end: u64,
) -> Result<Vec<(MerkleHash, String)>, XetError> {
    let mut out: Vec<(MerkleHash, String)> = Vec::new();
    for p in placed(window, window_start, start, end)? {
        if out.iter().any(|(x, _)| *x == p.xorb) {
            continue;
        }
        out.push((p.xorb, url_of(window, &p.xorb)?));
    }
    Ok(out)
}

fn url_of(window: &QueryReconstructionResponseV2, xorb: &MerkleHash) -> Result<String, XetError> {
    window
        .xorbs
        .get(&(*xorb).into())
        .and_then(|fetches| fetches.first())
        .map(|f| f.url.clone())
        .ok_or_else(|| {
            XetError::Cas(format!(
                "the window plan has no URL for xorb {}",
                xorb.hex()
            ))
        })
}

fn footer_of<'a>(
    footers: &'a HashMap<MerkleHash, Arc<Footer>>,
    xorb: &MerkleHash,
) -> Result<&'a Footer, XetError> {
    footers
        .get(xorb)
        .map(|f| &**f)
        .ok_or_else(|| XetError::Cas(format!("no footer for xorb {}", xorb.hex())))
}

/// Where chunk `i` begins in the decompressed xorb (`i` = the chunk count: its end).
fn chunk_begin(footer: &Footer, i: u32) -> Option<u64> {
    match i {
        0 => Some(0),
        _ => footer.unpacked_ends.get(i as usize - 1).copied(),
    }
}

/// The plan of `[start, end)` cut out of `window` (the plan of the range starting at
/// `window_start`): terms narrowed to the chunks holding those bytes, each with one fetch of
/// their stored byte range through the window's URL of its xorb (one fetch per xorb, its
/// ranges merged).
pub fn cut(
    window: &QueryReconstructionResponseV2,
    window_start: u64,
    footers: &HashMap<MerkleHash, Arc<Footer>>,
    start: u64,
    end: u64,
) -> Result<QueryReconstructionResponseV2, XetError> {
    let mut terms = Vec::new();
    // Per xorb, the chunk ranges its terms need (merged below).
    let mut needs: Vec<(MerkleHash, Vec<(u32, u32)>)> = Vec::new();
    let mut offset_into_first_range = 0;
    for p in placed(window, window_start, start, end)? {
        let footer = footer_of(footers, &p.xorb)?;
        let (first, last) = (p.term.range.start, p.term.range.end);
        let shape = || {
            XetError::Cas(format!(
                "xorb {} chunks {first}..{last}: the plan and the footer disagree",
                p.xorb.hex()
            ))
        };
        let begin = |i: u32| chunk_begin(footer, i).ok_or_else(shape);
        let base = begin(first)?;
        if first >= last || begin(last)? - base != u64::from(p.term.unpacked_length) {
            return Err(shape());
        }
        // File offset of chunk i of this term.
        let file_at = |i: u32| begin(i).map(|b| p.at + (b - base));
        // The first chunk ending after `start`, the last starting before `end`.
        let mut a = first;
        while a + 1 < last && file_at(a + 1)? <= start {
            a += 1;
        }
        let mut b = a + 1;
        while b < last && file_at(b)? < end {
            b += 1;
        }
        if terms.is_empty() {
            offset_into_first_range = start.saturating_sub(file_at(a)?);
        }
        terms.push(XorbReconstructionTerm {
            hash: p.xorb.into(),
            unpacked_length: u32::try_from(begin(b)? - begin(a)?).map_err(|_| shape())?,
            range: ChunkRange::new(a, b),
        });
        match needs.iter_mut().find(|(x, _)| *x == p.xorb) {
            Some((_, ranges)) => ranges.push((a, b)),
            None => needs.push((p.xorb, vec![(a, b)])),
        }
    }
    // One fetch per xorb, its ranges merged where they overlap or touch (as the CAS merges
    // them): a chunk two terms share is fetched once.
    let mut xorbs = HashMap::new();
    for (xorb, mut ranges) in needs {
        let footer = footer_of(footers, &xorb)?;
        ranges.sort_unstable();
        let mut merged: Vec<(u32, u32)> = Vec::new();
        for (a, b) in ranges {
            match merged.last_mut() {
                Some(last) if a <= last.1 => last.1 = last.1.max(b),
                _ => merged.push((a, b)),
            }
        }
        let ranges = merged
            .into_iter()
            .map(|(a, b)| {
                let (from, to) = footer.stored_range(a, b).ok_or_else(|| {
                    XetError::Cas(format!(
                        "xorb {}: no stored range for chunks {a}..{b}",
                        xorb.hex()
                    ))
                })?;
                Ok(XorbRangeDescriptor {
                    chunks: ChunkRange::new(a, b),
                    bytes: HttpRange::new(from, to),
                })
            })
            .collect::<Result<Vec<_>, XetError>>()?;
        let url = url_of(window, &xorb)?;
        xorbs.insert(xorb.into(), vec![XorbMultiRangeFetch { url, ranges }]);
    }
    Ok(QueryReconstructionResponseV2 {
        offset_into_first_range,
        terms,
        xorbs,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use xet_core_structures::merklehash::compute_data_hash;

    fn hash(n: u8) -> MerkleHash {
        compute_data_hash(&[n])
    }

    /// A footer of chunks of `lens` bytes, stored back to back with 8-byte headers.
    fn footer(lens: &[u64]) -> Arc<Footer> {
        let ends: Vec<u64> = lens
            .iter()
            .scan(0, |at, l| {
                *at += l;
                Some(*at)
            })
            .collect();
        let stored: Vec<u32> = lens
            .iter()
            .scan(0u32, |at, l| {
                *at += 8 + *l as u32;
                Some(*at)
            })
            .collect();
        Arc::new(Footer {
            chunk_hashes: (0..lens.len()).map(|i| hash(i as u8)).collect(),
            chunk_lens: lens.to_vec(),
            unpacked_ends: ends,
            stored_ends: stored,
        })
    }

    fn term(xorb: MerkleHash, chunks: (u32, u32), len: u32) -> XorbReconstructionTerm {
        XorbReconstructionTerm {
            hash: xorb.into(),
            unpacked_length: len,
            range: ChunkRange::new(chunks.0, chunks.1),
        }
    }

    /// Xorb X: chunks of 100 bytes, Y: of 50. The window starts at byte 1000, 30 bytes into
    /// X's chunk 1: X chunks 1..4 hold bytes 970..1270, Y chunks 0..3 bytes 1270..1420.
    fn setup() -> (
        QueryReconstructionResponseV2,
        HashMap<MerkleHash, Arc<Footer>>,
        MerkleHash,
        MerkleHash,
    ) {
        let (x, y) = (hash(100), hash(200));
        let mut xorbs = HashMap::new();
        for (h, url) in [(x, "http://cas/x"), (y, "http://cas/y")] {
            xorbs.insert(
                h.into(),
                vec![XorbMultiRangeFetch {
                    url: url.into(),
                    ranges: vec![],
                }],
            );
        }
        let window = QueryReconstructionResponseV2 {
            offset_into_first_range: 30,
            terms: vec![term(x, (1, 4), 300), term(y, (0, 3), 150)],
            xorbs,
        };
        let footers = HashMap::from([(x, footer(&[100; 4])), (y, footer(&[50; 3]))]);
        (window, footers, x, y)
    }

    #[test]
    fn a_run_fits_the_window_of_its_start_or_the_one_before() {
        let size = 10 * HALF;
        let w = window_of(HALF + 5, HALF + 5 + (8 << 20), size).unwrap();
        assert_eq!((w.start, w.end), (HALF, 3 * HALF));
        // Clamped to the file; a run past the file or longer than HALF has none.
        let w = window_of(9 * HALF + 1, 10 * HALF, size).unwrap();
        assert_eq!((w.start, w.end), (9 * HALF, 10 * HALF));
        assert!(window_of(0, HALF + 1, size).is_none());
        assert!(window_of(size - 1, size + 1, size).is_none());
        // The window before holds the second half of its span, not beyond.
        let own = window_of(3 * HALF + 7, 3 * HALF + 100, size).unwrap();
        let before = window_before(own, 3 * HALF + 100).unwrap();
        assert_eq!((before.start, before.end), (2 * HALF, 4 * HALF));
        assert!(window_before(own, 4 * HALF + 1).is_none());
        assert!(window_before(window_of(5, 10, size).unwrap(), 10).is_none());
        // At the file's end both are clamped alike.
        let own = window_of(9 * HALF + 1, 9 * HALF + 10, 9 * HALF + 20).unwrap();
        let before = window_before(own, 9 * HALF + 10).unwrap();
        assert_eq!((before.start, before.end), (8 * HALF, 9 * HALF + 20));
    }

    #[test]
    fn a_cut_keeps_the_chunks_under_the_run_with_their_stored_bytes() {
        let (window, footers, x, y) = setup();
        let plan = cut(&window, 1000, &footers, 1100, 1300).unwrap();
        // Byte 1100 is 30 bytes into X's chunk 2 (1070..1170); byte 1299 in Y's chunk 0.
        assert_eq!(plan.offset_into_first_range, 30);
        let terms: Vec<_> = plan
            .terms
            .iter()
            .map(|t| {
                (
                    MerkleHash::from(&t.hash),
                    t.range.start,
                    t.range.end,
                    t.unpacked_length,
                )
            })
            .collect();
        assert_eq!(terms, vec![(x, 2, 4, 200), (y, 0, 1, 50)]);
        let fx = &plan.xorbs[&x.into()];
        assert_eq!(fx.len(), 1);
        assert_eq!(fx[0].url, "http://cas/x");
        // Chunks 2..4 of X are stored at 216..432 (108 bytes each with their header).
        assert_eq!(
            (fx[0].ranges[0].bytes.start, fx[0].ranges[0].bytes.end),
            (216, 431)
        );
        let fy = &plan.xorbs[&y.into()];
        assert_eq!(
            (fy[0].ranges[0].bytes.start, fy[0].ranges[0].bytes.end),
            (0, 57)
        );
        assert_eq!(
            xorbs_under(&window, 1000, 1100, 1300).unwrap(),
            vec![
                (x, "http://cas/x".to_string()),
                (y, "http://cas/y".to_string())
            ]
        );
        // A run inside one chunk: that chunk alone.
        let plan = cut(&window, 1000, &footers, 1000, 1001).unwrap();
        assert_eq!(plan.offset_into_first_range, 30);
        assert_eq!((plan.terms[0].range.start, plan.terms[0].range.end), (1, 2));
        assert_eq!(plan.terms.len(), 1);
    }

    #[test]
    fn ranges_of_one_xorb_are_merged_where_they_overlap_or_touch() {
        let (mut window, footers, x, y) = setup();
        // X chunks 1..4, then Y 0..3, then X 2..4 again, then X 0..1: bytes 970..1720.
        window.terms.push(term(x, (2, 4), 200));
        window.terms.push(term(x, (0, 1), 100));
        let plan = cut(&window, 1000, &footers, 1000, 1720).unwrap();
        assert_eq!(plan.terms.len(), 4);
        let fx = &plan.xorbs[&x.into()];
        assert_eq!(fx.len(), 1);
        let ranges: Vec<_> = fx[0]
            .ranges
            .iter()
            .map(|r| (r.chunks.start, r.chunks.end, r.bytes.start, r.bytes.end))
            .collect();
        // 1..4, 2..4 and 0..1 make 0..4: all of X, once.
        assert_eq!(ranges, vec![(0, 4, 0, 431)]);
        assert_eq!(plan.xorbs[&y.into()][0].ranges.len(), 1);
    }

    #[test]
    fn a_cut_refuses_what_does_not_add_up() {
        let (mut window, mut footers, x, _) = setup();
        // Past the window's end.
        assert!(cut(&window, 1000, &footers, 1400, 1500).is_err());
        // Without a footer.
        let mut missing = footers.clone();
        missing.remove(&x);
        assert!(cut(&window, 1000, &missing, 1100, 1200).is_err());
        // A footer whose chunks do not add up to the term's length.
        footers.insert(x, footer(&[100, 100, 90, 100]));
        assert!(cut(&window, 1000, &footers, 1100, 1200).is_err());
        // A term beyond the footer's chunks.
        footers.insert(x, footer(&[100; 3]));
        assert!(cut(&window, 1000, &footers, 1100, 1200).is_err());
        // A window that would start before the file.
        window.offset_into_first_range = 2000;
        assert!(cut(&window, 1000, &footers, 1100, 1200).is_err());
    }

    #[test]
    fn a_cut_plan_assembles_the_same_bytes_as_the_window() {
        let (window, footers, x, y) = setup();
        // Each chunk's bytes: its xorb's tag, its index, then a counter.
        let mut chunks = HashMap::new();
        for (xorb, n, len) in [(x, 4u32, 100usize), (y, 3, 50)] {
            for i in 0..n {
                let data: Vec<u8> = (0..len)
                    .map(|k| (k as u8) ^ (i as u8 * 31) ^ xorb.as_bytes()[0])
                    .collect();
                chunks.insert(
                    (xorb, i),
                    (
                        bytes::Bytes::from(data),
                        footers[&xorb].chunk_hashes[i as usize],
                    ),
                );
            }
        }
        let whole = super::super::assemble(&window, &chunks, 1000, 1420, 64).unwrap();
        let whole: Vec<u8> = whole.pieces.iter().flat_map(|(d, _)| d.to_vec()).collect();
        for (start, end) in [
            (1000, 1420),
            (1100, 1300),
            (1069, 1071),
            (1270, 1271),
            (1419, 1420),
        ] {
            let plan = cut(&window, 1000, &footers, start, end).unwrap();
            let run = super::super::assemble(&plan, &chunks, start, end, 64).unwrap();
            let got: Vec<u8> = run.pieces.iter().flat_map(|(d, _)| d.to_vec()).collect();
            assert_eq!(got, whole[(start - 1000) as usize..(end - 1000) as usize]);
            assert!(run.pieces.iter().all(|(d, _)| d.len() <= 64));
            // The chunk list starts at the first chunk's file offset and covers the run.
            let covered: u64 = run.chunks.iter().map(|(_, l)| l).sum();
            assert!(run.first_chunk_at <= start && run.first_chunk_at + covered >= end);
        }
    }
}
