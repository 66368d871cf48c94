//! The layer mounted for real (the `chaos-diskfs` binary over a temporary directory): what a power cut keeps
//! and loses, torn writes, ENOSPC, slow fsync and bit flips. Needs root and fuse3 (`fusermount3`); skips with
//! a reason otherwise, except under CI=true.

use diskfs::control::fields;
use diskfs::mount::Mount;
use std::fs::{File, OpenOptions};
use std::io::Write;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

/// A mounted layer in a temporary directory (unmounted before the directory goes).
struct Fixture {
    mount: Option<Mount>,
    _dir: tempfile::TempDir,
}

impl Fixture {
    fn m(&self) -> &Mount {
        self.mount.as_ref().expect("mounted")
    }
    fn path(&self, rel: &str) -> PathBuf {
        self.m().mount.join(rel)
    }
    fn cut(&self) -> Vec<(String, String)> {
        fields(&self.m().command("lose-unsynced").expect("cut"))
    }
}

impl Drop for Fixture {
    fn drop(&mut self) {
        self.mount.take();
    }
}

fn why_not() -> Option<String> {
    if !nix_is_root() {
        return Some("not root".into());
    }
    if !Path::new("/dev/fuse").exists() {
        return Some("no /dev/fuse".into());
    }
    let found = std::process::Command::new("fusermount3")
        .arg("-V")
        .output()
        .is_ok();
    (!found).then(|| "fusermount3 not installed (Debian package fuse3)".into())
}

fn nix_is_root() -> bool {
    // SAFETY: geteuid has no preconditions.
    unsafe { libc::geteuid() == 0 }
}

fn fixture() -> Option<Fixture> {
    if let Some(why) = why_not() {
        assert!(
            std::env::var("CI").as_deref() != Ok("true"),
            "CI=true but the layer cannot be mounted: {why}"
        );
        eprintln!("skipped: {why}");
        return None;
    }
    let binary = PathBuf::from(env!("CARGO_BIN_EXE_chaos-diskfs"));
    let dir = tempfile::tempdir().expect("tempdir");
    let mount = Mount::start(
        &binary,
        &dir.path().join("data"),
        &dir.path().join("data.backing"),
        &dir.path().join("control.sock"),
        7,
    )
    .expect("mount");
    Some(Fixture {
        mount: Some(mount),
        _dir: dir,
    })
}

fn fsync_dir(path: &Path) {
    File::open(path).unwrap().sync_all().unwrap();
}

fn field(f: &[(String, String)], key: &str) -> u64 {
    f.iter()
        .find(|(k, _)| k == key)
        .unwrap_or_else(|| panic!("no {key} in {f:?}"))
        .1
        .parse()
        .unwrap()
}

#[test]
fn a_cut_drops_unsynced_data_and_keeps_synced_data() {
    let Some(fx) = fixture() else { return };
    let root = fx.m().mount.clone();
    let mut f = File::create(fx.path("wal")).unwrap();
    f.write_all(b"synced-part|").unwrap();
    f.sync_data().unwrap();
    fsync_dir(&root);
    f.write_all(b"unsynced tail").unwrap();
    f.write_all_at(b"X", 0).unwrap();
    // A second file that was never synced at all, and an unsynced create in a synced file's directory.
    std::fs::write(fx.path("never"), b"gone").unwrap();
    drop(f);
    assert_eq!(
        std::fs::read(fx.path("wal")).unwrap(),
        b"Xynced-part|unsynced tail"
    );
    let report = fx.cut();
    assert_eq!(field(&report, "bytes"), 13 + 1 + 4, "{report:?}");
    assert_eq!(std::fs::read(fx.path("wal")).unwrap(), b"synced-part|");
    assert!(!fx.path("never").exists(), "an unsynced create survived");
    // The backing store agrees (nothing is cached above it).
    assert_eq!(
        std::fs::read(fx.m().backing.join("wal")).unwrap(),
        b"synced-part|"
    );
}

#[test]
fn renames_and_unlinks_honour_directory_fsync() {
    let Some(fx) = fixture() else { return };
    let root = fx.m().mount.clone();
    for (name, text) in [("state", "old"), ("victim", "keep me")] {
        let mut f = File::create(fx.path(name)).unwrap();
        f.write_all(text.as_bytes()).unwrap();
        f.sync_all().unwrap();
    }
    fsync_dir(&root);
    // write-temp, fsync, rename over, but no directory fsync: a cut brings the old file back.
    let replace = |text: &str| {
        let mut f = File::create(fx.path("state.tmp")).unwrap();
        f.write_all(text.as_bytes()).unwrap();
        f.sync_all().unwrap();
        std::fs::rename(fx.path("state.tmp"), fx.path("state")).unwrap();
    };
    replace("new");
    std::fs::remove_file(fx.path("victim")).unwrap();
    assert_eq!(std::fs::read_to_string(fx.path("state")).unwrap(), "new");
    let report = fx.cut();
    assert!(field(&report, "entries") >= 3, "{report:?}");
    assert_eq!(std::fs::read_to_string(fx.path("state")).unwrap(), "old");
    assert!(!fx.path("state.tmp").exists());
    assert_eq!(
        std::fs::read_to_string(fx.path("victim")).unwrap(),
        "keep me"
    );
    // The same with the directory fsynced: the rename is durable.
    replace("newer");
    fsync_dir(&root);
    fx.cut();
    assert_eq!(std::fs::read_to_string(fx.path("state")).unwrap(), "newer");
    // Subdirectories: an unsynced mkdir disappears with its content.
    std::fs::create_dir(fx.path("sub")).unwrap();
    std::fs::write(fx.path("sub/f"), b"x").unwrap();
    fx.cut();
    assert!(!fx.path("sub").exists());
}

