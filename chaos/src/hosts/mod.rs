//! Where nodes run: local child processes on loopback (one address for all, or one per node when kernel rules
//! must tell nodes apart), or network namespaces of their own ([`netns`]). A host backend decides each node's
//! address and how its process is started; everything else (signals, logs, data) is the supervisor's.

pub mod netns;
pub mod ssh;

use crate::faults::network::nftables;
use crate::plan::{HostsKind, NetworkBackendKind, Plan};
use std::net::{IpAddr, Ipv4Addr, TcpListener, UdpSocket};

/// A port below the ephemeral range that is free for both TCP and UDP on `ip` (nodes use one or both).
///
/// Ports in 32768–60999 are handed to outgoing connections, and a restarted node could then find its own port
/// taken (FIELD-NOTES), so ports come from 20000–31999, spread by process id.
pub fn free_port(ip: IpAddr) -> u16 {
    use std::sync::atomic::{AtomicU32, Ordering};
    static NEXT: AtomicU32 = AtomicU32::new(0);
    loop {
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        let port = 20_000
            + ((std::process::id().wrapping_mul(7_919)).wrapping_add(n.wrapping_mul(104_729))
                % 12_000) as u16;
        let tcp = TcpListener::bind((ip, port)).is_ok();
        if tcp && UdpSocket::bind((ip, port)).is_ok() {
            return port;
        }
    }
}

/// How the run places its nodes.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Placement {
    /// Every node on 127.0.0.1.
    SharedLoopback,
    /// Node i on 127.0.0.(10 + i), so kernel rules can tell nodes apart by address.
    LoopbackPerNode,
    /// Node i in its own network namespace.
    Namespaces,
    /// Node i on the i-th SSH machine.
    Ssh,
}

impl Placement {
    /// The placement `plan` needs.
    pub fn for_plan(plan: &Plan) -> Placement {
        let kernel_rules =
            plan.needs_network() && plan.cluster.network_backend() == NetworkBackendKind::Nftables;
        match plan.cluster.hosts {
            HostsKind::Netns => Placement::Namespaces,
            HostsKind::Ssh => Placement::Ssh,
            HostsKind::Local if kernel_rules => Placement::LoopbackPerNode,
            HostsKind::Local => Placement::SharedLoopback,
        }
    }

    /// The loopback address of node `id` for the local placements.
    pub fn loopback_ip(self, id: u64) -> Ipv4Addr {
        match self {
            Placement::LoopbackPerNode => nftables::node_ip(id),
            _ => Ipv4Addr::LOCALHOST,
        }
    }
}
