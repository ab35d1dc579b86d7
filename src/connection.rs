//! The async I/O shell: it performs the [`Step`]s that the connection's state machine
//! ([`Core`]) asks for on an `embedded_io_async` stream, racing each wait against the one
//! deadline the step names on a [`Timer`], and passes the time in with every event. It decides
//! nothing: every rule of the exchange and of the connection's life is in the core. This is the
//! only module that awaits.

use core::pin::pin;

use embedded_io_async::{ErrorType, Read, ReadReady, Write};

use crate::error::Error;
use crate::proto::conn::{Core, Io, ReadMode};
use crate::proto::response::ResponseHead;
use crate::proto::timing::Timeouts;
use crate::request::Host;
use crate::request::Request;
use crate::timer::{NoTimer, Timer};

/// A connection to one host: it owns the stream and borrows one buffer for everything.
///
/// The buffer holds the encoded request (head and, when it fits, body), then the response head,
/// the trailers, and the body bytes that arrived with them. Its size bounds the request head and
/// the response head; bodies of any size stream through it.
///
/// After a response on HTTP/1.1 without `Connection: close`, the next
/// [`send`](Connection::send) goes over the same stream. A body left unread is skipped first
/// when that is bounded ([`DRAIN_BUDGET`](crate::DRAIN_BUDGET)). Before writing into a kept
/// connection it checks, without waiting, what it can: that the connection has not been idle
/// longer than the server keeps it (`Keep-Alive: timeout=N`, or
/// [`set_max_idle`](Connection::set_max_idle); needs a timer), and, after
/// [`check_before_send`](Connection::check_before_send), that the server has not closed it.
/// A request refused that way was not written, and the error says so
/// ([`Error::may_have_been_processed`] is `false`); [`into_inner`](Connection::into_inner)
/// always gives the stream back.
///
/// `T` is the [`Timer`] that bounds every wait (see [`Connection::timed`]); the default
/// [`NoTimer`] sets no deadline.
pub struct Connection<'a, S, T = NoTimer> {
    stream: S,
    buf: &'a mut [u8],
    host: Host<'a>,
    core: Core,
    timer: T,
    /// Asks the stream, without waiting, whether bytes or its end are ready (`ReadReady`), to
    /// check a kept connection before writing into it.
    ready: Option<fn(&mut S) -> bool>,
}

impl<S, T> core::fmt::Debug for Connection<'_, S, T> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Connection")
            .field("host", &self.host)
            .field("buffer", &self.buf.len())
            .field("closed", &self.core.closed_error())
            .finish_non_exhaustive()
    }
}

/// The timer's clock, when there is one.
fn clock<T: Timer>(timer: &mut T) -> Option<u64> {
    match T::ENABLED {
        true => Some(timer.now_ms()),
        false => None,
    }
}

impl<'a, S> Connection<'a, S, NoTimer> {
    /// A connection over `stream` to `host`, using `buf` for requests and responses, with no
    /// deadlines (the stream's own timeouts apply). Without a timer, a request with
    /// `Expect: 100-continue` sends its body at once (RFC 9110 §10.1.1 allows it).
    ///
    /// For TLS, give the same [`Host`] to the TLS helper that opens the session, so the server
    /// name and the `Host` header cannot disagree.
    pub fn new(stream: S, buf: &'a mut [u8], host: Host<'a>) -> Self {
        Self {
            stream,
            buf,
            host,
            core: Core::new(Timeouts::none()),
            timer: NoTimer,
            ready: None,
        }
    }

    /// The same connection with its waits bounded by `timeouts`, measured with `timer` (for
    /// example `EmbassyTimer`, or a [`DelayTimer`](crate::DelayTimer) on any executor).
    pub fn timed<T: Timer>(self, timer: T, timeouts: Timeouts) -> Connection<'a, S, T> {
        let mut core = self.core;
        core.set_timeouts(timeouts);
        Connection {
            stream: self.stream,
            buf: self.buf,
            host: self.host,
            core,
            timer,
            ready: self.ready,
        }
    }
}

impl<'a, S, T: Timer> Connection<'a, S, T> {
    /// Changes the deadlines for the next waits.
    pub fn set_timeouts(&mut self, timeouts: Timeouts) {
        self.core.set_timeouts(timeouts);
    }

