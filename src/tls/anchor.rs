//! The pinned certificate (trust anchor), from PEM text or DER bytes, without allocation.

use rustls_pki_types::CertificateDer;

use super::der;
use super::CertError;

const BEGIN: &[u8] = b"-----BEGIN CERTIFICATE-----";
const END: &[u8] = b"-----END CERTIFICATE-----";

/// The certificate the server's chain must lead to: a root CA, or an intermediate CA.
///
/// Borrows the DER bytes (from flash, or decoded from PEM into a caller buffer). Pin the root
/// CA that issued the server's chain: roots live for decades, intermediates rotate every few
/// years, and the server's own (leaf) certificate is refused with [`CertError::PinnedIsLeaf`].
///
/// webpki treats the anchor as trusted as-is: its own validity dates and CA flag are not
/// checked (RFC 5280 §6.1.1 trust-anchor semantics); those of every certificate below it are.
#[derive(Clone, Debug)]
pub struct TrustAnchor<'a> {
    pub(crate) der: &'a [u8],
}

impl<'a> TrustAnchor<'a> {
    /// Pins a DER-encoded X.509 certificate.
    pub fn from_der(der: &'a [u8]) -> Result<Self, CertError> {
        let cert = CertificateDer::from(der);
        webpki::anchor_from_trusted_cert(&cert).map_err(|_| CertError::PinnedMalformed)?;
        der::cert_fields(der).ok_or(CertError::PinnedMalformed)?;
        Ok(Self { der })
    }

    /// Pins the first `CERTIFICATE` block of `pem`, decoding it into `buf`.
    ///
    /// `pem` may hold several blocks and any text around them, exactly as
    /// `openssl s_client -showcerts` prints; blocks with other labels (keys...) are skipped.
    /// Careful with `s_client` output: its first block is the server's own certificate, which
    /// is refused; see [`TrustAnchor::from_pem_nth`] and [`pem_certificate_count`].
    ///
    /// Lines must be wrapped at 64 columns (as OpenSSL writes them) or 76 (as `base64` does);
    /// LF or CRLF line ends. `buf` must hold the decoded certificate (typically 500-2000
    /// bytes).
    pub fn from_pem(pem: &[u8], buf: &'a mut [u8]) -> Result<Self, CertError> {
        Self::from_pem_nth(pem, 0, buf)
    }

    /// Pins the `index`-th (from 0) `CERTIFICATE` block of `pem`, decoding it into `buf`.
    ///
    /// With `openssl s_client -showcerts` output, index 0 is the server's leaf (refused) and
    /// the last index is the highest intermediate the server sends, which works but rotates
    /// more often than the root CA that issued it.
    pub fn from_pem_nth(pem: &[u8], index: usize, buf: &'a mut [u8]) -> Result<Self, CertError> {
        let block = pem_blocks(pem)
            .nth(index)
            .ok_or(CertError::PemNoCertificate)??;
        // RFC 7468 wraps at 64 columns (OpenSSL does); `base64` and MIME tools use 76.
        let mut decoder = pem_rfc7468::Decoder::new(block)
            .or_else(|_| pem_rfc7468::Decoder::new_wrapped(block, 76))
            .map_err(|_| CertError::PemMalformed)?;
        let out = buf
            .get_mut(..decoder.remaining_len())
            .ok_or(CertError::PemBufferTooSmall)?;
        let der = decoder.decode(out).map_err(|_| CertError::PemMalformed)?;
        if !decoder.is_finished() {
            return Err(CertError::PemMalformed);
        }
        Self::from_der(der)
    }

    /// The pinned certificate's DER bytes.
    pub fn der(&self) -> &'a [u8] {
        self.der
    }
}

/// How many `CERTIFICATE` blocks `pem` holds (complete or not).
pub fn pem_certificate_count(pem: &[u8]) -> usize {
    pem_blocks(pem).count()
}

/// Iterates the `-----BEGIN CERTIFICATE-----` ... `-----END CERTIFICATE-----` spans of `pem`.
/// A BEGIN line without its END line yields `PemMalformed`.
fn pem_blocks(pem: &[u8]) -> impl Iterator<Item = Result<&[u8], CertError>> {
    let mut rest = pem;
    core::iter::from_fn(move || {
        let start = find(rest, BEGIN)?;
        let from_begin = &rest[start..];
        match find(from_begin, END) {
            Some(end) => {
                let block = &from_begin[..end + END.len()];
                rest = &from_begin[end + END.len()..];
                Some(Ok(block))
            }
            None => {
                rest = &[];
                Some(Err(CertError::PemMalformed))
            }
        }
    })
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

/// Whether `leaf` (the server's certificate) is the pinned certificate itself, or a renewal of
/// it (same subject and key).
pub(crate) fn is_same_cert(anchor: &TrustAnchor<'_>, leaf: &[u8]) -> bool {
    if anchor.der == leaf {
        return true;
    }
    match (der::cert_fields(anchor.der), der::cert_fields(leaf)) {
        (Some(a), Some(l)) => a.subject == l.subject && a.spki == l.spki,
        _ => false,
    }
}
