//! The async I/O shell: drives [`proto::conn::Core`](crate::proto::conn::Core) over an
//! `embedded_io_async` stream, racing each wait against a [`Timer`]. This is the only module
//! that awaits.

use embedded_io_async::{ErrorType, Read, Write};

use crate::error::{ConnectionError, Error, RequestError};
use crate::proto::conn::{Core, Outgoing, Step};
use crate::proto::head::{BodyFraming, Host};
use crate::proto::timing::{Deadlines, Timeouts, Wait};
use crate::request::Request;
use crate::timer::{NoTimer, Timer};
use crate::ResponseHead;

/// Everything but the buffer: the stream, the clock and the protocol state, so the shell can
/// read into the buffer while it drives them.
struct Link<S, T> {
    stream: S,
    timer: T,
    timeouts: Timeouts,
    deadlines: Deadlines,
    core: Core,
}

impl<S: Read + Write, T: Timer> Link<S, T> {
    fn start_exchange(&mut self) {
        let now = if T::ENABLED { self.timer.now_ms() } else { 0 };
        self.deadlines = Deadlines::start(self.timeouts, now);
    }

    fn deadline(&mut self, wait: Wait) -> Option<(u64, Option<crate::TimeoutPhase>)> {
        if T::ENABLED {
            self.deadlines.next(wait, self.timer.now_ms())
        } else {
            None
        }
    }

    /// Turns an expired wait into the error naming its phase (or `None` for the continue
    /// wait, which just ends), and any failure into a poisoned connection.
    fn settle<V>(
        &mut self,
        r: Option<Result<V, S::Error>>,
        phase: Option<crate::TimeoutPhase>,
    ) -> Result<Option<V>, Error<S::Error>> {
        let e = match r {
            Some(Ok(v)) => return Ok(Some(v)),
            Some(Err(e)) => Error::Io(e),
            None => match phase {
                Some(phase) => Error::Timeout(phase),
                None => return Ok(None),
            },
        };
        self.core.poison();
        Err(e)
    }

    /// One read, bounded by the deadline for `wait`. `Ok(None)`: the continue wait ran out.
    async fn read(&mut self, dst: &mut [u8], wait: Wait) -> Result<Option<usize>, Error<S::Error>> {
        let deadline = self.deadline(wait);
        let r = self
            .timer
            .run_until(deadline.map(|d| d.0), self.stream.read(dst))
            .await;
        let phase = deadline.and_then(|d| d.1);
        let n = self.settle(r, phase)?;
        if n.is_some_and(|n| n > 0) {
            self.deadlines.on_response_bytes();
        }
        Ok(n)
    }

    /// A read that must not end in the continue wait.
    async fn read_response(&mut self, dst: &mut [u8]) -> Result<usize, Error<S::Error>> {
        Ok(self.read(dst, Wait::Read).await?.unwrap_or(0))
    }

    /// One write call, bounded by the idle time. A stream accepting zero bytes is an error.
    async fn write(&mut self, bytes: &[u8]) -> Result<usize, Error<S::Error>> {
        let deadline = self.deadline(Wait::Write);
        let r = self
            .timer
            .run_until(deadline.map(|d| d.0), self.stream.write(bytes))
            .await;
        let phase = deadline.and_then(|d| d.1);
        match self.settle(r, phase)? {
            Some(0) if !bytes.is_empty() => {
                self.core.poison();
                Err(Error::Connection(ConnectionError::WriteZero))
            }
            n => Ok(n.unwrap_or(0)),
        }
    }

    async fn write_all(&mut self, mut bytes: &[u8]) -> Result<(), Error<S::Error>> {
        while !bytes.is_empty() {
            let n = self.write(bytes).await?;
            bytes = bytes.get(n..).unwrap_or(&[]);
        }
        Ok(())
    }

    async fn flush(&mut self) -> Result<(), Error<S::Error>> {
        let deadline = self.deadline(Wait::Write);
        let r = self
            .timer
            .run_until(deadline.map(|d| d.0), self.stream.flush())
            .await;
        let phase = deadline.and_then(|d| d.1);
        self.settle(r, phase).map(|_| ())
    }
}

