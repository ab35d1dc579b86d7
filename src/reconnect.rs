//! Keeping a connection for a device's life: [`Client`] opens connections through a
//! [`Connect`]or the user implements (TCP, or TCP + TLS through [`rawpost::tls`](crate)), keeps
//! one open across many exchanges, and opens a new one when the server has closed it —
//! resending a request only when RFC 9112 §9.3.1 allows.
//!
//! Why a loop and not a `send` method: a TLS session from embedded-tls borrows its record
//! buffers and never gives them back, so a new session can only be opened once the old one is
//! gone *and* its borrow has ended. In Rust that is the end of a scope: [`Client::run`] holds
//! each connection in a scope of its own and hands it to the caller's [`Exchange`], again and
//! again, for as long as it lives. (`Exchange` is a trait with a generic method rather than a
//! closure: a closure would need a higher-ranked bound over the stream's lifetime, which Rust
//! can only satisfy with a `'static` connector.)

use core::ops::ControlFlow;
use core::pin::pin;

use embedded_io_async::{ErrorType, Read, Write};

use crate::error::{ConnectionError, Error};
use crate::proto::encode::Host;
use crate::proto::timing::Timeouts;
use crate::timer::{NoTimer, Timer};
use crate::Connection;

/// Opens the connections of a [`Client`]: a TCP connection, or TCP and a TLS session on it
/// (see [`tls::connect_stream`](crate) with the `embedded-tls` feature).
///
/// The stream may borrow the connector (a TLS session borrows its record buffers from it): it
/// is dropped before `connect` is called again.
#[allow(async_fn_in_trait)]
pub trait Connect {
    /// The error of the streams it opens.
    type StreamError: embedded_io::Error;
    /// One connection's stream.
    type Stream<'c>: Read + Write + ErrorType<Error = Self::StreamError>
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
    /// A connection could not be opened.
    Connect(C),
    /// An exchange failed, and neither reconnecting nor resending could mend it (RFC 9112
    /// §9.3.1 forbids resending a non-idempotent request that reached the server).
    Exchange(Error<E>),
    /// Opening a connection took longer than the client's connect timeout
    /// ([`Client::connect_timeout`]).
    ConnectTimedOut,
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
    /// The same request again, on a new connection: the server had closed the last one before
    /// answering, and RFC 9112 §9.3.1 allows sending it again (the request is idempotent, or
    /// no byte of it reached the server). Send the same request; don't wait again.
    Resend,
}

/// What a device does over a [`Client`]'s connection: one exchange (or several), each time
/// [`Client::run`] calls it.
///
/// ```no_run
/// use core::ops::ControlFlow;
/// use rawpost::{Attempt, Connect, Connection, Error, Exchange, Request, Timer};
///
/// /// Posts a reading, then waits a minute.
/// struct Report {
///     seq: u32,
/// }
///
/// impl<C: Connect, T: Timer> Exchange<C, T> for Report {
///     type Output = core::convert::Infallible;
///
///     async fn exchange<'s>(
///         &mut self,
///         conn: &mut Connection<'_, C::Stream<'s>, &mut T>,
///         attempt: Attempt,
///     ) -> Result<ControlFlow<Self::Output>, Error<C::StreamError>>
///     where
///         C: 's,
///     {
///         if attempt == Attempt::New {
///             self.seq += 1; // a resend carries the same reading
///         }
///         let req = Request::post("/v1/readings").idempotent();
///         let seq = self.seq;
///         let mut resp = conn
///             .send_with(&req, |buf| {
///                 let n = itoa_like(seq, buf);
///                 Ok::<_, ()>(n)
///             })
///             .await?;
///         resp.discard().await?;
///         // wait_a_minute().await;
///         Ok(ControlFlow::Continue(()))
///     }
/// }
/// # fn itoa_like(_: u32, _: &mut [u8]) -> usize { 0 }
/// ```
#[allow(async_fn_in_trait)]
pub trait Exchange<C: Connect, T: Timer> {
    /// What [`Client::run`] returns when an exchange says to stop.
    type Output;

    /// One exchange (or more) on `conn`, a connection that can carry a request. Return
    /// `ControlFlow::Continue(())` to be called again (on the same connection while the server
    /// keeps it), or `ControlFlow::Break(output)` to end the run. On
    /// [`Attempt::Resend`], send the same request again.
    async fn exchange<'s>(
        &mut self,
        conn: &mut Connection<'_, C::Stream<'s>, &mut T>,
        attempt: Attempt,
    ) -> Result<ControlFlow<Self::Output>, Error<C::StreamError>>
    where
        C: 's;
}

