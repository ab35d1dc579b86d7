//! End-to-end exchanges over an in-memory pipe: exact bytes written, every framing, scripted
//! read sizes, injected faults, connection reuse and poisoning.

mod support;

use embedded_io_async::Read;
use rawpost::{
    Connection, ConnectionError, Error, Framing, Host, Request, RequestError, ResponseError,
};
use support::outcome::{read_outcome_blocking, send_and_read, Outcome};
use support::{block_on, poll_once_then_drop, Injected, Lcg, Peer, Pending, Reads};

const HOST: Host<'static> = Host::new("api.example.com");

/// Sends `req` over a peer playing `script` and reads the whole response, `out_step` bytes per
/// `read` call: what the caller observed, and whether the connection can carry another request.
fn exchange(
    peer: &mut Peer,
    buf: &mut [u8],
    req: &Request<'_>,
    out_step: usize,
) -> Result<(Outcome, bool), Error<Injected>> {
    block_on(async {
        let mut conn = Connection::new(&mut *peer, buf, HOST);
        let outcome = send_and_read(&mut conn, req, out_step).await;
        if outcome.is_err() {
            assert!(
                !conn.is_reusable(),
                "an error must leave the connection unusable"
            );
        }
        outcome.map(|o| (o, conn.is_reusable()))
    })
}

/// The same exchange through the blocking shell: one set of cases, two drivers.
fn exchange_blocking(
    peer: &mut Peer,
    buf: &mut [u8],
    req: &Request<'_>,
    out_step: usize,
) -> Result<(Outcome, bool), Error<Injected>> {
    let mut conn = rawpost::blocking::Connection::new(&mut *peer, buf, HOST);
    let outcome = conn
        .send(req)
        .and_then(|resp| read_outcome_blocking(resp, out_step));
    outcome.map(|o| (o, conn.is_reusable()))
}

fn post() -> Request<'static> {
    Request::post("/oauth/token")
        .with_headers(&[("Content-Type", "application/json")])
        .with_body(br#"{"a":1}"#)
}

/// Plays `script` whole, byte by byte, and in random splits (with whole and tiny output
/// windows), through the async and the blocking shell; all must agree, and both shells must
/// write the same bytes. Returns the common result, and whether the connection was reusable.
fn all_splits(script: &[u8], req: &Request<'_>) -> Result<(Outcome, bool), Error<Injected>> {
    let mut buf = [0u8; 1024];
    let whole = exchange(&mut Peer::new(script), &mut buf, req, 4096);
    let mut plans = vec![Reads::Max(1), Reads::Max(2), Reads::Max(7)];
    let mut rng = Lcg(script.len() as u64);
    for _ in 0..8 {
        let sizes = (0..script.len()).map(|_| 1 + rng.next(24)).collect();
        plans.push(Reads::Sizes(sizes));
    }
    for plan in plans {
        for out_step in [4096, 1, 3] {
            let got = exchange(
                &mut Peer::new(script).reads(plan.clone()),
                &mut buf,
                req,
                out_step,
            );
            assert_eq!(got, whole, "reads {plan:?}, out {out_step}");
            let mut peer = Peer::new(script).reads(plan.clone());
            let got = exchange_blocking(&mut peer, &mut buf, req, out_step);
            assert_eq!(got, whole, "blocking, reads {plan:?}, out {out_step}");
        }
    }
    let (mut a, mut b) = (Peer::new(script), Peer::new(script));
    exchange(&mut a, &mut buf, req, 64).ok();
    exchange_blocking(&mut b, &mut buf, req, 64).ok();
    assert_eq!(a.writes, b.writes);
    whole
}

fn h(name: &str, value: &str) -> (String, Vec<u8>) {
    (name.to_string(), value.as_bytes().to_vec())
}

