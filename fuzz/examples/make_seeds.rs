//! Writes the seed corpora of the binary formats into `fuzz/seeds/<target>/`, encoded by the real encoders:
//! raft-transport frames carrying Raft messages, hellos and acks, raft-node requests and responses, WAL
//! segments and hard state files written by `raft-storage`. Text formats need no generator: the fuzz script
//! seeds them from `checker/tests/golden` and `configs/`.
//!
//! ```sh
//! cargo run --manifest-path fuzz/Cargo.toml --example make_seeds   # from the repository root
//! ```

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use bytes::BytesMut;
use raft::kv::{KvCommand, KvOp, KvOutput};
use raft::membership::Membership;
use raft::message::{
    encode_message, AppendResult, Entry, EntryPayload, Message, MessageBody, Snapshot, SnapshotMeta,
};
use raft::types::{LogIndex, NodeId, Term};
use raft_node::protocol::{encode, Request, Response, PROTOCOL_VERSION};
use raft_storage::{HardState, Storage};
use raft_transport::{encode_frame, Hello, HelloAck, HelloKind, HelloStatus};

fn write(dir: &Path, name: &str, bytes: &[u8]) {
    std::fs::create_dir_all(dir).expect("create seed dir");
    std::fs::write(dir.join(name), bytes).expect("write seed");
}

fn messages() -> Vec<Message> {
    let msg = |body| Message {
        from: NodeId(1),
        to: NodeId(2),
        term: Term(3),
        body,
    };
    let entries = vec![
        Entry {
            term: Term(3),
            index: LogIndex(5),
            payload: EntryPayload::Noop,
        },
        Entry {
            term: Term(3),
            index: LogIndex(6),
            payload: EntryPayload::Command(
                KvCommand {
                    client: 9,
                    seq: 1,
                    op: KvOp::Put {
                        key: "k1".into(),
                        value: "v1".into(),
                    },
                }
                .encode(),
            ),
        },
        Entry {
            term: Term(3),
            index: LogIndex(7),
            payload: EntryPayload::Conf(Membership::with_voters([NodeId(1), NodeId(2), NodeId(3)])),
        },
    ];
    vec![
        msg(MessageBody::PreVote {
            last_index: LogIndex(4),
            last_term: Term(2),
        }),
        msg(MessageBody::PreVoteResponse { granted: true }),
        msg(MessageBody::RequestVote {
            last_index: LogIndex(4),
            last_term: Term(2),
            transfer: false,
        }),
        msg(MessageBody::RequestVoteResponse { granted: false }),
        msg(MessageBody::Append {
            prev_index: LogIndex(4),
            prev_term: Term(2),
            entries,
            commit: LogIndex(4),
        }),
        msg(MessageBody::AppendResponse {
            result: AppendResult::Accepted {
                match_index: LogIndex(7),
            },
        }),
        msg(MessageBody::AppendResponse {
            result: AppendResult::Rejected {
                rejected_index: LogIndex(4),
                conflict_term: Some(Term(1)),
                conflict_index: LogIndex(2),
            },
        }),
        msg(MessageBody::Heartbeat {
            commit: LogIndex(7),
            read_round: 11,
        }),
        msg(MessageBody::HeartbeatResponse { read_round: 11 }),
        msg(MessageBody::InstallSnapshot {
            snapshot: Snapshot {
                meta: SnapshotMeta {
                    index: LogIndex(7),
                    term: Term(3),
                    membership: Membership::with_voters([NodeId(1), NodeId(2), NodeId(3)]),
                },
                data: Arc::new(b"snapshot data".to_vec()),
            },
        }),
        msg(MessageBody::TimeoutNow),
    ]
}

fn frames(dir: &Path) {
    // First byte: the target's control byte (limit 1 MiB, pieces of 7 bytes / whole).
    let mut all = BytesMut::new();
    for (i, m) in messages().iter().enumerate() {
        let mut wire = BytesMut::new();
        encode_frame(&mut wire, &encode_message(m));
        encode_frame(&mut all, &encode_message(m));
        for control in [5_u8, 5 + 6 * 7] {
            let mut seed = vec![control];
            seed.extend_from_slice(&wire);
            write(dir, &format!("message-{i}-{control}"), &seed);
        }
    }
    let mut seed = vec![5_u8];
    seed.extend_from_slice(&all);
    write(dir, "all-messages", &seed);
}

fn hellos(dir: &Path) {
    for (name, kind, from) in [
        ("peer", HelloKind::Peer, 1),
        ("client", HelloKind::Client, 0),
    ] {
        let hello = Hello {
            version: raft_transport::PROTOCOL_VERSION,
            kind,
            cluster_id: 0x5eed,
            from,
            to: 2,
        };
        write(dir, &format!("hello-{name}"), &hello.encode());
    }
    for (i, status) in [
        HelloStatus::Accepted,
        HelloStatus::VersionMismatch,
        HelloStatus::ClusterMismatch,
        HelloStatus::WrongNode,
        HelloStatus::IdentityMismatch,
        HelloStatus::NotMember,
        HelloStatus::WrongKind,
    ]
    .into_iter()
    .enumerate()
    {
        let ack = HelloAck {
            version: raft_transport::PROTOCOL_VERSION,
            status,
            node_id: 2,
            cluster_id: 0x5eed,
        };
        write(dir, &format!("ack-{i}"), &ack.encode());
    }
}

