//! The wire trace (feature `wire-trace`): the exact request and response heads, line by line,
//! through the `defmt` or `log` backend, with secrets redacted. Without the feature these
//! functions are empty and compile to nothing.
//!
//! Never shown:
//! - the values of the header fields in [`REDACTED`] (credentials, tokens, API keys, cookies)
//!   and of the names given to [`redact_headers`], and the continuation lines of such a field
//!   (obsolete line folding);
//! - the query string of the request target (`POST /v1/data?<redacted> HTTP/1.1`): tokens and
//!   keys often travel there;
//! - bodies (the trace shows heads only).
//!
//! The set given to [`redact_headers`] is kept in a `critical_section::Mutex`: with
//! `wire-trace`, the program needs a critical-section implementation (esp-hal, embassy and
//! cortex-m provide one; on a host, `critical-section = { version = "1", features = ["std"] }`).

/// Header fields whose values never appear in the trace (compared case-insensitively).
pub const REDACTED: &[&str] = &[
    "authorization",
    "proxy-authorization",
    "cookie",
    "set-cookie",
    "x-api-key",
    "api-key",
    "apikey",
    "x-auth-token",
    "x-access-token",
    "x-refresh-token",
    "x-amz-security-token",
    "x-goog-api-key",
    "ocp-apim-subscription-key",
    "x-functions-key",
    "private-token",
    "x-csrf-token",
    "x-xsrf-token",
];

#[cfg(feature = "wire-trace")]
static EXTRA: critical_section::Mutex<core::cell::Cell<&'static [&'static str]>> =
    critical_section::Mutex::new(core::cell::Cell::new(&[]));

/// Marks more header fields as secret, in addition to [`REDACTED`]: their values never appear
/// in the trace. For the whole program; set it once at start (a later call replaces the set).
/// Names are compared case-insensitively.
///
/// ```
/// rawpost::trace::redact_headers(&["X-Device-Secret", "X-Signature"]);
/// # #[cfg(feature = "wire-trace")]
/// assert!(rawpost::trace::is_redacted("x-device-secret"));
/// # rawpost::trace::redact_headers(&[]);
/// ```
///
/// Without the `wire-trace` feature there is no trace, and the set is not kept.
pub fn redact_headers(names: &'static [&'static str]) {
    #[cfg(feature = "wire-trace")]
    critical_section::with(|cs| EXTRA.borrow(cs).set(names));
    #[cfg(not(feature = "wire-trace"))]
    let _ = names;
}

/// The names given to [`redact_headers`] (empty without the `wire-trace` feature).
fn extra() -> &'static [&'static str] {
    #[cfg(feature = "wire-trace")]
    return critical_section::with(|cs| EXTRA.borrow(cs).get());
    #[cfg(not(feature = "wire-trace"))]
    return &[];
}

/// Whether the trace hides the value of the header field `name` ([`REDACTED`], or a name given
/// to [`redact_headers`]).
pub fn is_redacted(name: &str) -> bool {
    is_secret(name.as_bytes(), extra())
}

fn is_secret(name: &[u8], extra: &[&str]) -> bool {
    REDACTED
        .iter()
        .chain(extra)
        .any(|r| name.eq_ignore_ascii_case(r.as_bytes()))
}

/// How one line of a head is shown.
#[derive(Debug, PartialEq, Eq)]
#[cfg_attr(not(feature = "wire-trace"), allow(dead_code))]
pub(crate) struct Shown<'a> {
    /// What is shown as it is.
    pub(crate) text: &'a [u8],
    /// Whether `<redacted>` follows.
    pub(crate) redacted: bool,
    /// What follows `<redacted>` (the protocol version after a query string).
    pub(crate) tail: &'a [u8],
}

impl<'a> Shown<'a> {
    fn plain(text: &'a [u8]) -> Self {
        Self {
            text,
            redacted: false,
            tail: b"",
        }
    }
}

