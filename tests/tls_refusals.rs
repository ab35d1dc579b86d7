//! Misbehaving and incompatible servers, for real, through `rawpost::tls::connect`: a rustls
//! TLS 1.3 server on loopback that signs its handshake with the wrong key, sends a certificate
//! that is not DER or no certificate at all, speaks only TLS 1.2, or shares no key-exchange
//! group or cipher suite with embedded-tls; and IP-address hosts. Each gives its exact error,
//! its explanation, and (for certificate refusals) the alert the server received.

mod tls_support;

use std::sync::Arc;

use embedded_io_adapters::tokio_1::FromTokio;
use embedded_tls::alert::{AlertDescription, AlertLevel};
use embedded_tls::TlsError;
use rand_core::OsRng;
use rawpost::tls::{CertError, OpenError, PinnedProvider, TimeSource, TrustAnchor};
use rawpost::Host;
use rustls::pki_types::CertificateDer;
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::{CertifiedKey, Signer, SigningKey};
use rustls::{SignatureAlgorithm, SignatureScheme};
use tls_support::*;

/// Opens `rawpost::tls::connect` to `addr` for `host`, pinning `root`.
async fn connect_to(addr: std::net::SocketAddr, host: &str, root: &Cert) -> Result<(), OpenError> {
    let tcp = tokio::net::TcpStream::connect(addr).await.unwrap();
    let (mut rx, mut tx) = (vec![0u8; 16_640], vec![0u8; 4096]);
    let mut http = vec![0u8; 1024];
    let anchor = TrustAnchor::from_der(root.der.as_ref()).unwrap();
    let mut provider = PinnedProvider::new(OsRng, anchor, TimeSource::clock(fixed_clock));
    rawpost::tls::connect(
        FromTokio::new(tcp),
        &mut rx,
        &mut tx,
        Host::new(host),
        &mut provider,
        &mut http,
    )
    .await
    .map(|_| ())
}

