//! Snapshot files: `snapshot/snap-<term>-<index>.bin`, both numbers zero-padded to 20 digits.
//!
//! Layout (little-endian):
//! ```text
//! 0..8     magic "RAFTSNAP"
//! 8..12    format version (u32) = 1
//! 12..16   reserved, zero
//! 16..24   index (u64): last log index included
//! 24..32   term (u64): term of that entry
//! 32..36   conf_len (u32), at most SNAPSHOT_CONF_BYTES_MAX
//! 36..40   reserved, zero
//! 40..48   data_len (u64), at most SNAPSHOT_DATA_BYTES_MAX
//! 48..     conf bytes, then data bytes
//! last 4   CRC-32 (IEEE) of every byte before it
//! ```

use std::ops::Range;

use crate::error::Corruption;
use crate::SnapshotMeta;

const MAGIC: [u8; 8] = *b"RAFTSNAP";
const FORMAT_VERSION: u32 = 1;
const HEADER_BYTES: usize = 48;
const TRAILER_BYTES: usize = 4;
/// Bound on a snapshot's opaque membership configuration.
pub const SNAPSHOT_CONF_BYTES_MAX: u32 = 1024 * 1024;
/// Bound on a snapshot's data, part of the format. Snapshots are loaded whole into memory.
pub const SNAPSHOT_DATA_BYTES_MAX: u64 = 1024 * 1024 * 1024;
/// Bound on a whole snapshot file, used before reading one.
pub(crate) const SNAPSHOT_FILE_BYTES_MAX: u64 = HEADER_BYTES as u64
    + SNAPSHOT_CONF_BYTES_MAX as u64
    + SNAPSHOT_DATA_BYTES_MAX
    + TRAILER_BYTES as u64;

/// The file name of the snapshot at (`term`, `index`).
pub(crate) fn file_name(term: u64, index: u64) -> String {
    format!("snap-{term:020}-{index:020}.bin")
}

/// Parses a name made by [`file_name`] into (term, index).
pub(crate) fn parse_file_name(name: &str) -> Option<(u64, u64)> {
    let rest = name.strip_prefix("snap-")?.strip_suffix(".bin")?;
    let (term, index) = rest.split_once('-')?;
    let digits = |s: &str| s.len() == 20 && s.bytes().all(|b| b.is_ascii_digit());
    if !digits(term) || !digits(index) {
        return None;
    }
    Some((term.parse().ok()?, index.parse().ok()?))
}

/// The header (with the conf bytes) of a snapshot file; the data and then [`encode_trailer`] follow it.
/// Split in parts so that a large data buffer is written as it is, never copied.
pub(crate) fn encode_header(meta: &SnapshotMeta, data_len: usize) -> Vec<u8> {
    let conf_len = u32::try_from(meta.conf.len()).expect("conf length checked by the caller");
    assert!(
        conf_len <= SNAPSHOT_CONF_BYTES_MAX,
        "conf length checked by the caller"
    );
    assert!(
        data_len as u64 <= SNAPSHOT_DATA_BYTES_MAX,
        "data length checked by the caller"
    );
    let mut buf = Vec::with_capacity(HEADER_BYTES + meta.conf.len());
    buf.extend_from_slice(&MAGIC);
    buf.extend_from_slice(&FORMAT_VERSION.to_le_bytes());
    buf.extend_from_slice(&0u32.to_le_bytes());
    buf.extend_from_slice(&meta.index.to_le_bytes());
    buf.extend_from_slice(&meta.term.to_le_bytes());
    buf.extend_from_slice(&conf_len.to_le_bytes());
    buf.extend_from_slice(&0u32.to_le_bytes());
    buf.extend_from_slice(&(data_len as u64).to_le_bytes());
    debug_assert_eq!(buf.len(), HEADER_BYTES);
    buf.extend_from_slice(&meta.conf);
    buf
}

/// The checksum trailer over the header and the data.
pub(crate) fn encode_trailer(header: &[u8], data: &[u8]) -> [u8; TRAILER_BYTES] {
    let mut hasher = crc32fast::Hasher::new();
    hasher.update(header);
    hasher.update(data);
    hasher.finalize().to_le_bytes()
}

