//! A connection's life beyond one exchange (issue 17): the last body byte completes the
//! exchange; a body left unread is skipped when that is bounded and named when it is not; bytes
//! that arrive when no response is owed are never a response; a `408` on a reused connection is
//! the server closing it; a connection idle longer than the server keeps it is not written
//! into; an end of the stream is classified by where it happened, the same over any stream, with
//! the resend rule of RFC 9112 §9.3.1; and a status line is never a header.

mod support;

use core::pin::pin;

use embedded_io_async::{Read as _, Write as _};
use rawpost::{
    blocking, Broken, Connection, ConnectionError, Error, Host, Request, ResponseError, Timeouts,
    DRAIN_BUDGET,
};
use support::{block_on, poll_once, FakeClock, Gated, Peer, Reads, Reset, Resets};

const HOST: Host<'static> = Host::new("api.example.com");
const OK5: &[u8] = b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello";
const OK2: &[u8] = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok";
const CHUNKED: &[u8] =
    b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\nX-T: 1\r\n\r\n";

/// A server that answers each request in turn, at once.
fn server(turns: &[&[u8]]) -> Peer {
    Peer::turns(turns, &[], &FakeClock::default())
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
    for reads in [Reads::Whole, Reads::Max(1), Reads::Sizes(vec![38])] {
        let mut peer = server(&[OK5, OK2]).reads(reads.clone());
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
        let mut peer = server(&[CHUNKED, OK2]).reads(reads.clone());
        let mut buf = [0u8; 256];
        let got = block_on(async {
            let mut conn = Connection::new(&mut peer, &mut buf, HOST);
            read_exact_then_next(&mut conn).await
        });
        assert_eq!(got, Ok(b"ok".to_vec()), "{reads:?}");
    }
}

/// The README's first example reads the body only on 200: an error body left unread is
/// skipped before the next request (issue 17 item 2), buffered or not, any framing.
#[test]
fn a_body_left_unread_is_skipped_before_the_next_request() {
    const NOT_FOUND: &[u8] = b"HTTP/1.1 404 Not Found\r\nContent-Length: 9\r\n\r\nnot found";
    for first in [NOT_FOUND, CHUNKED] {
        for reads in [Reads::Whole, Reads::Max(1), Reads::Sizes(vec![30])] {
            let mut peer = server(&[first, OK2]).reads(reads.clone());
            let mut buf = [0u8; 256];
            block_on(async {
                let mut conn = Connection::new(&mut peer, &mut buf, HOST);
                let resp = conn
                    .send(&Request::post("/a").with_body(b"1"))
                    .await
                    .unwrap();
                assert!(!resp.is_complete() || resp.content_length() == Some(9));
                let mut resp = conn
                    .send(&Request::post("/a").with_body(b"2"))
                    .await
                    .unwrap();
                let mut body = [0u8; 8];
                assert_eq!(resp.read_to_end(&mut body).await, Ok(2), "{reads:?}");
            });
            assert_eq!(peer.writes.len(), 2);
        }
    }
    // Partly read: the rest is skipped too.
    let mut peer = server(&[NOT_FOUND, OK2]).reads(Reads::Max(4));
    let mut buf = [0u8; 256];
    block_on(async {
        let mut conn = Connection::new(&mut peer, &mut buf, HOST);
        let mut resp = conn.send(&Request::get("/a")).await.unwrap();
        let mut three = [0u8; 3];
        resp.read_exact(&mut three).await.unwrap();
        let status = conn.send(&Request::get("/b")).await.map(|r| r.status());
        assert_eq!(status, Ok(200));
    });
}

/// More left than the drain budget: the connection is closed, and the next request is refused
/// in words — which response, how much was left — without writing anything.
#[test]
fn a_body_too_large_to_skip_closes_the_connection_and_says_so() {
    let left = DRAIN_BUDGET as u64 + 1;
    let head = format!("HTTP/1.1 200 OK\r\nContent-Length: {left}\r\n\r\n");
    let mut peer = server(&[head.as_bytes(), OK2]);
    let mut buf = [0u8; 256];
    let post = Request::post("/a").with_body(b"1");
    let mut conn = blocking::Connection::new(&mut peer, &mut buf, HOST);
    assert_eq!(conn.send(&post).map(|r| r.status()), Ok(200));
    let e = conn.send(&post).map(|_| ()).unwrap_err();
    assert_eq!(
        e,
        Error::Connection(ConnectionError::BodyLeftUnread {
            status: 200,
            left: Some(left),
        })
    );
    assert!(!e.may_have_been_processed());
    assert!(conn.may_resend());
    assert_eq!(
        e.to_string(),
        format!("the body of the last response (200) was not read to its end ({left} bytes left) and could not be skipped within the drain budget, so the connection was closed; the request was not sent: read bodies to their end, or open a new connection")
    );
    assert_eq!(peer.writes.len(), 1);
}

