//! The supervisor: starts node processes, signals them, and guarantees that none outlives the run.
//!
//! Every node runs in its own process group (so a signal reaches anything it spawned), with its own data dir
//! and log file. Three mechanisms keep processes from leaking: `PR_SET_PDEATHSIG(SIGKILL)` set in the child
//! (the kernel kills it if the chaos process dies, even by SIGKILL), [`Supervisor::shutdown`] on every normal
//! and error path, and `Drop` (which also runs while a panic unwinds).
//!
//! Processes must be started from one long-lived thread: the death signal fires when the *thread* that forked
//! the child exits. The runner runs on a current-thread runtime on the main thread, so that holds.

use std::collections::BTreeMap;
use std::ffi::OsString;
use std::fs::OpenOptions;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// What the supervisor needs to start one node.
#[derive(Clone, Debug)]
pub struct NodeLaunch {
    /// Node id.
    pub id: u64,
    /// The program.
    pub program: PathBuf,
    /// Its arguments.
    pub args: Vec<OsString>,
    /// Extra environment (e.g. the clock shim's LD_PRELOAD).
    pub env: Vec<(OsString, OsString)>,
    /// Where its stdout and stderr go (appended across restarts).
    pub log: PathBuf,
    /// The network namespace to run it in (a file under /run/netns), if not this one.
    pub netns: Option<PathBuf>,
}

/// The state of one node's process as the supervisor knows it.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum ProcessState {
    /// Not running (never started, killed, or exited).
    Down,
    /// Running.
    Running,
    /// Stopped with SIGSTOP.
    Paused,
    /// Exited with [`EXIT_REMOVED`] (it learned it was removed from the cluster) or retired by the runner:
    /// never started again, not a crash.
    Removed,
}

/// The exit status with which a node says it was removed from the cluster (raft-node's `exit::REMOVED`).
pub const EXIT_REMOVED: i32 = 5;

#[derive(Debug)]
struct NodeProcess {
    launch: NodeLaunch,
    child: Option<Child>,
    paused: bool,
    starts: u32,
    /// It exited as removed (or was retired): never started again.
    removed: bool,
}

/// Owns every node process of a run.
#[derive(Debug, Default)]
pub struct Supervisor {
    nodes: BTreeMap<u64, NodeProcess>,
    unexpected_exits: Vec<(u64, String)>,
    /// Nodes whose own exits are expected for now (see [`NodeProcesses::excuse_exits`]).
    excused: std::collections::BTreeSet<u64>,
    /// Nodes the runner removed from the cluster on purpose: their exit as removed is expected.
    removal_expected: std::collections::BTreeSet<u64>,
    /// Nodes that exited as removed, in order.
    removed_exits: Vec<u64>,
}

/// A node process could not be started or signalled.
#[derive(Debug, thiserror::Error)]
pub enum SupervisorError {
    /// The program could not be started.
    #[error("cannot start node {id} ({program}): {source}")]
    Spawn {
        /// Node id.
        id: u64,
        /// The program.
        program: String,
        /// The OS error.
        source: std::io::Error,
    },
    /// The log file could not be opened.
    #[error("cannot open log file {path}: {source}")]
    Log {
        /// The file.
        path: String,
        /// The OS error.
        source: std::io::Error,
    },
    /// The node's network namespace could not be opened.
    #[error("cannot open node {id}'s network namespace {path}: {source}")]
    Netns {
        /// Node id.
        id: u64,
        /// The namespace file.
        path: String,
        /// The OS error.
        source: std::io::Error,
    },
    /// No such node.
    #[error("unknown node {0}")]
    Unknown(u64),
}

fn signal_group(child: &Child, signal: nix::sys::signal::Signal) {
    // The child leads its own process group: signal the whole group.
    let pgid = nix::unistd::Pid::from_raw(-(child.id() as i32));
    let _ = nix::sys::signal::kill(pgid, signal);
}

impl Supervisor {
    /// A supervisor with no nodes.
    pub fn new() -> Supervisor {
        Supervisor::default()
    }

    /// Registers a node (does not start it).
    pub fn add(&mut self, launch: NodeLaunch) {
        self.nodes.insert(
            launch.id,
            NodeProcess {
                launch,
                child: None,
                paused: false,
                starts: 0,
                removed: false,
            },
        );
    }

    /// Node ids.
    pub fn ids(&self) -> Vec<u64> {
        self.nodes.keys().copied().collect()
    }

