//! Handshakes of embedded-tls + the pinned-CA verifier against a real rustls TLS 1.3 server.

mod tls_support;

use rawpost::tls::{CertError, TrustAnchor};
use rcgen::ExtendedKeyUsagePurpose;
use tls_support::*;

fn anchor(cert: &Cert) -> TrustAnchor<'_> {
    TrustAnchor::from_der(cert.der.as_ref()).unwrap()
}

fn assert_ok(outcome: &Outcome) {
    assert_eq!(outcome.result, Ok(()), "{outcome:?}");
    let reply = outcome.reply.as_deref().unwrap();
    assert!(reply.starts_with("HTTP/1.1 200 OK\r\n"), "{reply}");
    assert!(reply.ends_with("\r\n\r\nhello"), "{reply}");
}

fn assert_err(outcome: &Outcome, error: CertError) {
    assert_eq!(outcome.result, Err(Some(error)), "{outcome:?}");
    assert!(outcome.tls_error.is_some());
    assert!(outcome.reply.is_none());
}

#[tokio::test]
async fn root_pinned_ok_and_data_flows() {
    let pki = Pki::new(&P256, &P256);
    let out = run(
        pki.chain(),
        pki.leaf.key_der(),
        anchor(&pki.root),
        Some(HOST),
        None,
    )
    .await;
    assert_ok(&out);
    assert!(!out.used_clock);
}

#[tokio::test]
async fn root_pinned_with_clock_ok() {
    let pki = Pki::new(&P256, &P256);
    let out = run(
        pki.chain(),
        pki.leaf.key_der(),
        anchor(&pki.root),
        Some(HOST),
        Some(fixed_clock),
    )
    .await;
    assert_ok(&out);
    assert!(out.used_clock);
}

#[tokio::test]
async fn intermediate_pinned_ok() {
    let pki = Pki::new(&P256, &P256);
    let out = run(
        pki.chain(),
        pki.leaf.key_der(),
        anchor(&pki.inter),
        Some(HOST),
        None,
    )
    .await;
    assert_ok(&out);
}

#[tokio::test]
async fn leaf_pinned_is_refused_with_advice() {
    let pki = Pki::new(&P256, &P256);
    let out = run(
        pki.chain(),
        pki.leaf.key_der(),
        anchor(&pki.leaf),
        Some(HOST),
        None,
    )
    .await;
    assert_err(&out, CertError::PinnedIsLeaf);
    assert_eq!(
        out.explained.as_deref(),
        Some(
            "the pinned certificate is the server's own leaf: pin the root CA that issued its \
             chain; the chain's top certificate was issued by \"Test Root CA\""
        )
    );
}

#[tokio::test]
async fn stale_leaf_pinned_is_refused_with_advice() {
    let pki = Pki::new(&P256, &P256);
    // The leaf was renewed with a new key; the user pinned the old one.
    let old_leaf = leaf(HOST, &P256, &[HOST], &pki.inter);
    let out = run(
        pki.chain(),
        pki.leaf.key_der(),
        anchor(&old_leaf),
        Some(HOST),
        None,
    )
    .await;
    assert_err(&out, CertError::PinnedIsLeaf);
}

#[tokio::test]
async fn unrelated_root_names_the_real_issuer() {
    let pki = Pki::new(&P256, &P256);
    let other = root("Other Root CA", &P256);
    let out = run(
        pki.chain(),
        pki.leaf.key_der(),
        anchor(&other),
        Some(HOST),
        None,
    )
    .await;
    assert_err(&out, CertError::ChainNotToPin);
    assert_eq!(
        out.explained.as_deref(),
        Some(
            "the chain does not lead to the pinned certificate; its top certificate was issued \
             by \"Test Root CA\""
        )
    );
}

#[tokio::test]
async fn root_with_same_name_but_other_key_is_refused() {
    let pki = Pki::new(&P256, &P256);
    let impostor = root("Test Root CA", &P256);
    let out = run(
        pki.chain(),
        pki.leaf.key_der(),
        anchor(&impostor),
        Some(HOST),
        None,
    )
    .await;
    assert_err(&out, CertError::BadChainSignature);
}

