//! The connection state machine: one per connection, for its whole life.
//!
//! [`Core`] owns no buffer and does no I/O. It decides everything an exchange goes through —
//! what to write next (the head, the rest of a head sent in parts, the body from the buffer or
//! from the caller's slice, chunk frames, the last chunk), when to flush, when to wait for
//! `100 Continue` and what ends that wait, where each read goes, when a response is complete,
//! and whether the connection is reusable, closed, closed by the server while idle, or
//! poisoned. The I/O shells (async in `client.rs`, blocking in `blocking.rs`) are one loop
//! each: they ask [`Core::poll`] for the next [`Step`], perform it on the stream, and report
//! the outcome with [`Core::on_write`], [`Core::on_flush`], [`Core::on_read`] or
//! [`Core::on_timeout`]. The model is quinn-proto's `poll_transmit`/`handle_event` and h11's one
//! state machine per connection.
//!
//! Buffer layout during an exchange:
//!
//! ```text
//! sending:   [ bytes kept for the next response | request head (+ body) ...... | free ]
//! receiving: [ response head | trailers | unread received bytes ......... | free ]
//!            0               head.len              rx_start     rx_end          buf.len()
//! ```
//!
//! Between exchanges the unread bytes (the start of a next response that arrived early) are
//! kept and moved to the front before the next request is encoded behind them.

use core::ops::Range;

use embedded_io::ErrorKind;

use crate::error::{ConnectionError, Error, RequestError, ResponseError, TimeoutPhase};
use crate::proto::decode::BodyDecoder;
use crate::proto::encode::{self, BodyFraming, Host, Method, RequestHead};
use crate::proto::response::{self, HeadScanner, ResponseHead};
use crate::proto::timing::Wait;

/// The most interim (1xx) responses skipped before the final response.
pub const MAX_INTERIM_RESPONSES: u8 = 8;

/// What the shell must do next.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Step {
    /// Write these bytes of the buffer (one write call), then [`Core::on_write`].
    Write(Range<usize>),
    /// Write these bytes of the caller's slice ([`Ctx::src`]), then [`Core::on_write`].
    WriteSrc(Range<usize>),
    /// Flush the stream, then [`Core::on_flush`].
    Flush,
    /// Read into this range of the buffer, bounded by the deadline of `Wait`, then
    /// [`Core::on_read`] (or [`Core::on_timeout`]).
    Read(Range<usize>, Wait),
    /// Read at most this many bytes straight into the caller's output slice, then
    /// [`Core::on_read`].
    ReadOut(usize, Wait),
    /// The operation is complete. For body reads, the number of bytes placed in the caller's
    /// output slice (`0`: the body has ended); for a streamed piece, the bytes of it that were
    /// sent; `0` otherwise.
    Done(usize),
}

/// What the caller passes for the operation in progress: the request (to encode the rest of a
/// head sent in parts) and the slice whose bytes [`Step::WriteSrc`] refers to.
#[derive(Debug, Clone, Copy)]
pub struct Ctx<'x> {
    /// The request being sent, when the operation sends one.
    pub req: Option<&'x RequestHead<'x>>,
    /// The connection's host.
    pub host: Host<'x>,
    /// The caller's body bytes for this operation (the request body, or a streamed piece).
    pub src: &'x [u8],
}

/// What the current operation is waiting for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
enum Goal {
    /// The final response's head (a request, or the end of a streamed body).
    Response,
    /// The head of a streamed request is sent (and any `100 Continue` wait is over).
    Streaming,
    /// A streamed piece is sent, or the pieces so far are flushed.
    Piece,
    /// Body bytes, or the end of the body; with `to_end`, an empty output slice means the
    /// caller's slice is full and the body must end here.
    Body { to_end: bool },
    /// The previous response's framing is read to its end (nothing of its body may be left).
    Settle,
    /// One read on an idle connection whose stream said bytes are ready.
    IdleCheck,
}

/// Where the request's body comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
enum BodySrc {
    /// In the buffer behind the head (or there is none).
    Buffer,
    /// The caller's slice, this long.
    Slice(usize),
    /// Streamed by the caller: bytes still to send for a known length, `None` for chunked.
    Stream(Option<u64>),
    /// In the buffer at this range, to be written after a head sent in parts behind it.
    Held(usize, usize),
}

