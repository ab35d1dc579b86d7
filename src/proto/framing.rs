//! The one place where a response's body framing and the connection's persistence are decided
//! (RFC 9112 §6.3 and §9.3).
//!
//! The policy, rule by rule (each has a test that names it):
//!
//! 1. A response to `HEAD`, and every `1xx`, `204` and `304` response, ends at its head
//!    (§6.3 rule 1) whatever its `Content-Length` or `Transfer-Encoding` say: those fields are
//!    not used for framing, so an invalid or conflicting value there is no error. Such a
//!    value does mean the server's framing cannot be trusted, so the connection is then not
//!    reused.
//! 2. `Transfer-Encoding` with `Content-Length` is refused ([`ResponseError::ConflictingFraming`]):
//!    §6.3 rule 3 says the message "ought to be handled as an error" (a smuggling vector).
//! 3. `Transfer-Encoding` whose final coding is `chunked` is chunked (rule 4); a list whose final
//!    coding is something else, or an empty list, is read until the server closes (rule 4: "the
//!    message body length is determined by reading the connection until it is closed"), and
//!    the connection is not reused. `chunked` applied more than once is refused
//!    ([`ResponseError::InvalidTransferEncoding`], §6.1: a sender MUST NOT do it).
//! 4. `Transfer-Encoding` in an HTTP/1.0 response: §6.1 says the framing MUST be treated as
//!    faulty and the connection closed after the message. Faulty framing is never delivered as
//!    content: a final `chunked` coding is decoded as chunked (as h11 and llhttp do) and the
//!    connection is not reused; any other coding is read until the close (also not reused);
//!    with a `Content-Length` as well it is refused like in HTTP/1.1 (rule 2).
//! 5. Otherwise `Content-Length`, whose values (one field or several, comma-separated) must all
//!    be the same decimal number ([`ResponseError::InvalidContentLength`], rule 5); with neither
//!    field the body runs until the close (rule 7).
//! 6. Persistence (§9.3): HTTP/1.1 (and any higher 1.x, read as 1.1) keeps the connection unless
//!    `Connection: close`; HTTP/1.0 closes it; a body delimited by the close ends it.
//! 7. `Keep-Alive: timeout=N` (RFC 2068 §19.7.1.1, sent by Apache): how many seconds the server
//!    keeps the idle connection; the first valid `timeout` parameter counts.

use crate::error::ResponseError;
use crate::proto::text::{list, trim_ows};

/// How a response body is delimited.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
#[non_exhaustive]
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
    /// The server's idle timeout in seconds (`Keep-Alive: timeout=N`), when it said.
    pub idle_timeout: Option<u32>,
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

/// What the framing fields of a head said, gathered in one pass over the fields.
#[derive(Default)]
struct Fields {
    /// `Some(Ok(n))`: every value was `n`; `Some(Err(()))`: a value was invalid or differed.
    content_length: Option<Result<u64, ()>>,
    transfer_encoding: bool,
    codings: u32,
    chunked: u32,
    last_is_chunked: bool,
    close: bool,
    idle_timeout: Option<u32>,
}

impl Fields {
    fn add_content_length(&mut self, value: &[u8]) {
        for v in value.split(|&c| c == b',').map(trim_ows) {
            let n = parse_decimal(v).ok_or(());
            self.content_length = Some(match (self.content_length, n) {
                (Some(Err(())), _) | (_, Err(())) => Err(()),
                (Some(Ok(m)), Ok(n)) if m != n => Err(()),
                (_, Ok(n)) => Ok(n),
            });
        }
    }