    /// Starts node `id` (a no-op if it is running).
    pub fn start(&mut self, id: u64) -> Result<(), SupervisorError> {
        self.reap(id);
        let node = self
            .nodes
            .get_mut(&id)
            .ok_or(SupervisorError::Unknown(id))?;
        // A removed node is never started again: its data dir says it is a member, the cluster says not.
        if node.child.is_some() || node.removed {
            return Ok(());
        }
        let log = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&node.launch.log)
            .map_err(|source| SupervisorError::Log {
                path: node.launch.log.display().to_string(),
                source,
            })?;
        let log_err = log.try_clone().map_err(|source| SupervisorError::Log {
            path: node.launch.log.display().to_string(),
            source,
        })?;
        let mut cmd = Command::new(&node.launch.program);
        cmd.args(&node.launch.args)
            .stdin(Stdio::null())
            .stdout(log)
            .stderr(log_err);
        // The node's log level is its own (the tool's RUST_LOG would otherwise silence the node's logs).
        cmd.env_remove("RUST_LOG");
        for (k, v) in &node.launch.env {
            cmd.env(k, v);
        }
        let parent = std::process::id() as i32;
        let netns = match &node.launch.netns {
            Some(path) => {
                Some(
                    std::fs::File::open(path).map_err(|source| SupervisorError::Netns {
                        id,
                        path: path.display().to_string(),
                        source,
                    })?,
                )
            }
            None => None,
        };
        let netns_fd = netns.as_ref().map(std::os::fd::AsRawFd::as_raw_fd);
        // SAFETY: only async-signal-safe calls (setns, setpgid, prctl, getppid, _exit) run between fork and exec.
        unsafe {
            cmd.pre_exec(move || {
                if let Some(fd) = netns_fd {
                    if libc::setns(fd, libc::CLONE_NEWNET) != 0 {
                        return Err(std::io::Error::last_os_error());
                    }
                }
                libc::setpgid(0, 0);
                if !signal_on_parent_death(libc::SIGKILL, parent) {
                    libc::_exit(1);
                }
                Ok(())
            });
        }
        let child = cmd.spawn().map_err(|source| SupervisorError::Spawn {
            id,
            program: node.launch.program.display().to_string(),
            source,
        })?;
        node.child = Some(child);
        node.paused = false;
        node.starts += 1;
        Ok(())
    }

    /// Forgets a child that exited on its own.
    fn reap(&mut self, id: u64) {
        if let Some(node) = self.nodes.get_mut(&id) {
            if let Some(child) = node.child.as_mut() {
                if let Ok(Some(status)) = child.try_wait() {
                    // Nobody signalled it (kill and terminate take the child first): it exited on its own.
                    if status.code() == Some(EXIT_REMOVED) {
                        node.removed = true;
                        self.removed_exits.push(id);
                        if self.removal_expected.contains(&id) {
                            tracing::info!(
                                node = id,
                                "node exited as removed, as the runner removed it"
                            );
                        } else {
                            // The runner still counts it as a member: the cluster dropped it on its own.
                            self.unexpected_exits.push((
                                id,
                                format!("{status} (exited as removed from the cluster while the runner still counts it as a member)"),
                            ));
                        }
                    } else if self.excused.contains(&id) {
                        tracing::info!(node = id, %status, "node stopped while a fault excused it");
                    } else {
                        self.unexpected_exits.push((id, status.to_string()));
                    }
                    node.child = None;
                    node.paused = false;
                }
            }
        }
    }

    /// Checks every node for an exit nobody caused; returns the new ones.
    pub fn reap_all(&mut self) -> Vec<(u64, String)> {
        let before = self.unexpected_exits.len();
        for id in self.ids() {
            self.reap(id);
        }
        self.unexpected_exits[before..].to_vec()
    }

    /// Every exit nobody caused (a crash of the system under test), with its status.
    pub fn unexpected_exits(&self) -> &[(u64, String)] {
        &self.unexpected_exits
    }

    /// The state of node `id`'s process.
    pub fn state(&mut self, id: u64) -> ProcessState {
        self.reap(id);
        match self.nodes.get(&id) {
            Some(NodeProcess {
                child: Some(_),
                paused: true,
                ..
            }) => ProcessState::Paused,
            Some(NodeProcess { child: Some(_), .. }) => ProcessState::Running,
            Some(NodeProcess { removed: true, .. }) => ProcessState::Removed,
            _ => ProcessState::Down,
        }
    }

    /// How many times node `id` was started.
    pub fn starts(&self, id: u64) -> u32 {
        self.nodes.get(&id).map_or(0, |n| n.starts)
    }

    /// SIGKILLs node `id`'s process group and waits for it.
    pub fn kill(&mut self, id: u64) {
        if let Some(node) = self.nodes.get_mut(&id) {
            if let Some(mut child) = node.child.take() {
                signal_group(&child, nix::sys::signal::Signal::SIGKILL);
                let _ = child.wait();
            }
            node.paused = false;
        }
    }

    /// SIGTERMs node `id` and waits up to `grace` for it to exit, then SIGKILLs it. Returns whether it exited
    /// by itself.
    pub fn terminate(&mut self, id: u64, grace: Duration) -> bool {
        let Some(node) = self.nodes.get_mut(&id) else {
            return false;
        };
        let Some(mut child) = node.child.take() else {
            return true;
        };
        if node.paused {
            signal_group(&child, nix::sys::signal::Signal::SIGCONT);
            node.paused = false;
        }
        signal_group(&child, nix::sys::signal::Signal::SIGTERM);
        let deadline = Instant::now() + grace;
        while Instant::now() < deadline {
            if matches!(child.try_wait(), Ok(Some(_))) {
                return true;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        signal_group(&child, nix::sys::signal::Signal::SIGKILL);
        let _ = child.wait();
        false
    }

    /// SIGSTOPs node `id`.
    pub fn pause(&mut self, id: u64) {
        if let Some(node) = self.nodes.get_mut(&id) {
            if let Some(child) = &node.child {
                signal_group(child, nix::sys::signal::Signal::SIGSTOP);
                node.paused = true;
            }
        }
    }

    /// SIGCONTs node `id`.
    pub fn resume(&mut self, id: u64) {
        if let Some(node) = self.nodes.get_mut(&id) {
            if let Some(child) = &node.child {
                signal_group(child, nix::sys::signal::Signal::SIGCONT);
            }
            node.paused = false;
        }
    }

    /// Stops every node: SIGCONT, SIGTERM, a grace period, then SIGKILL. Safe to call more than once.
    pub fn shutdown(&mut self, grace: Duration) {
        let ids = self.ids();
        for &id in &ids {
            if let Some(NodeProcess {
                child: Some(child), ..
            }) = self.nodes.get(&id)
            {
                signal_group(child, nix::sys::signal::Signal::SIGCONT);
                signal_group(child, nix::sys::signal::Signal::SIGTERM);
            }
        }
        let deadline = Instant::now() + grace;
        for id in ids {
            let Some(node) = self.nodes.get_mut(&id) else {
                continue;
            };
            if let Some(mut child) = node.child.take() {
                while Instant::now() < deadline && !matches!(child.try_wait(), Ok(Some(_))) {
                    std::thread::sleep(Duration::from_millis(10));
                }
                signal_group(&child, nix::sys::signal::Signal::SIGKILL);
                let _ = child.wait();
            }
        }
    }

    /// The log file of node `id`.
    pub fn log_path(&self, id: u64) -> Option<&Path> {
        self.nodes.get(&id).map(|n| n.launch.log.as_path())
    }

    /// Process ids of running nodes (for tests that check nothing leaks).
    pub fn pids(&self) -> Vec<u32> {
        self.nodes
            .values()
            .filter_map(|n| n.child.as_ref().map(Child::id))
            .collect()
    }
}

impl Drop for Supervisor {
    fn drop(&mut self) {
        for node in self.nodes.values_mut() {
            if let Some(mut child) = node.child.take() {
                signal_group(&child, nix::sys::signal::Signal::SIGCONT);
                signal_group(&child, nix::sys::signal::Signal::SIGKILL);
                let _ = child.wait();
            }
        }
    }
}

/// Node processes as the fault families and the runner see them, wherever they run: child processes here
/// ([`Supervisor`]) or processes on other hosts (`hosts::ssh`). Signals act on the node's whole process group.
pub trait NodeProcesses: Send + std::fmt::Debug {
    /// Node ids.
    fn ids(&self) -> Vec<u64>;
    /// Starts node `id` (a no-op if it is running).
    fn start(&mut self, id: u64) -> Result<(), String>;
    /// The state of node `id`'s process (noticing an exit nobody caused).
    fn state(&mut self, id: u64) -> ProcessState;
    /// Whether node `id` is stopped or paused as far as this owner already knows (it killed, paused or reaped
    /// it), without asking its host: such a node cannot answer a status call, so targeting need not wait for it.
    fn known_silent(&self, id: u64) -> bool;
    /// SIGKILLs node `id` and waits until it is gone.
    fn kill(&mut self, id: u64) -> Result<(), String>;
    /// SIGTERMs node `id`, then SIGKILLs it after `grace`.
    fn terminate(&mut self, id: u64, grace: Duration) -> Result<(), String>;
    /// SIGSTOPs node `id`.
    fn pause(&mut self, id: u64) -> Result<(), String>;
    /// SIGCONTs node `id`.
    fn resume(&mut self, id: u64) -> Result<(), String>;
    /// Checks every node for an exit nobody caused; returns the new ones.
    fn reap_all(&mut self) -> Vec<(u64, String)>;
    /// Every exit nobody caused, with its status.
    fn unexpected_exits(&self) -> Vec<(u64, String)>;
    /// Stops every node (TERM, grace, KILL) and brings its log and data home. Safe to call more than once.
    fn shutdown(&mut self, grace: Duration);
    /// Where node `id`'s log is (on this machine).
    fn log_path(&self, id: u64) -> Option<PathBuf>;
    /// While `excused`, an exit of node `id` on its own is the designed reaction to a fault in force (a
    /// fail-stop on ENOSPC), not a crash: it is not counted among [`NodeProcesses::unexpected_exits`]. Hosts
    /// that cannot run such faults (validation refuses them) keep the default, which excuses nothing.
    fn excuse_exits(&mut self, id: u64, excused: bool) {
        let _ = (id, excused);
    }
    /// Registers a node that joins at run time (membership faults). Hosts that cannot run such faults
    /// (validation refuses them) keep the default, which refuses.
    fn add(&mut self, launch: NodeLaunch) -> Result<(), String> {
        Err(format!(
            "cannot add node {} on these hosts: membership faults run on local hosts only",
            launch.id
        ))
    }
    /// The runner removed node `id` from the cluster on purpose: its exit as removed is expected from now on.
    fn expect_removal(&mut self, id: u64) {
        let _ = id;
    }
    /// Stops node `id` for good (SIGKILL) and never starts it again: its id is retired.
    fn retire(&mut self, id: u64) -> Result<(), String> {
        Err(format!("cannot retire node {id} on these hosts"))
    }
    /// The nodes that exited as removed (status [`EXIT_REMOVED`]), in order.
    fn removed_exits(&self) -> Vec<u64> {
        Vec::new()
    }
}

impl NodeProcesses for Supervisor {
    fn ids(&self) -> Vec<u64> {
        Supervisor::ids(self)
    }

    fn start(&mut self, id: u64) -> Result<(), String> {
        Supervisor::start(self, id).map_err(|e| e.to_string())
    }

    fn state(&mut self, id: u64) -> ProcessState {
        Supervisor::state(self, id)
    }

    fn known_silent(&self, id: u64) -> bool {
        self.nodes
            .get(&id)
            .is_none_or(|n| n.child.is_none() || n.paused)
    }

    fn kill(&mut self, id: u64) -> Result<(), String> {
        Supervisor::kill(self, id);
        Ok(())
    }

    fn terminate(&mut self, id: u64, grace: Duration) -> Result<(), String> {
        Supervisor::terminate(self, id, grace);
        Ok(())
    }

    fn pause(&mut self, id: u64) -> Result<(), String> {
        Supervisor::pause(self, id);
        Ok(())
    }

    fn resume(&mut self, id: u64) -> Result<(), String> {
        Supervisor::resume(self, id);
        Ok(())
    }

    fn reap_all(&mut self) -> Vec<(u64, String)> {
        Supervisor::reap_all(self)
    }

    fn unexpected_exits(&self) -> Vec<(u64, String)> {
        Supervisor::unexpected_exits(self).to_vec()
    }

    fn shutdown(&mut self, grace: Duration) {
        Supervisor::shutdown(self, grace)
    }

    fn log_path(&self, id: u64) -> Option<PathBuf> {
        Supervisor::log_path(self, id).map(Path::to_path_buf)
    }

    fn add(&mut self, launch: NodeLaunch) -> Result<(), String> {
        if self.nodes.contains_key(&launch.id) {
            return Err(format!("node id {} is already in use", launch.id));
        }
        Supervisor::add(self, launch);
        Ok(())
    }

    fn expect_removal(&mut self, id: u64) {
        self.removal_expected.insert(id);
    }

    fn retire(&mut self, id: u64) -> Result<(), String> {
        self.removal_expected.insert(id);
        self.reap(id);
        Supervisor::kill(self, id);
        let node = self
            .nodes
            .get_mut(&id)
            .ok_or(format!("unknown node {id}"))?;
        node.removed = true;
        Ok(())
    }

    fn removed_exits(&self) -> Vec<u64> {
        self.removed_exits.clone()
    }

    fn excuse_exits(&mut self, id: u64, excused: bool) {
        // An exit that happened while excused but is noticed only now still counts as excused.
        self.reap(id);
        if excused {
            self.excused.insert(id);
        } else {
            self.excused.remove(&id);
        }
    }
}

/// For `pre_exec` (async-signal-safe: prctl and getppid only): the kernel sends `signal` to this child when the
/// thread that spawned it dies. False when `parent` had already died before that took effect, so no signal would
/// ever come and the caller should exit at once.
pub(crate) fn signal_on_parent_death(signal: libc::c_int, parent: libc::pid_t) -> bool {
    // SAFETY: prctl(PR_SET_PDEATHSIG) and getppid have no memory-safety preconditions.
    unsafe {
        libc::prctl(libc::PR_SET_PDEATHSIG, signal as libc::c_ulong, 0, 0, 0);
        libc::getppid() == parent
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sleeper(dir: &Path, id: u64) -> NodeLaunch {
        NodeLaunch {
            id,
            program: "sh".into(),
            // A child of the node's own: killing the group must take it too.
            args: vec!["-c".into(), "sleep 60 & sleep 60".into()],
            env: vec![],
            log: dir.join(format!("n{id}.log")),
            netns: None,
        }
    }

    fn alive(pid: u32) -> bool {
        nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid as i32), None).is_ok()
    }

    #[test]
    fn kill_pause_resume_restart_and_drop() {
        let dir = tempfile::tempdir().unwrap();
        let mut sup = Supervisor::new();
        sup.add(sleeper(dir.path(), 1));
        sup.add(sleeper(dir.path(), 2));
        sup.start(1).unwrap();
        sup.start(2).unwrap();
        assert_eq!(sup.state(1), ProcessState::Running);
        sup.pause(1);
        assert_eq!(sup.state(1), ProcessState::Paused);
        sup.resume(1);
        assert_eq!(sup.state(1), ProcessState::Running);
        sup.kill(1);
        assert_eq!(sup.state(1), ProcessState::Down);
        sup.start(1).unwrap();
        assert_eq!(sup.starts(1), 2);
        let pids = sup.pids();
        assert_eq!(pids.len(), 2);
        drop(sup);
        for pid in pids {
            assert!(!alive(pid), "pid {pid} outlived the supervisor");
        }
    }

    #[test]
    fn a_process_that_exits_by_itself_is_reported() {
        let dir = tempfile::tempdir().unwrap();
        let mut sup = Supervisor::new();
        let mut crasher = sleeper(dir.path(), 1);
        crasher.args = vec!["-c".into(), "exit 101".into()];
        sup.add(crasher);
        sup.add(sleeper(dir.path(), 2));
        sup.start(1).unwrap();
        sup.start(2).unwrap();
        let give_up = Instant::now() + Duration::from_secs(10);
        while sup.unexpected_exits().is_empty() {
            assert!(Instant::now() < give_up, "the exit was never noticed");
            sup.reap_all();
            std::thread::sleep(Duration::from_millis(10));
        }
        assert_eq!(sup.unexpected_exits().len(), 1);
        assert_eq!(sup.unexpected_exits()[0].0, 1);
        assert!(
            sup.unexpected_exits()[0].1.contains("101"),
            "{:?}",
            sup.unexpected_exits()
        );
        sup.kill(2);
        assert_eq!(sup.reap_all(), vec![], "a kill is not an unexpected exit");
    }

    /// A disk-full fault excuses its nodes: an exit then (the designed fail-stop on ENOSPC) is no crash, and
    /// one after the excuse is lifted is again.
    #[test]
    fn an_excused_exit_is_not_a_crash() {
        let dir = tempfile::tempdir().unwrap();
        let mut sup = Supervisor::new();
        let mut quitter = sleeper(dir.path(), 1);
        quitter.args = vec!["-c".into(), "exit 1".into()];
        sup.add(quitter);
        NodeProcesses::excuse_exits(&mut sup, 1, true);
        sup.start(1).unwrap();
        let give_up = Instant::now() + Duration::from_secs(10);
        while sup.state(1) != ProcessState::Down {
            assert!(Instant::now() < give_up, "the exit was never noticed");
            std::thread::sleep(Duration::from_millis(10));
        }
        NodeProcesses::excuse_exits(&mut sup, 1, false);
        assert_eq!(sup.unexpected_exits(), &[] as &[(u64, String)]);
        sup.start(1).unwrap();
        while sup.unexpected_exits().is_empty() {
            assert!(
                Instant::now() < give_up,
                "the second exit was never noticed"
            );
            sup.reap_all();
            std::thread::sleep(Duration::from_millis(10));
        }
        assert_eq!(sup.unexpected_exits()[0].0, 1);
    }

    /// An exit that happened while excused but is noticed only when the excuse is lifted stays excused.
    #[test]
    fn lifting_an_excuse_first_reaps_under_it() {
        let dir = tempfile::tempdir().unwrap();
        let mut sup = Supervisor::new();
        let mut quitter = sleeper(dir.path(), 1);
        quitter.args = vec!["-c".into(), "exit 1".into()];
        sup.add(quitter);
        NodeProcesses::excuse_exits(&mut sup, 1, true);
        sup.start(1).unwrap();
        // Wait until it is a zombie (exited, not yet reaped), without reaping it.
        let pid = sup.pids()[0];
        let give_up = Instant::now() + Duration::from_secs(10);
        let zombie = || {
            std::fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|s| {
                s.rsplit(')')
                    .next()
                    .is_some_and(|r| r.trim_start().starts_with('Z'))
            })
        };
        while !zombie() {
            assert!(Instant::now() < give_up, "the process never exited");
            std::thread::sleep(Duration::from_millis(10));
        }
        NodeProcesses::excuse_exits(&mut sup, 1, false);
        assert_eq!(sup.state(1), ProcessState::Down);
        assert!(sup.unexpected_exits().is_empty());
    }

    /// Exit status 5 means removed from the cluster: never started again, a finding unless the runner removed
    /// the node on purpose.
    #[test]
    fn an_exit_as_removed_is_final_and_a_finding_only_for_a_member() {
        let dir = tempfile::tempdir().unwrap();
        let mut sup = Supervisor::new();
        for id in [1, 2] {
            let mut removed = sleeper(dir.path(), id);
            removed.args = vec!["-c".into(), "exit 5".into()];
            sup.add(removed);
        }
        NodeProcesses::expect_removal(&mut sup, 1);
        sup.start(1).unwrap();
        sup.start(2).unwrap();
        let give_up = Instant::now() + Duration::from_secs(10);
        while sup.state(1) != ProcessState::Removed || sup.state(2) != ProcessState::Removed {
            assert!(Instant::now() < give_up, "the exits were never noticed");
            std::thread::sleep(Duration::from_millis(10));
        }
        assert_eq!(NodeProcesses::removed_exits(&sup).len(), 2);
        let unexpected = sup.unexpected_exits().to_vec();
        assert_eq!(unexpected.len(), 1, "{unexpected:?}");
        assert_eq!(unexpected[0].0, 2);
        assert!(unexpected[0].1.contains("still counts it as a member"));
        sup.start(1).unwrap();
        assert_eq!(sup.starts(1), 1, "a removed node is never started again");
        assert_eq!(process_heal(&mut sup), Vec::<u64>::new());
    }

    fn process_heal(sup: &mut Supervisor) -> Vec<u64> {
        crate::faults::process::heal(sup).unwrap()
    }

    #[test]
    fn terminate_waits_then_forces() {
        let dir = tempfile::tempdir().unwrap();
        let mut sup = Supervisor::new();
        let mut stubborn = sleeper(dir.path(), 1);
        stubborn.args = vec!["-c".into(), "trap '' TERM; sleep 60".into()];
        sup.add(stubborn);
        sup.start(1).unwrap();
        std::thread::sleep(Duration::from_millis(100));
        assert!(
            !sup.terminate(1, Duration::from_millis(200)),
            "a process ignoring SIGTERM is killed"
        );
        assert_eq!(sup.state(1), ProcessState::Down);
    }
}
