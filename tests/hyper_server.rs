//! rawpost against a real HTTP/1.1 server: hyper 1.x on tokio, over loopback TCP.
//!
//! The server is started inside each test on `127.0.0.1:0` and counts the TCP connections it
//! accepts. Its routes:
//!
//! - `POST /echo`: answers with the request body (and its `Content-Type`), and reports what it
//!   received in `x-seen-*` headers, `x-seen-header-names` listing every header name it got.
//! - `GET /chunked`: a body streamed in several frames with pauses in between, so hyper frames
//!   it with `Transfer-Encoding: chunked`.
//! - `GET /close`: a short body with `Connection: close`; hyper closes the connection after it.
//!
//! Every test runs under a timeout so a bug cannot hang CI.

mod support;

use std::convert::Infallible;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use embedded_io_adapters::tokio_1::FromTokio;
use embedded_io_async::{ErrorType, Read, Write};
use http_body_util::combinators::BoxBody;
use http_body_util::{BodyExt, Full};
use hyper::body::{Body, Frame, Incoming};
use hyper::header::{HeaderValue, CONNECTION, CONTENT_TYPE};
use hyper::service::service_fn;
use hyper::{Method as HyperMethod, StatusCode};
use hyper_util::rt::TokioIo;
use rawpost::{Connection, ConnectionError, Error, Framing, Host, Request};
use support::net::within;
use support::outcome::{read_body, read_body_blocking};
use tokio::io::AsyncReadExt;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;

// ---------------------------------------------------------------------------------------------
// The server
// ---------------------------------------------------------------------------------------------

type ServerBody = BoxBody<Bytes, Infallible>;

/// The frames of `GET /chunked`, sent one by one with a pause after each. One is larger than
/// the client buffers used below, so a chunk's data spans several reads.
fn chunked_frames() -> Vec<Bytes> {
    let big: Vec<u8> = (0..5000u32).map(|i| b'a' + (i % 26) as u8).collect();
    vec![
        Bytes::from_static(b"first frame\n"),
        Bytes::from_static(b"second frame\n"),
        Bytes::from(big),
        Bytes::from_static(b"\nlast frame"),
    ]
}

/// The body `GET /chunked` must decode to.
fn chunked_expected() -> Vec<u8> {
    chunked_frames().concat()
}

const CLOSE_BODY: &[u8] = b"closing now";

/// A response body fed by a channel: its size is unknown, so hyper sends it chunked.
struct ChannelBody(mpsc::Receiver<Bytes>);

impl Body for ChannelBody {
    type Data = Bytes;
    type Error = Infallible;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
        self.get_mut()
            .0
            .poll_recv(cx)
            .map(|frame| frame.map(|data| Ok(Frame::data(data))))
    }
}

fn full(body: impl Into<Bytes>) -> ServerBody {
    Full::new(body.into()).boxed()
}

fn header_text(value: Option<&HeaderValue>) -> HeaderValue {
    value
        .cloned()
        .unwrap_or_else(|| HeaderValue::from_static("<absent>"))
}

async fn route(req: hyper::Request<Incoming>) -> Result<hyper::Response<ServerBody>, Infallible> {
    let method = req.method().clone();
    let path = req.uri().path().to_owned();
    let response = match (method, path.as_str()) {
        (HyperMethod::POST, "/echo") => {
            let headers = req.headers().clone();
            // One entry per received field, in the order hyper's map yields them.
            let names: Vec<&str> = headers.iter().map(|(name, _)| name.as_str()).collect();
            let body = req
                .into_body()
                .collect()
                .await
                .expect("the request body")
                .to_bytes();
            let mut resp = hyper::Response::new(full(body));
            let out = resp.headers_mut();
            out.insert(CONTENT_TYPE, header_text(headers.get(CONTENT_TYPE)));
            out.insert("x-seen-host", header_text(headers.get("host")));
            out.insert("x-seen-user-agent", header_text(headers.get("user-agent")));
            out.insert("x-seen-accept", header_text(headers.get("accept")));
            out.insert(
                "x-seen-content-length",
                header_text(headers.get("content-length")),
            );
            out.insert(
                "x-seen-header-names",
                HeaderValue::from_str(&names.join(",")).expect("header names are tokens"),
            );
            resp
        }
        (HyperMethod::GET, "/chunked") => {
            let (tx, rx) = mpsc::channel(1);
            tokio::spawn(async move {
                for frame in chunked_frames() {
                    if tx.send(frame).await.is_err() {
                        return;
                    }
                    tokio::time::sleep(Duration::from_millis(5)).await;
                }
            });
            hyper::Response::new(ChannelBody(rx).boxed())
        }
        (HyperMethod::GET, "/close") => {
            let mut resp = hyper::Response::new(full(CLOSE_BODY));
            resp.headers_mut()
                .insert(CONNECTION, HeaderValue::from_static("close"));
            resp
        }
        _ => {
            let mut resp = hyper::Response::new(full("not found"));
            *resp.status_mut() = StatusCode::NOT_FOUND;
            resp
        }
    };
    Ok(response)
}

