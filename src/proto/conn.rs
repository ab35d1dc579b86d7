//! The connection state machine: one per connection, for its whole life.
//!
//! [`Core`] owns no buffer, does no I/O and reads no clock. It is one enum of states, each
//! carrying exactly the data it needs (`Idle`, `Sending`, `AwaitContinue`, `Streaming`,
//! `Head`, `Body`, `Trailers`, `Probe`, `Closed`), so that no combination of flags can
//! disagree. An I/O shell (async in `connection.rs`, blocking in `blocking.rs`) is one loop: it asks
//! [`Core::poll`] for the next [`Step`] — what to write or read, and until when — performs it
//! on the stream, racing the one deadline the step names, and reports what happened with
//! [`Core::on_write`], [`Core::on_flush`], [`Core::on_read`] or [`Core::on_timeout`], each with
//! the time. The model is quinn-proto's `poll_transmit`/`handle_event`/`poll_timeout` and h11's
//! one state machine per connection.
//!
//! The rules of a kept connection live here:
//! - No pipelining: no response is owed while idle, so bytes that arrive then (or behind a
//!   complete response) are never parsed as a response; the connection is no longer used
//!   ([`ConnectionError::Unsolicited`]). A `408` read as the response to a request on a reused
//!   connection is the server closing it before reading the request (Go's rule:
//!   [`ConnectionError::ClosedByServer`]).
//! - A connection idle longer than the server announced (`Keep-Alive: timeout=N`) or than
//!   `max_idle` is not written into ([`ConnectionError::Expired`]).
//! - The rest of a body the caller did not read is skipped before the next request when that
//!   is bounded ([`DRAIN_BUDGET`]); otherwise the connection is closed, and the next request is
//!   refused in words ([`ConnectionError::BodyLeftUnread`]).
//! - Every end of the stream is classified by where it happened, the same over any stream:
//!   before the request was written it cost nothing ([`ConnectionError::ClosedByServer`]);
//!   after, and before a response, the server may have processed it
//!   ([`ConnectionError::Dropped`]); during a response it is a [`ResponseError`].
//! - Whether the last request may be sent again (RFC 9112 §9.3.1) is known exactly
//!   ([`Core::may_resend`]).
//!
//! Buffer layout:
//!
//! ```text
//! sending:   [ request head (+ body) | free ]
//! receiving: [ response head | trailers | unread received bytes ......... | free ]
//!            0               base       rx                       end        buf.len()
//! ```

use core::ops::Range;

use embedded_io::ErrorKind;

use crate::error::{Broken, ConnectionError, Error, RequestError, ResponseError, TimeoutPhase};
use crate::proto::decode::BodyDecoder;
use crate::proto::encode::{self, BodyFraming, RequestHead};
use crate::proto::framing::Framing;
use crate::proto::response::{self, HeadScanner, ResponseHead};
use crate::proto::timing::{after, announced_idle_ms, earlier, Timeouts};
use crate::request::{Host, Method};

/// `base + ms`, when both are known.
fn at(base: Option<u64>, ms: Option<u32>) -> Option<u64> {
    after(base, ms)
}

/// The most interim (1xx) responses skipped before the final response.
pub const MAX_INTERIM_RESPONSES: u8 = 8;

/// The most bytes read to skip the rest of a response body the caller left unread, before the
/// next request on the connection (within the idle deadline). A body with more left is not
/// skipped: the connection is closed instead ([`ConnectionError::BodyLeftUnread`]).
pub const DRAIN_BUDGET: usize = 4096;

/// What the shell must do next. A shell with a clock bounds the wait by the deadline
/// [`Core::until`] names for it, and calls [`Core::on_timeout`] when it passes first.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Step {
    /// Write these bytes of the buffer (one write call), then [`Core::on_write`].
    Write(Range<usize>),
    /// Write these bytes of the caller's slice (the body given to the operation), then
    /// [`Core::on_write`].
    WriteSrc(Range<usize>),
    /// Flush the stream, then [`Core::on_flush`].
    Flush,
    /// Read into this range of the buffer, then [`Core::on_read`].
    Read(Range<usize>),
    /// Read straight into this range of the caller's output slice, then [`Core::on_read`].
    ReadOut(Range<usize>),
    /// The operation is complete. For body reads, the number of bytes placed in the caller's
    /// output slice (`0`: the body has ended); for a streamed piece, the bytes of it that were
    /// sent; `0` otherwise.
    Done(usize),
}

/// What the exchange in progress remembers of its request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
struct Req {
    /// A `HEAD` request: its response has no body.
    head: bool,
    /// It may be sent again after the connection dropped (RFC 9112 §9.3.1).
    idempotent: bool,
}

/// What follows the head of a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
enum Then {
    /// Nothing: no body, or the body goes out in the head's write.
    Nothing,
    /// The caller's slice, this long.
    Slice(usize),
    /// The buffer at this range (a body written into the buffer, waiting for `100 Continue`).
    Buf(usize, usize),
    /// The caller streams it: this many bytes for a known length, `None` for chunked.
    Stream(Option<u64>),
}

/// A stage of writing a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
enum Stage {
    /// Writing `buf[at..end]`.
    Buf { at: usize, end: usize },
    /// Writing the caller's `src[at..len]`.
    Src { at: usize, len: usize },
    /// Flushing the head before waiting for `100 Continue`.
    FlushHead,
    /// Flushing the request; the response comes next.
    Flush,
}

/// A response head being received: `buf[..end]`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
struct HeadRead {
    end: usize,
    scanner: HeadScanner,
    interim: u8,
}

impl HeadRead {
    const fn new() -> Self {
        Self {
            end: 0,
            scanner: HeadScanner::new(),
            interim: 0,
        }
    }

    /// Whether any byte of a response (interim or final) arrived.
    fn received(&self) -> bool {
        self.end > 0 || self.interim > 0
    }
}

/// What the end of a response does to the connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
enum End {
    /// It stays open; the server keeps it idle for about this long (from `Keep-Alive`).
    Keep { idle_ms: Option<u32> },
    /// The server ends it (`Connection: close`, HTTP/1.0, a body delimited by the close).
    Close,
    /// It came before the request's body was sent: the request on the wire is incomplete.
    CloseBodyNotSent,
}

impl End {
    /// Why the connection is over once the response is, when it is.
    fn why(self) -> Option<Why> {
        match self {
            Self::Keep { .. } => None,
            Self::Close => Some(Why::ByResponse),
            Self::CloseBodyNotSent => Some(Why::Broken(Broken::BodyNotSent)),
        }
    }
}

/// Why a connection carries no more requests.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
enum Why {
    /// The last response ended it.
    ByResponse,
    /// The server closed it before a request was written.
    ByServer,
    /// It was idle too long.
    Expired,
    /// Bytes arrived while no response was owed.
    Unsolicited,
    /// A body was left unread and could not be skipped.
    LeftUnread { status: u16, left: Option<u64> },
    /// An exchange failed.
    Broken(Broken),
}

