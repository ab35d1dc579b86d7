//! Request heads: validation and encoding into a caller's buffer.
//!
//! [`encode`] validates every part of the request first and then writes the head in one pass;
//! it never writes a byte of a request that would be rejected. Only `Host` and `Content-Length`
//! (or `Transfer-Encoding: chunked` for a streamed body) are added; nothing else.

use crate::error::RequestError;

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

    /// Whether the method's semantics anticipate a body, so that an empty body is still sent
    /// with `Content-Length: 0` (RFC 9110 §8.6).
    const fn anticipates_body(self) -> bool {
        matches!(self, Self::Post | Self::Put | Self::Patch)
    }
}

/// The server's host: the one value from which both the `Host` header and (with TLS) the server
/// name (SNI) are taken, so the two can never disagree.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct Host<'a> {
    name: &'a str,
    port: Option<u16>,
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

    /// Checks that the name is a URI host: a non-empty registered name or IPv4 address made of
    /// unreserved, sub-delimiter and `%` characters, or an IP literal in brackets.
    pub fn validate(&self) -> Result<(), RequestError> {
        let b = self.name.as_bytes();
        let ok = match b {
            [] => false,
            [b'[', inner @ .., b']'] => {
                !inner.is_empty()
                    && inner
                        .iter()
                        .all(|&c| c.is_ascii_hexdigit() || matches!(c, b':' | b'.'))
            }
            _ => b.iter().all(|&c| {
                c.is_ascii_alphanumeric()
                    || matches!(
                        c,
                        b'-' | b'.'
                            | b'_'
                            | b'~'
                            | b'%'
                            | b'!'
                            | b'$'
                            | b'&'
                            | b'\''
                            | b'('
                            | b')'
                            | b'*'
                            | b'+'
                            | b','
                            | b';'
                            | b'='
                    )
            }),
        };
        if ok {
            Ok(())
        } else {
            Err(RequestError::InvalidHost)
        }
    }

    /// Whether a caller-supplied `Host` header value names this host (case-insensitively).
    fn matches_header(&self, value: &str) -> bool {
        let value = value.trim_matches([' ', '\t']).as_bytes();
        let name = self.name.as_bytes();
        let Some((head, rest)) = value.split_at_checked(name.len()) else {
            return false;
        };
        if !head.eq_ignore_ascii_case(name) {
            return false;
        }
        match (self.port, rest) {
            (None, []) => true,
            (Some(p), [b':', digits @ ..]) => Digits::new(u64::from(p)).as_bytes() == digits,
            _ => false,
        }
    }
}

/// How the request body is framed on the wire.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BodyFraming {
    /// `Content-Length: n` (left out for an empty body of a method that does not anticipate
    /// one, such as `GET`).
    Length(u64),
    /// `Transfer-Encoding: chunked`: the length is not known when the head is sent.
    Chunked,
}

/// The parts of a request head, borrowed from the caller.
#[derive(Debug, Clone, Copy)]
pub struct RequestHead<'r> {
    /// The method.
    pub method: Method,
    /// The origin-form target: a path starting with `/`, with an optional `?query`.
    pub path: &'r str,
    /// Header fields in the order they are written, after `Host`.
    pub headers: &'r [(&'r str, &'r str)],
}

/// A RFC 9110 `tchar`.
pub(crate) const fn is_tchar(c: u8) -> bool {
    c.is_ascii_alphanumeric()
        || matches!(
            c,
            b'!' | b'#'
                | b'$'
                | b'%'
                | b'&'
                | b'\''
                | b'*'
                | b'+'
                | b'-'
                | b'.'
                | b'^'
                | b'_'
                | b'`'
                | b'|'
                | b'~'
        )
}

fn validate_path(path: &str) -> Result<(), RequestError> {
    let b = path.as_bytes();
    // Origin-form: absolute-path [ "?" query ]; visible ASCII only (non-ASCII must be
    // percent-encoded), no fragment.
    if b.first() != Some(&b'/') || !b.iter().all(|&c| c.is_ascii_graphic() && c != b'#') {
        return Err(RequestError::InvalidPath);
    }
    Ok(())
}