/// Issue 17 item 1: bytes that arrive when no response is owed are never the next response — a
/// `408` behind a complete response (a server timing the idle connection out), another
/// response, junk: the connection is no longer used and the next request is refused unwritten.
#[test]
fn bytes_behind_a_response_are_never_the_next_response() {
    const TIMEOUT: &[u8] =
        b"HTTP/1.1 408 Request Timeout\r\nConnection: close\r\nContent-Length: 0\r\n\r\n";
    for (behind, want) in [
        (TIMEOUT, ConnectionError::Unsolicited),
        (
            &b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n"[..],
            ConnectionError::Unsolicited,
        ),
        (&b"garbage"[..], ConnectionError::Unsolicited),
    ] {
        // Both in one script: the second arrives with the first.
        let mut peer = Peer::new(&[OK2, behind].concat());
        let mut buf = [0u8; 256];
        block_on(async {
            let mut conn = Connection::new(&mut peer, &mut buf, HOST);
            let mut resp = conn
                .send(&Request::post("/a").with_body(b"1"))
                .await
                .unwrap();
            let mut body = [0u8; 4];
            assert_eq!(resp.read_to_end(&mut body).await, Ok(2));
            assert_eq!(&body[..2], b"ok");
            assert!(!conn.is_reusable());
            let e = conn
                .send(&Request::post("/a").with_body(b"2"))
                .await
                .map(|_| ());
            assert_eq!(e, Err(Error::Connection(want)));
            assert!(conn.may_resend());
        });
        assert_eq!(peer.writes.len(), 1, "the second request was not written");
    }
}

/// Go's rule: a `408` as the first thing read on a reused connection means the server timed
/// the idle connection out before it read the request: closed by the server, safe to send
/// again. On a new connection a 408 is an answer like any other.
#[test]
fn a_408_first_on_a_reused_connection_is_closed_by_server() {
    const TIMEOUT: &[u8] =
        b"HTTP/1.1 408 Request Timeout\r\nConnection: close\r\nContent-Length: 0\r\n\r\n";
    let mut peer = server(&[OK2, TIMEOUT]);
    let mut buf = [0u8; 256];
    let post = Request::post("/a").with_body(b"1");
    let mut conn = blocking::Connection::new(&mut peer, &mut buf, HOST);
    conn.send(&post).unwrap().discard().unwrap();
    let e = conn.send(&post).map(|_| ()).unwrap_err();
    assert_eq!(e, Error::Connection(ConnectionError::ClosedByServer));
    assert!(!e.may_have_been_processed());
    assert!(conn.may_resend());

    let mut peer = server(&[TIMEOUT]);
    let mut buf = [0u8; 256];
    let mut conn = blocking::Connection::new(&mut peer, &mut buf, HOST);
    assert_eq!(conn.send(&post).map(|r| r.status()), Ok(408));
}

/// Issue 17 item C: `Keep-Alive: timeout=N` is remembered, and a connection idle longer than a
/// little less than that (or than `max_idle`) is treated as closed and not written into.
#[test]
fn a_connection_idle_longer_than_the_server_keeps_it_is_not_written_into() {
    const KEEP: &[u8] =
        b"HTTP/1.1 200 OK\r\nKeep-Alive: timeout=2, max=100\r\nContent-Length: 2\r\n\r\nok";
    let post = Request::post("/a").with_body(b"1");
    // timeout=2 is kept for 1.5 s.
    for (idle, expired) in [(1_499, false), (1_500, true)] {
        let clock = FakeClock::default();
        let mut peer = Peer::turns(&[KEEP, OK2], &[], &clock);
        let mut buf = [0u8; 256];
        let mut conn =
            Connection::new(&mut peer, &mut buf, HOST).timed(clock.clone(), Timeouts::default());
        let r = block_on(async {
            let resp = conn.send(&post).await?;
            assert_eq!(resp.header("Keep-Alive"), Some("timeout=2, max=100"));
            clock.set(clock.0.get() + idle);
            conn.send(&post).await.map(|r| r.status())
        });
        if expired {
            assert_eq!(r, Err(Error::Connection(ConnectionError::Expired)));
            assert!(conn.may_resend());
            assert!(!conn.is_reusable());
        } else {
            assert_eq!(r, Ok(200));
        }
        assert_eq!(
            peer.writes.len(),
            if expired { 1 } else { 2 },
            "idle {idle}"
        );
    }
    // A server that announces nothing: `max_idle`.
    let clock = FakeClock::default();
    let mut peer = Peer::turns(&[OK2, OK2], &[], &clock);
    let mut buf = [0u8; 256];
    let mut conn =
        Connection::new(&mut peer, &mut buf, HOST).timed(clock.clone(), Timeouts::default());
    conn.set_max_idle(Some(400));
    block_on(async {
        conn.send(&post).await.unwrap().discard().await.unwrap();
        clock.set(clock.0.get() + 399);
        assert!(conn.is_reusable());
        clock.set(clock.0.get() + 1);
        assert!(!conn.is_reusable());
        assert_eq!(conn.check_closed().await, Ok(true));
        let e = conn.send(&post).await.map(|_| ()).unwrap_err();
        assert_eq!(e, Error::Connection(ConnectionError::Expired));
    });
    // Without a clock nothing can expire.
    let mut peer = server(&[KEEP, OK2]);
    let mut buf = [0u8; 256];
    let mut conn = blocking::Connection::new(&mut peer, &mut buf, HOST);
    conn.send(&post).unwrap().discard().unwrap();
    assert_eq!(conn.send(&post).map(|r| r.status()), Ok(200));
}

