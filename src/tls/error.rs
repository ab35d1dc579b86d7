//! The reasons a pinned-CA TLS connection is refused, in the user's words.

use core::fmt;

/// Why the pinned certificate could not be loaded, or why the server was not trusted.
///
/// Small and `Copy`, so it can be stored and returned from anywhere. After a failed
/// [`TlsConnection::open`](embedded_tls::TlsConnection::open), read it with
/// [`PinnedProvider::last_error`](super::PinnedProvider::last_error); some variants come with a
/// detail string (a certificate's name) available from
/// [`PinnedProvider::last_error_detail`](super::PinnedProvider::last_error_detail), and
/// [`PinnedProvider::explain`](super::PinnedProvider::explain) prints both.
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
    /// No server name was configured, so the certificate cannot be matched to a host.
    NoServerName,
    /// The configured server name is neither a valid DNS name nor an IP address.
    InvalidServerName,

    // --- the server's chain ---
    /// The server sent no certificate, or the handshake ended without the server proving it
    /// holds its certificate's key.
    NoCertificate,
    /// The pinned certificate is the server's own (leaf) certificate, or an older copy of it
    /// (same subject). Self-signed server certificates cannot be pinned at all: webpki needs a
    /// CA above the server certificate (make a small CA for the device instead).
    PinnedIsLeaf,
    /// No path leads from the server's certificate to the pinned certificate.
    ChainNotToPin,
    /// A certificate that issued another one in the chain is not a CA certificate.
    IssuerNotCa,
    /// An issuing certificate has a keyUsage extension without keyCertSign: it may not sign
    /// certificates (RFC 5280 §4.2.1.3). The detail names it.
    IssuerCannotSign,
    /// A CA in the chain forbids this many CAs below it (pathLenConstraint).
    PathTooLong,
    /// The server's own certificate is a CA certificate.
    LeafIsCa,
    /// The server's certificate is restricted to other uses than TLS servers
    /// (extendedKeyUsage without serverAuth).
    NotForServers,
    /// A certificate in the chain has expired.
    Expired,
    /// A certificate in the chain is not valid yet.
    NotYetValid,
    /// The host name is not among the server certificate's subject alternative names.
    NameMismatch,
    /// A signature in the certificate chain does not verify.
    BadChainSignature,
    /// The server's handshake signature (CertificateVerify) does not verify with its
    /// certificate's key.
    BadHandshakeSignature,
    /// A certificate or signature uses P-384, which needs the `p384` feature.
    NeedsP384,
    /// A certificate or signature uses an algorithm this crate cannot verify (P-521, or Ed25519
    /// or RSA without their features). ECDSA P-256, P-384 (feature `p384`), Ed25519 (feature
    /// `ed25519`) and RSA (feature `rsa`) are supported.
    UnsupportedAlgorithm,
    /// A certificate the server sent is malformed or has an unsupported critical extension.
    MalformedCertificate,
    /// The chain was rejected for another reason (name constraints, too complex...).
    Rejected,
}

impl CertError {
    /// The user-facing explanation, without detail.
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
            Self::NoServerName => {
                "no server name set: call TlsConfig::with_server_name(host) so the certificate can be checked"
            }
            Self::InvalidServerName => "the server name is not a valid host name or IP address",
            Self::NoCertificate => "the server did not prove its identity with a certificate",
            Self::PinnedIsLeaf => {
                "the pinned certificate is the server's own leaf: pin the root CA that issued its chain"
            }
            Self::ChainNotToPin => "the chain does not lead to the pinned certificate",
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

    /// What the detail string (if any) names, used by [`Explain`] to phrase it.
    pub(crate) const fn detail_intro(self) -> &'static str {
        match self {
            Self::ChainNotToPin => "; its top certificate was issued by",
            Self::PinnedIsLeaf => "; the chain's top certificate was issued by",
            Self::NameMismatch => "; the certificate is for",
            _ => ":",
        }
    }

    /// The embedded-tls error the verifier hands back to the handshake for this failure.
    pub(crate) const fn tls_error(self) -> embedded_tls::TlsError {
        match self {
            Self::BadHandshakeSignature => embedded_tls::TlsError::InvalidSignature,
            Self::NeedsP384 | Self::UnsupportedAlgorithm => {
                embedded_tls::TlsError::InvalidSignatureScheme
            }
            _ => embedded_tls::TlsError::InvalidCertificate,
        }
    }
}

impl fmt::Display for CertError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.message())
    }
}

impl core::error::Error for CertError {}

/// A [`CertError`] with its detail (a certificate or host name), for printing.
///
/// Returned by [`PinnedProvider::explain`](super::PinnedProvider::explain).
#[derive(Clone, Copy, Debug)]
pub struct Explain<'a> {
    /// The failure.
    pub error: CertError,
    /// The name the failure is about; empty when there is none.
    pub detail: &'a str,
}

impl fmt::Display for Explain<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.error.message())?;
        if !self.detail.is_empty() {
            write!(f, "{} \"{}\"", self.error.detail_intro(), self.detail)?;
        }
        Ok(())
    }
}