/// A connection to one host: it owns the stream and borrows one buffer for everything.
///
/// The buffer holds the encoded request (head and, when it fits, body), then the response head,
/// the trailers, and any bytes the server sent beyond the current response. Its size bounds the
/// request head and the response head; bodies of any size stream through it.
///
/// After a response whose body was read to the end, on HTTP/1.1 without `Connection: close`,
/// the next [`send`](Connection::send) goes over the same stream. An exchange abandoned
/// part-way (an error, a timeout, a dropped future, a body not read to the end) makes every
/// later `send` fail with [`ConnectionError::Poisoned`]; [`into_inner`](Connection::into_inner)
/// always gives the stream back.
///
/// `T` is the [`Timer`] that bounds every wait (see [`Connection::with_timer`]); the default
/// [`NoTimer`] sets no deadline.
pub struct Connection<'a, S, T = NoTimer> {
    link: Link<S, T>,
    buf: &'a mut [u8],
    host: Host<'a>,
}

impl<S, T> core::fmt::Debug for Connection<'_, S, T> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Connection")
            .field("host", &self.host)
            .field("buffer", &self.buf.len())
            .field("reusable", &self.link.core.is_reusable())
            .finish_non_exhaustive()
    }
}

impl<'a, S> Connection<'a, S, NoTimer> {
    /// A connection over `stream` to `host`, using `buf` for requests and responses, with no
    /// deadlines (the stream's own timeouts apply).
    ///
    /// For TLS, give the same [`Host`] to the TLS helper that opens the session, so the server
    /// name and the `Host` header cannot disagree.
    pub fn new(stream: S, buf: &'a mut [u8], host: Host<'a>) -> Self {
        Self::with_timer(stream, buf, host, NoTimer, Timeouts::none())
    }
}

impl<'a, S> Connection<'a, S, NoTimer> {
    /// The same connection with its waits bounded by `timeouts`, measured with `timer`.
    pub fn timed<T: Timer>(self, timer: T, timeouts: Timeouts) -> Connection<'a, S, T> {
        Connection {
            link: Link {
                stream: self.link.stream,
                timer,
                timeouts,
                deadlines: Deadlines::start(timeouts, 0),
                core: self.link.core,
            },
            buf: self.buf,
            host: self.host,
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
            link: Link {
                stream,
                timer,
                timeouts,
                deadlines: Deadlines::start(timeouts, 0),
                core: Core::new(),
            },
            buf,
            host,
        }
    }

    /// Changes the deadlines for the next exchanges.
    pub fn set_timeouts(&mut self, timeouts: Timeouts) {
        self.link.timeouts = timeouts;
    }

    /// The host used for the `Host` header.
    pub fn host(&self) -> Host<'a> {
        self.host
    }

    /// Whether a request can be sent now: the last response was read to its end and the
    /// server keeps the connection open.
    pub fn is_reusable(&self) -> bool {
        self.link.core.is_reusable()
    }

    /// The stream, for inspection (writing or reading through it desynchronizes the
    /// connection).
    pub fn stream(&self) -> &S {
        &self.link.stream
    }

    /// Gives the stream back (for example to close a TLS session cleanly).
    pub fn into_inner(self) -> S {
        self.link.stream
    }
}

impl<'a, S: Read + Write, T: Timer> Connection<'a, S, T> {
    /// Sends a request and reads the response head. The body is then read from the returned
    /// [`Response`].
    ///
    /// The head and body are written with one `write` when they fit the buffer together;
    /// otherwise the head is written, then the body straight from the request's slice.
    /// Interim (1xx) responses are skipped.
    ///
    /// With an `Expect: 100-continue` header and a body, the head is sent alone; the body
    /// follows once the server answers `100 Continue`, or when [`Timeouts::continue_ms`] has
    /// passed without an answer. A final response before that is returned without the body
    /// being sent (and the connection is then not reusable). The stream's `read` must be
    /// cancel-safe for that wait to end early, as embassy-net's TCP socket is.
    pub async fn send(
        &mut self,
        req: &Request<'_>,
    ) -> Result<Response<'_, 'a, S, T>, Error<S::Error>> {
        let out = self
            .link
            .core
            .prepare(self.buf, &req.head, &self.host, req.body)?;
        self.link.start_exchange();
        crate::fmt::debug!(
            "rawpost: {} {} bytes in the buffer{}",
            req.head.method.as_str(),
            out.range.len(),
            if out.body_follows {
                " + body from the caller's slice"
            } else {
                ""
            }
        );
        self.write_head(req, &out).await?;
        if out.expect_continue {
            self.link.flush().await?;
            self.link.core.sent();
            if !self.await_continue().await? {
                return self.response();
            }
            self.link.write_all(req.body).await?;
            self.link.flush().await?;
        } else {
            if out.body_follows {
                self.link.write_all(req.body).await?;
            }
            self.link.flush().await?;
            self.link.core.sent();
        }
        self.receive_head().await
    }

