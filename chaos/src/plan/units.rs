//! Units written in plans: durations ("150ms", "10s"), signed durations ("+10s", "-1h") and fault targets
//! ("n1", "leader"). Every value is bounded at parse time, so no later arithmetic can overflow.

use serde::de::{self, Deserializer};
use serde::Deserialize;
use std::fmt;
use std::time::Duration;

/// The longest duration a plan may write anywhere (a year): longer ones are typos, and bounding them keeps
/// every sum of plan durations far from overflowing.
pub const DUR_MAX: Duration = Duration::from_secs(365 * 24 * 3600);

/// Parses a duration like "150ms" or "10s", at most [`DUR_MAX`].
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let d = humantime::parse_duration(text).map_err(|e| {
        format!("expected a duration like \"150ms\" or \"10s\", got {text:?} ({e})")
    })?;
    if d > DUR_MAX {
        return Err(format!(
            "{text:?} is longer than the longest duration a plan may use ({})",
            humantime::format_duration(DUR_MAX)
        ));
    }
    Ok(d)
}

/// A duration written as "150ms", "10s", "1m 30s".
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default, serde::Serialize)]
#[serde(into = "String")]
pub struct Dur(pub Duration);

impl fmt::Debug for Dur {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", humantime::format_duration(self.0))
    }
}

impl fmt::Display for Dur {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", humantime::format_duration(self.0))
    }
}

impl From<Dur> for String {
    fn from(d: Dur) -> String {
        d.to_string()
    }
}

impl<'de> Deserialize<'de> for Dur {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Dur, D::Error> {
        let text = String::deserialize(deserializer)?;
        parse_duration(&text).map(Dur).map_err(de::Error::custom)
    }
}

/// A signed duration: "+10s", "-1h", "250ms".
#[derive(Clone, Copy, PartialEq, Eq, Debug, Default, serde::Serialize)]
#[serde(into = "String")]
pub struct SignedDur {
    /// Magnitude.
    pub magnitude: Duration,
    /// Whether it is negative (backwards).
    pub negative: bool,
}

impl SignedDur {
    /// Nanoseconds, signed.
    pub fn as_nanos_i64(self) -> i64 {
        let n = self.magnitude.as_nanos().min(i64::MAX as u128) as i64;
        if self.negative {
            -n
        } else {
            n
        }
    }
}

impl fmt::Display for SignedDur {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let sign = if self.negative { "-" } else { "+" };
        write!(f, "{sign}{}", humantime::format_duration(self.magnitude))
    }
}

impl From<SignedDur> for String {
    fn from(d: SignedDur) -> String {
        d.to_string()
    }
}

impl<'de> Deserialize<'de> for SignedDur {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<SignedDur, D::Error> {
        let text = String::deserialize(deserializer)?;
        let trimmed = text.trim();
        let (negative, rest) = match trimmed.strip_prefix('-') {
            Some(rest) => (true, rest),
            None => (false, trimmed.trim_start_matches('+')),
        };
        let magnitude = humantime::parse_duration(rest).map_err(|e| {
            de::Error::custom(format!(
                "expected a signed duration like \"+10s\" or \"-500ms\", got {text:?} ({e})"
            ))
        })?;
        if magnitude > DUR_MAX {
            return Err(de::Error::custom(format!(
                "{text:?} is larger than the largest step a plan may use ({})",
                humantime::format_duration(DUR_MAX)
            )));
        }
        Ok(SignedDur {
            magnitude,
            negative,
        })
    }
}

/// Whom a fault hits.
#[derive(Clone, Copy, PartialEq, Eq, Debug, serde::Serialize)]
#[serde(into = "String")]
pub enum Target {
    /// One named node.
    Node(u64),
    /// One node chosen with the seed.
    Random,
    /// Whoever leads when the fault starts.
    Leader,
    /// A random minority (chosen with the seed).
    Minority,
    /// A random majority (chosen with the seed).
    Majority,
    /// Every node.
    All,
    /// A follower chosen with the seed among those following when the fault starts.
    Follower,
    /// The follower furthest behind (lowest applied index) when the fault starts.
    Lagging,
    /// The node the cluster event that starts the fault is about (faults `on` an event only): the new leader,
    /// or the node that first reported the new term (most often the candidate that started the election).
    Observed,
}

impl fmt::Display for Target {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Target::Node(id) => write!(f, "n{id}"),
            Target::Random => f.write_str("random"),
            Target::Leader => f.write_str("leader"),
            Target::Minority => f.write_str("minority"),
            Target::Majority => f.write_str("majority"),
            Target::All => f.write_str("all"),
            Target::Follower => f.write_str("follower"),
            Target::Lagging => f.write_str("lagging"),
            Target::Observed => f.write_str("observed"),
        }
    }
}

impl From<Target> for String {
    fn from(t: Target) -> String {
        t.to_string()
    }
}

impl<'de> Deserialize<'de> for Target {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Target, D::Error> {
        let text = String::deserialize(deserializer)?;
        let parsed = match text.as_str() {
            "random" => Some(Target::Random),
            "leader" => Some(Target::Leader),
            "minority" => Some(Target::Minority),
            "majority" => Some(Target::Majority),
            "all" => Some(Target::All),
            "follower" => Some(Target::Follower),
            "lagging" => Some(Target::Lagging),
            "observed" => Some(Target::Observed),
            other => other
                .strip_prefix('n')
                .and_then(|n| n.parse().ok())
                .filter(|&n| n > 0)
                .map(Target::Node),
        };
        parsed.ok_or_else(|| {
            de::Error::custom(format!(
                "expected a target: \"n1\", \"random\", \"leader\", \"follower\", \"lagging\", \"observed\", \"minority\", \"majority\" or \"all\", got {text:?}"
            ))
        })
    }
}
