//! The string key/value map: one [`StateMachine`], with client sessions so that a command retried after an
//! indeterminate outcome is applied at most once (§6.3 of the dissertation).

use crate::state_machine::{RestoreError, StateMachine};
use crate::types::LogIndex;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// One operation on the map.
#[derive(Clone, PartialEq, Eq, Hash, Debug, Serialize, Deserialize)]
pub enum KvOp {
    /// Read a key through the log (reads normally use ReadIndex instead; this is for completeness).
    Get {
        /// The key.
        key: String,
    },
    /// Set a key.
    Put {
        /// The key.
        key: String,
        /// The new value.
        value: String,
    },
    /// Remove a key.
    Delete {
        /// The key.
        key: String,
    },
    /// Set `key` to `new` if it currently holds `expected` (`None` = absent).
    Cas {
        /// The key.
        key: String,
        /// The value it must hold.
        expected: Option<String>,
        /// The value to set.
        new: String,
    },
}

/// A command: an operation tagged with its client's session and a per-client sequence number.
#[derive(Clone, PartialEq, Eq, Hash, Debug, Serialize, Deserialize)]
pub struct KvCommand {
    /// The client's session id (unique per client process).
    pub client: u64,
    /// Increases by one with every new command of that client; a retry reuses the number.
    pub seq: u64,
    /// What to do.
    pub op: KvOp,
}

impl KvCommand {
    /// Encodes the command for the log.
    pub fn encode(&self) -> Vec<u8> {
        postcard::to_stdvec(self).expect("serialising into a Vec cannot fail")
    }

    /// Decodes a command; arbitrary bytes give an error, never a panic.
    pub fn decode(bytes: &[u8]) -> Result<KvCommand, postcard::Error> {
        postcard::from_bytes(bytes)
    }
}

/// What applying a command did.
#[derive(Clone, PartialEq, Eq, Hash, Debug, Serialize, Deserialize)]
pub enum KvOutput {
    /// A get: the value, if present.
    Value(Option<String>),
    /// A put or delete took effect.
    Done,
    /// A compare-and-set was evaluated: `applied` says whether the value matched; `current` is what the key
    /// held (a definite observation either way).
    Cas {
        /// Whether the new value was written.
        applied: bool,
        /// The value found.
        current: Option<String>,
    },
    /// The command is older than the client's latest applied command; its own outcome is no longer kept.
    /// It was applied before (sequence numbers are only reused for retries), so the client already knows.
    Stale,
    /// The bytes were not a command.
    Malformed,
}

#[derive(Clone, PartialEq, Eq, Debug, Serialize, Deserialize)]
struct Session {
    last_seq: u64,
    last_output: KvOutput,
    last_index: LogIndex,
}

/// The key/value map plus the client session table.
#[derive(Clone, PartialEq, Eq, Debug, Serialize, Deserialize)]
#[serde(from = "KvStoreFields")]
pub struct KvStore {
    data: BTreeMap<String, String>,
    sessions: BTreeMap<u64, Session>,
    /// The session table is bounded; the least recently used session is evicted deterministically (by the
    /// log index of its last command, which every replica agrees on).
    max_sessions: usize,
    applied: LogIndex,
    /// [`KvStore::digest`], kept up to date by every change so that reading it costs nothing (a fault watcher
    /// may ask for a node's status every millisecond). Derived from `data`: not in snapshots.
    #[serde(skip_serializing)]
    digest: MapDigest,
}

/// The serialised fields of a [`KvStore`]: a snapshot, before the digest is computed from its map.
#[derive(Deserialize)]
struct KvStoreFields {
    data: BTreeMap<String, String>,
    sessions: BTreeMap<u64, Session>,
    max_sessions: usize,
    applied: LogIndex,
}

impl From<KvStoreFields> for KvStore {
    fn from(f: KvStoreFields) -> KvStore {
        KvStore {
            digest: MapDigest::of(&f.data),
            data: f.data,
            sessions: f.sessions,
            max_sessions: f.max_sessions,
            applied: f.applied,
        }
    }
}

/// A digest of a map that depends on its contents only (not on the order of changes), updated in O(1) per
/// change: the wrapping sum of a 64-bit hash of every (key, value) pair. Each pair is hashed with FNV-1a over
/// the length-prefixed key and value (so ("ab", "c") is not ("a", "bc")), then mixed by SplitMix64's finaliser
/// so that the sum of nearby hashes does not cancel. Meant for spotting replicas that diverge, not for
/// resisting an adversary.
#[derive(Clone, Copy, PartialEq, Eq, Debug, Default)]
struct MapDigest(u64);

impl MapDigest {
    fn of(map: &BTreeMap<String, String>) -> MapDigest {
        let mut digest = MapDigest::default();
        for (key, value) in map {
            digest.add(key, value);
        }
        digest
    }

