//! Time, as the engine sees it: the system clock in production, a hand-driven
//! clock in tests.

use std::sync::Mutex;

use chrono::{DateTime, Duration, Utc};

/// Where the engine reads the time.
pub trait Clock: Send + Sync + 'static {
    /// Now, in UTC.
    fn now(&self) -> DateTime<Utc>;
}

/// The real clock.
#[derive(Debug, Default, Clone, Copy)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> DateTime<Utc> {
        Utc::now()
    }
}

/// A clock that moves only when told: the real time plus an offset the test
/// controls, so simulated downtime needs no waiting.
#[derive(Debug, Default)]
pub struct OffsetClock {
    offset: Mutex<Duration>,
}

impl OffsetClock {
    /// Starts at the real time.
    pub fn new() -> Self {
        Self::default()
    }

    /// Jumps ahead by `by`.
    pub fn advance(&self, by: Duration) {
        if let Ok(mut offset) = self.offset.lock() {
            *offset += by;
        }
    }
}

impl Clock for OffsetClock {
    fn now(&self) -> DateTime<Utc> {
        let offset = self
            .offset
            .lock()
            .map(|o| *o)
            .unwrap_or_else(|_| Duration::zero());
        Utc::now() + offset
    }
}
