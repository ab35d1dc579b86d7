//! A small HTTPS server that behaves like a Cloudflare-fronted token endpoint, for the `post`
//! example and the `tls_http` tests. By default on loopback with every key generated at start;
//! [`start_committed`] serves the committed test PKI (`examples/esp32-common/test-pki/`, TEST
//! ONLY: its server key is public) on any address, for the ESP32 firmware's first run.
//!
//! - **PKI**: a fresh root CA → intermediate CA → leaf for [`HOST`], made with rcgen. The leaf
//!   and the intermediate are ECDSA P-256; the root is P-256 or P-384 ([`RootKey`]), as
//!   Cloudflare's ECDSA chains often end in a P-384 root. The server sends leaf + intermediate,
//!   never the root: the client must already have it (pinned).
//! - **TLS**: rustls, TLS 1.3 only ([`start_tls12`]: TLS 1.2 only, as many IoT back ends and
//!   older load balancers are). A ClientHello without a server name (SNI) is refused: no
//!   certificate is chosen, the handshake fails. Any SNI gets the leaf, so a client asking for
//!   another name fails on its side, at the name check.
//! - **HTTP/1.1** (hyper, keep-alive): a request whose `Host` header (port left out) is not
//!   the SNI name gets `421 Misdirected Request`, as Cloudflare answers. `POST /oauth/token`
//!   wants `Content-Type: application/json` (else 415) and a JSON object (else 400), and
//!   answers `200` with `{"received":<the request body, byte for byte>,"access_token":"…"}`,
//!   the token being `demo-token-<session>-<request in that session>`. `POST /post` (the
//!   firmware's default path, as on httpbingo.org) is answered the same way. Other paths are
//!   404, other methods 405.
//!
//! [`start`] returns the address, the three certificates (PEM and DER) and counters of the TLS
//! sessions accepted and the requests answered. Dropping the [`HttpsServer`] stops accepting.
#![allow(dead_code)]

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::header::{HeaderValue, CONTENT_TYPE, HOST as HOST_HEADER};
use hyper::service::service_fn;
use hyper::{Method, StatusCode};
use hyper_util::rt::TokioIo;
use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
    KeyUsagePurpose, SignatureAlgorithm,
};
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;
use tokio::net::TcpListener;
use tokio::task::JoinHandle;

/// The name the server's certificate is for.
pub const HOST: &str = "api.example.test";

/// The names of the generated CAs (subject common names).
pub const ROOT_NAME: &str = "rawpost Demo Root CA";
pub const INTERMEDIATE_NAME: &str = "rawpost Demo Issuing CA E1";
/// The names of the committed test PKI's CAs: labelled, since its server key is public.
pub const COMMITTED_ROOT_NAME: &str = "rawpost TEST-ONLY Root CA (do not trust)";
pub const COMMITTED_INTERMEDIATE_NAME: &str = "rawpost TEST-ONLY Issuing CA";

/// The root CA's key type. The intermediate and the leaf are always ECDSA P-256.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RootKey {
    P256,
    P384,
}

impl RootKey {
    pub fn label(self) -> &'static str {
        match self {
            Self::P256 => "ECDSA P-256",
            Self::P384 => "ECDSA P-384",
        }
    }

    fn algorithm(self) -> &'static SignatureAlgorithm {
        match self {
            Self::P256 => &rcgen::PKCS_ECDSA_P256_SHA256,
            Self::P384 => &rcgen::PKCS_ECDSA_P384_SHA384,
        }
    }
}

/// One certificate of the test PKI, as a client would be given it.
#[derive(Clone, Debug)]
pub struct CertFiles {
    /// The subject's common name.
    pub name: String,
    /// PEM text (`-----BEGIN CERTIFICATE-----` ...), as `openssl s_client -showcerts` prints.
    pub pem: String,
    /// The same certificate, DER-encoded.
    pub der: Vec<u8>,
}

/// A running server.
pub struct HttpsServer {
    pub addr: SocketAddr,
    pub root: CertFiles,
    pub intermediate: CertFiles,
    pub leaf: CertFiles,
    /// TLS sessions whose handshake completed.
    pub sessions: Arc<AtomicUsize>,
    /// HTTP requests answered, whatever the status.
    pub requests: Arc<AtomicUsize>,
    accept_loop: JoinHandle<()>,
}

impl HttpsServer {
    pub fn sessions(&self) -> usize {
        self.sessions.load(Ordering::SeqCst)
    }