    /// The longest this connection is kept idle and then written into, for servers that do not
    /// announce their keep-alive timeout (`Keep-Alive: timeout=N`); the shorter of the two
    /// counts. Once idle longer, a request is refused with
    /// [`ConnectionError::Expired`](crate::ConnectionError::Expired) without writing anything.
    /// Needs a timer. `None` (the default): only what the server announced.
    pub fn set_max_idle(&mut self, ms: Option<u32>) {
        self.core.set_max_idle(ms);
    }

    /// The host used for the `Host` header.
    pub fn host(&self) -> Host<'a> {
        self.host
    }

    /// Whether a request can be sent now: the last response was read to its end (or its rest
    /// will be skipped first), kept the connection, and the connection has not been idle longer
    /// than the server keeps it. It does not ask the stream; see
    /// [`check_closed`](Connection::check_closed).
    pub fn is_reusable(&mut self) -> bool {
        let now = clock(&mut self.timer);
        self.core.is_reusable(now)
    }

    /// Whether the last request may be sent again on a new connection, as RFC 9112 §9.3.1
    /// allows: it failed before any byte of it was written, or the connection ended before
    /// any byte of its response and it is idempotent (its method, or
    /// [`Request::idempotent`]). Exact, where [`Error::may_have_been_processed`] errs on the
    /// side of "maybe".
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

impl<'a, S: Read + Write, T: Timer> Connection<'a, S, T> {
    /// Performs the core's steps until the operation in progress is done. `src` is the caller's
    /// body for [`Step::WriteSrc`], `out` its slice for body reads.
    async fn drive(&mut self, src: &[u8], out: &mut [u8]) -> Result<usize, Error<S::Error>> {
        let Self {
            stream,
            buf,
            core,
            timer,
            ..
        } = self;
        loop {
            // The clock is read for each step, and again after its wait for the event: no
            // reading is held across the wait.
            let now = clock(timer);
            let step = core.poll(buf, out, now)?;
            // The one deadline of this step, asked of the core only when there is a clock.
            let until = match (T::ENABLED, now) {
                (true, Some(now)) => core.until(now),
                _ => None,
            };
            // One wait of the stream, raced against `until` (just polled with `NoTimer`): the
            // stream's future is pinned here, so the race holds only a reference to it. `None`
            // when the deadline passed first.
            macro_rules! wait {
                ($io:expr) => {{
                    let io = pin!($io);
                    timer.run_until(until, io).await
                }};
            }
            // One await per kind of wait (the slice chosen first): each await is code in
            // every future that drives the core.
            let r = match Io::of(step, buf, src, out) {
                Io::Done(n) => return Ok(n),
                Io::Write(data) => {
                    wait!(stream.write(data)).map(|r| core.on_write(r, clock(timer)))
                }
                Io::Flush => wait!(stream.flush()).map(|r| core.on_flush(r, clock(timer))),
                Io::Read(into) => wait!(stream.read(into)).map(|r| core.on_read(r, clock(timer))),
            };
            match r {
                Some(r) => r?,
                // Only a timer makes a wait end early.
                None if T::ENABLED => core.on_timeout(clock(timer))?,
                None => {}
            }
        }
    }

    /// What must happen before a request: the rest of an unread body skipped, and a kept
    /// connection checked when the stream can say whether the server closed it.
    async fn prepare(&mut self) -> Result<(), Error<S::Error>> {
        self.core.begin_settle();
        // The settle, then (once) the probe: one await of `drive`, so one copy of its future.
        let mut probe = self.ready;
        loop {
            self.drive(&[], &mut []).await?;
            match probe.take() {
                Some(ready) if self.core.wants_probe() && ready(&mut self.stream) => {
                    self.core.begin_probe();
                }
                _ => return Ok(()),
            }
        }
    }

    /// Sends a request and reads the response head.
    ///
    /// Head and body go out in one write when they fit the buffer; otherwise the head is
    /// written, then the body straight from the request's slice. Interim (1xx) responses are
    /// skipped.
    ///
    /// With an `Expect: 100-continue` header, a body and a timer, the head is sent alone; the
    /// body follows once the server answers `100 Continue`, or when
    /// [`Timeouts::continue_ms`] has passed without an answer. A final response before that is
    /// returned without the body being sent (and the connection is then not reusable). The
    /// stream's `read` must be cancel-safe for that wait to end early, as embassy-net's TCP
    /// socket is. Without a timer the body is sent at once.
    pub async fn send(
        &mut self,
        req: &Request<'_>,
    ) -> Result<Response<'_, 'a, S, T>, Error<S::Error>> {
        self.prepare().await?;
        let now = clock(&mut self.timer);
        self.core.begin_send(
            self.buf,
            &req.head,
            &self.host,
            req.body,
            req.idempotent,
            now,
        )?;
        self.drive(req.body, &mut []).await?;
        Ok(Response { conn: self })
    }