/// Decodes a whole snapshot file; returns its metadata and where its data lies in `buf`.
/// Errors carry the offset of the bad field.
pub(crate) fn decode(buf: &[u8]) -> Result<(SnapshotMeta, Range<usize>), (u64, Corruption)> {
    if buf.len() < HEADER_BYTES + TRAILER_BYTES {
        let corruption = Corruption::Truncated {
            needed_bytes: (HEADER_BYTES + TRAILER_BYTES) as u64,
            found_bytes: buf.len() as u64,
        };
        return Err((0, corruption));
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
    // Lengths first: the checksum sits at an offset they determine.
    let conf_len = u32_at(32);
    if conf_len > SNAPSHOT_CONF_BYTES_MAX {
        let corruption = Corruption::TooLarge {
            length_bytes: u64::from(conf_len),
            max_bytes: u64::from(SNAPSHOT_CONF_BYTES_MAX),
        };
        return Err((32, corruption));
    }
    let data_len = u64_at(40);
    if data_len > SNAPSHOT_DATA_BYTES_MAX {
        let corruption = Corruption::TooLarge {
            length_bytes: data_len,
            max_bytes: SNAPSHOT_DATA_BYTES_MAX,
        };
        return Err((40, corruption));
    }
    let body_end = HEADER_BYTES as u64 + u64::from(conf_len) + data_len;
    let total = body_end + TRAILER_BYTES as u64;
    if (buf.len() as u64) < total {
        let corruption = Corruption::Truncated {
            needed_bytes: total,
            found_bytes: buf.len() as u64,
        };
        return Err((buf.len() as u64, corruption));
    }
    if (buf.len() as u64) > total {
        let corruption = Corruption::TrailingBytes {
            expected_bytes: total,
            found_bytes: buf.len() as u64,
        };
        return Err((total, corruption));
    }
    let body_end = body_end as usize; // Fits: it is below buf.len().
    let stored = u32_at(body_end);
    let computed = crc32fast::hash(&buf[..body_end]);
    if stored != computed {
        return Err((
            body_end as u64,
            Corruption::ChecksumMismatch { stored, computed },
        ));
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
    if u32_at(12) != 0 || u32_at(36) != 0 {
        return Err((12, Corruption::ReservedNotZero));
    }
    let conf_end = HEADER_BYTES + conf_len as usize;
    let meta = SnapshotMeta {
        index: u64_at(16),
        term: u64_at(24),
        conf: buf[HEADER_BYTES..conf_end].to_vec(),
    };
    if meta.index == 0 {
        return Err((16, Corruption::ZeroIndex));
    }
    Ok((meta, conf_end..body_end))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn encode(meta: &SnapshotMeta, data: &[u8]) -> Vec<u8> {
        let mut buf = encode_header(meta, data.len());
        let trailer = encode_trailer(&buf, data);
        buf.extend_from_slice(data);
        buf.extend_from_slice(&trailer);
        buf
    }

    #[test]
    fn names_roundtrip_and_reject_strangers() {
        assert_eq!(parse_file_name(&file_name(3, 1234)), Some((3, 1234)));
        assert_eq!(parse_file_name("snap-1-2.bin"), None);
        assert_eq!(parse_file_name(&format!("{}.tmp", file_name(3, 4))), None);
        assert_eq!(
            parse_file_name("snap-0000000000000000000a-00000000000000000001.bin"),
            None
        );
    }

    #[test]
    fn flipped_byte_is_detected() {
        let meta = SnapshotMeta {
            index: 9,
            term: 2,
            conf: vec![1, 2, 3],
        };
        let good = encode(&meta, b"state machine");
        for i in 0..good.len() {
            let mut bad = good.clone();
            bad[i] ^= 0x01;
            assert!(decode(&bad).is_err(), "flip at byte {i} went unnoticed");
        }
    }

    proptest! {
        #[test]
        fn roundtrip(
            index in 1u64..,
            term in any::<u64>(),
            conf in proptest::collection::vec(any::<u8>(), 0..64),
            data in proptest::collection::vec(any::<u8>(), 0..512),
        ) {
            let meta = SnapshotMeta { index, term, conf };
            let buf = encode(&meta, &data);
            let (decoded, range) = decode(&buf).unwrap();
            prop_assert_eq!(decoded, meta);
            prop_assert_eq!(&buf[range], &data[..]);
        }

        #[test]
        fn decoding_arbitrary_bytes_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..256)) {
            let _ = decode(&bytes);
        }
    }
}