/// The stages of writing a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
enum Stage {
    /// Writing `buf[at..end]`: head bytes (and the inline body, or a chunk frame).
    Buf { at: usize, end: usize },
    /// Encoding the next part of the head into the free part of the buffer.
    HeadPart,
    /// Flushing the head before waiting for `100 Continue`.
    FlushHead,
    /// Waiting for `100 Continue`.
    Continue,
    /// Writing `src[at..]`, the caller's body.
    Src { at: usize },
    /// Flushing the request; the response comes next.
    Flush,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
enum State {
    /// Ready for a request.
    Idle,
    /// Writing a request.
    Send(Stage),
    /// The head of a streamed request is sent; the caller writes the body piece by piece.
    /// `piece`: a piece being written (its stage, and how many of its bytes it carries).
    Streaming { piece: Option<(Stage, usize)> },
    /// Reading the response head.
    Head,
    /// Reading the body.
    Body,
    /// Reading the trailer section of a chunked body.
    Trailers,
    /// The last response ended the connection.
    Closed,
    /// The server closed the connection while it was idle (or before answering the request
    /// sent on it after it had been idle).
    ClosedByServer,
    /// An exchange failed or was abandoned part-way.
    Poisoned,
}

/// How far the framing of a response can be read from what is buffered.
enum Framed {
    /// The response is complete.
    Complete,
    /// Body data comes next.
    Data,
    /// More bytes are needed.
    NeedInput,
}

/// What the end of the stream (or an abrupt end) means where it happened.
enum Ended {
    /// The body was delimited by the close: the response is complete.
    Complete,
    /// A typed error says what happened.
    Error(Error<core::convert::Infallible>),
    /// Nothing more specific can be said: the stream's own error is passed through.
    PassThrough,
}

/// Whether an error kind means the connection ended (closed or reset) rather than failed.
fn ended(kind: ErrorKind) -> bool {
    matches!(
        kind,
        ErrorKind::ConnectionReset
            | ErrorKind::ConnectionAborted
            | ErrorKind::BrokenPipe
            | ErrorKind::NotConnected
    )
}

fn widen<E>(e: Error<core::convert::Infallible>) -> Error<E> {
    match e {
        Error::Request(e) => Error::Request(e),
        Error::Response(e) => Error::Response(e),
        Error::Connection(e) => Error::Connection(e),
        Error::Timeout(p) => Error::Timeout(p),
        Error::Io(never) => match never {},
    }
}

/// `buf[r]`, or nothing when the range is outside it: the core's ranges always fit, and this
/// way no panic path is compiled in where the optimizer cannot see that.
pub(crate) fn part(buf: &[u8], r: Range<usize>) -> &[u8] {
    buf.get(r).unwrap_or(&[])
}

/// `&mut buf[r]`, or nothing; see [`part`].
pub(crate) fn part_mut(buf: &mut [u8], r: Range<usize>) -> &mut [u8] {
    buf.get_mut(r).unwrap_or(&mut [])
}

/// `buf.copy_within(src, dest)` when both ranges fit (they always do); never panics. Done as
/// non-overlapping block copies (`memcpy`) so that no `memmove` is linked in (804 bytes on
/// riscv32imc): the blocks are as long as the distance moved, which is rarely small.
fn move_within(buf: &mut [u8], src: Range<usize>, dest: usize) {
    let Range { start, end } = src;
    let Some(len) = end.checked_sub(start) else {
        return;
    };
    if len == 0 || end > buf.len() || dest > buf.len() - len || dest == start {
        return;
    }
    if dest < start {
        let gap = start - dest;
        let mut done = 0;
        while done < len {
            let n = gap.min(len - done);
            if let Some((front, back)) = buf.split_at_mut_checked(start + done) {
                if let (Some(d), Some(s)) =
                    (front.get_mut(dest + done..dest + done + n), back.get(..n))
                {
                    d.copy_from_slice(s);
                }
            }
            done += n;
        }
    } else {
        let gap = dest - start;
        let mut left = len;
        while left > 0 {
            let n = gap.min(left);
            let (from, to) = (start + left - n, dest + left - n);
            if let Some((front, back)) = buf.split_at_mut_checked(to) {
                if let (Some(s), Some(d)) = (front.get(from..from + n), back.get_mut(..n)) {
                    d.copy_from_slice(s);
                }
            }
            left -= n;
        }
    }
}

/// Whether a request asks for `100 Continue` before its body.
fn expects_continue(req: &RequestHead<'_>) -> bool {
    req.headers.iter().any(|(name, value)| {
        name.eq_ignore_ascii_case("expect")
            && crate::proto::text::trim_ows(value.as_bytes()).eq_ignore_ascii_case(b"100-continue")
    })
}

/// The sans-IO state of one connection. See the module documentation.
#[derive(Debug, Clone)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct Core {
    state: State,
    goal: Goal,
    /// Received bytes not yet consumed: `rx_start..rx_end` of the buffer.
    rx_start: usize,
    rx_end: usize,
    /// Body bytes placed in the caller's slice by the last step, to report with `Done`.
    produced: usize,
    /// The last read step was [`Step::ReadOut`] (into the caller's slice).
    reading_out: bool,
    /// The waits can be bounded, so a request with `Expect: 100-continue` may wait for the
    /// `100` before its body (without a timer the body is sent at once, RFC 9110 §10.1.1).
    timed: bool,
    /// A previous exchange completed on this connection: it was reused.
    reused: bool,
    /// The request may be sent again automatically (RFC 9112 §9.3.1).
    idempotent: bool,
    /// Some byte of the current request was accepted by the stream.
    wrote: bool,
    /// Some byte of the current response arrived.
    received: bool,
    request_was_head: bool,
    expect: bool,
    body: BodySrc,
    head_len: usize,
    /// Head bytes placed in the buffer for writing so far.
    head_done: usize,
    interim: u8,
    scanner: HeadScanner,
    head: Option<ResponseHead>,
    decoder: BodyDecoder,
    trailers: (usize, usize),
}

impl Default for Core {
    fn default() -> Self {
        Self::new(false)
    }
}

impl Core {
    /// A fresh connection with nothing buffered. `timed`: the shell bounds waits with a
    /// timer, so an `Expect: 100-continue` request may wait (boundedly) for the `100`.
    pub const fn new(timed: bool) -> Self {
        Self {
            state: State::Idle,
            goal: Goal::Settle,
            rx_start: 0,
            rx_end: 0,
            produced: 0,
            reading_out: false,
            timed,
            reused: false,
            idempotent: false,
            wrote: false,
            received: false,
            request_was_head: false,
            expect: false,
            body: BodySrc::Buffer,
            head_len: 0,
            head_done: 0,
            interim: 0,
            scanner: HeadScanner::new(),
            head: None,
            decoder: BodyDecoder::Done,
            trailers: (0, 0),
        }
    }

    /// Whether the waits are bounded (see [`Core::new`]).
    pub fn set_timed(&mut self, timed: bool) {
        self.timed = timed;
    }

    /// Whether the server closed the connection while it was idle (see
    /// [`ConnectionError::ClosedByServer`]).
    pub fn is_closed_by_server(&self) -> bool {
        self.state == State::ClosedByServer
    }

    /// Whether a request can be sent now (after [`Core::begin_settle`] has run, if a body was
    /// read to its last data byte but not past its framing).
    pub fn is_reusable(&self) -> bool {
        matches!(self.state, State::Idle)
            || (matches!(self.state, State::Body | State::Trailers)
                && self.decoder.is_framing_only())
    }