#[test]
fn post_is_one_write_of_exact_bytes() {
    let mut peer = Peer::new(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok");
    let mut buf = [0u8; 512];
    let req = Request::post("/oauth/token")
        .with_headers(&[
            ("Content-Type", "application/json"),
            ("User-Agent", "rawpost-test/1.0"),
            ("Accept", "application/json"),
        ])
        .with_body(br#"{"grant_type":"client_credentials"}"#);
    let (out, _) = exchange(&mut peer, &mut buf, &req, 64).unwrap();
    assert_eq!(out.body, b"ok");
    assert_eq!(peer.writes.len(), 1, "head and body in one write");
    assert_eq!(peer.flushes, 1);
    assert_eq!(
        peer.written(),
        b"POST /oauth/token HTTP/1.1\r\nHost: api.example.com\r\nContent-Type: application/json\r\nUser-Agent: rawpost-test/1.0\r\nAccept: application/json\r\nContent-Length: 35\r\n\r\n{\"grant_type\":\"client_credentials\"}"
    );
}

#[test]
fn large_body_is_written_from_the_callers_slice() {
    let body: Vec<u8> = (0..5000u32).map(|i| b'a' + (i % 26) as u8).collect();
    let mut peer = Peer::new(b"HTTP/1.1 204 No Content\r\n\r\n");
    let mut buf = [0u8; 256];
    let req = Request::put("/blob").with_body(&body);
    let (out, _) = exchange(&mut peer, &mut buf, &req, 64).unwrap();
    assert_eq!(out.status, 204);
    assert_eq!(peer.writes.len(), 2, "head, then body");
    assert_eq!(
        peer.writes[0],
        b"PUT /blob HTTP/1.1\r\nHost: api.example.com\r\nContent-Length: 5000\r\n\r\n"
    );
    assert_eq!(peer.writes[1], body);
}

#[test]
fn short_writes_are_completed() {
    let mut peer = Peer::new(b"HTTP/1.1 204 No Content\r\n\r\n");
    peer.write_max = Some(5);
    let mut buf = [0u8; 256];
    exchange(&mut peer, &mut buf, &post(), 64).unwrap();
    assert_eq!(
        peer.written(),
        b"POST /oauth/token HTTP/1.1\r\nHost: api.example.com\r\nContent-Type: application/json\r\nContent-Length: 7\r\n\r\n{\"a\":1}"
    );
}

#[derive(serde::Serialize)]
struct Token<'a> {
    grant_type: &'a str,
    client_id: &'a str,
    scope: [&'a str; 2],
}

#[test]
fn body_serialized_straight_into_the_buffer() {
    let mut peer = Peer::new(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n");
    let mut buf = [0u8; 512];
    block_on(async {
        let mut conn = Connection::new(&mut peer, &mut buf, HOST);
        let value = Token {
            grant_type: "client_credentials",
            client_id: "esp32-c3",
            scope: ["read", "write"],
        };
        let req =
            Request::post("/oauth/token").with_headers(&[("Content-Type", "application/json")]);
        let resp = conn
            .send_with(&req, |b| serde_json_core::to_slice(&value, b))
            .await
            .unwrap();
        assert_eq!(resp.status(), 200);
    });
    let json =
        br#"{"grant_type":"client_credentials","client_id":"esp32-c3","scope":["read","write"]}"#;
    let mut expected = format!(
        "POST /oauth/token HTTP/1.1\r\nHost: api.example.com\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n",
        json.len()
    )
    .into_bytes();
    expected.extend_from_slice(json);
    assert_eq!(peer.writes, vec![expected]);
}

#[test]
fn body_writer_failures_write_nothing() {
    let mut peer = Peer::new(b"");
    let mut buf = [0u8; 128];
    block_on(async {
        let mut conn = Connection::new(&mut peer, &mut buf, HOST);
        let req = Request::post("/");
        let big = [b'x'; 200];
        let r = conn
            .send_with(&req, |b| serde_json_core::to_slice(&big[..], b))
            .await;
        assert!(matches!(r, Err(Error::Request(RequestError::BodyWriter))));
        let r = conn.send_with(&req, |b| Ok::<_, ()>(b.len() + 1)).await;
        assert!(matches!(r, Err(Error::Request(RequestError::BodyWriter))));
        assert!(
            conn.is_reusable(),
            "a refused request leaves the connection usable"
        );
    });
    assert!(peer.writes.is_empty());
}

#[test]
fn content_length_body() {
    let (out, reusable) = all_splits(
        b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 13\r\n\r\n{\"token\":\"t\"}",
        &post(),
    )
    .unwrap();
    assert_eq!(
        out,
        Outcome {
            status: 200,
            reason: "OK".into(),
            headers: vec![
                h("Content-Type", "application/json"),
                h("Content-Length", "13")
            ],
            body: br#"{"token":"t"}"#.to_vec(),
            trailers: vec![],
            keeps_connection: true,
            framing: Framing::Length(13),
        }
    );
    assert!(reusable);
}

#[test]
fn chunked_body_with_extensions_and_trailers() {
    let (out, reusable) = all_splits(
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5;name=v\r\nhello\r\n7\r\n, world\r\n0\r\nX-Checksum: abc\r\nX-Other:  2 \r\n\r\n",
        &post(),
    )
    .unwrap();
    assert_eq!(out.body, b"hello, world");
    assert_eq!(
        out.trailers,
        vec![h("X-Checksum", "abc"), h("X-Other", "2")]
    );
    assert!(reusable);
}

#[test]
fn chunked_body_without_trailers() {
    let (out, reusable) = all_splits(
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n1a\r\nabcdefghijklmnopqrstuvwxyz\r\n0\r\n\r\n",
        &post(),
    )
    .unwrap();
    assert_eq!(out.body, b"abcdefghijklmnopqrstuvwxyz");
    assert!(out.trailers.is_empty());
    assert!(reusable);
}

#[test]
fn body_until_close() {
    let (out, reusable) = all_splits(
        b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n\r\nuntil the very end",
        &post(),
    )
    .unwrap();
    assert_eq!(out.body, b"until the very end");
    assert!(!reusable);
    let (out, reusable) = all_splits(
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\n\r\nraw bytes",
        &post(),
    )
    .unwrap();
    assert_eq!(out.body, b"raw bytes");
    assert!(!reusable);
}

#[test]
fn http10_and_connection_close_are_not_reusable() {
    for script in [
        &b"HTTP/1.0 200 OK\r\nContent-Length: 2\r\n\r\nok"[..],
        b"HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 2\r\n\r\nok",
    ] {
        let (out, reusable) = all_splits(script, &post()).unwrap();
        assert_eq!(out.body, b"ok");
        assert!(!reusable);
    }
    let mut peer =
        Peer::new(b"HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 2\r\n\r\nok");
    let mut buf = [0u8; 256];
    block_on(async {
        let mut conn = Connection::new(&mut peer, &mut buf, HOST);
        let mut resp = conn.send(&post()).await.unwrap();
        assert!(!resp.keeps_connection());
        assert_eq!(resp.discard().await.unwrap(), 2);
        let err = conn.send(&post()).await.err().unwrap();
        assert_eq!(err, Error::Connection(ConnectionError::Closed));
    });
    assert_eq!(peer.writes.len(), 1);
}

#[test]
fn interim_responses_are_skipped() {
    let (out, reusable) = all_splits(
        b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 102 Processing\r\n\r\nHTTP/1.1 103 Early Hints\r\nLink: </a.css>; rel=preload\r\n\r\nHTTP/1.1 201 Created\r\nContent-Length: 3\r\n\r\nnew",
        &post(),
    )
    .unwrap();
    assert_eq!(out.status, 201);
    assert_eq!(out.reason, "Created");
    assert_eq!(out.headers, vec![h("Content-Length", "3")]);
    assert_eq!(out.body, b"new");
    assert!(reusable);
}

#[test]
fn interim_responses_are_bounded_and_101_is_refused() {
    let mut script =
        b"HTTP/1.1 100 Continue\r\n\r\n".repeat(usize::from(rawpost::MAX_INTERIM_RESPONSES) + 1);
    script.extend_from_slice(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n");
    assert_eq!(
        all_splits(&script, &post()),
        Err(Error::Response(ResponseError::TooManyInterimResponses))
    );
    let mut ok =
        b"HTTP/1.1 100 Continue\r\n\r\n".repeat(usize::from(rawpost::MAX_INTERIM_RESPONSES));
    ok.extend_from_slice(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n");
    assert_eq!(all_splits(&ok, &post()).unwrap().0.status, 200);
    assert_eq!(
        all_splits(
            b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n\r\n",
            &post()
        ),
        Err(Error::Response(ResponseError::UnexpectedUpgrade))
    );
}

#[test]
fn no_body_for_head_204_304() {
    let head = Request::head("/file");
    let (out, reusable) =
        all_splits(b"HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\n", &head).unwrap();
    assert_eq!(out.body, b"");
    assert!(reusable);
    for script in [
        &b"HTTP/1.1 204 No Content\r\nContent-Length: 10\r\n\r\n"[..],
        b"HTTP/1.1 304 Not Modified\r\nContent-Length: 10\r\n\r\n",
        b"HTTP/1.1 304 Not Modified\r\nTransfer-Encoding: chunked\r\n\r\n",
    ] {
        let (out, reusable) = all_splits(script, &post()).unwrap();
        assert_eq!(out.body, b"");
        assert!(reusable);
    }
}

#[test]
fn head_response_keeps_the_next_response_intact() {
    let mut peer = Peer::turns(
        &[
            b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\n",
            b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello",
        ],
        &[],
        &support::FakeClock::default(),
    );
    let mut buf = [0u8; 512];
    block_on(async {
        let mut conn = Connection::new(&mut peer, &mut buf, HOST);
        let first = send_and_read(&mut conn, &Request::head("/x"), 64)
            .await
            .unwrap();
        assert_eq!(first.body, b"");
        let second = send_and_read(&mut conn, &Request::get("/x"), 64)
            .await
            .unwrap();
        assert_eq!(second.body, b"hello");
    });
}

#[test]
fn three_exchanges_on_one_connection() {
    let turns: &[&[u8]] = &[
        b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nfirst",
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n6\r\nsecond\r\n0\r\n\r\n",
        b"HTTP/1.1 202 Accepted\r\nContent-Length: 5\r\n\r\nthird",
    ];
    for plan in [Reads::Whole, Reads::Max(1), Reads::Max(13)] {
        for out_step in [64, 1] {
            let mut peer =
                Peer::turns(turns, &[], &support::FakeClock::default()).reads(plan.clone());
            let mut buf = [0u8; 512];
            block_on(async {
                let mut conn = Connection::new(&mut peer, &mut buf, HOST);
                let a = send_and_read(&mut conn, &Request::get("/1"), out_step)
                    .await
                    .unwrap();
                let b = send_and_read(&mut conn, &Request::get("/2"), out_step)
                    .await
                    .unwrap();
                let c = send_and_read(&mut conn, &Request::get("/3"), out_step)
                    .await
                    .unwrap();
                assert_eq!((a.body.as_slice(), a.status), (&b"first"[..], 200));
                assert_eq!((b.body.as_slice(), b.status), (&b"second"[..], 200));
                assert_eq!((c.body.as_slice(), c.status), (&b"third"[..], 202));
                assert!(conn.is_reusable());
            });
            assert_eq!(
                peer.written(),
                b"GET /1 HTTP/1.1\r\nHost: api.example.com\r\n\r\nGET /2 HTTP/1.1\r\nHost: api.example.com\r\n\r\nGET /3 HTTP/1.1\r\nHost: api.example.com\r\n\r\n"
            );
        }
    }
}

/// A body partly read is skipped before the next request (it is buffered, within the drain
/// budget): nothing is lost and the connection goes on.
#[test]
fn a_partly_read_body_is_skipped_before_the_next_request() {
    let mut peer = Peer::turns(
        &[
            b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\n0123456789",
            b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n",
        ],
        &[],
        &support::FakeClock::default(),
    );
    let mut buf = [0u8; 512];
    block_on(async {
        let mut conn = Connection::new(&mut peer, &mut buf, HOST);
        let mut resp = conn.send(&post()).await.unwrap();
        let mut part = [0u8; 4];
        assert_eq!(resp.read(&mut part).await.unwrap(), 4);
        assert!(conn.is_reusable());
        assert_eq!(conn.send(&post()).await.map(|r| r.status()), Ok(200));
    });
    assert_eq!(peer.writes.len(), 2);
}

#[test]
fn dropped_future_poisons_the_connection() {
    let mut buf = [0u8; 512];
    let mut conn = Connection::new(Pending(Peer::new(b"")), &mut buf, HOST);
    let req = post();
    assert!(!poll_once_then_drop(conn.send(&req)));
    assert!(!conn.is_reusable());
    let err = block_on(conn.send(&req)).err().unwrap();
    assert_eq!(
        err,
        Error::Connection(ConnectionError::Broken(rawpost::Broken::Abandoned))
    );
    assert_eq!(err.name(), "Broken");
    assert!(!err.may_have_been_processed());
    let stream = conn.into_inner();
    assert_eq!(
        stream.0.writes.len(),
        1,
        "the request was written once, then abandoned"
    );
}

#[test]
fn every_injection_attempt_is_refused_before_writing() {
    let cases: &[(Request<'_>, RequestError)] = &[
        (Request::post("/a\r\nX-Evil: 1"), RequestError::InvalidPath),
        (Request::post("/a b"), RequestError::InvalidPath),
        (Request::post("a"), RequestError::InvalidPath),
        (
            Request::post("/").with_headers(&[("X-A", "v\r\nX-Evil: 1")]),
            RequestError::InvalidHeaderValue,
        ),
        (
            Request::post("/").with_headers(&[("X-A", "v\nX-Evil: 1")]),
            RequestError::InvalidHeaderValue,
        ),
        (
            Request::post("/").with_headers(&[("X-A", "v\0")]),
            RequestError::InvalidHeaderValue,
        ),
        (
            Request::post("/").with_headers(&[("X-A\r\nX-Evil", "1")]),
            RequestError::InvalidHeaderName,
        ),
        (
            Request::post("/").with_headers(&[("X A", "1")]),
            RequestError::InvalidHeaderName,
        ),
        (
            Request::post("/").with_headers(&[("", "1")]),
            RequestError::InvalidHeaderName,
        ),
        (
            Request::post("/").with_headers(&[("Host", "evil.example.com")]),
            RequestError::ConflictingHost,
        ),
        (
            Request::post("/")
                .with_headers(&[("Content-Length", "99")])
                .with_body(b"1"),
            RequestError::ConflictingContentLength,
        ),
        (
            Request::post("/").with_headers(&[("Transfer-Encoding", "chunked")]),
            RequestError::TransferEncodingNotAllowed,
        ),
    ];
    for (req, want) in cases {
        let mut peer = Peer::new(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n");
        let mut buf = [0u8; 512];
        block_on(async {
            let mut conn = Connection::new(&mut peer, &mut buf, HOST);
            let err = conn.send(req).await.err().unwrap();
            assert_eq!(err, Error::Request(*want), "{req:?}");
            assert!(conn.is_reusable());
            // The connection is still good for a valid request.
            assert_eq!(conn.send(&post()).await.unwrap().status(), 200);
        });
        assert_eq!(peer.writes.len(), 1, "only the valid request was written");
    }
    // A bad host is refused too.
    let mut peer = Peer::new(b"");
    let mut buf = [0u8; 512];
    block_on(async {
        let mut conn = Connection::new(&mut peer, &mut buf, Host::new("evil.com\r\nX: 1"));
        let err = conn.send(&post()).await.err().unwrap();
        assert_eq!(err, Error::Request(RequestError::InvalidHost));
    });
    assert!(peer.writes.is_empty());
}

#[test]
fn buffer_too_small_for_the_head() {
    let mut peer = Peer::new(b"");
    let mut buf = [0u8; 40];
    block_on(async {
        let mut conn = Connection::new(&mut peer, &mut buf, HOST);
        let err = conn.send(&post()).await.err().unwrap();
        let head = "POST /oauth/token HTTP/1.1\r\nHost: api.example.com\r\nContent-Type: application/json\r\nContent-Length: 7\r\n\r\n";
        assert_eq!(head.len(), 104);
        assert_eq!(
            err,
            Error::Request(RequestError::BufferTooSmall { needed: 104 })
        );
        assert_eq!(
            err.to_string(),
            "the buffer is too small for the request head: 104 bytes needed"
        );
    });
    assert!(peer.writes.is_empty());
}

#[test]
fn truncated_bodies_are_errors() {
    use ResponseError::*;
    let cases: &[(&[u8], ResponseError)] = &[
        (
            b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\n01234",
            TruncatedBody,
        ),
        (
            b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\n",
            TruncatedBody,
        ),
        (
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhel",
            TruncatedBody,
        ),
        (
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n",
            TruncatedBody,
        ),
        (
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n",
            TruncatedBody,
        ),
        (
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\nX: 1\r\n",
            TruncatedBody,
        ),
        (b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n", UnexpectedEof),
        (b"HTTP/1.1 200", UnexpectedEof),
    ];
    for &(script, want) in cases {
        assert_eq!(
            all_splits(script, &post()),
            Err(Error::Response(want)),
            "{}",
            String::from_utf8_lossy(script)
        );
    }
    // Nothing at all: the connection ended after the request, before a response.
    assert_eq!(
        all_splits(b"", &post()),
        Err(Error::Connection(ConnectionError::Dropped))
    );
}

#[test]
fn malformed_responses_are_typed_errors() {
    use ResponseError::*;
    let cases: &[(&[u8], ResponseError)] = &[
        (b"HTTP/1.1 200 OK\r\nContent-Length: 2x\r\n\r\nok", InvalidContentLength),
        (b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nContent-Length: 3\r\n\r\nok", InvalidContentLength),
        (
            b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nok\r\n0\r\n\r\n",
            ConflictingFraming,
        ),
        (b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n", InvalidChunk),
        (b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nokX\r\n", InvalidChunk),
        (
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n10000000000000000\r\n",
            ChunkSizeOverflow,
        ),
        (
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n0\r\nBad Trailer\r\n\r\n",
            InvalidTrailers,
        ),
        (b"HTTP/1.1 200 OK\r\nBad Header: 1\r\n\r\n", InvalidHeader),
        (b"HTTP/1.1 OK\r\n\r\n", MalformedStatusLine),
        (b"SSH-2.0-OpenSSH_9.6\r\n\r\n", MalformedStatusLine),
        (b"HTTP/3.0 200 OK\r\n\r\n", UnsupportedVersion),
    ];
    for &(script, want) in cases {
        assert_eq!(
            all_splits(script, &post()),
            Err(Error::Response(want)),
            "{}",
            String::from_utf8_lossy(script)
        );
    }
}

#[test]
fn head_too_large_for_the_buffer() {
    let mut script = b"HTTP/1.1 200 OK\r\nX-Big: ".to_vec();
    script.extend_from_slice(&[b'a'; 300]);
    script.extend_from_slice(b"\r\nContent-Length: 0\r\n\r\n");
    let mut buf = [0u8; 256];
    let err = exchange(&mut Peer::new(&script), &mut buf, &Request::get("/"), 64).unwrap_err();
    assert_eq!(err, Error::Response(ResponseError::HeadTooLarge));
    let mut buf = [0u8; 512];
    assert_eq!(
        exchange(&mut Peer::new(&script), &mut buf, &Request::get("/"), 64)
            .unwrap()
            .0
            .status,
        200
    );
}

#[test]
fn trailers_too_large_for_the_buffer() {
    let mut script = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n0\r\nX-Big: ".to_vec();
    script.extend_from_slice(&[b'a'; 300]);
    script.extend_from_slice(b"\r\n\r\n");
    let mut buf = [0u8; 256];
    let err = exchange(&mut Peer::new(&script), &mut buf, &Request::get("/"), 64).unwrap_err();
    assert_eq!(err, Error::Response(ResponseError::InvalidTrailers));
}

#[test]
fn injected_read_errors_and_eof_at_every_offset() {
    let script: &[u8] =
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\nX: 1\r\n\r\n";
    let mut buf = [0u8; 256];
    for at in 0..script.len() {
        for plan in [Reads::Whole, Reads::Max(1)] {
            let mut peer = Peer::new(script).reads(plan.clone());
            peer.error_at = Some(at);
            let got = exchange(&mut peer, &mut buf, &post(), 64);
            assert_eq!(got, Err(Error::Io(Injected)), "error at {at}");

            let mut peer = Peer::new(script).reads(plan);
            peer.eof_at = Some(at);
            let got = exchange(&mut peer, &mut buf, &post(), 64).unwrap_err();
            // The head is 47 bytes long.
            let want = match at {
                0 => Error::Connection(ConnectionError::Dropped),
                1..47 => Error::Response(ResponseError::UnexpectedEof),
                _ => Error::Response(ResponseError::TruncatedBody),
            };
            assert_eq!(got, want, "EOF at {at}");
        }
    }
}

#[test]
fn injected_write_errors() {
    let body = [b'x'; 600];
    for call in 0..2 {
        let mut peer = Peer::new(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n");
        peer.write_error_at = Some(call);
        let mut buf = [0u8; 256];
        block_on(async {
            let mut conn = Connection::new(&mut peer, &mut buf, HOST);
            let err = conn
                .send(&Request::post("/").with_body(&body))
                .await
                .err()
                .unwrap();
            assert_eq!(err, Error::Io(Injected));
            // The first write took nothing: the request may be sent again.
            assert_eq!(conn.may_resend(), call == 0);
            assert_eq!(
                conn.send(&post()).await.err().unwrap(),
                Error::Connection(ConnectionError::Broken(rawpost::Broken::Io))
            );
        });
    }
}

#[test]
fn headers_are_looked_up_case_insensitively() {
    let mut peer = Peer::new(
        b"HTTP/1.1 200 OK\r\ncontent-TYPE: application/json\r\nSet-Cookie: a=1\r\nSet-Cookie: b=2\r\nX-Bin: \xff\r\nContent-Length: 0\r\n\r\n",
    );
    let mut buf = [0u8; 512];
    block_on(async {
        let mut conn = Connection::new(&mut peer, &mut buf, HOST);
        let resp = conn.send(&Request::get("/")).await.unwrap();
        assert_eq!(resp.header("Content-Type"), Some("application/json"));
        assert_eq!(resp.header("content-type"), Some("application/json"));
        assert_eq!(resp.header("set-cookie"), Some("a=1"));
        assert_eq!(resp.headers().filter(|h| h.is("Set-Cookie")).count(), 2);
        assert_eq!(resp.header("X-Bin"), None, "not UTF-8");
        assert_eq!(
            resp.headers().find(|h| h.is("x-bin")).unwrap().value,
            b"\xff"
        );
        assert_eq!(resp.header("Missing"), None);
        assert_eq!(resp.content_length(), Some(0));
        assert_eq!(resp.framing(), Framing::Length(0));
        assert!(resp.is_complete());
    });
}

#[test]
fn read_to_end_into_a_slice() {
    let mut peer = Peer::new(b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\n0123456789");
    let mut buf = [0u8; 512];
    block_on(async {
        let mut conn = Connection::new(&mut peer, &mut buf, HOST);
        let mut resp = conn.send(&Request::get("/")).await.unwrap();
        let mut out = [0u8; 10];
        assert_eq!(resp.read_to_end(&mut out).await.unwrap(), 10);
        assert_eq!(&out, b"0123456789");
        assert!(conn.is_reusable());
    });
    let mut peer = Peer::new(b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\n0123456789");
    block_on(async {
        let mut conn = Connection::new(&mut peer, &mut buf, HOST);
        let mut resp = conn.send(&Request::get("/")).await.unwrap();
        let mut out = [0u8; 9];
        let err = resp.read_to_end(&mut out).await.unwrap_err();
        assert_eq!(err, Error::Request(RequestError::BodyBufferTooSmall));
        assert!(!conn.is_reusable());
    });
}

#[test]
fn whole_response_costs_one_read_call() {
    let mut peer = Peer::new(b"HTTP/1.1 200 OK\r\nContent-Length: 13\r\n\r\n{\"token\":\"t\"}");
    let mut buf = [0u8; 512];
    block_on(async {
        let mut conn = Connection::new(&mut peer, &mut buf, HOST);
        let mut resp = conn.send(&post()).await.unwrap();
        let mut out = [0u8; 64];
        assert_eq!(resp.read_to_end(&mut out).await.unwrap(), 13);
    });
    assert_eq!(peer.read_calls, 1);
}

#[test]
fn reading_after_an_error_never_looks_like_the_end() {
    let mut peer = Peer::new(b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\n01234");
    let mut buf = [0u8; 256];
    block_on(async {
        let mut conn = Connection::new(&mut peer, &mut buf, HOST);
        let mut resp = conn.send(&post()).await.unwrap();
        let mut out = [0u8; 16];
        assert_eq!(resp.read(&mut out).await, Ok(5));
        assert_eq!(
            resp.read(&mut out).await,
            Err(Error::Response(ResponseError::TruncatedBody))
        );
        assert_eq!(
            resp.read(&mut out).await,
            Err(Error::Connection(ConnectionError::Broken(
                rawpost::Broken::Response(ResponseError::TruncatedBody)
            )))
        );
        assert!(!resp.is_complete());
    });
}
