//! The fault driver: walks the timeline, starting and ending faults at their times, and runs periodic fault
//! actions (strobing clocks) in between. Faults that react to the cluster (`on = "new-leader"`) join the walk
//! as the status watcher reports events. It knows nothing of processes or networks: it drives an [`Injector`],
//! so it is tested with a fake one under tokio's paused clock.

use crate::faults::FaultError;
use crate::plan::Edge;
use crate::schedule::{Reactor, ScheduledFault};
use crate::watch::Observed;
use std::future::Future;
use std::time::Duration;
use tokio::sync::mpsc::UnboundedReceiver;
use tokio::time::Instant;

/// A fault in force: the scheduled fault and the nodes it really hit.
#[derive(Clone, Debug, PartialEq)]
pub struct ActiveFault {
    /// The scheduled fault.
    pub fault: ScheduledFault,
    /// The nodes it hit (after resolving "leader", skipping nodes already down).
    pub nodes: Vec<u64>,
}

/// What the driver drives.
pub trait Injector {
    /// Starts `fault` now.
    fn start(
        &mut self,
        fault: &ScheduledFault,
    ) -> impl Future<Output = Result<ActiveFault, FaultError>>;
    /// Ends `active` now.
    fn end(&mut self, active: &ActiveFault) -> Result<(), FaultError>;
    /// When a periodic action is next due, if any.
    fn next_tick(&self) -> Option<Instant>;
    /// Runs the periodic actions that are due.
    fn tick(&mut self) -> Result<(), FaultError>;
    /// Called after every start and end (e.g. to notice nodes that exited on their own).
    fn after_step(&mut self, active: &[ActiveFault]);
    /// Called with each cluster event the watcher reports, before the faults it starts (which may target by
    /// the cluster as the watcher just saw it).
    fn observed(&mut self, _event: &Observed) {}
}

/// The faults scheduled during the run: the reactor that turns events into faults, and the watcher's events
/// (none when the plan has no fault on a cluster event).
#[derive(Debug)]
pub struct Reactions<'p> {
    /// Turns events and edges of reactive faults into faults.
    pub reactor: Reactor<'p>,
    /// The watcher's reports.
    pub events: Option<UnboundedReceiver<Observed>>,
}

/// Drives `timeline` (times from `phase_start`) for `phase`, with the faults `reactions` adds as the cluster
/// changes, then ends whatever is still in force. A fault that cannot be started or ended stops the drive with
/// its error: the run can no longer be trusted.
pub async fn drive(
    timeline: &[ScheduledFault],
    phase_start: Instant,
    phase: Duration,
    injector: &mut impl Injector,
    reactions: &mut Reactions<'_>,
) -> Result<(), FaultError> {
    let mut active: Vec<ActiveFault> = Vec::new();
    // Sorted by start; reactive faults are inserted in order as they come.
    let mut pending: Vec<ScheduledFault> = timeline.to_vec();
    loop {
        let next_start = pending.first().map(|f| f.start);
        let next_end = active.iter().map(|a| a.fault.end).min();
        let next = [next_start, next_end].into_iter().flatten().min();
        let event = tokio::select! {
            waited = wait_ticking(phase_start + next.unwrap_or(phase), injector) => {
                waited?;
                None
            }
            event = next_event(&mut reactions.events) => Some(event?),
        };
        if let Some(event) = event {
            injector.observed(&event);
            let at = event.at.saturating_duration_since(phase_start);
            let started = reactions.reactor.on_cluster(event.event, event.node, at);
            insert_by_start(&mut pending, started);
            continue;
        }
        let Some(next) = next else {
            break;
        };
        if next_end == Some(next) {
            let i = active
                .iter()
                .position(|a| a.fault.end == next)
                .expect("found above");
            let ended = active.remove(i);
            injector.end(&ended)?;
            let started = reactions.reactor.on_edge(&ended.fault, Edge::End);
            insert_by_start(&mut pending, started);
        } else {
            let fault = pending.remove(0);
            active.push(injector.start(&fault).await?);
            let started = reactions.reactor.on_edge(&fault, Edge::Start);
            insert_by_start(&mut pending, started);
        }
        injector.after_step(&active);
    }
    for a in active.drain(..) {
        injector.end(&a)?;
    }
    Ok(())
}

