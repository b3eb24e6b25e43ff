//! Chunk verification against a xorb's footer.
//!
//! A footer is trusted only after the xorb hash recomputed from its chunk hashes and lengths
//! equals the xorb's name (the key the reconstruction gave us): the xorb hash is a Merkle root
//! over `(chunk hash, length)`, so a footer that passes authenticates every chunk hash in it.
//! A chunk is handed out only when `compute_data_hash(bytes)` equals its footer entry.

use std::io::Cursor;

use xet_core_structures::merklehash::{compute_data_hash, xorb_hash, MerkleHash};
use xet_core_structures::xorb_object::XorbObject;

/// A verified footer: the chunk hashes and uncompressed lengths of one xorb.
#[derive(Debug)]
pub struct Footer {
    pub chunk_hashes: Vec<MerkleHash>,
    pub chunk_lens: Vec<u64>,
    /// Where each chunk ends in the decompressed xorb (running sum of `chunk_lens`).
    pub unpacked_ends: Vec<u64>,
    /// Where each chunk ends in the stored (compressed, with headers) xorb: the byte ranges to
    /// ask for a chunk run. Not covered by the xorb hash; a wrong one only yields chunks that
    /// fail their hashes.
    pub stored_ends: Vec<u32>,
}

/// Why bytes from the CAS were refused.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum VerifyError {
    #[error("xorb {0}: footer unreadable: {1}")]
    FooterFormat(String, String),
    #[error("xorb {0}: footer does not hash to the xorb's name")]
    FooterMismatch(String),
    #[error("xorb {xorb}: chunk {index} is outside its {chunks} chunks")]
    ChunkOutOfRange {
        xorb: String,
        index: u32,
        chunks: usize,
    },
    #[error("xorb {xorb}: chunk {index} failed its hash check")]
    ChunkMismatch { xorb: String, index: u32 },
    #[error("xorb {xorb}: chunks {start}..{end} arrived as {got} pieces")]
    Shape {
        xorb: String,
        start: u32,
        end: u32,
        got: usize,
    },
}

impl Footer {
    /// Parses footer bytes (`XorbObjectInfo` + its u32 length) and checks them against
    /// `xorb`, the hash the reconstruction named.
    pub fn parse(xorb: &MerkleHash, bytes: &[u8]) -> Result<Footer, VerifyError> {
        let name = xorb.hex();
        let obj = XorbObject::deserialize(&mut Cursor::new(bytes))
            .map_err(|e| VerifyError::FooterFormat(name.clone(), e.to_string()))?;
        let n = obj.info.num_chunks;
        let pairs = obj
            .chunk_hash_sizes(0, n)
            .map_err(|e| VerifyError::FooterFormat(name.clone(), e.to_string()))?;
        if xorb_hash(&pairs) != *xorb || obj.info.xorb_hash != *xorb {
            return Err(VerifyError::FooterMismatch(name));
        }
        let (chunk_hashes, chunk_lens): (Vec<MerkleHash>, Vec<u64>) = pairs.into_iter().unzip();
        let unpacked_ends = chunk_lens
            .iter()
            .scan(0u64, |at, len| {
                *at += len;
                Some(*at)
            })
            .collect();
        let stored_ends = obj.info.chunk_boundary_offsets.clone();
        if stored_ends.len() != chunk_hashes.len() {
            return Err(VerifyError::FooterFormat(
                name,
                "chunk boundary offsets do not match the chunk count".into(),
            ));
        }
        Ok(Footer {
            chunk_hashes,
            chunk_lens,
            unpacked_ends,
            stored_ends,
        })
    }

    /// The stored byte range of chunks `start..end` (`end` > `start`), as an inclusive range.
    pub fn stored_range(&self, start: u32, end: u32) -> Option<(u64, u64)> {
        let from = if start == 0 {
            0
        } else {
            *self.stored_ends.get(start as usize - 1)?
        };
        let to = *self.stored_ends.get((end as usize).checked_sub(1)?)?;
        (to > from).then(|| (u64::from(from), u64::from(to) - 1))
    }