#[tokio::test]
async fn wrong_sni_is_a_name_error() {
    let pki = Pki::new(&P256, &P256);
    let out = run(
        pki.chain(),
        pki.leaf.key_der(),
        anchor(&pki.root),
        Some("other.example.test"),
        None,
    )
    .await;
    assert_err(&out, CertError::NameMismatch);
    assert_eq!(
        out.explained.as_deref(),
        Some("host name not in the certificate; the certificate is for \"api.example.test\"")
    );
}

#[tokio::test]
async fn host_only_in_common_name_is_refused() {
    let pki = Pki::new(&P256, &P256);
    // CN = api.example.test but the only SAN is another name: the CN is never used.
    let leaf = leaf(HOST, &P256, &["www.example.test"], &pki.inter);
    let chain = vec![leaf.der.clone(), pki.inter.der.clone()];
    let out = run(chain, leaf.key_der(), anchor(&pki.root), Some(HOST), None).await;
    assert_err(&out, CertError::NameMismatch);
}

#[tokio::test]
async fn wildcard_covers_one_label() {
    let pki = Pki::new(&P256, &P256);
    let leaf = leaf("wild", &P256, &["*.example.test"], &pki.inter);
    let chain = vec![leaf.der.clone(), pki.inter.der.clone()];
    let out = run(
        chain.clone(),
        leaf.key_der(),
        anchor(&pki.root),
        Some(HOST),
        None,
    )
    .await;
    assert_ok(&out);
    let out = run(
        chain,
        leaf.key_der(),
        anchor(&pki.root),
        Some("a.api.example.test"),
        None,
    )
    .await;
    assert_err(&out, CertError::NameMismatch);
}

#[tokio::test]
async fn no_sni_is_refused() {
    let pki = Pki::new(&P256, &P256);
    let out = run(
        pki.chain(),
        pki.leaf.key_der(),
        anchor(&pki.root),
        None,
        None,
    )
    .await;
    assert_err(&out, CertError::NoServerName);
}

#[tokio::test]
async fn forged_chain_under_non_ca_without_basic_constraints() {
    let pki = Pki::new(&P256, &P256);
    // An ordinary server certificate (no basicConstraints) under the pinned root signs a
    // certificate for our host.
    let fake_ca = leaf(
        "evil.example.test",
        &P256,
        &["evil.example.test"],
        &pki.inter,
    );
    let forged = leaf(HOST, &P256, &[HOST], &fake_ca);
    let chain = vec![
        forged.der.clone(),
        fake_ca.der.clone(),
        pki.inter.der.clone(),
    ];
    let out = run(chain, forged.key_der(), anchor(&pki.root), Some(HOST), None).await;
    assert_err(&out, CertError::IssuerNotCa);
}

#[tokio::test]
async fn forged_chain_under_explicit_non_ca() {
    let pki = Pki::new(&P256, &P256);
    let fake_ca = make(
        "evil.example.test",
        &P256,
        Some(false),
        &["evil.example.test"],
        Some(&pki.root),
        (2024, 2050),
        None,
    );
    let forged = leaf(HOST, &P256, &[HOST], &fake_ca);
    let chain = vec![forged.der.clone(), fake_ca.der.clone()];
    let out = run(chain, forged.key_der(), anchor(&pki.root), Some(HOST), None).await;
    assert_err(&out, CertError::IssuerNotCa);
}

#[tokio::test]
async fn ca_certificate_as_server_is_refused() {
    let pki = Pki::new(&P256, &P256);
    let ca_leaf = make(
        HOST,
        &P256,
        Some(true),
        &[HOST],
        Some(&pki.inter),
        (2024, 2050),
        None,
    );
    let chain = vec![ca_leaf.der.clone(), pki.inter.der.clone()];
    let out = run(
        chain,
        ca_leaf.key_der(),
        anchor(&pki.root),
        Some(HOST),
        None,
    )
    .await;
    assert_err(&out, CertError::LeafIsCa);
}

#[tokio::test]
async fn client_auth_only_certificate_is_refused() {
    let pki = Pki::new(&P256, &P256);
    let leaf = make(
        HOST,
        &P256,
        None,
        &[HOST],
        Some(&pki.inter),
        (2024, 2050),
        Some(ExtendedKeyUsagePurpose::ClientAuth),
    );
    let chain = vec![leaf.der.clone(), pki.inter.der.clone()];
    let out = run(chain, leaf.key_der(), anchor(&pki.root), Some(HOST), None).await;
    assert_err(&out, CertError::NotForServers);
}