    fn pair_hash(key: &str, value: &str) -> u64 {
        const OFFSET: u64 = 0xcbf2_9ce4_8422_2325;
        const PRIME: u64 = 0x0000_0100_0000_01b3;
        let mut hash = OFFSET;
        for part in [key.as_bytes(), value.as_bytes()] {
            for &b in (part.len() as u64).to_le_bytes().iter().chain(part) {
                hash ^= u64::from(b);
                hash = hash.wrapping_mul(PRIME);
            }
        }
        let mut z = hash;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    fn add(&mut self, key: &str, value: &str) {
        self.0 = self.0.wrapping_add(MapDigest::pair_hash(key, value));
    }

    fn remove(&mut self, key: &str, value: &str) {
        self.0 = self.0.wrapping_sub(MapDigest::pair_hash(key, value));
    }
}

impl KvStore {
    /// An empty store keeping at most `max_sessions` client sessions.
    pub fn new(max_sessions: usize) -> KvStore {
        KvStore {
            data: BTreeMap::new(),
            sessions: BTreeMap::new(),
            max_sessions: max_sessions.max(1),
            applied: LogIndex(0),
            digest: MapDigest::default(),
        }
    }

    /// A digest of the map alone (sessions and the applied index are not in it): equal maps give equal
    /// digests whatever their history. O(1): kept up to date by every change.
    pub fn digest(&self) -> u64 {
        self.digest.0
    }

    /// The value of `key` (for linearizable reads served after ReadIndex).
    pub fn get(&self, key: &str) -> Option<&String> {
        self.data.get(key)
    }

    /// The number of keys.
    pub fn len(&self) -> usize {
        self.data.len()
    }

    /// Whether the map is empty.
    pub fn is_empty(&self) -> bool {
        self.data.is_empty()
    }

    /// The index of the last applied command.
    pub fn applied(&self) -> LogIndex {
        self.applied
    }

    /// Every key and value, in key order.
    pub fn iter(&self) -> impl Iterator<Item = (&String, &String)> {
        self.data.iter()
    }

    fn execute(&mut self, op: KvOp) -> KvOutput {
        match op {
            KvOp::Get { key } => KvOutput::Value(self.data.get(&key).cloned()),
            KvOp::Put { key, value } => {
                self.set(key, value);
                KvOutput::Done
            }
            KvOp::Delete { key } => {
                if let Some(old) = self.data.remove(&key) {
                    self.digest.remove(&key, &old);
                }
                KvOutput::Done
            }
            KvOp::Cas { key, expected, new } => {
                let current = self.data.get(&key).cloned();
                let applied = current == expected;
                if applied {
                    self.set(key, new);
                }
                KvOutput::Cas { applied, current }
            }
        }
    }

    /// The only way a value is written, so the digest follows every change.
    fn set(&mut self, key: String, value: String) {
        self.digest.add(&key, &value);
        if let Some(old) = self.data.get(&key) {
            self.digest.remove(&key, old);
        }
        self.data.insert(key, value);
    }

    fn advance_applied(&mut self, index: LogIndex) {
        assert!(
            index > self.applied,
            "applying {index:?} after {:?}",
            self.applied
        );
        self.applied = index;
    }

    /// Applies a decoded command committed at `index` (what [`StateMachine::apply`] does after decoding; for
    /// state machines that embed this one and have decoded the command already).
    pub fn apply_command(&mut self, index: LogIndex, cmd: KvCommand) -> KvOutput {
        self.advance_applied(index);
        if let Some(session) = self.sessions.get(&cmd.client) {
            if cmd.seq == session.last_seq {
                return session.last_output.clone(); // A retry of the latest command: answer, don't re-apply.
            }
            if cmd.seq < session.last_seq {
                return KvOutput::Stale;
            }
        }
        let output = self.execute(cmd.op);
        self.sessions.insert(
            cmd.client,
            Session {
                last_seq: cmd.seq,
                last_output: output.clone(),
                last_index: index,
            },
        );
        self.evict_if_full();
        output
    }

    /// Applies a command without consulting the session table, so a retry is applied again: the deliberate bug
    /// `retry-duplicates` of raft-node's catalogue ([`crate::bugs`]). Never use it otherwise.
    pub fn apply_ignoring_session(&mut self, index: LogIndex, cmd: KvCommand) -> KvOutput {
        self.advance_applied(index);
        self.execute(cmd.op)
    }

    fn evict_if_full(&mut self) {
        while self.sessions.len() > self.max_sessions {
            let oldest = self
                .sessions
                .iter()
                .min_by_key(|(id, s)| (s.last_index, **id))
                .map(|(&id, _)| id)
                .expect("non-empty");
            self.sessions.remove(&oldest);
        }
    }
}

impl Default for KvStore {
    /// An empty store keeping up to 10,000 client sessions.
    fn default() -> Self {
        KvStore::new(10_000)
    }
}

impl StateMachine for KvStore {
    type Output = KvOutput;

    fn apply(&mut self, index: LogIndex, command: &[u8]) -> KvOutput {
        match KvCommand::decode(command) {
            Ok(cmd) => self.apply_command(index, cmd),
            Err(_) => {
                self.advance_applied(index);
                KvOutput::Malformed
            }
        }
    }

    fn snapshot(&self) -> Vec<u8> {
        postcard::to_stdvec(self).expect("serialising into a Vec cannot fail")
    }

