//! A [`Connect`] for [`Client`](crate::Client): TCP (any connector of yours), then a verified
//! TLS 1.3 session on it.

use embedded_tls::{Aes128GcmSha256, CryptoRngCore, TlsCipherSuite};

use super::{Clock, NoClock, OpenError, PinnedProvider, SessionError, TlsStream};
use crate::{Connect, Host};

/// Opens connections for a [`Client`](crate::Client): a transport from `T` (a TCP connector of
/// yours), then a TLS 1.3 session on it through [`TlsStream::open`], verified by the
/// [`PinnedProvider`], with `host.name()` as the server name — the same value the `Host` header
/// is written from.
///
/// It holds embedded-tls's two record buffers; each session borrows them, and gives them back
/// when it is dropped (which [`Client::run`](crate::Client::run) does before opening the next).
///
/// ```no_run
/// # async fn demo<T: rawpost::Connect, R: rawpost::tls::embedded_tls::CryptoRngCore>(tcp: T, rng: R, anchor: rawpost::tls::TrustAnchor<'_>) {
/// use rawpost::tls::{PinnedProvider, TimeSource, TlsConnector};
/// use rawpost::{Client, Host};
///
/// let mut tls_read = [0u8; 16_640]; // a whole 16 KiB TLS record
/// let mut tls_write = [0u8; 4096];
/// let provider = PinnedProvider::new(rng, anchor, TimeSource::floor(1_767_225_600));
/// let connector = TlsConnector::new(tcp, &mut tls_read, &mut tls_write, provider);
/// let mut http_buf = [0u8; 2048];
/// let client = Client::new(connector, &mut http_buf, Host::new("api.example.com"));
/// # let _ = client; }
/// ```
pub struct TlsConnector<'b, T, Rng, C = NoClock, CS = Aes128GcmSha256> {
    transport: T,
    read: &'b mut [u8],
    write: &'b mut [u8],
    provider: PinnedProvider<'b, Rng, C, CS>,
}

impl<'b, T, Rng, C, CS> TlsConnector<'b, T, Rng, C, CS> {
    /// Sessions over `transport`'s connections, in `read` (it must hold a whole TLS record:
    /// 16,640 bytes for the 16 KiB records servers send) and `write` buffers, verified by
    /// `provider`.
    pub fn new(
        transport: T,
        read: &'b mut [u8],
        write: &'b mut [u8],
        provider: PinnedProvider<'b, Rng, C, CS>,
    ) -> Self {
        Self {
            transport,
            read,
            write,
            provider,
        }
    }

    /// The transport connector.
    pub fn transport(&mut self) -> &mut T {
        &mut self.transport
    }

    /// The transport connector, shared.
    pub fn transport_ref(&self) -> &T {
        &self.transport
    }

    /// The provider (for its time source, or what the last handshake used).
    pub fn provider(&mut self) -> &mut PinnedProvider<'b, Rng, C, CS> {
        &mut self.provider
    }
}

/// Why [`TlsConnector`] could not open a connection.
#[derive(Debug, Clone)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
#[non_exhaustive]
pub enum TlsConnectError<E> {
    /// The transport could not be opened (DNS, TCP...).
    Transport(E),
    /// The TLS handshake failed or the server was refused; its `Display` says why and what to
    /// do.
    Tls(OpenError),
}

impl<E: core::fmt::Debug> core::fmt::Display for TlsConnectError<E> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            Self::Transport(e) => write!(f, "could not connect: {e:?}"),
            Self::Tls(e) => e.fmt(f),
        }
    }
}

impl<E: core::fmt::Debug> core::error::Error for TlsConnectError<E> {}

impl<'b, T, Rng, C, CS> Connect for TlsConnector<'b, T, Rng, C, CS>
where
    T: Connect,
    Rng: CryptoRngCore,
    C: Clock,
    CS: TlsCipherSuite + 'static,
{
    type StreamError = SessionError;
    type Stream<'c>
        = TlsStream<'c, T::Stream<'c>, CS>
    where
        Self: 'c;
    type Error = TlsConnectError<T::Error>;

    async fn connect(&mut self, host: Host<'_>) -> Result<Self::Stream<'_>, Self::Error> {
        let transport = self
            .transport
            .connect(host)
            .await
            .map_err(TlsConnectError::Transport)?;
        TlsStream::open(transport, self.read, self.write, host, &mut self.provider)
            .await
            .map_err(TlsConnectError::Tls)
    }
}
