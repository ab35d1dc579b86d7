//! The embedded-tls `TlsVerifier` that validates the server's chain with rustls-webpki.

use core::time::Duration;

use embedded_tls::{
    CertificateEntryRef, CertificateRef, CertificateVerifyRef, SignatureScheme, TlsCipherSuite,
    TlsError, TlsVerifier,
};
use heapless::{String, Vec};
use rustls_pki_types::{CertificateDer, ServerName, SignatureVerificationAlgorithm, UnixTime};
use sha2::Digest;
use webpki::{EndEntityCert, KeyUsage};

use super::anchor::{is_same_cert, TrustAnchor};
use super::{algs, der, memo, CertError};

/// Longest DNS name (RFC 1035).
const MAX_HOST: usize = 253;
/// embedded-tls keeps at most 16 certificates of a server's Certificate message.
const MAX_CHAIN: usize = 16;
/// Longest SubjectPublicKeyInfo kept for the CertificateVerify check (P-384: 120 bytes).
#[cfg(not(feature = "rsa"))]
const MAX_SPKI: usize = 128;
/// An RSA key of up to 8192 bits.
#[cfg(feature = "rsa")]
const MAX_SPKI: usize = 1100;
/// The keyCertSign bit in the first byte of keyUsage.
const KEY_CERT_SIGN: u8 = 0x04;
/// Longest name kept as error detail (X.509's upper bound for a common name).
pub(crate) const MAX_DETAIL: usize = 64;

/// A clock: the current Unix time in seconds, or `None` while it is not known (not synced).
pub type Clock = fn() -> Option<u64>;

/// Validates the server's certificate chain against one pinned certificate with rustls-webpki,
/// then the server's handshake signature with the leaf key.
///
/// Used through [`PinnedProvider`](super::PinnedProvider); see there for the checks made.
/// Certificates are checked in place, inside embedded-tls's read buffer; only the leaf's public
/// key (at most 128 bytes) and the transcript hash are kept between the two steps.
pub struct PinnedVerifier<'a> {
    anchor: TrustAnchor<'a>,
    clock: Option<Clock>,
    time_floor: u64,
    host: Option<String<MAX_HOST>>,
    leaf_spki: Vec<u8, MAX_SPKI>,
    transcript: Vec<u8, 48>,
    authenticated: bool,
    used_clock: bool,
    error: Option<CertError>,
    detail: String<MAX_DETAIL>,
    /// Set by `PinnedProvider::with_signature_cache` (see memo.rs).
    pub(super) memo: Option<memo::CacheRef<'a>>,
}

impl<'a> PinnedVerifier<'a> {
    pub(crate) fn new(anchor: TrustAnchor<'a>) -> Self {
        Self {
            anchor,
            clock: None,
            time_floor: 0,
            host: None,
            leaf_spki: Vec::new(),
            transcript: Vec::new(),
            authenticated: false,
            used_clock: false,
            error: None,
            detail: String::new(),
            memo: None,
        }
    }

    pub(crate) fn set_clock(&mut self, clock: Clock) {
        self.clock = Some(clock);
    }

    pub(crate) fn set_time_floor(&mut self, unix_secs: u64) {
        self.time_floor = unix_secs;
    }

    /// Forgets the previous handshake's results (not the host name, which embedded-tls sets
    /// just before the handshake starts).
    pub(crate) fn begin_handshake(&mut self) {
        self.leaf_spki.clear();
        self.transcript.clear();
        self.authenticated = false;
        self.used_clock = false;
        self.error = None;
        self.detail.clear();
    }

    /// Forgets everything, host name included.
    pub(crate) fn reset(&mut self) {
        self.begin_handshake();
        self.host = None;
    }

    pub(crate) fn authenticated(&self) -> bool {
        self.authenticated
    }

    pub(crate) fn used_clock(&self) -> bool {
        self.used_clock
    }

    pub(crate) fn error(&self) -> Option<CertError> {
        self.error
    }

