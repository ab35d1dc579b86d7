//! The request a caller builds: method, path, headers, body — all borrowed, nothing copied
//! until it is encoded into the connection's buffer.

use crate::error::RequestError;
use crate::proto::encode::RequestHead;

/// An HTTP request method.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
#[non_exhaustive]
pub enum Method {
    /// `GET`
    Get,
    /// `HEAD`: the response never has a body.
    Head,
    /// `POST`
    Post,
    /// `PUT`
    Put,
    /// `PATCH`
    Patch,
    /// `DELETE`
    Delete,
    /// `OPTIONS`
    Options,
}

impl Method {
    /// The method's token as sent on the wire, e.g. `"POST"`.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Get => "GET",
            Self::Head => "HEAD",
            Self::Post => "POST",
            Self::Put => "PUT",
            Self::Patch => "PATCH",
            Self::Delete => "DELETE",
            Self::Options => "OPTIONS",
        }
    }

    /// Whether the method is idempotent (RFC 9110 §9.2.2): sending it twice has the effect of
    /// sending it once, so it may be retried automatically (RFC 9112 §9.3.1). `POST` and
    /// `PATCH` are not.
    pub const fn is_idempotent(self) -> bool {
        !matches!(self, Self::Post | Self::Patch)
    }

    /// Whether the method's semantics anticipate a body, so that an empty body is still sent
    /// with `Content-Length: 0` (RFC 9110 §8.6).
    pub(crate) const fn anticipates_body(self) -> bool {
        matches!(self, Self::Post | Self::Put | Self::Patch)
    }
}

/// The server's host: the one value from which both the `Host` header and (with TLS) the server
/// name (SNI) are taken, so the two can never disagree.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct Host<'a> {
    pub(crate) name: &'a str,
    pub(crate) port: Option<u16>,
}

impl<'a> Host<'a> {
    /// A host name (or IPv4 address, or bracketed IPv6 literal) without a port. It is checked
    /// when the first request is encoded; see [`Host::validate`].
    pub const fn new(name: &'a str) -> Self {
        Self { name, port: None }
    }

    /// Adds a port to the `Host` header (`name:port`). Leave it out for the scheme's default
    /// port (80 or 443), as browsers do.
    pub const fn with_port(self, port: u16) -> Self {
        Self {
            name: self.name,
            port: Some(port),
        }
    }

    /// The host name without the port: what TLS sends as the server name.
    pub const fn name(&self) -> &'a str {
        self.name
    }

    /// The port given with [`Host::with_port`], if any.
    pub const fn port(&self) -> Option<u16> {
        self.port
    }

    /// Checks that the name is a URI host (RFC 3986 §3.2.2): a non-empty registered name or
    /// IPv4 address made of unreserved, sub-delimiter and `%` characters, or an IP literal in
    /// brackets.
    pub fn validate(&self) -> Result<(), RequestError> {
        match crate::proto::encode::valid_host(self.name) {
            true => Ok(()),
            false => Err(RequestError::InvalidHost),
        }
    }
}

/// An HTTP request, built with `const` methods and borrowing everything it holds.
///
/// The host is not part of the request: it belongs to the [`Connection`](crate::Connection), so
/// the `Host` header and the TLS server name come from one value.
///
/// ```
/// use rawpost::Request;
/// let req = Request::post("/oauth/token")
///     .with_headers(&[("Content-Type", "application/json"), ("User-Agent", "my-device/1.0")])
///     .with_body(br#"{"grant_type":"client_credentials"}"#);
/// assert_eq!(req.method(), rawpost::Method::Post);
/// ```
#[derive(Debug, Clone, Copy)]
pub struct Request<'r> {
    pub(crate) head: RequestHead<'r>,
    pub(crate) body: &'r [u8],
    pub(crate) idempotent: bool,
}

impl<'r> Request<'r> {
    /// A request with this method and origin-form path (`/path?query`), no headers, no body.
    pub const fn new(method: Method, path: &'r str) -> Self {
        Self {
            head: RequestHead {
                method,
                path,
                headers: &[],
            },
            body: &[],
            idempotent: false,
        }
    }

    /// A `POST` request.
    pub const fn post(path: &'r str) -> Self {
        Self::new(Method::Post, path)
    }

    /// A `GET` request.
    pub const fn get(path: &'r str) -> Self {
        Self::new(Method::Get, path)
    }

    /// A `PUT` request.
    pub const fn put(path: &'r str) -> Self {
        Self::new(Method::Put, path)
    }

    /// A `PATCH` request.
    pub const fn patch(path: &'r str) -> Self {
        Self::new(Method::Patch, path)
    }

    /// A `DELETE` request.
    pub const fn delete(path: &'r str) -> Self {
        Self::new(Method::Delete, path)
    }

    /// A `HEAD` request: the response has no body.
    pub const fn head(path: &'r str) -> Self {
        Self::new(Method::Head, path)
    }

    /// Sets the header fields, written in this order after `Host`. Nothing else is added but
    /// `Content-Length` (or `Transfer-Encoding: chunked` for a streamed body). A `Host` or
    /// `Content-Length` given here must agree with the automatic one and is then written once.
    pub const fn with_headers(mut self, headers: &'r [(&'r str, &'r str)]) -> Self {
        self.head.headers = headers;
        self
    }

    /// Sets the body; `Content-Length` is computed from it.
    pub const fn with_body(mut self, body: &'r [u8]) -> Self {
        self.body = body;
        self
    }

    /// Marks the request as safe to send twice although its method is not idempotent (a `POST`
    /// carrying an `Idempotency-Key`, say), so that [`Client`](crate::Client) may resend it on
    /// a new connection when the server closed the idle one before answering (RFC 9112
    /// §9.3.1: a client must not retry a non-idempotent request automatically unless it knows
    /// the request is idempotent). `GET`, `HEAD`, `PUT`, `DELETE` and `OPTIONS` are idempotent
    /// already.
    pub const fn idempotent(mut self) -> Self {
        self.idempotent = true;
        self
    }

    /// Whether the request may be sent again automatically (RFC 9112 §9.3.1): its method is
    /// idempotent, or it was marked [`idempotent`](Request::idempotent).
    pub const fn is_idempotent(&self) -> bool {
        self.idempotent || self.head.method.is_idempotent()
    }

    /// The method.
    pub const fn method(&self) -> Method {
        self.head.method
    }

    /// The path.
    pub const fn path(&self) -> &'r str {
        self.head.path
    }

    /// The header fields set by the caller.
    pub const fn headers(&self) -> &'r [(&'r str, &'r str)] {
        self.head.headers
    }

    /// Validates the request and encodes its head into `out` exactly as it would be written
    /// for `host` (with `Content-Length` from the body); returns its length. Nothing else is
    /// needed to see what goes on the wire.
    pub fn encode_head(
        &self,
        host: &crate::Host<'_>,
        out: &mut [u8],
    ) -> Result<usize, crate::RequestError> {
        let framing = crate::proto::encode::BodyFraming::Length(self.body.len() as u64);
        crate::proto::encode::encode(&self.head, host, framing, out)
    }

    /// The body.
    pub const fn body(&self) -> &'r [u8] {
        self.body
    }
}
