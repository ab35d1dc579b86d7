//! The async and the blocking shell are one client: driven through the same scripted peer over
//! multi-exchange programs — pipelined bytes, HEAD then POST with the next response crowding the
//! buffer, `Expect: 100-continue` with and without a `100`, streamed bodies of known and unknown
//! length, bodies built in the buffer — under every two-way read split, byte by byte, with EOF
//! and I/O errors at every offset and a failed write at every call, they return the same
//! results and write the same bytes, write call by write call.

mod support;

use embedded_io::{Read as _, Write as _};
use embedded_io_async::{Read as _, Write as _};
use rawpost::{blocking, Connection, Error, Host, Request};
use support::{block_on, Injected, Peer, Reads};

const HOST: Host<'static> = Host::new("api.example.com");

/// One step of a program.
#[derive(Clone, Copy)]
enum Op {
    /// `send`, then read the body `out_step` bytes per call.
    Send(Request<'static>),
    /// `send_with`, the body written into the buffer.
    SendWith(Request<'static>, &'static [u8]),
    /// `send_streaming` with these pieces, then `finish`.
    Stream(Request<'static>, Option<u64>, &'static [&'static [u8]]),
}

struct Program {
    name: &'static str,
    script: &'static [u8],
    ops: &'static [Op],
    buf: usize,
}

/// What a caller observes of one exchange.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Outcome {
    status: u16,
    reason: String,
    headers: Vec<(String, Vec<u8>)>,
    body: Vec<u8>,
    trailers: Vec<(String, Vec<u8>)>,
}

type Run = Vec<(Result<Outcome, Error<Injected>>, bool)>;

const PAD: &[(&str, &str)] = &[("X-Pad", "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa")];
const EXPECT: &[(&str, &str)] = &[("Expect", "100-continue")];
const JSON: &[(&str, &str)] = &[("Content-Type", "application/json")];

const PROGRAMS: &[Program] = &[
    Program {
        // The issue's repro: a HEAD answered together with the next response, then a POST
        // whose head must go out in parts in a 128-byte buffer.
        name: "head then post, head in parts",
        script: b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok",
        ops: &[
            Op::Send(Request::head("/")),
            Op::Send(Request::post("/upload").headers(PAD).body(b"BODY")),
        ],
        buf: 128,
    },
    Program {
        name: "pipelined: length, interim + chunked with trailers, until close",
        script: b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nfirstHTTP/1.1 103 Early Hints\r\nLink: </s.css>\r\n\r\nHTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n6;x=y\r\nsecond\r\n0\r\nX-T: 1\r\n\r\nHTTP/1.1 202 Accepted\r\n\r\nthird",
        ops: &[
            Op::Send(Request::post("/1").headers(JSON).body(br#"{"a":1}"#)),
            Op::Send(Request::get("/2")),
            Op::Send(Request::delete("/3")),
        ],
        buf: 256,
    },
    Program {
        name: "expect: 100 then the body (no timer: sent at once)",
        script: b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 201 Created\r\nContent-Length: 2\r\n\r\nokHTTP/1.1 204 No Content\r\n\r\n",
        ops: &[
            Op::Send(Request::put("/a").headers(EXPECT).body(b"payload")),
            Op::Send(Request::get("/b")),
        ],
        buf: 256,
    },
    Program {
        name: "expect ignored by the server",
        script: b"HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\nyes",
        ops: &[Op::Send(Request::post("/a").headers(EXPECT).body(b"payload"))],
        buf: 256,
    },
    Program {
        // Chunk frames are cut to the room left in the buffer (bytes kept for the next
        // response take some), so the pieces here fit whatever the reads were; cutting is
        // tested in streaming.rs.
        name: "streamed: known length, then chunked",
        script: b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nokHTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nok\r\n0\r\n\r\nHTTP/1.0 200 OK\r\nContent-Length: 4\r\n\r\ndone",
        ops: &[
            Op::Stream(Request::post("/log"), Some(11), &[b"hello", b" ", b"world"]),
            Op::Stream(Request::post("/log").headers(EXPECT), None, &[b"abc", &[b'x'; 40]]),
            Op::Stream(Request::post("/log"), Some(0), &[]),
        ],
        buf: 256,
    },
    Program {
        // The body built in the buffer behind bytes of the next response: the head goes out
        // in parts from the room behind the body.
        name: "built in the buffer, crowded",
        script: b"HTTP/1.1 204 No Content\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 4\r\n\r\ndoneHTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n",
        ops: &[
            Op::Send(Request::get("/")),
            Op::SendWith(Request::post("/json").headers(JSON), br#"{"seq":3}"#),
            Op::SendWith(Request::post("/json").headers(JSON), br#"{"seq":4}"#),
        ],
        buf: 128,
    },
    Program {
        name: "large body from the caller's slice",
        script: b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n",
        ops: &[
            Op::Send(Request::post("/big").body(&[b'b'; 300])),
            Op::Send(Request::post("/big").headers(PAD).body(&[b'c'; 300])),
        ],
        buf: 128,
    },
];

fn fields(it: rawpost::Fields<'_>) -> Vec<(String, Vec<u8>)> {
    it.map(|h| (h.name.to_string(), h.value.to_vec())).collect()
}

async fn run_async(p: &Program, peer: &mut Peer, out_step: usize) -> Run {
    let mut buf = vec![0u8; p.buf];
    let mut conn = Connection::new(peer, &mut buf, HOST);
    let mut runs = Run::new();
    for op in p.ops {
        let r = async {
            let mut resp = match *op {
                Op::Send(req) => conn.send(&req).await?,
                Op::SendWith(req, body) => {
                    conn.send_with(&req, |b: &mut [u8]| {
                        b.get_mut(..body.len())
                            .map(|d| {
                                d.copy_from_slice(body);
                                body.len()
                            })
                            .ok_or(())
                    })
                    .await?
                }
                Op::Stream(req, len, pieces) => {
                    let mut w = conn.send_streaming(&req, len).await?;
                    for piece in pieces {
                        w.write_all(piece).await?;
                        w.flush().await?;
                    }
                    w.finish().await?
                }
            };
            let mut body = Vec::new();
            let mut chunk = vec![0u8; out_step];
            loop {
                match resp.read(&mut chunk).await? {
                    0 => break,
                    n => body.extend_from_slice(&chunk[..n]),
                }
            }
            Ok(Outcome {
                status: resp.status(),
                reason: resp.reason().to_string(),
                headers: fields(resp.headers()),
                body,
                trailers: fields(resp.trailers()),
            })
        }
        .await;
        let failed = r.is_err();
        runs.push((r, conn.is_reusable()));
        if failed || !conn.is_reusable() {
            break;
        }
    }
    runs
}

fn run_blocking(p: &Program, peer: &mut Peer, out_step: usize) -> Run {
    let mut buf = vec![0u8; p.buf];
    let mut conn = blocking::Connection::new(peer, &mut buf, HOST);
    let mut runs = Run::new();
    for op in p.ops {
        let r = (|| {
            let mut resp = match *op {
                Op::Send(req) => conn.send(&req)?,
                Op::SendWith(req, body) => conn.send_with(&req, |b: &mut [u8]| {
                    b.get_mut(..body.len())
                        .map(|d| {
                            d.copy_from_slice(body);
                            body.len()
                        })
                        .ok_or(())
                })?,
                Op::Stream(req, len, pieces) => {
                    let mut w = conn.send_streaming(&req, len)?;
                    for piece in pieces {
                        w.write_all(piece)?;
                        w.flush()?;
                    }
                    w.finish()?
                }
            };
            let mut body = Vec::new();
            let mut chunk = vec![0u8; out_step];
            loop {
                match resp.read(&mut chunk)? {
                    0 => break,
                    n => body.extend_from_slice(&chunk[..n]),
                }
            }
            Ok(Outcome {
                status: resp.status(),
                reason: resp.reason().to_string(),
                headers: fields(resp.headers()),
                body,
                trailers: fields(resp.trailers()),
            })
        })();
        let failed = r.is_err();
        runs.push((r, conn.is_reusable()));
        if failed || !conn.is_reusable() {
            break;
        }
    }
    runs
}

/// Runs `p` through both shells over identically configured peers; asserts they agree on
/// results and on every write, and returns the common run and the writes.
fn both(p: &Program, configure: &dyn Fn(&mut Peer), out_step: usize) -> (Run, Vec<Vec<u8>>) {
    let mut a = Peer::new(p.script);
    configure(&mut a);
    let mut b = Peer::new(p.script);
    configure(&mut b);
    let got_async = block_on(run_async(p, &mut a, out_step));
    let got_blocking = run_blocking(p, &mut b, out_step);
    assert_eq!(got_async, got_blocking, "{}: results differ", p.name);
    assert_eq!(a.writes, b.writes, "{}: writes differ", p.name);
    assert_eq!(a.flushes, b.flushes, "{}: flushes differ", p.name);
    (got_async, a.writes)
}

#[test]
fn fault_free_programs_complete_and_agree() {
    for p in PROGRAMS {
        let (run, _) = both(p, &|_| {}, 4096);
        assert_eq!(run.len(), p.ops.len(), "{}: {run:?}", p.name);
        assert!(run.iter().all(|(r, _)| r.is_ok()), "{}: {run:?}", p.name);
    }
}

/// A streamed body's `flush` is a step of the core like any other: a failed flush at every
/// flush call ends the exchange with the stream's error in both shells, and the connection is
/// not reused.
#[test]
fn a_failed_flush_at_every_call_agrees() {
    let mut failed = 0;
    for p in PROGRAMS {
        let mut flushes = Peer::new(p.script);
        block_on(run_async(p, &mut flushes, 4096));
        for k in 0..flushes.flushes {
            let (run, _) = both(p, &|peer| peer.flush_error_at = Some(k), 4096);
            assert_eq!(
                run.last().unwrap(),
                &(Err(Error::Io(Injected)), false),
                "{}: flush {k} failed: {run:?}",
                p.name
            );
            failed += 1;
        }
    }
    // The streamed program flushes after each of its pieces (and the request), so some
    // of these failures happen inside a body.
    assert!(failed > 10, "{failed}");
}

/// The repro of the blocking shell's truncated head: both shells write the whole head, in
/// parts, before the body.
#[test]
fn a_head_crowded_by_the_next_response_goes_out_whole_from_both_shells() {
    let (run, writes) = both(&PROGRAMS[0], &|_| {}, 4096);
    assert_eq!(run[1].0.as_ref().unwrap().body, b"ok");
    let second: Vec<u8> = writes[1..].concat();
    assert_eq!(
        second,
        [
            &b"POST /upload HTTP/1.1\r\nHost: api.example.com\r\nX-Pad: "[..],
            &[b'a'; 36],
            b"\r\nContent-Length: 4\r\n\r\nBODY",
        ]
        .concat()
    );
    // The head went out in more than one write (the buffer was crowded), the body after it.
    assert!(writes.len() > 3, "{writes:?}");
}

#[test]
fn every_read_split_gives_the_same_results_and_writes() {
    for p in PROGRAMS {
        let (want, want_writes) = both(p, &|_| {}, 4096);
        let mut plans = vec![Reads::Max(1), Reads::Max(3)];
        plans.extend((1..p.script.len()).map(|k| Reads::Sizes(vec![k])));
        for plan in plans {
            for out_step in [4096, 1, 5] {
                let (got, writes) = both(p, &|peer| peer.reads = plan.clone(), out_step);
                assert_eq!(got, want, "{}: reads {plan:?}, out {out_step}", p.name);
                assert_eq!(
                    writes.concat(),
                    want_writes.concat(),
                    "{}: reads {plan:?}",
                    p.name
                );
            }
        }
    }
}

#[test]
fn eof_and_errors_at_every_offset_agree() {
    for p in PROGRAMS {
        for at in 0..=p.script.len() {
            for plan in [Reads::Whole, Reads::Max(1), Reads::Max(7)] {
                let (run, _) = both(
                    p,
                    &|peer| {
                        peer.reads = plan.clone();
                        peer.eof_at = Some(at);
                    },
                    3,
                );
                let (last, _) = run.last().unwrap();
                if at < p.script.len() {
                    // Something must have noticed the missing bytes, unless the last response
                    // is delimited by the close.
                    assert!(
                        last.is_err() || !run.last().unwrap().1,
                        "{}: EOF at {at}: {run:?}",
                        p.name
                    );
                }
                let (run, _) = both(
                    p,
                    &|peer| {
                        peer.reads = plan.clone();
                        peer.error_at = Some(at);
                    },
                    3,
                );
                if at < p.script.len() {
                    assert_eq!(
                        run.last().unwrap(),
                        &(Err(Error::Io(Injected)), false),
                        "{}: error at {at}",
                        p.name
                    );
                }
            }
        }
    }
}

#[test]
fn a_failed_write_at_every_call_agrees() {
    for p in PROGRAMS {
        let (_, writes) = both(p, &|_| {}, 4096);
        for call in 0..writes.len() {
            let (run, _) = both(p, &|peer| peer.write_error_at = Some(call), 4096);
            assert_eq!(
                run.last().unwrap(),
                &(Err(Error::Io(Injected)), false),
                "{}: write {call}",
                p.name
            );
        }
        // Short writes: the stream takes a few bytes per call.
        let (run, short) = both(p, &|peer| peer.write_max = Some(5), 4096);
        assert!(run.iter().all(|(r, _)| r.is_ok()), "{}: {run:?}", p.name);
        assert_eq!(short.concat(), writes.concat(), "{}", p.name);
    }
}
