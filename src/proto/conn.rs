//! The connection state machine: which bytes of the buffer hold what, and what to read next.
//!
//! [`Core`] owns no buffer and does no I/O. The I/O shells (async in `client.rs`, blocking in
//! `blocking.rs`) pass the buffer in, perform the [`Step`] it asks for, and report what the
//! stream returned. All protocol decisions are made here, once.
//!
//! Buffer layout during an exchange:
//!
//! ```text
//! [ response head | trailers | unread received bytes ........ | free ]
//! 0               head.len                rx.0        rx.1             buf.len()
//! ```
//!
//! Between exchanges the unread bytes (the start of a pipelined next response) are kept and
//! moved to the front before the next request is encoded behind them.

use core::ops::Range;

use crate::error::{ConnectionError, RequestError, ResponseError};
use crate::proto::body::BodyDecoder;
use crate::proto::head::{self, BodyFraming, Host, RequestHead};
use crate::proto::response::{self, HeadScanner, ResponseHead};

/// The most interim (1xx) responses skipped before the final response.
pub const MAX_INTERIM_RESPONSES: u8 = 8;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
enum Phase {
    /// Ready for a request.
    Idle,
    /// The request is being written.
    Sending,
    /// Reading the response head.
    Head,
    /// Reading the body.
    Body,
    /// Reading the trailer section of a chunked body.
    Trailers,
    /// The last response ended the connection.
    Closed,
    /// An exchange failed or was abandoned part-way.
    Poisoned,
}

/// What the shell must do next.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Step {
    /// Read into this range of the buffer, then call [`Core::on_read`].
    Read(Range<usize>),
    /// Read at most this many bytes straight into the caller's slice, then call
    /// [`Core::on_read_direct`].
    ReadDirect(usize),
    /// This many body bytes were written to the caller's slice.
    Produced(usize),
    /// The head is ready ([`Core::poll_head`]) or the body has ended ([`Core::poll_body`]).
    Done,
    /// `100 Continue` arrived for a request sent with `Expect: 100-continue`: send the body,
    /// call [`Core::body_sent`], then poll the head again.
    Continue,
}

/// What to write for a prepared request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outgoing {
    /// The bytes of the buffer to write first: the head (or its first part), and the body too
    /// when it fit.
    pub range: Range<usize>,
    /// The head's whole length.
    pub head_len: usize,
    /// How much of the head `range` holds; the rest comes from [`Core::head_part`].
    pub head_sent: usize,
    /// How the body is framed (needed to encode the rest of the head).
    pub framing: BodyFraming,
    /// Whether the caller's body slice must be written after `range`.
    pub body_follows: bool,
    /// Whether the request carries `Expect: 100-continue` and its body (from the caller's
    /// slice) waits for `100 Continue`: write `range`, flush, call [`Core::sent`], and poll
    /// the head until [`Step::Continue`] or until the continue wait runs out.
    pub expect_continue: bool,
}

/// The sans-IO state of one connection. See the module documentation.
#[derive(Debug, Clone)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct Core {
    phase: Phase,
    /// Received bytes not yet consumed: `rx_start..rx_end` of the buffer.
    rx_start: usize,
    rx_end: usize,
    request_was_head: bool,
    /// The body waits for `100 Continue`.
    awaiting_continue: bool,
    interim: u8,
    scanner: HeadScanner,
    head: Option<ResponseHead>,
    decoder: BodyDecoder,
    trailers: (usize, usize),
}

impl Default for Core {
    fn default() -> Self {
        Self::new()
    }
}

impl Core {
    /// A fresh connection with nothing buffered.
    pub const fn new() -> Self {
        Self {
            phase: Phase::Idle,
            rx_start: 0,
            rx_end: 0,
            request_was_head: false,
            awaiting_continue: false,
            interim: 0,
            scanner: HeadScanner::new(),
            head: None,
            decoder: BodyDecoder::Done,
            trailers: (0, 0),
        }
    }

    /// Whether a request can be sent now.
    pub fn is_reusable(&self) -> bool {
        self.phase == Phase::Idle
    }

    /// Marks the connection unusable after an I/O error or a timeout.
    pub fn poison(&mut self) {
        self.phase = Phase::Poisoned;
    }

    /// The head of the current (or last) response.
    pub fn head(&self) -> Option<&ResponseHead> {
        self.head.as_ref()
    }

    /// The trailer section of the last chunked response, as a range of the buffer.
    pub fn trailers(&self) -> Range<usize> {
        self.trailers.0..self.trailers.1
    }

    /// Whether the current response's body has been read to its end.
    pub fn body_done(&self) -> bool {
        matches!(self.phase, Phase::Idle | Phase::Closed) && self.head.is_some()
    }

