//! rawpost over rustls (examples/support/rustls_stream.rs) against real rustls servers on
//! loopback, TLS 1.3 and TLS 1.2-only, side by side with rawpost over embedded-tls where both
//! can run: nothing of rawpost's HTTP layer changes with the TLS stack.
//!
//! - the demo server (TLS 1.3, and restricted to TLS 1.2): a POST and reuse of the session;
//! - the same requests give the same plaintext on the wire over embedded-tls and rustls;
//! - a close-delimited body ends cleanly on close_notify and as `UncleanClose` on a TCP close
//!   without it, and a reset mid-body is `TruncatedBody`, the same over both stacks;
//! - the adapter's end-of-stream mapping and `ReadReady`, on the stream and through
//!   `Connection::check_closed`;
//! - a pinned certificate that did not sign the chain: rustls's verifier refuses, and rawpost's
//!   explanation of the same chain is the one it gives over embedded-tls.

mod support;
mod tls_support;

#[path = "../examples/support/https_server.rs"]
mod https_server;
#[path = "../examples/support/rustls_stream.rs"]
mod rustls_stream;

use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use embedded_io::ErrorKind;
use embedded_io_adapters::tokio_1::FromTokio;
use embedded_io_async::{Read, ReadReady, Write};
use rand_core::OsRng;
use rawpost::tls::{CertError, PinnedProvider, TimeSource, TrustAnchor};
use rawpost::{Connection, ConnectionError, Error, Framing, Host, Request, ResponseError};
use rustls::pki_types::{CertificateDer, ServerName};
use rustls::{CertificateError, ProtocolVersion, SupportedProtocolVersion};
use rustls_stream::{PinnedCa, RustlsStream, ALL_VERSIONS, TLS12_ONLY, TLS13_ONLY};
use support::net::{post_json, unix_now, within};
use tls_support::{Pki, HOST, P256};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::oneshot;

/// Every test must finish well within this.
const LIMIT: Duration = Duration::from_secs(30);

/// The TLS 1.3-only and the TLS 1.2-only server.
const SERVER_VERSIONS: [(&str, &[&SupportedProtocolVersion]); 2] =
    [("TLS 1.3", TLS13_ONLY), ("TLS 1.2", TLS12_ONLY)];

fn version_of(versions: &[&SupportedProtocolVersion]) -> ProtocolVersion {
    versions[0].version
}

// ---------------------------------------------------------------------------------------------
// rawpost's part: the same code over every stack
// ---------------------------------------------------------------------------------------------

/// A rawpost error with the stream's error reduced to its kind, so that results over different
/// stacks compare with `==`.
type Outcome = Result<(), Error<ErrorKind>>;

fn kinds<E: embedded_io::Error>(e: Error<E>) -> Error<ErrorKind> {
    match e {
        Error::Io(e) => Error::Io(e.kind()),
        Error::Request(e) => Error::Request(e),
        Error::Response(e) => Error::Response(e),
        Error::Connection(e) => Error::Connection(e),
        Error::Timeout(p) => Error::Timeout(p),
        other => panic!("an error variant this test does not know: {}", other.name()),
    }
}

/// A body of `n` bytes that differs at every position, so that a shift or a cut shows.
fn pattern(n: usize) -> Vec<u8> {
    (0..n)
        .map(|i| b"0123456789abcdefghijklmnopqrstuvwxyz"[(i * 7 + i / 36) % 36])
        .collect()
}

/// The JSON of the first request of [`send_the_requests`].
const READING: &[u8] = br#"{"device":"sensor-17","seq":42,"t":21.5}"#;

/// Four requests, each shape rawpost sends: head and body in one write; a body serialized into
/// rawpost's buffer; a chunked body written piece by piece (one piece larger than the
/// buffer); a body larger than the buffer, written from the caller's slice after the head.
/// Every response must be `200` with `ok`.
async fn send_the_requests<S>(conn: &mut Connection<'_, S>)
where
    S: Read + Write,
    S::Error: std::fmt::Debug,
{
    async fn ok<S: Read + Write>(resp: &mut rawpost::Response<'_, '_, S>)
    where
        S::Error: std::fmt::Debug,
    {
        assert_eq!(resp.status(), 200);
        let mut body = [0u8; 16];
        let n = resp.read_to_end(&mut body).await.expect("response body");
        assert_eq!(&body[..n], b"ok");
    }
    let headers = [
        ("Content-Type", "application/json"),
        ("Authorization", "Bearer t0k3n"),
        ("X-Seq", "42"),
    ];
    let req = Request::post("/v1/readings?device=17")
        .with_headers(&headers)
        .with_body(READING);
    ok(&mut conn.send(&req).await.expect("send")).await;

    let req = Request::post("/v1/batch").with_headers(&headers[..1]);
    let mut resp = conn
        .send_with(&req, |buf| {
            let json = br#"{"batch":[1,2,3]}"#;
            buf[..json.len()].copy_from_slice(json);
            Ok::<_, ()>(json.len())
        })
        .await
        .expect("send_with");
    ok(&mut resp).await;

    let req = Request::put("/v1/log").with_headers(&[("Content-Type", "text/plain")]);
    let mut writer = conn.send_streaming(&req, None).await.expect("streaming");
    for piece in [&b"first line\n"[..], &pattern(5000), b"last\n"] {
        writer.write_all(piece).await.expect("a piece");
    }
    ok(&mut writer.finish().await.expect("finish")).await;

    let big = pattern(10_000);
    let req = Request::post("/v1/blob")
        .with_headers(&[("Content-Type", "application/octet-stream")])
        .with_body(&big);
    ok(&mut conn.send(&req).await.expect("send big")).await;
    assert!(conn.is_reusable());
}

/// Sends a GET and reads the response's body with `read`: every byte delivered, then how it
/// ended. Once `at` body bytes are in, `tell` is told (the server ends the connection then).
async fn read_body_to_its_end<S>(
    conn: &mut Connection<'_, S>,
    at: usize,
    tell: oneshot::Sender<()>,
) -> (Framing, Vec<u8>, Outcome)
where
    S: Read + Write,
    S::Error: std::fmt::Debug,
{
    let mut resp = conn.send(&Request::get("/stream")).await.expect("send");
    assert_eq!(resp.status(), 200);
    let framing = resp.framing();
    let mut tell = Some(tell);
    let mut got = Vec::new();
    let mut piece = [0u8; 1000];
    let end = loop {
        if got.len() >= at {
            if let Some(tell) = tell.take() {
                let _ = tell.send(());
            }
        }
        match resp.read(&mut piece).await {
            Ok(0) => break Ok(()),
            Ok(n) => got.extend_from_slice(&piece[..n]),
            Err(e) => break Err(kinds(e)),
        }
    };
    assert_eq!(resp.is_complete(), end.is_ok());
    (framing, got, end)
}

// ---------------------------------------------------------------------------------------------
// The two stacks
// ---------------------------------------------------------------------------------------------

/// rawpost over rustls: TCP, then a rustls session verified against `pin`.
async fn rustls_open(addr: SocketAddr, host: Host<'_>, pin: &PinnedCa) -> RustlsStream {
    rustls_stream::connect_tcp(addr, host, pin)
        .await
        .expect("rustls handshake")
}

/// The buffers of an embedded-tls client.
struct EtlsBufs {
    read: Vec<u8>,
    write: Vec<u8>,
}

impl EtlsBufs {
    fn new() -> Self {
        Self {
            read: vec![0; 16_640],
            write: vec![0; 4096],
        }
    }
}

type Etls<'b> =
    rawpost::tls::TlsStream<'b, FromTokio<TcpStream>, rawpost::tls::embedded_tls::Aes128GcmSha256>;

/// rawpost over embedded-tls: TCP, then `rawpost::tls::TlsStream::open` with `root` pinned.
async fn etls_open<'b>(addr: SocketAddr, root: &[u8], bufs: &'b mut EtlsBufs) -> Etls<'b> {
    let tcp = TcpStream::connect(addr).await.unwrap();
    tcp.set_nodelay(true).unwrap();
    let anchor = TrustAnchor::from_der(root).unwrap();
    let mut provider = PinnedProvider::new(OsRng, anchor, TimeSource::clock(unix_now));
    rawpost::tls::TlsStream::open(
        FromTokio::new(tcp),
        &mut bufs.read,
        &mut bufs.write,
        Host::new(HOST),
        &mut provider,
    )
    .await
    .expect("embedded-tls handshake")
}

