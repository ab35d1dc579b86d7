//! The async I/O shell: it performs the [`Step`]s that the connection's state machine
//! ([`proto::conn::Core`](crate::proto::conn::Core)) asks for on an `embedded_io_async` stream,
//! racing each wait against a [`Timer`]. It decides nothing: every rule of the exchange and of
//! the connection's life is in the core. This is the only module that awaits.

use core::pin::pin;

use embedded_io_async::{ErrorType, Read, ReadReady, Write};

use crate::error::{ConnectionError, Error};
use crate::proto::conn::{part, part_mut, Core, Ctx, Step};
use crate::proto::encode::Host;
use crate::proto::timing::{Deadlines, Timeouts, Wait};
use crate::request::Request;
use crate::timer::{NoTimer, Timer};
use crate::ResponseHead;

/// A connection to one host: it owns the stream and borrows one buffer for everything.
///
/// The buffer holds the encoded request (head and, when it fits, body), then the response head,
/// the trailers, and any bytes the server sent beyond the current response. Its size bounds the
/// request head and the response head; bodies of any size stream through it.
///
/// After a response whose body was read to its end, on HTTP/1.1 without `Connection: close`,
/// the next [`send`](Connection::send) goes over the same stream. When the server has closed
/// the idle connection meanwhile (servers do after their keep-alive timeout), that send fails
/// with [`ConnectionError::ClosedByServer`]: reconnect and send again, or let
/// [`Client`](crate::Client) do it. An exchange abandoned part-way (an error, a timeout, a
/// dropped future, a body left unread) makes every later `send` fail with
/// [`ConnectionError::Poisoned`]; [`into_inner`](Connection::into_inner) always gives the
/// stream back.
///
/// `T` is the [`Timer`] that bounds every wait (see [`Connection::with_timer`]); the default
/// [`NoTimer`] sets no deadline.
pub struct Connection<'a, S, T = NoTimer> {
    stream: S,
    buf: &'a mut [u8],
    host: Host<'a>,
    core: Core,
    timer: T,
    /// The timeouts and the deadlines of the exchange in progress.
    deadlines: Deadlines,
}

impl<S, T> core::fmt::Debug for Connection<'_, S, T> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Connection")
            .field("host", &self.host)
            .field("buffer", &self.buf.len())
            .field("reusable", &self.core.is_reusable())
            .finish_non_exhaustive()
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
        Self::with_timer(stream, buf, host, NoTimer, Timeouts::none())
    }

    /// The same connection with its waits bounded by `timeouts`, measured with `timer`.
    pub fn timed<T: Timer>(self, timer: T, timeouts: Timeouts) -> Connection<'a, S, T> {
        let mut core = self.core;
        core.set_timed(T::ENABLED);
        Connection {
            stream: self.stream,
            buf: self.buf,
            host: self.host,
            core,
            timer,
            deadlines: Deadlines::start(timeouts, 0),
        }
    }
}

impl<'a, S, T: Timer> Connection<'a, S, T> {
    /// A connection whose waits are bounded by `timeouts`, measured with `timer` (for example
    /// `EmbassyTimer`, or a [`DelayTimer`](crate::DelayTimer) on any executor).
    pub fn with_timer(
        stream: S,
        buf: &'a mut [u8],
        host: Host<'a>,
        timer: T,
        timeouts: Timeouts,
    ) -> Self {
        Self {
            stream,
            buf,
            host,
            core: Core::new(T::ENABLED),
            timer,
            deadlines: Deadlines::start(timeouts, 0),
        }
    }

    /// Changes the deadlines for the next exchanges.
    pub fn set_timeouts(&mut self, timeouts: Timeouts) {
        self.deadlines.set_timeouts(timeouts);
    }

