//! The layer's state behind the FUSE callbacks: paths by inode, open files, the undo logs, and the faults
//! in force (ENOSPC, fsync delay). Every operation goes through to the backing directory at once; the undo
//! logs ([`crate::undo`]) remember how to get back to the last durable state.

use crate::undo::{DirLog, DirOp, FileLog, Step, Store};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use std::collections::HashMap;
use std::fs::File;
use std::io;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

/// The root's inode number (FUSE's).
pub const ROOT: u64 = 1;

/// A backing file as the undo log sees it.
struct Backing<'a>(&'a File);

impl Store for Backing<'_> {
    fn read_at(&mut self, offset: u64, len: usize) -> io::Result<Vec<u8>> {
        let mut buf = vec![0; len];
        self.0.read_exact_at(&mut buf, offset)?;
        Ok(buf)
    }
    fn write_at(&mut self, offset: u64, bytes: &[u8]) -> io::Result<()> {
        self.0.write_all_at(bytes, offset)
    }
    fn set_len(&mut self, len: u64) -> io::Result<()> {
        self.0.set_len(len)
    }
}

/// What a cut rolled back.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct CutReport {
    /// Files whose unsynced bytes were dropped.
    pub files: u64,
    /// Bytes restored or cut off.
    pub bytes: u64,
    /// Directory entries reverted.
    pub entries: u64,
    /// Bytes of torn writes that survived.
    pub torn_bytes: u64,
    /// Steps that could not be carried out (a path gone, e.g. after a committed rename of its parent).
    pub skipped: u64,
}

/// The mutable state (one lock: operations are short and the node's I/O is mostly sequential).
#[derive(Debug)]
pub struct Layer {
    backing: PathBuf,
    trash: PathBuf,
    paths: HashMap<u64, PathBuf>,
    inos: HashMap<PathBuf, u64>,
    next_ino: u64,
    handles: HashMap<u64, (u64, File)>,
    next_fh: u64,
    files: HashMap<u64, FileLog>,
    dirs: DirLog,
    trash_seq: u64,
    rng: ChaCha8Rng,
}

impl Layer {
    /// A layer over `backing`, parking removed entries in `trash` (same filesystem, outside the mount).
    pub fn new(backing: PathBuf, trash: PathBuf, seed: u64) -> io::Result<Layer> {
        std::fs::create_dir_all(&trash)?;
        let mut layer = Layer {
            backing,
            trash,
            paths: HashMap::new(),
            inos: HashMap::new(),
            next_ino: ROOT + 1,
            handles: HashMap::new(),
            next_fh: 1,
            files: HashMap::new(),
            dirs: DirLog::default(),
            trash_seq: 0,
            rng: ChaCha8Rng::seed_from_u64(seed),
        };
        layer.paths.insert(ROOT, PathBuf::new());
        layer.inos.insert(PathBuf::new(), ROOT);
        Ok(layer)
    }

    /// The relative path of `ino`.
    pub fn path(&self, ino: u64) -> io::Result<PathBuf> {
        self.paths
            .get(&ino)
            .cloned()
            .ok_or_else(|| io::Error::from_raw_os_error(libc::ENOENT))
    }

    /// The backing path of a relative path (trash paths are absolute and stay as they are).
    pub fn real(&self, rel: &Path) -> PathBuf {
        self.backing.join(rel)
    }

    /// The inode number for `rel`, assigned on first sight.
    pub fn ino_for(&mut self, rel: &Path) -> u64 {
        if let Some(&ino) = self.inos.get(rel) {
            return ino;
        }
        let ino = self.next_ino;
        self.next_ino += 1;
        self.inos.insert(rel.to_path_buf(), ino);
        self.paths.insert(ino, rel.to_path_buf());
        ino
    }

    /// Moves `from` (and everything under it) to `to` in the inode maps.
    fn remap(&mut self, from: &Path, to: &Path) {
        let moved: Vec<(PathBuf, u64)> = self
            .inos
            .iter()
            .filter(|(p, _)| p.starts_with(from))
            .map(|(p, i)| (p.clone(), *i))
            .collect();
        for (old, ino) in moved {
            // `join("")` would add a trailing slash (and ENOTDIR on a file): the entry itself maps to `to`.
            let rest = old.strip_prefix(from).expect("filtered by prefix");
            let new = match rest.as_os_str().is_empty() {
                true => to.to_path_buf(),
                false => to.join(rest),
            };
            self.inos.remove(&old);
            self.inos.insert(new.clone(), ino);
            self.paths.insert(ino, new);
        }
    }