fn validate_header(name: &str, value: &str) -> Result<(), RequestError> {
    if name.is_empty() || !name.bytes().all(is_tchar) {
        return Err(RequestError::InvalidHeaderName);
    }
    // field-value: VCHAR, SP, HTAB and obs-text; every other control character (CR, LF, NUL,
    // DEL, ...) is refused.
    if value.bytes().any(|c| (c < 0x20 && c != b'\t') || c == 0x7f) {
        return Err(RequestError::InvalidHeaderValue);
    }
    Ok(())
}

/// Decimal digits of a `u64`, formatted without allocation.
pub(crate) struct Digits {
    buf: [u8; 20],
    start: usize,
}

impl Digits {
    pub(crate) fn new(n: u64) -> Self {
        Self::in_base(n, 10)
    }

    /// Lower-case hexadecimal digits.
    pub(crate) fn hex(n: u64) -> Self {
        Self::in_base(n, 16)
    }

    fn in_base(mut n: u64, base: u64) -> Self {
        let mut buf = [0u8; 20];
        let mut start = buf.len();
        loop {
            start -= 1;
            buf[start] = b"0123456789abcdef"[(n % base) as usize];
            n /= base;
            if n == 0 {
                break;
            }
        }
        Self { buf, start }
    }

    pub(crate) fn as_bytes(&self) -> &[u8] {
        &self.buf[self.start..]
    }
}

/// Writes into a slice, counting the bytes that would be needed when it is too short.
///
/// It writes the window `skip..skip + buf.len()` of the encoded head into `buf`, so a head can
/// be encoded in parts when the buffer is short of room.
struct Cursor<'b> {
    buf: &'b mut [u8],
    pos: usize,
    skip: usize,
}

impl Cursor<'_> {
    fn put(&mut self, bytes: &[u8]) {
        let start = self.pos;
        let end = start + bytes.len();
        let lo = start.max(self.skip);
        let hi = end.min(self.skip + self.buf.len());
        if lo < hi {
            self.buf[lo - self.skip..hi - self.skip]
                .copy_from_slice(&bytes[lo - start..hi - start]);
        }
        self.pos = end;
    }
}

/// Checks a request head and the caller's headers against the automatic ones.
///
/// Returns whether a `Content-Length` header is to be written.
pub fn validate(
    head: &RequestHead<'_>,
    host: &Host<'_>,
    body: BodyFraming,
) -> Result<(), RequestError> {
    validate_path(head.path)?;
    host.validate()?;
    for &(name, value) in head.headers {
        validate_header(name, value)?;
        if name.eq_ignore_ascii_case("host") {
            if !host.matches_header(value) {
                return Err(RequestError::ConflictingHost);
            }
        } else if name.eq_ignore_ascii_case("content-length") {
            match body {
                BodyFraming::Length(n)
                    if value.trim_matches([' ', '\t']).as_bytes() == Digits::new(n).as_bytes() => {}
                _ => return Err(RequestError::ConflictingContentLength),
            }
        } else if name.eq_ignore_ascii_case("transfer-encoding") {
            return Err(RequestError::TransferEncodingNotAllowed);
        }
    }
    Ok(())
}

/// Encodes a validated request head into `out`.
///
/// Returns the head's length, or [`RequestError::BufferTooSmall`] with the number of bytes
/// needed. Call [`validate`] first; `encode` writes the parts as they are. A caller's `Host` or
/// `Content-Length` that equals the automatic one is written once, in the automatic place
/// (`Host` first, `Content-Length` last).
pub fn encode(
    head: &RequestHead<'_>,
    host: &Host<'_>,
    body: BodyFraming,
    out: &mut [u8],
) -> Result<usize, RequestError> {
    let len = encode_part(head, host, body, out, 0);
    if len > out.len() {
        Err(RequestError::BufferTooSmall { needed: len })
    } else {
        Ok(len)
    }
}

