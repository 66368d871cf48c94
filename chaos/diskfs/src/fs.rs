//! The FUSE callbacks: translate kernel requests into [`Layer`] calls on the backing directory. Attributes
//! and entries are never cached by the kernel (TTL 0), so that a rollback is seen at once.

use crate::layer::Layer;
use fuser::{
    Errno, FileAttr, FileHandle, FileType, Filesystem, FopenFlags, Generation, INodeNo, LockOwner,
    OpenFlags, RenameFlags, ReplyAttr, ReplyCreate, ReplyData, ReplyDirectory, ReplyEmpty,
    ReplyEntry, ReplyOpen, ReplyStatfs, ReplyWrite, Request, TimeOrNow, WriteFlags,
};
use std::ffi::OsStr;
use std::os::unix::fs::{DirBuilderExt, MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

const TTL: Duration = Duration::ZERO;

/// Faults that act on every operation, set through the control socket.
#[derive(Debug, Default)]
pub struct Knobs {
    /// Writes, creates and preallocations fail with ENOSPC.
    pub full: AtomicBool,
    /// Every fsync and fsyncdir first sleeps this long (milliseconds).
    pub fsync_delay_ms: AtomicU64,
}

/// The filesystem: one [`Layer`] behind a lock, and the knobs.
#[derive(Debug)]
pub struct DiskFs {
    /// The state (shared with the control socket).
    pub layer: Arc<Mutex<Layer>>,
    /// The faults in force (shared with the control socket).
    pub knobs: Arc<Knobs>,
}

fn errno(e: std::io::Error) -> Errno {
    Errno::from_i32(e.raw_os_error().unwrap_or(libc::EIO))
}

fn attr(ino: u64, m: &std::fs::Metadata) -> FileAttr {
    let time = |s: i64, ns: i64| {
        if s >= 0 {
            UNIX_EPOCH + Duration::new(s as u64, ns as u32)
        } else {
            UNIX_EPOCH
        }
    };
    let ft = m.file_type();
    let kind = FileType::from_std(ft).unwrap_or(FileType::RegularFile);
    FileAttr {
        ino: INodeNo(ino),
        size: m.size(),
        blocks: m.blocks(),
        atime: time(m.atime(), m.atime_nsec()),
        mtime: time(m.mtime(), m.mtime_nsec()),
        ctime: time(m.ctime(), m.ctime_nsec()),
        crtime: time(m.ctime(), m.ctime_nsec()),
        kind,
        perm: (m.mode() & 0o7777) as u16,
        nlink: m.nlink() as u32,
        uid: m.uid(),
        gid: m.gid(),
        rdev: m.rdev() as u32,
        blksize: m.blksize() as u32,
        flags: 0,
    }
}

impl DiskFs {
    fn lock(&self) -> MutexGuard<'_, Layer> {
        // A panic inside one callback must not wedge every later one.
        self.layer.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn full(&self) -> Result<(), Errno> {
        match self.knobs.full.load(Ordering::Relaxed) {
            true => Err(Errno::ENOSPC),
            false => Ok(()),
        }
    }

    fn fsync_delay(&self) {
        let ms = self.knobs.fsync_delay_ms.load(Ordering::Relaxed);
        if ms > 0 {
            std::thread::sleep(Duration::from_millis(ms));
        }
    }

    /// The attributes of `rel` under the inode the layer gives it.
    fn stat(layer: &mut Layer, rel: &Path) -> Result<FileAttr, Errno> {
        let m = std::fs::symlink_metadata(layer.real(rel)).map_err(errno)?;
        Ok(attr(layer.ino_for(rel), &m))
    }

    fn child(layer: &Layer, parent: INodeNo, name: &OsStr) -> Result<PathBuf, Errno> {
        Ok(layer.path(parent.0).map_err(errno)?.join(name))
    }

    fn do_setattr(
        &self,
        ino: u64,
        mode: Option<u32>,
        owner: (Option<u32>, Option<u32>),
        size: Option<u64>,
        times: (Option<TimeOrNow>, Option<TimeOrNow>),
    ) -> Result<FileAttr, Errno> {
        let mut layer = self.lock();
        let rel = layer.path(ino).map_err(errno)?;
        let real = layer.real(&rel);
        if let Some(size) = size {
            let cur = std::fs::metadata(&real).map_err(errno)?.len();
            if size > cur {
                self.full()?;
            }
            layer.truncate(ino, size).map_err(errno)?;
        }
        if let Some(mode) = mode {
            std::fs::set_permissions(&real, std::fs::Permissions::from_mode(mode & 0o7777))
                .map_err(errno)?;
        }
        if owner.0.is_some() || owner.1.is_some() {
            std::os::unix::fs::chown(&real, owner.0, owner.1).map_err(errno)?;
        }
        if times.0.is_some() || times.1.is_some() {
            let at = |t: TimeOrNow| match t {
                TimeOrNow::SpecificTime(t) => t,
                TimeOrNow::Now => SystemTime::now(),
            };
            let mut ft = std::fs::FileTimes::new();
            if let Some(t) = times.0 {
                ft = ft.set_accessed(at(t));
            }
            if let Some(t) = times.1 {
                ft = ft.set_modified(at(t));
            }
            std::fs::File::open(&real)
                .and_then(|f| f.set_times(ft))
                .map_err(errno)?;
        }
        Self::stat(&mut layer, &rel)
    }

    fn do_create(
        &self,
        parent: INodeNo,
        name: &OsStr,
        mode: u32,
        flags: i32,
    ) -> Result<(FileAttr, u64), Errno> {
        self.full()?;
        let mut layer = self.lock();
        let rel = Self::child(&layer, parent, name)?;
        let real = layer.real(&rel);
        let exists = std::fs::symlink_metadata(&real).is_ok();
        if exists && flags & libc::O_EXCL != 0 {
            return Err(Errno::EEXIST);
        }
        let ino = if exists {
            let ino = layer.ino_for(&rel);
            if flags & libc::O_TRUNC != 0 {
                layer.truncate(ino, 0).map_err(errno)?;
            }
            ino
        } else {
            std::fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .mode(mode)
                .open(&real)
                .map_err(errno)?;
            layer.created(parent.0, &rel)
        };
        let file = layer.open_backing(ino).map_err(errno)?;
        let fh = layer.add_handle(ino, file);
        Ok((Self::stat(&mut layer, &rel)?, fh))
    }

    fn do_rename(
        &self,
        parent: INodeNo,
        name: &OsStr,
        newparent: INodeNo,
        newname: &OsStr,
    ) -> Result<(), Errno> {
        let mut layer = self.lock();
        let from = Self::child(&layer, parent, name)?;
        let to = Self::child(&layer, newparent, newname)?;
        layer.rename(newparent.0, &from, &to).map_err(errno)
    }

    fn do_readdir(&self, ino: u64, offset: u64, reply: &mut ReplyDirectory) -> Result<(), Errno> {
        let mut layer = self.lock();
        let rel = layer.path(ino).map_err(errno)?;
        let mut entries: Vec<(u64, FileType, std::ffi::OsString)> = vec![
            (ino, FileType::Directory, ".".into()),
            (ino, FileType::Directory, "..".into()),
        ];
        for entry in std::fs::read_dir(layer.real(&rel)).map_err(errno)? {
            let entry = entry.map_err(errno)?;
            let kind = entry
                .file_type()
                .ok()
                .and_then(FileType::from_std)
                .unwrap_or(FileType::RegularFile);
            let child = layer.ino_for(&rel.join(entry.file_name()));
            entries.push((child, kind, entry.file_name()));
        }
        for (i, (child, kind, name)) in entries.iter().enumerate().skip(offset as usize) {
            if reply.add(INodeNo(*child), i as u64 + 1, *kind, name) {
                break;
            }
        }
        Ok(())
    }
}

impl Filesystem for DiskFs {
    fn lookup(&self, _req: &Request, parent: INodeNo, name: &OsStr, reply: ReplyEntry) {
        let mut layer = self.lock();
        match Self::child(&layer, parent, name).and_then(|rel| Self::stat(&mut layer, &rel)) {
            Ok(a) => reply.entry(&TTL, &a, Generation(0)),
            Err(e) => reply.error(e),
        }
    }

    fn getattr(&self, _req: &Request, ino: INodeNo, _fh: Option<FileHandle>, reply: ReplyAttr) {
        let mut layer = self.lock();
        let result = layer
            .path(ino.0)
            .map_err(errno)
            .and_then(|rel| Self::stat(&mut layer, &rel));
        match result {
            Ok(a) => reply.attr(&TTL, &a),
            Err(e) => reply.error(e),
        }
    }

    fn setattr(
        &self,
        _req: &Request,
        ino: INodeNo,
        mode: Option<u32>,
        uid: Option<u32>,
        gid: Option<u32>,
        size: Option<u64>,
        atime: Option<TimeOrNow>,
        mtime: Option<TimeOrNow>,
        _ctime: Option<SystemTime>,
        _fh: Option<FileHandle>,
        _crtime: Option<SystemTime>,
        _chgtime: Option<SystemTime>,
        _bkuptime: Option<SystemTime>,
        _flags: Option<fuser::BsdFileFlags>,
        reply: ReplyAttr,
    ) {
        match self.do_setattr(ino.0, mode, (uid, gid), size, (atime, mtime)) {
            Ok(a) => reply.attr(&TTL, &a),
            Err(e) => reply.error(e),
        }
    }

    fn mkdir(
        &self,
        _req: &Request,
        parent: INodeNo,
        name: &OsStr,
        mode: u32,
        umask: u32,
        reply: ReplyEntry,
    ) {
        let result = self.full().and_then(|()| {
            let mut layer = self.lock();
            let rel = Self::child(&layer, parent, name)?;
            std::fs::DirBuilder::new()
                .mode(mode & !umask)
                .create(layer.real(&rel))
                .map_err(errno)?;
            layer.created(parent.0, &rel);
            Self::stat(&mut layer, &rel)
        });
        match result {
            Ok(a) => reply.entry(&TTL, &a, Generation(0)),
            Err(e) => reply.error(e),
        }
    }

    fn unlink(&self, _req: &Request, parent: INodeNo, name: &OsStr, reply: ReplyEmpty) {
        let mut layer = self.lock();
        let result = Self::child(&layer, parent, name)
            .and_then(|rel| layer.remove(parent.0, &rel).map_err(errno));
        match result {
            Ok(()) => reply.ok(),
            Err(e) => reply.error(e),
        }
    }

    fn rmdir(&self, _req: &Request, parent: INodeNo, name: &OsStr, reply: ReplyEmpty) {
        let mut layer = self.lock();
        let result = Self::child(&layer, parent, name).and_then(|rel| {
            let real = layer.real(&rel);
            if std::fs::read_dir(&real).map_err(errno)?.next().is_some() {
                return Err(Errno::ENOTEMPTY);
            }
            layer.remove(parent.0, &rel).map_err(errno)
        });
        match result {
            Ok(()) => reply.ok(),
            Err(e) => reply.error(e),
        }
    }

    fn rename(
        &self,
        _req: &Request,
        parent: INodeNo,
        name: &OsStr,
        newparent: INodeNo,
        newname: &OsStr,
        flags: RenameFlags,
        reply: ReplyEmpty,
    ) {
        if !flags.is_empty() {
            // RENAME_NOREPLACE / RENAME_EXCHANGE are not passed through (callers fall back).
            return reply.error(Errno::EINVAL);
        }
        match self.do_rename(parent, name, newparent, newname) {
            Ok(()) => reply.ok(),
            Err(e) => reply.error(e),
        }
    }

    fn open(&self, _req: &Request, ino: INodeNo, _flags: OpenFlags, reply: ReplyOpen) {
        let mut layer = self.lock();
        match layer.open_backing(ino.0) {
            Ok(file) => reply.opened(
                FileHandle(layer.add_handle(ino.0, file)),
                FopenFlags::empty(),
            ),
            Err(e) => reply.error(errno(e)),
        }
    }

    fn read(
        &self,
        _req: &Request,
        _ino: INodeNo,
        fh: FileHandle,
        offset: u64,
        size: u32,
        _flags: OpenFlags,
        _lock_owner: Option<LockOwner>,
        reply: ReplyData,
    ) {
        match self.lock().read(fh.0, offset, size) {
            Ok(data) => reply.data(&data),
            Err(e) => reply.error(errno(e)),
        }
    }

    fn write(
        &self,
        _req: &Request,
        _ino: INodeNo,
        fh: FileHandle,
        offset: u64,
        data: &[u8],
        _write_flags: WriteFlags,
        _flags: OpenFlags,
        _lock_owner: Option<LockOwner>,
        reply: ReplyWrite,
    ) {
        if let Err(e) = self.full() {
            return reply.error(e);
        }
        match self.lock().write(fh.0, offset, data) {
            Ok(()) => reply.written(data.len() as u32),
            Err(e) => reply.error(errno(e)),
        }
    }

    fn flush(
        &self,
        _req: &Request,
        _ino: INodeNo,
        _fh: FileHandle,
        _lock_owner: LockOwner,
        reply: ReplyEmpty,
    ) {
        reply.ok();
    }

    fn release(
        &self,
        _req: &Request,
        _ino: INodeNo,
        fh: FileHandle,
        _flags: OpenFlags,
        _lock_owner: Option<LockOwner>,
        _flush: bool,
        reply: ReplyEmpty,
    ) {
        self.lock().release(fh.0);
        reply.ok();
    }

    fn fsync(
        &self,
        _req: &Request,
        ino: INodeNo,
        fh: FileHandle,
        datasync: bool,
        reply: ReplyEmpty,
    ) {
        self.fsync_delay();
        match self.lock().fsync(ino.0, Some(fh.0), datasync) {
            Ok(()) => reply.ok(),
            Err(e) => reply.error(errno(e)),
        }
    }

    fn opendir(&self, _req: &Request, _ino: INodeNo, _flags: OpenFlags, reply: ReplyOpen) {
        reply.opened(FileHandle(0), FopenFlags::empty());
    }

    fn readdir(
        &self,
        _req: &Request,
        ino: INodeNo,
        _fh: FileHandle,
        offset: u64,
        mut reply: ReplyDirectory,
    ) {
        match self.do_readdir(ino.0, offset, &mut reply) {
            Ok(()) => reply.ok(),
            Err(e) => reply.error(e),
        }
    }

    fn fsyncdir(
        &self,
        _req: &Request,
        ino: INodeNo,
        _fh: FileHandle,
        _datasync: bool,
        reply: ReplyEmpty,
    ) {
        self.fsync_delay();
        match self.lock().fsyncdir(ino.0) {
            Ok(()) => reply.ok(),
            Err(e) => reply.error(errno(e)),
        }
    }

    fn statfs(&self, _req: &Request, _ino: INodeNo, reply: ReplyStatfs) {
        let root = self.lock().real(Path::new(""));
        let path = std::ffi::CString::new(std::os::unix::ffi::OsStrExt::as_bytes(root.as_os_str()))
            .unwrap_or_default();
        // SAFETY: statvfs fills the zeroed struct we own; the path is a valid C string.
        let mut st: libc::statvfs = unsafe { std::mem::zeroed() };
        if unsafe { libc::statvfs(path.as_ptr(), &mut st) } != 0 {
            return reply.error(errno(std::io::Error::last_os_error()));
        }
        let full = self.knobs.full.load(Ordering::Relaxed);
        let (bfree, bavail) = if full {
            (0, 0)
        } else {
            (st.f_bfree, st.f_bavail)
        };
        reply.statfs(
            st.f_blocks,
            bfree,
            bavail,
            st.f_files,
            st.f_ffree,
            st.f_bsize as u32,
            st.f_namemax as u32,
            st.f_frsize as u32,
        );
    }

    fn access(&self, _req: &Request, _ino: INodeNo, _mask: fuser::AccessFlags, reply: ReplyEmpty) {
        reply.ok();
    }

    fn create(
        &self,
        _req: &Request,
        parent: INodeNo,
        name: &OsStr,
        mode: u32,
        umask: u32,
        flags: i32,
        reply: ReplyCreate,
    ) {
        match self.do_create(parent, name, mode & !umask, flags) {
            Ok((a, fh)) => {
                reply.created(&TTL, &a, Generation(0), FileHandle(fh), FopenFlags::empty())
            }
            Err(e) => reply.error(e),
        }
    }

    fn fallocate(
        &self,
        _req: &Request,
        _ino: INodeNo,
        fh: FileHandle,
        offset: u64,
        length: u64,
        mode: i32,
        reply: ReplyEmpty,
    ) {
        if let Err(e) = self.full() {
            return reply.error(e);
        }
        match self.lock().fallocate(fh.0, offset, length, mode) {
            Ok(()) => reply.ok(),
            Err(e) => reply.error(errno(e)),
        }
    }
}