    /// Whether the connection can never carry another request: closed by the last response,
    /// closed by the server while idle, or poisoned. Open a new one.
    pub fn is_finished(&self) -> bool {
        matches!(
            self.state,
            State::Closed | State::ClosedByServer | State::Poisoned
        )
    }

    /// Whether the last request may be sent again on a new connection, as RFC 9112 §9.3.1
    /// allows: the server closed this connection before answering (it had been idle), and the
    /// request is idempotent or provably never reached the stream.
    pub fn may_resend(&self) -> bool {
        self.state == State::ClosedByServer && (self.idempotent || !self.wrote)
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
        matches!(self.state, State::Idle | State::Closed) && self.head.is_some()
    }

    // ---- starting operations -------------------------------------------------------------

    /// Starts reading the rest of the previous response's framing (a chunked body whose data
    /// was read to its last byte, but not its last chunk). Drive it with [`Core::poll`]; it
    /// ends at once when there is nothing to read.
    ///
    /// An operation abandoned part-way (a dropped future) is never resumed: the connection is
    /// then poisoned.
    pub fn begin_settle(&mut self) {
        self.abandon_unfinished();
        self.goal = Goal::Settle;
    }

    /// Poisons the connection if an operation was left part-way (its future dropped).
    fn abandon_unfinished(&mut self) {
        if matches!(
            self.state,
            State::Send(_) | State::Streaming { .. } | State::Head
        ) {
            self.state = State::Poisoned;
        }
    }

    /// Checks that a request may be sent and moves any buffered bytes to the front. Returns
    /// where the request may be encoded.
    fn ready(&mut self, buf: &mut [u8]) -> Result<usize, ConnectionError> {
        match self.state {
            State::Idle => {}
            State::Closed => return Err(ConnectionError::Closed),
            State::ClosedByServer => return Err(ConnectionError::ClosedByServer),
            _ => {
                self.state = State::Poisoned;
                return Err(ConnectionError::Poisoned);
            }
        }
        let pending = self.rx_end - self.rx_start;
        move_within(buf, self.rx_start..self.rx_end, 0);
        self.rx_start = 0;
        self.rx_end = pending;
        Ok(pending)
    }

    /// Encodes the head at `at` (whole, or its first part when the free space is short) and
    /// returns the range to write first.
    fn place_head(
        &mut self,
        buf: &mut [u8],
        at: usize,
        req: &RequestHead<'_>,
        host: &Host<'_>,
        framing: BodyFraming,
    ) -> Result<Range<usize>, RequestError> {
        let free = buf.get_mut(at..).unwrap_or(&mut []);
        let (len, first) = match encode::encode(req, host, framing, free) {
            Ok(n) => (n, n),
            Err(RequestError::BufferTooSmall { needed }) => {
                // A head that fits the buffer is always sent: when bytes kept for the next
                // response leave too little room, it goes out in parts, so whether a request
                // can be sent never depends on how the server's bytes were split into reads.
                if needed > buf.len() {
                    return Err(RequestError::BufferTooSmall { needed });
                }
                if at == buf.len() {
                    return Err(RequestError::BufferTooSmall {
                        needed: at + needed,
                    });
                }
                let first =
                    encode::encode_part(req, host, framing, part_mut(buf, at..buf.len()), 0);
                (needed, first)
            }
            Err(e) => return Err(e),
        };
        if first == len {
            crate::trace::request(part(buf, at..at + len));
        }
        self.head_len = len;
        self.head_done = first;
        Ok(at..at + first)
    }

    fn start(&mut self, req: &RequestHead<'_>, idempotent: bool, first: Range<usize>, goal: Goal) {
        self.state = State::Send(Stage::Buf {
            at: first.start,
            end: first.end,
        });
        self.goal = goal;
        self.request_was_head = req.method == Method::Head;
        self.idempotent = idempotent || req.method.is_idempotent();
        self.wrote = false;
        // Bytes of this response that arrived early (behind the last one) count: its first
        // byte is already here.
        self.received = self.rx_end > self.rx_start;
        self.produced = 0;
        self.interim = 0;
        self.head = None;
        self.trailers = (0, 0);
        self.scanner = HeadScanner::new();
    }

    /// Starts sending a request whose body is the caller's slice (pass it again as
    /// [`Ctx::src`] to every [`Core::poll`]). The operation ends when the final response's
    /// head is parsed.
    ///
    /// Head and body go out in one write when they fit the buffer; otherwise the head, then
    /// the body from the caller's slice. With `Expect: 100-continue`, a non-empty body and a
    /// timer, the body waits for `100 Continue` (or the continue deadline); a final response
    /// that comes first means the body is never sent and the connection is not reused.
    /// `idempotent`: the caller vouches that the request may be repeated (RFC 9112 §9.3.1).
    pub fn begin_send<E>(
        &mut self,
        buf: &mut [u8],
        req: &RequestHead<'_>,
        host: &Host<'_>,
        body: &[u8],
        idempotent: bool,
    ) -> Result<(), Error<E>> {
        let at = self.ready(buf)?;
        let mut range =
            self.place_head(buf, at, req, host, BodyFraming::Length(body.len() as u64))?;
        self.expect = self.timed && !body.is_empty() && expects_continue(req);
        self.body = BodySrc::Slice(body.len());
        if !self.expect && self.head_done == self.head_len {
            if let Some(dst) = buf.get_mut(range.end..range.end + body.len()) {
                dst.copy_from_slice(body);
                range.end += body.len();
                self.body = BodySrc::Buffer;
            }
        }
        crate::log::debug!(
            "rawpost: {} with {} bytes in the buffer{}",
            req.method.as_str(),
            range.len(),
            if self.body == BodySrc::Buffer {
                ""
            } else {
                " + the body from the caller's slice"
            }
        );
        self.start(req, idempotent, range, Goal::Response);
        Ok(())
    }

