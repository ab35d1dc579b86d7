//! Opening a TLS session whose server name and `Host` header are one value.

use core::fmt;
use core::marker::PhantomData;

use embedded_io_async::{Read, Write};
use embedded_tls::alert::{AlertDescription, AlertLevel};
use embedded_tls::{
    CertificateRef, CertificateVerifyRef, CryptoProvider, CryptoRngCore, TlsCipherSuite, TlsConfig,
    TlsConnection, TlsContext, TlsError, TlsVerifier,
};
use sha2::Digest;

use super::error::explain;
use super::provider::Clock;
use super::verifier::Expected;
use super::wire::{Link, Seen};
use super::{CertError, Detail, PinnedProvider, TlsStream, Transport};
use crate::{Connection, Host};

/// Why [`connect`] or [`TlsStream::open`] failed, with everything needed to explain it: its `Display`
/// says what went wrong, names the certificates involved, and says what to do.
///
/// No allocation: the names are in a fixed [`Detail`] buffer (about 170 bytes in all).
#[derive(Clone, Debug)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum OpenError {
    /// The server's certificate was refused (the server was sent the fatal alert
    /// [`CertError::alert`]), or the host is not a valid name
    /// ([`CertError::InvalidServerName`], before anything was sent).
    Certificate {
        /// Why.
        error: CertError,
        /// The certificates or names involved (see each [`CertError`] variant).
        detail: Detail,
    },
    /// The handshake failed before or around the certificate check: the server does not speak
    /// TLS 1.3, offers nothing in common with embedded-tls, sent an alert, closed the
    /// connection, sent a handshake message across records (which embedded-tls 0.19 cannot
    /// reassemble), or the transport failed. `Display` explains each case from the error and
    /// what was on the wire.
    Handshake {
        /// The error embedded-tls returned.
        error: TlsError,
        /// The cipher suite offered (its TLS code point, e.g. 0x1301 for
        /// `TLS_AES_128_GCM_SHA256`), to name it in the explanation.
        cipher_suite: u16,
        /// What the transport saw of the server's records.
        seen: Seen,
    },
}

impl OpenError {
    /// The certificate refusal, if it is one.
    pub fn cert_error(&self) -> Option<CertError> {
        match self {
            Self::Certificate { error, .. } => Some(*error),
            Self::Handshake { .. } => None,
        }
    }

    /// The embedded-tls error, if the handshake failed for another reason than the
    /// certificate.
    pub fn tls_error(&self) -> Option<TlsError> {
        match self {
            Self::Handshake { error, .. } => Some(*error),
            Self::Certificate { .. } => None,
        }
    }

    /// What the transport saw of the server's records, if the handshake failed for another
    /// reason than the certificate.
    pub fn seen(&self) -> Option<Seen> {
        match self {
            Self::Handshake { seen, .. } => Some(*seen),
            Self::Certificate { .. } => None,
        }
    }

    pub(super) fn certificate(error: CertError, detail: Detail) -> Self {
        Self::Certificate { error, detail }
    }
}

impl fmt::Display for OpenError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Certificate { error, detail } => {
                f.write_str("TLS certificate refused: ")?;
                explain(f, *error, detail)
            }
            Self::Handshake {
                error,
                cipher_suite,
                seen,
            } => {
                f.write_str("TLS handshake failed: ")?;
                explain_handshake(f, error, *cipher_suite, seen)?;
                write!(f, " [{error:?}]")
            }
        }
    }
}

impl core::error::Error for OpenError {}

/// The name of a TLS 1.3 cipher suite.
fn suite_name(code: u16) -> &'static str {
    match code {
        0x1301 => "TLS_AES_128_GCM_SHA256",
        0x1302 => "TLS_AES_256_GCM_SHA384",
        0x1303 => "TLS_CHACHA20_POLY1305_SHA256",
        0x1304 => "TLS_AES_128_CCM_SHA256",
        0x1305 => "TLS_AES_128_CCM_8_SHA256",
        _ => "a TLS 1.3 cipher suite",
    }
}

