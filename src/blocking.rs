//! The blocking I/O shell: the same client over `embedded_io::{Read, Write}`, for std users
//! (esp-idf-svc, host tools) and simple loops.
//!
//! It performs the steps of the same sans-IO [`Core`] as the async
//! [`Connection`](crate::Connection), with the same loop; only `.await` is missing. There is no
//! [`Timer`](crate::Timer): a blocking call cannot be raced, so deadlines are the stream's own
//! (`set_read_timeout` on a std `TcpStream`, a socket option on esp-idf), and the body of an
//! `Expect: 100-continue` request is sent at once (RFC 9110 §10.1.1 allows it) — exactly what
//! the async connection does without a timer. A differential test drives both shells through
//! the same scripted peers and compares every byte written and every result.
//!
//! ```no_run
//! # fn demo<S: embedded_io::Read + embedded_io::Write>(stream: S) -> Result<(), rawpost::Error<S::Error>> {
//! use rawpost::{blocking::Connection, Host, Request};
//! let mut buf = [0u8; 2048];
//! let mut conn = Connection::new(stream, &mut buf, Host::new("api.example.com"));
//! let mut resp = conn.send(&Request::post("/v1/data").body(b"{}"))?;
//! let mut body = [0u8; 256];
//! let n = resp.read_to_end(&mut body)?;
//! # let _ = n; Ok(()) }
//! ```

use embedded_io::{ErrorType, Read, ReadReady, Write};

use crate::error::{ConnectionError, Error};
use crate::proto::conn::{part, part_mut, Core, Ctx, Step};
use crate::proto::encode::Host;
use crate::request::Request;
use crate::ResponseHead;

/// A blocking connection to one host; see the async [`Connection`](crate::Connection), which
/// this mirrors.
pub struct Connection<'a, S> {
    stream: S,
    buf: &'a mut [u8],
    host: Host<'a>,
    core: Core,
}

impl<S> core::fmt::Debug for Connection<'_, S> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("blocking::Connection")
            .field("host", &self.host)
            .field("buffer", &self.buf.len())
            .field("reusable", &self.core.is_reusable())
            .finish_non_exhaustive()
    }
}

impl<'a, S> Connection<'a, S> {
    /// A connection over `stream` to `host`, using `buf` for requests and responses.
    pub fn new(stream: S, buf: &'a mut [u8], host: Host<'a>) -> Self {
        Self {
            stream,
            buf,
            host,
            core: Core::new(false),
        }
    }

    /// The host used for the `Host` header.
    pub fn host(&self) -> Host<'a> {
        self.host
    }

    /// Whether a request can be sent now; see
    /// [`Connection::is_reusable`](crate::Connection::is_reusable).
    pub fn is_reusable(&self) -> bool {
        self.core.is_reusable()
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

impl<'a, S: Read + Write> Connection<'a, S> {
    /// Performs the core's steps until the operation in progress is done.
    fn drive(&mut self, ctx: &Ctx<'_>, out: &mut [u8]) -> Result<usize, Error<S::Error>> {
        let Self {
            stream, buf, core, ..
        } = self;
        loop {
            match core.poll(buf, ctx, out)? {
                Step::Done(n) => return Ok(n),
                Step::Write(r) => core.on_write(stream.write(part(buf, r)))?,
                Step::WriteSrc(r) => core.on_write(stream.write(part(ctx.src, r)))?,
                Step::Flush => core.on_flush(stream.flush())?,
                Step::Read(r, _) => core.on_read(stream.read(part_mut(buf, r)))?,
                Step::ReadOut(n, _) => core.on_read(stream.read(part_mut(out, 0..n)))?,
            }
        }
    }

    fn ctx<'x>(&self, req: Option<&'x Request<'x>>, src: &'x [u8]) -> Ctx<'x>
    where
        'a: 'x,
    {
        Request::ctx(req, self.host, src)
    }

    fn settle(&mut self) -> Result<(), Error<S::Error>> {
        self.core.begin_settle();
        let ctx = self.ctx(None, &[]);
        self.drive(&ctx, &mut []).map(drop)
    }

    /// Sends a request and reads the response head; see
    /// [`Connection::send`](crate::Connection::send).
    pub fn send(&mut self, req: &Request<'_>) -> Result<Response<'_, 'a, S>, Error<S::Error>> {
        self.settle()?;
        self.core
            .begin_send(self.buf, &req.head, &self.host, req.body, req.idempotent)?;
        let ctx = self.ctx(Some(req), req.body);
        self.drive(&ctx, &mut [])?;
        self.response()
    }

    /// Sends a request whose body is written straight into the buffer; see
    /// [`Connection::send_with`](crate::Connection::send_with).
    pub fn send_with<F, BE>(
        &mut self,
        req: &Request<'_>,
        write_body: F,
    ) -> Result<Response<'_, 'a, S>, Error<S::Error>>
    where
        F: FnOnce(&mut [u8]) -> Result<usize, BE>,
    {
        self.settle()?;
        self.core
            .begin_send_with(self.buf, &req.head, &self.host, req.idempotent, write_body)?;
        let ctx = self.ctx(Some(req), &[]);
        self.drive(&ctx, &mut [])?;
        self.response()
    }

    /// Sends the head of a request whose body is then streamed; see
    /// [`Connection::send_streaming`](crate::Connection::send_streaming).
    pub fn send_streaming(
        &mut self,
        req: &Request<'_>,
        length: Option<u64>,
    ) -> Result<BodyWriter<'_, 'a, S>, Error<S::Error>> {
        self.settle()?;
        self.core
            .begin_stream(self.buf, &req.head, &self.host, length, req.idempotent)?;
        let ctx = self.ctx(Some(req), &[]);
        self.drive(&ctx, &mut [])?;
        Ok(BodyWriter { conn: self })
    }

    fn response(&mut self) -> Result<Response<'_, 'a, S>, Error<S::Error>> {
        if self.core.head().is_none() {
            return Err(Error::Connection(ConnectionError::Poisoned));
        }
        Ok(Response { conn: self })
    }
}