    /// The host used for the `Host` header.
    pub fn host(&self) -> Host<'a> {
        self.host
    }

    /// Whether a request can be sent now: the last response was read to its end (or to the
    /// end of its data, with only chunk framing left) and kept the connection. It does not
    /// know whether the server has closed the connection since; see
    /// [`check_closed`](Connection::check_closed).
    pub fn is_reusable(&self) -> bool {
        self.core.is_reusable()
    }

    /// Whether the last request may be sent again on a new connection after
    /// [`ConnectionError::ClosedByServer`]: RFC 9112 §9.3.1 allows it when the method is
    /// idempotent (or the request was marked [`Request::idempotent`]), or when no byte of the
    /// request reached the stream.
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
    /// Performs the core's steps until the operation in progress is done.
    async fn drive(&mut self, ctx: &Ctx<'_>, out: &mut [u8]) -> Result<usize, Error<S::Error>> {
        let Self {
            stream,
            buf,
            core,
            timer,
            deadlines,
            ..
        } = self;
        // One wait of the stream, bounded by the deadline of `$wait`: the stream's future is
        // pinned here and raced by the timer (just polled with `NoTimer`). `Err` carries the
        // phase that ran out (`None`: the continue wait, which just ends).
        macro_rules! bounded {
            ($wait:expr, $io:expr) => {{
                let io = pin!($io);
                let (at, phase) = match T::ENABLED {
                    true => deadlines.next($wait, timer.now_ms()).unzip(),
                    false => (None, None),
                };
                let phase = phase.flatten();
                match timer.run_until(at, io).await {
                    Some(r) => Ok(r),
                    None => Err(phase),
                }
            }};
        }
        loop {
            let r = match core.poll(buf, ctx, out)? {
                Step::Done(n) => return Ok(n),
                Step::Write(r) => {
                    bounded!(Wait::Write, stream.write(part(buf, r))).map(|r| core.on_write(r))
                }
                Step::WriteSrc(r) => {
                    bounded!(Wait::Write, stream.write(part(ctx.src, r))).map(|r| core.on_write(r))
                }
                Step::Flush => bounded!(Wait::Write, stream.flush()).map(|r| core.on_flush(r)),
                Step::Read(r, wait) => {
                    bounded!(wait, stream.read(part_mut(buf, r))).map(|r| core.on_read(r))
                }
                Step::ReadOut(n, wait) => {
                    bounded!(wait, stream.read(part_mut(out, 0..n))).map(|r| core.on_read(r))
                }
            };
            match r {
                Ok(r) => r?,
                Err(phase) => core.on_timeout(phase)?,
            }
        }
    }

    fn start_clock(&mut self) {
        if T::ENABLED {
            self.deadlines.restart(self.timer.now_ms());
        }
    }

    fn ctx<'x>(&self, req: Option<&'x Request<'x>>, src: &'x [u8]) -> Ctx<'x>
    where
        'a: 'x,
    {
        Request::ctx(req, self.host, src)
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
        // The clock of the new exchange starts before the rest of the last response's
        // framing is read: that read belongs to this exchange's time.
        self.start_clock();
        self.core.begin_settle();
        self.drive(&self.ctx(None, &[]), &mut []).await?;
        self.core
            .begin_send(self.buf, &req.head, &self.host, req.body, req.idempotent)?;
        let ctx = self.ctx(Some(req), req.body);
        self.drive(&ctx, &mut []).await?;
        self.response()
    }

    /// Sends a request whose body is written by `write_body` straight into the buffer, behind
    /// the space reserved for the head, so no second buffer is needed (for example
    /// `|buf| serde_json_core::to_slice(&value, buf)`). `write_body` returns the body's length.
    ///
    /// The request's own body, if any, is not sent. If `write_body` fails, or reports more bytes
    /// than it was given, the result is [`RequestError::BodyWriter`](crate::RequestError) and
    /// nothing is written. Head and body go out in one write. An `Expect: 100-continue` header
    /// is sent as given but not waited for (the body is already in the buffer).
    pub async fn send_with<F, BE>(
        &mut self,
        req: &Request<'_>,
        write_body: F,
    ) -> Result<Response<'_, 'a, S, T>, Error<S::Error>>
    where
        F: FnOnce(&mut [u8]) -> Result<usize, BE>,
    {
        // The clock of the new exchange starts before the rest of the last response's
        // framing is read: that read belongs to this exchange's time.
        self.start_clock();
        self.core.begin_settle();
        self.drive(&self.ctx(None, &[]), &mut []).await?;
        self.core
            .begin_send_with(self.buf, &req.head, &self.host, req.idempotent, write_body)?;
        let ctx = self.ctx(Some(req), &[]);
        self.drive(&ctx, &mut []).await?;
        self.response()
    }

    /// Sends the head of a request whose body the caller then writes piece by piece through
    /// the returned [`BodyWriter`] (a log file, a sensor buffer: a body larger than any buffer).
    ///
    /// With `Some(length)` the body is sent with `Content-Length: length`, each piece straight
    /// from the caller's slice; a body that ends up longer or shorter is
    /// [`RequestError::BodyLengthMismatch`](crate::RequestError). With `None` it is sent as
    /// `Transfer-Encoding: chunked`, each piece framed in the buffer and written with one
    /// write. The request's own body is not sent.
    ///
    /// `Expect: 100-continue` is honoured as by [`send`](Connection::send): with a timer, this
    /// returns once the `100` came or the wait ran out; if the server answered with a final
    /// status instead, writing the body fails with [`ConnectionError::AnsweredBeforeBody`] and
    /// [`BodyWriter::finish`] returns that response.
    pub async fn send_streaming(
        &mut self,
        req: &Request<'_>,
        length: Option<u64>,
    ) -> Result<BodyWriter<'_, 'a, S, T>, Error<S::Error>> {
        // The clock of the new exchange starts before the rest of the last response's
        // framing is read: that read belongs to this exchange's time.
        self.start_clock();
        self.core.begin_settle();
        self.drive(&self.ctx(None, &[]), &mut []).await?;
        self.core
            .begin_stream(self.buf, &req.head, &self.host, length, req.idempotent)?;
        let ctx = self.ctx(Some(req), &[]);
        self.drive(&ctx, &mut []).await?;
        Ok(BodyWriter { conn: self })
    }

    fn response(&mut self) -> Result<Response<'_, 'a, S, T>, Error<S::Error>> {
        if self.core.head().is_none() {
            return Err(Error::Connection(ConnectionError::Poisoned));
        }
        Ok(Response { conn: self })
    }
}