    /// Starts sending a request whose body `write_body` produces straight into the buffer (it
    /// is given all the free space and returns the body's length). The head is then encoded
    /// in front of the body, so head and body go out in one write; when the buffer is crowded by
    /// bytes kept for the next response, the head goes out in parts from the space behind the
    /// body, then the body. An `Expect: 100-continue` header is sent as given but not waited for
    /// (the body is already in the buffer). On any error nothing is to be written.
    pub fn begin_send_with<F, BE, E>(
        &mut self,
        buf: &mut [u8],
        req: &RequestHead<'_>,
        host: &Host<'_>,
        idempotent: bool,
        write_body: F,
    ) -> Result<(), Error<E>>
    where
        F: FnOnce(&mut [u8]) -> Result<usize, BE>,
    {
        let at = self.ready(buf)?;
        let room = buf.len() - at;
        let len = match write_body(part_mut(buf, at..buf.len())) {
            Ok(n) if n <= room => n,
            _ => return Err(RequestError::BodyWriter.into()),
        };
        let framing = BodyFraming::Length(len as u64);
        let head_len = encode::validate(req, host, framing)?;
        let body_end = at + len;
        let first = if body_end + head_len <= buf.len() {
            move_within(buf, at..body_end, at + head_len);
            encode::encode(req, host, framing, part_mut(buf, at..at + head_len))?;
            crate::trace::request(part(buf, at..at + head_len));
            self.body = BodySrc::Buffer;
            self.head_done = head_len;
            at..at + head_len + len
        } else if body_end < buf.len() {
            let first =
                encode::encode_part(req, host, framing, part_mut(buf, body_end..buf.len()), 0);
            self.body = BodySrc::Held(at, body_end);
            self.head_done = first;
            body_end..body_end + first
        } else {
            return Err(RequestError::BufferTooSmall {
                needed: body_end + head_len,
            }
            .into());
        };
        self.head_len = head_len;
        self.expect = false;
        self.start(req, idempotent, first, Goal::Response);
        Ok(())
    }

    /// Starts sending the head of a request whose body the caller then streams: with a known
    /// length (`Content-Length`) or chunked (`None`). The operation ends when the head is sent
    /// and, with `Expect: 100-continue` and a timer, when the `100 Continue` wait is over.
    pub fn begin_stream<E>(
        &mut self,
        buf: &mut [u8],
        req: &RequestHead<'_>,
        host: &Host<'_>,
        length: Option<u64>,
        idempotent: bool,
    ) -> Result<(), Error<E>> {
        let at = self.ready(buf)?;
        let framing = length.map_or(BodyFraming::Chunked, BodyFraming::Length);
        let range = self.place_head(buf, at, req, host, framing)?;
        self.expect = self.timed && length != Some(0) && expects_continue(req);
        self.body = BodySrc::Stream(length);
        self.start(req, idempotent, range, Goal::Streaming);
        Ok(())
    }

    /// Starts sending one piece of a streamed body, `len` bytes long (pass it as
    /// [`Ctx::src`]). With a known length it is written straight from the caller's slice (one
    /// write call, which may take part of it); chunked, as one chunk framed in the buffer (a
    /// piece larger than the buffer is cut to fit).
    pub fn begin_piece<E>(&mut self, buf: &mut [u8], data: &[u8]) -> Result<(), Error<E>> {
        self.begin_streamed_step()?;
        if data.is_empty() {
            return Ok(());
        }
        let piece = match self.body {
            BodySrc::Stream(Some(remaining)) => {
                if data.len() as u64 > remaining {
                    self.state = State::Poisoned;
                    return Err(RequestError::BodyLengthMismatch.into());
                }
                (Stage::Src { at: 0 }, 0)
            }
            _ => {
                let space = self.send_space(buf.len());
                let (range, n) = encode::frame_chunk(buf, space, data).inspect_err(|_| {
                    self.state = State::Poisoned;
                })?;
                (
                    Stage::Buf {
                        at: range.start,
                        end: range.end,
                    },
                    n,
                )
            }
        };
        self.state = State::Streaming { piece: Some(piece) };
        Ok(())
    }

    /// Starts flushing a streamed body's pieces written so far (the caller's `flush`), bounded
    /// like a write.
    pub fn begin_piece_flush<E>(&mut self) -> Result<(), Error<E>> {
        self.begin_streamed_step()?;
        self.state = State::Streaming {
            piece: Some((Stage::Flush, 0)),
        };
        Ok(())
    }

    /// A piece or a flush may start: the head of a streamed request is sent and no piece is
    /// under way (one abandoned part-way poisons the connection).
    fn begin_streamed_step(&mut self) -> Result<(), ConnectionError> {
        self.goal = Goal::Piece;
        match self.state {
            State::Streaming { piece: None } => Ok(()),
            State::Streaming { piece: Some(_) } | State::Poisoned => {
                self.state = State::Poisoned;
                Err(ConnectionError::Poisoned)
            }
            _ if self.head.is_some() => Err(ConnectionError::AnsweredBeforeBody),
            _ => Err(ConnectionError::Poisoned),
        }
    }

