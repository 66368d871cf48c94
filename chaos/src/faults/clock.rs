//! Clock faults, through the clock shim (`chaos/clock-shim`, an LD_PRELOAD library steered through a control
//! file per node): `clock-bump` steps the wall clock by `offset` (as NTP would; monotonic untouched),
//! `clock-strobe` flips the wall clock between `offset` and true time every `period`, `clock-drift` runs the
//! node's clocks (wall and monotonic, and every timer wait) at `clock_rate` times real speed.

use crate::plan::{Dur, SignedDur};
use std::collections::BTreeMap;
use std::time::{Duration, Instant};

/// The plan kinds of this family.
pub const KINDS: [&str; 3] = ["clock-bump", "clock-strobe", "clock-drift"];

/// The largest wall-clock step a plan may ask for (ten years: beyond it certificates and logs become absurd).
pub const OFFSET_MAX: Duration = Duration::from_secs(10 * 365 * 24 * 3600);
/// The drift rates a plan may ask for.
pub const RATE_RANGE: (f64, f64) = (0.01, 100.0);

/// A clock fault's plan fields.
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
#[serde(untagged)]
pub enum ClockFault {
    /// Step the wall clock.
    Bump(Bump),
    /// Flip the wall clock.
    Strobe(Strobe),
    /// Change the rate.
    Drift(Drift),
}

/// `clock-bump` fields.
#[derive(Clone, Debug, PartialEq, serde::Deserialize, serde::Serialize)]
#[serde(deny_unknown_fields)]
pub struct Bump {
    /// The step, e.g. "+10s" or "-500ms".
    pub offset: SignedDur,
}

/// `clock-strobe` fields.
#[derive(Clone, Debug, PartialEq, serde::Deserialize, serde::Serialize)]
#[serde(deny_unknown_fields)]
pub struct Strobe {
    /// The step when on.
    pub offset: SignedDur,
    /// How often the wall clock flips.
    pub period: Dur,
}

/// `clock-drift` fields.
#[derive(Clone, Debug, PartialEq, serde::Deserialize, serde::Serialize)]
#[serde(deny_unknown_fields)]
pub struct Drift {
    /// The rate of the node's clocks (2.0 = twice as fast).
    pub clock_rate: f64,
}

fn parse_as<T: serde::de::DeserializeOwned>(rest: &toml::Table) -> Result<T, String> {
    T::deserialize(toml::Value::Table(rest.clone())).map_err(|e| e.message().to_string())
}

impl ClockFault {
    /// Parses one of [`KINDS`].
    pub fn parse(kind: &str, rest: &toml::Table) -> Option<Result<ClockFault, String>> {
        Some(match kind {
            "clock-bump" => parse_as(rest).map(ClockFault::Bump),
            "clock-strobe" => parse_as(rest).map(ClockFault::Strobe),
            "clock-drift" => parse_as(rest).map(ClockFault::Drift),
            _ => return None,
        })
    }

    /// The plan kind.
    pub fn name(&self) -> &'static str {
        match self {
            ClockFault::Bump(_) => "clock-bump",
            ClockFault::Strobe(_) => "clock-strobe",
            ClockFault::Drift(_) => "clock-drift",
        }
    }

    /// Checks the values against what the shim can honour.
    pub fn validate(&self) -> Result<(), (&'static str, String)> {
        let offset = match self {
            ClockFault::Bump(b) => Some(b.offset),
            ClockFault::Strobe(s) => {
                if s.period.0 < Duration::from_millis(1) {
                    return Err((
                        "period",
                        "expected a strobe period of at least 1ms, e.g. \"50ms\"".into(),
                    ));
                }
                Some(s.offset)
            }
            ClockFault::Drift(d) => {
                if !(RATE_RANGE.0..=RATE_RANGE.1).contains(&d.clock_rate) {
                    return Err((
                        "clock_rate",
                        format!(
                            "expected a rate between {} and {}, got {}",
                            RATE_RANGE.0, RATE_RANGE.1, d.clock_rate
                        ),
                    ));
                }
                None
            }
        };
        match offset {
            Some(o) if o.magnitude > OFFSET_MAX => Err((
                "offset",
                format!(
                    "{o} is beyond what a clock fault may step ({})",
                    humantime::format_duration(OFFSET_MAX)
                ),
            )),
            _ => Ok(()),
        }
    }
}

