//! How long each wait of an exchange may last, and the deadlines computed from them. Time is a
//! parameter of the connection's state machine (a clock reading passed in with each event),
//! never a global, so every rule is tested without waiting.

/// How long each wait of an exchange may last, in milliseconds. `None` leaves that wait
/// unbounded.
///
/// The defaults follow the hand-written ESP32 clients that work against real services: 10 s for
/// the first byte of the response, 5 s without progress while writing or reading, 30 s for the
/// whole response, and 1 s for a `100 Continue` before the body is sent anyway.
///
/// A request is bounded by `idle_ms` alone: each write may wait that long for the stream to take
/// bytes, so an upload of any length goes on for as long as it makes progress. The response is
/// bounded by all three: its first byte within `first_byte_ms` of the end of the request (and
/// again after each interim `1xx` response), each later read within `idle_ms`, and all of it
/// within `response_ms` of the end of the request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct Timeouts {
    /// From the end of the request (or of an interim `1xx` response) to the first byte of the
    /// response.
    pub first_byte_ms: Option<u32>,
    /// Each read after the response began, each write and flush of the request, and skipping the
    /// rest of an unread body before the next request: the longest the stream may make no
    /// progress.
    pub idle_ms: Option<u32>,
    /// The whole response, from the end of the request to the end of the body.
    pub response_ms: Option<u32>,
    /// After a head with `Expect: 100-continue`: how long to wait for `100 Continue` (or a
    /// final response) before sending the body anyway (RFC 9110 §10.1.1). `None`: the body is
    /// sent at once, as without a timer.
    pub continue_ms: Option<u32>,
}

impl Default for Timeouts {
    fn default() -> Self {
        Self {
            first_byte_ms: Some(10_000),
            idle_ms: Some(5_000),
            response_ms: Some(30_000),
            continue_ms: Some(1_000),
        }
    }
}

impl Timeouts {
    /// No deadline anywhere (the stream's own timeouts still apply); a request with
    /// `Expect: 100-continue` sends its body at once.
    pub const fn none() -> Self {
        Self {
            first_byte_ms: None,
            idle_ms: None,
            response_ms: None,
            continue_ms: None,
        }
    }
}

/// `now + ms`, when there is a clock and a bound; saturating.
pub(crate) fn after(now: Option<u64>, ms: Option<u32>) -> Option<u64> {
    match (now, ms) {
        (Some(now), Some(ms)) => Some(now.saturating_add(u64::from(ms))),
        _ => None,
    }
}

/// The earlier of two deadlines (`None` is never).
pub(crate) fn earlier(a: Option<u64>, b: Option<u64>) -> Option<u64> {
    match (a, b) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, None) => a,
        (None, b) => b,
    }
}

/// How long an idle connection is kept when the server announced `Keep-Alive: timeout=N`
/// (seconds): a little less than `N`, so that a request is not written into a connection the
/// server is closing as it arrives (the server's timer starts when it sent its last byte, ours
/// when we read it). `N` minus a quarter of it, at most one second less; `0` for `N = 0`.
pub(crate) const fn announced_idle_ms(seconds: u32) -> u32 {
    let ms = seconds.saturating_mul(1000);
    let margin = if ms / 4 < 1000 { ms / 4 } else { 1000 };
    ms - margin
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn deadlines() {
        assert_eq!(after(Some(1_000), Some(5_000)), Some(6_000));
        assert_eq!(after(None, Some(5_000)), None);
        assert_eq!(after(Some(1_000), None), None);
        assert_eq!(after(Some(u64::MAX - 1), Some(5)), Some(u64::MAX));
        assert_eq!(earlier(Some(3), Some(2)), Some(2));
        assert_eq!(earlier(None, Some(2)), Some(2));
        assert_eq!(earlier(Some(3), None), Some(3));
        assert_eq!(earlier(None, None), None);
    }

    #[test]
    fn announced_keep_alive_is_kept_a_little_less() {
        assert_eq!(announced_idle_ms(0), 0);
        assert_eq!(announced_idle_ms(1), 750);
        assert_eq!(announced_idle_ms(2), 1_500);
        assert_eq!(announced_idle_ms(4), 3_000);
        assert_eq!(announced_idle_ms(5), 4_000);
        assert_eq!(announced_idle_ms(300), 299_000);
        assert_eq!(announced_idle_ms(u32::MAX), u32::MAX - 1000);
    }

    #[test]
    fn none_bounds_nothing() {
        let t = Timeouts::none();
        assert_eq!(
            (t.first_byte_ms, t.idle_ms, t.response_ms, t.continue_ms),
            (None, None, None, None)
        );
    }
}