impl Why {
    fn error(self) -> ConnectionError {
        match self {
            Self::ByResponse => ConnectionError::Closed,
            Self::ByServer => ConnectionError::ClosedByServer,
            Self::Expired => ConnectionError::Expired,
            Self::Unsolicited => ConnectionError::Unsolicited,
            Self::LeftUnread { status, left } => ConnectionError::BodyLeftUnread { status, left },
            Self::Broken(b) => ConnectionError::Broken(b),
        }
    }
}

/// A request being written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
struct Sending {
    req: Req,
    stage: Stage,
    then: Then,
    /// Wait for `100 Continue` after the head.
    expect: bool,
    /// Some byte of it was accepted by the stream.
    wrote: bool,
}

/// One piece of a streamed body being written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
enum Piece {
    /// A chunk framed in `buf[at..end]`, carrying `carried` bytes of the caller's piece.
    Chunk {
        at: usize,
        end: usize,
        carried: usize,
    },
    /// The caller's piece, straight from its slice; `sent` once the write returned.
    Src { len: usize, sent: Option<usize> },
    /// Flushing what was written.
    Flush,
}

/// What a body read does with the body.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum ReadMode {
    /// One read: some bytes into the caller's slice (`0` at the end of the body).
    Some,
    /// The whole body into the caller's slice; a body that does not fit is
    /// [`RequestError::BodyBufferTooSmall`].
    ToEnd,
    /// The whole body, dropped (counted in [`Core::skipped`]).
    Discard,
}

/// A response body being read: unread bytes are `buf[rx..end]`, body bytes are buffered from
/// `base` (the head stays in front of it for the response's accessors).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
struct Body {
    rx: usize,
    end: usize,
    base: usize,
    decoder: BodyDecoder,
    fin: End,
    /// When the request was sent: the response's deadline runs from it.
    sent: Option<u64>,
    /// What the read in progress does with the body.
    mode: ReadMode,
    /// A read straight into the caller's slice is in progress.
    direct: bool,
    /// Skipping the rest of this response before the next request: the bytes the drain budget
    /// still allows.
    drain: Option<u16>,
}