/// What the server must offer for embedded-tls.
const OFFER: &str =
    "embedded-tls offers TLS 1.3 only, the key-exchange group secp256r1 (P-256) only";

/// The name of a TLS version from its code point.
fn version_name(v: u16) -> &'static str {
    match v {
        0x0300 => "SSL 3.0",
        0x0301 => "TLS 1.0",
        0x0302 => "TLS 1.1",
        0x0303 => "TLS 1.2",
        _ => "an unknown version",
    }
}

/// The last record read, for an explanation: " (the last record the server sent was ...)".
fn last_record(f: &mut fmt::Formatter<'_>, seen: &Seen) -> fmt::Result {
    match seen.last_record() {
        Some((kind, len, _)) => write!(
            f,
            " (the last record read: content type {kind}, {len} bytes)"
        ),
        None => Ok(()),
    }
}

fn explain_handshake(
    f: &mut fmt::Formatter<'_>,
    e: &TlsError,
    suite: u16,
    seen: &Seen,
) -> fmt::Result {
    let suite = suite_name(suite);
    // What the bytes on the wire say comes first.
    if seen.plain_http() {
        return f.write_str(
            "the server answered in plain HTTP (its first bytes were \"HTTP/\"): this port serves HTTP without TLS; use the server's TLS port",
        );
    }
    if let Some(version) = seen.hello_without_supported_versions() {
        return write!(
            f,
            "the server answered with a {} ServerHello (legacy_version {version:#06x} and no supported_versions extension): it does not speak TLS 1.3, and embedded-tls speaks TLS 1.3 only: enable TLS 1.3 on the server (nginx: ssl_protocols TLSv1.2 TLSv1.3)",
            version_name(version)
        );
    }
    if let Some((record, hello)) = seen.hello_spanning() {
        return write!(
            f,
            "the server splits its handshake into records of {record} bytes (its ServerHello of {} bytes spans records, as RFC 8446 §5.1 allows); embedded-tls 0.19 cannot reassemble a handshake message across records: the server must not limit its record size (rustls max_fragment_size, OpenSSL max_send_fragment), or apply rawpost's embedded-tls patches",
            u32::from(hello) + 4
        );
    }
    // In embedded-tls 0.19 a certificate list longer than what is left of the record is
    // InvalidCertificate (more than 16 certificates is DecodeError).
    if let (TlsError::InvalidCertificate, Some((23, len, _))) = (e, seen.last_record()) {
        let full = if seen.last_record_full() {
            " (a full record)"
        } else {
            ""
        };
        return write!(
            f,
            "the server's Certificate message is longer than what is left of the {len}-byte record it began in{full}: the message spans records, as RFC 8446 §5.1 allows (or its length is wrong), and embedded-tls 0.19 cannot reassemble a handshake message across records; a chain of fewer or smaller certificates fits one record, or apply rawpost's embedded-tls patches"
        );
    }
    let parse_error = matches!(
        e,
        TlsError::InvalidCertificateEntry
            | TlsError::ParseError(_)
            | TlsError::InvalidHandshake
            | TlsError::DecodeError
            | TlsError::InvalidSignatureScheme
    );
    if parse_error && seen.last_record_full() {
        let len = seen.last_record().map_or(0, |(_, len, _)| len);
        return write!(
            f,
            "a handshake message of the server does not end in the {len}-byte record it began in (a full record): the message spans records, as RFC 8446 §5.1 allows, and embedded-tls 0.19 cannot reassemble a handshake message across records; apply rawpost's embedded-tls patches"
        );
    }
    match e {
        TlsError::HandshakeAborted(_, AlertDescription::ProtocolVersion) => f.write_str(
            "the server does not speak TLS 1.3 (it answered protocol_version); embedded-tls speaks TLS 1.3 only: enable TLS 1.3 on the server (nginx: ssl_protocols TLSv1.2 TLSv1.3)",
        ),
        TlsError::HandshakeAborted(_, AlertDescription::HandshakeFailure) => write!(
            f,
            "the server has nothing in common with this client (it answered handshake_failure): {OFFER} and the cipher suite {suite} only; the server must enable all three, and sign with ECDSA P-256 or P-384, Ed25519 or RSA-PSS"
        ),
        TlsError::HandshakeAborted(_, AlertDescription::InsufficientSecurity) => write!(
            f,
            "the server finds the offer too weak (insufficient_security): {OFFER} and the cipher suite {suite} only"
        ),
        TlsError::HandshakeAborted(_, AlertDescription::UnrecognizedName) => f.write_str(
            "the server does not serve this host name (unrecognized_name): check the host",
        ),
        TlsError::HandshakeAborted(_, AlertDescription::MissingExtension) => f.write_str(
            "the server wants a TLS extension embedded-tls does not send (missing_extension)",
        ),
        TlsError::HandshakeAborted(_, alert) => write!(
            f,
            "the server aborted the handshake with the alert {alert:?}"
        ),
        TlsError::IoError if seen.last_record().is_none() => write!(
            f,
            "the server closed the connection without answering the ClientHello: it refused the offer without an alert ({OFFER} and the cipher suite {suite} only), or this port does not speak TLS"
        ),
        TlsError::IoError => {
            f.write_str("the server closed the connection during the handshake")?;
            last_record(f, seen)
        }
        TlsError::Io(kind) => write!(
            f,
            "the connection failed during the handshake ({kind:?})"
        ),
        TlsError::DecodeError if seen.encrypted() => {
            f.write_str("embedded-tls could not decode an encrypted handshake message of the server (a Certificate message of more than 16 certificates is one)")?;
            last_record(f, seen)
        }
        TlsError::UnknownContentType
        | TlsError::InvalidRecord
        | TlsError::InvalidHandshake
        | TlsError::InvalidSupportedVersions
        | TlsError::ParseError(_)
        | TlsError::DecodeError => {
            f.write_str("the server's answer is not a TLS 1.3 handshake embedded-tls understands")?;
            last_record(f, seen)
        }
        TlsError::InvalidCipherSuite => write!(
            f,
            "the server chose a cipher suite that was not offered; embedded-tls offered {suite} only"
        ),
        TlsError::InvalidKeyShare => write!(
            f,
            "the server's key share is not usable; {OFFER}, and cannot answer a HelloRetryRequest for another group"
        ),
        TlsError::InsufficientSpace => f.write_str(
            "a TLS record (or, with rawpost's embedded-tls patches, a handshake message) did not fit embedded-tls's read buffer: make it 16,640 bytes (servers send 16 KiB records), or larger for a certificate chain over 16 KiB",
        ),
        TlsError::InvalidSignatureScheme => f.write_str(
            "the server signed with a scheme this client cannot verify (ECDSA P-256/P-384, Ed25519, RSA-PSS with the features p384, ed25519, rsa)",
        ),
        TlsError::InvalidSignature => f.write_str(
            "the server's Finished message did not verify: the handshake was altered on the way",
        ),
        TlsError::InvalidCertificate | TlsError::InvalidCertificateEntry => f.write_str(
            "the server's Certificate message is malformed",
        ),
        other => write!(f, "embedded-tls reported {other:?}"),
    }
}