/// Keeps one connection to a host for as long as the server keeps it, and opens a new one
/// through its [`Connect`]or when needed. See the module documentation.
pub struct Client<'a, C, T = NoTimer> {
    connector: C,
    buf: &'a mut [u8],
    host: Host<'a>,
    timer: T,
    timeouts: Timeouts,
    connect_ms: Option<u32>,
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
            connect_ms: Some(CONNECT_TIMEOUT_MS),
        }
    }

    /// The same client with the waits of every exchange bounded by `timeouts`, and opening a
    /// connection bounded by [`CONNECT_TIMEOUT_MS`] (see [`Client::connect_timeout`]), measured
    /// with `timer`.
    pub fn timed<T: Timer>(self, timer: T, timeouts: Timeouts) -> Client<'a, C, T> {
        Client {
            connector: self.connector,
            buf: self.buf,
            host: self.host,
            timer,
            timeouts,
            connect_ms: self.connect_ms,
        }
    }
}

impl<'a, C: Connect, T: Timer> Client<'a, C, T> {
    /// Bounds opening a connection (the connector's `connect`: DNS, TCP, the TLS handshake) to
    /// `ms` milliseconds on the client's timer (`None`: the connector's own bounds only). The
    /// default is [`CONNECT_TIMEOUT_MS`]; without a timer there is no bound.
    #[must_use]
    pub fn connect_timeout(mut self, ms: Option<u32>) -> Self {
        self.connect_ms = ms;
        self
    }

    /// The connector, e.g. to change its settings between runs.
    pub fn connector(&mut self) -> &mut C {
        &mut self.connector
    }

    /// Calls `job`'s [`exchange`](Exchange::exchange) over a connection kept open for as long
    /// as the server keeps it, until it returns `Ok(ControlFlow::Break(output))`.
    ///
    /// A connection is opened before the first call, and again before a call whenever the last
    /// one ended: `Connection: close`, or the server closed it while it was idle. When an
    /// exchange fails because the server had closed the idle connection
    /// ([`ConnectionError::ClosedByServer`]), a new connection is opened and the exchange is
    /// called again with [`Attempt::Resend`] — once — if RFC 9112 §9.3.1 allows it: the request
    /// is idempotent (`GET`, `PUT`, `DELETE`..., or marked with
    /// [`Request::idempotent`](crate::Request::idempotent)), or no byte of it had been
    /// written. Any other error ends the run with [`ClientError::Exchange`]; call `run` again
    /// to go on (it opens a new connection).
    pub async fn run<J: Exchange<C, T>>(
        &mut self,
        job: &mut J,
    ) -> Result<J::Output, ClientError<C::Error, C::StreamError>> {
        let mut attempt = Attempt::New;
        loop {
            let deadline = match (T::ENABLED, self.connect_ms) {
                (true, Some(ms)) => Some(self.timer.now_ms().saturating_add(u64::from(ms))),
                _ => None,
            };
            let connecting = pin!(self.connector.connect(self.host));
            let stream = self
                .timer
                .run_until(deadline, connecting)
                .await
                .ok_or(ClientError::ConnectTimedOut)?
                .map_err(ClientError::Connect)?;
            crate::log::debug!("rawpost: connection to {} opened", self.host.name());
            let mut conn = Connection::with_timer(
                stream,
                &mut *self.buf,
                self.host,
                &mut self.timer,
                self.timeouts,
            );
            loop {
                match job.exchange(&mut conn, attempt).await {
                    Ok(ControlFlow::Break(value)) => return Ok(value),
                    Ok(ControlFlow::Continue(())) => {
                        attempt = Attempt::New;
                        if !conn.is_reusable() {
                            break;
                        }
                    }
                    Err(Error::Connection(ConnectionError::ClosedByServer))
                        if conn.may_resend() && attempt == Attempt::New =>
                    {
                        crate::log::debug!("rawpost: the server closed the connection; resending");
                        attempt = Attempt::Resend;
                        break;
                    }
                    Err(e) => return Err(ClientError::Exchange(e)),
                }
            }
        }
    }
}
