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
            Some(event) = next_event(&mut reactions.events) => Some(event),
        };
        if let Some(event) = event {
            injector.observed(&event);
            let at = event.at.saturating_duration_since(phase_start);
            let started = reactions.reactor.on_cluster(event.event, at);
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

/// The watcher's next event; never, when there is no watcher (or it stopped).
async fn next_event(events: &mut Option<UnboundedReceiver<Observed>>) -> Option<Observed> {
    match events {
        Some(rx) => rx.recv().await,
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
        fail_start_of: Option<usize>,
        tick_every: Option<Duration>,
        next_tick: Option<Instant>,
    }

    impl Fake {
        fn new(phase_start: Instant) -> Fake {
            Fake {
                phase_start,
                log: Vec::new(),
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

    fn new_leader(at: Instant, node: u64) -> Observed {
        Observed {
            event: ClusterEvent::NewLeader,
            at,
            node,
            term: node,
            nodes: Vec::new(),
        }
    }

    #[tokio::test(start_paused = true)]
    async fn faults_on_cluster_events_start_as_events_come_and_chain_to_the_faults_after_them() {
        let p = plan(
            "[[faults]]\nname = \"restart-voter\"\nkind = \"kill\"\ntarget = \"follower\"\non = \"new-leader\"\nwait = \"10ms\"\nduration = \"50ms\"\n\
             [[faults]]\nname = \"then\"\nkind = \"pause\"\nsame_as = \"restart-voter\"\nafter = \"restart-voter\"\nduration = \"20ms\"\n\
             [[faults]]\nkind = \"kill\"\nat = [\"500ms\"]\nduration = \"100ms\"\n",
        );
        let timeline = crate::schedule::schedule(&p, 1);
        let start = Instant::now();
        let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
        // Events at 100 ms, 120 ms (while the first reaction still runs: no second one) and 980 ms (its fault
        // would outlast the phase: cut short; its follow-up would start at the end: none).
        tokio::spawn(async move {
            for at in [100, 120, 980] {
                tokio::time::sleep_until(start + Duration::from_millis(at)).await;
                tx.send(new_leader(Instant::now(), at)).unwrap();
            }
        });
        let mut fake = Fake::new(start);
        let mut reactions = Reactions {
            reactor: Reactor::new(&p, 1, timeline.len()),
            events: Some(rx),
        };
        drive(
            &timeline,
            start,
            Duration::from_millis(1000),
            &mut fake,
            &mut reactions,
        )
        .await
        .unwrap();
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