    /// A fresh trash path.
    fn park(&mut self) -> PathBuf {
        self.trash_seq += 1;
        self.trash.join(self.trash_seq.to_string())
    }

    /// Registers an open backing file; returns its handle.
    pub fn add_handle(&mut self, ino: u64, file: File) -> u64 {
        let fh = self.next_fh;
        self.next_fh += 1;
        self.handles.insert(fh, (ino, file));
        fh
    }

    /// Forgets a handle.
    pub fn release(&mut self, fh: u64) {
        self.handles.remove(&fh);
    }

    fn handle(&self, fh: u64) -> io::Result<&File> {
        self.handles
            .get(&fh)
            .map(|(_, f)| f)
            .ok_or_else(|| io::Error::from_raw_os_error(libc::EBADF))
    }

    /// Reads through handle `fh`.
    pub fn read(&self, fh: u64, offset: u64, size: u32) -> io::Result<Vec<u8>> {
        let file = self.handle(fh)?;
        let mut buf = vec![0; size as usize];
        let mut got = 0;
        while got < buf.len() {
            match file.read_at(&mut buf[got..], offset + got as u64)? {
                0 => break,
                n => got += n,
            }
        }
        buf.truncate(got);
        Ok(buf)
    }

    /// Saves what a change of `[offset, offset + len)` of `file` (inode `ino`) would destroy.
    fn remember(&mut self, ino: u64, file: &File, offset: u64, len: u64) -> io::Result<()> {
        let cur = file.metadata()?.len();
        let log = self.files.entry(ino).or_insert_with(|| FileLog::new(cur));
        if let Some((o, n)) = log.needs(cur, offset, len) {
            let pre = Backing(file).read_at(o, n)?;
            log.save(o, pre);
        }
        Ok(())
    }

    /// Writes through handle `fh`, remembering the pre-image.
    pub fn write(&mut self, fh: u64, offset: u64, data: &[u8]) -> io::Result<()> {
        let (ino, file) = self
            .handles
            .get(&fh)
            .map(|(i, f)| (*i, f.try_clone()))
            .ok_or_else(|| io::Error::from_raw_os_error(libc::EBADF))?;
        let file = file?;
        self.remember(ino, &file, offset, data.len() as u64)?;
        file.write_all_at(data, offset)
    }

    /// Opens the backing file of `ino` for reading and writing (the layer reads pre-images even through a
    /// write-only handle).
    pub fn open_backing(&self, ino: u64) -> io::Result<File> {
        let real = self.real(&self.path(ino)?);
        std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .open(&real)
            .or_else(|_| File::open(&real))
    }

    /// Sets the length of `ino`, remembering what a shrink cuts off.
    pub fn truncate(&mut self, ino: u64, len: u64) -> io::Result<()> {
        let file = self.open_backing(ino)?;
        let cur = file.metadata()?.len();
        if len < cur {
            self.remember(ino, &file, len, cur - len)?;
        } else {
            self.files.entry(ino).or_insert_with(|| FileLog::new(cur));
        }
        file.set_len(len)
    }

    /// Preallocates through `fh` (a growth past the synced length is cut by a rollback like any append).
    pub fn fallocate(&mut self, fh: u64, offset: u64, len: u64, mode: i32) -> io::Result<()> {
        let (ino, file) = self
            .handles
            .get(&fh)
            .map(|(i, f)| (*i, f.try_clone()))
            .ok_or_else(|| io::Error::from_raw_os_error(libc::EBADF))?;
        let file = file?;
        if mode & !libc::FALLOC_FL_KEEP_SIZE != 0 {
            // Punching holes or zeroing ranges destroys bytes: remember them like a write.
            self.remember(ino, &file, offset, len)?;
        } else {
            let cur = file.metadata()?.len();
            self.files.entry(ino).or_insert_with(|| FileLog::new(cur));
        }
        // SAFETY: fallocate on a file descriptor we own, with plain integer arguments.
        let rc = unsafe {
            libc::fallocate(
                std::os::fd::AsRawFd::as_raw_fd(&file),
                mode,
                offset as i64,
                len as i64,
            )
        };
        if rc != 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(())
    }