    pub fn requests(&self) -> usize {
        self.requests.load(Ordering::SeqCst)
    }
}

impl Drop for HttpsServer {
    fn drop(&mut self) {
        self.accept_loop.abort();
    }
}

/// The TLS versions the server speaks.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Versions {
    /// TLS 1.3 only, as a Cloudflare-fronted API can be configured.
    Tls13Only,
    /// TLS 1.2 only (rustls `ServerConfig::builder_with_protocol_versions(&[&TLS12])`).
    Tls12Only,
}

impl Versions {
    fn rustls(self) -> &'static [&'static rustls::SupportedProtocolVersion] {
        const TLS13: &[&rustls::SupportedProtocolVersion] = &[&rustls::version::TLS13];
        const TLS12: &[&rustls::SupportedProtocolVersion] = &[&rustls::version::TLS12];
        match self {
            Self::Tls13Only => TLS13,
            Self::Tls12Only => TLS12,
        }
    }
}

/// Generates the PKI, binds 127.0.0.1:0 and serves TLS 1.3 in the background (on the current
/// tokio runtime).
pub async fn start(root_key: RootKey) -> Result<HttpsServer, String> {
    start_versions(root_key, Versions::Tls13Only).await
}

/// [`start`], speaking TLS 1.2 only.
pub async fn start_tls12(root_key: RootKey) -> Result<HttpsServer, String> {
    start_versions(root_key, Versions::Tls12Only).await
}

/// [`start`] with the TLS versions given.
pub async fn start_versions(root_key: RootKey, versions: Versions) -> Result<HttpsServer, String> {
    let pki = Pki::generate(root_key).map_err(|e| format!("generating the test PKI: {e}"))?;
    let files = PkiFiles {
        root: pki.root.files,
        intermediate: pki.intermediate.files,
        leaf: pki.leaf.files,
        leaf_key_der: pki.leaf.key.serialize_der(),
    };
    start_with_versions(files, "127.0.0.1:0", false, versions).await
}

/// The committed test PKI (`examples/esp32-common/`): the root the firmware pins, and the
/// intermediate, leaf and leaf key this server presents. **TEST ONLY**: the leaf's private key
/// is public, so anyone can impersonate `api.example.test` to a device that pins this root.
/// Read from the source tree at run time (the files are not in the published crate).
pub mod committed {
    /// The directory of the committed files.
    pub const DIR: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/examples/esp32-common");
    /// The root CA the ESP32 firmware pins.
    pub const ROOT: &str = "root-ca.pem";
    /// The intermediate CA.
    pub const INTERMEDIATE: &str = "test-pki/intermediate.pem";
    /// The server certificate, for `api.example.test`.
    pub const LEAF: &str = "test-pki/server.pem";
    /// The server certificate's private key (PKCS#8). Published: TEST ONLY.
    pub const LEAF_KEY: &str = "test-pki/server.key";

    /// The text of one of the files above.
    pub fn read(file: &str) -> Result<String, String> {
        let path = std::path::Path::new(DIR).join(file);
        std::fs::read_to_string(&path).map_err(|e| format!("{}: {e}", path.display()))
    }
}

/// Serves the committed test PKI on `addr` (e.g. `0.0.0.0:8443` to reach the LAN), printing
/// each request when `verbose`.
pub async fn start_committed(addr: &str, verbose: bool) -> Result<HttpsServer, String> {
    use rustls::pki_types::pem::PemObject;
    let root_pem = committed::read(committed::ROOT)?;
    let intermediate_pem = committed::read(committed::INTERMEDIATE)?;
    let leaf_pem = committed::read(committed::LEAF)?;
    let key_pem = committed::read(committed::LEAF_KEY)?;
    let der = |pem: &str, what: &str| {
        rustls::pki_types::CertificateDer::from_pem_slice(pem.as_bytes())
            .map(|c| c.to_vec())
            .map_err(|e| format!("the committed {what}: {e}"))
    };
    let key = rustls::pki_types::PrivatePkcs8KeyDer::from_pem_slice(key_pem.as_bytes())
        .map_err(|e| format!("the committed server key: {e}"))?;
    let files = |name: &str, pem: &str, der: Vec<u8>| CertFiles {
        name: name.to_owned(),
        pem: pem.to_owned(),
        der,
    };
    let pki = PkiFiles {
        root: files(COMMITTED_ROOT_NAME, &root_pem, der(&root_pem, "root")?),
        intermediate: files(
            COMMITTED_INTERMEDIATE_NAME,
            &intermediate_pem,
            der(&intermediate_pem, "intermediate")?,
        ),
        leaf: files(HOST, &leaf_pem, der(&leaf_pem, "server certificate")?),
        leaf_key_der: key.secret_pkcs8_der().to_vec(),
    };
    start_with(pki, addr, verbose).await
}

