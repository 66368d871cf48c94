//! Partition topologies, as in Jepsen: pure functions from node ids to the set of directed links to cut.
//!
//! A cut link `(a, b)` drops every packet from `a` to `b`. QUIC needs both directions, so symmetric topologies
//! cut both; `one-way` cuts one direction only (the receiving side still sends, but hears nothing back).

use rand::seq::SliceRandom;
use rand::Rng;
use std::collections::BTreeSet;

/// Directed links to cut.
pub type Cuts = BTreeSet<(u64, u64)>;

/// The partition shapes a plan can ask for.
#[derive(Clone, PartialEq, Eq, Debug, serde::Deserialize, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Topology {
    /// One node (the fault's target) cut off from all others.
    Isolate,
    /// The first half of the nodes (by id) against the rest.
    Halves,
    /// A random half against the rest.
    RandomHalves,
    /// Nodes on a ring, each seeing only its nearest neighbours: every node sees a majority, no two see the
    /// same one (needs at least 5 nodes).
    MajoritiesRing,
    /// Two halves that only one node (the bridge) connects.
    Bridge,
    /// A random minority hears nothing from the others, while its own packets still reach them.
    OneWay,
    /// The plan's own groups.
    Groups,
    /// The largest minority, holding the fault's target (e.g. the leader) and the nodes after it by id
    /// (wrapping), against the majority: the failover case of a leader cut off on the minority side.
    Minority,
}

impl Topology {
    /// The name used in plans and events.
    pub fn name(&self) -> &'static str {
        match self {
            Topology::Isolate => "isolate",
            Topology::Halves => "halves",
            Topology::RandomHalves => "random-halves",
            Topology::MajoritiesRing => "majorities-ring",
            Topology::Bridge => "bridge",
            Topology::OneWay => "one-way",
            Topology::Groups => "groups",
            Topology::Minority => "minority",
        }
    }
}

/// Cuts every link between different groups, both ways.
pub fn groups(groups: &[Vec<u64>]) -> Cuts {
    let mut cuts = Cuts::new();
    for (i, a) in groups.iter().enumerate() {
        for (j, b) in groups.iter().enumerate() {
            if i != j {
                for &x in a {
                    for &y in b {
                        cuts.insert((x, y));
                    }
                }
            }
        }
    }
    cuts
}

/// Cuts `node` off from every other node.
pub fn isolate(nodes: &[u64], node: u64) -> Cuts {
    let rest: Vec<u64> = nodes.iter().copied().filter(|&n| n != node).collect();
    groups(&[vec![node], rest])
}

/// The minority side holding `target`: `target` and the nodes after it in `nodes` (wrapping), `(len - 1) / 2`
/// of them, so the rest is a majority. Deterministic, so a timeline replays.
pub fn minority_side(nodes: &[u64], target: u64) -> Vec<u64> {
    let size = nodes.len().saturating_sub(1) / 2;
    let at = nodes.iter().position(|&n| n == target).unwrap_or(0);
    let mut side: Vec<u64> = nodes.iter().cycle().skip(at).take(size).copied().collect();
    side.sort_unstable();
    side
}

/// The first `len / 2` nodes against the rest (the second group is the majority).
pub fn halves(nodes: &[u64]) -> Cuts {
    let (a, b) = nodes.split_at(nodes.len() / 2);
    groups(&[a.to_vec(), b.to_vec()])
}

/// A random half against the rest.
pub fn random_halves(nodes: &[u64], rng: &mut impl Rng) -> Cuts {
    let mut shuffled = nodes.to_vec();
    shuffled.shuffle(rng);
    let (a, b) = shuffled.split_at(nodes.len() / 2);
    groups(&[a.to_vec(), b.to_vec()])
}

fn ring_distance(a: usize, b: usize, n: usize) -> usize {
    let d = a.abs_diff(b);
    d.min(n - d)
}

/// Nodes on a ring (in the given order); two nodes stay connected only if they are within `d` places, `d` the
/// smallest reach that lets every node see a majority (itself included). Needs at least 5 nodes: with 3, every
/// node must see everyone.
pub fn majorities_ring(nodes: &[u64]) -> Result<Cuts, String> {
    let n = nodes.len();
    if n < 5 {
        return Err(format!(
            "majorities-ring needs at least 5 nodes, the cluster has {n}"
        ));
    }
    let majority = n / 2 + 1;
    let reach = (majority - 1).div_ceil(2);
    let mut cuts = Cuts::new();
    for (i, &a) in nodes.iter().enumerate() {
        for (j, &b) in nodes.iter().enumerate() {
            if i != j && ring_distance(i, j, n) > reach {
                cuts.insert((a, b));
            }
        }
    }
    Ok(cuts)
}

/// Two halves joined by one bridge node (the middle one): each half talks to the bridge, not to the other half.
pub fn bridge(nodes: &[u64]) -> Result<Cuts, String> {
    let n = nodes.len();
    if n < 3 {
        return Err(format!(
            "bridge needs at least 3 nodes, the cluster has {n}"
        ));
    }
    let mid = n / 2;
    let (left, right) = (&nodes[..mid], &nodes[mid + 1..]);
    let mut cuts = Cuts::new();
    for &a in left {
        for &b in right {
            cuts.insert((a, b));
            cuts.insert((b, a));
        }
    }
    Ok(cuts)
}

