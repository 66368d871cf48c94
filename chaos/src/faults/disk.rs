//! Disk faults, through the `chaos-diskfs` layer (crate `diskfs`): a FUSE filesystem mounted over each node's
//! data dir, passing everything through to `data.backing/` beside it while keeping an undo log of what is not
//! yet durable. Any target can be faulted this way, Go binaries included.
//!
//! - `lose-unsynced`: SIGKILL the node, then roll back every write, create, removal and rename made since the
//!   last fsync of the file (or directory), as a power cut would; the node restarts when the fault ends.
//! - `torn-write`: the same cut, except that each file keeps a random part of what it appended since its last
//!   fsync (a write torn by the cut).
//! - `disk-full`: writes, creates and preallocations fail with ENOSPC until the fault ends. A node that stops
//!   meanwhile did what a fail-stop node should: its exit is not a crash, and the fault's end restarts it.
//! - `slow-fsync`: every fsync first waits `fsync_delay`.
//! - `corrupt`: flip one bit of a durable byte of a file matching `file` (a glob within the data dir; every
//!   file by default), chosen from the run's seed. The node is not told: the damage shows at its next start.

use crate::plan::Dur;
use crate::supervisor::{NodeProcesses, ProcessState};
use diskfs::mount::Mount;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// The plan kinds of this family.
pub const KINDS: [&str; 5] = [
    "lose-unsynced",
    "torn-write",
    "disk-full",
    "slow-fsync",
    "corrupt",
];

/// The fsync delay of a `slow-fsync` fault that names none.
pub const FSYNC_DELAY_DEFAULT: Duration = Duration::from_millis(200);
/// The longest fsync delay a plan may ask for (longer ones stall the node's whole I/O for good).
pub const FSYNC_DELAY_MAX: Duration = Duration::from_secs(60);

/// What a disk fault does.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(untagged)]
pub enum DiskFault {
    /// Power cut: kill, drop everything unsynced, restart at the end.
    LoseUnsynced {},
    /// Power cut with torn appends.
    TornWrite {},
    /// ENOSPC while in force.
    DiskFull {},
    /// Every fsync waits this long.
    SlowFsync {
        /// The delay.
        fsync_delay: Dur,
    },
    /// Flip a bit of a durable file matching the glob.
    Corrupt {
        /// A glob relative to the data dir.
        file: String,
    },
}

#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct NoFields {}

#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct SlowFields {
    fsync_delay: Option<Dur>,
}

#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct CorruptFields {
    file: Option<String>,
}

fn parse_as<T: serde::de::DeserializeOwned>(rest: &toml::Table) -> Result<T, String> {
    T::deserialize(toml::Value::Table(rest.clone())).map_err(|e| e.message().to_string())
}

impl DiskFault {
    /// Parses one of [`KINDS`].
    pub fn parse(kind: &str, rest: &toml::Table) -> Option<Result<DiskFault, String>> {
        let none = |f: DiskFault| parse_as::<NoFields>(rest).map(|_| f);
        Some(match kind {
            "lose-unsynced" => none(DiskFault::LoseUnsynced {}),
            "torn-write" => none(DiskFault::TornWrite {}),
            "disk-full" => none(DiskFault::DiskFull {}),
            "slow-fsync" => parse_as::<SlowFields>(rest).map(|f| DiskFault::SlowFsync {
                fsync_delay: f.fsync_delay.unwrap_or(Dur(FSYNC_DELAY_DEFAULT)),
            }),
            "corrupt" => parse_as::<CorruptFields>(rest).map(|f| DiskFault::Corrupt {
                file: f.file.unwrap_or_else(|| "*".into()),
            }),
            _ => return None,
        })
    }

    /// The plan kind.
    pub fn name(&self) -> &'static str {
        match self {
            DiskFault::LoseUnsynced {} => "lose-unsynced",
            DiskFault::TornWrite {} => "torn-write",
            DiskFault::DiskFull {} => "disk-full",
            DiskFault::SlowFsync { .. } => "slow-fsync",
            DiskFault::Corrupt { .. } => "corrupt",
        }
    }

    /// Checks the fields: `(field, message)`.
    pub fn validate(&self) -> Result<(), (&'static str, String)> {
        match self {
            DiskFault::SlowFsync { fsync_delay } if fsync_delay.0 > FSYNC_DELAY_MAX => Err((
                "fsync_delay",
                format!(
                    "expected at most {}, got {fsync_delay}",
                    humantime::format_duration(FSYNC_DELAY_MAX)
                ),
            )),
            DiskFault::Corrupt { file }
                if file.is_empty() || file.starts_with('/') || file.contains("..") =>
            {
                Err((
                    "file",
                    format!(
                        "expected a glob relative to the data dir (e.g. \"wal/*\"), got {file:?}"
                    ),
                ))
            }
            _ => Ok(()),
        }
    }
}