/// A PKI to serve: the leaf and intermediate are sent, the root is for the client to pin.
pub struct PkiFiles {
    pub root: CertFiles,
    pub intermediate: CertFiles,
    pub leaf: CertFiles,
    /// The leaf's private key, PKCS#8 DER.
    pub leaf_key_der: Vec<u8>,
}

/// Binds `addr` and serves `pki` over TLS 1.3 in the background (on the current tokio runtime).
pub async fn start_with(pki: PkiFiles, addr: &str, verbose: bool) -> Result<HttpsServer, String> {
    start_with_versions(pki, addr, verbose, Versions::Tls13Only).await
}

/// [`start_with`] with the TLS versions given.
pub async fn start_with_versions(
    pki: PkiFiles,
    addr: &str,
    verbose: bool,
    versions: Versions,
) -> Result<HttpsServer, String> {
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(server_config(&pki, versions)?));
    let listener = TcpListener::bind(addr)
        .await
        .map_err(|e| format!("binding {addr}: {e}"))?;
    let addr = listener
        .local_addr()
        .map_err(|e| format!("reading the bound address: {e}"))?;
    let sessions = Arc::new(AtomicUsize::new(0));
    let requests = Arc::new(AtomicUsize::new(0));
    let accept_loop = tokio::spawn(accept_loop(
        listener,
        acceptor,
        sessions.clone(),
        requests.clone(),
        verbose,
    ));
    Ok(HttpsServer {
        addr,
        root: pki.root,
        intermediate: pki.intermediate,
        leaf: pki.leaf,
        sessions,
        requests,
        accept_loop,
    })
}

/// Generates a PKI like [`start`]'s (P-256 root), with fixed validity dates, for committing:
/// `root-ca.pem`, `test-pki/intermediate.pem`, `test-pki/server.pem`, `test-pki/server.key`
/// under `dir`. The root's and the intermediate's keys are not written: nobody can issue
/// another certificate under the committed root.
pub fn write_test_pki(dir: &std::path::Path) -> Result<(), String> {
    let p256 = &rcgen::PKCS_ECDSA_P256_SHA256;
    let dates = |role| match role {
        Role::Root => ((2025, 1, 1), (2075, 1, 1)),
        Role::Intermediate => ((2025, 1, 1), (2050, 1, 1)),
        Role::Leaf => ((2025, 1, 1), (2049, 12, 31)),
    };
    let make = |role, name, parent| {
        generate_dated(role, name, p256, parent, dates)
            .map_err(|e| format!("generating {name}: {e}"))
    };
    let root = make(Role::Root, COMMITTED_ROOT_NAME, None)?;
    let intermediate = make(Role::Intermediate, COMMITTED_INTERMEDIATE_NAME, Some(&root))?;
    let leaf = make(Role::Leaf, HOST, Some(&intermediate))?;
    let write = |path: &str, text: &str| {
        let path = dir.join(path);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).map_err(|e| format!("{}: {e}", parent.display()))?;
        }
        std::fs::write(&path, text).map_err(|e| format!("{}: {e}", path.display()))
    };
    let label = "TEST ONLY: the rawpost demo PKI, made by `cargo run --example post -- \
                 --make-test-pki examples/esp32-common`.\nIts server key is published in the \
                 repository: anyone can impersonate api.example.test to a device that pins this \
                 root.\nNever pin it in production. Valid 2025-01-01 to 2049-12-31 (server), \
                 2050-01-01 (intermediate).\n";
    write("root-ca.pem", &format!("{label}{}", root.files.pem))?;
    write(
        "test-pki/intermediate.pem",
        &format!("{label}{}", intermediate.files.pem),
    )?;
    write("test-pki/server.pem", &format!("{label}{}", leaf.files.pem))?;
    write(
        "test-pki/server.key",
        &format!("{label}{}", leaf.key.serialize_pem()),
    )?;
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// The test PKI
// ---------------------------------------------------------------------------------------------

struct Generated {
    files: CertFiles,
    params: CertificateParams,
    key: KeyPair,
}

struct Pki {
    root: Generated,
    intermediate: Generated,
    leaf: Generated,
}

/// The current year, roughly (good enough for validity windows of several years).
fn this_year() -> i32 {
    let secs = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    1970 + i32::try_from(secs / 31_556_952).unwrap_or(0)
}