    /// Waits for `100 Continue`. `true`: send the body now; `false`: a final response came
    /// first and the body must not be sent.
    async fn await_continue(&mut self) -> Result<bool, Error<S::Error>> {
        loop {
            match self.link.core.poll_head(self.buf)? {
                Step::Read(range) => {
                    match self.link.read(&mut self.buf[range], Wait::Continue).await? {
                        Some(n) => self.link.core.on_read(n)?,
                        None => {
                            crate::fmt::debug!(
                                "rawpost: no 100 Continue in time; sending the body"
                            );
                            break;
                        }
                    }
                }
                Step::Continue => break,
                _ => return Ok(false),
            }
        }
        self.link.core.body_sent();
        Ok(true)
    }

    /// Sends a request whose body is written by `write_body` straight into the buffer, behind
    /// the space reserved for the head, so no second buffer is needed (for example
    /// `|buf| serde_json_core::to_slice(&value, buf)`). `write_body` returns the body's length.
    ///
    /// The request's own body, if any, is not sent. If `write_body` fails, or reports more bytes
    /// than it was given, the result is [`RequestError::BodyWriter`] and nothing is written.
    /// Head and body go out in one write. An `Expect: 100-continue` header is sent as given but
    /// not waited for (the body is already in the buffer).
    pub async fn send_with<F, BE>(
        &mut self,
        req: &Request<'_>,
        write_body: F,
    ) -> Result<Response<'_, 'a, S, T>, Error<S::Error>>
    where
        F: FnOnce(&mut [u8]) -> Result<usize, BE>,
    {
        let out = self
            .link
            .core
            .prepare_with(self.buf, &req.head, &self.host, write_body)?;
        self.link.start_exchange();
        self.write_head(req, &out).await?;
        self.link.flush().await?;
        self.link.core.sent();
        self.receive_head().await
    }

    /// Writes what `prepare` put in the buffer, then the rest of a head that had to be sent in
    /// parts (only when bytes kept for the next response crowd the buffer).
    async fn write_head(
        &mut self,
        req: &Request<'_>,
        out: &Outgoing,
    ) -> Result<(), Error<S::Error>> {
        self.link.write_all(&self.buf[out.range.clone()]).await?;
        let mut offset = out.head_sent;
        while offset < out.head_len {
            let part = self
                .link
                .core
                .head_part(self.buf, &req.head, &self.host, out, offset);
            offset += part.len();
            self.link.write_all(&self.buf[part]).await?;
        }
        Ok(())
    }

    /// Sends the head of a request whose body the caller then writes piece by piece through
    /// the returned [`BodyWriter`] (a log file, a sensor buffer: a body larger than any buffer).
    ///
    /// With `Some(length)` the body is sent with `Content-Length: length`, each piece straight
    /// from the caller's slice; a body that ends up longer or shorter is
    /// [`RequestError::BodyLengthMismatch`]. With `None` it is sent as
    /// `Transfer-Encoding: chunked`, each piece framed in the buffer and written with one
    /// write. The request's own body is not sent.
    pub async fn send_streaming(
        &mut self,
        req: &Request<'_>,
        length: Option<u64>,
    ) -> Result<BodyWriter<'_, 'a, S, T>, Error<S::Error>> {
        let framing = length.map_or(BodyFraming::Chunked, BodyFraming::Length);
        let out = self
            .link
            .core
            .prepare_head(self.buf, &req.head, &self.host, framing)?;
        self.link.start_exchange();
        self.write_head(req, &out).await?;
        Ok(BodyWriter {
            conn: self,
            remaining: length,
        })
    }