/// Starts the server; returns its address and the number of TCP connections it has accepted.
async fn start_server() -> (SocketAddr, Arc<AtomicUsize>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("local address");
    let accepted = Arc::new(AtomicUsize::new(0));
    let counter = accepted.clone();
    tokio::spawn(async move {
        loop {
            let Ok((tcp, _)) = listener.accept().await else {
                return;
            };
            counter.fetch_add(1, Ordering::SeqCst);
            tokio::spawn(async move {
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(tcp), service_fn(route))
                    .await;
            });
        }
    });
    (addr, accepted)
}

// ---------------------------------------------------------------------------------------------
// Client side helpers
// ---------------------------------------------------------------------------------------------

/// Every test must finish well within this.
const LIMIT: Duration = Duration::from_secs(20);

type Stream = FromTokio<TcpStream>;

async fn connect(addr: SocketAddr) -> Stream {
    FromTokio::new(TcpStream::connect(addr).await.expect("connect"))
}

/// A stream that keeps a copy of every `write`, one entry per call.
struct Recording<S> {
    inner: S,
    writes: Vec<Vec<u8>>,
}

impl<S> Recording<S> {
    fn new(inner: S) -> Self {
        Self {
            inner,
            writes: Vec::new(),
        }
    }

    fn all_written(&self) -> Vec<u8> {
        self.writes.concat()
    }
}

impl<S: ErrorType> ErrorType for Recording<S> {
    type Error = S::Error;
}

impl<S: Read> Read for Recording<S> {
    async fn read(&mut self, buf: &mut [u8]) -> Result<usize, S::Error> {
        self.inner.read(buf).await
    }
}

impl<S: Write> Write for Recording<S> {
    async fn write(&mut self, buf: &[u8]) -> Result<usize, S::Error> {
        let n = self.inner.write(buf).await?;
        self.writes.push(buf[..n].to_vec());
        Ok(n)
    }

    async fn flush(&mut self) -> Result<(), S::Error> {
        self.inner.flush().await
    }
}

fn host(addr: SocketAddr) -> Host<'static> {
    Host::new("127.0.0.1").with_port(addr.port())
}

const JSON_HEADERS: &[(&str, &str)] = &[
    ("Content-Type", "application/json"),
    ("User-Agent", "rawpost-test/1.0"),
    ("Accept", "application/json"),
];

/// The header names the server must have received for a request with [`JSON_HEADERS`]: those
/// plus `Host` and `Content-Length`, nothing else (sorted, as hyper's map order is unspecified).
fn expected_names() -> Vec<&'static str> {
    let mut names = vec![
        "accept",
        "content-length",
        "content-type",
        "host",
        "user-agent",
    ];
    names.sort_unstable();
    names
}

fn sorted_names(list: &str) -> Vec<&str> {
    let mut names: Vec<&str> = list.split(',').collect();
    names.sort_unstable();
    names
}

/// Checks a response to `POST /echo` of `body` sent with [`JSON_HEADERS`], and reads it back.
async fn check_echo<S: Read + Write>(
    resp: &mut rawpost::Response<'_, '_, S>,
    port: u16,
    body: &[u8],
) {
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.reason(), "OK");
    assert_eq!(resp.minor_version(), 1);
    assert_eq!(resp.framing(), Framing::Length(body.len() as u64));
    assert_eq!(resp.content_length(), Some(body.len() as u64));
    assert!(resp.keeps_connection());
    assert_eq!(resp.header("Content-Type"), Some("application/json"));
    let expected_host = format!("127.0.0.1:{port}");
    assert_eq!(resp.header("x-seen-host"), Some(expected_host.as_str()));
    assert_eq!(resp.header("x-seen-user-agent"), Some("rawpost-test/1.0"));
    assert_eq!(resp.header("x-seen-accept"), Some("application/json"));
    let expected_length = body.len().to_string();
    assert_eq!(
        resp.header("x-seen-content-length"),
        Some(expected_length.as_str())
    );
    let names = resp
        .header("x-seen-header-names")
        .expect("x-seen-header-names")
        .to_owned();
    assert_eq!(sorted_names(&names), expected_names());

    let got = read_body(resp, 1000).await.expect("the echoed body");
    assert_eq!(got, body);
    assert!(resp.is_complete());
}

