//! Network faults: `partition` (cut directed links in the shape of a topology) and `packet` (degrade the links
//! of the targets: loss, delay, jitter, duplication, reordering, rate limit). Faults in force are merged into
//! one set of degraded links (a cut wins over a degradation) and pushed to a backend: the relay mesh
//! ([`relay`]: userspace UDP relays, every packet fault, no privileges) or kernel rules ([`nftables`]: cuts and
//! loss between per-node addresses; root).

pub mod nftables;
pub mod relay;
pub mod topology;

use crate::plan::Dur;
use std::collections::BTreeMap;
use std::time::Duration;
use topology::{Cuts, Topology};

/// Clients appear in links as ids above this: client `i` (0-based) is `CLIENT_ID_BASE + 1 + i`, so a link
/// map can hold node–node and node–client links alike. Only the nftables backend can carry client links
/// (each client sends from a loopback address of its own; see [`nftables::client_ip`]).
pub const CLIENT_ID_BASE: u64 = 1000;

/// The link id of client `index` (0-based).
pub fn client_id(index: usize) -> u64 {
    CLIENT_ID_BASE + 1 + index as u64
}

/// Whether link id `id` is a client.
pub fn is_client(id: u64) -> bool {
    id > CLIENT_ID_BASE
}

/// What a partition does to the links between clients and nodes.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Deserialize, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum ClientLinks {
    /// Clients reach every node (the default).
    #[default]
    Untouched,
    /// Each client has a home node (client i on node i mod n, in id order) and loses every link its home node
    /// lost: a client stays with the old leader when the leader is cut off, while others reach the new one.
    Follow,
}

impl ClientLinks {
    fn is_untouched(&self) -> bool {
        *self == ClientLinks::Untouched
    }
}

/// Which links of its targets a packet fault degrades.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Deserialize, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum PacketLinks {
    /// Links to and from the other nodes (the default).
    #[default]
    Peers,
    /// Links to and from every client.
    Clients,
    /// Only the links from the targets to the clients: requests arrive and are carried out, their answers are
    /// lost (the client must treat the outcome as unknown and retry).
    Answers,
    /// Peers and clients.
    All,
}

impl PacketLinks {
    fn is_peers(&self) -> bool {
        *self == PacketLinks::Peers
    }
}

/// The plan kinds of this family.
pub const KINDS: [&str; 2] = ["partition", "packet"];

/// How a directed link is degraded.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct LinkDegradation {
    /// Drop everything (partition).
    pub cut: bool,
    /// Fraction dropped.
    pub loss: f64,
    /// Added delay.
    pub delay: Duration,
    /// Extra random delay in [0, jitter].
    pub jitter: Duration,
    /// Fraction duplicated.
    pub duplicate: f64,
    /// Fraction held back so later packets overtake them.
    pub reorder: f64,
    /// Bandwidth limit in bytes per second.
    pub rate_limit_bytes_per_s: Option<u64>,
}

/// Where network faults are applied.
pub trait NetworkBackend: std::fmt::Debug + Send {
    /// Makes exactly these links degraded (all others healthy). An error means the links are not as asked:
    /// the run cannot go on pretending they are.
    fn apply(&mut self, links: &BTreeMap<(u64, u64), LinkDegradation>) -> Result<(), String>;
    /// Lets faults reach node `id`, which joined at run time at `ip` (membership faults). Backends that
    /// cannot (validation keeps them apart from membership faults) keep the default, which refuses.
    fn add_node(&mut self, id: u64, ip: std::net::Ipv4Addr) -> Result<(), String> {
        Err(format!(
            "this network backend cannot add node {id} ({ip}) at run time; use cluster.network = \"nftables\""
        ))
    }
}

/// A partition's plan fields.
#[derive(Clone, Debug, PartialEq, serde::Deserialize, serde::Serialize)]
#[serde(deny_unknown_fields)]
pub struct PartitionFault {
    /// The shape (isolate cuts off the target; one-way deafens the target).
    pub topology: Topology,
    /// With topology "groups": the groups, by node id.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub groups: Vec<Vec<u64>>,
    /// What happens to the clients' links.
    #[serde(default, skip_serializing_if = "ClientLinks::is_untouched")]
    pub clients: ClientLinks,
}

