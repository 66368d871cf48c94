//! The hello and hello-ack that open every raft-transport connection: any bytes decode or give an error,
//! never a panic; what decodes encodes to the same bytes but the reserved byte, and decodes back to itself.
#![no_main]

use libfuzzer_sys::fuzz_target;
use raft_transport::{Hello, HelloAck};

/// Byte 7 of both messages is reserved (sent as zero); decoders do not look at it.
const RESERVED: usize = 7;

fn same_but_reserved(encoded: &[u8], input: &[u8]) {
    assert_eq!(encoded.len(), input.len());
    for (i, (a, b)) in encoded.iter().zip(input).enumerate() {
        if i != RESERVED {
            assert_eq!(a, b, "byte {i} changed by a round trip");
        }
    }
}

fuzz_target!(|data: &[u8]| {
    if let Ok(hello) = Hello::decode(data) {
        let encoded = hello.encode();
        same_but_reserved(&encoded, data);
        assert_eq!(Hello::decode(&encoded), Ok(hello));
    }
    if let Ok(ack) = HelloAck::decode(data) {
        let encoded = ack.encode();
        same_but_reserved(&encoded, data);
        assert_eq!(HelloAck::decode(&encoded), Ok(ack));
    }
});
