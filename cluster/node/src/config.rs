//! raft-node's configuration: a TOML file, overridden by command-line flags, validated as a whole.

use raft::{ElectionTimeoutPolicy, NodeId, ReadMode};
use serde::Deserialize;
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// A deliberate bug, for showing that the chaos tool catches real ones: the one catalogue of
/// [`raft::bugs`], whose names `--bug` takes. Never use outside such a test.
pub use raft::Bug;

/// When the write-ahead log is fsynced.
#[derive(Clone, Copy, PartialEq, Eq, Debug, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum FsyncMode {
    /// Before anything is acknowledged (the only safe choice).
    Always,
    /// Never: for benchmarks only.
    Never,
}

/// The node's configuration file (every field optional; flags override).
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileConfig {
    /// This node's id.
    pub id: Option<u64>,
    /// Address to bind (UDP).
    pub listen: Option<SocketAddr>,
    /// The address peers and clients use to reach this node (default: `listen`).
    pub advertise: Option<SocketAddr>,
    /// Where the WAL and snapshots live.
    pub data_dir: Option<PathBuf>,
    /// Folder with ca.pem and node-<id>.pem / node-<id>.key.
    pub certs_dir: Option<PathBuf>,
    /// The initial members, id → address (bootstrap a new cluster with exactly these voters).
    pub peers: Option<BTreeMap<u64, SocketAddr>>,
    /// Join an existing cluster through this member instead of bootstrapping.
    pub join: Option<SocketAddr>,
    /// Heartbeat interval, e.g. "50ms".
    #[serde(default, with = "humantime_serde")]
    pub heartbeat_interval: Option<Duration>,
    /// Lower bound of the election timeout, e.g. "150ms".
    #[serde(default, with = "humantime_serde")]
    pub election_timeout_min: Option<Duration>,
    /// Upper bound of the election timeout, e.g. "300ms".
    #[serde(default, with = "humantime_serde")]
    pub election_timeout_max: Option<Duration>,
    /// "read-index" (default) or "lease".
    pub read_mode: Option<String>,
    /// "ranked" (default) or "random" (see raft::ElectionTimeoutPolicy).
    pub election_timeout_policy: Option<String>,
    /// Clock drift tolerated by lease reads, as a fraction (default 0.05).
    pub lease_drift_bound: Option<f64>,
    /// "always" (default) or "never" (benchmarks only).
    pub fsync: Option<FsyncMode>,
    /// Take a snapshot after this many applied entries (default 10000).
    pub snapshot_interval_entries: Option<u64>,
    /// Deliberate bugs (names of the catalogue in `raft::bugs`, e.g. "stale-read").
    pub bugs: Option<Vec<Bug>>,
    /// Cluster id mixed into hellos, so two clusters sharing a CA do not talk (default 1).
    pub cluster_id: Option<u64>,
}

/// The resolved, validated configuration.
#[derive(Clone, Debug)]
pub struct NodeConfig {
    /// This node.
    pub id: NodeId,
    /// Bind address.
    pub listen: SocketAddr,
    /// Advertised address.
    pub advertise: SocketAddr,
    /// Data directory.
    pub data_dir: PathBuf,
    /// Certificates folder.
    pub certs_dir: PathBuf,
    /// Initial members (empty when joining).
    pub peers: BTreeMap<NodeId, SocketAddr>,
    /// Member to join through.
    pub join: Option<SocketAddr>,
    /// Heartbeat interval.
    pub heartbeat_interval: Duration,
    /// Election timeout range.
    pub election_timeout: (Duration, Duration),
    /// Read mode.
    pub read_mode: ReadMode,
    /// Election timeout policy.
    pub election_timeout_policy: ElectionTimeoutPolicy,
    /// Fsync policy.
    pub fsync: FsyncMode,
    /// Snapshot interval in entries.
    pub snapshot_interval_entries: u64,
    /// Deliberate bugs.
    pub bugs: Vec<Bug>,
    /// Cluster id.
    pub cluster_id: u64,
}

/// A configuration that cannot be used; the message names the file or flag and what was expected.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file could not be read.
    #[error("cannot read config file {path}: {source}")]
    Read {
        /// The file.
        path: String,
        /// The OS error.
        source: std::io::Error,
    },
    /// The file is not valid TOML for this schema (the message has line and column).
    #[error("config file {path}: {message}")]
    Parse {
        /// The file.
        path: String,
        /// What toml said, with the position.
        message: String,
    },
    /// A value is missing or out of range.
    #[error("invalid configuration: {0}")]
    Invalid(String),
}

