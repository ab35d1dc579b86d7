//! Response heads: finding the end incrementally, parsing once with httparse, and reading
//! header fields back out of the buffer.
//!
//! Nothing here panics on peer input: every index is checked, every malformed byte is a
//! [`ResponseError`].

use crate::error::ResponseError;
use crate::proto::framing::{self, Framing};

/// The most header fields a response head (or trailer section) may have.
pub const MAX_HEADERS: usize = 48;

/// Finds the end of a head (the empty line) across many reads without rescanning.
///
/// Feed it the whole head-so-far each time; it resumes where it stopped, so a head that arrives
/// one byte per read costs one pass in total. A line ends with LF (an optional CR before it is
/// skipped), as httparse accepts.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct HeadScanner {
    pos: usize,
    /// Line feeds seen since the last byte that was neither CR nor LF.
    newlines: u8,
}

impl HeadScanner {
    /// A scanner at the start of a head (a status line comes first).
    pub const fn new() -> Self {
        Self {
            pos: 0,
            newlines: 0,
        }
    }

    /// A scanner at the start of a line, for a trailer section, which may be empty (just CRLF).
    pub const fn at_line_start() -> Self {
        Self {
            pos: 0,
            newlines: 1,
        }
    }

    /// Scans `buf` (everything received of this head so far) from where the last call stopped.
    /// Returns the head's length, empty line included, once it is complete.
    pub fn scan(&mut self, buf: &[u8]) -> Option<usize> {
        while let Some(&c) = buf.get(self.pos) {
            self.pos += 1;
            match c {
                b'\n' => {
                    self.newlines += 1;
                    if self.newlines == 2 {
                        return Some(self.pos);
                    }
                }
                b'\r' => {}
                _ => self.newlines = 0,
            }
        }
        None
    }
}

/// Replaces each obsolete line folding (a line starting with SP or HTAB) and the line break
/// before it with spaces, in place (RFC 9112 §5.2), so every field is then on one line.
/// `first_line_is_start` says whether the first line is a status line, which cannot be folded.
pub fn unfold(head: &mut [u8], first_line_is_start: bool) -> Result<(), ResponseError> {
    let mut line_start = 0;
    let mut on_first_line = true;
    for i in 0..head.len() {
        if head[i] != b'\n' {
            continue;
        }
        if !matches!(head.get(i + 1), Some(b' ' | b'\t')) {
            line_start = i + 1;
            on_first_line = false;
            continue;
        }
        // The empty line ends the head: what follows is not part of it.
        if head[line_start..i].iter().all(|&c| c == b'\r') {
            return Ok(());
        }
        if on_first_line && first_line_is_start {
            return Err(ResponseError::MalformedStatusLine);
        }
        head[i] = b' ';
        if i > 0 && head[i - 1] == b'\r' {
            head[i - 1] = b' ';
        }
    }
    Ok(())
}

/// What the client knows about a parsed response head. Small and `Copy`: the header fields stay
/// in the buffer and are read back by [`fields`] when asked for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct ResponseHead {
    /// The minor version: 0 for HTTP/1.0, 1 for HTTP/1.1.
    pub minor_version: u8,
    /// The status code.
    pub status: u16,
    /// The reason phrase, as a range of the head.
    pub reason: (u16, u16),
    /// Where the header fields start (after the status line).
    pub fields_start: u16,
    /// The head's length, empty line included.
    pub len: u16,
    /// How the body is delimited.
    pub framing: Framing,
    /// Whether the connection can carry another exchange after this one (HTTP/1.1 without
    /// `Connection: close`, and a body not delimited by closing).
    pub keep_alive: bool,
}

fn map_httparse(e: httparse::Error, head: &[u8]) -> ResponseError {
    match e {
        httparse::Error::HeaderName | httparse::Error::HeaderValue | httparse::Error::NewLine => {
            ResponseError::InvalidHeader
        }
        httparse::Error::TooManyHeaders => ResponseError::TooManyHeaders,
        httparse::Error::Version
            if matches!(head, [b'H', b'T', b'T', b'P', b'/', d, b'.', m, b' ', ..]
                if d.is_ascii_digit() && m.is_ascii_digit()) =>
        {
            ResponseError::UnsupportedVersion
        }
        _ => ResponseError::MalformedStatusLine,
    }
}

fn offset_in(outer: &[u8], inner: &[u8]) -> usize {
    (inner.as_ptr() as usize).saturating_sub(outer.as_ptr() as usize)
}

