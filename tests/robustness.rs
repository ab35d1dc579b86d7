//! Robustness: split invariance, fault injection at every byte and every write, and every limit
//! hit exactly and missed by one.
//!
//! Each case is a script of server bytes and the requests sent over one connection. The result
//! of a case is what a caller observes of every exchange (head, body, trailers, errors,
//! reusability), so "the same result" means the same for all of it.

mod support;

use embedded_io_async::{ErrorType, Read, Write};
use rawpost::{
    Connection, ConnectionError, Error, Framing, Host, Request, RequestError, ResponseError,
    MAX_CHUNK_LINE, MAX_HEADERS, MAX_INTERIM_RESPONSES,
};
use support::outcome::{send_and_read, Outcome};
use support::{block_on, Injected, Peer, Reads};

const HOST: Host<'static> = Host::new("api.example.com");

/// A peer that panics when the client keeps reading without end: every read either delivers a
/// byte, or reports EOF or an error, which ends the exchange; many more reads than bytes means
/// the client loops (a hang on a real stream).
struct Bounded<'p> {
    peer: &'p mut Peer,
    max_reads: usize,
}

impl ErrorType for Bounded<'_> {
    type Error = Injected;
}

impl Read for Bounded<'_> {
    async fn read(&mut self, buf: &mut [u8]) -> Result<usize, Injected> {
        assert!(
            self.peer.read_calls < self.max_reads,
            "{} read calls for a {}-byte script: the client loops",
            self.peer.read_calls,
            self.peer.script.len()
        );
        self.peer.read(buf).await
    }
}

impl Write for Bounded<'_> {
    async fn write(&mut self, buf: &[u8]) -> Result<usize, Injected> {
        self.peer.write(buf).await
    }

    async fn flush(&mut self) -> Result<(), Injected> {
        self.peer.flush().await
    }
}

type Result1 = Result<Outcome, Error<Injected>>;

/// One run of a case: each exchange's result and whether the connection was reusable after it.
type Run = Vec<(Result1, bool)>;

/// Plays `case` over `peer`; stops at the first error or when the connection is not reusable.
fn run(case: &Case, peer: &mut Peer, out_step: usize) -> Run {
    let max_reads = 2 * peer.script.len() + 16;
    let mut stream = Bounded { peer, max_reads };
    let mut buf = vec![0u8; case.buf];
    block_on(async {
        let mut conn = Connection::new(&mut stream, &mut buf, HOST);
        let mut results = Vec::new();
        for req in &case.requests {
            let r = send_and_read(&mut conn, req, out_step).await;
            let reusable = conn.is_reusable();
            let stop = r.is_err() || !reusable;
            if let Err(e) = &r {
                assert!(
                    matches!(e, Error::Request(_)) || !reusable,
                    "{}: an error must leave the connection unusable: {e:?}",
                    case.name
                );
            }
            results.push((r, reusable));
            if stop {
                break;
            }
        }
        results
    })
}

struct Case {
    name: &'static str,
    script: Vec<u8>,
    requests: Vec<Request<'static>>,
    buf: usize,
    /// Where each response ends, when there are several: each is sent only after its request
    /// (empty: one response).
    turns: Vec<usize>,
}

impl Case {
    /// A server playing the case: each response after its request.
    fn peer(&self) -> Peer {
        let mut peer = Peer::new(&self.script);
        if !self.turns.is_empty() {
            peer.turns = self.turns.clone();
            peer.released = 0;
        }
        peer
    }
}

/// A case of several responses, each answering one request.
fn turns(name: &'static str, responses: &[&[u8]], requests: Vec<Request<'static>>) -> Case {
    let mut end = 0;
    Case {
        name,
        script: responses.concat(),
        requests,
        buf: 1024,
        turns: responses
            .iter()
            .map(|r| {
                end += r.len();
                end
            })
            .collect(),
    }
}

fn post() -> Request<'static> {
    Request::post("/oauth/token")
        .with_headers(&[
            ("Content-Type", "application/json"),
            ("User-Agent", "rawpost-test/1.0"),
        ])
        .with_body(br#"{"grant_type":"client_credentials"}"#)
}

fn case(name: &'static str, script: &[u8]) -> Case {
    Case {
        name,
        script: script.to_vec(),
        requests: vec![post()],
        buf: 1024,
        turns: Vec::new(),
    }
}

