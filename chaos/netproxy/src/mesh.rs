//! One relay per ordered pair of nodes (and optional client relays), sharing one fault table.

use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::Arc;

use crate::endpoint::{ClientId, Endpoint, Link, NodeId};
use crate::relay::{Relay, RelayConfig, RelayError, RelaySpec, RelayStats};
use crate::table::{FaultTable, LinkCounters};

/// Settings of a mesh.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MeshConfig {
    /// Settings of every relay, including the run's seed.
    pub relay: RelayConfig,
    /// Address relays listen on (port 0 each; default 127.0.0.1).
    pub listen_ip: IpAddr,
}

impl Default for MeshConfig {
    fn default() -> Self {
        MeshConfig {
            relay: RelayConfig::default(),
            listen_ip: IpAddr::V4(Ipv4Addr::LOCALHOST),
        }
    }
}

/// Relays on every directed node-to-node link of a cluster.
///
/// Node `i` must be configured to reach node `j` at [`RelayMesh::addr_for`]`(i, j)`, the relay R(i,j),
/// which forwards to `j`'s real address. Node `i`'s own socket then carries its connection to `j` through
/// R(i,j) and `j`'s connection to `i` through R(j,i), and a fault on the link `i → j` in
/// [`RelayMesh::faults`] applies to `i`'s packets on both.
#[derive(Debug)]
pub struct RelayMesh {
    table: Arc<FaultTable>,
    config: MeshConfig,
    nodes: BTreeMap<NodeId, SocketAddr>,
    /// R(i,j) keyed by (i, j).
    peer_relays: BTreeMap<(NodeId, NodeId), Relay>,
    /// Client relays keyed by (client label, node).
    client_relays: BTreeMap<(ClientId, NodeId), Relay>,
}

impl RelayMesh {
    /// Starts relays between every ordered pair of `nodes` (id and real address), with a new fault table.
    ///
    /// # Panics
    /// Outside a tokio runtime: the relays register their sockets with, and spawn their tasks on, the
    /// caller's.
    pub fn start<I: Into<NodeId> + Copy>(
        nodes: &[(I, SocketAddr)],
        config: MeshConfig,
    ) -> Result<RelayMesh, RelayError> {
        let mut mesh = RelayMesh::empty(Arc::new(FaultTable::new()), config)?;
        for &(id, addr) in nodes {
            mesh.add_node(id, addr)?;
        }
        Ok(mesh)
    }

    /// A mesh without nodes yet, using `table` for its faults (for example one shared with other relays).
    pub fn empty(table: Arc<FaultTable>, config: MeshConfig) -> Result<RelayMesh, RelayError> {
        config.relay.validate()?;
        Ok(RelayMesh {
            table,
            config,
            nodes: BTreeMap::new(),
            peer_relays: BTreeMap::new(),
            client_relays: BTreeMap::new(),
        })
    }

    /// Adds a node (a cluster member joining): starts the relays between it and every node already in.
    pub fn add_node(&mut self, id: impl Into<NodeId>, addr: SocketAddr) -> Result<(), RelayError> {
        let id = id.into();
        if self.nodes.contains_key(&id) {
            return Err(RelayError::DuplicateNode(id));
        }
        // Start every new relay before recording any, so a failure leaves the mesh as it was (the relays
        // started so far are dropped, which aborts their tasks).
        let mut started = Vec::new();
        for (&other, &other_addr) in &self.nodes {
            for (from, to, to_addr) in [(id, other, other_addr), (other, id, addr)] {
                started.push(((from, to), self.relay(Endpoint::Node(from), to, to_addr)?));
            }
        }
        self.peer_relays.extend(started);
        self.nodes.insert(id, addr);
        Ok(())
    }

