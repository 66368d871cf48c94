//! The WAL segment format: a segment header, record framing, and the scan that tells a torn tail from
//! corruption. Pure functions over byte slices; all file I/O lives in `storage.rs`.
//!
//! Segment header (32 bytes, little-endian):
//! ```text
//! 0..8    magic "RAFTWAL\0"
//! 8..12   format version (u32) = 1
//! 12..16  reserved, zero
//! 16..24  first_index (u64): index of the first entry this segment holds (also its file name)
//! 24..28  reserved, zero
//! 28..32  CRC-32 (IEEE) of bytes 0..28
//! ```
//! Record (28-byte header + payload, little-endian):
//! ```text
//! 0..4    CRC-32 (IEEE) of bytes 4..(28 + payload_len): covers the length, kind, index, term and payload
//! 4..8    payload_len (u32), at most RECORD_PAYLOAD_BYTES_MAX
//! 8       kind: 1 = entry, 2 = commit
//! 9..12   reserved, zero
//! 12..20  index (u64): entry index, or the commit index for a commit record
//! 20..28  term (u64): entry term; zero for a commit record
//! 28..    payload (entry only; a commit record has none)
//! ```

use crate::error::Corruption;
use crate::Entry;

/// Magic bytes at the start of every WAL segment.
pub(crate) const SEGMENT_MAGIC: [u8; 8] = *b"RAFTWAL\0";
/// Version of the segment and record format this build writes and reads.
pub(crate) const SEGMENT_FORMAT_VERSION: u32 = 1;
/// Size of the segment header.
pub(crate) const SEGMENT_HEADER_BYTES: usize = 32;
/// Size of a record header (everything but the payload).
pub(crate) const RECORD_HEADER_BYTES: usize = 28;
/// Hard bound on one record's payload, part of the format: a length field above it is damage, not data.
pub const RECORD_PAYLOAD_BYTES_MAX: u32 = 64 * 1024 * 1024;

const KIND_ENTRY: u8 = 1;
const KIND_COMMIT: u8 = 2;

/// One decoded WAL record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Record {
    /// A log entry.
    Entry(Entry),
    /// The commit index known when the record was written.
    Commit {
        /// The commit index.
        commit: u64,
    },
}

/// Why a record failed to decode.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum RecordError {
    /// The frame itself is bad: cut short, an impossible length, or a checksum mismatch. This is what a crash in
    /// the middle of a write leaves behind, so at the very end of the last segment it may be a torn tail.
    Frame(Corruption),
    /// The checksum is valid but the content is not what this build writes. Never a torn write.
    Content(Corruption),
}

fn u32_at(buf: &[u8], offset: usize) -> u32 {
    let bytes: [u8; 4] = buf[offset..offset + 4]
        .try_into()
        .expect("slice of 4 bytes");
    u32::from_le_bytes(bytes)
}

fn u64_at(buf: &[u8], offset: usize) -> u64 {
    let bytes: [u8; 8] = buf[offset..offset + 8]
        .try_into()
        .expect("slice of 8 bytes");
    u64::from_le_bytes(bytes)
}

/// Encodes a segment header for a segment whose first entry will be `first_index`.
pub(crate) fn encode_segment_header(first_index: u64) -> [u8; SEGMENT_HEADER_BYTES] {
    assert!(first_index >= 1, "log indexes start at 1");
    let mut header = [0u8; SEGMENT_HEADER_BYTES];
    header[0..8].copy_from_slice(&SEGMENT_MAGIC);
    header[8..12].copy_from_slice(&SEGMENT_FORMAT_VERSION.to_le_bytes());
    header[16..24].copy_from_slice(&first_index.to_le_bytes());
    let crc = crc32fast::hash(&header[0..28]);
    header[28..32].copy_from_slice(&crc.to_le_bytes());
    header
}