// ---------------------------------------------------------------------------------------------
// Tests
// ---------------------------------------------------------------------------------------------

/// (a) A JSON POST is echoed back byte for byte; the request on the wire is exactly the
/// caller's headers plus `Host` and `Content-Length`, in one write.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn json_post_is_echoed() {
    within(LIMIT, async {
        let (addr, accepted) = start_server().await;
        let body = br#"{"grant_type":"client_credentials","scope":"read write","n":[1,2,3]}"#;
        let mut buf = [0u8; 4096];
        let mut conn = Connection::new(Recording::new(connect(addr).await), &mut buf, host(addr));

        let req = Request::post("/echo")
            .with_headers(JSON_HEADERS)
            .with_body(body);
        let mut resp = conn.send(&req).await.expect("send");
        check_echo(&mut resp, addr.port(), body).await;

        let mut expected = format!(
            "POST /echo HTTP/1.1\r\n\
             Host: 127.0.0.1:{}\r\n\
             Content-Type: application/json\r\n\
             User-Agent: rawpost-test/1.0\r\n\
             Accept: application/json\r\n\
             Content-Length: {}\r\n\
             \r\n",
            addr.port(),
            body.len()
        )
        .into_bytes();
        expected.extend_from_slice(body);
        let writes = &conn.stream().writes;
        assert_eq!(writes.len(), 1, "head and body fit the buffer: one write");
        assert_eq!(writes[0], expected);

        assert!(conn.is_reusable());
        assert_eq!(accepted.load(Ordering::SeqCst), 1);
    })
    .await;
}

#[derive(serde::Serialize)]
struct TokenRequest<'a> {
    grant_type: &'a str,
    client_id: &'a str,
    scopes: [&'a str; 2],
    attempt: u32,
    remember: bool,
}

/// (b) A JSON body serialized by serde-json-core straight into the connection buffer.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn json_post_with_serde_json_core() {
    within(LIMIT, async {
        let (addr, _accepted) = start_server().await;
        let value = TokenRequest {
            grant_type: "client_credentials",
            client_id: "device-42",
            scopes: ["read", "write"],
            attempt: 3,
            remember: true,
        };
        let expected_body: &[u8] = br#"{"grant_type":"client_credentials","client_id":"device-42","scopes":["read","write"],"attempt":3,"remember":true}"#;

        let mut buf = [0u8; 2048];
        let mut conn = Connection::new(Recording::new(connect(addr).await), &mut buf, host(addr));
        let req = Request::post("/echo").with_headers(JSON_HEADERS);
        let mut resp = conn
            .send_with(&req, |out| serde_json_core::to_slice(&value, out))
            .await
            .expect("send_with");
        check_echo(&mut resp, addr.port(), expected_body).await;

        // The body went out behind the head, in the same write.
        let written = conn.stream().all_written();
        assert_eq!(conn.stream().writes.len(), 1);
        let head_end = written
            .windows(4)
            .position(|w| w == b"\r\n\r\n")
            .expect("end of head")
            + 4;
        let expected_length = format!("Content-Length: {}\r\n\r\n", expected_body.len());
        assert!(written[..head_end].ends_with(expected_length.as_bytes()));
        assert_eq!(&written[head_end..], expected_body);
        assert!(conn.is_reusable());
    })
    .await;
}

