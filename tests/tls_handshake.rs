//! Handshakes of embedded-tls + the pinned-CA verifier against a real rustls TLS 1.3 server.

mod tls_support;

use rawpost::tls::{CertError, TimeUsed, TrustAnchor};
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
    assert!(outcome.reply.is_none());
}

/// The root pinned: the handshake completes, the reply arrives, and the dates were checked
/// against the clock (this was also `root_pinned_with_clock_ok`, the same test word for word).
#[tokio::test]
async fn root_pinned_ok_and_data_flows() {
    let pki = Pki::new(&P256, &P256);
    let out = run(
        pki.chain(),
        pki.leaf.key_der(),
        anchor(&pki.root),
        HOST,
        Time::Fixed,
    )
    .await;
    assert_ok(&out);
    assert!(out.used_clock());
}

#[tokio::test]
async fn intermediate_pinned_ok() {
    let pki = Pki::new(&P256, &P256);
    let out = run(
        pki.chain(),
        pki.leaf.key_der(),
        anchor(&pki.inter),
        HOST,
        Time::Fixed,
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
        HOST,
        Time::Fixed,
    )
    .await;
    assert_err(&out, CertError::PinnedIsLeaf);
    assert_eq!(
        out.explained.as_deref(),
        Some(
            "TLS certificate refused: the pinned certificate is the server's own leaf: pin the \
             root CA that issued its chain; the chain the server sent ends with a certificate \
             issued by \"Test Root CA\""
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
        HOST,
        Time::Fixed,
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
        HOST,
        Time::Fixed,
    )
    .await;
    assert_err(&out, CertError::ChainNotToPin);
    assert_eq!(
        out.explained.as_deref(),
        Some(
            "TLS certificate refused: the chain does not lead to the pinned certificate \
             \"Other Root CA\"; its top certificate \"Test Intermediate CA\" was issued by \
             \"Test Root CA\": pin \"Test Root CA\" if that is the CA you trust for this server"
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
        HOST,
        Time::Fixed,
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
        "other.example.test",
        Time::Fixed,
    )
    .await;
    assert_err(&out, CertError::NameMismatch);
    assert_eq!(
        out.explained.as_deref(),
        Some(
            "TLS certificate refused: the host \"other.example.test\" is not among the \
             certificate's names: \"api.example.test\""
        )
    );
}

#[tokio::test]
async fn host_only_in_common_name_is_refused() {
    let pki = Pki::new(&P256, &P256);
    // CN = api.example.test but the only SAN is another name: the CN is never used.
    let leaf = leaf(HOST, &P256, &["www.example.test"], &pki.inter);
    let chain = vec![leaf.der.clone(), pki.inter.der.clone()];
    let out = run(chain, leaf.key_der(), anchor(&pki.root), HOST, Time::Fixed).await;
    assert_err(&out, CertError::NameMismatch);
    assert_eq!(
        out.explained.as_deref(),
        Some(
            "TLS certificate refused: the host \"api.example.test\" is not among the \
             certificate's names: \"www.example.test\""
        )
    );
}

/// A certificate with no subjectAltName at all, only CN = the host: refused, and the message
/// says the CN is not used and how to reissue the certificate; the server gets bad_certificate.
#[tokio::test]
async fn common_name_only_certificate_is_explained() {
    let pki = Pki::new(&P256, &P256);
    let cn_only = leaf(HOST, &P256, &[], &pki.inter);
    let chain = vec![cn_only.der.clone(), pki.inter.der.clone()];
    let (out, served) = run_served(
        chain,
        cn_only.key_der(),
        anchor(&pki.root),
        HOST,
        Time::Fixed,
    )
    .await;
    assert_err(&out, CertError::NoSubjectAltName);
    assert_eq!(
        out.explained.as_deref(),
        Some(
            "TLS certificate refused: the server's certificate has no subjectAltName extension, \
             only the common name \"api.example.test\", which is not used to match host names \
             (as in browsers and rustls): reissue it with subjectAltName DNS:api.example.test"
        )
    );
    assert_eq!(
        served.alert_received(),
        Some(rustls::AlertDescription::BadCertificate)
    );
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
        HOST,
        Time::Fixed,
    )
    .await;
    assert_ok(&out);
    for host in ["a.api.example.test", "example.test"] {
        let out = run(
            chain.clone(),
            leaf.key_der(),
            anchor(&pki.root),
            host,
            Time::Fixed,
        )
        .await;
        assert_err(&out, CertError::NameMismatch);
        assert_eq!(
            out.explained.unwrap(),
            format!(
                "TLS certificate refused: the host \"{host}\" is not among the certificate's \
                 names: \"*.example.test\"; a wildcard covers exactly one left-most label \
                 (\"*.example.com\" matches \"api.example.com\", not \"example.com\" nor \
                 \"a.api.example.com\")"
            )
        );
    }
}

/// Every SAN is listed (DNS names and IP addresses), up to what the detail holds, then a count.
#[tokio::test]
async fn name_mismatch_lists_the_names_bounded() {
    let pki = Pki::new(&P256, &P256);
    let names: Vec<String> = (1..=20).map(|i| format!("host-{i}.example.test")).collect();
    let mut sans: Vec<&str> = vec!["10.1.2.3", "*.svc.example.test"];
    sans.extend(names.iter().map(String::as_str));
    let leaf = leaf("many", &P256, &sans, &pki.inter);
    let chain = vec![leaf.der.clone(), pki.inter.der.clone()];
    let out = run(chain, leaf.key_der(), anchor(&pki.root), HOST, Time::Fixed).await;
    assert_err(&out, CertError::NameMismatch);
    let explained = out.explained.unwrap();
    assert!(
        explained.starts_with(
            "TLS certificate refused: the host \"api.example.test\" is not among the \
             certificate's names: \"10.1.2.3\", \"*.svc.example.test\", \"host-1.example.test\", "
        ),
        "{explained}"
    );
    assert!(
        explained.contains(" more; a wildcard covers exactly one left-most label"),
        "{explained}"
    );
    let Some(rawpost::tls::OpenError::Certificate { detail, .. }) = out.error else {
        panic!("not a certificate error")
    };
    let shown = detail.names().count();
    assert_eq!(shown - 1 + detail.left_out(), sans.len(), "{detail:?}");
    assert!(detail.left_out() > 0);
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
    let out = run(
        chain,
        forged.key_der(),
        anchor(&pki.root),
        HOST,
        Time::Fixed,
    )
    .await;
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
    let out = run(
        chain,
        forged.key_der(),
        anchor(&pki.root),
        HOST,
        Time::Fixed,
    )
    .await;
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
        HOST,
        Time::Fixed,
    )
    .await;
    assert_err(&out, CertError::LeafIsCa);
    assert_eq!(
        out.explained.as_deref(),
        Some(
            "TLS certificate refused: the server's certificate \"api.example.test\" is a CA \
             certificate (basicConstraints cA=true), not a server certificate: issue the server \
             a certificate without cA"
        )
    );
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
    let out = run(chain, leaf.key_der(), anchor(&pki.root), HOST, Time::Fixed).await;
    assert_err(&out, CertError::NotForServers);
    assert_eq!(
        out.explained.as_deref(),
        Some(
            "TLS certificate refused: the server's certificate \"api.example.test\" is \
             restricted by extendedKeyUsage to uses other than TLS servers: reissue it with \
             serverAuth"
        )
    );
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
        HOST,
        Time::Fixed,
    )
    .await;
    assert_err(&out, CertError::Expired);
    assert!(out.used_clock());
    let explained = out.explained.unwrap();
    assert!(
        explained.starts_with(
            "TLS certificate refused: the certificate \"expired.example.test\" expired on \
             2023-01-01 (checked against 20"
        ),
        "{explained}"
    );
}