fn expired_pki() -> (Pki, Cert) {
    let pki = Pki::new(&P256, &P256);
    let expired = make(
        "expired.example.test",
        &P256,
        None,
        &[HOST],
        Some(&pki.inter),
        (2022, 2023),
        Some(ExtendedKeyUsagePurpose::ServerAuth),
    );
    (pki, expired)
}

#[tokio::test]
async fn expired_leaf_with_clock_is_refused() {
    let (pki, expired) = expired_pki();
    let chain = vec![expired.der.clone(), pki.inter.der.clone()];
    let out = run(
        chain,
        expired.key_der(),
        anchor(&pki.root),
        Some(HOST),
        Some(fixed_clock),
    )
    .await;
    assert_err(&out, CertError::Expired);
    assert!(out.used_clock);
    assert_eq!(
        out.explained.as_deref(),
        Some("certificate expired: \"expired.example.test\"")
    );
}

#[tokio::test]
async fn expired_leaf_without_clock_is_accepted_documented_gap() {
    let (pki, expired) = expired_pki();
    let chain = vec![expired.der.clone(), pki.inter.der.clone()];
    let out = run(
        chain,
        expired.key_der(),
        anchor(&pki.root),
        Some(HOST),
        None,
    )
    .await;
    assert_ok(&out);
    assert!(!out.used_clock);
}

#[tokio::test]
async fn expired_leaf_without_clock_but_time_floor_is_refused() {
    let (pki, expired) = expired_pki();
    let chain = vec![expired.der.clone(), pki.inter.der.clone()];
    let (addr, server) = serve(chain, expired.key_der()).await;
    // 2025-01-01, e.g. the firmware's build time.
    let mut provider = rawpost::tls::PinnedProvider::new(rand_core::OsRng, anchor(&pki.root))
        .with_time_floor(1_735_689_600);
    let out = connect(addr, Some(HOST), &mut provider).await;
    let _ = server.await;
    assert_err(&out, CertError::Expired);
}

#[tokio::test]
async fn clock_not_synced_falls_back_to_issuance_time() {
    let pki = Pki::new(&P256, &P256);
    let out = run(
        pki.chain(),
        pki.leaf.key_der(),
        anchor(&pki.root),
        Some(HOST),
        Some(|| None),
    )
    .await;
    assert_ok(&out);
    assert!(!out.used_clock);
}

#[tokio::test]
async fn extra_unrelated_certificates_are_tolerated() {
    let pki = Pki::new(&P256, &P256);
    let junk_root = root("Junk Root", &P256);
    let junk = intermediate("Junk Intermediate", &P256, &junk_root);
    // Out of order, with unrelated extras.
    let chain = vec![
        pki.leaf.der.clone(),
        junk.der.clone(),
        junk_root.der.clone(),
        pki.inter.der.clone(),
        pki.root.der.clone(),
    ];
    let out = run(
        chain,
        pki.leaf.key_der(),
        anchor(&pki.root),
        Some(HOST),
        None,
    )
    .await;
    assert_ok(&out);
}

#[tokio::test]
async fn missing_intermediate_is_chain_error() {
    let pki = Pki::new(&P256, &P256);
    let chain = vec![pki.leaf.der.clone()];
    let out = run(
        chain,
        pki.leaf.key_der(),
        anchor(&pki.root),
        Some(HOST),
        None,
    )
    .await;
    assert_err(&out, CertError::ChainNotToPin);
    assert!(out.explained.unwrap().ends_with("\"Test Intermediate CA\""));
}