/// A packet fault's plan fields (at least one).
#[derive(Clone, Debug, Default, PartialEq, serde::Deserialize, serde::Serialize)]
#[serde(deny_unknown_fields)]
pub struct PacketFault {
    /// Fraction of packets dropped.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub loss: Option<f64>,
    /// Added one-way delay.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub delay: Option<Dur>,
    /// Extra random delay, uniform in [0, jitter].
    #[serde(skip_serializing_if = "Option::is_none")]
    pub jitter: Option<Dur>,
    /// Fraction of packets duplicated.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub duplicate: Option<f64>,
    /// Fraction of packets held back so later ones overtake them.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reorder: Option<f64>,
    /// Bandwidth limit in bytes per second.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rate_limit_bytes_per_s: Option<u64>,
    /// Which of the targets' links: "peers", "clients", "answers" or "all".
    #[serde(default, skip_serializing_if = "PacketLinks::is_peers")]
    pub links: PacketLinks,
}

impl PartitionFault {
    /// Whether it touches client links.
    pub fn touches_clients(&self) -> bool {
        !self.clients.is_untouched()
    }

    /// The client links cut along with the node links `cuts`: each client loses what its home node lost.
    pub fn client_cuts(&self, cuts: &Cuts, all: &[u64], clients: &[u64]) -> Cuts {
        let mut out = Cuts::new();
        if self.clients == ClientLinks::Untouched || all.is_empty() {
            return out;
        }
        for (i, &client) in clients.iter().enumerate() {
            let home = all[i % all.len()];
            for &node in all.iter().filter(|&&n| n != home) {
                if cuts.contains(&(home, node)) || cuts.contains(&(node, home)) {
                    out.insert((client, node));
                    out.insert((node, client));
                }
            }
        }
        out
    }

    /// Checks the topology against the cluster's size.
    pub fn validate(&self, nodes: usize) -> Result<(), (&'static str, String)> {
        match self.topology {
            Topology::Groups => {
                let mut seen = std::collections::BTreeSet::new();
                for id in self.groups.iter().flatten() {
                    if *id == 0 || *id as usize > nodes || !seen.insert(*id) {
                        return Err((
                            "groups",
                            format!("node {id} is out of range 1..={nodes} or listed twice"),
                        ));
                    }
                }
                if self.groups.len() < 2 {
                    return Err((
                        "groups",
                        "expected at least two groups, e.g. [[1, 2], [3]]".into(),
                    ));
                }
            }
            Topology::MajoritiesRing if nodes < 5 => {
                return Err((
                    "topology",
                    format!("majorities-ring needs at least 5 nodes, the cluster has {nodes}"),
                ))
            }
            Topology::Minority if nodes < 3 => {
                return Err((
                    "topology",
                    format!("minority needs at least 3 nodes, the cluster has {nodes}"),
                ))
            }
            Topology::Bridge if nodes < 3 => {
                return Err((
                    "topology",
                    format!("bridge needs at least 3 nodes, the cluster has {nodes}"),
                ))
            }
            _ if !self.groups.is_empty() => {
                return Err(("groups", "only used with topology = \"groups\"".into()))
            }
            _ => {}
        }
        Ok(())
    }

    /// The links this partition cuts, given the nodes it was resolved to (see the schedule) and every node.
    pub fn cuts(&self, resolved: &[u64], all: &[u64]) -> Cuts {
        match self.topology {
            Topology::Isolate => resolved
                .iter()
                .flat_map(|&n| topology::isolate(all, n))
                .collect(),
            Topology::Halves => topology::halves(all),
            Topology::RandomHalves => {
                let rest: Vec<u64> = all
                    .iter()
                    .copied()
                    .filter(|n| !resolved.contains(n))
                    .collect();
                topology::groups(&[resolved.to_vec(), rest])
            }
            Topology::MajoritiesRing => topology::majorities_ring(resolved).unwrap_or_default(),
            Topology::Bridge => topology::bridge(resolved).unwrap_or_default(),
            Topology::OneWay => topology::one_way(all, resolved),
            Topology::Groups => topology::groups(&self.groups),
            Topology::Minority => {
                let side = self.hit(resolved, all);
                let rest: Vec<u64> = all.iter().copied().filter(|n| !side.contains(n)).collect();
                if side.is_empty() {
                    Cuts::new() // No target (every target was down): nothing to cut.
                } else {
                    topology::groups(&[side, rest])
                }
            }
        }
    }

    /// The nodes the partition puts on the side it is aimed at, as events report them: the whole minority side
    /// for `minority`, the resolved targets otherwise.
    pub fn hit(&self, resolved: &[u64], all: &[u64]) -> Vec<u64> {
        match (&self.topology, resolved.first()) {
            (Topology::Minority, Some(&target)) => topology::minority_side(all, target),
            _ => resolved.to_vec(),
        }
    }
}