#[derive(Clone, Copy)]
enum Role {
    Root,
    Intermediate,
    Leaf,
}

/// Validity (notBefore, notAfter) as (year, month, day) for each role.
type Dates = fn(Role) -> ((i32, u8, u8), (i32, u8, u8));

fn generate(
    role: Role,
    name: &str,
    alg: &'static SignatureAlgorithm,
    parent: Option<&Generated>,
) -> Result<Generated, rcgen::Error> {
    generate_dated(role, name, alg, parent, |role| {
        let year = this_year();
        let (from, to) = match role {
            Role::Root => (year - 5, year + 25),
            Role::Intermediate => (year - 2, year + 5),
            Role::Leaf => (year - 1, year + 1),
        };
        ((from, 1, 1), (to, 1, 1))
    })
}

fn generate_dated(
    role: Role,
    name: &str,
    alg: &'static SignatureAlgorithm,
    parent: Option<&Generated>,
    dates: Dates,
) -> Result<Generated, rcgen::Error> {
    let key = KeyPair::generate_for(alg)?;
    let ((y0, m0, d0), (y1, m1, d1)) = dates(role);
    let sans = match role {
        Role::Leaf => vec![name.to_owned()],
        Role::Root | Role::Intermediate => vec![],
    };
    let mut params = CertificateParams::new(sans)?;
    params.distinguished_name = rcgen::DistinguishedName::new();
    params.distinguished_name.push(DnType::CommonName, name);
    params.not_before = rcgen::date_time_ymd(y0, m0, d0);
    params.not_after = rcgen::date_time_ymd(y1, m1, d1);
    match role {
        Role::Root | Role::Intermediate => {
            params.is_ca = IsCa::Ca(match role {
                Role::Root => BasicConstraints::Unconstrained,
                _ => BasicConstraints::Constrained(0),
            });
            params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
        }
        Role::Leaf => {
            params.is_ca = IsCa::ExplicitNoCa;
            params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
            params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
        }
    }
    let cert = match parent {
        Some(parent) => {
            params.signed_by(&key, &Issuer::from_params(&parent.params, &parent.key))?
        }
        None => params.self_signed(&key)?,
    };
    Ok(Generated {
        files: CertFiles {
            name: name.to_owned(),
            pem: cert.pem(),
            der: cert.der().to_vec(),
        },
        params,
        key,
    })
}

impl Pki {
    fn generate(root_key: RootKey) -> Result<Self, rcgen::Error> {
        let p256 = &rcgen::PKCS_ECDSA_P256_SHA256;
        let root = generate(Role::Root, ROOT_NAME, root_key.algorithm(), None)?;
        let intermediate = generate(Role::Intermediate, INTERMEDIATE_NAME, p256, Some(&root))?;
        let leaf = generate(Role::Leaf, HOST, p256, Some(&intermediate))?;
        Ok(Self {
            root,
            intermediate,
            leaf,
        })
    }
}

/// `versions` only; the leaf + intermediate chain for any client that sends a server name.
fn server_config(pki: &PkiFiles, versions: Versions) -> Result<rustls::ServerConfig, String> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let key_der = rustls::pki_types::PrivateKeyDer::Pkcs8(
        rustls::pki_types::PrivatePkcs8KeyDer::from(pki.leaf_key_der.clone()),
    );
    let signing_key = provider
        .key_provider
        .load_private_key(key_der)
        .map_err(|e| format!("loading the leaf key: {e}"))?;
    let chain = vec![
        pki.leaf.der.clone().into(),
        pki.intermediate.der.clone().into(),
    ];
    let resolver = SniRequired(Arc::new(CertifiedKey::new(chain, signing_key)));
    Ok(rustls::ServerConfig::builder_with_provider(provider)
        .with_protocol_versions(versions.rustls())
        .map_err(|e| format!("configuring {versions:?}: {e}"))?
        .with_no_client_auth()
        .with_cert_resolver(Arc::new(resolver)))
}

/// Chooses the certificate only when the client sent a server name, as Cloudflare's edge
/// does: without SNI it cannot know which site is wanted, and the handshake fails.
#[derive(Debug)]
struct SniRequired(Arc<CertifiedKey>);

impl ResolvesServerCert for SniRequired {
    fn resolve(&self, hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        hello.server_name().map(|_| self.0.clone())
    }
}

// ---------------------------------------------------------------------------------------------
// Serving
// ---------------------------------------------------------------------------------------------