/// Parses a complete head (as found by [`HeadScanner`]) in place: unfolds obsolete line
/// folding, checks it with httparse and decides the body framing.
///
/// `head` must be exactly the head, empty line included, and at most `u16::MAX` bytes.
pub fn parse(head: &mut [u8], request_was_head: bool) -> Result<ResponseHead, ResponseError> {
    if head.len() > usize::from(u16::MAX) {
        return Err(ResponseError::HeadTooLarge);
    }
    unfold(head, true)?;
    let head: &[u8] = head;
    let mut fields = [httparse::EMPTY_HEADER; MAX_HEADERS];
    let mut resp = httparse::Response::new(&mut fields);
    let len = match resp.parse(head) {
        Ok(httparse::Status::Complete(n)) if n == head.len() => n,
        Ok(_) => return Err(ResponseError::MalformedStatusLine),
        Err(e) => return Err(map_httparse(e, head)),
    };
    let (Some(minor_version), Some(status)) = (resp.version, resp.code) else {
        return Err(ResponseError::MalformedStatusLine);
    };
    let reason = resp.reason.unwrap_or("").as_bytes();
    let reason_start = offset_in(head, reason);
    let reason_end = reason_start + reason.len();
    // httparse skips empty lines before the status line; the fields start after it.
    let fields_start = head[reason_end..]
        .iter()
        .position(|&c| c == b'\n')
        .map_or(len, |p| reason_end + p + 1);
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
        reason: (reason_start as u16, reason_end as u16),
        fields_start: fields_start as u16,
        len: len as u16,
        framing: decision.framing,
        keep_alive: decision.keep_alive,
    })
}

/// Checks a trailer section (as found by [`HeadScanner::at_line_start`]) in place.
pub fn parse_trailers(section: &mut [u8]) -> Result<(), ResponseError> {
    unfold(section, false).map_err(|_| ResponseError::InvalidTrailers)?;
    let mut fields = [httparse::EMPTY_HEADER; MAX_HEADERS];
    match httparse::parse_headers(section, &mut fields) {
        Ok(httparse::Status::Complete((n, _))) if n == section.len() => Ok(()),
        _ => Err(ResponseError::InvalidTrailers),
    }
}

/// Iterates the header fields of a head (from `fields_start`) or a trailer section that was
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

/// The iterator returned by [`fields`] and by the response's `headers()` and `trailers()`.
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
                value: trim_ows(&line[colon + 1..]),
            });
        }
    }
}