#[tokio::test]
async fn pem_and_der_anchor_give_same_result() {
    let pki = Pki::new(&P256, &P256);
    let mut buf = [0u8; 2048];
    let from_pem = TrustAnchor::from_pem(pki.root.pem.as_bytes(), &mut buf).unwrap();
    assert_eq!(from_pem.der(), pki.root.der.as_ref());
    let out = run(pki.chain(), pki.leaf.key_der(), from_pem, Some(HOST), None).await;
    assert_ok(&out);

    let other = root("Other Root CA", &P256);
    let mut buf = [0u8; 2048];
    let from_pem = TrustAnchor::from_pem(other.pem.as_bytes(), &mut buf).unwrap();
    let via_pem = run(pki.chain(), pki.leaf.key_der(), from_pem, Some(HOST), None).await;
    let via_der = run(
        pki.chain(),
        pki.leaf.key_der(),
        anchor(&other),
        Some(HOST),
        None,
    )
    .await;
    assert_eq!(via_pem.result, via_der.result);
    assert_eq!(via_pem.explained, via_der.explained);
}

#[cfg(feature = "p384")]
#[tokio::test]
async fn p384_root_with_p256_leaf() {
    let pki = Pki::new(&P384, &P256);
    let out = run(
        pki.chain(),
        pki.leaf.key_der(),
        anchor(&pki.root),
        Some(HOST),
        None,
    )
    .await;
    assert_ok(&out);
}

#[cfg(feature = "p384")]
#[tokio::test]
async fn p384_root_signing_p256_leaf_directly() {
    let root = root("P-384 Root", &P384);
    let leaf = leaf(HOST, &P256, &[HOST], &root);
    let out = run(
        vec![leaf.der.clone()],
        leaf.key_der(),
        anchor(&root),
        Some(HOST),
        None,
    )
    .await;
    assert_ok(&out);
}

#[cfg(feature = "p384")]
#[tokio::test]
async fn p384_leaf_handshake_signature() {
    let pki = Pki::new(&P384, &P384);
    let out = run(
        pki.chain(),
        pki.leaf.key_der(),
        anchor(&pki.root),
        Some(HOST),
        None,
    )
    .await;
    assert_ok(&out);
}

#[cfg(not(feature = "p384"))]
#[tokio::test]
async fn p384_root_without_feature_says_so() {
    let pki = Pki::new(&P384, &P256);
    let out = run(
        pki.chain(),
        pki.leaf.key_der(),
        anchor(&pki.root),
        Some(HOST),
        None,
    )
    .await;
    assert_err(&out, CertError::NeedsP384);
    assert_eq!(
        out.explained.as_deref(),
        Some("certificate algorithm needs feature p384")
    );
}

#[tokio::test]
#[cfg(not(feature = "ed25519"))]
async fn ed25519_leaf_needs_its_feature() {
    let pki = Pki::new(&P256, &P256);
    let leaf = leaf(HOST, &ED25519, &[HOST], &pki.inter);
    let chain = vec![leaf.der.clone(), pki.inter.der.clone()];
    let out = run(chain, leaf.key_der(), anchor(&pki.root), Some(HOST), None).await;
    assert_err(&out, CertError::UnsupportedAlgorithm);
}

/// Without `rsa`: an RSA root over a P-256 chain is refused as an unsupported algorithm.
#[tokio::test]
#[cfg(not(feature = "rsa"))]
async fn rsa_root_needs_its_feature() {
    let pki = Pki::new(&rcgen::PKCS_RSA_SHA256, &P256);
    let out = run(
        pki.chain(),
        pki.leaf.key_der(),
        anchor(&pki.root),
        Some(HOST),
        None,
    )
    .await;
    assert_err(&out, CertError::UnsupportedAlgorithm);
}

/// With `ed25519` (on in `cargo test-all`): an Ed25519 leaf under a P-256 intermediate, and an
/// all-Ed25519 chain, both verify, certificate signatures and the handshake signature alike.
#[tokio::test]
#[cfg(feature = "ed25519")]
async fn ed25519_chains_verify() {
    let pki = Pki::new(&P256, &ED25519);
    let out = run(
        pki.chain(),
        pki.leaf.key_der(),
        anchor(&pki.root),
        Some(HOST),
        None,
    )
    .await;
    assert!(out.result.is_ok(), "{:?}", out.result);

    let root = root("Ed25519 Root", &ED25519);
    let inter = intermediate("Ed25519 Issuing CA", &ED25519, &root);
    let server = leaf(HOST, &ED25519, &[HOST], &inter);
    let chain = vec![server.der.clone(), inter.der.clone()];
    let out = run(chain, server.key_der(), anchor(&root), Some(HOST), None).await;
    assert!(out.result.is_ok(), "{:?}", out.result);

    // A wrong name is still caught on an Ed25519 chain.
    let chain = vec![server.der.clone(), inter.der.clone()];
    let out = run(
        chain,
        server.key_der(),
        anchor(&root),
        Some("other.example.test"),
        None,
    )
    .await;
    assert_err(&out, CertError::NameMismatch);
}

