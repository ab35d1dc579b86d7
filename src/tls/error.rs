//! The reasons a pinned-CA TLS connection is refused, in the user's words.

use core::fmt;

use embedded_tls::alert::AlertDescription;

/// Why the pinned certificate could not be loaded, or why the server was not trusted.
///
/// Small and `Copy`. A refused handshake returns it inside
/// [`OpenError::Certificate`](super::OpenError::Certificate), with a [`Detail`] naming the
/// certificates involved; [`OpenError`](super::OpenError)'s `Display` prints the whole
/// explanation. [`CertError::message`] is the short form without names.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
#[non_exhaustive]
pub enum CertError {
    // --- loading the pinned certificate ---
    /// The pinned text holds no `-----BEGIN CERTIFICATE-----` block (at the requested index).
    PemNoCertificate,
    /// A `CERTIFICATE` block in the pinned text is not valid PEM (bad base64, line length other
    /// than 64, missing END line, headers...).
    PemMalformed,
    /// The caller's buffer is too small for the decoded pinned certificate.
    PemBufferTooSmall,
    /// The pinned bytes are not a DER X.509 certificate.
    PinnedMalformed,

    // --- configuration ---
    /// The host is neither a valid DNS name nor an IP address (IPv6 in brackets). The detail
    /// is the host.
    InvalidServerName,
    /// No usable time for the validity dates: the clock returned `None` (or a time before
    /// [`MIN_TIME`](super::MIN_TIME), as an unset clock does) and no time floor was given. Sync
    /// the clock first, or give a floor (see [`TimeSource`](super::TimeSource)).
    ClockNotSet,

    // --- the server's chain ---
    /// The server sent an empty certificate list, or the handshake ended without the server
    /// proving it holds its certificate's key (no Certificate or CertificateVerify message).
    NoCertificate,
    /// The pinned certificate is the server's own (leaf) certificate, or an older copy of it
    /// (same subject). Self-signed server certificates cannot be pinned at all: webpki needs a
    /// CA above the server certificate (make a small CA for the device instead). The detail
    /// names the issuer at the top of the chain the server sent.
    PinnedIsLeaf,
    /// The chain the server sent is complete up to a CA, but that CA is not, and was not
    /// issued by, the pinned certificate. The detail names the top certificate the server sent,
    /// its issuer (the CA to pin if you trust it) and the pinned certificate.
    ChainNotToPin,
    /// The server sent only its own certificate, without the intermediate CA that issued it,
    /// and that intermediate is not the pinned certificate: pin it (or the root above it), or
    /// make the server send its full chain. The detail names the missing issuer and the leaf.
    IncompleteChain,
    /// The issuer named in the server's certificate matches none of the other certificates it
    /// sent, nor the pinned one: the server is configured with the wrong chain. The detail
    /// names the leaf and the issuer it names.
    UnknownIssuer,
    /// A certificate that issued another one in the chain is not a CA certificate (no
    /// basicConstraints cA=true): a forged or misissued chain. The detail names it and the
    /// certificate it issued.
    IssuerNotCa,
    /// An issuing certificate has a keyUsage extension without keyCertSign: it may not sign
    /// certificates (RFC 5280 §4.2.1.3). The detail names it.
    IssuerCannotSign,
    /// A CA in the chain forbids this many CAs below it (pathLenConstraint). The detail names
    /// it and its limit.
    PathTooLong,
    /// The server's own certificate is a CA certificate. The detail names it.
    LeafIsCa,
    /// The server's certificate is restricted to other uses than TLS servers
    /// (extendedKeyUsage without serverAuth). The detail names it.
    NotForServers,
    /// A certificate in the chain has expired. The detail names it, its notAfter date and the
    /// date it was checked against.
    Expired,
    /// A certificate in the chain is not valid yet (or the clock is behind). The detail names
    /// it, its notBefore date and the date it was checked against.
    NotYetValid,
    /// The host is not among the server certificate's subject alternative names. The detail
    /// is the host, then the certificate's names (DNS names and IP addresses).
    NameMismatch,
    /// The server's certificate has no subjectAltName extension, only a subject common name,
    /// which is never used to match the host (as in browsers and rustls). The detail is the
    /// common name, then the host.
    NoSubjectAltName,
    /// A signature in the certificate chain does not verify. When a certificate names the
    /// pinned one as its issuer, the detail names both.
    BadChainSignature,
    /// The server's handshake signature (CertificateVerify) does not verify with its
    /// certificate's key. The detail names the certificate.
    BadHandshakeSignature,
    /// A certificate or signature uses P-384, which needs the `p384` feature.
    NeedsP384,
    /// A certificate or signature uses an algorithm this crate cannot verify (P-521, or Ed25519
    /// or RSA without their features). ECDSA P-256, P-384 (feature `p384`), Ed25519 (feature
    /// `ed25519`) and RSA (feature `rsa`) are supported.
    UnsupportedAlgorithm,
    /// A certificate the server sent is not valid DER, or has an unsupported critical
    /// extension. The detail is its position in the chain (1 is the server's own).
    MalformedCertificate,
    /// The chain was rejected for another reason (name constraints, too complex...).
    Rejected,
}

