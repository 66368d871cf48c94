//! The data directory's identity: which node of which cluster owns it.
//!
//! A data directory holds a node's term, vote and log. Started by another node (or in another cluster) it would
//! let that node vote twice in one term, so the first start records `identity.toml` in it and every later start
//! checks it before the storage is touched:
//!
//! ```text
//! # raft-node data directory identity: written once when the directory is first used; do not edit.
//! schema_version = 1
//! node_id = 3
//! cluster_id = 1
//! incarnation = 1739312345123456789
//! ```
//!
//! `incarnation` is drawn once per directory: a node that joins sends it with its join request, so the leader
//! tells a retry of the same join (same incarnation) from a node whose data was wiped (a new one), which must
//! not come back under its old id.
//!
//! A node that joined (started with `--join`, no `--peer` list) also records the members' addresses it was
//! given, in `join-addresses.toml`, before it takes any entry: the cluster's first members never appear in
//! the replicated address book (they were configured, not joined), so without this file a joined node that
//! restarts with the command it was first started with would know no peer, refuse every member's link as
//! coming from a stranger, and never catch up again.
//!
//! ```text
//! # raft-node: the members' addresses this node was given when it joined; read when it restarts.
//! [[member]]
//! id = 1
//! addr = "127.0.0.1:7001"
//! ```

use raft::NodeId;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::io::Write as _;
use std::path::{Path, PathBuf};

/// The file name, inside the data directory.
pub const IDENTITY_FILE: &str = "identity.toml";
/// The format version this build writes and reads.
pub const IDENTITY_SCHEMA_VERSION: u32 = 1;
/// The members' addresses a joined node was given, inside the data directory.
pub const JOIN_ADDRESSES_FILE: &str = "join-addresses.toml";

/// What `identity.toml` holds.
#[derive(Clone, Copy, PartialEq, Eq, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DataDirIdentity {
    /// Format version.
    pub schema_version: u32,
    /// The node that owns the directory.
    pub node_id: u64,
    /// Its cluster.
    pub cluster_id: u64,
    /// Drawn once when the directory was first used.
    pub incarnation: u64,
}

/// Why a data directory cannot be used by this node.
#[derive(Debug, thiserror::Error)]
pub enum DataDirError {
    /// A directory could not be created.
    #[error("cannot create the data directory's parent {path}: {source}")]
    CreateDir {
        /// The directory.
        path: PathBuf,
        /// The OS error.
        source: std::io::Error,
    },
    /// The identity file could not be read or written.
    #[error("{op} {path}: {source}")]
    Io {
        /// What was being done.
        op: &'static str,
        /// The file.
        path: PathBuf,
        /// The OS error.
        source: std::io::Error,
    },
    /// The identity file is not valid.
    #[error("{path}: {message}")]
    Parse {
        /// The file.
        path: PathBuf,
        /// What is wrong, with line and column.
        message: String,
    },
    /// The directory belongs to another node or cluster.
    #[error("data directory {dir} belongs to node {found_node} of cluster {found_cluster} (recorded in {path}), not to node {node} of cluster {cluster}: start node {found_node} on it, or give node {node} a data directory of its own")]
    WrongOwner {
        /// The data directory.
        dir: PathBuf,
        /// The identity file.
        path: PathBuf,
        /// The node recorded.
        found_node: u64,
        /// The cluster recorded.
        found_cluster: u64,
        /// The node starting.
        node: u64,
        /// Its cluster.
        cluster: u64,
    },
}

/// Creates the data directory's parent folders (the storage creates the directory itself, durably).
pub fn create_parents(dir: &Path) -> Result<(), DataDirError> {
    match dir.parent().filter(|p| !p.as_os_str().is_empty()) {
        Some(parent) => std::fs::create_dir_all(parent).map_err(|source| DataDirError::CreateDir {
            path: parent.to_path_buf(),
            source,
        }),
        None => Ok(()),
    }
}