    /// Starts ending a streamed body (for chunked, with the last chunk) and reading the
    /// response head. A known-length body that is still short is
    /// [`RequestError::BodyLengthMismatch`]. If the server answered before the body was sent
    /// (`Expect: 100-continue`), the operation ends at once with that response.
    pub fn begin_finish<E>(&mut self, buf: &mut [u8]) -> Result<(), Error<E>> {
        self.goal = Goal::Response;
        match self.state {
            State::Streaming { piece: None } => {}
            State::Body | State::Idle | State::Closed if self.head.is_some() => return Ok(()),
            _ => {
                self.state = State::Poisoned;
                return Err(ConnectionError::Poisoned.into());
            }
        }
        self.state = match self.body {
            BodySrc::Stream(Some(0)) => State::Send(Stage::Flush),
            BodySrc::Stream(None) => {
                let space = self.send_space(buf.len());
                let Some(dst) = buf.get_mut(space.start..space.start + encode::LAST_CHUNK.len())
                else {
                    self.state = State::Poisoned;
                    return Err(RequestError::BufferTooSmall {
                        needed: space.start + encode::LAST_CHUNK.len(),
                    }
                    .into());
                };
                dst.copy_from_slice(encode::LAST_CHUNK);
                State::Send(Stage::Buf {
                    at: space.start,
                    end: space.start + encode::LAST_CHUNK.len(),
                })
            }
            _ => {
                self.state = State::Poisoned;
                return Err(RequestError::BodyLengthMismatch.into());
            }
        };
        self.head_done = self.head_len;
        self.body = BodySrc::Buffer;
        Ok(())
    }

    /// Starts reading body bytes into the caller's output slice. With `to_end`, an empty slice
    /// means the caller's slice is full: the body must end there, or the result is
    /// [`RequestError::BodyBufferTooSmall`].
    pub fn begin_read(&mut self, to_end: bool) {
        self.abandon_unfinished();
        self.goal = Goal::Body { to_end };
    }

    /// Starts one read on an idle connection, for a shell whose stream said bytes are ready
    /// (`ReadReady`): the end of the stream means the server closed the idle connection.
    /// Returns `false` (nothing to do) unless the connection is idle.
    pub fn begin_idle_check(&mut self) -> bool {
        self.goal = Goal::IdleCheck;
        self.state == State::Idle
    }

    /// How the body of the request being sent is framed, from where it comes: what the rest
    /// of a head sent in parts needs (no body byte has been written yet then).
    fn request_framing(&self) -> BodyFraming {
        match self.body {
            BodySrc::Slice(len) => BodyFraming::Length(len as u64),
            BodySrc::Held(at, end) => BodyFraming::Length((end - at) as u64),
            BodySrc::Stream(Some(len)) => BodyFraming::Length(len),
            BodySrc::Stream(None) => BodyFraming::Chunked,
            BodySrc::Buffer => BodyFraming::Length(0),
        }
    }

    /// The part of the buffer free while a request is being sent (after any bytes kept for the
    /// next response): where the rest of a head and chunk frames are encoded.
    fn send_space(&self, buf_len: usize) -> Range<usize> {
        let start = match self.body {
            BodySrc::Held(_, end) => end.max(self.rx_end),
            _ => self.rx_end,
        };
        start.min(buf_len)..buf_len
    }

    // ---- the driver ----------------------------------------------------------------------

    /// The next step of the operation in progress. `out` is the caller's output slice for body
    /// reads (empty otherwise).
    pub fn poll<E>(
        &mut self,
        buf: &mut [u8],
        ctx: &Ctx<'_>,
        out: &mut [u8],
    ) -> Result<Step, Error<E>> {
        loop {
            match self.state {
                State::Poisoned => return Err(ConnectionError::Poisoned.into()),
                State::ClosedByServer if self.goal == Goal::Settle => return Ok(Step::Done(0)),
                State::ClosedByServer => return Err(ConnectionError::ClosedByServer.into()),
                State::Send(stage) => {
                    if let Some(step) = self.poll_send(buf, ctx, stage)? {
                        return Ok(step);
                    }
                }
                State::Streaming { piece } => {
                    if self.goal == Goal::Streaming {
                        return Ok(Step::Done(0));
                    }
                    match piece {
                        None => return Ok(Step::Done(0)),
                        Some((Stage::Buf { at, end }, n)) => {
                            if at < end {
                                return Ok(Step::Write(at..end));
                            }
                            self.state = State::Streaming { piece: None };
                            return Ok(Step::Done(n));
                        }
                        Some((Stage::Src { at }, _)) if at == 0 && !ctx.src.is_empty() => {
                            return Ok(Step::WriteSrc(0..ctx.src.len()))
                        }
                        Some((Stage::Flush, _)) => return Ok(Step::Flush),
                        Some((_, n)) => {
                            self.state = State::Streaming { piece: None };
                            return Ok(Step::Done(n));
                        }
                    }
                }
                State::Head => {
                    if let Some(step) = self.poll_head(buf, false)? {
                        return Ok(step);
                    }
                }
                State::Idle if self.goal == Goal::IdleCheck => {
                    if self.rx_end >= buf.len() {
                        // Nowhere to read: leave the bytes for the next response.
                        return Ok(Step::Done(0));
                    }
                    self.reading_out = false;
                    return Ok(Step::Read(self.rx_end..buf.len(), Wait::Idle));
                }
                State::Body | State::Trailers | State::Idle | State::Closed => {
                    return match self.goal {
                        Goal::Body { to_end } => self.poll_body(buf, out, to_end),
                        Goal::Settle => self.poll_settle(buf).map_err(Error::from),
                        _ => Ok(Step::Done(0)),
                    };
                }
            }
        }
    }

