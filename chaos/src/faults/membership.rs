//! Membership faults: changes of the cluster's membership made as an operator would, through the target's own
//! admin interface, interleaved with the other families' faults.
//!
//! - `add`: a fresh node with a new id (ids are never reused) joins through the targeted member;
//! - `remove`: the targeted member (random, leader, follower or named) is removed;
//! - `replace`: the targeted node (dead or alive) is removed and a fresh node joins in its place, as an
//!   operator replaces a failed machine; a dead old node that comes back must learn it was removed and exit;
//! - `wipe-rejoin`: the targeted node is removed, stopped, its data wiped, and it comes back under a new id.
//!
//! A change happens when the fault starts; its end does nothing. The runner keeps the intended membership
//! (what the operator did) and judges the cluster's final membership against it. A change that would leave
//! fewer than `min_members` members is skipped with a note rather than wedging the cluster. A removal the
//! cluster does not commit within `timeout` is judged by what the plan was doing to the members meanwhile:
//! if a majority of them had no fault of the plan in force, the cluster had what it needs and did not make
//! progress, which is a finding about the system (the change is recorded as stuck, and the run fails); if the
//! plan's faults left no such majority, the plan asked for something the run could not do: a tool error.

use crate::plan::Dur;
use crate::targets::MemberChange;
use serde::Deserialize as _;
use std::future::Future;
use std::time::{Duration, Instant};

/// The plan kinds of this family.
pub const KINDS: [&str; 4] = ["add", "remove", "replace", "wipe-rejoin"];

/// The fewest members a change may leave, unless the plan says otherwise.
pub const MIN_MEMBERS_DEFAULT: usize = 3;
/// How long a removal may take to commit, unless the plan says otherwise.
pub const TIMEOUT_DEFAULT: Duration = Duration::from_secs(20);
/// The most members a cluster may grow to (each is a process on this machine; plans allow 9 nodes).
pub const MEMBERS_MAX: usize = 9;

/// Which change.
#[derive(Clone, Copy, PartialEq, Eq, Debug, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum ChangeKind {
    /// A fresh node joins.
    Add,
    /// A member is removed.
    Remove,
    /// A member is removed and a fresh node joins.
    Replace,
    /// A member is removed, wiped, and rejoins under a new id.
    WipeRejoin,
}

/// A membership fault's plan fields.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct MembershipFault {
    /// Which change.
    #[serde(skip)]
    pub change: ChangeKind,
    /// A change that would leave fewer members is skipped (with a note).
    pub min_members: usize,
    /// How long a removal may take to commit.
    pub timeout: Dur,
}

#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct Fields {
    min_members: Option<usize>,
    timeout: Option<Dur>,
}

impl MembershipFault {
    /// Parses one of [`KINDS`].
    pub fn parse(kind: &str, rest: &toml::Table) -> Option<Result<MembershipFault, String>> {
        let change = match kind {
            "add" => ChangeKind::Add,
            "remove" => ChangeKind::Remove,
            "replace" => ChangeKind::Replace,
            "wipe-rejoin" => ChangeKind::WipeRejoin,
            _ => return None,
        };
        let fields = Fields::deserialize(toml::Value::Table(rest.clone())).map_err(|e| {
            format!(
                "{} (a {kind} fault takes min_members and timeout)",
                e.message()
            )
        });
        Some(fields.map(|f| MembershipFault {
            change,
            min_members: f.min_members.unwrap_or(MIN_MEMBERS_DEFAULT),
            timeout: f.timeout.unwrap_or(Dur(TIMEOUT_DEFAULT)),
        }))
    }

    /// The plan kind.
    pub fn name(&self) -> &'static str {
        match self.change {
            ChangeKind::Add => "add",
            ChangeKind::Remove => "remove",
            ChangeKind::Replace => "replace",
            ChangeKind::WipeRejoin => "wipe-rejoin",
        }
    }

    /// Checks the fields against the cluster's size: `(field, message)`.
    pub fn validate(&self, nodes: usize) -> Result<(), (&'static str, String)> {
        if self.min_members == 0 || self.min_members > nodes {
            return Err((
                "min_members",
                format!(
                    "expected 1 to {nodes} (the cluster's nodes), got {}: a change that would leave fewer members is skipped",
                    self.min_members
                ),
            ));
        }
        if self.timeout.0 < Duration::from_secs(1) {
            return Err((
                "timeout",
                format!("expected at least 1s, got {}", self.timeout),
            ));
        }
        Ok(())
    }
}