    pub(crate) fn detail(&self) -> &str {
        &self.detail
    }

    fn fail(&mut self, error: CertError) -> TlsError {
        self.error = Some(error);
        self.authenticated = false;
        self.leaf_spki.clear();
        self.transcript.clear();
        error.tls_error()
    }

    fn set_detail(&mut self, name: Option<&str>) {
        self.detail.clear();
        if let Some(name) = name {
            for c in name.chars() {
                if self.detail.push(c).is_err() {
                    break;
                }
            }
        }
    }

    /// The reason for webpki's refusal, with the detail that helps the user fix it.
    fn refuse<'c>(
        &mut self,
        e: &webpki::Error,
        chain: &[&'c [u8]],
        leaf_fields: der::CertFields<'c>,
        sent: &[&'c [u8]],
        time: u64,
    ) -> CertError {
        let error = self.classify(e, chain);
        match error {
            CertError::ChainNotToPin => {
                // A stale copy of the leaf (renewed with a new key) is pinned.
                let pinned = der::cert_fields(self.anchor.der);
                self.set_detail(top_issuer(leaf_fields, sent));
                if pinned.is_some_and(|p| p.subject == leaf_fields.subject) {
                    return CertError::PinnedIsLeaf;
                }
            }
            CertError::Expired => self.set_detail(find_cert(chain, |f| f.not_after < time)),
            CertError::NotYetValid => self.set_detail(find_cert(chain, |f| f.not_before > time)),
            _ => {}
        }
        error
    }

    /// Checks the chain and host name; on success returns the leaf's SPKI contents.
    fn check_chain<'c>(&mut self, cert: &CertificateRef<'c>) -> Result<&'c [u8], CertError> {
        let mut chain: Vec<&'c [u8], MAX_CHAIN> = Vec::new();
        for entry in &cert.entries {
            match entry {
                CertificateEntryRef::X509(der) => {
                    chain.push(der).map_err(|_| CertError::Rejected)?;
                }
                CertificateEntryRef::RawPublicKey(_) => {
                    return Err(CertError::UnsupportedAlgorithm)
                }
            }
        }
        let (&leaf, sent) = chain.split_first().ok_or(CertError::NoCertificate)?;
        let host = self.host.take().ok_or(CertError::NoServerName)?;
        let server_name =
            ServerName::try_from(host.as_str()).map_err(|_| CertError::InvalidServerName)?;

        let leaf_fields = der::cert_fields(leaf).ok_or(CertError::MalformedCertificate)?;
        if is_same_cert(&self.anchor, leaf) {
            self.set_detail(top_issuer(leaf_fields, sent));
            return Err(CertError::PinnedIsLeaf);
        }

        let now = self.clock.and_then(|clock| clock());
        self.used_clock = now.is_some();
        let time = match now {
            Some(now) => now.max(self.time_floor),
            None => leaf_fields.not_before.max(self.time_floor),
        };

        let leaf_der = CertificateDer::from(leaf);
        let end_entity =
            EndEntityCert::try_from(&leaf_der).map_err(|_| CertError::MalformedCertificate)?;
        let mut intermediates: Vec<CertificateDer<'c>, MAX_CHAIN> = Vec::new();
        for &der in sent {
            intermediates
                .push(CertificateDer::from(der))
                .map_err(|_| CertError::Rejected)?;
        }
        let anchor_der = CertificateDer::from(self.anchor.der);
        let anchor = webpki::anchor_from_trusted_cert(&anchor_der)
            .map_err(|_| CertError::PinnedMalformed)?;