    /// Checks that a request may be sent and moves any buffered bytes to the front.
    /// Returns where the request may be encoded.
    fn begin(&mut self, buf: &mut [u8]) -> Result<usize, ConnectionError> {
        match self.phase {
            Phase::Idle => {}
            Phase::Closed => return Err(ConnectionError::Closed),
            _ => {
                self.phase = Phase::Poisoned;
                return Err(ConnectionError::Poisoned);
            }
        }
        let pending = self.rx_end - self.rx_start;
        buf.copy_within(self.rx_start..self.rx_end, 0);
        self.rx_start = 0;
        self.rx_end = pending;
        Ok(pending)
    }

    fn start_sending(&mut self, method: head::Method) {
        self.phase = Phase::Sending;
        self.awaiting_continue = false;
        self.request_was_head = method == head::Method::Head;
        self.head = None;
        self.trailers = (0, 0);
        self.interim = 0;
        self.scanner = HeadScanner::new();
    }

    /// Validates and encodes a request whose body is a slice.
    ///
    /// The head (and the body, when it fits behind the head) is encoded into the buffer.
    /// On error nothing is to be written and the connection stays as it was. A request with
    /// `Expect: 100-continue` and a non-empty body keeps its body in the caller's slice until
    /// the server answers.
    pub fn prepare<E>(
        &mut self,
        buf: &mut [u8],
        req: &RequestHead<'_>,
        host: &Host<'_>,
        body: &[u8],
    ) -> Result<Outgoing, crate::Error<E>> {
        let framing = BodyFraming::Length(body.len() as u64);
        let mut out = self.prepare_head(buf, req, host, framing)?;
        out.expect_continue = !body.is_empty() && expects_continue(req);
        let head = out.range.clone();
        let whole_head = out.head_sent == out.head_len;
        let inline = if out.expect_continue || !whole_head {
            None
        } else {
            buf.get_mut(head.end..head.end + body.len())
        };
        out.body_follows = match inline {
            Some(dst) => {
                dst.copy_from_slice(body);
                out.range.end += body.len();
                false
            }
            None => !body.is_empty(),
        };
        self.awaiting_continue = out.expect_continue;
        Ok(out)
    }

    /// Validates and encodes the head of a request whose body the caller streams afterwards:
    /// with a known length (`Content-Length`) or chunked.
    ///
    /// A head that fits the buffer is always sent: when bytes kept for the next response leave
    /// too little room behind them, [`Outgoing::range`] holds only its first part and
    /// [`Core::head_part`] encodes the rest, so whether a request can be sent never depends on
    /// how the server's bytes were split into reads.
    pub fn prepare_head<E>(
        &mut self,
        buf: &mut [u8],
        req: &RequestHead<'_>,
        host: &Host<'_>,
        framing: BodyFraming,
    ) -> Result<Outgoing, crate::Error<E>> {
        head::validate(req, host, framing)?;
        let len = head::encoded_len(req, host, framing);
        if len > buf.len() {
            return Err(RequestError::BufferTooSmall { needed: len }.into());
        }
        let at = self.begin(buf)?;
        if at == buf.len() {
            // The buffer is full of the next response's bytes: no room for even a part.
            return Err(RequestError::BufferTooSmall { needed: at + len }.into());
        }
        let part = len.min(buf.len() - at);
        head::encode_part(req, host, framing, &mut buf[at..at + part], 0);
        if part == len {
            crate::trace::request(&buf[at..at + len]);
        }
        self.start_sending(req.method);
        Ok(Outgoing {
            range: at..at + part,
            head_len: len,
            head_sent: part,
            framing,
            body_follows: false,
            expect_continue: false,
        })
    }

    /// Encodes the part of a head that starts at `offset` into the free part of the buffer
    /// (see [`Core::prepare_head`]) and returns its range.
    pub fn head_part(
        &self,
        buf: &mut [u8],
        req: &RequestHead<'_>,
        host: &Host<'_>,
        out: &Outgoing,
        offset: usize,
    ) -> Range<usize> {
        let space = self.send_space(buf.len());
        let n = out.head_len.saturating_sub(offset).min(space.len());
        let dst = &mut buf[space.start..space.start + n];
        head::encode_part(req, host, out.framing, dst, offset);
        space.start..space.start + n
    }

    /// The part of the buffer free while a request is being sent (after any bytes kept for the
    /// next response): where a streamed body's chunks are framed.
    pub fn send_space(&self, buf_len: usize) -> Range<usize> {
        self.rx_end.min(buf_len)..buf_len
    }

