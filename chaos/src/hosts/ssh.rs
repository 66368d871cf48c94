//! Hosts reached over SSH, as Jepsen's control node reaches its database machines. chaos drives the system
//! OpenSSH client (not a Rust SSH library) so users' ssh config, agents, jump hosts and known_hosts all apply;
//! one control connection per host (`ControlMaster`, in the run folder) makes each command cost a round trip
//! instead of a handshake.
//!
//! On each host the run lives in `/tmp/chaos-run-<run id>/`: the node binary (uploaded), the certificates, and
//! per node a folder with its data, log, pid and exit status. A node runs under `setsid sh -c …` detached from
//! the SSH session, so a dropped connection does not kill it; signals go to its process group. At the end
//! every node is stopped, its log and data come home into the run folder, and the remote folder is removed. A
//! `controller` file names the process that made the folder, so the next run removes what a crashed one left.

use crate::supervisor::{NodeLaunch, NodeProcesses, ProcessState};
use std::collections::BTreeMap;
use std::ffi::OsString;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// How long one remote command may take.
const COMMAND_TIMEOUT: Duration = Duration::from_secs(30);

/// One machine, as the plan lists it (`[[cluster.ssh_hosts]]`).
#[derive(Clone, Debug, PartialEq, Eq, serde::Deserialize, serde::Serialize)]
#[serde(deny_unknown_fields)]
pub struct SshHost {
    /// Its address (an IPv4 address: nodes are reached and partitioned by it).
    pub address: String,
    /// The login (default: as the ssh config says).
    pub user: Option<String>,
    /// The port (default: as the ssh config says).
    pub port: Option<u16>,
    /// A private key (default: the agent and the ssh config).
    pub key: Option<PathBuf>,
}

/// A connection to one host through the system's `ssh`.
#[derive(Debug)]
pub struct Ssh {
    host: SshHost,
    control: PathBuf,
    known_hosts: Option<PathBuf>,
}

/// Quotes `text` for a POSIX shell.
pub fn quote(text: &str) -> String {
    format!("'{}'", text.replace('\'', "'\\''"))
}

impl Ssh {
    /// A connection to `host` whose control socket lives in `control_dir`.
    pub fn new(host: SshHost, control_dir: &Path, known_hosts: Option<PathBuf>) -> Ssh {
        let control = control_dir.join(format!("{}-{}", host.address, host.port.unwrap_or(22)));
        Ssh {
            host,
            control,
            known_hosts,
        }
    }

    /// The host, for messages.
    pub fn name(&self) -> String {
        match &self.host.user {
            Some(user) => format!("{user}@{}", self.host.address),
            None => self.host.address.clone(),
        }
    }

    /// `ssh` and its options up to and including the destination: run a remote command by appending it.
    pub fn prefix(&self) -> Vec<String> {
        let mut args = vec![
            "ssh".to_string(),
            "-o".into(),
            "BatchMode=yes".into(),
            "-o".into(),
            "ConnectTimeout=5".into(),
            "-o".into(),
            "ServerAliveInterval=5".into(),
            "-o".into(),
            "StrictHostKeyChecking=accept-new".into(),
            "-o".into(),
            "ControlMaster=no".into(),
            "-o".into(),
            format!("ControlPath={}", self.control.display()),
        ];
        if let Some(known) = &self.known_hosts {
            args.extend([
                "-o".into(),
                format!("UserKnownHostsFile={}", known.display()),
            ]);
        }
        if let Some(port) = self.host.port {
            args.extend(["-p".into(), port.to_string()]);
        }
        if let Some(key) = &self.host.key {
            args.extend([
                "-i".into(),
                key.display().to_string(),
                "-o".into(),
                "IdentitiesOnly=yes".into(),
            ]);
        }
        args.push(self.name());
        args
    }