/// Without a timer there is no bounded way to wait for `100 Continue`: the body goes at once,
/// with the head (one write), and a `100` that comes is skipped.
#[test]
fn expect_without_a_timer_sends_the_body_at_once() {
    let req = Request::put("/upload")
        .with_headers(&[("Expect", "100-continue")])
        .with_body(b"payload");
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
    let req = Request::post("/upload").with_headers(&[("Expect", "100-continue")]);
    let head = b"POST /upload HTTP/1.1\r\nHost: api.example.com\r\nExpect: 100-continue\r\nContent-Length: 4\r\n\r\n".to_vec();

    // 100, then the body.
    let clock = FakeClock::default();
    let mut peer = Peer::turns(
        &[
            b"HTTP/1.1 100 Continue\r\n\r\n",
            b"HTTP/1.1 201 Created\r\nContent-Length: 0\r\n\r\n",
        ],
        &[],
        &clock,
    );
    let mut buf = [0u8; 256];
    let mut conn =
        Connection::new(&mut peer, &mut buf, HOST).timed(clock.clone(), Timeouts::default());
    {
        let mut f = pin!(async {
            let mut w = conn.send_streaming(&req, Some(4)).await?;
            w.write_all(b"data").await?;
            w.finish().await.map(|r| r.status())
        });
        assert_eq!(poll_once(&mut f), Some(Ok(201)));
    }
    assert!(conn.is_reusable());
    assert_eq!(peer.writes, vec![head.clone(), b"data".to_vec()]);

    // A final answer first: nothing of the body is written.
    let mut peer = Peer::turns(
        &[b"HTTP/1.1 413 Content Too Large\r\nContent-Length: 0\r\n\r\n"],
        &[],
        &clock,
    );
    let mut buf = [0u8; 256];
    let mut conn =
        Connection::new(&mut peer, &mut buf, HOST).timed(clock.clone(), Timeouts::default());
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
    // The server would keep the connection, but the request on the wire is incomplete.
    assert!(!conn.is_reusable());
    let r = block_on(conn.send(&Request::get("/"))).map(|_| ());
    assert_eq!(
        r,
        Err(Error::Connection(ConnectionError::Broken(
            Broken::BodyNotSent
        )))
    );
    assert_eq!(peer.writes, vec![head]);
}

