//! A `rawpost::Timer` on tokio's clock: what `EmbassyTimer` is on a device. Shared by the host
//! examples (`#[path = "support/tokio_timer.rs"] mod tokio_timer;`).

use std::future::Future;
use std::time::Duration;

use tokio::time::Instant;

/// Milliseconds since it was made, and sleeps until a deadline on that scale.
pub struct TokioTimer(Instant);

impl TokioTimer {
    /// A timer whose zero is now.
    pub fn new() -> Self {
        Self(Instant::now())
    }
}

impl rawpost::Timer for TokioTimer {
    fn now_ms(&mut self) -> u64 {
        u64::try_from(self.0.elapsed().as_millis()).unwrap_or(u64::MAX)
    }

    fn wait_until(&mut self, deadline_ms: u64) -> impl Future<Output = ()> {
        tokio::time::sleep_until(self.0 + Duration::from_millis(deadline_ms))
    }
}
