//! The embedded-tls `TlsVerifier` that validates the server's chain with rustls-webpki.

use core::time::Duration;

use embedded_tls::{CertificateEntryRef, CertificateRef, CertificateVerifyRef, SignatureScheme};
use heapless::{String, Vec};
use rustls_pki_types::{
    CertificateDer, IpAddr, ServerName, SignatureVerificationAlgorithm, UnixTime,
};
use webpki::{EndEntityCert, KeyUsage};

use super::anchor::{is_same_cert, TrustAnchor};
use super::{algs, der, signature_cache, CertError, Detail, TimeUsed, MIN_TIME};

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

/// What a handshake validates the server certificate's name against: the host as written,
/// and its address when it is an IP literal.
pub(crate) struct Expected {
    text: String<MAX_HOST>,
    ip: Option<IpAddr>,
}

impl Expected {
    /// Parses a host: a DNS name, an IPv4 address, or an IPv6 address in brackets.
    pub(crate) fn parse(host: &str) -> Option<Self> {
        let text = String::try_from(host).ok()?;
        if let Some(inner) = host.strip_prefix('[').and_then(|h| h.strip_suffix(']')) {
            return match IpAddr::try_from(inner) {
                Ok(ip @ IpAddr::V6(_)) => Some(Self { text, ip: Some(ip) }),
                _ => None,
            };
        }
        match ServerName::try_from(host).ok()? {
            ServerName::IpAddress(ip) => Some(Self { text, ip: Some(ip) }),
            ServerName::DnsName(_) => Some(Self { text, ip: None }),
            _ => None,
        }
    }

    /// Whether the host is an IP address: then no server name (SNI) is sent (RFC 6066 §3).
    pub(crate) fn is_ip(&self) -> bool {
        self.ip.is_some()
    }

    fn server_name(&self) -> Option<ServerName<'_>> {
        match self.ip {
            Some(ip) => Some(ServerName::IpAddress(ip)),
            None => ServerName::try_from(self.text.as_str()).ok(),
        }
    }
}

/// The time inputs of one handshake, read from the provider's [`TimeSource`](super::TimeSource).
#[derive(Clone, Copy)]
pub(crate) struct TimeInput {
    /// The clock's reading, if it has one.
    pub(crate) clock: Option<u64>,
    /// The time floor (0: none).
    pub(crate) floor: u64,
    /// `false` only for [`TimeSource::dangerous_no_expiry_check`](super::TimeSource::dangerous_no_expiry_check).
    pub(crate) check_expiry: bool,
}

/// Validates the server's certificate chain against one pinned certificate with rustls-webpki,
/// then the server's handshake signature with the leaf key.
///
/// Driven by [`TlsStream::open`](super::TlsStream::open) through a private embedded-tls `CryptoProvider`; see
/// [`PinnedProvider`](super::PinnedProvider) for the checks made. Certificates are checked in
/// place, inside embedded-tls's read buffer; only the leaf's public key (at most 128 bytes) and
/// the transcript hash are kept between the two steps.
pub(crate) struct PinnedVerifier<'a> {
    anchor: TrustAnchor<'a>,
    expected: Option<Expected>,
    leaf_spki: Vec<u8, MAX_SPKI>,
    transcript: Vec<u8, 48>,
    authenticated: bool,
    time_used: Option<TimeUsed>,
    error: Option<CertError>,
    detail: Detail,
    /// Set by `PinnedProvider::with_signature_cache` (see signature_cache.rs).
    pub(super) memo: Option<signature_cache::CacheRef<'a>>,
}

impl<'a> PinnedVerifier<'a> {
    pub(crate) fn new(anchor: TrustAnchor<'a>) -> Self {
        Self {
            anchor,
            expected: None,
            leaf_spki: Vec::new(),
            transcript: Vec::new(),
            authenticated: false,
            time_used: None,
            error: None,
            detail: Detail::new(),
            memo: None,
        }
    }

    /// Starts a handshake with `expected`: forgets everything about the previous one.
    pub(crate) fn begin(&mut self, expected: Expected) {
        self.expected = Some(expected);
        self.leaf_spki.clear();
        self.transcript.clear();
        self.authenticated = false;
        self.time_used = None;
        self.error = None;
        self.detail = Detail::new();
    }