    /// Validates and encodes a request whose body is produced by `write_body` straight into the
    /// buffer, behind the head, so it needs no second buffer. Head and body are one range.
    pub fn prepare_with<F, BE, E>(
        &mut self,
        buf: &mut [u8],
        req: &RequestHead<'_>,
        host: &Host<'_>,
        write_body: F,
    ) -> Result<Outgoing, crate::Error<E>>
    where
        F: FnOnce(&mut [u8]) -> Result<usize, BE>,
    {
        let at = self.begin(buf)?;
        let space = (buf.len() - at) as u64;
        // The head is encoded after the body, once its length is known; reserve room for the
        // longest Content-Length the space allows. The request is validated once the body's
        // length is known; nothing is written before that.
        let reserve = head::encoded_len(req, host, BodyFraming::Length(space));
        let Some(body_area) = buf.get_mut(at + reserve..) else {
            let needed = head::encoded_len(req, host, BodyFraming::Length(0));
            return Err(RequestError::BufferTooSmall {
                needed: at + needed,
            }
            .into());
        };
        let room = body_area.len();
        let len = match write_body(body_area) {
            Ok(n) if n <= room => n,
            _ => return Err(RequestError::BodyWriter.into()),
        };
        let framing = BodyFraming::Length(len as u64);
        head::validate(req, host, framing)?;
        let n = head::encode(req, host, framing, &mut buf[at..at + reserve])
            .map_err(|e| offset_needed(e, at))?;
        buf.copy_within(at + reserve..at + reserve + len, at + n);
        crate::trace::request(&buf[at..at + n]);
        self.start_sending(req.method);
        Ok(Outgoing {
            range: at..at + n + len,
            head_len: n,
            head_sent: n,
            framing,
            body_follows: false,
            expect_continue: false,
        })
    }

    /// The request has been written and flushed (for `Expect: 100-continue`, its head): the
    /// response comes next.
    pub fn sent(&mut self) {
        if self.phase == Phase::Sending {
            self.phase = Phase::Head;
        }
    }

    /// Whether the body still waits for `100 Continue`.
    pub fn awaiting_continue(&self) -> bool {
        self.awaiting_continue
    }

    /// The body of an `Expect: 100-continue` request has been sent (after `100 Continue`, or
    /// because the wait ran out).
    pub fn body_sent(&mut self) {
        self.awaiting_continue = false;
    }

    fn fail(&mut self, e: ResponseError) -> ResponseError {
        self.phase = Phase::Poisoned;
        e
    }

    /// Advances the head phase: returns [`Step::Read`] or, once the final response's head is
    /// parsed, [`Step::Done`]. Interim (1xx) responses are skipped here.
    pub fn poll_head(&mut self, buf: &mut [u8]) -> Result<Step, ResponseError> {
        if self.phase != Phase::Head {
            return Ok(Step::Done);
        }
        loop {
            let Some(len) = self.scanner.scan(&buf[..self.rx_end]) else {
                if self.rx_end >= buf.len() {
                    return Err(self.fail(ResponseError::HeadTooLarge));
                }
                return Ok(Step::Read(self.rx_end..buf.len()));
            };
            crate::trace::response(&buf[..len]);
            let head = response::parse(&mut buf[..len], self.request_was_head)
                .map_err(|e| self.fail(e))?;
            match head.status {
                101 => return Err(self.fail(ResponseError::UnexpectedUpgrade)),
                100 if self.awaiting_continue => {
                    buf.copy_within(len..self.rx_end, 0);
                    self.rx_end -= len;
                    self.scanner = HeadScanner::new();
                    return Ok(Step::Continue);
                }
                100..=199 => {
                    crate::fmt::debug!("rawpost: skipped interim response {}", head.status);
                    self.interim += 1;
                    if self.interim > MAX_INTERIM_RESPONSES {
                        return Err(self.fail(ResponseError::TooManyInterimResponses));
                    }
                    buf.copy_within(len..self.rx_end, 0);
                    self.rx_end -= len;
                    self.scanner = HeadScanner::new();
                    continue;
                }
                _ => {}
            }
            crate::fmt::debug!(
                "rawpost: response {} HTTP/1.{}, head {} bytes, framing {:?}, keep-alive {}",
                head.status,
                head.minor_version,
                len,
                head.framing,
                head.keep_alive
            );
            let mut head = head;
            if self.awaiting_continue {
                // A final answer before the body was sent: the body is never sent, so the
                // request on the wire is incomplete and the connection cannot be reused.
                crate::fmt::debug!("rawpost: final response before 100 Continue; body not sent");
                head.keep_alive = false;
                self.awaiting_continue = false;
            }
            self.rx_start = len;
            self.head = Some(head);
            self.decoder = BodyDecoder::new(head.framing);
            self.phase = Phase::Body;
            if self.decoder.is_done() {
                self.finish();
            }
            return Ok(Step::Done);
        }
    }

    fn finish(&mut self) {
        let keep_alive = self.head.is_some_and(|h| h.keep_alive);
        self.phase = if keep_alive {
            Phase::Idle
        } else {
            Phase::Closed
        };
        crate::fmt::trace!(
            "rawpost: response complete, {} bytes buffered, reusable {}",
            self.rx_end - self.rx_start,
            keep_alive
        );
    }

