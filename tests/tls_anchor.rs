//! Loading the pinned certificate, and error texts.

mod tls_support;

use rawpost::tls::{pem_certificate_count, CertError, TrustAnchor};
use tls_support::*;

/// Text shaped like `openssl s_client -connect host:443 -showcerts` output.
fn s_client_output(pki: &Pki) -> String {
    format!(
        "CONNECTED(00000003)\ndepth=2 CN = Test Root CA\nverify return:1\n---\nCertificate chain\n \
         0 s:CN = api.example.test\n   i:CN = Test Intermediate CA\n{} 1 s:CN = Test Intermediate \
         CA\n   i:CN = Test Root CA\n{}---\nServer certificate\nsubject=CN = api.example.test\n---\n",
        pki.leaf.pem, pki.inter.pem
    )
}

#[test]
fn s_client_output_blocks_by_index() {
    let pki = Pki::new(&P256, &P256);
    let text = s_client_output(&pki);
    assert_eq!(pem_certificate_count(text.as_bytes()), 2);

    let mut buf = [0u8; 2048];
    let first = TrustAnchor::from_pem(text.as_bytes(), &mut buf).unwrap();
    assert_eq!(first.der(), pki.leaf.der.as_ref());

    let mut buf = [0u8; 2048];
    let second = TrustAnchor::from_pem_nth(text.as_bytes(), 1, &mut buf).unwrap();
    assert_eq!(second.der(), pki.inter.der.as_ref());

    let mut buf = [0u8; 2048];
    assert_eq!(
        TrustAnchor::from_pem_nth(text.as_bytes(), 2, &mut buf).unwrap_err(),
        CertError::PemNoCertificate
    );
}

#[test]
fn base64_tool_wrapping_is_accepted() {
    let pki = Pki::new(&P256, &P256);
    let body: String = pki
        .root
        .pem
        .lines()
        .filter(|l| !l.starts_with("-----"))
        .collect();
    let lines: Vec<&str> = body
        .as_bytes()
        .chunks(76)
        .map(|c| std::str::from_utf8(c).unwrap())
        .collect();
    let pem = format!(
        "-----BEGIN CERTIFICATE-----\n{}\n-----END CERTIFICATE-----\n",
        lines.join("\n")
    );
    let mut buf = [0u8; 2048];
    let anchor = TrustAnchor::from_pem(pem.as_bytes(), &mut buf).unwrap();
    assert_eq!(anchor.der(), pki.root.der.as_ref());
}

#[test]
fn crlf_line_endings_are_accepted() {
    let pki = Pki::new(&P256, &P256);
    let crlf = pki.root.pem.replace('\n', "\r\n");
    let mut buf = [0u8; 2048];
    let anchor = TrustAnchor::from_pem(crlf.as_bytes(), &mut buf).unwrap();
    assert_eq!(anchor.der(), pki.root.der.as_ref());
}

#[test]
fn malformed_pem_is_a_typed_error() {
    let pki = Pki::new(&P256, &P256);
    let good = pki.root.pem.clone();
    let mut buf = [0u8; 2048];

    // A character that is not base64 in the body.
    let mut damaged = good.clone().into_bytes();
    let pos = good.find('\n').unwrap() + 5;
    damaged[pos] = b'*';
    assert_eq!(
        TrustAnchor::from_pem(&damaged, &mut buf).unwrap_err(),
        CertError::PemMalformed
    );

    // END line missing (e.g. a truncated copy-paste).
    let truncated = &good[..good.find("-----END").unwrap()];
    assert_eq!(
        TrustAnchor::from_pem(truncated.as_bytes(), &mut buf).unwrap_err(),
        CertError::PemMalformed
    );

    // A whole line dropped from the middle: still valid PEM, but no longer a certificate.
    let mut lines: Vec<&str> = good.lines().collect();
    lines.remove(2);
    let dropped = lines.join("\n");
    assert_eq!(
        TrustAnchor::from_pem(dropped.as_bytes(), &mut buf).unwrap_err(),
        CertError::PinnedMalformed
    );

    // Wrapped at 50 columns: neither 64 (RFC 7468, OpenSSL) nor 76 (`base64`).
    let body: String = good.lines().filter(|l| !l.starts_with("-----")).collect();
    let rewrapped: Vec<String> = body
        .as_bytes()
        .chunks(50)
        .map(|c| String::from_utf8(c.to_vec()).unwrap())
        .collect();
    let wide = format!(
        "-----BEGIN CERTIFICATE-----\n{}\n-----END CERTIFICATE-----\n",
        rewrapped.join("\n")
    );
    assert_eq!(
        TrustAnchor::from_pem(wide.as_bytes(), &mut buf).unwrap_err(),
        CertError::PemMalformed
    );

    // No certificate at all, or only a key.
    assert_eq!(
        TrustAnchor::from_pem(b"hello", &mut buf).unwrap_err(),
        CertError::PemNoCertificate
    );
    let key = "-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n";
    assert_eq!(
        TrustAnchor::from_pem(key.as_bytes(), &mut buf).unwrap_err(),
        CertError::PemNoCertificate
    );

    // Valid PEM, but what it holds is not a certificate.
    let not_cert = "-----BEGIN CERTIFICATE-----\naGVsbG8gd29ybGQ=\n-----END CERTIFICATE-----\n";
    assert_eq!(
        TrustAnchor::from_pem(not_cert.as_bytes(), &mut buf).unwrap_err(),
        CertError::PinnedMalformed
    );
}

#[test]
fn small_buffer_is_reported() {
    let pki = Pki::new(&P256, &P256);
    let mut buf = [0u8; 100];
    assert_eq!(
        TrustAnchor::from_pem(pki.root.pem.as_bytes(), &mut buf).unwrap_err(),
        CertError::PemBufferTooSmall
    );
}

#[test]
fn der_garbage_is_refused() {
    assert_eq!(
        TrustAnchor::from_der(b"\x30\x03\x02\x01\x01").unwrap_err(),
        CertError::PinnedMalformed
    );
    assert_eq!(
        TrustAnchor::from_der(b"").unwrap_err(),
        CertError::PinnedMalformed
    );
}

#[test]
fn every_error_has_a_message() {
    use CertError::*;
    for e in [
        PemNoCertificate,
        PemMalformed,
        PemBufferTooSmall,
        PinnedMalformed,
        ClockNotSet,
        IncompleteChain,
        UnknownIssuer,
        NoSubjectAltName,
        IssuerCannotSign,
        InvalidServerName,
        NoCertificate,
        PinnedIsLeaf,
        ChainNotToPin,
        IssuerNotCa,
        PathTooLong,
        LeafIsCa,
        NotForServers,
        Expired,
        NotYetValid,
        NameMismatch,
        BadChainSignature,
        BadHandshakeSignature,
        NeedsP384,
        UnsupportedAlgorithm,
        MalformedCertificate,
        Rejected,
    ] {
        assert!(!e.to_string().is_empty());
        // Every refusal has an alert for the server.
        let _ = e.alert();
    }
}

/// The error of a failed handshake carries its detail without allocation, and stays small.
#[test]
fn open_error_is_small() {
    let size = std::mem::size_of::<rawpost::tls::OpenError>();
    assert!(size <= 176, "OpenError is {size} bytes");
}

#[test]
fn session_error_is_small() {
    // The embedded-tls error and the last record's header; it is the stream error of every
    // exchange over TLS.
    assert_eq!(std::mem::size_of::<rawpost::tls::SessionError>(), 8);
    assert_eq!(
        std::mem::size_of::<rawpost::tls::embedded_tls::TlsError>(),
        3
    );
}
