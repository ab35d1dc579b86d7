//! The wire trace (feature `wire-trace`): the exact request and response heads, line by line,
//! through the `defmt` or `log` backend, with credentials redacted. Without the feature these
//! functions are empty and compile to nothing.

/// Header fields whose values never appear in the trace.
pub const REDACTED: [&str; 4] = [
    "authorization",
    "proxy-authorization",
    "cookie",
    "set-cookie",
];

/// The line as the trace shows it: the name and `<redacted>` for a credential field, the line
/// itself otherwise.
#[cfg_attr(not(feature = "wire-trace"), allow(dead_code))]
pub(crate) fn redact(line: &[u8]) -> (&[u8], bool) {
    if let Some(colon) = line.iter().position(|&c| c == b':') {
        let name = &line[..colon];
        if REDACTED
            .iter()
            .any(|r| name.eq_ignore_ascii_case(r.as_bytes()))
        {
            return (&line[..=colon], true);
        }
    }
    (line, false)
}

#[cfg(feature = "wire-trace")]
fn lines(head: &[u8], prefix: &str) {
    #[cfg(feature = "log")]
    if !log::log_enabled!(log::Level::Info) {
        return;
    }
    for line in head.split(|&c| c == b'\n') {
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        if line.is_empty() {
            break;
        }
        let (shown, redacted) = redact(line);
        let text = core::str::from_utf8(shown).unwrap_or("<not UTF-8>");
        let tail = if redacted { " <redacted>" } else { "" };
        #[cfg(feature = "defmt")]
        defmt::info!("{=str} {=str}{=str}", prefix, text, tail);
        #[cfg(feature = "log")]
        log::info!("{} {}{}", prefix, text, tail);
        #[cfg(not(any(feature = "defmt", feature = "log")))]
        let _ = (prefix, text, tail);
    }
}

/// Traces a request head that is about to be written.
#[inline(always)]
pub(crate) fn request(head: &[u8]) {
    #[cfg(feature = "wire-trace")]
    lines(head, "rawpost >");
    #[cfg(not(feature = "wire-trace"))]
    let _ = head;
}

/// Traces a response head as it arrived.
#[inline(always)]
pub(crate) fn response(head: &[u8]) {
    #[cfg(feature = "wire-trace")]
    lines(head, "rawpost <");
    #[cfg(not(feature = "wire-trace"))]
    let _ = head;
}

#[cfg(test)]
mod tests {
    use super::redact;

    #[test]
    fn credentials_are_redacted() {
        assert_eq!(
            redact(b"Authorization: Bearer abc"),
            (&b"Authorization:"[..], true)
        );
        assert_eq!(redact(b"cookie: a=1"), (&b"cookie:"[..], true));
        assert_eq!(redact(b"SET-COOKIE: s=2"), (&b"SET-COOKIE:"[..], true));
        assert_eq!(
            redact(b"Proxy-Authorization: Basic x"),
            (&b"Proxy-Authorization:"[..], true)
        );
        assert_eq!(
            redact(b"Content-Type: a/b"),
            (&b"Content-Type: a/b"[..], false)
        );
        assert_eq!(
            redact(b"POST /a HTTP/1.1"),
            (&b"POST /a HTTP/1.1"[..], false)
        );
        assert_eq!(
            redact(b"X-Authorization-Hint: visible"),
            (&b"X-Authorization-Hint: visible"[..], false)
        );
    }
}
