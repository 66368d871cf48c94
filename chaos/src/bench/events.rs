//! Role changes pushed by the nodes themselves, with the node's own timestamp: raft-node logs a `role change`
//! line with `role=`, `term=` and `at_unix_us=`; etcd (zap JSON) logs `"<id> became leader at term N"` with an
//! ISO 8601 `ts` (millisecond precision). The bench tails each node's log file as it is written, so a figure
//! does not depend on how often anyone polls.

use std::io::{Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};

/// A role a node announced.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Announced {
    /// Leader.
    Leader,
    /// Candidate (a real election round, the term raised).
    Candidate,
    /// Pre-candidate (asking for pre-votes; the term is not raised).
    PreCandidate,
    /// Follower or learner.
    Follower,
}

/// One role change, as the node wrote it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RoleEvent {
    /// The node (our id).
    pub node: u64,
    /// Wall-clock time of the change on the node, in µs since the Unix epoch.
    pub at_unix_us: u64,
    /// The new role.
    pub role: Announced,
    /// The term it is in.
    pub term: u64,
}

/// How precise a target's timestamps are, in µs (the measurement error the output states).
pub fn timestamp_resolution_us(etcd: bool) -> u64 {
    if etcd {
        1000
    } else {
        1
    }
}

/// Parses one log line of node `node`; `None` for lines that are not role changes.
pub fn parse_line(node: u64, line: &str) -> Option<RoleEvent> {
    if line.contains("role change") {
        return parse_raft_node(node, line);
    }
    if line.contains(" became ") && line.contains(" at term ") {
        return parse_etcd(node, line);
    }
    None
}

fn field<'a>(line: &'a str, key: &str) -> Option<&'a str> {
    let start = line.find(&format!(" {key}="))? + key.len() + 2;
    let rest = &line[start..];
    Some(
        rest.split([' ', ',', '\n', '\r'])
            .next()
            .unwrap_or(rest)
            .trim_matches('"'),
    )
}

fn parse_raft_node(node: u64, line: &str) -> Option<RoleEvent> {
    let role = match field(line, "role")? {
        "leader" => Announced::Leader,
        "candidate" => Announced::Candidate,
        "pre-candidate" => Announced::PreCandidate,
        _ => Announced::Follower,
    };
    Some(RoleEvent {
        node,
        at_unix_us: field(line, "at_unix_us")?.parse().ok()?,
        role,
        term: field(line, "term")?.parse().ok()?,
    })
}

fn parse_etcd(node: u64, line: &str) -> Option<RoleEvent> {
    let json: serde_json::Value = serde_json::from_str(line.trim()).ok()?;
    let msg = json["msg"].as_str()?;
    let (_, after) = msg.split_once(" became ")?;
    let (role, term) = after.split_once(" at term ")?;
    let role = match role {
        "leader" => Announced::Leader,
        "candidate" => Announced::Candidate,
        "pre-candidate" => Announced::PreCandidate,
        _ => Announced::Follower,
    };
    let ts = humantime::parse_rfc3339_weak(json["ts"].as_str()?).ok()?;
    let at = ts.duration_since(std::time::UNIX_EPOCH).ok()?;
    Some(RoleEvent {
        node,
        at_unix_us: at.as_micros() as u64,
        role,
        term: term.trim().parse().ok()?,
    })
}

/// Follows one node's log file from an offset, returning the role changes of complete lines written since.
#[derive(Debug)]
pub struct LogTail {
    node: u64,
    path: PathBuf,
    offset: u64,
    partial: String,
}

impl LogTail {
    /// Starts at the current end of `path` (nothing written before now is reported).
    pub fn at_end(node: u64, path: &Path) -> LogTail {
        let offset = std::fs::metadata(path).map_or(0, |m| m.len());
        LogTail {
            node,
            path: path.to_path_buf(),
            offset,
            partial: String::new(),
        }
    }

    /// The role changes in the lines completed since the last call.
    pub fn poll(&mut self) -> Vec<RoleEvent> {
        let Ok(mut file) = std::fs::File::open(&self.path) else {
            return Vec::new();
        };
        if file.seek(SeekFrom::Start(self.offset)).is_err() {
            return Vec::new();
        }
        let mut bytes = Vec::new();
        if file.read_to_end(&mut bytes).is_err() {
            return Vec::new();
        }
        self.offset += bytes.len() as u64;
        self.partial.push_str(&String::from_utf8_lossy(&bytes));
        let mut events = Vec::new();
        while let Some(end) = self.partial.find('\n') {
            let line: String = self.partial.drain(..=end).collect();
            events.extend(parse_line(self.node, &line));
        }
        events
    }
}

/// Every node's log tail.
#[derive(Debug)]
pub struct Tails(pub Vec<LogTail>);

impl Tails {
    /// The role changes of every node since the last call, in time order.
    pub fn poll(&mut self) -> Vec<RoleEvent> {
        let mut all: Vec<RoleEvent> = self.0.iter_mut().flat_map(LogTail::poll).collect();
        all.sort_by_key(|e| e.at_unix_us);
        all
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    #[test]
    fn parses_raft_node_text_and_json_lines() {
        let text = "2026-12-04T11:20:44.123Z  INFO raft_node::server: role change id=2 role=leader term=7 leader=Some(2) at_unix_us=1700000000123456";
        let e = parse_line(2, text).unwrap();
        assert_eq!(
            (e.role, e.term, e.at_unix_us),
            (Announced::Leader, 7, 1700000000123456)
        );
        let json = r#"{"fields":{"message":"role change","id":"2","role":"pre-candidate","term":3,"at_unix_us":5},"x":1}"#;
        assert_eq!(
            parse_line(2, json),
            None,
            "JSON logs are not what raft-node writes for the bench"
        );
        assert_eq!(parse_line(2, "node started id=2"), None);
    }

    #[test]
    fn parses_etcd_zap_lines() {
        let line = r#"{"level":"info","ts":"2026-12-04T11:29:54.213Z","caller":"raft/raft.go:771","msg":"2e1259d415f2a040 became leader at term 12"}"#;
        let e = parse_line(3, line).unwrap();
        assert_eq!((e.node, e.role, e.term), (3, Announced::Leader, 12));
        assert_eq!(e.at_unix_us % 1_000_000, 213_000);
        let pre = line.replace("leader at term 12", "pre-candidate at term 11");
        assert_eq!(parse_line(3, &pre).unwrap().role, Announced::PreCandidate);
    }

    #[test]
    fn a_tail_reports_only_complete_new_lines() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("n1.log");
        std::fs::write(&path, "role change role=leader term=1 at_unix_us=1\n").unwrap();
        let mut tail = LogTail::at_end(1, &path);
        let mut f = std::fs::OpenOptions::new()
            .append(true)
            .open(&path)
            .unwrap();
        write!(
            f,
            "x role change role=candidate term=2 at_unix_us=5\nx role change role=le"
        )
        .unwrap();
        let got = tail.poll();
        assert_eq!(got.len(), 1);
        assert_eq!((got[0].role, got[0].term), (Announced::Candidate, 2));
        writeln!(f, "ader term=2 at_unix_us=9").unwrap();
        let got = tail.poll();
        assert_eq!((got[0].role, got[0].at_unix_us), (Announced::Leader, 9));
        assert!(tail.poll().is_empty());
    }
}