impl<S: Read + Write + ReadReady> Connection<'_, S> {
    /// Checks, without waiting, whether the server has closed this idle connection; see
    /// [`Connection::check_closed`](crate::Connection::check_closed).
    pub fn check_closed(&mut self) -> Result<bool, Error<S::Error>> {
        let ready = self.stream.read_ready().map_err(Error::Io)?;
        if ready && self.core.begin_idle_check() {
            let ctx = self.ctx(None, &[]);
            self.drive(&ctx, &mut [])?;
        }
        Ok(self.core.is_closed_by_server())
    }
}

/// The body of a streamed request; see [`BodyWriter`](crate::BodyWriter).
pub struct BodyWriter<'c, 'a, S> {
    conn: &'c mut Connection<'a, S>,
}

impl<S: ErrorType> ErrorType for BodyWriter<'_, '_, S> {
    type Error = Error<S::Error>;
}

impl<S: Read + Write> Write for BodyWriter<'_, '_, S> {
    fn write(&mut self, data: &[u8]) -> Result<usize, Self::Error> {
        let conn = &mut *self.conn;
        conn.core.begin_piece(conn.buf, data)?;
        let ctx = conn.ctx(None, data);
        conn.drive(&ctx, &mut [])
    }

    fn flush(&mut self) -> Result<(), Self::Error> {
        let conn = &mut *self.conn;
        conn.core.begin_piece_flush()?;
        let ctx = conn.ctx(None, &[]);
        conn.drive(&ctx, &mut []).map(drop)
    }
}

impl<'c, 'a, S: Read + Write> BodyWriter<'c, 'a, S> {
    /// Ends the body and reads the response head; see
    /// [`BodyWriter::finish`](crate::BodyWriter::finish).
    pub fn finish(self) -> Result<Response<'c, 'a, S>, Error<S::Error>> {
        let conn = self.conn;
        conn.core.begin_finish(conn.buf)?;
        let ctx = conn.ctx(None, &[]);
        conn.drive(&ctx, &mut [])?;
        conn.response()
    }
}

/// A blocking response; see [`Response`](crate::Response).
pub struct Response<'c, 'a, S> {
    conn: &'c mut Connection<'a, S>,
}

impl<S> Response<'_, '_, S> {
    fn buf(&self) -> &[u8] {
        self.conn.buf
    }

    fn core(&self) -> &Core {
        &self.conn.core
    }

    fn parsed(&self) -> &ResponseHead {
        self.conn.core.head().unwrap_or(&ResponseHead::NONE)
    }

    crate::client::response_accessors!();
}

impl<S: ErrorType> ErrorType for Response<'_, '_, S> {
    type Error = Error<S::Error>;
}

impl<S: Read + Write> Read for Response<'_, '_, S> {
    /// Reads body bytes; `Ok(0)` means the body has ended correctly.
    fn read(&mut self, out: &mut [u8]) -> Result<usize, Self::Error> {
        let conn = &mut *self.conn;
        conn.core.begin_read(false);
        let ctx = conn.ctx(None, &[]);
        conn.drive(&ctx, out)
    }
}

impl<S: Read + Write> Response<'_, '_, S> {
    /// Reads the whole body into `out`; see
    /// [`Response::read_to_end`](crate::Response::read_to_end).
    pub fn read_to_end(&mut self, out: &mut [u8]) -> Result<usize, Error<S::Error>> {
        let conn = &mut *self.conn;
        let ctx = conn.ctx(None, &[]);
        let mut filled = 0;
        loop {
            conn.core.begin_read(true);
            match conn.drive(&ctx, part_mut(out, filled..out.len()))? {
                0 => return Ok(filled),
                n => filled += n,
            }
        }
    }

    /// Reads the rest of the body and drops it; returns how many bytes were dropped.
    pub fn discard(&mut self) -> Result<u64, Error<S::Error>> {
        let mut scratch = [0u8; 64];
        let mut total = 0u64;
        loop {
            match self.read(&mut scratch)? {
                0 => return Ok(total),
                n => total += n as u64,
            }
        }
    }
}
