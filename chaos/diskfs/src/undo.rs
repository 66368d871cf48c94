//! The undo log (pure): what a power cut would lose. Writes go straight to the backing files, so reads are
//! always right; what this module remembers is how to go back to the last durable state:
//!
//! - per file, since its last fsync/fdatasync: the length it had then and the pre-image of every byte range
//!   overwritten or cut off below that length ([`FileLog`]);
//! - per directory, since its last fsync: entries created, removed and renamed ([`DirLog`]), undone newest
//!   first. Removed entries (and entries a rename replaced) are parked in a trash folder until their
//!   directory is fsynced, so that undoing the removal is a rename back.

use std::path::{Path, PathBuf};

/// A file's bytes as the undo log needs them (the real backing file, or a `Vec<u8>` in tests).
pub trait Store {
    /// Reads `len` bytes at `offset` (the range is within the current length).
    fn read_at(&mut self, offset: u64, len: usize) -> std::io::Result<Vec<u8>>;
    /// Writes `bytes` at `offset`.
    fn write_at(&mut self, offset: u64, bytes: &[u8]) -> std::io::Result<()>;
    /// Truncates or extends (with zeros) to `len`.
    fn set_len(&mut self, len: u64) -> std::io::Result<()>;
}

/// One file's changes since its last fsync.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FileLog {
    /// The length at the last fsync.
    orig_len: u64,
    /// Pre-images of overwritten or cut ranges (all below `orig_len`), oldest first.
    pre: Vec<(u64, Vec<u8>)>,
}

impl FileLog {
    /// A log for a file that was `len` bytes long when it was last synced.
    pub fn new(len: u64) -> FileLog {
        FileLog {
            orig_len: len,
            pre: Vec::new(),
        }
    }

    /// The length at the last fsync.
    pub fn synced_len(&self) -> u64 {
        self.orig_len
    }

    /// The range `(offset, len)` whose current bytes must be saved before changing `[offset, offset + len)`
    /// of a file now `cur_len` long: only bytes that existed at the last fsync matter (later ones are cut
    /// off by the rollback anyway).
    pub fn needs(&self, cur_len: u64, offset: u64, len: u64) -> Option<(u64, usize)> {
        let end = offset.saturating_add(len).min(cur_len).min(self.orig_len);
        (end > offset).then(|| (offset, (end - offset) as usize))
    }

    /// Remembers the bytes that were at `offset` before a change.
    pub fn save(&mut self, offset: u64, bytes: Vec<u8>) {
        if !bytes.is_empty() {
            self.pre.push((offset, bytes));
        }
    }

    /// Whether byte `offset` is durable: below the synced length and never overwritten since.
    pub fn is_synced(&self, offset: u64) -> bool {
        offset < self.orig_len
            && !self
                .pre
                .iter()
                .any(|(o, b)| (*o..*o + b.len() as u64).contains(&offset))
    }

    /// Bytes the rollback would restore or cut for a file now `cur_len` long.
    pub fn unsynced_bytes(&self, cur_len: u64) -> u64 {
        let restored: u64 = self.pre.iter().map(|(_, b)| b.len() as u64).sum();
        restored + cur_len.saturating_sub(self.orig_len)
    }

    /// Puts the file back as it was at its last fsync, except that `keep_tail` bytes written past the synced
    /// length survive (a torn write: 0 for a clean cut). Pre-images go back newest first.
    pub fn rollback(&self, store: &mut dyn Store, keep_tail: u64) -> std::io::Result<()> {
        for (offset, bytes) in self.pre.iter().rev() {
            store.write_at(*offset, bytes)?;
        }
        store.set_len(self.orig_len + keep_tail)
    }
}

/// One directory-entry change, with the paths (relative to the mount) it touched.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum DirOp {
    /// A file or directory created at `path`.
    Created {
        /// Where.
        path: PathBuf,
    },
    /// An entry removed from `path`, parked at `trash`.
    Removed {
        /// Where it was.
        path: PathBuf,
        /// Where it waits (a path the layer owns, outside the mount).
        trash: PathBuf,
    },
    /// An entry renamed; the entry it replaced (if any) is parked at `replaced`.
    Renamed {
        /// Old name.
        from: PathBuf,
        /// New name.
        to: PathBuf,
        /// Where the replaced entry waits.
        replaced: Option<PathBuf>,
    },
}

impl DirOp {
    /// Moves the paths of this change that lie under `from` to the same place under `to`.
    fn rebase(&mut self, from: &Path, to: &Path) {
        let fix = |p: &mut PathBuf| {
            if let Ok(rest) = p.strip_prefix(from) {
                *p = if rest.as_os_str().is_empty() {
                    to.to_path_buf()
                } else {
                    to.join(rest)
                };
            }
        };
        match self {
            DirOp::Created { path } | DirOp::Removed { path, .. } => fix(path),
            DirOp::Renamed { from: f, to: t, .. } => {
                fix(f);
                fix(t);
            }
        }
    }
}

