//! TLS 1.3 with a pinned CA certificate, over embedded-tls and rustls-webpki.
//!
//! - [`TrustAnchor`]: the pinned certificate, from PEM text or DER bytes.
//! - [`PinnedProvider`]: the embedded-tls `CryptoProvider` whose verifier checks the server's
//!   chain against it (see there for every check made), then its handshake signature.
//! - [`CertError`]: why it failed, in words a user can act on.
//! - [`SignatureCache`]: certificate signatures already verified, so a reconnect skips them.
//!
//! No allocation, no `unsafe`; the chain is verified in place inside embedded-tls's read buffer.

mod algs;
mod anchor;
mod connect;
mod der;
mod error;
mod memo;
mod provider;
mod verifier;

pub use anchor::{pem_certificate_count, TrustAnchor};
pub use connect::{connect, OpenError};
/// The embedded-tls crate this module is built on, re-exported so versions always match.
pub use embedded_tls;
pub use error::{CertError, Explain};
pub use memo::SignatureCache;
pub use provider::PinnedProvider;
pub use verifier::{Clock, PinnedVerifier};