impl CertError {
    /// The user-facing explanation, without the names a [`Detail`] adds.
    pub const fn message(self) -> &'static str {
        match self {
            Self::PemNoCertificate => {
                "no -----BEGIN CERTIFICATE----- block found in the pinned PEM text"
            }
            Self::PemMalformed => {
                "the pinned PEM certificate is damaged (check the base64 lines and the END line)"
            }
            Self::PemBufferTooSmall => "the buffer is too small for the pinned certificate",
            Self::PinnedMalformed => "the pinned bytes are not an X.509 certificate",
            Self::InvalidServerName => {
                "the host is neither a DNS name nor an IP address (write IPv6 in brackets)"
            }
            Self::ClockNotSet => {
                "no time to check certificate dates against: the clock is not set (sync it, e.g. by SNTP) and no time floor was given"
            }
            Self::NoCertificate => "the server did not prove its identity with a certificate",
            Self::PinnedIsLeaf => {
                "the pinned certificate is the server's own leaf: pin the root CA that issued its chain"
            }
            Self::ChainNotToPin => "the chain does not lead to the pinned certificate",
            Self::IncompleteChain => {
                "the server sent only its own certificate, not the intermediate CA that issued it"
            }
            Self::UnknownIssuer => {
                "the issuer named in the server's certificate is none of the certificates it sent: the server's chain is misconfigured"
            }
            Self::IssuerNotCa => "an issuing certificate in the chain is not a CA",
            Self::IssuerCannotSign => {
                "an issuing certificate's keyUsage does not allow signing certificates (keyCertSign)"
            }
            Self::PathTooLong => "the chain has more CAs than an issuing CA allows (pathLen)",
            Self::LeafIsCa => "the server's certificate is a CA certificate, not a server certificate",
            Self::NotForServers => "the server's certificate is not meant for TLS servers (extendedKeyUsage)",
            Self::Expired => "certificate expired",
            Self::NotYetValid => "certificate not valid yet (or the clock is behind)",
            Self::NameMismatch => "host name not in the certificate",
            Self::NoSubjectAltName => {
                "the server's certificate has no subjectAltName; its common name is not used for host names"
            }
            Self::BadChainSignature => {
                "a certificate signature in the chain is invalid (if the pinned CA was re-keyed, pin its current certificate)"
            }
            Self::BadHandshakeSignature => {
                "the server's handshake signature does not match its certificate"
            }
            Self::NeedsP384 => "certificate algorithm needs feature p384",
            Self::UnsupportedAlgorithm => {
                "certificate algorithm not supported (ECDSA P-256; P-384, Ed25519 and RSA with features p384, ed25519, rsa)"
            }
            Self::MalformedCertificate => "the server sent a malformed or unsupported certificate",
            Self::Rejected => "the server's certificate chain was rejected",
        }
    }

    /// The fatal TLS alert sent to the server when its certificate is refused for this reason
    /// (RFC 8446 §6.2), so the server's log says why: `unknown_ca` for a chain that does not
    /// lead to the pin, `certificate_expired` for dates, `decrypt_error` for a bad handshake
    /// signature, `decode_error` for an empty certificate list, `unsupported_certificate` for
    /// algorithms and key usages, `internal_error` for the client's own problems (no time),
    /// `bad_certificate` for the rest.
    pub const fn alert(self) -> AlertDescription {
        match self {
            Self::PinnedIsLeaf
            | Self::ChainNotToPin
            | Self::IncompleteChain
            | Self::UnknownIssuer => AlertDescription::UnknownCa,
            Self::Expired | Self::NotYetValid => AlertDescription::CertificateExpired,
            Self::BadHandshakeSignature => AlertDescription::DecryptError,
            Self::NoCertificate => AlertDescription::DecodeError,
            Self::NotForServers | Self::NeedsP384 | Self::UnsupportedAlgorithm => {
                AlertDescription::UnsupportedCertificate
            }
            Self::PemNoCertificate
            | Self::PemMalformed
            | Self::PemBufferTooSmall
            | Self::PinnedMalformed
            | Self::InvalidServerName
            | Self::ClockNotSet => AlertDescription::InternalError,
            Self::IssuerNotCa
            | Self::IssuerCannotSign
            | Self::PathTooLong
            | Self::LeafIsCa
            | Self::NameMismatch
            | Self::NoSubjectAltName
            | Self::BadChainSignature
            | Self::MalformedCertificate
            | Self::Rejected => AlertDescription::BadCertificate,
        }
    }
}