/// Performs the TLS 1.3 handshake over `transport`, sending `host`'s name as the server name
/// (SNI) and checking the server's chain with `provider`, then returns an HTTP [`Connection`]
/// over the session whose `Host` header is the same `host`. The two can never disagree, which
/// Cloudflare-fronted services answer with 421 or 403.
///
/// `tls_read` must hold a whole TLS record (16,640 bytes for the 16 KiB records servers send);
/// `tls_write` holds one outgoing record (4096 bytes is plenty for requests; a larger write is
/// split). The session keeps the last 12 bytes of `tls_write` (when it has 512 or more) for
/// what its [`Transport`] saw of the server's records and for its readiness probe.
///
/// A host that is an IP address (`Host::new("192.0.2.7")`, `Host::new("[2001:db8::7]")`) is
/// matched against the certificate's IP address names, and no server name is sent (RFC 6066 §3
/// forbids IP literals there).
///
/// The result is a verified session or an error: the server proved it holds a certificate
/// that chains to the pinned one and names `host`. A refused server is sent the fatal alert
/// that says why; the error names the certificates involved.
///
/// ```no_run
/// # async fn demo<S, R>(tcp: S, rng: R, root_pem: &[u8], unix_time: fn() -> Option<u64>) -> Result<(), rawpost::Error<rawpost::tls::SessionError>>
/// # where S: embedded_io_async::Read + embedded_io_async::Write, R: rawpost::tls::embedded_tls::CryptoRngCore {
/// use rawpost::tls::{connect, PinnedProvider, TimeSource, TrustAnchor};
/// use rawpost::{Host, Request};
///
/// let host = Host::new("api.example.com");
/// let mut der = [0u8; 1024];
/// let Ok(anchor) = TrustAnchor::from_pem(root_pem, &mut der) else { return Ok(()) };
/// let mut provider = PinnedProvider::new(rng, anchor, TimeSource::clock(unix_time));
/// let (mut tls_read, mut tls_write) = ([0u8; 16640], [0u8; 4096]);
/// let mut http_buf = [0u8; 2048];
/// let mut conn = match connect(tcp, &mut tls_read, &mut tls_write, host, &mut provider, &mut http_buf).await {
///     Ok(conn) => conn,
///     Err(e) => {
///         // e.g. "TLS certificate refused: the pinned certificate is the server's own leaf: ..."
///         println!("{e}");
///         return Ok(());
///     }
/// };
/// let resp = conn.send(&Request::post("/v1/token").with_body(b"{}")).await?;
/// # let _ = resp.status(); Ok(()) }
/// ```
///
/// The handshake is not bounded by rawpost's deadlines; bound it with the executor's timeout
/// (e.g. `embassy_time::with_timeout`). Use [`Connection::timed`] on the result to bound the
/// HTTP exchanges.
pub async fn connect<'a, 'b, S, Rng, C, CS>(
    transport: S,
    tls_read: &'b mut [u8],
    tls_write: &'b mut [u8],
    host: Host<'a>,
    provider: &mut PinnedProvider<'_, Rng, C, CS>,
    buf: &'a mut [u8],
) -> Result<Connection<'a, TlsStream<'b, S, CS>>, OpenError>
where
    S: Read + Write + 'b,
    Rng: CryptoRngCore,
    C: Clock,
    CS: TlsCipherSuite + 'static,
{
    let stream = TlsStream::open(transport, tls_read, tls_write, host, provider).await?;
    Ok(Connection::new(stream, buf, host))
}

