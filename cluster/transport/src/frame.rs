//! Length-prefixed binary frames: a 4-byte big-endian length, then that many payload bytes.
//!
//! Every reader enforces a size limit before it buffers a byte of the payload, and buffers only what has
//! actually arrived: a peer that announces a huge frame and then sends little costs us little memory.

use bytes::{Buf, BufMut, Bytes, BytesMut};
use quinn::{ReadExactError, RecvStream};

use crate::error::FrameError;

/// Size of the length prefix of every frame.
pub const FRAME_HEADER_BYTES: usize = 4;

/// Largest frame size the length prefix can express; configured limits must stay at or below it.
pub const FRAME_BYTES_LIMIT: usize = u32::MAX as usize;

/// Appends one frame (length prefix and payload) to `out`.
///
/// # Panics
/// If the payload is longer than [`FRAME_BYTES_LIMIT`]: callers check sizes against their configured limit first.
pub fn encode_frame(out: &mut BytesMut, payload: &[u8]) {
    let len = u32::try_from(payload.len())
        .expect("frame payload longer than u32::MAX: size was not checked");
    out.reserve(FRAME_HEADER_BYTES + payload.len());
    out.put_u32(len);
    out.put_slice(payload);
}

/// Returns one frame (length prefix and payload) as a new buffer.
pub fn frame_to_bytes(payload: &[u8]) -> Bytes {
    let mut out = BytesMut::with_capacity(FRAME_HEADER_BYTES + payload.len());
    encode_frame(&mut out, payload);
    out.freeze()
}

/// Incremental decoder for a stream of frames that arrives in arbitrary pieces.
///
/// Feed bytes with [`push`](Self::push), then take complete frames with [`next_frame`](Self::next_frame) until it
/// returns `Ok(None)`. An oversized length prefix is an error as soon as its four bytes have arrived; the decoder
/// never reserves memory for a length it has been told, only for bytes it has been given.
#[derive(Debug)]
pub struct FrameDecoder {
    buffer: BytesMut,
    frame_bytes_max: usize,
}

impl FrameDecoder {
    /// A decoder that rejects frames whose payload is longer than `frame_bytes_max`.
    pub fn new(frame_bytes_max: usize) -> Self {
        assert!(
            frame_bytes_max <= FRAME_BYTES_LIMIT,
            "frame limit above what the length prefix can express"
        );
        Self {
            buffer: BytesMut::new(),
            frame_bytes_max,
        }
    }

    /// Appends received bytes.
    pub fn push(&mut self, data: &[u8]) {
        self.buffer.extend_from_slice(data);
    }

    /// Takes the next complete frame, if one has fully arrived.
    pub fn next_frame(&mut self) -> Result<Option<Bytes>, FrameError> {
        if self.buffer.len() < FRAME_HEADER_BYTES {
            return Ok(None);
        }
        let mut header = [0_u8; FRAME_HEADER_BYTES];
        header.copy_from_slice(&self.buffer[..FRAME_HEADER_BYTES]);
        let len = u32::from_be_bytes(header) as usize;
        if len > self.frame_bytes_max {
            return Err(FrameError::TooLarge {
                len,
                max: self.frame_bytes_max,
            });
        }
        if self.buffer.len() < FRAME_HEADER_BYTES + len {
            return Ok(None);
        }
        self.buffer.advance(FRAME_HEADER_BYTES);
        Ok(Some(self.buffer.split_to(len).freeze()))
    }

    /// Number of bytes received but not yet returned as frames.
    pub fn buffered_bytes(&self) -> usize {
        self.buffer.len()
    }

    /// Checks that the stream ended on a frame boundary.
    pub fn finish(&self) -> Result<(), FrameError> {
        if self.buffer.is_empty() {
            Ok(())
        } else {
            Err(FrameError::Truncated {
                buffered: self.buffer.len(),
            })
        }
    }
}