    /// Sends a request whose body is written by `write_body` straight into the buffer, behind
    /// the room reserved for the head, so no second buffer is needed (for example
    /// `|buf| serde_json_core::to_slice(&value, buf)`). `write_body` is given all of the
    /// buffer behind that room and returns the body's length; the head is then encoded right in
    /// front of the body and both go out in one write.
    ///
    /// The request's own body, if any, is not sent. If `write_body` fails, or reports more bytes
    /// than it was given, the result is [`RequestError::BodyWriter`](crate::RequestError) and
    /// nothing is written. `Expect: 100-continue` is honoured as by [`send`](Connection::send).
    pub async fn send_with<F, BE>(
        &mut self,
        req: &Request<'_>,
        write_body: F,
    ) -> Result<Response<'_, 'a, S, T>, Error<S::Error>>
    where
        F: FnOnce(&mut [u8]) -> Result<usize, BE>,
    {
        self.prepare().await?;
        let now = clock(&mut self.timer);
        self.core.begin_send_with(
            self.buf,
            &req.head,
            &self.host,
            req.idempotent,
            now,
            write_body,
        )?;
        self.drive(&[], &mut []).await?;
        Ok(Response { conn: self })
    }

    /// Sends the head of a request whose body the caller then writes piece by piece through
    /// the returned [`BodyWriter`] (a log file, a sensor buffer: a body larger than any buffer).
    ///
    /// With `Some(length)` the body is sent with `Content-Length: length`, each piece straight
    /// from the caller's slice; a body that ends up longer or shorter is
    /// [`RequestError::BodyLengthMismatch`](crate::RequestError). With `None` it is sent as
    /// `Transfer-Encoding: chunked`, each piece framed in the buffer and written with one
    /// write. The request's own body is not sent. Each write may wait
    /// [`Timeouts::idle_ms`] for the stream to take bytes; an upload that makes progress is
    /// never cut short.
    ///
    /// `Expect: 100-continue` is honoured as by [`send`](Connection::send): with a timer, this
    /// returns once the `100` came or the wait ran out; if the server answered with a final
    /// status instead, writing the body fails with
    /// [`ConnectionError::AnsweredBeforeBody`](crate::ConnectionError::AnsweredBeforeBody) and
    /// [`BodyWriter::finish`] returns that response.
    pub async fn send_streaming(
        &mut self,
        req: &Request<'_>,
        length: Option<u64>,
    ) -> Result<BodyWriter<'_, 'a, S, T>, Error<S::Error>> {
        self.prepare().await?;
        let now = clock(&mut self.timer);
        self.core
            .begin_stream(self.buf, &req.head, &self.host, length, req.idempotent, now)?;
        self.drive(&[], &mut []).await?;
        Ok(BodyWriter { conn: self })
    }
}

/// Reads whether a stream has bytes (or its end) ready; an error counts as ready, so that the
/// read that follows reports it.
fn read_ready<S: ReadReady>(stream: &mut S) -> bool {
    stream.read_ready().unwrap_or(true)
}

impl<S: Read + Write + ReadReady, T: Timer> Connection<'_, S, T> {
    /// Checks every kept connection before a request is written into it: when the stream
    /// says bytes or its end are ready while the connection is idle, it reads them first — an
    /// end means the server closed it, bytes answer no request — and the request is refused
    /// without writing anything ([`ConnectionError::ClosedByServer`](crate::ConnectionError),
    /// [`ConnectionError::Unsolicited`](crate::ConnectionError)). The stream must not wait in
    /// `read` when `read_ready` said yes (as `ReadReady` promises): embassy-net's TCP socket and
    /// rawpost's `TlsStream` keep that promise. [`Client`](crate::Client) turns this on.
    pub fn check_before_send(mut self) -> Self {
        self.ready = Some(read_ready::<S>);
        self
    }

    /// Checks, without waiting, whether this connection can still carry a request: `Ok(true)`
    /// when the server has closed it (the stream is at its end, or bytes arrived that answer
    /// no request), it has been idle too long, or it is closed for any other reason.
    /// `Err(Error::Io)` names a stream that failed while idle (say, a TLS stack that could not
    /// handle a message the server sent); the connection is then closed, and no request was
    /// written into it.
    pub async fn check_closed(&mut self) -> Result<bool, Error<S::Error>> {
        if self.core.is_idle() && read_ready(&mut self.stream) && self.core.begin_probe() {
            self.drive(&[], &mut []).await?;
        }
        Ok(!self.is_reusable())
    }
}

