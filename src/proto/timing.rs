//! Deadlines for one exchange, computed from a clock reading: time is a parameter here, never a
//! global, so the rules are tested without waiting. Which wait a step is ([`Wait`]) is decided
//! by the connection's state machine; the shell reads the clock and races the stream.

use crate::error::TimeoutPhase;

/// How long each wait of an exchange may last, in milliseconds. `None` leaves that wait
/// unbounded.
///
/// The defaults follow the hand-written ESP32 clients that work against real services: 10 s for
/// the first byte of the response, 5 s between reads, 30 s for the whole exchange, and 1 s for
/// a `100 Continue` before the body is sent anyway.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct Timeouts {
    /// From the request being sent to the first byte of the response.
    pub first_byte_ms: Option<u32>,
    /// Each later read, and each write: the longest the stream may stay silent.
    pub idle_ms: Option<u32>,
    /// The whole exchange, from the first byte written to the end of the response body.
    pub exchange_ms: Option<u32>,
    /// After a head with `Expect: 100-continue`: how long to wait for `100 Continue` (or a
    /// final response) before sending the body anyway (RFC 9110 §10.1.1).
    pub continue_ms: u32,
}

impl Default for Timeouts {
    fn default() -> Self {
        Self {
            first_byte_ms: Some(10_000),
            idle_ms: Some(5_000),
            exchange_ms: Some(30_000),
            continue_ms: 1_000,
        }
    }
}

impl Timeouts {
    /// No deadline at all (the stream's own timeouts still apply).
    pub const fn none() -> Self {
        Self {
            first_byte_ms: None,
            idle_ms: None,
            exchange_ms: None,
            continue_ms: u32::MAX,
        }
    }
}

/// What the I/O shell is about to wait for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum Wait {
    /// A write (or flush) of the request.
    Write,
    /// The first byte of the response.
    FirstByte,
    /// More of the response, after it had started.
    Idle,
    /// A read while waiting for `100 Continue`.
    Continue,
}

/// The deadlines of the exchange in progress.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct Deadlines {
    timeouts: Timeouts,
    exchange_end: Option<u64>,
}

fn after(now: u64, ms: Option<u32>) -> Option<u64> {
    ms.map(|ms| now.saturating_add(u64::from(ms)))
}

impl Deadlines {
    /// The timeouts in force.
    pub fn timeouts(&self) -> Timeouts {
        self.timeouts
    }

    /// Changes the timeouts for the next exchanges.
    pub fn set_timeouts(&mut self, timeouts: Timeouts) {
        self.timeouts = timeouts;
    }

    /// Starts the deadlines of a new exchange at `now`, with the same timeouts.
    pub fn restart(&mut self, now: u64) {
        *self = Self::start(self.timeouts, now);
    }

    /// Deadlines for an exchange starting at `now` (milliseconds on the timer's clock).
    pub fn start(timeouts: Timeouts, now: u64) -> Self {
        Self {
            timeouts,
            exchange_end: after(now, timeouts.exchange_ms),
        }
    }

    /// The deadline for a wait starting at `now`, and the phase to report when it passes.
    /// For [`Wait::Continue`] the phase is `None`: running out means "send the body anyway".
    pub fn next(&self, wait: Wait, now: u64) -> Option<(u64, Option<TimeoutPhase>)> {
        let own = match wait {
            Wait::Write => after(now, self.timeouts.idle_ms).map(|t| (t, Some(TimeoutPhase::Send))),
            Wait::Idle => after(now, self.timeouts.idle_ms).map(|t| (t, Some(TimeoutPhase::Idle))),
            Wait::FirstByte => {
                after(now, self.timeouts.first_byte_ms).map(|t| (t, Some(TimeoutPhase::FirstByte)))
            }
            Wait::Continue => after(now, Some(self.timeouts.continue_ms)).map(|t| (t, None)),
        };
        match (own, self.exchange_end) {
            (Some((t, phase)), Some(end)) if t < end => Some((t, phase)),
            (_, Some(end)) => Some((end, Some(TimeoutPhase::Exchange))),
            (own, None) => own,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn first_byte_then_idle_capped_by_the_exchange() {
        let d = Deadlines::start(Timeouts::default(), 1_000);
        assert_eq!(
            d.next(Wait::Write, 1_000),
            Some((6_000, Some(TimeoutPhase::Send)))
        );
        assert_eq!(
            d.next(Wait::FirstByte, 2_000),
            Some((12_000, Some(TimeoutPhase::FirstByte)))
        );
        assert_eq!(d.next(Wait::Continue, 2_000), Some((3_000, None)));
        assert_eq!(
            d.next(Wait::Idle, 3_000),
            Some((8_000, Some(TimeoutPhase::Idle)))
        );
        // 31 s is the end of the exchange: it wins over an idle deadline past it.
        assert_eq!(
            d.next(Wait::Idle, 29_000),
            Some((31_000, Some(TimeoutPhase::Exchange)))
        );
    }

    #[test]
    fn unbounded_waits() {
        let d = Deadlines::start(Timeouts::none(), 0);
        assert_eq!(d.next(Wait::FirstByte, 5), None);
        assert_eq!(d.next(Wait::Write, 5), None);
        let only_total = Timeouts {
            exchange_ms: Some(100),
            ..Timeouts::none()
        };
        let d = Deadlines::start(only_total, 0);
        assert_eq!(
            d.next(Wait::Idle, 5),
            Some((100, Some(TimeoutPhase::Exchange)))
        );
        // Overflow saturates instead of wrapping.
        let d = Deadlines::start(Timeouts::default(), u64::MAX - 1);
        assert_eq!(
            d.next(Wait::FirstByte, u64::MAX - 1),
            Some((u64::MAX, Some(TimeoutPhase::Exchange)))
        );
    }
}
