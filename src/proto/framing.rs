//! The one place where a response's body framing is decided (RFC 9112 §6.3).

use crate::error::ResponseError;

/// How a response body is delimited.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum Framing {
    /// No body: a response to `HEAD`, a `1xx`, `204` or `304`.
    Empty,
    /// Exactly this many bytes (`Content-Length`).
    Length(u64),
    /// `Transfer-Encoding` ending in `chunked`.
    Chunked,
    /// Everything until the server closes the connection.
    UntilClose,
}

/// The outcome of [`decide`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Decision {
    /// How the body is delimited.
    pub framing: Framing,
    /// Whether the connection stays usable after the body.
    pub keep_alive: bool,
}

/// Iterates the elements of a comma-separated list value, trimmed, skipping empty elements
/// (RFC 9110 §5.6.1).
fn list(value: &[u8]) -> impl Iterator<Item = &[u8]> {
    value
        .split(|&c| c == b',')
        .map(super::response::trim_ows)
        .filter(|e| !e.is_empty())
}

fn parse_decimal(s: &[u8]) -> Option<u64> {
    if s.is_empty() {
        return None;
    }
    s.iter().try_fold(0u64, |acc, &c| {
        if c.is_ascii_digit() {
            acc.checked_mul(10)?.checked_add(u64::from(c - b'0'))
        } else {
            None
        }
    })
}