/// The server closed a kept-alive connection while it was idle and the client wrote into it
/// anyway (it could not see the close): the connection ended after the request was written and
/// before any byte of a response — `Dropped`, which says the request may have been processed,
/// never an idle close; `may_resend` applies RFC 9112 §9.3.1. The same over a clean close and
/// a reset, on a new connection and on a kept one.
#[test]
fn a_connection_that_ends_after_the_request_is_dropped() {
    let post = Request::post("/token").with_body(b"{}");
    for (req, resend) in [
        (post, false),
        (post.idempotent(), true),
        (Request::get("/status"), true),
        (Request::put("/state").with_body(b"on"), true),
    ] {
        for kept in [false, true] {
            let turns: &[&[u8]] = if kept { &[OK2, b""] } else { &[b""] };
            // A clean close (FIN, or TLS close_notify).
            let mut peer = server(turns);
            let mut buf = [0u8; 256];
            let mut conn = blocking::Connection::new(&mut peer, &mut buf, HOST);
            if kept {
                conn.send(&req).unwrap().discard().unwrap();
                assert!(conn.is_reusable());
            }
            let e = conn.send(&req).map(|_| ()).unwrap_err();
            assert_eq!(e, Error::Connection(ConnectionError::Dropped));
            assert!(e.may_have_been_processed());
            assert_eq!(conn.may_resend(), resend, "{:?}", req.method());
            // Final, and it says why.
            assert!(!conn.is_reusable());
            let r = conn.send(&req).map(|_| ());
            assert_eq!(
                r,
                Err(Error::Connection(ConnectionError::Broken(Broken::Dropped)))
            );
            // A reset (a TCP RST, a TLS session without close_notify): the same.
            let mut peer = Resets(server(turns));
            peer.0.error_at = Some(if kept { OK2.len() } else { 0 });
            let mut buf = [0u8; 256];
            block_on(async {
                let mut conn = Connection::new(&mut peer, &mut buf, HOST);
                if kept {
                    conn.send(&req).await.unwrap().discard().await.unwrap();
                }
                let r = conn.send(&req).await.map(|_| ());
                assert_eq!(r, Err(Error::Connection(ConnectionError::Dropped)));
                assert_eq!(conn.may_resend(), resend);
            });
        }
    }
    let e = Error::<Reset>::Connection(ConnectionError::Dropped);
    assert_eq!(
        e.to_string(),
        "the connection ended after the request was written and before any byte of a response; the server may have processed it"
    );
    assert_eq!(
        embedded_io::Error::kind(&e),
        embedded_io::ErrorKind::ConnectionReset
    );
}

/// The write of the request is refused (reset) before the stream took any byte of it: nothing
/// reached the server, so even a POST may be resent.
#[test]
fn a_refused_first_write_is_closed_by_server() {
    let post = Request::post("/token").with_body(b"{}");
    let mut peer = Resets(server(&[OK2, b""]));
    peer.0.write_error_at = Some(1);
    let mut buf = [0u8; 256];
    block_on(async {
        let mut conn = Connection::new(&mut peer, &mut buf, HOST);
        conn.send(&post).await.unwrap().discard().await.unwrap();
        let e = conn.send(&post).await.map(|_| ()).unwrap_err();
        assert_eq!(e, Error::Connection(ConnectionError::ClosedByServer));
        assert!(!e.may_have_been_processed());
        assert!(conn.may_resend());
    });
    assert_eq!(
        Error::<Reset>::Connection(ConnectionError::ClosedByServer).to_string(),
        "the server had closed this kept-alive connection before the request was written; nothing of it was processed: send it again on a new connection"
    );
}

/// With a stream that says whether bytes are ready, the close is seen before sending: the
/// request is never written, so any request may go on a new connection — asked explicitly
/// (`check_closed`) or before every request (`check_before_send`).
#[test]
fn the_close_is_seen_before_anything_is_written() {
    let post = Request::post("/token").with_body(b"{}");
    let mut peer = server(&[OK2]);
    let mut buf = [0u8; 256];
    block_on(async {
        let mut conn = Connection::new(&mut peer, &mut buf, HOST);
        conn.send(&post).await.unwrap().discard().await.unwrap();
        assert_eq!(conn.check_closed().await, Ok(true));
        let e = conn.send(&post).await.map(|_| ()).unwrap_err();
        assert_eq!(e, Error::Connection(ConnectionError::ClosedByServer));
        assert!(conn.may_resend());
    });
    assert_eq!(peer.writes.len(), 1, "the second request was never written");

    let mut peer = server(&[OK2]);
    let mut buf = [0u8; 256];
    let mut conn = blocking::Connection::new(&mut peer, &mut buf, HOST).check_before_send();
    conn.send(&post).unwrap().discard().unwrap();
    let e = conn.send(&post).map(|_| ()).unwrap_err();
    assert_eq!(e, Error::Connection(ConnectionError::ClosedByServer));
    assert!(!e.may_have_been_processed());
    assert_eq!(peer.writes.len(), 1, "the second request was never written");

    // Bytes while idle answer no request: found before writing too.
    let mut peer =
        Peer::new(&[OK2, b"HTTP/1.1 200 OK\r\n\r\n"].concat()).reads(Reads::Sizes(vec![OK2.len()]));
    let mut buf = [0u8; 256];
    let mut conn = blocking::Connection::new(&mut peer, &mut buf, HOST).check_before_send();
    conn.send(&post).unwrap().discard().unwrap();
    let e = conn.send(&post).map(|_| ()).unwrap_err();
    assert_eq!(e, Error::Connection(ConnectionError::Unsolicited));
    assert_eq!(peer.writes.len(), 1);

    // Still open: nothing to read yet, nothing changes.
    let mut peer = Peer::new(OK2);
    let mut buf = [0u8; 256];
    let mut conn = blocking::Connection::new(support::Open(&mut peer), &mut buf, HOST);
    conn.send(&post).unwrap().discard().unwrap();
    assert_eq!(conn.check_closed(), Ok(false));
    assert!(conn.is_reusable());
}