impl PacketFault {
    /// The degradation of every link of the targets.
    pub fn degradation(&self) -> LinkDegradation {
        LinkDegradation {
            cut: false,
            loss: self.loss.unwrap_or(0.0),
            delay: self.delay.map_or(Duration::ZERO, |d| d.0),
            jitter: self.jitter.map_or(Duration::ZERO, |d| d.0),
            duplicate: self.duplicate.unwrap_or(0.0),
            reorder: self.reorder.unwrap_or(0.0),
            rate_limit_bytes_per_s: self.rate_limit_bytes_per_s,
        }
    }

    /// Whether the fault only drops packets (which kernel rules can do without netem).
    pub fn only_loss(&self) -> bool {
        PacketFault {
            loss: None,
            links: PacketLinks::Peers,
            ..self.clone()
        } == PacketFault::default()
    }

    /// Checks the values against what the relay can honour (its own limits, so validate and run agree).
    pub fn validate(&self) -> Result<(), (&'static str, String)> {
        if (PacketFault {
            links: PacketLinks::Peers,
            ..self.clone()
        }) == PacketFault::default()
        {
            return Err((
                "loss",
                "a packet fault needs at least one of loss, delay, jitter, duplicate, reorder, \
                 rate_limit_bytes_per_s"
                    .into(),
            ));
        }
        for (name, fraction) in [
            ("loss", self.loss),
            ("duplicate", self.duplicate),
            ("reorder", self.reorder),
        ] {
            if let Some(x) = fraction {
                if !(0.0..=1.0).contains(&x) {
                    return Err((
                        name,
                        format!("expected a fraction between 0 and 1, got {x}"),
                    ));
                }
            }
        }
        relay::link_fault(&self.degradation())
            .validate()
            .map_err(|e| {
                let field = match &e {
                    netproxy::FaultError::Invalid { field, .. } if field.starts_with("rate") => {
                        "rate_limit_bytes_per_s"
                    }
                    netproxy::FaultError::Invalid { field, .. } if *field == "jitter" => "jitter",
                    _ => "delay",
                };
                (field, format!("the relay cannot do this: {e}"))
            })
    }

    /// Whether it touches client links.
    pub fn touches_clients(&self) -> bool {
        !self.links.is_peers()
    }

    /// The links a packet fault on `targets` degrades: the links to and from each target, among the nodes
    /// (`all`) and the clients as `links` says.
    pub fn links(
        &self,
        targets: &[u64],
        all: &[u64],
        clients: &[u64],
    ) -> BTreeMap<(u64, u64), LinkDegradation> {
        let d = self.degradation();
        let mut links = BTreeMap::new();
        for &t in targets {
            if matches!(self.links, PacketLinks::Peers | PacketLinks::All) {
                for &other in all.iter().filter(|&&o| o != t) {
                    links.insert((t, other), d);
                    links.insert((other, t), d);
                }
            }
            for &c in clients {
                match self.links {
                    PacketLinks::Peers => {}
                    PacketLinks::Answers => {
                        links.insert((t, c), d);
                    }
                    PacketLinks::Clients | PacketLinks::All => {
                        links.insert((t, c), d);
                        links.insert((c, t), d);
                    }
                }
            }
        }
        links
    }
}

/// The network faults in force and the backend they are pushed to.
#[derive(Debug)]
pub struct NetworkNemesis {
    backend: Box<dyn NetworkBackend>,
    in_force: BTreeMap<usize, BTreeMap<(u64, u64), LinkDegradation>>,
}

impl NetworkNemesis {
    /// Network faults through `backend` (all links healthy).
    pub fn new(backend: Box<dyn NetworkBackend>) -> NetworkNemesis {
        NetworkNemesis {
            backend,
            in_force: BTreeMap::new(),
        }
    }

    /// Starts fault `id` degrading `links`.
    pub fn start(
        &mut self,
        id: usize,
        links: BTreeMap<(u64, u64), LinkDegradation>,
    ) -> Result<(), String> {
        self.in_force.insert(id, links);
        self.push()
    }

    /// Lets faults reach node `id`, which joined at run time at `ip`.
    pub fn add_node(&mut self, id: u64, ip: std::net::Ipv4Addr) -> Result<(), String> {
        self.backend.add_node(id, ip)
    }

