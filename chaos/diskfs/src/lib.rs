//! A FUSE passthrough filesystem for disk faults. Mounted over a node's data directory with the real files
//! in a backing directory beside it, it passes every operation through at once and keeps an undo log of
//! everything not yet made durable (file data since the file's last fsync/fdatasync, directory entries since
//! the directory's last fsync). A control socket then cuts the power (`lose-unsynced`: roll all of that back),
//! tears writes, fills the disk, slows fsync or flips a bit of a durable file. It works for any program that
//! writes files, Go binaries included, since it sits below the system calls.
//!
//! - [`undo`]: the undo log (pure, unit tested);
//! - [`layer`]: that log applied to a real backing directory;
//! - [`fs`]: the FUSE callbacks (the `fuser` crate, mounting through `fusermount3`);
//! - [`control`]: the line protocol of the control socket, and a client for it;
//! - [`mount`]: a mounted layer run by the `chaos-diskfs` binary, owned by one struct that unmounts on drop.

pub mod control;
pub mod fs;
pub mod layer;
pub mod mount;
pub mod undo;