/// The text of `dir/name`, or `None` if there is no such file.
fn read_text(dir: &Path, name: &str) -> Result<Option<(PathBuf, String)>, DataDirError> {
    let path = dir.join(name);
    match std::fs::read_to_string(&path) {
        Ok(text) => Ok(Some((path, text))),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(source) => Err(DataDirError::Io {
            op: "read",
            path,
            source,
        }),
    }
}

/// Reads the identity recorded in `dir`, if any.
pub fn read(dir: &Path) -> Result<Option<DataDirIdentity>, DataDirError> {
    let Some((path, text)) = read_text(dir, IDENTITY_FILE)? else {
        return Ok(None);
    };
    let identity: DataDirIdentity = toml::from_str(&text).map_err(|e| DataDirError::Parse {
        path: path.clone(),
        message: e.to_string(),
    })?;
    if identity.schema_version != IDENTITY_SCHEMA_VERSION {
        return Err(DataDirError::Parse {
            path,
            message: format!(
                "schema_version {} is not supported (this build reads {IDENTITY_SCHEMA_VERSION})",
                identity.schema_version
            ),
        });
    }
    Ok(Some(identity))
}

/// Checks that `dir`, if it records an owner, belongs to `node` of `cluster`; returns what it records.
pub fn check(dir: &Path, node: u64, cluster: u64) -> Result<Option<DataDirIdentity>, DataDirError> {
    let found = read(dir)?;
    if let Some(found) = found {
        if found.node_id != node || found.cluster_id != cluster {
            return Err(DataDirError::WrongOwner {
                dir: dir.to_path_buf(),
                path: dir.join(IDENTITY_FILE),
                found_node: found.node_id,
                found_cluster: found.cluster_id,
                node,
                cluster,
            });
        }
    }
    Ok(found)
}

