//! Response heads: finding the end incrementally, parsing once with httparse, and reading
//! header fields back out of the buffer.
//!
//! Nothing here panics on peer input: every index is checked, every malformed byte is a
//! [`ResponseError`]. No offset depends on where httparse's `&str`s point: the status line and
//! the fields are located in the bytes themselves.

use crate::error::ResponseError;
use crate::proto::framing::{self, Framing};

/// The most header fields a response head (or trailer section) may have.
pub const MAX_HEADERS: usize = 48;

/// Finds the end of a head (the empty line) across many reads without rescanning, and notes
/// whether any line is an obsolete line folding, so that unfolding is done only when needed.
///
/// Feed it the whole head-so-far each time; it resumes where it stopped and jumps from line
/// feed to line feed. A line ends with LF (an optional CR before it is part of the line end),
/// as httparse accepts. Empty lines before a status line are skipped, as httparse does.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct HeadScanner {
    pos: usize,
    /// `pos` is the first byte of a line.
    line_start: bool,
    /// No non-empty line has been seen yet (a head, not a trailer section).
    before_start: bool,
    /// A line after the first starts with SP or HTAB.
    folded: bool,
}

impl HeadScanner {
    /// A scanner at the start of a head (a status line comes first).
    pub const fn new() -> Self {
        Self {
            pos: 0,
            line_start: true,
            before_start: true,
            folded: false,
        }
    }

    /// A scanner at the start of a line, for a trailer section, which may be empty (just CRLF).
    pub const fn at_line_start() -> Self {
        Self {
            pos: 0,
            line_start: true,
            before_start: false,
            folded: false,
        }
    }

    /// Whether a line of the head found so far is an obsolete line folding.
    pub const fn folded(&self) -> bool {
        self.folded
    }

    /// Scans `buf` (everything received of this head so far) from where the last call stopped.
    /// Returns the head's length, empty line included, once it is complete.
    pub fn scan(&mut self, buf: &[u8]) -> Option<usize> {
        loop {
            if self.line_start {
                let end = match buf.get(self.pos..)? {
                    [] => return None,
                    [b'\n', ..] => Some(self.pos + 1),
                    [b'\r'] => return None,
                    [b'\r', b'\n', ..] => Some(self.pos + 2),
                    [b' ' | b'\t', ..] => {
                        self.folded |= !self.before_start;
                        None
                    }
                    _ => None,
                };
                match end {
                    Some(end) if self.before_start => {
                        // An empty line before the status line: skipped.
                        self.pos = end;
                        continue;
                    }
                    Some(end) => return Some(end),
                    None => {}
                }
                self.line_start = false;
                self.before_start = false;
            }
            let rest = buf.get(self.pos..)?;
            match rest.iter().position(|&c| c == b'\n') {
                Some(i) => {
                    self.pos += i + 1;
                    self.line_start = true;
                }
                None => {
                    self.pos = buf.len();
                    return None;
                }
            }
        }
    }
}

/// Replaces each obsolete line folding (a line starting with SP or HTAB) and the line break
/// before it with spaces, in place (RFC 9112 §5.2), so every field is then on one line.
/// `first_line_is_start` says whether the first line is a status line, which cannot be folded.
pub fn unfold(head: &mut [u8], first_line_is_start: bool) -> Result<(), ResponseError> {
    // Empty lines before a status line are not part of it (httparse skips them).
    let skip = if first_line_is_start {
        head.iter()
            .position(|&c| c != b'\r' && c != b'\n')
            .unwrap_or(head.len())
    } else {
        0
    };
    let Some(head) = head.get_mut(skip..) else {
        return Ok(());
    };
    let mut line_start = 0;
    let mut on_first_line = true;
    for i in 0..head.len() {
        if head.get(i) != Some(&b'\n') {
            continue;
        }
        if !matches!(head.get(i + 1), Some(b' ' | b'\t')) {
            line_start = i + 1;
            on_first_line = false;
            continue;
        }
        // The empty line ends the head: what follows is not part of it.
        if head
            .get(line_start..i)
            .is_some_and(|l| l.iter().all(|&c| c == b'\r'))
        {
            return Ok(());
        }
        if on_first_line && first_line_is_start {
            return Err(ResponseError::MalformedStatusLine);
        }
        if let Some(lf) = head.get_mut(i) {
            *lf = b' ';
        }
        if let Some(cr @ b'\r') = i.checked_sub(1).and_then(|j| head.get_mut(j)) {
            *cr = b' ';
        }
    }
    Ok(())
}