    /// Starts a relay through which clients labelled `client` reach `node`, and returns its address.
    /// Packets through it travel `Client(client) → Node(node)` and back; each client socket gets its own
    /// upstream socket. Asking twice returns the same relay.
    pub fn add_client_relay(
        &mut self,
        client: ClientId,
        node: impl Into<NodeId>,
    ) -> Result<SocketAddr, RelayError> {
        let node = node.into();
        if let Some(relay) = self.client_relays.get(&(client, node)) {
            return Ok(relay.local_addr());
        }
        let addr = *self.nodes.get(&node).ok_or(RelayError::UnknownNode(node))?;
        let relay = self.relay(Endpoint::Client(client), node, addr)?;
        let local = relay.local_addr();
        self.client_relays.insert((client, node), relay);
        Ok(local)
    }

    fn relay(
        &self,
        downstream: Endpoint,
        upstream: NodeId,
        upstream_addr: SocketAddr,
    ) -> Result<Relay, RelayError> {
        let spec = RelaySpec {
            listen: SocketAddr::new(self.config.listen_ip, 0),
            downstream,
            upstream: Endpoint::Node(upstream),
            upstream_addr,
        };
        Relay::start(spec, self.table.clone(), &self.config.relay)
    }

    /// The address node `from` must use to reach node `to` (the relay R(from, to)).
    pub fn addr_for(&self, from: impl Into<NodeId>, to: impl Into<NodeId>) -> Option<SocketAddr> {
        self.peer_relays
            .get(&(from.into(), to.into()))
            .map(Relay::local_addr)
    }

    /// Every peer of `node` with the address `node` must use for it.
    pub fn peer_addrs(&self, node: impl Into<NodeId>) -> BTreeMap<NodeId, SocketAddr> {
        let node = node.into();
        self.peer_relays
            .range((node, NodeId(u64::MIN))..=(node, NodeId(u64::MAX)))
            .map(|(&(_, to), relay)| (to, relay.local_addr()))
            .collect()
    }

    /// The address of the client relay of `client` in front of `node`, if one was added.
    pub fn client_addr(&self, client: ClientId, node: impl Into<NodeId>) -> Option<SocketAddr> {
        self.client_relays
            .get(&(client, node.into()))
            .map(Relay::local_addr)
    }

    /// The nodes and their real addresses.
    pub fn nodes(&self) -> &BTreeMap<NodeId, SocketAddr> {
        &self.nodes
    }

    /// The shared fault table: set, clear and heal faults here while the mesh runs.
    pub fn faults(&self) -> &Arc<FaultTable> {
        &self.table
    }

    /// Cuts `node` off from every other node of the mesh, both ways (clients unaffected).
    pub fn isolate(&self, node: impl Into<NodeId>) {
        let node = node.into();
        for &other in self.nodes.keys().filter(|&&other| other != node) {
            self.table.partition(node, other);
        }
    }

    /// Splits the nodes into groups that cannot reach each other, both ways; nodes in no group keep their
    /// links as they are.
    pub fn partition_groups<I: Into<NodeId> + Copy>(&self, groups: &[&[I]]) {
        for (g, group) in groups.iter().enumerate() {
            for other in &groups[g + 1..] {
                for &a in group.iter() {
                    for &b in other.iter() {
                        self.table.partition(a.into(), b.into());
                    }
                }
            }
        }
    }

    /// Counters of every link seen so far.
    pub fn counters(&self) -> BTreeMap<Link, LinkCounters> {
        self.table.all_counters()
    }

    /// Statistics of every relay, with what it connects.
    pub fn relay_stats(&self) -> Vec<(RelaySpec, RelayStats)> {
        self.peer_relays
            .values()
            .chain(self.client_relays.values())
            .map(|relay| (relay.spec(), relay.stats()))
            .collect()
    }

    /// Stops every relay and waits for their tasks, so all their sockets are closed on return.
    pub async fn shutdown(self) {
        for relay in self
            .peer_relays
            .into_values()
            .chain(self.client_relays.into_values())
        {
            relay.shutdown().await;
        }
    }
}