/// Every framing, interim responses, trailers, and pipelined responses on one connection.
fn cases() -> Vec<Case> {
    vec![
        case(
            "content-length",
            b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 13\r\n\r\n{\"token\":\"t\"}",
        ),
        case(
            "content-length 0",
            b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n",
        ),
        case(
            "chunked with extensions and trailers",
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5;name=v\r\nhello\r\n7\r\n, world\r\n0\r\nX-Checksum: abc\r\nX-Other:  2 \r\n\r\n",
        ),
        case(
            "chunked without trailers",
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip, chunked\r\n\r\n1a\r\nabcdefghijklmnopqrstuvwxyz\r\n0\r\n\r\n",
        ),
        case(
            "until close",
            b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n\r\nuntil the very end",
        ),
        case(
            "HTTP/1.0",
            b"HTTP/1.0 200 OK\r\nContent-Length: 2\r\n\r\nok",
        ),
        case(
            "connection close",
            b"HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 2\r\n\r\nok",
        ),
        case(
            "interim responses",
            b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 103 Early Hints\r\nLink: </a.css>; rel=preload\r\n\r\nHTTP/1.1 201 Created\r\nContent-Length: 3\r\n\r\nnew",
        ),
        case(
            "204 with a stray Content-Length",
            b"HTTP/1.1 204 No Content\r\nContent-Length: 10\r\n\r\n",
        ),
        case(
            "obsolete line folding",
            b"HTTP/1.1 200 OK\r\nX-Folded: a\r\n  b\r\nContent-Length: 2\r\n\r\nok",
        ),
        turns(
            "HEAD then GET",
            &[
                b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\n",
                b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello",
            ],
            vec![Request::head("/x"), Request::get("/x")],
        ),
        turns(
            "three on one connection",
            &[
                b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nfirst",
                b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n6\r\nsecond\r\n0\r\nX-T: 1\r\n\r\n",
                b"HTTP/1.1 202 Accepted\r\nContent-Length: 5\r\n\r\nthird",
            ],
            vec![post(), Request::get("/2"), Request::get("/3")],
        ),
    ]
}

fn whole(case: &Case) -> Run {
    let got = run(case, &mut case.peer(), 4096);
    // The reference itself completes every request without error.
    assert_eq!(got.len(), case.requests.len(), "{}: {got:?}", case.name);
    assert!(got.iter().all(|(r, _)| r.is_ok()), "{}: {got:?}", case.name);
    got
}

#[test]
fn every_two_read_split_and_byte_by_byte_match_one_read() {
    for case in cases() {
        let want = whole(&case);
        let mut plans = vec![Reads::Max(1)];
        plans.extend((1..case.script.len()).map(|k| Reads::Sizes(vec![k])));
        for plan in plans {
            for out_step in [4096, 1, 5] {
                let mut peer = case.peer().reads(plan.clone());
                let got = run(&case, &mut peer, out_step);
                assert_eq!(got, want, "{}: reads {plan:?}, out {out_step}", case.name);
            }
        }
    }
}

/// Checks a run with a fault against the fault-free run: every exchange before the fault is
/// unchanged, and the exchange hit by it is the typed error `fault` (or, for a body delimited by
/// the close — no Content-Length, no chunked — an honest prefix) and leaves the connection
/// unusable. A body framed by Content-Length or chunked that ends early is never `Ok`, also when
/// the response does not keep the connection (HTTP/1.0, `Connection: close`).
fn check_faulted(case: &Case, want: &Run, got: &Run, fault: &dyn Fn(&Error<Injected>) -> bool) {
    let what = case.name;
    let (last, earlier) = got.split_last().expect("at least one exchange");
    for (i, (g, w)) in earlier.iter().zip(want).enumerate() {
        assert_eq!(g, w, "{what}: exchange {i} before the fault changed");
    }
    let i = earlier.len();
    match &last.0 {
        Err(Error::Connection(ConnectionError::Dropped)) => {
            // The connection ended after the request, before any byte of its response: the
            // fault came exactly at a response's start.
            let start = case.turns.get(i.wrapping_sub(1)).copied().unwrap_or(0);
            assert!(
                i == 0 || case.turns.is_empty() || start > 0,
                "{what}: Dropped at {i}"
            );
            assert!(!last.1, "{what}: usable after Dropped");
        }
        Err(e) => {
            assert!(fault(e), "{what}: exchange {i}: unexpected error {e:?}");
            assert!(!last.1, "{what}: usable after {e:?}");
        }
        Ok(o) => {
            let w = want[i].0.as_ref().unwrap();
            if o == w {
                // The fault came after this exchange's last byte, and nothing followed.
                assert_eq!(got.len(), want.len(), "{what}: {got:?}");
                assert_eq!(last.1, want[i].1);
            } else {
                // Only a body delimited by the close may end early, and then it is a prefix.
                assert!(
                    w.framing == Framing::UntilClose && w.body.starts_with(&o.body),
                    "{what}: truncated Ok {o:?}, want {w:?}"
                );
                assert_eq!(o.headers, w.headers);
                assert!(!last.1);
            }
        }
    }
}

/// The oracle itself: a body cut short is an acceptable `Ok` only when the close delimits it.
#[test]
fn check_faulted_accepts_a_prefix_only_for_a_close_delimited_body() {
    let truncated = |case: &Case| {
        let want = whole(case);
        let mut got = want.clone();
        let (Ok(o), reusable) = &mut got[0] else {
            unreachable!()
        };
        o.body.pop();
        *reusable = false;
        (want, got)
    };
    let any = |_: &Error<Injected>| true;
    let all = cases();
    let by_name = |name| all.iter().find(|c| c.name == name).unwrap();

    let until_close = by_name("until close");
    let (want, got) = truncated(until_close);
    check_faulted(until_close, &want, &got, &any);

    for name in ["HTTP/1.0", "connection close", "content-length"] {
        let case = by_name(name);
        let (want, got) = truncated(case);
        let refused = std::panic::catch_unwind(|| check_faulted(case, &want, &got, &any));
        assert!(refused.is_err(), "{name}: a truncated Ok was accepted");
    }
}

#[test]
fn eof_and_errors_at_every_byte_are_typed_and_final() {
    let eof = |e: &Error<Injected>| {
        matches!(
            e,
            Error::Response(ResponseError::UnexpectedEof | ResponseError::TruncatedBody)
        )
    };
    let io = |e: &Error<Injected>| *e == Error::Io(Injected);
    for case in cases() {
        let want = whole(&case);
        for at in 0..case.script.len() {
            for plan in [Reads::Whole, Reads::Max(1), Reads::Max(7)] {
                for out_step in [4096, 3] {
                    let mut peer = case.peer().reads(plan.clone());
                    peer.eof_at = Some(at);
                    let got = run(&case, &mut peer, out_step);
                    check_faulted(&case, &want, &got, &eof);

                    let mut peer = case.peer().reads(plan.clone());
                    peer.error_at = Some(at);
                    let got = run(&case, &mut peer, out_step);
                    check_faulted(&case, &want, &got, &io);
                    // An I/O error is never taken for the end of a body.
                    assert!(
                        matches!(got.last(), Some((Err(_), false))),
                        "{}: error at {at}: {got:?}",
                        case.name
                    );
                }
            }
        }
    }
}

#[test]
fn write_errors_at_every_call_are_typed_and_final() {
    for case in cases() {
        let want = whole(&case);
        let mut peer = case.peer();
        run(&case, &mut peer, 4096);
        let calls = peer.writes.len();
        assert_eq!(calls, case.requests.len(), "one write per request");
        for call in 0..calls {
            let mut peer = case.peer();
            peer.write_error_at = Some(call);
            let got = run(&case, &mut peer, 4096);
            check_faulted(&case, &want, &got, &|e| *e == Error::Io(Injected));
            assert_eq!(got.len(), call + 1);
            // Nothing was read for the request that failed.
            assert_eq!(peer.writes.len(), call + 1);
        }
        // A stream that accepts no bytes.
        let mut peer = case.peer();
        peer.write_max = Some(0);
        let got = run(&case, &mut peer, 4096);
        assert_eq!(
            got,
            vec![(
                Err(Error::Connection(ConnectionError::ClosedByServer)),
                false
            )],
            "{}",
            case.name
        );
        assert_eq!(peer.read_calls, 0);
    }
}

#[test]
fn big_body_write_errors_at_every_call() {
    // Head and body in two writes (the body does not fit the buffer), each cut short.
    let body = vec![b'x'; 3000];
    for write_max in [None, Some(700)] {
        let mut peer = Peer::new(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n");
        peer.write_max = write_max;
        let mut buf = [0u8; 256];
        let req = Request::put("/blob").with_body(&body);
        block_on(async {
            let mut conn = Connection::new(&mut peer, &mut buf, HOST);
            assert_eq!(conn.send(&req).await.unwrap().status(), 200);
        });
        let calls = peer.writes.len();
        assert!(calls >= 2);
        for call in 0..calls {
            let mut peer = Peer::new(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n");
            peer.write_max = write_max;
            peer.write_error_at = Some(call);
            block_on(async {
                let mut conn = Connection::new(&mut peer, &mut buf, HOST);
                let err = conn.send(&req).await.err().unwrap();
                assert_eq!(err, Error::Io(Injected));
                assert!(!conn.is_reusable());
            });
            assert_eq!(peer.read_calls, 0, "nothing is read after a failed write");
        }
    }
}

// ---- limits ----

fn single(script: &[u8], buf: usize) -> Result1 {
    let c = Case {
        name: "limit",
        script: script.to_vec(),
        requests: vec![Request::get("/")],
        buf,
        turns: Vec::new(),
    };
    let whole = run(&c, &mut Peer::new(script), 4096);
    let bytewise = run(&c, &mut Peer::new(script).reads(Reads::Max(1)), 4096);
    assert_eq!(whole, bytewise);
    whole.into_iter().next().unwrap().0
}

#[test]
fn limit_head_size_is_the_buffer() {
    let buf = 300;
    let make = |len: usize| {
        let mut s = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nX-Pad: ".to_vec();
        let pad = len - s.len() - 4;
        s.extend(std::iter::repeat_n(b'a', pad));
        s.extend_from_slice(b"\r\n\r\n");
        assert_eq!(s.len(), len);
        s.extend_from_slice(b"ok");
        s
    };
    let ok = single(&make(buf), buf).unwrap();
    assert_eq!(ok.body, b"ok");
    assert_eq!(
        single(&make(buf + 1), buf),
        Err(Error::Response(ResponseError::HeadTooLarge))
    );
}

#[test]
fn limit_header_count() {
    let make = |n: usize| {
        let mut s = b"HTTP/1.1 200 OK\r\n".to_vec();
        for i in 0..n - 1 {
            s.extend_from_slice(format!("X-H{i}: {i}\r\n").as_bytes());
        }
        s.extend_from_slice(b"Content-Length: 2\r\n\r\nok");
        s
    };
    let ok = single(&make(MAX_HEADERS), 4096).unwrap();
    assert_eq!(ok.headers.len(), MAX_HEADERS);
    assert_eq!(
        single(&make(MAX_HEADERS + 1), 4096),
        Err(Error::Response(ResponseError::TooManyHeaders))
    );
}

#[test]
fn limit_trailer_count() {
    let make = |n: usize| {
        let mut s =
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nok\r\n0\r\n".to_vec();
        for i in 0..n {
            s.extend_from_slice(format!("X-T{i}: {i}\r\n").as_bytes());
        }
        s.extend_from_slice(b"\r\n");
        s
    };
    let ok = single(&make(MAX_HEADERS), 4096).unwrap();
    assert_eq!(ok.trailers.len(), MAX_HEADERS);
    assert_eq!(
        single(&make(MAX_HEADERS + 1), 4096),
        Err(Error::Response(ResponseError::InvalidTrailers))
    );
}

/// A chunked response whose first chunk-size line (size, extension, CRLF) is `line` bytes.
fn chunk_line(line: usize) -> Vec<u8> {
    let mut s = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n".to_vec();
    let start = s.len();
    s.extend_from_slice(b"2;e=");
    s.extend(std::iter::repeat_n(b'x', line - 6));
    s.extend_from_slice(b"\r\n");
    assert_eq!(s.len() - start, line);
    s.extend_from_slice(b"ok\r\n0\r\n\r\n");
    s
}

#[test]
fn limit_chunk_size_line() {
    assert_eq!(
        single(&chunk_line(MAX_CHUNK_LINE), 512).unwrap().body,
        b"ok"
    );
    assert_eq!(
        single(&chunk_line(MAX_CHUNK_LINE + 2), 512),
        Err(Error::Response(ResponseError::ChunkSizeOverflow))
    );
    // Size digits: leading zeros are bounded by the same line limit, and a value over 64 bits
    // is refused.
    let mut zeros = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n".to_vec();
    zeros.extend(std::iter::repeat_n(b'0', MAX_CHUNK_LINE + 1));
    zeros.extend_from_slice(b"2\r\nok\r\n0\r\n\r\n");
    assert_eq!(
        single(&zeros, 512),
        Err(Error::Response(ResponseError::ChunkSizeOverflow))
    );
    assert_eq!(
        single(
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nffffffffffffffff\r\n",
            512
        ),
        Err(Error::Response(ResponseError::TruncatedBody)),
        "the largest u64 size is accepted (the body is then cut short)"
    );
    assert_eq!(
        single(
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n10000000000000000\r\n",
            512
        ),
        Err(Error::Response(ResponseError::ChunkSizeOverflow))
    );
}

/// `MAX_CHUNK_LINE` is documented as "the longest chunk-size line (size, extensions and CRLF)
/// accepted"; a line one byte longer must be refused.
#[test]
fn limit_chunk_size_line_exact() {
    assert_eq!(
        single(&chunk_line(MAX_CHUNK_LINE + 1), 512),
        Err(Error::Response(ResponseError::ChunkSizeOverflow))
    );
}

#[test]
fn limit_interim_responses() {
    let make = |n: usize| {
        let mut s = b"HTTP/1.1 100 Continue\r\n\r\n".repeat(n);
        s.extend_from_slice(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok");
        s
    };
    let max = usize::from(MAX_INTERIM_RESPONSES);
    assert_eq!(single(&make(max), 512).unwrap().body, b"ok");
    assert_eq!(
        single(&make(max + 1), 512),
        Err(Error::Response(ResponseError::TooManyInterimResponses))
    );
}

#[test]
fn limit_request_head_is_the_buffer() {
    let req = Request::get("/");
    let head = b"GET / HTTP/1.1\r\nHost: api.example.com\r\n\r\n";
    for (buf, ok) in [(head.len(), true), (head.len() - 1, false)] {
        let mut peer = Peer::new(b"HTTP/1.1 204 No Content\r\n\r\n");
        let mut b = vec![0u8; buf];
        let r = block_on(async {
            let mut conn = Connection::new(&mut peer, &mut b, HOST);
            conn.send(&req).await.map(|r| r.status())
        });
        if ok {
            assert_eq!(r, Ok(204));
            assert_eq!(peer.written(), head);
        } else {
            assert_eq!(
                r,
                Err(Error::Request(RequestError::BufferTooSmall {
                    needed: head.len()
                }))
            );
            assert!(peer.writes.is_empty());
        }
    }
}

/// Bytes that arrive ahead of a request are never taken for its response (issue 17): read with
/// the last response, or found by the check before the next request, whatever the split, they
/// make the connection unusable and the next request is refused without being written.
#[test]
fn bytes_read_ahead_of_a_request_are_never_its_response() {
    let first: &[u8] = b"HTTP/1.1 200 OK\r\nContent-Length: 1\r\n\r\n1";
    let script = [first, b"HTTP/1.1 200 OK\r\nContent-Length: 6\r\n\r\nsecond"].concat();
    for reads in [
        Reads::Whole,
        Reads::Max(1),
        Reads::Sizes(vec![first.len() + 3]),
    ] {
        let mut peer = Peer::new(&script).reads(reads.clone());
        let mut buf = [0u8; 128];
        let mut conn =
            rawpost::blocking::Connection::new(&mut peer, &mut buf, HOST).check_before_send();
        let mut resp = conn.send(&Request::get("/one")).unwrap();
        let mut out = [0u8; 4];
        assert_eq!(resp.read_to_end(&mut out), Ok(1));
        let e = conn.send(&Request::get("/two")).map(|_| ()).unwrap_err();
        assert_eq!(
            e,
            Error::Connection(ConnectionError::Unsolicited),
            "{reads:?}"
        );
        assert_eq!(peer.writes.len(), 1, "{reads:?}");
    }
}
