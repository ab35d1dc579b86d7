//! Keeping a connection for a device's life: [`Client`] opens connections through a
//! [`Connect`]or the user implements (TCP, or TCP + TLS through `rawpost::tls`), keeps one open
//! across many exchanges, checks it before every request, opens a new one when the server has
//! closed it, and sends a request again only when RFC 9112 §9.3.1 allows.
//!
//! Why a loop and not a `send` method: a TLS session from embedded-tls borrows its record
//! buffers and never gives them back, so a new session can only be opened once the old one is
//! gone *and* its borrow has ended. In Rust that is the end of a scope: [`Client::run`] holds
//! each connection in a scope of its own and hands it to the caller's [`Exchange`], again and
//! again, for as long as it lives. `Exchange` is a trait with one generic method (over the
//! stream and the timer) rather than a closure: that way it names no lifetime and needs no
//! bound.

use core::ops::ControlFlow;
use core::pin::pin;

use embedded_io_async::{ErrorType, Read, ReadReady, Write};

use crate::error::Error;
use crate::proto::timing::Timeouts;
use crate::request::Host;
use crate::timer::{NoTimer, Timer};
use crate::Connection;

/// Opens the connections of a [`Client`]: a TCP connection, or TCP and a TLS session on it
/// (`rawpost::tls::TlsConnector` with the `embedded-tls` feature).
///
/// The stream may borrow the connector (a TLS session borrows its record buffers from it): it
/// is dropped before `connect` is called again. It must tell, without waiting, whether bytes or
/// its end are ready (`ReadReady`), so that a kept connection the server has closed is found
/// before a request is written into it.
#[allow(async_fn_in_trait)]
pub trait Connect {
    /// The error of the streams it opens.
    type StreamError: embedded_io::Error;
    /// One connection's stream.
    type Stream<'c>: Read + Write + ReadReady + ErrorType<Error = Self::StreamError>
    where
        Self: 'c;
    /// Why a connection could not be opened (DNS, TCP, the TLS handshake...).
    type Error: core::fmt::Debug;

    /// Opens a new connection to `host`. For TLS, use `host.name()` as the server name: it is
    /// the same value the `Host` header is written from.
    async fn connect(&mut self, host: Host<'_>) -> Result<Self::Stream<'_>, Self::Error>;
}

impl<C: Connect> Connect for &mut C {
    type StreamError = C::StreamError;
    type Stream<'c>
        = C::Stream<'c>
    where
        Self: 'c;
    type Error = C::Error;

    async fn connect(&mut self, host: Host<'_>) -> Result<Self::Stream<'_>, Self::Error> {
        C::connect(self, host).await
    }
}

/// Why [`Client::run`] stopped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
#[non_exhaustive]
pub enum ClientError<C, E> {
    /// A connection could not be opened. The next [`Client::run`] waits before it tries again
    /// (see [`Backoff`]).
    Connect(C),
    /// An exchange failed, and neither reconnecting nor resending could mend it: the request may
    /// have been processed and is not idempotent (RFC 9112 §9.3.1 forbids resending it
    /// automatically), or it failed on what the server sent.
    /// [`Error::may_have_been_processed`] says whether it may have reached the server.
    Exchange(Error<E>),
    /// Opening a connection took longer than the client's connect timeout
    /// ([`Client::connect_timeout`]).
    ConnectTimedOut,
}

impl<C, E> ClientError<C, E> {
    /// Whether the request of the failed exchange may have been processed by the server (see
    /// [`Error::may_have_been_processed`]); `false` when no connection could be opened.
    pub const fn may_have_been_processed(&self) -> bool {
        match self {
            Self::Exchange(e) => e.may_have_been_processed(),
            Self::Connect(_) | Self::ConnectTimedOut => false,
        }
    }
}

impl<C: core::fmt::Debug, E: core::fmt::Debug> core::fmt::Display for ClientError<C, E> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            Self::Connect(e) => write!(f, "could not open a connection: {e:?}"),
            Self::Exchange(e) => e.fmt(f),
            Self::ConnectTimedOut => f.write_str("opening a connection timed out"),
        }
    }
}

impl<C: core::fmt::Debug, E: core::fmt::Debug> core::error::Error for ClientError<C, E> {}

