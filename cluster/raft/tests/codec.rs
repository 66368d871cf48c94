//! Property tests for the bytes we decode: messages from the network and commands from the log.

use proptest::prelude::*;
use raft::kv::KvCommand;
use raft::{
    decode_message, encode_message, Entry, EntryPayload, LogIndex, Message, MessageBody, NodeId,
    Term,
};

fn entry() -> impl Strategy<Value = Entry> {
    (
        1u64..1000,
        1u64..100,
        proptest::collection::vec(any::<u8>(), 0..64),
    )
        .prop_map(|(index, term, data)| Entry {
            term: Term(term),
            index: LogIndex(index),
            payload: if data.is_empty() {
                EntryPayload::Noop
            } else {
                EntryPayload::Command(data)
            },
        })
}

proptest! {
    #[test]
    fn append_messages_roundtrip(from in 1u64..10, to in 1u64..10, term in 0u64..1000,
                                 entries in proptest::collection::vec(entry(), 0..8), commit in 0u64..1000) {
        let msg = Message {
            from: NodeId(from),
            to: NodeId(to),
            term: Term(term),
            body: MessageBody::Append { prev_index: LogIndex(3), prev_term: Term(2), entries, commit: LogIndex(commit) },
        };
        prop_assert_eq!(decode_message(&encode_message(&msg)).unwrap(), msg);
    }

    #[test]
    fn decoding_arbitrary_bytes_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..256)) {
        let _ = decode_message(&bytes);
        let _ = KvCommand::decode(&bytes);
    }
}