/// Decides the body framing and connection persistence of a response, per RFC 9112 §6.3 and
/// §9.3, from its status, version and header fields (`(name, value)` pairs).
///
/// In order: no body for a response to `HEAD`, `1xx`, `204` and `304`; `Transfer-Encoding`
/// together with `Content-Length` is an error; `Transfer-Encoding` whose last coding is
/// `chunked` is chunked, otherwise the body runs until close; every `Content-Length` value must be
/// the same decimal number; with neither header the body runs until close.
pub fn decide<'h>(
    request_was_head: bool,
    status: u16,
    minor_version: u8,
    fields: impl Iterator<Item = (&'h [u8], &'h [u8])>,
) -> Result<Decision, ResponseError> {
    let mut content_length: Option<u64> = None;
    let mut saw_te = false;
    let mut te_last_is_chunked = false;
    let mut chunked_count = 0u32;
    let mut coding_count = 0u32;
    let mut close = minor_version == 0;
    for (name, value) in fields {
        if name.eq_ignore_ascii_case(b"content-length") {
            // Several values (in one field or several) must all be the same number.
            let mut any = false;
            for v in value.split(|&c| c == b',').map(super::response::trim_ows) {
                any = true;
                let n = parse_decimal(v).ok_or(ResponseError::InvalidContentLength)?;
                if content_length.is_some_and(|m| m != n) {
                    return Err(ResponseError::InvalidContentLength);
                }
                content_length = Some(n);
            }
            if !any {
                return Err(ResponseError::InvalidContentLength);
            }
        } else if name.eq_ignore_ascii_case(b"transfer-encoding") {
            saw_te = true;
            for coding in list(value) {
                // A coding may carry parameters (`gzip;q=1`); its name is what counts.
                let coding_name = super::response::trim_ows(
                    coding.split(|&c| c == b';').next().unwrap_or(coding),
                );
                coding_count += 1;
                te_last_is_chunked = coding_name.eq_ignore_ascii_case(b"chunked");
                if te_last_is_chunked {
                    chunked_count += 1;
                }
            }
        } else if name.eq_ignore_ascii_case(b"connection")
            && list(value).any(|t| t.eq_ignore_ascii_case(b"close"))
        {
            close = true;
        }
    }

    let no_body =
        request_was_head || (100..200).contains(&status) || status == 204 || status == 304;
    let framing = if no_body {
        Framing::Empty
    } else if saw_te {
        if content_length.is_some() {
            return Err(ResponseError::ConflictingFraming);
        }
        match (coding_count, chunked_count, te_last_is_chunked) {
            // An empty Transfer-Encoding, or `chunked` applied twice: the sender broke
            // RFC 9112 §6.1 and the body cannot be delimited safely.
            (0, _, _) | (_, 2.., _) => return Err(ResponseError::InvalidTransferEncoding),
            (_, _, true) => Framing::Chunked,
            // RFC 9112 §6.3 rule 4: chunked is not the final coding, read until close.
            (_, _, false) => Framing::UntilClose,
        }
    } else if let Some(n) = content_length {
        Framing::Length(n)
    } else {
        Framing::UntilClose
    };
    // Transfer-Encoding in an HTTP/1.0 response: the framing is not trustworthy for reuse
    // (RFC 9112 §6.1).
    if saw_te && minor_version == 0 {
        close = true;
    }
    Ok(Decision {
        framing,
        keep_alive: !close && framing != Framing::UntilClose,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use ResponseError::*;

    fn d(
        head: bool,
        status: u16,
        minor: u8,
        fields: &[(&str, &str)],
    ) -> Result<Decision, ResponseError> {
        decide(
            head,
            status,
            minor,
            fields.iter().map(|(k, v)| (k.as_bytes(), v.as_bytes())),
        )
    }

    fn f(status: u16, fields: &[(&str, &str)]) -> Result<Framing, ResponseError> {
        d(false, status, 1, fields).map(|d| d.framing)
    }

    #[test]
    fn no_body_for_head_1xx_204_304_whatever_the_headers() {
        let h = [("Content-Length", "10"), ("Transfer-Encoding", "chunked")];
        assert_eq!(d(true, 200, 1, &h).unwrap().framing, Framing::Empty);
        for status in [100, 102, 103, 199, 204, 304] {
            assert_eq!(f(status, &h), Ok(Framing::Empty), "{status}");
            assert_eq!(f(status, &[]), Ok(Framing::Empty), "{status}");
        }
        assert!(d(true, 200, 1, &[]).unwrap().keep_alive);
    }

    #[test]
    fn transfer_encoding() {
        assert_eq!(
            f(200, &[("Transfer-Encoding", "chunked")]),
            Ok(Framing::Chunked)
        );
        assert_eq!(
            f(200, &[("transfer-encoding", "CHUNKED")]),
            Ok(Framing::Chunked)
        );
        assert_eq!(
            f(200, &[("Transfer-Encoding", "gzip, chunked")]),
            Ok(Framing::Chunked)
        );
        assert_eq!(
            f(
                200,
                &[
                    ("Transfer-Encoding", "gzip"),
                    ("Transfer-Encoding", "chunked")
                ]
            ),
            Ok(Framing::Chunked)
        );
        assert_eq!(
            f(200, &[("Transfer-Encoding", "gzip")]),
            Ok(Framing::UntilClose)
        );
        assert_eq!(
            f(200, &[("Transfer-Encoding", "chunked, gzip")]),
            Ok(Framing::UntilClose)
        );
        assert_eq!(
            f(200, &[("Transfer-Encoding", "chunked, chunked")]),
            Err(InvalidTransferEncoding)
        );
        assert_eq!(
            f(200, &[("Transfer-Encoding", "")]),
            Err(InvalidTransferEncoding)
        );
        assert_eq!(
            f(200, &[("Transfer-Encoding", " , ")]),
            Err(InvalidTransferEncoding)
        );
        assert_eq!(
            f(
                200,
                &[
                    ("Transfer-Encoding", "chunked"),
                    ("Transfer-Encoding", "chunked")
                ]
            ),
            Err(InvalidTransferEncoding)
        );
        assert_eq!(
            f(
                200,
                &[("Transfer-Encoding", "chunked"), ("Content-Length", "3")]
            ),
            Err(ConflictingFraming)
        );
        assert_eq!(
            f(
                200,
                &[("Content-Length", "3"), ("Transfer-Encoding", "gzip")]
            ),
            Err(ConflictingFraming)
        );
        // Chunked framing keeps the connection; until-close does not.
        assert!(
            d(false, 200, 1, &[("Transfer-Encoding", "chunked")])
                .unwrap()
                .keep_alive
        );
        assert!(
            !d(false, 200, 1, &[("Transfer-Encoding", "gzip")])
                .unwrap()
                .keep_alive
        );
        assert!(
            !d(false, 200, 0, &[("Transfer-Encoding", "chunked")])
                .unwrap()
                .keep_alive
        );
    }

    #[test]
    fn content_length() {
        assert_eq!(f(200, &[("Content-Length", "0")]), Ok(Framing::Length(0)));
        assert_eq!(f(200, &[("Content-Length", "42")]), Ok(Framing::Length(42)));
        assert_eq!(f(200, &[("Content-Length", "007")]), Ok(Framing::Length(7)));
        assert_eq!(
            f(200, &[("Content-Length", "42, 42")]),
            Ok(Framing::Length(42))
        );
        assert_eq!(
            f(200, &[("Content-Length", "42"), ("content-length", "42")]),
            Ok(Framing::Length(42))
        );
        assert_eq!(
            f(200, &[("Content-Length", "18446744073709551615")]),
            Ok(Framing::Length(u64::MAX))
        );
        for bad in [
            "",
            "2x",
            "-1",
            "+1",
            "1 2",
            "0x10",
            "18446744073709551616",
            "4,",
            "1.0",
        ] {
            assert_eq!(
                f(200, &[("Content-Length", bad)]),
                Err(InvalidContentLength),
                "{bad:?}"
            );
        }
        assert_eq!(
            f(200, &[("Content-Length", "42, 43")]),
            Err(InvalidContentLength)
        );
        assert_eq!(
            f(200, &[("Content-Length", "42"), ("Content-Length", "43")]),
            Err(InvalidContentLength)
        );
    }

    #[test]
    fn neither_header_reads_until_close() {
        let dec = d(false, 200, 1, &[("Content-Type", "text/plain")]).unwrap();
        assert_eq!(dec.framing, Framing::UntilClose);
        assert!(!dec.keep_alive);
    }

    #[test]
    fn persistence() {
        let cl = ("Content-Length", "1");
        assert!(d(false, 200, 1, &[cl]).unwrap().keep_alive);
        assert!(!d(false, 200, 0, &[cl]).unwrap().keep_alive);
        assert!(
            !d(false, 200, 1, &[cl, ("Connection", "close")])
                .unwrap()
                .keep_alive
        );
        assert!(
            !d(false, 200, 1, &[cl, ("Connection", "Keep-Alive, CLOSE")])
                .unwrap()
                .keep_alive
        );
        assert!(
            d(false, 200, 1, &[cl, ("Connection", "keep-alive")])
                .unwrap()
                .keep_alive
        );
        assert!(
            !d(false, 200, 0, &[cl, ("Connection", "keep-alive")])
                .unwrap()
                .keep_alive
        );
    }
}