fn protocol(dir: &Path) {
    let requests = [
        Request::Write {
            client: 7,
            seq: 3,
            op: KvOp::Put {
                key: "k".into(),
                value: "v".into(),
            },
        },
        Request::Write {
            client: 7,
            seq: 4,
            op: KvOp::Cas {
                key: "k".into(),
                expected: Some("v".into()),
                new: "w".into(),
            },
        },
        Request::Write {
            client: 7,
            seq: 5,
            op: KvOp::Delete { key: "k".into() },
        },
        Request::Read { key: "k".into() },
        Request::Status {
            probe: Some(LogIndex(3)),
        },
        Request::Join {
            id: NodeId(4),
            addr: "127.0.0.1:7004".into(),
        },
        Request::Remove { id: NodeId(2) },
        Request::TransferLeader { to: NodeId(3) },
    ];
    for (i, r) in requests.iter().enumerate() {
        write(dir, &format!("request-{i}"), &encode(PROTOCOL_VERSION, r));
    }
    let responses = [
        Response::Written(KvOutput::Done),
        Response::Written(KvOutput::Cas {
            applied: false,
            current: Some("x".into()),
        }),
        Response::Value(Some("v".into())),
        Response::Value(None),
        Response::Done,
        Response::Joined {
            members: BTreeMap::from([(NodeId(1), "127.0.0.1:7001".to_string())]),
        },
        Response::NotLeader {
            leader: Some(NodeId(1)),
            leader_addr: Some("127.0.0.1:7001".into()),
        },
        Response::Refused("overloaded".into()),
        Response::Invalid("bad".into()),
    ];
    for (i, r) in responses.iter().enumerate() {
        write(dir, &format!("response-{i}"), &encode(PROTOCOL_VERSION, r));
    }
}

/// A data directory with several segments, commit records, a truncation and a hard state with a vote.
fn storage_dir(dir: &Path) -> PathBuf {
    let _ = std::fs::remove_dir_all(dir);
    let (mut storage, _) =
        Storage::open(dir, chaos_fuzz::storage_options()).expect("open a new data dir");
    let mut index = 1;
    for term in 1..=3_u64 {
        let batch: Vec<raft_storage::Entry> = (0..4)
            .map(|i| {
                let e = raft_storage::Entry::new(
                    index,
                    term,
                    format!("put k{i}=v{index}").into_bytes(),
                );
                index += 1;
                e
            })
            .collect();
        storage.append(&batch).expect("append");
        storage
            .set_hard_state(&HardState {
                term,
                voted_for: Some(term % 3 + 1),
                commit: index - 2,
            })
            .expect("hard state");
        storage.sync().expect("sync");
    }
    storage
        .truncate_suffix(index - 1)
        .expect("truncate the last entry");
    storage
        .append(&[raft_storage::Entry::new(
            index - 1,
            3,
            b"replacement".to_vec(),
        )])
        .expect("append after truncation");
    storage.sync().expect("sync");
    dir.to_path_buf()
}

fn storage(wal_seeds: &Path, hard_state_seeds: &Path) {
    let scratch = std::env::temp_dir().join(format!("chaos-fuzz-seeds-{}", std::process::id()));
    let data = storage_dir(&scratch);
    let mut names: Vec<PathBuf> = std::fs::read_dir(data.join("wal"))
        .expect("wal dir")
        .map(|e| e.expect("entry").path())
        .collect();
    names.sort();
    let segments: Vec<Vec<u8>> = names
        .iter()
        .map(|p| std::fs::read(p).expect("segment"))
        .collect();
    write(wal_seeds, "all-segments", &segments.concat());
    for (i, s) in segments.iter().enumerate() {
        write(wal_seeds, &format!("segment-{i}"), s);
    }
    // A torn tail: the last segment cut in the middle of its last record.
    let mut torn = segments.concat();
    torn.truncate(torn.len() - 5);
    write(wal_seeds, "torn-tail", &torn);
    let hard_state = std::fs::read(data.join("hardstate")).expect("hardstate");
    write(hard_state_seeds, "voted", &hard_state);
    std::fs::remove_dir_all(&scratch).expect("remove scratch");
    // A hard state without a vote.
    let (mut s, _) = Storage::open(&scratch, chaos_fuzz::storage_options()).expect("open");
    s.set_hard_state(&HardState {
        term: 9,
        voted_for: None,
        commit: 0,
    })
    .expect("hard state");
    s.sync().expect("sync");
    drop(s);
    write(
        hard_state_seeds,
        "no-vote",
        &std::fs::read(scratch.join("hardstate")).expect("hardstate"),
    );
    std::fs::remove_dir_all(&scratch).expect("remove scratch");
}

fn main() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("seeds");
    frames(&root.join("transport_frames"));
    hellos(&root.join("transport_hello"));
    protocol(&root.join("node_protocol"));
    storage(&root.join("storage_wal"), &root.join("storage_hard_state"));
    println!("seeds written under {}", root.display());
}