    /// Opens the control connection that later commands share. It runs in the background with no tie to our
    /// pipes (a master started by an ordinary command would keep that command's stdout open for its lifetime).
    pub fn open(&self) -> Result<(), String> {
        let mut prefix = self.prefix();
        let destination = prefix.pop().expect("destination");
        for option in prefix.iter_mut() {
            if option == "ControlMaster=no" {
                *option = "ControlMaster=yes".into();
            }
        }
        let out = Command::new(&prefix[0])
            .args(&prefix[1..])
            .args(["-o", "ControlPersist=300", "-N", "-f", &destination])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|e| {
                format!(
                    "{}: cannot run ssh: {e} (apt-get install openssh-client)",
                    self.name()
                )
            })?
            .wait_with_output()
            .map_err(|e| format!("{}: {e}", self.name()))?;
        if out.status.success() {
            return Ok(());
        }
        let stderr = String::from_utf8_lossy(&out.stderr);
        let why = if stderr.contains("Permission denied") {
            "authentication refused"
        } else {
            "unreachable"
        };
        Err(format!("{}: {why}: {}", self.name(), stderr.trim()))
    }

    /// Runs `script` with the remote shell; its stdout, or an error naming the host and what failed.
    pub fn run(&self, script: &str) -> Result<String, String> {
        self.run_with_input(script, &[])
    }

    /// Runs `script` with `input` on its stdin.
    pub fn run_with_input(&self, script: &str, input: &[u8]) -> Result<String, String> {
        let prefix = self.prefix();
        let mut child = Command::new(&prefix[0])
            .args(&prefix[1..])
            .arg(script)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|e| {
                format!(
                    "{}: cannot run ssh: {e} (apt-get install openssh-client)",
                    self.name()
                )
            })?;
        let mut stdin = child.stdin.take().expect("piped");
        let input = input.to_vec();
        let writer = std::thread::spawn(move || stdin.write_all(&input));
        let deadline = Instant::now() + COMMAND_TIMEOUT;
        while child.try_wait().map_err(|e| e.to_string())?.is_none() {
            if Instant::now() > deadline {
                let _ = child.kill();
                let _ = child.wait();
                return Err(format!(
                    "{}: `{script}` took longer than {COMMAND_TIMEOUT:?}",
                    self.name()
                ));
            }
            std::thread::sleep(Duration::from_millis(2));
        }
        let _ = writer.join();
        let out = child.wait_with_output().map_err(|e| e.to_string())?;
        if out.status.success() {
            return Ok(String::from_utf8_lossy(&out.stdout).into_owned());
        }
        let stderr = String::from_utf8_lossy(&out.stderr);
        let why = match out.status.code() {
            Some(255) if stderr.contains("Permission denied") => "authentication refused",
            Some(255) => "unreachable or the SSH connection failed",
            _ => "the remote command failed",
        };
        Err(format!(
            "{}: {why}: `{script}`: {}",
            self.name(),
            stderr.trim()
        ))
    }

    /// Closes the control connection.
    pub fn close(&self) {
        let prefix = self.prefix();
        let _ = Command::new(&prefix[0])
            .args(&prefix[1..prefix.len() - 1])
            .args(["-O", "exit", &self.name()])
            .stderr(Stdio::null())
            .status();
    }
}

/// The remote folder of run `run_id`.
pub fn remote_root(run_id: &str) -> String {
    format!("/tmp/chaos-run-{run_id}")
}

/// Who made a remote folder: this machine's host name, a pid and its start time.
fn controller_id() -> String {
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname").unwrap_or_default();
    format!("{} {}", host.trim(), std::process::id())
}

/// Prepares every host: removes what crashed runs of this machine left, makes the run's folder, uploads the
/// node binary and the certificates. Errors name the host and the step.
pub fn prepare(
    hosts: &[Arc<Ssh>],
    run_id: &str,
    binary: &Path,
    certs: &Path,
) -> Result<(), String> {
    let root = remote_root(run_id);
    let program = std::fs::read(binary).map_err(|e| format!("{}: {e}", binary.display()))?;
    let certs_tar = Command::new("tar")
        .arg("-C")
        .arg(certs.parent().unwrap_or(Path::new("/")))
        .args(["-cf", "-", "certs"])
        .output()
        .map_err(|e| format!("packing the certificates: {e}"))?
        .stdout;
    let name = binary
        .file_name()
        .map_or("node".into(), |n| n.to_string_lossy().into_owned());
    for ssh in hosts {
        ssh.open().map_err(|e| format!("connecting: {e}"))?;
        clean_leftovers(ssh)?;
        ssh.run(&format!(
            "mkdir -p {root}/bin && echo {} > {root}/controller",
            quote(&controller_id())
        ))
        .map_err(|e| format!("making the run folder: {e}"))?;
        ssh.run_with_input(
            &format!("cat > {root}/bin/{name} && chmod 755 {root}/bin/{name}"),
            &program,
        )
        .map_err(|e| format!("uploading the node binary: {e}"))?;
        ssh.run_with_input(&format!("tar -C {root} -xf -"), &certs_tar)
            .map_err(|e| format!("uploading the certificates: {e}"))?;
    }
    Ok(())
}