/// Decodes a segment header and returns the segment's first index. Errors carry the offset of the bad field.
pub(crate) fn decode_segment_header(buf: &[u8]) -> Result<u64, (u64, Corruption)> {
    if buf.len() < SEGMENT_HEADER_BYTES {
        return Err((
            0,
            Corruption::Truncated {
                needed_bytes: SEGMENT_HEADER_BYTES as u64,
                found_bytes: buf.len() as u64,
            },
        ));
    }
    let magic: [u8; 8] = buf[0..8].try_into().expect("slice of 8 bytes");
    if magic != SEGMENT_MAGIC {
        return Err((
            0,
            Corruption::BadMagic {
                expected: SEGMENT_MAGIC,
                found: magic,
            },
        ));
    }
    let stored = u32_at(buf, 28);
    let computed = crc32fast::hash(&buf[0..28]);
    if stored != computed {
        return Err((28, Corruption::ChecksumMismatch { stored, computed }));
    }
    let version = u32_at(buf, 8);
    if version != SEGMENT_FORMAT_VERSION {
        return Err((
            8,
            Corruption::UnsupportedVersion {
                found: version,
                supported: SEGMENT_FORMAT_VERSION,
            },
        ));
    }
    if u32_at(buf, 12) != 0 || u32_at(buf, 24) != 0 {
        return Err((12, Corruption::ReservedNotZero));
    }
    let first_index = u64_at(buf, 16);
    if first_index == 0 {
        return Err((16, Corruption::ZeroIndex));
    }
    Ok(first_index)
}

/// Encoded size of an entry record.
pub(crate) fn entry_record_bytes(entry: &Entry) -> usize {
    RECORD_HEADER_BYTES + entry.payload.len()
}

fn encode_frame(kind: u8, index: u64, term: u64, payload: &[u8], out: &mut Vec<u8>) {
    let payload_len = u32::try_from(payload.len()).expect("payload length checked by the caller");
    assert!(
        payload_len <= RECORD_PAYLOAD_BYTES_MAX,
        "payload length checked by the caller"
    );
    let start = out.len();
    out.extend_from_slice(&[0u8; 4]); // Checksum, filled in below once the covered bytes exist.
    out.extend_from_slice(&payload_len.to_le_bytes());
    out.extend_from_slice(&[kind, 0, 0, 0]);
    out.extend_from_slice(&index.to_le_bytes());
    out.extend_from_slice(&term.to_le_bytes());
    out.extend_from_slice(payload);
    let crc = crc32fast::hash(&out[start + 4..]);
    out[start..start + 4].copy_from_slice(&crc.to_le_bytes());
    debug_assert_eq!(out.len() - start, RECORD_HEADER_BYTES + payload.len());
}

/// Appends the encoding of an entry record to `out`.
pub(crate) fn encode_entry(entry: &Entry, out: &mut Vec<u8>) {
    assert!(entry.index >= 1, "log indexes start at 1");
    encode_frame(KIND_ENTRY, entry.index, entry.term, &entry.payload, out);
}

/// Appends the encoding of a commit record to `out`.
pub(crate) fn encode_commit(commit: u64, out: &mut Vec<u8>) {
    encode_frame(KIND_COMMIT, commit, 0, &[], out);
}