/// (c) A chunked response streamed in several frames is decoded exactly.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chunked_response_is_decoded() {
    within(LIMIT, async {
        let (addr, _accepted) = start_server().await;
        let mut buf = [0u8; 1024];
        let mut conn = Connection::new(connect(addr).await, &mut buf, host(addr));

        let mut resp = conn.send(&Request::get("/chunked")).await.expect("send");
        assert_eq!(resp.status(), 200);
        assert_eq!(resp.framing(), Framing::Chunked);
        assert_eq!(resp.content_length(), None);
        assert_eq!(resp.header("transfer-encoding"), Some("chunked"));
        assert!(resp.keeps_connection());

        let got = read_body(&mut resp, 777).await.expect("the chunked body");
        assert_eq!(got, chunked_expected());
        assert!(resp.is_complete());
        assert_eq!(resp.trailers().count(), 0);
        // Reading past the end keeps returning 0.
        assert_eq!(resp.read(&mut [0u8; 16]).await.expect("read at end"), 0);
        assert!(conn.is_reusable());
    })
    .await;
}

/// (d) Three requests on one kept-alive connection: the server accepts exactly one connection.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_requests_on_one_connection() {
    within(LIMIT, async {
        let (addr, accepted) = start_server().await;
        let mut buf = [0u8; 2048];
        let mut conn = Connection::new(connect(addr).await, &mut buf, host(addr));

        let first = br#"{"n":1}"#;
        let mut resp = conn
            .send(
                &Request::post("/echo")
                    .with_headers(JSON_HEADERS)
                    .with_body(first),
            )
            .await
            .expect("first send");
        check_echo(&mut resp, addr.port(), first).await;
        assert!(conn.is_reusable());

        let mut resp = conn
            .send(&Request::get("/chunked"))
            .await
            .expect("second send");
        assert_eq!(resp.status(), 200);
        assert_eq!(resp.framing(), Framing::Chunked);
        let mut out = vec![0u8; 8192];
        let n = resp.read_to_end(&mut out).await.expect("chunked body");
        assert_eq!(&out[..n], chunked_expected().as_slice());
        assert!(conn.is_reusable());

        let third = br#"{"n":3,"last":true}"#;
        let mut resp = conn
            .send(
                &Request::post("/echo")
                    .with_headers(JSON_HEADERS)
                    .with_body(third),
            )
            .await
            .expect("third send");
        check_echo(&mut resp, addr.port(), third).await;
        assert!(conn.is_reusable());

        assert_eq!(accepted.load(Ordering::SeqCst), 1);
    })
    .await;
}

/// (e) `Connection: close`: the body is read, the connection is not reused, the next `send`
/// fails with `ConnectionError::Closed`, and the server did close its end.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connection_close_ends_the_connection() {
    within(LIMIT, async {
        let (addr, accepted) = start_server().await;
        let mut buf = [0u8; 1024];
        let mut conn = Connection::new(connect(addr).await, &mut buf, host(addr));

        let mut resp = conn.send(&Request::get("/close")).await.expect("send");
        assert_eq!(resp.status(), 200);
        assert_eq!(resp.header("connection"), Some("close"));
        assert!(!resp.keeps_connection());
        assert_eq!(resp.framing(), Framing::Length(CLOSE_BODY.len() as u64));
        let mut out = [0u8; 64];
        let n = resp.read_to_end(&mut out).await.expect("body");
        assert_eq!(&out[..n], CLOSE_BODY);
        assert!(!conn.is_reusable());

        let err = conn
            .send(
                &Request::post("/echo")
                    .with_headers(JSON_HEADERS)
                    .with_body(b"{}"),
            )
            .await
            .err()
            .expect("a send after Connection: close must fail");
        assert!(
            matches!(err, Error::Connection(ConnectionError::Closed)),
            "got {err:?}"
        );
        assert_eq!(err.name(), "Closed");

        // Nothing was written by the refused send, and the server closed its end: EOF.
        let mut tcp = conn.into_inner().into_inner();
        let mut rest = [0u8; 16];
        assert_eq!(tcp.read(&mut rest).await.expect("read after close"), 0);
        assert_eq!(accepted.load(Ordering::SeqCst), 1);
    })
    .await;
}