/// A new identity for `node` of `cluster`, with a fresh incarnation mixed from the clock, the process and the id.
pub fn new_identity(node: u64, cluster: u64) -> DataDirIdentity {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64);
    static CALLS: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let call = CALLS.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let mut x = nanos
        ^ (u64::from(std::process::id()) << 32)
        ^ node.rotate_left(17)
        ^ call.wrapping_mul(0x9e37_79b9_7f4a_7c15);
    // SplitMix64 finaliser: spreads the bits so two close clocks give unrelated incarnations.
    x = (x ^ (x >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    x ^= x >> 31;
    DataDirIdentity {
        schema_version: IDENTITY_SCHEMA_VERSION,
        node_id: node,
        cluster_id: cluster,
        incarnation: x.max(1),
    }
}

/// Writes the identity durably (temporary file, fsync, rename, fsync of the directory).
pub fn write(dir: &Path, identity: &DataDirIdentity) -> Result<(), DataDirError> {
    let body = toml::to_string(identity).expect("the identity serialises");
    write_durably(
        dir,
        IDENTITY_FILE,
        &format!("# raft-node data directory identity: written once when the directory is first used; do not edit.\n{body}"),
    )
}

/// One member's address in [`JOIN_ADDRESSES_FILE`].
#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct MemberAddress {
    id: u64,
    addr: String,
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct JoinAddresses {
    #[serde(default)]
    member: Vec<MemberAddress>,
}

/// Records, durably, the members' addresses a joining node was given.
pub fn write_join_addresses(
    dir: &Path,
    members: &BTreeMap<NodeId, String>,
) -> Result<(), DataDirError> {
    let file = JoinAddresses {
        member: members
            .iter()
            .map(|(id, addr)| MemberAddress {
                id: id.0,
                addr: addr.clone(),
            })
            .collect(),
    };
    let body = toml::to_string(&file).expect("the addresses serialise");
    write_durably(
        dir,
        JOIN_ADDRESSES_FILE,
        &format!("# raft-node: the members' addresses this node was given when it joined; read when it restarts.\n{body}"),
    )
}

/// The members' addresses recorded by [`write_join_addresses`]; none if the node did not join.
pub fn read_join_addresses(dir: &Path) -> Result<BTreeMap<NodeId, String>, DataDirError> {
    let Some((path, text)) = read_text(dir, JOIN_ADDRESSES_FILE)? else {
        return Ok(BTreeMap::new());
    };
    let file: JoinAddresses = toml::from_str(&text).map_err(|e| DataDirError::Parse {
        path,
        message: e.to_string(),
    })?;
    Ok(file
        .member
        .into_iter()
        .map(|m| (NodeId(m.id), m.addr))
        .collect())
}

/// Writes `dir/name` durably: a temporary file, fsync, rename into place, fsync of the directory.
fn write_durably(dir: &Path, name: &str, text: &str) -> Result<(), DataDirError> {
    let path = dir.join(name);
    let temp = dir.join(format!("{name}.tmp"));
    let io = |op: &'static str, path: &Path| {
        let path = path.to_path_buf();
        move |source| DataDirError::Io { op, path, source }
    };
    let mut file = std::fs::File::create(&temp).map_err(io("create", &temp))?;
    file.write_all(text.as_bytes())
        .map_err(io("write", &temp))?;
    file.sync_all().map_err(io("fsync", &temp))?;
    drop(file);
    std::fs::rename(&temp, &path).map_err(io("rename into place", &path))?;
    std::fs::File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(io("fsync directory", dir))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_identity_roundtrips_and_a_stranger_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        assert!(check(dir.path(), 3, 1).unwrap().is_none());
        let identity = new_identity(3, 1);
        write(dir.path(), &identity).unwrap();
        assert_eq!(check(dir.path(), 3, 1).unwrap(), Some(identity));
        let err = check(dir.path(), 2, 1).unwrap_err().to_string();
        assert!(
            err.contains("belongs to node 3 of cluster 1")
                && err.contains("not to node 2 of cluster 1")
                && err.contains(IDENTITY_FILE),
            "{err}"
        );
        let err = check(dir.path(), 3, 7).unwrap_err().to_string();
        assert!(err.contains("not to node 3 of cluster 7"), "{err}");
    }

    #[test]
    fn a_damaged_identity_names_the_file_and_line() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join(IDENTITY_FILE),
            "schema_version = 1\nnode_id = \"x\"\n",
        )
        .unwrap();
        let err = read(dir.path()).unwrap_err().to_string();
        assert!(
            err.contains(IDENTITY_FILE) && err.contains("line 2"),
            "{err}"
        );
        std::fs::write(
            dir.path().join(IDENTITY_FILE),
            "schema_version = 9\nnode_id = 1\ncluster_id = 1\nincarnation = 5\n",
        )
        .unwrap();
        let err = read(dir.path()).unwrap_err().to_string();
        assert!(err.contains("schema_version 9"), "{err}");
    }

    #[test]
    fn join_addresses_roundtrip_and_a_damaged_file_names_itself() {
        let dir = tempfile::tempdir().unwrap();
        assert!(
            read_join_addresses(dir.path()).unwrap().is_empty(),
            "not a joined node"
        );
        let members: BTreeMap<NodeId, String> = [
            (NodeId(1), "127.0.0.1:7001".to_string()),
            (NodeId(3), "[::1]:7003".to_string()),
        ]
        .into();
        write_join_addresses(dir.path(), &members).unwrap();
        assert_eq!(read_join_addresses(dir.path()).unwrap(), members);
        std::fs::write(
            dir.path().join(JOIN_ADDRESSES_FILE),
            "[[member]]\nid = \"one\"\n",
        )
        .unwrap();
        let e = read_join_addresses(dir.path()).unwrap_err().to_string();
        assert!(
            e.contains(JOIN_ADDRESSES_FILE) && e.contains("line 2"),
            "{e}"
        );
    }

    #[test]
    fn incarnations_differ() {
        assert_ne!(
            new_identity(1, 1).incarnation,
            new_identity(1, 1).incarnation
        );
    }
}
