//! `rawpost::tls::TlsStream`: the end of a TLS session as a reader sees it, against a real
//! rustls TLS 1.3 server on loopback. embedded-tls reports close_notify as
//! `Err(ConnectionClosed)` and a bare TCP close as `Err(IoError)`; the stream turns them into
//! `Ok(0)` and a `SessionError` of kind `ConnectionAborted`.

mod tls_support;

use std::sync::Arc;
use std::time::Duration;

use embedded_io::ErrorKind;
use embedded_io_adapters::tokio_1::FromTokio;
use embedded_io_async::{Read, Write};
use embedded_tls::TlsError;
use rand_core::OsRng;
use rawpost::tls::{PinnedProvider, SessionEnd, TimeSource, TrustAnchor};
use rawpost::{Framing, Host, Request};
use tls_support::*;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// How the server ends the session after its response.
#[derive(Clone, Copy)]
enum End {
    /// close_notify, then TCP FIN.
    CloseNotify,
    /// TCP FIN only: no close_notify.
    TcpOnly,
}

/// A rustls server that reads one request head, writes `response`, then ends as `end` says.
async fn serve_once(
    pki: &Pki,
    response: Vec<u8>,
    end: End,
) -> (std::net::SocketAddr, tokio::task::JoinHandle<()>) {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ServerConfig::builder_with_provider(provider)
        .with_protocol_versions(&[&rustls::version::TLS13])
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(pki.chain(), pki.leaf.key_der())
        .unwrap();
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let handle = tokio::spawn(async move {
        let (tcp, _) = listener.accept().await.unwrap();
        let mut tls = acceptor.accept(tcp).await.unwrap();
        let mut request = Vec::new();
        let mut buf = [0u8; 1024];
        while !request.windows(4).any(|w| w == b"\r\n\r\n") {
            let n = tls.read(&mut buf).await.unwrap();
            assert!(n > 0, "eof before the request head ended");
            request.extend_from_slice(&buf[..n]);
        }
        tls.write_all(&response).await.unwrap();
        tls.flush().await.unwrap();
        match end {
            End::CloseNotify => tls.shutdown().await.unwrap(),
            End::TcpOnly => {
                let (mut tcp, _session) = tls.into_inner();
                tcp.shutdown().await.unwrap();
            }
        }
    });
    (addr, handle)
}

/// A body of `n` bytes that is not all one byte, so an offset error shows.
fn body_of(n: usize) -> Vec<u8> {
    (0..n).map(|i| b'a' + (i % 26) as u8).collect()
}

fn provider(pki: &Pki) -> PinnedProvider<'_, OsRng, fn() -> Option<u64>> {
    let anchor = TrustAnchor::from_der(pki.root.der.as_ref()).unwrap();
    PinnedProvider::new(OsRng, anchor, TimeSource::clock(fixed_clock))
}

async fn bounded<T>(f: impl std::future::Future<Output = T>) -> T {
    tokio::time::timeout(Duration::from_secs(20), f)
        .await
        .expect("the test took too long")
}

/// A response without Content-Length, ended by close_notify: read through rawpost's
/// `Connection`, the body is exact and complete (`Ok`).
#[tokio::test]
async fn close_delimited_body_over_tls_reads_byte_exact() {
    bounded(async {
        let pki = Pki::new(&P256, &P256);
        // Larger than one TLS record (16 KiB), so it arrives in several.
        let body = body_of(40_000);
        let mut response = b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n\r\n".to_vec();
        response.extend_from_slice(&body);
        let (addr, server) = serve_once(&pki, response, End::CloseNotify).await;

        let tcp = tokio::net::TcpStream::connect(addr).await.unwrap();
        let (mut rx, mut tx) = (vec![0u8; 16_640], vec![0u8; 4096]);
        let mut http = vec![0u8; 2048];
        let mut provider = provider(&pki);
        let mut conn = rawpost::tls::connect(
            FromTokio::new(tcp),
            &mut rx,
            &mut tx,
            Host::new(HOST),
            &mut provider,
            &mut http,
        )
        .await
        .expect("handshake");
        let mut resp = conn
            .send(&Request::get("/close-delimited"))
            .await
            .expect("send");
        assert_eq!(resp.status(), 200);
        assert_eq!(resp.framing(), Framing::UntilClose);
        let mut got = vec![0u8; 50_000];
        let n = resp.read_to_end(&mut got).await.expect("the whole body");
        assert_eq!(n, body.len());
        assert!(got[..n] == body[..], "the body differs");
        assert!(!conn.is_reusable());
        assert!(conn.stream().peer_closed());
        server.await.unwrap();
    })
    .await;
}