/// Only the loudly named opt-out accepts an expired certificate.
#[tokio::test]
async fn expired_leaf_accepted_only_with_dangerous_no_expiry_check() {
    let (pki, expired) = expired_pki();
    let chain = vec![expired.der.clone(), pki.inter.der.clone()];
    let out = run(
        chain,
        expired.key_der(),
        anchor(&pki.root),
        HOST,
        Time::NoExpiry,
    )
    .await;
    assert_ok(&out);
    assert!(matches!(out.time_used, Some(TimeUsed::NotChecked(_))));
}

/// No clock, a floor (e.g. the build time): a certificate that expired before it is refused.
#[tokio::test]
async fn expired_leaf_with_only_a_time_floor_is_refused() {
    let (pki, expired) = expired_pki();
    let chain = vec![expired.der.clone(), pki.inter.der.clone()];
    // 2025-01-01.
    for time in [
        Time::Floor(1_735_689_600),
        Time::Unset {
            floor: 1_735_689_600,
        },
    ] {
        let out = run(
            chain.clone(),
            expired.key_der(),
            anchor(&pki.root),
            HOST,
            time,
        )
        .await;
        assert_err(&out, CertError::Expired);
        assert_eq!(out.time_used, Some(TimeUsed::Floor(1_735_689_600)));
        assert_eq!(
            out.explained.as_deref(),
            Some(
                "TLS certificate refused: the certificate \"expired.example.test\" expired on \
                 2023-01-01 (checked against 2025-01-01): the server must renew it"
            )
        );
    }
}