#[tokio::test]
async fn provider_reused_for_second_connection() {
    let pki = Pki::new(&P256, &P256);
    let other = Pki::new(&P256, &P256);
    let mut provider = rawpost::tls::PinnedProvider::new(rand_core::OsRng, anchor(&pki.root));

    let (addr, server) = serve(pki.chain(), pki.leaf.key_der()).await;
    assert_ok(&connect(addr, Some(HOST), &mut provider).await);
    server.await.unwrap().unwrap();
    assert!(provider.server_authenticated());

    // Second server is under another root: the earlier success must not leak.
    let (addr, server) = serve(other.chain(), other.leaf.key_der()).await;
    let out = connect(addr, Some(HOST), &mut provider).await;
    let _ = server.await;
    assert_err(&out, CertError::BadChainSignature);
    assert!(!provider.server_authenticated());
}

#[tokio::test]
async fn ip_address_server_name_matches_ip_san() {
    let pki = Pki::new(&P256, &P256);
    let leaf = leaf("device", &P256, &["127.0.0.1"], &pki.inter);
    let chain = vec![leaf.der.clone(), pki.inter.der.clone()];
    let out = run(
        chain.clone(),
        leaf.key_der(),
        anchor(&pki.root),
        Some("127.0.0.1"),
        None,
    )
    .await;
    assert_ok(&out);
    let out = run(
        chain,
        leaf.key_der(),
        anchor(&pki.root),
        Some("127.0.0.2"),
        None,
    )
    .await;
    assert_err(&out, CertError::NameMismatch);
}

#[tokio::test]
async fn issuing_ca_without_key_cert_sign_is_refused() {
    let pki = Pki::new(&P256, &P256);
    // A CA certificate (cA=true) whose keyUsage allows only CRL signing: it may not issue
    // certificates (RFC 5280 §4.2.1.3), which webpki alone does not check.
    let crl_only = custom_ca(
        "CRL-only CA",
        rcgen::BasicConstraints::Unconstrained,
        rcgen::KeyUsagePurpose::CrlSign,
        &pki.root,
    );
    let server = leaf(HOST, &P256, &[HOST], &crl_only);
    let chain = vec![server.der.clone(), crl_only.der.clone()];
    let out = run(chain, server.key_der(), anchor(&pki.root), Some(HOST), None).await;
    assert_err(&out, CertError::IssuerCannotSign);
    // The same chain with keyCertSign in the CA's keyUsage is accepted.
    let good = intermediate("Signing CA", &P256, &pki.root);
    let server = leaf(HOST, &P256, &[HOST], &good);
    let chain = vec![server.der.clone(), good.der.clone()];
    let out = run(chain, server.key_der(), anchor(&pki.root), Some(HOST), None).await;
    assert!(out.result.is_ok(), "{:?}", out.result);
}

#[tokio::test]
async fn path_length_constraint_is_enforced() {
    let pki = Pki::new(&P256, &P256);
    // root → "Constrained CA" (pathLenConstraint 0) → "Sub CA" → leaf: one CA too many below it.
    let constrained = custom_ca(
        "Constrained CA",
        rcgen::BasicConstraints::Constrained(0),
        rcgen::KeyUsagePurpose::KeyCertSign,
        &pki.root,
    );
    let sub = intermediate("Sub CA", &P256, &constrained);
    let server = leaf(HOST, &P256, &[HOST], &sub);
    let chain = vec![server.der.clone(), sub.der.clone(), constrained.der.clone()];
    let out = run(chain, server.key_der(), anchor(&pki.root), Some(HOST), None).await;
    assert_err(&out, CertError::PathTooLong);
    // Directly under the constrained CA, the leaf is fine.
    let server = leaf(HOST, &P256, &[HOST], &constrained);
    let chain = vec![server.der.clone(), constrained.der.clone()];
    let out = run(chain, server.key_der(), anchor(&pki.root), Some(HOST), None).await;
    assert!(out.result.is_ok(), "{:?}", out.result);
}