/// Reads exactly one frame from a QUIC stream, rejecting payloads longer than `frame_bytes_max`.
pub(crate) async fn read_frame(
    recv: &mut RecvStream,
    frame_bytes_max: usize,
) -> Result<Bytes, FrameError> {
    let mut header = [0_u8; FRAME_HEADER_BYTES];
    match recv.read_exact(&mut header).await {
        Ok(()) => {}
        Err(ReadExactError::FinishedEarly(buffered)) => {
            return Err(FrameError::Truncated { buffered })
        }
        Err(ReadExactError::ReadError(e)) => return Err(FrameError::Read(e)),
    }
    let len = u32::from_be_bytes(header) as usize;
    if len > frame_bytes_max {
        return Err(FrameError::TooLarge {
            len,
            max: frame_bytes_max,
        });
    }
    // Grow with the data that arrives instead of reserving `len` up front.
    let mut payload = BytesMut::new();
    while payload.len() < len {
        match recv
            .read_chunk(len - payload.len(), true)
            .await
            .map_err(FrameError::Read)?
        {
            Some(chunk) if payload.is_empty() && chunk.bytes.len() == len => return Ok(chunk.bytes),
            Some(chunk) => payload.extend_from_slice(&chunk.bytes),
            None => {
                return Err(FrameError::Truncated {
                    buffered: FRAME_HEADER_BYTES + payload.len(),
                })
            }
        }
    }
    Ok(payload.freeze())
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn encode_all(payloads: &[Vec<u8>]) -> Vec<u8> {
        let mut out = BytesMut::new();
        for p in payloads {
            encode_frame(&mut out, p);
        }
        out.to_vec()
    }

    #[test]
    fn frames_split_at_every_byte_boundary_decode_the_same() {
        let payloads = vec![b"a".to_vec(), Vec::new(), vec![7_u8; 300], b"last".to_vec()];
        let wire = encode_all(&payloads);
        for split in 0..=wire.len() {
            let mut decoder = FrameDecoder::new(1024);
            let mut got = Vec::new();
            for piece in [&wire[..split], &wire[split..]] {
                decoder.push(piece);
                while let Some(frame) = decoder.next_frame().unwrap() {
                    got.push(frame.to_vec());
                }
            }
            assert_eq!(got, payloads, "split at {split}");
            decoder.finish().unwrap();
        }
    }

    #[test]
    fn oversized_length_is_rejected_before_the_payload_arrives() {
        let mut decoder = FrameDecoder::new(16);
        decoder.push(&17_u32.to_be_bytes());
        let err = decoder.next_frame().unwrap_err();
        assert!(
            matches!(err, FrameError::TooLarge { len: 17, max: 16 }),
            "{err}"
        );
        // Nothing beyond the header was buffered for the announced length.
        assert_eq!(decoder.buffered_bytes(), FRAME_HEADER_BYTES);
    }

    #[test]
    fn announced_length_does_not_reserve_memory() {
        let mut decoder = FrameDecoder::new(FRAME_BYTES_LIMIT);
        decoder.push(&u32::MAX.to_be_bytes());
        assert!(decoder.next_frame().unwrap().is_none());
        assert!(
            decoder.buffer.capacity() < 1024,
            "capacity {}",
            decoder.buffer.capacity()
        );
    }

    #[test]
    fn a_stream_ending_inside_a_frame_is_truncated() {
        let mut decoder = FrameDecoder::new(16);
        decoder.push(&[0, 0, 0, 3, b'x']);
        assert!(decoder.next_frame().unwrap().is_none());
        assert!(matches!(
            decoder.finish(),
            Err(FrameError::Truncated { buffered: 5 })
        ));
    }

    proptest! {
        #[test]
        fn decode_inverts_encode_for_any_chunking(
            payloads in proptest::collection::vec(proptest::collection::vec(any::<u8>(), 0..64), 0..16),
            cuts in proptest::collection::vec(0_usize..2048, 0..8),
        ) {
            let wire = encode_all(&payloads);
            let mut cuts: Vec<usize> = cuts.into_iter().map(|c| c % (wire.len() + 1)).collect();
            cuts.push(0);
            cuts.push(wire.len());
            cuts.sort_unstable();
            let mut decoder = FrameDecoder::new(64);
            let mut got = Vec::new();
            for pair in cuts.windows(2) {
                decoder.push(&wire[pair[0]..pair[1]]);
                while let Some(frame) = decoder.next_frame().unwrap() {
                    got.push(frame.to_vec());
                }
            }
            prop_assert_eq!(got, payloads);
            prop_assert!(decoder.finish().is_ok());
        }

        #[test]
        fn arbitrary_bytes_never_panic_and_respect_the_limit(data in proptest::collection::vec(any::<u8>(), 0..512)) {
            let mut decoder = FrameDecoder::new(32);
            decoder.push(&data);
            while let Ok(Some(frame)) = decoder.next_frame() {
                prop_assert!(frame.len() <= 32);
            }
        }
    }
}
