//! The blocking I/O shell: the same client over `embedded_io::{Read, Write}`, for std users
//! (esp-idf-svc, host tools) and simple loops.
//!
//! It performs the steps of the same sans-IO core as the async
//! [`Connection`](crate::Connection), with the same loop; only `.await` is missing. A blocking
//! call cannot be raced, so deadlines need a [`Clock`] that can bound the next call on the
//! stream (a std `TcpStream`'s `set_read_timeout`, a socket option on esp-idf): a call that
//! returns an error of kind `TimedOut` after being bounded is the deadline passing. With the
//! default [`NoClock`] the waits are the stream's own, and the body of an
//! `Expect: 100-continue` request is sent at once (RFC 9110 §10.1.1 allows it) — exactly what
//! the async connection does without a timer. A differential test drives both shells through
//! the same scripted peers and the same fake clock and compares every byte written and every
//! result.
//!
//! ```no_run
//! # fn demo<S: embedded_io::Read + embedded_io::Write>(stream: S) -> Result<(), rawpost::Error<S::Error>> {
//! use rawpost::{blocking::Connection, Host, Request};
//! let mut buf = [0u8; 2048];
//! let mut conn = Connection::new(stream, &mut buf, Host::new("api.example.com"));
//! let mut resp = conn.send(&Request::post("/v1/data").with_body(b"{}"))?;
//! let mut body = [0u8; 256];
//! let n = resp.read_to_end(&mut body)?;
//! # let _ = n; Ok(()) }
//! ```

use embedded_io::{Error as _, ErrorKind, ErrorType, Read, ReadReady, Write};

use crate::error::Error;
use crate::proto::conn::{Core, Io, ReadMode};
use crate::proto::response::ResponseHead;
use crate::proto::timing::Timeouts;
use crate::request::Host;
use crate::request::Request;

/// Time for the blocking shell's deadlines: a monotonic millisecond clock, and a way to bound
/// the next blocking call on the stream.
///
/// ```
/// use std::net::TcpStream;
/// use std::time::{Duration, Instant};
///
/// /// Deadlines on a std TCP stream, through its read and write timeouts.
/// struct StdClock(Instant);
///
/// impl rawpost::blocking::Clock<embedded_io_adapters::std::FromStd<TcpStream>> for StdClock {
///     fn now_ms(&mut self) -> u64 {
///         self.0.elapsed().as_millis() as u64
///     }
///
///     fn bound(&mut self, stream: &mut embedded_io_adapters::std::FromStd<TcpStream>, until: Option<u64>) {
///         let left = until.map(|t| Duration::from_millis(t.saturating_sub(self.now_ms()).max(1)));
///         let _ = stream.inner().set_read_timeout(left);
///         let _ = stream.inner().set_write_timeout(left);
///     }
/// }
/// ```
///
/// (A std socket reports a passed timeout as `WouldBlock`, which `embedded-io-adapters` maps
/// to `ErrorKind::Other`: the shell counts any failure of a bounded call once the clock has
/// passed the deadline as the deadline passing.)
pub trait Clock<S> {
    /// Whether deadlines are enforced. Only [`NoClock`] says no.
    const ENABLED: bool = true;

    /// Milliseconds since an arbitrary, fixed origin; never decreasing.
    fn now_ms(&mut self) -> u64;

    /// Bounds the next call on `stream` (a read, a write or a flush) so that it returns by
    /// `until` (milliseconds on this clock), with an error if nothing happened by then.
    /// `None`: unbounded.
    fn bound(&mut self, stream: &mut S, until: Option<u64>);
}

/// No deadlines: every wait lasts as long as the stream makes it last.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct NoClock;

impl<S> Clock<S> for NoClock {
    const ENABLED: bool = false;

    fn now_ms(&mut self) -> u64 {
        0
    }

    fn bound(&mut self, _stream: &mut S, _until: Option<u64>) {}
}

fn time<S, C: Clock<S>>(clock: &mut C) -> Option<u64> {
    match C::ENABLED {
        true => Some(clock.now_ms()),
        false => None,
    }
}

/// A blocking connection to one host; see the async [`Connection`](crate::Connection), which
/// this mirrors. `C` is the [`Clock`] that bounds every wait; the default [`NoClock`] sets no
/// deadline.
pub struct Connection<'a, S, C = NoClock> {
    stream: S,
    buf: &'a mut [u8],
    host: Host<'a>,
    core: Core,
    clock: C,
    ready: Option<fn(&mut S) -> bool>,
}

impl<S, C> core::fmt::Debug for Connection<'_, S, C> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("blocking::Connection")
            .field("host", &self.host)
            .field("buffer", &self.buf.len())
            .field("closed", &self.core.closed_error())
            .finish_non_exhaustive()
    }
}

impl<'a, S> Connection<'a, S, NoClock> {
    /// A connection over `stream` to `host`, using `buf` for requests and responses, with no
    /// deadlines.
    pub fn new(stream: S, buf: &'a mut [u8], host: Host<'a>) -> Self {
        Self {
            stream,
            buf,
            host,
            core: Core::new(Timeouts::none()),
            clock: NoClock,
            ready: None,
        }
    }

