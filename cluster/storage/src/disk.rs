//! File-system edge: fsync accounting, atomic file replacement, directory listing and the data-directory lock.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::os::unix::io::AsRawFd;
use std::path::{Path, PathBuf};

use crate::error::StorageError;
use crate::{FsyncPolicy, StorageStats};

/// Suffix of files being written before their atomic rename; recovery deletes any it finds.
pub(crate) const TEMP_SUFFIX: &str = ".tmp";

/// Issues fsyncs according to the policy and counts them.
#[derive(Debug)]
pub(crate) struct Syncer {
    policy: FsyncPolicy,
    stats: StorageStats,
}

impl Syncer {
    pub(crate) fn new(policy: FsyncPolicy) -> Self {
        Syncer {
            policy,
            stats: StorageStats::default(),
        }
    }

    pub(crate) fn stats(&self) -> StorageStats {
        self.stats
    }

    pub(crate) fn count_written(&mut self, bytes: usize) {
        self.stats.wal_bytes_written += bytes as u64;
    }

    /// fdatasync of a WAL segment: enough for appended data, because the size change it needs is included.
    pub(crate) fn sync_wal_data(&mut self, file: &File, path: &Path) -> Result<(), StorageError> {
        if self.policy == FsyncPolicy::Never {
            return Ok(());
        }
        file.sync_data()
            .map_err(|e| StorageError::io("fdatasync", path, e))?;
        self.stats.wal_fsyncs += 1;
        self.stats.fsyncs += 1;
        Ok(())
    }

    /// Full fsync of a file (data and metadata), used after truncation and for new files.
    pub(crate) fn sync_file(&mut self, file: &File, path: &Path) -> Result<(), StorageError> {
        if self.policy == FsyncPolicy::Never {
            return Ok(());
        }
        file.sync_all()
            .map_err(|e| StorageError::io("fsync", path, e))?;
        self.stats.fsyncs += 1;
        Ok(())
    }

    /// fsync of a directory, which makes creations, renames and deletions inside it durable.
    pub(crate) fn sync_dir(&mut self, dir: &Path) -> Result<(), StorageError> {
        if self.policy == FsyncPolicy::Never {
            return Ok(());
        }
        let handle = File::open(dir).map_err(|e| StorageError::io("open directory", dir, e))?;
        handle
            .sync_all()
            .map_err(|e| StorageError::io("fsync directory", dir, e))?;
        self.stats.fsyncs += 1;
        Ok(())
    }

    /// Replaces `path` with the concatenation of `parts` so that a crash leaves either the old or the new
    /// content: write a temporary file, fsync it, rename it over `path`, fsync the directory.
    pub(crate) fn write_atomically(
        &mut self,
        path: &Path,
        parts: &[&[u8]],
    ) -> Result<(), StorageError> {
        let dir = path.parent().expect("data files live in a directory");
        let temp = temp_path(path);
        let mut file = OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .open(&temp)
            .map_err(|e| StorageError::io("create", &temp, e))?;
        for part in parts {
            file.write_all(part)
                .map_err(|e| StorageError::io("write", &temp, e))?;
        }
        self.sync_file(&file, &temp)?;
        drop(file);
        fs::rename(&temp, path).map_err(|e| StorageError::io("rename into place", path, e))?;
        self.sync_dir(dir)
    }

    /// Deletes a file and makes the deletion durable before returning, so that deletions issued one after the
    /// other reach the disk in that order.
    pub(crate) fn remove_durably(&mut self, path: &Path) -> Result<(), StorageError> {
        fs::remove_file(path).map_err(|e| StorageError::io("remove", path, e))?;
        self.sync_dir(path.parent().expect("data files live in a directory"))
    }
}

/// The temporary name used while `path` is being written.
pub(crate) fn temp_path(path: &Path) -> PathBuf {
    let mut name = path.file_name().expect("a file name").to_os_string();
    name.push(TEMP_SUFFIX);
    path.with_file_name(name)
}

/// Creates `dir` if needed; returns whether it was created (so the caller can fsync its parent).
pub(crate) fn ensure_dir(dir: &Path) -> Result<bool, StorageError> {
    match fs::create_dir(dir) {
        Ok(()) => Ok(true),
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {
            let meta = fs::metadata(dir).map_err(|e| StorageError::io("stat", dir, e))?;
            if meta.is_dir() {
                Ok(false)
            } else {
                let source = io::Error::new(
                    io::ErrorKind::AlreadyExists,
                    "exists and is not a directory",
                );
                Err(StorageError::io("create directory", dir, source))
            }
        }
        Err(e) => Err(StorageError::io("create directory", dir, e)),
    }
}

/// Names of the regular files in `dir`, sorted. Names that are not UTF-8 are returned lossily so that the caller
/// can warn about them; they never match our patterns.
pub(crate) fn list_files(dir: &Path) -> Result<Vec<String>, StorageError> {
    let mut names = Vec::new();
    let entries = fs::read_dir(dir).map_err(|e| StorageError::io("list directory", dir, e))?;
    for entry in entries {
        let entry = entry.map_err(|e| StorageError::io("list directory", dir, e))?;
        let file_type = entry
            .file_type()
            .map_err(|e| StorageError::io("stat", entry.path(), e))?;
        if file_type.is_file() {
            names.push(entry.file_name().to_string_lossy().into_owned());
        }
    }
    names.sort();
    Ok(names)
}

/// Reads a whole file, refusing files larger than `bytes_max` so that a damaged or foreign file cannot make us
/// allocate without bound.
pub(crate) fn read_bounded(path: &Path, bytes_max: u64) -> Result<Vec<u8>, StorageError> {
    let meta = fs::metadata(path).map_err(|e| StorageError::io("stat", path, e))?;
    if meta.len() > bytes_max {
        let corruption = crate::error::Corruption::TooLarge {
            length_bytes: meta.len(),
            max_bytes: bytes_max,
        };
        return Err(StorageError::corrupt(path, 0, corruption));
    }
    fs::read(path).map_err(|e| StorageError::io("read", path, e))
}

/// Takes an exclusive `flock` on `<dir>/LOCK` and writes our pid into it (for people, not for the lock).
/// The lock lives as long as the returned file; the kernel drops it when the process dies, so a crash never
/// leaves a stale lock behind (the pid in the file may be stale and is only informational).
pub(crate) fn lock_dir(dir: &Path) -> Result<File, StorageError> {
    let path = dir.join("LOCK");
    let mut file = OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(&path)
        .map_err(|e| StorageError::io("open lock file", &path, e))?;
    // SAFETY: the descriptor belongs to `file`, which stays open for the whole call; flock has no memory effects.
    let rc = unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) };
    if rc != 0 {
        let err = io::Error::last_os_error();
        if err.raw_os_error() == Some(libc::EWOULDBLOCK) {
            return Err(StorageError::Locked { path });
        }
        return Err(StorageError::io("flock", &path, err));
    }
    file.set_len(0)
        .map_err(|e| StorageError::io("truncate lock file", &path, e))?;
    writeln!(file, "{}", std::process::id())
        .map_err(|e| StorageError::io("write lock file", &path, e))?;
    Ok(file)
}