/// A clock that is not set and no floor: refused, never checked silently without dates. A
/// clock reading before 2025 (an unset RTC counting from 1970) counts as not set.
#[tokio::test]
async fn clock_not_set_and_no_floor_is_refused() {
    let pki = Pki::new(&P256, &P256);
    for time in [
        Time::Unset { floor: 0 },
        Time::Clock(|| Some(42)),
        Time::Floor(0),
        Time::Floor(rawpost::tls::MIN_TIME - 1),
    ] {
        let (out, served) = run_served(
            pki.chain(),
            pki.leaf.key_der(),
            anchor(&pki.root),
            HOST,
            time,
        )
        .await;
        assert_err(&out, CertError::ClockNotSet);
        assert_eq!(
            served.alert_received(),
            Some(rustls::AlertDescription::InternalError),
            "{time:?}"
        );
    }
}

/// A clock that is not set, with a floor: the floor is used, and said so.
#[tokio::test]
async fn clock_not_set_falls_back_to_the_floor() {
    let pki = Pki::new(&P256, &P256);
    let floor = 1_765_000_000; // 2025-12-06
    let out = run(
        pki.chain(),
        pki.leaf.key_der(),
        anchor(&pki.root),
        HOST,
        Time::Unset { floor },
    )
    .await;
    assert_ok(&out);
    assert_eq!(out.time_used, Some(TimeUsed::Floor(floor)));
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
        HOST,
        Time::Fixed,
    )
    .await;
    assert_ok(&out);
}

/// The server sends only its leaf: the fault is the server's incomplete chain. The message
/// names the missing intermediate and says to pin it or fix the server, never that it is the
/// root; the server is told `unknown_ca`.
#[tokio::test]
async fn leaf_only_chain_is_an_incomplete_chain() {
    let pki = Pki::new(&P256, &P256);
    let (out, served) = run_served(
        vec![pki.leaf.der.clone()],
        pki.leaf.key_der(),
        anchor(&pki.root),
        HOST,
        Time::Fixed,
    )
    .await;
    assert_err(&out, CertError::IncompleteChain);
    assert_eq!(
        out.explained.as_deref(),
        Some(
            "TLS certificate refused: the server sent only its own certificate \
             \"api.example.test\", not the intermediate \"Test Intermediate CA\" that issued \
             it: pin \"Test Intermediate CA\" (or the root CA above it), or make the server send \
             its full chain (leaf and intermediate)"
        )
    );
    assert_eq!(
        served.alert_received(),
        Some(rustls::AlertDescription::UnknownCA)
    );
    // Pinning the named intermediate works with the same server.
    let out = run(
        vec![pki.leaf.der.clone()],
        pki.leaf.key_der(),
        anchor(&pki.inter),
        HOST,
        Time::Fixed,
    )
    .await;
    assert_ok(&out);
}

/// The leaf's issuer is none of the certificates the server sent: the server's chain file is
/// wrong. The issuer is named, and pinning it is never suggested.
#[tokio::test]
async fn issuer_matching_nothing_sent_is_an_unknown_issuer() {
    let pki = Pki::new(&P256, &P256);
    let stranger = Pki::new(&P256, &P256);
    let wrong = intermediate("Some Other Intermediate", &P256, &stranger.root);
    let (out, served) = run_served(
        vec![pki.leaf.der.clone(), wrong.der.clone()],
        pki.leaf.key_der(),
        anchor(&pki.root),
        HOST,
        Time::Fixed,
    )
    .await;
    assert_err(&out, CertError::UnknownIssuer);
    let explained = out.explained.unwrap();
    assert_eq!(
        explained,
        "TLS certificate refused: the server's certificate \"api.example.test\" names \
         \"Test Intermediate CA\" as its issuer, but no certificate the server sent, nor the \
         pinned one, is \"Test Intermediate CA\": the server is configured with the wrong chain; \
         fix the server's certificate chain file"
    );
    assert!(!explained.contains("pin \""), "{explained}");
    assert_eq!(
        served.alert_received(),
        Some(rustls::AlertDescription::UnknownCA)
    );
}

