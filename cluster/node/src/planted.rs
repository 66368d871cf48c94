//! The server's deliberate bugs (`--bug early-ack`, `--bug non-atomic-cas`), as the small pure decisions they
//! change; the server calls them only when the bug is switched on. See `raft::bugs` for the catalogue.

use raft::kv::{KvOp, KvOutput, KvStore};

/// What `non-atomic-cas` makes of a write: a cas is checked against the leader's applied state when it is
/// proposed (not when it is applied, in log order), then replicated as a plain put. Two concurrent cas on one
/// key can then both succeed, and a cas can overwrite a write committed after the check.
#[derive(Clone, PartialEq, Eq, Debug)]
pub enum CasRewrite {
    /// Not a cas: propose it as it is.
    Unchanged(KvOp),
    /// The check failed: answer at once, propose nothing.
    Refused(KvOutput),
    /// The check passed: propose this put, and answer the cas as applied over `found` once it commits.
    AsPut {
        /// The put to propose.
        op: KvOp,
        /// The value the check saw.
        found: Option<String>,
    },
}

/// Checks a cas against `kv` now, as `non-atomic-cas` does.
pub fn non_atomic_cas(op: KvOp, kv: &KvStore) -> CasRewrite {
    match op {
        KvOp::Cas { key, expected, new } => {
            let current = kv.get(&key).cloned();
            if current != expected {
                CasRewrite::Refused(KvOutput::Cas {
                    applied: false,
                    current,
                })
            } else {
                CasRewrite::AsPut {
                    op: KvOp::Put { key, value: new },
                    found: current,
                }
            }
        }
        other => CasRewrite::Unchanged(other),
    }
}

/// The answer `early-ack` gives as soon as the leader has a write in its own log, before a majority has it:
/// what applying it to the leader's current state would give.
pub fn early_output(op: &KvOp, kv: &KvStore) -> KvOutput {
    match op {
        KvOp::Get { key } => KvOutput::Value(kv.get(key).cloned()),
        KvOp::Put { .. } | KvOp::Delete { .. } => KvOutput::Done,
        KvOp::Cas { key, expected, .. } => {
            let current = kv.get(key).cloned();
            KvOutput::Cas {
                applied: current == *expected,
                current,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use raft::kv::KvCommand;
    use raft::LogIndex;

    fn store_with(key: &str, value: &str) -> KvStore {
        let mut kv = KvStore::new(8);
        let put = KvCommand {
            client: 1,
            seq: 1,
            op: KvOp::Put {
                key: key.into(),
                value: value.into(),
            },
        };
        kv.apply_command(LogIndex(1), put);
        kv
    }

    /// Two cas from the same value, checked before either is applied, both pass: the second must fail when
    /// the cas is atomic (applied in log order by the state machine).
    #[test]
    fn non_atomic_cas_lets_two_concurrent_cas_succeed() {
        let kv = store_with("k", "0");
        let cas = |new: &str| KvOp::Cas {
            key: "k".into(),
            expected: Some("0".into()),
            new: new.into(),
        };
        let a = non_atomic_cas(cas("a"), &kv);
        let b = non_atomic_cas(cas("b"), &kv);
        for (rewrite, new) in [(&a, "a"), (&b, "b")] {
            assert_eq!(
                *rewrite,
                CasRewrite::AsPut {
                    op: KvOp::Put {
                        key: "k".into(),
                        value: new.into()
                    },
                    found: Some("0".into())
                }
            );
        }
        // The correct path: both cas go through the log; the second finds "a" and fails.
        let mut atomic = kv.clone();
        let cmd = |seq, op| KvCommand { client: 2, seq, op };
        assert!(matches!(
            atomic.apply_command(LogIndex(2), cmd(1, cas("a"))),
            KvOutput::Cas { applied: true, .. }
        ));
        assert!(matches!(
            atomic.apply_command(LogIndex(3), cmd(2, cas("b"))),
            KvOutput::Cas { applied: false, .. }
        ));
        assert!(matches!(
            non_atomic_cas(cas("c"), &atomic),
            CasRewrite::Refused(KvOutput::Cas { applied: false, .. })
        ));
        let put = KvOp::Delete { key: "k".into() };
        assert_eq!(non_atomic_cas(put.clone(), &kv), CasRewrite::Unchanged(put));
    }

    #[test]
    fn early_output_answers_from_the_leaders_state() {
        let kv = store_with("k", "0");
        let cas = KvOp::Cas {
            key: "k".into(),
            expected: Some("0".into()),
            new: "1".into(),
        };
        assert_eq!(
            early_output(&cas, &kv),
            KvOutput::Cas {
                applied: true,
                current: Some("0".into())
            }
        );
        let put = KvOp::Put {
            key: "x".into(),
            value: "y".into(),
        };
        assert_eq!(early_output(&put, &kv), KvOutput::Done);
    }
}