/// The same read on the `TlsStream` itself: the data, then `Ok(0)` on every later read.
#[tokio::test]
async fn close_notify_is_ok_zero_and_stays_so() {
    bounded(async {
        let pki = Pki::new(&P256, &P256);
        let response = b"HTTP/1.1 200 OK\r\n\r\nthe end".to_vec();
        let (addr, server) = serve_once(&pki, response.clone(), End::CloseNotify).await;
        let tcp = tokio::net::TcpStream::connect(addr).await.unwrap();
        let (mut rx, mut tx) = (vec![0u8; 16_640], vec![0u8; 4096]);
        let mut provider = provider(&pki);
        let mut tls = rawpost::tls::TlsStream::open(
            FromTokio::new(tcp),
            &mut rx,
            &mut tx,
            Host::new(HOST),
            &mut provider,
        )
        .await
        .expect("handshake");
        tls.write_all(b"GET / HTTP/1.1\r\nHost: api.example.test\r\n\r\n")
            .await
            .unwrap();
        tls.flush().await.unwrap();
        let mut got = Vec::new();
        let mut buf = [0u8; 256];
        loop {
            match tls.read(&mut buf).await {
                Ok(0) => break,
                Ok(n) => got.extend_from_slice(&buf[..n]),
                Err(e) => panic!("read failed: {e:?}"),
            }
        }
        assert_eq!(got, response);
        assert!(tls.peer_closed());
        for _ in 0..3 {
            assert!(matches!(tls.read(&mut buf).await, Ok(0)));
        }
        server.await.unwrap();
        // Our close_notify after the server's: the transport comes back.
        tls.close().await.map_err(|(_, e)| e).expect("close");
    })
    .await;
}

/// A TCP close without close_notify: the data, then `Err(Io(ConnectionAborted))` — never a
/// clean `Ok(0)`, so a reader cannot mistake a cut-off body for a complete one.
#[tokio::test]
async fn tcp_close_without_close_notify_is_connection_aborted() {
    bounded(async {
        let pki = Pki::new(&P256, &P256);
        let response = b"HTTP/1.1 200 OK\r\n\r\ncut here".to_vec();
        let (addr, server) = serve_once(&pki, response.clone(), End::TcpOnly).await;
        let tcp = tokio::net::TcpStream::connect(addr).await.unwrap();
        let (mut rx, mut tx) = (vec![0u8; 16_640], vec![0u8; 4096]);
        let mut provider = provider(&pki);
        let mut tls = rawpost::tls::TlsStream::open(
            FromTokio::new(tcp),
            &mut rx,
            &mut tx,
            Host::new(HOST),
            &mut provider,
        )
        .await
        .expect("handshake");
        tls.write_all(b"GET / HTTP/1.1\r\nHost: api.example.test\r\n\r\n")
            .await
            .unwrap();
        tls.flush().await.unwrap();
        let mut got = Vec::new();
        let mut buf = [0u8; 256];
        let end = loop {
            match tls.read(&mut buf).await {
                Ok(0) => panic!("a TCP close without close_notify read as a clean end"),
                Ok(n) => got.extend_from_slice(&buf[..n]),
                Err(e) => break e,
            }
        };
        assert_eq!(got, response);
        assert!(matches!(end.end(), SessionEnd::Aborted), "{end:?}");
        assert_eq!(embedded_io::Error::kind(&end), ErrorKind::ConnectionAborted);
        assert!(matches!(end.tls_error(), TlsError::IoError), "{end:?}");
        assert_eq!(
            end.to_string(),
            "TLS session ended: the server closed the connection without close_notify (what was \
             read last may be cut short); the session is over: every later read and write fails, \
             open a new one [IoError]"
        );
        // The session is over: the same error on every later call.
        for _ in 0..2 {
            let again = tls.read(&mut buf).await.expect_err("the session is over");
            assert!(matches!(again.end(), SessionEnd::Aborted), "{again:?}");
            let write = tls.write(b"x").await.expect_err("the session is over");
            assert!(matches!(write.end(), SessionEnd::Aborted), "{write:?}");
        }
        assert!(!tls.peer_closed());
        server.await.unwrap();
    })
    .await;
}