/// What the runner offers membership faults: the cluster as an operator sees it.
pub trait Operator {
    /// The nodes counted as members now.
    fn members(&self) -> Vec<u64>;
    /// A node id never used in this run.
    fn fresh_id(&self) -> u64;
    /// Starts a fresh node `id` that joins through member `via`.
    fn add(&mut self, id: u64, via: u64) -> Result<(), String>;
    /// Asks the cluster to remove `id` (bounded by `timeout`).
    fn remove(&mut self, id: u64, timeout: Duration) -> impl Future<Output = MemberChange>;
    /// Whether the leader's membership still holds `id` (None: no leader answered).
    fn is_member(&mut self, id: u64) -> impl Future<Output = Option<bool>>;
    /// Counts `id` out of the membership (its exit as removed is expected from now on).
    fn retire(&mut self, id: u64);
    /// Stops `id` for good and wipes its data.
    fn wipe(&mut self, id: u64) -> Result<(), String>;
    /// The nodes a fault of the plan in force has hit (a kill, pause, network, clock or disk fault that has not
    /// ended). A member that crashed on its own is not among them: that is the system's doing.
    fn disturbed(&self) -> Vec<u64>;
}

/// What one membership fault did.
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct Change {
    /// The node removed, if any.
    pub removed: Option<u64>,
    /// The node added, if any.
    pub added: Option<u64>,
    /// The member it joined through.
    pub via: Option<u64>,
    /// The intended membership after the change.
    pub members: Vec<u64>,
    /// Why nothing (or less) was done.
    pub note: Option<String>,
    /// A removal the cluster did not commit although a majority of the members ran undisturbed: what was seen
    /// (a finding about the system under test).
    pub stuck: Option<String>,
}

impl Change {
    /// The nodes it touched, for the event log.
    pub fn hit(&self) -> Vec<u64> {
        self.removed.into_iter().chain(self.added).collect()
    }
}

/// Carries out `fault` on the first of `targets` (for `add`: the member to join through); `draw` picks the
/// member a replacement joins through. `Err` is a tool error.
pub async fn apply(
    op: &mut impl Operator,
    fault: &MembershipFault,
    targets: &[u64],
    draw: u64,
) -> Result<Change, String> {
    let members = op.members();
    let skip = |note: String| Change {
        members: members.clone(),
        note: Some(note),
        ..Change::default()
    };
    let Some(&target) = targets.first() else {
        return Ok(skip("no target".into()));
    };
    if !members.contains(&target) {
        return Ok(skip(format!("n{target} is not a member")));
    }
    if let Some(why) = refusal(fault, members.len()) {
        return Ok(skip(why));
    }
    let mut change = Change::default();
    if fault.change == ChangeKind::Add {
        let id = op.fresh_id();
        op.add(id, target)?;
        change.added = Some(id);
        change.via = Some(target);
    } else {
        if let Err(not_committed) = remove(op, target, fault.timeout.0).await {
            let disturbed = op.disturbed();
            let members = op.members();
            let undisturbed: Vec<u64> = members
                .iter()
                .copied()
                .filter(|id| !disturbed.contains(id))
                .collect();
            if undisturbed.len() * 2 <= members.len() {
                return Err(format!(
                    "{not_committed}; the plan's faults left only {undisturbed:?} of the members {members:?} \
                     undisturbed, no majority, so the cluster could not be expected to commit it"
                ));
            }
            let stuck = format!(
                "{not_committed}, although {undisturbed:?} ({} of the {} members {members:?}) had no fault \
                 of the plan in force",
                undisturbed.len(),
                members.len()
            );
            return Ok(Change {
                members,
                note: Some("not committed: the membership is unchanged".into()),
                stuck: Some(stuck),
                ..Change::default()
            });
        }
        op.retire(target);
        change.removed = Some(target);
        if fault.change == ChangeKind::WipeRejoin {
            op.wipe(target)?;
        }
        if fault.change != ChangeKind::Remove {
            let rest = op.members();
            let via = rest[(draw % rest.len() as u64) as usize];
            let id = op.fresh_id();
            op.add(id, via)?;
            change.added = Some(id);
            change.via = Some(via);
        }
    }
    change.members = op.members();
    Ok(change)
}