// ---------------------------------------------------------------------------------------------
// A scripted rustls server that keeps every byte it received
// ---------------------------------------------------------------------------------------------

/// How the scripted server ends the connection after its last response.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Ending {
    /// close_notify, then TCP FIN.
    CloseNotify,
    /// TCP FIN without close_notify.
    TcpFin,
    /// TCP RST (`SO_LINGER` 0, then close).
    Reset,
}

/// What the scripted server saw.
#[derive(Debug)]
struct Seen {
    /// Every plaintext byte the client sent, in order.
    plaintext: Vec<u8>,
    /// The TLS version negotiated.
    version: Option<ProtocolVersion>,
    /// The server name the client sent.
    sni: Option<String>,
}

fn server_config(
    pki: &Pki,
    versions: &[&'static SupportedProtocolVersion],
) -> rustls::ServerConfig {
    server_config_with(pki, rustls::crypto::ring::default_provider(), versions)
}

fn server_config_with(
    pki: &Pki,
    provider: rustls::crypto::CryptoProvider,
    versions: &[&'static SupportedProtocolVersion],
) -> rustls::ServerConfig {
    rustls::ServerConfig::builder_with_provider(Arc::new(provider))
        .with_protocol_versions(versions)
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(pki.chain(), pki.leaf.key_der())
        .unwrap()
}

/// The length of the first whole request in `buf` (head, then a `Content-Length` or chunked
/// body without trailers), if it is all there.
fn request_len(buf: &[u8]) -> Option<usize> {
    let head = buf.windows(4).position(|w| w == b"\r\n\r\n")? + 4;
    let text = String::from_utf8_lossy(&buf[..head]).to_ascii_lowercase();
    if text.contains("\r\ntransfer-encoding: chunked\r\n") {
        let mut at = head;
        loop {
            let line = buf[at..].windows(2).position(|w| w == b"\r\n")?;
            let size = std::str::from_utf8(&buf[at..at + line]).ok()?;
            let size = usize::from_str_radix(size, 16).expect("a chunk size");
            at += line + 2 + size + 2;
            if buf.len() < at {
                return None;
            }
            if size == 0 {
                return Some(at);
            }
        }
    }
    let length = text
        .split("\r\n")
        .find_map(|l| l.strip_prefix("content-length: "))
        .map_or(0, |n| n.parse::<usize>().expect("a length"));
    (buf.len() >= head + length).then_some(head + length)
}

/// A rustls server for one connection: it answers each request it reads whole with the next
/// of `responses`; after the last, it waits for `go` (if given) and ends as `ending` says.
async fn scripted_server(
    config: rustls::ServerConfig,
    responses: Vec<Vec<u8>>,
    go: Option<oneshot::Receiver<()>>,
    ending: Ending,
) -> (SocketAddr, tokio::task::JoinHandle<Seen>) {
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let handle = tokio::spawn(async move {
        let (tcp, _) = listener.accept().await.unwrap();
        let mut tls = acceptor.accept(tcp).await.expect("server handshake");
        let version = tls.get_ref().1.protocol_version();
        let sni = tls.get_ref().1.server_name().map(str::to_owned);
        let mut plaintext = Vec::new();
        let mut unanswered = 0;
        let mut buf = vec![0u8; 65_536];
        for response in responses {
            while request_len(&plaintext[unanswered..]).is_none() {
                let n = tls.read(&mut buf).await.expect("server read");
                assert!(n > 0, "the client closed before its request was complete");
                plaintext.extend_from_slice(&buf[..n]);
            }
            unanswered += request_len(&plaintext[unanswered..]).unwrap();
            tls.write_all(&response).await.unwrap();
            tls.flush().await.unwrap();
        }
        if let Some(go) = go {
            let _ = go.await;
        }
        match ending {
            Ending::CloseNotify => tls.shutdown().await.unwrap(),
            Ending::TcpFin => {
                let (mut tcp, _) = tls.into_inner();
                tcp.shutdown().await.unwrap();
                // Keep the socket until the client is done (a write to it then would reset).
                let _ = tcp.read(&mut buf).await;
            }
            Ending::Reset => {
                let (tcp, _) = tls.into_inner();
                tcp.set_zero_linger().unwrap();
                drop(tcp);
            }
        }
        Seen {
            plaintext,
            version,
            sni,
        }
    });
    (addr, handle)
}

// ---------------------------------------------------------------------------------------------
// POSTs and session reuse against the demo server
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn demo_server_tls13_and_tls12_posts_json_over_one_session() {
    within(LIMIT, async {
        for (versions, expected) in [
            (https_server::Versions::Tls13Only, ProtocolVersion::TLSv1_3),
            (https_server::Versions::Tls12Only, ProtocolVersion::TLSv1_2),
        ] {
            let server = https_server::start_versions(https_server::RootKey::P256, versions)
                .await
                .unwrap();
            // The root from its PEM, alone in rustls's RootCertStore; the client offers both
            // versions, the server decides.
            let pin = PinnedCa::from_pem(server.root.pem.as_bytes(), 0, ALL_VERSIONS).unwrap();
            let host = Host::new(https_server::HOST);
            let tls = rustls_open(server.addr, host, &pin).await;
            assert_eq!(tls.protocol_version(), Some(expected), "{versions:?}");
            let mut buf = [0u8; 2048];
            let mut conn = Connection::new(tls, &mut buf, host);
            for i in 1..=3 {
                let json = format!(r#"{{"grant_type":"client_credentials","n":{i}}}"#);
                let (status, body) = post_json(&mut conn, json.as_bytes()).await;
                // The demo server answers 421 when Host differs from the SNI name: the 200 says
                // they agreed. The echo is the request's body byte for byte.
                assert_eq!(status, 200, "{}", String::from_utf8_lossy(&body));
                let want = format!(r#"{{"received":{json},"access_token":"demo-token-1-{i}"}}"#);
                assert_eq!(String::from_utf8_lossy(&body), want, "{versions:?}");
                assert!(conn.is_reusable());
            }
            assert_eq!(
                server.sessions(),
                1,
                "{versions:?}: one TLS session for the POSTs"
            );
            assert_eq!(server.requests(), 3);
            conn.into_inner().close().await.expect("close_notify");
        }
    })
    .await;
}

#[tokio::test]
async fn embedded_tls_is_refused_by_the_tls12_demo_server_that_rustls_talks_to() {
    within(LIMIT, async {
        let server = https_server::start_tls12(https_server::RootKey::P256)
            .await
            .unwrap();
        let anchor = TrustAnchor::from_der(&server.root.der).unwrap();
        let mut provider = PinnedProvider::new(OsRng, anchor, TimeSource::clock(unix_now));
        let tcp = TcpStream::connect(server.addr).await.unwrap();
        let mut bufs = EtlsBufs::new();
        let refused = rawpost::tls::TlsStream::open(
            FromTokio::new(tcp),
            &mut bufs.read,
            &mut bufs.write,
            Host::new(https_server::HOST),
            &mut provider,
        )
        .await
        .err()
        .expect("embedded-tls speaks TLS 1.3 only");
        assert_eq!(
            refused.to_string(),
            "TLS handshake failed: the server does not speak TLS 1.3 (it answered \
             protocol_version); embedded-tls speaks TLS 1.3 only: enable TLS 1.3 on the server \
             (nginx: ssl_protocols TLSv1.2 TLSv1.3) [HandshakeAborted(Fatal, ProtocolVersion)]"
        );
        // The same server, the same pin, over rustls.
        let pin = PinnedCa::new(server.root.der.clone().into(), ALL_VERSIONS).unwrap();
        let host = Host::new(https_server::HOST);
        let tls = rustls_open(server.addr, host, &pin).await;
        assert_eq!(tls.protocol_version(), Some(ProtocolVersion::TLSv1_2));
        let mut buf = [0u8; 2048];
        let mut conn = Connection::new(tls, &mut buf, host);
        let (status, _) = post_json(&mut conn, b"{}").await;
        assert_eq!(status, 200);
        assert_eq!(server.sessions(), 1);
    })
    .await;
}

// ---------------------------------------------------------------------------------------------
// The same Request, the same bytes
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn the_same_requests_give_the_same_plaintext_over_embedded_tls_and_rustls() {
    within(LIMIT, async {
        let pki = Pki::new(&P256, &P256);
        let ok = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok".to_vec();
        let responses = vec![ok; 4];

        // embedded-tls (TLS 1.3).
        let config = server_config(&pki, TLS13_ONLY);
        let (addr, server) =
            scripted_server(config, responses.clone(), None, Ending::CloseNotify).await;
        let mut bufs = EtlsBufs::new();
        let tls = etls_open(addr, pki.root.der.as_ref(), &mut bufs).await;
        let mut buf = vec![0u8; 2048];
        let mut conn = Connection::new(tls, &mut buf, Host::new(HOST));
        send_the_requests(&mut conn).await;
        drop(conn);
        let etls = server.await.unwrap();
        assert_eq!(etls.sni.as_deref(), Some(HOST));

        // rustls, TLS 1.3 and TLS 1.2.
        let pin = PinnedCa::new(pki.root.der.clone(), ALL_VERSIONS).unwrap();
        for (label, versions) in SERVER_VERSIONS {
            let config = server_config(&pki, versions);
            let (addr, server) =
                scripted_server(config, responses.clone(), None, Ending::CloseNotify).await;
            let tls = rustls_open(addr, Host::new(HOST), &pin).await;
            let mut buf = vec![0u8; 2048];
            let mut conn = Connection::new(tls, &mut buf, Host::new(HOST));
            send_the_requests(&mut conn).await;
            drop(conn);
            let seen = server.await.unwrap();
            assert_eq!(seen.version, Some(version_of(versions)), "{label}");
            assert_eq!(seen.sni.as_deref(), Some(HOST), "{label}");
            assert_eq!(seen.plaintext.len(), etls.plaintext.len(), "{label}");
            assert!(
                seen.plaintext == etls.plaintext,
                "{label}: the plaintext differs from embedded-tls's at byte {:?}",
                seen.plaintext
                    .iter()
                    .zip(&etls.plaintext)
                    .position(|(a, b)| a != b)
            );
        }

        // And it is what was asked for: the first request, exactly.
        let first = [
            &b"POST /v1/readings?device=17 HTTP/1.1\r\nHost: api.example.test\r\n\
               Content-Type: application/json\r\nAuthorization: Bearer t0k3n\r\nX-Seq: 42\r\n\
               Content-Length: 40\r\n\r\n"[..],
            READING,
        ]
        .concat();
        assert!(
            etls.plaintext.starts_with(&first),
            "{}",
            String::from_utf8_lossy(&etls.plaintext[..first.len()])
        );
        // Four requests, the chunked one with the pieces in order.
        let text = String::from_utf8_lossy(&etls.plaintext);
        assert_eq!(
            text.matches(" HTTP/1.1\r\nHost: api.example.test\r\n")
                .count(),
            4
        );
        assert!(text.contains(
            "PUT /v1/log HTTP/1.1\r\nHost: api.example.test\r\nContent-Type: text/plain\r\n\
             Transfer-Encoding: chunked\r\n\r\n"
        ));
        assert!(etls.plaintext.ends_with(&pattern(10_000)));
    })
    .await;
}

// ---------------------------------------------------------------------------------------------
// The ends of a response delimited by the close, and a reset
// ---------------------------------------------------------------------------------------------

/// 40,000 bytes of body (several TLS records), no Content-Length: delimited by the close.
fn close_delimited() -> (Vec<u8>, Vec<u8>) {
    let body = pattern(40_000);
    let mut response = b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n\r\n".to_vec();
    response.extend_from_slice(&body);
    (response, body)
}

/// The server sends `response`, and ends as `ending` says once the client has read `at` body
/// bytes: what the client read and how it ended, over embedded-tls (TLS 1.3) and over rustls
/// (TLS 1.3, TLS 1.2), in that order.
async fn ends_over_each_stack(
    response: &[u8],
    at: usize,
    ending: Ending,
) -> Vec<(String, Framing, Vec<u8>, Outcome)> {
    let pki = Pki::new(&P256, &P256);
    let mut results = Vec::new();

    let (tell, go) = oneshot::channel();
    let (addr, server) = scripted_server(
        server_config(&pki, TLS13_ONLY),
        vec![response.to_vec()],
        Some(go),
        ending,
    )
    .await;
    let mut bufs = EtlsBufs::new();
    let tls = etls_open(addr, pki.root.der.as_ref(), &mut bufs).await;
    let mut buf = vec![0u8; 2048];
    let mut conn = Connection::new(tls, &mut buf, Host::new(HOST));
    let (framing, got, end) = read_body_to_its_end(&mut conn, at, tell).await;
    assert!(!conn.is_reusable());
    if ending == Ending::CloseNotify {
        assert!(conn.stream().peer_closed());
    }
    drop(conn);
    server.await.unwrap();
    results.push(("embedded-tls TLS 1.3".to_owned(), framing, got, end));

    let pin = PinnedCa::new(pki.root.der.clone(), ALL_VERSIONS).unwrap();
    for (label, versions) in SERVER_VERSIONS {
        let (tell, go) = oneshot::channel();
        let (addr, server) = scripted_server(
            server_config(&pki, versions),
            vec![response.to_vec()],
            Some(go),
            ending,
        )
        .await;
        let tls = rustls_open(addr, Host::new(HOST), &pin).await;
        let mut buf = vec![0u8; 2048];
        let mut conn = Connection::new(tls, &mut buf, Host::new(HOST));
        let (framing, got, end) = read_body_to_its_end(&mut conn, at, tell).await;
        assert!(!conn.is_reusable());
        assert_eq!(conn.stream().peer_closed(), ending == Ending::CloseNotify);
        drop(conn);
        server.await.unwrap();
        results.push((format!("rustls {label}"), framing, got, end));
    }
    results
}

#[tokio::test]
async fn close_delimited_body_ends_cleanly_on_close_notify_over_both_stacks() {
    within(LIMIT, async {
        let (response, body) = close_delimited();
        for (stack, framing, got, end) in
            ends_over_each_stack(&response, 0, Ending::CloseNotify).await
        {
            assert_eq!(framing, Framing::UntilClose, "{stack}");
            assert_eq!(end, Ok(()), "{stack}");
            assert_eq!(got.len(), body.len(), "{stack}");
            assert!(got == body, "{stack}: the body differs");
        }
    })
    .await;
}

#[tokio::test]
async fn close_delimited_body_without_close_notify_is_unclean_close_over_both_stacks() {
    within(LIMIT, async {
        let (response, body) = close_delimited();
        for (stack, framing, got, end) in ends_over_each_stack(&response, 0, Ending::TcpFin).await {
            assert_eq!(framing, Framing::UntilClose, "{stack}");
            assert_eq!(
                end,
                Err(Error::Response(ResponseError::UncleanClose)),
                "{stack}"
            );
            // Every byte before the end was delivered.
            assert_eq!(got.len(), body.len(), "{stack}");
            assert!(got == body, "{stack}: the body differs");
        }
    })
    .await;
}

#[tokio::test]
async fn a_content_length_body_cut_short_is_truncated_body_over_both_stacks() {
    within(LIMIT, async {
        // Content-Length 40,000, 10,000 bytes sent; the end comes once the client has read
        // them, however the server ends.
        let mut response = b"HTTP/1.1 200 OK\r\nContent-Length: 40000\r\n\r\n".to_vec();
        let sent = pattern(10_000);
        response.extend_from_slice(&sent);
        for ending in [Ending::CloseNotify, Ending::TcpFin, Ending::Reset] {
            for (stack, framing, got, end) in
                ends_over_each_stack(&response, sent.len(), ending).await
            {
                assert_eq!(framing, Framing::Length(40_000), "{stack}");
                assert_eq!(
                    end,
                    Err(Error::Response(ResponseError::TruncatedBody)),
                    "{stack} {ending:?}"
                );
                assert!(
                    got == sent,
                    "{stack} {ending:?}: {} bytes delivered",
                    got.len()
                );
            }
        }
    })
    .await;
}

#[tokio::test]
async fn a_reset_inside_a_close_delimited_body_is_unclean_close_over_both_stacks() {
    within(LIMIT, async {
        // Every byte, then `UncleanClose`.
        let (response, body) = close_delimited();
        for (stack, framing, got, end) in
            ends_over_each_stack(&response, body.len(), Ending::Reset).await
        {
            assert_eq!(framing, Framing::UntilClose, "{stack}");
            assert_eq!(
                end,
                Err(Error::Response(ResponseError::UncleanClose)),
                "{stack}"
            );
            assert!(got == body, "{stack}: {} bytes delivered", got.len());
        }
    })
    .await;
}

// ---------------------------------------------------------------------------------------------
// The adapter's mapping, on the stream itself
// ---------------------------------------------------------------------------------------------

/// Reads until an end: the bytes, then `Ok(0)` or the error, then what two more reads return.
async fn read_to_the_end(tls: &mut RustlsStream) -> (Vec<u8>, Vec<Result<usize, ErrorKind>>) {
    let mut got = Vec::new();
    let mut piece = [0u8; 4096];
    let mut ends = Vec::new();
    loop {
        match tls.read(&mut piece).await {
            Ok(0) => {
                ends.push(Ok(0));
                break;
            }
            Ok(n) => got.extend_from_slice(&piece[..n]),
            Err(e) => {
                ends.push(Err(embedded_io::Error::kind(&e)));
                break;
            }
        }
    }
    for _ in 0..2 {
        ends.push(
            tls.read(&mut piece)
                .await
                .map_err(|e| embedded_io::Error::kind(&e)),
        );
    }
    (got, ends)
}

#[tokio::test]
async fn the_stream_maps_close_notify_tcp_close_and_reset() {
    within(LIMIT, async {
        let pki = Pki::new(&P256, &P256);
        let pin = PinnedCa::new(pki.root.der.clone(), ALL_VERSIONS).unwrap();
        let reply = b"HTTP/1.1 200 OK\r\n\r\nthe end".to_vec();
        for (label, versions) in SERVER_VERSIONS {
            for (ending, after) in [
                (Ending::CloseNotify, Ok(0)),
                (Ending::TcpFin, Err(ErrorKind::ConnectionAborted)),
                (Ending::Reset, Err(ErrorKind::ConnectionReset)),
            ] {
                let (tell, go) = oneshot::channel();
                let (addr, server) = scripted_server(
                    server_config(&pki, versions),
                    vec![reply.clone()],
                    Some(go),
                    ending,
                )
                .await;
                let mut tls = rustls_open(addr, Host::new(HOST), &pin).await;
                tls.write_all(b"GET / HTTP/1.1\r\nHost: api.example.test\r\n\r\n")
                    .await
                    .unwrap();
                tls.flush().await.unwrap();
                // The reply first, then the server ends the session.
                let mut got = vec![0u8; reply.len()];
                tls.read_exact(&mut got).await.expect("the reply");
                assert_eq!(got, reply);
                tell.send(()).unwrap();
                let (rest, ends) = read_to_the_end(&mut tls).await;
                assert_eq!(rest, b"", "{label} {ending:?}");
                // This read's result, and the same on every later read.
                assert_eq!(ends, vec![after; 3], "{label} {ending:?}");
                assert_eq!(tls.peer_closed(), ending == Ending::CloseNotify);
                drop(tls);
                server.await.unwrap();
            }
        }
    })
    .await;
}

#[tokio::test]
async fn a_tcp_close_without_close_notify_keeps_rustls_message() {
    within(LIMIT, async {
        let pki = Pki::new(&P256, &P256);
        let pin = PinnedCa::new(pki.root.der.clone(), TLS13_ONLY).unwrap();
        let (addr, server) = scripted_server(
            server_config(&pki, TLS13_ONLY),
            Vec::new(),
            None,
            Ending::TcpFin,
        )
        .await;
        let mut tls = rustls_open(addr, Host::new(HOST), &pin).await;
        let mut piece = [0u8; 64];
        let e = tls.read(&mut piece).await.expect_err("no close_notify");
        assert_eq!(e.kind(), std::io::ErrorKind::ConnectionAborted);
        assert_eq!(
            e.to_string(),
            "peer closed connection without sending TLS close_notify: \
             https://docs.rs/rustls/latest/rustls/manual/_03_howto/index.html#unexpected-eof"
        );
        drop(tls);
        server.await.unwrap();
    })
    .await;
}

// ---------------------------------------------------------------------------------------------
// ReadReady: a server-closed idle connection, seen before writing
// ---------------------------------------------------------------------------------------------

/// rustls's in-memory session store, counting the TLS 1.3 tickets it is given.
#[derive(Debug)]
struct CountingStore {
    inner: rustls::client::ClientSessionMemoryCache,
    tickets: AtomicUsize,
}

impl rustls::client::ClientSessionStore for CountingStore {
    fn set_kx_hint(&self, name: ServerName<'static>, group: rustls::NamedGroup) {
        self.inner.set_kx_hint(name, group)
    }
    fn kx_hint(&self, name: &ServerName<'_>) -> Option<rustls::NamedGroup> {
        self.inner.kx_hint(name)
    }
    fn set_tls12_session(
        &self,
        name: ServerName<'static>,
        v: rustls::client::Tls12ClientSessionValue,
    ) {
        self.inner.set_tls12_session(name, v)
    }
    fn tls12_session(
        &self,
        name: &ServerName<'_>,
    ) -> Option<rustls::client::Tls12ClientSessionValue> {
        self.inner.tls12_session(name)
    }
    fn remove_tls12_session(&self, name: &ServerName<'static>) {
        self.inner.remove_tls12_session(name)
    }
    fn insert_tls13_ticket(
        &self,
        name: ServerName<'static>,
        v: rustls::client::Tls13ClientSessionValue,
    ) {
        self.tickets.fetch_add(1, Ordering::SeqCst);
        self.inner.insert_tls13_ticket(name, v)
    }
    fn take_tls13_ticket(
        &self,
        name: &ServerName<'static>,
    ) -> Option<rustls::client::Tls13ClientSessionValue> {
        self.inner.take_tls13_ticket(name)
    }
}

#[tokio::test]
async fn new_session_tickets_on_an_idle_session_are_not_ready() {
    within(LIMIT, async {
        let pki = Pki::new(&P256, &P256);
        let mut pin = PinnedCa::new(pki.root.der.clone(), TLS13_ONLY).unwrap();
        let store = Arc::new(CountingStore {
            inner: rustls::client::ClientSessionMemoryCache::new(8),
            tickets: AtomicUsize::new(0),
        });
        let mut config = (*pin.config).clone();
        config.resumption = rustls::client::Resumption::store(store.clone());
        pin.config = Arc::new(config);
        let (tell, go) = oneshot::channel();
        let (addr, server) = scripted_server(
            server_config(&pki, TLS13_ONLY),
            Vec::new(),
            Some(go),
            Ending::CloseNotify,
        )
        .await;
        let mut tls = rustls_open(addr, Host::new(HOST), &pin).await;
        // rustls servers send two NewSessionTickets after the handshake; give them time to
        // arrive, then look.
        tokio::time::sleep(Duration::from_millis(200)).await;
        assert!(!tls.read_ready().unwrap(), "tickets are not data");
        assert_eq!(
            store.tickets.load(Ordering::SeqCst),
            2,
            "read_ready absorbed the tickets"
        );
        assert!(!tls.read_ready().unwrap());
        tell.send(()).unwrap();
        wait_ready(&mut tls).await;
        let mut piece = [0u8; 16];
        assert_eq!(tls.read(&mut piece).await.unwrap(), 0);
        server.await.unwrap();
    })
    .await;
}

/// Polls `read_ready` until it says yes (at most 5 s).
// Only `new_session_tickets_on_an_idle_session_are_not_ready` waits this way.
async fn wait_ready(tls: &mut RustlsStream) {
    for _ in 0..500 {
        if tls.read_ready().unwrap() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("read_ready never said yes");
}

#[tokio::test]
async fn check_closed_sees_every_end_of_an_idle_session_before_writing() {
    within(LIMIT, async {
        let pki = Pki::new(&P256, &P256);
        let pin = PinnedCa::new(pki.root.der.clone(), ALL_VERSIONS).unwrap();
        let ok = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok".to_vec();
        for (label, versions) in SERVER_VERSIONS {
            for ending in [Ending::CloseNotify, Ending::TcpFin, Ending::Reset] {
                let (tell, go) = oneshot::channel();
                let (addr, server) = scripted_server(
                    server_config(&pki, versions),
                    vec![ok.clone()],
                    Some(go),
                    ending,
                )
                .await;
                let tls = rustls_open(addr, Host::new(HOST), &pin).await;
                let mut buf = vec![0u8; 2048];
                let mut conn = Connection::new(tls, &mut buf, Host::new(HOST));
                let mut resp = conn
                    .send(&Request::post("/a").with_body(b"{}"))
                    .await
                    .unwrap();
                let mut body = [0u8; 8];
                assert_eq!(resp.read_to_end(&mut body).await.unwrap(), 2);
                tokio::time::sleep(Duration::from_millis(50)).await;
                assert!(
                    !conn.check_closed().await.unwrap(),
                    "{label} {ending:?}: open"
                );

                tell.send(()).unwrap();
                let mut verdict = Ok(false);
                for _ in 0..500 {
                    verdict = conn.check_closed().await.map_err(kinds);
                    if verdict != Ok(false) {
                        break;
                    }
                    tokio::time::sleep(Duration::from_millis(10)).await;
                }
                // Every end of an idle session — close_notify, a TCP close without it, a reset —
                // is the server closing it: `Ok(true)`.
                assert_eq!(verdict, Ok(true), "{label} {ending:?}");
                // The next request is refused before a byte of it is written, so it may go on
                // a new connection, POST or not.
                let e = conn
                    .send(&Request::post("/b").with_body(b"{}"))
                    .await
                    .err()
                    .unwrap();
                assert_eq!(
                    kinds(e),
                    Error::Connection(ConnectionError::ClosedByServer),
                    "{label} {ending:?}"
                );
                assert!(conn.may_resend(), "{label} {ending:?}");
                drop(conn);
                let seen = server.await.unwrap();
                assert!(seen.plaintext.starts_with(b"POST /a HTTP/1.1\r\n"));
                assert_eq!(
                    request_len(&seen.plaintext),
                    Some(seen.plaintext.len()),
                    "{label} {ending:?}: one request only"
                );
            }
        }
    })
    .await;
}

// ---------------------------------------------------------------------------------------------
// Pinning through rustls's verifier, and rawpost's explanation of a refusal
// ---------------------------------------------------------------------------------------------

/// A self-signed CA certificate from another PKI.
fn other_root(name: &str) -> CertificateDer<'static> {
    tls_support::root(name, &P256).der
}

/// Opens a session to `server` over rustls with `pin` for `host`, which must fail with
/// `expected`; returns rawpost's explanation of the chain rustls refused.
async fn rustls_refuses(
    server: &https_server::HttpsServer,
    pin: &PinnedCa,
    host: &str,
    expected: fn(&CertificateError) -> bool,
) -> rawpost::tls::OpenError {
    let tcp = TcpStream::connect(server.addr).await.unwrap();
    let e = rustls_stream::connect(tcp, Host::new(host), pin)
        .await
        .err()
        .expect("rustls must refuse the chain");
    match rustls_stream::rustls_error(&e) {
        Some(rustls::Error::InvalidCertificate(c)) if expected(c) => {}
        other => panic!("unexpected refusal: {other:?} ({e})"),
    }
    let refused = pin.verifier.take_refused().expect("the refused chain");
    assert_eq!(refused.chain.len(), 2, "leaf and intermediate");
    assert_eq!(refused.chain[0].as_ref(), server.leaf.der.as_slice());
    assert_eq!(
        refused.chain[1].as_ref(),
        server.intermediate.der.as_slice()
    );
    assert_eq!(server.sessions(), 0, "no TLS session may complete");
    rustls_stream::explain(pin, Host::new(host), &refused).expect_err("rawpost refuses it too")
}

/// The same pin and host over embedded-tls: rawpost's own refusal.
async fn embedded_tls_refuses(
    server: &https_server::HttpsServer,
    anchor: &[u8],
    host: &str,
) -> rawpost::tls::OpenError {
    let mut provider = PinnedProvider::new(
        OsRng,
        TrustAnchor::from_der(anchor).unwrap(),
        TimeSource::clock(unix_now),
    );
    let tcp = TcpStream::connect(server.addr).await.unwrap();
    let mut bufs = EtlsBufs::new();
    rawpost::tls::TlsStream::open(
        FromTokio::new(tcp),
        &mut bufs.read,
        &mut bufs.write,
        Host::new(host),
        &mut provider,
    )
    .await
    .err()
    .expect("embedded-tls must refuse the chain")
}

#[tokio::test]
async fn a_pinned_root_that_did_not_sign_the_chain_is_refused_and_explained() {
    within(LIMIT, async {
        for versions in [
            https_server::Versions::Tls13Only,
            https_server::Versions::Tls12Only,
        ] {
            let server = https_server::start_versions(https_server::RootKey::P256, versions)
                .await
                .unwrap();
            let other = other_root("Some Other Root CA");
            let pin = PinnedCa::new(other.clone(), ALL_VERSIONS).unwrap();
            let explained = rustls_refuses(&server, &pin, https_server::HOST, |c| {
                *c == CertificateError::UnknownIssuer
            })
            .await;
            assert_eq!(explained.cert_error(), Some(CertError::ChainNotToPin));
            assert_eq!(
                explained.to_string(),
                format!(
                    "TLS certificate refused: the chain does not lead to the pinned certificate \
                     \"Some Other Root CA\"; its top certificate \"{}\" was issued by \"{}\": pin \
                     \"{}\" if that is the CA you trust for this server",
                    https_server::INTERMEDIATE_NAME,
                    https_server::ROOT_NAME,
                    https_server::ROOT_NAME
                ),
                "{versions:?}"
            );
            if versions == https_server::Versions::Tls13Only {
                let direct = embedded_tls_refuses(&server, &other, https_server::HOST).await;
                assert_eq!(direct.to_string(), explained.to_string());
            }
            assert_eq!(server.requests(), 0);
        }
    })
    .await;
}

#[tokio::test]
async fn a_pinned_leaf_is_refused_and_the_explanation_says_pin_the_root() {
    within(LIMIT, async {
        let server = https_server::start(https_server::RootKey::P256)
            .await
            .unwrap();
        let pin = PinnedCa::from_pem(server.leaf.pem.as_bytes(), 0, ALL_VERSIONS).unwrap();
        let explained = rustls_refuses(&server, &pin, https_server::HOST, |c| {
            *c == CertificateError::UnknownIssuer
        })
        .await;
        assert_eq!(explained.cert_error(), Some(CertError::PinnedIsLeaf));
        let direct = embedded_tls_refuses(&server, &server.leaf.der, https_server::HOST).await;
        assert_eq!(direct.to_string(), explained.to_string());
        assert_eq!(
            explained.to_string(),
            format!(
                "TLS certificate refused: the pinned certificate is the server's own leaf: pin \
                 the root CA that issued its chain; the chain the server sent ends with a \
                 certificate issued by \"{}\"",
                https_server::ROOT_NAME
            )
        );
    })
    .await;
}

#[tokio::test]
async fn another_host_is_refused_at_the_name_check_and_explained() {
    within(LIMIT, async {
        let server = https_server::start(https_server::RootKey::P256)
            .await
            .unwrap();
        let pin = PinnedCa::new(server.root.der.clone().into(), ALL_VERSIONS).unwrap();
        let explained = rustls_refuses(&server, &pin, "other.example.test", |c| {
            matches!(c, CertificateError::NotValidForNameContext { expected, presented }
                if *expected == ServerName::try_from("other.example.test").unwrap()
                    && presented == &["DnsName(\"api.example.test\")".to_owned()])
        })
        .await;
        assert_eq!(explained.cert_error(), Some(CertError::NameMismatch));
        let direct = embedded_tls_refuses(&server, &server.root.der, "other.example.test").await;
        assert_eq!(direct.to_string(), explained.to_string());
    })
    .await;
}

#[tokio::test]
async fn an_intermediate_pinned_is_accepted_by_rustls() {
    within(LIMIT, async {
        let server = https_server::start_tls12(https_server::RootKey::P256)
            .await
            .unwrap();
        let pin = PinnedCa::new(server.intermediate.der.clone().into(), ALL_VERSIONS).unwrap();
        let host = Host::new(https_server::HOST);
        let tls = rustls_open(server.addr, host, &pin).await;
        let mut buf = [0u8; 2048];
        let mut conn = Connection::new(tls, &mut buf, host);
        let (status, _) = post_json(&mut conn, br#"{"pinned":"intermediate"}"#).await;
        assert_eq!(status, 200);
        assert!(pin.verifier.take_refused().is_none());
    })
    .await;
}

#[tokio::test]
async fn sni_and_host_come_from_one_value() {
    within(LIMIT, async {
        // `Host: api.example.test:PORT`: the port is in the header, not in SNI.
        let pki = Pki::new(&P256, &P256);
        let pin = PinnedCa::new(pki.root.der.clone(), ALL_VERSIONS).unwrap();
        let ok = b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n".to_vec();
        let (addr, server) = scripted_server(
            server_config(&pki, TLS12_ONLY),
            vec![ok],
            None,
            Ending::CloseNotify,
        )
        .await;
        let host = Host::new(HOST).with_port(addr.port());
        let tls = rustls_open(addr, host, &pin).await;
        let mut buf = [0u8; 512];
        let mut conn = Connection::new(tls, &mut buf, host);
        let resp = conn.send(&Request::get("/")).await.unwrap();
        assert_eq!(resp.status(), 200);
        drop(conn);
        let seen = server.await.unwrap();
        assert_eq!(seen.sni.as_deref(), Some(HOST));
        let want = format!("GET / HTTP/1.1\r\nHost: {HOST}:{}\r\n\r\n", addr.port());
        assert_eq!(String::from_utf8_lossy(&seen.plaintext), want);
    })
    .await;
}

// ---------------------------------------------------------------------------------------------
// Which servers each stack reaches
// ---------------------------------------------------------------------------------------------

/// One chain, all of one algorithm: root → intermediate → leaf for `HOST`.
fn chain_of(alg: &'static rcgen::SignatureAlgorithm) -> Pki {
    let root = tls_support::root("Test Root CA", alg);
    let inter = tls_support::intermediate("Test Intermediate CA", alg, &root);
    let leaf = tls_support::leaf(HOST, alg, &[HOST], &inter);
    Pki { root, inter, leaf }
}

/// What one stack did with a server: the TLS version and the response's status, or rawpost's
/// explanation of the refusal.
type Reached = Result<(ProtocolVersion, u16), String>;

/// A GET over rustls (offering TLS 1.3 and 1.2) to a server made from `config`.
async fn over_rustls(pki: &Pki, config: rustls::ServerConfig) -> Reached {
    let ok = b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n".to_vec();
    let (addr, server) = scripted_server(config, vec![ok], None, Ending::CloseNotify).await;
    let pin = PinnedCa::new(pki.root.der.clone(), ALL_VERSIONS).unwrap();
    let tls = rustls_open(addr, Host::new(HOST), &pin).await;
    let version = tls.protocol_version().unwrap();
    let mut buf = [0u8; 512];
    let mut conn = Connection::new(tls, &mut buf, Host::new(HOST));
    let status = conn.send(&Request::get("/")).await.unwrap().status();
    drop(conn);
    server.await.unwrap();
    Ok((version, status))
}

/// The same over embedded-tls (TLS 1.3 only, P-256 key exchange, TLS_AES_128_GCM_SHA256).
async fn over_embedded_tls(pki: &Pki, config: rustls::ServerConfig) -> Reached {
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let server = tokio::spawn(async move {
        let (tcp, _) = listener.accept().await.unwrap();
        let mut tls = acceptor.accept(tcp).await.ok()?;
        let mut buf = [0u8; 512];
        let _ = tls.read(&mut buf).await;
        tls.write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n")
            .await
            .ok()
    });
    let tcp = TcpStream::connect(addr).await.unwrap();
    let anchor = TrustAnchor::from_der(pki.root.der.as_ref()).unwrap();
    let mut provider = PinnedProvider::new(OsRng, anchor, TimeSource::clock(unix_now));
    let mut bufs = EtlsBufs::new();
    let mut http = [0u8; 512];
    let opened = rawpost::tls::connect(
        FromTokio::new(tcp),
        &mut bufs.read,
        &mut bufs.write,
        Host::new(HOST),
        &mut provider,
        &mut http,
    )
    .await;
    let reached = match opened {
        Ok(mut conn) => {
            let status = conn.send(&Request::get("/")).await.unwrap().status();
            Ok((ProtocolVersion::TLSv1_3, status))
        }
        Err(e) => Err(e.to_string()),
    };
    let _ = server.await;
    reached
}

const NOTHING_IN_COMMON: &str = "TLS handshake failed: the server has nothing in common with \
     this client (it answered handshake_failure): embedded-tls offers TLS 1.3 only, the \
     key-exchange group secp256r1 (P-256) only and the cipher suite TLS_AES_128_GCM_SHA256 \
     only; the server must enable all three, and sign with ECDSA P-256 or P-384, Ed25519 or \
     RSA-PSS [HandshakeAborted(Fatal, HandshakeFailure)]";

const NOT_TLS13: &str = "TLS handshake failed: the server does not speak TLS 1.3 (it answered \
     protocol_version); embedded-tls speaks TLS 1.3 only: enable TLS 1.3 on the server (nginx: \
     ssl_protocols TLSv1.2 TLSv1.3) [HandshakeAborted(Fatal, ProtocolVersion)]";

/// Servers rustls reaches and embedded-tls does not: TLS 1.2 only, a key exchange without
/// P-256, a cipher suite other than TLS_AES_128_GCM_SHA256 (docs/rustls.md's table).
#[tokio::test]
async fn rustls_reaches_servers_embedded_tls_cannot() {
    within(LIMIT, async {
        use rustls::crypto::ring::{cipher_suite, kx_group};
        let pki = Pki::new(&P256, &P256);
        let ring = rustls::crypto::ring::default_provider;
        let with_kx = |groups: Vec<&'static dyn rustls::crypto::SupportedKxGroup>| {
            let mut p = ring();
            p.kx_groups = groups;
            p
        };
        let with_suite = |suite| {
            let mut p = ring();
            p.cipher_suites = vec![suite];
            p
        };
        let cases: Vec<(
            &str,
            rustls::crypto::CryptoProvider,
            &[&SupportedProtocolVersion],
            ProtocolVersion,
            &str,
        )> = vec![
            (
                "TLS 1.2 only",
                ring(),
                TLS12_ONLY,
                ProtocolVersion::TLSv1_2,
                NOT_TLS13,
            ),
            (
                "X25519 only",
                with_kx(vec![kx_group::X25519]),
                TLS13_ONLY,
                ProtocolVersion::TLSv1_3,
                NOTHING_IN_COMMON,
            ),
            (
                "P-384 key exchange only",
                with_kx(vec![kx_group::SECP384R1]),
                TLS13_ONLY,
                ProtocolVersion::TLSv1_3,
                NOTHING_IN_COMMON,
            ),
            (
                "TLS_AES_256_GCM_SHA384 only",
                with_suite(cipher_suite::TLS13_AES_256_GCM_SHA384),
                TLS13_ONLY,
                ProtocolVersion::TLSv1_3,
                NOTHING_IN_COMMON,
            ),
            (
                "TLS_CHACHA20_POLY1305_SHA256 only",
                with_suite(cipher_suite::TLS13_CHACHA20_POLY1305_SHA256),
                TLS13_ONLY,
                ProtocolVersion::TLSv1_3,
                NOTHING_IN_COMMON,
            ),
        ];
        for (label, provider, versions, version, refusal) in cases {
            let config = server_config_with(&pki, provider.clone(), versions);
            assert_eq!(
                over_rustls(&pki, config).await,
                Ok((version, 200)),
                "{label}"
            );
            let config = server_config_with(&pki, provider, versions);
            assert_eq!(
                over_embedded_tls(&pki, config).await,
                Err(refusal.to_owned()),
                "{label}"
            );
        }
    })
    .await;
}

/// RSA, P-384 and Ed25519 chains (every certificate of one algorithm), over TLS 1.3 and 1.2:
/// rustls reaches them all; embedded-tls reaches the TLS 1.3 ones with rawpost's features
/// `rsa`, `p384` and `ed25519`.
#[tokio::test]
async fn rsa_p384_and_ed25519_servers_over_both_stacks() {
    within(LIMIT, async {
        for (label, alg) in [
            ("RSA-2048", &rcgen::PKCS_RSA_SHA256),
            ("ECDSA P-384", &tls_support::P384),
            ("Ed25519", &tls_support::ED25519),
        ] {
            let pki = chain_of(alg);
            for (versions, version) in [
                (TLS13_ONLY, ProtocolVersion::TLSv1_3),
                (TLS12_ONLY, ProtocolVersion::TLSv1_2),
            ] {
                let config = server_config(&pki, versions);
                assert_eq!(
                    over_rustls(&pki, config).await,
                    Ok((version, 200)),
                    "{label} {version:?}"
                );
            }
            if cfg!(all(feature = "rsa", feature = "p384", feature = "ed25519")) {
                let config = server_config(&pki, TLS13_ONLY);
                assert_eq!(
                    over_embedded_tls(&pki, config).await,
                    Ok((ProtocolVersion::TLSv1_3, 200)),
                    "{label}"
                );
            }
        }
    })
    .await;
}