/// Whether an exchange runs for a new request or again for the same one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum Attempt {
    /// The first attempt of a request.
    New,
    /// The same request again, on a new connection: the last attempt failed before any byte of
    /// it was written (the connection had been closed by the server, had expired, ...), or the
    /// connection ended before any byte of its response and it is idempotent (RFC 9112
    /// §9.3.1). Send the same request; don't wait again.
    Resend,
}

/// What a device does over a [`Client`]'s connection: one request, each time [`Client::run`]
/// calls it.
///
/// Send exactly one request per call: when it fails in a way that allows sending it again,
/// the client opens a new connection and calls again with [`Attempt::Resend`], so only the
/// request that failed is repeated.
///
/// ```no_run
/// use core::ops::ControlFlow;
/// use rawpost::{Attempt, Connection, Error, Exchange, Request, Timer};
///
/// /// Posts a reading, then waits a minute.
/// struct Report {
///     seq: u32,
/// }
///
/// impl Exchange for Report {
///     type Output = core::convert::Infallible;
///
///     async fn exchange<S, T>(
///         &mut self,
///         conn: &mut Connection<'_, S, T>,
///         attempt: Attempt,
///     ) -> Result<ControlFlow<Self::Output>, Error<S::Error>>
///     where
///         S: embedded_io_async::Read + embedded_io_async::Write,
///         T: Timer,
///     {
///         if attempt == Attempt::New {
///             self.seq += 1; // a resend carries the same reading
///         }
///         let seq = self.seq;
///         let req = Request::post("/v1/readings");
///         let mut resp = conn.send_with(&req, |buf| Ok::<_, ()>(itoa_like(seq, buf))).await?;
///         resp.discard().await?;
///         // wait_a_minute().await;
///         Ok(ControlFlow::Continue(()))
///     }
/// }
/// # fn itoa_like(_: u32, _: &mut [u8]) -> usize { 0 }
/// ```
#[allow(async_fn_in_trait)]
pub trait Exchange {
    /// What [`Client::run`] returns when an exchange says to stop.
    type Output;

    /// One request on `conn`, a connection that can carry it. Return
    /// `ControlFlow::Continue(())` to be called again (on the same connection while the server
    /// keeps it), or `ControlFlow::Break(output)` to end the run. On [`Attempt::Resend`], send
    /// the same request again.
    async fn exchange<S, T>(
        &mut self,
        conn: &mut Connection<'_, S, T>,
        attempt: Attempt,
    ) -> Result<ControlFlow<Self::Output>, Error<S::Error>>
    where
        S: Read + Write,
        T: Timer;
}

/// How long [`Client`] waits before opening a connection again after opening one failed:
/// `first_ms` after the first failure, doubling with each failure in a row up to `max_ms`, each
/// wait jittered to between half and all of it (from the client's jitter source), so that a
/// fleet of devices does not reconnect in step to a server that is down or restarting.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct Backoff {
    /// The wait after the first failure, in milliseconds.
    pub first_ms: u32,
    /// The longest wait, in milliseconds.
    pub max_ms: u32,
}

impl Default for Backoff {
    /// 500 ms, doubling up to 60 s.
    fn default() -> Self {
        Self {
            first_ms: 500,
            max_ms: 60_000,
        }
    }
}

impl Backoff {
    /// The wait after `failures` failures in a row (at least 1), before jitter.
    pub fn delay_ms(&self, failures: u32) -> u32 {
        let doublings = failures.saturating_sub(1).min(31);
        self.first_ms
            .saturating_mul(1u32 << doublings)
            .min(self.max_ms)
    }

    /// The wait after `failures` failures in a row, jittered by `random`: between half and all
    /// of [`delay_ms`](Backoff::delay_ms).
    pub fn jittered_ms(&self, failures: u32, random: u32) -> u32 {
        let d = self.delay_ms(failures);
        let half = d / 2;
        half + random % (d - half + 1)
    }
}

/// Keeps one connection to a host for as long as the server keeps it, and opens a new one
/// through its [`Connect`]or when needed. See the module documentation.
pub struct Client<'a, C, T = NoTimer> {
    connector: C,
    buf: &'a mut [u8],
    host: Host<'a>,
    timer: T,
    timeouts: Timeouts,
    max_idle_ms: Option<u32>,
    dial: Dial<'a>,
}