        let verified = memo::with_algorithms(algs::ALL, self.memo, |algs| {
            end_entity.verify_for_usage(
                algs,
                core::slice::from_ref(&anchor),
                &intermediates,
                UnixTime::since_unix_epoch(Duration::from_secs(time)),
                KeyUsage::server_auth(),
                None,
                None,
            )
        });
        let path = match verified {
            Ok(path) => path,
            Err(e) => return Err(self.refuse(&e, &chain, leaf_fields, sent, time)),
        };
        // webpki ignores keyUsage; RFC 5280 §4.2.1.3 (and OpenSSL) require keyCertSign in an
        // issuing certificate that has the extension.
        for issuer in path.intermediate_certificates() {
            let der = issuer.der();
            match der::key_usage(&der) {
                Some(None) => {}
                Some(Some(bits)) if bits & KEY_CERT_SIGN != 0 => {}
                Some(Some(_)) => {
                    let name = der::cert_fields(&der).and_then(|f| der::name_label(f.subject));
                    self.set_detail(name);
                    return Err(CertError::IssuerCannotSign);
                }
                None => return Err(CertError::MalformedCertificate),
            }
        }

        if end_entity
            .verify_is_valid_for_subject_name(&server_name)
            .is_err()
        {
            self.set_detail(end_entity.valid_dns_names().next());
            return Err(CertError::NameMismatch);
        }
        Ok(leaf_fields.spki_contents)
    }

    fn classify(&self, e: &webpki::Error, chain: &[&[u8]]) -> CertError {
        let error = map_webpki(e);
        if error == CertError::UnsupportedAlgorithm
            && !cfg!(feature = "p384")
            && (algs::mentions_p384(self.anchor.der)
                || chain.iter().any(|c| algs::mentions_p384(c)))
        {
            return CertError::NeedsP384;
        }
        error
    }

    fn check_signature(&self, verify: &CertificateVerifyRef<'_>) -> Result<(), CertError> {
        if self.leaf_spki.is_empty() || self.transcript.is_empty() {
            return Err(CertError::NoCertificate);
        }
        let alg: &dyn SignatureVerificationAlgorithm = match verify.signature_scheme {
            SignatureScheme::EcdsaSecp256r1Sha256 => &algs::ECDSA_P256_SHA256,
            #[cfg(feature = "p384")]
            SignatureScheme::EcdsaSecp384r1Sha384 => &algs::ECDSA_P384_SHA384,
            #[cfg(not(feature = "p384"))]
            SignatureScheme::EcdsaSecp384r1Sha384 => return Err(CertError::NeedsP384),
            #[cfg(feature = "ed25519")]
            SignatureScheme::Ed25519 => &algs::ED25519,
            #[cfg(feature = "rsa")]
            SignatureScheme::RsaPssRsaeSha256 => &algs::RSA_PSS_SHA256,
            #[cfg(feature = "rsa")]
            SignatureScheme::RsaPssRsaeSha384 => &algs::RSA_PSS_SHA384,
            #[cfg(feature = "rsa")]
            SignatureScheme::RsaPssRsaeSha512 => &algs::RSA_PSS_SHA512,
            _ => return Err(CertError::UnsupportedAlgorithm),
        };
        let (key_alg, key) =
            der::spki_parts(&self.leaf_spki).ok_or(CertError::MalformedCertificate)?;
        if key_alg != alg.public_key_alg_id().as_ref() {
            return Err(CertError::BadHandshakeSignature);
        }
        // RFC 8446 §4.4.3: 64 spaces, the context string, a zero byte, the transcript hash.
        let mut message: Vec<u8, { 64 + 34 + 48 }> = Vec::new();
        let context = b"TLS 1.3, server CertificateVerify\x00";
        for part in [&[0x20; 64][..], &context[..], &self.transcript[..]] {
            message
                .extend_from_slice(part)
                .map_err(|_| CertError::Rejected)?;
        }
        alg.verify_signature(key, &message, verify.signature)
            .map_err(|_| CertError::BadHandshakeSignature)
    }
}