impl<S: Read + Write + ReadReady, T: Timer> Connection<'_, S, T> {
    /// Checks, without waiting, whether the server has closed this idle connection (its
    /// keep-alive timeout): `Ok(true)` if it has, and the next `send` then fails with
    /// [`ConnectionError::ClosedByServer`] before writing anything. Needs a stream that can
    /// tell whether bytes are ready (`ReadReady`, as embassy-net's TCP socket can).
    /// [`Client`](crate::Client) does not need it: it reconnects either way.
    pub async fn check_closed(&mut self) -> Result<bool, Error<S::Error>> {
        let ready = self.stream.read_ready().map_err(Error::Io)?;
        if ready && self.core.begin_idle_check() {
            self.start_clock();
            let ctx = self.ctx(None, &[]);
            self.drive(&ctx, &mut []).await?;
        }
        Ok(self.core.is_closed_by_server())
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
        let ctx = conn.ctx(None, data);
        conn.drive(&ctx, &mut []).await
    }

    async fn flush(&mut self) -> Result<(), Self::Error> {
        let conn = &mut *self.conn;
        conn.core.begin_piece_flush()?;
        let ctx = conn.ctx(None, &[]);
        conn.drive(&ctx, &mut []).await.map(drop)
    }
}

impl<'c, 'a, S: Read + Write, T: Timer> BodyWriter<'c, 'a, S, T> {
    /// Ends the body (for chunked, with the last chunk), flushes, and reads the response head.
    /// A known-length body that is still short is
    /// [`RequestError::BodyLengthMismatch`](crate::RequestError).
    pub async fn finish(self) -> Result<Response<'c, 'a, S, T>, Error<S::Error>> {
        let conn = self.conn;
        conn.core.begin_finish(conn.buf)?;
        let ctx = conn.ctx(None, &[]);
        conn.drive(&ctx, &mut []).await?;
        conn.response()
    }
}

/// A response: its head is parsed, its body is read through [`embedded_io_async::Read`] (or
/// [`read_to_end`](Response::read_to_end), [`discard`](Response::discard)).
///
/// It borrows the connection; the next request can be sent once the body has been read to its
/// end and the response is no longer used. Leaving body bytes unread makes the connection
/// unusable.
pub struct Response<'c, 'a, S, T = NoTimer> {
    conn: &'c mut Connection<'a, S, T>,
}