/// The server sends its root too, and it is not the pin: the root sent is named.
#[tokio::test]
async fn root_sent_by_the_server_is_named() {
    let pki = Pki::new(&P256, &P256);
    let other = root("Other Root CA", &P256);
    let chain = vec![
        pki.leaf.der.clone(),
        pki.inter.der.clone(),
        pki.root.der.clone(),
    ];
    let out = run(chain, pki.leaf.key_der(), anchor(&other), HOST, Time::Fixed).await;
    assert_err(&out, CertError::ChainNotToPin);
    assert_eq!(
        out.explained.as_deref(),
        Some(
            "TLS certificate refused: the chain ends at the root \"Test Root CA\" (sent by the \
             server), not at the pinned certificate \"Other Root CA\": pin \"Test Root CA\" if \
             that is the CA you trust for this server"
        )
    );
}

#[tokio::test]
async fn pem_and_der_anchor_give_same_result() {
    let pki = Pki::new(&P256, &P256);
    let mut buf = [0u8; 2048];
    let from_pem = TrustAnchor::from_pem(pki.root.pem.as_bytes(), &mut buf).unwrap();
    assert_eq!(from_pem.der(), pki.root.der.as_ref());
    let out = run(pki.chain(), pki.leaf.key_der(), from_pem, HOST, Time::Fixed).await;
    assert_ok(&out);

    let other = root("Other Root CA", &P256);
    let mut buf = [0u8; 2048];
    let from_pem = TrustAnchor::from_pem(other.pem.as_bytes(), &mut buf).unwrap();
    let via_pem = run(pki.chain(), pki.leaf.key_der(), from_pem, HOST, Time::Fixed).await;
    let via_der = run(
        pki.chain(),
        pki.leaf.key_der(),
        anchor(&other),
        HOST,
        Time::Fixed,
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
        HOST,
        Time::Fixed,
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
        HOST,
        Time::Fixed,
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
        HOST,
        Time::Fixed,
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
        HOST,
        Time::Fixed,
    )
    .await;
    assert_err(&out, CertError::NeedsP384);
    assert_eq!(
        out.explained.as_deref(),
        Some(
            "TLS certificate refused: certificate algorithm needs feature p384: \"Test Root CA\" uses ECDSA P-384"
        )
    );
}

#[tokio::test]
#[cfg(not(feature = "ed25519"))]
async fn ed25519_leaf_needs_its_feature() {
    let pki = Pki::new(&P256, &P256);
    let leaf = leaf(HOST, &ED25519, &[HOST], &pki.inter);
    let chain = vec![leaf.der.clone(), pki.inter.der.clone()];
    let out = run(chain, leaf.key_der(), anchor(&pki.root), HOST, Time::Fixed).await;
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
        HOST,
        Time::Fixed,
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
        HOST,
        Time::Fixed,
    )
    .await;
    assert!(out.result.is_ok(), "{:?}", out.result);

    let root = root("Ed25519 Root", &ED25519);
    let inter = intermediate("Ed25519 Issuing CA", &ED25519, &root);
    let server = leaf(HOST, &ED25519, &[HOST], &inter);
    let chain = vec![server.der.clone(), inter.der.clone()];
    let out = run(chain, server.key_der(), anchor(&root), HOST, Time::Fixed).await;
    assert!(out.result.is_ok(), "{:?}", out.result);

    // A wrong name is still caught on an Ed25519 chain.
    let chain = vec![server.der.clone(), inter.der.clone()];
    let out = run(
        chain,
        server.key_der(),
        anchor(&root),
        "other.example.test",
        Time::Fixed,
    )
    .await;
    assert_err(&out, CertError::NameMismatch);
}

