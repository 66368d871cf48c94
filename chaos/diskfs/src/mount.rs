//! A mounted layer: the `chaos-diskfs` process serving one mount point, owned by [`Mount`], whose drop
//! unmounts (lazily if the mount is still busy) and stops the process.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

/// How long a control command may take (a cut of a large log included).
pub const CONTROL_TIMEOUT: Duration = Duration::from_secs(30);

/// Why a layer could not be mounted.
#[derive(Debug, thiserror::Error)]
pub enum MountError {
    /// The binary could not be started.
    #[error("starting {binary}: {source}")]
    Spawn {
        /// Which binary.
        binary: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// It started but never said it was ready.
    #[error("mounting {mount} failed: {why}")]
    NotReady {
        /// The mount point.
        mount: PathBuf,
        /// What it said (its stderr) or that it said nothing.
        why: String,
    },
}

/// A layer mounted at `mount` over `backing`, answering on `control`.
#[derive(Debug)]
pub struct Mount {
    child: Option<Child>,
    /// The mount point.
    pub mount: PathBuf,
    /// The directory holding the real files.
    pub backing: PathBuf,
    /// The control socket.
    pub control: PathBuf,
}

/// Where the `chaos-diskfs` binary is: `$CHAOS_DISKFS`, else next to the running executable (or its parent,
/// for test binaries in `deps/`).
pub fn binary_path() -> Option<PathBuf> {
    if let Some(p) = std::env::var_os("CHAOS_DISKFS") {
        return Some(PathBuf::from(p));
    }
    let exe = std::env::current_exe().ok()?;
    let dir = exe.parent()?;
    [dir.join("chaos-diskfs"), dir.parent()?.join("chaos-diskfs")]
        .into_iter()
        .find(|p| p.is_file())
}

impl Mount {
    /// Mounts `binary`'s layer at `mount` (created if needed) over `backing` (created if needed); the
    /// control socket goes to `control`. Waits until the mount answers.
    pub fn start(
        binary: &Path,
        mount: &Path,
        backing: &Path,
        control: &Path,
        seed: u64,
    ) -> Result<Mount, MountError> {
        let not_ready = |why: String| MountError::NotReady {
            mount: mount.to_path_buf(),
            why,
        };
        for dir in [mount, backing] {
            std::fs::create_dir_all(dir)
                .map_err(|e| not_ready(format!("{}: {e}", dir.display())))?;
        }
        let _ = std::fs::remove_file(control);
        let mut child = Command::new(binary)
            .arg("--backing")
            .arg(backing)
            .arg("--mount")
            .arg(mount)
            .arg("--control")
            .arg(control)
            .arg("--seed")
            .arg(seed.to_string())
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|source| MountError::Spawn {
                binary: binary.to_path_buf(),
                source,
            })?;
        let stdout = child.stdout.take().expect("piped");
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let mut line = String::new();
            let _ = BufReader::new(stdout).read_line(&mut line);
            let _ = tx.send(line);
        });
        let mut owned = Mount {
            child: Some(child),
            mount: mount.to_path_buf(),
            backing: backing.to_path_buf(),
            control: control.to_path_buf(),
        };
        match rx.recv_timeout(Duration::from_secs(10)) {
            Ok(line) if line.trim() == "ready" => Ok(owned),
            other => {
                let mut err = String::new();
                if let Some(mut c) = owned.child.take() {
                    let _ = c.kill();
                    let _ = c.wait();
                    if let Some(mut e) = c.stderr.take() {
                        let _ = std::io::Read::read_to_string(&mut e, &mut err);
                    }
                }
                let why = match other {
                    Ok(line) if !line.is_empty() => format!("said {line:?}; {err}"),
                    _ => format!("no answer within 10 s; stderr: {}", err.trim()),
                };
                Err(not_ready(why))
            }
        }
    }

    /// Sends a control command; returns the answer after `ok`.
    pub fn command(&self, command: &str) -> Result<String, String> {
        crate::control::send(&self.control, command, CONTROL_TIMEOUT)
    }
}

impl Drop for Mount {
    fn drop(&mut self) {
        let _ = self.command("quit");
        if let Some(mut child) = self.child.take() {
            let deadline = std::time::Instant::now() + Duration::from_secs(3);
            while std::time::Instant::now() < deadline {
                if let Ok(Some(_)) = child.try_wait() {
                    break;
                }
                std::thread::sleep(Duration::from_millis(20));
            }
            let _ = child.kill();
            let _ = child.wait();
        }
        unmount(&self.mount);
        let _ = std::fs::remove_file(&self.control);
    }
}

/// Unmounts `mount` if a FUSE filesystem is still there (lazily when busy).
pub fn unmount(mount: &Path) {
    if !is_mounted(mount) {
        return;
    }
    let quiet = |args: &[&str]| {
        Command::new("fusermount3")
            .args(args)
            .arg(mount)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success())
    };
    if !quiet(&["-u"]) {
        quiet(&["-u", "-z"]);
    }
}

/// Whether `mount` is a mount point in /proc/self/mounts.
pub fn is_mounted(mount: &Path) -> bool {
    let Ok(mounts) = std::fs::read_to_string("/proc/self/mounts") else {
        return false;
    };
    let want = mount.to_string_lossy();
    mounts
        .lines()
        .filter_map(|l| l.split_whitespace().nth(1))
        .any(|m| m.replace("\\040", " ") == want)
}
