//! Time as a value: the engine never reads a clock; callers pass [`Timestamp`]s in.

use core::fmt;
use core::ops::{Add, Sub};

/// Microseconds since the session began (the TCP connect).
///
/// The engine takes every "now" as an argument, so a test can drive a ten-second scan in a
/// millisecond and a saved transcript replays into exactly the same result.
#[derive(
    Clone,
    Copy,
    Debug,
    Default,
    PartialEq,
    Eq,
    PartialOrd,
    Ord,
    Hash,
    serde::Serialize,
    serde::Deserialize,
)]
pub struct Timestamp(pub u64);

/// A span of time in microseconds.
#[derive(
    Clone,
    Copy,
    Debug,
    Default,
    PartialEq,
    Eq,
    PartialOrd,
    Ord,
    Hash,
    serde::Serialize,
    serde::Deserialize,
)]
pub struct Micros(pub u64);

impl Timestamp {
    /// The session start.
    pub const ZERO: Timestamp = Timestamp(0);

    /// Seconds since the session began, as a float (for display and the JSON record).
    pub fn as_secs_f64(self) -> f64 {
        self.0 as f64 / 1e6
    }

    /// The time elapsed from `earlier` to `self` (zero when `earlier` is later).
    pub fn since(self, earlier: Timestamp) -> Micros {
        Micros(self.0.saturating_sub(earlier.0))
    }
}

impl Micros {
    /// Builds a span from milliseconds.
    pub const fn from_millis(ms: u64) -> Micros {
        Micros(ms * 1000)
    }

    /// Builds a span from float seconds (negative and NaN become zero).
    pub fn from_secs_f64(secs: f64) -> Micros {
        if secs.is_finite() && secs > 0.0 {
            Micros((secs * 1e6).round() as u64)
        } else {
            Micros(0)
        }
    }

    /// The span as float seconds.
    pub fn as_secs_f64(self) -> f64 {
        self.0 as f64 / 1e6
    }
}

impl Add<Micros> for Timestamp {
    type Output = Timestamp;
    fn add(self, rhs: Micros) -> Timestamp {
        Timestamp(self.0.saturating_add(rhs.0))
    }
}

impl Sub<Timestamp> for Timestamp {
    type Output = Micros;
    fn sub(self, rhs: Timestamp) -> Micros {
        self.since(rhs)
    }
}

impl fmt::Display for Timestamp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{:06}", self.0 / 1_000_000, self.0 % 1_000_000)
    }
}
