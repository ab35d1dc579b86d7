//! Deadlines, driven by a clock the test moves by hand: each phase times out exactly when its
//! deadline passes, the error names the phase, and the connection is then unusable.

mod support;

use core::pin::pin;

use rawpost::{Broken, Connection, ConnectionError, Error, Host, Request, TimeoutPhase, Timeouts};
use support::{poll_once, FakeClock, Gated, Injected, Peer, Pending};

const HOST: Host<'static> = Host::new("api.example.com");

fn timeouts() -> Timeouts {
    Timeouts {
        first_byte_ms: Some(10_000),
        idle_ms: Some(5_000),
        response_ms: Some(30_000),
        continue_ms: Some(1_000),
    }
}

/// A future that is still pending at `before` ms and resolves at `at` ms.
fn expires_exactly_at<F: core::future::Future + Unpin>(
    clock: &FakeClock,
    f: &mut F,
    before: u64,
    at: u64,
) -> F::Output {
    assert!(poll_once(f).is_none(), "pending at the start");
    clock.set(before);
    assert!(poll_once(f).is_none(), "still pending at {before} ms");
    clock.set(at);
    poll_once(f).expect("ready once the deadline has passed")
}

#[test]
fn first_byte_timeout() {
    let clock = FakeClock::default();
    clock.set(1_000);
    let mut buf = [0u8; 256];
    let mut conn =
        Connection::new(Pending(Peer::new(b"")), &mut buf, HOST).timed(clock.clone(), timeouts());
    let req = Request::post("/").with_body(b"x");
    let r = {
        let mut f = pin!(conn.send(&req));
        expires_exactly_at(&clock, &mut f, 10_999, 11_000).map(|_| ())
    };
    assert_eq!(r, Err(Error::Timeout(TimeoutPhase::FirstByte)));
    assert_eq!(
        r.unwrap_err().to_string(),
        "timed out waiting for the first byte of the response"
    );
    assert!(!conn.is_reusable());
    let mut f = pin!(conn.send(&req));
    assert_eq!(
        poll_once(&mut f).map(|r| r.map(|_| ())),
        Some(Err(Error::Connection(ConnectionError::Broken(
            Broken::Timeout(TimeoutPhase::FirstByte)
        ))))
    );
}