    /// One stage of writing a request; `None` when the state changed and the caller should
    /// look again.
    fn poll_send<E>(
        &mut self,
        buf: &mut [u8],
        ctx: &Ctx<'_>,
        stage: Stage,
    ) -> Result<Option<Step>, Error<E>> {
        let next = match stage {
            Stage::Buf { at, end } if at < end => return Ok(Some(Step::Write(at..end))),
            Stage::Buf { .. } if self.head_done < self.head_len => Stage::HeadPart,
            Stage::Buf { .. } if self.expect => Stage::FlushHead,
            Stage::Buf { .. } => match self.body {
                BodySrc::Slice(len) if len > 0 => Stage::Src { at: 0 },
                BodySrc::Held(at, end) => {
                    self.body = BodySrc::Buffer;
                    Stage::Buf { at, end }
                }
                BodySrc::Stream(_) => {
                    self.state = State::Streaming { piece: None };
                    return Ok(None);
                }
                _ => Stage::Flush,
            },
            Stage::HeadPart => {
                let Some(req) = ctx.req else {
                    self.state = State::Poisoned;
                    return Err(ConnectionError::Poisoned.into());
                };
                let space = self.send_space(buf.len());
                let n = encode::encode_part(
                    req,
                    &ctx.host,
                    self.request_framing(),
                    part_mut(buf, space.clone()),
                    self.head_done,
                );
                self.head_done += n;
                Stage::Buf {
                    at: space.start,
                    end: space.start + n,
                }
            }
            Stage::FlushHead | Stage::Flush => return Ok(Some(Step::Flush)),
            Stage::Continue => return self.poll_head(buf, true),
            Stage::Src { at } => match self.body {
                BodySrc::Slice(len) if at < len => {
                    if ctx.src.len() != len {
                        self.state = State::Poisoned;
                        return Err(ConnectionError::Poisoned.into());
                    }
                    return Ok(Some(Step::WriteSrc(at..len)));
                }
                _ => Stage::Flush,
            },
        };
        self.state = State::Send(next);
        Ok(None)
    }

    /// The body after the `100 Continue` wait (the `100` came, or the wait ran out).
    fn after_continue(&mut self) {
        self.expect = false;
        self.state = match self.body {
            BodySrc::Slice(len) if len > 0 => State::Send(Stage::Src { at: 0 }),
            BodySrc::Stream(_) => State::Streaming { piece: None },
            _ => State::Send(Stage::Flush),
        };
    }

    /// Reads and parses response heads: skips interim (1xx) responses, takes the `100` that
    /// lets the body go when `continue_wait`, and settles the final response. `None` when the
    /// state changed.
    fn poll_head<E>(
        &mut self,
        buf: &mut [u8],
        continue_wait: bool,
    ) -> Result<Option<Step>, Error<E>> {
        let wait = match (continue_wait, self.received) {
            (true, _) => Wait::Continue,
            (false, false) => Wait::FirstByte,
            (false, true) => Wait::Idle,
        };
        let Some(len) = self.scanner.scan(part(buf, 0..self.rx_end)) else {
            if self.rx_end >= buf.len() {
                return Err(self.fail(ResponseError::HeadTooLarge).into());
            }
            self.reading_out = false;
            return Ok(Some(Step::Read(self.rx_end..buf.len(), wait)));
        };
        let head = response::parse(
            part_mut(buf, 0..len),
            self.scanner.folded(),
            self.request_was_head,
        )
        .map_err(|e| self.fail(e))?;
        let consume = |core: &mut Self, buf: &mut [u8]| {
            move_within(buf, len..core.rx_end, 0);
            core.rx_end -= len;
            core.scanner = HeadScanner::new();
        };
        match head.status {
            101 => return Err(self.fail(ResponseError::UnexpectedUpgrade).into()),
            100 if continue_wait => {
                consume(self, buf);
                self.after_continue();
                return Ok(None);
            }
            100..=199 => {
                crate::log::debug!("rawpost: skipped interim response {}", head.status);
                self.interim += 1;
                if self.interim > MAX_INTERIM_RESPONSES {
                    return Err(self.fail(ResponseError::TooManyInterimResponses).into());
                }
                consume(self, buf);
                return Ok(None);
            }
            _ => {}
        }
        let mut head = head;
        if continue_wait {
            // A final answer before the body was sent: the body is never sent, so the request
            // on the wire is incomplete and the connection cannot be reused.
            crate::log::debug!("rawpost: final response before 100 Continue; body not sent");
            head.keep_alive = false;
            self.expect = false;
        }
        crate::log::debug!(
            "rawpost: response {} HTTP/1.{}, head {} bytes, framing {:?}, keep-alive {}",
            head.status,
            head.minor_version,
            len,
            head.framing,
            head.keep_alive
        );
        self.rx_start = len;
        self.head = Some(head);
        self.decoder = BodyDecoder::new(head.framing);
        self.state = State::Body;
        if self.decoder.is_done() {
            self.finish();
        }
        Ok(Some(Step::Done(0)))
    }

    fn finish(&mut self) {
        let keep_alive = self.head.is_some_and(|h| h.keep_alive);
        self.state = if keep_alive {
            self.reused = true;
            State::Idle
        } else {
            State::Closed
        };
        crate::log::trace!(
            "rawpost: response complete, {} bytes buffered, reusable {}",
            self.rx_end - self.rx_start,
            keep_alive
        );
    }

    fn fail(&mut self, e: ResponseError) -> ResponseError {
        self.state = State::Poisoned;
        e
    }

    fn body_base(&self) -> usize {
        self.head.map_or(0, |h| usize::from(h.len))
    }

    /// Reads as far into the response's framing as the buffered bytes allow, without I/O:
    /// chunk framing, the last chunk, the trailer section.
    fn advance_framing(&mut self, buf: &mut [u8]) -> Result<Framed, ResponseError> {
        loop {
            match self.state {
                State::Body => {}
                State::Trailers => return self.trailers_from_buffer(buf),
                _ => return Ok(Framed::Complete),
            }
            if self.decoder.is_done() {
                self.finish();
                continue;
            }
            if self.decoder.at_trailers() {
                // Keep the trailer section in the buffer, right after the head.
                let base = self.body_base();
                move_within(buf, self.rx_start..self.rx_end, base);
                self.rx_end = base + (self.rx_end - self.rx_start);
                self.rx_start = base;
                self.scanner = HeadScanner::at_line_start();
                self.state = State::Trailers;
                continue;
            }
            let (used, _) = self
                .decoder
                .decode(part(buf, self.rx_start..self.rx_end), &mut [])
                .map_err(|e| self.fail(e))?;
            self.rx_start += used;
            if self.decoder.is_done() || self.decoder.at_trailers() {
                continue;
            }
            let data_next = self.decoder.direct_limit() > 0
                && (self.rx_start < self.rx_end
                    || !matches!(self.decoder, BodyDecoder::UntilClose));
            return Ok(if data_next {
                Framed::Data
            } else {
                Framed::NeedInput
            });
        }
    }