/// The layers mounted over the nodes' data dirs, one per node, for the run's whole life. Dropped after the
/// node processes stop: each mount is then unmounted and its backing directory moved back to `data/`, so the
/// run folder looks as it would without the layer.
#[derive(Debug)]
pub struct DiskMounts {
    /// The layer per node; nodes that join at run time (membership faults) get theirs as they join.
    mounts: std::sync::Mutex<BTreeMap<u64, Mount>>,
    binary: PathBuf,
    seed: u64,
}

/// The `data.backing` directory beside a data dir.
fn backing_of(data: &Path) -> PathBuf {
    let mut name = data.as_os_str().to_owned();
    name.push(".backing");
    PathBuf::from(name)
}

impl DiskMounts {
    /// Mounts a layer over each `(node, data dir)`; `seed` decides torn lengths and corrupted bits.
    pub fn mount(nodes: &[(u64, PathBuf)], seed: u64) -> Result<DiskMounts, String> {
        let binary = diskfs::mount::binary_path().ok_or(
            "the plan has disk faults but the chaos-diskfs binary was not found next to chaos; build it with \
             `cargo build -p diskfs` (or set CHAOS_DISKFS)",
        )?;
        let mounts = DiskMounts {
            mounts: Default::default(),
            binary,
            seed,
        };
        for (id, data) in nodes {
            mounts.add(*id, data)?;
        }
        Ok(mounts)
    }