/// A header line as the trace shows it: the name and `<redacted>` for a secret field, the line
/// itself otherwise.
#[cfg_attr(not(feature = "wire-trace"), allow(dead_code))]
pub(crate) fn redact<'a>(line: &'a [u8], extra: &[&str]) -> Shown<'a> {
    if let Some(colon) = line.iter().position(|&c| c == b':') {
        if is_secret(&line[..colon], extra) {
            return Shown {
                text: &line[..=colon],
                redacted: true,
                tail: b"",
            };
        }
    }
    Shown::plain(line)
}

/// A request line as the trace shows it: the query string, if any, redacted.
#[cfg_attr(not(feature = "wire-trace"), allow(dead_code))]
pub(crate) fn request_line(line: &[u8]) -> Shown<'_> {
    let Some(target_start) = line.iter().position(|&c| c == b' ') else {
        return Shown::plain(line);
    };
    let target_end = line[target_start + 1..]
        .iter()
        .position(|&c| c == b' ')
        .map_or(line.len(), |i| target_start + 1 + i);
    match line[target_start..target_end]
        .iter()
        .position(|&c| c == b'?')
    {
        Some(q) => Shown {
            text: &line[..=target_start + q],
            redacted: true,
            tail: &line[target_end..],
        },
        None => Shown::plain(line),
    }
}

/// Each line of a head as the trace shows it (`request`: the first line is a request line).
#[cfg_attr(not(feature = "wire-trace"), allow(dead_code))]
pub(crate) fn shown_lines<'a>(
    head: &'a [u8],
    request: bool,
    extra: &'a [&'a str],
) -> impl Iterator<Item = Shown<'a>> + 'a {
    let mut first = true;
    let mut secret_field = false;
    head.split(|&c| c == b'\n')
        .map(|line| line.strip_suffix(b"\r").unwrap_or(line))
        .take_while(|line| !line.is_empty())
        .map(move |line| {
            if first {
                first = false;
                return if request {
                    request_line(line)
                } else {
                    Shown::plain(line)
                };
            }
            if matches!(line.first(), Some(b' ' | b'\t')) {
                // A continuation of the previous field (obsolete line folding).
                return if secret_field {
                    Shown {
                        text: b"",
                        redacted: true,
                        tail: b"",
                    }
                } else {
                    Shown::plain(line)
                };
            }
            let shown = redact(line, extra);
            secret_field = shown.redacted;
            shown
        })
}

#[cfg(feature = "wire-trace")]
fn lines(head: &[u8], prefix: &str, request: bool) {
    #[cfg(all(feature = "log", not(feature = "defmt")))]
    if !log::log_enabled!(log::Level::Info) {
        return;
    }
    let extra = extra();
    for shown in shown_lines(head, request, extra) {
        let text = core::str::from_utf8(shown.text).unwrap_or("<not UTF-8>");
        let mark = if shown.redacted { "<redacted>" } else { "" };
        let space = if shown.redacted && shown.text.ends_with(b":") {
            " "
        } else {
            ""
        };
        let tail = core::str::from_utf8(shown.tail).unwrap_or("<not UTF-8>");
        #[cfg(feature = "defmt")]
        defmt::info!(
            "{=str} {=str}{=str}{=str}{=str}",
            prefix,
            text,
            space,
            mark,
            tail
        );
        #[cfg(all(feature = "log", not(feature = "defmt")))]
        log::info!("{} {}{}{}{}", prefix, text, space, mark, tail);
        #[cfg(not(any(feature = "defmt", feature = "log")))]
        let _ = (prefix, text, space, mark, tail);
    }
}

/// Traces a request head that is about to be written.
#[inline(always)]
pub(crate) fn request(head: &[u8]) {
    #[cfg(feature = "wire-trace")]
    lines(head, "rawpost >", true);
    #[cfg(not(feature = "wire-trace"))]
    let _ = head;
}

