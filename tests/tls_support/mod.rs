//! Test PKI (rcgen) and a real rustls TLS 1.3 server on 127.0.0.1, plus an embedded-tls client.
#![allow(dead_code, unused_imports)]

pub mod wild;

use std::net::SocketAddr;
use std::sync::Arc;

use embedded_io_adapters::tokio_1::FromTokio;
use embedded_io_async::{Read as _, Write as _};
use rand_core::OsRng;
use rawpost::tls::{
    CertError, Clock, OpenError, PinnedProvider, TimeSource, TimeUsed, TrustAnchor,
};
use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
    KeyUsagePurpose, SignatureAlgorithm,
};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

pub use rcgen::{
    PKCS_ECDSA_P256_SHA256 as P256, PKCS_ECDSA_P384_SHA384 as P384, PKCS_ED25519 as ED25519,
};

pub const HOST: &str = "api.example.test";

/// A generated certificate with its key and parameters (to sign others).
pub struct Cert {
    pub params: CertificateParams,
    pub key: KeyPair,
    pub der: CertificateDer<'static>,
    pub pem: String,
}

impl Cert {
    pub fn issuer(&self) -> Issuer<'_, &KeyPair> {
        Issuer::from_params(&self.params, &self.key)
    }

    pub fn key_der(&self) -> PrivateKeyDer<'static> {
        PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(self.key.serialize_der()))
    }
}

/// Builds a certificate. `ca`: `Some(true)` CA, `Some(false)` explicit cA=false, `None` no
/// basicConstraints at all. `sans` empty for CAs. `validity` in years.
pub fn make(
    cn: &str,
    alg: &'static SignatureAlgorithm,
    ca: Option<bool>,
    sans: &[&str],
    parent: Option<&Cert>,
    validity: (i32, i32),
    eku: Option<ExtendedKeyUsagePurpose>,
) -> Cert {
    let key = new_key(alg);
    let mut params =
        CertificateParams::new(sans.iter().map(|s| s.to_string()).collect::<Vec<_>>()).unwrap();
    params.distinguished_name = rcgen::DistinguishedName::new();
    params.distinguished_name.push(DnType::CommonName, cn);
    params.not_before = rcgen::date_time_ymd(validity.0, 1, 1);
    params.not_after = rcgen::date_time_ymd(validity.1, 1, 1);
    params.is_ca = match ca {
        Some(true) => IsCa::Ca(BasicConstraints::Unconstrained),
        Some(false) => IsCa::ExplicitNoCa,
        None => IsCa::NoCa,
    };
    if ca == Some(true) {
        params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    } else {
        params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
    }
    if let Some(eku) = eku {
        params.extended_key_usages = vec![eku];
    }
    let cert = match parent {
        Some(parent) => params.signed_by(&key, &parent.issuer()).unwrap(),
        None => params.self_signed(&key).unwrap(),
    };
    Cert {
        pem: cert.pem(),
        der: cert.der().clone(),
        params,
        key,
    }
}

/// A fresh key for `alg`. ring cannot generate RSA keys, so those come from the `rsa` crate (a
/// dev-dependency, so RSA chains can be made with or without the `rsa` feature).
pub fn new_key(alg: &'static SignatureAlgorithm) -> KeyPair {
    if alg == &rcgen::PKCS_RSA_SHA256 {
        use rsa::pkcs8::EncodePrivateKey;
        let key = rsa::RsaPrivateKey::new(&mut OsRng, 2048).unwrap();
        let der = key.to_pkcs8_der().unwrap();
        let der = PrivatePkcs8KeyDer::from(der.as_bytes());
        return KeyPair::from_pkcs8_der_and_sign_algo(&der, alg).unwrap();
    }
    KeyPair::generate_for(alg).unwrap()
}

pub fn root(cn: &str, alg: &'static SignatureAlgorithm) -> Cert {
    make(cn, alg, Some(true), &[], None, (2020, 2060), None)
}

pub fn intermediate(cn: &str, alg: &'static SignatureAlgorithm, parent: &Cert) -> Cert {
    make(cn, alg, Some(true), &[], Some(parent), (2021, 2055), None)
}

pub fn leaf(cn: &str, alg: &'static SignatureAlgorithm, sans: &[&str], parent: &Cert) -> Cert {
    make(
        cn,
        alg,
        None,
        sans,
        Some(parent),
        (2024, 2050),
        Some(ExtendedKeyUsagePurpose::ServerAuth),
    )
}

/// The standard PKI: root → intermediate → leaf for `api.example.test`, all P-256.
pub struct Pki {
    pub root: Cert,
    pub inter: Cert,
    pub leaf: Cert,
}

