//! Errors: the stream's own error, the caller's faults, the peer's faults and the connection's
//! state, kept apart. Nothing here depends on the protocol core; the core depends on this.

use core::fmt;

/// Everything that can go wrong in one exchange.
///
/// The sources of failure are separate variants, so firmware can react to each:
/// [`Error::Io`] carries the stream's own error unchanged (a TLS alert, a reset socket),
/// [`Error::Request`] is a fault in what the caller asked for (nothing was written, unless the
/// variant says otherwise), [`Error::Response`] is a fault in what the server sent,
/// [`Error::Connection`] says the connection cannot carry this exchange (and what to do), and
/// [`Error::Timeout`] names the wait that ran out. [`Error::may_have_been_processed`] says
/// whether the request may have reached the server.
///
/// An end of the connection (a clean close, a reset, a TLS session that ended without
/// `close_notify`) is never an [`Error::Io`]: it is reported by where it happened, the same way
/// over any stream — [`ConnectionError::ClosedByServer`] before the request was written,
/// [`ConnectionError::Dropped`] after it and before the response,
/// [`ResponseError::UnexpectedEof`], [`ResponseError::TruncatedBody`] or
/// [`ResponseError::UncleanClose`] during the response.
///
/// [`Error::name`] gives the name of the innermost variant (for example `"TruncatedBody"`), which
/// is what logs and the `replay` example print.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
#[non_exhaustive]
pub enum Error<E> {
    /// The stream failed (other than by ending); its error is passed through unchanged.
    Io(E),
    /// The request could not be sent as asked; no byte of it was written, unless the variant
    /// says otherwise.
    Request(RequestError),
    /// The server's response broke HTTP/1.1 (RFC 9112) or one of this crate's limits, or ended
    /// early.
    Response(ResponseError),
    /// The connection cannot carry this exchange.
    Connection(ConnectionError),
    /// A deadline passed; the phase says which wait ran out. The connection is then unusable.
    Timeout(TimeoutPhase),
}

/// A fault in what the caller asked for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
#[non_exhaustive]
pub enum RequestError {
    /// The path is empty, does not start with `/`, or contains a space, a control character
    /// (CR, LF, NUL, …) or a `#`.
    InvalidPath,
    /// The host contains a character that is not allowed in a URI host (a control character,
    /// a space, `/`, `@`, …), or is empty.
    InvalidHost,
    /// A header name is not an RFC 9110 token (empty, or contains a space, `:` or a control
    /// character).
    InvalidHeaderName,
    /// A header value contains CR, LF, NUL or another control character other than HTAB.
    InvalidHeaderValue,
    /// The caller set `Host` to a value that differs from the connection's host.
    ConflictingHost,
    /// The caller set `Content-Length` to a value that differs from the body's length, or set
    /// it for a streamed body.
    ConflictingContentLength,
    /// The caller set `Transfer-Encoding`; the crate frames bodies itself.
    TransferEncodingNotAllowed,
    /// The buffer cannot hold the request head; `needed` bytes are required.
    BufferTooSmall {
        /// Bytes needed for the request head (plus any bytes already buffered).
        needed: usize,
    },
    /// The body closure failed, or claimed to have written more than it was given.
    BodyWriter,
    /// The caller's slice was too small for the whole response body (the connection is then
    /// unusable: the rest of the body was not read).
    BodyBufferTooSmall,
    /// A streamed body's length differs from the length declared for it. The head (and part
    /// of the body) was already written, so the connection is unusable.
    BodyLengthMismatch,
}

