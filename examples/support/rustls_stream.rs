//! rawpost over rustls on a host (std): a rustls 0.23 client session, through tokio-rustls, as
//! an `embedded_io_async::{Read, Write, ReadReady}` stream, with the server's certificate
//! checked by rustls's own verifier against one pinned CA. Shared by the `post-rustls` and
//! `interop` examples and the `rustls_stack` tests; docs/rustls.md explains it.
//!
//! - [`PinnedCa`]: the pinned root (or intermediate) CA as a `RootCertStore` holding only it,
//!   checked by rustls's `WebPkiServerVerifier` (path, CA flags, names, dates, signatures). TLS
//!   1.2 and 1.3, whatever the provider offers (ring: ECDSA P-256/P-384, Ed25519, RSA).
//! - [`connect`]: the handshake, with the server name (SNI) taken from the same
//!   [`rawpost::Host`] that rawpost writes the `Host` header from, so the two cannot disagree.
//! - [`RustlsStream`]: the session, with the ends of a session mapped onto what rawpost expects
//!   (the table on [`RustlsStream`]).
//!
//! rawpost's own explained refusals ([`rawpost::tls::OpenError`]: "pin the root", "the chain
//! does not lead to the pinned certificate ...") come from its embedded-tls verifier. With the
//! `embedded-tls` feature, [`explain`] runs that verifier on the chain rustls refused, to give the
//! same explanation.
#![allow(dead_code)]

use std::future::poll_fn;
use std::io;
use std::pin::Pin as StdPin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, Waker};

use rawpost::Host;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::client::WebPkiServerVerifier;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{
    ClientConfig, DigitallySignedStruct, ProtocolVersion, RootCertStore, SignatureScheme,
    SupportedProtocolVersion,
};
use tokio::io::{AsyncBufRead, AsyncRead, AsyncWrite};
use tokio::net::TcpStream;

/// TLS 1.3 and TLS 1.2, in rustls's order of preference.
pub const ALL_VERSIONS: &[&SupportedProtocolVersion] =
    &[&rustls::version::TLS13, &rustls::version::TLS12];
/// TLS 1.3 only.
pub const TLS13_ONLY: &[&SupportedProtocolVersion] = &[&rustls::version::TLS13];
/// TLS 1.2 only.
pub const TLS12_ONLY: &[&SupportedProtocolVersion] = &[&rustls::version::TLS12];

// ---------------------------------------------------------------------------------------------
// Pinning through rustls's own verifier
// ---------------------------------------------------------------------------------------------

/// One pinned CA certificate as a rustls client configuration.
#[derive(Clone, Debug)]
pub struct PinnedCa {
    /// The client configuration: the pinned CA only, rustls's webpki verifier, the ring
    /// provider, the versions given to [`PinnedCa::new`].
    pub config: Arc<ClientConfig>,
    /// The verifier in `config`, to read the chain it last refused.
    pub verifier: Arc<PinnedVerifier>,
    /// The pinned certificate.
    pub anchor: CertificateDer<'static>,
}