    /// `Keep-Alive: timeout=5, max=100`: the first `timeout` that is a decimal number
    /// (quoted or not).
    fn add_keep_alive(&mut self, value: &[u8]) {
        for param in list(value) {
            if self.idle_timeout.is_some() {
                return;
            }
            let Some((name, v)) = param.split_at_checked(7) else {
                continue;
            };
            let v = trim_ows(v);
            if name.eq_ignore_ascii_case(b"timeout") && v.first() == Some(&b'=') {
                let v = trim_ows(v.get(1..).unwrap_or(&[]));
                let v = match v {
                    [b'"', inner @ .., b'"'] => inner,
                    v => v,
                };
                self.idle_timeout = parse_decimal(v).map(|n| u32::try_from(n).unwrap_or(u32::MAX));
            }
        }
    }

    fn add_transfer_encoding(&mut self, value: &[u8]) {
        self.transfer_encoding = true;
        for coding in list(value) {
            // A coding may carry parameters (`gzip;q=1`); its name is what counts.
            let name = trim_ows(coding.split(|&c| c == b';').next().unwrap_or(coding));
            self.codings += 1;
            self.last_is_chunked = name.eq_ignore_ascii_case(b"chunked");
            self.chunked += u32::from(self.last_is_chunked);
        }
    }
}

