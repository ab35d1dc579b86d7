//! HTTP over TLS end to end: rawpost over embedded-tls (`rawpost::tls::connect`, pinned CA)
//! against the example's Cloudflare-like HTTPS server (rustls TLS 1.3 + hyper, SNI required,
//! 421 when `Host` differs from the SNI name), on loopback, every test under a timeout.
//!
//! The handshake-level rules (no SNI, forged chains, dates, PEM/DER) are tested in
//! `tls_handshake.rs`, `tls_verifier.rs` and `tls_anchor.rs`; here the point is the whole path:
//! pin → handshake → `Connection` → JSON POSTs and back.

#[path = "../examples/support/https_server.rs"]
mod https_server;
mod support;

use std::sync::Arc;
use std::time::Duration;

use embedded_io_adapters::tokio_1::FromTokio;
use embedded_tls::Aes128GcmSha256;
use https_server::{HttpsServer, RootKey, HOST, INTERMEDIATE_NAME, ROOT_NAME};
use rand_core::OsRng;
use rawpost::tls::{CertError, OpenError, PinnedProvider, TimeSource, TimeUsed, TrustAnchor};
use rawpost::{Connection, Host, Request};
use support::net::{post_json, unix_now, within};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// Every test must finish well within this.
const LIMIT: Duration = Duration::from_secs(20);

/// The buffers of one client: embedded-tls's record buffers and rawpost's buffer.
struct Bufs {
    read: Vec<u8>,
    write: Vec<u8>,
    http: Vec<u8>,
}

impl Bufs {
    fn new() -> Self {
        Self {
            read: vec![0; 16_640],
            write: vec![0; 4096],
            http: vec![0; 2048],
        }
    }
}

type Tls<'a> = rawpost::tls::TlsStream<'a, FromTokio<TcpStream>, Aes128GcmSha256>;

type Provider<'a> = PinnedProvider<'a, OsRng, fn() -> Option<u64>>;

fn provider(anchor: TrustAnchor<'_>) -> Provider<'_> {
    PinnedProvider::new(OsRng, anchor, TimeSource::clock(unix_now))
}

/// TCP to the server, then `rawpost::tls::connect` with `host` as SNI and `Host`.
async fn open<'a>(
    server: &HttpsServer,
    host: Host<'a>,
    provider: &mut Provider<'_>,
    bufs: &'a mut Bufs,
) -> Result<Connection<'a, Tls<'a>>, OpenError> {
    let tcp = TcpStream::connect(server.addr).await.expect("tcp connect");
    rawpost::tls::connect(
        FromTokio::new(tcp),
        &mut bufs.read,
        &mut bufs.write,
        host,
        provider,
        &mut bufs.http,
    )
    .await
}

/// The server's answer to `json` must embed it byte for byte, then the token.
fn assert_echo(body: &[u8], json: &[u8]) {
    let text = String::from_utf8_lossy(body);
    let prefix = [
        br#"{"received":"#.as_slice(),
        json,
        br#","access_token":"demo-token-"#,
    ]
    .concat();
    assert!(
        body.starts_with(&prefix) && body.ends_with(b"\"}"),
        "unexpected echo: {text}"
    );
}

/// A handshake that must fail with `expected`; returns the error's text.
async fn refused(
    server: &HttpsServer,
    anchor: TrustAnchor<'_>,
    host: &str,
    expected: CertError,
) -> String {
    let mut bufs = Bufs::new();
    let mut provider = provider(anchor);
    let result = open(server, Host::new(host), &mut provider, &mut bufs).await;
    let error = match result {
        Err(e) => e,
        Ok(_) => panic!("expected Certificate({expected:?}), the connection opened"),
    };
    assert_eq!(error.cert_error(), Some(expected), "{error:?}");
    assert_eq!(server.sessions(), 0, "no TLS session may complete");
    assert_eq!(server.requests(), 0, "no request may reach the server");
    error.to_string()
}

