//! The TLS session as a byte stream: a clean end of stream, and the transport under it.

use embedded_io::ErrorKind;
use embedded_io_async::{ErrorType, Read, Write};
use embedded_tls::{TlsCipherSuite, TlsConnection, TlsError};

/// An open TLS session as an `embedded_io_async` stream, with an end of stream that a reader
/// can see.
///
/// [`connect`](super::connect) and [`open`](super::open) return it. embedded-tls 0.19 never
/// reports the end of a session as `Ok(0)`, so over a bare `TlsConnection` a body delimited by
/// the server closing the connection cannot be read to its end. `read` maps its results:
///
/// | `TlsConnection::read` | `TlsStream::read` | meaning |
/// |---|---|---|
/// | `Err(TlsError::ConnectionClosed)` | `Ok(0)`, and `Ok(0)` on every later read | the server sent close_notify: a clean end of stream |
/// | `Err(TlsError::IoError)` | `Err(TlsError::Io(ErrorKind::ConnectionAborted))` | the transport read returned 0 (TCP closed) without close_notify: an unclean end, the data may be truncated |
/// | anything else | unchanged | |
///
/// rawpost's [`Connection`](crate::Connection) treats `Ok(0)` as the end of the stream and the
/// `ConnectionAborted`, `ConnectionReset`, `BrokenPipe` and `NotConnected` kinds as "the
/// connection ended". Writes and `flush` pass through unchanged (`write` only buffers a record;
/// `flush` sends it).
///
/// `read_ready` (`ReadReady`) tells, without waiting, whether a read would return at once —
/// which is how [`Client`](crate::Client) finds an idle session the server has closed before it
/// writes a request into it.
pub struct TlsStream<'b, S, CS>
where
    S: Read + Write + 'b,
    CS: TlsCipherSuite + 'static,
{
    inner: TlsConnection<'b, Transport<S>, CS>,
    /// The server sent close_notify.
    ended: bool,
    /// A read found the session failed while checking readiness; the next read returns it.
    failed: Option<TlsError>,
}

impl<'b, S, CS> TlsStream<'b, S, CS>
where
    S: Read + Write + 'b,
    CS: TlsCipherSuite + 'static,
{
    /// Wraps a session. [`open`](super::open) and [`connect`](super::connect) build it after a
    /// verified handshake; wrapping a session opened some other way gives the same stream
    /// behaviour, and none of rawpost's certificate checks.
    pub fn new(inner: TlsConnection<'b, Transport<S>, CS>) -> Self {
        Self {
            inner,
            ended: false,
            failed: None,
        }
    }

    /// The embedded-tls session.
    pub fn get_mut(&mut self) -> &mut TlsConnection<'b, Transport<S>, CS> {
        &mut self.inner
    }

    /// The embedded-tls session, unwrapped.
    pub fn into_inner(self) -> TlsConnection<'b, Transport<S>, CS> {
        self.inner
    }

    /// Whether the server has ended the session with close_notify (`read` returns `Ok(0)`).
    pub fn peer_closed(&self) -> bool {
        self.ended
    }

    /// Ends the session: sends close_notify and returns the transport (e.g. to close the TCP
    /// socket). On an error the transport comes back with it.
    pub async fn close(self) -> Result<S, (S, TlsError)> {
        match self.inner.close().await {
            Ok(transport) => Ok(transport.into_inner()),
            Err((transport, e)) => Err((transport.into_inner(), e)),
        }
    }
}

impl<'b, S, CS> ErrorType for TlsStream<'b, S, CS>
where
    S: Read + Write + 'b,
    CS: TlsCipherSuite + 'static,
{
    type Error = TlsError;
}

/// The end of the transport without close_notify is an unclean end.
fn map_read_error(e: TlsError) -> TlsError {
    match e {
        TlsError::IoError => TlsError::Io(ErrorKind::ConnectionAborted),
        e => e,
    }
}

impl<'b, S, CS> Read for TlsStream<'b, S, CS>
where
    S: Read + Write + 'b,
    CS: TlsCipherSuite + 'static,
{
    async fn read(&mut self, buf: &mut [u8]) -> Result<usize, TlsError> {
        if self.ended {
            return Ok(0);
        }
        if let Some(e) = self.failed.take() {
            return Err(map_read_error(e));
        }
        match self.inner.read(buf).await {
            Err(TlsError::ConnectionClosed) => {
                self.ended = true;
                Ok(0)
            }
            Err(e) => Err(map_read_error(e)),
            other => other,
        }
    }
}