/// Trims optional white space (SP, HTAB) from both ends.
pub fn trim_ows(mut s: &[u8]) -> &[u8] {
    while let [b' ' | b'\t', rest @ ..] = s {
        s = rest;
    }
    while let [rest @ .., b' ' | b'\t'] = s {
        s = rest;
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fields_pairs(section: &[u8]) -> impl Iterator<Item = (&[u8], &[u8])> {
        fields(section).map(|h| (h.name.as_bytes(), h.value))
    }

    fn scan_whole(bytes: &[u8]) -> Option<usize> {
        HeadScanner::new().scan(bytes)
    }

    #[test]
    fn scanner_finds_the_end_whole_and_byte_by_byte() {
        let cases: &[(&[u8], Option<usize>)] = &[
            (b"HTTP/1.1 200 OK\r\n\r\nbody", Some(19)),
            (b"HTTP/1.1 200 OK\nA: b\n\nbody", Some(22)),
            (b"HTTP/1.1 200 OK\r\nA: b\r\n\r\n", Some(25)),
            (b"HTTP/1.1 200 OK\r\nA: b\r\n", None),
            (b"HTTP/1.1 200 OK\r\nA: b\r\n\r", None),
        ];
        for &(bytes, want) in cases {
            assert_eq!(scan_whole(bytes), want);
            let mut s = HeadScanner::new();
            let mut got = None;
            for n in 1..=bytes.len() {
                got = s.scan(&bytes[..n]);
                if got.is_some() {
                    break;
                }
            }
            assert_eq!(got, want, "{:?}", core::str::from_utf8(bytes));
        }
        assert_eq!(HeadScanner::at_line_start().scan(b"\r\nnext"), Some(2));
    }

    #[test]
    fn scanner_resumes_without_rescanning() {
        let mut s = HeadScanner::new();
        assert_eq!(s.scan(b"HTTP/1.1 200 OK\r\n"), None);
        assert_eq!(s.pos, 17);
        assert_eq!(s.scan(b"HTTP/1.1 200 OK\r\n\r\n"), Some(19));
    }

    fn parse_str(s: &str) -> Result<(ResponseHead, Vec<u8>), ResponseError> {
        let mut v = s.as_bytes().to_vec();
        parse(&mut v, false).map(|h| (h, v))
    }

    #[test]
    fn parses_status_reason_and_fields() {
        let (h, buf) =
            parse_str("HTTP/1.1 201 Created Now\r\nContent-Length: 5\r\nX-A:  v a  \r\n\r\n")
                .unwrap();
        assert_eq!(h.status, 201);
        assert_eq!(h.minor_version, 1);
        assert_eq!(
            &buf[h.reason.0 as usize..h.reason.1 as usize],
            b"Created Now"
        );
        assert_eq!(h.framing, Framing::Length(5));
        assert!(h.keep_alive);
        let f: Vec<_> = fields_pairs(&buf[h.fields_start as usize..]).collect();
        assert_eq!(
            f,
            vec![(&b"Content-Length"[..], &b"5"[..]), (b"X-A", b"v a")]
        );
    }

    #[test]
    fn obsolete_folding_is_unfolded() {
        let (h, buf) = parse_str(
            "HTTP/1.1 200 OK\r\nX-Long: one\r\n two\r\n\tthree\r\nContent-Length: 0\r\n\r\n",
        )
        .unwrap();
        let f: Vec<_> = fields_pairs(&buf[h.fields_start as usize..]).collect();
        assert_eq!(f[0], (&b"X-Long"[..], &b"one   two  \tthree"[..]));
        assert_eq!(f[1], (&b"Content-Length"[..], &b"0"[..]));
        assert_eq!(f.len(), 2);
        // A fold right after the status line is not a field continuation.
        assert_eq!(
            parse_str("HTTP/1.1 200 OK\r\n folded\r\n\r\n").unwrap_err(),
            ResponseError::MalformedStatusLine
        );
    }

    #[test]
    fn malformed_heads_are_typed_errors() {
        use ResponseError::*;
        let cases = [
            ("HTTP/1.1 2000 OK\r\n\r\n", MalformedStatusLine),
            ("HTTP/1.1 20 OK\r\n\r\n", MalformedStatusLine),
            ("HTTX/1.1 200 OK\r\n\r\n", MalformedStatusLine),
            ("HTTP/2.0 200 OK\r\n\r\n", UnsupportedVersion),
            ("HTTP/1.1 200 OK\r\nBad Name: x\r\n\r\n", InvalidHeader),
            ("HTTP/1.1 200 OK\r\nNoColon\r\n\r\n", InvalidHeader),
            ("HTTP/1.1 200 OK\r\nX: a\x00b\r\n\r\n", InvalidHeader),
            (
                "HTTP/1.1 200 OK\r\nContent-Length: 2x\r\n\r\n",
                InvalidContentLength,
            ),
            (
                "HTTP/1.1 200 OK\r\nContent-Length: 2\r\nTransfer-Encoding: chunked\r\n\r\n",
                ConflictingFraming,
            ),
        ];
        for (s, want) in cases {
            assert_eq!(parse_str(s).unwrap_err(), want, "{s:?}");
        }
    }

    #[test]
    fn too_many_headers() {
        let mut s = String::from("HTTP/1.1 200 OK\r\n");
        for i in 0..MAX_HEADERS {
            s.push_str(&format!("X-{i}: v\r\n"));
        }
        s.push_str("\r\n");
        assert!(parse_str(&s).is_ok());
        let s = s.replacen("X-0: v\r\n", "X-0: v\r\nX-extra: v\r\n", 1);
        assert_eq!(parse_str(&s).unwrap_err(), ResponseError::TooManyHeaders);
    }

    #[test]
    fn trailers_are_checked() {
        let mut ok = b"Expires: never\r\nX-Sum: 1\r\n\r\n".to_vec();
        assert_eq!(parse_trailers(&mut ok), Ok(()));
        let f: Vec<_> = fields_pairs(&ok).collect();
        assert_eq!(f, vec![(&b"Expires"[..], &b"never"[..]), (b"X-Sum", b"1")]);
        let mut empty = b"\r\n".to_vec();
        assert_eq!(parse_trailers(&mut empty), Ok(()));
        assert_eq!(fields(&empty).count(), 0);
        let mut bad = b"Bad Name: 1\r\n\r\n".to_vec();
        assert_eq!(
            parse_trailers(&mut bad),
            Err(ResponseError::InvalidTrailers)
        );
    }
}
