//! The host side of `examples/qemu-riscv32` and `examples/qemu-riscv32-mbedtls`: a TLS 1.3
//! server (rustls) that answers each `POST /echo` with the request's JSON body, byte for byte;
//! with `--tls12`, a TLS 1.2-only server instead (ECDHE-ECDSA with AES-128-GCM, as an nginx
//! with `ssl_protocols TLSv1.2` offers), which a TLS 1.3-only client cannot talk to.
//!
//! ```text
//! rawpost-qemu-riscv32-server --root p256|p384 --out DIR [--tls12]
//! ```
//!
//! Writes the test PKI's certificates into DIR (DER: `root.der`, `intermediate.der`,
//! `leaf.der`, `leaf-renewed.der`, `unrelated-root.der`), binds 127.0.0.1 on a free port, prints
//! `port N` on stdout, accepts **one** TCP connection (QEMU's serial port) and serves TLS
//! sessions on it one after the other until it ends: a session ends with the client's
//! close_notify, and the next bytes are the next session's ClientHello. Records are read one at
//! a time (header, then exactly its length), so no byte of the next session is swallowed.
//! Sessions 1 and 2 get the leaf certificate, session 3 and later a renewed leaf (new key, same
//! intermediate), as after a certificate renewal. At the end it prints one line per session
//! on stderr.
//!
//! The PKI: root (ECDSA P-256 or P-384) → intermediate (P-256) → leaf for `api.example.test`
//! (P-256), with **fixed dates** around the guest's fixed test clock (2026-06-01), so nothing
//! expires with the wall clock; and an unrelated root (P-256), for the guest to pin by mistake.
//!
//! **TEST ONLY — every key and every "random" byte is fixed.** The keys are derived from their
//! names, the signatures are deterministic (RFC 6979), the ECDHE keys and rustls's randomness
//! come from a counter. So each run is the same handshake, byte for byte, and the guest's
//! measured instruction counts repeat exactly. None of this is secure; it is a measuring rig.
//!
//! HTTP: `POST /echo` with `Content-Type: application/json`, a `Host` equal to the TLS server
//! name and a `Content-Length` gets `200` and the body back; `POST /echo-close` the same, then
//! close_notify (the server ending the session, as after its keep-alive timeout); anything else
//! gets a 4xx with a JSON error (`421` for a `Host` that differs from the SNI name, as
//! Cloudflare answers).

use std::io::{self, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use p256::ecdsa::signature::Signer as _;
use p256::elliptic_curve::sec1::ToEncodedPoint;
use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer,
    KeyIdMethod, KeyUsagePurpose, PublicKeyData, SerialNumber, SignatureAlgorithm,
};
use rustls::crypto::{
    ActiveKeyExchange, CryptoProvider, GetRandomFailed, SecureRandom, SharedSecret,
    SupportedKxGroup,
};
use rustls::pki_types::CertificateDer;
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::{CertifiedKey, Signer, SigningKey};
use rustls::{NamedGroup, ServerConfig, ServerConnection, SignatureScheme};
use sha2::{Digest, Sha256, Sha384};

const HOST: &str = "api.example.test";
/// Sessions from this one on get the renewed leaf.
const RENEWED_FROM_SESSION: usize = 3;

// ---------------------------------------------------------------------------------------------
// Fixed keys (test only)

/// `len` bytes derived from `label`: SHA-256 or SHA-384 of a fixed prefix and the label.
fn derive(label: &str, len: usize) -> Vec<u8> {
    let input = format!("rawpost QEMU test key (not secret): {label}");
    match len {
        32 => Sha256::digest(input).to_vec(),
        48 => Sha384::digest(input).to_vec(),
        _ => unreachable!("only P-256 and P-384 keys"),
    }
}

/// A test key: its private half is derived from its name (see [`derive`]).
#[derive(Clone, Debug)]
enum TestKey {
    P256(p256::ecdsa::SigningKey, Vec<u8>),
    P384(p384::ecdsa::SigningKey, Vec<u8>),
}