    /// Mounts a layer over node `id`'s data dir `data` (a node joining at run time gets one before it starts,
    /// so the disk faults that follow reach it like any other node).
    pub fn add(&self, id: u64, data: &Path) -> Result<(), String> {
        if self.lock().contains_key(&id) {
            return Err(format!("n{id} has a disk layer already"));
        }
        let control = data.with_file_name("diskfs.sock");
        let seed = self.seed ^ id;
        let m = Mount::start(&self.binary, data, &backing_of(data), &control, seed)
            .map_err(|e| format!("n{id}: {e} (disk faults need root, /dev/fuse and fuse3)"))?;
        self.lock().insert(id, m);
        Ok(())
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, BTreeMap<u64, Mount>> {
        // A panic while holding the lock leaves the map itself intact: use it anyway, so Drop still unmounts.
        self.mounts
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Sends `command` to node `id`'s layer; returns its answer as JSON fields.
    pub fn command(&self, id: u64, command: &str) -> Result<serde_json::Value, String> {
        let answer = {
            let mounts = self.lock();
            let m = mounts
                .get(&id)
                .ok_or_else(|| format!("n{id} has no disk layer"))?;
            m.command(command).map_err(|e| format!("n{id}: {e}"))?
        };
        let fields: serde_json::Map<String, serde_json::Value> = diskfs::control::fields(&answer)
            .into_iter()
            .map(|(k, v)| {
                let v = v
                    .parse::<u64>()
                    .map_or(serde_json::Value::String(v), serde_json::Value::from);
                (k, v)
            })
            .collect();
        Ok(serde_json::Value::Object(fields))
    }

    /// Node ids with a layer.
    pub fn ids(&self) -> Vec<u64> {
        self.lock().keys().copied().collect()
    }
}

impl Drop for DiskMounts {
    fn drop(&mut self) {
        let mounts = std::mem::take(
            self.mounts
                .get_mut()
                .unwrap_or_else(|poisoned| poisoned.into_inner()),
        );
        for (_, m) in mounts {
            let (data, backing) = (m.mount.clone(), m.backing.clone());
            drop(m);
            // Put the real files back where people look for them (only if the mount point is empty now).
            if std::fs::remove_dir(&data).is_ok() {
                let _ = std::fs::rename(&backing, &data);
            }
            let mut trash = backing.into_os_string();
            trash.push(".trash");
            let _ = std::fs::remove_dir_all(PathBuf::from(trash));
        }
    }
}

/// The disk family's run-time state.
#[derive(Debug)]
pub struct DiskNemesis {
    mounts: std::sync::Arc<DiskMounts>,
}

/// What a disk fault did, for events.jsonl: `{"n1": {"files": 2, "bytes": 4096, ...}}`.
pub type Detail = serde_json::Map<String, serde_json::Value>;

impl DiskNemesis {
    /// Faults on the layers in `mounts`.
    pub fn new(mounts: std::sync::Arc<DiskMounts>) -> DiskNemesis {
        DiskNemesis { mounts }
    }

    /// Starts `fault` on `targets`; returns the nodes hit and what was done to each.
    pub fn start(
        &self,
        supervisor: &mut dyn NodeProcesses,
        fault: &DiskFault,
        targets: &[u64],
    ) -> Result<(Vec<u64>, Detail), String> {
        let mut detail = Detail::new();
        let mut hit = Vec::new();
        for &id in targets {
            let answer = match fault {
                DiskFault::LoseUnsynced {} | DiskFault::TornWrite {} => {
                    if supervisor.state(id) == ProcessState::Down {
                        continue;
                    }
                    // Nothing may write while the log is rolled back: the process goes first, as in a cut.
                    supervisor.kill(id)?;
                    self.mounts.command(id, fault.name())?
                }
                DiskFault::DiskFull {} => {
                    supervisor.excuse_exits(id, true);
                    self.mounts.command(id, "full on")?
                }
                DiskFault::SlowFsync { fsync_delay } => self
                    .mounts
                    .command(id, &format!("fsync-delay {}", fsync_delay.0.as_millis()))?,
                DiskFault::Corrupt { file } => {
                    self.mounts.command(id, &format!("corrupt {file}"))?
                }
            };
            detail.insert(format!("n{id}"), answer);
            hit.push(id);
        }
        Ok((hit, detail))
    }

    /// Ends `fault` on the nodes it hit; returns what was done.
    pub fn end(
        &self,
        supervisor: &mut dyn NodeProcesses,
        fault: &DiskFault,
        hit: &[u64],
    ) -> Result<Detail, String> {
        let mut detail = Detail::new();
        for &id in hit {
            match fault {
                DiskFault::LoseUnsynced {} | DiskFault::TornWrite {} => supervisor.start(id)?,
                DiskFault::DiskFull {} => {
                    self.mounts.command(id, "full off")?;
                    supervisor.excuse_exits(id, false);
                    // The designed fail-stop on ENOSPC: the node comes back once there is room.
                    if supervisor.state(id) == ProcessState::Down {
                        supervisor.start(id)?;
                        detail.insert(
                            format!("n{id}"),
                            serde_json::json!({"stopped_on_enospc": true, "restarted": true}),
                        );
                    }
                }
                DiskFault::SlowFsync { .. } => {
                    self.mounts.command(id, "fsync-delay 0")?;
                }
                DiskFault::Corrupt { .. } => {}
            }
        }
        Ok(detail)
    }

    /// Clears ENOSPC and fsync delays everywhere (before the processes are healed: a node restarted by the
    /// heal must find room on its disk).
    pub fn heal(&self, supervisor: &mut dyn NodeProcesses) -> Result<(), String> {
        for id in self.mounts.ids() {
            self.mounts.command(id, "full off")?;
            self.mounts.command(id, "fsync-delay 0")?;
            supervisor.excuse_exits(id, false);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn table(text: &str) -> toml::Table {
        text.parse().unwrap()
    }

    #[test]
    fn kinds_parse_with_their_fields_and_defaults() {
        let empty = toml::Table::new();
        for kind in KINDS {
            let fault = DiskFault::parse(kind, &empty).unwrap().unwrap();
            assert_eq!(fault.name(), kind);
            assert!(fault.validate().is_ok());
        }
        assert_eq!(
            DiskFault::parse("slow-fsync", &table("fsync_delay = \"50ms\""))
                .unwrap()
                .unwrap(),
            DiskFault::SlowFsync {
                fsync_delay: Dur(Duration::from_millis(50))
            }
        );
        assert_eq!(
            DiskFault::parse("corrupt", &empty).unwrap().unwrap(),
            DiskFault::Corrupt { file: "*".into() }
        );
        assert!(DiskFault::parse("kill", &empty).is_none());
    }

    #[test]
    fn bad_fields_are_refused_with_the_reason() {
        let err = DiskFault::parse("lose-unsynced", &table("fsync_delay = \"1s\""))
            .unwrap()
            .unwrap_err();
        assert!(err.contains("fsync_delay"), "{err}");
        let slow = DiskFault::parse("slow-fsync", &table("fsync_delay = \"2m\""))
            .unwrap()
            .unwrap();
        assert_eq!(slow.validate().unwrap_err().0, "fsync_delay");
        let corrupt = DiskFault::parse("corrupt", &table("file = \"../etc/passwd\""))
            .unwrap()
            .unwrap();
        assert_eq!(corrupt.validate().unwrap_err().0, "file");
    }
}
