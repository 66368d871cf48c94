//! Durable storage for raft-node: a checksummed, segmented write-ahead log and snapshot files.