    /// Checks the decompressed chunks `start..start + n` held in `data`, cut at `offsets`
    /// (xet-core's chunk byte indices: a leading 0, then each chunk's end).
    pub fn check_chunks(
        &self,
        xorb: &MerkleHash,
        start: u32,
        end: u32,
        data: &[u8],
        offsets: &[u32],
    ) -> Result<(), VerifyError> {
        let count = end.saturating_sub(start) as usize;
        let mut cuts: Vec<usize> = offsets.iter().map(|&o| o as usize).collect();
        if cuts.first() != Some(&0) {
            cuts.insert(0, 0);
        }
        if cuts.last() != Some(&data.len()) {
            cuts.push(data.len());
        }
        if cuts.len() != count + 1 || cuts.windows(2).any(|w| w[0] > w[1]) {
            return Err(VerifyError::Shape {
                xorb: xorb.hex(),
                start,
                end,
                got: cuts.len().saturating_sub(1),
            });
        }
        for (k, w) in cuts.windows(2).enumerate() {
            let index = start + k as u32;
            let Some(expected) = self.chunk_hashes.get(index as usize) else {
                return Err(VerifyError::ChunkOutOfRange {
                    xorb: xorb.hex(),
                    index,
                    chunks: self.chunk_hashes.len(),
                });
            };
            // The footer's length too: it places the chunk for whoever cuts the run by it
            // (`fetch_range`, the chunk store), and the xorb hash covers it.
            let len_ok = self.chunk_lens.get(index as usize) == Some(&((w[1] - w[0]) as u64));
            if !len_ok || compute_data_hash(&data[w[0]..w[1]]) != *expected {
                return Err(VerifyError::ChunkMismatch {
                    xorb: xorb.hex(),
                    index,
                });
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use std::io::Cursor;

    use xet_core_structures::xorb_object::xorb_format_test_utils::{build_raw_xorb, ChunkSize};
    use xet_core_structures::xorb_object::{deserialize_chunks, SerializedXorbObject};

    use super::*;

    /// A serialized xorb with footer (as the CAS stores it): (hash, chunk bytes, footer bytes).
    fn xorb(chunks: u32) -> (MerkleHash, Vec<u8>, Vec<u8>) {
        let raw = build_raw_xorb(chunks, ChunkSize::Random(2_000, 20_000));
        let ser = SerializedXorbObject::from_xorb(raw, true, "lz4", 16).expect("serialize");
        let at = ser.footer_start.expect("footer") as usize;
        let data = ser.serialized_data;
        (ser.hash, data[..at].to_vec(), data[at..].to_vec())
    }

    #[test]
    fn good_footer_and_chunks_pass() {
        let (hash, body, footer) = xorb(6);
        let footer = Footer::parse(&hash, &footer).expect("footer");
        assert_eq!(footer.chunk_hashes.len(), 6);
        let (data, offsets) = deserialize_chunks(&mut Cursor::new(&body)).expect("chunks");
        footer
            .check_chunks(&hash, 0, 6, &data, &offsets)
            .expect("all chunks verify");
        // A sub-range, as a reconstruction fetch gives it: chunks 2..5 only.
        let from = offsets[2] as usize;
        let to = offsets[5] as usize;
        let sub: Vec<u32> = offsets[2..=5].iter().map(|o| o - offsets[2]).collect();
        footer
            .check_chunks(&hash, 2, 5, &data[from..to], &sub)
            .expect("sub-range verifies");
    }

    #[test]
    fn corrupted_chunk_is_detected() {
        let (hash, body, footer) = xorb(4);
        let footer = Footer::parse(&hash, &footer).expect("footer");
        let (mut data, offsets) = deserialize_chunks(&mut Cursor::new(&body)).expect("chunks");
        let i = offsets[2] as usize + 7;
        data[i] ^= 0x01;
        let err = footer
            .check_chunks(&hash, 0, 4, &data, &offsets)
            .unwrap_err();
        assert_eq!(
            err,
            VerifyError::ChunkMismatch {
                xorb: hash.hex(),
                index: 2
            }
        );
    }

    #[test]
    fn chunks_under_the_wrong_index_are_detected() {
        // Right bytes, wrong place: chunks 0..2 presented as 1..3.
        let (hash, body, footer) = xorb(4);
        let footer = Footer::parse(&hash, &footer).expect("footer");
        let (data, offsets) = deserialize_chunks(&mut Cursor::new(&body)).expect("chunks");
        let to = offsets[2] as usize;
        let err = footer
            .check_chunks(&hash, 1, 3, &data[..to], &offsets[..=2])
            .unwrap_err();
        assert!(matches!(err, VerifyError::ChunkMismatch { index: 1, .. }));
    }

    #[test]
    fn chunk_lengths_that_disagree_with_the_footer_are_refused() {
        // A footer is authenticated by whatever lengths its xorb hash covers: a CAS that lies
        // about one (and names the xorb after the lie) must not get chunks cut by it.
        let (hash, body, footer) = xorb(4);
        let mut footer = Footer::parse(&hash, &footer).expect("footer");
        let (data, offsets) = deserialize_chunks(&mut Cursor::new(&body)).expect("chunks");
        footer.chunk_lens[1] += 1;
        footer.chunk_lens[2] -= 1;
        let err = footer
            .check_chunks(&hash, 0, 4, &data, &offsets)
            .unwrap_err();
        assert!(matches!(err, VerifyError::ChunkMismatch { index: 1, .. }));
    }

    #[test]
    fn footer_mismatch_is_detected() {
        let (hash, _, footer) = xorb(4);
        // A footer naming another xorb's chunks: its recomputed hash is not our name.
        let (_, _, other) = xorb(4);
        assert_eq!(
            Footer::parse(&hash, &other).unwrap_err(),
            VerifyError::FooterMismatch(hash.hex())
        );
        // One flipped byte inside the chunk-hash section.
        let mut bad = footer.clone();
        bad[60] ^= 0x80;
        assert!(Footer::parse(&hash, &bad).is_err());
        // Truncated.
        assert!(Footer::parse(&hash, &footer[10..]).is_err());
    }

    #[test]
    fn missing_pieces_are_detected() {
        let (hash, body, footer) = xorb(3);
        let footer = Footer::parse(&hash, &footer).expect("footer");
        let (data, offsets) = deserialize_chunks(&mut Cursor::new(&body)).expect("chunks");
        // Asked for chunks 0..3, the answer holds two.
        let to = offsets[2] as usize;
        let err = footer
            .check_chunks(&hash, 0, 3, &data[..to], &offsets[..=2])
            .unwrap_err();
        assert!(matches!(err, VerifyError::Shape { got: 2, .. }));
    }
}