impl PinnedCa {
    /// Trusts exactly `anchor` (DER), a root or an intermediate CA, for `versions` (e.g.
    /// [`ALL_VERSIONS`], or `&[&rustls::version::TLS12]`). Fails when `anchor` is not a usable
    /// trust anchor.
    pub fn new(
        anchor: CertificateDer<'static>,
        versions: &[&'static SupportedProtocolVersion],
    ) -> Result<Self, rustls::Error> {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let mut roots = RootCertStore::empty();
        roots.add(anchor.clone())?;
        let webpki = WebPkiServerVerifier::builder_with_provider(Arc::new(roots), provider.clone())
            .build()
            .map_err(|e| rustls::Error::General(e.to_string()))?;
        let verifier = Arc::new(PinnedVerifier {
            webpki,
            refused: Mutex::new(None),
        });
        let config = ClientConfig::builder_with_provider(provider)
            .with_protocol_versions(versions)?
            .dangerous()
            // Our verifier only delegates to `webpki` (and notes a refused chain): every
            // decision is rustls's own.
            .with_custom_certificate_verifier(verifier.clone())
            .with_no_client_auth();
        Ok(Self {
            config: Arc::new(config),
            verifier,
            anchor,
        })
    }

    /// [`PinnedCa::new`] with the `index`-th `CERTIFICATE` block (from 0) of PEM text, as
    /// `openssl s_client -showcerts` prints it or a CA publishes it.
    pub fn from_pem(
        pem: &[u8],
        index: usize,
        versions: &[&'static SupportedProtocolVersion],
    ) -> Result<Self, String> {
        let anchor = CertificateDer::pem_slice_iter(pem)
            .nth(index)
            .ok_or_else(|| format!("no CERTIFICATE block number {index} (from 0) in the PEM"))?
            .map_err(|e| format!("the PEM certificate does not decode: {e}"))?;
        Self::new(anchor, versions).map_err(|e| format!("not a usable CA certificate: {e}"))
    }
}

/// rustls's `WebPkiServerVerifier`, unchanged, which also keeps the last chain it refused (for
/// [`explain`]). One per [`PinnedCa`]; when several handshakes share a `PinnedCa` at once, the
/// note is the last refusal of any of them.
#[derive(Debug)]
pub struct PinnedVerifier {
    webpki: Arc<WebPkiServerVerifier>,
    refused: Mutex<Option<Refused>>,
}

/// A chain rustls's verifier refused.
#[derive(Clone, Debug)]
pub struct Refused {
    /// What the server sent: its own certificate first.
    pub chain: Vec<CertificateDer<'static>>,
    /// rustls's verdict.
    pub error: rustls::Error,
}

impl PinnedVerifier {
    /// The last chain refused, taken (`None` once taken, or if none was refused).
    pub fn take_refused(&self) -> Option<Refused> {
        self.refused.lock().ok()?.take()
    }
}

impl ServerCertVerifier for PinnedVerifier {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        let verdict = self.webpki.verify_server_cert(
            end_entity,
            intermediates,
            server_name,
            ocsp_response,
            now,
        );
        if let Err(error) = &verdict {
            let chain = std::iter::once(end_entity)
                .chain(intermediates)
                .map(|c| c.clone().into_owned())
                .collect();
            if let Ok(mut slot) = self.refused.lock() {
                *slot = Some(Refused {
                    chain,
                    error: error.clone(),
                });
            }
        }
        verdict
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.webpki.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.webpki.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.webpki.supported_verify_schemes()
    }

    fn root_hint_subjects(&self) -> Option<&[rustls::DistinguishedName]> {
        self.webpki.root_hint_subjects()
    }
}

/// rawpost's explanation of a chain rustls refused: rawpost's own verifier (embedded-tls
/// feature, `PinnedProvider::verify_chain`) run on the same chain, for the same host and pinned
/// certificate, dates checked against the system clock. `Err` carries the explanation;
/// `Ok(())` means rawpost's verifier accepts the chain that rustls refused (say so to the user
/// with rustls's reason).
#[cfg(feature = "embedded-tls")]
#[allow(clippy::result_large_err)]
pub fn explain(
    pin: &PinnedCa,
    host: Host<'_>,
    refused: &Refused,
) -> Result<(), rawpost::tls::OpenError> {
    use rawpost::tls::{PinnedProvider, TimeSource, TrustAnchor};
    let anchor = TrustAnchor::from_der(pin.anchor.as_ref()).map_err(|error| {
        rawpost::tls::OpenError::Certificate {
            error,
            detail: rawpost::tls::Detail::new(),
        }
    })?;
    let clock: fn() -> Option<u64> = unix_now;
    // The random numbers are for a handshake; `verify_chain` makes none.
    let mut provider = PinnedProvider::new(rand_core::OsRng, anchor, TimeSource::clock(clock));
    let chain: Vec<&[u8]> = refused.chain.iter().map(|c| c.as_ref()).collect();
    provider.verify_chain(host, &chain)
}

/// The system clock in Unix seconds.
#[cfg(feature = "embedded-tls")]
fn unix_now() -> Option<u64> {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .ok()
        .map(|d| d.as_secs())
}

// ---------------------------------------------------------------------------------------------
// The handshake
// ---------------------------------------------------------------------------------------------

/// The server name rustls sends (SNI) and checks the certificate for: `host`'s name, the value
/// rawpost writes the `Host` header from. An IP address (IPv6 in brackets, as in `Host`) is
/// matched against the certificate's IP addresses, and no SNI is sent (RFC 6066 §3).
pub fn server_name(host: Host<'_>) -> io::Result<ServerName<'static>> {
    let name = host.name();
    let bare = name
        .strip_prefix('[')
        .and_then(|n| n.strip_suffix(']'))
        .unwrap_or(name);
    ServerName::try_from(bare.to_owned()).map_err(|e| {
        io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("{name:?} is not a DNS name or IP address: {e}"),
        )
    })
}

/// TCP to `addr` (with `TCP_NODELAY`: a request's small records go out at once), then
/// [`connect`].
pub async fn connect_tcp(
    addr: impl tokio::net::ToSocketAddrs,
    host: Host<'_>,
    pin: &PinnedCa,
) -> io::Result<RustlsStream> {
    let tcp = TcpStream::connect(addr).await?;
    tcp.set_nodelay(true)?;
    connect(tcp, host, pin).await
}

/// The TLS handshake over `io`, for `host` (SNI and certificate name from `host.name()`),
/// verified against `pin`. A refused certificate is an `InvalidData` error whose source is the
/// `rustls::Error` (see [`rustls_error`]); `pin.verifier.take_refused()` then has the chain.
pub async fn connect<IO>(io: IO, host: Host<'_>, pin: &PinnedCa) -> io::Result<RustlsStream<IO>>
where
    IO: AsyncRead + AsyncWrite + Unpin,
{
    let connector = tokio_rustls::TlsConnector::from(pin.config.clone());
    let tls = connector.connect(server_name(host)?, io).await?;
    Ok(RustlsStream::new(tls))
}

/// The rustls error inside an I/O error from [`connect`] or [`RustlsStream`], if there is one
/// (a refused certificate, an alert received).
pub fn rustls_error(e: &io::Error) -> Option<&rustls::Error> {
    e.get_ref()?.downcast_ref::<rustls::Error>()
}

// ---------------------------------------------------------------------------------------------
// The session as an embedded-io-async stream
// ---------------------------------------------------------------------------------------------

/// A rustls client session as an `embedded_io_async` stream for rawpost's `Connection`.
///
/// Reads map the ends of a session onto what rawpost expects (`Ok(0)` is a clean end; the
/// `ConnectionAborted`, `ConnectionReset`, `BrokenPipe` and `NotConnected` kinds are "the
/// connection ended"):
///
/// | rustls / tokio-rustls reports | `RustlsStream::read` | meaning |
/// |---|---|---|
/// | end of data after the server's close_notify alert | `Ok(0)`, and `Ok(0)` on every later read | a clean end of stream |
/// | `Err(UnexpectedEof)` ("peer closed connection without sending TLS close_notify"): TCP FIN, no close_notify | `Err(ConnectionAborted)`, same message | an unclean end: the data may be truncated |
/// | `Err(ConnectionReset)` from the socket (TCP RST) | unchanged | the connection was reset |
/// | any other error (`InvalidData` with a `rustls::Error` source: a fatal alert received, a bad record) | unchanged | |
///
/// After an error every later read returns an error of the same kind and message (a socket
/// reports a reset once, and a later read would see a bare end instead). Bytes decrypted before an end are
/// delivered first. Writes and `flush` pass through (`write` hands plaintext to rustls and
/// sends what it can; `flush` sends the rest).
///
/// `read_ready` (`embedded_io::ReadReady`) says, without waiting, whether a `read` would return
/// at once: decrypted bytes are buffered, or the session has ended (close_notify, a TCP close
/// or reset, a fatal alert). It reads what the socket already holds and lets rustls process it,
/// so a TLS 1.3 NewSessionTicket that arrives while idle is absorbed and is not "ready". `read`
/// is cancel-safe (decrypted bytes stay in rustls until returned).
pub struct RustlsStream<IO = TcpStream> {
    tls: tokio_rustls::client::TlsStream<IO>,
    /// How the session ended, once a read has seen it.
    end: Option<End>,
    /// An error `read_ready` met, for the next `read` to return.
    pending: Option<io::Error>,
}

/// How a session ended.
#[derive(Clone, Debug)]
enum End {
    /// The server sent close_notify.
    CloseNotify,
    /// An error (already mapped), repeated on every later read.
    Failed(io::ErrorKind, String),
}

impl<IO> RustlsStream<IO>
where
    IO: AsyncRead + AsyncWrite + Unpin,
{
    /// Wraps a session opened with tokio-rustls (whatever verified it).
    pub fn new(tls: tokio_rustls::client::TlsStream<IO>) -> Self {
        Self {
            tls,
            end: None,
            pending: None,
        }
    }

    /// The TLS version negotiated (`TLSv1_3`, `TLSv1_2`).
    pub fn protocol_version(&self) -> Option<ProtocolVersion> {
        self.tls.get_ref().1.protocol_version()
    }

    /// The cipher suite negotiated.
    pub fn cipher_suite(&self) -> Option<rustls::SupportedCipherSuite> {
        self.tls.get_ref().1.negotiated_cipher_suite()
    }

    /// Whether a read has returned the server's close_notify (`Ok(0)`).
    pub fn peer_closed(&self) -> bool {
        matches!(self.end, Some(End::CloseNotify))
    }

    /// The tokio-rustls session.
    pub fn get_ref(&self) -> &tokio_rustls::client::TlsStream<IO> {
        &self.tls
    }

    /// The tokio-rustls session, unwrapped.
    pub fn into_inner(self) -> tokio_rustls::client::TlsStream<IO> {
        self.tls
    }

    /// Ends the session: sends close_notify and shuts the transport down for writing.
    pub async fn close(&mut self) -> io::Result<()> {
        poll_fn(|cx| StdPin::new(&mut self.tls).poll_shutdown(cx)).await
    }

    /// Decrypted bytes into `buf`, or how the session ended; `Pending` when nothing is there.
    fn poll_read_into(&mut self, cx: &mut Context<'_>, buf: &mut [u8]) -> Poll<io::Result<usize>> {
        let n = match StdPin::new(&mut self.tls).poll_fill_buf(cx) {
            Poll::Pending => return Poll::Pending,
            Poll::Ready(Err(e)) => return Poll::Ready(Err(e)),
            Poll::Ready(Ok(data)) => {
                let n = data.len().min(buf.len());
                buf[..n].copy_from_slice(&data[..n]);
                n
            }
        };
        StdPin::new(&mut self.tls).consume(n);
        Poll::Ready(Ok(n))
    }

    /// Records how the session ended and gives the caller its result.
    fn settle(&mut self, r: io::Result<usize>) -> io::Result<usize> {
        match r {
            Ok(0) => {
                self.end = Some(End::CloseNotify);
                Ok(0)
            }
            Ok(n) => Ok(n),
            Err(e) => {
                let e = map_error(e);
                self.end = Some(End::Failed(e.kind(), e.to_string()));
                Err(e)
            }
        }
    }
}

/// The one error rustls reports differently from what rawpost expects: a TCP close without
/// close_notify (`UnexpectedEof`) is an aborted connection.
fn map_error(e: io::Error) -> io::Error {
    match e.kind() {
        io::ErrorKind::UnexpectedEof => io::Error::new(io::ErrorKind::ConnectionAborted, e),
        _ => e,
    }
}

impl<IO> embedded_io::ErrorType for RustlsStream<IO> {
    type Error = io::Error;
}

impl<IO> embedded_io_async::Read for RustlsStream<IO>
where
    IO: AsyncRead + AsyncWrite + Unpin,
{
    async fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if buf.is_empty() {
            return Ok(0);
        }
        match &self.end {
            Some(End::CloseNotify) => return Ok(0),
            Some(End::Failed(kind, message)) => return Err(io::Error::new(*kind, message.clone())),
            None => {}
        }
        if let Some(e) = self.pending.take() {
            return self.settle(Err(e));
        }
        let r = poll_fn(|cx| self.poll_read_into(cx, buf)).await;
        self.settle(r)
    }
}

impl<IO> embedded_io_async::ReadReady for RustlsStream<IO>
where
    IO: AsyncRead + AsyncWrite + Unpin,
{
    fn read_ready(&mut self) -> io::Result<bool> {
        if self.end.is_some() || self.pending.is_some() {
            return Ok(true);
        }
        let mut cx = Context::from_waker(Waker::noop());
        match StdPin::new(&mut self.tls).poll_fill_buf(&mut cx) {
            Poll::Pending => Ok(false),
            Poll::Ready(Ok(_)) => Ok(true),
            Poll::Ready(Err(e)) => {
                // The socket reports a reset once; keep it for the read.
                self.pending = Some(e);
                Ok(true)
            }
        }
    }
}

impl<IO> embedded_io_async::Write for RustlsStream<IO>
where
    IO: AsyncRead + AsyncWrite + Unpin,
{
    async fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        if buf.is_empty() {
            return Ok(0);
        }
        match poll_fn(|cx| StdPin::new(&mut self.tls).poll_write(cx, buf)).await? {
            0 => Err(io::ErrorKind::WriteZero.into()),
            n => Ok(n),
        }
    }

    async fn flush(&mut self) -> io::Result<()> {
        poll_fn(|cx| StdPin::new(&mut self.tls).poll_flush(cx)).await
    }
}