    /// The same connection with its waits bounded by `timeouts`, measured and enforced with
    /// `clock`.
    pub fn timed<C: Clock<S>>(self, clock: C, timeouts: Timeouts) -> Connection<'a, S, C> {
        let mut core = self.core;
        core.set_timeouts(timeouts);
        Connection {
            stream: self.stream,
            buf: self.buf,
            host: self.host,
            core,
            clock,
            ready: self.ready,
        }
    }
}

impl<'a, S, C: Clock<S>> Connection<'a, S, C> {
    /// Changes the deadlines for the next waits.
    pub fn set_timeouts(&mut self, timeouts: Timeouts) {
        self.core.set_timeouts(timeouts);
    }

    /// The longest the connection is kept idle; see
    /// [`Connection::set_max_idle`](crate::Connection::set_max_idle).
    pub fn set_max_idle(&mut self, ms: Option<u32>) {
        self.core.set_max_idle(ms);
    }

    /// The host used for the `Host` header.
    pub fn host(&self) -> Host<'a> {
        self.host
    }

    /// Whether a request can be sent now; see
    /// [`Connection::is_reusable`](crate::Connection::is_reusable).
    pub fn is_reusable(&mut self) -> bool {
        let now = time(&mut self.clock);
        self.core.is_reusable(now)
    }

    /// Whether the last request may be sent again on a new connection; see
    /// [`Connection::may_resend`](crate::Connection::may_resend).
    pub fn may_resend(&self) -> bool {
        self.core.may_resend()
    }

    /// The stream, for inspection.
    pub fn stream(&self) -> &S {
        &self.stream
    }

    /// Gives the stream back.
    pub fn into_inner(self) -> S {
        self.stream
    }
}

impl<'a, S: Read + Write, C: Clock<S>> Connection<'a, S, C> {
    /// Performs the core's steps until the operation in progress is done.
    fn drive(&mut self, src: &[u8], out: &mut [u8]) -> Result<usize, Error<S::Error>> {
        let Self {
            stream,
            buf,
            core,
            clock,
            ..
        } = self;
        let mut now = time(clock);
        loop {
            let step = core.poll(buf, out, now)?;
            // The one deadline of this step, asked of the core only when there is a clock.
            let until = match (C::ENABLED, now) {
                (true, Some(now)) => core.until(now),
                _ => None,
            };
            // One call on the stream, bounded by `until` through the clock; `None` when it
            // timed out: it failed with `TimedOut`, or failed once the deadline had passed (a std
            // socket reports its timeout as `WouldBlock`). The clock is read again after it.
            macro_rules! call {
                ($io:expr) => {{
                    clock.bound(stream, until);
                    let r = $io;
                    now = time(clock);
                    match (r, until) {
                        (Err(e), Some(until))
                            if e.kind() == ErrorKind::TimedOut
                                || now.is_some_and(|n| n >= until) =>
                        {
                            None
                        }
                        (r, _) => Some(r),
                    }
                }};
            }
            let r = match Io::of(step, buf, src, out) {
                Io::Done(n) => return Ok(n),
                Io::Write(data) => call!(stream.write(data)).map(|r| core.on_write(r, now)),
                Io::Flush => call!(stream.flush()).map(|r| core.on_flush(r, now)),
                Io::Read(into) => call!(stream.read(into)).map(|r| core.on_read(r, now)),
            };
            match r {
                Some(r) => r?,
                None => core.on_timeout(now)?,
            }
        }
    }

    /// What must happen before a request; see the async shell.
    fn prepare(&mut self) -> Result<(), Error<S::Error>> {
        self.core.begin_settle();
        self.drive(&[], &mut [])?;
        if let Some(ready) = self.ready {
            if self.core.wants_probe() && ready(&mut self.stream) {
                self.core.begin_probe();
                self.drive(&[], &mut [])?;
            }
        }
        Ok(())
    }

    /// Sends a request and reads the response head; see
    /// [`Connection::send`](crate::Connection::send).
    pub fn send(&mut self, req: &Request<'_>) -> Result<Response<'_, 'a, S, C>, Error<S::Error>> {
        self.prepare()?;
        let now = time(&mut self.clock);
        self.core.begin_send(
            self.buf,
            &req.head,
            &self.host,
            req.body,
            req.idempotent,
            now,
        )?;
        self.drive(req.body, &mut [])?;
        Ok(Response { conn: self })
    }

    /// Sends a request whose body is written straight into the buffer; see
    /// [`Connection::send_with`](crate::Connection::send_with).
    pub fn send_with<F, BE>(
        &mut self,
        req: &Request<'_>,
        write_body: F,
    ) -> Result<Response<'_, 'a, S, C>, Error<S::Error>>
    where
        F: FnOnce(&mut [u8]) -> Result<usize, BE>,
    {
        self.prepare()?;
        let now = time(&mut self.clock);
        self.core.begin_send_with(
            self.buf,
            &req.head,
            &self.host,
            req.idempotent,
            now,
            write_body,
        )?;
        self.drive(&[], &mut [])?;
        Ok(Response { conn: self })
    }