/// How connections are opened: the bound, the waits after failures, and the count.
struct Dial<'a> {
    connect_ms: Option<u32>,
    backoff: Backoff,
    jitter: Option<&'a mut dyn FnMut() -> u32>,
    /// The state of the built-in jitter (xorshift), when the caller gave no source.
    seed: u32,
    /// Connections that failed to open in a row.
    failures: u32,
    /// Connections opened.
    opened: u32,
}

impl Dial<'_> {
    /// A random number for the backoff's jitter.
    fn random<T: Timer>(&mut self, timer: &mut T) -> u32 {
        if let Some(source) = self.jitter.as_mut() {
            return source();
        }
        if self.seed == 0 {
            // Seeded from the clock, never zero (xorshift's fixed point).
            self.seed = (timer.now_ms() as u32) | 1;
        }
        let mut x = self.seed;
        x ^= x << 13;
        x ^= x >> 17;
        x ^= x << 5;
        self.seed = x;
        x
    }

    /// Waits the backoff after failures to connect (with a timer), then opens a connection.
    async fn open<'c, C: Connect, T: Timer>(
        &mut self,
        connector: &'c mut C,
        timer: &mut T,
        host: Host<'_>,
    ) -> Result<C::Stream<'c>, ClientError<C::Error, C::StreamError>> {
        if T::ENABLED && self.failures > 0 {
            let random = self.random(timer);
            let wait = self.backoff.jittered_ms(self.failures, random);
            crate::log::debug!("rawpost: waiting {} ms before connecting again", wait);
            let until = timer.now_ms().saturating_add(u64::from(wait));
            timer.wait_until(until).await;
        }
        let deadline = match (T::ENABLED, self.connect_ms) {
            (true, Some(ms)) => Some(timer.now_ms().saturating_add(u64::from(ms))),
            _ => None,
        };
        let connecting = pin!(connector.connect(host));
        match timer.run_until(deadline, connecting).await {
            Some(Ok(stream)) => {
                self.failures = 0;
                self.opened = self.opened.saturating_add(1);
                crate::log::debug!("rawpost: connection to {} opened", host.name());
                Ok(stream)
            }
            Some(Err(e)) => {
                self.failures = self.failures.saturating_add(1);
                Err(ClientError::Connect(e))
            }
            None => {
                self.failures = self.failures.saturating_add(1);
                Err(ClientError::ConnectTimedOut)
            }
        }
    }
}

/// How long opening a connection may take by default, with a timer: TCP, and a TLS handshake
/// (which takes about a second on an ESP32-C3 with a P-384 root).
pub const CONNECT_TIMEOUT_MS: u32 = 20_000;

impl<'a, C: Connect> Client<'a, C, NoTimer> {
    /// A client for `host` whose connections are opened by `connector` and use `buf`, with no
    /// deadlines.
    pub fn new(connector: C, buf: &'a mut [u8], host: Host<'a>) -> Self {
        Self {
            connector,
            buf,
            host,
            timer: NoTimer,
            timeouts: Timeouts::none(),
            max_idle_ms: None,
            dial: Dial {
                connect_ms: Some(CONNECT_TIMEOUT_MS),
                backoff: Backoff::default(),
                jitter: None,
                seed: 0,
                failures: 0,
                opened: 0,
            },
        }
    }

    /// The same client with the waits of every exchange bounded by `timeouts`, opening a
    /// connection bounded by [`CONNECT_TIMEOUT_MS`] (see [`Client::connect_timeout`]), and the
    /// [`Backoff`] waits, measured with `timer`.
    pub fn timed<T: Timer>(self, timer: T, timeouts: Timeouts) -> Client<'a, C, T> {
        Client {
            connector: self.connector,
            buf: self.buf,
            host: self.host,
            timer,
            timeouts,
            max_idle_ms: self.max_idle_ms,
            dial: self.dial,
        }
    }
}

impl<'a, C: Connect, T: Timer> Client<'a, C, T> {
    /// Bounds opening a connection (the connector's `connect`: DNS, TCP, the TLS handshake) to
    /// `ms` milliseconds on the client's timer (`None`: the connector's own bounds only). The
    /// default is [`CONNECT_TIMEOUT_MS`]; without a timer there is no bound.
    #[must_use]
    pub fn connect_timeout(mut self, ms: Option<u32>) -> Self {
        self.dial.connect_ms = ms;
        self
    }