/// A primitive step of an undo or a commit, carried out by the filesystem.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Step {
    /// Delete `path` (recursively if it is a directory).
    Remove(PathBuf),
    /// Rename `from` to `to` (for parked entries, `from` is the trash path).
    Move {
        /// Source.
        from: PathBuf,
        /// Destination.
        to: PathBuf,
    },
}

/// Directory-entry changes not yet made durable, in the order they happened. Each belongs to the directory
/// whose fsync makes it durable (for a rename: the destination's directory).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct DirLog {
    ops: Vec<(u64, DirOp)>,
}

impl DirLog {
    /// Records `op`, made durable by an fsync of directory `dir`.
    pub fn push(&mut self, dir: u64, op: DirOp) {
        self.ops.push((dir, op));
    }

    /// How many changes are pending.
    pub fn len(&self) -> usize {
        self.ops.len()
    }

    /// Whether nothing is pending.
    pub fn is_empty(&self) -> bool {
        self.ops.is_empty()
    }

    /// Makes directory `dir`'s changes durable; returns the steps that free what they parked. A rename made
    /// durable is never undone, so older pending changes under its old name now live under its new one.
    pub fn commit(&mut self, dir: u64) -> Vec<Step> {
        let mut kept: Vec<(u64, DirOp)> = Vec::new();
        let mut steps = Vec::new();
        for (d, op) in self.ops.drain(..) {
            if d != dir {
                kept.push((d, op));
                continue;
            }
            match op {
                DirOp::Removed { trash, .. } => steps.push(Step::Remove(trash)),
                DirOp::Renamed { from, to, replaced } => {
                    for (_, older) in &mut kept {
                        older.rebase(&from, &to);
                    }
                    if let Some(trash) = replaced {
                        steps.push(Step::Remove(trash));
                    }
                }
                DirOp::Created { .. } => {}
            }
        }
        self.ops = kept;
        steps
    }

    /// Empties the log; returns the steps that undo every change, newest first.
    pub fn undo(&mut self) -> Vec<Step> {
        let mut steps = Vec::new();
        for (_, op) in self.ops.drain(..).rev() {
            match op {
                DirOp::Created { path } => steps.push(Step::Remove(path)),
                DirOp::Removed { path, trash } => steps.push(Step::Move {
                    from: trash,
                    to: path,
                }),
                DirOp::Renamed { from, to, replaced } => {
                    steps.push(Step::Move {
                        from: to.clone(),
                        to: from,
                    });
                    if let Some(trash) = replaced {
                        steps.push(Step::Move { from: trash, to });
                    }
                }
            }
        }
        steps
    }
}