impl TestKey {
    fn p256(label: &str) -> Self {
        let key = p256::ecdsa::SigningKey::from_slice(&derive(label, 32))
            .expect("a SHA-256 output is a valid P-256 scalar here");
        let public = key
            .verifying_key()
            .to_encoded_point(false)
            .as_bytes()
            .to_vec();
        Self::P256(key, public)
    }

    fn p384(label: &str) -> Self {
        let key = p384::ecdsa::SigningKey::from_slice(&derive(label, 48))
            .expect("a SHA-384 output is a valid P-384 scalar here");
        let public = key
            .verifying_key()
            .to_encoded_point(false)
            .as_bytes()
            .to_vec();
        Self::P384(key, public)
    }

    /// ECDSA with SHA-256 (P-256) or SHA-384 (P-384), deterministic (RFC 6979), DER.
    fn sign_der(&self, message: &[u8]) -> Vec<u8> {
        match self {
            Self::P256(key, _) => {
                let sig: p256::ecdsa::Signature = key.sign(message);
                sig.to_der().as_bytes().to_vec()
            }
            Self::P384(key, _) => {
                let sig: p384::ecdsa::Signature = key.sign(message);
                sig.to_der().as_bytes().to_vec()
            }
        }
    }
}

impl PublicKeyData for TestKey {
    fn der_bytes(&self) -> &[u8] {
        match self {
            Self::P256(_, public) | Self::P384(_, public) => public,
        }
    }

    fn algorithm(&self) -> &'static SignatureAlgorithm {
        match self {
            Self::P256(..) => &rcgen::PKCS_ECDSA_P256_SHA256,
            Self::P384(..) => &rcgen::PKCS_ECDSA_P384_SHA384,
        }
    }
}

impl rcgen::SigningKey for TestKey {
    fn sign(&self, message: &[u8]) -> Result<Vec<u8>, rcgen::Error> {
        Ok(self.sign_der(message))
    }
}

// ---------------------------------------------------------------------------------------------
// The test PKI (fixed dates)

struct Made {
    params: CertificateParams,
    key: TestKey,
    der: CertificateDer<'static>,
}

#[derive(Clone, Copy)]
enum Role {
    Root,
    Intermediate,
    Leaf,
}

fn make(
    role: Role,
    name: &str,
    serial: u64,
    key: TestKey,
    (from, until): ((i32, u8, u8), (i32, u8, u8)),
    issuer: Option<&Made>,
) -> Made {
    let sans = match role {
        Role::Leaf => vec![HOST.to_owned()],
        _ => vec![],
    };
    let mut params = CertificateParams::new(sans).expect("a valid DNS name");
    params.distinguished_name = rcgen::DistinguishedName::new();
    params
        .distinguished_name
        .push(DnType::OrganizationName, "rawpost");
    params.distinguished_name.push(DnType::CommonName, name);
    params.serial_number = Some(SerialNumber::from(serial));
    params.not_before = rcgen::date_time_ymd(from.0, from.1, from.2);
    params.not_after = rcgen::date_time_ymd(until.0, until.1, until.2);
    params.key_identifier_method =
        KeyIdMethod::PreSpecified(Sha256::digest(key.der_bytes())[..20].to_vec());
    params.use_authority_key_identifier_extension = issuer.is_some();
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
    let cert = match issuer {
        Some(issuer) => params.signed_by(&key, &Issuer::from_params(&issuer.params, &issuer.key)),
        None => params.self_signed(&key),
    }
    .expect("rcgen accepts these parameters");
    let der = cert.der().clone();
    Made { params, key, der }
}

struct Pki {
    root: Made,
    intermediate: Made,
    leaf: Made,
    renewed: Made,
    unrelated: Made,
}