/// Why a change would leave too few (or too many) members, if it would.
fn refusal(fault: &MembershipFault, members: usize) -> Option<String> {
    let (after, low) = match fault.change {
        ChangeKind::Add => (members + 1, members + 1),
        ChangeKind::Remove => (members - 1, members - 1),
        // Removed first, then replaced: one fewer for a while.
        ChangeKind::Replace | ChangeKind::WipeRejoin => (members, members - 1),
    };
    if after > MEMBERS_MAX {
        return Some(format!(
            "skipped: it would make {after} members (at most {MEMBERS_MAX})"
        ));
    }
    if after < fault.min_members || low == 0 {
        return Some(format!(
            "skipped: it would leave {} member(s) (min_members = {})",
            after.min(low),
            fault.min_members
        ));
    }
    None
}

/// How long one removal request may take before the operator looks at the membership and asks again.
const ATTEMPT_TIMEOUT: Duration = Duration::from_secs(4);

/// Removes `id`, asking again while the answer is uncertain or a refusal may pass (another change in
/// progress, no leader yet), until `timeout`. An answer that is not "done" is checked against the leader's
/// membership, as an operator would: a removed leader may step down before it can answer.
async fn remove(op: &mut impl Operator, id: u64, timeout: Duration) -> Result<(), String> {
    let deadline = Instant::now() + timeout;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        let attempt = left.clamp(Duration::from_millis(500), ATTEMPT_TIMEOUT);
        let answer = op.remove(id, attempt).await;
        if answer == MemberChange::Done || op.is_member(id).await == Some(false) {
            return Ok(());
        }
        if Instant::now() >= deadline {
            let last = match &answer {
                MemberChange::NotDone(w) | MemberChange::Unknown(w) => w.clone(),
                MemberChange::Done => unreachable!("returned above"),
            };
            return Err(format!(
                "the cluster did not commit the removal of n{id} within {} (timeout); last answer: {last}",
                humantime::format_duration(timeout)
            ));
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeSet;

    /// A cluster that commits removals after `refusals` refusals.
    struct Fake {
        members: BTreeSet<u64>,
        next: u64,
        refusals: u32,
        wiped: Vec<u64>,
        joined: Vec<(u64, u64)>,
        /// The removal commits but the answer says otherwise (a removed leader stepping down).
        committed_silently: bool,
        /// Members with a fault of the plan in force.
        disturbed: Vec<u64>,
    }

    impl Operator for Fake {
        fn members(&self) -> Vec<u64> {
            self.members.iter().copied().collect()
        }
        fn fresh_id(&self) -> u64 {
            self.next
        }
        fn add(&mut self, id: u64, via: u64) -> Result<(), String> {
            self.members.insert(id);
            self.next += 1;
            self.joined.push((id, via));
            Ok(())
        }
        async fn remove(&mut self, _id: u64, _timeout: Duration) -> MemberChange {
            if self.refusals > 0 {
                self.refusals -= 1;
                return MemberChange::NotDone("a membership change is already in progress".into());
            }
            MemberChange::Done
        }
        async fn is_member(&mut self, id: u64) -> Option<bool> {
            Some(self.members.contains(&id) && !self.committed_silently)
        }
        fn retire(&mut self, id: u64) {
            self.members.remove(&id);
        }
        fn wipe(&mut self, id: u64) -> Result<(), String> {
            self.wiped.push(id);
            Ok(())
        }
        fn disturbed(&self) -> Vec<u64> {
            self.disturbed.clone()
        }
    }

    fn fake(n: u64) -> Fake {
        Fake {
            members: (1..=n).collect(),
            next: n + 1,
            refusals: 0,
            wiped: vec![],
            joined: vec![],
            committed_silently: false,
            disturbed: vec![],
        }
    }

    fn fault(kind: &str, min: usize) -> MembershipFault {
        let mut f = MembershipFault::parse(kind, &toml::Table::new())
            .unwrap()
            .unwrap();
        f.min_members = min;
        f
    }

    #[tokio::test]
    async fn each_kind_changes_the_intended_membership() {
        let mut op = fake(3);
        let c = apply(&mut op, &fault("add", 3), &[2], 0).await.unwrap();
        assert_eq!(
            (c.added, c.via, c.members.clone()),
            (Some(4), Some(2), vec![1, 2, 3, 4])
        );
        let c = apply(&mut op, &fault("remove", 3), &[1], 0).await.unwrap();
        assert_eq!((c.removed, c.members.clone()), (Some(1), vec![2, 3, 4]));
        op.refusals = 2;
        let c = apply(&mut op, &fault("replace", 3), &[3], 1).await.unwrap();
        assert_eq!((c.removed, c.added), (Some(3), Some(5)));
        assert_eq!(c.members, vec![2, 4, 5]);
        assert_eq!(
            op.joined.last(),
            Some(&(5, 4)),
            "joined through a remaining member"
        );
        let c = apply(&mut op, &fault("wipe-rejoin", 3), &[2], 0)
            .await
            .unwrap();
        assert_eq!((c.removed, c.added), (Some(2), Some(6)));
        assert_eq!(op.wiped, vec![2]);
    }

    #[tokio::test]
    async fn changes_that_leave_too_few_members_or_hit_non_members_are_skipped() {
        let mut op = fake(3);
        let c = apply(&mut op, &fault("remove", 3), &[1], 0).await.unwrap();
        assert!(c.note.unwrap().contains("min_members = 3"));
        assert_eq!(c.members, vec![1, 2, 3]);
        let c = apply(&mut op, &fault("replace", 3), &[9], 0).await.unwrap();
        assert_eq!(c.note.as_deref(), Some("n9 is not a member"));
        assert!(c.hit().is_empty());
    }

    #[tokio::test]
    async fn a_removal_whose_answer_is_lost_is_seen_in_the_membership() {
        let mut op = fake(4);
        op.refusals = u32::MAX;
        op.committed_silently = true;
        let c = apply(&mut op, &fault("remove", 3), &[2], 0).await.unwrap();
        assert_eq!(c.removed, Some(2));
    }

    /// Not committed while the plan kept half the members down or cut off: the plan asked too much, a tool
    /// error. Not committed while a majority ran undisturbed: the system's doing, recorded as stuck.
    #[tokio::test]
    async fn a_removal_never_committed_is_the_plans_doing_or_the_systems() {
        let mut op = fake(4);
        op.refusals = u32::MAX;
        op.disturbed = vec![1, 3];
        let mut f = fault("remove", 3);
        f.timeout = Dur(Duration::from_secs(1));
        let err = apply(&mut op, &f, &[2], 0).await.unwrap_err();
        assert!(err.contains("did not commit the removal of n2"), "{err}");
        assert!(
            err.contains("left only [2, 4]") && err.contains("no majority"),
            "{err}"
        );
        op.disturbed = vec![1];
        let c = apply(&mut op, &f, &[2], 0).await.unwrap();
        assert!(c.hit().is_empty());
        assert_eq!(
            (c.removed, c.members),
            (None, vec![1, 2, 3, 4]),
            "nothing changed"
        );
        let stuck = c.stuck.expect("a finding");
        assert!(
            stuck.contains("did not commit the removal of n2"),
            "{stuck}"
        );
        assert!(stuck.contains("[2, 3, 4] (3 of the 4 members"), "{stuck}");
    }

    #[test]
    fn fields_are_checked() {
        let mut extra = toml::Table::new();
        extra.insert("loss".into(), toml::Value::Float(0.5));
        let err = MembershipFault::parse("add", &extra).unwrap().unwrap_err();
        assert!(err.contains("loss"), "{err}");
        assert!(fault("remove", 4).validate(3).unwrap_err().0 == "min_members");
        assert!(fault("remove", 2).validate(3).is_ok());
        assert!(MembershipFault::parse("kill", &toml::Table::new()).is_none());
    }
}