/// Encodes the bytes `skip..skip + out.len()` of a validated request head into `out` (fewer at
/// the end of the head) and returns the head's whole length. Used to send a head in parts when
/// the buffer's free space is smaller than the head.
pub fn encode_part(
    head: &RequestHead<'_>,
    host: &Host<'_>,
    body: BodyFraming,
    out: &mut [u8],
    skip: usize,
) -> usize {
    let mut w = Cursor {
        buf: out,
        pos: 0,
        skip,
    };
    w.put(head.method.as_str().as_bytes());
    w.put(b" ");
    w.put(head.path.as_bytes());
    w.put(b" HTTP/1.1\r\nHost: ");
    w.put(host.name.as_bytes());
    if let Some(port) = host.port {
        w.put(b":");
        w.put(Digits::new(u64::from(port)).as_bytes());
    }
    w.put(b"\r\n");
    for &(name, value) in head.headers {
        if name.eq_ignore_ascii_case("host") || name.eq_ignore_ascii_case("content-length") {
            continue;
        }
        w.put(name.as_bytes());
        w.put(b": ");
        w.put(value.as_bytes());
        w.put(b"\r\n");
    }
    match body {
        BodyFraming::Length(0) if !head.method.anticipates_body() => {}
        BodyFraming::Length(n) => {
            w.put(b"Content-Length: ");
            w.put(Digits::new(n).as_bytes());
            w.put(b"\r\n");
        }
        BodyFraming::Chunked => w.put(b"Transfer-Encoding: chunked\r\n"),
    }
    w.put(b"\r\n");
    w.pos
}

/// The length [`encode`] would produce.
pub fn encoded_len(head: &RequestHead<'_>, host: &Host<'_>, body: BodyFraming) -> usize {
    encode_part(head, host, body, &mut [], 0)
}

#[cfg(test)]
mod tests {
    use super::*;

    const HOST: Host<'static> = Host::new("api.example.com");

    fn roundtrip(head: &RequestHead<'_>, host: &Host<'_>, body: BodyFraming) -> usize {
        validate(head, host, body).unwrap();
        let mut buf = [0u8; 512];
        let n = encode(head, host, body, &mut buf).unwrap();
        assert_eq!(n, encoded_len(head, host, body));
        let mut hdrs = [httparse::EMPTY_HEADER; 16];
        let mut req = httparse::Request::new(&mut hdrs);
        assert_eq!(req.parse(&buf[..n]).unwrap(), httparse::Status::Complete(n));
        assert_eq!(req.method, Some(head.method.as_str()));
        assert_eq!(req.path, Some(head.path));
        assert_eq!(req.version, Some(1));
        let mut host_value = heapless::String::<64>::new();
        host_value.push_str(host.name).unwrap();
        if let Some(p) = host.port {
            core::fmt::write(&mut host_value, format_args!(":{p}")).unwrap();
        }
        assert_eq!(req.headers[0].name, "Host");
        assert_eq!(req.headers[0].value, host_value.as_bytes());
        let caller: heapless::Vec<_, 16> = head
            .headers
            .iter()
            .filter(|(k, _)| {
                !k.eq_ignore_ascii_case("host") && !k.eq_ignore_ascii_case("content-length")
            })
            .collect();
        for (i, (k, v)) in caller.iter().enumerate() {
            assert_eq!(req.headers[1 + i].name, *k);
            assert_eq!(req.headers[1 + i].value, v.as_bytes());
        }
        let rest = &req.headers[1 + caller.len()..];
        match body {
            BodyFraming::Length(0) if !head.method.anticipates_body() => assert!(rest.is_empty()),
            BodyFraming::Length(len) => {
                assert_eq!(rest.len(), 1);
                assert_eq!(rest[0].name, "Content-Length");
                assert_eq!(rest[0].value, Digits::new(len).as_bytes());
            }
            BodyFraming::Chunked => {
                assert_eq!(rest.len(), 1);
                assert_eq!(rest[0].name, "Transfer-Encoding");
                assert_eq!(rest[0].value, b"chunked");
            }
        }
        n
    }