async fn accept_loop(
    listener: TcpListener,
    acceptor: tokio_rustls::TlsAcceptor,
    sessions: Arc<AtomicUsize>,
    requests: Arc<AtomicUsize>,
    verbose: bool,
) {
    while let Ok((tcp, peer)) = listener.accept().await {
        let acceptor = acceptor.clone();
        let sessions = sessions.clone();
        let requests = requests.clone();
        tokio::spawn(async move {
            // A failed handshake (no SNI, a client that refused our chain) just ends here.
            let tls = match acceptor.accept(tcp).await {
                Ok(tls) => tls,
                Err(e) => {
                    if verbose {
                        println!("{peer}: TLS handshake failed: {e}");
                    }
                    return;
                }
            };
            let session = sessions.fetch_add(1, Ordering::SeqCst) + 1;
            let sni: Arc<str> = tls.get_ref().1.server_name().unwrap_or_default().into();
            let in_session = Arc::new(AtomicUsize::new(0));
            let service = service_fn(move |req| {
                requests.fetch_add(1, Ordering::SeqCst);
                let n = in_session.fetch_add(1, Ordering::SeqCst) + 1;
                let sni = sni.clone();
                let token = format!("demo-token-{session}-{n}");
                async move {
                    let line = format!("{peer}: {} {}", req.method(), req.uri());
                    let reply = handle(req, sni, token).await;
                    if verbose {
                        if let Ok(reply) = &reply {
                            println!("{line} -> {}", reply.status());
                        }
                    }
                    reply
                }
            });
            let _ = hyper::server::conn::http1::Builder::new()
                .serve_connection(TokioIo::new(tls), service)
                .await;
        });
    }
}

type Reply = hyper::Response<Full<Bytes>>;

fn reply(status: StatusCode, json: Vec<u8>) -> Reply {
    let mut response = hyper::Response::new(Full::new(Bytes::from(json)));
    *response.status_mut() = status;
    response
        .headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    response
}

fn error(status: StatusCode, what: &str) -> Reply {
    reply(status, format!(r#"{{"error":"{what}"}}"#).into_bytes())
}

/// The `Host` header's name, without a port.
fn host_name(value: &str) -> &str {
    match value.rsplit_once(':') {
        Some((name, port)) if !name.is_empty() && port.bytes().all(|b| b.is_ascii_digit()) => name,
        _ => value,
    }
}

/// Whether `body` is one JSON object, nothing after it but whitespace.
fn is_json_object(body: &[u8]) -> bool {
    body.trim_ascii_start().starts_with(b"{")
        && serde_json_core::from_slice::<serde::de::IgnoredAny>(body).is_ok()
}

async fn handle(
    req: hyper::Request<Incoming>,
    sni: Arc<str>,
    token: String,
) -> Result<Reply, Infallible> {
    let host = req.headers().get(HOST_HEADER).and_then(|h| h.to_str().ok());
    let Some(host) = host else {
        return Ok(error(StatusCode::BAD_REQUEST, "missing_host"));
    };
    if !host_name(host).eq_ignore_ascii_case(&sni) {
        return Ok(error(
            StatusCode::MISDIRECTED_REQUEST,
            "host_differs_from_sni",
        ));
    }
    if !matches!(req.uri().path(), "/oauth/token" | "/post") {
        return Ok(error(StatusCode::NOT_FOUND, "not_found"));
    }
    if req.method() != Method::POST {
        return Ok(error(StatusCode::METHOD_NOT_ALLOWED, "method_not_allowed"));
    }
    let json = req
        .headers()
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .is_some_and(|v| v.trim().eq_ignore_ascii_case("application/json"));
    if !json {
        return Ok(error(StatusCode::UNSUPPORTED_MEDIA_TYPE, "expected_json"));
    }
    let Ok(body) = req.into_body().collect().await.map(|b| b.to_bytes()) else {
        return Ok(error(StatusCode::BAD_REQUEST, "unreadable_body"));
    };
    if !is_json_object(&body) {
        return Ok(error(StatusCode::BAD_REQUEST, "invalid_json"));
    }
    // A valid JSON object can be embedded as it is: the echo is the request's exact bytes.
    let mut out = Vec::with_capacity(body.len() + 64);
    out.extend_from_slice(br#"{"received":"#);
    out.extend_from_slice(&body);
    out.extend_from_slice(format!(r#","access_token":"{token}"}}"#).as_bytes());
    Ok(reply(StatusCode::OK, out))
}
