//! A connection's life beyond one exchange: the last body byte completes the exchange, waits
//! are bounded without a timer, the server closing an idle kept-alive connection is its own
//! typed error with the resend rule of RFC 9112 §9.3.1, ends of stream are told apart, and a
//! status line is never a header.

mod support;

use core::pin::pin;

use embedded_io_async::{Read as _, Write as _};
use rawpost::{
    blocking, Connection, ConnectionError, Error, Host, Request, ResponseError, Timeouts,
};
use support::{block_on, poll_once, FakeClock, Gated, Peer, Reads, Reset, Resets};

const HOST: Host<'static> = Host::new("api.example.com");
const TWO: &[u8] = b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhelloHTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok";
const CHUNKED_THEN_OK: &[u8] = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\nX-T: 1\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok";

fn timeouts() -> Timeouts {
    Timeouts {
        first_byte_ms: Some(10_000),
        idle_ms: Some(5_000),
        exchange_ms: Some(30_000),
        continue_ms: 1_000,
    }
}

/// Reads exactly the body's length (`read_exact`), never the `Ok(0)` after it, then sends the
/// next request on the same connection.
async fn read_exact_then_next<S: embedded_io_async::Read + embedded_io_async::Write>(
    conn: &mut Connection<'_, S>,
) -> Result<Vec<u8>, Error<S::Error>> {
    {
        let mut resp = conn.send(&Request::get("/1")).await?;
        let mut body = [0u8; 5];
        resp.read_exact(&mut body).await.map_err(|e| match e {
            embedded_io::ReadExactError::Other(e) => e,
            embedded_io::ReadExactError::UnexpectedEof => panic!("body cut short"),
        })?;
        assert_eq!(&body, b"hello");
    }
    let mut resp = conn.send(&Request::get("/2")).await?;
    let mut body = [0u8; 8];
    let n = resp.read_to_end(&mut body).await?;
    Ok(body[..n].to_vec())
}

#[test]
fn reading_exactly_the_content_length_completes_the_exchange() {
    for reads in [Reads::Whole, Reads::Max(1), Reads::Sizes(vec![44])] {
        let mut peer = Peer::new(TWO).reads(reads.clone());
        let mut buf = [0u8; 256];
        let got = block_on(async {
            let mut conn = Connection::new(&mut peer, &mut buf, HOST);
            read_exact_then_next(&mut conn).await
        });
        assert_eq!(got, Ok(b"ok".to_vec()), "{reads:?}");
    }
}

/// A chunked body read to its last data byte: the rest of its framing (the last chunk and the
/// trailers) is read before the next request, whether it was already buffered or not.
#[test]
fn a_chunked_body_read_to_its_last_data_byte_is_settled_by_the_next_send() {
    // 55 bytes: the head and the first chunk's data; the framing after it arrives later.
    for reads in [
        Reads::Whole,
        Reads::Max(1),
        Reads::Sizes(vec![55]),
        Reads::Sizes(vec![54, 1]),
    ] {
        let mut peer = Peer::new(CHUNKED_THEN_OK).reads(reads.clone());
        let mut buf = [0u8; 256];
        let got = block_on(async {
            let mut conn = Connection::new(&mut peer, &mut buf, HOST);
            read_exact_then_next(&mut conn).await
        });
        assert_eq!(got, Ok(b"ok".to_vec()), "{reads:?}");
    }
    // Body bytes left unread: the connection cannot be reused (where the next response starts
    // is unknown), and says so.
    let mut peer = Peer::new(CHUNKED_THEN_OK);
    let mut buf = [0u8; 256];
    block_on(async {
        let mut conn = Connection::new(&mut peer, &mut buf, HOST);
        let mut resp = conn.send(&Request::get("/1")).await.unwrap();
        let mut two = [0u8; 2];
        resp.read_exact(&mut two).await.unwrap();
        let r = conn.send(&Request::get("/2")).await.map(|_| ());
        assert_eq!(r, Err(Error::Connection(ConnectionError::Poisoned)));
    });
}