    #[test]
    fn every_method_round_trips_through_httparse() {
        let headers = [
            ("Content-Type", "application/json"),
            ("User-Agent", "rawpost-test/1"),
            ("Accept", "*/*"),
            ("Connection", "keep-alive"),
        ];
        for method in [
            Method::Get,
            Method::Head,
            Method::Post,
            Method::Put,
            Method::Patch,
            Method::Delete,
            Method::Options,
        ] {
            for body in [
                BodyFraming::Length(0),
                BodyFraming::Length(17),
                BodyFraming::Chunked,
            ] {
                for host in [HOST, HOST.with_port(8443), Host::new("[::1]").with_port(80)] {
                    let head = RequestHead {
                        method,
                        path: "/oauth/token?scope=a%20b&x=1",
                        headers: &headers,
                    };
                    roundtrip(&head, &host, body);
                }
            }
        }
    }

    #[test]
    fn exact_bytes_of_a_post() {
        let head = RequestHead {
            method: Method::Post,
            path: "/oauth/token",
            headers: &[("Content-Type", "application/json")],
        };
        let mut buf = [0u8; 128];
        let n = encode(&head, &HOST, BodyFraming::Length(42), &mut buf).unwrap();
        assert_eq!(
            &buf[..n],
            b"POST /oauth/token HTTP/1.1\r\nHost: api.example.com\r\nContent-Type: application/json\r\nContent-Length: 42\r\n\r\n"
        );
    }

    #[test]
    fn empty_post_sends_content_length_zero_but_get_does_not() {
        let mut buf = [0u8; 128];
        let post = RequestHead {
            method: Method::Post,
            path: "/",
            headers: &[],
        };
        let n = encode(&post, &HOST, BodyFraming::Length(0), &mut buf).unwrap();
        assert!(buf[..n].ends_with(b"Content-Length: 0\r\n\r\n"));
        let get = RequestHead {
            method: Method::Get,
            ..post
        };
        let n = encode(&get, &HOST, BodyFraming::Length(0), &mut buf).unwrap();
        assert_eq!(
            &buf[..n],
            b"GET / HTTP/1.1\r\nHost: api.example.com\r\n\r\n"
        );
    }

    #[test]
    fn matching_caller_host_and_length_are_written_once() {
        let head = RequestHead {
            method: Method::Post,
            path: "/",
            headers: &[("host", "API.example.com:8080"), ("content-length", "3")],
        };
        let host = HOST.with_port(8080);
        let n = roundtrip(&head, &host, BodyFraming::Length(3));
        let mut buf = [0u8; 128];
        encode(&head, &host, BodyFraming::Length(3), &mut buf).unwrap();
        assert_eq!(
            &buf[..n],
            b"POST / HTTP/1.1\r\nHost: api.example.com:8080\r\nContent-Length: 3\r\n\r\n"
        );
    }

    #[test]
    fn buffer_too_small_says_how_much_is_needed() {
        let head = RequestHead {
            method: Method::Post,
            path: "/oauth/token",
            headers: &[("Accept", "*/*")],
        };
        let needed = encoded_len(&head, &HOST, BodyFraming::Length(5));
        let mut buf = [0u8; 512];
        for len in 0..needed {
            assert_eq!(
                encode(&head, &HOST, BodyFraming::Length(5), &mut buf[..len]),
                Err(RequestError::BufferTooSmall { needed })
            );
        }
        assert_eq!(
            encode(&head, &HOST, BodyFraming::Length(5), &mut buf[..needed]),
            Ok(needed)
        );
    }