/// The accessors shared by the async and the blocking response: they only look at the head
/// and trailers kept in the buffer.
macro_rules! response_accessors {
    () => {
        /// The status code as the server sent it: three digits, `000` to `999`. See
        /// [`status_class`](Self::status_class) for codes outside 100–599.
        pub fn status(&self) -> u16 {
            self.parsed().status()
        }

        /// The class of the status code; a code outside 100–599 is a server error (RFC 9110
        /// §15).
        pub fn status_class(&self) -> $crate::StatusClass {
            self.parsed().status_class()
        }

        /// Whether the status is `2xx`.
        pub fn is_success(&self) -> bool {
            self.status_class() == $crate::StatusClass::Success
        }

        /// The reason phrase (empty when it is missing or not valid UTF-8).
        pub fn reason(&self) -> &str {
            let (a, b) = self.parsed().reason;
            self.buf()
                .get(usize::from(a)..usize::from(b))
                .and_then(|r| core::str::from_utf8(r).ok())
                .unwrap_or("")
        }

        /// The minor HTTP version: 0 for HTTP/1.0, 1 for HTTP/1.1 (and any higher `HTTP/1.x`,
        /// read as HTTP/1.1).
        pub fn minor_version(&self) -> u8 {
            self.parsed().minor_version()
        }

        /// The parsed head: status, framing, persistence.
        pub fn head(&self) -> &$crate::ResponseHead {
            self.parsed()
        }

        /// How the body is delimited.
        pub fn framing(&self) -> $crate::Framing {
            self.parsed().framing()
        }

        /// The body's length when the server declared it (`Content-Length`), `Some(0)` when
        /// there is no body.
        pub fn content_length(&self) -> Option<u64> {
            match self.parsed().framing() {
                $crate::Framing::Empty => Some(0),
                $crate::Framing::Length(n) => Some(n),
                _ => None,
            }
        }

        /// Whether the connection can carry another request once this body has been read:
        /// HTTP/1.1, no `Connection: close`, and a body not delimited by the server closing
        /// the connection.
        pub fn keeps_connection(&self) -> bool {
            self.parsed().keeps_connection()
        }

        /// Whether the body has been read to its end.
        pub fn is_complete(&self) -> bool {
            self.core().body_done()
        }

        /// The header fields in wire order: `(name, value)`, values trimmed.
        pub fn headers(&self) -> $crate::Fields<'_> {
            let start = usize::from(self.parsed().fields_start);
            let end = usize::from(self.parsed().len);
            $crate::proto::response::fields(self.buf().get(start..end).unwrap_or(&[]))
        }

        /// The first header field with this name (case-insensitive), as text; `None` when
        /// absent or not UTF-8.
        pub fn header(&self, name: &str) -> Option<&str> {
            self.headers()
                .find(|h| h.is(name))
                .and_then(|h| h.value_str())
        }

        /// The trailer fields of a chunked body, once the body has been read to its end (empty
        /// otherwise).
        pub fn trailers(&self) -> $crate::Fields<'_> {
            $crate::proto::response::fields(self.buf().get(self.core().trailers()).unwrap_or(&[]))
        }
    };
}
pub(crate) use response_accessors;

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

    response_accessors!();
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
        conn.core.begin_read(false);
        let ctx = conn.ctx(None, &[]);
        conn.drive(&ctx, out).await
    }
}

impl<S: Read + Write, T: Timer> Response<'_, '_, S, T> {
    /// Reads the whole body into `out` and returns its length.
    ///
    /// A body larger than `out` is [`RequestError::BodyBufferTooSmall`](crate::RequestError)
    /// (and the connection is then unusable).
    pub async fn read_to_end(&mut self, out: &mut [u8]) -> Result<usize, Error<S::Error>> {
        let conn = &mut *self.conn;
        let ctx = conn.ctx(None, &[]);
        let mut filled = 0;
        loop {
            conn.core.begin_read(true);
            match conn.drive(&ctx, part_mut(out, filled..out.len())).await? {
                0 => return Ok(filled),
                n => filled += n,
            }
        }
    }

    /// Reads the rest of the body and drops it; returns how many bytes were dropped. The
    /// connection can then be reused.
    pub async fn discard(&mut self) -> Result<u64, Error<S::Error>> {
        let mut scratch = [0u8; 64];
        let mut total = 0u64;
        loop {
            match self.read(&mut scratch).await? {
                0 => return Ok(total),
                n => total += n as u64,
            }
        }
    }
}