/// What the client knows about a parsed response head. Small and `Copy`: the header fields stay
/// in the buffer and are read back when asked for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct ResponseHead {
    pub(crate) minor_version: u8,
    pub(crate) status: u16,
    /// The reason phrase, as a range of the head.
    pub(crate) reason: (u16, u16),
    /// Where the header fields start (after the status line).
    pub(crate) fields_start: u16,
    /// The head's length, empty line included.
    pub(crate) len: u16,
    pub(crate) framing: Framing,
    pub(crate) keep_alive: bool,
    /// The server's idle timeout in seconds (`Keep-Alive: timeout=N`), when it said.
    pub(crate) idle_timeout: Option<u32>,
}

/// The class of a status code (RFC 9110 §15), the first thing a client must understand.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum StatusClass {
    /// `1xx`: interim (rawpost skips these, and returns only the final response).
    Informational,
    /// `2xx`
    Success,
    /// `3xx`
    Redirection,
    /// `4xx`
    ClientError,
    /// `5xx`, and every code outside 100–599 (RFC 9110 §15: a client processes an invalid
    /// status code as a 5xx).
    ServerError,
}

impl StatusClass {
    /// The class of `status`.
    pub const fn of(status: u16) -> Self {
        match status {
            100..=199 => Self::Informational,
            200..=299 => Self::Success,
            300..=399 => Self::Redirection,
            400..=499 => Self::ClientError,
            _ => Self::ServerError,
        }
    }
}

impl ResponseHead {
    /// No head (what a response's accessors see if the core lost its head, which cannot
    /// happen while a response exists).
    pub(crate) const NONE: Self = Self {
        minor_version: 1,
        status: 0,
        reason: (0, 0),
        fields_start: 0,
        len: 0,
        framing: Framing::Empty,
        keep_alive: false,
        idle_timeout: None,
    };

    /// The status code as the server sent it: three digits, `000` to `999` (see
    /// [`ResponseHead::status_class`] for codes outside 100–599).
    pub const fn status(&self) -> u16 {
        self.status
    }

    /// The class of the status code; codes outside 100–599 are [`StatusClass::ServerError`].
    pub const fn status_class(&self) -> StatusClass {
        StatusClass::of(self.status)
    }

    /// The minor HTTP version: 0 for HTTP/1.0, 1 for HTTP/1.1 (and for any higher `HTTP/1.x`,
    /// which is read as HTTP/1.1, RFC 9110 §2.5).
    pub const fn minor_version(&self) -> u8 {
        self.minor_version
    }

    /// How the body is delimited.
    pub const fn framing(&self) -> Framing {
        self.framing
    }

    /// Whether the connection can carry another request once this body has been read.
    pub const fn keeps_connection(&self) -> bool {
        self.keep_alive
    }
}

fn map_httparse(e: httparse::Error) -> ResponseError {
    match e {
        httparse::Error::HeaderName | httparse::Error::HeaderValue | httparse::Error::NewLine => {
            ResponseError::InvalidHeader
        }
        httparse::Error::TooManyHeaders => ResponseError::TooManyHeaders,
        _ => ResponseError::MalformedStatusLine,
    }
}

/// The range of the status line (without its line end) and where the next line starts.
fn status_line(head: &[u8]) -> (usize, usize, usize) {
    let start = head
        .iter()
        .position(|&c| c != b'\r' && c != b'\n')
        .unwrap_or(head.len());
    let rest = head.get(start..).unwrap_or(&[]);
    let (line, next) = match rest.iter().position(|&c| c == b'\n') {
        Some(i) => (rest.get(..i).unwrap_or(&[]), start + i + 1),
        None => (rest, head.len()),
    };
    let line = line.strip_suffix(b"\r").unwrap_or(line);
    (start, start + line.len(), next)
}