impl Pki {
    fn new(p384_root: bool) -> Self {
        let (root_name, root_key) = if p384_root {
            (
                "rawpost QEMU Test Root (P-384)",
                TestKey::p384("root P-384"),
            )
        } else {
            (
                "rawpost QEMU Test Root (P-256)",
                TestKey::p256("root P-256"),
            )
        };
        let root = make(
            Role::Root,
            root_name,
            1,
            root_key,
            ((2025, 1, 1), (2045, 1, 1)),
            None,
        );
        let intermediate = make(
            Role::Intermediate,
            "rawpost QEMU Test Issuing CA",
            2,
            TestKey::p256("intermediate"),
            ((2025, 1, 1), (2035, 1, 1)),
            Some(&root),
        );
        let leaf = make(
            Role::Leaf,
            HOST,
            3,
            TestKey::p256("leaf"),
            ((2026, 1, 1), (2027, 1, 1)),
            Some(&intermediate),
        );
        let renewed = make(
            Role::Leaf,
            HOST,
            4,
            TestKey::p256("leaf, renewed"),
            ((2026, 3, 1), (2027, 3, 1)),
            Some(&intermediate),
        );
        let unrelated = make(
            Role::Root,
            "rawpost QEMU Unrelated Root",
            5,
            TestKey::p256("unrelated root"),
            ((2025, 1, 1), (2045, 1, 1)),
            None,
        );
        Self {
            root,
            intermediate,
            leaf,
            renewed,
            unrelated,
        }
    }

    fn write(&self, dir: &Path) -> io::Result<()> {
        for (file, made) in [
            ("root.der", &self.root),
            ("intermediate.der", &self.intermediate),
            ("leaf.der", &self.leaf),
            ("leaf-renewed.der", &self.renewed),
            ("unrelated-root.der", &self.unrelated),
        ] {
            std::fs::write(dir.join(file), made.der.as_ref())?;
        }
        Ok(())
    }

    /// The server's configuration presenting `leaf` + the intermediate (never the root), TLS
    /// 1.3 only or TLS 1.2 only.
    fn server_config(&self, leaf: &Made, tls12: bool) -> Arc<ServerConfig> {
        let chain = vec![leaf.der.clone(), self.intermediate.der.clone()];
        let certified = Arc::new(CertifiedKey::new(
            chain,
            Arc::new(LeafKey(leaf.key.clone())),
        ));
        let version = if tls12 {
            &rustls::version::TLS12
        } else {
            &rustls::version::TLS13
        };
        let config = ServerConfig::builder_with_provider(Arc::new(test_provider()))
            .with_protocol_versions(&[version])
            .expect("TLS 1.3 or 1.2 with the ring cipher suites")
            .with_no_client_auth()
            .with_cert_resolver(Arc::new(SniRequired(certified)));
        Arc::new(config)
    }
}

/// Chooses the certificate only when the client sent a server name, as Cloudflare does.
#[derive(Debug)]
struct SniRequired(Arc<CertifiedKey>);

impl ResolvesServerCert for SniRequired {
    fn resolve(&self, hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        hello.server_name().map(|_| self.0.clone())
    }
}

/// The leaf's key for rustls: deterministic ECDSA P-256 with SHA-256 for CertificateVerify.
#[derive(Debug)]
struct LeafKey(TestKey);

impl SigningKey for LeafKey {
    fn choose_scheme(&self, offered: &[SignatureScheme]) -> Option<Box<dyn Signer>> {
        let TestKey::P256(..) = self.0 else {
            return None;
        };
        offered
            .contains(&SignatureScheme::ECDSA_NISTP256_SHA256)
            .then(|| Box::new(LeafSigner(self.0.clone())) as Box<dyn Signer>)
    }

    fn algorithm(&self) -> rustls::SignatureAlgorithm {
        rustls::SignatureAlgorithm::ECDSA
    }
}

#[derive(Debug)]
struct LeafSigner(TestKey);

impl Signer for LeafSigner {
    fn sign(&self, message: &[u8]) -> Result<Vec<u8>, rustls::Error> {
        Ok(self.0.sign_der(message))
    }

    fn scheme(&self) -> SignatureScheme {
        SignatureScheme::ECDSA_NISTP256_SHA256
    }
}