/// Whether `path` matches `pattern`, where `*` stands for any run of characters (slashes included) and `?`
/// for one character.
pub fn glob_match(pattern: &str, path: &str) -> bool {
    fn go(p: &[char], s: &[char]) -> bool {
        match p.split_first() {
            None => s.is_empty(),
            Some(('*', rest)) => (0..=s.len()).any(|i| go(rest, &s[i..])),
            Some((c, rest)) => s
                .split_first()
                .is_some_and(|(h, t)| (*c == '?' || c == h) && go(rest, t)),
        }
    }
    let p: Vec<char> = pattern.chars().collect();
    let s: Vec<char> = path.chars().collect();
    go(&p, &s)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    impl Store for Vec<u8> {
        fn read_at(&mut self, offset: u64, len: usize) -> std::io::Result<Vec<u8>> {
            Ok(self[offset as usize..offset as usize + len].to_vec())
        }
        fn write_at(&mut self, offset: u64, bytes: &[u8]) -> std::io::Result<()> {
            let end = offset as usize + bytes.len();
            if self.len() < end {
                self.resize(end, 0);
            }
            self[offset as usize..end].copy_from_slice(bytes);
            Ok(())
        }
        fn set_len(&mut self, len: u64) -> std::io::Result<()> {
            self.resize(len as usize, 0);
            Ok(())
        }
    }

    /// Writes through the log as the filesystem does.
    fn write(file: &mut Vec<u8>, log: &mut FileLog, offset: u64, bytes: &[u8]) {
        if let Some((o, n)) = log.needs(file.len() as u64, offset, bytes.len() as u64) {
            let pre = file.read_at(o, n).unwrap();
            log.save(o, pre);
        }
        file.write_at(offset, bytes).unwrap();
    }

    #[test]
    fn appends_are_cut_and_overwrites_restored() {
        let mut file = b"hello world".to_vec();
        let mut log = FileLog::new(file.len() as u64);
        write(&mut file, &mut log, 6, b"WORLD!!");
        write(&mut file, &mut log, 0, b"J");
        write(&mut file, &mut log, 0, b"Y");
        write(&mut file, &mut log, 20, b"tail");
        assert_eq!(&file[..13], b"Yello WORLD!!");
        assert_eq!(log.unsynced_bytes(file.len() as u64), 5 + 1 + 1 + 13);
        assert!(log.is_synced(1) && !log.is_synced(0) && !log.is_synced(7) && !log.is_synced(11));
        log.rollback(&mut file, 0).unwrap();
        assert_eq!(file, b"hello world");
    }

    #[test]
    fn truncation_is_undone_and_a_torn_write_keeps_a_prefix() {
        let mut file = b"0123456789".to_vec();
        let mut log = FileLog::new(10);
        // A truncation to 4 saves the cut bytes; the regrowth past 10 is new data.
        let pre = file.read_at(4, 6).unwrap();
        log.save(4, pre);
        Store::set_len(&mut file, 4).unwrap();
        write(&mut file, &mut log, 4, b"abcdefghijklmnop");
        let mut torn = file.clone();
        log.rollback(&mut file, 0).unwrap();
        assert_eq!(file, b"0123456789");
        log.rollback(&mut torn, 3).unwrap();
        assert_eq!(torn, b"0123456789ghi");
    }

    #[test]
    fn a_fresh_log_of_an_empty_file_saves_nothing() {
        let log = FileLog::new(0);
        assert_eq!(log.needs(100, 0, 50), None);
        assert!(!log.is_synced(0));
    }

    /// A tiny in-memory tree to run steps against.
    fn apply(tree: &mut BTreeMap<PathBuf, &'static str>, steps: Vec<Step>) {
        for step in steps {
            match step {
                Step::Remove(p) => {
                    tree.remove(&p);
                }
                Step::Move { from, to } => {
                    let v = tree.remove(&from).expect("source exists");
                    tree.insert(to, v);
                }
            }
        }
    }

    #[test]
    fn undo_reverts_creates_removes_and_renames_newest_first() {
        let p = PathBuf::from;
        let mut tree: BTreeMap<PathBuf, &str> = [(p("a"), "A"), (p("b"), "B")].into();
        let before = tree.clone();
        let mut log = DirLog::default();
        // create tmp, rename tmp over a (a parked), remove b (parked).
        tree.insert(p("tmp"), "T");
        log.push(1, DirOp::Created { path: p("tmp") });
        tree.insert(p(".trash/0"), tree[&p("a")]);
        tree.insert(p("a"), tree[&p("tmp")]);
        tree.remove(&p("tmp"));
        log.push(
            1,
            DirOp::Renamed {
                from: p("tmp"),
                to: p("a"),
                replaced: Some(p(".trash/0")),
            },
        );
        tree.insert(p(".trash/1"), tree[&p("b")]);
        tree.remove(&p("b"));
        log.push(
            1,
            DirOp::Removed {
                path: p("b"),
                trash: p(".trash/1"),
            },
        );
        assert_eq!(log.len(), 3);
        apply(&mut tree, log.undo());
        assert_eq!(tree, before);
        assert!(log.is_empty());
    }

    #[test]
    fn commit_keeps_only_other_directories_changes_and_frees_the_trash() {
        let p = PathBuf::from;
        let mut log = DirLog::default();
        log.push(1, DirOp::Created { path: p("x") });
        log.push(
            2,
            DirOp::Removed {
                path: p("d/y"),
                trash: p("t/0"),
            },
        );
        log.push(
            1,
            DirOp::Renamed {
                from: p("x"),
                to: p("z"),
                replaced: Some(p("t/1")),
            },
        );
        assert_eq!(log.commit(1), vec![Step::Remove(p("t/1"))]);
        assert_eq!(log.len(), 1);
        assert_eq!(
            log.undo(),
            vec![Step::Move {
                from: p("t/0"),
                to: p("d/y")
            }]
        );
    }

    #[test]
    fn a_durable_rename_carries_older_pending_changes_under_its_new_name() {
        let p = PathBuf::from;
        let mut log = DirLog::default();
        // mkdir wal.tmp (dir 1), create wal.tmp/0.wal (dir 2 = wal.tmp, never synced), rename wal.tmp -> wal
        // (dir 1), fsync dir 1: the create of the file is still pending, now under wal/.
        log.push(1, DirOp::Created { path: p("wal.tmp") });
        log.push(
            2,
            DirOp::Created {
                path: p("wal.tmp/0.wal"),
            },
        );
        log.push(
            1,
            DirOp::Renamed {
                from: p("wal.tmp"),
                to: p("wal"),
                replaced: None,
            },
        );
        assert!(log.commit(1).is_empty());
        assert_eq!(log.undo(), vec![Step::Remove(p("wal/0.wal"))]);
    }

    #[test]
    fn globs() {
        assert!(glob_match("*", "wal/0001.seg"));
        assert!(glob_match("wal/*.seg", "wal/0001.seg"));
        assert!(glob_match("hardstat?", "hardstate"));
        assert!(!glob_match("wal/*.seg", "snapshot/snap.bin"));
        assert!(!glob_match("hardstate", "hardstate.tmp"));
    }
}