    fn trailers_from_buffer(&mut self, buf: &mut [u8]) -> Result<Framed, ResponseError> {
        let base = self.body_base();
        match self.scanner.scan(part(buf, base..self.rx_end)) {
            Some(len) => {
                response::parse_trailers(part_mut(buf, base..base + len), self.scanner.folded())
                    .map_err(|e| self.fail(e))?;
                self.trailers = (base, base + len);
                self.rx_start = base + len;
                self.decoder = BodyDecoder::Done;
                self.finish();
                Ok(Framed::Complete)
            }
            None if self.rx_end >= buf.len() => Err(self.fail(ResponseError::InvalidTrailers)),
            None => Ok(Framed::NeedInput),
        }
    }

    /// Where a read for more framing goes.
    fn framing_read(&mut self, buf: &[u8]) -> Result<Step, ResponseError> {
        if self.rx_start == self.rx_end && self.state == State::Body {
            let base = self.body_base();
            self.rx_start = base;
            self.rx_end = base;
        }
        if self.rx_end >= buf.len() {
            return Err(self.fail(if self.state == State::Trailers {
                ResponseError::InvalidTrailers
            } else {
                ResponseError::HeadTooLarge
            }));
        }
        self.reading_out = false;
        Ok(Step::Read(self.rx_end..buf.len(), Wait::Idle))
    }

    fn poll_settle(&mut self, buf: &mut [u8]) -> Result<Step, ConnectionError> {
        if matches!(self.state, State::Idle | State::Closed) {
            return Ok(Step::Done(0));
        }
        let framed = self
            .advance_framing(buf)
            .map_err(|_| ConnectionError::Poisoned)?;
        match framed {
            Framed::Complete => Ok(Step::Done(0)),
            Framed::NeedInput => self
                .framing_read(buf)
                .map_err(|_| ConnectionError::Poisoned),
            Framed::Data => {
                // The caller left body bytes unread: where the next response starts is unknown.
                crate::log::debug!("rawpost: the last response's body was not read to its end");
                self.state = State::Poisoned;
                Err(ConnectionError::Poisoned)
            }
        }
    }

    /// Advances a body read: decodes buffered bytes into `out`, or asks for a read.
    fn poll_body<E>(
        &mut self,
        buf: &mut [u8],
        out: &mut [u8],
        to_end: bool,
    ) -> Result<Step, Error<E>> {
        loop {
            if self.produced > 0 {
                // Complete whatever framing is already buffered, so that reading the last body
                // byte completes the exchange when the rest of the response is here.
                self.advance_framing(buf)?;
                return Ok(Step::Done(core::mem::take(&mut self.produced)));
            }
            match self.state {
                State::Body | State::Trailers => {}
                _ => return Ok(Step::Done(0)),
            }
            if out.is_empty() || self.state == State::Trailers || !self.decoder_has_data() {
                if out.is_empty() && !to_end {
                    return Ok(Step::Done(0));
                }
                match self.advance_framing(buf)? {
                    Framed::Complete => return Ok(Step::Done(0)),
                    Framed::NeedInput => return Ok(self.framing_read(buf)?),
                    Framed::Data if out.is_empty() => {
                        self.state = State::Poisoned;
                        return Err(RequestError::BodyBufferTooSmall.into());
                    }
                    Framed::Data => {}
                }
            }
            if self.rx_start < self.rx_end {
                let (used, produced) = self
                    .decoder
                    .decode(part(buf, self.rx_start..self.rx_end), out)
                    .map_err(|e| self.fail(e))?;
                self.rx_start += used;
                self.produced = produced;
                continue;
            }
            // Nothing buffered: body bytes go straight into the caller's slice.
            let base = self.body_base();
            self.rx_start = base;
            self.rx_end = base;
            let direct = self.decoder.direct_limit();
            let n = usize::try_from(direct).map_or(out.len(), |d| d.min(out.len()));
            self.reading_out = true;
            return Ok(Step::ReadOut(n, Wait::Idle));
        }
    }

    /// Whether the decoder's next bytes are body data (rather than framing).
    fn decoder_has_data(&self) -> bool {
        self.decoder.direct_limit() > 0
    }

    // ---- events --------------------------------------------------------------------------

    /// The stream's answer to [`Step::Write`] or [`Step::WriteSrc`].
    pub fn on_write<E: embedded_io::Error>(&mut self, r: Result<usize, E>) -> Result<(), Error<E>> {
        let n = match r {
            Ok(0) => return Err(self.ended_by(Error::Connection(ConnectionError::WriteZero))),
            Ok(n) => n,
            Err(e) => return Err(self.io_error(e)),
        };
        self.wrote = true;
        match self.state {
            State::Send(Stage::Buf { at, end }) => {
                self.state = State::Send(Stage::Buf {
                    at: (at + n).min(end),
                    end,
                });
            }
            State::Send(Stage::Src { at }) => self.state = State::Send(Stage::Src { at: at + n }),
            State::Streaming {
                piece: Some((Stage::Buf { at, end }, carried)),
            } => {
                self.state = State::Streaming {
                    piece: Some((
                        Stage::Buf {
                            at: (at + n).min(end),
                            end,
                        },
                        carried,
                    )),
                };
            }
            State::Streaming {
                piece: Some((Stage::Src { .. }, _)),
            } => {
                if let BodySrc::Stream(Some(remaining)) = &mut self.body {
                    *remaining = remaining.saturating_sub(n as u64);
                }
                self.state = State::Streaming {
                    piece: Some((Stage::Src { at: n }, n)),
                };
            }
            _ => {}
        }
        Ok(())
    }

