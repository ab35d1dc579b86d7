//! An mbedtls-rs session as the stream rawpost's `Client` keeps: `Read` and `Write` pass
//! through, and `ReadReady` says, without waiting, whether a read would return at once, so that
//! a kept session the server has closed is found before a request is written into it. Shared
//! with the QEMU guest (`examples/qemu-riscv32-mbedtls`), whose `mbedtls-readiness` case
//! (`.ci/qemu`) checks it: not ready on an idle session (nor when only session tickets
//! arrived), ready once the server sent close_notify.
//!
//! mbedtls-rs 0.3's `Session` implements `Read` and `Write` but not `ReadReady`, and keeps its
//! Mbed TLS context private, so readiness is found the way rawpost's own `TlsStream` finds it
//! for embedded-tls: by polling one read of one byte once, without waiting. A record that
//! carries no data (a TLS 1.3 NewSessionTicket) is consumed on the way and is not ready; a byte
//! of data is kept for the next read; the end (close_notify, `Ok(0)`) or an error (a TCP close
//! without close_notify is `SessionError::Io(ConnectionReset)`) is kept and returned by the
//! next read. Dropping the polled read when it is not ready leaves Mbed TLS's record state in
//! its context and any transport byte in the session (mbedtls-rs's documented behaviour of a
//! dropped read: no data is lost).

use core::future::Future;
use core::pin::pin;
use core::task::{Context, Poll, Waker};

// embedded-io-async, as mbedtls-rs re-exports it (the version its `Session` implements).
use mbedtls_rs::io::{ErrorType, Read, ReadReady, Write};
use mbedtls_rs::{Session, SessionError};

pub struct MbedtlsStream<'a, T: Read + Write> {
    session: Session<'a, T>,
    /// A byte of data read while checking readiness.
    peeked: Option<u8>,
    /// The session ended (`Ok(0)`) while checking readiness.
    ended: bool,
    /// A read failed while checking readiness; the next read returns it.
    failed: Option<SessionError>,
}

impl<'a, T: Read + Write> MbedtlsStream<'a, T> {
    pub fn new(session: Session<'a, T>) -> Self {
        Self {
            session,
            peeked: None,
            ended: false,
            failed: None,
        }
    }

    /// The session (its negotiated version…). Used by the QEMU guest
    /// (`examples/qemu-riscv32-mbedtls`), which shares this file.
    #[allow(dead_code)]
    pub fn session(&self) -> &Session<'a, T> {
        &self.session
    }

    /// The session back, to close it (close_notify). Used by the QEMU guest.
    #[allow(dead_code)]
    pub fn into_session(self) -> Session<'a, T> {
        self.session
    }
}

impl<T: Read + Write> ErrorType for MbedtlsStream<'_, T> {
    type Error = SessionError;
}

impl<T: Read + Write> Read for MbedtlsStream<'_, T> {
    async fn read(&mut self, buf: &mut [u8]) -> Result<usize, SessionError> {
        if buf.is_empty() {
            return Ok(0);
        }
        if let Some(byte) = self.peeked.take() {
            buf[0] = byte;
            return Ok(1);
        }
        if let Some(e) = self.failed.take() {
            return Err(e);
        }
        if self.ended {
            return Ok(0);
        }
        self.session.read(buf).await
    }
}

impl<T: Read + Write> Write for MbedtlsStream<'_, T> {
    async fn write(&mut self, buf: &[u8]) -> Result<usize, SessionError> {
        self.session.write(buf).await
    }

    async fn flush(&mut self) -> Result<(), SessionError> {
        self.session.flush().await
    }
}

impl<T: Read + Write> ReadReady for MbedtlsStream<'_, T> {
    fn read_ready(&mut self) -> Result<bool, SessionError> {
        if self.peeked.is_some() || self.ended || self.failed.is_some() {
            return Ok(true);
        }
        let mut byte = [0u8; 1];
        let polled = {
            let mut read = pin!(self.session.read(&mut byte));
            read.as_mut().poll(&mut Context::from_waker(Waker::noop()))
        };
        match polled {
            Poll::Pending => Ok(false),
            Poll::Ready(Ok(0)) => {
                self.ended = true;
                Ok(true)
            }
            Poll::Ready(Ok(_)) => {
                self.peeked = Some(byte[0]);
                Ok(true)
            }
            Poll::Ready(Err(e)) => {
                self.failed = Some(e);
                Ok(true)
            }
        }
    }
}