impl fmt::Display for CertError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.message())
    }
}

impl core::error::Error for CertError {}

/// The capacity of a [`Detail`], in bytes.
pub const DETAIL_LEN: usize = 160;
/// The longest single name kept in a [`Detail`], in characters; longer ones end in `…`.
const MAX_NAME: usize = 64;

/// The names a certificate refusal is about (certificates' common names, the host, a
/// certificate's subject alternative names, dates), in a fixed-size buffer: no allocation.
///
/// Which names, in which order, is documented on each [`CertError`] variant.
/// [`OpenError`](super::OpenError)'s `Display` puts them into sentences. Names longer than 64
/// characters are shortened (ending in `…`), control characters become `?`, and names that do
/// not fit the 160 bytes are counted in [`Detail::left_out`].
#[derive(Clone, Default, PartialEq, Eq)]
pub struct Detail {
    /// The names, each followed by `\n`.
    text: heapless::String<DETAIL_LEN, u8>,
    left_out: u8,
}

impl Detail {
    /// No names.
    pub const fn new() -> Self {
        Self {
            text: heapless::String::new(),
            left_out: 0,
        }
    }

    /// The names, in order.
    pub fn names(&self) -> impl Iterator<Item = &str> + '_ {
        self.text.split_terminator('\n')
    }

    /// The `i`-th name, from 0.
    pub fn name(&self, i: usize) -> Option<&str> {
        self.names().nth(i)
    }

    /// How many names did not fit.
    pub fn left_out(&self) -> usize {
        usize::from(self.left_out)
    }

    /// Adds a name (sanitized and shortened); counts it as left out when it does not fit.
    pub(crate) fn push(&mut self, name: &str) {
        let mut shortened: heapless::String<{ MAX_NAME * 4 + 4 }> = heapless::String::new();
        for (i, c) in name.chars().enumerate() {
            if i == MAX_NAME {
                let _ = shortened.push('…');
                break;
            }
            let _ = shortened.push(if c.is_control() { '?' } else { c });
        }
        let room = DETAIL_LEN - self.text.len();
        if shortened.len() < room {
            let _ = self.text.push_str(&shortened);
            let _ = self.text.push('\n');
        } else {
            self.left_out = self.left_out.saturating_add(1);
        }
    }

    /// Counts `n` more names as left out.
    pub(crate) fn leave_out(&mut self, n: usize) {
        let n = u8::try_from(n).unwrap_or(u8::MAX);
        self.left_out = self.left_out.saturating_add(n);
    }

    /// Adds a name given as format arguments (a date, a number).
    pub(crate) fn push_fmt(&mut self, args: fmt::Arguments<'_>) {
        let mut s: heapless::String<MAX_NAME> = heapless::String::new();
        let _ = fmt::write(&mut s, args);
        self.push(&s);
    }

    /// Adds a date (UTC) given in Unix seconds, as `YYYY-MM-DD`.
    pub(crate) fn push_date(&mut self, unix_secs: u64) {
        let (y, m, d) = super::der::civil_date(unix_secs);
        self.push_fmt(format_args!("{y:04}-{m:02}-{d:02}"));
    }
}

impl fmt::Debug for Detail {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut list = f.debug_list();
        list.entries(self.names());
        if self.left_out > 0 {
            list.entry(&format_args!("+{} more", self.left_out));
        }
        list.finish()
    }
}

#[cfg(feature = "defmt")]
impl defmt::Format for Detail {
    fn format(&self, f: defmt::Formatter<'_>) {
        defmt::write!(f, "{=str}", self.text.as_str())
    }
}