/// Decodes the record at the start of `buf`; returns it and its encoded length.
pub(crate) fn decode_record(buf: &[u8]) -> Result<(Record, usize), RecordError> {
    if buf.len() < RECORD_HEADER_BYTES {
        return Err(RecordError::Frame(Corruption::Truncated {
            needed_bytes: RECORD_HEADER_BYTES as u64,
            found_bytes: buf.len() as u64,
        }));
    }
    let payload_len = u32_at(buf, 4);
    if payload_len > RECORD_PAYLOAD_BYTES_MAX {
        return Err(RecordError::Frame(Corruption::TooLarge {
            length_bytes: u64::from(payload_len),
            max_bytes: u64::from(RECORD_PAYLOAD_BYTES_MAX),
        }));
    }
    let record_len = RECORD_HEADER_BYTES + payload_len as usize;
    if buf.len() < record_len {
        return Err(RecordError::Frame(Corruption::Truncated {
            needed_bytes: record_len as u64,
            found_bytes: buf.len() as u64,
        }));
    }
    let stored = u32_at(buf, 0);
    let computed = crc32fast::hash(&buf[4..record_len]);
    if stored != computed {
        return Err(RecordError::Frame(Corruption::ChecksumMismatch {
            stored,
            computed,
        }));
    }
    // From here on the bytes are exactly what some writer produced, so any problem is a content error.
    if buf[9..12] != [0, 0, 0] {
        return Err(RecordError::Content(Corruption::ReservedNotZero));
    }
    let index = u64_at(buf, 12);
    let term = u64_at(buf, 20);
    let record = match buf[8] {
        KIND_ENTRY => {
            if index == 0 {
                return Err(RecordError::Content(Corruption::ZeroIndex));
            }
            Record::Entry(Entry {
                index,
                term,
                payload: buf[RECORD_HEADER_BYTES..record_len].to_vec(),
            })
        }
        KIND_COMMIT => {
            if payload_len != 0 {
                return Err(RecordError::Content(Corruption::CommitWithPayload {
                    length_bytes: u64::from(payload_len),
                }));
            }
            if term != 0 {
                return Err(RecordError::Content(Corruption::ReservedNotZero));
            }
            Record::Commit { commit: index }
        }
        kind => return Err(RecordError::Content(Corruption::UnknownRecordKind { kind })),
    };
    Ok((record, record_len))
}

/// Bound on the bytes checksummed while looking for an intact record after a bad one. Without it, a payload
/// crafted to hold many plausible record headers could make that search quadratic.
const SEARCH_HASHED_BYTES_MAX: u64 = 1024 * 1024 * 1024;

/// Outcome of the search for an intact record after a bad one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum IntactSearch {
    /// An intact record frame starts at this offset.
    Found(usize),
    /// No intact record frame starts anywhere after the bad one.
    NotFound,
    /// The search hit `SEARCH_HASHED_BYTES_MAX` before reaching the end of the file.
    GaveUp,
}

/// Looks for a record with a valid frame (known kind, zero reserved bytes, bounded length, matching
/// checksum) starting at any offset in `buf[from..]`. Cheap checks go first, so scanning zeros or garbage
/// stays linear; only plausible headers cost a checksum.
fn find_intact_frame(buf: &[u8], from: usize, hashed_bytes_max: u64) -> IntactSearch {
    let mut hashed_bytes: u64 = 0;
    for pos in from..buf.len() {
        let rest = &buf[pos..];
        if rest.len() < RECORD_HEADER_BYTES {
            break;
        }
        if !(rest[8] == KIND_ENTRY || rest[8] == KIND_COMMIT) || rest[9..12] != [0, 0, 0] {
            continue;
        }
        let payload_len = u32_at(rest, 4);
        if payload_len > RECORD_PAYLOAD_BYTES_MAX {
            continue;
        }
        let record_len = RECORD_HEADER_BYTES + payload_len as usize;
        if rest.len() < record_len {
            continue;
        }
        hashed_bytes += record_len as u64;
        if hashed_bytes > hashed_bytes_max {
            return IntactSearch::GaveUp;
        }
        if u32_at(rest, 0) == crc32fast::hash(&rest[4..record_len]) {
            return IntactSearch::Found(pos);
        }
    }
    IntactSearch::NotFound
}

/// A record found by [`scan_segment`], with its byte offset in the file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ScannedRecord {
    /// Byte offset of the record's first byte within the segment file.
    pub(crate) offset: u64,
    /// The record.
    pub(crate) record: Record,
}

/// A torn tail found by [`scan_segment`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct TornTailScan {
    /// Byte offset where the torn record starts; the file is valid up to here.
    pub(crate) offset: u64,
    /// Why the record at `offset` failed.
    pub(crate) detail: Corruption,
}

