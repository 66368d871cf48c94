//! QUIC transport with mutual TLS for raft-node: cluster CA, certificates, framed peer and client links.