    pub(crate) fn authenticated(&self) -> bool {
        self.authenticated
    }

    pub(crate) fn time_used(&self) -> Option<TimeUsed> {
        self.time_used
    }

    /// Why the server was refused, with the names involved.
    pub(crate) fn take_refusal(&mut self) -> Option<(CertError, Detail)> {
        let error = self.error.take()?;
        Some((error, core::mem::take(&mut self.detail)))
    }

    fn fail(&mut self, error: CertError) -> CertError {
        self.error = Some(error);
        self.authenticated = false;
        self.leaf_spki.clear();
        self.transcript.clear();
        error
    }

    fn name(&mut self, name: Option<&str>) {
        self.detail.push(name.unwrap_or("(no name)"));
    }

    /// Checks the server's Certificate message; `transcript` is the handshake hash up to it.
    pub(crate) fn verify_certificate(
        &mut self,
        transcript: &[u8],
        cert: &CertificateRef<'_>,
        time: TimeInput,
    ) -> Result<(), CertError> {
        self.authenticated = false;
        self.leaf_spki.clear();
        self.transcript.clear();
        let spki = match self.check_chain(cert, time) {
            Ok(spki) => spki,
            Err(e) => return Err(self.fail(e)),
        };
        if self.leaf_spki.extend_from_slice(spki).is_err() {
            return Err(self.fail(CertError::UnsupportedAlgorithm));
        }
        if self.transcript.extend_from_slice(transcript).is_err() {
            return Err(self.fail(CertError::Rejected));
        }
        // Named in case its CertificateVerify signature does not verify.
        if let Some(CertificateEntryRef::X509(leaf)) = cert.entries.first() {
            self.name(der::cert_fields(leaf).and_then(|f| der::name_label(f.subject)));
        }
        Ok(())
    }

    /// Checks the server's CertificateVerify against the certificate checked before it.
    pub(crate) fn verify_signature(
        &mut self,
        verify: &CertificateVerifyRef<'_>,
    ) -> Result<(), CertError> {
        let result = self.check_signature(verify);
        self.leaf_spki.clear();
        self.transcript.clear();
        match result {
            Ok(()) => {
                self.authenticated = true;
                self.detail = Detail::new();
                Ok(())
            }
            Err(e) => {
                if e != CertError::BadHandshakeSignature {
                    self.detail = Detail::new();
                }
                Err(self.fail(e))
            }
        }
    }