/// Parses a complete head (as found by [`HeadScanner`]) in place: unfolds obsolete line
/// folding when the scanner saw some, checks the head with httparse and decides the body
/// framing.
///
/// `head` must be exactly the head, empty line included, and at most `u16::MAX` bytes.
pub fn parse(
    head: &mut [u8],
    folded: bool,
    request_was_head: bool,
) -> Result<ResponseHead, ResponseError> {
    if head.len() > usize::from(u16::MAX) {
        return Err(ResponseError::HeadTooLarge);
    }
    if folded {
        unfold(head, true)?;
    }
    let (line, line_end, fields_start) = status_line(head);
    // RFC 9110 §2.5: a higher minor version of HTTP/1 is processed as HTTP/1.1 (httparse knows
    // only 1.0 and 1.1, so the digit is read as 1).
    let version = head.get(line..line + 9);
    match version {
        Some([b'H', b'T', b'T', b'P', b'/', b'1', b'.', b'2'..=b'9', b' ']) => {
            head[line + 7] = b'1'
        }
        Some([b'H', b'T', b'T', b'P', b'/', major, b'.', minor, b' '])
            if major.is_ascii_digit() && minor.is_ascii_digit() && *major != b'1' =>
        {
            return Err(ResponseError::UnsupportedVersion)
        }
        _ => {}
    }
    crate::trace::response(head);
    let head: &[u8] = head;
    // Left uninitialized: httparse writes each field before it is read.
    let mut fields =
        [const { core::mem::MaybeUninit::<httparse::Header<'_>>::uninit() }; MAX_HEADERS];
    let mut resp = httparse::Response::new(&mut []);
    let len = match httparse::ParserConfig::default().parse_response_with_uninit_headers(
        &mut resp,
        head,
        &mut fields,
    ) {
        Ok(httparse::Status::Complete(n)) if n == head.len() => n,
        Ok(_) => return Err(ResponseError::MalformedStatusLine),
        Err(e) => return Err(map_httparse(e)),
    };
    let (Some(minor_version), Some(status)) = (resp.version, resp.code) else {
        return Err(ResponseError::MalformedStatusLine);
    };
    // "HTTP/1.1 200 " is 13 bytes; the reason phrase is the rest of the line (httparse checked
    // it).
    let reason_start = (line + 13).min(line_end);
    let decision = framing::decide(
        request_was_head,
        status,
        minor_version,
        resp.headers.iter().map(|h| (h.name.as_bytes(), h.value)),
    )?;
    // Offsets fit in u16: the head is at most u16::MAX bytes long (checked above).
    Ok(ResponseHead {
        minor_version,
        status,
        reason: (reason_start as u16, line_end as u16),
        fields_start: fields_start as u16,
        len: len as u16,
        framing: decision.framing,
        keep_alive: decision.keep_alive,
        idle_timeout: decision.idle_timeout,
    })
}

/// Checks a trailer section (as found by [`HeadScanner::at_line_start`]) in place.
pub fn parse_trailers(section: &mut [u8], folded: bool) -> Result<(), ResponseError> {
    if folded {
        unfold(section, false).map_err(|_| ResponseError::InvalidTrailers)?;
    }
    let mut fields = [httparse::EMPTY_HEADER; MAX_HEADERS];
    match httparse::parse_headers(section, &mut fields) {
        Ok(httparse::Status::Complete((n, _))) if n == section.len() => Ok(()),
        _ => Err(ResponseError::InvalidTrailers),
    }
}

/// Iterates the header fields of a head (from its fields' start) or a trailer section that was
/// checked by [`parse`] or [`parse_trailers`], in wire order.
pub fn fields(section: &[u8]) -> Fields<'_> {
    Fields { rest: section }
}

/// One header field of a response, borrowed from the connection's buffer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Header<'a> {
    /// The name, as the server sent it.
    pub name: &'a str,
    /// The value, without leading and trailing white space. It is bytes, not text: HTTP
    /// allows obs-text (bytes 0x80-0xFF) in values.
    pub value: &'a [u8],
}

impl<'a> Header<'a> {
    /// Whether the field has this name (case-insensitive).
    pub fn is(&self, name: &str) -> bool {
        self.name.eq_ignore_ascii_case(name)
    }

