//! A crashed node's last words: the last error line of its log, so the report says why a node exited and not
//! only that it did. Target-agnostic: raft-node's `ERROR ... node stopped error=...`, a Go binary's `panic:` or
//! etcd's `"level":"fatal"` JSON line all match. Only error lines are quoted: quoting the last line whatever it
//! says would put an unrelated INFO line next to a crash.

use std::fs::File;
use std::io::{Read, Seek, SeekFrom};
use std::path::Path;

/// How much of the log's end is read (a crash's message is among its last lines).
const TAIL_BYTES: u64 = 64 * 1024;
/// How many of the last lines are searched.
const TAIL_LINES: usize = 64;
/// Longest quote, in characters.
const QUOTE_CHARS: usize = 300;

/// The last error line among the last lines of the log at `path`, if it has one.
pub fn last_error_line(path: &Path) -> Option<String> {
    let mut file = File::open(path).ok()?;
    let len = file.metadata().ok()?.len();
    file.seek(SeekFrom::Start(len.saturating_sub(TAIL_BYTES)))
        .ok()?;
    let mut bytes = Vec::new();
    file.read_to_end(&mut bytes).ok()?;
    pick(&String::from_utf8_lossy(&bytes))
}

/// The last line of `tail`'s last lines that reports an error, a fatal condition or a panic, shortened.
fn pick(tail: &str) -> Option<String> {
    let line = tail
        .lines()
        .rev()
        .take(TAIL_LINES)
        .map(str::trim)
        .find(|l| {
            let l = l.to_ascii_lowercase();
            ["error", "fatal", "panic"].iter().any(|w| l.contains(w))
        })?;
    Some(if line.chars().count() > QUOTE_CHARS {
        let cut: String = line.chars().take(QUOTE_CHARS).collect();
        format!("{cut}…")
    } else {
        line.to_string()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_last_error_line_is_quoted_and_other_lines_are_not() {
        let raft_node = "2026-12-05T00:28:22Z  INFO raft_node::server: role change id=n2 role=follower\n\
                         2026-12-05T00:28:22Z ERROR raft_node: node stopped error=hard state regression: vote in term 23 changes from Some(1) to Some(4)\n\
                         error: hard state regression: vote in term 23 changes from Some(1) to Some(4)\n";
        assert_eq!(
            pick(raft_node).as_deref(),
            Some("error: hard state regression: vote in term 23 changes from Some(1) to Some(4)")
        );
        let etcd = "{\"level\":\"info\",\"msg\":\"ready\"}\n{\"level\":\"fatal\",\"msg\":\"failed to recover v3 backend\"}\n";
        assert_eq!(
            pick(etcd).as_deref(),
            Some("{\"level\":\"fatal\",\"msg\":\"failed to recover v3 backend\"}")
        );
        assert_eq!(
            pick("goroutine 1 [running]:\npanic: runtime error\n\n").as_deref(),
            Some("panic: runtime error")
        );
        assert_eq!(
            pick("INFO started\nINFO role change\n"),
            None,
            "no error: nothing quoted"
        );
        let long = format!("ERROR {}", "x".repeat(500));
        let quoted = pick(&long).unwrap();
        assert_eq!(quoted.chars().count(), QUOTE_CHARS + 1);
        assert!(quoted.ends_with('…'));
    }

    #[test]
    fn an_error_far_before_the_end_is_not_the_crash() {
        let mut log = String::from("ERROR an old transient error\n");
        for i in 0..TAIL_LINES {
            log.push_str(&format!("INFO line {i}\n"));
        }
        assert_eq!(pick(&log), None);
    }

    #[test]
    fn a_missing_or_huge_log_is_read_from_its_end() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(last_error_line(&dir.path().join("node.log")), None);
        let path = dir.path().join("big.log");
        let mut text = "INFO filler line that is long enough to matter\n".repeat(5000);
        text.push_str("ERROR node stopped error=disk full\n");
        std::fs::write(&path, &text).unwrap();
        assert!(text.len() as u64 > TAIL_BYTES);
        assert_eq!(
            last_error_line(&path).as_deref(),
            Some("ERROR node stopped error=disk full")
        );
    }
}