/// What the server's certificate must name: `host`'s name or address.
// `OpenError` carries its detail inline (no allocation), hence its size.
#[allow(clippy::result_large_err)]
pub(super) fn expected(host: Host<'_>) -> Result<Expected, OpenError> {
    match host.validate().ok().and(Expected::parse(host.name())) {
        Some(expected) => Ok(expected),
        None => {
            let mut detail = Detail::new();
            detail.push(host.name());
            Err(OpenError::certificate(CertError::InvalidServerName, detail))
        }
    }
}

impl<'b, S, CS> TlsStream<'b, S, CS>
where
    S: Read + Write + 'b,
    CS: TlsCipherSuite + 'static,
{
    /// The handshake of [`connect`] without the HTTP part: the verified TLS session as a
    /// [`TlsStream`], for protocols other than HTTP (MQTT, say) or to read the stream
    /// directly. The same checks, alerts and errors as [`connect`]. For HTTP use [`connect`]
    /// (or [`TlsConnector`](super::TlsConnector) with a [`Client`](crate::Client)): the server
    /// name and the `Host` header then come from one value.
    pub async fn open<Rng, C>(
        transport: S,
        tls_read: &'b mut [u8],
        tls_write: &'b mut [u8],
        host: Host<'_>,
        provider: &mut PinnedProvider<'_, Rng, C, CS>,
    ) -> Result<Self, OpenError>
    where
        Rng: CryptoRngCore,
        C: Clock,
    {
        let expected = expected(host)?;
        let ip = expected.is_ip();
        provider.verifier.begin(expected);
        // A few bytes of the write buffer are shared by the transport (what it saw, the probe
        // switch) and the session.
        let (tls_write, link) = Link::carve(tls_write);
        let mut tls = TlsConnection::new(Transport::linked(transport, link), tls_read, tls_write);
        // No server name for an IP address (RFC 6066 §3); the verifier knows the address.
        let config = if ip {
            TlsConfig::new()
        } else {
            TlsConfig::new().with_server_name(host.name())
        };
        // embedded-tls offers RSA signature schemes only with its own `alloc`; with ours, the
        // verifier can check them, so offer them.
        #[cfg(feature = "rsa")]
        let config = config.enable_rsa_signatures();
        let session = Session {
            provider: &mut *provider,
            _suite: PhantomData,
        };
        let opened = tls.open(TlsContext::new(&config, session)).await;
        if let Err(e) = opened {
            crate::log::debug!("rawpost: TLS handshake with {} failed", host.name());
            return Err(match provider.verifier.take_refusal() {
                Some((error, detail)) => OpenError::certificate(error, detail),
                None => OpenError::Handshake {
                    error: e,
                    cipher_suite: CS::CODE_POINT,
                    seen: link.seen(),
                },
            });
        }
        if !provider.verifier.authenticated() {
            // The handshake finished without the server's Certificate or CertificateVerify.
            // Dropping the session closes the transport without close_notify.
            let (error, detail) = provider
                .verifier
                .take_refusal()
                .unwrap_or((CertError::NoCertificate, Detail::new()));
            return Err(OpenError::certificate(error, detail));
        }
        Ok(TlsStream::linked(tls, link))
    }
}