/// Without a timer there is no bounded way to wait for `100 Continue`: the body goes at once,
/// with the head (one write), and a `100` that comes is skipped.
#[test]
fn expect_without_a_timer_sends_the_body_at_once() {
    let req = Request::put("/upload")
        .headers(&[("Expect", "100-continue")])
        .body(b"payload");
    let want = b"PUT /upload HTTP/1.1\r\nHost: api.example.com\r\nExpect: 100-continue\r\nContent-Length: 7\r\n\r\npayload".to_vec();
    for script in [
        &b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n"[..],
        b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n",
    ] {
        // The server answers only once it has the body: a client waiting for 100 would hang.
        let stream = Gated {
            peer: Peer::new(script),
            open_after: 1,
        };
        let mut buf = [0u8; 256];
        let mut conn = Connection::new(stream, &mut buf, HOST);
        let status = block_on(async { conn.send(&req).await.map(|r| r.status()) });
        assert_eq!(status, Ok(200));
        assert!(conn.is_reusable());
        assert_eq!(conn.into_inner().peer.writes, vec![want.clone()]);
    }
}

/// `send_streaming` honours `Expect` like `send`: the body waits for the `100`; a final answer
/// before it means the body is not wanted, and `finish` gives that answer.
#[test]
fn send_streaming_honours_expect() {
    let req = Request::post("/upload").headers(&[("Expect", "100-continue")]);
    let head = b"POST /upload HTTP/1.1\r\nHost: api.example.com\r\nExpect: 100-continue\r\nContent-Length: 4\r\n\r\n".to_vec();

    // 100, then the body.
    let clock = FakeClock::default();
    let stream = Gated {
        peer: Peer::new(
            b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 201 Created\r\nContent-Length: 0\r\n\r\n",
        ),
        open_after: 1,
    };
    let mut buf = [0u8; 256];
    let mut conn = Connection::with_timer(stream, &mut buf, HOST, clock.clone(), timeouts());
    {
        let mut f = pin!(async {
            let mut w = conn.send_streaming(&req, Some(4)).await?;
            w.write_all(b"data").await?;
            w.finish().await.map(|r| r.status())
        });
        assert_eq!(poll_once(&mut f), Some(Ok(201)));
    }
    assert!(conn.is_reusable());
    assert_eq!(
        conn.into_inner().peer.writes,
        vec![head.clone(), b"data".to_vec()]
    );

    // A final answer first: nothing of the body is written.
    let stream = Gated {
        peer: Peer::new(b"HTTP/1.1 413 Content Too Large\r\nContent-Length: 0\r\n\r\n"),
        open_after: 1,
    };
    let mut buf = [0u8; 256];
    let mut conn = Connection::with_timer(stream, &mut buf, HOST, clock.clone(), timeouts());
    {
        let mut f = pin!(async {
            let mut w = conn.send_streaming(&req, Some(4)).await?;
            let refused = w.write(b"data").await;
            assert_eq!(
                refused,
                Err(Error::Connection(ConnectionError::AnsweredBeforeBody))
            );
            w.finish().await.map(|r| (r.status(), r.keeps_connection()))
        });
        assert_eq!(poll_once(&mut f), Some(Ok((413, false))));
    }
    assert!(!conn.is_reusable());
    assert_eq!(conn.into_inner().peer.writes, vec![head]);
}

