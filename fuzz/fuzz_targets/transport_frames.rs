//! raft-transport frames and the Raft messages they carry between nodes: the first input byte picks a frame
//! size limit and how the rest is cut into pieces; any bytes give frames, "wait for more" or an error, never a
//! panic; frames respect the limit and re-encode to exactly the bytes they were cut from; a frame that decodes
//! as a Raft message (`raft::message::decode_message`, as raft-node's peer inbox does) encodes and decodes
//! back to the same message.
#![no_main]

use bytes::BytesMut;
use libfuzzer_sys::fuzz_target;
use raft::message::{decode_message, encode_message};
use raft_transport::{encode_frame, FrameDecoder};

fuzz_target!(|data: &[u8]| {
    let Some((&control, wire)) = data.split_first() else {
        return;
    };
    let limit = [0_usize, 1, 16, 256, 4096, 1 << 20][usize::from(control % 6)];
    let piece = usize::from(control / 6).max(1);
    let mut decoder = FrameDecoder::new(limit);
    let mut consumed = 0;
    let mut failed = false;
    for chunk in wire.chunks(piece) {
        decoder.push(chunk);
        loop {
            match decoder.next_frame() {
                Ok(Some(frame)) => {
                    assert!(
                        frame.len() <= limit,
                        "frame of {} over limit {limit}",
                        frame.len()
                    );
                    let mut again = BytesMut::new();
                    encode_frame(&mut again, &frame);
                    assert_eq!(
                        &again[..],
                        &wire[consumed..consumed + again.len()],
                        "a frame does not re-encode to its bytes"
                    );
                    consumed += again.len();
                    if let Ok(message) = decode_message(&frame) {
                        let bytes = encode_message(&message);
                        let back = decode_message(&bytes).expect("an encoded message decodes");
                        assert_eq!(back, message, "a Raft message changed by a round trip");
                    }
                }
                Ok(None) => break,
                Err(_) => {
                    failed = true;
                    break;
                }
            }
        }
        if failed {
            break;
        }
    }
    if !failed {
        assert_eq!(decoder.buffered_bytes(), wire.len() - consumed);
        assert_eq!(decoder.finish().is_ok(), consumed == wire.len());
    }
});