/// The embedded-tls `CryptoProvider` of one handshake: private, so that a session verified by
/// a [`PinnedProvider`] can only be opened by [`TlsStream::open`], which checks that the server
/// authenticated before returning it.
struct Session<'p, 'a, Rng, C, CS> {
    provider: &'p mut PinnedProvider<'a, Rng, C, CS>,
    _suite: PhantomData<CS>,
}

impl<Rng: CryptoRngCore, C: Clock, CS: TlsCipherSuite> CryptoProvider
    for Session<'_, '_, Rng, C, CS>
{
    type CipherSuite = CS;
    type Signature = p256::ecdsa::DerSignature;

    fn rng(&mut self) -> impl CryptoRngCore {
        &mut self.provider.rng
    }

    fn verifier(&mut self) -> Result<&mut impl TlsVerifier<CS>, TlsError> {
        Ok(self)
    }
}

/// A refusal as embedded-tls must see it: it sends the fatal alert, then fails the handshake.
fn abort(error: CertError) -> TlsError {
    TlsError::AbortHandshake(AlertLevel::Fatal, error.alert())
}

impl<Rng, C: Clock, CS: TlsCipherSuite> TlsVerifier<CS> for Session<'_, '_, Rng, C, CS> {
    fn set_hostname_verification(&mut self, _hostname: &str) -> Result<(), TlsError> {
        // `TlsStream::open` gave the verifier the host (parsed, and with IP addresses) already.
        Ok(())
    }

    fn verify_certificate(
        &mut self,
        transcript: &CS::Hash,
        cert: CertificateRef,
    ) -> Result<(), TlsError> {
        let hash = transcript.clone().finalize();
        let time = self.provider.time_input();
        self.provider
            .verifier
            .verify_certificate(&hash, &cert, time)
            .map_err(abort)
    }

    fn verify_signature(&mut self, verify: CertificateVerifyRef) -> Result<(), TlsError> {
        self.provider
            .verifier
            .verify_signature(&verify)
            .map_err(abort)
    }
}