    fn body_base(&self) -> usize {
        self.head.map_or(0, |h| usize::from(h.len))
    }

    /// Advances the body: copies buffered body bytes to `out` ([`Step::Produced`]), or asks for
    /// a read, or says the body has ended ([`Step::Done`]).
    ///
    /// After the exchange failed, every call is [`ConnectionError::Poisoned`]: a failed body
    /// never ends in a quiet `0`.
    pub fn poll_body<E>(
        &mut self,
        buf: &mut [u8],
        out: &mut [u8],
    ) -> Result<Step, crate::Error<E>> {
        loop {
            match self.phase {
                Phase::Body => {}
                Phase::Trailers => return Ok(self.poll_trailers(buf)?),
                Phase::Poisoned => return Err(ConnectionError::Poisoned.into()),
                _ => return Ok(Step::Done),
            }
            if self.decoder.is_done() {
                self.finish();
                return Ok(Step::Done);
            }
            let base = self.body_base();
            if self.decoder.at_trailers() {
                // Keep the trailer section in the buffer, right after the head.
                buf.copy_within(self.rx_start..self.rx_end, base);
                self.rx_end = base + (self.rx_end - self.rx_start);
                self.rx_start = base;
                self.scanner = HeadScanner::at_line_start();
                self.phase = Phase::Trailers;
                continue;
            }
            if out.is_empty() {
                return Ok(Step::Produced(0));
            }
            if self.rx_start < self.rx_end {
                let (used, produced) = self
                    .decoder
                    .decode(&buf[self.rx_start..self.rx_end], out)
                    .map_err(|e| self.fail(e))?;
                self.rx_start += used;
                if produced > 0 {
                    return Ok(Step::Produced(produced));
                }
                continue;
            }
            // Nothing buffered: reuse the space after the head.
            self.rx_start = base;
            self.rx_end = base;
            let direct = self.decoder.direct_limit();
            if direct > 0 {
                let n = usize::try_from(direct).map_or(out.len(), |d| d.min(out.len()));
                return Ok(Step::ReadDirect(n));
            }
            if base >= buf.len() {
                return Err(self.fail(ResponseError::HeadTooLarge).into());
            }
            return Ok(Step::Read(base..buf.len()));
        }
    }

    fn poll_trailers(&mut self, buf: &mut [u8]) -> Result<Step, ResponseError> {
        let base = self.body_base();
        match self.scanner.scan(&buf[base..self.rx_end]) {
            Some(len) => {
                response::parse_trailers(&mut buf[base..base + len]).map_err(|e| self.fail(e))?;
                self.trailers = (base, base + len);
                self.rx_start = base + len;
                self.decoder = BodyDecoder::Done;
                self.finish();
                Ok(Step::Done)
            }
            None if self.rx_end >= buf.len() => Err(self.fail(ResponseError::InvalidTrailers)),
            None => Ok(Step::Read(self.rx_end..buf.len())),
        }
    }

    /// The stream returned `n` bytes into the range of the last [`Step::Read`]
    /// (`0`: the connection closed).
    pub fn on_read(&mut self, n: usize) -> Result<(), ResponseError> {
        if n == 0 {
            return self.on_eof();
        }
        self.rx_end += n;
        Ok(())
    }

    /// The stream returned `n` bytes into the caller's slice for the last
    /// [`Step::ReadDirect`] (`0`: the connection closed).
    pub fn on_read_direct(&mut self, n: usize) -> Result<(), ResponseError> {
        if n == 0 {
            return self.on_eof();
        }
        self.decoder.advance_direct(n);
        Ok(())
    }

    fn on_eof(&mut self) -> Result<(), ResponseError> {
        match self.phase {
            Phase::Head => Err(self.fail(ResponseError::UnexpectedEof)),
            Phase::Body => {
                self.decoder.on_eof().map_err(|e| self.fail(e))?;
                // Only a body delimited by the close ends here, and it never keeps the
                // connection.
                self.phase = Phase::Closed;
                Ok(())
            }
            Phase::Trailers => Err(self.fail(ResponseError::TruncatedBody)),
            _ => Ok(()),
        }
    }
}

/// Whether a request asks for `100 Continue` before its body.
fn expects_continue(req: &RequestHead<'_>) -> bool {
    req.headers.iter().any(|(name, value)| {
        name.eq_ignore_ascii_case("expect") && value.trim().eq_ignore_ascii_case("100-continue")
    })
}

fn offset_needed(e: RequestError, at: usize) -> RequestError {
    match e {
        RequestError::BufferTooSmall { needed } => RequestError::BufferTooSmall {
            needed: needed + at,
        },
        e => e,
    }
}
