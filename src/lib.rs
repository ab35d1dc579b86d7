//! # rawpost
//!
//! A small HTTP/1.1 client — `POST` first, other methods too — for `no_std` targets, over any
//! byte stream that implements [`embedded_io_async`]: a TLS session from `embedded-tls`, a TCP
//! socket from `embassy-net`, an in-memory pipe in a test.
//!
//! - **The request is exactly the bytes you expect.** Only `Host` and `Content-Length` are
//!   added. CR, LF and other control characters in the path, host or header values are refused
//!   before anything is written. Head and body go out in one `write` when they fit the buffer.
//! - **One buffer, no heap.** The caller's buffer holds the request, then the response head; the
//!   body streams through it (or straight into the caller's slice).
//! - **Strict framing (RFC 9112).** `Transfer-Encoding` and `Content-Length` together, invalid
//!   lengths, malformed chunks and bodies cut short are typed errors, never a short `Ok`.
//!   Interim `1xx` responses are skipped. Bytes of the next response are kept for it.
//! - **A sans-IO core.** One state machine per connection decides everything and does no I/O;
//!   the async shell ([`Connection`]) and the blocking shell ([`blocking::Connection`]) only
//!   move bytes and time.
//!
//! ```no_run
//! # async fn demo<S: embedded_io_async::Read + embedded_io_async::Write>(stream: S) -> Result<(), rawpost::Error<S::Error>> {
//! use rawpost::{Connection, Host, Request};
//!
//! let mut buf = [0u8; 2048];
//! let mut conn = Connection::new(stream, &mut buf, Host::new("api.example.com"));
//! let req = Request::post("/oauth/token")
//!     .with_headers(&[("Content-Type", "application/json")])
//!     .with_body(br#"{"grant_type":"client_credentials"}"#);
//! let mut resp = conn.send(&req).await?;
//! let status = resp.status();
//! let mut body = [0u8; 512];
//! let n = resp.read_to_end(&mut body).await?;
//! # let _ = (status, n);
//! # Ok(()) }
//! ```
//!
//! The exact bytes of a request can be seen without any I/O:
//!
//! ```
//! use rawpost::{Host, Request};
//!
//! let req = Request::post("/v1/token").with_headers(&[("Accept", "*/*")]).with_body(b"{}");
//! let mut buf = [0u8; 128];
//! let n = req.encode_head(&Host::new("api.example.com"), &mut buf).unwrap();
//! assert_eq!(
//!     &buf[..n],
//!     b"POST /v1/token HTTP/1.1\r\nHost: api.example.com\r\nAccept: */*\r\nContent-Length: 2\r\n\r\n"
//! );
//! ```
#![cfg_attr(not(test), no_std)]
#![cfg_attr(docsrs, feature(doc_cfg))]
#![forbid(unsafe_code)]
#![deny(missing_docs)]

pub(crate) mod log;

pub mod blocking;
mod client;
mod connection;
mod error;
/// The sans-IO protocol core, reachable only with the feature `unstable-core`: for the fuzz
/// targets, the benches and tests that drive the state machine directly. It is not part of the
/// crate's API and changes in any release.
#[cfg(feature = "unstable-core")]
#[doc(hidden)]
pub mod proto;
#[cfg(not(feature = "unstable-core"))]
mod proto;
mod request;
mod response;
mod timer;
#[cfg(feature = "embedded-tls")]
#[cfg_attr(docsrs, doc(cfg(feature = "embedded-tls")))]
pub mod tls;
pub mod trace;

pub use client::{Attempt, Backoff, Client, ClientError, Connect, Exchange, CONNECT_TIMEOUT_MS};
pub use connection::{BodyWriter, Connection, Response};
pub use error::TimeoutPhase;
pub use error::{Broken, ConnectionError, Error, RequestError, ResponseError};
pub use proto::conn::{DRAIN_BUDGET, MAX_INTERIM_RESPONSES};
pub use proto::decode::MAX_CHUNK_LINE;
pub use proto::framing::Framing;
pub use proto::response::{Fields, Header, StatusClass, MAX_HEADERS};
pub use proto::timing::Timeouts;
pub use request::Request;
pub use request::{Host, Method};
#[cfg(feature = "embassy-time")]
#[cfg_attr(docsrs, doc(cfg(feature = "embassy-time")))]
pub use timer::EmbassyTimer;
pub use timer::{DelayTimer, NoTimer, Timer};

/// Guides: the pages of the repository's `docs/` directory, here so that they are on docs.rs and
/// their Rust examples compile as doc tests.
pub mod guide {
    /// Running rawpost on an ESP32: the firmware examples, flash and RAM, QEMU measurements.
    pub mod esp32 {
        #![doc = include_str!("../docs/esp32.md")]
    }
    /// HTTPS with a pinned CA: security defaults, which certificate to pin, sizes.
    #[cfg(feature = "embedded-tls")]
    pub mod tls {
        #![doc = include_str!("../docs/tls.md")]
    }
    /// The embedded-tls 0.19 defects rawpost found, its patches for them, and how to apply them.
    #[cfg(feature = "embedded-tls")]
    pub mod tls_patches {
        #![doc = include_str!("../docs/tls-patches.md")]
    }
    /// Choosing a TLS stack: embedded-tls, mbedtls-rs, rustls, side by side.
    pub mod tls_stacks {
        #![doc = include_str!("../docs/tls-stacks.md")]
    }
    /// rawpost over rustls on a host (TLS 1.2 and 1.3).
    pub mod rustls {
        #![doc = include_str!("../docs/rustls.md")]
    }
    /// Keeping a connection for a device's life, and the soak that proves it.
    pub mod reliability {
        #![doc = include_str!("../docs/reliability.md")]
    }
    /// Errors and response framing in detail (RFC 9112 §6.3), limits, the replay tool.
    pub mod framing {
        #![doc = include_str!("../docs/framing.md")]
    }
    /// How rawpost is built, its features, and how it is tested.
    pub mod design {
        #![doc = include_str!("../docs/design.md")]
    }
}

// The README's Rust examples, compiled as doc tests. The module file sits next to
// `examples/esp32-common/root-ca.pem`, the certificate file the README's `include_bytes!` names
// (a doc comment here would make doc tests resolve paths from src/); the TLS example needs
// feature `embedded-tls` (on in `cargo test-all`).
#[cfg(all(doctest, feature = "embedded-tls"))]
#[path = "../examples/esp32-common/readme_doctest.rs"]
mod readme;