/// Where clock faults are applied (the clock shim's control files).
pub trait ClockBackend: std::fmt::Debug + Send {
    /// Sets node `id`'s wall-clock offset (ns) and rate.
    fn set(&mut self, id: u64, offset_ns: i64, rate: f64) -> Result<(), String>;
    /// Takes the control file of node `id`, which joined at run time (membership faults).
    fn add(&mut self, id: u64, control: clock_shim::Control) -> Result<(), String>;
}

/// Clock faults through each node's clock-shim control file.
#[derive(Debug)]
pub struct ShimClocks {
    /// Each node's control file.
    pub controls: BTreeMap<u64, clock_shim::Control>,
}

impl ClockBackend for ShimClocks {
    fn set(&mut self, id: u64, offset_ns: i64, rate: f64) -> Result<(), String> {
        let control = self
            .controls
            .get(&id)
            .ok_or_else(|| format!("node n{id} has no clock control file"))?;
        control
            .apply(offset_ns, rate)
            .map(|_| ())
            .map_err(|e| format!("cannot set n{id}'s clock: {e}"))
    }

    fn add(&mut self, id: u64, control: clock_shim::Control) -> Result<(), String> {
        if self.controls.contains_key(&id) {
            return Err(format!("node n{id} has a clock control file already"));
        }
        self.controls.insert(id, control);
        Ok(())
    }
}

#[derive(Debug, Clone)]
struct StrobeInForce {
    nodes: Vec<u64>,
    offset_ns: i64,
    period: Duration,
    next_flip: Instant,
    on: bool,
}

/// The clock faults in force and the backend they are pushed to.
#[derive(Debug)]
pub struct ClockNemesis {
    backend: Box<dyn ClockBackend>,
    nodes: Vec<u64>,
    /// Fault id → (nodes, offset, rate).
    steady: BTreeMap<usize, (Vec<u64>, i64, f64)>,
    strobes: BTreeMap<usize, StrobeInForce>,
}

impl ClockNemesis {
    /// Clock faults on `nodes` through `backend`.
    pub fn new(backend: Box<dyn ClockBackend>, nodes: Vec<u64>) -> ClockNemesis {
        ClockNemesis {
            backend,
            nodes,
            steady: BTreeMap::new(),
            strobes: BTreeMap::new(),
        }
    }

    /// Takes node `id`, which joined at run time, with its control file: clock faults that start from now on
    /// may target it (the ones in force keep the targets they started with), and its clock starts true.
    pub fn add_node(&mut self, id: u64, control: clock_shim::Control) -> Result<(), String> {
        self.backend.add(id, control)?;
        self.nodes.push(id);
        self.backend.set(id, 0, 1.0)
    }

    /// Starts fault `id` on `targets`.
    pub fn start(&mut self, id: usize, fault: &ClockFault, targets: &[u64]) -> Result<(), String> {
        let targets = targets.to_vec();
        match fault {
            ClockFault::Bump(b) => {
                self.steady
                    .insert(id, (targets, b.offset.as_nanos_i64(), 1.0));
            }
            ClockFault::Drift(d) => {
                self.steady.insert(id, (targets, 0, d.clock_rate));
            }
            ClockFault::Strobe(s) => {
                let strobe = StrobeInForce {
                    nodes: targets,
                    offset_ns: s.offset.as_nanos_i64(),
                    period: s.period.0,
                    next_flip: Instant::now() + s.period.0,
                    on: true,
                };
                self.strobes.insert(id, strobe);
            }
        }
        self.push()
    }

    /// Ends fault `id`.
    pub fn end(&mut self, id: usize) -> Result<(), String> {
        let steady = self.steady.remove(&id).is_some();
        if self.strobes.remove(&id).is_some() || steady {
            self.push()?;
        }
        Ok(())
    }

    /// Every clock back to true time.
    pub fn heal(&mut self) -> Result<(), String> {
        self.steady.clear();
        self.strobes.clear();
        self.push()
    }

    /// The soonest strobe flip, if a strobe is in force.
    pub fn next_flip(&self) -> Option<Instant> {
        self.strobes.values().map(|s| s.next_flip).min()
    }

