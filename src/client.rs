//! The async I/O shell: drives [`proto::conn::Core`](crate::proto::conn::Core) over an
//! `embedded_io_async` stream. This is the only module that awaits.

use embedded_io_async::{ErrorType, Read, Write};

use crate::error::{ConnectionError, Error};
use crate::proto::conn::{Core, Outgoing, Step};
use crate::proto::head::Host;
use crate::proto::response::{fields, Fields};
use crate::request::Request;
use crate::ResponseHead;

/// A connection to one host: it owns the stream and borrows one buffer for everything.
///
/// The buffer holds the encoded request (head and, when it fits, body), then the response head,
/// the trailers, and any bytes the server sent beyond the current response. Its size bounds the
/// request head and the response head; bodies of any size stream through it.
///
/// After a response whose body was read to the end, on HTTP/1.1 without `Connection: close`,
/// the next [`send`](Connection::send) goes over the same stream. An exchange abandoned
/// part-way (an error, a dropped future, a body not read to the end) makes every later `send`
/// fail with [`ConnectionError::Poisoned`]; [`into_inner`](Connection::into_inner) always gives
/// the stream back.
pub struct Connection<'a, S> {
    stream: S,
    buf: &'a mut [u8],
    host: Host<'a>,
    core: Core,
}

impl<'a, S> Connection<'a, S> {
    /// A connection over `stream` to `host`, using `buf` for requests and responses.
    ///
    /// For TLS, give the same [`Host`] to the TLS helper that opens the session, so the server
    /// name and the `Host` header cannot disagree.
    pub fn new(stream: S, buf: &'a mut [u8], host: Host<'a>) -> Self {
        Self {
            stream,
            buf,
            host,
            core: Core::new(),
        }
    }

    /// The host used for the `Host` header.
    pub fn host(&self) -> Host<'a> {
        self.host
    }

    /// Whether a request can be sent now: the last response was read to its end and the
    /// server keeps the connection open.
    pub fn is_reusable(&self) -> bool {
        self.core.is_reusable()
    }

    /// The stream, for inspection (writing or reading through it desynchronizes the
    /// connection).
    pub fn stream(&self) -> &S {
        &self.stream
    }

    /// Gives the stream back (for example to close a TLS session cleanly).
    pub fn into_inner(self) -> S {
        self.stream
    }
}

/// Marks the connection unusable on a stream error and wraps it.
fn io<T, E>(core: &mut Core, r: Result<T, E>) -> Result<T, Error<E>> {
    r.map_err(|e| {
        core.poison();
        Error::Io(e)
    })
}

impl<'a, S: Read + Write> Connection<'a, S> {
    /// Sends a request and reads the response head. The body is then read from the returned
    /// [`Response`].
    ///
    /// The head and body are written with one `write` when they fit the buffer together;
    /// otherwise the head is written, then the body straight from the request's slice.
    /// Interim (1xx) responses are skipped.
    pub async fn send(
        &mut self,
        req: &Request<'_>,
    ) -> Result<Response<'_, 'a, S>, Error<S::Error>> {
        let out = self
            .core
            .prepare(self.buf, &req.head, &self.host, req.body)?;
        self.transmit(out, req.body).await?;
        self.receive_head().await
    }

    /// Sends a request whose body is written by `write_body` straight into the buffer, behind
    /// the space reserved for the head, so no second buffer is needed (for example
    /// `|buf| serde_json_core::to_slice(&value, buf)`). `write_body` returns the body's length.
    ///
    /// The request's own body, if any, is not sent. If `write_body` fails, or reports more bytes
    /// than it was given, the result is [`RequestError::BodyWriter`](crate::RequestError) and
    /// nothing is written.
    pub async fn send_with<F, BE>(
        &mut self,
        req: &Request<'_>,
        write_body: F,
    ) -> Result<Response<'_, 'a, S>, Error<S::Error>>
    where
        F: FnOnce(&mut [u8]) -> Result<usize, BE>,
    {
        let out = self
            .core
            .prepare_with(self.buf, &req.head, &self.host, write_body)?;
        self.transmit(out, &[]).await?;
        self.receive_head().await
    }

    async fn transmit(&mut self, out: Outgoing, body: &[u8]) -> Result<(), Error<S::Error>> {
        crate::fmt::debug!(
            "rawpost: sending {} bytes in the buffer{}",
            out.range.len(),
            if out.body_follows { " + body" } else { "" }
        );
        let stream = &mut self.stream;
        let r = async {
            write_all(stream, &self.buf[out.range]).await?;
            if out.body_follows {
                write_all(stream, body).await?;
            }
            stream.flush().await.map_err(WriteError::Io)
        }
        .await;
        if let Err(e) = r {
            self.core.poison();
            return Err(e.into());
        }
        self.core.sent();
        Ok(())
    }

    async fn receive_head(&mut self) -> Result<Response<'_, 'a, S>, Error<S::Error>> {
        while let Step::Read(range) = self.core.poll_head(self.buf)? {
            let r = self.stream.read(&mut self.buf[range]).await;
            let n = io(&mut self.core, r)?;
            self.core.on_read(n)?;
        }
        let head = *self
            .core
            .head()
            .ok_or(Error::Connection(ConnectionError::Poisoned))?;
        Ok(Response { conn: self, head })
    }
}

/// Why a write failed: the stream's error, or a stream that accepts no more bytes.
enum WriteError<E> {
    Io(E),
    Zero,
}