    async fn receive_head(&mut self) -> Result<Response<'_, 'a, S, T>, Error<S::Error>> {
        loop {
            match self.link.core.poll_head(self.buf)? {
                Step::Read(range) => {
                    let n = self.link.read_response(&mut self.buf[range]).await?;
                    self.link.core.on_read(n)?;
                }
                Step::Continue => {}
                _ => return self.response(),
            }
        }
    }

    fn response(&mut self) -> Result<Response<'_, 'a, S, T>, Error<S::Error>> {
        let head = *self
            .link
            .core
            .head()
            .ok_or(Error::Connection(ConnectionError::Poisoned))?;
        Ok(Response { conn: self, head })
    }
}

/// The body of a streamed request, written piece by piece; [`finish`](BodyWriter::finish)
/// ends it and reads the response head. Leaving it unfinished makes the connection unusable.
pub struct BodyWriter<'c, 'a, S, T = NoTimer> {
    conn: &'c mut Connection<'a, S, T>,
    /// Bytes still to send for a known length; `None` for chunked.
    remaining: Option<u64>,
}

impl<S: ErrorType, T> ErrorType for BodyWriter<'_, '_, S, T> {
    type Error = Error<S::Error>;
}

impl<S: Read + Write, T: Timer> Write for BodyWriter<'_, '_, S, T> {
    /// Sends part of the body: with a known length, straight from `data`; chunked, as one chunk
    /// framed in the buffer (a piece larger than the buffer is cut to fit, as `write` allows).
    async fn write(&mut self, data: &[u8]) -> Result<usize, Self::Error> {
        if data.is_empty() {
            return Ok(0);
        }
        let conn = &mut *self.conn;
        let Some(remaining) = self.remaining else {
            let space = conn.link.core.send_space(conn.buf.len());
            let (range, n) = crate::proto::chunk::frame(conn.buf, space, data)
                .inspect_err(|_| conn.link.core.poison())?;
            conn.link.write_all(&conn.buf[range]).await?;
            return Ok(n);
        };
        if data.len() as u64 > remaining {
            conn.link.core.poison();
            return Err(RequestError::BodyLengthMismatch.into());
        }
        let n = conn.link.write(data).await?;
        self.remaining = Some(remaining - n as u64);
        Ok(n)
    }

    async fn flush(&mut self) -> Result<(), Self::Error> {
        self.conn.link.flush().await
    }
}

impl<'c, 'a, S: Read + Write, T: Timer> BodyWriter<'c, 'a, S, T> {
    /// Ends the body (for chunked, with the last chunk), flushes, and reads the response head.
    /// A known-length body that is still short is [`RequestError::BodyLengthMismatch`].
    pub async fn finish(self) -> Result<Response<'c, 'a, S, T>, Error<S::Error>> {
        let conn = self.conn;
        match self.remaining {
            Some(0) => {}
            Some(_) => {
                conn.link.core.poison();
                return Err(RequestError::BodyLengthMismatch.into());
            }
            None => conn.link.write_all(crate::proto::chunk::LAST).await?,
        }
        conn.link.flush().await?;
        conn.link.core.sent();
        conn.receive_head().await
    }
}

/// A response: its head is parsed, its body is read through [`embedded_io_async::Read`] (or
/// [`read_to_end`](Response::read_to_end), [`discard`](Response::discard)).
///
/// It borrows the connection; the next request can be sent once the body has been read to its
/// end (a `read` that returns 0) and the response is no longer used. Leaving the body unread
/// makes the connection unusable.
pub struct Response<'c, 'a, S, T = NoTimer> {
    conn: &'c mut Connection<'a, S, T>,
    head: ResponseHead,
}