/// (f) A 64 KiB body through a 1 KiB buffer: the head is written from the buffer, the body
/// straight from the caller's slice; the echo is read back in pieces.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn body_larger_than_the_buffer() {
    within(LIMIT, async {
        let (addr, accepted) = start_server().await;
        // A JSON string value that fills 64 KiB, with a recognizable, non-repeating pattern.
        let mut body = b"{\"blob\":\"".to_vec();
        let mut i = 0u32;
        while body.len() < 64 * 1024 - 2 {
            body.push(b"0123456789abcdefghijklmnopqrstuvwxyz"[(i % 36) as usize]);
            i = i.wrapping_mul(7).wrapping_add(13) % 10007;
        }
        body.extend_from_slice(b"\"}");
        assert_eq!(body.len(), 64 * 1024);

        let mut buf = [0u8; 1024];
        let mut conn = Connection::new(Recording::new(connect(addr).await), &mut buf, host(addr));
        let req = Request::post("/echo")
            .with_headers(JSON_HEADERS)
            .with_body(&body);
        let mut resp = conn.send(&req).await.expect("send");
        check_echo(&mut resp, addr.port(), &body).await;

        let head = format!(
            "POST /echo HTTP/1.1\r\n\
             Host: 127.0.0.1:{}\r\n\
             Content-Type: application/json\r\n\
             User-Agent: rawpost-test/1.0\r\n\
             Accept: application/json\r\n\
             Content-Length: 65536\r\n\
             \r\n",
            addr.port()
        );
        let writes = &conn.stream().writes;
        assert_eq!(writes[0], head.as_bytes(), "the head goes out on its own");
        assert_eq!(writes[1..].concat(), body, "then the body, unchanged");

        assert!(conn.is_reusable());
        assert_eq!(accepted.load(Ordering::SeqCst), 1);
    })
    .await;
}

/// The blocking shell against the same server, over a std `TcpStream`: one JSON POST echoed,
/// then a chunked response, on one kept-alive connection.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn blocking_shell_over_std_tcp() {
    within(LIMIT, async {
        let (addr, accepted) = start_server().await;
        let client = tokio::task::spawn_blocking(move || {
            let tcp = std::net::TcpStream::connect(addr).expect("connect");
            tcp.set_read_timeout(Some(std::time::Duration::from_secs(10)))
                .unwrap();
            let stream = embedded_io_adapters::std::FromStd::new(tcp);
            let mut buf = [0u8; 1024];
            let mut conn = rawpost::blocking::Connection::new(stream, &mut buf, host(addr));
            let body = br#"{"blocking":true}"#;
            let mut resp = conn
                .send(
                    &Request::post("/echo")
                        .with_headers(JSON_HEADERS)
                        .with_body(body),
                )
                .expect("send");
            assert_eq!(resp.status(), 200);
            assert_eq!(resp.header("content-type"), Some("application/json"));
            let mut out = [0u8; 64];
            let n = resp.read_to_end(&mut out).expect("body");
            assert_eq!(&out[..n], body);
            assert!(conn.is_reusable());

            let mut resp = conn.send(&Request::get("/chunked")).expect("send");
            assert_eq!(resp.framing(), Framing::Chunked);
            let got = read_body_blocking(&mut resp, 700).expect("chunked body");
            assert_eq!(got, chunked_expected());
            assert!(conn.is_reusable());
        });
        client.await.expect("blocking client");
        assert_eq!(accepted.load(Ordering::SeqCst), 1);
    })
    .await;
}

/// A body streamed with `Transfer-Encoding: chunked` (length unknown up front) reaches hyper
/// whole, and one with a declared length too.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn streamed_bodies_reach_hyper_whole() {
    within(LIMIT, async {
        let (addr, accepted) = start_server().await;
        let mut buf = [0u8; 512];
        let mut conn = Connection::new(connect(addr).await, &mut buf, host(addr));
        let pieces: Vec<Vec<u8>> = (0..20u8)
            .map(|i| vec![b'a' + i; 100 + usize::from(i)])
            .collect();
        let whole: Vec<u8> = pieces.concat();
        for length in [None, Some(whole.len() as u64)] {
            let req = Request::post("/echo").with_headers(&[("Content-Type", "text/plain")]);
            let mut w = conn.send_streaming(&req, length).await.expect("head");
            for p in &pieces {
                embedded_io_async::Write::write_all(&mut w, p)
                    .await
                    .expect("piece");
            }
            let mut resp = w.finish().await.expect("response");
            assert_eq!(resp.status(), 200);
            let echoed = read_body(&mut resp, 333).await.expect("body");
            assert_eq!(echoed, whole, "{length:?}");
            assert!(conn.is_reusable());
        }
        assert_eq!(accepted.load(Ordering::SeqCst), 1);
    })
    .await;
}