#[tokio::test]
async fn root_pinned_posts_json_and_reuses_the_session() {
    within(LIMIT, async {
        let server = https_server::start(RootKey::P256).await.unwrap();
        let mut pem_buf = [0u8; 2048];
        let anchor = TrustAnchor::from_pem(server.root.pem.as_bytes(), &mut pem_buf).unwrap();
        let mut provider = provider(anchor);
        let mut bufs = Bufs::new();
        let mut conn = open(&server, Host::new(HOST), &mut provider, &mut bufs)
            .await
            .expect("handshake with the root pinned");
        assert!(matches!(provider.last_time(), Some(TimeUsed::Clock(_))));
        assert_eq!(conn.host().name(), HOST);

        let first = br#"{"grant_type":"client_credentials","client_id":"sensor-17"}"#;
        let (status, body) = post_json(&mut conn, first).await;
        assert_eq!(status, 200, "{}", String::from_utf8_lossy(&body));
        assert_echo(&body, first);
        assert!(body.ends_with(b"\"demo-token-1-1\"}"));

        // More POSTs over the same TLS session, with bodies of other shapes and sizes.
        let long = format!(r#"{{"reading":"{}"}}"#, "x".repeat(10_000));
        let bodies: [&[u8]; 3] = [
            br#"{"n":2, "nested":{"a":[1,2.5,-3e2,true,null]}}"#,
            br#"{"text":"caf\u00e9 \"quoted\" \\ slash"}"#,
            long.as_bytes(),
        ];
        for (i, json) in bodies.iter().enumerate() {
            assert!(conn.is_reusable());
            let (status, body) = post_json(&mut conn, json).await;
            assert_eq!(status, 200, "{}", String::from_utf8_lossy(&body));
            assert_echo(&body, json);
            let token = format!("\"demo-token-1-{}\"}}", i + 2);
            assert!(body.ends_with(token.as_bytes()));
        }

        // JSON serialized straight into rawpost's buffer.
        #[derive(serde::Serialize)]
        struct Refresh<'a> {
            grant_type: &'a str,
            refresh_token: &'a str,
        }
        let value = Refresh {
            grant_type: "refresh_token",
            refresh_token: "r-1",
        };
        let req =
            Request::post("/oauth/token").with_headers(&[("Content-Type", "application/json")]);
        let mut resp = conn
            .send_with(&req, |buf| serde_json_core::to_slice(&value, buf))
            .await
            .expect("send_with");
        assert_eq!(resp.status(), 200);
        let mut body = [0u8; 256];
        let n = resp.read_to_end(&mut body).await.unwrap();
        let expected = serde_json_core::to_vec::<_, 128>(&value).unwrap();
        assert_echo(&body[..n], &expected);

        assert_eq!(server.sessions(), 1, "all POSTs went over one TLS session");
        assert_eq!(server.requests(), 5);
        conn.into_inner()
            .close()
            .await
            .map_err(|(_, e)| e)
            .expect("close_notify");
    })
    .await;
}

#[tokio::test]
async fn intermediate_pinned_from_der_is_accepted() {
    within(LIMIT, async {
        let server = https_server::start(RootKey::P256).await.unwrap();
        let anchor = TrustAnchor::from_der(&server.intermediate.der).unwrap();
        let mut provider = provider(anchor);
        let mut bufs = Bufs::new();
        let mut conn = open(&server, Host::new(HOST), &mut provider, &mut bufs)
            .await
            .expect("the anchor may be an intermediate CA");
        let json = br#"{"pinned":"intermediate"}"#;
        let (status, body) = post_json(&mut conn, json).await;
        assert_eq!(status, 200);
        assert_echo(&body, json);
    })
    .await;
}

#[cfg(feature = "p384")]
#[tokio::test]
async fn p384_root_pinned_is_accepted() {
    within(LIMIT, async {
        let server = https_server::start(RootKey::P384).await.unwrap();
        let mut pem_buf = [0u8; 2048];
        let anchor = TrustAnchor::from_pem(server.root.pem.as_bytes(), &mut pem_buf).unwrap();
        let mut provider = provider(anchor);
        let mut bufs = Bufs::new();
        let mut conn = open(&server, Host::new(HOST), &mut provider, &mut bufs)
            .await
            .expect("a P-384 root is verified with feature p384");
        let json = br#"{"root":"P-384"}"#;
        let (status, body) = post_json(&mut conn, json).await;
        assert_eq!(status, 200);
        assert_echo(&body, json);
    })
    .await;
}