#[test]
fn a_torn_write_keeps_a_prefix_of_the_unsynced_appends() {
    let Some(fx) = fixture() else { return };
    let root = fx.m().mount.clone();
    let synced = vec![b's'; 4096];
    let appended: Vec<u8> = (0..8192u32).map(|i| (i % 251) as u8).collect();
    let mut f = File::create(fx.path("seg")).unwrap();
    f.write_all(&synced).unwrap();
    f.sync_data().unwrap();
    fsync_dir(&root);
    f.write_all(&appended).unwrap();
    drop(f);
    let report = fields(&fx.m().command("torn-write").unwrap());
    let torn = field(&report, "torn_bytes") as usize;
    let after = std::fs::read(fx.path("seg")).unwrap();
    assert_eq!(after.len(), synced.len() + torn, "{report:?}");
    assert!(torn < appended.len());
    assert_eq!(&after[..synced.len()], &synced[..]);
    assert_eq!(&after[synced.len()..], &appended[..torn]);
}

#[test]
fn disk_full_fails_writes_with_enospc_until_cleared() {
    let Some(fx) = fixture() else { return };
    std::fs::write(fx.path("before"), b"ok").unwrap();
    fx.m().command("full on").unwrap();
    let err = std::fs::write(fx.path("during"), b"no room").unwrap_err();
    assert_eq!(err.raw_os_error(), Some(libc::ENOSPC), "{err}");
    let mut f = OpenOptions::new()
        .append(true)
        .open(fx.path("before"))
        .unwrap();
    let err = f.write_all(b"more").unwrap_err();
    assert_eq!(err.raw_os_error(), Some(libc::ENOSPC), "{err}");
    // Reads still work.
    assert_eq!(std::fs::read(fx.path("before")).unwrap(), b"ok");
    fx.m().command("full off").unwrap();
    f.write_all(b"more").unwrap();
    assert_eq!(std::fs::read(fx.path("before")).unwrap(), b"okmore");
}

#[test]
fn slow_fsync_delays_every_fsync() {
    let Some(fx) = fixture() else { return };
    let f = File::create(fx.path("f")).unwrap();
    fx.m().command("fsync-delay 300").unwrap();
    // A lower bound only (the layer sleeps before answering): no upper bound, so no timing flakiness.
    let started = std::time::Instant::now();
    f.sync_all().unwrap();
    assert!(started.elapsed() >= std::time::Duration::from_millis(300));
    fx.m().command("fsync-delay 0").unwrap();
}

#[test]
fn corrupt_flips_exactly_one_durable_bit() {
    let Some(fx) = fixture() else { return };
    let root = fx.m().mount.clone();
    let content: Vec<u8> = (0..1000u32).map(|i| (i * 7 % 256) as u8).collect();
    let mut f = File::create(fx.path("snap.bin")).unwrap();
    f.write_all(&content).unwrap();
    f.sync_all().unwrap();
    fsync_dir(&root);
    // Unsynced bytes past the synced length must never be picked.
    f.write_all(b"unsynced").unwrap();
    std::fs::write(fx.path("other.txt"), b"not matching").unwrap();
    let answer = fields(&fx.m().command("corrupt *.bin").unwrap());
    let offset = field(&answer, "offset") as usize;
    assert!(offset < content.len(), "{answer:?}");
    let after = std::fs::read(fx.path("snap.bin")).unwrap();
    let flipped: u32 = content
        .iter()
        .zip(&after)
        .map(|(a, b)| (a ^ b).count_ones())
        .sum();
    assert_eq!(flipped, 1);
    assert_ne!(content[offset], after[offset]);
    // The flip is durable: a cut keeps it, and drops the unsynced tail.
    fx.cut();
    let cut = std::fs::read(fx.path("snap.bin")).unwrap();
    assert_eq!(cut, after[..content.len()]);
    let err = fx.m().command("corrupt nothing-*").unwrap_err();
    assert!(err.contains("no file"), "{err}");
}

#[test]
fn dropping_the_mount_unmounts_it() {
    let Some(mut fx) = fixture() else { return };
    let path = fx.m().mount.clone();
    assert!(diskfs::mount::is_mounted(&path));
    fx.mount.take();
    assert!(!diskfs::mount::is_mounted(&path));
}
