//! The TLS session as a byte stream: a clean end of stream, a typed end of the session, and a
//! way to see without waiting whether the server has closed it.

use core::future::Future;
use core::pin::pin;
use core::task::{Context, Poll, Waker};

use embedded_io::ErrorKind;
use embedded_io_async::{ErrorType, Read, ReadReady, Write};
use embedded_tls::{TlsCipherSuite, TlsConnection, TlsError};

use super::session::SessionError;
use super::wire::{Link, Seen, Transport};

/// An open TLS session as an `embedded_io_async` stream, with an end of stream that a reader
/// can see, and errors that say why the session ended.
///
/// [`connect`](super::connect) and [`TlsStream::open`](super::TlsStream::open) return it. embedded-tls 0.19 never
/// reports the end of a session as `Ok(0)`, so over a bare `TlsConnection` a body delimited by
/// the server closing the connection cannot be read to its end. `read` maps its results:
///
/// | `TlsConnection::read` | `TlsStream::read` | meaning |
/// |---|---|---|
/// | `Err(TlsError::ConnectionClosed)` | `Ok(0)`, and `Ok(0)` on every later read | the server sent close_notify: a clean end of stream |
/// | `Err(TlsError::IoError)` | a [`SessionError`] of kind `ConnectionAborted` | the transport read returned 0 (TCP closed) without close_notify: an unclean end, the data may be truncated |
/// | `Err(TlsError::Io(kind))` | a [`SessionError`] of that kind | the transport failed |
/// | any other error | a [`SessionError`] of kind `Other` | the TLS stack failed (a KeyUpdate or a NewSessionTicket embedded-tls 0.19 cannot handle, an alert from the server...): its `Display` says what the server did and what embedded-tls lacks |
///
/// After an error the session is over: every later `read`, `write` and `flush` returns the same
/// error. rawpost's [`Connection`](crate::Connection) treats `Ok(0)` as the end of the stream
/// and the `ConnectionAborted`, `ConnectionReset`, `BrokenPipe` and `NotConnected` kinds as
/// "the connection ended". Writes only buffer a record; `flush` sends it.
///
/// **Readiness.** With a transport that implements `ReadReady`, so does the stream, so that
/// [`Connection::check_closed`](crate::Connection::check_closed) can tell, before a request is
/// written into an idle session, whether the server has ended it: `read_ready()` is `true` when
/// decrypted data is waiting, when close_notify or the end of the transport (or a failure) is
/// there to be read, and `false` when nothing complete has arrived. Records that are not data (a
/// NewSessionTicket; a KeyUpdate with a patched embedded-tls) are processed on the way and leave
/// the session usable; decrypted data stays for the next `read`; a record that has only partly
/// arrived stays where it is.
///
/// The contract is `ReadReady`'s: when `read_ready()` returns `true`, the next `read` returns
/// without waiting; `read_ready()` itself never waits. What it asks of the transport `S`: its
/// `read` must be cancel-safe (a read dropped before it completes loses no byte, as
/// embedded-io-async asks of implementations; embassy-net's TCP socket and tokio's streams
/// are). The probe polls embedded-tls's read once; [`Transport`] answers each read of its inner
/// stream that would wait with [`TransportError::NotReady`](super::TransportError::NotReady)
/// instead of waiting, hands embedded-tls a record header only once all 5 bytes are in, and
/// hands it out again when embedded-tls starts the interrupted record over — so nothing is lost
/// between probes. `S::read_ready` itself is not consulted: embedded-tls owns the transport and
/// offers no way to reach it from the session; the bound marks the transports meant to be
/// used without waiting.
///
/// Only a session made by [`TlsStream::open`](super::TlsStream::open) (or [`connect`](super::connect), or
/// [`TlsConnector`](super::TlsConnector)) can be probed: the transport and the session share
/// 12 bytes taken from the end of the write buffer. One wrapped with [`TlsStream::new`] always
/// answers `false` until it has ended.
pub struct TlsStream<'b, S, CS>
where
    S: Read + Write + 'b,
    CS: TlsCipherSuite + 'static,
{
    inner: TlsConnection<'b, Transport<'b, S>, CS>,
    link: Link<'b>,
    /// The server sent close_notify.
    ended: bool,
    /// The session failed: every later call returns this.
    failed: Option<SessionError>,
}