    /// Flips the strobes whose period elapsed.
    pub fn flip_due(&mut self) -> Result<(), String> {
        let now = Instant::now();
        let mut changed = false;
        for s in self.strobes.values_mut().filter(|s| now >= s.next_flip) {
            s.on = !s.on;
            s.next_flip = now + s.period;
            changed = true;
        }
        if changed {
            self.push()?;
        }
        Ok(())
    }

    /// Pushes every node's setting: the sum of the offsets and the product of the rates in force.
    fn push(&mut self) -> Result<(), String> {
        for &id in &self.nodes {
            let mut offset = 0i64;
            let mut rate = 1.0;
            for (nodes, o, r) in self.steady.values().filter(|(n, _, _)| n.contains(&id)) {
                debug_assert!(nodes.contains(&id));
                offset = offset.saturating_add(*o);
                rate *= r;
            }
            for s in self
                .strobes
                .values()
                .filter(|s| s.on && s.nodes.contains(&id))
            {
                offset = offset.saturating_add(s.offset_ns);
            }
            self.backend.set(id, offset, rate)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, Default)]
    struct Recorded(std::sync::Arc<std::sync::Mutex<BTreeMap<u64, (i64, f64)>>>);

    impl ClockBackend for Recorded {
        fn set(&mut self, id: u64, offset_ns: i64, rate: f64) -> Result<(), String> {
            self.0.lock().unwrap().insert(id, (offset_ns, rate));
            Ok(())
        }
        fn add(&mut self, _id: u64, _control: clock_shim::Control) -> Result<(), String> {
            Ok(())
        }
    }

    /// A node that joins starts on true time, is left out of the faults already in force, and is reached by
    /// the ones that start after it joined; a heal covers it.
    #[test]
    fn a_node_that_joins_is_reached_by_later_faults() {
        let seen = std::sync::Arc::default();
        let mut clocks =
            ClockNemesis::new(Box::new(Recorded(std::sync::Arc::clone(&seen))), vec![1, 2]);
        clocks
            .start(0, &ClockFault::Drift(Drift { clock_rate: 2.0 }), &[1, 2])
            .unwrap();
        let dir = tempfile::tempdir().unwrap();
        let control = clock_shim::Control::create(dir.path().join("clock")).unwrap();
        clocks.add_node(3, control).unwrap();
        assert_eq!(seen.lock().unwrap()[&3], (0, 1.0));
        let bump = ClockFault::Bump(Bump {
            offset: SignedDur {
                magnitude: Duration::from_secs(1),
                negative: false,
            },
        });
        clocks.start(1, &bump, &[3]).unwrap();
        assert_eq!(seen.lock().unwrap()[&3], (1_000_000_000, 1.0));
        assert_eq!(seen.lock().unwrap()[&1], (0, 2.0));
        clocks.heal().unwrap();
        assert_eq!(seen.lock().unwrap()[&3], (0, 1.0));
    }

    #[test]
    fn offsets_add_and_rates_multiply_while_in_force() {
        let seen = std::sync::Arc::default();
        let mut clocks =
            ClockNemesis::new(Box::new(Recorded(std::sync::Arc::clone(&seen))), vec![1, 2]);
        let bump = ClockFault::Bump(Bump {
            offset: SignedDur {
                magnitude: Duration::from_secs(2),
                negative: true,
            },
        });
        let drift = ClockFault::Drift(Drift { clock_rate: 2.0 });
        clocks.start(0, &bump, &[1]).unwrap();
        clocks.start(1, &drift, &[1, 2]).unwrap();
        assert_eq!(seen.lock().unwrap()[&1], (-2_000_000_000, 2.0));
        assert_eq!(seen.lock().unwrap()[&2], (0, 2.0));
        clocks.end(0).unwrap();
        assert_eq!(seen.lock().unwrap()[&1], (0, 2.0));
        clocks.heal().unwrap();
        assert_eq!(seen.lock().unwrap()[&2], (0, 1.0));
    }

    #[test]
    fn absurd_values_are_refused() {
        let far = ClockFault::Bump(Bump {
            offset: SignedDur {
                magnitude: OFFSET_MAX * 2,
                negative: false,
            },
        });
        assert_eq!(far.validate().unwrap_err().0, "offset");
        let fast = ClockFault::Drift(Drift { clock_rate: 1e9 });
        assert_eq!(fast.validate().unwrap_err().0, "clock_rate");
    }
}