/// The result of scanning one segment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct SegmentScan {
    /// First index from the header.
    pub(crate) first_index: u64,
    /// All valid records, in file order.
    pub(crate) records: Vec<ScannedRecord>,
    /// Set when the segment ends in a torn tail that recovery should cut off.
    pub(crate) torn: Option<TornTailScan>,
}

/// Scans a whole segment file held in `buf`.
///
/// The torn-tail rule: a record whose *frame* is bad (cut short, impossible length, checksum mismatch) is a torn
/// tail only if (1) it is in the last segment (`is_last`), and (2) no intact record frame starts at any byte
/// offset after it up to the end of the file. Everything after it is then zeros, garbage or a partial record,
/// which is what a crash in the middle of an unsynced write leaves. Otherwise it is corruption in the middle of
/// the log and the scan fails with the record's offset. A record whose checksum is valid but whose content is
/// wrong is always corruption. See the crate documentation for why this rule errs towards refusing to start.
pub(crate) fn scan_segment(buf: &[u8], is_last: bool) -> Result<SegmentScan, (u64, Corruption)> {
    let first_index = decode_segment_header(buf)?;
    let mut records = Vec::new();
    let mut pos = SEGMENT_HEADER_BYTES;
    while pos < buf.len() {
        match decode_record(&buf[pos..]) {
            Ok((record, len)) => {
                records.push(ScannedRecord {
                    offset: pos as u64,
                    record,
                });
                pos += len;
            }
            Err(RecordError::Content(corruption)) => return Err((pos as u64, corruption)),
            Err(RecordError::Frame(detail)) => {
                if !is_last {
                    let corruption = Corruption::MidLogRecord {
                        detail: format!("{detail}; later segments follow"),
                        next_intact_offset: None,
                    };
                    return Err((pos as u64, corruption));
                }
                match find_intact_frame(buf, pos + 1, SEARCH_HASHED_BYTES_MAX) {
                    IntactSearch::NotFound => {}
                    IntactSearch::Found(next) => {
                        let corruption = Corruption::MidLogRecord {
                            detail: detail.to_string(),
                            next_intact_offset: Some(next as u64),
                        };
                        return Err((pos as u64, corruption));
                    }
                    IntactSearch::GaveUp => {
                        // Not proven torn, so not cut: refusing to start is the safe side.
                        let corruption = Corruption::MidLogRecord {
                            detail: format!(
                                "{detail}; gave up proving a torn tail after checksumming \
                                 {SEARCH_HASHED_BYTES_MAX} bytes of what follows"
                            ),
                            next_intact_offset: None,
                        };
                        return Err((pos as u64, corruption));
                    }
                }
                let torn = TornTailScan {
                    offset: pos as u64,
                    detail,
                };
                return Ok(SegmentScan {
                    first_index,
                    records,
                    torn: Some(torn),
                });
            }
        }
    }
    assert_eq!(pos, buf.len(), "records end exactly at the end of the file");
    Ok(SegmentScan {
        first_index,
        records,
        torn: None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn entry(index: u64, term: u64, payload: &[u8]) -> Entry {
        Entry {
            index,
            term,
            payload: payload.to_vec(),
        }
    }

    fn segment(first_index: u64, entries: &[Entry]) -> Vec<u8> {
        let mut buf = encode_segment_header(first_index).to_vec();
        for e in entries {
            encode_entry(e, &mut buf);
        }
        buf
    }

    #[test]
    fn header_roundtrip() {
        let header = encode_segment_header(42);
        assert_eq!(decode_segment_header(&header), Ok(42));
    }

    #[test]
    fn header_rejects_future_version() {
        let mut header = encode_segment_header(1);
        header[8] = 2;
        let crc = crc32fast::hash(&header[0..28]);
        header[28..32].copy_from_slice(&crc.to_le_bytes());
        let (offset, corruption) = decode_segment_header(&header).unwrap_err();
        assert_eq!(offset, 8);
        assert!(matches!(
            corruption,
            Corruption::UnsupportedVersion { found: 2, .. }
        ));
    }

    #[test]
    fn commit_record_roundtrip() {
        let mut buf = Vec::new();
        encode_commit(77, &mut buf);
        assert_eq!(buf.len(), RECORD_HEADER_BYTES);
        assert_eq!(
            decode_record(&buf),
            Ok((Record::Commit { commit: 77 }, RECORD_HEADER_BYTES))
        );
    }

    #[test]
    fn oversized_length_is_a_frame_error() {
        let mut buf = Vec::new();
        encode_entry(&entry(1, 1, b"x"), &mut buf);
        buf[4..8].copy_from_slice(&(RECORD_PAYLOAD_BYTES_MAX + 1).to_le_bytes());
        assert!(matches!(
            decode_record(&buf),
            Err(RecordError::Frame(Corruption::TooLarge { .. }))
        ));
    }

    #[test]
    fn unknown_kind_with_valid_checksum_is_a_content_error() {
        let mut buf = Vec::new();
        encode_frame(9, 1, 1, b"", &mut buf);
        assert!(matches!(
            decode_record(&buf),
            Err(RecordError::Content(Corruption::UnknownRecordKind {
                kind: 9
            }))
        ));
    }

    #[test]
    fn scan_clean_segment() {
        let entries = [entry(5, 1, b"a"), entry(6, 2, b"bb")];
        let buf = segment(5, &entries);
        let scan = scan_segment(&buf, true).unwrap();
        assert_eq!(scan.first_index, 5);
        assert_eq!(scan.torn, None);
        assert_eq!(scan.records.len(), 2);
        assert_eq!(scan.records[0].offset, SEGMENT_HEADER_BYTES as u64);
        assert_eq!(scan.records[1].record, Record::Entry(entries[1].clone()));
    }

    #[test]
    fn partial_last_record_is_torn() {
        let buf = segment(1, &[entry(1, 1, b"hello"), entry(2, 1, b"world")]);
        let second = SEGMENT_HEADER_BYTES + RECORD_HEADER_BYTES + 5;
        for cut in second + 1..buf.len() {
            let scan = scan_segment(&buf[..cut], true).unwrap();
            assert_eq!(scan.records.len(), 1);
            assert_eq!(scan.torn.as_ref().map(|t| t.offset), Some(second as u64));
        }
    }

    #[test]
    fn zeros_and_garbage_after_last_record_are_torn() {
        let mut buf = segment(1, &[entry(1, 1, b"hello")]);
        let end = buf.len();
        buf.extend_from_slice(&[0u8; 4096]);
        let scan = scan_segment(&buf, true).unwrap();
        assert_eq!(scan.torn.map(|t| t.offset), Some(end as u64));
        let mut garbage = segment(1, &[entry(1, 1, b"hello")]);
        garbage.extend((0..4096u32).map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8));
        assert_eq!(
            scan_segment(&garbage, true).unwrap().torn.map(|t| t.offset),
            Some(end as u64)
        );
    }

    #[test]
    fn bad_record_followed_by_intact_record_is_corruption() {
        let mut buf = segment(1, &[entry(1, 1, b"hello"), entry(2, 1, b"world")]);
        let first = SEGMENT_HEADER_BYTES;
        buf[first + RECORD_HEADER_BYTES + 1] ^= 0x40; // Inside entry 1's payload.
        let (offset, corruption) = scan_segment(&buf, true).unwrap_err();
        assert_eq!(offset, first as u64);
        let second = (first + RECORD_HEADER_BYTES + 5) as u64;
        assert!(matches!(
            corruption,
            Corruption::MidLogRecord { next_intact_offset: Some(next), .. } if next == second
        ));
    }

    #[test]
    fn bad_record_in_inner_segment_is_corruption() {
        let mut buf = segment(1, &[entry(1, 1, b"hello")]);
        buf.push(0);
        let (offset, corruption) = scan_segment(&buf, false).unwrap_err();
        assert_eq!(offset, (buf.len() - 1) as u64);
        assert!(matches!(
            corruption,
            Corruption::MidLogRecord {
                next_intact_offset: None,
                ..
            }
        ));
    }

    #[test]
    fn search_for_intact_records_is_bounded() {
        // Many plausible record headers (kind 1, zero reserved bytes, a length that fits) but no valid one.
        let mut buf = Vec::new();
        for _ in 0..64 {
            let mut fake = [0u8; RECORD_HEADER_BYTES];
            fake[4..8].copy_from_slice(&100u32.to_le_bytes());
            fake[8] = KIND_ENTRY;
            buf.extend_from_slice(&fake);
            buf.extend_from_slice(&[0xee; 4]);
        }
        buf.extend_from_slice(&[0xee; 128]);
        assert_eq!(find_intact_frame(&buf, 0, u64::MAX), IntactSearch::NotFound);
        assert_eq!(find_intact_frame(&buf, 0, 1000), IntactSearch::GaveUp);
    }

    proptest! {
        #[test]
        fn entry_record_roundtrip(
            index in 1u64..,
            term in any::<u64>(),
            payload in proptest::collection::vec(any::<u8>(), 0..512),
        ) {
            let e = entry(index, term, &payload);
            let mut buf = Vec::new();
            encode_entry(&e, &mut buf);
            prop_assert_eq!(buf.len(), entry_record_bytes(&e));
            let (record, len) = decode_record(&buf).unwrap();
            prop_assert_eq!(len, buf.len());
            prop_assert_eq!(record, Record::Entry(e));
        }

        #[test]
        fn any_single_bit_flip_is_detected(
            payload in proptest::collection::vec(any::<u8>(), 0..64),
            bit in any::<prop::sample::Index>(),
        ) {
            let mut buf = Vec::new();
            encode_entry(&entry(3, 4, &payload), &mut buf);
            let bit = bit.index(buf.len() * 8);
            buf[bit / 8] ^= 1 << (bit % 8);
            prop_assert!(decode_record(&buf).is_err());
        }

        #[test]
        fn bytes_after_the_last_record_never_cost_a_valid_record(
            count in 0u64..6,
            tail in proptest::collection::vec(any::<u8>(), 0..200),
        ) {
            let entries: Vec<Entry> = (1..=count).map(|i| entry(i, 1, &[i as u8; 7])).collect();
            let mut buf = segment(1, &entries);
            let valid_len = buf.len() as u64;
            buf.extend_from_slice(&tail);
            match scan_segment(&buf, true) {
                Ok(scan) => {
                    let found: Vec<Record> = scan.records.into_iter().map(|r| r.record).collect();
                    prop_assert!(found.len() >= entries.len());
                    for (record, entry) in found.iter().zip(&entries) {
                        prop_assert_eq!(record, &Record::Entry(entry.clone()));
                    }
                    if let Some(torn) = scan.torn {
                        prop_assert!(torn.offset >= valid_len);
                    }
                }
                Err((offset, _)) => prop_assert!(offset >= valid_len),
            }
        }

        #[test]
        fn decoding_arbitrary_bytes_never_panics(
            bytes in proptest::collection::vec(any::<u8>(), 0..256),
            is_last in any::<bool>(),
        ) {
            let _ = decode_record(&bytes);
            let _ = decode_segment_header(&bytes);
            let _ = scan_segment(&bytes, is_last);
            // Also behind a valid header, so the record scan itself sees the arbitrary bytes.
            let mut seg = encode_segment_header(1).to_vec();
            seg.extend_from_slice(&bytes);
            let _ = scan_segment(&seg, is_last);
        }
    }
}