/// A fault in what the server sent, or a response that ended before it was complete.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
#[non_exhaustive]
pub enum ResponseError {
    /// The status line is not `HTTP/1.x NNN reason`.
    MalformedStatusLine,
    /// The HTTP major version is not 1 (a `HTTP/1.x` response of any minor version is read as
    /// HTTP/1.1, RFC 9110 §2.5).
    UnsupportedVersion,
    /// A header line is malformed (bad name, bad byte in a value, missing colon).
    InvalidHeader,
    /// The response head does not fit the buffer.
    HeadTooLarge,
    /// The response head has more than [`MAX_HEADERS`](crate::MAX_HEADERS) header fields.
    TooManyHeaders,
    /// A `Content-Length` value is not a decimal number, or several values differ.
    InvalidContentLength,
    /// Both `Content-Length` and `Transfer-Encoding` are present (RFC 9112 §6.3, a request
    /// smuggling vector).
    ConflictingFraming,
    /// `Transfer-Encoding` applies `chunked` more than once.
    InvalidTransferEncoding,
    /// A chunk-size line is malformed, or a chunk's data is not followed by CRLF.
    InvalidChunk,
    /// A chunk size does not fit in 64 bits or its line exceeds
    /// [`MAX_CHUNK_LINE`](crate::MAX_CHUNK_LINE).
    ChunkSizeOverflow,
    /// The trailer section is malformed or does not fit the buffer.
    InvalidTrailers,
    /// The response head fills the buffer, leaving no room to read the framing of its chunked
    /// body (a chunk-size line): the head itself fit. Use a larger buffer.
    NoRoomForChunk,
    /// The server sent more than [`MAX_INTERIM_RESPONSES`](crate::MAX_INTERIM_RESPONSES)
    /// interim (1xx) responses.
    TooManyInterimResponses,
    /// The server switched protocols (`101`) although no upgrade was requested.
    UnexpectedUpgrade,
    /// The connection ended (closed or reset) after the response began and before its head was
    /// complete. (An end before the first byte of a response is
    /// [`ConnectionError::Dropped`].)
    UnexpectedEof,
    /// The connection ended before the body was complete (before `Content-Length` bytes, or
    /// before the last chunk).
    TruncatedBody,
    /// The body is delimited by the server closing the connection, and the connection ended
    /// without a clean close (a TLS session ended without `close_notify`, or the connection was
    /// reset): the body may be truncated. The bytes read before were delivered.
    UncleanClose,
}

/// Why a connection cannot carry an exchange, or what happened to it.
///
/// Every variant but [`Dropped`](ConnectionError::Dropped) and
/// [`AnsweredBeforeBody`](ConnectionError::AnsweredBeforeBody) is a refusal: no byte of the
/// request was written, so it may be sent on a new connection whatever its method.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
#[non_exhaustive]
pub enum ConnectionError {
    /// The server ended the connection after its last response (`Connection: close`,
    /// HTTP/1.0, or a body delimited by closing the connection). Nothing was written: open a new
    /// connection.
    Closed,
    /// The server had closed this kept-alive connection before the request was written: it was
    /// found closed while idle (an end of stream, a reset, a TLS session that ended), the first
    /// write was refused, or the server answered `408 Request Timeout` before reading the
    /// request (Go's rule). Nothing of the request was processed: send it again on a new
    /// connection.
    ClosedByServer,
    /// The connection had been idle longer than the server said it keeps idle connections
    /// (`Keep-Alive: timeout=N`) or than the connection's `max_idle`, so it is treated as closed
    /// and was not written into. Send the request on a new connection.
    Expired,
    /// Bytes arrived while no response was owed (after a complete response, or while the
    /// connection was idle: a `408 Request Timeout` a server sends before closing an idle
    /// connection, or junk). rawpost never pipelines, so they answer no request of this
    /// connection; it is no longer used. Nothing was written: open a new connection.
    Unsolicited,
    /// The connection ended (closed or reset by the server or the network) after the request,
    /// or part of it, was written and before any byte of a response arrived. The server may
    /// have processed the request: resend it only if it is idempotent, or if the server
    /// deduplicates it.
    Dropped,
    /// The previous response's body was not read to its end, and the rest could not be
    /// skipped within the drain budget ([`DRAIN_BUDGET`](crate::DRAIN_BUDGET) bytes within the
    /// idle deadline), so the connection was closed. Nothing was written: read or
    /// [`discard`](crate::Response::discard) bodies before the next request, or open a new
    /// connection.
    BodyLeftUnread {
        /// The status of the response whose body was left.
        status: u16,
        /// Body bytes that were left, when the response declared its length.
        left: Option<u64>,
    },
    /// An earlier exchange on this connection failed, or was abandoned part-way; it says how.
    /// Nothing was written: open a new connection.
    Broken(Broken),
    /// The server answered with a final status before the body of an
    /// `Expect: 100-continue` request was sent, so the body is not wanted: call
    /// [`BodyWriter::finish`](crate::BodyWriter::finish) to read that response.
    AnsweredBeforeBody,
}

