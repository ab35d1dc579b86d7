//! Opening a TLS session whose server name and `Host` header are one value.

use core::fmt;

use embedded_io_async::{Read, Write};
use embedded_tls::{CryptoRngCore, TlsCipherSuite, TlsConfig, TlsConnection, TlsContext, TlsError};

use super::{CertError, PinnedProvider, TlsStream, Transport};
use crate::{Connection, Host};

/// Why [`connect`] failed.
#[derive(Debug, Clone, Copy)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum OpenError {
    /// The server's certificate was not trusted; the provider's
    /// [`explain`](PinnedProvider::explain) adds the name involved.
    Certificate(CertError),
    /// The handshake failed for another reason (I/O, an alert, an unsupported server).
    Handshake(TlsError),
}

impl fmt::Display for OpenError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Certificate(e) => write!(f, "TLS certificate refused: {e}"),
            Self::Handshake(e) => write!(f, "TLS handshake failed: {e:?}"),
        }
    }
}

impl core::error::Error for OpenError {}

/// Performs the TLS 1.3 handshake over `transport`, sending `host`'s name as the server name
/// (SNI) and checking the server's chain with `provider`, then returns an HTTP [`Connection`]
/// over the session whose `Host` header is the same `host`. The two can never disagree, which
/// Cloudflare-fronted services answer with 421 or 403.
///
/// `tls_read` must hold a whole TLS record (16,640 bytes for the 16 KiB records servers send);
/// `tls_write` holds one outgoing record (4096 bytes is plenty for requests; a larger write is
/// split).
///
/// Success means the server proved it holds a certificate that chains to the pinned one and
/// names `host` (a handshake in which the server skipped authentication is refused).
///
/// ```no_run
/// # async fn demo<S, R>(tcp: S, rng: R, root_pem: &[u8]) -> Result<(), rawpost::Error<rawpost::tls::embedded_tls::TlsError>>
/// # where S: embedded_io_async::Read + embedded_io_async::Write, R: rawpost::tls::embedded_tls::CryptoRngCore {
/// use rawpost::tls::{connect, PinnedProvider, TrustAnchor};
/// use rawpost::{Host, Request};
///
/// let host = Host::new("api.example.com");
/// let mut der = [0u8; 1024];
/// let Ok(anchor) = TrustAnchor::from_pem(root_pem, &mut der) else { return Ok(()) };
/// let mut provider = PinnedProvider::new(rng, anchor);
/// let (mut tls_read, mut tls_write) = ([0u8; 16640], [0u8; 4096]);
/// let mut http_buf = [0u8; 2048];
/// let mut conn = match connect(tcp, &mut tls_read, &mut tls_write, host, &mut provider, &mut http_buf).await {
///     Ok(conn) => conn,
///     Err(e) => {
///         // e.g. "the pinned certificate is the server's own leaf: pin the root CA that issued its chain"
///         if let Some(why) = provider.explain() {
///             println!("{e}: {why}");
///         }
///         return Ok(());
///     }
/// };
/// let resp = conn.send(&Request::post("/v1/token").body(b"{}")).await?;
/// # let _ = resp.status(); Ok(()) }
/// ```
///
/// The handshake is not bounded by rawpost's deadlines; bound it with the executor's timeout
/// (e.g. `embassy_time::with_timeout`). Use [`Connection::timed`] on the result to bound the
/// HTTP exchanges.
pub async fn connect<'a, 'b, S, CS, Rng>(
    transport: S,
    tls_read: &'b mut [u8],
    tls_write: &'b mut [u8],
    host: Host<'a>,
    provider: &mut PinnedProvider<'_, Rng, CS>,
    buf: &'a mut [u8],
) -> Result<Connection<'a, TlsStream<'b, S, CS>>, OpenError>
where
    S: Read + Write + 'b,
    CS: TlsCipherSuite + 'static,
    Rng: CryptoRngCore,
{
    let stream = open(transport, tls_read, tls_write, host, provider).await?;
    Ok(Connection::new(stream, buf, host))
}

/// The handshake of [`connect`] without the HTTP part: the verified TLS session as a
/// [`TlsStream`], for protocols other than HTTP or to read the stream directly.
pub async fn open<'b, S, CS, Rng>(
    transport: S,
    tls_read: &'b mut [u8],
    tls_write: &'b mut [u8],
    host: Host<'_>,
    provider: &mut PinnedProvider<'_, Rng, CS>,
) -> Result<TlsStream<'b, S, CS>, OpenError>
where
    S: Read + Write + 'b,
    CS: TlsCipherSuite + 'static,
    Rng: CryptoRngCore,
{
    host.validate()
        .map_err(|_| OpenError::Certificate(CertError::InvalidServerName))?;
    let mut tls = TlsConnection::new(Transport::new(transport), tls_read, tls_write);
    let config = TlsConfig::new().with_server_name(host.name());
    // embedded-tls offers RSA signature schemes only with its own `alloc`; with ours, the
    // verifier can check them, so offer them.
    #[cfg(feature = "rsa")]
    let config = config.enable_rsa_signatures();
    let opened = tls.open(TlsContext::new(&config, &mut *provider)).await;
    if let Err(e) = opened {
        crate::fmt::debug!("rawpost: TLS handshake with {} failed", host.name());
        return Err(match provider.last_error() {
            Some(cert) => OpenError::Certificate(cert),
            None => OpenError::Handshake(e),
        });
    }
    provider
        .check(Ok(()))
        .map_err(|e| OpenError::Certificate(e.unwrap_or(CertError::NoCertificate)))?;
    Ok(TlsStream::new(tls))
}
