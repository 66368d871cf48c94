//! The `hardstate` file: the current term and vote, replaced atomically (see `Syncer::write_atomically`).
//!
//! Layout (36 bytes, little-endian):
//! ```text
//! 0..8    magic "RAFTHARD"
//! 8..12   format version (u32) = 1
//! 12..16  flags (u32): bit 0 = a vote is present; other bits zero
//! 16..24  term (u64)
//! 24..32  voted_for (u64): the node voted for; zero when no vote is present
//! 32..36  CRC-32 (IEEE) of bytes 0..32
//! ```
//! The commit index is not kept here: it changes with nearly every batch, and rewriting this file costs two
//! fsyncs, so it goes into the WAL as a commit record instead (see `record.rs`).

use crate::error::Corruption;

const MAGIC: [u8; 8] = *b"RAFTHARD";
const FORMAT_VERSION: u32 = 1;
const FLAG_VOTED: u32 = 1;
/// Exact size of the file.
pub(crate) const HARD_STATE_FILE_BYTES: usize = 36;

/// Term and vote, the part of the hard state kept in the `hardstate` file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(crate) struct TermVote {
    pub(crate) term: u64,
    pub(crate) voted_for: Option<u64>,
}

pub(crate) fn encode(state: TermVote) -> [u8; HARD_STATE_FILE_BYTES] {
    let mut buf = [0u8; HARD_STATE_FILE_BYTES];
    buf[0..8].copy_from_slice(&MAGIC);
    buf[8..12].copy_from_slice(&FORMAT_VERSION.to_le_bytes());
    let flags = if state.voted_for.is_some() {
        FLAG_VOTED
    } else {
        0
    };
    buf[12..16].copy_from_slice(&flags.to_le_bytes());
    buf[16..24].copy_from_slice(&state.term.to_le_bytes());
    buf[24..32].copy_from_slice(&state.voted_for.unwrap_or(0).to_le_bytes());
    let crc = crc32fast::hash(&buf[0..32]);
    buf[32..36].copy_from_slice(&crc.to_le_bytes());
    buf
}

/// Decodes the file; errors carry the offset of the bad field.
pub(crate) fn decode(buf: &[u8]) -> Result<TermVote, (u64, Corruption)> {
    if buf.len() < HARD_STATE_FILE_BYTES {
        let corruption = Corruption::Truncated {
            needed_bytes: HARD_STATE_FILE_BYTES as u64,
            found_bytes: buf.len() as u64,
        };
        return Err((buf.len() as u64, corruption));
    }
    if buf.len() > HARD_STATE_FILE_BYTES {
        let corruption = Corruption::TrailingBytes {
            expected_bytes: HARD_STATE_FILE_BYTES as u64,
            found_bytes: buf.len() as u64,
        };
        return Err((HARD_STATE_FILE_BYTES as u64, corruption));
    }
    let magic: [u8; 8] = buf[0..8].try_into().expect("slice of 8 bytes");
    if magic != MAGIC {
        return Err((
            0,
            Corruption::BadMagic {
                expected: MAGIC,
                found: magic,
            },
        ));
    }
    let u32_at =
        |offset: usize| u32::from_le_bytes(buf[offset..offset + 4].try_into().expect("4 bytes"));
    let u64_at =
        |offset: usize| u64::from_le_bytes(buf[offset..offset + 8].try_into().expect("8 bytes"));
    let stored = u32_at(32);
    let computed = crc32fast::hash(&buf[0..32]);
    if stored != computed {
        return Err((32, Corruption::ChecksumMismatch { stored, computed }));
    }
    let version = u32_at(8);
    if version != FORMAT_VERSION {
        return Err((
            8,
            Corruption::UnsupportedVersion {
                found: version,
                supported: FORMAT_VERSION,
            },
        ));
    }
    let flags = u32_at(12);
    if flags & !FLAG_VOTED != 0 {
        return Err((12, Corruption::ReservedNotZero));
    }
    let voted_for = if flags & FLAG_VOTED != 0 {
        Some(u64_at(24))
    } else {
        if u64_at(24) != 0 {
            return Err((24, Corruption::ReservedNotZero));
        }
        None
    };
    Ok(TermVote {
        term: u64_at(16),
        voted_for,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #[test]
        fn roundtrip(term in any::<u64>(), voted_for in proptest::option::of(any::<u64>())) {
            let state = TermVote { term, voted_for };
            prop_assert_eq!(decode(&encode(state)), Ok(state));
        }

        #[test]
        fn decoding_arbitrary_bytes_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..64)) {
            let _ = decode(&bytes);
        }
    }

    #[test]
    fn flipped_byte_is_detected() {
        let good = encode(TermVote {
            term: 7,
            voted_for: Some(3),
        });
        for i in 0..good.len() {
            let mut bad = good;
            bad[i] ^= 0x10;
            assert!(decode(&bad).is_err(), "flip at byte {i} went unnoticed");
        }
    }
}