    /// Ends fault `id`.
    pub fn end(&mut self, id: usize) -> Result<(), String> {
        if self.in_force.remove(&id).is_some() {
            self.push()?;
        }
        Ok(())
    }

    /// Heals every link.
    pub fn heal(&mut self) -> Result<(), String> {
        self.in_force.clear();
        self.push()
    }

    /// Pushes the union of the faults in force (a cut wins over a degradation).
    fn push(&mut self) -> Result<(), String> {
        self.backend.apply(&merge(self.in_force.values()))
    }
}

/// The union of several faults' links: a cut wins, otherwise the later degradation.
pub fn merge<'a>(
    faults: impl Iterator<Item = &'a BTreeMap<(u64, u64), LinkDegradation>>,
) -> BTreeMap<(u64, u64), LinkDegradation> {
    let mut merged: BTreeMap<(u64, u64), LinkDegradation> = BTreeMap::new();
    for links in faults {
        for (link, d) in links {
            let entry = merged.entry(*link).or_default();
            *entry = if d.cut || entry.cut {
                LinkDegradation {
                    cut: true,
                    ..*entry
                }
            } else {
                *d
            };
        }
    }
    merged
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_cut_wins_over_a_degradation() {
        let cut = LinkDegradation {
            cut: true,
            ..LinkDegradation::default()
        };
        let slow = LinkDegradation {
            delay: Duration::from_millis(5),
            ..LinkDegradation::default()
        };
        let a = BTreeMap::from([((1, 2), cut)]);
        let b = BTreeMap::from([((1, 2), slow), ((2, 1), slow)]);
        let merged = merge([&a, &b].into_iter());
        assert!(merged[&(1, 2)].cut);
        assert_eq!(merged[&(2, 1)], slow);
    }

    #[test]
    fn packet_values_beyond_the_relay_are_refused() {
        let far = PacketFault {
            delay: Some(Dur(Duration::from_secs(3_000_000))),
            ..PacketFault::default()
        };
        let (field, message) = far.validate().unwrap_err();
        assert_eq!(field, "delay");
        assert!(message.contains("relay cannot"), "{message}");
        let zero_rate = PacketFault {
            rate_limit_bytes_per_s: Some(0),
            ..PacketFault::default()
        };
        assert_eq!(
            zero_rate.validate().unwrap_err().0,
            "rate_limit_bytes_per_s"
        );
        assert!(PacketFault::default().validate().is_err());
        let loss = PacketFault {
            loss: Some(0.2),
            ..PacketFault::default()
        };
        assert!(loss.validate().is_ok() && loss.only_loss());
    }

    #[test]
    fn clients_follow_their_home_node_and_answers_drop_one_way() {
        let all = [1, 2, 3];
        let clients: Vec<u64> = (0..4).map(client_id).collect();
        let p = PartitionFault {
            topology: Topology::Isolate,
            groups: Vec::new(),
            clients: ClientLinks::Follow,
        };
        let cuts = p.cuts(&[2], &all);
        let client_cuts = p.client_cuts(&cuts, &all, &clients);
        // Client 0 and 3 live on n1, client 1 on n2 (the isolated node), client 2 on n3.
        let (c0, c1, c2, c3) = (clients[0], clients[1], clients[2], clients[3]);
        let expected: Cuts = [
            (c0, 2),
            (2, c0),
            (c3, 2),
            (2, c3),
            (c2, 2),
            (2, c2),
            (c1, 1),
            (1, c1),
            (c1, 3),
            (3, c1),
        ]
        .into_iter()
        .collect();
        assert_eq!(client_cuts, expected);
        let untouched = PartitionFault {
            clients: ClientLinks::Untouched,
            ..p.clone()
        };
        assert!(untouched.client_cuts(&cuts, &all, &clients).is_empty());

        let answers = PacketFault {
            loss: Some(1.0),
            links: PacketLinks::Answers,
            ..PacketFault::default()
        };
        let links = answers.links(&[2], &all, &clients[..2]);
        let keys: Vec<(u64, u64)> = links.keys().copied().collect();
        assert_eq!(
            keys,
            vec![(2, c0), (2, c1)],
            "only node->client, no peer links"
        );
        assert!(answers.only_loss(), "links are not a packet effect");
        assert_eq!(answers.validate(), Ok(()));
        assert!(answers.touches_clients());
        let both = PacketFault {
            links: PacketLinks::All,
            ..answers
        };
        assert_eq!(both.links(&[2], &all, &clients[..1]).len(), 4 + 2);
    }
}