impl Pki {
    pub fn new(
        root_alg: &'static SignatureAlgorithm,
        leaf_alg: &'static SignatureAlgorithm,
    ) -> Self {
        let root = root("Test Root CA", root_alg);
        let inter = intermediate("Test Intermediate CA", &P256, &root);
        let leaf = leaf(HOST, leaf_alg, &[HOST], &inter);
        Self { root, inter, leaf }
    }

    /// What the server sends: leaf + intermediate.
    pub fn chain(&self) -> Vec<CertificateDer<'static>> {
        vec![self.leaf.der.clone(), self.inter.der.clone()]
    }
}

/// What the rustls server saw of one connection.
#[derive(Debug)]
pub struct Served {
    /// The server name the client sent (SNI), if the handshake got that far.
    pub sni: Option<String>,
    /// The HTTP request it read, or why it could not.
    pub request: Result<String, String>,
    /// The rustls error that ended the handshake, if it failed (e.g. `AlertReceived(...)`).
    pub handshake_error: Option<rustls::Error>,
}

impl Served {
    /// The alert the client sent when it refused the server, if any.
    pub fn alert_received(&self) -> Option<rustls::AlertDescription> {
        match &self.handshake_error {
            Some(rustls::Error::AlertReceived(alert)) => Some(*alert),
            _ => None,
        }
    }
}

/// A rustls TLS 1.3 server config for `chain` and `key`.
pub fn server_config(
    chain: Vec<CertificateDer<'static>>,
    key: PrivateKeyDer<'static>,
) -> rustls::ServerConfig {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    rustls::ServerConfig::builder_with_provider(provider)
        .with_protocol_versions(&[&rustls::version::TLS13])
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(chain, key)
        .unwrap()
}

/// Starts a rustls TLS 1.3 server for one connection; it answers one HTTP request.
/// Returns its address and a handle yielding what it saw.
pub async fn serve(
    chain: Vec<CertificateDer<'static>>,
    key: PrivateKeyDer<'static>,
) -> (SocketAddr, tokio::task::JoinHandle<Served>) {
    serve_config(server_config(chain, key)).await
}

/// [`serve`] with any rustls server config.
pub async fn serve_config(
    config: rustls::ServerConfig,
) -> (SocketAddr, tokio::task::JoinHandle<Served>) {
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let handle = tokio::spawn(async move {
        let (tcp, _) = listener.accept().await.unwrap();
        let mut tls = match acceptor.accept(tcp).await {
            Ok(tls) => tls,
            Err(e) => {
                let handshake_error = e
                    .get_ref()
                    .and_then(|inner| inner.downcast_ref::<rustls::Error>())
                    .cloned();
                return Served {
                    sni: None,
                    request: Err(e.to_string()),
                    handshake_error,
                };
            }
        };
        let sni = tls.get_ref().1.server_name().map(str::to_owned);
        let request = async {
            let mut request = Vec::new();
            let mut buf = [0u8; 1024];
            while !request.windows(4).any(|w| w == b"\r\n\r\n") {
                let n = tls.read(&mut buf).await.map_err(|e| e.to_string())?;
                if n == 0 {
                    return Err("eof before request end".to_string());
                }
                request.extend_from_slice(&buf[..n]);
            }
            tls.write_all(
                b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\nConnection: close\r\n\r\nhello",
            )
            .await
            .map_err(|e| e.to_string())?;
            tls.shutdown().await.map_err(|e| e.to_string())?;
            Ok(String::from_utf8_lossy(&request).into_owned())
        }
        .await;
        Served {
            sni,
            request,
            handshake_error: None,
        }
    });
    (addr, handle)
}

/// Where the client's provider gets the time.
#[derive(Clone, Copy, Debug)]
pub enum Time {
    /// The fixed test clock, [`CLOCK_NOW`] (2030-01-01): no verdict depends on the day.
    Fixed,
    /// A clock function.
    Clock(fn() -> Option<u64>),
    /// A clock that is not set, with a floor (0: none).
    Unset { floor: u64 },
    /// A floor only.
    Floor(u64),
    /// `TimeSource::dangerous_no_expiry_check()`.
    NoExpiry,
}

/// What a client run produced.
#[derive(Debug)]
pub struct Outcome {
    /// `Ok` or the certificate error (`None` for other handshake failures).
    pub result: Result<(), Option<CertError>>,
    /// The whole error, if any.
    pub error: Option<OpenError>,
    /// The error's `Display`, if there was a failure.
    pub explained: Option<String>,
    /// The reply read after a successful handshake.
    pub reply: Option<String>,
    /// Which time the certificate dates were checked against.
    pub time_used: Option<TimeUsed>,
}

impl Outcome {
    pub fn used_clock(&self) -> bool {
        matches!(self.time_used, Some(TimeUsed::Clock(_)))
    }
}