/// A server config that presents `chain` and signs with `key`, whatever the client asks.
fn config_with(
    chain: Vec<CertificateDer<'static>>,
    key: Arc<dyn SigningKey>,
) -> rustls::ServerConfig {
    #[derive(Debug)]
    struct Always(Arc<CertifiedKey>);
    impl ResolvesServerCert for Always {
        fn resolve(&self, _: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
            Some(self.0.clone())
        }
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    rustls::ServerConfig::builder_with_provider(provider)
        .with_protocol_versions(&[&rustls::version::TLS13])
        .unwrap()
        .with_no_client_auth()
        .with_cert_resolver(Arc::new(Always(Arc::new(CertifiedKey::new(chain, key)))))
}

fn signing_key(cert: &Cert) -> Arc<dyn SigningKey> {
    rustls::crypto::ring::default_provider()
        .key_provider
        .load_private_key(cert.key_der())
        .unwrap()
}

/// A signing key that offers the real key's scheme but signs with another key: a
/// well-formed CertificateVerify whose signature is wrong.
#[derive(Debug)]
struct WrongKey {
    real: Arc<dyn SigningKey>,
    other: Arc<dyn SigningKey>,
}

impl SigningKey for WrongKey {
    fn choose_scheme(&self, offered: &[SignatureScheme]) -> Option<Box<dyn Signer>> {
        let real = self.real.choose_scheme(offered)?;
        let other = self.other.choose_scheme(&[real.scheme()])?;
        Some(other)
    }

    fn algorithm(&self) -> SignatureAlgorithm {
        self.real.algorithm()
    }
}

fn assert_refused(
    result: Result<(), OpenError>,
    served: &Served,
    error: CertError,
    alert: rustls::AlertDescription,
) -> String {
    let e = result.expect_err("the handshake must fail");
    assert_eq!(e.cert_error(), Some(error), "{e:?}");
    assert_eq!(served.alert_received(), Some(alert), "{served:?}");
    e.to_string()
}

#[tokio::test]
async fn certificate_verify_with_a_bad_signature() {
    let pki = Pki::new(&P256, &P256);
    let impostor = leaf(HOST, &P256, &[HOST], &pki.inter);
    let key = Arc::new(WrongKey {
        real: signing_key(&pki.leaf),
        other: signing_key(&impostor),
    });
    let (addr, server) = serve_config(config_with(pki.chain(), key)).await;
    let result = connect_to(addr, HOST, &pki.root).await;
    let served = server.await.unwrap();
    let explained = assert_refused(
        result,
        &served,
        CertError::BadHandshakeSignature,
        rustls::AlertDescription::DecryptError,
    );
    assert_eq!(
        explained,
        "TLS certificate refused: the server's handshake signature (CertificateVerify) does not \
         verify with the key of its certificate \"api.example.test\": the server's private key \
         does not match its certificate, or someone is impersonating the server"
    );
}

#[tokio::test]
async fn certificate_that_is_not_der() {
    let pki = Pki::new(&P256, &P256);
    let chain = vec![CertificateDer::from(b"this is not a certificate".to_vec())];
    let (addr, server) = serve_config(config_with(chain, signing_key(&pki.leaf))).await;
    let result = connect_to(addr, HOST, &pki.root).await;
    let served = server.await.unwrap();
    let explained = assert_refused(
        result,
        &served,
        CertError::MalformedCertificate,
        rustls::AlertDescription::BadCertificate,
    );
    assert_eq!(
        explained,
        "TLS certificate refused: certificate #1 the server sent (#1 is its own) is not a valid \
         X.509 certificate, or has an unsupported critical extension"
    );
}

#[tokio::test]
async fn intermediate_that_is_not_der() {
    let pki = Pki::new(&P256, &P256);
    let chain = vec![
        pki.leaf.der.clone(),
        CertificateDer::from(vec![0x30, 0x03, 0x02, 0x01, 0x01]),
    ];
    let (addr, server) = serve_config(config_with(chain, signing_key(&pki.leaf))).await;
    let result = connect_to(addr, HOST, &pki.root).await;
    let served = server.await.unwrap();
    let explained = assert_refused(
        result,
        &served,
        CertError::MalformedCertificate,
        rustls::AlertDescription::BadCertificate,
    );
    assert_eq!(
        explained,
        "TLS certificate refused: certificate #2 the server sent (#1 is its own) is not a valid \
         X.509 certificate, or has an unsupported critical extension"
    );
}

#[tokio::test]
async fn empty_certificate_list() {
    let pki = Pki::new(&P256, &P256);
    let (addr, server) = serve_config(config_with(vec![], signing_key(&pki.leaf))).await;
    let result = connect_to(addr, HOST, &pki.root).await;
    let served = server.await.unwrap();
    let explained = assert_refused(
        result,
        &served,
        CertError::NoCertificate,
        rustls::AlertDescription::DecodeError,
    );
    assert_eq!(
        explained,
        "TLS certificate refused: the server did not prove its identity: it sent no \
         certificate (an empty certificate list), or no CertificateVerify signature"
    );
}

/// Every alert a certificate refusal sends reaches a rustls server intact (embedded-tls 0.19
/// alone sends it in a record servers reject: see `tls::Transport`).
#[tokio::test]
async fn refusals_send_their_alerts() {
    let pki = Pki::new(&P256, &P256);
    let other = root("Other Root CA", &P256);
    let expired = make(
        "expired.example.test",
        &P256,
        None,
        &[HOST],
        Some(&pki.inter),
        (2022, 2023),
        Some(rcgen::ExtendedKeyUsagePurpose::ServerAuth),
    );
    /// The chain served, whose key signs, the pin, the host, the error, the alert.
    type Case<'a> = (
        Vec<CertificateDer<'static>>,
        &'a Cert,
        &'a Cert,
        &'a str,
        CertError,
        rustls::AlertDescription,
    );
    let cases: [Case<'_>; 4] = [
        (
            pki.chain(),
            &pki.leaf,
            &other,
            HOST,
            CertError::ChainNotToPin,
            rustls::AlertDescription::UnknownCA,
        ),
        (
            pki.chain(),
            &pki.leaf,
            &pki.leaf,
            HOST,
            CertError::PinnedIsLeaf,
            rustls::AlertDescription::UnknownCA,
        ),
        (
            pki.chain(),
            &pki.leaf,
            &pki.root,
            "other.example.test",
            CertError::NameMismatch,
            rustls::AlertDescription::BadCertificate,
        ),
        (
            vec![expired.der.clone(), pki.inter.der.clone()],
            &expired,
            &pki.root,
            HOST,
            CertError::Expired,
            rustls::AlertDescription::CertificateExpired,
        ),
    ];
    for (chain, key_of, pin, host, error, alert) in cases {
        let (addr, server) = serve(chain, key_of.key_der()).await;
        let result = connect_to(addr, host, pin).await;
        let served = server.await.unwrap();
        assert_refused(result, &served, error, alert);
    }
}