impl<E> From<WriteError<E>> for Error<E> {
    fn from(e: WriteError<E>) -> Self {
        match e {
            WriteError::Io(e) => Error::Io(e),
            WriteError::Zero => Error::Connection(ConnectionError::WriteZero),
        }
    }
}

/// `write_all` that reports a stream accepting zero bytes as an error instead of panicking.
async fn write_all<S: Write>(stream: &mut S, mut bytes: &[u8]) -> Result<(), WriteError<S::Error>> {
    while !bytes.is_empty() {
        match stream.write(bytes).await {
            Ok(0) => return Err(WriteError::Zero),
            Ok(n) => bytes = bytes.get(n..).unwrap_or(&[]),
            Err(e) => return Err(WriteError::Io(e)),
        }
    }
    Ok(())
}

/// A response: its head is parsed, its body is read through [`embedded_io_async::Read`] (or
/// [`read_to_end`](Response::read_to_end), [`discard`](Response::discard)).
///
/// It borrows the connection; the next request can be sent once the body has been read to its
/// end (a `read` that returns 0) and the response dropped. Dropping it earlier makes the
/// connection unusable.
pub struct Response<'c, 'a, S> {
    conn: &'c mut Connection<'a, S>,
    head: ResponseHead,
}

impl<S> Response<'_, '_, S> {
    /// The status code.
    pub fn status(&self) -> u16 {
        self.head.status
    }

    /// The reason phrase (empty when it is not valid UTF-8).
    pub fn reason(&self) -> &str {
        let (a, b) = self.head.reason;
        self.conn
            .buf
            .get(usize::from(a)..usize::from(b))
            .and_then(|r| core::str::from_utf8(r).ok())
            .unwrap_or("")
    }

    /// The minor HTTP version: 1 for HTTP/1.1, 0 for HTTP/1.0.
    pub fn minor_version(&self) -> u8 {
        self.head.minor_version
    }

    /// The parsed head: status, framing, persistence.
    pub fn head(&self) -> &ResponseHead {
        &self.head
    }

    /// How the body is delimited.
    pub fn framing(&self) -> crate::Framing {
        self.head.framing
    }

    /// The body's length when the server declared it (`Content-Length`), `Some(0)` when there
    /// is no body.
    pub fn content_length(&self) -> Option<u64> {
        match self.head.framing {
            crate::Framing::Empty => Some(0),
            crate::Framing::Length(n) => Some(n),
            _ => None,
        }
    }

    /// Whether the connection can carry another request once this body has been read: HTTP/1.1,
    /// no `Connection: close`, and a body not delimited by the server closing the connection.
    pub fn keeps_connection(&self) -> bool {
        self.head.keep_alive
    }

    /// Whether the body has been read to its end.
    pub fn is_complete(&self) -> bool {
        self.conn.core.body_done()
    }

    /// The header fields in wire order: `(name, value)`, values trimmed.
    pub fn headers(&self) -> Fields<'_> {
        let start = usize::from(self.head.fields_start);
        let end = usize::from(self.head.len);
        fields(self.conn.buf.get(start..end).unwrap_or(&[]))
    }

    /// The first header field with this name (case-insensitive), as text; `None` when absent or
    /// not UTF-8.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers()
            .find(|h| h.is(name))
            .and_then(|h| h.value_str())
    }

    /// The trailer fields of a chunked body, once the body has been read to its end (empty
    /// otherwise).
    pub fn trailers(&self) -> Fields<'_> {
        fields(self.conn.buf.get(self.conn.core.trailers()).unwrap_or(&[]))
    }
}

impl<S: ErrorType> ErrorType for Response<'_, '_, S> {
    type Error = Error<S::Error>;
}

impl<S: Read + Write> Read for Response<'_, '_, S> {
    /// Reads body bytes; `Ok(0)` means the body has ended (and, for a non-empty `out`, that it
    /// ended correctly: a body cut short is an error, never a short `Ok`).
    async fn read(&mut self, out: &mut [u8]) -> Result<usize, Self::Error> {
        let conn = &mut *self.conn;
        loop {
            match conn.core.poll_body(conn.buf, out)? {
                Step::Produced(n) => return Ok(n),
                Step::Done => return Ok(0),
                Step::Read(range) => {
                    let r = conn.stream.read(&mut conn.buf[range]).await;
                    let n = io(&mut conn.core, r)?;
                    conn.core.on_read(n)?;
                }
                Step::ReadDirect(max) => {
                    let r = conn.stream.read(&mut out[..max]).await;
                    let n = io(&mut conn.core, r)?;
                    conn.core.on_read_direct(n)?;
                    if n > 0 {
                        return Ok(n);
                    }
                }
            }
        }
    }
}

impl<S: Read + Write> Response<'_, '_, S> {
    /// Reads the whole body into `out` and returns its length.
    ///
    /// A body larger than `out` is [`RequestError::BodyBufferTooSmall`](crate::RequestError)
    /// (and the connection is then unusable).
    pub async fn read_to_end(&mut self, out: &mut [u8]) -> Result<usize, Error<S::Error>> {
        let mut filled = 0;
        loop {
            if filled == out.len() {
                // Full: the body must end here.
                let mut probe = [0u8; 1];
                return match self.read(&mut probe).await? {
                    0 => Ok(filled),
                    _ => {
                        self.conn.core.poison();
                        Err(crate::RequestError::BodyBufferTooSmall.into())
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