/// The server closed a kept-alive connection while it was idle: the next exchange ends before
/// the first byte of its response. That is `ClosedByServer` — never a malformed response — on
/// the read or on the write, and `may_resend` applies RFC 9112 §9.3.1.
#[test]
fn a_server_closing_an_idle_connection_is_closed_by_server() {
    const ONE: &[u8] = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok";
    let post = Request::post("/token").body(b"{}");
    for (req, resend) in [
        (post, false),
        (post.idempotent(), true),
        (Request::get("/status"), true),
        (Request::put("/state").body(b"on"), true),
    ] {
        // EOF on the first read of the second exchange.
        let mut peer = Peer::new(ONE);
        let mut buf = [0u8; 256];
        block_on(async {
            let mut conn = Connection::new(&mut peer, &mut buf, HOST);
            conn.send(&req).await.unwrap().discard().await.unwrap();
            assert!(conn.is_reusable());
            let r = conn.send(&req).await.map(|_| ());
            assert_eq!(r, Err(Error::Connection(ConnectionError::ClosedByServer)));
            assert_eq!(conn.may_resend(), resend, "{:?}", req.method());
            // Final, and it says what to do.
            assert!(!conn.is_reusable());
            let r = conn.send(&req).await.map(|_| ());
            assert_eq!(r, Err(Error::Connection(ConnectionError::ClosedByServer)));
        });
        // A reset instead of a clean close.
        let mut peer = Resets(Peer::new(ONE));
        peer.0.error_at = Some(ONE.len());
        let mut buf = [0u8; 256];
        block_on(async {
            let mut conn = Connection::new(&mut peer, &mut buf, HOST);
            conn.send(&req).await.unwrap().discard().await.unwrap();
            let r = conn.send(&req).await.map(|_| ());
            assert_eq!(r, Err(Error::Connection(ConnectionError::ClosedByServer)));
            assert_eq!(conn.may_resend(), resend);
        });
    }
    // The write of the next request is refused (reset): nothing reached the server, so even a
    // POST may be resent.
    let mut peer = Resets(Peer::new(ONE));
    peer.0.write_error_at = Some(1);
    let mut buf = [0u8; 256];
    block_on(async {
        let mut conn = Connection::new(&mut peer, &mut buf, HOST);
        conn.send(&post).await.unwrap().discard().await.unwrap();
        let r = conn.send(&post).await.map(|_| ());
        assert_eq!(r, Err(Error::Connection(ConnectionError::ClosedByServer)));
        assert!(conn.may_resend());
    });
    // The blocking shell says the same.
    let mut peer = Peer::new(ONE);
    let mut buf = [0u8; 256];
    let mut conn = blocking::Connection::new(&mut peer, &mut buf, HOST);
    conn.send(&post).unwrap().discard().unwrap();
    let r = conn.send(&post).map(|_| ());
    assert_eq!(r, Err(Error::Connection(ConnectionError::ClosedByServer)));
    assert_eq!(
        r.unwrap_err().to_string(),
        "the server had closed this idle kept-alive connection (its keep-alive timeout): reconnect and send the request again"
    );
    assert_eq!(
        embedded_io::Error::kind(&Error::<support::Injected>::Connection(
            ConnectionError::ClosedByServer
        )),
        embedded_io::ErrorKind::ConnectionReset
    );
}