// ---------------------------------------------------------------------------------------------
// Fixed randomness for rustls (test only)

/// rustls's ring provider, except for its randomness and its key exchange, which are fixed.
/// One cipher suite per version: AES-128-GCM with SHA-256 (TLS 1.3), and with ECDHE-ECDSA
/// (TLS 1.2); the protocol version chooses.
fn test_provider() -> CryptoProvider {
    let ring = rustls::crypto::ring::default_provider();
    CryptoProvider {
        cipher_suites: vec![
            rustls::crypto::ring::cipher_suite::TLS13_AES_128_GCM_SHA256,
            rustls::crypto::ring::cipher_suite::TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256,
        ],
        kx_groups: vec![&FIXED_P256],
        secure_random: &FIXED_RANDOM,
        ..ring
    }
}

/// "Random" bytes from a counter: SHA-256 of a fixed label and the block number.
#[derive(Debug)]
struct CounterRandom(Mutex<u64>);

static FIXED_RANDOM: CounterRandom = CounterRandom(Mutex::new(0));

impl SecureRandom for CounterRandom {
    fn fill(&self, buf: &mut [u8]) -> Result<(), GetRandomFailed> {
        let mut counter = self.0.lock().map_err(|_| GetRandomFailed)?;
        for chunk in buf.chunks_mut(32) {
            *counter += 1;
            let block = Sha256::digest(format!("rawpost QEMU test randomness {}", *counter));
            chunk.copy_from_slice(&block[..chunk.len()]);
        }
        Ok(())
    }
}

/// ECDHE on P-256 (secp256r1) with ephemeral keys taken from a counter.
#[derive(Debug)]
struct CounterP256(AtomicU64);

static FIXED_P256: CounterP256 = CounterP256(AtomicU64::new(0));

impl SupportedKxGroup for CounterP256 {
    fn start(&self) -> Result<Box<dyn ActiveKeyExchange>, rustls::Error> {
        let n = self.0.fetch_add(1, Ordering::SeqCst) + 1;
        let secret = p256::SecretKey::from_slice(&derive(&format!("ECDHE {n}"), 32))
            .map_err(|_| rustls::Error::General("fixed ECDHE key out of range".into()))?;
        let public = secret
            .public_key()
            .to_encoded_point(false)
            .as_bytes()
            .to_vec();
        Ok(Box::new(P256Exchange { secret, public }))
    }

    fn name(&self) -> NamedGroup {
        NamedGroup::secp256r1
    }
}

struct P256Exchange {
    secret: p256::SecretKey,
    public: Vec<u8>,
}

impl ActiveKeyExchange for P256Exchange {
    fn complete(self: Box<Self>, peer: &[u8]) -> Result<SharedSecret, rustls::Error> {
        let peer = p256::PublicKey::from_sec1_bytes(peer)
            .map_err(|_| rustls::Error::from(rustls::PeerMisbehaved::InvalidKeyShare))?;
        let shared = p256::ecdh::diffie_hellman(self.secret.to_nonzero_scalar(), peer.as_affine());
        Ok(SharedSecret::from(&shared.raw_secret_bytes()[..]))
    }

    fn pub_key(&self) -> &[u8] {
        &self.public
    }

    fn group(&self) -> NamedGroup {
        NamedGroup::secp256r1
    }
}

// ---------------------------------------------------------------------------------------------
// Serving

/// How a session ended.
enum End {
    /// The client sent close_notify: the next session may follow on the same connection.
    Closed,
    /// The connection ended.
    Eof,
}

/// What happened in one session, printed at the end.
struct Summary {
    leaf: &'static str,
    handshake: bool,
    requests: usize,
    end: String,
}

/// Reads exactly `buf.len()` bytes; `Ok(false)` if the stream ended before the first one.
fn read_all(stream: &mut TcpStream, buf: &mut [u8]) -> io::Result<bool> {
    let mut filled = 0;
    while filled < buf.len() {
        match stream.read(&mut buf[filled..])? {
            0 if filled == 0 => return Ok(false),
            0 => return Err(io::ErrorKind::UnexpectedEof.into()),
            n => filled += n,
        }
    }
    Ok(true)
}