/// The ends of a response: a clean close ends a body delimited by the close; a reset may have
/// cut it; a reset inside a framed body or head is a truncation; reading again after a failure
/// is never a short `Ok`.
#[test]
fn ends_of_stream_are_told_apart() {
    let until_close: &[u8] = b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n\r\nall of it";
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
    let mut peer = Resets(Peer::new(until_close));
    peer.0.error_at = Some(until_close.len());
    let mut buf = [0u8; 256];
    block_on(async {
        let mut conn = Connection::new(&mut peer, &mut buf, HOST);
        let mut resp = conn.send(&Request::get("/")).await.unwrap();
        let mut out = [0u8; 64];
        assert_eq!(resp.read(&mut out).await, Ok(9));
        assert_eq!(&out[..9], b"all of it");
        let unclean = Error::Response(ResponseError::UncleanClose);
        assert_eq!(resp.read(&mut out).await, Err(unclean));
        let again = Error::Connection(ConnectionError::Broken(Broken::Response(
            ResponseError::UncleanClose,
        )));
        assert_eq!(resp.read(&mut out).await, Err(again));
        assert_eq!(resp.read_to_end(&mut out).await, Err(again));
        assert_eq!(resp.discard().await, Err(again));
    });
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
    // After the first byte of a head: the response began.
    for peer in [Peer::new(b"HTTP/1.1 200"), {
        let mut p = Peer::new(b"HTTP/1.1 200 OK\r\n");
        p.error_at = Some(17);
        p
    }] {
        let mut peer = Resets(peer);
        let mut buf = [0u8; 256];
        let r = block_on(async {
            let mut conn = Connection::new(&mut peer, &mut buf, HOST);
            conn.send(&Request::get("/")).await.map(|_| ())
        });
        assert_eq!(r, Err(Error::Response(ResponseError::UnexpectedEof)));
    }
    let e: Error<Reset> = Error::Response(ResponseError::TruncatedBody);
    assert_eq!(
        embedded_io::Error::kind(&e),
        embedded_io::ErrorKind::ConnectionAborted
    );
}

/// Issue 17 item 6: an HTTP/1.0 response with `Transfer-Encoding: chunked` is faulty framing —
/// its body is decoded (framing bytes are never content) and the connection is not reused.
#[test]
fn http10_chunked_is_decoded_and_not_reused() {
    let script: &[u8] =
        b"HTTP/1.0 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n";
    for reads in [Reads::Whole, Reads::Max(1)] {
        let mut peer = Peer::new(script).reads(reads);
        let mut buf = [0u8; 256];
        let mut conn = blocking::Connection::new(&mut peer, &mut buf, HOST);
        let mut resp = conn.send(&Request::get("/")).unwrap();
        let mut out = [0u8; 64];
        let n = resp.read_to_end(&mut out).unwrap();
        assert_eq!(&out[..n], b"hello");
        assert!(!resp.keeps_connection());
        let e = conn.send(&Request::get("/")).map(|_| ()).unwrap_err();
        assert_eq!(e, Error::Connection(ConnectionError::Closed));
    }
}

/// A chunked response whose head exactly fills the buffer: the head fit, but there is no room
/// for a chunk-size line — said as such, not as a head too large.
#[test]
fn a_chunked_head_that_fills_the_buffer_says_what_is_missing() {
    let head: &[u8] = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n";
    let script = [head, b"5\r\nhello\r\n0\r\n\r\n"].concat();
    let post = Request::post("/").with_body(b"x");
    let mut peer = Peer::new(&script);
    let mut buf = vec![0u8; head.len()];
    let mut conn = blocking::Connection::new(&mut peer, &mut buf, Host::new("h"));
    let e = conn.send(&post).map(|_| ()).unwrap_err();
    assert_eq!(e, Error::Response(ResponseError::NoRoomForChunk));
    // Two bytes more are enough for the body to stream through (one for framing bytes, and
    // the empty trailer section's CRLF).
    let mut peer = Peer::new(&script).reads(Reads::Max(1));
    let mut buf = vec![0u8; head.len() + 2];
    let mut conn = blocking::Connection::new(&mut peer, &mut buf, Host::new("h"));
    let mut resp = conn.send(&post).unwrap();
    let mut out = [0u8; 8];
    assert_eq!(resp.read_to_end(&mut out), Ok(5));
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