/// The watcher's next event; never, when there is no watcher. A watcher that stops while faults are driven is
/// a tool error: the faults on cluster events would silently stop starting, and the run would look calmer than
/// its plan.
async fn next_event(
    events: &mut Option<UnboundedReceiver<Observed>>,
) -> Result<Observed, FaultError> {
    match events {
        Some(rx) => rx.recv().await.ok_or_else(|| FaultError {
            id: usize::MAX,
            kind: "the status watcher",
            phase: "kept running",
            reason: "it stopped during the fault phase, so faults on cluster events could no longer start".into(),
        }),
        None => std::future::pending().await,
    }
}

fn insert_by_start(pending: &mut Vec<ScheduledFault>, faults: Vec<ScheduledFault>) {
    for f in faults {
        let at = pending.partition_point(|p| (p.start, p.id) <= (f.start, f.id));
        pending.insert(at, f);
    }
}

/// Sleeps until `deadline`, running periodic actions that fall before it.
async fn wait_ticking(deadline: Instant, injector: &mut impl Injector) -> Result<(), FaultError> {
    while let Some(tick) = injector.next_tick().filter(|t| *t < deadline) {
        tokio::time::sleep_until(tick).await;
        injector.tick()?;
    }
    tokio::time::sleep_until(deadline).await;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plan::{ClusterEvent, Plan};
    use crate::schedule::Targets;

    fn plan(faults: &str) -> Plan {
        Plan::parse(
            &format!("name = \"t\"\nduration = \"1s\"\n[cluster]\nnodes = 3\n{faults}"),
            "t.toml",
        )
        .unwrap()
    }

    /// No faults on cluster events.
    fn none(p: &Plan) -> Reactions<'_> {
        Reactions {
            reactor: Reactor::new(p, 1, 0),
            events: None,
        }
    }

    /// Records what it is asked to do, with the (paused) time since the phase started.
    struct Fake {
        phase_start: Instant,
        log: Vec<String>,
        /// Each fault started, in order: its label and its targets.
        started: Vec<String>,
        fail_start_of: Option<usize>,
        tick_every: Option<Duration>,
        next_tick: Option<Instant>,
    }

    impl Fake {
        fn new(phase_start: Instant) -> Fake {
            Fake {
                phase_start,
                log: Vec::new(),
                started: Vec::new(),
                fail_start_of: None,
                tick_every: None,
                next_tick: None,
            }
        }

        fn at(&self) -> u128 {
            (Instant::now() - self.phase_start).as_millis()
        }
    }

    impl Injector for Fake {
        async fn start(&mut self, fault: &ScheduledFault) -> Result<ActiveFault, FaultError> {
            if self.fail_start_of == Some(fault.id) {
                return Err(FaultError {
                    id: fault.id,
                    kind: fault.kind,
                    phase: "started",
                    reason: "the backend refused".into(),
                });
            }
            self.log.push(format!("{} start #{}", self.at(), fault.id));
            self.started
                .push(format!("{} {}", fault.label, fault.targets));
            if let Some(every) = self.tick_every {
                self.next_tick = Some(Instant::now() + every);
            }
            Ok(ActiveFault {
                fault: fault.clone(),
                nodes: vec![1],
            })
        }

        fn end(&mut self, active: &ActiveFault) -> Result<(), FaultError> {
            self.log
                .push(format!("{} end #{}", self.at(), active.fault.id));
            self.next_tick = None;
            Ok(())
        }

        fn next_tick(&self) -> Option<Instant> {
            self.next_tick
        }

        fn tick(&mut self) -> Result<(), FaultError> {
            self.log.push(format!("{} tick", self.at()));
            self.next_tick = self.tick_every.map(|e| Instant::now() + e);
            Ok(())
        }

        fn after_step(&mut self, _active: &[ActiveFault]) {}
    }

    fn fault(id: usize, start_ms: u64, end_ms: u64) -> ScheduledFault {
        ScheduledFault {
            id,
            plan_index: 0,
            kind: "kill",
            label: "kill".into(),
            targets: Targets::Nodes(vec![1]),
            start: Duration::from_millis(start_ms),
            end: Duration::from_millis(end_ms),
            clipped: false,
        }
    }

    #[tokio::test(start_paused = true)]
    async fn faults_start_and_end_at_their_times_overlapping_or_not() {
        let start = Instant::now();
        let mut fake = Fake::new(start);
        let timeline = [fault(0, 100, 500), fault(1, 200, 300), fault(2, 600, 700)];
        let p = plan("");
        drive(
            &timeline,
            start,
            Duration::from_millis(1000),
            &mut fake,
            &mut none(&p),
        )
        .await
        .unwrap();
        assert_eq!(
            fake.log,
            [
                "100 start #0",
                "200 start #1",
                "300 end #1",
                "500 end #0",
                "600 start #2",
                "700 end #2"
            ]
        );
        assert_eq!(
            (Instant::now() - start).as_millis(),
            1000,
            "waits for the phase's end"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn periodic_actions_run_between_events_while_a_fault_is_in_force() {
        let start = Instant::now();
        let mut fake = Fake::new(start);
        fake.tick_every = Some(Duration::from_millis(40));
        let p = plan("");
        drive(
            &[fault(0, 100, 200)],
            start,
            Duration::from_millis(300),
            &mut fake,
            &mut none(&p),
        )
        .await
        .unwrap();
        assert_eq!(
            fake.log,
            ["100 start #0", "140 tick", "180 tick", "200 end #0"]
        );
    }

    #[tokio::test(start_paused = true)]
    async fn a_fault_that_cannot_start_stops_the_drive_with_its_error() {
        let start = Instant::now();
        let mut fake = Fake::new(start);
        fake.fail_start_of = Some(1);
        let p = plan("");
        let e = drive(
            &[fault(0, 100, 500), fault(1, 200, 300)],
            start,
            Duration::from_millis(1000),
            &mut fake,
            &mut none(&p),
        )
        .await
        .unwrap_err();
        assert_eq!(e.id, 1);
        assert!(e.to_string().contains("could not be started"), "{e}");
        assert_eq!(fake.log, ["100 start #0"]);
    }

    fn seen(event: ClusterEvent, at: Instant, node: u64) -> Observed {
        Observed {
            event,
            at,
            node,
            term: node,
            nodes: Vec::new(),
        }
    }

    /// Drives `p`'s faults for a 1 s phase while a fake watcher reports `script` (ms into the phase, event, the
    /// node it is about); the watcher runs to the end, or stops at `stops_at` ms.
    async fn drive_with_events(
        p: &Plan,
        script: Vec<(u64, ClusterEvent, u64)>,
        stops_at: Option<u64>,
    ) -> (Fake, Result<(), FaultError>) {
        let timeline = crate::schedule::schedule(p, 1);
        let start = Instant::now();
        let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
        tokio::spawn(async move {
            for (at, event, node) in script {
                tokio::time::sleep_until(start + Duration::from_millis(at)).await;
                tx.send(seen(event, Instant::now(), node)).unwrap();
            }
            match stops_at {
                Some(at) => tokio::time::sleep_until(start + Duration::from_millis(at)).await,
                None => std::future::pending().await,
            }
        });
        let mut fake = Fake::new(start);
        let mut reactions = Reactions {
            reactor: Reactor::new(p, 1, timeline.len()),
            events: Some(rx),
        };
        let phase = Duration::from_millis(1000);
        let result = drive(&timeline, start, phase, &mut fake, &mut reactions).await;
        (fake, result)
    }

    #[tokio::test(start_paused = true)]
    async fn a_watcher_that_stops_mid_phase_is_a_tool_error_not_a_calm_run() {
        let p = plan(
            "[[faults]]\nkind = \"kill\"\ntarget = \"follower\"\non = \"new-leader\"\nduration = \"30ms\"\n",
        );
        let start = Instant::now();
        let script = vec![(100, ClusterEvent::NewLeader, 2)];
        // At 200 ms the watcher's tasks die.
        let (fake, result) = drive_with_events(&p, script, Some(200)).await;
        assert_eq!(
            result.unwrap_err().to_string(),
            "the status watcher could not be kept running: it stopped during the fault phase, so faults on \
             cluster events could no longer start"
        );
        assert_eq!(fake.log, ["100 start #0", "130 end #0"]);
        assert_eq!((Instant::now() - start).as_millis(), 200, "stops at once");
    }

    #[tokio::test(start_paused = true)]
    async fn each_cluster_event_starts_only_the_faults_on_it_and_names_its_node() {
        let p = plan(
            "[[faults]]\nname = \"mid-election\"\nkind = \"pause\"\ntarget = \"observed\"\non = \"new-term\"\nduration = \"30ms\"\n\
             [[faults]]\nname = \"after-election\"\nkind = \"kill\"\ntarget = \"follower\"\non = \"new-leader\"\nduration = \"50ms\"\n",
        );
        assert!(crate::schedule::schedule(&p, 1).is_empty());
        // A term begins at 100 ms and its leader is seen at 140 ms; a second term's winner is the first answer to
        // show it, at 400 ms (both events at once, the term first).
        let script = vec![
            (100, ClusterEvent::NewTerm, 3),
            (140, ClusterEvent::NewLeader, 2),
            (400, ClusterEvent::NewTerm, 5),
            (400, ClusterEvent::NewLeader, 5),
        ];
        let (fake, result) = drive_with_events(&p, script, None).await;
        result.unwrap();
        assert_eq!(
            fake.log,
            [
                "100 start #0",
                "130 end #0",
                "140 start #1",
                "190 end #1",
                "400 start #2",
                "400 start #3",
                "430 end #2",
                "450 end #3"
            ]
        );
        assert_eq!(
            fake.started,
            [
                "mid-election n3",
                "after-election follower",
                "mid-election n5",
                "after-election follower"
            ],
            "an observed target is the node the event is about; others are decided as the fault starts"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn faults_on_cluster_events_start_as_events_come_and_chain_to_the_faults_after_them() {
        let p = plan(
            "[[faults]]\nname = \"restart-voter\"\nkind = \"kill\"\ntarget = \"follower\"\non = \"new-leader\"\nwait = \"10ms\"\nduration = \"50ms\"\n\
             [[faults]]\nname = \"then\"\nkind = \"pause\"\nsame_as = \"restart-voter\"\nafter = \"restart-voter\"\nduration = \"20ms\"\n\
             [[faults]]\nkind = \"kill\"\nat = [\"500ms\"]\nduration = \"100ms\"\n",
        );
        let start = Instant::now();
        // Events at 100 ms, 120 ms (while the first reaction still runs: no second one) and 980 ms (its fault would
        // outlast the phase: cut short; its follow-up would start at the end: none).
        let script = [100, 120, 980]
            .map(|at| (at, ClusterEvent::NewLeader, 2))
            .to_vec();
        let (fake, result) = drive_with_events(&p, script, None).await;
        result.unwrap();
        assert_eq!(
            fake.log,
            [
                "110 start #1",
                "160 end #1",
                "160 start #2",
                "180 end #2",
                "500 start #0",
                "600 end #0",
                "990 start #3",
                "1000 end #3"
            ]
        );
        assert_eq!(
            (Instant::now() - start).as_millis(),
            1000,
            "waits for the phase's end"
        );
    }
}