    /// The value as text, when it is valid UTF-8.
    pub fn value_str(&self) -> Option<&'a str> {
        core::str::from_utf8(self.value).ok()
    }
}

/// The iterator over a response's header (or trailer) fields, in wire order.
#[derive(Debug, Clone)]
pub struct Fields<'a> {
    rest: &'a [u8],
}

impl<'a> Iterator for Fields<'a> {
    type Item = Header<'a>;

    fn next(&mut self) -> Option<Self::Item> {
        loop {
            let end = self.rest.iter().position(|&c| c == b'\n')?;
            let line = &self.rest[..end];
            self.rest = &self.rest[end + 1..];
            let line = line.strip_suffix(b"\r").unwrap_or(line);
            if line.is_empty() {
                self.rest = &[];
                return None;
            }
            // Checked by httparse: every field line is a token, a colon and a value, so the
            // name is ASCII.
            let Some(colon) = line.iter().position(|&c| c == b':') else {
                continue;
            };
            let Ok(name) = core::str::from_utf8(&line[..colon]) else {
                continue;
            };
            return Some(Header {
                name,
                value: crate::proto::text::trim_ows(&line[colon + 1..]),
            });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fields_pairs(section: &[u8]) -> impl Iterator<Item = (&[u8], &[u8])> {
        fields(section).map(|h| (h.name.as_bytes(), h.value))
    }

    #[test]
    fn scanner_finds_the_end_whole_and_byte_by_byte() {
        let cases: &[(&[u8], Option<usize>, bool)] = &[
            (b"HTTP/1.1 200 OK\r\n\r\nbody", Some(19), false),
            (b"HTTP/1.1 200 OK\nA: b\n\nbody", Some(22), false),
            (b"HTTP/1.1 200 OK\r\nA: b\r\n\r\n", Some(25), false),
            (b"HTTP/1.1 200 OK\r\nA: b\r\n", None, false),
            (b"HTTP/1.1 200 OK\r\nA: b\r\n\r", None, false),
            (b"\r\n\r\nHTTP/1.1 200 OK\r\n\r\n", Some(23), false),
            (b"\nHTTP/1.1 200 OK\n\n", Some(18), false),
            (b"HTTP/1.1 200 OK\r\nA: b\r\n c\r\n\r\n", Some(29), true),
            (b"HTTP/1.1 200 OK\r\nA: b\r\n\tc\r\n\r\n", Some(29), true),
            (b"HTTP/1.1 200 OK\r\nA: b c\r\n\r\n", Some(27), false),
        ];
        for &(bytes, want, folded) in cases {
            let mut s = HeadScanner::new();
            assert_eq!(s.scan(bytes), want, "{:?}", String::from_utf8_lossy(bytes));
            if want.is_some() {
                assert_eq!(s.folded(), folded, "{:?}", String::from_utf8_lossy(bytes));
            }
            let mut s = HeadScanner::new();
            let mut got = None;
            for n in 1..=bytes.len() {
                got = s.scan(&bytes[..n]);
                if got.is_some() {
                    break;
                }
            }
            assert_eq!(
                got,
                want,
                "byte by byte {:?}",
                String::from_utf8_lossy(bytes)
            );
            if want.is_some() {
                assert_eq!(s.folded(), folded);
            }
        }
        assert_eq!(HeadScanner::at_line_start().scan(b"\r\nnext"), Some(2));
        assert_eq!(HeadScanner::at_line_start().scan(b"X: 1\r\n\r\n"), Some(8));
    }

    #[test]
    fn scanner_resumes_without_rescanning() {
        let mut s = HeadScanner::new();
        assert_eq!(s.scan(b"HTTP/1.1 200 OK\r\n"), None);
        assert_eq!(s.pos, 17);
        assert_eq!(s.scan(b"HTTP/1.1 200 OK\r\n\r\n"), Some(19));
    }

    fn parse_str(s: &[u8]) -> Result<(ResponseHead, Vec<u8>), ResponseError> {
        let mut v = s.to_vec();
        let mut scanner = HeadScanner::new();
        let len = scanner.scan(&v).expect("a complete head");
        parse(&mut v[..len], scanner.folded(), false).map(|h| (h, v))
    }

    fn reason(h: &ResponseHead, buf: &[u8]) -> Vec<u8> {
        buf[h.reason.0 as usize..h.reason.1 as usize].to_vec()
    }

    #[test]
    fn parses_status_reason_and_fields() {
        let (h, buf) =
            parse_str(b"HTTP/1.1 201 Created Now\r\nContent-Length: 5\r\nX-A:  v a  \r\n\r\n")
                .unwrap();
        assert_eq!(h.status(), 201);
        assert_eq!(h.minor_version(), 1);
        assert_eq!(reason(&h, &buf), b"Created Now");
        assert_eq!(h.framing(), Framing::Length(5));
        assert!(h.keeps_connection());
        let f: Vec<_> = fields_pairs(&buf[h.fields_start as usize..]).collect();
        assert_eq!(
            f,
            vec![(&b"Content-Length"[..], &b"5"[..]), (b"X-A", b"v a")]
        );
    }

    /// httparse gives a `&'static str` for a missing or non-UTF-8 reason; offsets never come
    /// from it, so the status line is never a header field.
    #[test]
    fn missing_or_binary_reason_never_makes_the_status_line_a_field() {
        for (head, want_reason) in [
            (
                &b"\r\nHTTP/1.1 200 a:\xff\r\nX: 1\r\nContent-Length: 0\r\n\r\n"[..],
                &b"a:\xff"[..],
            ),
            (b"HTTP/1.1 200\r\nX: 1\r\nContent-Length: 0\r\n\r\n", b""),
            (b"HTTP/1.1 200 \r\nX: 1\r\nContent-Length: 0\r\n\r\n", b""),
            (b"\n\nHTTP/1.1 204 No: Content\nX: 1\n\n", b"No: Content"),
        ] {
            let (h, buf) = parse_str(head).unwrap();
            assert_eq!(reason(&h, &buf), want_reason, "{head:?}");
            let names: Vec<_> = fields(&buf[h.fields_start as usize..h.len as usize])
                .map(|f| f.name)
                .collect();
            assert_eq!(names[0], "X", "{head:?}");
        }
    }

    #[test]
    fn obsolete_folding_is_unfolded() {
        let (h, buf) = parse_str(
            b"HTTP/1.1 200 OK\r\nX-Long: one\r\n two\r\n\tthree\r\nContent-Length: 0\r\n\r\n",
        )
        .unwrap();
        let f: Vec<_> = fields_pairs(&buf[h.fields_start as usize..]).collect();
        assert_eq!(f[0], (&b"X-Long"[..], &b"one   two  \tthree"[..]));
        assert_eq!(f[1], (&b"Content-Length"[..], &b"0"[..]));
        assert_eq!(f.len(), 2);
        // A fold right after the status line is not a field continuation.
        assert_eq!(
            parse_str(b"HTTP/1.1 200 OK\r\n folded\r\n\r\n").unwrap_err(),
            ResponseError::MalformedStatusLine
        );
        // Leading empty lines do not make the status line foldable.
        let (_, buf) =
            parse_str(b"\r\nHTTP/1.1 200 OK\r\nA: 1\r\n 2\r\nContent-Length: 0\r\n\r\n").unwrap();
        assert!(buf.starts_with(b"\r\nHTTP/1.1 200 OK\r\nA: 1   2\r\n"));
    }

    /// RFC 9110 §2.5: a higher minor version of HTTP/1 is processed as HTTP/1.1.
    #[test]
    fn rfc9110_2_5_higher_minor_versions_are_http11() {
        for v in b'2'..=b'9' {
            let mut head = b"HTTP/1.x 200 OK\r\nContent-Length: 2\r\n\r\n".to_vec();
            head[7] = v;
            let (h, _) = parse_str(&head).unwrap();
            assert_eq!(h.minor_version(), 1);
            assert_eq!(h.framing(), Framing::Length(2));
            assert!(h.keeps_connection());
        }
        let (h, _) = parse_str(b"HTTP/1.0 200 OK\r\nContent-Length: 2\r\n\r\n").unwrap();
        assert_eq!(h.minor_version(), 0);
        for other in [
            &b"HTTP/2.0 200 OK\r\n\r\n"[..],
            b"HTTP/0.9 200 OK\r\n\r\n",
            b"HTTP/3.1 200 OK\r\n\r\n",
        ] {
            assert_eq!(
                parse_str(other).unwrap_err(),
                ResponseError::UnsupportedVersion
            );
        }
    }

    /// RFC 9110 §15: the code is reported as sent; outside 100–599 its class is a server error.
    #[test]
    fn rfc9110_15_status_codes_and_classes() {
        for (code, class) in [
            (0u16, StatusClass::ServerError),
            (99, StatusClass::ServerError),
            (100, StatusClass::Informational),
            (299, StatusClass::Success),
            (301, StatusClass::Redirection),
            (404, StatusClass::ClientError),
            (599, StatusClass::ServerError),
            (600, StatusClass::ServerError),
            (999, StatusClass::ServerError),
        ] {
            let head = format!("HTTP/1.1 {code:03} X\r\nContent-Length: 1\r\n\r\n");
            let (h, _) = parse_str(head.as_bytes()).unwrap();
            assert_eq!(h.status(), code);
            assert_eq!(h.status_class(), class, "{code}");
        }
    }

    #[test]
    fn malformed_heads_are_typed_errors() {
        use ResponseError::*;
        let cases: [(&[u8], ResponseError); 9] = [
            (b"HTTP/1.1 2000 OK\r\n\r\n", MalformedStatusLine),
            (b"HTTP/1.1 20 OK\r\n\r\n", MalformedStatusLine),
            (b"HTTX/1.1 200 OK\r\n\r\n", MalformedStatusLine),
            (b"HTTP/2.0 200 OK\r\n\r\n", UnsupportedVersion),
            (b"HTTP/1.1 200 OK\r\nBad Name: x\r\n\r\n", InvalidHeader),
            (b"HTTP/1.1 200 OK\r\nNoColon\r\n\r\n", InvalidHeader),
            (b"HTTP/1.1 200 OK\r\nX: a\x00b\r\n\r\n", InvalidHeader),
            (
                b"HTTP/1.1 200 OK\r\nContent-Length: 2x\r\n\r\n",
                InvalidContentLength,
            ),
            (
                b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nTransfer-Encoding: chunked\r\n\r\n",
                ConflictingFraming,
            ),
        ];
        for (s, want) in cases {
            assert_eq!(
                parse_str(s).unwrap_err(),
                want,
                "{:?}",
                String::from_utf8_lossy(s)
            );
        }
    }

    #[test]
    fn too_many_headers() {
        let mut s = String::from("HTTP/1.1 200 OK\r\n");
        for i in 0..MAX_HEADERS {
            s.push_str(&format!("X-{i}: v\r\n"));
        }
        s.push_str("\r\n");
        assert!(parse_str(s.as_bytes()).is_ok());
        let s = s.replacen("X-0: v\r\n", "X-0: v\r\nX-extra: v\r\n", 1);
        assert_eq!(
            parse_str(s.as_bytes()).unwrap_err(),
            ResponseError::TooManyHeaders
        );
    }

    #[test]
    fn trailers_are_checked() {
        let mut ok = b"Expires: never\r\nX-Sum: 1\r\n\r\n".to_vec();
        assert_eq!(parse_trailers(&mut ok, false), Ok(()));
        let f: Vec<_> = fields_pairs(&ok).collect();
        assert_eq!(f, vec![(&b"Expires"[..], &b"never"[..]), (b"X-Sum", b"1")]);
        let mut empty = b"\r\n".to_vec();
        assert_eq!(parse_trailers(&mut empty, false), Ok(()));
        assert_eq!(fields(&empty).count(), 0);
        let mut bad = b"Bad Name: 1\r\n\r\n".to_vec();
        assert_eq!(
            parse_trailers(&mut bad, false),
            Err(ResponseError::InvalidTrailers)
        );
        let mut folded = b"X: 1\r\n 2\r\n\r\n".to_vec();
        assert_eq!(parse_trailers(&mut folded, true), Ok(()));
        assert_eq!(
            fields_pairs(&folded).next(),
            Some((&b"X"[..], &b"1   2"[..]))
        );
    }
}