/// Writes the explanation of a certificate refusal: what is wrong, which certificate, and what
/// to do.
pub(crate) fn explain(
    f: &mut fmt::Formatter<'_>,
    error: CertError,
    detail: &Detail,
) -> fmt::Result {
    let n = |i: usize| detail.name(i);
    match (error, n(0), n(1), n(2)) {
        (CertError::InvalidServerName, Some(host), ..) => write!(
            f,
            "the host \"{host}\" is neither a DNS name nor an IP address (write IPv6 in brackets, e.g. [::1])"
        ),
        (CertError::PinnedIsLeaf, Some(top), ..) => write!(
            f,
            "{}; the chain the server sent ends with a certificate issued by \"{top}\"",
            error.message()
        ),
        (CertError::ChainNotToPin, Some(root), Some(issuer), pinned) if root == issuer => {
            write!(
                f,
                "the chain ends at the root \"{root}\" (sent by the server), not at the pinned certificate"
            )?;
            if let Some(pinned) = pinned {
                write!(f, " \"{pinned}\"")?;
            }
            write!(f, ": pin \"{root}\" if that is the CA you trust for this server")
        }
        (CertError::ChainNotToPin, Some(top), Some(issuer), pinned) => {
            f.write_str("the chain does not lead to the pinned certificate")?;
            if let Some(pinned) = pinned {
                write!(f, " \"{pinned}\"")?;
            }
            write!(
                f,
                "; its top certificate \"{top}\" was issued by \"{issuer}\": pin \"{issuer}\" if that is the CA you trust for this server"
            )
        }
        (CertError::IncompleteChain, Some(issuer), Some(leaf), _) => write!(
            f,
            "the server sent only its own certificate \"{leaf}\", not the intermediate \"{issuer}\" that issued it: pin \"{issuer}\" (or the root CA above it), or make the server send its full chain (leaf and intermediate)"
        ),
        (CertError::UnknownIssuer, Some(leaf), Some(issuer), _) => write!(
            f,
            "the server's certificate \"{leaf}\" names \"{issuer}\" as its issuer, but no certificate the server sent, nor the pinned one, is \"{issuer}\": the server is configured with the wrong chain; fix the server's certificate chain file"
        ),
        (CertError::IssuerNotCa, Some(issuer), Some(child), _) => write!(
            f,
            "\"{issuer}\" issued \"{child}\" but is not a CA certificate (no basicConstraints cA=true): the chain is forged or misissued"
        ),
        (CertError::IssuerCannotSign, Some(issuer), ..) => write!(
            f,
            "the CA \"{issuer}\" has a keyUsage without keyCertSign, so it may not issue certificates: reissue it with keyCertSign"
        ),
        (CertError::PathTooLong, Some(ca), Some(limit), _) => write!(
            f,
            "the CA \"{ca}\" allows {limit} CA certificate(s) below it (pathLenConstraint), and the chain has more"
        ),
        (CertError::LeafIsCa, Some(leaf), ..) => write!(
            f,
            "the server's certificate \"{leaf}\" is a CA certificate (basicConstraints cA=true), not a server certificate: issue the server a certificate without cA"
        ),
        (CertError::NotForServers, Some(leaf), ..) => write!(
            f,
            "the server's certificate \"{leaf}\" is restricted by extendedKeyUsage to uses other than TLS servers: reissue it with serverAuth"
        ),
        (CertError::Expired, Some(cert), Some(end), Some(at)) => write!(
            f,
            "the certificate \"{cert}\" expired on {end} (checked against {at}): the server must renew it"
        ),
        (CertError::NotYetValid, Some(cert), Some(start), Some(at)) => write!(
            f,
            "the certificate \"{cert}\" is valid only from {start}, and the time used was {at}: if the device's clock is behind, sync it"
        ),
        (CertError::NameMismatch, Some(host), first, _) => {
            write!(f, "the host \"{host}\" is not among the certificate's names")?;
            let Some(first) = first else {
                return f.write_str(" (it has no DNS name or IP address)");
            };
            write!(f, ": \"{first}\"")?;
            let mut wildcard = first.starts_with("*.");
            for name in detail.names().skip(2) {
                write!(f, ", \"{name}\"")?;
                wildcard |= name.starts_with("*.");
            }
            if detail.left_out() > 0 {
                write!(f, " and {} more", detail.left_out())?;
            }
            if wildcard {
                f.write_str(
                    "; a wildcard covers exactly one left-most label (\"*.example.com\" matches \"api.example.com\", not \"example.com\" nor \"a.api.example.com\")",
                )?;
            }
            Ok(())
        }
        (CertError::NoSubjectAltName, Some(cn), Some(host), _) => write!(
            f,
            "the server's certificate has no subjectAltName extension, only the common name \"{cn}\", which is not used to match host names (as in browsers and rustls): reissue it with subjectAltName DNS:{host}"
        ),
        (CertError::BadChainSignature, Some(cert), Some(pinned), _) => write!(
            f,
            "\"{cert}\" names the pinned \"{pinned}\" as its issuer, but its signature does not verify with the pinned key: the pinned file is another CA with the same name, or the CA was re-keyed; pin the CA's current certificate"
        ),
        (CertError::BadHandshakeSignature, Some(leaf), ..) => write!(
            f,
            "the server's handshake signature (CertificateVerify) does not verify with the key of its certificate \"{leaf}\": the server's private key does not match its certificate, or someone is impersonating the server"
        ),
        (CertError::NeedsP384, Some(cert), ..) => write!(
            f,
            "{}: \"{cert}\" uses ECDSA P-384",
            error.message()
        ),
        (CertError::MalformedCertificate, Some(position), ..) => write!(
            f,
            "certificate #{position} the server sent (#1 is its own) is not a valid X.509 certificate, or has an unsupported critical extension"
        ),
        (CertError::NoCertificate, ..) => f.write_str(
            "the server did not prove its identity: it sent no certificate (an empty certificate list), or no CertificateVerify signature",
        ),
        _ => f.write_str(error.message()),
    }
}