/// How an earlier exchange left its connection unusable (see [`ConnectionError::Broken`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
#[non_exhaustive]
pub enum Broken {
    /// The stream failed ([`Error::Io`]).
    Io,
    /// The connection ended before a response ([`ConnectionError::Dropped`]).
    Dropped,
    /// The response broke the protocol or ended early.
    Response(ResponseError),
    /// The caller's body did not match its declared length, or the response body did not fit
    /// the caller's slice.
    Request(RequestError),
    /// A deadline passed.
    Timeout(TimeoutPhase),
    /// An operation was abandoned part-way (its future was dropped), so the position in the
    /// byte stream is unknown.
    Abandoned,
    /// The server answered before the body of an `Expect: 100-continue` request was sent: the
    /// request on the wire is incomplete.
    BodyNotSent,
}

/// The wait that ran out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
#[non_exhaustive]
pub enum TimeoutPhase {
    /// Writing the request: the stream accepted nothing for the idle time.
    Send,
    /// Waiting for the first byte of the response.
    FirstByte,
    /// Waiting for more of the response after it had started.
    Idle,
    /// The response took longer than allowed ([`Timeouts::response_ms`](crate::Timeouts),
    /// from the end of the request to the end of the response).
    Response,
}

impl TimeoutPhase {
    /// The phase's name, e.g. `"FirstByte"`.
    pub const fn name(&self) -> &'static str {
        match self {
            Self::Send => "Send",
            Self::FirstByte => "FirstByte",
            Self::Idle => "Idle",
            Self::Response => "Response",
        }
    }
}

impl RequestError {
    /// The variant's name, e.g. `"InvalidHeaderValue"`.
    pub const fn name(&self) -> &'static str {
        match self {
            Self::InvalidPath => "InvalidPath",
            Self::InvalidHost => "InvalidHost",
            Self::InvalidHeaderName => "InvalidHeaderName",
            Self::InvalidHeaderValue => "InvalidHeaderValue",
            Self::ConflictingHost => "ConflictingHost",
            Self::ConflictingContentLength => "ConflictingContentLength",
            Self::TransferEncodingNotAllowed => "TransferEncodingNotAllowed",
            Self::BufferTooSmall { .. } => "BufferTooSmall",
            Self::BodyWriter => "BodyWriter",
            Self::BodyBufferTooSmall => "BodyBufferTooSmall",
            Self::BodyLengthMismatch => "BodyLengthMismatch",
        }
    }
}

impl ResponseError {
    /// The variant's name, e.g. `"TruncatedBody"`.
    pub const fn name(&self) -> &'static str {
        match self {
            Self::MalformedStatusLine => "MalformedStatusLine",
            Self::UnsupportedVersion => "UnsupportedVersion",
            Self::InvalidHeader => "InvalidHeader",
            Self::HeadTooLarge => "HeadTooLarge",
            Self::TooManyHeaders => "TooManyHeaders",
            Self::InvalidContentLength => "InvalidContentLength",
            Self::ConflictingFraming => "ConflictingFraming",
            Self::InvalidTransferEncoding => "InvalidTransferEncoding",
            Self::InvalidChunk => "InvalidChunk",
            Self::ChunkSizeOverflow => "ChunkSizeOverflow",
            Self::InvalidTrailers => "InvalidTrailers",
            Self::NoRoomForChunk => "NoRoomForChunk",
            Self::TooManyInterimResponses => "TooManyInterimResponses",
            Self::UnexpectedUpgrade => "UnexpectedUpgrade",
            Self::UnexpectedEof => "UnexpectedEof",
            Self::TruncatedBody => "TruncatedBody",
            Self::UncleanClose => "UncleanClose",
        }
    }

    /// Whether the response ended early (the connection closed or was reset), rather than
    /// breaking the protocol.
    pub const fn is_early_end(&self) -> bool {
        matches!(
            self,
            Self::UnexpectedEof | Self::TruncatedBody | Self::UncleanClose
        )
    }
}

impl ConnectionError {
    /// The variant's name, e.g. `"ClosedByServer"`.
    pub const fn name(&self) -> &'static str {
        match self {
            Self::Closed => "Closed",
            Self::ClosedByServer => "ClosedByServer",
            Self::Expired => "Expired",
            Self::Unsolicited => "Unsolicited",
            Self::Dropped => "Dropped",
            Self::BodyLeftUnread { .. } => "BodyLeftUnread",
            Self::Broken(_) => "Broken",
            Self::AnsweredBeforeBody => "AnsweredBeforeBody",
        }
    }
}

impl<E> Error<E> {
    /// The name of the innermost variant: `"Io"`, or e.g. `"InvalidHeaderValue"`,
    /// `"TruncatedBody"`, `"ClosedByServer"`, `"Timeout"`.
    pub const fn name(&self) -> &'static str {
        match self {
            Self::Io(_) => "Io",
            Self::Request(e) => e.name(),
            Self::Response(e) => e.name(),
            Self::Connection(e) => e.name(),
            Self::Timeout(_) => "Timeout",
        }
    }
}