/// Connects to `addr` with `rawpost::tls::TlsStream::open` for `host`, verifying with `provider`; on
/// success sends a small HTTP request and reads the reply.
pub async fn connect<C: Clock>(
    addr: SocketAddr,
    host: &str,
    provider: &mut PinnedProvider<'_, OsRng, C>,
) -> Outcome {
    let tcp = tokio::net::TcpStream::connect(addr).await.unwrap();
    let mut read_buf = vec![0u8; 16_640];
    let mut write_buf = vec![0u8; 4096];
    let opened = rawpost::tls::TlsStream::open(
        FromTokio::new(tcp),
        &mut read_buf,
        &mut write_buf,
        rawpost::Host::new(host),
        provider,
    )
    .await;
    let time_used = provider.last_time();
    let mut tls = match opened {
        Ok(tls) => tls,
        Err(e) => {
            return Outcome {
                result: Err(e.cert_error()),
                explained: Some(e.to_string()),
                error: Some(e),
                reply: None,
                time_used,
            }
        }
    };
    let request = format!("GET / HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n");
    tls.write_all(request.as_bytes()).await.unwrap();
    tls.flush().await.unwrap();
    let mut got = Vec::new();
    let mut buf = [0u8; 512];
    loop {
        match tls.read(&mut buf).await {
            Ok(0) => break,
            Ok(n) => got.extend_from_slice(&buf[..n]),
            Err(e) => panic!("read failed: {e:?}"),
        }
    }
    Outcome {
        result: Ok(()),
        error: None,
        explained: None,
        reply: Some(String::from_utf8_lossy(&got).into_owned()),
        time_used,
    }
}

/// A provider trusting `anchor` with `time`, then [`connect`].
pub async fn connect_with(
    addr: SocketAddr,
    host: &str,
    anchor: TrustAnchor<'_>,
    time: Time,
) -> Outcome {
    match time {
        Time::Fixed => {
            let mut p = PinnedProvider::new(OsRng, anchor, TimeSource::clock(fixed_clock));
            connect(addr, host, &mut p).await
        }
        Time::Clock(clock) => {
            let mut p = PinnedProvider::new(OsRng, anchor, TimeSource::clock(clock));
            connect(addr, host, &mut p).await
        }
        Time::Unset { floor } => {
            let clock = TimeSource::clock(|| None).with_floor(floor);
            let mut p = PinnedProvider::new(OsRng, anchor, clock);
            connect(addr, host, &mut p).await
        }
        Time::Floor(floor) => {
            let mut p = PinnedProvider::new(OsRng, anchor, TimeSource::floor(floor));
            connect(addr, host, &mut p).await
        }
        Time::NoExpiry => {
            let time = TimeSource::dangerous_no_expiry_check();
            let mut p = PinnedProvider::new(OsRng, anchor, time);
            connect(addr, host, &mut p).await
        }
    }
}

/// Serves `chain`/`key`, connects with `anchor` for `host`, returns the outcome and what the
/// server saw.
pub async fn run_served(
    chain: Vec<CertificateDer<'static>>,
    key: PrivateKeyDer<'static>,
    anchor: TrustAnchor<'_>,
    host: &str,
    time: Time,
) -> (Outcome, Served) {
    let (addr, server) = serve(chain, key).await;
    let outcome = connect_with(addr, host, anchor, time).await;
    let served = server.await.unwrap();
    if outcome.result.is_ok() {
        let request = served.request.as_ref().expect("server side failed");
        assert!(request.starts_with("GET / HTTP/1.1\r\n"), "{request}");
    }
    (outcome, served)
}

/// [`run_served`] without the server's side.
pub async fn run(
    chain: Vec<CertificateDer<'static>>,
    key: PrivateKeyDer<'static>,
    anchor: TrustAnchor<'_>,
    host: &str,
    time: Time,
) -> Outcome {
    run_served(chain, key, anchor, host, time).await.0
}

/// The instant the verifier's clock reads in these tests: 2030-01-01T00:00:00Z. The test
/// certificates have fixed dates (roots 2020–2060, intermediates 2021–2055, leaves 2024–2050;
/// an expired leaf 2022–2023, a not-yet-valid one 2040–2050), so with a fixed clock no verdict
/// depends on the day the tests run.
pub const CLOCK_NOW: u64 = 1_893_456_000;

/// The verifier's clock hook in these tests: always [`CLOCK_NOW`].
pub fn fixed_clock() -> Option<u64> {
    Some(CLOCK_NOW)
}

// 60 years of 365 days and the 15 leap days from 1972 to 2028.
const _: () = assert!(CLOCK_NOW == ((2030 - 1970) * 365 + 15) * 86_400);