/// Decides the body framing and connection persistence of a response, per RFC 9112 §6.3 and
/// §9.3, from its status, version and header fields (`(name, value)` pairs). See the module
/// documentation for the policy. `minor_version` is 0 for HTTP/1.0 and 1 otherwise.
pub fn decide<'h>(
    request_was_head: bool,
    status: u16,
    minor_version: u8,
    fields: impl Iterator<Item = (&'h [u8], &'h [u8])>,
) -> Result<Decision, ResponseError> {
    let mut f = Fields::default();
    for (name, value) in fields {
        // Compare a name only when its length matches one of the three that matter.
        match name.len() {
            14 if name.eq_ignore_ascii_case(b"content-length") => f.add_content_length(value),
            17 if name.eq_ignore_ascii_case(b"transfer-encoding") => f.add_transfer_encoding(value),
            10 if name.eq_ignore_ascii_case(b"connection") => {
                f.close |= list(value).any(|t| t.eq_ignore_ascii_case(b"close"));
            }
            10 if name.eq_ignore_ascii_case(b"keep-alive") => f.add_keep_alive(value),
            _ => {}
        }
    }
    let http10 = minor_version == 0;
    let persistent = !http10 && !f.close;

    // Rule 1: no body, whatever the framing fields say.
    if request_was_head || (100..200).contains(&status) || status == 204 || status == 304 {
        let trusted = match f.content_length {
            Some(Err(())) => false,
            // A HEAD response may carry the Content-Length of the GET body; with
            // Transfer-Encoding as well the framing is contradictory.
            Some(Ok(_)) => !f.transfer_encoding,
            None => true,
        };
        return Ok(Decision {
            framing: Framing::Empty,
            keep_alive: persistent && trusted,
            idle_timeout: f.idle_timeout,
        });
    }

    let framing = if f.transfer_encoding {
        if f.content_length.is_some() {
            return Err(ResponseError::ConflictingFraming);
        } else if f.chunked > 1 {
            return Err(ResponseError::InvalidTransferEncoding);
        } else if f.codings > 0 && f.last_is_chunked {
            Framing::Chunked
        } else {
            // Rule 3: the final coding is not chunked (or there is none).
            Framing::UntilClose
        }
    } else {
        match f.content_length {
            Some(Ok(n)) => Framing::Length(n),
            Some(Err(())) => return Err(ResponseError::InvalidContentLength),
            None => Framing::UntilClose,
        }
    };
    Ok(Decision {
        framing,
        // HTTP/1.0 with Transfer-Encoding: faulty framing, the connection is closed after it.
        keep_alive: persistent
            && framing != Framing::UntilClose
            && !(http10 && f.transfer_encoding),
        idle_timeout: f.idle_timeout,
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

    fn keep(minor: u8, status: u16, fields: &[(&str, &str)]) -> bool {
        d(false, status, minor, fields).unwrap().keep_alive
    }

    /// RFC 9112 §6.3 rule 1: HEAD, 1xx, 204 and 304 end at the head, whatever the fields say.
    #[test]
    fn rfc9112_6_3_rule1_no_body_whatever_the_framing_fields() {
        let h = [("Content-Length", "10"), ("Transfer-Encoding", "chunked")];
        assert_eq!(d(true, 200, 1, &h).unwrap().framing, Framing::Empty);
        for status in [100, 102, 103, 199, 204, 304] {
            assert_eq!(f(status, &h), Ok(Framing::Empty), "{status}");
            assert_eq!(f(status, &[]), Ok(Framing::Empty), "{status}");
        }
        // A HEAD response with the GET body's length keeps the connection.
        assert!(
            d(true, 200, 1, &[("Content-Length", "1234")])
                .unwrap()
                .keep_alive
        );
        // Invalid or conflicting Content-Length on a response without a body: success, empty
        // body, and the connection is not reused (its framing cannot be trusted).
        for bad in [
            &[("Content-Length", "3"), ("Content-Length", "4")][..],
            &[("Content-Length", "3, 4")],
            &[("Content-Length", "garbage")],
            &[("Content-Length", "")],
            &h,
        ] {
            for status in [204, 304] {
                let dec = d(false, status, 1, bad).unwrap();
                assert_eq!(dec.framing, Framing::Empty, "{status} {bad:?}");
                assert!(!dec.keep_alive, "{status} {bad:?}");
            }
            let dec = d(true, 200, 1, bad).unwrap();
            assert_eq!(
                dec,
                Decision {
                    framing: Framing::Empty,
                    keep_alive: false,
                    idle_timeout: None,
                }
            );
        }
        assert!(d(true, 200, 1, &[]).unwrap().keep_alive);
        assert!(
            d(false, 204, 1, &[("Content-Length", "0")])
                .unwrap()
                .keep_alive
        );
    }

    /// RFC 9112 §6.3 rules 3 and 4, §6.1: Transfer-Encoding.
    #[test]
    fn rfc9112_6_3_rule4_transfer_encoding() {
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
        // Final coding not chunked, or no coding at all: read until the close.
        for value in ["gzip", "chunked, gzip", "", " , ", "gzip;q=1"] {
            assert_eq!(
                f(200, &[("Transfer-Encoding", value)]),
                Ok(Framing::UntilClose),
                "{value:?}"
            );
            assert!(!keep(1, 200, &[("Transfer-Encoding", value)]), "{value:?}");
        }
        // chunked applied twice (§6.1: a sender MUST NOT).
        assert_eq!(
            f(200, &[("Transfer-Encoding", "chunked, chunked")]),
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
        // Rule 3: with Content-Length, an error.
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
        assert!(keep(1, 200, &[("Transfer-Encoding", "chunked")]));
    }

    /// RFC 9112 §6.1: Transfer-Encoding in an HTTP/1.0 response is faulty framing: the
    /// connection is not reused, and framing bytes are never delivered as content — a final
    /// `chunked` is decoded (h11, llhttp), another coding read until the close, and with a
    /// Content-Length as well the response is refused (as in HTTP/1.1).
    #[test]
    fn rfc9112_6_1_transfer_encoding_in_http10_is_faulty_framing() {
        for (fields, framing) in [
            (&[("Transfer-Encoding", "chunked")][..], Framing::Chunked),
            (&[("Transfer-Encoding", "gzip, chunked")], Framing::Chunked),
            (&[("Transfer-Encoding", "gzip")], Framing::UntilClose),
        ] {
            let dec = d(false, 200, 0, fields).unwrap();
            assert_eq!(
                dec,
                Decision {
                    framing,
                    keep_alive: false,
                    idle_timeout: None,
                },
                "{fields:?}"
            );
        }
        assert_eq!(
            d(
                false,
                200,
                0,
                &[("Transfer-Encoding", "chunked"), ("Content-Length", "5")]
            ),
            Err(ConflictingFraming)
        );
        assert_eq!(
            d(false, 200, 0, &[("Transfer-Encoding", "chunked, chunked")]),
            Err(InvalidTransferEncoding)
        );
        // Even with Connection: keep-alive, HTTP/1.0 with Transfer-Encoding is not reused.
        assert!(
            !d(
                false,
                200,
                0,
                &[
                    ("Transfer-Encoding", "chunked"),
                    ("Connection", "keep-alive")
                ]
            )
            .unwrap()
            .keep_alive
        );
    }

    /// `Keep-Alive: timeout=N` (Apache sends it): the first valid `timeout` counts, in any
    /// case, quoted or not; other parameters and bad values are skipped.
    #[test]
    fn keep_alive_timeout_is_read() {
        let t = |fields: &[(&str, &str)]| d(false, 200, 1, fields).unwrap().idle_timeout;
        assert_eq!(t(&[("Keep-Alive", "timeout=5, max=100")]), Some(5));
        assert_eq!(t(&[("keep-alive", "max=99,TIMEOUT = 0")]), Some(0));
        assert_eq!(t(&[("Keep-Alive", "timeout=\"15\"")]), Some(15));
        assert_eq!(t(&[("Keep-Alive", "timeout=x, timeout=7")]), Some(7));
        assert_eq!(
            t(&[("Keep-Alive", "max=3"), ("Keep-Alive", "timeout=2")]),
            Some(2)
        );
        assert_eq!(
            t(&[("Keep-Alive", "timeout=1"), ("Keep-Alive", "timeout=2")]),
            Some(1)
        );
        assert_eq!(t(&[("Keep-Alive", "timeout=99999999999")]), Some(u32::MAX));
        assert_eq!(t(&[("Keep-Alive", "timeout=")]), None);
        assert_eq!(t(&[("Keep-Alive", "max=5")]), None);
        assert_eq!(t(&[]), None);
        // On a response without a body too.
        assert_eq!(
            d(false, 204, 1, &[("Keep-Alive", "timeout=3")])
                .unwrap()
                .idle_timeout,
            Some(3)
        );
    }

    /// RFC 9112 §6.3 rule 5.
    #[test]
    fn rfc9112_6_3_rule5_content_length() {
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
        assert_eq!(
            f(200, &[("Content-Length", "x"), ("Content-Length", "43")]),
            Err(InvalidContentLength)
        );
    }

    /// RFC 9112 §6.3 rule 7.
    #[test]
    fn rfc9112_6_3_rule7_neither_field_reads_until_close() {
        let dec = d(false, 200, 1, &[("Content-Type", "text/plain")]).unwrap();
        assert_eq!(
            dec,
            Decision {
                framing: Framing::UntilClose,
                keep_alive: false,
                idle_timeout: None,
            }
        );
    }

    /// Status codes outside 100–599 are framed like any response with a body (RFC 9110 §15:
    /// an invalid code is processed as a 5xx).
    #[test]
    fn rfc9110_15_out_of_range_status_codes_have_bodies() {
        for status in [0, 99, 600, 999] {
            assert_eq!(
                f(status, &[("Content-Length", "2")]),
                Ok(Framing::Length(2))
            );
        }
    }

    /// RFC 9112 §9.3.
    #[test]
    fn rfc9112_9_3_persistence() {
        let cl = ("Content-Length", "1");
        assert!(keep(1, 200, &[cl]));
        assert!(!keep(0, 200, &[cl]));
        assert!(!keep(1, 200, &[cl, ("Connection", "close")]));
        assert!(!keep(1, 200, &[cl, ("Connection", "Keep-Alive, CLOSE")]));
        assert!(keep(1, 200, &[cl, ("Connection", "keep-alive")]));
        assert!(!keep(0, 200, &[cl, ("Connection", "keep-alive")]));
    }
}