#[test]
fn idle_timeout_after_the_response_started() {
    let clock = FakeClock::default();
    let mut buf = [0u8; 256];
    // The head and 2 of 10 body bytes arrive, then nothing.
    let mut peer = Peer::new(b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nab");
    peer.eof_at = None;
    let stream = Stalls {
        peer,
        stalled: false,
    };
    let mut conn = Connection::new(stream, &mut buf, HOST).timed(clock.clone(), timeouts());
    let req = Request::get("/");
    let mut resp = {
        let mut f = pin!(conn.send(&req));
        poll_once(&mut f).unwrap().unwrap()
    };
    let mut out = [0u8; 16];
    {
        let mut f = pin!(embedded_io_async::Read::read(&mut resp, &mut out));
        assert_eq!(poll_once(&mut f).unwrap(), Ok(2));
    }
    clock.set(100);
    let r = {
        let mut f = pin!(embedded_io_async::Read::read(&mut resp, &mut out));
        expires_exactly_at(&clock, &mut f, 5_099, 5_100)
    };
    assert_eq!(r, Err(Error::Timeout(TimeoutPhase::Idle)));
    assert!(!conn.is_reusable());
}

#[test]
fn the_response_deadline_wins_over_a_later_idle_deadline() {
    let clock = FakeClock::default();
    let mut buf = [0u8; 256];
    let peer = Peer::new(b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nab");
    let mut conn = Connection::new(
        Stalls {
            peer,
            stalled: false,
        },
        &mut buf,
        HOST,
    )
    .timed(clock.clone(), timeouts());
    let req = Request::get("/");
    let mut resp = {
        let mut f = pin!(conn.send(&req));
        poll_once(&mut f).unwrap().unwrap()
    };
    let mut out = [0u8; 16];
    {
        let mut f = pin!(embedded_io_async::Read::read(&mut resp, &mut out));
        assert_eq!(poll_once(&mut f).unwrap(), Ok(2));
    }
    // The caller dawdles: 28 s later it reads again. The idle deadline would be 33 s; the
    // response must be over 30 s after the request was sent.
    clock.set(28_000);
    let r = {
        let mut f = pin!(embedded_io_async::Read::read(&mut resp, &mut out));
        expires_exactly_at(&clock, &mut f, 29_999, 30_000)
    };
    assert_eq!(r, Err(Error::Timeout(TimeoutPhase::Response)));
}

#[test]
fn send_timeout() {
    let clock = FakeClock::default();
    let mut buf = [0u8; 256];
    let mut conn = Connection::new(NeverWrites, &mut buf, HOST).timed(clock.clone(), timeouts());
    let req = Request::post("/").with_body(b"x");
    let r = {
        let mut f = pin!(conn.send(&req));
        expires_exactly_at(&clock, &mut f, 4_999, 5_000).map(|_| ())
    };
    assert_eq!(r, Err(Error::Timeout(TimeoutPhase::Send)));
    assert!(!conn.is_reusable());
}

#[test]
fn timeouts_none_never_expire() {
    // `Timeouts::none()` with a clock: nothing ever expires.
    let clock = FakeClock::default();
    let mut buf = [0u8; 256];
    let mut conn = Connection::new(Pending(Peer::new(b"")), &mut buf, HOST)
        .timed(clock.clone(), Timeouts::none());
    let req = Request::get("/");
    let mut f = pin!(conn.send(&req));
    assert!(poll_once(&mut f).is_none());
    clock.set(u64::MAX);
    assert!(poll_once(&mut f).is_none());
}

#[test]
fn expect_continue_sends_the_body_after_100() {
    let clock = FakeClock::default();
    let mut buf = [0u8; 256];
    let mut peer = Peer::turns(
        &[
            b"HTTP/1.1 100 Continue\r\n\r\n",
            b"HTTP/1.1 201 Created\r\nContent-Length: 0\r\n\r\n",
        ],
        &[],
        &clock,
    );
    let mut conn = Connection::new(&mut peer, &mut buf, HOST).timed(clock.clone(), timeouts());
    let req = Request::put("/upload")
        .with_headers(&[("Expect", "100-continue")])
        .with_body(b"payload");
    {
        let mut f = pin!(conn.send(&req));
        let resp = poll_once(&mut f).unwrap().unwrap();
        assert_eq!(resp.status(), 201);
    }
    assert!(conn.is_reusable());
    assert_eq!(
        peer.writes,
        vec![
            b"PUT /upload HTTP/1.1\r\nHost: api.example.com\r\nExpect: 100-continue\r\nContent-Length: 7\r\n\r\n".to_vec(),
            b"payload".to_vec(),
        ]
    );
}

#[test]
fn expect_continue_final_response_means_no_body() {
    let clock = FakeClock::default();
    let mut buf = [0u8; 256];
    let stream = Gated {
        peer: Peer::new(b"HTTP/1.1 413 Content Too Large\r\nContent-Length: 0\r\n\r\n"),
        open_after: 1,
    };
    let mut conn = Connection::new(stream, &mut buf, HOST).timed(clock.clone(), timeouts());
    let req = Request::put("/upload")
        .with_headers(&[("Expect", "100-continue")])
        .with_body(b"payload");
    {
        let mut f = pin!(conn.send(&req));
        let resp = poll_once(&mut f).unwrap().unwrap();
        assert_eq!(resp.status(), 413);
        assert!(!resp.keeps_connection());
    }
    assert!(
        !conn.is_reusable(),
        "the server never got the declared body"
    );
    let peer = conn.into_inner().peer;
    assert_eq!(peer.writes.len(), 1, "only the head was sent");
}

#[test]
fn expect_continue_wait_is_bounded() {
    let clock = FakeClock::default();
    let mut buf = [0u8; 256];
    // A server that ignores Expect: it answers only once it has the body (the second write).
    let stream = Gated {
        peer: Peer::new(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n"),
        open_after: 2,
    };
    let mut conn = Connection::new(stream, &mut buf, HOST).timed(clock.clone(), timeouts());
    let req = Request::put("/upload")
        .with_headers(&[("Expect", "100-continue")])
        .with_body(b"payload");
    {
        let mut f = pin!(conn.send(&req));
        let resp = expires_exactly_at(&clock, &mut f, 999, 1_000).unwrap();
        assert_eq!(resp.status(), 200);
    }
    assert!(conn.is_reusable());
    assert_eq!(conn.into_inner().peer.writes[1], b"payload");
}

/// Delivers the script once, then every read stays pending.
struct Stalls {
    peer: Peer,
    stalled: bool,
}

impl embedded_io::ErrorType for Stalls {
    type Error = Injected;
}

impl embedded_io_async::Read for Stalls {
    async fn read(&mut self, buf: &mut [u8]) -> Result<usize, Injected> {
        if self.stalled {
            core::future::pending::<()>().await;
        }
        self.stalled = true;
        embedded_io_async::Read::read(&mut self.peer, buf).await
    }
}

impl embedded_io_async::Write for Stalls {
    async fn write(&mut self, buf: &[u8]) -> Result<usize, Injected> {
        embedded_io_async::Write::write(&mut self.peer, buf).await
    }

    async fn flush(&mut self) -> Result<(), Injected> {
        Ok(())
    }
}

/// Flushing a streamed body is bounded like its writes: a flush the stream never completes ends
/// in `Timeout(Send)` once the idle time has passed, and the connection is unusable.
#[test]
fn a_streamed_body_flush_is_bounded() {
    let clock = FakeClock::default();
    let mut buf = [0u8; 256];
    let mut conn = Connection::new(FlushStalls(Peer::new(b"")), &mut buf, HOST)
        .timed(clock.clone(), timeouts());
    let req = Request::post("/log");
    let mut body = {
        let mut f = pin!(conn.send_streaming(&req, Some(4)));
        poll_once(&mut f)
            .expect("the head is written at once")
            .unwrap()
    };
    clock.set(1_000);
    let n = {
        let mut f = pin!(embedded_io_async::Write::write(&mut body, b"ab"));
        poll_once(&mut f)
            .expect("the piece is written at once")
            .unwrap()
    };
    assert_eq!(n, 2);
    let r = {
        let mut f = pin!(embedded_io_async::Write::flush(&mut body));
        expires_exactly_at(&clock, &mut f, 5_999, 6_000)
    };
    assert_eq!(r, Err(Error::Timeout(TimeoutPhase::Send)));
    let mut f = pin!(embedded_io_async::Write::write(&mut body, b"cd"));
    assert_eq!(
        poll_once(&mut f),
        Some(Err(Error::Connection(ConnectionError::Broken(
            Broken::Timeout(TimeoutPhase::Send)
        ))))
    );
}

/// A stream that accepts every write and whose flushes never complete.
struct FlushStalls(Peer);

impl embedded_io::ErrorType for FlushStalls {
    type Error = Injected;
}

impl embedded_io_async::Read for FlushStalls {
    async fn read(&mut self, _buf: &mut [u8]) -> Result<usize, Injected> {
        core::future::pending().await
    }
}

impl embedded_io_async::Write for FlushStalls {
    async fn write(&mut self, buf: &[u8]) -> Result<usize, Injected> {
        self.0.write(buf).await
    }

    async fn flush(&mut self) -> Result<(), Injected> {
        core::future::pending().await
    }
}

/// A stream that never accepts a write.
struct NeverWrites;

impl embedded_io::ErrorType for NeverWrites {
    type Error = Injected;
}

impl embedded_io_async::Read for NeverWrites {
    async fn read(&mut self, _buf: &mut [u8]) -> Result<usize, Injected> {
        core::future::pending().await
    }
}

impl embedded_io_async::Write for NeverWrites {
    async fn write(&mut self, _buf: &[u8]) -> Result<usize, Injected> {
        core::future::pending().await
    }

    async fn flush(&mut self) -> Result<(), Injected> {
        Ok(())
    }
}

/// The next request after a long pause: reading the rest of the last response's framing belongs
/// to the new exchange's time, not to the old exchange's deadline (long past by then).
#[test]
fn the_next_exchange_after_a_pause_has_its_own_deadlines() {
    let clock = FakeClock::default();
    let script: &[u8] = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok";
    // The first read stops after the chunk's data: its framing comes with the next read; and
    // every read waits once before it delivers, as a real socket does.
    let (first, second) = script.split_at(script.len() - 40);
    let peer = Yields {
        peer: Peer::turns(&[first, second], &[], &clock).reads(support::Reads::Sizes(vec![55])),
        waited: false,
    };
    let mut buf = [0u8; 256];
    let mut conn = Connection::new(peer, &mut buf, HOST).timed(clock.clone(), timeouts());
    {
        let mut f = pin!(async {
            let mut resp = conn.send(&Request::get("/1")).await?;
            let mut body = [0u8; 5];
            embedded_io_async::Read::read_exact(&mut resp, &mut body)
                .await
                .map_err(|e| match e {
                    embedded_io::ReadExactError::Other(e) => e,
                    embedded_io::ReadExactError::UnexpectedEof => panic!("cut short"),
                })?;
            Ok::<_, Error<Injected>>(body)
        });
        assert_eq!(poll_once(&mut f), None);
        assert_eq!(poll_once(&mut f), Some(Ok(*b"hello")));
    }
    // An hour later, long after the first exchange's 30 s deadline.
    clock.set(3_600_000);
    let mut f = pin!(async {
        let mut resp = conn.send(&Request::get("/2")).await?;
        let mut body = [0u8; 8];
        let n = resp.read_to_end(&mut body).await?;
        Ok::<_, Error<Injected>>(body[..n].to_vec())
    });
    let mut got = None;
    for _ in 0..8 {
        got = poll_once(&mut f);
        if got.is_some() {
            break;
        }
    }
    assert_eq!(got, Some(Ok(b"ok".to_vec())));
}

/// Each read is pending once (and wakes its task) before it delivers.
struct Yields {
    peer: Peer,
    waited: bool,
}

impl embedded_io::ErrorType for Yields {
    type Error = Injected;
}

impl embedded_io_async::Read for Yields {
    async fn read(&mut self, buf: &mut [u8]) -> Result<usize, Injected> {
        let waited = &mut self.waited;
        core::future::poll_fn(|cx| {
            if core::mem::replace(waited, !*waited) {
                core::task::Poll::Ready(())
            } else {
                cx.waker().wake_by_ref();
                core::task::Poll::Pending
            }
        })
        .await;
        embedded_io_async::Read::read(&mut self.peer, buf).await
    }
}

impl embedded_io_async::Write for Yields {
    async fn write(&mut self, buf: &[u8]) -> Result<usize, Injected> {
        embedded_io_async::Write::write(&mut self.peer, buf).await
    }

    async fn flush(&mut self) -> Result<(), Injected> {
        Ok(())
    }
}

/// After an interim `1xx` response the final response gets the first-byte deadline anew, not
/// the idle one (issue 17 item 5).
#[test]
fn after_an_interim_response_the_final_one_gets_the_first_byte_deadline() {
    let clock = FakeClock::default();
    let mut buf = [0u8; 256];
    // A 102 at 9 s, then nothing.
    let mut peer = Peer::turns(&[b"HTTP/1.1 102 Processing\r\n\r\n"], &[9_000], &clock);
    peer.eof_at = None;
    let mut conn = Connection::new(
        Stalls {
            peer,
            stalled: false,
        },
        &mut buf,
        HOST,
    )
    .timed(clock.clone(), timeouts());
    let req = Request::get("/slow");
    let mut f = pin!(conn.send(&req));
    assert!(poll_once(&mut f).is_none());
    clock.set(9_000);
    assert!(poll_once(&mut f).is_none(), "the 102 was read");
    // 9 s + 5 s idle would end it at 14 s; the first-byte deadline is 9 s + 10 s.
    let r = expires_exactly_at(&clock, &mut f, 18_999, 19_000).map(|_| ());
    assert_eq!(r, Err(Error::Timeout(TimeoutPhase::FirstByte)));
}

/// `Timeouts::none()` with a real timer bounds nothing: a request with `Expect: 100-continue`
/// sends its body at once, as without a timer (issue 17 item 5: it waited 49.7 days).
#[test]
fn timeouts_none_sends_an_expect_body_at_once() {
    let clock = FakeClock::default();
    let mut buf = [0u8; 256];
    let stream = Gated {
        peer: Peer::new(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n"),
        open_after: 1,
    };
    let mut conn = Connection::new(stream, &mut buf, HOST).timed(clock.clone(), Timeouts::none());
    let req = Request::put("/upload")
        .with_headers(&[("Expect", "100-continue")])
        .with_body(b"payload");
    {
        let mut f = pin!(conn.send(&req));
        assert_eq!(poll_once(&mut f).unwrap().map(|r| r.status()), Ok(200));
    }
    let writes = conn.into_inner().peer.writes;
    assert_eq!(writes.len(), 1, "head and body in one write: {writes:?}");
    assert!(writes[0].ends_with(b"\r\n\r\npayload"));
}

/// A streamed upload is bounded by its no-progress (idle) deadline, never cut by the response
/// deadline while it progresses: pieces written over 40 s, each promptly taken by the stream,
/// then the response (issue 17 item 5).
#[test]
fn a_streamed_upload_longer_than_the_response_deadline_is_not_cut() {
    let clock = FakeClock::default();
    let mut buf = [0u8; 256];
    let mut peer = Peer::turns(
        &[b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n"],
        &[],
        &clock,
    );
    let mut conn = Connection::new(&mut peer, &mut buf, HOST).timed(clock.clone(), timeouts());
    let status = support::block_on(async {
        let mut w = conn.send_streaming(&Request::post("/log"), None).await?;
        for t in 1..=8u64 {
            clock.set(t * 5_000);
            embedded_io_async::Write::write_all(&mut w, b"reading ").await?;
        }
        w.finish().await.map(|r| r.status())
    });
    assert_eq!(status, Ok(200));
    assert_eq!(clock.0.get(), 40_000);
}
