//! The fault driver: walks the timeline, starting and ending faults at their times, and runs periodic fault
//! actions (strobing clocks) in between. It knows nothing of processes or networks: it drives an [`Injector`],
//! so it is tested with a fake one under tokio's paused clock.

use crate::faults::FaultError;
use crate::schedule::ScheduledFault;
use std::future::Future;
use std::time::Duration;
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
}

/// Drives `timeline` (times from `phase_start`) for `phase`, then ends whatever is still in force. A fault that
/// cannot be started or ended stops the drive with its error: the run can no longer be trusted.
pub async fn drive(
    timeline: &[ScheduledFault],
    phase_start: Instant,
    phase: Duration,
    injector: &mut impl Injector,
) -> Result<(), FaultError> {
    let mut active: Vec<ActiveFault> = Vec::new();
    let mut pending = timeline.iter().peekable();
    loop {
        let next_start = pending.peek().map(|f| f.start);
        let next_end = active.iter().map(|a| a.fault.end).min();
        let Some(next) = [next_start, next_end].into_iter().flatten().min() else {
            break;
        };
        wait_ticking(phase_start + next, injector).await?;
        if next_end == Some(next) {
            let i = active
                .iter()
                .position(|a| a.fault.end == next)
                .expect("found above");
            let ended = active.remove(i);
            injector.end(&ended)?;
        } else {
            let fault = pending.next().expect("found above");
            active.push(injector.start(fault).await?);
        }
        injector.after_step(&active);
    }
    wait_ticking(phase_start + phase, injector).await?;
    for a in active.drain(..) {
        injector.end(&a)?;
    }
    Ok(())
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
    use crate::schedule::Targets;

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
        drive(&timeline, start, Duration::from_millis(1000), &mut fake)
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
        drive(
            &[fault(0, 100, 200)],
            start,
            Duration::from_millis(300),
            &mut fake,
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
        let e = drive(
            &[fault(0, 100, 500), fault(1, 200, 300)],
            start,
            Duration::from_millis(1000),
            &mut fake,
        )
        .await
        .unwrap_err();
        assert_eq!(e.id, 1);
        assert!(e.to_string().contains("could not be started"), "{e}");
        assert_eq!(fake.log, ["100 start #0"]);
    }
}
