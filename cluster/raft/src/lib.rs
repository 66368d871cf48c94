//! Sans-IO Raft consensus core: a deterministic state machine driven by the caller.
