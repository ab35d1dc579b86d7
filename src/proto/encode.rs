//! Request encoding: the head (validated while it is copied, in one pass) and the chunk frames
//! of a streamed body.
//!
//! [`encode`] never produces a head that would be rejected: every byte of the path, host, names
//! and values is checked against the RFC 9110/9112 grammar as it is copied (one table lookup a
//! byte, [`CLASS`]). On an error the output buffer holds scratch bytes and nothing may be sent.
//! Only `Host` and `Content-Length` (or `Transfer-Encoding: chunked` for a streamed body) are
//! added; nothing else.

use core::ops::Range;

use crate::error::RequestError;
use crate::request::{Host, Method};

/// Whether a host name is a URI host (RFC 3986 §3.2.2): a non-empty registered name or IPv4
/// address made of unreserved, sub-delimiter and `%` characters, or an IP literal in brackets.
pub(crate) fn valid_host(name: &str) -> bool {
    match name.as_bytes() {
        [] => false,
        [b'[', inner @ .., b']'] => !inner.is_empty() && all_in(inner, IP_LITERAL),
        name => all_in(name, REG_NAME),
    }
}

/// Whether a caller-supplied `Host` header value names this host (case-insensitively).
fn host_matches(host: &Host<'_>, value: &[u8]) -> bool {
    let value = crate::proto::text::trim_ows(value);
    let name = host.name.as_bytes();
    let Some((head, rest)) = value.split_at_checked(name.len()) else {
        return false;
    };
    if !head.eq_ignore_ascii_case(name) {
        return false;
    }
    match (host.port, rest) {
        (None, []) => true,
        (Some(p), [b':', digits @ ..]) => Digits::dec(u64::from(p)).as_bytes() == digits,
        _ => false,
    }
}

/// How the request body is framed on the wire.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
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

/// Byte classes of the request grammar, one bit each; see [`CLASS`].
pub const TCHAR: u8 = 1;
/// A byte allowed in a field value: VCHAR, SP, HTAB and obs-text (RFC 9110 §5.5).
pub const FIELD_VALUE: u8 = 2;
/// A byte allowed in an origin-form target: visible ASCII except `#` (RFC 9112 §3.2.1;
/// non-ASCII must be percent-encoded).
pub const TARGET: u8 = 4;
/// A byte allowed in a registered name or IPv4 address (RFC 3986 §3.2.2: unreserved,
/// sub-delims and `%`).
pub const REG_NAME: u8 = 8;
/// A byte allowed inside the brackets of an IP literal (hex digits, `:` and `.`).
pub const IP_LITERAL: u8 = 16;

const fn class_of(c: u8) -> u8 {
    let alnum = c.is_ascii_alphanumeric();
    let mut class = 0;
    if alnum
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
    {
        class |= TCHAR;
    }
    if c == b'\t' || (c >= 0x20 && c != 0x7f) {
        class |= FIELD_VALUE;
    }
    if c.is_ascii_graphic() && c != b'#' {
        class |= TARGET;
    }
    if alnum
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
    {
        class |= REG_NAME;
    }
    if c.is_ascii_hexdigit() || c == b':' || c == b'.' {
        class |= IP_LITERAL;
    }
    class
}

/// The class bits of every byte value, so that validating a byte is one lookup. Built from the
/// grammar at compile time by `class_of`; a test compares it with the RFC definitions for all
/// 256 values.
pub static CLASS: [u8; 256] = {
    let mut table = [0u8; 256];
    let mut i = 0;
    while i < 256 {
        table[i] = class_of(i as u8);
        i += 1;
    }
    table
};

fn all_in(bytes: &[u8], class: u8) -> bool {
    bytes
        .iter()
        .fold(true, |ok, &c| ok & (CLASS[usize::from(c)] & class != 0))
}

/// 10⁰ to 10¹⁹.
const POW10: [u64; 20] = {
    let mut table = [1u64; 20];
    let mut i = 1;
    while i < 20 {
        table[i] = table[i - 1] * 10;
        i += 1;
    }
    table
};

/// Decimal or hexadecimal digits of a `u64`, formatted without allocation or a runtime base.
pub(crate) struct Digits {
    buf: [u8; 20],
    start: u8,
}

