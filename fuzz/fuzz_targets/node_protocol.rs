//! raft-node's client protocol (`raft_node::protocol::decode`, a version prefix and postcard): any bytes give
//! a request, a response or an error, never a panic; what decodes encodes and decodes back to the same value.
#![no_main]

use libfuzzer_sys::fuzz_target;
use raft_node::protocol::{decode, encode, Request, Response, PROTOCOL_VERSION};

fuzz_target!(|data: &[u8]| {
    if let Ok(request) = decode::<Request>(data) {
        let bytes = encode(PROTOCOL_VERSION, &request);
        assert_eq!(decode::<Request>(&bytes), Ok(request), "request round trip");
    }
    if let Ok(response) = decode::<Response>(data) {
        let bytes = encode(PROTOCOL_VERSION, &response);
        assert_eq!(
            decode::<Response>(&bytes),
            Ok(response),
            "response round trip"
        );
    }
});