#[tokio::test]
async fn provider_reused_for_second_connection() {
    let pki = Pki::new(&P256, &P256);
    let other = Pki::new(&P256, &P256);
    let mut provider = rawpost::tls::PinnedProvider::new(
        rand_core::OsRng,
        anchor(&pki.root),
        rawpost::tls::TimeSource::clock(fixed_clock),
    );

    let (addr, server) = serve(pki.chain(), pki.leaf.key_der()).await;
    assert_ok(&connect(addr, HOST, &mut provider).await);
    server.await.unwrap().request.unwrap();

    // Second server is under another root: the earlier success must not leak.
    let (addr, server) = serve(other.chain(), other.leaf.key_der()).await;
    let out = connect(addr, HOST, &mut provider).await;
    let _ = server.await;
    assert_err(&out, CertError::BadChainSignature);
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
        "127.0.0.1",
        Time::Fixed,
    )
    .await;
    assert_ok(&out);
    let out = run(
        chain,
        leaf.key_der(),
        anchor(&pki.root),
        "127.0.0.2",
        Time::Fixed,
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
    let out = run(
        chain,
        server.key_der(),
        anchor(&pki.root),
        HOST,
        Time::Fixed,
    )
    .await;
    assert_err(&out, CertError::IssuerCannotSign);
    // The same chain with keyCertSign in the CA's keyUsage is accepted.
    let good = intermediate("Signing CA", &P256, &pki.root);
    let server = leaf(HOST, &P256, &[HOST], &good);
    let chain = vec![server.der.clone(), good.der.clone()];
    let out = run(
        chain,
        server.key_der(),
        anchor(&pki.root),
        HOST,
        Time::Fixed,
    )
    .await;
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
    let out = run(
        chain,
        server.key_der(),
        anchor(&pki.root),
        HOST,
        Time::Fixed,
    )
    .await;
    assert_err(&out, CertError::PathTooLong);
    // Directly under the constrained CA, the leaf is fine.
    let server = leaf(HOST, &P256, &[HOST], &constrained);
    let chain = vec![server.der.clone(), constrained.der.clone()];
    let out = run(
        chain,
        server.key_der(),
        anchor(&pki.root),
        HOST,
        Time::Fixed,
    )
    .await;
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
        HOST,
        Time::Fixed,
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
        HOST,
        Time::Fixed,
    )
    .await;
    assert!(out.result.is_ok(), "{:?}", out.result);
    let out = run(
        chain,
        server.key_der(),
        anchor(&root),
        "other.example.test",
        Time::Fixed,
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
        HOST,
        Time::Fixed,
    )
    .await;
    assert_err(&out, CertError::NotYetValid);
    let explained = out.explained.unwrap();
    assert!(
        explained.starts_with(
            "TLS certificate refused: the certificate \"api.example.test\" is valid only from \
             2040-01-01, and the time used was 20"
        ),
        "{explained}"
    );
}

/// `tls::connect` refuses a host that is not a valid name before a byte of the handshake.
#[tokio::test]
async fn connect_refuses_an_invalid_host_name() {
    use embedded_io_adapters::tokio_1::FromTokio;
    use rawpost::tls::PinnedProvider;
    let pki = Pki::new(&P256, &P256);
    let (addr, _server) = serve(pki.chain(), pki.leaf.key_der()).await;
    let tcp = tokio::net::TcpStream::connect(addr).await.unwrap();
    let (mut read_buf, mut write_buf) = (vec![0u8; 16640], vec![0u8; 4096]);
    let mut provider = PinnedProvider::new(
        rand_core::OsRng,
        anchor(&pki.root),
        rawpost::tls::TimeSource::clock(fixed_clock),
    );
    let mut buf = [0u8; 512];
    let host = rawpost::Host::new("api example test");
    let tcp = FromTokio::new(tcp);
    let err = rawpost::tls::connect(
        tcp,
        &mut read_buf,
        &mut write_buf,
        host,
        &mut provider,
        &mut buf,
    )
    .await
    .unwrap_err();
    assert_eq!(
        err.cert_error(),
        Some(CertError::InvalidServerName),
        "{err:?}"
    );
    assert_eq!(
        err.to_string(),
        "TLS certificate refused: the host \"api example test\" is neither a DNS name nor an \
         IP address (write IPv6 in brackets, e.g. [::1])"
    );
}

/// A clock with state (an SNTP result and when it arrived), not a `static`: `Clock` is a trait.
#[tokio::test]
async fn a_clock_with_state_is_a_clock() {
    struct Synced {
        unix_at_sync: u64,
        synced_at: std::time::Instant,
    }
    impl rawpost::tls::Clock for Synced {
        fn now(&self) -> Option<u64> {
            Some(self.unix_at_sync + self.synced_at.elapsed().as_secs())
        }
    }
    let pki = Pki::new(&P256, &P256);
    let (addr, server) = serve(pki.chain(), pki.leaf.key_der()).await;
    let clock = Synced {
        unix_at_sync: fixed_clock().unwrap(),
        synced_at: std::time::Instant::now(),
    };
    let mut provider = rawpost::tls::PinnedProvider::new(
        rand_core::OsRng,
        anchor(&pki.root),
        rawpost::tls::TimeSource::clock(clock),
    );
    let out = connect(addr, HOST, &mut provider).await;
    server.await.unwrap();
    assert_ok(&out);
    assert!(out.used_clock());
    // The clock can be updated in place (a new SNTP result).
    provider.time_source_mut().clock_mut().unix_at_sync = 0;
}