/// Kills the nodes of this machine's crashed runs on `ssh`'s host and removes their folders.
fn clean_leftovers(ssh: &Ssh) -> Result<(), String> {
    let listing = ssh.run("for d in /tmp/chaos-run-*; do [ -f \"$d/controller\" ] && echo \"$d $(cat \"$d/controller\")\"; done; true")?;
    let me = controller_id();
    let my_host = me.split(' ').next().unwrap_or("");
    for line in listing.lines() {
        let words: Vec<&str> = line.split_whitespace().collect();
        let [dir, host, pid] = words[..] else {
            continue;
        };
        let alive = Path::new(&format!("/proc/{pid}")).exists();
        if host == my_host && !alive {
            tracing::warn!(host = %ssh.name(), dir, "removing what a crashed run left behind");
            ssh.run(&format!(
                "for p in {dir}/*/pid; do [ -f \"$p\" ] && kill -KILL -- -$(cat \"$p\") 2>/dev/null; done; rm -rf {dir}"
            ))?;
        }
    }
    Ok(())
}

#[derive(Debug)]
struct RemoteNode {
    ssh: Arc<Ssh>,
    /// The node's folder on the host.
    dir: String,
    /// The shell command that runs the node there.
    command: String,
    /// Its log here, and its folder here (filled at shutdown).
    local_log: PathBuf,
    local_dir: PathBuf,
    /// Its process group on the host, while we believe it runs.
    pgid: Option<u32>,
    paused: bool,
}

/// Node processes on SSH hosts.
#[derive(Debug)]
pub struct RemoteProcesses {
    nodes: BTreeMap<u64, RemoteNode>,
    exits: Vec<(u64, String)>,
    root: String,
    fetched: bool,
}

fn os(s: &OsString) -> String {
    s.to_string_lossy().into_owned()
}

impl RemoteProcesses {
    /// Node processes for `launches` (local paths under `run_dir`, which become paths under the run's remote
    /// folder), node `id` on `hosts[id]`.
    pub fn new(
        launches: Vec<NodeLaunch>,
        hosts: &BTreeMap<u64, Arc<Ssh>>,
        run_dir: &Path,
        run_id: &str,
    ) -> RemoteProcesses {
        let root = remote_root(run_id);
        let local_root = run_dir.display().to_string();
        let remote = |text: String| text.replace(&local_root, &root);
        let mut nodes = BTreeMap::new();
        for launch in launches {
            let name = launch
                .program
                .file_name()
                .map_or("node".into(), |n| n.to_string_lossy().into_owned());
            let mut words: Vec<String> = launch
                .env
                .iter()
                .map(|(k, v)| quote(&format!("{}={}", os(k), remote(os(v)))))
                .collect();
            words.insert(0, "env".into());
            words.push(quote(&format!("{root}/bin/{name}")));
            words.extend(launch.args.iter().map(|a| quote(&remote(os(a)))));
            let local_dir = launch
                .log
                .parent()
                .map(Path::to_path_buf)
                .unwrap_or_default();
            let dir = remote(local_dir.display().to_string());
            nodes.insert(
                launch.id,
                RemoteNode {
                    ssh: Arc::clone(&hosts[&launch.id]),
                    dir,
                    command: words.join(" "),
                    local_log: launch.log,
                    local_dir,
                    pgid: None,
                    paused: false,
                },
            );
        }
        RemoteProcesses {
            nodes,
            exits: Vec::new(),
            root,
            fetched: false,
        }
    }

    fn node(&mut self, id: u64) -> Result<&mut RemoteNode, String> {
        self.nodes
            .get_mut(&id)
            .ok_or_else(|| format!("unknown node {id}"))
    }