impl FileConfig {
    /// Reads and parses a config file; unknown keys are errors.
    pub fn load(path: &Path) -> Result<FileConfig, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.display().to_string(),
            source,
        })?;
        toml::from_str(&text).map_err(|e| ConfigError::Parse {
            path: path.display().to_string(),
            message: e.to_string(),
        })
    }

    /// Validates and fills in defaults.
    pub fn resolve(self) -> Result<NodeConfig, ConfigError> {
        let invalid = |m: &str| ConfigError::Invalid(m.to_string());
        let id = self
            .id
            .ok_or_else(|| invalid("`id` is required (a positive integer)"))?;
        if id == 0 {
            return Err(invalid("`id` must be a positive integer, got 0"));
        }
        let listen = self
            .listen
            .ok_or_else(|| invalid("`listen` is required (e.g. 127.0.0.1:7001)"))?;
        let data_dir = self
            .data_dir
            .ok_or_else(|| invalid("`data_dir` is required"))?;
        let certs_dir = self
            .certs_dir
            .ok_or_else(|| invalid("`certs_dir` is required"))?;
        let peers: BTreeMap<NodeId, SocketAddr> = self
            .peers
            .unwrap_or_default()
            .into_iter()
            .map(|(k, v)| (NodeId(k), v))
            .collect();
        if self.join.is_none() && !peers.contains_key(&NodeId(id)) {
            return Err(ConfigError::Invalid(format!(
                "`peers` must list this node ({id}) when bootstrapping, or give `join` to join an existing cluster"
            )));
        }
        if peers.keys().any(|p| p.0 == 0) {
            return Err(invalid("`peers` ids must be positive integers"));
        }
        let heartbeat_interval = self.heartbeat_interval.unwrap_or(Duration::from_millis(50));
        let min = self
            .election_timeout_min
            .unwrap_or(Duration::from_millis(150));
        let max = self.election_timeout_max.unwrap_or(min * 2);
        if heartbeat_interval.is_zero() || min <= heartbeat_interval || max <= min {
            return Err(ConfigError::Invalid(format!(
                "timings must satisfy 0 < heartbeat_interval ({heartbeat_interval:?}) < election_timeout_min ({min:?}) < election_timeout_max ({max:?})"
            )));
        }
        let drift = self.lease_drift_bound.unwrap_or(0.05);
        if !(0.0..1.0).contains(&drift) {
            return Err(ConfigError::Invalid(format!(
                "`lease_drift_bound` must be in [0, 1), got {drift}"
            )));
        }
        let read_mode = match self.read_mode.as_deref().unwrap_or("read-index") {
            "read-index" => ReadMode::ReadIndex,
            "lease" => ReadMode::Lease {
                drift_bound_ppm: (drift * 1e6) as u32,
            },
            other => {
                return Err(ConfigError::Invalid(format!(
                    "`read_mode` must be \"read-index\" or \"lease\", got {other:?}"
                )))
            }
        };
        let election_timeout_policy =
            match self.election_timeout_policy.as_deref().unwrap_or("ranked") {
                "random" => ElectionTimeoutPolicy::Random,
                "ranked" => ElectionTimeoutPolicy::Ranked,
                other => {
                    return Err(ConfigError::Invalid(format!(
                        "`election_timeout_policy` must be \"random\" or \"ranked\", got {other:?}"
                    )))
                }
            };
        let snapshot_interval_entries = self.snapshot_interval_entries.unwrap_or(10_000);
        if snapshot_interval_entries == 0 {
            return Err(invalid("`snapshot_interval_entries` must be > 0"));
        }
        Ok(NodeConfig {
            id: NodeId(id),
            listen,
            advertise: self.advertise.unwrap_or(listen),
            data_dir,
            certs_dir,
            peers,
            join: self.join,
            heartbeat_interval,
            election_timeout: (min, max),
            read_mode,
            election_timeout_policy,
            fsync: self.fsync.unwrap_or(FsyncMode::Always),
            snapshot_interval_entries,
            bugs: {
                let mut bugs = self.bugs.unwrap_or_default();
                bugs.sort_unstable();
                bugs.dedup();
                bugs
            },
            cluster_id: self.cluster_id.unwrap_or(1),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_full_file_resolves() {
        let text = r#"
            id = 2
            listen = "127.0.0.1:7002"
            data_dir = "data/n2"
            certs_dir = "certs"
            peers = { 1 = "127.0.0.1:7001", 2 = "127.0.0.1:7002", 3 = "127.0.0.1:7003" }
            heartbeat_interval = "20ms"
            election_timeout_min = "100ms"
            election_timeout_max = "200ms"
            read_mode = "lease"
            bugs = ["stale-read"]
        "#;
        let cfg: FileConfig = toml::from_str(text).unwrap();
        let cfg = cfg.resolve().unwrap();
        assert_eq!(cfg.id, NodeId(2));
        assert_eq!(
            cfg.election_timeout,
            (Duration::from_millis(100), Duration::from_millis(200))
        );
        assert_eq!(
            cfg.read_mode,
            ReadMode::Lease {
                drift_bound_ppm: 50_000
            }
        );
        assert_eq!(cfg.bugs, vec![Bug::StaleRead]);
    }

    #[test]
    fn unknown_keys_and_bad_values_are_named() {
        let err = toml::from_str::<FileConfig>("id = 1\nlisten_addr = \"x\"\n")
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("listen_addr") && err.contains("line 2"),
            "{err}"
        );
        let err = toml::from_str::<FileConfig>("heartbeat_interval = \"fast\"\n")
            .unwrap_err()
            .to_string();
        assert!(err.contains("heartbeat_interval"), "{err}");
        let cfg = FileConfig {
            id: Some(1),
            listen: "127.0.0.1:1".parse().ok(),
            data_dir: Some("d".into()),
            certs_dir: Some("c".into()),
            ..FileConfig::default()
        };
        let err = cfg.resolve().unwrap_err().to_string();
        assert!(err.contains("`peers` must list this node"), "{err}");
    }
}
