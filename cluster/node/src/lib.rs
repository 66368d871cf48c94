//! raft-node: a durable Raft key/value server over QUIC with mutual TLS, and its client library.