fn send(stream: &mut TcpStream, conn: &mut ServerConnection) -> io::Result<()> {
    while conn.wants_write() {
        conn.write_tls(stream)?;
    }
    stream.flush()
}

fn serve_session(
    stream: &mut TcpStream,
    conn: &mut ServerConnection,
    summary: &mut Summary,
) -> Result<End, String> {
    let mut plaintext = Vec::new();
    loop {
        let mut record = vec![0u8; 5];
        match read_all(stream, &mut record) {
            Ok(true) => {}
            Ok(false) => return Ok(End::Eof),
            Err(e) => return Err(format!("reading a record header: {e}")),
        }
        let len = usize::from(u16::from_be_bytes([record[3], record[4]]));
        record.resize(5 + len, 0);
        match read_all(stream, &mut record[5..]) {
            Ok(true) => {}
            Ok(false) | Err(_) => return Err("the connection ended inside a record".into()),
        }
        conn.read_tls(&mut &record[..])
            .map_err(|e| format!("rustls read_tls: {e}"))?;
        let state = match conn.process_new_packets() {
            Ok(state) => state,
            Err(e) => {
                let _ = send(stream, conn);
                return Err(format!("TLS error: {e}"));
            }
        };
        if !conn.is_handshaking() {
            summary.handshake = true;
        }
        let mut chunk = vec![0u8; state.plaintext_bytes_to_read()];
        conn.reader()
            .read_exact(&mut chunk)
            .map_err(|e| format!("reading plaintext: {e}"))?;
        plaintext.extend_from_slice(&chunk);
        while let Some((consumed, response, close)) = answer(&plaintext, conn.server_name())? {
            plaintext.drain(..consumed);
            summary.requests += 1;
            conn.writer()
                .write_all(&response)
                .map_err(|e| format!("writing a response: {e}"))?;
            if close {
                // `POST /echo-close`: the answer, then close_notify, as a server ends an idle
                // keep-alive session; the session ends when the client's close_notify comes.
                conn.send_close_notify();
            }
        }
        send(stream, conn).map_err(|e| format!("sending: {e}"))?;
        if state.peer_has_closed() {
            return Ok(End::Closed);
        }
    }
}