/// A chunked body's trailer section being read: `buf[base..end]`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
struct Trailers {
    base: usize,
    end: usize,
    scanner: HeadScanner,
    fin: End,
    /// When the request was sent.
    sent: Option<u64>,
    /// Skipping the rest of this response before the next request: the bytes the drain budget
    /// still allows.
    drain: Option<u16>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
enum State {
    /// Ready for a request. `since`: when the last response ended; `limit`: how long the
    /// server keeps it idle, as it announced.
    Idle {
        since: Option<u64>,
        limit: Option<u32>,
    },
    /// One read of an idle connection whose stream said bytes (or its end) are ready.
    Probe {
        since: Option<u64>,
        limit: Option<u32>,
    },
    /// Writing a request.
    Sending(Sending),
    /// The head is sent (at `since`); waiting for `100 Continue` (or a final response).
    AwaitContinue {
        req: Req,
        then: Then,
        read: HeadRead,
        since: Option<u64>,
    },
    /// The head of a streamed request is sent; the caller writes the body piece by piece.
    Streaming {
        remaining: Option<u64>,
        piece: Option<Piece>,
        req: Req,
    },
    /// Reading the response head: its first byte is waited for since `wait` (the end of the
    /// request, or of an interim response); the request was sent at `sent`.
    Head {
        req: Req,
        read: HeadRead,
        wait: Option<u64>,
        sent: Option<u64>,
    },
    /// Reading the body (into the caller's slice).
    Body(Body),
    /// Reading a chunked body's trailer section.
    Trailers(Trailers),
    /// The connection carries no more requests. `resend`: the last request may be sent again
    /// on a new connection.
    Closed { why: Why, resend: bool },
}

/// How a stream operation failed.
enum Fault<E> {
    /// A read returned 0 (a FIN, a TLS `close_notify`), or a write took nothing.
    Eof,
    /// An error that means the connection ended (reset, aborted, broken pipe, not connected).
    Ended(E),
    /// Any other error.
    Failed(E),
}

impl<E: embedded_io::Error> Fault<E> {
    fn of(e: E) -> Self {
        match e.kind() {
            ErrorKind::ConnectionReset
            | ErrorKind::ConnectionAborted
            | ErrorKind::BrokenPipe
            | ErrorKind::NotConnected => Self::Ended(e),
            _ => Self::Failed(e),
        }
    }
}

/// The end of a read from `start` into a buffer of `len` bytes, within a drain budget.
fn capped(start: usize, len: usize, drain: Option<u16>) -> usize {
    match drain {
        Some(left) => len.min(start + usize::from(left)),
        None => len,
    }
}

/// A [`Step`] with its slice chosen: what a shell does with the stream next. A shell matches
/// on this (one arm per kind of wait) rather than on `Step`, so that each kind of wait is one
/// call site, one await in an async shell.
pub(crate) enum Io<'x> {
    /// The operation is done.
    Done(usize),
    /// Write these bytes.
    Write(&'x [u8]),
    /// Flush.
    Flush,
    /// Read into these bytes.
    Read(&'x mut [u8]),
}

impl<'x> Io<'x> {
    /// `step` over the connection's buffer `buf`, the caller's body `src` and the caller's
    /// slice `out`.
    pub(crate) fn of(step: Step, buf: &'x mut [u8], src: &'x [u8], out: &'x mut [u8]) -> Self {
        match step {
            Step::Done(n) => Self::Done(n),
            Step::Write(r) => Self::Write(part(buf, r)),
            Step::WriteSrc(r) => Self::Write(part(src, r)),
            Step::Flush => Self::Flush,
            Step::Read(r) => Self::Read(part_mut(buf, r)),
            Step::ReadOut(r) => Self::Read(part_mut(out, r)),
        }
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
    timeouts: Timeouts,
    /// The longest the connection is kept idle when the server announced nothing shorter.
    max_idle_ms: Option<u32>,
    /// Exchanges completed on this connection (it is reused once this is not 0).
    completed: u32,
    /// The head of the response the caller may be reading, for its accessors (no rule of the
    /// core reads it).
    last: Option<ResponseHead>,
    /// The trailer section of the last chunked response, in the buffer.
    trailers: (usize, usize),
    /// Body bytes placed in the caller's slice by the read in progress, for its `Done`.
    produced: usize,
    /// Body bytes dropped by the last [`ReadMode::Discard`].
    skipped: u64,
    /// When bytes last arrived: the end of a response is the start of the server's idle time.
    last_rx: Option<u64>,
}

impl Default for Core {
    fn default() -> Self {
        Self::new(Timeouts::none())
    }
}

impl Core {
    /// A fresh connection with nothing buffered, its waits bounded by `timeouts` (when the shell
    /// passes a clock reading).
    pub const fn new(timeouts: Timeouts) -> Self {
        Self {
            state: State::Idle {
                since: None,
                limit: None,
            },
            timeouts,
            max_idle_ms: None,
            completed: 0,
            last: None,
            trailers: (0, 0),
            produced: 0,
            skipped: 0,
            last_rx: None,
        }
    }

    /// Changes the timeouts for the next waits.
    pub fn set_timeouts(&mut self, timeouts: Timeouts) {
        self.timeouts = timeouts;
    }

    /// The longest the connection may stay idle before it is treated as closed when the server
    /// announced nothing shorter (`None`: only what the server announced). Needs a clock.
    pub fn set_max_idle(&mut self, ms: Option<u32>) {
        self.max_idle_ms = ms;
    }

    // ---- queries --------------------------------------------------------------------------

    /// Whether the idle connection has been idle longer than it may be, at `now`.
    fn expired(&self, since: Option<u64>, limit: Option<u32>, now: Option<u64>) -> bool {
        let (Some(since), Some(now)) = (since, now) else {
            return false;
        };
        let limit = match (limit, self.max_idle_ms) {
            (Some(a), Some(b)) => a.min(b),
            (a, b) => match a.or(b) {
                Some(l) => l,
                None => return false,
            },
        };
        now.saturating_sub(since) >= u64::from(limit)
    }

    /// Whether a request can be sent now (`now`: the clock, for the idle limits): the
    /// connection is idle and not expired, or a response's body is left whose rest will be
    /// skipped first.
    pub fn is_reusable(&self, now: Option<u64>) -> bool {
        match self.state {
            State::Idle { since, limit } => !self.expired(since, limit, now),
            State::Body(Body { fin, .. }) | State::Trailers(Trailers { fin, .. }) => {
                matches!(fin, End::Keep { .. })
            }
            _ => false,
        }
    }

    /// Whether the connection is idle (a probe may look at it).
    pub fn is_idle(&self) -> bool {
        matches!(self.state, State::Idle { .. })
    }

    /// Whether the stream should be asked (`ReadReady`) before the next request: the
    /// connection is idle and has been kept (it carried an exchange), so the server may have
    /// closed it, or sent something no request caused, while it was idle.
    pub fn wants_probe(&self) -> bool {
        self.completed > 0 && self.is_idle()
    }

    /// Whether the last request may be sent again on a new connection (RFC 9112 §9.3.1): it
    /// failed and no byte of it was written, or the connection ended before any byte of its
    /// response and it is idempotent.
    pub fn may_resend(&self) -> bool {
        matches!(self.state, State::Closed { resend: true, .. })
    }

    /// Why the connection carries no more requests, when it does not.
    pub fn closed_error(&self) -> Option<ConnectionError> {
        match self.state {
            State::Closed { why, .. } => Some(why.error()),
            _ => None,
        }
    }

    /// The head of the current (or last) response.
    pub fn head(&self) -> Option<&ResponseHead> {
        self.last.as_ref()
    }

    /// The trailer section of the last chunked response, as a range of the buffer.
    pub fn trailers(&self) -> Range<usize> {
        self.trailers.0..self.trailers.1
    }

    /// Whether the current response has been read to its end.
    pub fn body_done(&self) -> bool {
        self.last.is_some()
            && match self.state {
                State::Body(_) | State::Trailers(_) => false,
                State::Closed {
                    why: Why::Broken(b),
                    ..
                } => b == Broken::BodyNotSent,
                _ => true,
            }
    }

    /// Body bytes dropped by the last [`ReadMode::Discard`] read.
    pub fn skipped(&self) -> u64 {
        self.skipped
    }

    // ---- starting operations --------------------------------------------------------------

    /// An operation left part-way (its future dropped) is never resumed: where the byte stream
    /// stands is unknown, so the connection is closed.
    #[inline(never)]
    fn abandon_unfinished(&mut self) {
        match self.state {
            State::Sending(_)
            | State::AwaitContinue { .. }
            | State::Head { .. }
            | State::Body(Body { drain: Some(_), .. })
            | State::Trailers(Trailers { drain: Some(_), .. })
            | State::Streaming { piece: Some(_), .. } => {
                self.state = State::Closed {
                    why: Why::Broken(Broken::Abandoned),
                    resend: false,
                };
            }
            // A dropped probe read took nothing (reads are cancel-safe); a dropped body read
            // too.
            State::Probe { since, limit } => self.state = State::Idle { since, limit },
            State::Body(ref mut b) => b.direct = false,
            _ => {}
        }
    }

    /// Starts what must happen before a new request: skipping the rest of a response the caller
    /// left unread, when that is bounded (already buffered, or at most [`DRAIN_BUDGET`] bytes
    /// within the idle deadline); otherwise the connection is closed. Drive it with
    /// [`Core::poll`]; it ends at once when there is nothing to skip.
    pub fn begin_settle(&mut self) {
        self.abandon_unfinished();
        self.produced = 0;
        let status = self.last.map_or(0, |h| h.status);
        let (fin, drain, left) = match &mut self.state {
            State::Body(b) => {
                b.mode = ReadMode::Discard;
                // Body bytes still to come off the wire, when the server declared them.
                let left = match b.decoder {
                    BodyDecoder::Length(n) => Some(n.saturating_sub((b.end - b.rx) as u64)),
                    _ => None,
                };
                (b.fin, &mut b.drain, left)
            }
            State::Trailers(t) => (t.fin, &mut t.drain, None),
            State::Streaming { piece: None, .. } => {
                // A streamed body never finished.
                self.state = State::Closed {
                    why: Why::Broken(Broken::Abandoned),
                    resend: false,
                };
                return;
            }
            _ => return,
        };
        let why = match (fin.why(), left) {
            // The connection ends with this response anyway.
            (Some(why), _) => why,
            (_, Some(left)) if left > DRAIN_BUDGET as u64 => Why::LeftUnread {
                status,
                left: Some(left),
            },
            _ => {
                crate::log::debug!("rawpost: skipping the rest of the last response's body");
                *drain = Some(DRAIN_BUDGET as u16);
                return;
            }
        };
        self.state = State::Closed { why, resend: false };
    }

    /// Starts one read on an idle connection whose stream said bytes (or its end) are ready
    /// (`ReadReady`): an end means the server closed it, bytes are unsolicited. Returns `false`
    /// (nothing to do) unless the connection is idle.
    pub fn begin_probe(&mut self) -> bool {
        self.abandon_unfinished();
        self.produced = 0;
        match self.state {
            State::Idle { since, limit } => {
                self.state = State::Probe { since, limit };
                true
            }
            _ => false,
        }
    }

    /// Checks that a request may be sent at `now`. A refusal leaves the request resendable:
    /// nothing of it was written.
    fn ready(&mut self, now: Option<u64>) -> Result<(), ConnectionError> {
        self.abandon_unfinished();
        let why = match self.state {
            State::Idle { since, limit } if self.expired(since, limit, now) => {
                crate::log::debug!("rawpost: the idle connection expired; not written into");
                Why::Expired
            }
            State::Idle { .. } => return Ok(()),
            State::Closed { why, .. } => why,
            // A response was not settled first (`begin_settle`).
            _ => Why::Broken(Broken::Abandoned),
        };
        self.state = State::Closed { why, resend: true };
        Err(why.error())
    }

    fn start(
        &mut self,
        req: &RequestHead<'_>,
        idempotent: bool,
        stage: Stage,
        then: Then,
        expect: bool,
    ) {
        self.last = None;
        self.trailers = (0, 0);
        self.produced = 0;
        self.state = State::Sending(Sending {
            req: Req {
                head: req.method == Method::Head,
                idempotent: idempotent || req.method.is_idempotent(),
            },
            stage,
            then,
            expect,
            wrote: false,
        });
    }

    /// Whether a request with this head and a non-empty body waits for `100 Continue`: it
    /// asks for it, and the wait can be bounded.
    fn waits_for_continue(&self, req: &RequestHead<'_>, now: Option<u64>) -> bool {
        now.is_some() && self.timeouts.continue_ms.is_some() && expects_continue(req)
    }

    /// Starts sending a request whose body is the caller's slice `body` (pass it again as the
    /// source of [`Step::WriteSrc`]). The operation ends when the final response's head is
    /// parsed.
    ///
    /// Head and body go out in one write when they fit the buffer; otherwise the head, then
    /// the body from the caller's slice. With `Expect: 100-continue`, a non-empty body and a
    /// bounded continue wait, the body waits for `100 Continue` (or the continue deadline); a
    /// final response that comes first means the body is never sent and the connection is not
    /// reused. `idempotent`: the caller vouches that the request may be repeated (RFC 9112
    /// §9.3.1). On an error nothing is to be written.
    pub fn begin_send<E>(
        &mut self,
        buf: &mut [u8],
        req: &RequestHead<'_>,
        host: &Host<'_>,
        body: &[u8],
        idempotent: bool,
        now: Option<u64>,
    ) -> Result<(), Error<E>> {
        self.ready(now)?;
        let head_len = encode::encode(req, host, BodyFraming::Length(body.len() as u64), buf)?;
        crate::trace::request(part(buf, 0..head_len));
        let expect = !body.is_empty() && self.waits_for_continue(req, now);
        let mut end = head_len;
        let mut then = Then::Slice(body.len());
        if !expect {
            if let Some(dst) = buf.get_mut(head_len..head_len + body.len()) {
                dst.copy_from_slice(body);
                end += body.len();
                then = Then::Nothing;
            }
        }
        crate::log::debug!(
            "rawpost: {} with {} bytes in the buffer{}",
            req.method.as_str(),
            end,
            if then == Then::Nothing {
                ""
            } else {
                " + the body from the caller's slice"
            }
        );
        self.start(req, idempotent, Stage::Buf { at: 0, end }, then, expect);
        Ok(())
    }

    /// Starts sending a request whose body `write_body` writes straight into the buffer,
    /// behind the room reserved for the head (it is given all of the buffer behind that room
    /// and returns the body's length); the head is then encoded right in front of the body, so
    /// head and body go out in one write. With `Expect: 100-continue` and a bounded continue
    /// wait, the head goes first and the body (from the buffer) after `100 Continue`. On any
    /// error nothing is to be written.
    pub fn begin_send_with<F, BE, E>(
        &mut self,
        buf: &mut [u8],
        req: &RequestHead<'_>,
        host: &Host<'_>,
        idempotent: bool,
        now: Option<u64>,
        write_body: F,
    ) -> Result<(), Error<E>>
    where
        F: FnOnce(&mut [u8]) -> Result<usize, BE>,
    {
        self.ready(now)?;
        // The body goes behind room for the longest head this request can have (from lengths
        // alone); the head is then encoded (and checked) at the front in one pass, and moved
        // right in front of the body.
        let reserve = encode::max_len(req, host);
        let Some(room) = buf.len().checked_sub(reserve) else {
            let needed = encode::validate(req, host, BodyFraming::Length(0))?;
            return Err(RequestError::BufferTooSmall { needed }.into());
        };
        let len = match write_body(part_mut(buf, reserve..buf.len())) {
            Ok(n) if n <= room => n,
            _ => return Err(RequestError::BodyWriter.into()),
        };
        let head_len = encode::encode(
            req,
            host,
            BodyFraming::Length(len as u64),
            part_mut(buf, 0..reserve),
        )?;
        let at = reserve - head_len;
        move_within(buf, 0..head_len, at);
        crate::trace::request(part(buf, at..reserve));
        let expect = len > 0 && self.waits_for_continue(req, now);
        let (end, then) = match expect {
            true => (reserve, Then::Buf(reserve, reserve + len)),
            false => (reserve + len, Then::Nothing),
        };
        self.start(req, idempotent, Stage::Buf { at, end }, then, expect);
        Ok(())
    }

    /// Starts sending the head of a request whose body the caller then streams: with a known
    /// length (`Content-Length`) or chunked (`None`). The operation ends when the head is sent
    /// and, with `Expect: 100-continue` and a bounded wait, when the `100 Continue` wait is
    /// over.
    pub fn begin_stream<E>(
        &mut self,
        buf: &mut [u8],
        req: &RequestHead<'_>,
        host: &Host<'_>,
        length: Option<u64>,
        idempotent: bool,
        now: Option<u64>,
    ) -> Result<(), Error<E>> {
        self.ready(now)?;
        let framing = length.map_or(BodyFraming::Chunked, BodyFraming::Length);
        let head_len = encode::encode(req, host, framing, buf)?;
        crate::trace::request(part(buf, 0..head_len));
        let expect = length != Some(0) && self.waits_for_continue(req, now);
        self.start(
            req,
            idempotent,
            Stage::Buf {
                at: 0,
                end: head_len,
            },
            Then::Stream(length),
            expect,
        );
        Ok(())
    }

    /// The piece or flush of a streamed body may start.
    fn streaming(&mut self) -> Result<(Option<u64>, Req), ConnectionError> {
        match self.state {
            State::Streaming {
                remaining,
                piece: None,
                req,
            } => Ok((remaining, req)),
            State::Body(_)
            | State::Trailers(_)
            | State::Closed {
                why: Why::Broken(Broken::BodyNotSent),
                ..
            } => Err(ConnectionError::AnsweredBeforeBody),
            State::Closed { why, .. } => Err(why.error()),
            _ => {
                self.abandon_unfinished();
                Err(ConnectionError::Broken(Broken::Abandoned))
            }
        }
    }

    /// Starts sending one piece of a streamed body, `data` (pass it as the source of
    /// [`Step::WriteSrc`]). With a known length it is written straight from the caller's slice
    /// (one write call, which may take part of it); chunked, as one chunk framed in the buffer
    /// (a piece larger than the buffer is cut to fit).
    pub fn begin_piece<E>(&mut self, buf: &mut [u8], data: &[u8]) -> Result<(), Error<E>> {
        let (remaining, req) = self.streaming()?;
        if data.is_empty() {
            return Ok(());
        }
        let piece = match remaining {
            Some(left) if data.len() as u64 > left => {
                let e = RequestError::BodyLengthMismatch;
                self.state = State::Closed {
                    why: Why::Broken(Broken::Request(e)),
                    resend: false,
                };
                return Err(e.into());
            }
            Some(_) => Piece::Src {
                len: data.len(),
                sent: None,
            },
            None => {
                let (range, carried) = encode::frame_chunk(buf, 0..buf.len(), data)?;
                Piece::Chunk {
                    at: range.start,
                    end: range.end,
                    carried,
                }
            }
        };
        self.state = State::Streaming {
            remaining,
            piece: Some(piece),
            req,
        };
        Ok(())
    }

    /// Starts flushing a streamed body's pieces written so far, bounded like a write.
    pub fn begin_piece_flush<E>(&mut self) -> Result<(), Error<E>> {
        let (remaining, req) = self.streaming()?;
        self.state = State::Streaming {
            remaining,
            piece: Some(Piece::Flush),
            req,
        };
        Ok(())
    }

    /// Starts ending a streamed body (for chunked, with the last chunk) and reading the
    /// response head. A known-length body that is still short is
    /// [`RequestError::BodyLengthMismatch`]. If the server answered before the body was sent
    /// (`Expect: 100-continue`), the operation ends at once with that response.
    pub fn begin_finish<E>(&mut self, buf: &mut [u8]) -> Result<(), Error<E>> {
        let (remaining, req) = match self.streaming() {
            Ok(s) => s,
            Err(ConnectionError::AnsweredBeforeBody) => return Ok(()),
            Err(e) => return Err(e.into()),
        };
        let stage = match remaining {
            Some(0) => Stage::Flush,
            Some(_) => {
                let e = RequestError::BodyLengthMismatch;
                self.state = State::Closed {
                    why: Why::Broken(Broken::Request(e)),
                    resend: false,
                };
                return Err(e.into());
            }
            None => {
                let n = encode::LAST_CHUNK.len();
                let Some(dst) = buf.get_mut(..n) else {
                    return Err(RequestError::BufferTooSmall { needed: n }.into());
                };
                dst.copy_from_slice(encode::LAST_CHUNK);
                Stage::Buf { at: 0, end: n }
            }
        };
        self.state = State::Sending(Sending {
            req,
            stage,
            then: Then::Nothing,
            expect: false,
            wrote: true,
        });
        Ok(())
    }

    /// Starts reading the body as `mode` says (into the caller's output slice, given to each
    /// [`Core::poll`]). A body whose exchange failed stays failed: reading it again is
    /// [`ConnectionError::Broken`], never a short `Ok`.
    pub fn begin_read(&mut self, mode: ReadMode) -> Result<(), ConnectionError> {
        self.abandon_unfinished();
        self.produced = 0;
        self.skipped = 0;
        match self.state {
            State::Body(ref mut b) => b.mode = mode,
            // (A response that came before its request's body was sent is complete: reading it
            // again is the end of its body.)
            State::Closed {
                why: Why::Broken(b),
                ..
            } if b != Broken::BodyNotSent => return Err(ConnectionError::Broken(b)),
            _ => {}
        }
        Ok(())
    }

    // ---- the driver -----------------------------------------------------------------------

    /// The next step of the operation in progress. `out` is the caller's output slice for body
    /// reads (empty otherwise); `now` the clock (`None`: no clock, no deadlines).
    pub fn poll<E>(
        &mut self,
        buf: &mut [u8],
        out: &mut [u8],
        now: Option<u64>,
    ) -> Result<Step, Error<E>> {
        loop {
            match self.state {
                State::Sending(s) => {
                    if let Some(step) = self.poll_send(s) {
                        return Ok(step);
                    }
                }
                State::AwaitContinue { .. } | State::Head { .. } => {
                    if let Some(step) = self.poll_head(buf, now)? {
                        return Ok(step);
                    }
                }
                State::Streaming { piece, .. } => {
                    return Ok(match piece {
                        None => Step::Done(0),
                        Some(Piece::Chunk { at, end, .. }) if at < end => Step::Write(at..end),
                        Some(Piece::Src { len, sent: None }) => Step::WriteSrc(0..len),
                        Some(Piece::Flush) => Step::Flush,
                        Some(
                            Piece::Chunk { carried: n, .. } | Piece::Src { sent: Some(n), .. },
                        ) => {
                            self.end_piece();
                            Step::Done(n)
                        }
                    });
                }
                State::Body(Body { drain: None, .. })
                | State::Trailers(Trailers { drain: None, .. }) => {
                    return self.poll_body(buf, out, now)
                }
                // Skipping an unread response: any failure closes the connection, in words.
                State::Body(_) | State::Trailers(_) => {
                    return self
                        .poll_body::<E>(buf, out, now)
                        .map_err(|_| self.left_unread().into())
                }
                State::Probe { .. } => return Ok(Step::Read(0..buf.len())),
                State::Idle { .. } | State::Closed { .. } => return Ok(Step::Done(self.produced)),
            }
        }
    }

    fn end_piece(&mut self) {
        if let State::Streaming { ref mut piece, .. } = self.state {
            *piece = None;
        }
    }

    /// One stage of writing a request; `None` when the state changed and the caller should
    /// look again.
    fn poll_send(&mut self, mut s: Sending) -> Option<Step> {
        s.stage = match s.stage {
            Stage::Buf { at, end } if at < end => return Some(Step::Write(at..end)),
            Stage::Src { at, len } if at < len => return Some(Step::WriteSrc(at..len)),
            Stage::FlushHead | Stage::Flush => return Some(Step::Flush),
            Stage::Buf { .. } if s.expect => Stage::FlushHead,
            Stage::Buf { .. } | Stage::Src { .. } => {
                match core::mem::replace(&mut s.then, Then::Nothing) {
                    Then::Slice(len) => Stage::Src { at: 0, len },
                    Then::Buf(at, end) => Stage::Buf { at, end },
                    Then::Stream(remaining) => {
                        self.state = State::Streaming {
                            remaining,
                            piece: None,
                            req: s.req,
                        };
                        return None;
                    }
                    Then::Nothing => Stage::Flush,
                }
            }
        };
        self.state = State::Sending(s);
        None
    }

    /// Reads and parses response heads into `buf[..read.end]`: skips interim (1xx) responses,
    /// takes the `100` that lets the body go while waiting for it, and settles the final
    /// response. `None` when the state changed.
    fn poll_head<E>(&mut self, buf: &mut [u8], now: Option<u64>) -> Result<Option<Step>, Error<E>> {
        let (read, limit, req, awaiting) = match &mut self.state {
            // While waiting for `100 Continue` a body in the buffer must stay untouched.
            State::AwaitContinue {
                read, then, req, ..
            } => {
                let limit = match *then {
                    Then::Buf(at, _) => at.min(buf.len()),
                    _ => buf.len(),
                };
                (read, limit, *req, true)
            }
            State::Head { read, req, .. } => (read, buf.len(), *req, false),
            _ => return Ok(None),
        };
        // The scanner resumes where it stopped: no byte of the head is scanned twice.
        let Some(len) = read.scanner.scan(part(buf, 0..read.end)) else {
            if read.end >= limit {
                return Err(self.broken_response(ResponseError::HeadTooLarge).into());
            }
            return Ok(Some(Step::Read(read.end..limit)));
        };
        let (end, interim) = (read.end, read.interim);
        let head = match response::parse(part_mut(buf, 0..len), read.scanner.folded(), req.head) {
            Ok(head) => head,
            Err(e) => return Err(self.broken_response(e).into()),
        };
        match head.status {
            101 => {
                return Err(self
                    .broken_response(ResponseError::UnexpectedUpgrade)
                    .into())
            }
            100..=199 => {
                crate::log::debug!("rawpost: interim response {}", head.status);
                if interim >= MAX_INTERIM_RESPONSES {
                    return Err(self
                        .broken_response(ResponseError::TooManyInterimResponses)
                        .into());
                }
                move_within(buf, len..end, 0);
                let left = end - len;
                match &mut self.state {
                    State::AwaitContinue { req, then, .. } if head.status == 100 && left == 0 => {
                        // The body may go.
                        let (req, then) = (*req, *then);
                        self.after_continue(req, then);
                    }
                    State::AwaitContinue { read, .. } | State::Head { read, .. } => {
                        *read = HeadRead {
                            end: left,
                            scanner: HeadScanner::new(),
                            interim: interim + 1,
                        };
                        // The final response gets the first-byte deadline anew.
                        if let State::Head { wait, .. } = &mut self.state {
                            *wait = now;
                        }
                    }
                    _ => {}
                }
                return Ok(None);
            }
            408 if !awaiting && self.completed > 0 && interim == 0 => {
                // Go's rule: a 408 as the first thing read on a reused connection means the
                // server timed the idle connection out before reading the request.
                crate::log::debug!("rawpost: 408 on a reused connection: closed by the server");
                self.state = State::Closed {
                    why: Why::ByServer,
                    resend: true,
                };
                return Err(ConnectionError::ClosedByServer.into());
            }
            _ => {}
        }
        let sent = match self.state {
            State::Head { sent, .. } => sent,
            _ => now,
        };
        let mut head = head;
        let fin = if awaiting {
            // A final answer before the body was sent: the request on the wire is
            // incomplete, so the connection is not reused.
            crate::log::debug!("rawpost: final response before 100 Continue; body not sent");
            head.keep_alive = false;
            End::CloseBodyNotSent
        } else if head.keep_alive {
            End::Keep {
                idle_ms: head.idle_timeout.map(announced_idle_ms),
            }
        } else {
            End::Close
        };
        crate::log::debug!(
            "rawpost: response {} HTTP/1.{}, head {} bytes, framing {:?}, keep-alive {}",
            head.status,
            head.minor_version,
            len,
            head.framing,
            head.keep_alive
        );
        self.last = Some(head);
        let base = len;
        if head.framing == Framing::Chunked && base >= buf.len() {
            return Err(self.broken_response(ResponseError::NoRoomForChunk).into());
        }
        self.state = State::Body(Body {
            rx: len,
            end,
            base,
            decoder: BodyDecoder::new(head.framing),
            fin,
            sent,
            mode: ReadMode::Some,
            direct: false,
            drain: None,
        });
        // Complete what is already buffered (an empty body ends here).
        self.advance_framing(buf, now)?;
        Ok(Some(Step::Done(0)))
    }

    /// The body after the `100 Continue` wait (the `100` came, or the wait ran out).
    fn after_continue(&mut self, req: Req, then: Then) {
        self.state = match then {
            Then::Stream(remaining) => State::Streaming {
                remaining,
                piece: None,
                req,
            },
            then => State::Sending(Sending {
                req,
                stage: Stage::Buf { at: 0, end: 0 },
                then,
                expect: false,
                wrote: true,
            }),
        };
    }

    /// The exchange in progress failed on what the server sent.
    #[inline(never)]
    fn broken_response(&mut self, e: ResponseError) -> ResponseError {
        self.state = State::Closed {
            why: Why::Broken(Broken::Response(e)),
            resend: false,
        };
        e
    }

    /// The response is complete: the connection is kept or closed as its `fin` says — unless
    /// bytes follow it, which answer no request.
    #[inline(never)]
    fn complete(&mut self, fin: End, unread: Range<usize>, now: Option<u64>) {
        self.completed = self.completed.saturating_add(1);
        self.state = match fin {
            End::Keep { .. } if !unread.is_empty() => {
                crate::log::debug!(
                    "rawpost: {} bytes behind the response answer no request; not reused",
                    unread.len()
                );
                State::Closed {
                    why: Why::Unsolicited,
                    resend: false,
                }
            }
            End::Keep { idle_ms } => State::Idle {
                since: self.last_rx.or(now),
                limit: idle_ms,
            },
            End::Close => State::Closed {
                why: Why::ByResponse,
                resend: false,
            },
            End::CloseBodyNotSent => State::Closed {
                why: Why::Broken(Broken::BodyNotSent),
                resend: false,
            },
        };
        crate::log::trace!("rawpost: response complete");
    }

    /// Reads as far into the response's framing as the buffered bytes allow, without I/O:
    /// chunk framing, the last chunk, the trailer section. Returns whether body data comes
    /// next (`Some(true)`), more bytes are needed (`Some(false)`), or the response is complete
    /// (`None`).
    fn advance_framing(
        &mut self,
        buf: &mut [u8],
        now: Option<u64>,
    ) -> Result<Option<bool>, ResponseError> {
        loop {
            let b = match &mut self.state {
                State::Body(b) => b,
                State::Trailers(_) => return self.trailers_from_buffer(buf, now),
                _ => return Ok(None),
            };
            if b.decoder.is_done() {
                let (fin, unread) = (b.fin, b.rx..b.end);
                self.complete(fin, unread, now);
                return Ok(None);
            }
            if b.decoder.at_trailers() {
                // Keep the trailer section in the buffer, right after the head.
                move_within(buf, b.rx..b.end, b.base);
                let trailers = Trailers {
                    base: b.base,
                    end: b.base + (b.end - b.rx),
                    scanner: HeadScanner::at_line_start(),
                    fin: b.fin,
                    sent: b.sent,
                    drain: b.drain,
                };
                self.state = State::Trailers(trailers);
                continue;
            }
            match b.decoder.decode(part(buf, b.rx..b.end), &mut []) {
                Ok((used, _)) => b.rx += used,
                Err(e) => return Err(self.broken_response(e)),
            }
            if b.decoder.is_done() || b.decoder.at_trailers() {
                continue;
            }
            let data_next = b.decoder.direct_limit() > 0
                && (b.rx < b.end || !matches!(b.decoder, BodyDecoder::UntilClose));
            return Ok(Some(data_next));
        }
    }

    /// The trailer section, once it is all in the buffer: checked, kept, and the response
    /// complete.
    fn trailers_from_buffer(
        &mut self,
        buf: &mut [u8],
        now: Option<u64>,
    ) -> Result<Option<bool>, ResponseError> {
        let State::Trailers(t) = &mut self.state else {
            return Ok(None);
        };
        let Some(len) = t.scanner.scan(part(buf, t.base..t.end)) else {
            return match t.end >= buf.len() {
                true => Err(self.broken_response(ResponseError::InvalidTrailers)),
                false => Ok(Some(false)),
            };
        };
        let (base, end, fin, folded) = (t.base, t.end, t.fin, t.scanner.folded());
        if let Err(e) = response::parse_trailers(part_mut(buf, base..base + len), folded) {
            return Err(self.broken_response(e));
        }
        self.trailers = (base, base + len);
        self.complete(fin, base + len..end, now);
        Ok(None)
    }

    /// A read for more of the response's framing (into the buffer).
    fn framing_read(&mut self, buf: &[u8]) -> Result<Step, ResponseError> {
        let (end, drain) = match &mut self.state {
            State::Body(b) => {
                if b.rx == b.end {
                    b.rx = b.base;
                    b.end = b.base;
                }
                (b.end, b.drain)
            }
            State::Trailers(t) => (t.end, t.drain),
            _ => return Ok(Step::Done(0)),
        };
        if end >= buf.len() || drain == Some(0) {
            let e = match self.state {
                State::Trailers(_) => ResponseError::InvalidTrailers,
                _ => ResponseError::NoRoomForChunk,
            };
            return Err(self.broken_response(e));
        }
        Ok(Step::Read(end..capped(end, buf.len(), drain)))
    }

    /// Advances a body read: decodes buffered bytes into `out` (or drops them), or asks for a
    /// read.
    fn poll_body<E>(
        &mut self,
        buf: &mut [u8],
        out: &mut [u8],
        now: Option<u64>,
    ) -> Result<Step, Error<E>> {
        loop {
            let (mode, direct_limit) = match &self.state {
                State::Body(b) => (b.mode, b.decoder.direct_limit()),
                State::Trailers(_) => {
                    return match self.advance_framing(buf, now)? {
                        None => Ok(Step::Done(self.produced)),
                        Some(_) => Ok(self.framing_read(buf)?),
                    }
                }
                _ => return Ok(Step::Done(self.produced)),
            };
            let room = out.len().saturating_sub(self.produced);
            if mode == ReadMode::Some && (self.produced > 0 || out.is_empty()) {
                // One read: complete whatever framing is already buffered, so that reading the
                // last body byte completes the exchange when the rest of the response is here.
                if self.produced > 0 {
                    self.advance_framing(buf, now)?;
                }
                return Ok(Step::Done(self.produced));
            }
            let filled = mode == ReadMode::ToEnd && room == 0;
            if filled || direct_limit == 0 {
                match self.advance_framing(buf, now)? {
                    None => return Ok(Step::Done(self.produced)),
                    Some(false) => return Ok(self.framing_read(buf)?),
                    Some(true) if filled => {
                        let e = RequestError::BodyBufferTooSmall;
                        self.state = State::Closed {
                            why: Why::Broken(Broken::Request(e)),
                            resend: false,
                        };
                        return Err(e.into());
                    }
                    Some(true) => continue,
                }
            }
            let State::Body(b) = &mut self.state else {
                continue;
            };
            if b.rx < b.end {
                let input = part(buf, b.rx..b.end);
                let r = match mode {
                    ReadMode::Discard => b.decoder.skip(input),
                    _ => b
                        .decoder
                        .decode(input, part_mut(out, self.produced..out.len())),
                };
                let (used, n) = match r {
                    Ok(r) => r,
                    Err(e) => return Err(self.broken_response(e).into()),
                };
                b.rx += used;
                match mode {
                    ReadMode::Discard => self.skipped = self.skipped.saturating_add(n as u64),
                    _ => self.produced += n,
                }
                continue;
            }
            if mode == ReadMode::Discard {
                return Ok(self.framing_read(buf)?);
            }
            // Nothing buffered: body bytes go straight into the caller's slice.
            b.rx = b.base;
            b.end = b.base;
            b.direct = true;
            let len = usize::try_from(direct_limit).map_or(room, |d| d.min(room));
            return Ok(Step::ReadOut(self.produced..self.produced + len));
        }
    }

    /// Skipping an unread body failed, or did not end within its budget: the connection is
    /// closed, and the request that was to follow is refused unwritten.
    #[inline(never)]
    fn left_unread(&mut self) -> ConnectionError {
        crate::log::debug!("rawpost: the last response's body could not be skipped; closing");
        let why = Why::LeftUnread {
            status: self.last.map_or(0, |h| h.status),
            left: None,
        };
        self.state = State::Closed { why, resend: true };
        why.error()
    }

    // ---- events ---------------------------------------------------------------------------

    /// The stream's answer to [`Step::Write`] or [`Step::WriteSrc`], at `now`.
    pub fn on_write<E: embedded_io::Error>(
        &mut self,
        r: Result<usize, E>,
        now: Option<u64>,
    ) -> Result<(), Error<E>> {
        let n = match r {
            Ok(0) => return self.fault(Fault::Eof, now),
            Ok(n) => n,
            Err(e) => return self.fault(Fault::of(e), now),
        };
        match self.state {
            State::Sending(ref mut s) => {
                s.wrote = true;
                match s.stage {
                    Stage::Buf { at, end } => {
                        s.stage = Stage::Buf {
                            at: (at + n).min(end),
                            end,
                        }
                    }
                    Stage::Src { at, len } => {
                        s.stage = Stage::Src {
                            at: (at + n).min(len),
                            len,
                        }
                    }
                    _ => {}
                }
            }
            State::Streaming {
                ref mut remaining,
                piece: Some(ref mut piece),
                ..
            } => match piece {
                Piece::Chunk { at, end, .. } => *at = (*at + n).min(*end),
                Piece::Src { len, sent } => {
                    let n = n.min(*len);
                    *sent = Some(n);
                    if let Some(left) = remaining {
                        *left = left.saturating_sub(n as u64);
                    }
                }
                Piece::Flush => {}
            },
            _ => {}
        }
        Ok(())
    }

    /// The stream's answer to [`Step::Flush`], at `now`.
    pub fn on_flush<E: embedded_io::Error>(
        &mut self,
        r: Result<(), E>,
        now: Option<u64>,
    ) -> Result<(), Error<E>> {
        if let Err(e) = r {
            return self.fault(Fault::of(e), now);
        }
        match self.state {
            State::Sending(Sending {
                req,
                stage: Stage::FlushHead,
                then,
                ..
            }) => {
                self.state = State::AwaitContinue {
                    req,
                    then,
                    read: HeadRead::new(),
                    since: now,
                }
            }
            State::Sending(Sending {
                req,
                stage: Stage::Flush,
                ..
            }) => {
                self.state = State::Head {
                    req,
                    read: HeadRead::new(),
                    wait: now,
                    sent: now,
                }
            }
            State::Streaming { ref mut piece, .. } if *piece == Some(Piece::Flush) => *piece = None,
            _ => {}
        }
        Ok(())
    }

    /// The stream's answer to [`Step::Read`] or [`Step::ReadOut`] (`Ok(0)`: the end of the
    /// stream), at `now`.
    pub fn on_read<E: embedded_io::Error>(
        &mut self,
        r: Result<usize, E>,
        now: Option<u64>,
    ) -> Result<(), Error<E>> {
        let n = match r {
            Ok(0) => return self.fault(Fault::Eof, now),
            Ok(n) => n,
            Err(e) => return self.fault(Fault::of(e), now),
        };
        self.last_rx = now;
        match self.state {
            State::Probe { .. } => {
                // Bytes while no response is owed: never a response.
                crate::log::debug!("rawpost: {} bytes arrived on the idle connection", n);
                self.state = State::Closed {
                    why: Why::Unsolicited,
                    resend: true,
                };
            }
            State::AwaitContinue { ref mut read, .. } | State::Head { ref mut read, .. } => {
                read.end += n
            }
            State::Body(ref mut b) if b.direct => {
                b.direct = false;
                b.decoder.advance_direct(n);
                self.produced += n;
            }
            State::Body(ref mut b) => {
                b.end += n;
                b.drain = b.drain.map(|left| left.saturating_sub(n as u16));
            }
            State::Trailers(ref mut t) => {
                t.end += n;
                t.drain = t.drain.map(|left| left.saturating_sub(n as u16));
            }
            _ => {}
        }
        Ok(())
    }

    /// The deadline of the step the core asks for now, when the shell starts it at `now`
    /// (milliseconds on the shell's clock): writes and reads without progress are bounded by
    /// the idle time; the first byte of a response head by the first-byte time from the end of
    /// the request (or of an interim response); the `100 Continue` wait by the continue time;
    /// the whole response by the response time from the end of the request. `None`: unbounded.
    pub fn until(&self, now: u64) -> Option<u64> {
        let t = &self.timeouts;
        let idle = at(Some(now), t.idle_ms);
        match self.state {
            State::Sending(_) | State::Streaming { .. } | State::Probe { .. } => idle,
            State::AwaitContinue { read, since, .. } => match read.end {
                0 => at(since, t.continue_ms),
                _ => idle,
            },
            State::Head {
                read, wait, sent, ..
            } => earlier(
                match read.end {
                    0 => at(wait, t.first_byte_ms),
                    _ => idle,
                },
                at(sent, t.response_ms),
            ),
            // Skipping an unread response before the next request: each read within the idle
            // time (that response's own deadline is long past).
            State::Body(Body { drain: Some(_), .. })
            | State::Trailers(Trailers { drain: Some(_), .. }) => idle,
            State::Body(Body { sent, .. }) | State::Trailers(Trailers { sent, .. }) => {
                earlier(idle, at(sent, t.response_ms))
            }
            State::Idle { .. } | State::Closed { .. } => None,
        }
    }

    /// The deadline of the last step passed at `now`: the `100 Continue` wait ends (the body is
    /// sent), a probe finds nothing, anything else fails with the phase whose deadline it was.
    pub fn on_timeout<E>(&mut self, now: Option<u64>) -> Result<(), Error<E>> {
        let response_over = |sent: Option<u64>, t: &Timeouts| matches!((at(sent, t.response_ms), now), (Some(by), Some(now)) if now >= by);
        let (phase, resend) = match self.state {
            State::AwaitContinue {
                req, then, read, ..
            } => {
                if read.end == 0 {
                    crate::log::debug!("rawpost: no 100 Continue in time; sending the body");
                    self.after_continue(req, then);
                    return Ok(());
                }
                // A response head began and stalled.
                (TimeoutPhase::Idle, false)
            }
            State::Probe { since, limit } => {
                self.state = State::Idle { since, limit };
                return Ok(());
            }
            State::Body(Body { drain: Some(_), .. })
            | State::Trailers(Trailers { drain: Some(_), .. }) => {
                return Err(self.left_unread().into())
            }
            State::Sending(s) => (TimeoutPhase::Send, !s.wrote || s.req.idempotent),
            State::Streaming { req, .. } => (TimeoutPhase::Send, req.idempotent),
            State::Head {
                req, read, sent, ..
            } => {
                let phase = if response_over(sent, &self.timeouts) {
                    TimeoutPhase::Response
                } else if read.end > 0 {
                    TimeoutPhase::Idle
                } else {
                    TimeoutPhase::FirstByte
                };
                (phase, req.idempotent && !read.received())
            }
            State::Body(Body { sent, .. }) | State::Trailers(Trailers { sent, .. }) => {
                let phase = match response_over(sent, &self.timeouts) {
                    true => TimeoutPhase::Response,
                    false => TimeoutPhase::Idle,
                };
                (phase, false)
            }
            State::Idle { .. } | State::Closed { .. } => return Ok(()),
        };
        crate::log::debug!("rawpost: timed out: {}", phase.name());
        self.state = State::Closed {
            why: Why::Broken(Broken::Timeout(phase)),
            resend,
        };
        Err(Error::Timeout(phase))
    }

    /// The stream ended or failed where the state says, and what that means there: the same
    /// event gets the same error over any stream.
    fn fault<E>(&mut self, fault: Fault<E>, now: Option<u64>) -> Result<(), Error<E>> {
        /// Where the stream ended or failed.
        enum At {
            /// On an idle connection (a probe): nothing was owed.
            Idle,
            /// Before any byte of the request was written.
            Unwritten,
            /// After (part of) the request, before any byte of a response.
            Unanswered,
            /// In a response head.
            Head,
            /// In a body: delimited by the close, or not.
            Body { until_close: bool, fin: End },
        }
        let (at, resend) = match self.state {
            State::Probe { .. } => (At::Idle, true),
            State::Body(Body { drain: Some(_), .. })
            | State::Trailers(Trailers { drain: Some(_), .. }) => {
                return Err(self.left_unread().into())
            }
            State::Sending(Sending { wrote: false, .. }) => (At::Unwritten, true),
            State::Sending(Sending { req, .. }) | State::Streaming { req, .. } => {
                (At::Unanswered, req.idempotent)
            }
            State::AwaitContinue { req, read, .. } | State::Head { req, read, .. } => {
                match read.received() {
                    false => (At::Unanswered, req.idempotent),
                    true => (At::Head, false),
                }
            }
            State::Body(b) => (
                At::Body {
                    until_close: b.decoder == BodyDecoder::UntilClose,
                    fin: b.fin,
                },
                false,
            ),
            State::Trailers(t) => (
                At::Body {
                    until_close: false,
                    fin: t.fin,
                },
                false,
            ),
            State::Idle { .. } | State::Closed { .. } => return Ok(()),
        };
        // A probe's finding is the connection's state, not an error of any exchange; but a
        // stream that failed (not ended) while idle is named, not hidden.
        let idle = matches!((&at, &fault), (At::Idle, Fault::Eof | Fault::Ended(_)));
        let (why, error): (Why, Error<E>) = match (at, fault) {
            (_, Fault::Failed(e)) => (Why::Broken(Broken::Io), Error::Io(e)),
            (At::Idle | At::Unwritten, _) => {
                (Why::ByServer, ConnectionError::ClosedByServer.into())
            }
            (At::Unanswered, _) => (
                Why::Broken(Broken::Dropped),
                ConnectionError::Dropped.into(),
            ),
            (
                At::Body {
                    until_close: true,
                    fin,
                },
                Fault::Eof,
            ) => {
                // The end of a body delimited by the close.
                self.complete(fin, 0..0, now);
                return Ok(());
            }
            (at, fault) => {
                let e = match (at, fault) {
                    (
                        At::Body {
                            until_close: true, ..
                        },
                        _,
                    ) => ResponseError::UncleanClose,
                    (At::Body { .. }, _) => ResponseError::TruncatedBody,
                    _ => ResponseError::UnexpectedEof,
                };
                (Why::Broken(Broken::Response(e)), e.into())
            }
        };
        crate::log::debug!("rawpost: the stream ended or failed: {}", error.name());
        self.state = State::Closed { why, resend };
        match idle {
            true => Ok(()),
            false => Err(error),
        }
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