    /// The reason for webpki's refusal, with the names that help the user fix it.
    fn refuse<'c>(
        &mut self,
        e: &webpki::Error,
        chain: &[&'c [u8]],
        leaf: &'c [u8],
        leaf_fields: der::CertFields<'c>,
        sent: &[&'c [u8]],
        time: u64,
    ) -> CertError {
        let error = self.classify(e, chain);
        match error {
            CertError::ChainNotToPin => return self.chain_refusal(leaf_fields, sent),
            CertError::Expired => {
                if let Some(f) = chain
                    .iter()
                    .filter_map(|c| der::cert_fields(c))
                    .find(|f| f.not_after < time)
                {
                    self.name(der::name_label(f.subject));
                    self.detail.push_date(f.not_after);
                    self.detail.push_date(time);
                }
            }
            CertError::NotYetValid => {
                if let Some(f) = chain
                    .iter()
                    .filter_map(|c| der::cert_fields(c))
                    .find(|f| f.not_before > time)
                {
                    self.name(der::name_label(f.subject));
                    self.detail.push_date(f.not_before);
                    self.detail.push_date(time);
                }
            }
            CertError::IssuerNotCa => {
                let path = Path::new(leaf, leaf_fields, sent);
                let mut child = leaf_fields;
                for (der, fields) in path.skip(1) {
                    if der::basic_constraints(der).is_some_and(|(ca, _)| !ca) {
                        self.name(der::name_label(fields.subject));
                        self.name(der::name_label(child.subject));
                        break;
                    }
                    child = fields;
                }
            }
            CertError::PathTooLong => {
                let path = Path::new(leaf, leaf_fields, sent);
                // The k-th certificate above the leaf has k - 1 CAs below it.
                for (k, (der, fields)) in path.enumerate().skip(1) {
                    if let Some((true, Some(limit))) = der::basic_constraints(der) {
                        if limit < (k as u64) - 1 {
                            self.name(der::name_label(fields.subject));
                            self.detail.push_fmt(format_args!("{limit}"));
                            break;
                        }
                    }
                }
            }
            CertError::LeafIsCa | CertError::NotForServers => {
                self.name(der::name_label(leaf_fields.subject));
            }
            CertError::BadChainSignature => {
                if let Some(pinned) = der::cert_fields(self.anchor.der) {
                    let named = Path::new(leaf, leaf_fields, sent)
                        .map(|(_, f)| f)
                        .find(|f| f.issuer == pinned.subject);
                    if let Some(named) = named {
                        self.name(der::name_label(named.subject));
                        self.name(der::name_label(pinned.subject));
                    }
                }
            }
            CertError::MalformedCertificate => {
                let position = chain.iter().position(|c| der::cert_fields(c).is_none());
                self.detail
                    .push_fmt(format_args!("{}", position.map_or(1, |p| p + 1)));
            }
            CertError::NeedsP384 => {
                let cert = chain.iter().find(|c| algs::mentions_p384(c));
                match cert.and_then(|c| der::cert_fields(c)) {
                    Some(f) => self.name(der::name_label(f.subject)),
                    None => self.name(
                        der::cert_fields(self.anchor.der).and_then(|f| der::name_label(f.subject)),
                    ),
                }
            }
            _ => {}
        }
        error
    }

    /// No path to the pin: finds out whether the pin is wrong, the server's chain is
    /// incomplete, or the server sends the wrong chain, and names the certificates involved.
    fn chain_refusal(&mut self, leaf: der::CertFields<'_>, sent: &[&[u8]]) -> CertError {
        let pinned = der::cert_fields(self.anchor.der);
        if pinned.is_some_and(|p| p.subject == leaf.subject) {
            // A stale copy of the leaf (renewed with a new key) is pinned.
            self.name(top_issuer(leaf, sent));
            return CertError::PinnedIsLeaf;
        }
        let mut top = leaf;
        let mut depth = 0;
        for _ in 0..sent.len() {
            let parent = sent
                .iter()
                .filter_map(|c| der::cert_fields(c))
                .find(|f| f.subject == top.issuer && f.subject != top.subject);
            match parent {
                Some(parent) => {
                    top = parent;
                    depth += 1;
                }
                None => break,
            }
        }
        let pinned_label = pinned.and_then(|p| der::name_label(p.subject));
        if depth > 0 && top.issuer == top.subject {
            // The server sent its root, and it is not the pin.
            self.name(der::name_label(top.subject));
            self.name(der::name_label(top.subject));
            self.name(pinned_label);
            CertError::ChainNotToPin
        } else if depth == 0 && sent.is_empty() {
            self.name(der::name_label(leaf.issuer));
            self.name(der::name_label(leaf.subject));
            CertError::IncompleteChain
        } else if depth == 0 {
            self.name(der::name_label(leaf.subject));
            self.name(der::name_label(leaf.issuer));
            CertError::UnknownIssuer
        } else {
            self.name(der::name_label(top.subject));
            self.name(der::name_label(top.issuer));
            self.name(pinned_label);
            CertError::ChainNotToPin
        }
    }

    /// The host is not in the certificate: lists the names it has, or says it has none.
    fn name_refusal(
        &mut self,
        leaf: &[u8],
        leaf_fields: der::CertFields<'_>,
        host: &str,
    ) -> CertError {
        let mut names: Vec<der::SanName<'_>, 16> = Vec::new();
        let mut count = 0usize;
        let has_san = der::subject_alt_names(leaf, |name| {
            count += 1;
            let _ = names.push(name);
        });
        if has_san == Some(false) {
            self.name(der::common_name(leaf_fields.subject));
            self.detail.push(host);
            return CertError::NoSubjectAltName;
        }
        self.detail.push(host);
        for name in &names {
            match *name {
                der::SanName::Dns(dns) => self
                    .detail
                    .push(core::str::from_utf8(dns).unwrap_or("(not text)")),
                der::SanName::Ip(ip) => match ip {
                    [a, b, c, d] => self.detail.push_fmt(format_args!("{a}.{b}.{c}.{d}")),
                    _ => match <[u8; 16]>::try_from(ip) {
                        Ok(v6) => self
                            .detail
                            .push_fmt(format_args!("{}", core::net::Ipv6Addr::from(v6))),
                        Err(_) => self.detail.push("(bad IP address)"),
                    },
                },
            }
        }
        self.detail.leave_out(count - names.len());
        CertError::NameMismatch
    }

    /// Checks the chain and host name; on success returns the leaf's SPKI contents.
    fn check_chain<'c>(
        &mut self,
        cert: &CertificateRef<'c>,
        time: TimeInput,
    ) -> Result<&'c [u8], CertError> {
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
        let Some(leaf_fields) = der::cert_fields(leaf) else {
            self.detail.push("1");
            return Err(CertError::MalformedCertificate);
        };
        if is_same_cert(&self.anchor, leaf) {
            self.name(top_issuer(leaf_fields, sent));
            return Err(CertError::PinnedIsLeaf);
        }