/// The response to the first complete request in `buf`: the bytes it took, the response, and
/// whether close_notify follows it (`POST /echo-close`).
#[allow(clippy::type_complexity)]
fn answer(buf: &[u8], sni: Option<&str>) -> Result<Option<(usize, Vec<u8>, bool)>, String> {
    let mut headers = [httparse::EMPTY_HEADER; 32];
    let mut req = httparse::Request::new(&mut headers);
    let head_len = match req.parse(buf) {
        Ok(httparse::Status::Complete(n)) => n,
        Ok(httparse::Status::Partial) => return Ok(None),
        Err(e) => return Err(format!("malformed request: {e}")),
    };
    let header = |name: &str| {
        req.headers
            .iter()
            .find(|h| h.name.eq_ignore_ascii_case(name))
            .and_then(|h| std::str::from_utf8(h.value).ok())
    };
    let length: usize = match header("Content-Length").map(str::parse) {
        None => 0,
        Some(Ok(n)) => n,
        Some(Err(_)) => return Err("bad Content-Length".into()),
    };
    if buf.len() < head_len + length {
        return Ok(None);
    }
    let body = &buf[head_len..head_len + length];
    let json = header("Content-Type")
        .and_then(|v| v.split(';').next())
        .is_some_and(|v| v.trim().eq_ignore_ascii_case("application/json"));
    let (status, out): (&str, Vec<u8>) = if header("Host") != sni {
        (
            "421 Misdirected Request",
            br#"{"error":"host_differs_from_sni"}"#.to_vec(),
        )
    } else if req.path != Some("/echo") && req.path != Some("/echo-close") {
        ("404 Not Found", br#"{"error":"not_found"}"#.to_vec())
    } else if req.method != Some("POST") {
        (
            "405 Method Not Allowed",
            br#"{"error":"method_not_allowed"}"#.to_vec(),
        )
    } else if !json {
        (
            "415 Unsupported Media Type",
            br#"{"error":"expected_json"}"#.to_vec(),
        )
    } else {
        ("200 OK", body.to_vec())
    };
    let mut response = format!(
        "HTTP/1.1 {status}\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n",
        out.len()
    )
    .into_bytes();
    response.extend_from_slice(&out);
    let close = req.path == Some("/echo-close") && status.starts_with("200");
    Ok(Some((head_len + length, response, close)))
}

fn run(p384_root: bool, tls12: bool, out: &Path) -> Result<Vec<Summary>, String> {
    let pki = Pki::new(p384_root);
    pki.write(out)
        .map_err(|e| format!("writing the certificates to {}: {e}", out.display()))?;
    let configs = [
        pki.server_config(&pki.leaf, tls12),
        pki.server_config(&pki.renewed, tls12),
    ];

    let listener =
        TcpListener::bind("127.0.0.1:0").map_err(|e| format!("binding 127.0.0.1: {e}"))?;
    let port = listener
        .local_addr()
        .map_err(|e| format!("reading the bound port: {e}"))?
        .port();
    println!("port {port}");
    io::stdout()
        .flush()
        .map_err(|e| format!("writing the port: {e}"))?;
    let (mut stream, _) = listener.accept().map_err(|e| format!("accepting: {e}"))?;
    stream
        .set_nodelay(true)
        .map_err(|e| format!("TCP_NODELAY: {e}"))?;

    let mut sessions = Vec::new();
    loop {
        let renewed = sessions.len() + 1 >= RENEWED_FROM_SESSION;
        let config = &configs[usize::from(renewed)];
        let mut conn = ServerConnection::new(config.clone()).map_err(|e| format!("rustls: {e}"))?;
        let mut summary = Summary {
            leaf: if renewed { "renewed" } else { "first" },
            handshake: false,
            requests: 0,
            end: String::new(),
        };
        let end = serve_session(&mut stream, &mut conn, &mut summary);
        summary.end = match &end {
            Ok(End::Closed) => "close_notify".into(),
            Ok(End::Eof) => "end of stream".into(),
            Err(e) => e.clone(),
        };
        let more = matches!(end, Ok(End::Closed));
        let started = summary.handshake || !matches!(end, Ok(End::Eof));
        if started {
            sessions.push(summary);
        }
        if !more {
            return Ok(sessions);
        }
    }
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    const USAGE: &str = "usage: rawpost-qemu-riscv32-server --root p256|p384 --out DIR [--tls12]";
    let (mut root, mut out, mut tls12) = (None, None, false);
    let mut it = args.iter();
    while let Some(arg) = it.next() {
        if arg == "--tls12" {
            tls12 = true;
            continue;
        }
        match (arg.as_str(), it.next()) {
            ("--root", Some(v)) if v == "p256" || v == "p384" => root = Some(v == "p384"),
            ("--out", Some(v)) => out = Some(PathBuf::from(v)),
            _ => {
                eprintln!("{USAGE}");
                return ExitCode::from(2);
            }
        }
    }
    let (Some(p384_root), Some(out)) = (root, out) else {
        eprintln!("{USAGE}");
        return ExitCode::from(2);
    };
    match run(p384_root, tls12, &out) {
        Ok(sessions) => {
            for (i, s) in sessions.iter().enumerate() {
                eprintln!(
                    "session {}: leaf {}, handshake {}, {} requests, ended by {}",
                    i + 1,
                    s.leaf,
                    if s.handshake { "done" } else { "not done" },
                    s.requests,
                    s.end
                );
            }
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("server: {e}");
            ExitCode::FAILURE
        }
    }
}