#[tokio::test]
async fn issuer_that_is_not_a_ca_is_named() {
    let pki = Pki::new(&P256, &P256);
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
    let (addr, server) = serve(chain, forged.key_der()).await;
    let result = connect_to(addr, HOST, &pki.root).await;
    let served = server.await.unwrap();
    let explained = assert_refused(
        result,
        &served,
        CertError::IssuerNotCa,
        rustls::AlertDescription::BadCertificate,
    );
    assert_eq!(
        explained,
        "TLS certificate refused: \"evil.example.test\" issued \"api.example.test\" but is not a \
         CA certificate (no basicConstraints cA=true): the chain is forged or misissued"
    );
}

#[tokio::test]
async fn path_length_violation_names_the_ca() {
    let pki = Pki::new(&P256, &P256);
    let mut params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
    params.distinguished_name = rcgen::DistinguishedName::new();
    params
        .distinguished_name
        .push(rcgen::DnType::CommonName, "Constrained CA");
    params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Constrained(0));
    params.key_usages = vec![rcgen::KeyUsagePurpose::KeyCertSign];
    params.not_before = rcgen::date_time_ymd(2021, 1, 1);
    params.not_after = rcgen::date_time_ymd(2055, 1, 1);
    let key = rcgen::KeyPair::generate_for(&P256).unwrap();
    let cert = params.signed_by(&key, &pki.root.issuer()).unwrap();
    let constrained = Cert {
        pem: cert.pem(),
        der: cert.der().clone(),
        params,
        key,
    };
    let sub = intermediate("Sub CA", &P256, &constrained);
    let server_cert = leaf(HOST, &P256, &[HOST], &sub);
    let chain = vec![
        server_cert.der.clone(),
        sub.der.clone(),
        constrained.der.clone(),
    ];
    let (addr, server) = serve(chain, server_cert.key_der()).await;
    let result = connect_to(addr, HOST, &pki.root).await;
    let served = server.await.unwrap();
    let explained = assert_refused(
        result,
        &served,
        CertError::PathTooLong,
        rustls::AlertDescription::BadCertificate,
    );
    assert_eq!(
        explained,
        "TLS certificate refused: the CA \"Constrained CA\" allows 0 CA certificate(s) below it \
         (pathLenConstraint), and the chain has more"
    );
}

// --- servers embedded-tls cannot talk to -----------------------------------------------------