        let (time, used) = validation_time(time, &leaf_fields)?;
        self.time_used = Some(used);

        let leaf_der = CertificateDer::from(leaf);
        let Ok(end_entity) = EndEntityCert::try_from(&leaf_der) else {
            self.detail.push("1");
            return Err(CertError::MalformedCertificate);
        };
        let mut intermediates: Vec<CertificateDer<'c>, MAX_CHAIN> = Vec::new();
        for &der in sent {
            intermediates
                .push(CertificateDer::from(der))
                .map_err(|_| CertError::Rejected)?;
        }
        let anchor_der = CertificateDer::from(self.anchor.der);
        let anchor = webpki::anchor_from_trusted_cert(&anchor_der)
            .map_err(|_| CertError::PinnedMalformed)?;

        let verified = signature_cache::with_algorithms(algs::ALL, self.memo, |algs| {
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
            Err(e) => return Err(self.refuse(&e, &chain, leaf, leaf_fields, sent, time)),
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
                    self.name(name);
                    return Err(CertError::IssuerCannotSign);
                }
                None => return Err(CertError::MalformedCertificate),
            }
        }

        let expected = self.expected.take().ok_or(CertError::InvalidServerName)?;
        let name_ok = expected
            .server_name()
            .is_some_and(|name| end_entity.verify_is_valid_for_subject_name(&name).is_ok());
        if !name_ok {
            return Err(self.name_refusal(leaf, leaf_fields, &expected.text));
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

    fn check_signature(&mut self, verify: &CertificateVerifyRef<'_>) -> Result<(), CertError> {
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

/// The time the chain is validated at, and how it was chosen.
fn validation_time(
    time: TimeInput,
    leaf: &der::CertFields<'_>,
) -> Result<(u64, TimeUsed), CertError> {
    if !time.check_expiry {
        return Ok((leaf.not_before, TimeUsed::NotChecked(leaf.not_before)));
    }
    let floor = (time.floor >= MIN_TIME).then_some(time.floor);
    match (time.clock.filter(|&t| t >= MIN_TIME), floor) {
        (Some(now), floor) => {
            let t = now.max(floor.unwrap_or(0));
            Ok((t, TimeUsed::Clock(t)))
        }
        (None, Some(floor)) => {
            let t = floor.max(leaf.not_before);
            Ok((t, TimeUsed::Floor(t)))
        }
        (None, None) => Err(CertError::ClockNotSet),
    }
}

/// The certificates from the leaf up, following issuer → subject names through the
/// certificates the server sent (at most as many steps as it sent).
struct Path<'c, 's> {
    next: Option<(&'c [u8], der::CertFields<'c>)>,
    sent: &'s [&'c [u8]],
    steps: usize,
}

impl<'c, 's> Path<'c, 's> {
    fn new(leaf: &'c [u8], fields: der::CertFields<'c>, sent: &'s [&'c [u8]]) -> Self {
        Self {
            next: Some((leaf, fields)),
            sent,
            steps: 0,
        }
    }
}