    /// Sends the head of a request whose body is then streamed; see
    /// [`Connection::send_streaming`](crate::Connection::send_streaming).
    pub fn send_streaming(
        &mut self,
        req: &Request<'_>,
        length: Option<u64>,
    ) -> Result<BodyWriter<'_, 'a, S, C>, Error<S::Error>> {
        self.prepare()?;
        let now = time(&mut self.clock);
        self.core
            .begin_stream(self.buf, &req.head, &self.host, length, req.idempotent, now)?;
        self.drive(&[], &mut [])?;
        Ok(BodyWriter { conn: self })
    }
}

fn read_ready<S: ReadReady>(stream: &mut S) -> bool {
    stream.read_ready().unwrap_or(true)
}

impl<S: Read + Write + ReadReady, C: Clock<S>> Connection<'_, S, C> {
    /// Checks every kept connection before a request is written into it; see
    /// [`Connection::check_before_send`](crate::Connection::check_before_send).
    pub fn check_before_send(mut self) -> Self {
        self.ready = Some(read_ready::<S>);
        self
    }

    /// Checks, without waiting, whether this connection can still carry a request; see
    /// [`Connection::check_closed`](crate::Connection::check_closed).
    pub fn check_closed(&mut self) -> Result<bool, Error<S::Error>> {
        if self.core.is_idle() && read_ready(&mut self.stream) && self.core.begin_probe() {
            self.drive(&[], &mut [])?;
        }
        Ok(!self.is_reusable())
    }
}

/// The body of a streamed request; see [`BodyWriter`](crate::BodyWriter).
pub struct BodyWriter<'c, 'a, S, C = NoClock> {
    conn: &'c mut Connection<'a, S, C>,
}

impl<S: ErrorType, C> ErrorType for BodyWriter<'_, '_, S, C> {
    type Error = Error<S::Error>;
}

impl<S: Read + Write, C: Clock<S>> Write for BodyWriter<'_, '_, S, C> {
    fn write(&mut self, data: &[u8]) -> Result<usize, Self::Error> {
        let conn = &mut *self.conn;
        conn.core.begin_piece(conn.buf, data)?;
        conn.drive(data, &mut [])
    }

    fn flush(&mut self) -> Result<(), Self::Error> {
        let conn = &mut *self.conn;
        conn.core.begin_piece_flush()?;
        conn.drive(&[], &mut []).map(drop)
    }
}

impl<'c, 'a, S: Read + Write, C: Clock<S>> BodyWriter<'c, 'a, S, C> {
    /// Ends the body and reads the response head; see
    /// [`BodyWriter::finish`](crate::BodyWriter::finish).
    pub fn finish(self) -> Result<Response<'c, 'a, S, C>, Error<S::Error>> {
        let conn = self.conn;
        conn.core.begin_finish(conn.buf)?;
        conn.drive(&[], &mut [])?;
        Ok(Response { conn })
    }
}

/// A blocking response; see [`Response`](crate::Response).
pub struct Response<'c, 'a, S, C = NoClock> {
    conn: &'c mut Connection<'a, S, C>,
}

impl<S, C> Response<'_, '_, S, C> {
    fn buf(&self) -> &[u8] {
        self.conn.buf
    }

    fn core(&self) -> &Core {
        &self.conn.core
    }

    fn parsed(&self) -> &ResponseHead {
        self.conn.core.head().unwrap_or(&ResponseHead::NONE)
    }

    crate::response::response_accessors!();
}

impl<S: ErrorType, C> ErrorType for Response<'_, '_, S, C> {
    type Error = Error<S::Error>;
}

impl<S: Read + Write, C: Clock<S>> Read for Response<'_, '_, S, C> {
    /// Reads body bytes; `Ok(0)` means the body has ended correctly.
    fn read(&mut self, out: &mut [u8]) -> Result<usize, Self::Error> {
        let conn = &mut *self.conn;
        conn.core.begin_read(ReadMode::Some)?;
        conn.drive(&[], out)
    }
}

impl<S: Read + Write, C: Clock<S>> Response<'_, '_, S, C> {
    /// Reads the whole body into `out`; see
    /// [`Response::read_to_end`](crate::Response::read_to_end).
    pub fn read_to_end(&mut self, out: &mut [u8]) -> Result<usize, Error<S::Error>> {
        let conn = &mut *self.conn;
        conn.core.begin_read(ReadMode::ToEnd)?;
        conn.drive(&[], out)
    }

    /// Reads the rest of the body and drops it; returns how many bytes were dropped.
    pub fn discard(&mut self) -> Result<u64, Error<S::Error>> {
        let conn = &mut *self.conn;
        conn.core.begin_read(ReadMode::Discard)?;
        conn.drive(&[], &mut [])?;
        Ok(conn.core.skipped())
    }
}
