//! Why an open TLS session stopped working, in words.

use core::fmt;

use embedded_io::ErrorKind;
use embedded_tls::alert::AlertDescription;
use embedded_tls::TlsError;

use super::wire::{Seen, FULL_RECORD};

/// The error of a [`TlsStream`](super::TlsStream): a failure of the transport, an end of the
/// transport without close_notify, or a failure of the TLS stack after the handshake — with
/// what was on the wire, so that its `Display` says what the server did, what embedded-tls
/// lacks, and that the session is over.
///
/// After any error the session is unusable: every later `read`, `write` and `flush` returns the
/// same error (a clean close_notify is not an error: `read` returns `Ok(0)`, then and every time
/// after). Its [`kind`](embedded_io::Error::kind) is what rawpost's
/// [`Connection`](crate::Connection) judges:
///
/// | [`SessionError::end`] | `kind()` |
/// |---|---|
/// | [`SessionEnd::Transport`] | the transport's own kind |
/// | [`SessionEnd::Aborted`] (TCP closed without close_notify) | `ConnectionAborted` |
/// | every failure of the TLS stack | `Other` |
#[derive(Clone, Copy, Debug)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct SessionError {
    error: TlsError,
    /// The last record header read: content type, length, and whether its body was read whole.
    record: Option<(u8, u16, bool)>,
}

/// What ended a TLS session ([`SessionError::end`]).
#[derive(Clone, Copy, Debug)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
#[non_exhaustive]
pub enum SessionEnd {
    /// The transport (the TCP socket...) failed with this kind.
    Transport(ErrorKind),
    /// The transport ended (the server closed TCP) without close_notify: data may be
    /// truncated.
    Aborted,
    /// The server sent a post-handshake message embedded-tls does not implement
    /// (`TlsError::Unimplemented`): with embedded-tls 0.19, a KeyUpdate (RFC 8446 §4.6.3), which
    /// servers send to refresh their keys.
    Unimplemented,
    /// embedded-tls could not decode a post-handshake message: with embedded-tls 0.19, a
    /// NewSessionTicket that spans records (RFC 8446 §5.1 allows it; 0.19 cannot reassemble a
    /// handshake message across records).
    Undecodable,
    /// The server sent an alert other than close_notify; embedded-tls 0.19 does not say which
    /// (it reports `InternalError`), but the record was the size of an encrypted alert.
    Alert,
    /// The server sent this alert (an embedded-tls that reports alerts by name).
    ServerAlert(AlertDescription),
    /// The server sent a message not allowed after the handshake, and the client ended the
    /// session with this alert (a patched embedded-tls: `unexpected_message` for a
    /// CertificateRequest, RFC 8446 §4.6.2).
    Refused(AlertDescription),
    /// Another failure of the TLS stack (a record that does not decrypt, ...).
    Other,
}

/// An encrypted record holding a 2-byte alert: the alert, its content type and the 16-byte tag.
const ALERT_RECORD: u16 = 2 + 1 + 16;

impl SessionError {
    pub(crate) fn new(error: TlsError, seen: Seen) -> Self {
        Self {
            error,
            record: seen.last_record(),
        }
    }

    /// The error embedded-tls returned.
    pub fn tls_error(&self) -> TlsError {
        self.error
    }

    /// The last record the transport read before the failure: its content type (23 for every
    /// encrypted record), its length, and whether its body was read whole.
    pub fn last_record(&self) -> Option<(u8, u16, bool)> {
        self.record
    }

    /// What ended the session.
    pub fn end(&self) -> SessionEnd {
        match self.error {
            TlsError::Io(kind) => SessionEnd::Transport(kind),
            TlsError::IoError => SessionEnd::Aborted,
            TlsError::Unimplemented => SessionEnd::Unimplemented,
            TlsError::InvalidTicketLength
            | TlsError::InvalidNonceLength
            | TlsError::ParseError(_)
            | TlsError::InvalidHandshake
            | TlsError::DecodeError
            | TlsError::InvalidCertificateRequest
            | TlsError::UnknownExtensionType
            | TlsError::InvalidExtensionsLength => SessionEnd::Undecodable,
            TlsError::InternalError if matches!(self.record, Some((23, ALERT_RECORD, true))) => {
                SessionEnd::Alert
            }
            TlsError::HandshakeAborted(_, alert) => SessionEnd::ServerAlert(alert),
            TlsError::AbortHandshake(_, alert) => SessionEnd::Refused(alert),
            _ => SessionEnd::Other,
        }
    }

    /// Whether the session ended because the TLS stack could not go on (not the transport).
    pub fn is_tls_failure(&self) -> bool {
        !matches!(self.end(), SessionEnd::Transport(_) | SessionEnd::Aborted)
    }
}

impl embedded_io::Error for SessionError {
    fn kind(&self) -> ErrorKind {
        match self.end() {
            SessionEnd::Transport(kind) => kind,
            SessionEnd::Aborted => ErrorKind::ConnectionAborted,
            _ => ErrorKind::Other,
        }
    }
}

impl fmt::Display for SessionError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("TLS session ended: ")?;
        let record = self.record;
        match self.end() {
            SessionEnd::Transport(kind) => write!(f, "the transport failed ({kind:?})")?,
            SessionEnd::Aborted => f.write_str(
                "the server closed the connection without close_notify (what was read last may be cut short)",
            )?,
            SessionEnd::Unimplemented => f.write_str(
                "the server sent a post-handshake message embedded-tls 0.19 does not implement (a KeyUpdate is the usual one: servers send it to refresh their keys, and RFC 8446 §4.6.3 requires clients to accept it)",
            )?,
            SessionEnd::Undecodable => {
                let what = match self.error {
                    TlsError::InvalidTicketLength | TlsError::InvalidNonceLength => {
                        "a NewSessionTicket"
                    }
                    _ => "a post-handshake message",
                };
                match record {
                    Some((23, len, _)) if len >= FULL_RECORD => write!(
                        f,
                        "embedded-tls 0.19 could not decode {what} that does not end in the {len}-byte record it began in (a full record): the message continues in the next record, which RFC 8446 §5.1 allows, and embedded-tls 0.19 cannot reassemble a handshake message across records"
                    )?,
                    Some((23, len, _)) => write!(
                        f,
                        "embedded-tls could not decode {what} the server sent (in a record of {len} bytes)"
                    )?,
                    _ => write!(f, "embedded-tls could not decode {what} the server sent")?,
                }
            }
            SessionEnd::Alert => f.write_str(
                "the server ended the session with an alert other than close_notify (embedded-tls 0.19 does not say which)",
            )?,
            SessionEnd::ServerAlert(alert) => {
                write!(f, "the server ended the session with the alert {alert:?}")?
            }
            SessionEnd::Refused(alert) => write!(
                f,
                "the server sent something the client must refuse after the handshake (a CertificateRequest, when the client offered no post-handshake authentication, is refused with unexpected_message: RFC 8446 §4.6.2); the client ended the session with the alert {alert:?}"
            )?,
            SessionEnd::Other => write!(f, "the TLS stack failed")?,
        }
        write!(
            f,
            "; the session is over: every later read and write fails, open a new one [{:?}]",
            self.error
        )
    }
}

impl core::error::Error for SessionError {}