impl<E> Error<E> {
    /// Whether the server may have received and processed the request: `false` means that no
    /// byte of it was written (a refused or invalid request, a connection found closed before
    /// writing), so it can be sent again safely whatever its method. `true` means it was
    /// written, in whole or in part, or a response to it began: resend it only if it is
    /// idempotent, or if the server recognizes a repeat (a sequence number, an
    /// `Idempotency-Key`).
    ///
    /// The answer comes from the error alone and errs on the side of "maybe": a stream error
    /// ([`Error::Io`]) or a timeout while the first bytes were being written says `true` even if
    /// the stream took none of them. [`Connection::may_resend`](crate::Connection::may_resend)
    /// knows exactly.
    pub const fn may_have_been_processed(&self) -> bool {
        match self {
            Self::Io(_) | Self::Response(_) | Self::Timeout(_) => true,
            Self::Request(e) => matches!(
                e,
                RequestError::BodyLengthMismatch | RequestError::BodyBufferTooSmall
            ),
            Self::Connection(e) => {
                matches!(
                    e,
                    ConnectionError::Dropped | ConnectionError::AnsweredBeforeBody
                )
            }
        }
    }
}

impl<E> From<RequestError> for Error<E> {
    fn from(e: RequestError) -> Self {
        Self::Request(e)
    }
}

impl<E> From<ResponseError> for Error<E> {
    fn from(e: ResponseError) -> Self {
        Self::Response(e)
    }
}

impl<E> From<ConnectionError> for Error<E> {
    fn from(e: ConnectionError) -> Self {
        Self::Connection(e)
    }
}

impl fmt::Display for RequestError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::InvalidPath => f.write_str(
                "invalid request path: it must start with '/' and contain no space, '#' or control character",
            ),
            Self::InvalidHost => f.write_str(
                "invalid host: it must be a non-empty name or address with no space, control character, '/' or '@'",
            ),
            Self::InvalidHeaderName => {
                f.write_str("invalid header name: it must be a non-empty RFC 9110 token")
            }
            Self::InvalidHeaderValue => {
                f.write_str("invalid header value: it contains CR, LF, NUL or another control character")
            }
            Self::ConflictingHost => {
                f.write_str("the Host header differs from the connection's host (the TLS server name)")
            }
            Self::ConflictingContentLength => {
                f.write_str("the Content-Length header differs from the body's length")
            }
            Self::TransferEncodingNotAllowed => {
                f.write_str("Transfer-Encoding is set by rawpost itself, not by the caller")
            }
            Self::BufferTooSmall { needed } => {
                write!(f, "the buffer is too small for the request head: {needed} bytes needed")
            }
            Self::BodyWriter => f.write_str("the body writer failed or reported more bytes than it was given"),
            Self::BodyBufferTooSmall => f.write_str("the response body does not fit the given slice"),
            Self::BodyLengthMismatch => {
                f.write_str("the streamed body's length differs from its declared Content-Length")
            }
        }
    }
}

impl fmt::Display for ResponseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::MalformedStatusLine => "malformed status line",
            Self::UnsupportedVersion => "unsupported HTTP version (only HTTP/1.x)",
            Self::InvalidHeader => "invalid header line in the response",
            Self::HeadTooLarge => "the response head does not fit the buffer",
            Self::TooManyHeaders => "the response has too many header fields",
            Self::InvalidContentLength => "invalid or conflicting Content-Length",
            Self::ConflictingFraming => {
                "the response has both Content-Length and Transfer-Encoding"
            }
            Self::InvalidTransferEncoding => "invalid Transfer-Encoding: chunked applied twice",
            Self::InvalidChunk => "invalid chunk framing in the response body",
            Self::ChunkSizeOverflow => "chunk size or chunk-size line too large",
            Self::InvalidTrailers => "invalid or oversized trailer section",
            Self::NoRoomForChunk => {
                "the response head fills the buffer and leaves no room for the chunked body's chunk-size line: use a larger buffer"
            }
            Self::TooManyInterimResponses => "too many interim (1xx) responses",
            Self::UnexpectedUpgrade => "the server switched protocols (101) without being asked",
            Self::UnexpectedEof => "the connection closed before the response head was complete",
            Self::TruncatedBody => "the connection closed before the response body was complete",
            Self::UncleanClose => {
                "the connection ended without a clean close (no TLS close_notify, or a reset) in a body delimited by the close: the body may be truncated"
            }
        })
    }
}