impl Digits {
    /// Decimal digits. Values that fit 32 bits (every length a device sends) use 32-bit
    /// division, which riscv32 does in hardware; larger ones subtract powers of ten, so no
    /// 64-bit division routine is linked in.
    pub(crate) fn dec(n: u64) -> Self {
        let mut buf = [0u8; 20];
        let mut start = buf.len();
        if let Ok(mut small) = u32::try_from(n) {
            loop {
                start -= 1;
                if let Some(d) = buf.get_mut(start) {
                    *d = b'0' + (small % 10) as u8;
                }
                small /= 10;
                if small == 0 {
                    break;
                }
            }
        } else {
            // More than 32 bits: at least ten digits. Each digit counts how many times its
            // power of ten can be taken away (at most nine).
            let mut rest = n;
            let powers = POW10.iter().rev().skip_while(|&&p| p > n);
            let digits = powers.clone().count();
            start = buf.len() - digits;
            for (slot, &power) in buf.iter_mut().skip(start).zip(powers) {
                let mut digit = b'0';
                while rest >= power {
                    rest -= power;
                    digit += 1;
                }
                *slot = digit;
            }
        }
        Self {
            buf,
            start: start as u8,
        }
    }

    /// Lower-case hexadecimal digits.
    pub(crate) fn hex(mut n: u64) -> Self {
        let mut buf = [0u8; 20];
        let mut start = buf.len();
        loop {
            start -= 1;
            buf[start] = b"0123456789abcdef"[(n & 0xf) as usize];
            n >>= 4;
            if n == 0 {
                break;
            }
        }
        Self {
            buf,
            start: start as u8,
        }
    }

    pub(crate) fn as_bytes(&self) -> &[u8] {
        self.buf.get(usize::from(self.start)..).unwrap_or(&[])
    }
}

/// Where encoded bytes go: copied into `buf` while they fit, only counted past its end (so
/// that the length of a head that does not fit is known). Every byte is checked against its
/// class on the way.
struct Window<'b> {
    buf: &'b mut [u8],
    pos: usize,
    /// Whether every byte checked so far was in its class.
    valid: bool,
}

impl Window<'_> {
    /// Checks every byte of `bytes` against `class` (`0`: no check) and copies it with one block
    /// copy when it fits.
    fn put(&mut self, bytes: &[u8], class: u8) {
        if class != 0 {
            self.valid &= all_in(bytes, class);
        }
        let start = self.pos;
        self.pos += bytes.len();
        if let Some(dst) = self.buf.get_mut(start..self.pos) {
            dst.copy_from_slice(bytes);
        }
    }
}