impl<'b, S, CS> TlsStream<'b, S, CS>
where
    S: Read + Write + 'b,
    CS: TlsCipherSuite + 'static,
{
    /// Wraps a session. [`TlsStream::open`](super::TlsStream::open) and [`connect`](super::connect) build it after a
    /// verified handshake; wrapping a session opened some other way gives the same stream
    /// behaviour (without the record observations of [`Transport`] and the readiness probe),
    /// and none of rawpost's certificate checks.
    pub fn new(inner: TlsConnection<'b, Transport<'b, S>, CS>) -> Self {
        Self::linked(inner, Link::none())
    }

    pub(crate) fn linked(inner: TlsConnection<'b, Transport<'b, S>, CS>, link: Link<'b>) -> Self {
        Self {
            inner,
            link,
            ended: false,
            failed: None,
        }
    }

    /// The embedded-tls session.
    pub fn get_mut(&mut self) -> &mut TlsConnection<'b, Transport<'b, S>, CS> {
        &mut self.inner
    }

    /// The embedded-tls session, unwrapped.
    pub fn into_inner(self) -> TlsConnection<'b, Transport<'b, S>, CS> {
        self.inner
    }

    /// Whether the server has ended the session with close_notify (`read` returns `Ok(0)`).
    pub fn peer_closed(&self) -> bool {
        self.ended
    }

    /// The error that ended the session, if one did.
    pub fn failure(&self) -> Option<SessionError> {
        self.failed
    }

    /// What the transport has seen of the server's records so far (the last record's type
    /// and length, and whether it was read whole), for diagnostics; nothing for a stream made
    /// with [`TlsStream::new`].
    pub fn seen(&self) -> Seen {
        self.link.seen()
    }

    /// Ends the session: sends close_notify and returns the transport (e.g. to close the TCP
    /// socket). On an error the transport comes back with it.
    pub async fn close(self) -> Result<S, (S, SessionError)> {
        let link = self.link;
        match self.inner.close().await {
            Ok(transport) => Ok(transport.into_inner()),
            Err((transport, e)) => Err((transport.into_inner(), SessionError::new(e, link.seen()))),
        }
    }

    /// Records a failure: the session is over.
    #[cold]
    #[inline(never)]
    fn fail(&mut self, e: TlsError) -> SessionError {
        let error = SessionError::new(e, self.link.seen());
        self.failed = Some(error);
        error
    }
}

impl<'b, S, CS> ErrorType for TlsStream<'b, S, CS>
where
    S: Read + Write + 'b,
    CS: TlsCipherSuite + 'static,
{
    type Error = SessionError;
}

impl<'b, S, CS> Read for TlsStream<'b, S, CS>
where
    S: Read + Write + 'b,
    CS: TlsCipherSuite + 'static,
{
    async fn read(&mut self, buf: &mut [u8]) -> Result<usize, SessionError> {
        if self.ended {
            return Ok(0);
        }
        if let Some(e) = self.failed {
            return Err(e);
        }
        match self.inner.read(buf).await {
            Ok(n) => Ok(n),
            Err(TlsError::ConnectionClosed) => {
                self.ended = true;
                Ok(0)
            }
            Err(e) => Err(self.fail(e)),
        }
    }
}

impl<'b, S, CS> Write for TlsStream<'b, S, CS>
where
    S: Read + Write + 'b,
    CS: TlsCipherSuite + 'static,
{
    async fn write(&mut self, buf: &[u8]) -> Result<usize, SessionError> {
        if let Some(e) = self.failed {
            return Err(e);
        }
        match self.inner.write(buf).await {
            Ok(n) => Ok(n),
            Err(e) => Err(self.fail(e)),
        }
    }

    async fn flush(&mut self) -> Result<(), SessionError> {
        if let Some(e) = self.failed {
            return Err(e);
        }
        match self.inner.flush().await {
            Ok(()) => Ok(()),
            Err(e) => Err(self.fail(e)),
        }
    }
}