/// Whether a read would return at once: decrypted bytes are waiting, the session has ended
/// (`close_notify`, or the transport's end), or it failed. Looks by polling one read once,
/// without waiting: records that carry no data (a NewSessionTicket) are consumed on the way and
/// are not a closure; decrypted data is kept for the next read. (A record only partly arrived
/// is not yet handled safely here: see the `tls-fix` work.)
impl<'b, S, CS> embedded_io_async::ReadReady for TlsStream<'b, S, CS>
where
    S: Read + Write + 'b,
    CS: TlsCipherSuite + 'static,
{
    fn read_ready(&mut self) -> Result<bool, TlsError> {
        if self.ended || self.failed.is_some() {
            return Ok(true);
        }
        let outcome = {
            let mut read = core::pin::pin!(self.inner.read_buffered());
            let mut cx = core::task::Context::from_waker(core::task::Waker::noop());
            match core::future::Future::poll(read.as_mut(), &mut cx) {
                core::task::Poll::Ready(Ok(buffer)) => {
                    // Keep the data for the next read.
                    buffer.revert();
                    Some(Ok(()))
                }
                core::task::Poll::Ready(Err(e)) => Some(Err(e)),
                core::task::Poll::Pending => None,
            }
        };
        match outcome {
            None => Ok(false),
            Some(Ok(())) => Ok(true),
            Some(Err(TlsError::ConnectionClosed)) => {
                self.ended = true;
                Ok(true)
            }
            Some(Err(e)) => {
                self.failed = Some(e);
                Ok(true)
            }
        }
    }
}

impl<'b, S, CS> Write for TlsStream<'b, S, CS>
where
    S: Read + Write + 'b,
    CS: TlsCipherSuite + 'static,
{
    async fn write(&mut self, buf: &[u8]) -> Result<usize, TlsError> {
        self.inner.write(buf).await
    }

    async fn flush(&mut self) -> Result<(), TlsError> {
        self.inner.flush().await
    }
}

/// The transport under a [`TlsStream`] (a TCP socket, ...): bytes pass through unchanged,
/// except one record that embedded-tls 0.19 gets wrong.
///
/// When a handshake is aborted (rawpost's verifier refusing the server's certificate, for
/// example), embedded-tls 0.19 writes its alert as a 7-byte record whose header says
/// `change_cipher_spec` (type 20, version 0x0301) around the 2-byte alert. Servers reject that
/// as a malformed ChangeCipherSpec (rustls: "illegal middlebox change cipher spec") and never
/// see the alert. `Transport` rewrites exactly that record into an `alert` record (type 21,
/// version 0x0303) with the same level and description, so the server logs why it was refused
/// (bad_certificate, unknown_ca, certificate_expired...). The alert is sent unencrypted, before
/// the client's first encrypted record, which TLS 1.3 servers (rustls, OpenSSL) accept.
/// embedded-tls never sends a real ChangeCipherSpec, so nothing else can match.
pub struct Transport<S> {
    inner: S,
}

/// What embedded-tls 0.19 writes for an unencrypted alert: content type 20
/// (change_cipher_spec), version 0x0301, length 2, then level and description.
const BROKEN_ALERT_HEADER: [u8; 5] = [20, 0x03, 0x01, 0x00, 0x02];
/// A TLS 1.3 plaintext alert record header: content type 21 (alert), version 0x0303, length 2.
const ALERT_HEADER: [u8; 5] = [21, 0x03, 0x03, 0x00, 0x02];

impl<S> Transport<S> {
    /// Wraps the transport (a connected TCP socket, ...).
    pub fn new(inner: S) -> Self {
        Self { inner }
    }

    /// The transport.
    pub fn get_mut(&mut self) -> &mut S {
        &mut self.inner
    }

    /// The transport, unwrapped.
    pub fn into_inner(self) -> S {
        self.inner
    }
}

impl<S: ErrorType> ErrorType for Transport<S> {
    type Error = S::Error;
}

impl<S: Read> Read for Transport<S> {
    async fn read(&mut self, buf: &mut [u8]) -> Result<usize, S::Error> {
        self.inner.read(buf).await
    }
}

impl<S: Write> Write for Transport<S> {
    async fn write(&mut self, buf: &[u8]) -> Result<usize, S::Error> {
        if let [header @ .., level @ (1 | 2), description] = buf {
            if *header == BROKEN_ALERT_HEADER {
                let mut record = [0u8; 7];
                record[..5].copy_from_slice(&ALERT_HEADER);
                record[5] = *level;
                record[6] = *description;
                self.inner.write_all(&record).await?;
                return Ok(buf.len());
            }
        }
        self.inner.write(buf).await
    }

    async fn flush(&mut self) -> Result<(), S::Error> {
        self.inner.flush().await
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
        let mut t = Transport::new(Sink(std::vec::Vec::new()));
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