/// Traces a response head as it arrived.
#[inline(always)]
pub(crate) fn response(head: &[u8]) {
    #[cfg(feature = "wire-trace")]
    lines(head, "rawpost <", false);
    #[cfg(not(feature = "wire-trace"))]
    let _ = head;
}

#[cfg(test)]
mod tests {
    use super::*;

    fn shown(line: &[u8]) -> (&[u8], bool) {
        let s = redact(line, &[]);
        (s.text, s.redacted)
    }

    #[test]
    fn credentials_are_redacted() {
        assert_eq!(
            shown(b"Authorization: Bearer abc"),
            (&b"Authorization:"[..], true)
        );
        assert_eq!(shown(b"cookie: a=1"), (&b"cookie:"[..], true));
        assert_eq!(shown(b"SET-COOKIE: s=2"), (&b"SET-COOKIE:"[..], true));
        assert_eq!(
            shown(b"Proxy-Authorization: Basic x"),
            (&b"Proxy-Authorization:"[..], true)
        );
        assert_eq!(shown(b"X-Api-Key: k"), (&b"X-Api-Key:"[..], true));
        assert_eq!(shown(b"x-auth-token: t"), (&b"x-auth-token:"[..], true));
        assert_eq!(shown(b"Api-Key: k"), (&b"Api-Key:"[..], true));
        assert_eq!(
            shown(b"X-Amz-Security-Token: t"),
            (&b"X-Amz-Security-Token:"[..], true)
        );
        assert_eq!(
            shown(b"Content-Type: a/b"),
            (&b"Content-Type: a/b"[..], false)
        );
        assert_eq!(
            shown(b"POST /a HTTP/1.1"),
            (&b"POST /a HTTP/1.1"[..], false)
        );
        assert_eq!(
            shown(b"X-Authorization-Hint: visible"),
            (&b"X-Authorization-Hint: visible"[..], false)
        );
    }

    #[test]
    fn marked_headers_are_redacted() {
        let extra = ["X-Device-Secret"];
        let s = redact(b"x-device-secret: 42", &extra);
        assert_eq!((s.text, s.redacted), (&b"x-device-secret:"[..], true));
        assert!(!redact(b"x-device-secret: 42", &[]).redacted);
    }

    #[test]
    fn query_strings_are_redacted() {
        let s = request_line(b"GET /v1/data?token=abc&x=1 HTTP/1.1");
        assert_eq!(
            (s.text, s.redacted, s.tail),
            (&b"GET /v1/data?"[..], true, &b" HTTP/1.1"[..])
        );
        let s = request_line(b"GET /v1/data HTTP/1.1");
        assert_eq!(s, Shown::plain(b"GET /v1/data HTTP/1.1"));
        let s = request_line(b"GET /?k HTTP/1.1");
        assert_eq!((s.text, s.tail), (&b"GET /?"[..], &b" HTTP/1.1"[..]));
        // A status line is never a request line.
        let head = b"HTTP/1.1 200 OK?\r\n\r\n";
        let lines: std::vec::Vec<_> = shown_lines(head, false, &[]).collect();
        assert_eq!(lines, [Shown::plain(b"HTTP/1.1 200 OK?")]);
    }

    #[test]
    fn folded_secret_lines_are_redacted() {
        let head =
            b"HTTP/1.1 200 OK\r\nSet-Cookie: a=1;\r\n  secret=2\r\nX-Other: v\r\n folded\r\n\r\n";
        let lines: std::vec::Vec<_> = shown_lines(head, false, &[]).collect();
        assert_eq!(lines.len(), 5);
        assert_eq!(
            (lines[1].text, lines[1].redacted),
            (&b"Set-Cookie:"[..], true)
        );
        assert_eq!((lines[2].text, lines[2].redacted), (&b""[..], true));
        assert_eq!(lines[4], Shown::plain(b" folded"));
    }
}