    fn restore(&mut self, snapshot: &[u8]) -> Result<(), RestoreError> {
        *self = postcard::from_bytes(snapshot).map_err(|e| RestoreError(e.to_string()))?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cmd(client: u64, seq: u64, op: KvOp) -> Vec<u8> {
        KvCommand { client, seq, op }.encode()
    }

    fn put(key: &str, value: &str) -> KvOp {
        KvOp::Put {
            key: key.into(),
            value: value.into(),
        }
    }

    #[test]
    fn retried_command_is_applied_once() {
        let mut kv = KvStore::new(10);
        let cas = KvOp::Cas {
            key: "k".into(),
            expected: None,
            new: "1".into(),
        };
        let first = kv.apply(LogIndex(1), &cmd(7, 1, cas.clone()));
        assert_eq!(
            first,
            KvOutput::Cas {
                applied: true,
                current: None
            }
        );
        kv.apply(LogIndex(2), &cmd(8, 1, put("k", "2")));
        // The retry must not re-evaluate against the new value: it answers what the first attempt did.
        let retry = kv.apply(LogIndex(3), &cmd(7, 1, cas));
        assert_eq!(retry, first);
        assert_eq!(kv.get("k").map(String::as_str), Some("2"));
        assert_eq!(
            kv.apply(LogIndex(4), &cmd(7, 0, put("k", "x"))),
            KvOutput::Stale
        );
        assert_eq!(kv.get("k").map(String::as_str), Some("2"));
    }

    #[test]
    fn cas_mismatch_reports_what_it_found() {
        let mut kv = KvStore::new(10);
        kv.apply(LogIndex(1), &cmd(1, 1, put("k", "a")));
        let out = kv.apply(
            LogIndex(2),
            &cmd(
                1,
                2,
                KvOp::Cas {
                    key: "k".into(),
                    expected: Some("b".into()),
                    new: "c".into(),
                },
            ),
        );
        assert_eq!(
            out,
            KvOutput::Cas {
                applied: false,
                current: Some("a".into())
            }
        );
    }

    #[test]
    fn sessions_are_evicted_deterministically_and_snapshots_roundtrip() {
        let mut kv = KvStore::new(2);
        for client in 1..=3 {
            kv.apply(
                LogIndex(client),
                &cmd(client, 1, put("k", &client.to_string())),
            );
        }
        assert_eq!(kv.sessions.len(), 2);
        assert!(
            !kv.sessions.contains_key(&1),
            "the least recently used session goes first"
        );
        let mut restored = KvStore::new(2);
        restored.restore(&kv.snapshot()).unwrap();
        assert_eq!(restored, kv);
        assert!(restored.restore(b"\xff\xff\xff").is_err());
    }

    /// The kept digest always equals one computed from scratch, through puts, overwrites, deletes, cas and a
    /// snapshot round trip; and it depends on the map only.
    #[test]
    fn the_kept_digest_follows_every_change() {
        let mut kv = KvStore::new(4);
        let mut rng = 0x9e37_79b9_7f4a_7c15u64;
        let mut next = |n: u64| {
            rng ^= rng << 13;
            rng ^= rng >> 7;
            rng ^= rng << 17;
            rng % n
        };
        for i in 1..=2000u64 {
            let key = format!("k{}", next(20));
            let value = format!("v{}", next(5));
            let op = match next(4) {
                0 => put(&key, &value),
                1 => KvOp::Delete { key },
                2 => KvOp::Cas {
                    key,
                    expected: Some(format!("v{}", next(5))).filter(|_| next(3) > 0),
                    new: value,
                },
                _ => KvOp::Get { key },
            };
            kv.apply(LogIndex(i), &cmd(next(6), i, op));
            assert_eq!(kv.digest, MapDigest::of(&kv.data), "after command {i}");
        }
        let mut restored = KvStore::new(4);
        restored.restore(&kv.snapshot()).unwrap();
        assert_eq!(restored.digest(), kv.digest());
        // The same map reached another way has the same digest; a different one does not.
        let mut other = KvStore::new(4);
        for (i, (key, value)) in kv.data.clone().into_iter().rev().enumerate() {
            other.apply(
                LogIndex(i as u64 + 1),
                &cmd(9, i as u64 + 1, put(&key, &value)),
            );
        }
        assert_eq!(other.digest(), kv.digest());
        other.apply(LogIndex(1000), &cmd(9, 1000, put("k0", "changed")));
        assert_ne!(other.digest(), kv.digest());
        // Lengths are part of each pair's hash: ("ab", "c") is not ("a", "bc").
        assert_ne!(
            MapDigest::pair_hash("ab", "c"),
            MapDigest::pair_hash("a", "bc")
        );
        assert_ne!(KvStore::new(1).digest(), other.digest());
    }

    #[test]
    fn malformed_commands_do_not_panic() {
        let mut kv = KvStore::new(2);
        assert_eq!(
            kv.apply(LogIndex(1), b"\xff\x00garbage"),
            KvOutput::Malformed
        );
        assert_eq!(
            kv.apply(LogIndex(2), &cmd(1, 1, KvOp::Delete { key: "x".into() })),
            KvOutput::Done
        );
    }
}