/// A P-256 CA certificate under `parent` with these basic constraints and a keyUsage of
/// exactly `usage`.
fn custom_ca(
    cn: &str,
    constraints: rcgen::BasicConstraints,
    usage: rcgen::KeyUsagePurpose,
    parent: &Cert,
) -> Cert {
    let mut params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
    params.distinguished_name = rcgen::DistinguishedName::new();
    params
        .distinguished_name
        .push(rcgen::DnType::CommonName, cn);
    params.is_ca = rcgen::IsCa::Ca(constraints);
    params.key_usages = vec![usage];
    params.not_before = rcgen::date_time_ymd(2021, 1, 1);
    params.not_after = rcgen::date_time_ymd(2055, 1, 1);
    let key = rcgen::KeyPair::generate_for(&P256).unwrap();
    let cert = params.signed_by(&key, &parent.issuer()).unwrap();
    Cert {
        pem: cert.pem(),
        der: cert.der().clone(),
        params,
        key,
    }
}

/// With `rsa` (on in `cargo test-all`): an RSA root over a P-256 chain (RSA PKCS#1 certificate
/// signature), and an all-RSA chain (RSA-PSS handshake signature), both verify; a wrong name is
/// still caught.
#[tokio::test]
#[cfg(feature = "rsa")]
async fn rsa_chains_verify() {
    let rsa = &rcgen::PKCS_RSA_SHA256;
    let pki = Pki::new(rsa, &P256);
    let out = run(
        pki.chain(),
        pki.leaf.key_der(),
        anchor(&pki.root),
        Some(HOST),
        None,
    )
    .await;
    assert!(out.result.is_ok(), "{:?}", out.result);

    let root = root("RSA Root", rsa);
    let inter = intermediate("RSA Issuing CA", rsa, &root);
    let server = leaf(HOST, rsa, &[HOST], &inter);
    let chain = vec![server.der.clone(), inter.der.clone()];
    let out = run(
        chain.clone(),
        server.key_der(),
        anchor(&root),
        Some(HOST),
        None,
    )
    .await;
    assert!(out.result.is_ok(), "{:?}", out.result);
    let out = run(
        chain,
        server.key_der(),
        anchor(&root),
        Some("other.example.test"),
        None,
    )
    .await;
    assert_err(&out, CertError::NameMismatch);
}

#[tokio::test]
async fn not_yet_valid_leaf_with_clock_is_refused() {
    let pki = Pki::new(&P256, &P256);
    let future = make(
        HOST,
        &P256,
        None,
        &[HOST],
        Some(&pki.inter),
        (2040, 2050),
        Some(ExtendedKeyUsagePurpose::ServerAuth),
    );
    let chain = vec![future.der.clone(), pki.inter.der.clone()];
    let out = run(
        chain,
        future.key_der(),
        anchor(&pki.root),
        Some(HOST),
        Some(fixed_clock),
    )
    .await;
    assert_err(&out, CertError::NotYetValid);
}

/// `tls::connect` refuses a host that is not a valid name before a byte of the handshake.
#[tokio::test]
async fn connect_refuses_an_invalid_host_name() {
    use embedded_io_adapters::tokio_1::FromTokio;
    use rawpost::tls::{embedded_tls::TlsConnection, OpenError, PinnedProvider};
    let pki = Pki::new(&P256, &P256);
    let (addr, _server) = serve(pki.chain(), pki.leaf.key_der()).await;
    let tcp = tokio::net::TcpStream::connect(addr).await.unwrap();
    let (mut read_buf, mut write_buf) = (vec![0u8; 16640], vec![0u8; 4096]);
    let tls = TlsConnection::new(FromTokio::new(tcp), &mut read_buf, &mut write_buf);
    let mut provider = PinnedProvider::new(rand_core::OsRng, anchor(&pki.root));
    let mut buf = [0u8; 512];
    let host = rawpost::Host::new("api example test");
    let err = rawpost::tls::connect(tls, host, &mut provider, &mut buf)
        .await
        .unwrap_err();
    assert!(
        matches!(err, OpenError::Certificate(CertError::InvalidServerName)),
        "{err:?}"
    );
}