    /// Makes `ino`'s data durable: the backing file is fsynced and the undo log dropped.
    pub fn fsync(&mut self, ino: u64, fh: Option<u64>, datasync: bool) -> io::Result<()> {
        let file = match fh.and_then(|fh| self.handles.get(&fh)) {
            Some((_, f)) => f.try_clone()?,
            None => self.open_backing(ino)?,
        };
        if datasync {
            file.sync_data()?;
        } else {
            file.sync_all()?;
        }
        self.files.remove(&ino);
        Ok(())
    }

    /// Makes directory `ino`'s entries durable.
    pub fn fsyncdir(&mut self, ino: u64) -> io::Result<()> {
        let real = self.real(&self.path(ino)?);
        File::open(&real)?.sync_all()?;
        for step in self.dirs.commit(ino) {
            if let Step::Remove(trash) = step {
                remove_any(&trash)?;
            }
        }
        Ok(())
    }

    /// Records a created entry `rel` in directory `dir`.
    pub fn created(&mut self, dir: u64, rel: &Path) -> u64 {
        self.dirs.push(
            dir,
            DirOp::Created {
                path: rel.to_path_buf(),
            },
        );
        self.ino_for(rel)
    }

    /// Removes entry `rel` of directory `dir` by parking it in the trash.
    pub fn remove(&mut self, dir: u64, rel: &Path) -> io::Result<()> {
        let trash = self.park();
        std::fs::rename(self.real(rel), &trash)?;
        self.remap(rel, &trash);
        self.dirs.push(
            dir,
            DirOp::Removed {
                path: rel.to_path_buf(),
                trash,
            },
        );
        Ok(())
    }

    /// Renames `from` to `to` (in directory `to_dir`), parking an entry it replaces.
    pub fn rename(&mut self, to_dir: u64, from: &Path, to: &Path) -> io::Result<()> {
        let replaced = if std::fs::symlink_metadata(self.real(to)).is_ok() {
            let trash = self.park();
            std::fs::rename(self.real(to), &trash)?;
            self.remap(to, &trash);
            Some(trash)
        } else {
            None
        };
        if let Err(e) = std::fs::rename(self.real(from), self.real(to)) {
            if let Some(trash) = &replaced {
                let _ = std::fs::rename(trash, self.real(to));
                self.remap(trash, to);
            }
            return Err(e);
        }
        self.remap(from, to);
        self.dirs.push(
            to_dir,
            DirOp::Renamed {
                from: from.to_path_buf(),
                to: to.to_path_buf(),
                replaced,
            },
        );
        Ok(())
    }

    /// What a cut would drop now: (files with unsynced data, their unsynced bytes, pending entries).
    pub fn pending(&self) -> (u64, u64, u64) {
        let mut bytes = 0;
        for (ino, log) in &self.files {
            let len = self
                .paths
                .get(ino)
                .and_then(|p| std::fs::metadata(self.real(p)).ok())
                .map_or(0, |m| m.len());
            bytes += log.unsynced_bytes(len);
        }
        (self.files.len() as u64, bytes, self.dirs.len() as u64)
    }