    fn signal(&mut self, id: u64, signal: &str) -> Result<(), String> {
        let node = self.node(id)?;
        if let Some(pgid) = node.pgid {
            node.ssh
                .run(&format!("kill -{signal} -- -{pgid} 2>/dev/null; true"))
                .map_err(|e| format!("n{id}: SIG{signal}: {e}"))?;
        }
        Ok(())
    }

    /// Brings every node's log and data home (once).
    fn fetch(&mut self) {
        if self.fetched {
            return;
        }
        self.fetched = true;
        for (id, node) in &self.nodes {
            match node
                .ssh
                .run(&format!("cat {}/node.log 2>/dev/null; true", node.dir))
            {
                Ok(log) => {
                    let _ = std::fs::write(&node.local_log, log);
                }
                Err(e) => tracing::warn!(node = id, error = %e, "cannot fetch the node's log"),
            }
            let prefix = node.ssh.prefix();
            let tar = Command::new(&prefix[0])
                .args(&prefix[1..])
                .arg(format!("tar -C {} -cf - data 2>/dev/null", node.dir))
                .output();
            if let Some(out) = tar.ok().filter(|o| o.status.success()) {
                let mut untar = Command::new("tar");
                untar
                    .arg("-C")
                    .arg(&node.local_dir)
                    .args(["-xf", "-"])
                    .stdin(Stdio::piped());
                if let Ok(mut child) = untar.spawn() {
                    if let Some(mut stdin) = child.stdin.take() {
                        let _ = stdin.write_all(&out.stdout);
                    }
                    let _ = child.wait();
                }
            }
        }
    }
}

impl NodeProcesses for RemoteProcesses {
    fn ids(&self) -> Vec<u64> {
        self.nodes.keys().copied().collect()
    }

    fn start(&mut self, id: u64) -> Result<(), String> {
        if self.state(id) != ProcessState::Down {
            return Ok(());
        }
        let node = self.node(id)?;
        let dir = &node.dir;
        // setsid makes the wrapper shell a process group (and session) of its own, detached from ssh; its pid
        // is the group's id; it records the node's exit status when the node exits by itself. The `&` must
        // apply to setsid alone: a backgrounded list would keep the session's stdout open and ssh waiting.
        let script = format!(
            "mkdir -p {dir} && rm -f {dir}/exit && cd {dir} || exit 1; \
             setsid sh -c {} > /dev/null 2>&1 < /dev/null & echo $! > {dir}/pid; cat {dir}/pid",
            quote(&format!(
                "{} >> {dir}/node.log 2>&1; echo $? > {dir}/exit",
                node.command
            ))
        );
        let out = node
            .ssh
            .run(&script)
            .map_err(|e| format!("starting n{id}: {e}"))?;
        let pgid = out
            .trim()
            .parse()
            .map_err(|_| format!("starting n{id}: no pid in {out:?}"))?;
        node.pgid = Some(pgid);
        node.paused = false;
        Ok(())
    }

    fn known_silent(&self, id: u64) -> bool {
        self.nodes
            .get(&id)
            .is_none_or(|n| n.pgid.is_none() || n.paused)
    }

    fn state(&mut self, id: u64) -> ProcessState {
        let Some(node) = self.nodes.get_mut(&id) else {
            return ProcessState::Down;
        };
        let Some(pgid) = node.pgid else {
            return ProcessState::Down;
        };
        let probe = format!(
            "if [ -f {dir}/exit ]; then echo \"exit $(cat {dir}/exit)\"; elif kill -0 {pgid} 2>/dev/null; then echo up; else echo gone; fi",
            dir = node.dir
        );
        match node.ssh.run(&probe).as_deref().map(str::trim) {
            Ok("up") if node.paused => ProcessState::Paused,
            Ok("up") => ProcessState::Running,
            Ok(other) => {
                // It exited and nobody killed it (kills forget the group first): a crash of the system.
                let status = other
                    .strip_prefix("exit ")
                    .map_or("gone".into(), |c| format!("exit status: {c}"));
                node.pgid = None;
                node.paused = false;
                self.exits.push((id, status));
                ProcessState::Down
            }
            // Unreachable host: say running (the fault families will fail loudly on the next signal).
            Err(e) => {
                tracing::warn!(node = id, error = %e, "cannot probe the node");
                ProcessState::Running
            }
        }
    }