    fn check(
        path: &str,
        host: Host<'_>,
        headers: &[(&str, &str)],
        body: BodyFraming,
    ) -> Result<(), RequestError> {
        validate(
            &RequestHead {
                method: Method::Post,
                path,
                headers,
            },
            &host,
            body,
        )
    }

    #[test]
    fn injection_attempts_are_rejected() {
        let l = BodyFraming::Length(0);
        use RequestError::*;
        for path in [
            "",
            "x",
            "/a b",
            "/a\r\nX: y",
            "/a\nb",
            "/a\0",
            "/a#frag",
            "/caf\u{e9}",
            "/\t",
        ] {
            assert_eq!(check(path, HOST, &[], l), Err(InvalidPath), "{path:?}");
        }
        for host in [
            "",
            "a b",
            "evil.com\r\nX: y",
            "a/b",
            "user@host",
            "a\0",
            "[]",
            "[::1",
            "h:80",
        ] {
            assert_eq!(
                check("/", Host::new(host), &[], l),
                Err(InvalidHost),
                "{host:?}"
            );
        }
        for name in ["", "X Y", "X:Y", "X\r\nY", "X\0", "(X)", "X\u{e9}"] {
            assert_eq!(
                check("/", HOST, &[(name, "v")], l),
                Err(InvalidHeaderName),
                "{name:?}"
            );
        }
        for value in [
            "a\r\nX-Evil: 1",
            "a\rb",
            "a\nb",
            "a\0b",
            "a\x7fb",
            "\x1b[31m",
        ] {
            assert_eq!(
                check("/", HOST, &[("X", value)], l),
                Err(InvalidHeaderValue),
                "{value:?}"
            );
        }
        // Tabs and non-ASCII (obs-text) are valid in values.
        assert_eq!(check("/", HOST, &[("X", "a\tb caf\u{e9}")], l), Ok(()));
        assert_eq!(
            check("/", HOST, &[("Host", "other.example.com")], l),
            Err(ConflictingHost)
        );
        assert_eq!(
            check("/", HOST, &[("Host", "api.example.com:443")], l),
            Err(ConflictingHost)
        );
        assert_eq!(
            check(
                "/",
                HOST.with_port(8080),
                &[("Host", "api.example.com:80")],
                l
            ),
            Err(ConflictingHost)
        );
        assert_eq!(
            check("/", HOST, &[("Content-Length", "1")], l),
            Err(ConflictingContentLength)
        );
        assert_eq!(
            check("/", HOST, &[("Content-Length", "0")], BodyFraming::Chunked),
            Err(ConflictingContentLength)
        );
        assert_eq!(
            check("/", HOST, &[("Transfer-Encoding", "chunked")], l),
            Err(TransferEncodingNotAllowed)
        );
    }

    #[test]
    fn a_head_encoded_in_parts_is_the_same_head() {
        let head = RequestHead {
            method: Method::Post,
            path: "/oauth/token?x=1",
            headers: &[("Content-Type", "application/json"), ("Accept", "*/*")],
        };
        let body = BodyFraming::Length(123);
        let mut whole = [0u8; 256];
        let n = encode(&head, &HOST, body, &mut whole).unwrap();
        for window in 1..=n {
            let mut parts = Vec::new();
            let mut offset = 0;
            while offset < n {
                let mut out = vec![0u8; window];
                let len = encode_part(&head, &HOST, body, &mut out, offset);
                assert_eq!(len, n);
                let got = window.min(n - offset);
                parts.extend_from_slice(&out[..got]);
                offset += got;
            }
            assert_eq!(parts, &whole[..n], "window {window}");
        }
    }

    #[test]
    fn digits() {
        for n in [0u64, 7, 10, 99, 1000, 65535, u64::MAX] {
            let mut s = heapless::String::<24>::new();
            core::fmt::write(&mut s, format_args!("{n}")).unwrap();
            assert_eq!(Digits::new(n).as_bytes(), s.as_bytes());
        }
    }
}