impl<'b, S, CS> ReadReady for TlsStream<'b, S, CS>
where
    S: Read + Write + ReadReady + 'b,
    CS: TlsCipherSuite + 'static,
{
    /// Whether a `read` would return at once: decrypted data, close_notify, the end of the
    /// transport or a failure are there. Never waits (see the type's documentation).
    fn read_ready(&mut self) -> Result<bool, SessionError> {
        if self.ended || self.failed.is_some() {
            return Ok(true);
        }
        if !self.link.seen().is_recorded() {
            // Without the link the transport cannot be asked not to wait.
            return Ok(false);
        }
        self.link.probe(true);
        let polled = {
            let mut read = pin!(self.inner.read_buffered());
            let mut cx = Context::from_waker(Waker::noop());
            match read.as_mut().poll(&mut cx) {
                Poll::Ready(Ok(data)) => {
                    // Keep the data for the next read.
                    data.revert();
                    Ok(true)
                }
                Poll::Ready(Err(e)) => Err(e),
                Poll::Pending => Ok(false),
            }
        };
        self.link.probe(false);
        match polled {
            Ok(ready) => Ok(ready),
            Err(TlsError::Io(ErrorKind::Interrupted)) => Ok(false),
            Err(TlsError::ConnectionClosed) => {
                self.ended = true;
                Ok(true)
            }
            Err(e) => {
                self.fail(e);
                Ok(true)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Records what is written.
    struct Sink(std::vec::Vec<u8>);

    impl ErrorType for Sink {
        type Error = core::convert::Infallible;
    }

    impl Write for Sink {
        async fn write(&mut self, buf: &[u8]) -> Result<usize, Self::Error> {
            self.0.extend_from_slice(buf);
            Ok(buf.len())
        }

        async fn flush(&mut self) -> Result<(), Self::Error> {
            Ok(())
        }
    }

    fn write(bytes: &[u8]) -> std::vec::Vec<u8> {
        let mut t: Transport<'_, Sink> = Transport::new(Sink(std::vec::Vec::new()));
        let n = futures_lite(t.write(bytes)).unwrap();
        assert_eq!(n, bytes.len());
        t.into_inner().0
    }

    /// Polls a future that never waits.
    fn futures_lite<F: core::future::Future>(f: F) -> F::Output {
        let mut f = core::pin::pin!(f);
        let mut cx = core::task::Context::from_waker(core::task::Waker::noop());
        match f.as_mut().poll(&mut cx) {
            core::task::Poll::Ready(v) => v,
            core::task::Poll::Pending => panic!("the sink never waits"),
        }
    }

    #[test]
    fn the_broken_alert_record_becomes_an_alert_record() {
        // bad_certificate (42), fatal (2).
        assert_eq!(write(&[20, 3, 1, 0, 2, 2, 42]), [21, 3, 3, 0, 2, 2, 42]);
        // close_notify (0), warning (1), as embedded-tls's close() before a handshake writes it.
        assert_eq!(write(&[20, 3, 1, 0, 2, 1, 0]), [21, 3, 3, 0, 2, 1, 0]);
    }

    #[test]
    fn everything_else_passes_through() {
        for bytes in [
            &[22, 3, 1, 0, 2, 2, 42][..],    // a handshake record
            &[20, 3, 1, 0, 2, 3, 42][..],    // not an alert level
            &[20, 3, 1, 0, 2, 2][..],        // too short
            &[20, 3, 1, 0, 2, 2, 42, 0][..], // too long
            &[23, 3, 3, 0, 2, 2, 42][..],    // application data
            &[][..],
        ] {
            assert_eq!(write(bytes), bytes);
        }
    }
}