/// The body of a streamed request, written piece by piece; [`finish`](BodyWriter::finish)
/// ends it and reads the response head. Leaving it unfinished makes the connection unusable.
pub struct BodyWriter<'c, 'a, S, T = NoTimer> {
    conn: &'c mut Connection<'a, S, T>,
}

impl<S: ErrorType, T> ErrorType for BodyWriter<'_, '_, S, T> {
    type Error = Error<S::Error>;
}

impl<S: Read + Write, T: Timer> Write for BodyWriter<'_, '_, S, T> {
    /// Sends part of the body: with a known length, straight from `data`; chunked, as one chunk
    /// framed in the buffer (a piece larger than the buffer is cut to fit, as `write` allows).
    async fn write(&mut self, data: &[u8]) -> Result<usize, Self::Error> {
        let conn = &mut *self.conn;
        conn.core.begin_piece(conn.buf, data)?;
        conn.drive(data, &mut []).await
    }

    async fn flush(&mut self) -> Result<(), Self::Error> {
        let conn = &mut *self.conn;
        conn.core.begin_piece_flush()?;
        conn.drive(&[], &mut []).await.map(drop)
    }
}

impl<'c, 'a, S: Read + Write, T: Timer> BodyWriter<'c, 'a, S, T> {
    /// Ends the body (for chunked, with the last chunk), flushes, and reads the response head.
    /// A known-length body that is still short is
    /// [`RequestError::BodyLengthMismatch`](crate::RequestError).
    pub async fn finish(self) -> Result<Response<'c, 'a, S, T>, Error<S::Error>> {
        let conn = self.conn;
        conn.core.begin_finish(conn.buf)?;
        conn.drive(&[], &mut []).await?;
        Ok(Response { conn })
    }
}

/// A response: its head is parsed, its body is read through [`embedded_io_async::Read`] (or
/// [`read_to_end`](Response::read_to_end), [`discard`](Response::discard)).
///
/// It borrows the connection; the next request can be sent once the response is no longer
/// used. A body left unread is skipped before the next request when that is bounded (see
/// [`Connection`]).
pub struct Response<'c, 'a, S, T = NoTimer> {
    conn: &'c mut Connection<'a, S, T>,
}

impl<S, T> Response<'_, '_, S, T> {
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

impl<S: ErrorType, T> ErrorType for Response<'_, '_, S, T> {
    type Error = Error<S::Error>;
}

impl<S: Read + Write, T: Timer> Read for Response<'_, '_, S, T> {
    /// Reads body bytes; `Ok(0)` means the body has ended (and, for a non-empty `out`, that it
    /// ended correctly: a body cut short is an error, never a short `Ok`). Reading the last
    /// byte of the body completes the exchange.
    async fn read(&mut self, out: &mut [u8]) -> Result<usize, Self::Error> {
        let conn = &mut *self.conn;
        conn.core.begin_read(ReadMode::Some)?;
        conn.drive(&[], out).await
    }
}

impl<S: Read + Write, T: Timer> Response<'_, '_, S, T> {
    /// Reads the whole body into `out` and returns its length.
    ///
    /// A body larger than `out` is [`RequestError::BodyBufferTooSmall`](crate::RequestError)
    /// (and the connection is then unusable).
    pub async fn read_to_end(&mut self, out: &mut [u8]) -> Result<usize, Error<S::Error>> {
        let conn = &mut *self.conn;
        conn.core.begin_read(ReadMode::ToEnd)?;
        conn.drive(&[], out).await
    }

    /// Reads the rest of the body and drops it; returns how many bytes were dropped. The
    /// connection can then be reused.
    pub async fn discard(&mut self) -> Result<u64, Error<S::Error>> {
        let conn = &mut *self.conn;
        conn.core.begin_read(ReadMode::Discard)?;
        conn.drive(&[], &mut []).await?;
        Ok(conn.core.skipped())
    }
}
