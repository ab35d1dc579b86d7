//! TLS 1.3 with a pinned CA certificate, over embedded-tls and rustls-webpki.
//!
//! - [`connect`]: the handshake, ending in an HTTP [`Connection`](crate::Connection) whose
//!   server name and `Host` header are one value, or an error; [`TlsConnector`]: the same for
//!   a [`Client`](crate::Client), which opens connections as it needs them.
//! - [`TlsStream`]: the session as a byte stream ([`TlsStream::open`] makes one without the
//!   HTTP part, for other protocols) whose end a reader can see, whose errors
//!   ([`SessionError`]) say why the session ended, and which can tell without waiting whether
//!   the server has closed it (`ReadReady`).
//! - [`TrustAnchor`]: the pinned certificate, from PEM text or DER bytes.
//! - [`PinnedProvider`]: the pinned certificate, randomness and a [`TimeSource`] (see there
//!   for every check made).
//! - [`OpenError`]: why a handshake failed, in words a user can act on, naming the
//!   certificates involved ([`CertError`], [`Detail`]).
//! - [`SignatureCache`]: certificate signatures already verified, so a reconnect skips them.
//!
//! No allocation, no `unsafe`; the chain is verified in place inside embedded-tls's read buffer.

mod algs;
mod anchor;
mod connect;
mod connector;
mod der;
mod error;
mod provider;
mod session;
mod signature_cache;
mod stream;
mod verifier;
mod wire;

pub use anchor::{pem_certificate_count, TrustAnchor};
pub use connect::{connect, OpenError};
pub use connector::{TlsConnectError, TlsConnector};
/// The embedded-tls crate this module is built on, re-exported so versions always match.
pub use embedded_tls;
pub use error::{CertError, Detail, DETAIL_LEN};
pub use provider::{Clock, NoClock, PinnedProvider, TimeSource, TimeUsed, MIN_TIME};
pub use session::{SessionEnd, SessionError};
pub use signature_cache::SignatureCache;
pub use stream::TlsStream;
pub use wire::{Seen, Transport, TransportError, FULL_RECORD};