    /// A power cut: every unsynced write, create, removal and rename is rolled back. With `torn`, each file
    /// keeps a random part of what was appended past its synced length (a torn write).
    pub fn cut(&mut self, torn: bool) -> CutReport {
        let mut report = CutReport::default();
        self.handles.clear();
        let files: Vec<(u64, FileLog)> = self.files.drain().collect();
        for (ino, log) in files {
            let Some(rel) = self.paths.get(&ino).cloned() else {
                report.skipped += 1;
                continue;
            };
            let Ok(file) = std::fs::OpenOptions::new()
                .read(true)
                .write(true)
                .open(self.real(&rel))
            else {
                report.skipped += 1;
                continue;
            };
            let len = file.metadata().map_or(0, |m| m.len());
            let appended = len.saturating_sub(log.synced_len());
            let keep = if torn && appended > 0 {
                self.rng.gen_range(0..appended)
            } else {
                0
            };
            match log.rollback(&mut Backing(&file), keep) {
                Ok(()) => {
                    report.files += 1;
                    report.bytes += log.unsynced_bytes(len) - keep;
                    report.torn_bytes += keep;
                }
                Err(_) => report.skipped += 1,
            }
        }
        for step in self.dirs.undo() {
            let done = match &step {
                Step::Remove(rel) => remove_any(&self.real(rel)),
                Step::Move { from, to } => std::fs::rename(self.real(from), self.real(to)),
            };
            match done {
                Ok(()) => report.entries += 1,
                Err(_) => report.skipped += 1,
            }
            if let Step::Move { from, to } = &step {
                self.remap(from, to);
            }
        }
        self.forget_missing();
        report
    }

    /// Drops inode numbers whose path no longer exists (they are looked up afresh).
    fn forget_missing(&mut self) {
        let gone: Vec<(u64, PathBuf)> = self
            .paths
            .iter()
            .filter(|(i, p)| **i != ROOT && std::fs::symlink_metadata(self.real(p)).is_err())
            .map(|(i, p)| (*i, p.clone()))
            .collect();
        for (ino, path) in gone {
            self.paths.remove(&ino);
            self.inos.remove(&path);
        }
    }

    /// Flips one random bit of a durable byte of a regular file whose relative path matches `pattern`;
    /// returns (path, offset, bit).
    pub fn corrupt(&mut self, pattern: &str) -> io::Result<(PathBuf, u64, u8)> {
        let mut candidates = Vec::new();
        walk(&self.backing, Path::new(""), &mut candidates)?;
        candidates.retain(|(rel, len)| {
            *len > 0
                && crate::undo::glob_match(pattern, &rel.to_string_lossy())
                && self.synced_len(rel, *len) > 0
        });
        candidates.sort();
        if candidates.is_empty() {
            return Err(io::Error::new(
                io::ErrorKind::NotFound,
                format!("no file with synced bytes matches {pattern:?}"),
            ));
        }
        let (rel, len) = candidates[self.rng.gen_range(0..candidates.len())].clone();
        let log = self.inos.get(&rel).and_then(|i| self.files.get(i)).cloned();
        let limit = self.synced_len(&rel, len);
        // A byte overwritten since the last fsync is not durable; try a few draws, then the first durable.
        let mut offset = self.rng.gen_range(0..limit);
        if let Some(log) = &log {
            if !log.is_synced(offset) {
                offset = (0..limit).find(|&o| log.is_synced(o)).ok_or_else(|| {
                    io::Error::other(format!("{} has no durable byte", rel.display()))
                })?;
            }
        }
        let bit: u8 = self.rng.gen_range(0..8);
        let file = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .open(self.real(&rel))?;
        let mut byte = [0u8];
        file.read_exact_at(&mut byte, offset)?;
        byte[0] ^= 1 << bit;
        file.write_all_at(&byte, offset)?;
        file.sync_data()?;
        Ok((rel, offset, bit))
    }

    /// How many leading bytes of `rel` (now `len` long) were durable at its last fsync.
    fn synced_len(&self, rel: &Path, len: u64) -> u64 {
        match self.inos.get(rel).and_then(|i| self.files.get(i)) {
            Some(log) => log.synced_len().min(len),
            None => len,
        }
    }
}

/// Every regular file under `dir` with its length, as paths relative to the root.
fn walk(root: &Path, rel: &Path, out: &mut Vec<(PathBuf, u64)>) -> io::Result<()> {
    for entry in std::fs::read_dir(root.join(rel))? {
        let entry = entry?;
        let meta = entry.metadata()?;
        let child = rel.join(entry.file_name());
        if meta.is_dir() {
            walk(root, &child, out)?;
        } else if meta.is_file() {
            out.push((child, meta.len()));
        }
    }
    Ok(())
}

/// Removes a file or a directory tree.
fn remove_any(path: &Path) -> io::Result<()> {
    match std::fs::symlink_metadata(path)?.is_dir() {
        true => std::fs::remove_dir_all(path),
        false => std::fs::remove_file(path),
    }
}