/// The `deaf` nodes receive nothing from the others; what they send still arrives.
pub fn one_way(nodes: &[u64], deaf: &[u64]) -> Cuts {
    let mut cuts = Cuts::new();
    for &to in deaf {
        for &from in nodes {
            if !deaf.contains(&from) {
                cuts.insert((from, to));
            }
        }
    }
    cuts
}

/// Who can reach whom: `matrix[i][j]` is whether node `nodes[i]` reaches `nodes[j]` (for tests and reports).
pub fn reachability(nodes: &[u64], cuts: &Cuts) -> Vec<Vec<bool>> {
    nodes
        .iter()
        .map(|&a| {
            nodes
                .iter()
                .map(|&b| a == b || !cuts.contains(&(a, b)))
                .collect()
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    fn sees(nodes: &[u64], cuts: &Cuts, a: u64) -> BTreeSet<u64> {
        nodes
            .iter()
            .copied()
            .filter(|&b| a == b || (!cuts.contains(&(a, b)) && !cuts.contains(&(b, a))))
            .collect()
    }

    #[test]
    fn the_minority_side_holds_the_target_and_wraps() {
        let five = [1, 2, 3, 4, 5];
        assert_eq!(minority_side(&five, 2), vec![2, 3]);
        assert_eq!(minority_side(&five, 5), vec![1, 5]);
        assert_eq!(minority_side(&[1, 2, 3], 3), vec![3]);
        assert_eq!(minority_side(&[1, 2, 3, 4], 4), vec![4]);
        let cuts = groups(&[minority_side(&five, 5), vec![2, 3, 4]]);
        assert!(cuts.contains(&(5, 4)) && cuts.contains(&(1, 2)));
        assert!(!cuts.contains(&(1, 5)) && !cuts.contains(&(2, 3)));
    }

    #[test]
    fn majorities_ring_every_node_sees_a_majority_and_no_two_the_same() {
        for n in [5u64, 7, 9] {
            let nodes: Vec<u64> = (1..=n).collect();
            let cuts = majorities_ring(&nodes).unwrap();
            let majority = n as usize / 2 + 1;
            let mut seen = BTreeSet::new();
            for &a in &nodes {
                let view = sees(&nodes, &cuts, a);
                assert!(view.len() >= majority, "n={n}: node {a} sees {view:?}");
                assert!(
                    view.len() < n as usize,
                    "n={n}: node {a} must not see everyone"
                );
                assert!(
                    seen.insert(view.clone()),
                    "n={n}: two nodes see the same majority {view:?}"
                );
            }
        }
        assert_eq!(
            reachability(
                &[1, 2, 3, 4, 5],
                &majorities_ring(&[1, 2, 3, 4, 5]).unwrap()
            ),
            vec![
                vec![true, true, false, false, true],
                vec![true, true, true, false, false],
                vec![false, true, true, true, false],
                vec![false, false, true, true, true],
                vec![true, false, false, true, true],
            ]
        );
        assert!(majorities_ring(&[1, 2, 3]).is_err());
    }

    #[test]
    fn bridge_joins_two_halves_through_one_node() {
        let nodes = [1, 2, 3, 4, 5];
        let m = reachability(&nodes, &bridge(&nodes).unwrap());
        assert_eq!(
            m,
            vec![
                vec![true, true, true, false, false],
                vec![true, true, true, false, false],
                vec![true, true, true, true, true],
                vec![false, false, true, true, true],
                vec![false, false, true, true, true],
            ]
        );
    }

    #[test]
    fn one_way_cuts_only_the_incoming_direction() {
        let nodes = [1, 2, 3];
        let m = reachability(&nodes, &one_way(&nodes, &[1]));
        assert_eq!(
            m,
            vec![
                vec![true, true, true],
                vec![false, true, true],
                vec![false, true, true]
            ]
        );
    }

    #[test]
    fn isolate_halves_and_random_halves() {
        let nodes = [1, 2, 3, 4, 5];
        assert_eq!(sees(&nodes, &isolate(&nodes, 3), 3), BTreeSet::from([3]));
        assert_eq!(
            sees(&nodes, &isolate(&nodes, 3), 1),
            BTreeSet::from([1, 2, 4, 5])
        );
        assert_eq!(sees(&nodes, &halves(&nodes), 1), BTreeSet::from([1, 2]));
        assert_eq!(sees(&nodes, &halves(&nodes), 5), BTreeSet::from([3, 4, 5]));
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(3);
        let cuts = random_halves(&nodes, &mut rng);
        let sizes: BTreeSet<usize> = nodes
            .iter()
            .map(|&a| sees(&nodes, &cuts, a).len())
            .collect();
        assert_eq!(sizes, BTreeSet::from([2, 3]));
    }
}
