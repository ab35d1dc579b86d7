//! The blocking I/O shell: the same client over `embedded_io::{Read, Write}`, for std users
//! (esp-idf-svc, host tools) and simple loops.
//!
//! It drives the same sans-IO [`Core`] as the async [`Connection`](crate::Connection); only the
//! loops that move bytes are written here. There is no [`Timer`](crate::Timer): a blocking
//! call cannot be raced, so deadlines are the stream's own (`set_read_timeout` on a std
//! `TcpStream`, a socket option on esp-idf), and the continue wait of
//! `Expect: 100-continue` is skipped (the body is sent at once, which RFC 9110 allows).
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

use embedded_io::{ErrorType, Read, Write};

use crate::error::{ConnectionError, Error, RequestError};
use crate::proto::conn::{Core, Outgoing, Step};
use crate::proto::head::{BodyFraming, Host};
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

impl<'a, S> Connection<'a, S> {
    /// A connection over `stream` to `host`, using `buf` for requests and responses.
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

    /// Whether a request can be sent now.
    pub fn is_reusable(&self) -> bool {
        self.core.is_reusable()
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

/// Wraps a stream error, marking the connection unusable.
fn io<V, E>(core: &mut Core, r: Result<V, E>) -> Result<V, Error<E>> {
    r.map_err(|e| {
        core.poison();
        Error::Io(e)
    })
}

fn write_all<S: Write>(
    stream: &mut S,
    core: &mut Core,
    mut bytes: &[u8],
) -> Result<(), Error<S::Error>> {
    while !bytes.is_empty() {
        match io(core, stream.write(bytes))? {
            0 => {
                core.poison();
                return Err(Error::Connection(ConnectionError::WriteZero));
            }
            n => bytes = bytes.get(n..).unwrap_or(&[]),
        }
    }
    Ok(())
}

impl<'a, S: Read + Write> Connection<'a, S> {
    /// Sends a request and reads the response head; see
    /// [`Connection::send`](crate::Connection::send).
    pub fn send(&mut self, req: &Request<'_>) -> Result<Response<'_, 'a, S>, Error<S::Error>> {
        let out = self
            .core
            .prepare(self.buf, &req.head, &self.host, req.body)?;
        write_all(&mut self.stream, &mut self.core, &self.buf[out.range])?;
        if out.body_follows {
            write_all(&mut self.stream, &mut self.core, req.body)?;
        }
        if out.expect_continue {
            // No way to wait a bounded time: send the body now; a 100 is skipped as interim.
            self.core.body_sent();
        }
        self.finish_request()
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
        let out = self
            .core
            .prepare_with(self.buf, &req.head, &self.host, write_body)?;
        write_all(&mut self.stream, &mut self.core, &self.buf[out.range])?;
        self.finish_request()
    }

    /// Writes what `prepare` put in the buffer, then the rest of a head sent in parts.
    fn write_head(&mut self, req: &Request<'_>, out: &Outgoing) -> Result<(), Error<S::Error>> {
        write_all(
            &mut self.stream,
            &mut self.core,
            &self.buf[out.range.clone()],
        )?;
        let mut offset = out.head_sent;
        while offset < out.head_len {
            let part = self
                .core
                .head_part(self.buf, &req.head, &self.host, out, offset);
            offset += part.len();
            write_all(&mut self.stream, &mut self.core, &self.buf[part])?;
        }
        Ok(())
    }

    fn finish_request(&mut self) -> Result<Response<'_, 'a, S>, Error<S::Error>> {
        io(&mut self.core, self.stream.flush())?;
        self.core.sent();
        loop {
            match self.core.poll_head(self.buf)? {
                Step::Read(range) => {
                    let n = io(&mut self.core, self.stream.read(&mut self.buf[range]))?;
                    self.core.on_read(n)?;
                }
                Step::Continue => {}
                _ => break,
            }
        }
        let head = *self
            .core
            .head()
            .ok_or(Error::Connection(ConnectionError::Poisoned))?;
        Ok(Response { conn: self, head })
    }

    /// Sends the head of a request whose body is then streamed; see
    /// [`Connection::send_streaming`](crate::Connection::send_streaming).
    pub fn send_streaming(
        &mut self,
        req: &Request<'_>,
        length: Option<u64>,
    ) -> Result<BodyWriter<'_, 'a, S>, Error<S::Error>> {
        let framing = length.map_or(BodyFraming::Chunked, BodyFraming::Length);
        let out = self
            .core
            .prepare_head(self.buf, &req.head, &self.host, framing)?;
        self.write_head(req, &out)?;
        Ok(BodyWriter {
            conn: self,
            remaining: length,
        })
    }
}

/// The body of a streamed request; see [`BodyWriter`](crate::BodyWriter).
pub struct BodyWriter<'c, 'a, S> {
    conn: &'c mut Connection<'a, S>,
    remaining: Option<u64>,
}

impl<S: ErrorType> ErrorType for BodyWriter<'_, '_, S> {
    type Error = Error<S::Error>;
}

impl<S: Read + Write> Write for BodyWriter<'_, '_, S> {
    fn write(&mut self, data: &[u8]) -> Result<usize, Self::Error> {
        if data.is_empty() {
            return Ok(0);
        }
        let conn = &mut *self.conn;
        match self.remaining {
            None => {
                let space = conn.core.send_space(conn.buf.len());
                let (range, n) = crate::proto::chunk::frame(&mut conn.buf[..], space, data)
                    .inspect_err(|_| conn.core.poison())?;
                write_all(&mut conn.stream, &mut conn.core, &conn.buf[range])?;
                Ok(n)
            }
            Some(remaining) if data.len() as u64 > remaining => {
                conn.core.poison();
                Err(RequestError::BodyLengthMismatch.into())
            }
            Some(remaining) => {
                let n = io(&mut conn.core, conn.stream.write(data))?;
                self.remaining = Some(remaining - n as u64);
                Ok(n)
            }
        }
    }

    fn flush(&mut self) -> Result<(), Self::Error> {
        io(&mut self.conn.core, self.conn.stream.flush())
    }
}

impl<'c, 'a, S: Read + Write> BodyWriter<'c, 'a, S> {
    /// Ends the body and reads the response head; see
    /// [`BodyWriter::finish`](crate::BodyWriter::finish).
    pub fn finish(self) -> Result<Response<'c, 'a, S>, Error<S::Error>> {
        let conn = self.conn;
        match self.remaining {
            Some(0) => {}
            Some(_) => {
                conn.core.poison();
                return Err(RequestError::BodyLengthMismatch.into());
            }
            None => write_all(&mut conn.stream, &mut conn.core, crate::proto::chunk::LAST)?,
        }
        conn.finish_request()
    }
}

/// A blocking response; see [`Response`](crate::Response).
pub struct Response<'c, 'a, S> {
    conn: &'c mut Connection<'a, S>,
    head: ResponseHead,
}

impl<S> Response<'_, '_, S> {
    fn buf(&self) -> &[u8] {
        self.conn.buf
    }

    fn core(&self) -> &Core {
        &self.conn.core
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
        loop {
            match conn.core.poll_body(conn.buf, out)? {
                Step::Produced(n) => return Ok(n),
                Step::Done | Step::Continue => return Ok(0),
                Step::Read(range) => {
                    let n = io(&mut conn.core, conn.stream.read(&mut conn.buf[range]))?;
                    conn.core.on_read(n)?;
                }
                Step::ReadDirect(max) => {
                    let n = io(&mut conn.core, conn.stream.read(&mut out[..max]))?;
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
    /// Reads the whole body into `out`; see
    /// [`Response::read_to_end`](crate::Response::read_to_end).
    pub fn read_to_end(&mut self, out: &mut [u8]) -> Result<usize, Error<S::Error>> {
        let mut filled = 0;
        loop {
            if filled == out.len() {
                let mut probe = [0u8; 1];
                return match self.read(&mut probe)? {
                    0 => Ok(filled),
                    _ => {
                        self.conn.core.poison();
                        Err(RequestError::BodyBufferTooSmall.into())
                    }
                };
            }
            match self.read(&mut out[filled..])? {
                0 => return Ok(filled),
                n => filled += n,
            }
        }
    }

    /// Reads the rest of the body and drops it; returns how many bytes were dropped.
    pub fn discard(&mut self) -> Result<u64, Error<S::Error>> {
        let mut scratch = [0u8; 128];
        let mut total = 0u64;
        loop {
            match self.read(&mut scratch)? {
                0 => return Ok(total),
                n => total += n as u64,
            }
        }
    }
}