impl fmt::Display for ConnectionError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Closed => f.write_str(
                "the server ended the connection after its last response; the request was not sent: open a new connection",
            ),
            Self::ClosedByServer => f.write_str(
                "the server had closed this kept-alive connection before the request was written; nothing of it was processed: send it again on a new connection",
            ),
            Self::Expired => f.write_str(
                "the connection had been idle longer than the server keeps idle connections (Keep-Alive: timeout, or max_idle); the request was not sent: send it on a new connection",
            ),
            Self::Unsolicited => f.write_str(
                "bytes arrived while no response was owed, so they answer no request; the connection is no longer used and the request was not sent: open a new connection",
            ),
            Self::Dropped => f.write_str(
                "the connection ended after the request was written and before any byte of a response; the server may have processed it",
            ),
            Self::BodyLeftUnread { status, left } => {
                write!(f, "the body of the last response ({status}) was not read to its end")?;
                if let Some(left) = left {
                    write!(f, " ({left} bytes left)")?;
                }
                f.write_str(
                    " and could not be skipped within the drain budget, so the connection was closed; the request was not sent: read bodies to their end, or open a new connection",
                )
            }
            Self::Broken(why) => write!(
                f,
                "the connection is unusable: an earlier exchange {why}; the request was not sent: open a new connection"
            ),
            Self::AnsweredBeforeBody => f.write_str(
                "the server answered before the body was sent (Expect: 100-continue): finish() gives its response",
            ),
        }
    }
}

impl fmt::Display for Broken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Io => f.write_str("failed with an I/O error"),
            Self::Dropped => f.write_str("lost its connection before the response"),
            Self::Response(e) => write!(f, "failed: {e}"),
            Self::Request(e) => write!(f, "failed: {e}"),
            Self::Timeout(p) => write!(f, "failed: {p}"),
            Self::Abandoned => f.write_str("was abandoned part-way (its future was dropped)"),
            Self::BodyNotSent => {
                f.write_str("was answered before its body was sent (Expect: 100-continue)")
            }
        }
    }
}

impl fmt::Display for TimeoutPhase {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Send => "timed out writing the request",
            Self::FirstByte => "timed out waiting for the first byte of the response",
            Self::Idle => "timed out waiting for more of the response",
            Self::Response => "the response took longer than allowed",
        })
    }
}

impl<E: fmt::Debug> fmt::Display for Error<E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Io(e) => write!(f, "I/O error: {e:?}"),
            Self::Request(e) => e.fmt(f),
            Self::Response(e) => e.fmt(f),
            Self::Connection(e) => e.fmt(f),
            Self::Timeout(phase) => phase.fmt(f),
        }
    }
}

impl core::error::Error for RequestError {}
impl core::error::Error for ResponseError {}
impl core::error::Error for ConnectionError {}
impl core::error::Error for Broken {}
impl core::error::Error for TimeoutPhase {}

/// `source()` is the rawpost error inside ([`RequestError`], [`ResponseError`],
/// [`ConnectionError`], [`TimeoutPhase`]). The stream's own error is the payload of
/// [`Error::Io`]: returning it from `source()` would require a `'static` stream error type of
/// every caller generic over the stream, so it is not.
impl<E: fmt::Debug> core::error::Error for Error<E> {
    fn source(&self) -> Option<&(dyn core::error::Error + 'static)> {
        match self {
            Self::Io(_) => None,
            Self::Request(e) => Some(e),
            Self::Response(e) => Some(e),
            Self::Connection(e) => Some(e),
            Self::Timeout(e) => Some(e),
        }
    }
}

impl<E: embedded_io::Error> embedded_io::Error for Error<E> {
    fn kind(&self) -> embedded_io::ErrorKind {
        use embedded_io::ErrorKind;
        match self {
            Self::Io(e) => e.kind(),
            Self::Request(_) => ErrorKind::InvalidInput,
            Self::Response(e) if e.is_early_end() => ErrorKind::ConnectionAborted,
            Self::Response(_) => ErrorKind::InvalidData,
            Self::Connection(ConnectionError::ClosedByServer | ConnectionError::Dropped) => {
                ErrorKind::ConnectionReset
            }
            Self::Connection(_) => ErrorKind::NotConnected,
            Self::Timeout(_) => ErrorKind::TimedOut,
        }
    }
}