    /// The longest a connection is kept idle and then written into, for servers that do not
    /// announce their keep-alive timeout (`Keep-Alive: timeout=N`; the shorter counts). Set it
    /// a little below the server's idle timeout (nginx's `keepalive_timeout`, 75 s by default)
    /// so that no request is written into a connection the server is closing. Needs a timer.
    #[must_use]
    pub fn max_idle(mut self, ms: Option<u32>) -> Self {
        self.max_idle_ms = ms;
        self
    }

    /// How long to wait before opening a connection again after opening one failed (the
    /// default: [`Backoff::default`]). Needs a timer.
    #[must_use]
    pub fn backoff(mut self, backoff: Backoff) -> Self {
        self.dial.backoff = backoff;
        self
    }

    /// The source of randomness that jitters the [`Backoff`] waits (a hardware RNG, say).
    /// Without one, a small generator seeded from the timer's clock at the first failure is
    /// used: enough to spread devices that started at different times, not ones that booted
    /// together.
    #[must_use]
    pub fn jitter(mut self, source: &'a mut dyn FnMut() -> u32) -> Self {
        self.dial.jitter = Some(source);
        self
    }

    /// The connector, e.g. to change its settings between runs.
    pub fn connector(&mut self) -> &mut C {
        &mut self.connector
    }

    /// How many connections this client has opened.
    pub fn connections_opened(&self) -> u32 {
        self.dial.opened
    }

    /// Calls `job`'s [`exchange`](Exchange::exchange) over a connection kept open for as long
    /// as the server keeps it, until it returns `Ok(ControlFlow::Break(output))`.
    ///
    /// A connection is opened before the first call, and again before a call whenever the last
    /// one can carry no more requests: `Connection: close`, closed by the server while idle
    /// (asked of the stream without waiting, before every request), idle longer than the server
    /// keeps it (`Keep-Alive: timeout=N`, or [`max_idle`](Client::max_idle)). When a request
    /// fails in a way that RFC 9112 §9.3.1 allows to mend — no byte of it was written, or the
    /// connection ended before any byte of its response and the request is idempotent (`GET`,
    /// `PUT`, `DELETE`..., or marked [`Request::idempotent`](crate::Request::idempotent)) — a
    /// new connection is opened and the job is called again with [`Attempt::Resend`], once.
    /// Any other failure ends the run with [`ClientError::Exchange`], whose
    /// [`may_have_been_processed`](ClientError::may_have_been_processed) says whether the
    /// request may have reached the server; a connection that could not be opened ends it with
    /// [`ClientError::Connect`]. Call `run` again to go on: it opens a new connection, after the
    /// [`Backoff`] wait if opening failed.
    pub async fn run<J: Exchange>(
        &mut self,
        job: &mut J,
    ) -> Result<J::Output, ClientError<C::Error, C::StreamError>> {
        let mut attempt = Attempt::New;
        loop {
            let Self {
                connector,
                buf,
                host,
                timer,
                timeouts,
                max_idle_ms,
                dial,
            } = self;
            let stream = dial.open(connector, timer, *host).await?;
            let mut conn = Connection::new(stream, buf, *host)
                .timed(&mut *timer, *timeouts)
                .check_before_send();
            conn.set_max_idle(*max_idle_ms);
            loop {
                match job.exchange(&mut conn, attempt).await {
                    Ok(ControlFlow::Break(value)) => return Ok(value),
                    Ok(ControlFlow::Continue(())) => {
                        attempt = Attempt::New;
                        // Checked before the next call: the job may have waited.
                        if conn.check_closed().await.unwrap_or(true) {
                            crate::log::debug!(
                                "rawpost: the kept connection is over; reconnecting"
                            );
                            break;
                        }
                    }
                    Err(e) if conn.may_resend() && attempt == Attempt::New => {
                        crate::log::debug!(
                            "rawpost: {}; sending it again on a new connection",
                            e.name()
                        );
                        attempt = Attempt::Resend;
                        break;
                    }
                    Err(e) => return Err(ClientError::Exchange(e)),
                }
            }
        }
    }
}