impl<'c> Iterator for Path<'c, '_> {
    type Item = (&'c [u8], der::CertFields<'c>);

    fn next(&mut self) -> Option<Self::Item> {
        let current = self.next.take()?;
        if self.steps < self.sent.len() {
            self.steps += 1;
            let child = current.1;
            self.next = self.sent.iter().find_map(|&c| {
                let f = der::cert_fields(c)?;
                (f.subject == child.issuer && f.subject != child.subject).then_some((c, f))
            });
        }
        Some(current)
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

#[cfg(test)]
mod tests {
    use super::*;

    fn cert(
        cn: &str,
        ca: bool,
        sans: &[&str],
        parent: Option<(&rcgen::CertificateParams, &rcgen::KeyPair)>,
    ) -> (rcgen::CertificateParams, rcgen::KeyPair, std::vec::Vec<u8>) {
        let key = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).unwrap();
        let sans = sans
            .iter()
            .map(|s| (*s).into())
            .collect::<std::vec::Vec<_>>();
        let mut params = rcgen::CertificateParams::new(sans).unwrap();
        params.distinguished_name = rcgen::DistinguishedName::new();
        params
            .distinguished_name
            .push(rcgen::DnType::CommonName, cn);
        params.not_before = rcgen::date_time_ymd(2024, 1, 1);
        params.not_after = rcgen::date_time_ymd(2050, 1, 1);
        if ca {
            params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
            params.key_usages = std::vec![rcgen::KeyUsagePurpose::KeyCertSign];
        }
        let der = match parent {
            Some((p, k)) => params
                .signed_by(&key, &rcgen::Issuer::from_params(p, k))
                .unwrap(),
            None => params.self_signed(&key).unwrap(),
        }
        .der()
        .to_vec();
        (params, key, der)
    }

    /// Chain verification runs synchronously inside one poll of the handshake: it must fit a
    /// small stack (debug build; `STACK_PROBE=N` to measure).
    #[test]
    fn chain_verification_fits_in_a_small_stack() {
        let (rp, rk, root) = cert("Root", true, &[], None);
        let (ip, ik, inter) = cert("Inter", true, &[], Some((&rp, &rk)));
        let (_, _, leaf) = cert("leaf", false, &["api.example.test"], Some((&ip, &ik)));
        let stack = std::env::var("STACK_PROBE")
            .ok()
            .and_then(|s| s.parse().ok())
            .unwrap_or(128 * 1024);
        std::thread::Builder::new()
            .stack_size(stack)
            .spawn(move || {
                let mut v = PinnedVerifier::new(TrustAnchor::from_der(&root).unwrap());
                v.begin(Expected::parse("api.example.test").unwrap());
                let mut cert = CertificateRef::with_context(&[]);
                cert.add(CertificateEntryRef::X509(&leaf)).unwrap();
                cert.add(CertificateEntryRef::X509(&inter)).unwrap();
                let time = TimeInput {
                    clock: Some(1_765_000_000),
                    floor: 0,
                    check_expiry: true,
                };
                assert_eq!(v.verify_certificate(&[0; 32], &cert, time), Ok(()));
                assert_eq!(v.time_used(), Some(TimeUsed::Clock(1_765_000_000)));
            })
            .unwrap()
            .join()
            .unwrap();
    }

    #[test]
    fn hosts_parse_as_names_or_addresses() {
        assert!(!Expected::parse("api.example.test").unwrap().is_ip());
        assert!(Expected::parse("127.0.0.1").unwrap().is_ip());
        assert!(Expected::parse("[::1]").unwrap().is_ip());
        assert!(Expected::parse("[2001:db8::7]").unwrap().is_ip());
        assert!(Expected::parse("[127.0.0.1]").is_none());
        assert!(Expected::parse("[api.example.test]").is_none());
        assert!(Expected::parse("::1").unwrap().is_ip());
        assert!(Expected::parse("").is_none());
    }
}