#[tokio::test]
async fn host_with_port_still_matches_sni() {
    // `Host: api.example.test:PORT` (the port is not part of SNI): the server compares names.
    within(LIMIT, async {
        let server = https_server::start(RootKey::P256).await.unwrap();
        let anchor = TrustAnchor::from_der(&server.root.der).unwrap();
        let mut provider = provider(anchor);
        let mut bufs = Bufs::new();
        let host = Host::new(HOST).with_port(server.addr.port());
        let mut conn = open(&server, host, &mut provider, &mut bufs).await.unwrap();
        let (status, _) = post_json(&mut conn, b"{}").await;
        assert_eq!(status, 200);
    })
    .await;
}

#[tokio::test]
async fn leaf_pinned_is_refused_and_says_pin_the_root() {
    within(LIMIT, async {
        let server = https_server::start(RootKey::P256).await.unwrap();
        // What `openssl s_client -showcerts` prints first: the server's own certificate.
        let mut pem_buf = [0u8; 2048];
        let anchor = TrustAnchor::from_pem(server.leaf.pem.as_bytes(), &mut pem_buf).unwrap();
        let explained = refused(&server, anchor, HOST, CertError::PinnedIsLeaf).await;
        assert_eq!(
            explained,
            format!(
                "TLS certificate refused: the pinned certificate is the server's own leaf: pin \
                 the root CA that issued its chain; the chain the server sent ends with a \
                 certificate issued by \"{ROOT_NAME}\""
            )
        );
        assert!(explained.contains("pin the root"), "{explained}");
    })
    .await;
}

/// A self-signed CA certificate from another PKI.
fn other_root(name: &str) -> Vec<u8> {
    let key = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).unwrap();
    let mut params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
    params.distinguished_name = rcgen::DistinguishedName::new();
    params
        .distinguished_name
        .push(rcgen::DnType::CommonName, name);
    params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    params.self_signed(&key).unwrap().der().to_vec()
}

#[tokio::test]
async fn unrelated_root_is_refused_and_names_the_real_issuer() {
    within(LIMIT, async {
        let server = https_server::start(RootKey::P256).await.unwrap();
        let other = other_root("Some Other Root CA");
        let anchor = TrustAnchor::from_der(&other).unwrap();
        let explained = refused(&server, anchor, HOST, CertError::ChainNotToPin).await;
        assert_eq!(
            explained,
            format!(
                "TLS certificate refused: the chain does not lead to the pinned certificate \
                 \"Some Other Root CA\"; its top certificate \"{INTERMEDIATE_NAME}\" was issued \
                 by \"{ROOT_NAME}\": pin \"{ROOT_NAME}\" if that is the CA you trust for this \
                 server"
            )
        );
    })
    .await;
}

#[tokio::test]
async fn root_with_the_right_name_but_another_key_is_refused() {
    // Same subject as the real root, another key (another generation of "the same" CA): the
    // name leads to it, the signature does not verify. Refused; which error is the library's
    // choice (today `BadChainSignature`).
    within(LIMIT, async {
        let server = https_server::start(RootKey::P256).await.unwrap();
        let impostor = other_root(ROOT_NAME);
        let mut bufs = Bufs::new();
        let mut provider = provider(TrustAnchor::from_der(&impostor).unwrap());
        let result = open(&server, Host::new(HOST), &mut provider, &mut bufs).await;
        assert!(
            matches!(result, Err(OpenError::Certificate { .. })),
            "{:?}",
            result.err()
        );
        assert_eq!(server.sessions(), 0);
    })
    .await;
}

#[tokio::test]
async fn wrong_host_is_caught_at_tls() {
    // SNI and `Host` come from one value: asking for another host fails the name check in the
    // handshake, before any request could be misdirected (and answered 421).
    within(LIMIT, async {
        let server = https_server::start(RootKey::P256).await.unwrap();
        let anchor = TrustAnchor::from_der(&server.root.der).unwrap();
        let explained = refused(
            &server,
            anchor,
            "other.example.test",
            CertError::NameMismatch,
        )
        .await;
        assert_eq!(
            explained,
            format!(
                "TLS certificate refused: the host \"other.example.test\" is not among the \
                 certificate's names: \"{HOST}\""
            )
        );
    })
    .await;
}

