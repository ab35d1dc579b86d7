//! Time for the I/O shell's deadlines, from any executor.
//!
//! A [`Timer`] reads a monotonic millisecond clock and waits until a deadline. The async shell
//! races each read and write against it, so a deadline works the same on embassy, on tokio or
//! on a hand-written executor:
//!
//! - [`NoTimer`] (the default): no deadlines; nothing is raced and nothing is added to the
//!   futures.
//! - [`DelayTimer`]: any `embedded_hal_async::delay::DelayNs` plus a clock function.
//! - `EmbassyTimer` (feature `embassy-time`): embassy's global time driver.

use core::future::{poll_fn, Future};
use core::pin::{pin, Pin};
use core::task::Poll;

/// A monotonic millisecond clock that can wait until a deadline.
pub trait Timer {
    /// Whether deadlines are enforced. Only [`NoTimer`] says no.
    const ENABLED: bool = true;

    /// Milliseconds since an arbitrary, fixed origin; never decreasing.
    fn now_ms(&mut self) -> u64;

    /// Completes once [`now_ms`](Timer::now_ms) has reached `deadline_ms`.
    fn wait_until(&mut self, deadline_ms: u64) -> impl Future<Output = ()>;

    /// Runs `io` until it completes (`Some`) or `deadline_ms` passes (`None`). The provided
    /// version races `io` against [`wait_until`](Timer::wait_until); [`NoTimer`] just polls
    /// `io`. `io` is pinned by the caller, so the returned future holds only a reference to it
    /// (never a second copy of it).
    fn run_until<F: Future>(
        &mut self,
        deadline_ms: Option<u64>,
        io: Pin<&mut F>,
    ) -> impl Future<Output = Option<F::Output>> {
        async move {
            match deadline_ms {
                None => Some(io.await),
                Some(at) => race(io, self.wait_until(at)).await,
            }
        }
    }
}

/// Polls `io` and, while it is pending, `expiry`; `None` if `expiry` completes first.
async fn race<F: Future, W: Future<Output = ()>>(
    mut io: Pin<&mut F>,
    expiry: W,
) -> Option<F::Output> {
    let mut expiry = pin!(expiry);
    poll_fn(|cx| {
        if let Poll::Ready(v) = io.as_mut().poll(cx) {
            return Poll::Ready(Some(v));
        }
        if expiry.as_mut().poll(cx).is_ready() {
            return Poll::Ready(None);
        }
        Poll::Pending
    })
    .await
}

/// No deadlines: every wait lasts as long as the stream makes it last.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct NoTimer;

impl Timer for NoTimer {
    const ENABLED: bool = false;

    fn now_ms(&mut self) -> u64 {
        0
    }

    fn wait_until(&mut self, _deadline_ms: u64) -> impl Future<Output = ()> {
        core::future::pending()
    }

    fn run_until<F: Future>(
        &mut self,
        _deadline_ms: Option<u64>,
        mut io: Pin<&mut F>,
    ) -> impl Future<Output = Option<F::Output>> {
        poll_fn(move |cx| io.as_mut().poll(cx).map(Some))
    }
}

impl<T: Timer> Timer for &mut T {
    const ENABLED: bool = T::ENABLED;

    fn now_ms(&mut self) -> u64 {
        T::now_ms(self)
    }

    fn wait_until(&mut self, deadline_ms: u64) -> impl Future<Output = ()> {
        T::wait_until(self, deadline_ms)
    }

    fn run_until<F: Future>(
        &mut self,
        deadline_ms: Option<u64>,
        io: Pin<&mut F>,
    ) -> impl Future<Output = Option<F::Output>> {
        T::run_until(self, deadline_ms, io)
    }
}

/// A [`Timer`] from an `embedded-hal-async` delay and a millisecond clock function (for
/// example a HAL's system timer), for executors other than embassy.
#[derive(Debug, Clone)]
pub struct DelayTimer<D, C> {
    delay: D,
    clock: C,
}

impl<D, C> DelayTimer<D, C>
where
    D: embedded_hal_async::delay::DelayNs,
    C: FnMut() -> u64,
{
    /// Waits with `delay`; reads the time from `clock` (milliseconds, monotonic).
    pub fn new(delay: D, clock: C) -> Self {
        Self { delay, clock }
    }
}

impl<D, C> Timer for DelayTimer<D, C>
where
    D: embedded_hal_async::delay::DelayNs,
    C: FnMut() -> u64,
{
    fn now_ms(&mut self) -> u64 {
        (self.clock)()
    }

    async fn wait_until(&mut self, deadline_ms: u64) {
        loop {
            let now = (self.clock)();
            if now >= deadline_ms {
                return;
            }
            let ms = u32::try_from(deadline_ms - now).unwrap_or(u32::MAX);
            self.delay.delay_ms(ms).await;
        }
    }
}

/// A [`Timer`] on embassy's time driver.
#[cfg(feature = "embassy-time")]
#[cfg_attr(docsrs, doc(cfg(feature = "embassy-time")))]
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct EmbassyTimer;

#[cfg(feature = "embassy-time")]
impl Timer for EmbassyTimer {
    fn now_ms(&mut self) -> u64 {
        embassy_time::Instant::now().as_millis()
    }

    async fn wait_until(&mut self, deadline_ms: u64) {
        embassy_time::Timer::at(embassy_time::Instant::from_millis(deadline_ms)).await
    }
}