/// With a stream that says whether bytes are ready, the close is seen before sending: the
/// request is never written, so any request may go on a new connection.
#[test]
fn check_closed_sees_the_close_before_anything_is_written() {
    let mut peer = Peer::new(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok");
    let mut buf = [0u8; 256];
    let post = Request::post("/token").body(b"{}");
    block_on(async {
        let mut conn = Connection::new(&mut peer, &mut buf, HOST);
        conn.send(&post).await.unwrap().discard().await.unwrap();
        assert_eq!(conn.check_closed().await, Ok(true));
        let r = conn.send(&post).await.map(|_| ());
        assert_eq!(r, Err(Error::Connection(ConnectionError::ClosedByServer)));
        assert!(conn.may_resend());
    });
    assert_eq!(peer.writes.len(), 1, "the second request was never written");
    // Still open: nothing to read yet, nothing changes.
    let mut peer = Peer::new(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok");
    peer.eof_at = None;
    let mut buf = [0u8; 256];
    let mut conn = blocking::Connection::new(support::Open(&mut peer), &mut buf, HOST);
    conn.send(&post).unwrap().discard().unwrap();
    assert_eq!(conn.check_closed(), Ok(false));
    assert!(conn.is_reusable());
}

/// A new connection that ends before the head is complete, and the ends of a body.
#[test]
fn ends_of_stream_are_told_apart() {
    let until_close: &[u8] = b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n\r\nall of it";
    // A clean close ends a body delimited by the close: complete, byte-exact.
    let mut peer = Peer::new(until_close);
    let mut buf = [0u8; 256];
    let body = block_on(async {
        let mut conn = Connection::new(&mut peer, &mut buf, HOST);
        let mut resp = conn.send(&Request::get("/")).await?;
        let mut out = [0u8; 64];
        let n = resp.read_to_end(&mut out).await?;
        Ok::<_, Error<_>>(out[..n].to_vec())
    });
    assert_eq!(body, Ok(b"all of it".to_vec()));
    // A reset (a TLS session without close_notify) may have cut it: a typed error after the
    // bytes read so far were delivered.
    let mut peer = Resets(Peer::new(until_close));
    peer.0.error_at = Some(until_close.len());
    let mut buf = [0u8; 256];
    block_on(async {
        let mut conn = Connection::new(&mut peer, &mut buf, HOST);
        let mut resp = conn.send(&Request::get("/")).await.unwrap();
        let mut out = [0u8; 64];
        assert_eq!(resp.read(&mut out).await, Ok(9));
        assert_eq!(&out[..9], b"all of it");
        assert_eq!(
            resp.read(&mut out).await,
            Err(Error::Response(ResponseError::UncleanClose))
        );
        assert_eq!(
            resp.read(&mut out).await,
            Err(Error::Connection(ConnectionError::Poisoned))
        );
    });
    // A reset inside a Content-Length body is a truncated body, not an I/O mystery.
    let framed: &[u8] = b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nhello";
    let mut peer = Resets(Peer::new(framed));
    peer.0.error_at = Some(framed.len());
    let mut buf = [0u8; 256];
    block_on(async {
        let mut conn = Connection::new(&mut peer, &mut buf, HOST);
        let mut resp = conn.send(&Request::get("/")).await.unwrap();
        let mut out = [0u8; 64];
        assert_eq!(
            resp.read_to_end(&mut out).await,
            Err(Error::Response(ResponseError::TruncatedBody))
        );
    });
    // A reset before any byte on a new connection is the stream's own error.
    let mut peer = Resets(Peer::new(b""));
    peer.0.error_at = Some(0);
    let mut buf = [0u8; 256];
    let r = block_on(async {
        let mut conn = Connection::new(&mut peer, &mut buf, HOST);
        conn.send(&Request::get("/")).await.map(|_| ())
    });
    assert_eq!(r, Err(Error::Io(Reset)));
    // Early ends are not "invalid data".
    let e: Error<Reset> = Error::Response(ResponseError::TruncatedBody);
    assert_eq!(
        embedded_io::Error::kind(&e),
        embedded_io::ErrorKind::ConnectionAborted
    );
}

/// httparse gives a static `""` for a missing or non-UTF-8 reason phrase; nothing depends on
/// where it points, so the status line is never a header field.
#[test]
fn a_status_line_is_never_a_header() {
    let script: &[u8] = b"\r\nHTTP/1.1 200 a:\xff\r\nX-One: 1\r\nContent-Length: 0\r\n\r\n";
    let mut peer = Peer::new(script);
    let mut buf = [0u8; 256];
    block_on(async {
        let mut conn = Connection::new(&mut peer, &mut buf, HOST);
        let resp = conn.send(&Request::get("/")).await.unwrap();
        let names: Vec<&str> = resp.headers().map(|h| h.name).collect();
        assert_eq!(names, ["X-One", "Content-Length"]);
        assert_eq!(resp.reason(), "");
    });
}