    fn kill(&mut self, id: u64) -> Result<(), String> {
        let node = self.node(id)?;
        let Some(pgid) = node.pgid.take() else {
            return Ok(());
        };
        node.paused = false;
        node.ssh
            .run(&format!(
                "kill -KILL -- -{pgid} 2>/dev/null; for i in $(seq 500); do kill -0 {pgid} 2>/dev/null || exit 0; sleep 0.01; done; exit 1"
            ))
            .map_err(|e| format!("n{id}: SIGKILL did not stop it: {e}"))
            .map(|_| ())
    }

    fn terminate(&mut self, id: u64, grace: Duration) -> Result<(), String> {
        let node = self.node(id)?;
        let Some(pgid) = node.pgid.take() else {
            return Ok(());
        };
        node.paused = false;
        let steps = (grace.as_millis() / 10).max(1);
        node.ssh
            .run(&format!(
                "kill -CONT -- -{pgid} 2>/dev/null; kill -TERM -- -{pgid} 2>/dev/null; \
                 for i in $(seq {steps}); do kill -0 {pgid} 2>/dev/null || exit 0; sleep 0.01; done; \
                 kill -KILL -- -{pgid} 2>/dev/null; true"
            ))
            .map_err(|e| format!("n{id}: SIGTERM: {e}"))
            .map(|_| ())
    }

    fn pause(&mut self, id: u64) -> Result<(), String> {
        self.signal(id, "STOP")?;
        self.node(id)?.paused = true;
        Ok(())
    }

    fn resume(&mut self, id: u64) -> Result<(), String> {
        self.signal(id, "CONT")?;
        self.node(id)?.paused = false;
        Ok(())
    }

    fn reap_all(&mut self) -> Vec<(u64, String)> {
        let before = self.exits.len();
        for id in self.ids() {
            self.state(id);
        }
        self.exits[before..].to_vec()
    }

    fn unexpected_exits(&self) -> Vec<(u64, String)> {
        self.exits.clone()
    }

    fn shutdown(&mut self, grace: Duration) {
        for id in self.ids() {
            if let Err(e) = self.terminate(id, grace) {
                tracing::warn!(node = id, error = %e, "cannot stop the node");
            }
        }
        self.fetch();
        let mut hosts: Vec<Arc<Ssh>> = self.nodes.values().map(|n| Arc::clone(&n.ssh)).collect();
        hosts.dedup_by(|a, b| Arc::ptr_eq(a, b));
        for ssh in hosts {
            // Also every group a pid file names: a start whose answer never came (a timeout) left a node running
            // that we hold no pgid for.
            let root = &self.root;
            let sweep = format!(
                "for p in {root}/nodes/*/pid; do [ -f \"$p\" ] && kill -KILL -- -$(cat \"$p\") 2>/dev/null; done; rm -rf {root}"
            );
            if let Err(e) = ssh.run(&sweep) {
                tracing::warn!(host = %ssh.name(), error = %e, "cannot remove the run folder");
            }
            ssh.close();
        }
    }

    fn log_path(&self, id: u64) -> Option<PathBuf> {
        self.nodes.get(&id).map(|n| n.local_log.clone())
    }
}

impl Drop for RemoteProcesses {
    fn drop(&mut self) {
        if !self.fetched {
            self.shutdown(Duration::from_secs(1));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quoting_survives_any_text() {
        assert_eq!(quote("a b"), "'a b'");
        assert_eq!(quote("it's"), "'it'\\''s'");
    }

    #[test]
    fn options_reach_the_ssh_command_line() {
        let host = SshHost {
            address: "198.18.0.11".into(),
            user: Some("root".into()),
            port: Some(2222),
            key: Some("/k".into()),
        };
        let ssh = Ssh::new(host, Path::new("/run/x"), Some("/kh".into()));
        let line = ssh.prefix().join(" ");
        for part in [
            "-p 2222",
            "-i /k",
            "UserKnownHostsFile=/kh",
            "ControlPath=/run/x/198.18.0.11-2222",
            "root@198.18.0.11",
        ] {
            assert!(line.contains(part), "{part} in {line}");
        }
        assert!(line.ends_with("root@198.18.0.11"));
    }
}