/// A rustls server with `provider` and `versions`, serving the standard chain.
async fn incompatible_server(
    pki: &Pki,
    provider: rustls::crypto::CryptoProvider,
    versions: &[&'static rustls::SupportedProtocolVersion],
) -> (std::net::SocketAddr, tokio::task::JoinHandle<Served>) {
    let config = rustls::ServerConfig::builder_with_provider(Arc::new(provider))
        .with_protocol_versions(versions)
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(pki.chain(), pki.leaf.key_der())
        .unwrap();
    serve_config(config).await
}

fn handshake_error(result: Result<(), OpenError>) -> (TlsError, String) {
    let e = result.expect_err("the handshake must fail");
    let tls = e
        .tls_error()
        .unwrap_or_else(|| panic!("not a handshake error: {e}"));
    (tls, e.to_string())
}

#[tokio::test]
async fn tls12_only_server_is_explained() {
    let pki = Pki::new(&P256, &P256);
    let (addr, server) = incompatible_server(
        &pki,
        rustls::crypto::ring::default_provider(),
        &[&rustls::version::TLS12],
    )
    .await;
    let result = connect_to(addr, HOST, &pki.root).await;
    let _ = server.await;
    let (tls, explained) = handshake_error(result);
    assert!(
        matches!(
            tls,
            TlsError::HandshakeAborted(AlertLevel::Fatal, AlertDescription::ProtocolVersion)
        ),
        "{tls:?}"
    );
    assert_eq!(
        explained,
        "TLS handshake failed: the server does not speak TLS 1.3 (it answered protocol_version); \
         embedded-tls speaks TLS 1.3 only: enable TLS 1.3 on the server (nginx: ssl_protocols \
         TLSv1.2 TLSv1.3) [HandshakeAborted(Fatal, ProtocolVersion)]"
    );
}

const NOTHING_IN_COMMON: &str = "TLS handshake failed: the server has nothing in common with \
     this client (it answered handshake_failure): embedded-tls offers TLS 1.3 only, the \
     key-exchange group secp256r1 (P-256) only and the cipher suite TLS_AES_128_GCM_SHA256 \
     only; the server must enable all three, and sign with ECDSA P-256 or P-384, Ed25519 or \
     RSA-PSS [HandshakeAborted(Fatal, HandshakeFailure)]";

#[tokio::test]
async fn server_without_p256_key_exchange_is_explained() {
    let pki = Pki::new(&P256, &P256);
    let mut provider = rustls::crypto::ring::default_provider();
    provider.kx_groups = vec![rustls::crypto::ring::kx_group::X25519];
    let (addr, server) = incompatible_server(&pki, provider, &[&rustls::version::TLS13]).await;
    let result = connect_to(addr, HOST, &pki.root).await;
    let _ = server.await;
    let (_, explained) = handshake_error(result);
    assert_eq!(explained, NOTHING_IN_COMMON);
}

#[tokio::test]
async fn server_without_the_cipher_suite_is_explained() {
    let pki = Pki::new(&P256, &P256);
    let mut provider = rustls::crypto::ring::default_provider();
    provider.cipher_suites = vec![rustls::crypto::ring::cipher_suite::TLS13_AES_256_GCM_SHA384];
    let (addr, server) = incompatible_server(&pki, provider, &[&rustls::version::TLS13]).await;
    let result = connect_to(addr, HOST, &pki.root).await;
    let _ = server.await;
    let (_, explained) = handshake_error(result);
    assert_eq!(explained, NOTHING_IN_COMMON);
}

#[tokio::test]
async fn plain_http_on_the_port_is_explained() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let server = tokio::spawn(async move {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let (mut tcp, _) = listener.accept().await.unwrap();
        let mut buf = [0u8; 512];
        let _ = tcp.read(&mut buf).await;
        let _ = tcp
            .write_all(b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n")
            .await;
    });
    let pki = Pki::new(&P256, &P256);
    let result = connect_to(addr, HOST, &pki.root).await;
    server.await.unwrap();
    let (tls, explained) = handshake_error(result);
    assert!(matches!(tls, TlsError::InvalidRecord), "{tls:?}");
    // The bytes say so: the explanation names plain HTTP (and nothing else).
    assert_eq!(
        explained,
        "TLS handshake failed: the server answered in plain HTTP (its first bytes were \"HTTP/\"): \
         this port serves HTTP without TLS; use the server's TLS port [InvalidRecord]"
    );
}

// --- IP addresses as hosts ---------------------------------------------------------------------

#[tokio::test]
async fn ipv4_host_sends_no_sni_and_matches_the_ip_san() {
    let pki = Pki::new(&P256, &P256);
    let device = leaf("device", &P256, &["127.0.0.1", "::1"], &pki.inter);
    let chain = vec![device.der.clone(), pki.inter.der.clone()];
    let anchor = TrustAnchor::from_der(pki.root.der.as_ref()).unwrap();
    let (out, served) = run_served(chain, device.key_der(), anchor, "127.0.0.1", Time::Fixed).await;
    assert_eq!(out.result, Ok(()), "{out:?}");
    assert_eq!(
        served.sni, None,
        "an IP address must not be sent as the server name"
    );
    let request = served.request.unwrap();
    assert!(request.contains("\r\nHost: 127.0.0.1\r\n"), "{request}");
}

#[tokio::test]
async fn bracketed_ipv6_host_works() {
    let pki = Pki::new(&P256, &P256);
    let device = leaf("device", &P256, &["::1"], &pki.inter);
    let chain = vec![device.der.clone(), pki.inter.der.clone()];
    let anchor = TrustAnchor::from_der(pki.root.der.as_ref()).unwrap();
    let (out, served) = run_served(chain, device.key_der(), anchor, "[::1]", Time::Fixed).await;
    assert_eq!(out.result, Ok(()), "{out:?}");
    assert_eq!(served.sni, None);
    assert!(served.request.unwrap().contains("\r\nHost: [::1]\r\n"));
}

#[tokio::test]
async fn ip_host_not_in_the_certificate_lists_its_addresses() {
    let pki = Pki::new(&P256, &P256);
    let device = leaf(
        "device",
        &P256,
        &["10.0.0.7", "fd00::7", "device.lan"],
        &pki.inter,
    );
    for host in ["127.0.0.1", "[::1]"] {
        let chain = vec![device.der.clone(), pki.inter.der.clone()];
        let anchor = TrustAnchor::from_der(pki.root.der.as_ref()).unwrap();
        let (out, served) = run_served(chain, device.key_der(), anchor, host, Time::Fixed).await;
        assert_eq!(out.result, Err(Some(CertError::NameMismatch)));
        assert_eq!(
            out.explained.unwrap(),
            format!(
                "TLS certificate refused: the host \"{host}\" is not among the certificate's \
                 names: \"10.0.0.7\", \"fd00::7\", \"device.lan\""
            )
        );
        assert_eq!(
            served.alert_received(),
            Some(rustls::AlertDescription::BadCertificate)
        );
    }
}
