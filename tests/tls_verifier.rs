//! The verifier driven directly (no network), as embedded-tls drives it.

mod tls_support;

use embedded_tls::{
    Aes128GcmSha256, CertificateEntryRef, CertificateRef, CryptoProvider, TlsVerifier,
};
use rand_core::OsRng;
use rawpost::tls::{CertError, PinnedProvider, TrustAnchor};
use sha2::Digest;
use tls_support::*;

/// Runs set_hostname + verify_certificate like `TlsConnection::open` does.
fn verify_chain(pki: &Pki, host: &str) -> (Result<(), embedded_tls::TlsError>, Option<CertError>) {
    let anchor = TrustAnchor::from_der(pki.root.der.as_ref()).unwrap();
    let mut provider = PinnedProvider::new(OsRng, anchor);
    let _ = provider.rng();
    let verifier = provider.verifier().unwrap();
    TlsVerifier::<Aes128GcmSha256>::set_hostname_verification(verifier, host).unwrap();
    let mut cert = CertificateRef::with_context(&[]);
    cert.add(CertificateEntryRef::X509(pki.leaf.der.as_ref()))
        .unwrap();
    cert.add(CertificateEntryRef::X509(pki.inter.der.as_ref()))
        .unwrap();
    let transcript = sha2::Sha256::new();
    let result = TlsVerifier::<Aes128GcmSha256>::verify_certificate(verifier, &transcript, cert);
    (result, provider.last_error())
}

#[test]
fn chain_verifies_without_network() {
    let pki = Pki::new(&P256, &P256);
    assert_eq!(verify_chain(&pki, HOST).1, None);
    let (result, error) = verify_chain(&pki, "nope.example.test");
    assert!(result.is_err());
    assert_eq!(error, Some(CertError::NameMismatch));
}

/// Chain verification runs synchronously inside `open`'s poll: it must fit a small stack.
/// The bound here is loose enough for debug builds; see STACK_PROBE below for measuring.
#[test]
fn chain_verification_fits_in_a_small_stack() {
    let pki = Pki::new(&P256, &P256);
    let stack = std::env::var("STACK_PROBE")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(128 * 1024);
    std::thread::Builder::new()
        .stack_size(stack)
        .spawn(move || assert_eq!(verify_chain(&pki, HOST).1, None))
        .unwrap()
        .join()
        .unwrap();
}
