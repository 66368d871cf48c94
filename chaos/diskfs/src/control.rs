//! The control protocol: one command per line on a unix socket, one answer line (`ok ...` or `err ...`).
//!
//! | command             | effect                                                                     |
//! |---------------------|----------------------------------------------------------------------------|
//! | `lose-unsynced`     | roll back every unsynced write, create, removal and rename (a power cut)   |
//! | `torn-write`        | the same, but each file keeps a random part of its unsynced appends         |
//! | `full on` / `off`   | writes, creates and preallocations fail with ENOSPC (or stop failing)      |
//! | `fsync-delay MS`    | every fsync / fsyncdir first sleeps MS milliseconds (0: off)               |
//! | `corrupt PATTERN`   | flip one bit of a durable byte of a file matching the glob                 |
//! | `stats`             | what a cut would drop now                                                  |
//! | `quit`              | unmount and exit                                                           |
//!
//! Cuts must only be asked for while nothing writes to the mount (the node is killed first).

use crate::fs::Knobs;
use crate::layer::Layer;
use std::io::{BufRead, BufReader, Write};
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::sync::atomic::Ordering;
use std::sync::Mutex;
use std::time::Duration;

/// A parsed control command.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Command {
    /// Power cut.
    LoseUnsynced,
    /// Power cut with torn appends.
    TornWrite,
    /// ENOSPC on or off.
    Full(bool),
    /// fsync delay in milliseconds.
    FsyncDelay(u64),
    /// Flip a bit in a durable file matching the glob.
    Corrupt(String),
    /// Report what is pending.
    Stats,
    /// Unmount and exit.
    Quit,
}

impl Command {
    /// Parses one line.
    pub fn parse(line: &str) -> Result<Command, String> {
        let mut words = line.split_whitespace();
        let cmd = words.next().unwrap_or("");
        let arg = words.next();
        let command = match (cmd, arg) {
            ("lose-unsynced", None) => Command::LoseUnsynced,
            ("torn-write", None) => Command::TornWrite,
            ("full", Some("on")) => Command::Full(true),
            ("full", Some("off")) => Command::Full(false),
            ("fsync-delay", Some(ms)) => Command::FsyncDelay(
                ms.parse()
                    .map_err(|_| format!("fsync-delay takes milliseconds, got {ms:?}"))?,
            ),
            ("corrupt", Some(pattern)) => Command::Corrupt(pattern.to_string()),
            ("stats", None) => Command::Stats,
            ("quit", None) => Command::Quit,
            _ => return Err(format!("unknown command {line:?}")),
        };
        match words.next() {
            Some(extra) => Err(format!("unexpected {extra:?} after {cmd}")),
            None => Ok(command),
        }
    }
}

/// Carries out `command`; returns the answer line (without newline).
pub fn apply(command: &Command, layer: &Mutex<Layer>, knobs: &Knobs) -> String {
    let mut layer = layer.lock().unwrap_or_else(|p| p.into_inner());
    match command {
        Command::LoseUnsynced | Command::TornWrite => {
            let r = layer.cut(*command == Command::TornWrite);
            format!(
                "ok files={} bytes={} entries={} torn_bytes={} skipped={}",
                r.files, r.bytes, r.entries, r.torn_bytes, r.skipped
            )
        }
        Command::Full(on) => {
            knobs.full.store(*on, Ordering::Relaxed);
            format!("ok full={on}")
        }
        Command::FsyncDelay(ms) => {
            knobs.fsync_delay_ms.store(*ms, Ordering::Relaxed);
            format!("ok fsync_delay_ms={ms}")
        }
        Command::Corrupt(pattern) => match layer.corrupt(pattern) {
            Ok((path, offset, bit)) => {
                format!("ok file={} offset={offset} bit={bit}", path.display())
            }
            Err(e) => format!("err {e}"),
        },
        Command::Stats => {
            let (files, bytes, entries) = layer.pending();
            format!("ok files={files} bytes={bytes} entries={entries}")
        }
        Command::Quit => "ok bye".into(),
    }
}

/// Sends one command to the layer listening on `socket`; returns the text after `ok `.
pub fn send(socket: &Path, command: &str, timeout: Duration) -> Result<String, String> {
    let talk = || -> std::io::Result<String> {
        let mut stream = UnixStream::connect(socket)?;
        stream.set_read_timeout(Some(timeout))?;
        stream.set_write_timeout(Some(timeout))?;
        stream.write_all(format!("{command}\n").as_bytes())?;
        let mut line = String::new();
        BufReader::new(stream).read_line(&mut line)?;
        Ok(line.trim_end().to_string())
    };
    let line = talk().map_err(|e| format!("{}: {e}", socket.display()))?;
    match line.strip_prefix("ok") {
        Some(rest) => Ok(rest.trim_start().to_string()),
        None => Err(line
            .strip_prefix("err ")
            .map_or_else(|| format!("no answer to {command:?}"), str::to_string)),
    }
}

/// Parses `key=value` pairs from an answer.
pub fn fields(answer: &str) -> Vec<(String, String)> {
    answer
        .split_whitespace()
        .filter_map(|kv| kv.split_once('='))
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn commands_parse_and_bad_ones_say_why() {
        assert_eq!(Command::parse("lose-unsynced"), Ok(Command::LoseUnsynced));
        assert_eq!(Command::parse("full on"), Ok(Command::Full(true)));
        assert_eq!(
            Command::parse("fsync-delay 200"),
            Ok(Command::FsyncDelay(200))
        );
        assert_eq!(
            Command::parse("corrupt wal/*.seg"),
            Ok(Command::Corrupt("wal/*.seg".into()))
        );
        assert!(Command::parse("fsync-delay soon")
            .unwrap_err()
            .contains("milliseconds"));
        assert!(Command::parse("full maybe")
            .unwrap_err()
            .contains("unknown"));
        assert!(Command::parse("stats now").unwrap_err().contains("unknown"));
    }

    #[test]
    fn fields_split_answers() {
        assert_eq!(
            fields("files=2 bytes=10"),
            vec![("files".into(), "2".into()), ("bytes".into(), "10".into())]
        );
    }
}