    /// The stream's answer to [`Step::Flush`].
    pub fn on_flush<E: embedded_io::Error>(&mut self, r: Result<(), E>) -> Result<(), Error<E>> {
        if let Err(e) = r {
            return Err(self.io_error(e));
        }
        match self.state {
            State::Send(Stage::FlushHead) => self.state = State::Send(Stage::Continue),
            State::Send(Stage::Flush) => self.state = State::Head,
            State::Streaming {
                piece: Some((Stage::Flush, _)),
            } => self.state = State::Streaming { piece: None },
            _ => {}
        }
        Ok(())
    }

    /// The stream's answer to [`Step::Read`] or [`Step::ReadOut`] (`Ok(0)`: the end of the
    /// stream).
    pub fn on_read<E: embedded_io::Error>(&mut self, r: Result<usize, E>) -> Result<(), Error<E>> {
        let n = match r {
            Ok(0) => {
                return match self.stream_ended(true) {
                    Ended::Complete => Ok(()),
                    Ended::Error(e) => Err(widen(e)),
                    // A read that returned 0 where the end has no meaning of its own.
                    Ended::PassThrough => Err(ConnectionError::Poisoned.into()),
                };
            }
            Ok(n) => n,
            Err(e) => return Err(self.io_error(e)),
        };
        if self.goal == Goal::IdleCheck {
            // Bytes on an idle connection: kept as the start of the next response.
            self.rx_end += n;
            self.goal = Goal::Settle;
            return Ok(());
        }
        self.received = true;
        if core::mem::take(&mut self.reading_out) {
            self.decoder.advance_direct(n);
            self.produced = n;
        } else {
            self.rx_end += n;
        }
        Ok(())
    }

    /// The wait of the last step ran out: `None` for the `100 Continue` wait (the body is then
    /// sent), or the phase whose deadline passed (the exchange fails).
    pub fn on_timeout<E>(&mut self, phase: Option<TimeoutPhase>) -> Result<(), Error<E>> {
        match phase {
            None if self.state == State::Send(Stage::Continue) => {
                crate::log::debug!("rawpost: no 100 Continue in time; sending the body");
                self.after_continue();
                Ok(())
            }
            phase => {
                self.state = State::Poisoned;
                Err(Error::Timeout(phase.unwrap_or(TimeoutPhase::Exchange)))
            }
        }
    }

    fn io_error<E: embedded_io::Error>(&mut self, e: E) -> Error<E> {
        if ended(e.kind()) {
            self.ended_by(Error::Io(e))
        } else {
            self.state = State::Poisoned;
            Error::Io(e)
        }
    }

    /// The stream ended abruptly (a reset, a TLS session without `close_notify`, a write
    /// refused): a typed error where the phase gives it a meaning, `otherwise` if not.
    fn ended_by<E>(&mut self, otherwise: Error<E>) -> Error<E> {
        match self.stream_ended(false) {
            Ended::Error(e) => widen(e),
            Ended::Complete | Ended::PassThrough => otherwise,
        }
    }

    /// The stream ended, cleanly (a read returned 0: a FIN, or a TLS `close_notify`) or not,
    /// and what that means where it happened. Sets the state accordingly.
    fn stream_ended(&mut self, clean: bool) -> Ended {
        let outcome = match self.state {
            State::Idle if self.goal == Goal::IdleCheck => {
                crate::log::debug!("rawpost: the server closed the idle connection");
                self.state = State::ClosedByServer;
                self.goal = Goal::Settle;
                // No request was sent on it since: the next one may go on a new connection.
                self.wrote = false;
                return Ended::Complete;
            }
            State::Send(_) | State::Streaming { .. } | State::Head if !self.received => {
                if self.reused {
                    crate::log::debug!("rawpost: the server had closed the reused connection");
                    self.state = State::ClosedByServer;
                    return Ended::Error(ConnectionError::ClosedByServer.into());
                }
                if clean {
                    Ended::Error(ResponseError::UnexpectedEof.into())
                } else {
                    Ended::PassThrough
                }
            }
            State::Send(Stage::Continue) | State::Head => {
                Ended::Error(ResponseError::UnexpectedEof.into())
            }
            State::Body => match self.decoder {
                BodyDecoder::UntilClose | BodyDecoder::Done if clean => Ended::Complete,
                BodyDecoder::UntilClose => Ended::Error(ResponseError::UncleanClose.into()),
                _ => Ended::Error(ResponseError::TruncatedBody.into()),
            },
            State::Trailers => Ended::Error(ResponseError::TruncatedBody.into()),
            _ => Ended::PassThrough,
        };
        if let Ended::Complete = outcome {
            // Only a body delimited by the close ends here, and it never keeps the connection.
            self.decoder = BodyDecoder::Done;
            self.state = State::Closed;
        } else {
            self.state = State::Poisoned;
        }
        outcome
    }
}

#[cfg(test)]
mod tests {
    use super::move_within;

    /// `move_within` is `copy_within` for every overlap, direction and distance.
    #[test]
    fn move_within_is_copy_within() {
        let orig: Vec<u8> = (0..32).collect();
        for start in 0..32 {
            for end in start..=32 {
                for dest in 0..=32 - (end - start) {
                    let mut want = orig.clone();
                    want.copy_within(start..end, dest);
                    let mut got = orig.clone();
                    move_within(&mut got, start..end, dest);
                    assert_eq!(got, want, "{start}..{end} -> {dest}");
                }
            }
        }
        // Out of range: nothing happens, nothing panics.
        let mut got = orig.clone();
        move_within(&mut got, 30..40, 0);
        move_within(&mut got, 0..10, 30);
        let (start, end) = (5, 3);
        move_within(&mut got, start..end, 0);
        assert_eq!(got, orig);
    }
}