/// A plain rustls client trusting the server's root; `sni` off sends no server name.
fn rustls_connector(server: &HttpsServer, sni: bool) -> tokio_rustls::TlsConnector {
    let mut roots = rustls::RootCertStore::empty();
    roots.add(server.root.der.clone().into()).unwrap();
    let mut config = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_protocol_versions(&[&rustls::version::TLS13])
    .unwrap()
    .with_root_certificates(roots)
    .with_no_client_auth();
    config.enable_sni = sni;
    tokio_rustls::TlsConnector::from(Arc::new(config))
}

/// Over a rustls client (SNI `api.example.test`), writes `request` as raw bytes and returns
/// everything the server answered until it closed.
async fn raw_exchange(server: &HttpsServer, request: &str) -> String {
    let tcp = TcpStream::connect(server.addr).await.unwrap();
    let sni = rustls::pki_types::ServerName::try_from(HOST).unwrap();
    let mut tls = rustls_connector(server, true)
        .connect(sni, tcp)
        .await
        .expect("rustls handshake");
    tls.write_all(request.as_bytes()).await.unwrap();
    let mut answer = Vec::new();
    // `Connection: close` in the request: the server closes after answering. Some servers
    // skip close_notify; what was read until then is the answer.
    let _ = tls.read_to_end(&mut answer).await;
    String::from_utf8_lossy(&answer).into_owned()
}

#[tokio::test]
async fn server_refuses_a_handshake_without_sni() {
    // The shared server's contract (rawpost's side of no-SNI is in tls_handshake.rs).
    within(LIMIT, async {
        let server = https_server::start(RootKey::P256).await.unwrap();
        let tcp = TcpStream::connect(server.addr).await.unwrap();
        let name = rustls::pki_types::ServerName::try_from(HOST).unwrap();
        let result = rustls_connector(&server, false).connect(name, tcp).await;
        assert!(result.is_err(), "a handshake without SNI completed");
        assert_eq!(server.sessions(), 0);
    })
    .await;
}

#[tokio::test]
async fn server_answers_421_when_host_differs_from_sni() {
    // rawpost cannot send such a request (that is the point), so a hand-written one over a
    // rustls client proves the server really enforces it: rawpost's 200s above mean its `Host`
    // matched its SNI.
    within(LIMIT, async {
        let server = https_server::start(RootKey::P256).await.unwrap();
        let request = |host: &str| {
            format!(
                "POST /oauth/token HTTP/1.1\r\nHost: {host}\r\nContent-Type: application/json\r\n\
                 Content-Length: 2\r\nConnection: close\r\n\r\n{{}}"
            )
        };
        let misdirected = raw_exchange(&server, &request("other.example.test")).await;
        assert!(
            misdirected.starts_with("HTTP/1.1 421 Misdirected Request\r\n"),
            "{misdirected}"
        );
        assert!(
            misdirected.ends_with(r#"{"error":"host_differs_from_sni"}"#),
            "{misdirected}"
        );

        // The same request with the SNI name as `Host` (with or without a port) succeeds.
        for host in [HOST, "api.example.test:443", "API.Example.Test"] {
            let answer = raw_exchange(&server, &request(host)).await;
            assert!(
                answer.starts_with("HTTP/1.1 200 OK\r\n"),
                "{host}: {answer}"
            );
            assert!(
                answer.contains(r#"{"received":{},"access_token":"demo-token-"#),
                "{answer}"
            );
        }
        assert_eq!(server.sessions(), 4);
    })
    .await;
}

#[tokio::test]
async fn server_wants_json() {
    // The other half of the server's contract, through rawpost: a body that is not JSON, or a
    // request without `Content-Type: application/json`, is refused.
    within(LIMIT, async {
        let server = https_server::start(RootKey::P256).await.unwrap();
        let anchor = TrustAnchor::from_der(&server.root.der).unwrap();
        let mut provider = provider(anchor);
        let mut bufs = Bufs::new();
        let mut conn = open(&server, Host::new(HOST), &mut provider, &mut bufs)
            .await
            .unwrap();
        let (status, _) = post_json(&mut conn, b"{\"a\":").await;
        assert_eq!(status, 400);
        let (status, _) = post_json(&mut conn, b"[1,2]").await;
        assert_eq!(status, 400);
        let req = Request::post("/oauth/token").with_body(b"{}");
        let mut resp = conn.send(&req).await.unwrap();
        assert_eq!(resp.status(), 415);
        resp.discard().await.unwrap();
    })
    .await;
}