/// What a caller's header field means to the encoder: most are copied as they are; `Host` and
/// `Content-Length` are checked against the automatic ones and written once, in their place;
/// `Transfer-Encoding` is refused. Names are compared only when their length matches.
fn special(name: &[u8]) -> Option<Special> {
    match name.len() {
        4 if name.eq_ignore_ascii_case(b"host") => Some(Special::Host),
        14 if name.eq_ignore_ascii_case(b"content-length") => Some(Special::ContentLength),
        17 if name.eq_ignore_ascii_case(b"transfer-encoding") => Some(Special::TransferEncoding),
        _ => None,
    }
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Special {
    Host,
    ContentLength,
    TransferEncoding,
}

/// Writes the head into `w`, validating every part on the way; returns the first fault.
fn emit(
    head: &RequestHead<'_>,
    host: &Host<'_>,
    body: BodyFraming,
    w: &mut Window<'_>,
) -> Result<(), RequestError> {
    w.put(head.method.as_str().as_bytes(), 0);
    w.put(b" ", 0);
    let path = head.path.as_bytes();
    w.put(path, TARGET);
    if !w.valid || path.first() != Some(&b'/') {
        return Err(RequestError::InvalidPath);
    }
    w.put(b" HTTP/1.1\r\nHost: ", 0);
    host.validate()?;
    w.put(host.name.as_bytes(), 0);
    if let Some(port) = host.port {
        w.put(b":", 0);
        w.put(Digits::dec(u64::from(port)).as_bytes(), 0);
    }
    w.put(b"\r\n", 0);
    for &(name, value) in head.headers {
        let (name, value) = (name.as_bytes(), value.as_bytes());
        match special(name) {
            None => {
                w.put(name, TCHAR);
                if !w.valid || name.is_empty() {
                    return Err(RequestError::InvalidHeaderName);
                }
                w.put(b": ", 0);
                w.put(value, FIELD_VALUE);
                if !w.valid {
                    return Err(RequestError::InvalidHeaderValue);
                }
                w.put(b"\r\n", 0);
            }
            Some(which) => {
                if !all_in(value, FIELD_VALUE) {
                    return Err(RequestError::InvalidHeaderValue);
                }
                match which {
                    Special::Host if !host_matches(host, value) => {
                        return Err(RequestError::ConflictingHost)
                    }
                    Special::ContentLength => match body {
                        BodyFraming::Length(n)
                            if crate::proto::text::trim_ows(value) == Digits::dec(n).as_bytes() => {
                        }
                        _ => return Err(RequestError::ConflictingContentLength),
                    },
                    Special::TransferEncoding => {
                        return Err(RequestError::TransferEncodingNotAllowed)
                    }
                    Special::Host => {}
                }
            }
        }
    }
    match body {
        BodyFraming::Length(0) if !head.method.anticipates_body() => {}
        BodyFraming::Length(n) => {
            w.put(b"Content-Length: ", 0);
            w.put(Digits::dec(n).as_bytes(), 0);
            w.put(b"\r\n", 0);
        }
        BodyFraming::Chunked => w.put(b"Transfer-Encoding: chunked\r\n", 0),
    }
    w.put(b"\r\n", 0);
    Ok(())
}

/// Checks a request head and the caller's headers against the automatic ones, and returns the
/// length of its encoding. Nothing is written.
pub fn validate(
    head: &RequestHead<'_>,
    host: &Host<'_>,
    body: BodyFraming,
) -> Result<usize, RequestError> {
    let mut w = Window {
        buf: &mut [],
        pos: 0,
        valid: true,
    };
    emit(head, host, body, &mut w)?;
    Ok(w.pos)
}

/// Validates a request head and encodes it into `out` in one pass.
///
/// Returns the head's length, or the first fault; when the head does not fit,
/// [`RequestError::BufferTooSmall`] with the number of bytes needed. On an error, `out` holds
/// scratch bytes that must not be sent. A caller's `Host` or `Content-Length` that equals the
/// automatic one is written once, in the automatic place (`Host` first, `Content-Length`
/// last).
pub fn encode(
    head: &RequestHead<'_>,
    host: &Host<'_>,
    body: BodyFraming,
    out: &mut [u8],
) -> Result<usize, RequestError> {
    let room = out.len();
    let mut w = Window {
        buf: out,
        pos: 0,
        valid: true,
    };
    emit(head, host, body, &mut w)?;
    if w.pos > room {
        return Err(RequestError::BufferTooSmall { needed: w.pos });
    }
    Ok(w.pos)
}

/// The length of this request's head with the longest `Content-Length`, from the lengths of
/// its parts alone (nothing is checked, so it is exact for a head that [`encode`] accepts):
/// where a body written into the buffer before its head may start.
pub fn max_len(head: &RequestHead<'_>, host: &Host<'_>) -> usize {
    let fields: usize = head
        .headers
        .iter()
        .filter(|(name, _)| special(name.as_bytes()).is_none())
        .map(|(name, value)| name.len() + value.len() + 4)
        .sum();
    let port = host
        .port
        .map_or(0, |p| 1 + Digits::dec(u64::from(p)).as_bytes().len());
    head.method.as_str().len()
        + 1
        + head.path.len()
        + b" HTTP/1.1\r\nHost: \r\n".len()
        + host.name.len()
        + port
        + fields
        + content_length_line(head.method, u64::MAX)
        + 2
}

/// How many bytes the `Content-Length` line of a head with this method and body length takes
/// (none for an empty body of a method that does not anticipate one).
pub fn content_length_line(method: Method, len: u64) -> usize {
    if len == 0 && !method.anticipates_body() {
        0
    } else {
        b"Content-Length: \r\n".len() + Digits::dec(len).as_bytes().len()
    }
}

/// The last chunk and the empty trailer section that end a chunked request body.
pub const LAST_CHUNK: &[u8] = b"0\r\n\r\n";

/// The most framing bytes a chunk needs: 16 hex digits, CRLF, and CRLF after the data.
pub const CHUNK_OVERHEAD: usize = 16 + 2 + 2;

/// Frames as much of `data` as fits in `buf[space]` as one chunk (`size CRLF data CRLF`).
/// Returns the frame's range in `buf` and how many bytes of `data` it carries.
///
/// `data` must not be empty (an empty chunk would end the body).
pub fn frame_chunk(
    buf: &mut [u8],
    space: Range<usize>,
    data: &[u8],
) -> Result<(Range<usize>, usize), RequestError> {
    let start = space.start;
    let frame = buf.get_mut(space).unwrap_or(&mut []);
    let room = frame.len().saturating_sub(CHUNK_OVERHEAD);
    if room == 0 || data.is_empty() {
        return Err(RequestError::BufferTooSmall {
            needed: start + CHUNK_OVERHEAD + 1,
        });
    }
    let n = data.len().min(room);
    let digits = Digits::hex(n as u64);
    let d = digits.as_bytes().len();
    frame[..d].copy_from_slice(digits.as_bytes());
    frame[d..d + 2].copy_from_slice(b"\r\n");
    frame[d + 2..d + 2 + n].copy_from_slice(&data[..n]);
    frame[d + 2 + n..d + 4 + n].copy_from_slice(b"\r\n");
    Ok((start..start + d + 4 + n, n))
}

#[cfg(test)]
mod tests {
    use super::*;

    const HOST: Host<'static> = Host::new("api.example.com");

    fn roundtrip(head: &RequestHead<'_>, host: &Host<'_>, body: BodyFraming) -> usize {
        let len = validate(head, host, body).unwrap();
        let mut buf = [0u8; 512];
        let n = encode(head, host, body, &mut buf).unwrap();
        assert_eq!(n, len);
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
                assert_eq!(rest[0].value, Digits::dec(len).as_bytes());
            }
            BodyFraming::Chunked => {
                assert_eq!(rest.len(), 1);
                assert_eq!(rest[0].name, "Transfer-Encoding");
                assert_eq!(rest[0].value, b"chunked");
            }
        }
        n
    }

    const METHODS: [Method; 7] = [
        Method::Get,
        Method::Head,
        Method::Post,
        Method::Put,
        Method::Patch,
        Method::Delete,
        Method::Options,
    ];

    #[test]
    fn every_method_round_trips_through_httparse() {
        let headers = [
            ("Content-Type", "application/json"),
            ("User-Agent", "rawpost-test/1"),
            ("Accept", "*/*"),
            ("Connection", "keep-alive"),
        ];
        for method in METHODS {
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
    fn idempotent_methods() {
        let idempotent: Vec<_> = METHODS.iter().filter(|m| m.is_idempotent()).collect();
        assert_eq!(
            idempotent,
            [
                &Method::Get,
                &Method::Head,
                &Method::Put,
                &Method::Delete,
                &Method::Options
            ]
        );
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
        let needed = validate(&head, &HOST, BodyFraming::Length(5)).unwrap();
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
        let head = RequestHead {
            method: Method::Post,
            path,
            headers,
        };
        let validated = validate(&head, &host, body).map(|_| ());
        // Encoding into any buffer, even one too small to hold the fault, finds the same fault.
        for room in [0, 3, 512] {
            let mut buf = vec![0u8; room];
            let encoded = match encode(&head, &host, body, &mut buf) {
                Err(RequestError::BufferTooSmall { .. }) | Ok(_) => Ok(()),
                Err(e) => Err(e),
            };
            assert_eq!(encoded, validated, "{path:?} {headers:?} room {room}");
        }
        validated
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
            // Also in the fields rawpost compares with its own.
            assert_eq!(
                check("/", HOST, &[("Host", value)], l),
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

    /// The class table against the RFC grammar, written out independently, for all 256 bytes.
    #[test]
    fn class_table_is_the_grammar() {
        for c in 0..=255u8 {
            let tchar = c.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&c);
            // field-vchar = VCHAR / obs-text, plus SP and HTAB between them.
            let value = (0x21..=0x7e).contains(&c) || c >= 0x80 || c == b' ' || c == b'\t';
            let target = (0x21..=0x7e).contains(&c) && c != b'#';
            let reg_name = c.is_ascii_alphanumeric() || b"-._~%!$&'()*+,;=".contains(&c);
            let ip = c.is_ascii_hexdigit() || c == b':' || c == b'.';
            let class = CLASS[usize::from(c)];
            assert_eq!(class & TCHAR != 0, tchar, "tchar {c:#x}");
            assert_eq!(class & FIELD_VALUE != 0, value, "value {c:#x}");
            assert_eq!(class & TARGET != 0, target, "target {c:#x}");
            assert_eq!(class & REG_NAME != 0, reg_name, "reg-name {c:#x}");
            assert_eq!(class & IP_LITERAL != 0, ip, "ip-literal {c:#x}");
        }
    }

    /// `max_len` is the head with the longest Content-Length, and never less than the head
    /// with any framing.
    #[test]
    fn max_len_bounds_every_head() {
        for (method, headers) in [
            (Method::Post, &[][..]),
            (Method::Get, &[("Accept", "*/*"), ("Host", "h:8080")][..]),
            (
                Method::Put,
                &[("Content-Length", "18446744073709551615")][..],
            ),
        ] {
            let head = RequestHead {
                method,
                path: "/a?b=c",
                headers,
            };
            let host = Host::new("h").with_port(8080);
            assert_eq!(
                validate(&head, &host, BodyFraming::Length(u64::MAX)).ok(),
                Some(max_len(&head, &host)),
                "{method:?}"
            );
            for framing in [
                BodyFraming::Length(0),
                BodyFraming::Length(u64::MAX),
                BodyFraming::Chunked,
            ] {
                if let Ok(n) = validate(&head, &host, framing) {
                    assert!(n <= max_len(&head, &host), "{method:?} {framing:?}");
                }
            }
        }
    }

    /// The `Content-Length` line's length is what `validate` counts for it.
    #[test]
    fn content_length_line_is_what_the_head_adds() {
        for method in [Method::Post, Method::Get, Method::Put, Method::Head] {
            let head = RequestHead {
                method,
                path: "/x",
                headers: &[],
            };
            for len in [0u64, 1, 9, 10, 99_999, u64::MAX] {
                let with = validate(&head, &HOST, BodyFraming::Length(len)).unwrap();
                let without = validate(&head, &HOST, BodyFraming::Chunked).unwrap()
                    - b"Transfer-Encoding: chunked\r\n".len();
                assert_eq!(
                    with - without,
                    content_length_line(method, len),
                    "{method:?} {len}"
                );
            }
        }
    }

    /// A head that does not fit is counted, and nothing past the buffer is written.
    #[test]
    fn a_head_too_large_is_counted() {
        let head = RequestHead {
            method: Method::Post,
            path: "/oauth/token",
            headers: &[("Accept", "*/*")],
        };
        let n = validate(&head, &HOST, BodyFraming::Length(3)).unwrap();
        for room in 0..n {
            let mut out = vec![0u8; room];
            assert_eq!(
                encode(&head, &HOST, BodyFraming::Length(3), &mut out),
                Err(RequestError::BufferTooSmall { needed: n })
            );
        }
    }

    #[test]
    fn digits() {
        for n in [
            0u64,
            7,
            10,
            15,
            16,
            99,
            255,
            1000,
            65535,
            4_294_967_295,
            4_294_967_296,
            10_000_000_000,
            99_999_999_999,
            10u64.pow(19),
            u64::MAX,
        ] {
            assert_eq!(Digits::dec(n).as_bytes(), format!("{n}").as_bytes());
            assert_eq!(Digits::hex(n).as_bytes(), format!("{n:x}").as_bytes());
        }
    }

    #[test]
    fn chunks_decode_back() {
        use crate::proto::decode::ChunkedDecoder;
        let mut buf = [0u8; 64];
        let data: Vec<u8> = (0..100u8).collect();
        let mut wire = Vec::new();
        let mut sent = 0;
        while sent < data.len() {
            let (range, n) = frame_chunk(&mut buf, 10..64, &data[sent..]).unwrap();
            assert_eq!(n, (data.len() - sent).min(64 - 10 - CHUNK_OVERHEAD));
            wire.extend_from_slice(&buf[range]);
            sent += n;
        }
        wire.extend_from_slice(LAST_CHUNK);
        assert!(wire.starts_with(b"22\r\n\0\x01"));
        let mut d = ChunkedDecoder::new();
        let mut out = vec![0u8; 200];
        let (used, produced) = d.decode(&wire, &mut out).unwrap();
        assert!(d.at_trailers());
        assert_eq!(&out[..produced], &data[..]);
        assert_eq!(&wire[used..], b"\r\n");
    }

    #[test]
    fn chunk_buffer_too_small() {
        let mut buf = [0u8; 21];
        assert_eq!(frame_chunk(&mut buf, 0..21, b"ab"), Ok((0..6, 1)));
        assert_eq!(&buf[..6], b"1\r\na\r\n");
        assert_eq!(
            frame_chunk(&mut buf, 1..21, b"ab"),
            Err(RequestError::BufferTooSmall { needed: 22 })
        );
    }
}