impl<CipherSuite: TlsCipherSuite> TlsVerifier<CipherSuite> for PinnedVerifier<'_> {
    fn set_hostname_verification(&mut self, hostname: &str) -> Result<(), TlsError> {
        match String::try_from(hostname) {
            Ok(host) => {
                self.host = Some(host);
                Ok(())
            }
            Err(_) => {
                self.host = None;
                Err(self.fail(CertError::InvalidServerName))
            }
        }
    }

    fn verify_certificate(
        &mut self,
        transcript: &CipherSuite::Hash,
        cert: CertificateRef,
    ) -> Result<(), TlsError> {
        self.begin_handshake();
        let spki = match self.check_chain(&cert) {
            Ok(spki) => spki,
            Err(e) => return Err(self.fail(e)),
        };
        if self.leaf_spki.extend_from_slice(spki).is_err() {
            return Err(self.fail(CertError::UnsupportedAlgorithm));
        }
        let hash = transcript.clone().finalize();
        if self.transcript.extend_from_slice(&hash).is_err() {
            return Err(self.fail(CertError::Rejected));
        }
        Ok(())
    }

    fn verify_signature(&mut self, verify: CertificateVerifyRef) -> Result<(), TlsError> {
        let result = self.check_signature(&verify);
        self.leaf_spki.clear();
        self.transcript.clear();
        match result {
            Ok(()) => {
                self.authenticated = true;
                Ok(())
            }
            Err(e) => Err(self.fail(e)),
        }
    }
}

/// Maps webpki's reason to ours.
#[allow(deprecated)]
fn map_webpki(e: &webpki::Error) -> CertError {
    use webpki::Error as E;
    match e {
        E::UnknownIssuer => CertError::ChainNotToPin,
        E::EndEntityUsedAsCa => CertError::IssuerNotCa,
        E::CaUsedAsEndEntity => CertError::LeafIsCa,
        E::PathLenConstraintViolated => CertError::PathTooLong,
        E::CertExpired { .. } => CertError::Expired,
        E::CertNotValidYet { .. } => CertError::NotYetValid,
        E::CertNotValidForName(_) => CertError::NameMismatch,
        E::RequiredEkuNotFound | E::RequiredEkuNotFoundContext(_) | E::EmptyEkuExtension => {
            CertError::NotForServers
        }
        E::InvalidSignatureForPublicKey => CertError::BadChainSignature,
        E::UnsupportedSignatureAlgorithm
        | E::UnsupportedSignatureAlgorithmContext(_)
        | E::UnsupportedSignatureAlgorithmForPublicKey
        | E::UnsupportedSignatureAlgorithmForPublicKeyContext(_) => CertError::UnsupportedAlgorithm,
        E::BadDer
        | E::BadDerTime
        | E::TrailingData(_)
        | E::UnsupportedCertVersion
        | E::UnsupportedCriticalExtension
        | E::MalformedExtensions
        | E::ExtensionValueInvalid
        | E::InvalidCertValidity
        | E::InvalidSerialNumber
        | E::MalformedDnsIdentifier
        | E::SignatureAlgorithmMismatch => CertError::MalformedCertificate,
        _ => CertError::Rejected,
    }
}

/// Follows issuer → subject links from the leaf through the certificates the server sent and
/// returns a label for the issuer of the highest one reached.
fn top_issuer<'c>(leaf: der::CertFields<'c>, sent: &[&'c [u8]]) -> Option<&'c str> {
    let mut top = leaf;
    for _ in 0..sent.len() {
        let parent = sent
            .iter()
            .filter_map(|c| der::cert_fields(c))
            .find(|f| f.subject == top.issuer && f.subject != f.issuer);
        match parent {
            Some(parent) => top = parent,
            None => break,
        }
    }
    der::name_label(top.issuer)
}

/// The subject label of the first certificate of `chain` (leaf first) matching `pred`.
fn find_cert<'c>(
    chain: &[&'c [u8]],
    pred: impl Fn(&der::CertFields<'c>) -> bool,
) -> Option<&'c str> {
    chain
        .iter()
        .filter_map(|c| der::cert_fields(c))
        .find(|f| pred(f))
        .and_then(|f| der::name_label(f.subject))
}