/// The accessors shared by the async and the blocking response: they only look at the head
/// and trailers kept in the buffer.
macro_rules! response_accessors {
    () => {
        /// The status code.
        pub fn status(&self) -> u16 {
            self.head.status
        }

        /// The reason phrase (empty when it is not valid UTF-8).
        pub fn reason(&self) -> &str {
            let (a, b) = self.head.reason;
            self.buf()
                .get(usize::from(a)..usize::from(b))
                .and_then(|r| core::str::from_utf8(r).ok())
                .unwrap_or("")
        }

        /// The minor HTTP version: 1 for HTTP/1.1, 0 for HTTP/1.0.
        pub fn minor_version(&self) -> u8 {
            self.head.minor_version
        }

        /// The parsed head: status, framing, persistence.
        pub fn head(&self) -> &$crate::ResponseHead {
            &self.head
        }

        /// How the body is delimited.
        pub fn framing(&self) -> $crate::Framing {
            self.head.framing
        }

        /// The body's length when the server declared it (`Content-Length`), `Some(0)` when
        /// there is no body.
        pub fn content_length(&self) -> Option<u64> {
            match self.head.framing {
                $crate::Framing::Empty => Some(0),
                $crate::Framing::Length(n) => Some(n),
                _ => None,
            }
        }

        /// Whether the connection can carry another request once this body has been read:
        /// HTTP/1.1, no `Connection: close`, and a body not delimited by the server closing
        /// the connection.
        pub fn keeps_connection(&self) -> bool {
            self.head.keep_alive
        }

        /// Whether the body has been read to its end.
        pub fn is_complete(&self) -> bool {
            self.core().body_done()
        }

        /// The header fields in wire order: `(name, value)`, values trimmed.
        pub fn headers(&self) -> $crate::Fields<'_> {
            let start = usize::from(self.head.fields_start);
            let end = usize::from(self.head.len);
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
        &self.conn.link.core
    }

    response_accessors!();
}

impl<S: ErrorType, T> ErrorType for Response<'_, '_, S, T> {
    type Error = Error<S::Error>;
}

impl<S: Read + Write, T: Timer> Read for Response<'_, '_, S, T> {
    /// Reads body bytes; `Ok(0)` means the body has ended (and, for a non-empty `out`, that it
    /// ended correctly: a body cut short is an error, never a short `Ok`).
    async fn read(&mut self, out: &mut [u8]) -> Result<usize, Self::Error> {
        let conn = &mut *self.conn;
        loop {
            match conn.link.core.poll_body(conn.buf, out)? {
                Step::Produced(n) => return Ok(n),
                Step::Done | Step::Continue => return Ok(0),
                Step::Read(range) => {
                    let n = conn.link.read_response(&mut conn.buf[range]).await?;
                    conn.link.core.on_read(n)?;
                }
                Step::ReadDirect(max) => {
                    let n = conn.link.read_response(&mut out[..max]).await?;
                    conn.link.core.on_read_direct(n)?;
                    if n > 0 {
                        return Ok(n);
                    }
                }
            }
        }
    }
}

impl<S: Read + Write, T: Timer> Response<'_, '_, S, T> {
    /// Reads the whole body into `out` and returns its length.
    ///
    /// A body larger than `out` is [`RequestError::BodyBufferTooSmall`] (and the connection is
    /// then unusable).
    pub async fn read_to_end(&mut self, out: &mut [u8]) -> Result<usize, Error<S::Error>> {
        let mut filled = 0;
        loop {
            if filled == out.len() {
                // Full: the body must end here.
                let mut probe = [0u8; 1];
                return match self.read(&mut probe).await? {
                    0 => Ok(filled),
                    _ => {
                        self.conn.link.core.poison();
                        Err(RequestError::BodyBufferTooSmall.into())
                    }
                };
            }
            match self.read(&mut out[filled..]).await? {
                0 => return Ok(filled),
                n => filled += n,
            }
        }
    }

    /// Reads the rest of the body and drops it; returns how many bytes were dropped. The
    /// connection can then be reused.
    pub async fn discard(&mut self) -> Result<u64, Error<S::Error>> {
        let mut scratch = [0u8; 128];
        let mut total = 0u64;
        loop {
            match self.read(&mut scratch).await? {
                0 => return Ok(total),
                n => total += n as u64,
            }
        }
    }
}
