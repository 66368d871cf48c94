//! Tunables of the transport, with defaults suited to Raft (heartbeats ~50 ms, election timeouts ~150-300 ms).

use std::sync::Arc;
use std::time::Duration;

use quinn::{IdleTimeout, VarInt};

use crate::error::EndpointError;
use crate::frame::FRAME_BYTES_LIMIT;

/// Transport tunables. Every queue and size is bounded; see each field for its default and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TransportConfig {
    /// QUIC `max_idle_timeout` (default 2 s). A link silent this long is declared dead on both sides and the
    /// peer link reconnects. Long enough to ride out a few lost keep-alives and scheduler stalls on a loaded
    /// 2-core machine; short enough that after a partition or a peer restart we rebuild the connection within
    /// a few election timeouts instead of waiting on QUIC's exponential PTO backoff of a half-dead connection.
    pub idle_timeout: Duration,
    /// QUIC `keep_alive_interval` (default 500 ms): below the idle timeout, so that an idle but healthy link
    /// (no Raft traffic) is never timed out; four keep-alives fit in one idle timeout.
    pub keep_alive_interval: Duration,
    /// QUIC initial RTT estimate (default 50 ms instead of quinn's 333 ms): the cluster runs on a LAN, and a
    /// lower estimate makes the first handshake retransmission, hence reconnects after a partition, faster.
    pub initial_rtt: Duration,
    /// Bound on QUIC handshake plus hello exchange for one connection attempt (default 1 s).
    pub connect_timeout: Duration,
    /// First reconnect delay after a failed attempt (default 50 ms); doubled per failure.
    pub reconnect_backoff_min: Duration,
    /// Ceiling of the reconnect delay (default 1 s), so a healed link comes back within about a second.
    pub reconnect_backoff_max: Duration,
    /// Seed of the reconnect jitter (mixed with the node ids), so runs can be replayed.
    pub reconnect_jitter_seed: u64,
    /// Largest frame payload, for peer frames, requests and responses alike (default 4 MiB).
    pub frame_bytes_max: usize,
    /// Frames queued per peer while its link is down or slow (default 1024); later frames are dropped.
    pub peer_queue_frames: usize,
    /// Most frames written in one batch (default 256).
    pub batch_frames_max: usize,
    /// Most bytes written in one batch (default 1 MiB); a batch always takes at least one frame.
    pub batch_bytes_max: usize,
    /// Capacity of the inbox of peer frames (default 4096). When full, readers wait: QUIC flow control then
    /// pushes back on senders, whose queues fill and drop.
    pub inbox_frames: usize,
    /// Capacity of the inbox of client requests (default 1024). When full, requests are rejected as overloaded
    /// (a definite failure for the client).
    pub inbox_requests: usize,
    /// Concurrent request streams per client connection (default 256).
    pub requests_per_connection_max: u32,
}

impl Default for TransportConfig {
    fn default() -> Self {
        TransportConfig {
            idle_timeout: Duration::from_secs(2),
            keep_alive_interval: Duration::from_millis(500),
            initial_rtt: Duration::from_millis(50),
            connect_timeout: Duration::from_secs(1),
            reconnect_backoff_min: Duration::from_millis(50),
            reconnect_backoff_max: Duration::from_secs(1),
            reconnect_jitter_seed: 0,
            frame_bytes_max: 4 << 20,
            peer_queue_frames: 1024,
            batch_frames_max: 256,
            batch_bytes_max: 1 << 20,
            inbox_frames: 4096,
            inbox_requests: 1024,
            requests_per_connection_max: 256,
        }
    }
}

impl TransportConfig {
    /// Checks that the values are consistent and in range.
    pub fn validate(&self) -> Result<(), EndpointError> {
        let fail = |msg: String| Err(EndpointError::Config(msg));
        if self.idle_timeout.is_zero() {
            return fail("idle_timeout must be positive".into());
        }
        if IdleTimeout::try_from(self.idle_timeout).is_err() {
            return fail(format!(
                "idle_timeout {:?} is too large for QUIC",
                self.idle_timeout
            ));
        }
        if self.keep_alive_interval.is_zero() || self.keep_alive_interval >= self.idle_timeout {
            return fail(format!(
                "keep_alive_interval {:?} must be positive and below idle_timeout {:?}",
                self.keep_alive_interval, self.idle_timeout
            ));
        }
        if self.initial_rtt.is_zero() || self.connect_timeout.is_zero() {
            return fail("initial_rtt and connect_timeout must be positive".into());
        }
        if self.reconnect_backoff_min.is_zero()
            || self.reconnect_backoff_min > self.reconnect_backoff_max
        {
            return fail(format!(
                "reconnect_backoff_min {:?} must be positive and at most reconnect_backoff_max {:?}",
                self.reconnect_backoff_min, self.reconnect_backoff_max
            ));
        }
        if self.frame_bytes_max == 0 || self.frame_bytes_max > FRAME_BYTES_LIMIT {
            return fail(format!(
                "frame_bytes_max {} must be in 1..={FRAME_BYTES_LIMIT}",
                self.frame_bytes_max
            ));
        }
        for (name, value) in [
            ("peer_queue_frames", self.peer_queue_frames),
            ("batch_frames_max", self.batch_frames_max),
            ("batch_bytes_max", self.batch_bytes_max),
            ("inbox_frames", self.inbox_frames),
            ("inbox_requests", self.inbox_requests),
            (
                "requests_per_connection_max",
                self.requests_per_connection_max as usize,
            ),
        ] {
            if value == 0 {
                return fail(format!("{name} must be positive"));
            }
        }
        Ok(())
    }

    /// The quinn transport parameters for connections of `requests_max` concurrent bidirectional streams.
    pub(crate) fn quinn_transport(&self, bidi_streams_max: u32) -> Arc<quinn::TransportConfig> {
        let mut transport = quinn::TransportConfig::default();
        transport
            .max_idle_timeout(Some(
                IdleTimeout::try_from(self.idle_timeout).expect("validated idle timeout"),
            ))
            .keep_alive_interval(Some(self.keep_alive_interval))
            .initial_rtt(self.initial_rtt)
            .max_concurrent_bidi_streams(VarInt::from_u32(bidi_streams_max))
            // No unidirectional streams are used.
            .max_concurrent_uni_streams(VarInt::from_u32(0));
        Arc::new(transport)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_valid_and_keep_alive_is_below_idle() {
        let config = TransportConfig::default();
        config.validate().unwrap();
        assert!(config.keep_alive_interval * 2 <= config.idle_timeout);
    }

    #[test]
    fn inconsistent_values_are_rejected() {
        let bad = [
            TransportConfig {
                keep_alive_interval: Duration::from_secs(2),
                ..Default::default()
            },
            TransportConfig {
                idle_timeout: Duration::ZERO,
                ..Default::default()
            },
            TransportConfig {
                reconnect_backoff_min: Duration::from_secs(5),
                ..Default::default()
            },
            TransportConfig {
                frame_bytes_max: 0,
                ..Default::default()
            },
            TransportConfig {
                peer_queue_frames: 0,
                ..Default::default()
            },
        ];
        for config in bad {
            assert!(config.validate().is_err(), "{config:?}");
        }
    }
}
